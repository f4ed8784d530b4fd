//! The tool catalogue: each tool's name, description and JSON Schema for `tools/list`, and
//! `tools/call`'s dispatch from a name and arguments to the tool, with its result as MCP
//! content. Every answer goes through one [`Redactor`], so secrets are masked in all of them.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::arguments::{Arguments, ToolError};
use super::captures::{self, At, ListCall, ShowCall, VerifyCall};
use super::diff::{self, DiffCall};
use super::jsonrpc::RpcError;
use super::replay::{self, ReplayCall};
use super::send::{self, SendCall};
use crate::inspect::Redactor;
use crate::query::value::Pointer;
use crate::store::CaptureRef;
use crate::verify::{Provider, Secret};

/// The tools and what they may use.
pub struct Tools {
    /// Whether the tools that send requests are offered (`--allow-send`).
    allow_send: bool,
    /// `--secret` (or `HOOKS_SECRET`): `verify_capture`'s secrets when the call names none, so
    /// a secret can stay out of the agent's conversation.
    secrets: Vec<Secret>,
    /// The capture store's database file.
    store: PathBuf,
}

/// The tools that send requests, refused without `--allow-send`.
const SENDING: [&str; 2] = ["replay_capture", "send_event"];

impl Tools {
    /// The catalogue over the store at `store`.
    pub fn new(allow_send: bool, secrets: Vec<Secret>, store: PathBuf) -> Tools {
        Tools {
            allow_send,
            secrets,
            store,
        }
    }

    /// `tools/list`'s tools, in a fixed order.
    pub fn list(&self) -> Vec<Value> {
        let mut tools = vec![
            list_captures(),
            show_capture(),
            verify_capture(),
            diff_captures(),
        ];
        if self.allow_send {
            tools.extend([replay_capture(), send_event()]);
        }
        tools
    }

