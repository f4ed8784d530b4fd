//! The `hooks-relay` binary: read flags and config, bind, serve until Ctrl-C or SIGTERM; SIGHUP
//! reloads the TLS certificate and the tokens file.

#![forbid(unsafe_code)]

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use relay_server::config::Args;
use tokio::sync::Notify;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("hooks-relay: error: {err:#}");
            std::process::exit(2);
        }
    };
    init_logging(&settings.log_format);
    if let Err(err) = serve(settings).await {
        eprintln!("hooks-relay: error: {err:#}");
        std::process::exit(1);
    }
}

async fn serve(settings: relay_server::config::Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("could not listen on {}", settings.listen))?;
    let reload = Arc::new(Notify::new());
    tokio::spawn(reload_on_sighup(Arc::clone(&reload)));
    relay_server::run_with_reload(listener, settings.config, shutdown_signal(), reload).await
}

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

/// Notifies `reload` on every SIGHUP.
async fn reload_on_sighup(reload: Arc<Notify>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            reload.notify_one();
        }
    }
    #[cfg(not(unix))]
    drop(reload);
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
