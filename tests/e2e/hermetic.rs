//! The harness ignores the developer's own configuration (issue 18): a `config.toml` in the home
//! or config directory, or `HOOKS_RELAY` in the environment, that points at a real relay would
//! otherwise send the tests' `hooks listen` there, with the developer's channel and token.
//!
//! The proof runs this test binary again in a polluted environment (the only way to give the
//! harness a parent environment of the test's choosing without changing this process's): first
//! it checks the pollution works on a `hooks` that inherits it, then that `hooks listen` started
//! by the harness's builder does not see it.

use std::path::Path;
use std::process::Output;

use crate::support::*;

/// The test the polluted copy of this binary runs.
const INNER: &str = "hermetic::inner_listen_started_by_the_builder_uses_its_embedded_relay";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_the_developers_configuration_does_not_reach_hooks_started_by_the_harness() {
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let xdg = dir.path().join("xdg");
    let config = format!("relay = \"{closed}\"\ntoken = \"developer-token\"\n");
    for folder in [home.join(".config/hooks"), xdg.join("hooks")] {
        std::fs::create_dir_all(&folder).expect("config folder");
        std::fs::write(folder.join("config.toml"), &config).expect("write config.toml");
    }
    let home = home.to_str().expect("UTF-8 path");
    let xdg = xdg.to_str().expect("UTF-8 path");
    let polluted: [(&str, Vec<(&str, &str)>); 3] = [
        ("a config.toml in HOME", vec![("HOME", home)]),
        (
            "a config.toml in XDG_CONFIG_HOME",
            vec![("HOME", "/nonexistent"), ("XDG_CONFIG_HOME", xdg)],
        ),
        (
            "HOOKS_RELAY and HOOKS_TOKEN",
            vec![
                ("HOME", "/nonexistent"),
                ("HOOKS_RELAY", &closed),
                ("HOOKS_TOKEN", "developer-token"),
            ],
        ),
    ];
    for (what, env) in polluted {
        let mut env = env;
        env.extend([
            ("NO_COLOR", "1"),
            ("TERM", "xterm-256color"),
            ("RUST_LOG", "trace"),
        ]);

        // The pollution works: a `hooks listen` that inherits it goes to the closed port.
        let inherited = listen_inheriting(&env, dir.path()).await;
        let stderr = String::from_utf8_lossy(&inherited.stderr);
        assert_ne!(inherited.status.code(), Some(0), "{what}: {stderr}");
        assert!(stderr.contains(&closed), "{what}: {stderr}");

        // The harness's builder does not let it through.
        let inner = rerun_inner(&env);
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&inner.stdout),
            String::from_utf8_lossy(&inner.stderr)
        );
        assert!(inner.status.success(), "{what}:\n{printed}");
        assert!(
            printed.contains("1 passed"),
            "{what}: ran the test\n{printed}"
        );
    }
    // Nothing wrote in the home every process shares.
    let written: Vec<_> = std::fs::read_dir(crate::support::cli::empty_home())
        .expect("the empty home exists")
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

/// `hooks listen` with exactly `env` (and a data directory), as a process that inherits it
/// would run. It gives up at once on a relay it cannot reach; one that embeds its own relay
/// instead runs until it is killed, at the deadline.
async fn listen_inheriting(env: &[(&str, &str)], data: &Path) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hooks"));
    command
        .args(["listen", "--forward-to", "9"])
        .env_clear()
        .env("HOOKS_DATA_DIR", data)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let what = format!("hooks listen with {env:?} to give up on the closed port");
    within(&what, command.output())
        .await
        .expect("run hooks listen")
}

/// This test binary, running only [`INNER`], with `env` added to this process's environment.
fn rerun_inner(env: &[(&str, &str)]) -> Output {
    let this = std::env::current_exe().expect("the test binary's path");
    let mut command = std::process::Command::new(this);
    command
        .args(["--exact", INNER, "--ignored", "--test-threads", "1"])
        .env_remove("XDG_CONFIG_HOME")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null());
    command.output().expect("run the test binary again")
}

/// Run by the test above in a polluted environment: `hooks listen` without `--relay`, started
/// by the builder, still embeds its own relay and forwards through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by issue_18_the_developers_configuration_does_not_reach_hooks_started_by_the_harness"]
async fn inner_listen_started_by_the_builder_uses_its_embedded_relay() {
    let app = App::start(|r| Answer::ok(r.body.clone())).await;
    let mut listener = spawn_listen(&["--forward-to", &app.port().to_string()]).await;
    assert_eq!(listener.ready["embedded_relay"], true, "{}", listener.ready);
    let reply = Sender::default()
        .post(&format!("{}/hermetic", listener.url), "mine")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(app.wait_for(1).await[0].body, "mine");
    let line = listener.next_request().await;
    assert_eq!(line["status"], 200, "{line}");
}
