//! `hooks replay --check` (replay as a regression check) and `hooks replay --dir` (fixtures,
//! without a capture store): each capture or fixture is sent again and its new answer compared
//! with the one it had (`compare`); one line or JSON object each, a summary, and exit 1 when
//! any changed. `dir` reads and sends fixture folders.

mod compare;
mod dir;

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use crate::query::diff::{parse_ignore, Ignore};
pub use compare::{compare, describe, Change, Verdict, VOLATILE_HEADERS};

use crate::cli::ReplayArgs;
use crate::exchange::Outcome;
use crate::inspect::{cut_line, sanitize, sanitize::write_json};
use crate::replay::{self, Replayed};

/// Runs `hooks replay` with `--check` or `--dir`.
pub async fn run(args: ReplayArgs, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    match &args.dir {
        Some(folder) => dir::run(&args, folder, &shutdown).await,
        None => captures(&args, &shutdown).await,
    }
}

/// `--check` over captures: each is replayed (and recorded, as `hooks replay` records it) and
/// the new answer compared with the captured one.
async fn captures(args: &ReplayArgs, shutdown: &CancellationToken) -> anyhow::Result<ExitCode> {
    let mut tally = Tally::default();
    replay::replay_each(args, shutdown, |done: Replayed| {
        // The failure with its hint ("is your app listening on 3000?"), as replay says it.
        let failed = done.failure.clone().map(Outcome::Failed);
        let got = failed.as_ref().unwrap_or(&done.new.outcome);
        let verdict = compare(&done.original.outcome, got, &args.ignore, None);
        let checked = Checked {
            subject: Subject::Capture {
                id: done.original.number(),
                replay: done.new.number(),
            },
            verdict,
            failure: done.failure,
        };
        checked.print(args.json)?;
        tally.add(&checked.verdict);
        Ok(())
    })
    .await?;
    tally.finish(args.json)
}

/// What was checked.
enum Subject {
    /// A capture, and its replay's id.
    Capture { id: u64, replay: u64 },
    /// A fixture, by file name.
    Fixture(String),
}

/// One capture's or fixture's result.
struct Checked {
    subject: Subject,
    verdict: Verdict,
    /// Why the replay got no answer.
    failure: Option<String>,
}

impl Checked {
    /// Prints the line (`#12 same`, `#12 changed: status 200 → 500  (hooks diff 12 15)`) or the
    /// JSON object.
    fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            write_json(&mut out, &self.json())?;
            out.write_all(b"\n")?;
        } else {
            let verdict = describe(&self.verdict);
            let line = match &self.subject {
                Subject::Capture { id, replay } if !self.verdict.is_same() => {
                    format!("#{id} {verdict}  (hooks diff {id} {replay})")
                }
                Subject::Capture { id, .. } => format!("#{id} {verdict}"),
                Subject::Fixture(name) => format!("{name} {verdict}"),
            };
            writeln!(out, "{}", cut_line(&sanitize(&line)))?;
        }
        out.flush()?;
        Ok(())
    }

    /// `{"id":12,"replay":15,"same":false,"changes":[…]}` (`"fixture":NAME` for a fixture), with
    /// `more` when changes were left out and `error` when there was no answer.
    fn json(&self) -> Value {
        let mut value = match &self.subject {
            Subject::Capture { id, replay } => json!({"id": id, "replay": replay}),
            Subject::Fixture(name) => json!({"fixture": name}),
        };
        value["same"] = json!(self.verdict.is_same());
        value["changes"] = json!(self.verdict.changes);
        if self.verdict.more > 0 {
            value["more"] = json!(self.verdict.more);
        }
        if let Some(failure) = &self.failure {
            value["error"] = json!(failure);
        }
        value
    }
}

/// How many were the same and how many changed.
#[derive(Debug, Default)]
struct Tally {
    same: usize,
    changed: usize,
}

impl Tally {
    fn add(&mut self, verdict: &Verdict) {
        if verdict.is_same() {
            self.same += 1;
        } else {
            self.changed += 1;
        }
    }

    /// Prints `3 same, 1 changed` (on stderr with `--json`, whose stdout is the objects only)
    /// and says how to exit: 1 when any changed.
    fn finish(&self, json: bool) -> anyhow::Result<ExitCode> {
        let line = format!("{} same, {} changed", self.same, self.changed);
        if json {
            eprintln!("{line}");
        } else {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(if self.changed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}
