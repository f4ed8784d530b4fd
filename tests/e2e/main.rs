//! End-to-end tests: everything that starts a process or opens a socket. The real relay (in this
//! process, or as a `hooks relay` process to kill and restart), a recording app and the real
//! `hooks` binary, all on `127.0.0.1:0`, with the clean environment of `support::cli`.
//!
//! One test binary for all of them, so the project is linked once (not once per file); each
//! former file is a module, so `cargo test --test e2e tunnel::` runs the tunnel's tests.

#[path = "../support/mod.rs"]
mod support;

#[path = "../support/signing.rs"]
mod signing;

mod ecosystem;
mod find_compare;
mod hermetic;
mod hostile_peers;
mod hostile_relay;
mod inspector;
mod listen_signatures;
mod query_cli;
mod redelivery;
mod relay_memory;
mod relay_ops;
mod relay_tokens;
mod replay_resign;
mod resilience;
mod routes;
mod send;
mod slow_peers;
mod store_cli;
mod store_replay;
mod streaming;
mod tunnel;
mod verify_cli;
mod verify_vectors;
