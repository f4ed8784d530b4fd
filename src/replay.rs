//! `hooks replay`: loads captures from the store, sends each one again through the forwarder,
//! and records and prints the new exchange as a capture marked `replay_of`.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Instant;

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use relay_server::protocol::{self, Header};
use tokio_util::sync::CancellationToken;

use crate::cli::ReplayArgs;
use crate::exchange::{display_path, now_ms, CaptureId, Exchange, Outcome, Request};
use crate::forward::{self, ForwardError, Forwarder};
use crate::inspect::{cut_line, sanitize, sanitize_lines};
use crate::routes::{self, Route, Routes};
use crate::store::{self, Retention, Store, StoreError, Writer};
use crate::target::Target;
use crate::verify::{self, Provider, Secret};
use crate::UsageError;

/// Runs `hooks replay`. Fails when a target did not answer (any status is an answer).
pub async fn replay(args: ReplayArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut failed: Vec<(CaptureId, String)> = Vec::new();
    let total = replay_each(&args, &shutdown, |done| {
        print(&done.new, args.json)?;
        if let Some(reason) = done.failure {
            failed.push((done.id, reason));
        }
        Ok(())
    })
    .await?;
    report(failed, total)
}

/// One capture sent again.
pub struct Replayed {
    /// The capture's id.
    pub id: CaptureId,
    /// The capture as it was sent (re-signed and with `--header`s, when asked).
    pub original: Exchange,
    /// The new exchange, as recorded (its `id` set).
    pub new: Exchange,
    /// Why the target did not answer, when it did not.
    pub failure: Option<String>,
}

/// Sends every capture `args` select again, oldest first, records each new exchange and hands
/// it to `visit` (which prints it: a line, or `--check`'s verdict); returns how many there were.
pub async fn replay_each(
    args: &ReplayArgs,
    shutdown: &CancellationToken,
    mut visit: impl FnMut(Replayed) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let path = store::path()?;
    let (store, ids) = select(path.clone(), args).await?;
    let writer = blocking(move || {
        let conn = Store::open(&path)?.into_connection();
        Writer::spawn(conn, path, Retention::default())
    })
    .await?;
    let mut forwarders: HashMap<String, Forwarder> = HashMap::new();
    let mut book = RouteBook::new(args.project.clone());
    let mut store = store;
    for &id in &ids {
        if shutdown.is_cancelled() {
            return Err(anyhow!("interrupted"));
        }
        let (back, mut capture) = with_store(store, move |s| s.get(id)).await?;
        store = back;
        let route = book.route_of(&capture, args)?;
        let (target, path) = destination(&capture, route.as_ref(), args.to.as_ref())?;
        let key = target.to_string();
        if !forwarders.contains_key(&key) {
            let forwarder = Forwarder::new(target.clone(), protocol::DEFAULT_MAX_BODY)?;
            forwarders.insert(key.clone(), forwarder);
        }
        let forwarder = &forwarders[&key];
        if args.resign {
            let url = public_url(&capture, &target);
            let (secret, provider) = signing(args, route.as_ref())?;
            resign_with(&mut capture.request, &url, &secret, provider)
                .with_context(|| format!("could not re-sign capture #{id}"))?;
        }
        let headers = prepare(&capture.request, &args.header);
        let (mut record, error) = send(forwarder, &capture, &path, headers).await;
        record.route = route.map(|route| route.name);
        let new = record_replay(&writer, record).await?;
        visit(Replayed {
            id,
            original: capture,
            new,
            failure: error.map(|e| describe(&e, forwarder.target())),
        })?;
    }
    Ok(ids.len())
}

/// Sends `capture` again through `forwarder`, as captured, and records the new exchange: the
/// new capture, and why the target did not answer when it did not. Prints nothing (MCP's
/// `replay_capture` uses it; its stdout is the protocol's).
pub async fn replay_one(
    capture: &Exchange,
    forwarder: &Forwarder,
    writer: &Writer,
) -> anyhow::Result<(Exchange, Option<String>)> {
    let headers = prepare(&capture.request, &[]);
    let (record, error) = send(forwarder, capture, &capture.request.path, headers).await;
    let new = record_replay(writer, record).await?;
    Ok((new, error.map(|e| describe(&e, forwarder.target()))))
}

