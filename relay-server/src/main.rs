//! The `hooks-relay` binary: parse flags, run [`relay_server::cli::serve`], map the outcome to
//! an exit code (2 for bad settings, 1 for failures).

#![forbid(unsafe_code)]

use clap::Parser;
use relay_server::config::Args;

fn main() {
    let settings = match relay_server::cli::settings(Args::parse()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("hooks-relay: error: {err:#}");
            std::process::exit(2);
        }
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("hooks-relay: error: could not start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    relay_server::cli::init_logging(&settings.log_format);
    if let Err(err) = runtime.block_on(relay_server::cli::serve(settings)) {
        eprintln!("hooks-relay: error: {err:#}");
        std::process::exit(1);
    }
}

/// One worker thread per core but one (at least one), unless `TOKIO_WORKER_THREADS` says how
/// many. The core left over runs the queue's SQLite thread and the kernel's side of the
/// network: on 2 cores, one worker instead of two cut the latency of a webhook by 8–9 % and
/// the time of a 10 MiB one by about 30 %, and raised throughput at 32 senders by 5 %
/// (BENCHMARKS.md).
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        builder.worker_threads(cores.saturating_sub(1).max(1));
    }
    builder.enable_all().build()
}
