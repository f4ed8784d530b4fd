//! `send_event`, offered only with `hooks mcp --allow-send`: a provider's event rendered from
//! `hooks send`'s templates, signed now and sent to a target by `send`'s own library function,
//! then recorded as a sent capture, which is the tool's result.

use clap::{Args as _, FromArgMatches as _};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::arguments::ToolError;
use super::captures::{capture_json, DEFAULT_BODY_BYTES};
use super::replay::REPLAY_TIMEOUT;
use crate::inspect::Redactor;
use crate::send::SendArgs;
use crate::verify::Secret;

/// A `send_event` call.
pub struct SendCall {
    /// Provider, e.g. `stripe`.
    pub provider: String,
    /// Event, e.g. `invoice.paid`.
    pub event: String,
    /// Where to send it: a target or a channel URL.
    pub to: String,
    /// The signing secret (the call's, else the server's).
    pub secret: Option<Secret>,
    /// `--set` changes: JSON pointer and the value's JSON text.
    pub set: Vec<(String, String)>,
}

/// `set`'s object (`{"/data/object/amount": 5000}`) as `--set` pairs, whose value `--set`
/// parses as JSON or else takes as text: a string is passed as its text (so a form field gets
/// it as is), quoted only when its text would read as another JSON value (`"5000"`, `"true"`),
/// so that it stays a string; anything else is passed as JSON.
pub fn set_pairs(tool: &str, set: Option<&Value>) -> Result<Vec<(String, String)>, ToolError> {
    let empty = Map::new();
    let map = match set {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(ToolError::new(format!(
                "{tool}: set must be an object of JSON pointers and values, e.g. \
                 {{\"/data/object/amount\": 5000}}"
            )))
        }
    };
    Ok(map
        .iter()
        .map(|(pointer, value)| {
            let text = match value {
                Value::String(text) if serde_json::from_str::<Value>(text).is_err() => text.clone(),
                other => other.to_string(),
            };
            (pointer.clone(), text)
        })
        .collect())
}

/// Runs `send_event`: the event is sent as `hooks send PROVIDER EVENT --to TO` sends it (with
/// at most [`REPLAY_TIMEOUT`] for the answer) and recorded; the result is that capture. A
/// target that does not answer is a tool error naming the capture.
pub async fn send(call: SendCall, redactor: &Redactor) -> Result<Value, ToolError> {
    let timeout = format!("{}s", REPLAY_TIMEOUT.as_secs());
    let mut argv = vec![call.provider, call.event, "--to".into(), call.to];
    argv.extend(["--timeout".to_owned(), timeout]);
    argv.extend(call.set.iter().map(|(p, v)| format!("--set={p}={v}")));
    // The flags of `hooks send`, parsed as clap parses them, so defaults and checks are the same.
    let command = SendArgs::augment_args(clap::Command::new("send_event").no_binary_name(true));
    let matches = command.try_get_matches_from(argv).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        ToolError::new(format!(
            "send_event: {}",
            first.trim_start_matches("error: ")
        ))
    })?;
    let mut args = SendArgs::from_arg_matches(&matches)
        .map_err(|e| ToolError::new(format!("send_event: {e}")))?;
    // Not HOOKS_SECRET through clap: the call's secret, else the server's, decided by the caller.
    args.secret = call.secret;
    let sent = crate::send::send_event(&args, &CancellationToken::new())
        .await
        .map_err(|e| ToolError::new(format!("send_event: {e:#}")))?;
    match sent.failure {
        Some(why) => Err(ToolError::new(format!(
            "the event got no answer: {why}; recorded as capture #{}",
            sent.capture.number()
        ))),
        None => Ok(json!({
            "sent": capture_json(&sent.capture, DEFAULT_BODY_BYTES as usize, redactor),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_keep_their_json_type() {
        let set = json!({"/a": 5000, "/b": "eur", "/c": "5000", "/d": {"x": true}});
        assert_eq!(
            set_pairs("send_event", Some(&set)).unwrap(),
            [
                ("/a".to_owned(), "5000".to_owned()),
                ("/b".to_owned(), "eur".to_owned()),
                ("/c".to_owned(), "\"5000\"".to_owned()),
                ("/d".to_owned(), r#"{"x":true}"#.to_owned()),
            ]
        );
        assert!(set_pairs("send_event", Some(&json!(["/a=1"]))).is_err());
        assert_eq!(set_pairs("send_event", None).unwrap(), []);
    }
}
