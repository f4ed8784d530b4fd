//! `hooks listen`: attach to a relay (or start one in-process), forward every webhook to the app,
//! send the app's answer back, and reconnect with backoff when the session drops.
//!
//! The stages, in the order a webhook goes through them:
//!
//! 1. `attach`: attaching, and reconnecting with backoff (the embedded relay, `--exit-after`);
//! 2. `connect`: one connection: the URL, TLS, the hello each way;
//! 3. `session`: the session's read and write loops, and bodies that arrive in pieces;
//! 4. `handle`: one request: choose its route, forward it, answer the relay, verdict, record;
//! 5. `settle`: acknowledge and print it once its capture is committed.
//!
//! `delivery` tells requests apart across sessions, `record` is the capture store as `listen`
//! writes it, `routing` the routes (`hooks.toml`, `--route`) as `listen` uses them and `reload`
//! keeps them current. What every stage shares is the `Context` here.

mod attach;
mod connect;
mod delivery;
mod handle;
mod record;
mod reload;
mod routing;
mod session;
mod settle;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::cli::ListenArgs;
use crate::exchange::Response;
use crate::forward::ForwardError;
use crate::inspect::{self, OutputOptions, Printer};
use crate::routes::Routes;
use connect::Attachment;
use delivery::Handled;
use record::Recorder;
use routing::{Routing, SignatureFlags};
use session::{Outbox, SHUTDOWN_GRACE};
use settle::Settle;

/// What every request handler shares, across reconnections.
struct Context {
    /// Where requests go: the routes and the default target, with their forwarders.
    routing: Routing,
    /// What the terminal shows.
    printer: Printer,
    /// Where answers and acknowledgements go: the attached session, if any.
    outbox: Outbox,
    handled: Mutex<Handled>,
    /// What the relay's hello said about the current session.
    session: Mutex<Option<Attachment>>,
    /// The capture store, unless `--no-capture`.
    recorder: Option<Recorder>,
    /// Exchanges waiting for their captures' commits.
    settle: Settle,
}

impl Context {
    /// `response`, unless its body is over the relay's `--max-body`: the relay would answer
    /// `502` to it, and might end the session rather than read so large a frame.
    fn within_relay_limit(&self, response: Response) -> Result<Response, ForwardError> {
        match self.session().as_ref().and_then(|s| s.max_body) {
            Some(max) if response.body.len() > max => Err(ForwardError::OverRelayLimit(max)),
            _ => Ok(response),
        }
    }

    /// Makes `attachment` the current session's.
    fn attach(&self, attachment: Attachment) {
        *self.session() = Some(attachment);
    }

    fn session(&self) -> MutexGuard<'_, Option<Attachment>> {
        self.session.lock().expect("session lock is never poisoned")
    }

    fn handled(&self) -> MutexGuard<'_, Handled> {
        self.handled.lock().expect("handled lock is never poisoned")
    }
}

