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
use crate::store::{self, Retention, Store, StoreError, Writer};
use crate::target::Target;
use crate::verify;

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
    let mut store = store;
    for &id in &ids {
        if shutdown.is_cancelled() {
            return Err(anyhow!("interrupted"));
        }
        let (back, mut capture) = with_store(store, move |s| s.get(id)).await?;
        store = back;
        let target = match &args.to {
            Some(target) => target.clone(),
            None => crate::export::original_target(&capture)?,
        };
        let key = target.to_string();
        if !forwarders.contains_key(&key) {
            let forwarder = Forwarder::new(target.clone(), protocol::DEFAULT_MAX_BODY)?;
            forwarders.insert(key.clone(), forwarder);
        }
        let forwarder = &forwarders[&key];
        if args.resign {
            let url = public_url(&capture, &target);
            resign(&mut capture.request, &url, args)
                .with_context(|| format!("could not re-sign capture #{id}"))?;
        }
        let headers = prepare(&capture.request, &args.header);
        let (record, error) = send(forwarder, &capture, headers).await;
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
    let (record, error) = send(forwarder, capture, headers).await;
    let new = record_replay(writer, record).await?;
    Ok((new, error.map(|e| describe(&e, forwarder.target()))))
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

/// Signs `request` afresh as its provider would now: the signature headers are replaced (the
/// first of each name keeps its place), and for the schemes that sign inside the body (Mailgun,
/// Linear's timestamp) the body too.
pub(crate) fn resign(request: &mut Request, url: &str, args: &ReplayArgs) -> anyhow::Result<()> {
    let secret = args
        .secrets
        .first()
        .ok_or_else(|| anyhow!("--resign needs --secret"))?;
    resign_with(request, url, secret, args.provider)
}

/// [`resign`] with `secret`, as `provider` signs (default: the provider recognised from the
/// headers): what the inspector's `R` does.
pub(crate) fn resign_with(
    request: &mut Request,
    url: &str,
    secret: &verify::Secret,
    provider: Option<verify::Provider>,
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

/// Sends one replay and returns its exchange (and the failure, when the target did not
/// answer).
async fn send(
    forwarder: &Forwarder,
    original: &Exchange,
    headers: Vec<Header>,
) -> (Exchange, Option<ForwardError>) {
    let received_at_ms = now_ms();
    let started = Instant::now();
    let result = forwarder
        .forward(
            &original.request.method,
            &original.request.path,
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
