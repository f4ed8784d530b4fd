//! JSON-RPC 2.0 as MCP uses it: one message per line, classified into requests, notifications
//! and (ignored) responses; the standard error codes; and the reply objects.

use serde_json::{json, Map, Value};

/// The line is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid request object (a batch, a missing method, a null id, …).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The method exists but its params are wrong (MCP also uses it for an unknown tool).
pub const INVALID_PARAMS: i64 = -32602;
/// The server failed while handling a valid request.
pub const INTERNAL_ERROR: i64 = -32603;
/// MCP 2026-07-28: the request names a protocol version this server does not speak.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// One of the codes above.
    pub code: i64,
    /// One sentence saying what is wrong.
    pub message: String,
    /// Details a client can act on, e.g. the supported versions.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message` and no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// [`INVALID_PARAMS`] with `message`.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }
}

/// One message the client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that wants an answer.
    Request {
        /// Its id: a string or an integer, echoed in the answer.
        id: Value,
        /// The method, e.g. `tools/call`.
        method: String,
        /// Its params, `{}` when absent.
        params: Map<String, Value>,
    },
    /// A one-way message; never answered.
    Notification {
        /// The method, e.g. `notifications/initialized`.
        method: String,
        /// Its params, `{}` when absent or not an object.
        params: Map<String, Value>,
    },
    /// An answer to a request: this server sends none, so there is nothing to match it with.
    Response,
}

/// A message that cannot be handled, and the error reply it gets (`id` is `null` when the
/// message's id could not be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The id to answer with.
    pub id: Value,
    /// Why.
    pub error: RpcError,
}

/// Classifies one line of input (the rejection is boxed: it is large beside a message).
pub fn parse(line: &[u8]) -> Result<Message, Box<Rejected>> {
    let reject = |id: Value, code, message: &str| {
        Box::new(Rejected {
            id,
            error: RpcError::new(code, message),
        })
    };
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| reject(Value::Null, PARSE_ERROR, &format!("not JSON: {e}")))?;
    let mut object = match value {
        Value::Object(object) => object,
        Value::Array(_) => {
            let message = "batches are not supported: send one message per line";
            return Err(reject(Value::Null, INVALID_REQUEST, message));
        }
        _ => {
            return Err(reject(
                Value::Null,
                INVALID_REQUEST,
                "not a JSON-RPC object",
            ))
        }
    };
    let id = object.remove("id");
    // An id that is there must be usable to answer with; MCP forbids null.
    let id = match id {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) if !is_fraction(&id) => Some(id),
        Some(_) => {
            let message = "the id must be a string or an integer";
            return Err(reject(Value::Null, INVALID_REQUEST, message));
        }
    };
    let answer_to = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(reject(
            answer_to,
            INVALID_REQUEST,
            "jsonrpc must be \"2.0\"",
        ));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => {
            return Err(reject(
                answer_to,
                INVALID_REQUEST,
                "method must be a string",
            ))
        }
        None if object.contains_key("result") || object.contains_key("error") => {
            return Ok(Message::Response)
        }
        None => return Err(reject(answer_to, INVALID_REQUEST, "no method")),
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) if id.is_none() => Map::new(),
        Some(_) => {
            return Err(reject(
                answer_to,
                INVALID_PARAMS,
                "params must be an object",
            ))
        }
    };
    Ok(match id {
        Some(id) => Message::Request { id, method, params },
        None => Message::Notification { method, params },
    })
}

fn is_fraction(id: &Value) -> bool {
    matches!(id, Value::Number(n) if !n.is_i64() && !n.is_u64())
}

/// The reply carrying `result`.
pub fn success(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// The reply carrying `error`.
pub fn failure(id: &Value, error: &RpcError) -> Value {
    let mut body = json!({"code": error.code, "message": error.message});
    if let Some(data) = &error.data {
        body["data"] = data.clone();
    }
    json!({"jsonrpc": "2.0", "id": id, "error": body})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(line: &str) -> (Value, i64) {
        let r = parse(line.as_bytes()).unwrap_err();
        (r.id, r.error.code)
    }

    #[test]
    fn requests_notifications_and_responses() {
        let request = parse(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).unwrap();
        assert_eq!(
            request,
            Message::Request {
                id: json!(7),
                method: "ping".into(),
                params: Map::new()
            }
        );
        let note = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(matches!(note, Ok(Message::Notification { .. })));
        let answer = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#);
        assert_eq!(answer, Ok(Message::Response));
    }

    #[test]
    fn malformed_messages_get_the_right_codes() {
        assert_eq!(rejected("{oops"), (Value::Null, PARSE_ERROR));
        assert_eq!(rejected("[]"), (Value::Null, INVALID_REQUEST));
        assert_eq!(rejected("3"), (Value::Null, INVALID_REQUEST));
        let null_id = r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#;
        assert_eq!(rejected(null_id), (Value::Null, INVALID_REQUEST));
        let fraction = r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#;
        assert_eq!(rejected(fraction), (Value::Null, INVALID_REQUEST));
        let old = r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#;
        assert_eq!(rejected(old), (json!(1), INVALID_REQUEST));
        let no_method = r#"{"jsonrpc":"2.0","id":"x"}"#;
        assert_eq!(rejected(no_method), (json!("x"), INVALID_REQUEST));
        let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":[1]}"#;
        assert_eq!(rejected(list), (json!(2), INVALID_PARAMS));
    }

    #[test]
    fn replies_are_one_line() {
        let error = RpcError {
            data: Some(json!({"supported": ["a"]})),
            ..RpcError::new(UNSUPPORTED_PROTOCOL_VERSION, "no\nway")
        };
        let text = failure(&json!(1), &error).to_string();
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"no\nway","data":{"supported":["a"]}}}"#
        );
        assert_eq!(
            success(&json!("s"), json!({})).to_string(),
            r#"{"jsonrpc":"2.0","id":"s","result":{}}"#
        );
    }
}
