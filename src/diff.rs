//! `hooks diff`: two captures compared (see `query::diff`), for people or as one JSON object;
//! exit 0 when they are the same, 1 when they differ.

use std::io::{self, Write};
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::cli::DiffArgs;
use crate::inspect::Palette;
use crate::query::diff::{self, Options};
use crate::store::{self, Store};

/// Runs `hooks diff`.
pub fn diff(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&store::path()?)?;
    let (a, b) = (store.load(args.a)?, store.load(args.b)?);
    let options = Options {
        ignore: args.ignore.clone(),
        ignore_headers: Vec::new(),
    };
    let found = diff::diff(&a, &b, &options);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer(&mut out, &to_json(a.number(), b.number(), &found)?)?;
        out.write_all(b"\n")?;
    } else {
        let labels = [format!("#{}", a.number()), format!("#{}", b.number())];
        let palette = Palette::new(args.color.enabled());
        diff::render(&found, [&labels[0], &labels[1]], &palette, &mut out)?;
    }
    out.flush()?;
    Ok(if found.is_same() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `hooks diff --json`'s object (MCP's `diff_captures` returns it too): `a`, `b`, `same`, then
/// the diff's fields.
pub fn to_json(a: u64, b: u64, found: &diff::Diff) -> serde_json::Result<Value> {
    let mut value = json!({"a": a, "b": b, "same": found.is_same()});
    if let (Value::Object(head), Value::Object(rest)) = (&mut value, serde_json::to_value(found)?) {
        head.extend(rest);
    }
    Ok(value)
}
