//! In-process tests of the library: signature schemes and providers checked with
//! `hooks::verify` directly, and the inspector's rendering against insta snapshots
//! (`unit/snapshots/`). No sockets, no processes: the whole target runs in about a second.

#[path = "../support/signing.rs"]
mod signing;

mod inspect_snapshots;
mod verify_providers;
mod verify_schemes;
