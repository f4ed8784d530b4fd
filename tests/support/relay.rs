//! The relay, two ways: in this process (`relay_server::run` on a loopback port, stopped when
//! dropped or awaited with [`Relay::stop`]), or as a `hooks relay` process that a test can kill
//! with SIGKILL and start again on the same port and data directory. And its gauges, read off
//! its metrics page.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::cli::{hooks_command, spawn_piped, Piped};
use super::client::{full, Sender};
use super::{within, STEP_TIMEOUT};

// ---------------------------------------------------------------------------------------------
// In this process
// ---------------------------------------------------------------------------------------------

/// A relay running in this process; it shuts down when dropped.
pub struct Relay {
    /// Base URL, `http://127.0.0.1:PORT` (`https://` when it serves TLS), without a trailing
    /// slash.
    pub url: String,
    /// Address the relay listens on.
    pub addr: SocketAddr,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl Relay {
    /// Base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Cancels the relay and waits for `relay_server::run` to return, so a test can start
    /// another one on the same data directory.
    pub async fn stop(mut self) {
        self.token.cancel();
        let task = self.task.take().expect("a running relay has its task");
        within("the relay to shut down", task)
            .await
            .expect("the relay task ends without panicking");
    }
}

/// Starts `relay_server::run` on a fresh loopback port.
pub async fn start_relay(config: relay_server::Config) -> Relay {
    start_relay_on(bind_loopback().await, config).await
}

/// Starts `relay_server::run` on `listener`, which the caller bound (so it can put the port in
/// `config`, e.g. a `public_url`). The URL scheme follows `config.tls`.
pub async fn start_relay_on(listener: TcpListener, config: relay_server::Config) -> Relay {
    let addr = listener.local_addr().expect("relay address");
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let token = CancellationToken::new();
    let shutdown = token.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        if let Err(e) = relay_server::run(listener, config, shutdown).await {
            panic!("relay failed: {e:#}");
        }
    });
    Relay {
        url: format!("{scheme}://{addr}"),
        addr,
        token,
        task: Some(task),
    }
}

/// A fresh `127.0.0.1:0` listener for [`start_relay_on`].
pub async fn bind_loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

// ---------------------------------------------------------------------------------------------
// As a process
// ---------------------------------------------------------------------------------------------

/// `hooks relay` running as its own process (with the test harness's clean environment), so a
/// test can kill it with SIGKILL and start it again. Killed when dropped.
pub struct RelayProcess {
    /// Base URL from the relay's first stdout line (`listening on URL`).
    pub url: String,
    /// Address the relay listens on; restarts reuse it.
    pub addr: SocketAddr,
    /// That first stdout line, whole.
    pub first_line: String,
    /// `--data-dir` and the flags after it, for [`RelayProcess::restart`]; `None` when the
    /// relay was started with the caller's flags only ([`RelayProcess::command`]).
    restart: Option<(PathBuf, Vec<String>)>,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Kept open so the relay can write to stdout as long as it likes.
    _lines: mpsc::UnboundedReceiver<String>,
    /// The process's home and data directory when the caller gave none.
    _dir: Option<tempfile::TempDir>,
}

