//! `hooks replay --dir DIR --to TARGET [--check]`: the fixtures in a folder (`*.http`, in name
//! order) sent to the target, with no capture store read, created or written, so CI can run a
//! project's committed webhooks against its app. Every fixture is read before any is sent: a
//! malformed one stops the run (exit 2) before the app sees anything.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use relay_server::protocol::{self, Header};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{compare, Checked, Subject, Tally};
use crate::cli::ReplayArgs;
use crate::exchange::{display_path, millis, Outcome, Request};
use crate::fixture::{self, Fixture};
use crate::forward::{self, Forwarder};
use crate::inspect::{cut_line, sanitize, sanitize::write_json, sanitize_lines};
use crate::raw_request::RawRequest;
use crate::replay;
use crate::UsageError;

/// Runs `hooks replay --dir`.
pub async fn run(
    args: &ReplayArgs,
    folder: &Path,
    shutdown: &CancellationToken,
) -> anyhow::Result<ExitCode> {
    let target = args
        .to
        .clone()
        .ok_or_else(|| UsageError("--dir needs --to TARGET".into()))?;
    let fixtures = read(folder, args.check)?;
    let forwarder = Forwarder::new(target, protocol::DEFAULT_MAX_BODY)?;
    let mut tally = Tally::default();
    let mut failed: Vec<(String, String)> = Vec::new();
    for (name, fixture) in &fixtures {
        let mut request = as_request(&fixture.request);
        if args.resign {
            let url = forwarder.target().uri_for(&request.path);
            replay::resign(&mut request, &url, args)
                .with_context(|| format!("could not re-sign {}", sanitize(name)))?;
        }
        let (got, duration) = send(&forwarder, &request, args, shutdown).await?;
        let failure = got.error().map(str::to_owned);
        match &fixture.answer {
            Some(expected) if args.check => {
                let only: Vec<String> = expected.headers.iter().map(|h| h.name.clone()).collect();
                let expected = Outcome::Answered(expected.clone());
                let checked = Checked {
                    subject: Subject::Fixture(name.clone()),
                    verdict: compare(&expected, &got, &args.ignore, Some(&only)),
                    failure,
                };
                checked.print(args.json)?;
                tally.add(&checked.verdict);
            }
            _ => {
                print_sent(name, &request, &got, duration, args.json)?;
                failed.extend(failure.map(|why| (name.clone(), why)));
            }
        }
    }
    if args.check {
        return tally.finish(args.json);
    }
    report(&failed, fixtures.len())
}

/// Every fixture in `folder`, by file name. With `check`, each must hold an expected answer.
fn read(folder: &Path, check: bool) -> Result<Vec<(String, Fixture)>, UsageError> {
    let entries = std::fs::read_dir(folder).map_err(|e| {
        UsageError(format!(
            "could not read the folder {}: {e}",
            folder.display()
        ))
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == fixture::EXTENSION)
                && path.is_file()
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(UsageError(format!(
            "no fixtures (*.{}) in {}: write some with hooks export --where EXPR --format \
             fixture --dir {}",
            fixture::EXTENSION,
            folder.display(),
            folder.display()
        )));
    }
    let mut fixtures = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(&path)
            .map_err(|e| UsageError(format!("could not read {}: {e}", path.display())))?;
        let fixture = fixture::parse(&bytes)
            .map_err(|e| UsageError(format!("{} is not a fixture: {e}", path.display())))?;
        if check && fixture.answer.is_none() {
            return Err(UsageError(format!(
                "{} holds no expected answer (an HTTP/1.1 status line, headers and body after \
                 the request), which --check compares with",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fixtures.push((name, fixture));
    }
    Ok(fixtures)
}

/// The fixture's request as a captured one: header names lowercase, as captures keep them.
fn as_request(raw: &RawRequest) -> Request {
    Request {
        method: raw.method.clone(),
        path: raw.target.clone(),
        headers: raw
            .headers
            .iter()
            .map(|(name, value)| Header {
                name: name.to_ascii_lowercase(),
                value: Bytes::copy_from_slice(value),
            })
            .collect(),
        body: Bytes::copy_from_slice(&raw.body),
    }
}

/// Sends `request` (with `--header`s) and times it: the app's answer, or why there was none
/// with the hint `listen` gives ("is your app listening on 3000?").
async fn send(
    forwarder: &Forwarder,
    request: &Request,
    args: &ReplayArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Outcome, Duration)> {
    let headers = replay::prepare(request, &args.header);
    let started = Instant::now();
    let sent = forwarder.forward(
        &request.method,
        &request.path,
        &headers,
        forward::whole(request.body.clone()),
    );
    let result = tokio::select! {
        result = sent => result,
        () = shutdown.cancelled() => return Err(anyhow!("interrupted")),
    };
    let outcome = match result {
        Ok(response) => Outcome::Answered(response),
        Err(e) => Outcome::Failed(replay::describe(&e, forwarder.target())),
    };
    Ok((outcome, started.elapsed()))
}

/// Prints what a fixture got without `--check`: `NAME POST /a → 200 3.1 ms`, or one JSON
/// object (`fixture`, `status`, `duration_ms`, `error`).
fn print_sent(
    name: &str,
    request: &Request,
    got: &Outcome,
    duration: Duration,
    json: bool,
) -> anyhow::Result<()> {
    let status = got.status();
    let mut out = std::io::stdout().lock();
    if json {
        let mut value = json!({
            "fixture": name,
            "status": status,
            "duration_ms": millis(duration),
        });
        if let Some(failure) = got.error() {
            value["error"] = json!(failure);
        }
        write_json(&mut out, &value)?;
        out.write_all(b"\n")?;
    } else {
        let status = status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
        let line = format!(
            "{name} {} {} → {status} {:.1} ms",
            request.method,
            display_path(&request.path),
            duration.as_secs_f64() * 1000.0
        );
        writeln!(out, "{}", cut_line(&sanitize(&line)))?;
    }
    out.flush()?;
    Ok(())
}

/// `Ok` when every fixture got an answer; else an error naming those that did not.
fn report(failed: &[(String, String)], total: usize) -> anyhow::Result<ExitCode> {
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (name, why) in failed {
        eprintln!("hooks: {}: {}", sanitize(name), sanitize_lines(why));
    }
    Err(anyhow!(
        "{} of {total} fixtures got no answer",
        failed.len()
    ))
}
