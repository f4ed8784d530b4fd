//! In-process tests of the library: signature schemes and providers checked with
//! `hooks::verify` directly, the line renderer's and the interactive inspector's screens against
//! insta snapshots (`unit/snapshots/`), and the inspector's state driven by key sequences. No sockets, no processes: the whole target runs in about a second.

#[path = "../support/signing.rs"]
mod signing;

#[path = "../support/inspector.rs"]
mod inspector;

mod inspect_snapshots;
mod inspect_ui;
mod inspect_ui_snapshots;
mod verify_providers;
mod verify_schemes;
