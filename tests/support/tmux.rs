//! A terminal for end-to-end tests of the inspector: a private tmux server (its own socket in a
//! temporary directory) with one pane running `sh` in a clean environment. Tests type into it
//! and wait for what it shows by polling `tmux capture-pane` until a deadline: waiting for an
//! event, never a fixed sleep.
//!
//! A command is typed only when the shell waits for one ([`Pane::fresh_prompt`]): text typed
//! ahead is echoed at once by the terminal, before the shell prints its prompt, and then what
//! the command prints (after the inspector gives the screen back, the cursor where the command
//! started) follows that prompt on its line instead of starting a line of its own.
//!
//! tmux is a Debian package (`.ci/run` installs it when missing); a test that cannot find it
//! fails saying so rather than passing without having run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::cli::empty_home;
use super::STEP_TIMEOUT;

/// The shell prompt in the pane, so tests can tell when a command has finished.
pub const PROMPT: &str = "ready$ ";

/// One tmux pane running `sh`.
pub struct Pane {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    /// How many fresh prompts were asked for, so that each one's mark is new.
    prompts: AtomicU32,
}

impl Pane {
    /// A `columns` × `lines` pane whose shell has only `env` (and `PATH`, a `HOME` with no
    /// config, `TERM`), with `hooks` on its `PATH`; returned once the shell waits for a command.
    pub async fn start(columns: u16, lines: u16, env: &[(&str, &str)]) -> Pane {
        let version = Command::new("tmux").arg("-V").output();
        if !version.is_ok_and(|v| v.status.success()) {
            panic!("these tests drive the inspector in tmux, which is not installed: apt-get install tmux");
        }
        let dir = tempfile::tempdir().expect("a directory for the tmux socket");
        let socket = dir.path().join("tmux.sock");
        let hooks = Path::new(env!("CARGO_BIN_EXE_hooks"));
        let bin = hooks.parent().expect("the binary's directory");
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
        let mut shell = vec![
            "env".to_owned(),
            "-i".to_owned(),
            format!("PATH={path}"),
            format!("HOME={}", empty_home().display()),
            "TERM=tmux-256color".to_owned(),
            format!("PS1={PROMPT}"),
        ];
        shell.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        shell.push("sh".to_owned());
        let pane = Pane {
            _dir: dir,
            socket,
            prompts: AtomicU32::new(0),
        };
        let size = [columns.to_string(), lines.to_string()];
        let mut args = vec!["-f", "/dev/null", "new-session", "-d", "-s", "t"];
        args.extend(["-x", &size[0], "-y", &size[1]]);
        args.extend(shell.iter().map(String::as_str));
        pane.tmux(&args);
        // OSC 52 from the pane becomes a tmux buffer, which the tests read.
        pane.tmux(&["set-option", "-g", "set-clipboard", "on"]);
        pane.fresh_prompt().await;
        pane
    }

    /// Clears the screen and waits until the shell prints its prompt after a mark of its own:
    /// the shell then waits for a command with nothing typed ahead, so the next command starts
    /// a line of its own and what it prints does too. A prompt already on the screen proves
    /// nothing: the shell may not have read what was typed last (issue 20's flaky test).
    pub async fn fresh_prompt(&self) {
        let n = self.prompts.fetch_add(1, Ordering::Relaxed);
        let mark = format!("fresh-prompt-{n}");
        self.run(&format!("clear; echo {mark}"));
        let prompt = PROMPT.trim_end();
        self.wait_for(&format!("the prompt after {mark}"), |s| {
            let shown: Vec<&str> = s
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty())
                .collect();
            shown == [mark.as_str(), prompt]
        })
        .await;
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Types `text` as it is.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Presses keys by tmux's names: `Enter`, `Escape`, `Tab`, `C-c`, `q`.
    pub fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types `command` and Enter.
    pub fn run(&self, command: &str) {
        self.type_text(command);
        self.press(&["Enter"]);
    }

    /// What the pane shows now.
    pub fn screen(&self) -> String {
        let output = self.tmux(&["capture-pane", "-p", "-t", "t"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the pane shows what `done` looks for, and returns the screen; fails with
    /// `what` and the screen after [`STEP_TIMEOUT`].
    pub async fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; the pane shows:\n{screen}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the pane shows `text`.
    pub async fn wait_for_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?} on screen"), |s| s.contains(text))
            .await
    }

    /// The newest tmux buffer (what the last OSC 52 copied), if any.
    pub fn clipboard(&self) -> Option<String> {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["show-buffer"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The process id of the pane's shell.
    pub fn shell_pid(&self) -> u32 {
        let output = self.tmux(&["display-message", "-p", "-t", "t", "#{pane_pid}"]);
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("tmux prints the pane's pid")
    }

    /// Waits for the shell's prompt after a command ended, then checks with `stty -a` that
    /// the terminal is back in its usual mode (canonical input, echo). The command must have
    /// been typed at a [`Pane::fresh_prompt`]: the prompt then stands alone on the last line
    /// only once the shell printed it anew (before, the last line is the command's).
    pub async fn assert_terminal_restored(&self) {
        self.wait_for("the shell's prompt", |s| {
            last_line(s).trim_end() == PROMPT.trim_end()
        })
        .await;
        self.run(
            "clear; stty -a | tr ' ' '\\n' | grep -E -x -e '-?(icanon|echo|isig)'; echo stty-done",
        );
        let screen = self
            .wait_for("stty's settings", |s| s.lines().any(|l| l == "stty-done"))
            .await;
        for setting in ["icanon", "echo", "isig"] {
            assert!(
                screen.lines().any(|line| line.trim() == setting),
                "{setting} is off after the inspector ended:\n{screen}"
            );
        }
    }
}

/// The last line that is not blank.
pub fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}
