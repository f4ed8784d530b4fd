//! The one support module of the tests: the relay (in this process, or a process to kill and
//! restart), a recording target app, the `hooks` binary with a clean environment, and HTTP
//! clients that play the webhook provider. Each test target includes it with
//! `#[path = "../support/mod.rs"] mod support;`.
//!
//! Every server binds `127.0.0.1:0` and every wait has a deadline, so tests run in parallel and a
//! hang fails with a message instead of blocking the suite.

#![allow(dead_code)] // Each test target uses a different subset of these helpers.

pub mod app;
pub mod cli;
pub mod client;
pub mod relay;
pub mod send;
pub mod store;
pub mod tmux;

pub use app::*;
pub use cli::{
    hermetic, hooks_command, hooks_std_command, run_hooks, run_hooks_env, spawn_listen,
    spawn_listen_at, spawn_listen_env, spawn_listen_in, try_spawn_listen, Finished, Listener,
};
pub use client::*;
pub use relay::*;

use std::future::Future;
use std::time::Duration;

/// Longest any single step may take before the test fails: generous, because debug builds on a
/// loaded CI machine are slow, but finite, so a hang is a failure.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// A header as the tests compare it: lowercase name and raw value bytes.
pub type HeaderPair = (String, Vec<u8>);

/// Builds a header list from text pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Vec<HeaderPair> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect()
}

/// The values of every header named `name` (lowercase), in order.
pub fn values<'a>(list: &'a [HeaderPair], name: &str) -> Vec<&'a [u8]> {
    list.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
        .collect()
}

/// Awaits `future`, failing the test with `what` if it takes longer than [`STEP_TIMEOUT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP_TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {STEP_TIMEOUT:?} waiting for {what}"),
    }
}

/// A port that was free a moment ago and has nothing listening on it now.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    listener.local_addr().expect("probe port address").port()
}

/// Deterministic pseudo-random bytes (xorshift64*), so large bodies are reproducible without a
/// random-number crate.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Asserts two large byte strings are equal without printing megabytes on failure.
#[track_caller]
pub fn assert_same_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let first_diff = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: {} bytes received, {} expected; first difference at byte {first_diff}",
        got.len(),
        want.len()
    );
}
