//! The `hooks.toml` format: a `[listen]` table and ordered `[[route]]` tables, read with the
//! line of every key so that each problem names where it is. Reading never stops at the first
//! problem: `hooks routes check` lists them all.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{Mode, Route};
use crate::query::{Query, Stage};
use crate::target::Target;
use crate::verify::Provider;

/// Largest `hooks.toml` read, in bytes: a route table, not a data file.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Most routes a file may hold: each one is tried for every webhook.
pub const MAX_ROUTES: usize = 256;

/// The keys of `[listen]`.
const LISTEN_KEYS: &[&str] = &["channel", "default"];

/// The keys of a `[[route]]`.
const ROUTE_KEYS: &[&str] = &[
    "name",
    "match",
    "to",
    "strip_prefix",
    "provider",
    "secret_env",
    "mode",
];

/// Longest route name.
const MAX_NAME: usize = 64;

/// Something wrong in the file, and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong; a bad expression adds its text and a caret on the lines after.
    pub message: String,
}

/// What a file holds: whatever could be read, and every problem.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// `[listen] channel`.
    pub channel: Option<String>,
    /// `[listen] default`.
    pub default: Option<Target>,
    /// The routes that could be read, in order.
    pub routes: Vec<Route>,
    /// What is wrong, in the order of the file.
    pub problems: Vec<Problem>,
}

/// Reads a `hooks.toml`.
pub fn parse(text: &str) -> Parsed {
    let mut reader = Reader {
        text,
        parsed: Parsed::default(),
        names: Vec::new(),
    };
    if text.len() > MAX_FILE_BYTES {
        reader.problem(0..0, format!("the file is over {MAX_FILE_BYTES} bytes"));
        return reader.parsed;
    }
    match DeTable::parse(text) {
        Ok(document) => reader.document(document.get_ref()),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            reader.problem(span, format!("not valid TOML: {}", e.message().trim_end()));
        }
    }
    reader.parsed.problems.sort_by_key(|p| p.line);
    reader.parsed
}

/// A route's `match`: a `--where` expression over what is known before the app answers.
pub(super) fn routing_query(text: &str) -> Result<Query, crate::query::ParseError> {
    let query = Query::parse(text)?;
    query.check(Stage::Routing)?;
    Ok(query)
}

struct Reader<'t> {
    text: &'t str,
    parsed: Parsed,
    /// Every route name so far, and its line (also of routes with problems).
    names: Vec<(String, usize)>,
}

type Entry<'a, 'i> = (
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
);

