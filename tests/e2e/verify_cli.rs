//! `hooks verify` as a user runs it: the real binary, a raw request file (or stdin), exit codes,
//! the printed verdict and reason, `--json`, and usage errors in full.

use std::path::PathBuf;

use hooks::verify::Provider;

use crate::signing::{at, fixture, Request, NOW};
use crate::support::cli::hooks;

const BODY: &[u8] = b"{\n  \"action\": \"opened\"\n}\n";

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A GitHub delivery of [`BODY`] signed with `github-secret`.
fn github_request() -> Request {
    let fx = fixture(Provider::GitHub);
    let mut request = fx.signed(BODY, at(NOW));
    request.remove_header("Content-Type");
    request
}

fn github_secret() -> String {
    fixture(Provider::GitHub).keys.verify.expose().to_owned()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut assert_cmd::Command) -> Run {
    let output = cmd.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn a_valid_request_exits_0_and_says_which_provider_was_assumed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "hook.http", &github_request().to_raw());
    let out = run(hooks()
        .args(["verify", "--secret", &github_secret()])
        .arg(&file));
    assert_eq!(
        out.stdout,
        "valid (github, assumed from X-Hub-Signature-256)\n"
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
}

#[test]
fn a_reserialised_body_exits_1_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut request = github_request();
    request.body = br#"{"action":"opened"}"#.to_vec();
    let file = write(&dir, "hook.http", &request.to_raw());
    let out = run(hooks()
        .args([
            "verify",
            "--provider",
            "github",
            "--secret",
            &github_secret(),
        ])
        .arg(&file));
    assert_eq!(
        out.stdout,
        "invalid (github): body differs from what was signed (was it parsed and re-serialised?)\n"
    );
    assert_eq!(out.code, 1);
}

#[test]
fn an_old_stripe_event_is_expired_at_now_and_valid_at_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(Provider::Stripe);
    let file = write(&dir, "stripe.http", &fx.signed(BODY, at(NOW)).to_raw());
    let secret = fx.keys.verify.expose().to_owned();
    let later = (NOW + 412).to_string();
    let out = run(hooks()
        .args(["verify", "--secret", &secret, "--at", &later])
        .arg(&file));
    assert_eq!(
        out.stdout,
        "expired (stripe, assumed from Stripe-Signature): timestamp is 412 s old; stripe allows 300 s\n"
    );
    assert_eq!(out.code, 1);
    let out = run(hooks()
        .args([
            "verify",
            "--secret",
            &secret,
            "--at",
            &later,
            "--tolerance",
            "10m",
        ])
        .arg(&file));
    assert_eq!(out.code, 0, "{}", out.stdout);
    let out = run(hooks()
        .args(["verify", "--secret", &secret, "--at", &NOW.to_string()])
        .arg(&file));
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn unsigned_requests_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "plain.http",
        b"POST /hook HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\n\r\n{}",
    );
    let out = run(hooks().args(["verify", "--secret", "s"]).arg(&file));
    assert_eq!(
        out.stdout,
        "unsigned: no signature header of a known provider (name the provider with --provider)\n"
    );
    assert_eq!(out.code, 1);
    let out = run(hooks()
        .args(["verify", "--secret", "s", "--provider", "slack"])
        .arg(&file));
    assert_eq!(
        out.stdout,
        "unsigned (slack): no X-Slack-Signature header\n"
    );
    assert_eq!(out.code, 1);
}

#[test]
fn json_prints_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "hook.http", &github_request().to_raw());
    let out = run(hooks()
        .args(["verify", "--json", "--secret", "wrong-secret"])
        .arg(&file));
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout.lines().count(), 1);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["provider"], "github");
    assert_eq!(report["verdict"], "invalid");
    assert_eq!(report["assumed"], true);
    assert_eq!(report["detected_from"], "X-Hub-Signature-256");
    assert_eq!(
        report["reason"],
        "signature does not match: wrong secret, or the body differs from what was signed (was it parsed and re-serialised?)"
    );
    let out = run(hooks()
        .args(["verify", "--json", "--secret", &github_secret()])
        .arg(&file));
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (out.code, &report["verdict"], &report["reason"]),
        (0, &"valid".into(), &serde_json::Value::Null)
    );
}

#[test]
fn the_request_can_come_from_stdin_and_the_secret_from_the_environment() {
    let out = run(hooks()
        .args(["verify", "-"])
        .env("HOOKS_SECRET", github_secret())
        .write_stdin(github_request().to_raw()));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "valid (github, assumed from X-Hub-Signature-256)\n")
    );
}

