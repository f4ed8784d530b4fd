// The release link of `hooks-relay` lays out its functions in link/hooks-relay.order's order.
include!("../link/order.rs");

fn main() {
    link_order("hooks-relay", "../link");
}
