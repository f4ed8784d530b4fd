//! Helpers of the `send` tests (issue 21): running `hooks send` against an app or `hooks listen`,
//! and checking what it produced without hooks' own signing code (HMACs, raw HTTP, how fresh an
//! event's times are).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use std::path::Path;

use serde_json::Value;

use super::cli::{finish, hooks_command};
use super::{App, Finished, Listener, Recorded};

/// An HMAC secret for every provider but Standard Webhooks.
pub const SECRET: &str = "whsec_hooks_send_test_secret";
/// A Standard Webhooks secret: `whsec_` and base64.
pub const SW_SECRET: &str = "whsec_aG9va3Mgc2VuZCB0ZXN0IGtleSBmb3Igc3RkIHdlYmhvb2tz";

/// `hooks <args>` with data in `data`, run in `cwd` (default: a fresh folder) with `env` set.
pub async fn hooks_at(
    args: &[&str],
    data: &Path,
    cwd: Option<&Path>,
    env: &[(&str, &str)],
) -> Finished {
    let here = tempfile::tempdir().expect("temp folder");
    let mut command = hooks_command(args, data);
    command.current_dir(cwd.unwrap_or(here.path()));
    command.envs(env.iter().copied());
    finish(command, &format!("hooks {args:?}")).await.into()
}

/// `hooks <args>` with data in `data`, run in a fresh folder.
pub async fn hooks(args: &[&str], data: &Path) -> Finished {
    hooks_at(args, data, None, &[]).await
}

/// Runs `hooks <args>` and fails the test unless it exits 0.
pub async fn ok(args: &[&str], data: &Path) -> Finished {
    let done = hooks(args, data).await;
    assert_eq!(done.code, Some(0), "hooks {args:?}: {}", done.stderr);
    done
}

/// The one value of header `name` (lowercase) as text.
pub fn one(request: &Recorded, name: &str) -> String {
    let values = request.header(name);
    assert_eq!(
        values.len(),
        1,
        "one {name} header in {:?}",
        request.headers
    );
    String::from_utf8(values[0].to_vec()).expect("text header")
}

/// The scheme `hooks verify` should report for a template folder, and the secret to send with
/// (`None`: a private key, the data directory's key pair).
pub fn scheme_of(provider: &str) -> (&str, Option<&'static str>) {
    match provider {
        "standard-webhooks" | "clerk" | "resend" => ("standard-webhooks", Some(SW_SECRET)),
        "discord" | "sendgrid" => (provider, None),
        other => (other, Some(SECRET)),
    }
}

/// The templates `--list --json` names: (provider, event).
pub async fn listed(data: &Path) -> Vec<(String, String)> {
    let list = ok(&["send", "--list", "--json"], data).await;
    list.stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("one JSON object per line");
            let field = |name: &str| value[name].as_str().expect("a string").to_owned();
            (field("provider"), field("event"))
        })
        .collect()
}

/// Sends one event to a fresh app and returns what the app received.
pub async fn received(args: &[&str], path: &str) -> (Recorded, Finished) {
    let app = App::ok().await;
    let data = tempfile::tempdir().expect("data dir");
    let to = format!("127.0.0.1:{}{path}", app.port());
    let mut full = vec!["send"];
    full.extend_from_slice(args);
    full.extend(["--to", to.as_str()]);
    let done = ok(&full, data.path()).await;
    let requests = app.wait_for(1).await;
    assert_eq!(requests.len(), 1, "one request");
    (requests[0].clone(), done)
}

/// Sends through `listen` and returns its next `n` request lines.
pub async fn through(listen: &mut Listener, data: &Path, args: &[&str], n: usize) -> Vec<Value> {
    let mut full = vec!["send"];
    full.extend_from_slice(args);
    full.extend(["--to", listen.url.as_str()]);
    ok(&full, data).await;
    listen.next_requests(n).await
}

/// HMAC-SHA256 of the parts, one after the other.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of the parts, one after the other.
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Now, in Unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Asserts `secs` is within a minute of now.
#[track_caller]
pub fn assert_fresh(secs: i64, what: &str) {
    let off = (now_secs() - secs).abs();
    assert!(off <= 60, "{what}: {secs} is {off} s from now");
}

