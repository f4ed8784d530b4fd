//! `replay_capture`, offered only with `hooks mcp --allow-send` (as `send_event` is, in
//! `send`): a capture sent again through `hooks replay`'s own code.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::arguments::ToolError;
use super::captures::{capture_json, DEFAULT_BODY_BYTES};
use crate::forward::Forwarder;
use crate::inspect::Redactor;
use crate::store::{CaptureRef, Retention, Store, Writer};
use crate::target::Target;

/// Longest a replay may wait for the target's answer; past it the call fails and says so (an
/// agent cannot sit on a breakpoint the way a person at `hooks replay` can).
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// A `replay_capture` call.
pub struct ReplayCall {
    /// Which capture.
    pub capture: CaptureRef,
    /// Where to, instead of where it was forwarded.
    pub to: Option<Target>,
}

/// Runs `replay_capture`: sends the capture again as `hooks replay ID [--to TARGET]` does and
/// records it as a new capture; the result is that capture. A target that does not answer (or
/// not within [`REPLAY_TIMEOUT`]) is a tool error naming the new capture.
pub async fn replay(
    store: PathBuf,
    call: ReplayCall,
    redactor: &Redactor,
) -> Result<Value, ToolError> {
    let reference = call.capture;
    let (capture, writer) = blocking(move || {
        let reader = Store::open(&store)?;
        let capture = reader.load(reference)?;
        let writer = Writer::spawn(reader.into_connection(), store, Retention::default())?;
        Ok((capture, writer))
    })
    .await?;
    let target = match call.to {
        Some(target) => target,
        None => {
            crate::export::original_target(&capture).map_err(|e| ToolError::new(e.to_string()))?
        }
    };
    let forwarder = Forwarder::new(target.clone(), relay_server::protocol::DEFAULT_MAX_BODY)
        .map_err(|e| ToolError::new(format!("{e:#}")))?;
    let sent = crate::replay::replay_one(&capture, &forwarder, &writer);
    let (new, failure) = match tokio::time::timeout(REPLAY_TIMEOUT, sent).await {
        Ok(result) => result.map_err(|e| ToolError::new(format!("{e:#}")))?,
        Err(_) => {
            return Err(ToolError::new(format!(
                "{target} did not answer within {} s; the replay was not recorded",
                REPLAY_TIMEOUT.as_secs()
            )))
        }
    };
    match failure {
        Some(reason) => Err(ToolError::new(format!(
            "the replay of #{} got no answer: {reason}; recorded as capture #{}",
            capture.number(),
            new.number()
        ))),
        None => Ok(json!({
            "replay": capture_json(&new, DEFAULT_BODY_BYTES as usize, redactor),
        })),
    }
}

/// Runs store work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ToolError::new("the capture store's task failed"))?
}