#[test]
fn any_of_several_secrets_may_match() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "hook.http", &github_request().to_raw());
    let out = run(hooks()
        .args([
            "verify",
            "--secret",
            "old-secret",
            "--secret",
            &github_secret(),
        ])
        .arg(&file));
    assert_eq!(out.code, 0, "{}", out.stdout);
    let out = run(hooks()
        .args([
            "verify",
            "--secret",
            "old-secret",
            "--secret",
            "older-secret",
        ])
        .arg(&file));
    assert!(out.stdout.starts_with("invalid (github, assumed from X-Hub-Signature-256): signature matches none of the 2 secrets"), "{}", out.stdout);
}

#[test]
fn secrets_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "hook.http", &github_request().to_raw());
    let secret = "s3cr3t-value-7f3a";
    for json in [false, true] {
        let mut cmd = hooks();
        cmd.args(["verify", "--secret", secret]).arg(&file);
        if json {
            cmd.arg("--json");
        }
        let out = run(&mut cmd);
        assert_eq!(out.code, 1);
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    }
    let out = run(hooks()
        .args(["verify", "--help"])
        .env("HOOKS_SECRET", secret));
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("HOOKS_SECRET"), "{}", out.stdout);
    assert!(!out.stdout.contains(secret));
}

#[test]
fn coverage_notes_go_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(Provider::Mailgun);
    let request = fx.signed(br#"{"event-data":{"event":"delivered"}}"#, at(NOW));
    let file = write(&dir, "mailgun.http", &request.to_raw());
    let out = run(hooks()
        .args(["verify", "--secret", fx.keys.verify.expose()])
        .arg(&file));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "valid (mailgun, assumed from body)\n")
    );
    assert_eq!(
        out.stderr,
        "note: mailgun signs the timestamp and token only; the body is not covered\n"
    );
}

#[test]
fn the_url_defaults_to_https_host_and_target() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(Provider::Square);
    let request = fx.signed(BODY, at(NOW));
    let file = write(&dir, "square.http", &request.to_raw());
    let secret = fx.keys.verify.expose().to_owned();
    // The fixture's URL is https://hooks.example.com/square?x=1, which Host + target rebuild.
    let out = run(hooks().args(["verify", "--secret", &secret]).arg(&file));
    assert_eq!(out.code, 0, "{}", out.stdout);
    let out = run(hooks()
        .args([
            "verify",
            "--secret",
            &secret,
            "--url",
            "https://elsewhere.example/square?x=1",
        ])
        .arg(&file));
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("give it with --url"), "{}", out.stdout);
}

#[test]
fn usage_errors_exit_2_with_the_whole_message() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "hook.http", &github_request().to_raw());
    let missing = dir.path().join("missing.http");
    let out = run(hooks().args(["verify", "--secret", "s"]).arg(&missing));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!(
            "hooks: error: could not read {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );

    let junk = write(&dir, "junk.http", b"hello world\n");
    let out = run(hooks().args(["verify", "--secret", "s"]).arg(&junk));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!(
            "hooks: error: {} is not an HTTP/1.1 request: line 1: expected a request line like \"POST /webhooks HTTP/1.1\"\n",
            junk.display()
        )
    );

    let discord = fixture(Provider::Discord).signed(BODY, at(NOW));
    let discord_file = write(&dir, "discord.http", &discord.to_raw());
    let out = run(hooks()
        .args(["verify", "--secret", "whsec_abc"])
        .arg(&discord_file));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "hooks: error: cannot check the discord signature: the secret is not a Discord public key: expected the application's 64 hex characters\n"
    );

    let out = run(hooks()
        .args(["verify", "--secret", "s", "--provider", "strype"])
        .arg(&good));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("invalid value 'strype' for '--provider <NAME>': unknown provider \"strype\"; expected one of: stripe, github, standard-webhooks,"),
        "{}",
        out.stderr
    );

    let out = run(hooks().arg("verify").arg(&good));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--secret <SECRET>"), "{}", out.stderr);

    let out = run(hooks().args(["verify", "--secret", ""]).arg(&good));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("the secret is empty"), "{}", out.stderr);

    let out = run(hooks()
        .args(["verify", "--secret", "s", "--tolerance", "soon"])
        .arg(&good));
    assert_eq!(out.code, 2);
}
