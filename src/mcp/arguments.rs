//! Reading a tool call's `arguments`: each tool names the arguments it takes, and anything
//! missing, extra or of the wrong type is a [`ToolError`] the agent can correct and retry with.

use serde_json::{Map, Value};

use crate::exchange::CaptureId;
use crate::store::CaptureRef;

/// A failed tool call, told to the agent as the tool's result (`isError: true`) so that it can
/// correct its call; the message is one sentence saying what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl ToolError {
    /// A tool error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError(message.into())
    }
}

impl<E: std::error::Error> From<E> for ToolError {
    fn from(error: E) -> Self {
        ToolError(error.to_string())
    }
}

/// A call's arguments, checked against the names its tool takes.
pub struct Arguments<'a> {
    tool: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Arguments<'a> {
    /// The arguments of a call to `tool`, which takes only those named in `known`.
    pub fn new(
        tool: &'a str,
        map: &'a Map<String, Value>,
        known: &[&str],
    ) -> Result<Self, ToolError> {
        if let Some(extra) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ToolError(format!(
                "{tool} has no argument {extra:?}; it takes {}",
                known.join(", ")
            )));
        }
        Ok(Arguments { tool, map })
    }

    /// A string argument; `None` when absent or null.
    pub fn string(&self, name: &str) -> Result<Option<String>, ToolError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(self.wrong(name, "a string", other)),
        }
    }

    /// A list of strings; empty when absent or null.
    pub fn strings(&self, name: &str) -> Result<Vec<String>, ToolError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.clone()),
                    other => Err(self.wrong(name, "a list of strings", other)),
                })
                .collect(),
            Some(other) => Err(self.wrong(name, "a list of strings", other)),
        }
    }

    /// A whole-number argument from `min` to `max`; `None` when absent or null.
    pub fn integer(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, ToolError> {
        let value = match self.map.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(value) => value,
        };
        match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(self.wrong(name, &format!("a whole number from {min} to {max}"), value)),
        }
    }

    /// A capture: its id as a number (`12`) or a string (`"12"`, `"#12"`, `"last"`); `None`
    /// when absent or null.
    pub fn capture(&self, name: &str) -> Result<Option<CaptureRef>, ToolError> {
        let value = match self.map.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(value) => value,
        };
        let parsed = match value {
            Value::Number(n) => n
                .as_i64()
                .filter(|id| *id > 0)
                .map(|id| CaptureRef::Id(CaptureId(id))),
            Value::String(text) => text.parse().ok(),
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| {
            self.wrong(
                name,
                "a capture id such as 12 (from list_captures), or \"last\"",
                value,
            )
        })
    }

    fn wrong(&self, name: &str, wanted: &str, got: &Value) -> ToolError {
        let mut shown = got.to_string();
        if shown.len() > 60 {
            shown = format!("{}…", shown.chars().take(60).collect::<String>());
        }
        ToolError(format!(
            "{}: {name} must be {wanted}, not {shown}",
            self.tool
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn unknown_arguments_are_named() {
        let args = map(json!({"limit": 3, "colour": "red"}));
        let error = Arguments::new("list_captures", &args, &["where", "limit"])
            .err()
            .unwrap();
        assert_eq!(
            error.0,
            "list_captures has no argument \"colour\"; it takes where, limit"
        );
    }

    #[test]
    fn values_are_checked() {
        let args = map(json!({"n": 0, "s": 5, "id": "#12", "last": "last", "bad": -3}));
        let args = Arguments::new("t", &args, &["n", "s", "id", "last", "bad", "none"]).unwrap();
        assert_eq!(
            args.integer("n", 1, 10).unwrap_err().0,
            "t: n must be a whole number from 1 to 10, not 0"
        );
        assert_eq!(args.integer("none", 1, 10), Ok(None));
        assert!(args.string("s").is_err());
        assert_eq!(args.capture("id"), Ok(Some(CaptureRef::Id(CaptureId(12)))));
        assert_eq!(args.capture("last"), Ok(Some(CaptureRef::Last)));
        assert!(args.capture("bad").is_err());
    }
}