/// A raw HTTP/1.1 request as `--print` writes it: headers and body.
pub struct Raw {
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Splits what `--print` wrote into headers and body.
pub fn parse_raw(text: &str) -> Raw {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a blank line after the headers");
    let headers = head
        .lines()
        .skip(1)
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("Name: value");
            (name.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    Raw {
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// The public key `hooks send` printed for its key pair.
pub fn public_key(stderr: &str) -> String {
    stderr
        .split("your app's public key: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no public key in {stderr:?}"))
        .to_owned()
}

/// The event's times are now: the time `hooks listen` recognises and every timestamp header
/// within a minute; every time in the body (RFC 3339 anywhere, numbers under time-like keys)
/// within the last month (a subscription began then) or the next year (one renews then).
pub fn check_times(what: &str, raw: &Raw) {
    let headers: Vec<relay_server::protocol::Header> = raw
        .headers
        .iter()
        .map(|(n, v)| relay_server::protocol::Header {
            name: n.clone(),
            value: bytes::Bytes::from(v.clone()),
        })
        .collect();
    let event = hooks::verify::recognize(&headers, &raw.body)
        .unwrap_or_else(|| panic!("{what}: hooks listen recognises no event"));
    if let Some(at) = event.occurred_at {
        assert_fresh(at, &format!("{what}: the event's time"));
    }
    for (name, value) in &raw.headers {
        if name.contains("timestamp") || name.contains("triggered-at") {
            let secs = time_of(&Value::String(value.clone()))
                .unwrap_or_else(|| panic!("{what}: {name}: {value} is no time"));
            assert_fresh(secs, &format!("{what}: {name}"));
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&raw.body) else {
        return;
    };
    let (earliest, latest) = (now_secs() - 31 * 86_400 - 60, now_secs() + 366 * 86_400);
    let mut times = Vec::new();
    collect_times(&body, "", &mut times);
    for (key, secs) in times {
        assert!(
            (earliest..=latest).contains(&secs),
            "{what}: {key} = {secs} is not a fresh time"
        );
    }
}

/// Every time in `value`: strings that are RFC 3339, and numbers (or numeric strings) under
/// keys that name a time.
fn collect_times(value: &Value, key: &str, out: &mut Vec<(String, i64)>) {
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| collect_times(v, k, out)),
        Value::Array(items) => items.iter().for_each(|v| collect_times(v, key, out)),
        Value::String(s) if s.parse::<jiff::Timestamp>().is_ok() => {
            out.push((key.to_owned(), time_of(value).expect("RFC 3339")));
        }
        Value::Number(_) | Value::String(_) if time_key(key) => {
            if let Some(secs) = time_of(value).filter(|&secs| secs != 0) {
                out.push((key.to_owned(), secs));
            }
        }
        _ => {}
    }
}

fn time_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    key.ends_with("_at")
        || key.ends_with("At")
        || lower.contains("time")
        || lower.contains("created")
        || lower.contains("period")
        || lower.starts_with("trial_")
        || lower == "ts"
        || lower.ends_with("_ts")
}

/// Unix seconds of an RFC 3339 string or a number of seconds or milliseconds.
fn time_of(value: &Value) -> Option<i64> {
    let number = match value {
        Value::String(s) => {
            if let Ok(at) = s.parse::<jiff::Timestamp>() {
                return Some(at.as_second());
            }
            s.parse::<f64>().ok()?
        }
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    let secs = if number > 1e12 {
        number / 1000.0
    } else {
        number
    };
    Some(secs as i64)
}

/// Twilio's signature: base64 HMAC-SHA1 of the URL and the sorted form parameters.
pub fn twilio_signature(token: &str, url: &str, body: &[u8]) -> String {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    let mut signed = url.to_owned();
    for (name, value) in params {
        signed.push_str(&name);
        signed.push_str(&value);
    }
    BASE64.encode(hmac_sha1(token.as_bytes(), &[signed.as_bytes()]))
}
