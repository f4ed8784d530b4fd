//! Helpers of the capture-store tests (`store_cli`, `store_replay`, `replay_resign`): a private
//! data directory shared by several `hooks` runs, `hooks listen` on it, and webhooks sent for
//! their status only.

use std::path::{Path, PathBuf};

use bytes::Bytes;

pub use super::cli::run;
use super::{full, spawn_listen_in, Listener, Relay, Sender};

/// A fresh, private data directory.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp data dir")
}

/// Starts `hooks listen --json --relay <relay> --forward-to <target> <extra>` with data in
/// `data`, and waits for its ready line.
pub async fn listen(relay: &Relay, target: &str, data: &Path, extra: &[&str]) -> Listener {
    let mut args = vec!["--relay", &relay.url, "--forward-to", target];
    args.extend_from_slice(extra);
    spawn_listen_in(data, &args).await
}

/// Sends one request to `url` with `headers` (appended in order) and `body`; returns the status.
pub async fn send(method: &str, url: &str, headers: &[(&str, &[u8])], body: &[u8]) -> u16 {
    let headers: Vec<_> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.to_vec()))
        .collect();
    let body = full(Bytes::copy_from_slice(body));
    Sender::default()
        .send(method, url, &headers, body)
        .await
        .status
}

/// Every byte value, `repeat` times: a body no text encoding survives.
pub fn all_bytes(repeat: usize) -> Vec<u8> {
    (0..=255u8).cycle().take(256 * repeat).collect()
}

/// The files in `dir` whose names start with `prefix`.
pub fn files_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect()
}
