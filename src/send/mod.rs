//! `hooks send PROVIDER EVENT`: event templates rendered to bytes with fresh ids and times,
//! signed over exactly those bytes with the provider's scheme at the same instant, and sent to a
//! target (or printed); each send is recorded as a capture marked as sent.
//!
//! Modules: `template` (the format), `catalog` (built-in and project templates, lookup),
//! `render` (placeholders), `change` (`--set`, `--data`, `--edit`), `sign` and `keys` (schemes
//! and private keys), `deliver` (sending, recording, printing), `call` (one event for MCP).

mod args;
mod builtin;
mod call;
mod catalog;
mod change;
mod deliver;
mod keys;
mod render;
mod sign;
mod template;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use args::{PrivateKey, SendArgs};
pub use call::send_event;
pub use deliver::Sent;
use template::{Rendered, Source, Template};

use catalog::Catalog;
use deliver::Delivery;
use render::Values;
use sign::Signer;

use crate::inspect::sanitize;
use crate::target::Target;
use crate::UsageError;

/// How much earlier the older event of `--out-of-order` happened.
const OUT_OF_ORDER_GAP: Duration = Duration::from_secs(10);

/// Runs `hooks send`.
pub async fn run(args: SendArgs, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    let here =
        std::env::current_dir().map_err(|e| anyhow!("could not tell the current folder: {e}"))?;
    let catalog = Catalog::load(catalog::project_events(&here).as_deref())?;
    if args.list {
        list(&catalog, args.provider.as_deref(), args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(provider), Some(event)) = (args.provider.as_deref(), args.event.as_deref()) else {
        return Err(UsageError("name a PROVIDER and an EVENT (hooks send --list)".into()).into());
    };
    let template = catalog.find(provider, event)?;
    let target = match args.to.as_deref() {
        Some(text) => Some(
            text.parse::<Target>()
                .map_err(|e| UsageError(format!("--to {text:?}: {e}")))?,
        ),
        None => None,
    };
    let url = signed_url(&args, target.as_ref());
    let signer = Signer::choose(template.scheme, &template.provider, &args, || {
        Ok(crate::store::data_dir()?)
    })?;
    let data = args.data.as_deref().map(change::data).transpose()?;
    let mut sink = match (&target, args.print) {
        (Some(target), false) => Sink::Send(Box::new(
            Delivery::open(target.clone(), args.timeout).await?,
        )),
        _ => Sink::Print(target),
    };
    let sender = Sender {
        template,
        args: &args,
        data,
        signer,
        url,
    };
    if args.out_of_order {
        sender.out_of_order(&mut sink, &shutdown).await?;
    } else {
        sender.events(&mut sink, &shutdown).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The URL the URL-signing schemes sign: `--signed-url`, else the one sent to, as typed.
fn signed_url(args: &SendArgs, target: Option<&Target>) -> String {
    if let Some(url) = &args.signed_url {
        return url.clone();
    }
    let Some(target) = target else {
        // What `hooks verify` assumes for the printed request (`https://` + `Host` + path).
        return "https://localhost/".to_owned();
    };
    let path = if target.base_path.is_empty() {
        "/"
    } else {
        &target.base_path
    };
    // As typed: the Target adds a default port (`:443`) that the sender's URL does not have.
    match args
        .to
        .as_deref()
        .and_then(|to| to.trim().split_once("://"))
    {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{authority}{path}")
        }
        None => target.uri_for(""),
    }
}

/// Where events go.
enum Sink {
    /// To the target, recorded (boxed: a forwarder and a writer are large, and there is one).
    Send(Box<Delivery>),
    /// To stdout as raw HTTP, addressed to the target if there is one.
    Print(Option<Target>),
}

/// One run's template, flags and signer.
struct Sender<'a> {
    template: &'a Template,
    args: &'a SendArgs,
    data: Option<Vec<u8>>,
    signer: Signer,
    url: String,
}

impl Sender<'_> {
    /// `--count` events, each followed by its retry with `--duplicate`.
    async fn events(&self, sink: &mut Sink, shutdown: &CancellationToken) -> anyhow::Result<()> {
        for n in 0..self.args.count {
            if n > 0 {
                self.pause(shutdown).await?;
            }
            let at = SystemTime::now();
            let mut values = Values::fresh();
            let event = self.prepare(&mut values, at)?;
            self.deliver(sink, event.clone(), at, "", shutdown).await?;
            if self.args.duplicate {
                self.pause(shutdown).await?;
                let mut retry = event;
                let retry_headers = self
                    .template
                    .render_retry_headers(&mut values, at)
                    .map_err(UsageError)?;
                for (name, value) in retry_headers {
                    retry.set_header(&name, value);
                }
                let note = " (retry: the same event again)";
                self.deliver(sink, retry, SystemTime::now(), note, shutdown)
                    .await?;
            }
        }
        Ok(())
    }

    /// Two events about the same object: the newer one, then one that happened before it.
    async fn out_of_order(
        &self,
        sink: &mut Sink,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let newer_at = SystemTime::now();
        let older_at = newer_at - OUT_OF_ORDER_GAP;
        let mut values = Values::fresh();
        let newer = self.prepare(&mut values, newer_at)?;
        let older = self.prepare(&mut values.same_object(), older_at)?;
        self.deliver(sink, newer, newer_at, "", shutdown).await?;
        self.pause(shutdown).await?;
        // Signed when it happened, as its times say, unless the provider's window is too short
        // for that (Paddle's 5 s): then signed now, its own times still older.
        let short_window = self
            .signer
            .scheme()
            .and_then(|s| s.default_window())
            .is_some_and(|w| w.tolerance < Duration::from_secs(60));
        let sign_at = if short_window {
            SystemTime::now()
        } else {
            older_at
        };
        let note = " (an older event, sent second)";
        self.deliver(sink, older, sign_at, note, shutdown).await
    }

    /// The event rendered at `at` with `values`, then `--data`, `--set`, `--edit` and `-H`.
    fn prepare(&self, values: &mut Values, at: SystemTime) -> anyhow::Result<Rendered> {
        let mut event = self.template.render(values, at).map_err(|e| {
            UsageError(format!(
                "template {}/{}: {e}",
                self.template.provider, self.template.event
            ))
        })?;
        if let Some(data) = &self.data {
            event.body = data.clone();
        }
        change::set(&mut event, &self.args.set)?;
        if self.args.edit {
            change::edit(&mut event)?;
        }
        for (name, value) in &self.args.header {
            event.set_header(name, value.clone());
        }
        Ok(event)
    }

    /// Signs `event` at `at` and sends (or prints) it; a target that does not answer is an
    /// error, after the exchange is recorded.
    async fn deliver(
        &self,
        sink: &mut Sink,
        mut event: Rendered,
        at: SystemTime,
        note: &str,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        self.signer
            .sign(&mut event, &self.url, at, &self.args.header)?;
        match sink {
            Sink::Print(target) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&deliver::raw(&event, target.as_ref()))?;
                out.flush()?;
                Ok(())
            }
            Sink::Send(delivery) => {
                let verdict = self.signer.verdict(&event, &self.url);
                let sent = delivery.send(&event, Some(verdict), shutdown).await?;
                deliver::print_sent(&sent.capture, &self.template.provider, note, self.args.json)?;
                match sent.failure {
                    Some(failure) => Err(anyhow!("{failure}")),
                    None => Ok(()),
                }
            }
        }
    }

    /// Waits `--delay` between two sends.
    async fn pause(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let Some(delay) = self.args.delay else {
            return Ok(());
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            () = shutdown.cancelled() => Err(anyhow!("interrupted")),
        }
    }
}

