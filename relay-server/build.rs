// The release link of `hooks-relay` lays out its functions in link/hooks-relay.order's order.
include!("../link/order.rs");

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    link_order(
        "hooks-relay",
        &std::path::Path::new(&dir).join("../link/hooks-relay.order"),
    );
}
