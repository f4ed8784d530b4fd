//! Keeping the routes current: `hooks listen` says which project file it uses and how many
//! routes, then reads the file every [`POLL`] and, when it changed, replaces the routes. A
//! broken edit keeps the previous routes and says why; requests already routed keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Context;
use crate::inspect::sanitize_lines;
use crate::routes::{self, project, Problem, Routes};

/// How often the file is read: an edit is in use within two polls and a read.
const POLL: Duration = Duration::from_millis(500);

/// Most route names the stderr line lists.
const NAMES_SHOWN: usize = 8;

/// Says on stderr which routes the session uses (nothing without routes or a file), and what
/// `hooks routes check` would say of them.
pub(super) fn announce(routes: &Routes) {
    let source = match &routes.file {
        Some(file) => file.display().to_string(),
        None if routes.routes.is_empty() => return,
        None => "--route".to_owned(),
    };
    eprintln!(
        "{}",
        sanitize_lines(&format!("Routes from {source}: {}", summary(routes)))
    );
    warn(routes);
}

/// `3 routes (billing, stripe, ci-mirror copy), else http://localhost:3000`.
fn summary(routes: &Routes) -> String {
    let mut names: Vec<String> = routes
        .routes
        .iter()
        .take(NAMES_SHOWN)
        .map(|r| match r.mode {
            routes::Mode::Primary => r.name.clone(),
            routes::Mode::Copy => format!("{} copy", r.name),
        })
        .collect();
    if routes.routes.len() > NAMES_SHOWN {
        names.push(format!("{} more", routes.routes.len() - NAMES_SHOWN));
    }
    let count = match routes.routes.len() {
        1 => "1 route".to_owned(),
        n => format!("{n} routes"),
    };
    let listed = if names.is_empty() {
        String::new()
    } else {
        format!(" ({})", names.join(", "))
    };
    let default = match &routes.default {
        Some(target) => target.to_string(),
        None => "404".to_owned(),
    };
    format!("{count}{listed}, else {default}")
}

/// Warns of routes that can never match and secret variables that are not set.
fn warn(routes: &Routes) {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    for problem in routes::findings(&routes.routes, set) {
        eprintln!(
            "hooks: warning: {}",
            sanitize_lines(&located(routes.file.as_deref(), &problem))
        );
    }
}

/// `FILE:LINE: message`, or `--route: message` for a flag's route.
fn located(file: Option<&Path>, problem: &Problem) -> String {
    match (file, problem.line) {
        (Some(file), line) if line > 0 => format!("{}:{line}: {}", file.display(), problem.message),
        _ => format!("--route: {}", problem.message),
    }
}

/// Reads `file` every [`POLL`] until `stop`, and makes each changed version the routes, unless
/// it is broken.
pub(super) async fn watch(file: PathBuf, context: Arc<Context>, stop: CancellationToken) {
    let mut last = read(&file).await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let now = read(&file).await;
        if now == last {
            continue;
        }
        last = now.clone();
        let outcome = now.and_then(|text| {
            let parsed = project::parse_file(&file, &text)?;
            let routing = &context.routing;
            let forward_to = routing.forward_to.clone();
            let routes = Routes::new(Some(file.clone()), parsed, &routing.flags, forward_to)?;
            project::somewhere(&routes).map_err(|e| e.0)?;
            Ok(routes)
        });
        let kept = context.routing.table().routes.routes.len();
        match outcome {
            Ok(routes) => replace(&context, routes),
            Err(why) => eprintln!(
                "{}",
                sanitize_lines(&format!(
                    "hooks: {} changed and is not usable; keeping the previous routes ({kept}):\n{why}",
                    file.display()
                ))
            ),
        }
    }
}

/// Makes `routes` the session's, and says so.
fn replace(context: &Context, routes: Routes) {
    let before = context.routing.table();
    let channel_changed = routes.channel != before.routes.channel;
    let line = format!(
        "Routes reloaded from {}: {}",
        routes
            .file
            .as_deref()
            .map(Path::display)
            .map_or_else(String::new, |d| d.to_string()),
        summary(&routes)
    );
    warn(&routes);
    if let Err(e) = context.routing.replace(routes) {
        eprintln!("hooks: could not use the new routes ({e:#}); keeping the previous ones");
        return;
    }
    eprintln!("{}", sanitize_lines(&line));
    if channel_changed {
        eprintln!("hooks: the channel in the project file changed; it takes effect when hooks listen starts again");
    }
}

/// The file's text, or why it cannot be read (as a message).
async fn read(file: &Path) -> Result<String, String> {
    let path = file.to_owned();
    tokio::task::spawn_blocking(move || project::read(&path).map_err(|e| format!("{e:#}")))
        .await
        .unwrap_or_else(|e| Err(format!("could not read the project file: {e}")))
}