/// Where `capture` goes again, and the request target sent there: `to` with the path as
/// captured, else its route's target with the route's prefix taken off, else where it went.
fn destination(
    capture: &Exchange,
    route: Option<&Route>,
    to: Option<&Target>,
) -> anyhow::Result<(Target, String)> {
    let path = &capture.request.path;
    Ok(match (to, route) {
        (Some(target), _) => (target.clone(), path.clone()),
        (None, Some(route)) => {
            let stripped = routes::strip(path, route.strip_prefix.as_deref());
            (route.to.clone(), stripped.into_owned())
        }
        (None, None) => (crate::export::original_target(capture)?, path.clone()),
    })
}

/// The routes replays follow: the project file's, read when a capture first needs them.
struct RouteBook {
    given: Option<std::path::PathBuf>,
    routes: Option<Routes>,
}

impl RouteBook {
    fn new(given: Option<std::path::PathBuf>) -> RouteBook {
        RouteBook {
            given,
            routes: None,
        }
    }

    /// The route `capture` went through, as the project file has it now, when the replay
    /// needs it (no `--to`, or `--resign` without `--secret`); a route the file no longer has
    /// is said on stderr, and the capture goes where it went before.
    fn route_of(&mut self, capture: &Exchange, args: &ReplayArgs) -> anyhow::Result<Option<Route>> {
        let needed = args.to.is_none() || (args.resign && args.secrets.is_empty());
        let Some(name) = capture.route.as_deref().filter(|_| needed) else {
            return Ok(None);
        };
        let routes = match &mut self.routes {
            Some(routes) => routes,
            empty => empty.insert(routes::project::for_session(
                self.given.as_deref(),
                false,
                &[],
                None,
            )?),
        };
        let route = routes.named(name).cloned();
        if route.is_none() {
            let file = routes
                .file
                .as_deref()
                .map_or_else(|| "no hooks.toml".to_owned(), |f| f.display().to_string());
            eprintln!(
                "hooks: capture #{} went through route {} ({file} has no such route now); \
                 replaying to its recorded target",
                capture.number(),
                sanitize(name)
            );
        }
        Ok(route)
    }
}

/// The ids to replay, oldest first, and the open store.
async fn select(
    path: std::path::PathBuf,
    args: &ReplayArgs,
) -> anyhow::Result<(Store, Vec<CaptureId>)> {
    let reference = args.id;
    let query = crate::list::query(&args.filters, true)?;
    let (store, ids) = blocking(move || {
        let store = Store::open(&path)?;
        let ids = match reference {
            Some(reference) => vec![store.resolve(reference)?],
            None => store.ids(query.as_ref())?,
        };
        Ok((store, ids))
    })
    .await?;
    if ids.is_empty() {
        return Err(anyhow!("no captures match"));
    }
    Ok((store, ids))
}

/// Runs store work on a blocking thread (SQLite blocks).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> anyhow::Result<T> {
    let result = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| anyhow!("the capture store's task failed: {e}"))?;
    Ok(result?)
}

/// Runs `work` on `store` on a blocking thread and hands the store back.
async fn with_store<T: Send + 'static>(
    store: Store,
    work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> anyhow::Result<(Store, T)> {
    let (store, result) = tokio::task::spawn_blocking(move || {
        let result = work(&store);
        (store, result)
    })
    .await
    .map_err(|e| anyhow!("the capture store's task failed: {e}"))?;
    Ok((store, result?))
}

/// The URL the provider called, which Twilio, Square and HubSpot sign: the channel's public URL
/// and the path, else the target's.
pub(crate) fn public_url(capture: &Exchange, target: &Target) -> String {
    let request = &capture.request;
    match &capture.channel_url {
        Some(base) => format!("{base}{}", request.path),
        None => target.uri_for(&request.path),
    }
}

/// Signs `request` afresh as its provider would now, with `--secret` and `--provider`: see
/// [`resign_with`].
pub(crate) fn resign(request: &mut Request, url: &str, args: &ReplayArgs) -> anyhow::Result<()> {
    let secret = args
        .secrets
        .first()
        .ok_or_else(|| anyhow!("--resign needs --secret"))?;
    resign_with(request, url, secret, args.provider)
}