    /// `tools/call`: runs the named tool. An unknown tool or malformed params are protocol
    /// errors; everything the agent can correct is a result with `isError: true`.
    pub async fn call(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("tools/call needs the tool's name"))?;
        let empty = Map::new();
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(arguments)) => arguments,
            Some(_) => return Err(RpcError::invalid_params("arguments must be an object")),
        };
        let mut redactor = Redactor {
            show_secrets: false,
            secrets: self.secrets.iter().map(|s| s.expose().to_owned()).collect(),
        };
        let outcome = match name {
            _ if SENDING.contains(&name) && !self.allow_send => Err(refused(name)),
            "list_captures" => self.list_captures(arguments).await,
            "show_capture" => self.show_capture(arguments, &redactor).await,
            "verify_capture" => self.verify_capture(arguments, &mut redactor).await,
            "diff_captures" => self.diff_captures(arguments, &redactor).await,
            "replay_capture" => self.replay_capture(arguments, &redactor).await,
            "send_event" => self.send_event(arguments, &mut redactor).await,
            _ => {
                return Err(RpcError::invalid_params(format!(
                    "unknown tool: {name} (tools/list names them)"
                )))
            }
        };
        Ok(content(outcome, &redactor))
    }

    async fn list_captures(&self, arguments: &Map<String, Value>) -> Result<Value, ToolError> {
        let args = Arguments::new("list_captures", arguments, &["where", "limit"])?;
        let call = ListCall {
            filter: args.string("where")?,
            limit: args
                .integer("limit", 1, captures::MAX_LIMIT)?
                .unwrap_or(captures::DEFAULT_LIMIT) as usize,
        };
        let store = self.store.clone();
        blocking(move || captures::list(&store, &call)).await
    }

    async fn show_capture(
        &self,
        arguments: &Map<String, Value>,
        redactor: &Redactor,
    ) -> Result<Value, ToolError> {
        let args = Arguments::new("show_capture", arguments, &["id", "max_body_bytes"])?;
        let call = ShowCall {
            capture: args.capture("id")?.unwrap_or(CaptureRef::Last),
            body_bytes: args
                .integer("max_body_bytes", 0, captures::MAX_BODY_BYTES)?
                .unwrap_or(captures::DEFAULT_BODY_BYTES) as usize,
        };
        let (store, redactor) = (self.store.clone(), redactor.clone());
        blocking(move || captures::show(&store, &call, &redactor)).await
    }

    async fn verify_capture(
        &self,
        arguments: &Map<String, Value>,
        redactor: &mut Redactor,
    ) -> Result<Value, ToolError> {
        let known = ["id", "secret", "provider", "at"];
        let args = Arguments::new("verify_capture", arguments, &known)?;
        let given = args.string("secret")?.filter(|s| !s.is_empty());
        // Masked in this call's answer whatever happens next.
        redactor.secrets.extend(given.clone());
        let (secrets, secret_from) = match given {
            Some(secret) => (vec![Secret::new(secret)], "argument"),
            None if !self.secrets.is_empty() => (self.secrets.clone(), "hooks mcp --secret"),
            None => return Err(ToolError::new(NO_SECRET)),
        };
        let provider = match args.string("provider")? {
            Some(name) => Some(name.parse::<Provider>()?),
            None => None,
        };
        let at = match args.string("at")?.as_deref() {
            None | Some("received") => At::Received,
            Some("now") => At::Now,
            Some(other) => {
                return Err(ToolError::new(format!(
                    "verify_capture: at must be \"received\" or \"now\", not {other:?}"
                )))
            }
        };
        let call = VerifyCall {
            capture: args.capture("id")?.unwrap_or(CaptureRef::Last),
            secrets,
            secret_from,
            provider,
            at,
        };
        let store = self.store.clone();
        blocking(move || captures::verify(&store, &call)).await
    }

    async fn diff_captures(
        &self,
        arguments: &Map<String, Value>,
        redactor: &Redactor,
    ) -> Result<Value, ToolError> {
        let args = Arguments::new("diff_captures", arguments, &["a", "b", "ignore"])?;
        let missing = || ToolError::new("diff_captures needs two capture ids, a and b");
        let ignore = args
            .strings("ignore")?
            .iter()
            .map(|text| {
                Pointer::parse(text).ok_or_else(|| {
                    ToolError::new(format!(
                        "diff_captures: {text:?} in ignore is not a JSON pointer: use one such \
                         as /data/object/id"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let call = DiffCall {
            a: args.capture("a")?.ok_or_else(missing)?,
            b: args.capture("b")?.ok_or_else(missing)?,
            ignore,
        };
        let (store, redactor) = (self.store.clone(), redactor.clone());
        blocking(move || diff::diff(&store, &call, &redactor)).await
    }

    async fn send_event(
        &self,
        arguments: &Map<String, Value>,
        redactor: &mut Redactor,
    ) -> Result<Value, ToolError> {
        let known = ["provider", "event", "to", "secret", "set"];
        let args = Arguments::new("send_event", arguments, &known)?;
        let required = |name: &str| -> Result<String, ToolError> {
            args.string(name)?
                .filter(|text| !text.trim().is_empty())
                .ok_or_else(|| ToolError::new(format!("send_event needs {name}")))
        };
        let (provider, event, to) = (required("provider")?, required("event")?, required("to")?);
        let given = args.string("secret")?.filter(|s| !s.is_empty());
        // Masked in this call's answer whatever happens next.
        redactor.secrets.extend(given.clone());
        let secret = given
            .map(Secret::new)
            .or_else(|| self.secrets.first().cloned());
        let call = SendCall {
            provider,
            event,
            to,
            secret,
            set: send::set_pairs("send_event", arguments.get("set"))?,
        };
        send::send(call, redactor).await
    }

    async fn replay_capture(
        &self,
        arguments: &Map<String, Value>,
        redactor: &Redactor,
    ) -> Result<Value, ToolError> {
        let args = Arguments::new("replay_capture", arguments, &["id", "to"])?;
        let capture = args
            .capture("id")?
            .ok_or_else(|| ToolError::new("replay_capture needs the id of the capture to send"))?;
        let to = match args.string("to")? {
            Some(text) => Some(text.parse().map_err(|e| {
                ToolError::new(format!("replay_capture: to {text:?} is not a target: {e}"))
            })?),
            None => None,
        };
        let call = ReplayCall { capture, to };
        replay::replay(self.store.clone(), call, redactor).await
    }
}

/// `verify_capture`'s answer when it has no secret.
const NO_SECRET: &str = "verify_capture needs the signing secret: pass it as secret, or set \
HOOKS_SECRET in the environment hooks mcp is started with (which keeps it out of this \
conversation), or start it with --secret";

/// The answer to a sending tool without `--allow-send`.
fn refused(name: &str) -> ToolError {
    ToolError::new(format!(
        "{name} sends requests, and this hooks mcp was started without --allow-send: restart \
         it as `hooks mcp --allow-send` (in the agent's MCP server configuration) to allow it"
    ))
}

/// A tool's outcome as a `tools/call` result: the JSON as text (every client reads that) and
/// as `structuredContent`, or the error's sentence with `isError`; secrets masked in both.
fn content(outcome: Result<Value, ToolError>, redactor: &Redactor) -> Value {
    match outcome {
        Ok(mut value) => {
            mask(&mut value, redactor);
            json!({
                "content": [{"type": "text", "text": value.to_string()}],
                "structuredContent": value,
                "isError": false,
            })
        }
        Err(ToolError(message)) => json!({
            "content": [{"type": "text", "text": redactor.mask(&message)}],
            "isError": true,
        }),
    }
}

/// Replaces every secret in every string of `value`.
fn mask(value: &mut Value, redactor: &Redactor) {
    match value {
        Value::String(text) => {
            let masked = redactor.mask(text);
            if masked != *text {
                *text = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask(v, redactor)),
        Value::Object(map) => map.values_mut().for_each(|v| mask(v, redactor)),
        _ => {}
    }
}

/// Runs store work on a blocking thread (SQLite blocks).
async fn blocking(
    work: impl FnOnce() -> Result<Value, ToolError> + Send + 'static,
) -> Result<Value, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ToolError::new("the capture store's task failed"))?
}

fn list_captures() -> Value {
    json!({
        "name": "list_captures",
        "title": "List captured webhooks",
        "description": "The newest webhooks hooks captured, newest first: id, time, method, \
            path, the app's status, event type, signature verdict, and which capture a replay \
            replays. Use an id with show_capture, verify_capture or replay_capture.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "where": {
                    "type": "string",
                    "description": captures::WHERE_DESCRIPTION,
                },
                "limit": {
                    "type": "integer", "minimum": 1, "maximum": captures::MAX_LIMIT,
                    "default": captures::DEFAULT_LIMIT,
                    "description": "Most captures to return",
                },
            },
            "additionalProperties": false,
        },
        "annotations": {"readOnlyHint": true, "openWorldHint": false},
    })
}

fn show_capture() -> Value {
    json!({
        "name": "show_capture",
        "title": "Show a captured webhook",
        "description": "One capture whole: the request's method, path, headers and body, the \
            app's status, headers and body (or why it did not answer), timing, event and \
            signature verdict. Bodies are text when UTF-8, else base64, and cut at \
            max_body_bytes with a note. Credentials and signatures in headers are shortened.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "id": id_schema("The capture's id (from list_captures); default: the newest"),
                "max_body_bytes": {
                    "type": "integer", "minimum": 0, "maximum": captures::MAX_BODY_BYTES,
                    "default": captures::DEFAULT_BODY_BYTES,
                    "description": "Most bytes of each body to return",
                },
            },
            "additionalProperties": false,
        },
        "annotations": {"readOnlyHint": true, "openWorldHint": false},
    })
}

