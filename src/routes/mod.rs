//! Routing: which local app each webhook goes to, from a checked-in `hooks.toml` and `--route`
//! flags. Routing runs in the CLI; the relay knows nothing of it.
//!
//! ```toml
//! [listen]
//! channel = "acme-dev"
//! default = "http://localhost:3000"
//!
//! [[route]]
//! name = "billing"
//! match = "path:/stripe* AND event:invoice.*"
//! to = "http://localhost:4000/billing"
//! ```
//!
//! Routes are tried in order: the first matching *primary* route forwards the request and its
//! app's answer goes to the sender; every matching *copy* route gets the request too, and its
//! answer is recorded as a capture of its own. Unmatched requests go to the default target, or
//! get `404` with a one-line reason.
//!
//! - `file`: the file format, read with the line of every problem;
//! - `lookup`: finding `hooks.toml` as cargo finds `Cargo.toml`;
//! - `matcher`: a request as a `--where` subject, the decision, the path rewrite;
//! - `project`: reading the file for a command, problems and all;
//! - `shadow`: routes an earlier one leaves nothing to;
//! - `explain`: why an expression does not match a request;
//! - `check` and `command`: `hooks routes check` and `hooks routes explain`.

mod check;
mod command;
mod explain;
mod file;
mod lookup;
mod matcher;
pub mod project;
mod shadow;

use std::path::PathBuf;

use crate::query::Query;
use crate::target::Target;
use crate::verify::Provider;

pub use check::findings;
pub use command::run;
pub use file::{parse, Parsed, Problem, MAX_FILE_BYTES, MAX_ROUTES};
pub use lookup::{find, FILE_NAME};
pub use matcher::{decide, needs_body, strip, unrouted_reason, Decision, Incoming};
pub use shadow::{covers, shadowed_by};

/// Whether a route answers the sender or gets a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The first matching primary route forwards the request; its app answers the sender.
    Primary,
    /// Every matching copy route gets the request too; its answer is recorded, not returned.
    Copy,
}

impl Mode {
    /// `primary` or `copy`, as the file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Primary => "primary",
            Mode::Copy => "copy",
        }
    }
}

/// One route: which requests, and where they go.
#[derive(Debug, Clone)]
pub struct Route {
    /// Its name, as captures record it (`route:NAME`).
    pub name: String,
    /// Which requests: a `--where` expression over request fields.
    pub query: Query,
    /// Where they go; the request's path (less `strip_prefix`) is appended.
    pub to: Target,
    /// Taken off the start of the path before it is appended to `to`.
    pub strip_prefix: Option<String>,
    /// The provider whose signature scheme to check and re-sign with.
    pub provider: Option<Provider>,
    /// The environment variable holding the signing secret (the file holds no secrets).
    pub secret_env: Option<String>,
    /// Primary or copy.
    pub mode: Mode,
    /// Where it was written: the file's line, or `None` for a `--route` flag.
    pub line: Option<usize>,
}

impl Route {
    /// Where it was written, for messages: `line 12`, or `--route`.
    pub fn origin(&self) -> String {
        match self.line {
            Some(line) => format!("line {line}"),
            None => "--route".to_owned(),
        }
    }
}

/// The routes of one session: the `--route` flags' first, then the file's.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// The file they came from, if any.
    pub file: Option<PathBuf>,
    /// The `[listen]` table's channel.
    pub channel: Option<String>,
    /// Where unmatched requests go: `--forward-to`, else the file's `default`.
    pub default: Option<Target>,
    /// In the order they are tried.
    pub routes: Vec<Route>,
}

impl Routes {
    /// The routes in `parsed` (from `file`), after `flags`; `forward_to` replaces the file's
    /// default. Names must be unique across both.
    pub fn new(
        file: Option<PathBuf>,
        parsed: Parsed,
        flags: &[FlagRoute],
        forward_to: Option<Target>,
    ) -> Result<Routes, String> {
        let mut routes: Vec<Route> = flags
            .iter()
            .enumerate()
            .map(|(i, flag)| flag.route(i + 1))
            .collect();
        for route in parsed.routes {
            if let Some(flag) = routes.iter().find(|r| r.name == route.name) {
                return Err(format!(
                    "route name {:?} ({}) is also the name of a --route flag's route; rename it",
                    flag.name,
                    route.origin()
                ));
            }
            routes.push(route);
        }
        Ok(Routes {
            file,
            channel: parsed.channel,
            default: forward_to.or(parsed.default),
            routes,
        })
    }

    /// The route called `name`.
    pub fn named(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// How the session's targets read on one line: `3 routes, else http://localhost:3000`.
    pub fn describe(&self) -> String {
        let routes = match self.routes.len() {
            0 => String::new(),
            1 => "1 route, else ".to_owned(),
            n => format!("{n} routes, else "),
        };
        match &self.default {
            Some(default) => format!("{routes}{default}"),
            None => format!("{routes}404"),
        }
    }
}

/// A `--route 'MATCH=>TARGET'` flag: a primary route for one session, without a file.
#[derive(Debug, Clone)]
pub struct FlagRoute {
    /// The match expression.
    pub query: Query,
    /// Where matching requests go.
    pub to: Target,
}

impl FlagRoute {
    /// The route of the `n`th flag (from 1), named `cli-N`.
    fn route(&self, n: usize) -> Route {
        Route {
            name: format!("cli-{n}"),
            query: self.query.clone(),
            to: self.to.clone(),
            strip_prefix: None,
            provider: None,
            secret_env: None,
            mode: Mode::Primary,
            line: None,
        }
    }
}

impl std::str::FromStr for FlagRoute {
    type Err = String;

    /// `MATCH=>TARGET`, split at the last `=>` (a target has none).
    fn from_str(text: &str) -> Result<FlagRoute, String> {
        let Some((expr, to)) = text.rsplit_once("=>") else {
            return Err(format!(
                "{text:?} is not a route: use 'MATCH=>TARGET', e.g. 'event:invoice.*=>4000'"
            ));
        };
        let query = file::routing_query(expr.trim())
            .map_err(|e| format!("the match of --route is not valid\n{e}"))?;
        let to = to
            .trim()
            .parse()
            .map_err(|e| format!("the target of --route is not valid: {e}"))?;
        Ok(FlagRoute { query, to })
    }
}