impl Reader<'_> {
    /// The line of byte offset `at`, from 1.
    fn line(&self, at: usize) -> usize {
        let at = at.min(self.text.len());
        self.text.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn problem(&mut self, span: Range<usize>, message: String) {
        let line = self.line(span.start);
        self.parsed.problems.push(Problem { line, message });
    }

    fn document(&mut self, document: &DeTable<'_>) {
        for (key, value) in document.iter() {
            match key.get_ref().as_ref() {
                "listen" => match value.get_ref() {
                    DeValue::Table(table) => self.listen(table),
                    _ => self.problem(value.span(), "[listen] must be a table".into()),
                },
                "route" => self.routes(value),
                other => self.problem(
                    key.span(),
                    format!("unknown key {other:?} (expected [listen] or [[route]])"),
                ),
            }
        }
    }

    fn listen(&mut self, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "channel" => self.parsed.channel = self.string(key, value),
                "default" => {
                    self.parsed.default = self
                        .string(key, value)
                        .and_then(|text| self.target((key, value), &text, "default"))
                }
                other => self.unknown(key, other, "[listen]", LISTEN_KEYS),
            }
        }
    }

    fn routes(&mut self, value: &Spanned<DeValue<'_>>) {
        let DeValue::Array(tables) = value.get_ref() else {
            self.problem(value.span(), "route must be [[route]] tables".into());
            return;
        };
        for (i, table) in tables.iter().enumerate() {
            if i == MAX_ROUTES {
                let message = format!("more than {MAX_ROUTES} routes");
                self.problem(table.span(), message);
                return;
            }
            match table.get_ref() {
                DeValue::Table(entries) => self.route(table.span(), entries),
                _ => self.problem(table.span(), "route must be [[route]] tables".into()),
            }
        }
    }

    /// One `[[route]]` table, written at `span`.
    fn route(&mut self, span: Range<usize>, table: &DeTable<'_>) {
        let mut draft = Draft::default();
        for (key, value) in table.iter() {
            let entry = (key, value);
            match key.get_ref().as_ref() {
                "name" => draft.name = self.name(entry),
                "match" => draft.query = self.query(entry),
                "to" => {
                    draft.to_given = true;
                    let text = self.string(key, value);
                    draft.to = text.and_then(|text| self.target(entry, &text, "to"));
                }
                "strip_prefix" => draft.strip_prefix = self.strip_prefix(entry),
                "provider" => draft.provider = self.provider(entry),
                "secret_env" => draft.secret_env = self.secret_env(entry),
                "mode" => draft.mode = self.mode(entry),
                other => self.unknown(key, other, "[[route]]", ROUTE_KEYS),
            }
        }
        let line = self.line(span.start);
        if let Some(Ok(name)) = &draft.name {
            self.names.push((name.clone(), line));
        }
        let what = match &draft.name {
            Some(Ok(name)) => format!("route {name:?}"),
            _ => "the route".to_owned(),
        };
        for (key, present) in [
            ("name", draft.name.is_some()),
            ("match", draft.query.is_some()),
            ("to", draft.to_given),
        ] {
            if !present {
                self.problem(span.clone(), format!("{what} has no {key}"));
            }
        }
        if let Some(route) = draft.finish(line) {
            self.parsed.routes.push(route);
        }
    }

    fn unknown(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        name: &str,
        table: &str,
        known: &[&str],
    ) {
        let message = format!(
            "unknown key {name:?} in {table} (expected {})",
            known.join(", ")
        );
        self.problem(key.span(), message);
    }

    /// A string value; a problem when it is something else.
    fn string(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Option<String> {
        match value.get_ref() {
            DeValue::String(text) => Some(text.to_string()),
            other => {
                let message = format!(
                    "{} must be a string, not {}",
                    key.get_ref(),
                    other.type_str()
                );
                self.problem(value.span(), message);
                None
            }
        }
    }

    fn target(&mut self, (_, value): Entry<'_, '_>, text: &str, key: &str) -> Option<Target> {
        match text.parse::<Target>() {
            Ok(target) => Some(target),
            Err(e) => {
                self.problem(value.span(), format!("{key} {text:?} is not a target: {e}"));
                None
            }
        }
    }

    /// The name, or `Err` when it is there but not usable (so it is not "missing" too).
    fn name(&mut self, (key, value): Entry<'_, '_>) -> Option<Result<String, ()>> {
        let Some(name) = self.string(key, value) else {
            return Some(Err(()));
        };
        let good = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(good) {
            let message = format!(
                "route name {name:?} must be 1 to {MAX_NAME} letters, digits, '-', '_' or '.'"
            );
            self.problem(value.span(), message);
            return Some(Err(()));
        }
        if let Some((_, line)) = self.names.iter().find(|(taken, _)| *taken == name) {
            let message = format!("route name {name:?} is taken by the route on line {line}");
            self.problem(value.span(), message);
            return Some(Err(()));
        }
        Some(Ok(name))
    }

    fn query(&mut self, (key, value): Entry<'_, '_>) -> Option<Result<Query, ()>> {
        let text = self.string(key, value)?;
        match routing_query(&text) {
            Ok(query) => Some(Ok(query)),
            Err(e) => {
                self.problem(
                    value.span(),
                    format!("match is not a valid expression\n{e}"),
                );
                Some(Err(()))
            }
        }
    }

    fn strip_prefix(&mut self, (key, value): Entry<'_, '_>) -> Option<String> {
        let text = self.string(key, value)?;
        let trimmed = text.trim_end_matches('/');
        if !text.starts_with('/') || text.contains(['?', '#', '*']) {
            let message =
                format!("strip_prefix {text:?} must be a path starting with '/', e.g. \"/stripe\"");
            self.problem(value.span(), message);
            return None;
        }
        // "/" strips nothing.
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    fn provider(&mut self, (key, value): Entry<'_, '_>) -> Option<Provider> {
        let text = self.string(key, value)?;
        match text.parse::<Provider>() {
            Ok(provider) => Some(provider),
            Err(e) => {
                self.problem(value.span(), e.to_string());
                None
            }
        }
    }

    fn secret_env(&mut self, (key, value): Entry<'_, '_>) -> Option<String> {
        let name = self.string(key, value)?;
        let mut chars = name.chars();
        let first = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let message = format!(
                "secret_env {name:?} must be the name of an environment variable, e.g. \
                 STRIPE_WEBHOOK_SECRET (the file holds no secrets)"
            );
            self.problem(value.span(), message);
            return None;
        }
        Some(name)
    }

    fn mode(&mut self, (key, value): Entry<'_, '_>) -> Option<Mode> {
        match self.string(key, value)?.as_str() {
            "primary" => Some(Mode::Primary),
            "copy" => Some(Mode::Copy),
            other => {
                let message = format!("mode {other:?} must be \"primary\" or \"copy\"");
                self.problem(value.span(), message);
                None
            }
        }
    }
}

/// A route's keys as read so far; `Some(Err(()))`: given, but wrong (already reported).
#[derive(Default)]
struct Draft {
    name: Option<Result<String, ()>>,
    query: Option<Result<Query, ()>>,
    to: Option<Target>,
    /// `to` was given, even if it is not a target (reported already).
    to_given: bool,
    strip_prefix: Option<String>,
    provider: Option<Provider>,
    secret_env: Option<String>,
    mode: Option<Mode>,
}

impl Draft {
    /// The route, when every key it needs is there and right; `None` when something was
    /// reported already.
    fn finish(self, line: usize) -> Option<Route> {
        let (Some(Ok(name)), Some(Ok(query)), Some(to)) = (self.name, self.query, self.to) else {
            return None;
        };
        Some(Route {
            name,
            query,
            to,
            strip_prefix: self.strip_prefix,
            provider: self.provider,
            secret_env: self.secret_env,
            mode: self.mode.unwrap_or(Mode::Primary),
            line: Some(line),
        })
    }
}

#[cfg(test)]
mod tests;