fn verify_capture() -> Value {
    json!({
        "name": "verify_capture",
        "title": "Check a captured webhook's signature",
        "description": "Checks the capture's signature with a signing secret as the provider \
            computes it (Stripe, GitHub, Standard Webhooks/Svix, Slack, Shopify, Twilio and \
            more; recognised from the headers). The verdict is valid, invalid (with the reason), \
            expired or unsigned. The secret never appears in any answer.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "id": id_schema("The capture's id (from list_captures); default: the newest"),
                "secret": {
                    "type": "string",
                    "description": "The signing secret exactly as the provider shows it; \
                        default: the --secret (or HOOKS_SECRET) hooks mcp was started with",
                },
                "provider": {
                    "type": "string",
                    "description": "The provider's scheme, e.g. stripe or github; default: \
                        recognised from the headers",
                },
                "at": {
                    "type": "string", "enum": ["received", "now"], "default": "received",
                    "description": "Hold the signed timestamp against the time the webhook \
                        was received, or against now",
                },
            },
            "additionalProperties": false,
        },
        "annotations": {"readOnlyHint": true, "openWorldHint": false},
    })
}

fn replay_capture() -> Value {
    json!({
        "name": "replay_capture",
        "title": "Send a captured webhook again",
        "description": "Sends the capture's request again, byte for byte, to where it was \
            forwarded or to `to`, and records the exchange as a new capture (its replay_of \
            names the original). Returns the new capture with the app's answer.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "id": id_schema("The id of the capture to send (from list_captures)"),
                "to": {
                    "type": "string",
                    "description": "Where to send it instead: 3000, localhost:3000/base, \
                        http://… or https://…",
                },
            },
            "required": ["id"],
            "additionalProperties": false,
        },
        "annotations": {
            "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false,
            "openWorldHint": true,
        },
    })
}

