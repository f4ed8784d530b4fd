//! The `hooks-relay` binary: parse flags, run [`relay_server::cli::serve`], map the outcome to
//! an exit code (2 for bad settings, 1 for failures).

#![forbid(unsafe_code)]

use relay_server::cli::Invocation;

fn main() {
    let args = match relay_server::cli::parse() {
        Invocation::Serve(args) => args,
        Invocation::Completions(shell) => {
            match relay_server::cli::completions(shell, &mut std::io::stdout().lock()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("hooks-relay: error: could not write the script: {e}");
                    std::process::exit(1);
                }
                _ => return,
            }
        }
    };
    let settings = match relay_server::cli::settings(*args) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("hooks-relay: error: {err:#}");
            std::process::exit(2);
        }
    };
    let workers = match relay_server::cli::worker_threads() {
        Ok(workers) => workers,
        Err(err) => {
            eprintln!("hooks-relay: error: {err:#}");
            std::process::exit(2);
        }
    };
    let runtime = match relay_server::cli::runtime(workers) {
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