/// Runs `hooks listen` with `routes` (see [`crate::routes::project::for_session`]) until
/// Ctrl-C/SIGTERM (`Ok`) or a failure that reconnecting cannot fix.
pub async fn listen(
    args: ListenArgs,
    routes: Routes,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let max_body = relay_server::protocol::DEFAULT_MAX_BODY;
    reload::announce(&routes);
    let project = routes.file.clone();
    let route_secrets = routing::route_secrets(&routes);
    let flags = SignatureFlags {
        secrets: args.secrets.clone(),
        provider: args.provider,
        tolerance: args.tolerance,
    };
    let routing = Routing::new(
        routes,
        flags,
        args.routes.clone(),
        args.forward_to.clone(),
        max_body,
    )?;
    let mut recorder = record::open(&args).await?;
    let commits = recorder.as_mut().and_then(Recorder::take_commits);
    let stored = recorder.is_some();
    let (printer, output) = output(&args, stored, &shutdown, route_secrets)?;
    let context = Arc::new(Context {
        routing,
        printer,
        outbox: Outbox::default(),
        handled: Mutex::new(Handled::default()),
        session: Mutex::new(None),
        recorder,
        settle: Settle::default(),
    });
    let reloading = project.map(|file| {
        let stop = shutdown.child_token();
        let task = tokio::spawn(reload::watch(file, Arc::clone(&context), stop.clone()));
        (stop, task)
    });
    let settle_stop = CancellationToken::new();
    let settling = commits.map(|commits| {
        let context = Arc::clone(&context);
        let stop = settle_stop.clone();
        tokio::spawn(async move {
            if let Some(recorder) = &context.recorder {
                let (outbox, printer) = (&context.outbox, &context.printer);
                let settle = &context.settle;
                settle.run(outbox, recorder, printer, commits, stop).await;
            }
        })
    });
    let relay_stop = CancellationToken::new();
    let (relay_url, embedded) = match &args.relay {
        Some(url) => (url.trim_end_matches('/').to_owned(), None),
        None => {
            let (url, task) = attach::start_embedded_relay(relay_stop.clone()).await?;
            (url, Some(task))
        }
    };
    let result =
        attach::attach_loop(&args, &relay_url, embedded.is_some(), &context, &shutdown).await;
    if let Output::Inspector(_) = output {
        // The inspector ends with listen, and gives the terminal back before an error is
        // printed.
        shutdown.cancel();
    }
    if let Some((stop, task)) = reloading {
        stop.cancel();
        let _ = task.await;
    }
    // Print what is still waiting for its commit, then let the printer finish.
    settle_stop.cancel();
    if let Some(task) = settling {
        let abort = task.abort_handle();
        if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
            debug!("uncommitted captures left at exit");
            abort.abort();
        }
    }
    drop(context);
    let shown = match output {
        Output::Lines(printing) => {
            let _ = printing.await;
            Ok(())
        }
        Output::Inspector(inspector) => inspector
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the inspector failed: {e}"))),
    };
    relay_stop.cancel();
    if let Some(task) = embedded {
        let _ = task.await;
    }
    result.and(shown)
}

/// Who shows the exchanges: the printer's thread, or the inspector (`--ui`).
enum Output {
    Lines(tokio::task::JoinHandle<()>),
    Inspector(tokio::task::JoinHandle<anyhow::Result<()>>),
}

/// The printer `listen` offers exchanges to, and who consumes what it is offered: the
/// inspector with `--ui` on a terminal (it cancels `shutdown` when it quits), else the printing
/// thread.
fn output(
    args: &ListenArgs,
    stored: bool,
    shutdown: &CancellationToken,
    route_secrets: Vec<String>,
) -> anyhow::Result<(Printer, Output)> {
    if args.ui && inspect::ui::is_terminal() {
        let (printer, feed) = inspect::feed(stored);
        let options = inspect::ui::Options {
            source: inspect::ui::Source::Listen,
            store: crate::store::path()?,
            secrets: args.secrets.clone(),
            provider: args.provider,
            target: None,
            filter: None,
        };
        let inspector = tokio::spawn(inspect::ui::run(options, Some(feed), shutdown.clone()));
        return Ok((printer, Output::Inspector(inspector)));
    }
    if args.ui {
        eprintln!("hooks: --ui needs a terminal (stdin and stdout); printing lines instead");
    }
    let (printer, printing) = inspect::spawn_printer(output_options(args, route_secrets), stored);
    Ok((printer, Output::Lines(printing)))
}

/// Terminal facts and display choices, decided once; `route_secrets` are masked too.
fn output_options(args: &ListenArgs, route_secrets: Vec<String>) -> OutputOptions {
    let color = !args.json && args.color.enabled();
    let print = if args.verbose {
        inspect::Print::ALL
    } else {
        args.print.unwrap_or_default()
    };
    let palette = inspect::Palette::new(color);
    OutputOptions {
        json: args.json,
        palette,
        width: args.width.unwrap_or_else(inspect::palette::terminal_width),
        print,
        body: inspect::BodyStyle {
            max_lines: args.max_body_lines,
            palette,
            redactor: inspect::Redactor {
                show_secrets: args.show_secrets,
                secrets: args
                    .secrets
                    .iter()
                    .map(|s| s.expose().to_owned())
                    .chain(route_secrets)
                    .collect(),
            },
        },
    }
}
