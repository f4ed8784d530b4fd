//! `hooks verify`: read a raw HTTP/1.1 request from a file or stdin, check its signature, print
//! the verdict, and exit 0 (valid) or 1 (invalid, expired, unsigned). Problems with the
//! invocation itself (unreadable file, not a request, a secret that cannot be a key for the
//! provider) are usage errors: exit 2.

use std::io::{self, Read as _, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use super::{check, Report, Verdict, VerifyInput};
use crate::cli::VerifyArgs;
use crate::inspect::{cut_line, sanitize};
use crate::raw_request;
use crate::UsageError;

/// Runs `hooks verify`.
pub fn run(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_request(&args.request).map_err(usage)?;
    let request = raw_request::parse(&bytes)
        .with_context(|| format!("{} is not an HTTP/1.1 request", display_name(&args.request)))
        .map_err(usage)?;
    let url = args.url.clone().unwrap_or_else(|| request.url());
    let headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect();
    let input = VerifyInput {
        method: &request.method,
        url: &url,
        headers: &headers,
        body: &request.body,
    };
    let now = match args.at {
        Some(secs) => UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(|| UsageError(format!("--at {secs} is too far in the future")))?,
        None => SystemTime::now(),
    };
    let report = check(&input, &args.secrets, args.provider, args.tolerance, now)
        .map_err(|e| UsageError(e.to_string()))?;
    print(
        &report,
        args.json,
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    )?;
    Ok(match report.verdict() {
        Verdict::Valid => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

fn read_request(path: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path == "-" {
        io::stdin()
            .read_to_end(&mut bytes)
            .context("could not read the request from stdin")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("could not read {path}"))?;
    }
    Ok(bytes)
}

fn display_name(path: &str) -> &str {
    if path == "-" {
        "stdin"
    } else {
        path
    }
}

fn usage(err: anyhow::Error) -> anyhow::Error {
    UsageError(format!("{err:#}")).into()
}

/// Writes the verdict: one line (or one JSON object) on `out`, a note about coverage on `err`.
pub fn print(
    report: &Report,
    json: bool,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<()> {
    if json {
        crate::inspect::sanitize::write_json(&mut *out, &report.to_json())?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", cut_line(&verdict_line(report)))?;
        if let Some(note) = report.note {
            writeln!(err, "note: {note}")?;
        }
    }
    out.flush()
}

/// `valid (github, assumed from X-Hub-Signature-256)`,
/// `expired (stripe): timestamp is 412 s old; stripe allows 300 s`.
fn verdict_line(report: &Report) -> String {
    let mut line = report.verdict().to_string();
    if let Some(provider) = report.provider {
        match report.detected_from {
            Some(from) => line.push_str(&format!(" ({provider}, assumed from {from})")),
            None => line.push_str(&format!(" ({provider})")),
        }
    }
    if let Some(reason) = &report.reason {
        line.push_str(": ");
        line.push_str(&sanitize(reason));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Age, Outcome, Provider};

    fn report(outcome: Outcome, reason: Option<&str>, from: Option<&'static str>) -> Report {
        Report {
            provider: Some(Provider::Stripe),
            assumed: from.is_some(),
            detected_from: from,
            outcome,
            reason: reason.map(str::to_owned),
            note: None,
        }
    }

    fn render(report: &Report, json: bool) -> String {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print(report, json, &mut out, &mut err).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn human_lines() {
        let valid = report(Outcome::Valid, None, Some("Stripe-Signature"));
        assert_eq!(
            render(&valid, false),
            "valid (stripe, assumed from Stripe-Signature)\n"
        );
        let expired = report(
            Outcome::Expired {
                age: Age::Past(Duration::from_secs(412)),
                tolerance: Duration::from_secs(300),
            },
            Some("timestamp is 412 s old; stripe allows 300 s"),
            None,
        );
        assert_eq!(
            render(&expired, false),
            "expired (stripe): timestamp is 412 s old; stripe allows 300 s\n"
        );
    }

    #[test]
    fn reasons_are_sanitized() {
        let invalid = report(
            Outcome::Invalid {
                reason: "bad \x1b[2J".into(),
            },
            Some("bad \x1b[2J"),
            None,
        );
        assert_eq!(
            render(&invalid, false),
            "invalid (stripe): bad \\u{1b}[2J\n"
        );
    }

    #[test]
    fn json_object() {
        let expired = report(
            Outcome::Expired {
                age: Age::Future(Duration::from_millis(1500)),
                tolerance: Duration::from_secs(300),
            },
            Some("timestamp is 1.5 s in the future"),
            None,
        );
        let value: serde_json::Value = serde_json::from_str(&render(&expired, true)).unwrap();
        assert_eq!(value["provider"], "stripe");
        assert_eq!(value["verdict"], "expired");
        assert_eq!(value["age_s"], -1.5);
        assert_eq!(value["tolerance_s"], 300.0);
        assert_eq!(value["assumed"], false);
    }
}
