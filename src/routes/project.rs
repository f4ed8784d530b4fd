//! Reading the project file for a command: bounded, parsed, and refused whole (with every
//! problem and its line) when anything in it is wrong.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{find, parse, FlagRoute, Parsed, Problem, Routes, MAX_FILE_BYTES};
use crate::target::Target;
use crate::UsageError;

/// The text of `path`, refused past [`MAX_FILE_BYTES`].
pub fn read(path: &Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("could not read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("could not read {}", path.display()))?;
    if bytes.len() > MAX_FILE_BYTES {
        anyhow::bail!("{} is over {MAX_FILE_BYTES} bytes", path.display());
    }
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))
}

/// `problems` as `FILE:LINE: message`, one to a line (an expression's caret lines follow its
/// problem's line).
pub fn describe(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}:{}: {}", path.display(), p.line, p.message))
        .collect();
    lines.join("\n")
}

/// The routes in `text`, from `path`; any problem in it is an error naming them all.
pub fn parse_file(path: &Path, text: &str) -> Result<Parsed, String> {
    let parsed = parse(text);
    if parsed.problems.is_empty() {
        Ok(parsed)
    } else {
        Err(describe(path, &parsed.problems))
    }
}

/// The project file a command uses: `given`, else the nearest `hooks.toml` from the current
/// folder (see `lookup`).
pub fn locate(given: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    let here = std::env::current_dir().context("could not tell the current folder")?;
    find(given, &here)
}

/// A session's routes: the project file's (`given`, else found; none with `skip`), after the
/// `--route` flags', with `forward_to` as the default when given. A broken file is a usage
/// error listing its problems.
pub fn for_session(
    given: Option<&Path>,
    skip: bool,
    flags: &[FlagRoute],
    forward_to: Option<Target>,
) -> anyhow::Result<Routes> {
    let file = if skip { None } else { locate(given)? };
    let parsed = match &file {
        Some(path) => parse_file(path, &read(path)?).map_err(UsageError)?,
        None => Parsed::default(),
    };
    Ok(Routes::new(file, parsed, flags, forward_to).map_err(UsageError)?)
}

/// `Ok` when requests have somewhere to go: a route or a default target.
pub fn somewhere(routes: &Routes) -> Result<(), UsageError> {
    if !routes.routes.is_empty() || routes.default.is_some() {
        return Ok(());
    }
    Err(UsageError(match &routes.file {
        Some(file) => format!(
            "{} has no routes and no default; pass --forward-to TARGET",
            file.display()
        ),
        None => "nowhere to forward webhooks: pass --forward-to TARGET (or --route, or add \
                 routes to a hooks.toml)"
            .to_owned(),
    }))
}