/// Refuses `--resign` up front (a usage error) when no secret can be had: no `--secret`, and
/// (for captures) no route in the project file with a `secret_env`.
pub fn check_resign(args: &ReplayArgs) -> anyhow::Result<()> {
    if !args.resign || !args.secrets.is_empty() {
        return Ok(());
    }
    if args.dir.is_none() {
        let routes = routes::project::for_session(args.project.as_deref(), false, &[], None)?;
        if routes.routes.iter().any(|route| route.secret_env.is_some()) {
            return Ok(());
        }
    }
    Err(UsageError("--resign needs --secret".into()).into())
}

/// The secret and provider to re-sign with: `--secret` and `--provider`, else those of the
/// capture's route (its `secret_env`'s value).
fn signing(args: &ReplayArgs, route: Option<&Route>) -> anyhow::Result<(Secret, Option<Provider>)> {
    let provider = args.provider.or(route.and_then(|r| r.provider));
    if let Some(secret) = args.secrets.first() {
        return Ok((secret.clone(), provider));
    }
    let Some((route, name)) = route.and_then(|r| Some((r, r.secret_env.as_deref()?))) else {
        return Err(UsageError("--resign needs --secret".into()).into());
    };
    match std::env::var(name).ok().filter(|secret| !secret.is_empty()) {
        Some(secret) => Ok((Secret::new(secret), provider)),
        None => Err(UsageError(format!(
            "--resign needs --secret, or {name} (secret_env of route {}) set",
            route.name
        ))
        .into()),
    }
}

/// Signs `request` afresh as `provider` would now (default: the provider recognised from the
/// headers): the signature headers are replaced (the first of each name keeps its place), and for
/// the schemes that sign inside the body (Mailgun, Linear's timestamp) the body too. What the
/// inspector's `R` does.
pub(crate) fn resign_with(
    request: &mut Request,
    url: &str,
    secret: &Secret,
    provider: Option<Provider>,
) -> anyhow::Result<()> {
    let signed = {
        let pairs: Vec<(&str, &[u8])> = request
            .headers
            .iter()
            .map(|h| (h.name.as_str(), &h.value[..]))
            .collect();
        let input = verify::VerifyInput {
            method: &request.method,
            url,
            headers: &pairs,
            body: &request.body,
        };
        let provider = match provider {
            Some(provider) => provider,
            None => verify::detect(&input).map(|d| d.provider).ok_or_else(|| {
                anyhow!("no provider's signature in the capture; name it with --provider")
            })?,
        };
        verify::sign(provider, secret, &input, std::time::SystemTime::now())?
    };
    let overrides: Vec<(String, String)> = signed
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    request.headers = prepare(request, &overrides);
    if let Some(body) = signed.body {
        request.body = Bytes::from(body);
        let length = Bytes::from(request.body.len().to_string());
        for header in request
            .headers
            .iter_mut()
            .filter(|h| h.name == "content-length")
        {
            header.value = length.clone();
        }
    }
    Ok(())
}

/// The headers to send: the captured ones in order, with each `--header` replacing the first
/// header of its name (later ones of that name are dropped) or, if there is none, appended.
/// `Host` is left for the forwarder to set to the target.
pub fn prepare(request: &Request, overrides: &[(String, String)]) -> Vec<Header> {
    let mut headers = request.headers.clone();
    for (name, value) in overrides {
        let value = Bytes::from(value.clone());
        match headers.iter().position(|h| &h.name == name) {
            Some(first) => {
                headers[first].value = value;
                let mut index = 0;
                headers.retain(|h| {
                    index += 1;
                    index - 1 == first || &h.name != name
                });
            }
            None => headers.push(Header {
                name: name.clone(),
                value,
            }),
        }
    }
    headers
}

/// Sends one replay (to `path` under the forwarder's target) and returns its exchange (and the
/// failure, when the target did not answer).
async fn send(
    forwarder: &Forwarder,
    original: &Exchange,
    path: &str,
    headers: Vec<Header>,
) -> (Exchange, Option<ForwardError>) {
    let received_at_ms = now_ms();
    let started = Instant::now();
    let result = forwarder
        .forward(
            &original.request.method,
            path,
            &headers,
            forward::whole(original.request.body.clone()),
        )
        .await;
    let duration = started.elapsed();
    let (outcome, error) = match result {
        Ok(response) => (Outcome::Answered(response), None),
        Err(e) => (Outcome::Failed(e.to_string()), Some(e)),
    };
    let request = Request {
        headers: as_sent(headers, forwarder.target()),
        ..original.request.clone()
    };
    let target = forwarder.target().to_string();
    let replay = Exchange {
        channel: original.channel.clone(),
        event: original.event.clone(),
        replay_of: original.id,
        ..Exchange::new(received_at_ms, target, request, outcome, duration)
    };
    (replay, error)
}

