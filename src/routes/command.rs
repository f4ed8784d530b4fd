//! `hooks routes check` (every problem in the project file, exit 1 if any) and `hooks routes
//! explain` (which route each capture would take now, and why the others do not).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};

use super::explain::why_not;
use super::project::{describe, for_session, locate, read};
use super::{check, decide, parse, strip, unrouted_reason, Decision, Incoming, Mode, Routes};
use crate::cli::{RoutesArgs, RoutesCheckArgs, RoutesCommand, RoutesExplainArgs};
use crate::exchange::{display_path, Exchange};
use crate::inspect::sanitize::{cut_line, sanitize, write_json};
use crate::store::{self, Store};
use crate::UsageError;

/// Runs `hooks routes …`.
pub fn run(args: &RoutesArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        RoutesCommand::Check(args) => run_check(args),
        RoutesCommand::Explain(args) => explain(args).map(|()| ExitCode::SUCCESS),
    }
}

/// `hooks routes check`: the problems on stdout, then a summary; exit 1 if there are any.
fn run_check(args: &RoutesCheckArgs) -> anyhow::Result<ExitCode> {
    let path = project(args.project.as_deref())?;
    let parsed = parse(&read(&path)?);
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let problems = check::problems(&parsed, set);
    let mut out = io::stdout().lock();
    if problems.is_empty() {
        let routes = match parsed.routes.len() {
            1 => "1 route".to_owned(),
            n => format!("{n} routes"),
        };
        writeln!(out, "{}: {routes}, no problems", path.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{}",
        sanitize_keeping_lines(&describe(&path, &problems))
    )?;
    let count = match problems.len() {
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    };
    writeln!(out, "{}: {count}", path.display())?;
    Ok(ExitCode::FAILURE)
}

/// The file's text may hold anything: control characters are shown escaped, line by line.
fn sanitize_keeping_lines(text: &str) -> String {
    let lines: Vec<String> = text.lines().map(sanitize).collect();
    lines.join("\n")
}

/// The project file, which these commands cannot do without.
fn project(given: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    locate(given)?.ok_or_else(|| {
        UsageError(
            "no hooks.toml in this folder or its parents (up to the git repository's root); \
             pass --project FILE"
                .to_owned(),
        )
        .into()
    })
}

/// `hooks routes explain`.
fn explain(args: &RoutesExplainArgs) -> anyhow::Result<()> {
    let routes = for_session(
        args.project.as_deref(),
        false,
        &args.routes,
        args.forward_to.clone(),
    )?;
    if routes.file.is_none() && routes.routes.is_empty() {
        project(args.project.as_deref())?;
    }
    let store = Store::open(&store::path()?)?;
    let ids = match (args.id, &args.r#where) {
        (Some(reference), _) => vec![store.resolve(reference)?],
        (None, text) => {
            let filters = crate::cli::FilterArgs {
                r#where: text.clone(),
                ..Default::default()
            };
            let query = crate::list::query(&filters, false)?;
            let rows = store.list(query.as_ref(), args.limit)?;
            rows.into_iter().map(|row| row.id).collect()
        }
    };
    if ids.is_empty() {
        eprintln!("no captures match");
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    for id in ids {
        let capture = store.get(id)?;
        let verdict = capture.signature.as_ref().map(|s| s.verdict);
        let request = &capture.request;
        let size = request.body.len() as u64;
        let subject = Incoming::new(request, size, capture.received_at_ms, |_| verdict);
        let decision = decide(&routes.routes, &subject);
        let reasons = reasons(&routes, &decision, &subject);
        if args.json {
            write_json(
                &mut out,
                &explanation_json(&capture, &routes, &decision, &reasons),
            )?;
            out.write_all(b"\n")?;
        } else {
            write_explanation(&mut out, &capture, &routes, &decision, &reasons)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// For each route: whether it takes the request (`Some(None)`), why not (`Some(Some(why))`),
/// or `None` when it was not tried (a primary route after the one that takes it).
fn reasons(
    routes: &Routes,
    decision: &Decision,
    subject: &Incoming<'_>,
) -> Vec<Option<Option<String>>> {
    routes
        .routes
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let after = decision.primary.is_some_and(|chosen| i > chosen);
            if route.mode == Mode::Primary && after {
                None
            } else {
                Some(why_not(route.query.expr(), subject))
            }
        })
        .collect()
}

/// Where the request goes, for people: `billing: http://…` or `404: why`.
fn destination(
    capture: &Exchange,
    routes: &Routes,
    decision: &Decision,
) -> (Option<String>, String) {
    let path = &capture.request.path;
    match decision.primary.map(|i| &routes.routes[i]) {
        Some(route) => (
            Some(route.name.clone()),
            route
                .to
                .uri_for(&strip(path, route.strip_prefix.as_deref())),
        ),
        None => match &routes.default {
            Some(default) => (None, default.uri_for(path)),
            None => (None, String::new()),
        },
    }
}

fn write_explanation(
    out: &mut impl Write,
    capture: &Exchange,
    routes: &Routes,
    decision: &Decision,
    reasons: &[Option<Option<String>>],
) -> io::Result<()> {
    let request = &capture.request;
    let (route, target) = destination(capture, routes, decision);
    let goes = match (&route, target.is_empty()) {
        (Some(name), _) => format!("{name}: {target}"),
        (None, false) => format!("default: {target}"),
        (None, true) => format!(
            "404: {}",
            unrouted_reason(&routes.routes, &request.method, &request.path)
        ),
    };
    let mut head = format!(
        "#{}  {} {}  → {}",
        capture.number(),
        sanitize(&request.method),
        sanitize(&display_path(&request.path)),
        sanitize(&goes)
    );
    match (&capture.route, capture.copy) {
        (Some(copy), true) => head.push_str(&format!("  (the copy for {})", sanitize(copy))),
        (was, false) if *was != route => {
            let was = was.as_deref().unwrap_or("no route");
            head.push_str(&format!("  (captured through {})", sanitize(was)));
        }
        _ => {}
    }
    writeln!(out, "{}", cut_line(&head))?;
    let width = routes
        .routes
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0);
    for (route, reason) in routes.routes.iter().zip(reasons) {
        let copy = if route.mode == Mode::Copy {
            "copy, "
        } else {
            ""
        };
        let text = match reason {
            None => "not tried: an earlier route takes it".to_owned(),
            Some(None) if route.mode == Mode::Copy => format!(
                "copy, gets it: {}",
                route
                    .to
                    .uri_for(&strip(&request.path, route.strip_prefix.as_deref()))
            ),
            Some(None) => "takes it".to_owned(),
            Some(Some(why)) => format!("{copy}no: {why}"),
        };
        let line = format!("    {:width$}  {text}", route.name);
        writeln!(out, "{}", cut_line(&line))?;
    }
    Ok(())
}

fn explanation_json(
    capture: &Exchange,
    routes: &Routes,
    decision: &Decision,
    reasons: &[Option<Option<String>>],
) -> Value {
    let request = &capture.request;
    let (route, target) = destination(capture, routes, decision);
    let copies: Vec<Value> = decision
        .copies
        .iter()
        .map(|&i| {
            let copy = &routes.routes[i];
            let path = strip(&request.path, copy.strip_prefix.as_deref());
            json!({"route": copy.name, "target": copy.to.uri_for(&path)})
        })
        .collect();
    let each: Vec<Value> = routes
        .routes
        .iter()
        .zip(reasons)
        .map(|(route, reason)| {
            json!({
                "name": route.name,
                "mode": route.mode.as_str(),
                "matches": reason.as_ref().map(Option::is_none),
                "why_not": reason.clone().flatten(),
            })
        })
        .collect();
    let unrouted = (route.is_none() && target.is_empty())
        .then(|| unrouted_reason(&routes.routes, &request.method, &request.path));
    json!({
        "id": capture.id,
        "captured_route": capture.route,
        "route": route,
        "target": (!target.is_empty()).then_some(target),
        "unrouted": unrouted,
        "copies": copies,
        "routes": each,
    })
}
