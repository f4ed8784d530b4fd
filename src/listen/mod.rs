//! `hooks listen`: attach to a relay (or start one in-process), forward every webhook to the app,
//! send the app's answer back, and reconnect with backoff when the session drops.
//!
//! The stages, in the order a webhook goes through them:
//!
//! 1. `attach`: attaching, and reconnecting with backoff (the embedded relay, `--exit-after`);
//! 2. `connect`: one connection: the URL, TLS, the hello each way;
//! 3. `session`: the session's read and write loops, and bodies that arrive in pieces;
//! 4. `handle`: one request: forward it, answer the relay, verdict, record;
//! 5. `settle`: acknowledge and print it once its capture is committed.
//!
//! `delivery` tells requests apart across sessions, and `record` is the capture store as
//! `listen` writes it. What every stage shares is the `Context` here.

mod attach;
mod connect;
mod delivery;
mod handle;
mod record;
mod session;
mod settle;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::cli::ListenArgs;
use crate::exchange::Response;
use crate::forward::{ForwardError, Forwarder};
use crate::inspect::{self, OutputOptions, Printer};
use connect::Attachment;
use delivery::Handled;
use handle::Signatures;
use record::Recorder;
use session::{Outbox, SHUTDOWN_GRACE};
use settle::Settle;

/// What every request handler shares, across reconnections.
struct Context {
    forwarder: Forwarder,
    /// What the terminal shows.
    printer: Printer,
    /// Where answers and acknowledgements go: the attached session, if any.
    outbox: Outbox,
    handled: Mutex<Handled>,
    /// What the relay's hello said about the current session.
    session: Mutex<Option<Attachment>>,
    /// How to check signatures.
    signatures: Signatures,
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

/// Runs `hooks listen` until Ctrl-C/SIGTERM (`Ok`) or a failure that reconnecting cannot fix.
pub async fn listen(args: ListenArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let max_body = relay_server::protocol::DEFAULT_MAX_BODY;
    let forwarder = Forwarder::new(args.forward_to.clone(), max_body)?;
    let mut recorder = record::open(&args).await?;
    let commits = recorder.as_mut().and_then(Recorder::take_commits);
    let stored = recorder.is_some();
    let (printer, output) = output(&args, stored, &shutdown)?;
    let context = Arc::new(Context {
        forwarder,
        printer,
        outbox: Outbox::default(),
        handled: Mutex::new(Handled::default()),
        session: Mutex::new(None),
        signatures: Signatures {
            secrets: args.secrets.clone(),
            provider: args.provider,
            tolerance: args.tolerance,
        },
        recorder,
        settle: Settle::default(),
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
    let (printer, printing) = inspect::spawn_printer(output_options(args), stored);
    Ok((printer, Output::Lines(printing)))
}

/// Terminal facts and display choices, decided once.
fn output_options(args: &ListenArgs) -> OutputOptions {
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
                secrets: args.secrets.iter().map(|s| s.expose().to_owned()).collect(),
            },
        },
    }
}
