//! The MCP lifecycle and method dispatch, for both eras of the protocol: the handshake-based
//! revisions (2024-11-05 to 2025-11-25: `initialize`, then `notifications/initialized`) and the
//! stateless one (2026-07-28: every request names its version in `_meta`, `server/discover`).
//! A server that speaks both is what the 2026-07-28 revision calls "dual-era".

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Map, Value};

use super::jsonrpc::UNSUPPORTED_PROTOCOL_VERSION;
use super::jsonrpc::{RpcError, INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND};
use super::tools::Tools;

/// The stateless revision: requests carry their version in `_meta`.
pub const MODERN: &str = "2026-07-28";

/// The handshake revisions, newest first; `initialize` settles on one of them.
pub const LEGACY: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `_meta` key naming a modern request's protocol version.
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of a modern request's client capabilities (required).
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key under which modern results name the server.
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// How long a client may keep the tool list and the discovery result: the tools a process
/// offers never change while it runs (`--allow-send` is fixed at start).
const CACHE_TTL_MS: u64 = 3_600_000;

/// What the server tells an agent about itself, at `initialize` and `server/discover`.
const INSTRUCTIONS: &str = "hooks records every webhook it forwards (request, the app's \
answer, signature verdict) in a local capture store. list_captures finds captures (newest \
first), show_capture returns one whole, verify_capture checks its signature with a secret. \
Sensitive header values are shortened and secrets masked in every answer.";

/// How a request is to be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// After an `initialize` handshake, by the revision it settled on.
    Legacy,
    /// Statelessly, by the version in the request's `_meta` ([`MODERN`]).
    Modern,
}

/// One client's session: the lifecycle state and the tools.
pub struct Session {
    /// Whether `initialize` was answered (handshake clients only).
    initialized: AtomicBool,
    /// The tool catalogue.
    pub tools: Tools,
}

impl Session {
    /// A session offering `tools`.
    pub fn new(tools: Tools) -> Session {
        Session {
            initialized: AtomicBool::new(false),
            tools,
        }
    }

    /// Decides the era of a request from its `_meta`, checking what the modern era requires.
    pub fn era(&self, method: &str, params: &Map<String, Value>) -> Result<Era, RpcError> {
        let meta = params.get("_meta").and_then(Value::as_object);
        let Some(version) = meta.and_then(|m| m.get(META_VERSION)) else {
            return match method {
                "server/discover" => Err(RpcError::invalid_params(format!(
                    "server/discover needs {META_VERSION} and {META_CAPABILITIES} in params._meta"
                ))),
                "initialize" | "ping" => Ok(Era::Legacy),
                _ if self.initialized.load(Ordering::Acquire) => Ok(Era::Legacy),
                _ => Err(RpcError::new(
                    INVALID_REQUEST,
                    format!(
                        "not initialized: send initialize first, or name the protocol version \
                         in params._meta[\"{META_VERSION}\"] ({MODERN})"
                    ),
                )),
            };
        };
        if version.as_str() != Some(MODERN) {
            return Err(unsupported(version));
        }
        match meta.and_then(|m| m.get(META_CAPABILITIES)) {
            Some(Value::Object(_)) => Ok(Era::Modern),
            _ => Err(RpcError::invalid_params(format!(
                "params._meta needs \"{META_CAPABILITIES}\", an object"
            ))),
        }
    }

    /// Answers every method but `tools/call` (which [`Tools::call`] answers, concurrently).
    pub fn answer(
        &self,
        method: &str,
        params: &Map<String, Value>,
        era: Era,
    ) -> Result<Value, RpcError> {
        let result = match method {
            "initialize" => self.initialize(params)?,
            "ping" => json!({}),
            "server/discover" => discover(),
            "tools/list" => json!({"tools": self.tools.list()}),
            _ => {
                return Err(RpcError::new(
                    METHOD_NOT_FOUND,
                    format!("no method {method:?} (this server offers tools only)"),
                ))
            }
        };
        Ok(decorate(method, result, era))
    }

    /// The handshake: settles on the client's revision when it is one of [`LEGACY`], else on
    /// the newest of them, as the handshake revisions specify.
    fn initialize(&self, params: &Map<String, Value>) -> Result<Value, RpcError> {
        let asked = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("initialize needs a protocolVersion string"))?;
        let version = LEGACY.iter().find(|v| **v == asked).unwrap_or(&LEGACY[0]);
        self.initialized.store(true, Ordering::Release);
        Ok(json!({
            "protocolVersion": version,
            "capabilities": capabilities(),
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
        }))
    }
}

