//! The `hooks-relay` binary: parse flags, run [`relay_server::cli::main`], which maps the outcome
//! to an exit code (2 for bad settings, 1 for failures).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::process::ExitCode;

use relay_server::cli::Invocation;

fn main() -> ExitCode {
    let args = match relay_server::cli::parse() {
        Invocation::Serve(args) => args,
        Invocation::Completions(shell) => {
            return match relay_server::cli::completions(shell, &mut std::io::stdout().lock()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("hooks-relay: error: could not write the script: {e}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            };
        }
    };
    relay_server::cli::main(*args, |err| eprintln!("hooks-relay: error: {err:#}"))
}
