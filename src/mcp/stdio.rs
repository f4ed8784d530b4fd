//! The stdio transport: one JSON-RPC message per line in, one per line out. A reader task cuts
//! the input into bounded lines, a writer task owns the output, and the loop between them
//! answers lifecycle methods at once and runs tool calls as tasks (a few at a time), so a slow
//! replay neither blocks a ping nor stops a `notifications/cancelled` from reaching it.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt as _;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::jsonrpc::{self, Message, RpcError, INVALID_REQUEST};
use super::session::{self, Era, Session};

/// Longest message accepted, in bytes; a longer line is answered with an error and skipped.
/// Requests are small (a tool name and a few arguments): this only bounds a runaway client.
pub const MAX_MESSAGE: usize = 1024 * 1024;

/// Tool calls running at once; past it, input waits (and so does the client) until one ends.
pub const MAX_CALLS: usize = 8;

/// Lines read ahead of the loop, and answers waiting for the writer.
const QUEUE: usize = 16;

/// One line of input.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line, without its newline (and carriage return).
    Text(Vec<u8>),
    /// A line longer than [`MAX_MESSAGE`], skipped.
    TooLong,
}

/// Serves `session` on `input` and `output` until the input ends (and the calls running then
/// have answered) or `shutdown` is cancelled.
pub async fn run<R, W>(
    session: Arc<Session>,
    input: R,
    output: W,
    shutdown: CancellationToken,
) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (line_tx, mut lines) = mpsc::channel(QUEUE);
    let reader = tokio::spawn(read_lines(BufReader::new(input), line_tx));
    let (outbox, answers) = mpsc::channel(QUEUE);
    let writer = tokio::spawn(write_lines(answers, output));
    let mut calls = Calls::default();
    let mut input_open = true;
    while input_open || !calls.tasks.is_empty() {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = calls.tasks.join_next(), if !calls.tasks.is_empty() => calls.finished(done),
            line = lines.recv(), if input_open && calls.tasks.len() < MAX_CALLS => match line {
                Some(line) => handle(&session, line, &outbox, &mut calls).await,
                None => input_open = false,
            },
        }
    }
    calls.tasks.abort_all();
    reader.abort();
    drop(outbox);
    // The writer ends once every answer queued is written (or the output is gone).
    let _ = writer.await;
    Ok(())
}

/// Tool calls in flight, and how to cancel each by its request id.
#[derive(Default)]
struct Calls {
    tasks: JoinSet<String>,
    by_id: HashMap<String, AbortHandle>,
}

impl Calls {
    /// Forgets a call that ended (its task returns its id's key).
    fn finished(&mut self, done: Result<String, tokio::task::JoinError>) {
        if let Ok(key) = done {
            self.by_id.remove(&key);
        }
    }

    /// `notifications/cancelled`: stops the call, which then sends nothing, as MCP requires.
    fn cancel(&mut self, params: &Map<String, Value>) {
        if let Some(id) = params.get("requestId") {
            if let Some(call) = self.by_id.remove(&id.to_string()) {
                call.abort();
            }
        }
    }
}

/// Handles one line: answers it, starts its tool call, or (a notification) acts on it.
async fn handle(
    session: &Arc<Session>,
    line: Line,
    outbox: &mpsc::Sender<Value>,
    calls: &mut Calls,
) {
    let bytes = match line {
        Line::Text(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => return,
        Line::Text(bytes) => bytes,
        Line::TooLong => {
            let error = RpcError::new(
                INVALID_REQUEST,
                format!("message longer than {MAX_MESSAGE} bytes, skipped"),
            );
            let _ = outbox.send(jsonrpc::failure(&Value::Null, &error)).await;
            return;
        }
    };
    let (id, method, params) = match jsonrpc::parse(&bytes) {
        Err(rejected) => {
            let _ = outbox
                .send(jsonrpc::failure(&rejected.id, &rejected.error))
                .await;
            return;
        }
        Ok(Message::Response) => return,
        Ok(Message::Notification { method, params }) => {
            if method == "notifications/cancelled" {
                calls.cancel(&params);
            }
            return;
        }
        Ok(Message::Request { id, method, params }) => (id, method, params),
    };
    let era = match session.era(&method, &params) {
        Ok(era) => era,
        Err(error) => {
            let _ = outbox.send(jsonrpc::failure(&id, &error)).await;
            return;
        }
    };
    if method == "tools/call" {
        start_call(session, id, params, era, outbox, calls);
        return;
    }
    let reply = match session.answer(&method, &params, era) {
        Ok(result) => jsonrpc::success(&id, result),
        Err(error) => jsonrpc::failure(&id, &error),
    };
    let _ = outbox.send(reply).await;
}

/// Runs one `tools/call` as a task that sends its own answer.
fn start_call(
    session: &Arc<Session>,
    id: Value,
    params: Map<String, Value>,
    era: Era,
    outbox: &mpsc::Sender<Value>,
    calls: &mut Calls,
) {
    let key = id.to_string();
    let (session, outbox) = (Arc::clone(session), outbox.clone());
    let task_key = key.clone();
    let handle = calls.tasks.spawn(async move {
        let call = AssertUnwindSafe(session.tools.call(&params)).catch_unwind();
        let reply = match call.await {
            Ok(Ok(result)) => jsonrpc::success(&id, session::decorate("tools/call", result, era)),
            Ok(Err(error)) => jsonrpc::failure(&id, &error),
            Err(_) => jsonrpc::failure(&id, &session::internal("the tool call")),
        };
        let _ = outbox.send(reply).await;
        task_key
    });
    calls.by_id.insert(key, handle);
}

/// Cuts `input` into lines for the loop until it ends or cannot be read.
async fn read_lines(mut input: impl AsyncBufRead + Unpin, lines: mpsc::Sender<Line>) {
    while let Ok(Some(line)) = read_line(&mut input, MAX_MESSAGE).await {
        if lines.send(line).await.is_err() {
            return;
        }
    }
}

/// The next line, at most `max` bytes kept; `None` at the end of the input.
async fn read_line(
    input: &mut (impl AsyncBufRead + Unpin),
    max: usize,
) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buffer = input.fill_buf().await?;
        if buffer.is_empty() {
            // The end: a last line without a newline still counts.
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Some(Line::TooLong),
                (false, true) => None,
                (false, false) => Some(Line::Text(line)),
            });
        }
        let newline = memchr::memchr(b'\n', buffer);
        let piece = &buffer[..newline.unwrap_or(buffer.len())];
        if !too_long && line.len() + piece.len() <= max {
            line.extend_from_slice(piece);
        } else {
            too_long = true;
            line = Vec::new();
        }
        let used = newline.map_or(buffer.len(), |at| at + 1);
        input.consume(used);
        if newline.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            }));
        }
    }
}

/// Writes each answer as one line, flushing after each, until the loop is done or the output
/// is gone (the client quit).
async fn write_lines(mut answers: mpsc::Receiver<Value>, mut output: impl AsyncWrite + Unpin) {
    while let Some(answer) = answers.recv().await {
        // serde_json escapes newlines inside strings, so an answer is always one line.
        let mut line = answer.to_string().into_bytes();
        line.push(b'\n');
        if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
