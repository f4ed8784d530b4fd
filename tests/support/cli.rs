//! The `hooks` binary as the tests run it: one command builder that gives every process a clean,
//! private environment, a runner for commands that finish, and `hooks listen --json` as a
//! [`Listener`] read line by line.
//!
//! Hermetic: a developer's own `~/.config/hooks/config.toml`, `HOOKS_RELAY`, `HOOKS_TOKEN`,
//! `NO_COLOR`, `TERM`, `RUST_LOG` or `EDITOR` must not reach the processes a test starts, or
//! `hooks listen` would attach to the developer's relay and channel instead of the test's.

use std::ffi::OsString;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

use super::{within, STEP_TIMEOUT};

// ---------------------------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------------------------

/// Variables of the developer's environment that change what hooks (or a shell a test runs)
/// does, besides every `HOOKS_*`: colours and the terminal, logging, the editor `hooks send
/// --edit` opens, curl's configuration and proxies (for the curl commands `hooks export` writes).
const CLEARED: &[&str] = &[
    "NO_COLOR",
    "TERM",
    "RUST_LOG",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "VISUAL",
    "EDITOR",
    "CURL_HOME",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// Gives `command` a clean environment: none of the caller's `HOOKS_*` or [`CLEARED`]
/// variables, and `HOME`, `XDG_CONFIG_HOME` and `XDG_DATA_HOME` in [`empty_home`], so no config
/// file but the test's own (`HOOKS_CONFIG`, `--config`) is read. What the test sets afterwards
/// is all the process gets.
pub fn hermetic(command: &mut std::process::Command) {
    let inherited: Vec<OsString> = std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.to_string_lossy().starts_with("HOOKS_"))
        .collect();
    for name in inherited.iter().map(OsString::as_os_str) {
        command.env_remove(name);
    }
    for name in CLEARED {
        command.env_remove(name);
    }
    let home = empty_home();
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"));
}

/// The home of every process the tests start: an empty directory in cargo's temporary
/// directory for tests (`target/tmp`), shared and never written, since `HOOKS_DATA_DIR` says
/// where data goes. Shared rather than one per test because a test's data directory may be
/// unusable on purpose (a file), and a home inside it would then fail to be read.
pub fn empty_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-home");
        std::fs::create_dir_all(&home).expect("create the tests' empty home");
        home
    })
}

// ---------------------------------------------------------------------------------------------
// The command builder
// ---------------------------------------------------------------------------------------------

/// `hooks <args>` with a [`hermetic`] environment and `HOOKS_DATA_DIR=data_dir`; stdin empty,
/// stdout and stderr piped. Synchronous.
pub fn hooks_std_command(args: &[&str], data_dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hooks"));
    command.args(args);
    hermetic(&mut command);
    command.env("HOOKS_DATA_DIR", data_dir);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// [`hooks_std_command`] for tokio, killed when dropped so a failing test leaves no process.
pub fn hooks_command(args: &[&str], data_dir: &Path) -> Command {
    let mut command = Command::from(hooks_std_command(args, data_dir));
    command.kill_on_drop(true);
    command
}

/// `hooks` for `assert_cmd`, with a [`hermetic`] environment and data in a temporary directory
/// that lives as long as the command. Dereferences to [`assert_cmd::Command`].
pub struct AssertHooks {
    command: assert_cmd::Command,
    _dir: tempfile::TempDir,
}

/// `hooks` (no arguments yet) for `assert_cmd`.
pub fn hooks() -> AssertHooks {
    let dir = tempfile::tempdir().expect("temp data dir");
    let command = assert_cmd::Command::from_std(hooks_std_command(&[], dir.path()));
    AssertHooks { command, _dir: dir }
}

impl Deref for AssertHooks {
    type Target = assert_cmd::Command;

    fn deref(&self) -> &assert_cmd::Command {
        &self.command
    }
}

impl DerefMut for AssertHooks {
    fn deref_mut(&mut self) -> &mut assert_cmd::Command {
        &mut self.command
    }
}

// ---------------------------------------------------------------------------------------------
// Commands that finish
// ---------------------------------------------------------------------------------------------

/// The finished run of a `hooks` process, as text.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// The finished run of a `hooks` process whose stdout may not be text (an export, a body).
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Raw stdout.
    pub stdout: Vec<u8>,
    /// Stderr as text.
    pub stderr: String,
}

