//! Pieces the end-to-end benches share (`mod support;` in each; not every bench uses all).

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// Longest wait for a process's ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a child's stderr is kept for error messages.
pub const STDERR_KEEP: usize = 8 * 1024;

/// The `hooks` binary the benches run: `HOOKS_BENCH_BIN` when set, else the one this bench
/// was built with (`CARGO_BIN_EXE_hooks`). `cargo bench` builds that one with the
/// dev-dependencies' features unified in (e.g. regex's Unicode tables), so it is bigger than
/// what `./install.sh` installs; `benches/run.sh` points `HOOKS_BENCH_BIN` at a plain
/// `cargo build --release` instead. It also lets one run compare against an older build.
pub fn hooks_bin() -> std::path::PathBuf {
    match std::env::var_os("HOOKS_BENCH_BIN") {
        Some(path) if !path.is_empty() => std::path::PathBuf::from(path),
        _ => std::path::PathBuf::from(env!("CARGO_BIN_EXE_hooks")),
    }
}

/// The relay as deployed (systemd unit, Dockerfile): the `hooks-relay` binary next to `hooks`
/// ([`hooks_bin`]) when it has been built (`benches/run.sh` builds it), else `hooks relay`, the
/// same relay in the bigger CLI binary (more code mapped, so a higher RSS). Returns the command
/// and its name.
pub fn relay_command() -> (Command, &'static str) {
    let hooks = hooks_bin();
    let standalone = hooks.with_file_name("hooks-relay");
    if standalone.is_file() {
        (Command::new(standalone), "hooks-relay")
    } else {
        let mut command = Command::new(&hooks);
        command.arg("relay");
        (command, "hooks relay")
    }
}

/// A running relay process (`hooks-relay --listen 127.0.0.1:0 --data-dir DIR`), killed on drop.
pub struct RelayProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// The last [`STDERR_KEEP`] bytes of its stderr.
    pub stderr_tail: Arc<Mutex<Vec<u8>>>,
}

impl RelayProcess {
    /// Starts the relay with `extra` flags and reads the address from its first stdout line,
    /// `listening on http://ADDR`; panics with its stderr if it does not come.
    pub async fn start(data_dir: &std::path::Path, extra: &[String]) -> Self {
        let (mut command, name) = relay_command();
        eprintln!("relay process: {name}");
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env_remove("HOOKS_RELAY_CONFIG")
            .env_remove("HOOKS_RELAY_LISTEN")
            .env_remove("HOOKS_RELAY_PUBLIC_URL")
            .env_remove("HOOKS_RELAY_DATA_DIR")
            .env_remove("HOOKS_RELAY_TOKENS_FILE")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("could not start the relay");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr_tail = drain_stderr(child.stderr.take().expect("stderr is piped"));
        let (first_tx, first_rx) = oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = first_tx.send(line);
            }
            lines.for_each(drop);
        });
        let addr = match tokio::time::timeout(READY_TIMEOUT, first_rx).await {
            Ok(Ok(line)) => line
                .strip_prefix("listening on http://")
                .and_then(|addr| addr.trim().parse().ok()),
            _ => None,
        };
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            let tail = stderr_tail.lock().map(|t| t.clone()).unwrap_or_default();
            panic!(
                "{name} did not print `listening on http://ADDR`; its stderr:\n{}",
                String::from_utf8_lossy(&tail)
            );
        };
        RelayProcess {
            child,
            addr,
            stderr_tail,
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a child's stderr until it ends, keeping the last [`STDERR_KEEP`] bytes, so the pipe
/// never fills.
pub fn drain_stderr(mut stderr: ChildStderr) -> Arc<Mutex<Vec<u8>>> {
    let tail = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&tail);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            let Ok(mut tail) = keep.lock() else { break };
            tail.extend_from_slice(&buf[..n]);
            let excess = tail.len().saturating_sub(STDERR_KEEP);
            tail.drain(..excess);
        }
    });
    tail
}
