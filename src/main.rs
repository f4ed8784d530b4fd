//! The `hooks` binary: parse arguments, run, map the outcome to an exit code.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use hooks::cli::{Cli, Command};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `hooks relay`: the relay program under the hooks binary, as `hooks-relay` runs it.
    if let Command::Relay(args) = cli.command {
        return relay_server::cli::main(args, report);
    }
    init_logging();
    // One thread: the CLI waits on the network, and on a laptop's few cores every hop between
    // worker threads is a wakeup a webhook waits for. Printing and SQLite have their own threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hooks: error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        hooks::run(cli, shutdown).await
    });
    // Don't wait for tasks still blocked on a stdin or stdout that nobody reads.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            if err.downcast_ref::<hooks::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Prints `err` with its causes, once. Error messages quote what hooks was given and what peers
/// said (a relay's refusal, a file's contents), so they are sanitized like any untrusted text.
fn report(err: &anyhow::Error) {
    eprintln!(
        "hooks: error: {}",
        hooks::inspect::sanitize_lines(&format!("{err:#}"))
    );
}

/// Logs go to stderr, quiet unless `RUST_LOG` asks for more. tungstenite's trace level is
/// never written, whatever `RUST_LOG` says: it dumps every WebSocket frame whole, and the first
/// is the hello with the relay token (issue 17).
fn init_logging() {
    use tracing_subscriber::filter::{filter_fn, FilterExt as _};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The hint keeps the filter's level: without it the pair of filters has none, and every
    // disabled `trace!` of the libraries under `log` is built and dropped (1.4 µs a webhook).
    let hint = filter
        .max_level_hint()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::TRACE);
    let no_frame_dumps = filter_fn(|meta| {
        *meta.level() != tracing::Level::TRACE || !is_websocket_library(meta.target())
    })
    .with_max_level_hint(hint);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter.and(no_frame_dumps));
    tracing_subscriber::registry().with(layer).init();
}

/// Whether a log target is tungstenite's or tokio-tungstenite's.
fn is_websocket_library(target: &str) -> bool {
    ["tungstenite", "tokio_tungstenite"].iter().any(|name| {
        target
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let broken = Some(std::io::ErrorKind::BrokenPipe);
    err.chain().any(|cause| {
        // serde_json's writer errors carry the I/O error's kind, but not the error itself as
        // their source (`hooks show --json | head`).
        let io = cause.downcast_ref::<std::io::Error>().map(|e| e.kind());
        let json = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(|e| e.io_error_kind());
        io == broken || json == broken
    })
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM. The handlers are installed when this is called, not
/// when the task first runs: `hooks inspect` takes the terminal on a thread of its own in the
/// meantime, and a SIGTERM before the handler would kill it in raw mode. A signal that cannot
/// be registered is not waited for.
#[cfg(unix)]
fn cancel_on_signal(shutdown: CancellationToken) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt()).ok();
    let terminate = signal(SignalKind::terminate()).ok();
    async move {
        let received = |signal: Option<tokio::signal::unix::Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = received(interrupt) => {}
            () = received(terminate) => {}
        }
        shutdown.cancel();
    }
}

/// Cancels `shutdown` on Ctrl-C.
#[cfg(not(unix))]
fn cancel_on_signal(shutdown: CancellationToken) -> impl std::future::Future<Output = ()> {
    async move {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::is_broken_pipe;

    /// A stdout whose reader has gone.
    struct Closed;

    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stdout_is_recognised_through_json_and_context() {
        let json = serde_json::to_writer(Closed, &serde_json::json!({"a": 1})).unwrap_err();
        assert!(is_broken_pipe(
            &anyhow::Error::from(json).context("printing")
        ));
        let io = std::io::Write::write_all(&mut Closed, b"x").unwrap_err();
        assert!(is_broken_pipe(&anyhow::Error::from(io)));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!is_broken_pipe(&anyhow::Error::from(other)));
        let syntax = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert!(!is_broken_pipe(&anyhow::Error::from(syntax)));
    }
}
