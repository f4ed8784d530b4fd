//! `hooks completions` and `hooks man`: shell completion scripts and man pages, generated from
//! the clap definitions in `cli.rs` (and the relay's), so they never fall behind the flags.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// Runs `hooks completions SHELL`: the script on stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    // Into memory first: clap_complete panics on a failed write (`… | head`), and a closed
    // stdout must be an error `main` can recognise.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "hooks", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

/// Runs `hooks man --dir DIR`: writes the pages and prints each file's path on stdout.
pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    let written = write_pages(&args.dir)?;
    let mut out = std::io::stdout().lock();
    for path in written {
        writeln!(out, "{}", path.display())?;
    }
    out.flush()?;
    Ok(())
}

/// Writes `hooks.1`, one `hooks-NAME.1` per subcommand and `hooks-relay.1` into `dir` (created
/// if missing); returns their paths, sorted.
pub fn write_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let fail = || format!("could not write the man pages into {}", dir.display());
    clap_mangen::generate_to(Cli::command(), dir).with_context(fail)?;
    // `hooks relay`'s page is also named hooks-relay.1: the program's page replaces it, since
    // `hooks relay` is that program under another name (and the page adds --completions).
    clap_mangen::Man::new(relay_server::cli::command())
        .generate_to(dir)
        .with_context(fail)?;
    let mut written: Vec<PathBuf> = page_names()
        .into_iter()
        .map(|name| dir.join(name))
        .collect();
    written.sort();
    Ok(written)
}

/// The file names [`write_pages`] writes: `hooks.1`, `hooks-listen.1`, …, `hooks-relay.1`.
fn page_names() -> Vec<String> {
    let mut names = vec!["hooks.1".to_owned(), "hooks-relay.1".to_owned()];
    let mut command = Cli::command();
    command.build();
    sub_pages(&command, "hooks", &mut names);
    names.sort();
    names.dedup();
    names
}

/// The pages of `command`'s subcommands, and theirs (`hooks-routes-check.1`), named under
/// `prefix`.
fn sub_pages(command: &clap::Command, prefix: &str, names: &mut Vec<String>) {
    for sub in command
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
    {
        let name = format!("{prefix}-{}", sub.get_name());
        names.push(format!("{name}.1"));
        sub_pages(sub, &name, names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_named_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_pages(dir.path()).unwrap();
        let mut on_disk: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        on_disk.sort();
        assert_eq!(written, on_disk);
        for name in ["hooks.1", "hooks-listen.1", "hooks-mcp.1", "hooks-relay.1"] {
            assert!(written.contains(&dir.path().join(name)), "{name}");
        }
    }
}