impl Run {
    /// Stdout as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stdout as NDJSON.
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
            .collect()
    }

    /// Fails unless the run exited 0.
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        self
    }
}

impl From<Run> for Finished {
    fn from(run: Run) -> Finished {
        Finished {
            code: run.code,
            stdout: run.text(),
            stderr: run.stderr,
        }
    }
}

/// Runs `command` to completion (at most [`STEP_TIMEOUT`]).
pub async fn finish(mut command: Command, what: &str) -> Run {
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let output = within(&format!("{what} to exit"), child.wait_with_output())
        .await
        .unwrap_or_else(|e| panic!("wait for {what}: {e}"));
    Run {
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `hooks <args>` with data in `data_dir` to completion.
pub async fn run(args: &[&str], data_dir: &Path) -> Run {
    finish(hooks_command(args, data_dir), &format!("hooks {args:?}")).await
}

/// Runs `hooks <args>` to completion, with data in a fresh directory.
pub async fn run_hooks(args: &[&str]) -> Finished {
    run_hooks_env(args, &[]).await
}

/// [`run_hooks`] with extra environment variables (set after the clean-up, so `HOOKS_*` work).
pub async fn run_hooks_env(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let dir = tempfile::tempdir().expect("temp data dir");
    let mut command = hooks_command(args, dir.path());
    command.envs(env.iter().copied());
    finish(command, &format!("hooks {args:?}")).await.into()
}

// ---------------------------------------------------------------------------------------------
// Long-running processes: hooks listen
// ---------------------------------------------------------------------------------------------

/// A child process whose stdout arrives line by line and whose stderr is collected.
pub(super) struct Piped {
    pub(super) child: Child,
    pub(super) lines: mpsc::UnboundedReceiver<String>,
    pub(super) stderr: Arc<Mutex<Vec<u8>>>,
    /// Turns `true` once stderr is closed, i.e. everything the process wrote there is collected.
    pub(super) stderr_closed: watch::Receiver<bool>,
    /// Bytes of stderr collected so far, to wait for a line.
    pub(super) stderr_len: watch::Receiver<usize>,
}

impl Piped {
    /// Waits (at most 5 s) until everything the process wrote on stderr is collected.
    pub(super) async fn collected_stderr(&mut self) -> String {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.stderr_closed.wait_for(|&closed| closed),
        )
        .await;
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }
}

/// Spawns `command` and drains both of its pipes continuously, so it never blocks on a full one.
pub(super) fn spawn_piped(mut command: Command, what: &str) -> Piped {
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&stderr);
    let (closed_tx, stderr_closed) = watch::channel(false);
    let (len_tx, stderr_len) = watch::channel(0usize);
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut collected = sink.lock().expect("stderr lock");
            collected.extend_from_slice(&buf[..n]);
            len_tx.send_replace(collected.len());
        }
        closed_tx.send_replace(true);
    });
    Piped {
        child,
        lines,
        stderr,
        stderr_closed,
        stderr_len,
    }
}

/// Where a [`Listener`] keeps its captures: a directory of its own, or the test's.
enum DataDir {
    Own(tempfile::TempDir),
    Given(PathBuf),
}

/// A running `hooks listen --json` process that printed its ready line.
pub struct Listener {
    /// The public URL of the channel, from the ready line.
    pub url: String,
    /// The channel name, from the ready line.
    pub channel: String,
    /// The whole ready line.
    pub ready: Value,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_closed: watch::Receiver<bool>,
    stderr_len: watch::Receiver<usize>,
    child: Child,
    data_dir: DataDir,
}

/// Starts `hooks listen --json <args>` and waits for its `{"type":"ready",…}` line.
pub async fn spawn_listen(args: &[&str]) -> Listener {
    spawn_listen_env(args, &[]).await
}