fn diff_captures() -> Value {
    json!({
        "name": "diff_captures",
        "title": "Compare two captured webhooks",
        "description": "What differs between two captures, as hooks diff --json gives it: the \
            request line, the request headers (added, removed, changed; order and repeats \
            count), the request bodies (by JSON pointer when both are JSON, by key for forms, \
            else the first differing byte), and the app's two answers likewise. same is true \
            when nothing differs. Credential and signature header values are shortened.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "a": id_schema("The first capture's id (from list_captures)"),
                "b": id_schema("The second capture's id"),
                "ignore": {
                    "type": "array", "items": {"type": "string"},
                    "description": "JSON pointers to leave out of both bodies, with everything \
                        under them (/KEY for a form key), e.g. [\"/created\", \"/data/object/id\"]",
                },
            },
            "required": ["a", "b"],
            "additionalProperties": false,
        },
        "annotations": {"readOnlyHint": true, "openWorldHint": false},
    })
}

fn send_event() -> Value {
    json!({
        "name": "send_event",
        "title": "Send a provider's test event",
        "description": "Sends a provider's event (as hooks send does: Stripe invoice.paid, \
            GitHub push, Shopify orders/create, …; hooks send --list names them all) with fresh \
            ids and times, signed now with the secret as the provider signs it, to `to`, and \
            records it as a capture marked sent. Returns that capture with the app's answer.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "provider": {"type": "string", "description": "The provider, e.g. stripe, github, shopify, slack"},
                "event": {"type": "string", "description": "The event, e.g. invoice.paid, push, orders/create"},
                "to": {
                    "type": "string",
                    "description": "Where to send it: 3000, localhost:3000/webhooks, http://…, \
                        https://…, or the channel URL hooks listen printed",
                },
                "secret": {
                    "type": "string",
                    "description": "The signing secret the app verifies with; default: the \
                        --secret (or HOOKS_SECRET) hooks mcp was started with",
                },
                "set": {
                    "type": "object",
                    "description": "Values to change before signing, by JSON pointer (/Name for \
                        a form field), e.g. {\"/data/object/amount_paid\": 5000}",
                },
            },
            "required": ["provider", "event", "to"],
            "additionalProperties": false,
        },
        "annotations": {
            "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false,
            "openWorldHint": true,
        },
    })
}

/// A capture id argument: a number, as `list_captures` gives them.
fn id_schema(description: &str) -> Value {
    json!({"type": "integer", "minimum": 1, "description": description})
}
