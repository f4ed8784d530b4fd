//! One event rendered, signed and sent for a caller that prints nothing itself (MCP's
//! `send_event`, whose stdout is the protocol's): the same template, signing and recording as
//! `hooks send`, with the capture handed back instead of printed.

use std::time::SystemTime;

use anyhow::anyhow;
use tokio_util::sync::CancellationToken;

use super::deliver::{Delivery, Sent};
use super::{catalog, signed_url, Catalog, SendArgs, Sender, Signer, Values};
use crate::target::Target;
use crate::UsageError;

/// Sends the event `args` name (`provider`, `event`, `to`, `--secret`, `--set`, `-H`; not
/// `--count`, `--duplicate`, `--out-of-order`, `--data`, `--edit` or `--print`), signed now,
/// and records it in the capture store as `hooks send` does. `Err` when it could not be
/// prepared, signed or recorded; a target that did not answer is [`Sent::failure`].
pub async fn send_event(args: &SendArgs, shutdown: &CancellationToken) -> anyhow::Result<Sent> {
    let here =
        std::env::current_dir().map_err(|e| anyhow!("could not tell the current folder: {e}"))?;
    let catalog = Catalog::load(catalog::project_events(&here).as_deref())?;
    let (Some(provider), Some(event), Some(to)) = (&args.provider, &args.event, &args.to) else {
        return Err(UsageError("name a provider, an event and where to send it".into()).into());
    };
    let template = catalog.find(provider, event)?;
    let target: Target = to
        .parse()
        .map_err(|e| UsageError(format!("to {to:?}: {e}")))?;
    let url = signed_url(args, Some(&target));
    let signer = Signer::choose(template.scheme, &template.provider, args, || {
        Ok(crate::store::data_dir()?)
    })?;
    let sender = Sender {
        template,
        args,
        data: None,
        signer,
        url,
    };
    let at = SystemTime::now();
    let mut rendered = sender.prepare(&mut Values::fresh(), at)?;
    sender
        .signer
        .sign(&mut rendered, &sender.url, at, &args.header)?;
    let verdict = sender.signer.verdict(&rendered, &sender.url);
    let delivery = Delivery::open(target, args.timeout).await?;
    delivery.send(&rendered, Some(verdict), shutdown).await
}