/// [`spawn_listen`] with extra environment variables, e.g. `HOOKS_TOKEN`.
pub async fn spawn_listen_env(args: &[&str], env: &[(&str, &str)]) -> Listener {
    let data_dir = DataDir::Own(tempfile::tempdir().expect("temp data dir"));
    match start_listen(data_dir, args, env, None).await {
        Ok(listener) => listener,
        Err(message) => panic!("{message}"),
    }
}

/// [`spawn_listen_in`] run in the folder `cwd` (where it looks for a `hooks.toml`), with `env`.
pub async fn spawn_listen_at(
    data_dir: &Path,
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Listener {
    let data_dir = DataDir::Given(data_dir.to_owned());
    match start_listen(data_dir, args, env, Some(cwd)).await {
        Ok(listener) => listener,
        Err(message) => panic!("{message}"),
    }
}

/// [`spawn_listen`] with its captures in `data_dir`, which the test reads or shares between
/// runs.
pub async fn spawn_listen_in(data_dir: &Path, args: &[&str]) -> Listener {
    match start_listen(DataDir::Given(data_dir.to_owned()), args, &[], None).await {
        Ok(listener) => listener,
        Err(message) => panic!("{message}"),
    }
}

/// [`spawn_listen`], but a `hooks listen` that does not become ready is an `Err` carrying why,
/// its exit status and its stderr, for tests where a refusal can be expected (a channel the
/// relay has not released yet).
pub async fn try_spawn_listen(args: &[&str]) -> Result<Listener, String> {
    let data_dir = DataDir::Own(tempfile::tempdir().expect("temp data dir"));
    start_listen(data_dir, args, &[], None).await
}

/// Starts `hooks listen --json <args>` with `env` (in `cwd`, if given) and waits for its ready
/// line.
async fn start_listen(
    data_dir: DataDir,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: Option<&Path>,
) -> Result<Listener, String> {
    let mut full = vec!["listen", "--json"];
    full.extend_from_slice(args);
    let path = match &data_dir {
        DataDir::Own(dir) => dir.path(),
        DataDir::Given(path) => path.as_path(),
    };
    let mut command = hooks_command(&full, path);
    command.envs(env.iter().copied());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut piped = spawn_piped(command, "hooks listen");
    let problem = match tokio::time::timeout(STEP_TIMEOUT, piped.lines.recv()).await {
        Ok(Some(line)) => match parse_ready(&line) {
            Ok((ready, url, channel)) => {
                return Ok(Listener {
                    url,
                    channel,
                    ready,
                    lines: piped.lines,
                    stderr: piped.stderr,
                    stderr_closed: piped.stderr_closed,
                    stderr_len: piped.stderr_len,
                    child: piped.child,
                    data_dir,
                })
            }
            Err(problem) => problem,
        },
        Ok(None) => "hooks listen closed stdout".to_owned(),
        Err(_) => format!("no stdout line from hooks listen within {STEP_TIMEOUT:?}"),
    };
    // Stdout is closed or useless: let the process finish saying why, within reason.
    let status = match tokio::time::timeout(Duration::from_secs(5), piped.child.wait()).await {
        Ok(Ok(status)) => format!("exited with {status}"),
        Ok(Err(e)) => format!("status unknown: {e}"),
        Err(_) => "still running".to_owned(),
    };
    let stderr = piped.collected_stderr().await;
    Err(format!(
        "{problem}\n--- hooks listen ({status}) stderr ---\n{stderr}"
    ))
}

/// The ready line, its `url` and its `channel`; `Err` says what is wrong with the line.
fn parse_ready(line: &str) -> Result<(Value, String, String), String> {
    let ready = match serde_json::from_str::<Value>(line) {
        Ok(value) if value.is_object() => value,
        _ => return Err(format!("stdout line is not a JSON object: {line:?}")),
    };
    if ready["type"] != "ready" {
        return Err(format!("first stdout line is not a ready line: {ready}"));
    }
    let field = |name: &str| match ready[name].as_str() {
        Some(value) => Ok(value.to_owned()),
        None => Err(format!("ready line has no string {name:?}: {ready}")),
    };
    let url = field("url")?;
    let channel = field("channel")?;
    Ok((ready, url, channel))
}

impl Listener {
    /// What the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    /// Waits (at most [`STEP_TIMEOUT`]) until stderr holds `needle` `count` times, looking
    /// again each time it grows; returns stderr.
    pub async fn wait_for_stderr(&mut self, needle: &str, count: usize) -> String {
        let mut len = self.stderr_len.clone();
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            // Marked seen before reading, so what arrives meanwhile wakes the wait.
            len.borrow_and_update();
            let stderr = self.stderr();
            if stderr.matches(needle).count() >= count {
                return stderr;
            }
            match tokio::time::timeout_at(deadline, len.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    self.fail(&format!("stderr never said {needle:?} {count} time(s)"))
                }
            }
        }
    }

    /// Fails the test with `message` and the process's stderr.
    #[track_caller]
    pub fn fail(&mut self, message: &str) -> ! {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("exited with {status}"),
            Ok(None) => "still running".to_owned(),
            Err(e) => format!("status unknown: {e}"),
        };
        panic!(
            "{message}\n--- hooks listen ({status}) stderr ---\n{}",
            self.stderr()
        );
    }

    /// The next stdout line, which must be one JSON object.
    pub async fn next_json(&mut self) -> Value {
        let line = match tokio::time::timeout(STEP_TIMEOUT, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => self.fail("hooks listen closed stdout"),
            Err(_) => self.fail(&format!(
                "no stdout line from hooks listen within {STEP_TIMEOUT:?}"
            )),
        };
        match serde_json::from_str::<Value>(&line) {
            Ok(value) if value.is_object() => value,
            _ => self.fail(&format!("stdout line is not a JSON object: {line:?}")),
        }
    }

    /// The next stdout line, which must be a `request` line; by then its capture is committed
    /// (the capture comes first).
    pub async fn next_request(&mut self) -> Value {
        self.next_requests(1).await.remove(0)
    }

    /// The next `n` stdout lines, each of which must be a `request` line.
    pub async fn next_requests(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let line = self.next_json().await;
            if line["type"] != "request" {
                self.fail(&format!("expected a request line, got {line}"));
            }
            out.push(line);
        }
        out
    }

    /// The next raw stdout line, or `None` once stdout is closed.
    pub async fn next_line_or_eof(&mut self) -> Option<String> {
        match tokio::time::timeout(STEP_TIMEOUT, self.lines.recv()).await {
            Ok(line) => line,
            Err(_) => self.fail("hooks listen neither printed nor closed stdout"),
        }
    }

    /// Sends SIGTERM, as a service manager or `kill` would.
    pub fn terminate(&mut self) {
        let Some(pid) = self.child.id() else {
            self.fail("hooks listen already exited");
        };
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        if !status.as_ref().is_ok_and(|s| s.success()) {
            self.fail(&format!("could not send SIGTERM to {pid}: {status:?}"));
        }
    }

    /// Waits for the process to exit and returns its code.
    pub async fn wait_exit(&mut self) -> Option<i32> {
        match tokio::time::timeout(STEP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            Ok(Err(e)) => self.fail(&format!("could not wait for hooks listen: {e}")),
            Err(_) => self.fail("hooks listen did not exit"),
        }
    }

    /// Everything the process wrote on stderr, once stderr is closed (after it exited). Right
    /// after an exit, [`Listener::stderr`] may still miss the last lines in the pipe.
    pub async fn final_stderr(&self) -> String {
        let mut closed = self.stderr_closed.clone();
        within("hooks listen to close its stderr", closed.wait_for(|&c| c))
            .await
            .expect("the stderr reader says when it is done");
        self.stderr()
    }

    /// The data directory this `hooks listen` keeps its capture store in.
    pub fn data_dir(&self) -> &Path {
        match &self.data_dir {
            DataDir::Own(dir) => dir.path(),
            DataDir::Given(path) => path,
        }
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would, and waits until it is
    /// gone (so its sockets are closed).
    pub async fn kill(&mut self) {
        if let Err(e) = self.child.start_kill() {
            self.fail(&format!("could not send SIGKILL to hooks listen: {e}"));
        }
        self.wait_exit().await;
    }
}
