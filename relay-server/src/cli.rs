//! The relay as a command (`hooks-relay`, and `hooks relay`): settings from flags and the config
//! file, logging, signals, and a first stdout line saying where it listens.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _};
use tokio::sync::Notify;

use crate::config::{Args, Settings};

/// What the `hooks-relay` program was asked to do.
pub enum Invocation {
    /// Run the relay with these flags (boxed: they are large, the other variant is a byte).
    Serve(Box<Args>),
    /// Print the completion script for this shell and exit.
    Completions(clap_complete::Shell),
}

/// The `hooks-relay` program's command line: the relay's flags ([`Args`]) and `--completions`,
/// which only the standalone program has (`hooks completions` covers `hooks relay`). The man
/// page `hooks man` writes for hooks-relay is rendered from this.
pub fn command() -> clap::Command {
    Args::command().arg(
        clap::Arg::new("completions")
            .long("completions")
            .value_name("SHELL")
            .value_parser(clap::value_parser!(clap_complete::Shell))
            .help("Print a completion script for SHELL (bash, zsh, fish, powershell, elvish) and exit")
            .long_help(
                "Print a completion script for SHELL (bash, zsh, fish, powershell, elvish) and \
                 exit\n\n\
                 bash: source <(hooks-relay --completions bash) in ~/.bashrc. zsh: write it to \
                 _hooks-relay in a folder on $fpath. fish: write it to \
                 ~/.config/fish/completions/hooks-relay.fish.",
            ),
    )
}

/// Parses the program's arguments; bad ones print clap's message and exit 2. With
/// `--completions` the other flags are ignored (not refused: `HOOKS_RELAY_*` variables set on a
/// server count as flags given).
pub fn parse() -> Invocation {
    let matches = command().get_matches();
    if let Some(shell) = matches.get_one::<clap_complete::Shell>("completions") {
        return Invocation::Completions(*shell);
    }
    match Args::from_arg_matches(&matches) {
        Ok(args) => Invocation::Serve(Box::new(args)),
        Err(e) => e.format(&mut command()).exit(),
    }
}

/// Writes the completion script of `hooks-relay` for `shell`.
pub fn completions(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    // Into memory first: clap_complete panics on a failed write (`… | head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "hooks-relay", &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// The relay program (`hooks-relay`, and `hooks relay`) from its flags to its exit code: the
/// settings (flags and the config file) and the worker threads, the runtime, logging, then
/// [`serve`]. Bad settings exit 2; a runtime that does not start, or a relay that fails, exit 1.
/// `report` prints an error once, in the calling program's words.
pub fn main(args: Args, report: impl Fn(&anyhow::Error)) -> ExitCode {
    let started = settings(args).and_then(|settings| Ok((settings, worker_threads()?)));
    let (settings, workers) = match started {
        Ok(started) => started,
        Err(err) => {
            report(&err);
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime(workers).context("could not start the async runtime") {
        Ok(runtime) => runtime,
        Err(err) => {
            report(&err);
            return ExitCode::FAILURE;
        }
    };
    init_logging(&settings.log_format);
    match runtime.block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// Runs the relay command until Ctrl-C or SIGTERM; SIGHUP reloads the TLS certificate and the
/// tokens file. `Err` only for failures after the settings were accepted.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("could not listen on {}", settings.listen))?;
    let scheme = if settings.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let addr = listener.local_addr()?;
    // The one stdout line: where the relay listens (port 0 picks a free one), once it is set
    // up, so nothing reads it from a relay that then fails to start (its queue locked, say).
    let announce = move || {
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on {scheme}://{addr}");
        let _ = stdout.flush();
    };
    let reload = Arc::new(Notify::new());
    watch_sighup(Arc::clone(&reload));
    crate::accept::run_with_reload(
        listener,
        settings.config,
        shutdown_signal(),
        reload,
        announce,
    )
    .await
}

/// How many worker threads the relay's runtime gets: one per core but one (at least one), or
/// `TOKIO_WORKER_THREADS`, which must then be a positive number. The core left over runs the
/// queue's SQLite thread and the kernel's side of the network: on 2 cores, one worker instead
/// of two cut the latency of a webhook by 8–9 % and the time of a 10 MiB one by about 30 %, and
/// raised throughput at 32 senders by 5 % (BENCHMARKS.md).
fn worker_threads() -> anyhow::Result<usize> {
    match std::env::var("TOKIO_WORKER_THREADS") {
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => anyhow::bail!("TOKIO_WORKER_THREADS must be a positive number, not {value:?}"),
        },
        Err(_) => Ok(std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
            .max(1)),
    }
}

/// The relay's runtime, with `workers` worker threads (see [`worker_threads`]).
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}

/// Merges flags and the config file; errors are usage errors (exit 2).
fn settings(args: Args) -> anyhow::Result<Settings> {
    args.settings()
}

/// Logs on stderr in `text` or `json`, at `info` unless `RUST_LOG` says otherwise.
fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Notifies `reload` on every SIGHUP. The handler is installed before this returns, so before
/// the relay says it listens: a SIGHUP's default action is to end the process, and a
/// `systemctl reload` right after the start must reread the files instead.
fn watch_sighup(reload: Arc<Notify>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                reload.notify_one();
            }
        });
    }
    #[cfg(not(unix))]
    drop(reload);
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
