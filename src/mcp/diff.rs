//! `diff_captures`: two captures compared by `hooks diff`'s engine, returned as the object
//! `hooks diff --json` prints, with credential and signature header values shortened as
//! `show_capture` shortens them.

use std::path::Path;

use serde_json::{json, Value};

use super::arguments::ToolError;
use crate::inspect::Redactor;
use crate::query::diff::{self, Options};
use crate::query::value::Pointer;
use crate::store::{CaptureRef, Store};

/// A `diff_captures` call.
pub struct DiffCall {
    /// The first capture.
    pub a: CaptureRef,
    /// The second.
    pub b: CaptureRef,
    /// JSON pointers left out of both bodies.
    pub ignore: Vec<Pointer>,
}

/// Runs `diff_captures`.
pub fn diff(store: &Path, call: &DiffCall, redactor: &Redactor) -> Result<Value, ToolError> {
    let reader = Store::open(store)?;
    let (a, b) = (reader.load(call.a)?, reader.load(call.b)?);
    let options = Options {
        ignore: call.ignore.clone(),
        ignore_headers: Vec::new(),
    };
    let found = diff::diff(&a, &b, &options);
    let mut value = crate::diff::to_json(a.number(), b.number(), &found)
        .map_err(|e| ToolError::new(format!("diff_captures: {e}")))?;
    redact(&mut value["request_headers"], redactor);
    redact(&mut value["response"]["headers"], redactor);
    Ok(value)
}

/// Shortens the values (`value`, `a`, `b`) of sensitive headers in a list of header changes.
fn redact(changes: &mut Value, redactor: &Redactor) {
    let Some(list) = changes.as_array_mut() else {
        return;
    };
    for change in list {
        let Some(name) = change["name"].as_str().map(str::to_owned) else {
            continue;
        };
        for field in ["value", "a", "b"] {
            if let Some(text) = change.get(field).and_then(Value::as_str) {
                let shown = redactor.header(&name, text);
                change[field] = json!(shown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_values_in_header_changes_are_shortened() {
        let mut changes = json!([
            {"op": "changed", "name": "stripe-signature",
             "a": "t=1700000000,v1=deadbeefdeadbeef", "b": "t=1700000999,v1=feedfacefeedface"},
            {"op": "added", "name": "x-attempt", "value": "2"},
        ]);
        redact(&mut changes, &Redactor::default());
        assert_eq!(changes[0]["a"], "t=170000…(redacted, 32 chars)");
        assert_eq!(changes[0]["b"], "t=170000…(redacted, 32 chars)");
        assert_eq!(changes[1]["value"], "2");
    }
}