/// The headers as the target got them: `Host` is the target's authority.
fn as_sent(headers: Vec<Header>, target: &Target) -> Vec<Header> {
    let authority = Bytes::from(target.authority.clone());
    headers
        .into_iter()
        .map(|h| match h.name.as_str() {
            "host" => Header {
                name: h.name,
                value: authority.clone(),
            },
            _ => h,
        })
        .collect()
}

async fn record_replay(writer: &Writer, mut replay: Exchange) -> anyhow::Result<Exchange> {
    let pending = writer.record(replay.clone());
    let id = match pending {
        Ok(pending) => pending.await.map_err(|_| StoreError::Closed)?,
        Err(e) => Err(e),
    }
    .context("could not record the replay")?;
    replay.id = Some(id);
    Ok(replay)
}

/// Prints the new capture: one JSON object, or `#13 POST /a → 200 3.1 ms (replay of #5)`.
fn print(capture: &Exchange, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        crate::inspect::sanitize::write_json(&mut out, &crate::show::capture_json(capture))?;
        out.write_all(b"\n")?;
    } else {
        let status = match &capture.outcome {
            Outcome::Answered(response) => response.status.to_string(),
            Outcome::Failed(_) => "no answer".to_owned(),
        };
        let line = format!(
            "#{} {} {} → {status} {:.1} ms (replay of #{})",
            capture.number(),
            sanitize(&capture.request.method),
            sanitize(&display_path(&capture.request.path)),
            capture.duration.as_secs_f64() * 1000.0,
            capture.replay_of.map_or(0, |id| id.0),
        );
        writeln!(out, "{}", cut_line(&line))?;
    }
    out.flush()?;
    Ok(())
}

/// `e` with the hint `listen` gives for it ("is your app listening on 3000?").
pub(crate) fn describe(e: &ForwardError, target: &Target) -> String {
    match e.hint(target) {
        Some(hint) => format!("{e} ({hint})"),
        None => e.to_string(),
    }
}

/// `Ok` when every target answered; else one error naming what failed.
fn report(failed: Vec<(CaptureId, String)>, total: usize) -> anyhow::Result<()> {
    match failed.as_slice() {
        [] => Ok(()),
        [(_, reason)] if total == 1 => Err(anyhow!("{reason}")),
        _ => {
            for (id, reason) in &failed {
                eprintln!("hooks: replay of #{id}: {}", sanitize_lines(reason));
            }
            Err(anyhow!("{} of {total} replays got no answer", failed.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_replaced_in_place_or_appended() {
        let header = |n: &str, v: &str| Header {
            name: n.into(),
            value: Bytes::from(v.to_owned()),
        };
        let request = Request {
            method: "POST".into(),
            path: "/".into(),
            headers: vec![
                header("host", "relay"),
                header("x-dup", "1"),
                header("a", "a"),
                header("x-dup", "2"),
            ],
            body: Bytes::new(),
        };
        let overrides = [
            ("x-dup".to_owned(), "new".to_owned()),
            ("x-added".to_owned(), "v".to_owned()),
        ];
        assert_eq!(
            prepare(&request, &overrides),
            vec![
                header("host", "relay"),
                header("x-dup", "new"),
                header("a", "a"),
                header("x-added", "v"),
            ]
        );
        assert_eq!(prepare(&request, &[]), request.headers);
    }

    #[test]
    fn one_failure_is_the_error_itself() {
        assert!(report(vec![], 3).is_ok());
        let one = report(vec![(CaptureId(5), "could not connect".into())], 1).unwrap_err();
        assert_eq!(one.to_string(), "could not connect");
        let some = report(vec![(CaptureId(5), "x".into())], 3).unwrap_err();
        assert_eq!(some.to_string(), "1 of 3 replays got no answer");
    }
}
