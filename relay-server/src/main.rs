//! The `hooks-relay` binary: parse flags, run [`relay_server::cli::serve`], map the outcome to
//! an exit code (2 for bad settings, 1 for failures).

#![forbid(unsafe_code)]

use clap::Parser;
use relay_server::config::Args;

#[tokio::main]
async fn main() {
    let settings = match relay_server::cli::settings(Args::parse()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("hooks-relay: error: {err:#}");
            std::process::exit(2);
        }
    };
    relay_server::cli::init_logging(&settings.log_format);
    if let Err(err) = relay_server::cli::serve(settings).await {
        eprintln!("hooks-relay: error: {err:#}");
        std::process::exit(1);
    }
}
