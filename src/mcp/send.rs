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

/// `set`'s object (`{"/data/object/amount": 5000}`) as `--set` pairs: a string value stays a
/// string (it is passed quoted), anything else is passed as JSON.
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
        .map(|(pointer, value)| (pointer.clone(), value.to_string()))
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
            sent.capture.id
        ))),
        None => Ok(json!({
            "sent": capture_json(&sent.capture, DEFAULT_BODY_BYTES as usize, redactor),
        })),
    }
}
