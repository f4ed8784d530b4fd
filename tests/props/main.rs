//! Property tests (proptest): every signature scheme over random bodies, secrets and times.
//! CPU-bound (seconds, not milliseconds) and tunable with `PROPTEST_CASES`, so they have a target
//! of their own, out of the quick in-process loop of `unit`.

#[path = "../support/signing.rs"]
mod signing;

mod verify_props;
