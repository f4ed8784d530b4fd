//! `hooks export --where EXPR` (several captures, oldest first) and `--format fixture` (a file
//! per capture in `--dir`). curl gives one script with a command per capture under a
//! `# capture #N` line, har one log with an entry per capture; raw holds one request, so it
//! refuses several rather than run them together.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{anyhow, Context as _};

use super::{curl, har_entry, har_log, original_target, raw};
use crate::cli::{ExportArgs, ExportFormat, FilterArgs};
use crate::exchange::{CaptureId, Exchange};
use crate::fixture;
use crate::inspect::sanitize_lines;
use crate::store::{self, Store};
use crate::target::Target;
use crate::UsageError;

/// Runs `hooks export` for `--where`, `--dir` or `--format fixture`.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    match (args.format, &args.dir) {
        (ExportFormat::Fixture, None) => {
            return Err(UsageError("--format fixture needs --dir DIR".into()).into())
        }
        (ExportFormat::Fixture, Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            return Err(UsageError("--dir is for --format fixture".into()).into());
        }
    }
    let query = match &args.r#where {
        Some(text) => {
            let filters = FilterArgs {
                r#where: Some(text.clone()),
                ..FilterArgs::default()
            };
            crate::list::query(&filters, true)?
        }
        None => None,
    };
    let store = Store::open(&store::path()?)?;
    let ids = match (args.id, &query) {
        (Some(reference), _) => vec![store.resolve(reference)?],
        (None, query) => store.ids(query.as_ref())?,
    };
    if ids.is_empty() {
        return Err(anyhow!("no captures match"));
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match (args.format, &args.dir) {
        (ExportFormat::Fixture, Some(dir)) => fixtures(&store, &ids, args, dir, &mut out)?,
        (ExportFormat::Raw, _) if ids.len() > 1 => {
            return Err(UsageError(format!(
                "--format raw holds one request and {} captures match: use --format har (one \
                 file, an entry each) or --format fixture --dir DIR (a file each)",
                ids.len()
            ))
            .into())
        }
        (ExportFormat::Raw, _) => {
            let capture = load(&store, ids[0])?;
            out.write_all(&raw(&capture.request, &target(&capture, args)?))?;
        }
        (ExportFormat::Curl, _) => {
            for (n, &id) in ids.iter().enumerate() {
                let capture = load(&store, id)?;
                let separator = if n == 0 { "" } else { "\n" };
                let command = curl(&capture.request, &target(&capture, args)?);
                write!(out, "{separator}# capture #{id}\n{command}")?;
            }
        }
        (ExportFormat::Har, _) => {
            let mut entries = Vec::with_capacity(ids.len());
            for &id in &ids {
                let capture = load(&store, id)?;
                entries.push(har_entry(&capture, &target(&capture, args)?));
            }
            serde_json::to_writer_pretty(&mut out, &har_log(entries))?;
            out.write_all(b"\n")?;
        }
        (ExportFormat::Fixture, None) => {}
    }
    out.flush()?;
    Ok(())
}

fn load(store: &Store, id: CaptureId) -> anyhow::Result<Exchange> {
    Ok(store.get(id)?)
}

/// `--to`, else where `capture` was forwarded.
fn target(capture: &Exchange, args: &ExportArgs) -> anyhow::Result<Target> {
    match &args.to {
        Some(target) => Ok(target.clone()),
        None => original_target(capture),
    }
}

/// Writes a fixture per capture into `dir` (created if missing) and prints each path. A capture
/// the app did not answer has no answer to expect: it is skipped with a note on stderr.
fn fixtures(
    store: &Store,
    ids: &[CaptureId],
    args: &ExportArgs,
    dir: &Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create the folder {}", dir.display()))?;
    let mut written = 0;
    for &id in ids {
        let capture = load(store, id)?;
        let Some((name, bytes)) = fixture::write(&capture, &target(&capture, args)?) else {
            eprintln!(
                "hooks: skipped capture #{id}: your app did not answer it, so there is no answer \
                 to expect"
            );
            continue;
        };
        let path = dir.join(&name);
        std::fs::write(&path, bytes)
            .with_context(|| format!("could not write {}", path.display()))?;
        writeln!(out, "{}", sanitize_lines(&path.display().to_string()))?;
        written += 1;
    }
    if written == 0 {
        return Err(anyhow!(
            "no fixture written: your app answered none of the {} matching captures",
            ids.len()
        ));
    }
    Ok(())
}