/// Prints the templates of `provider` (all when `None`): a table, or one JSON object per line.
fn list(catalog: &Catalog, provider: Option<&str>, json: bool) -> anyhow::Result<()> {
    let templates = catalog.list(provider)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        for t in &templates {
            let source = match &t.source {
                Source::BuiltIn => "built-in".to_owned(),
                Source::Project(path) => path.display().to_string(),
            };
            let line = json!({
                "provider": t.provider,
                "event": t.event,
                "description": t.description,
                "source": source,
            });
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
    } else {
        let width = |f: fn(&Template) -> &str| {
            templates
                .iter()
                .map(|t| f(t).chars().count())
                .max()
                .unwrap_or(0)
        };
        let provider_width = width(|t| &t.provider).max("PROVIDER".len());
        let event_width = width(|t| &t.event).max("EVENT".len());
        writeln!(
            out,
            "{:provider_width$}  {:event_width$}  DESCRIPTION",
            "PROVIDER", "EVENT"
        )?;
        for t in &templates {
            let mark = match t.source {
                Source::BuiltIn => "",
                Source::Project(_) => " (project)",
            };
            writeln!(
                out,
                "{:provider_width$}  {:event_width$}  {}{mark}",
                sanitize(&t.provider),
                sanitize(&t.event),
                sanitize(&t.description)
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
