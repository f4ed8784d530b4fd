//! The raw TCP tunnels issue 8 compares hooks with, run as the tunnel path of the tunnel bench
//! (`HOOKS_BENCH_PEER=bore` or `rathole`): their server and client as processes of their own on
//! 127.0.0.1, forwarding to the bench's app. `benches/run.sh --peers` installs them from
//! crates.io into `target/bench-peers`; `HOOKS_BENCH_PEER_BIN` names another binary.
//!
//! Neither parses HTTP, keeps anything or checks signatures: they copy bytes between a public
//! port and a connection to the app. bore opens one connection from its client to its server
//! per incoming connection; rathole keeps a pool of them.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// bore's control port: fixed in bore (`CONTROL_PORT`), so two bore runs cannot share a machine.
const BORE_CONTROL_PORT: u16 = 7835;

/// Longest wait for a peer tunnel to carry its first request.
const PEER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which peer tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    Bore,
    Rathole,
}

impl PeerKind {
    /// From `HOOKS_BENCH_PEER`; `None` when unset (the tunnel path is hooks).
    pub fn from_env() -> Option<Self> {
        match std::env::var("HOOKS_BENCH_PEER").as_deref() {
            Err(_) | Ok("") => None,
            Ok("bore") => Some(PeerKind::Bore),
            Ok("rathole") => Some(PeerKind::Rathole),
            Ok(other) => panic!("HOOKS_BENCH_PEER must be bore or rathole, not {other:?}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Bore => "bore",
            PeerKind::Rathole => "rathole",
        }
    }

    /// `HOOKS_BENCH_PEER_BIN`, else the binary of that name on `PATH`.
    fn binary(self) -> PathBuf {
        match std::env::var_os("HOOKS_BENCH_PEER_BIN") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => PathBuf::from(self.name()),
        }
    }

    /// The version the binary reports, for the report.
    pub fn version(self) -> String {
        Command::new(self.binary())
            .arg("--version")
            .output()
            .ok()
            .and_then(|out| {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.lines().next().map(|line| line.trim().to_owned())
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| self.name().to_owned())
    }
}

/// A running peer tunnel; both processes are killed on drop.
pub struct Peer {
    /// Where senders connect: the tunnel's public port on its server.
    pub addr: SocketAddr,
    pub server: Killed,
    pub client: Killed,
    /// rathole's configuration files.
    _dir: tempfile::TempDir,
}

/// A child process killed when dropped, so a bench that panics midway leaves nothing running
/// (bore's server would keep its fixed port).
pub struct Killed(Child);

impl Killed {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Peer {
    /// Starts the peer's server and client, forwarding to `app`, and returns once a request
    /// sent to the public port reaches the app; panics with a reason if it does not.
    pub async fn start(kind: PeerKind, app: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("the bench needs a scratch directory");
        let bin = kind.binary();
        // Only bore's client says something the bench reads (where it listens); both log a
        // line per connection, so what is piped is drained.
        let spawn = |command: &mut Command, piped: bool| {
            command
                .stdin(Stdio::null())
                .stdout(if piped { Stdio::piped() } else { Stdio::null() })
                .stderr(Stdio::null())
                .env("NO_COLOR", "1")
                .spawn()
                .map(Killed)
                .unwrap_or_else(|e| {
                    panic!(
                        "could not start {} ({e}); `benches/run.sh --peers` installs it",
                        bin.display()
                    )
                })
        };
        let (server, client, addr) = match kind {
            PeerKind::Bore => {
                let control = SocketAddr::from(([127, 0, 0, 1], BORE_CONTROL_PORT));
                assert!(
                    TcpStream::connect(control).await.is_err(),
                    "port {BORE_CONTROL_PORT}, bore's fixed control port, is already taken"
                );
                let server = spawn(
                    Command::new(&bin).args(["server", "--bind-addr", "127.0.0.1"]),
                    false,
                );
                wait_until(PEER_READY_TIMEOUT, || async {
                    TcpStream::connect(control).await.is_ok()
                })
                .await
                .unwrap_or_else(|| panic!("bore server did not listen on {control}"));
                let mut client = spawn(
                    Command::new(&bin).args([
                        "local",
                        &app.port().to_string(),
                        "--local-host",
                        "127.0.0.1",
                        "--to",
                        "127.0.0.1",
                    ]),
                    true,
                );
                let stdout = client.0.stdout.take().expect("stdout is piped");
                let addr = bore_public_addr(stdout).unwrap_or_else(|| {
                    panic!("bore local did not say where it listens within {PEER_READY_TIMEOUT:?}")
                });
                (server, client, addr)
            }
            PeerKind::Rathole => {
                let control = free_port();
                let public = free_port();
                let server_toml = dir.path().join("server.toml");
                let client_toml = dir.path().join("client.toml");
                std::fs::write(
                    &server_toml,
                    format!(
                        "[server]\nbind_addr = \"{control}\"\n\n[server.services.bench]\ntoken = \"bench\"\nbind_addr = \"{public}\"\n"
                    ),
                )
                .expect("write rathole's server.toml");
                std::fs::write(
                    &client_toml,
                    format!(
                        "[client]\nremote_addr = \"{control}\"\n\n[client.services.bench]\ntoken = \"bench\"\nlocal_addr = \"{app}\"\n"
                    ),
                )
                .expect("write rathole's client.toml");
                let server = spawn(Command::new(&bin).arg("--server").arg(&server_toml), false);
                wait_until(PEER_READY_TIMEOUT, || async {
                    TcpStream::connect(control).await.is_ok()
                })
                .await
                .unwrap_or_else(|| panic!("rathole server did not listen on {control}"));
                let client = spawn(Command::new(&bin).arg("--client").arg(&client_toml), false);
                (server, client, public)
            }
        };
        Peer {
            addr,
            server,
            client,
            _dir: dir,
        }
    }
}

/// Polls `ready` every 20 ms until it holds or `timeout` passes; `None` if it never held.
pub async fn wait_until<F, Fut>(timeout: Duration, mut ready: F) -> Option<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready().await {
            return Some(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A loopback port nothing listens on now (bound, then released: another process could take
/// it in between, which on a bench machine does not happen).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("the bench needs a loopback port")
}

/// Reads bore local's log until `listening at HOST:PORT` (colour codes removed), waiting at
/// most [`PEER_READY_TIMEOUT`]; the rest of its log is drained so the pipe never fills.
fn bore_public_addr(stdout: std::process::ChildStdout) -> Option<SocketAddr> {
    let (found, port) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let listening = lines.by_ref().find_map(|line| {
            let plain = strip_ansi(&line);
            let rest = plain.split("listening at ").nth(1)?;
            let port = rest.split_whitespace().next()?.rsplit(':').next()?;
            port.parse::<u16>().ok()
        });
        let _ = found.send(listening);
        lines.for_each(drop);
    });
    let port = port.recv_timeout(PEER_READY_TIMEOUT).ok()??;
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