impl RelayProcess {
    /// Starts `hooks relay --listen 127.0.0.1:0 --data-dir <data_dir> <extra>` and waits for its
    /// `listening on …` line.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> RelayProcess {
        let extra: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
        Self::start_at("127.0.0.1:0", data_dir.to_owned(), extra).await
    }

    /// Starts `hooks relay <args>`, with only the flags given (e.g. `--config FILE`), and waits
    /// for its `listening on …` line.
    pub async fn command(args: &[&str]) -> RelayProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut full = vec!["relay"];
        full.extend_from_slice(args);
        let mut relay = Self::spawn(&full, dir.path()).await;
        relay._dir = Some(dir);
        relay
    }

    async fn start_at(listen: &str, data_dir: PathBuf, extra: Vec<String>) -> RelayProcess {
        let data = data_dir.to_string_lossy().into_owned();
        let mut args = vec!["relay", "--listen", listen, "--data-dir", &data];
        args.extend(extra.iter().map(String::as_str));
        let mut relay = Self::spawn(&args, &data_dir).await;
        relay.restart = Some((data_dir, extra));
        relay
    }

    /// Spawns `hooks <args>` and waits for `listening on SCHEME://ADDR` on stdout.
    async fn spawn(args: &[&str], home: &Path) -> RelayProcess {
        let mut piped = spawn_piped(hooks_command(args, home), "hooks relay");
        let first = tokio::time::timeout(STEP_TIMEOUT, piped.lines.recv()).await;
        let announced = match &first {
            Ok(Some(line)) => line.strip_prefix("listening on ").and_then(|url| {
                let addr = url.split_once("://")?.1.parse::<SocketAddr>().ok()?;
                Some((url.to_owned(), addr, line.clone()))
            }),
            _ => None,
        };
        let Some((url, addr, first_line)) = announced else {
            let _ = piped.child.start_kill();
            panic!(
                "hooks {args:?} did not print `listening on URL` first (got {first:?})\n\
                 --- stderr ---\n{}",
                piped.collected_stderr().await
            );
        };
        let Piped {
            child,
            lines,
            stderr,
            ..
        } = piped;
        RelayProcess {
            url,
            addr,
            first_line,
            restart: None,
            child,
            stderr,
            _lines: lines,
            _dir: None,
        }
    }

    /// What this run of the relay wrote on stderr (its log) so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    /// Kills the relay with SIGKILL (`kill -9`: no shutdown, no flush) and waits until it is
    /// gone, so its port and sockets are closed.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        match tokio::time::timeout(STEP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("could not wait for the killed relay: {e}"),
            Err(_) => panic!("the relay did not die within {STEP_TIMEOUT:?} of SIGKILL"),
        }
    }

    /// Sends SIGHUP, as `systemctl reload` does: the relay rereads its certificate and tokens.
    pub fn hangup(&self) {
        let pid = self.child.id().expect("the relay is running");
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "could not send SIGHUP to the relay: {status:?}"
        );
    }

    /// Starts the relay again on the same address and data directory, with the same flags.
    /// The previous run must be dead ([`RelayProcess::kill`]); it must have been started with
    /// [`RelayProcess::start`].
    pub async fn restart(&mut self) {
        let (data_dir, extra) = self
            .restart
            .clone()
            .expect("only a relay from RelayProcess::start can be restarted");
        let listen = self.addr.to_string();
        let next = Self::start_at(&listen, data_dir, extra).await;
        assert_eq!(
            next.addr, self.addr,
            "the relay came back on its old address"
        );
        *self = next;
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Gauges
// ---------------------------------------------------------------------------------------------

/// The relay's `hooks_sessions` gauge (CLI sessions attached now), or `None` when the relay does
/// not answer.
pub async fn attached_sessions(sender: &Sender, relay_url: &str) -> Option<u64> {
    gauge(sender, relay_url, "hooks_sessions").await
}

/// The relay's gauge `name` (from its metrics page), or `None` when the relay does not answer.
pub async fn gauge(sender: &Sender, relay_url: &str, name: &str) -> Option<u64> {
    let url = format!("{relay_url}/_hooks/metrics");
    let reply = sender
        .try_send("GET", &url, &[], full(Bytes::new()), Duration::from_secs(2))
        .await
        .ok()?;
    reply
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse().ok())
}

/// Waits until the relay reports `n` attached sessions, e.g. until it noticed a CLI is gone.
pub async fn wait_for_sessions(relay_url: &str, n: u64) {
    wait_for_gauge(relay_url, "hooks_sessions", n).await
}

/// Waits until the relay's gauge `name` reads `n`. The relay offers no event for this, so the
/// gauge is polled (every 50 ms, up to [`STEP_TIMEOUT`]).
pub async fn wait_for_gauge(relay_url: &str, name: &str, n: u64) {
    let sender = Sender::default();
    let polling = async {
        while gauge(&sender, relay_url, name).await != Some(n) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    within(&format!("{relay_url}'s {name} to read {n}"), polling).await;
}
