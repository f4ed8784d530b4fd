// The release link of `hooks` lays out its functions in link/hooks.order's order.
include!("link/order.rs");

fn main() {
    link_order("hooks", "link");
}