/// The error for a version this server does not speak, listing those it does.
fn unsupported(requested: &Value) -> RpcError {
    let mut supported = vec![MODERN];
    supported.extend(LEGACY);
    RpcError {
        code: UNSUPPORTED_PROTOCOL_VERSION,
        message: "Unsupported protocol version".into(),
        data: Some(json!({"supported": supported, "requested": requested})),
    }
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

fn server_info() -> Value {
    json!({"name": "hooks", "title": "hooks", "version": env!("CARGO_PKG_VERSION")})
}

/// `server/discover`'s result (modern era only).
fn discover() -> Value {
    let mut versions = vec![MODERN];
    versions.extend(LEGACY);
    json!({
        "supportedVersions": versions,
        "capabilities": capabilities(),
        "instructions": INSTRUCTIONS,
    })
}

/// A result as the era wants it: modern results say their type and name the server, and lists
/// say how long they may be cached.
pub fn decorate(method: &str, mut result: Value, era: Era) -> Value {
    if era == Era::Legacy {
        return result;
    }
    result["resultType"] = json!("complete");
    result["_meta"] = json!({ META_SERVER_INFO: server_info() });
    if matches!(method, "tools/list" | "server/discover") {
        result["ttlMs"] = json!(CACHE_TTL_MS);
        result["cacheScope"] = json!("private");
    }
    result
}

/// The error for a tool call whose task failed (a panic, which is a bug).
pub fn internal(what: &str) -> RpcError {
    RpcError::new(INTERNAL_ERROR, format!("{what} failed inside hooks"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::INVALID_PARAMS;

    fn is_invalid_params(error: &RpcError) -> bool {
        error.code == INVALID_PARAMS
    }

    fn session() -> Session {
        Session::new(Tools::new(false, Vec::new(), "/nonexistent".into()))
    }

    fn params(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn modern_meta() -> Value {
        json!({"_meta": {META_VERSION: MODERN, META_CAPABILITIES: {}}})
    }

    #[test]
    fn initialize_negotiates_the_version() {
        let s = session();
        let asked = params(json!({"protocolVersion": "2025-06-18", "capabilities": {}}));
        let result = s.answer("initialize", &asked, Era::Legacy).unwrap();
        assert_eq!(result["protocolVersion"], "2025-06-18");
        assert_eq!(
            result["capabilities"]["tools"],
            json!({"listChanged": false})
        );
        assert_eq!(result["serverInfo"]["name"], "hooks");
        assert!(
            result.get("resultType").is_none(),
            "legacy results are plain"
        );
        let future = params(json!({"protocolVersion": "2099-01-01"}));
        let result = s.answer("initialize", &future, Era::Legacy).unwrap();
        assert_eq!(result["protocolVersion"], LEGACY[0]);
        let missing = s
            .answer("initialize", &Map::new(), Era::Legacy)
            .unwrap_err();
        assert!(is_invalid_params(&missing));
    }

    #[test]
    fn handshake_requests_wait_for_initialize() {
        let s = session();
        let early = s.era("tools/list", &Map::new()).unwrap_err();
        assert_eq!(early.code, INVALID_REQUEST);
        assert_eq!(s.era("ping", &Map::new()), Ok(Era::Legacy));
        s.answer(
            "initialize",
            &params(json!({"protocolVersion": "2025-11-25"})),
            Era::Legacy,
        )
        .unwrap();
        assert_eq!(s.era("tools/list", &Map::new()), Ok(Era::Legacy));
    }

    #[test]
    fn modern_requests_carry_their_version() {
        let s = session();
        assert_eq!(s.era("tools/list", &params(modern_meta())), Ok(Era::Modern));
        let old = json!({"_meta": {META_VERSION: "1900-01-01", META_CAPABILITIES: {}}});
        let error = s.era("tools/list", &params(old)).unwrap_err();
        assert_eq!(error.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(error.data.as_ref().unwrap()["requested"], "1900-01-01");
        assert_eq!(error.data.as_ref().unwrap()["supported"][0], MODERN);
        let bare = json!({"_meta": {META_VERSION: MODERN}});
        assert!(is_invalid_params(
            &s.era("tools/list", &params(bare)).unwrap_err()
        ));
        let probe = s.era("server/discover", &Map::new()).unwrap_err();
        assert!(is_invalid_params(&probe));
    }

    #[test]
    fn modern_results_say_their_type_and_cacheability() {
        let s = session();
        let found = s
            .answer("server/discover", &Map::new(), Era::Modern)
            .unwrap();
        assert_eq!(found["resultType"], "complete");
        assert_eq!(found["supportedVersions"][0], MODERN);
        assert_eq!(found["_meta"][META_SERVER_INFO]["name"], "hooks");
        assert_eq!(found["cacheScope"], "private");
        let tools = s.answer("tools/list", &Map::new(), Era::Modern).unwrap();
        assert_eq!(tools["ttlMs"], CACHE_TTL_MS);
        let pong = s.answer("ping", &Map::new(), Era::Modern).unwrap();
        assert!(pong.get("ttlMs").is_none());
        let unknown = s
            .answer("resources/list", &Map::new(), Era::Legacy)
            .unwrap_err();
        assert_eq!(unknown.code, METHOD_NOT_FOUND);
    }
}
