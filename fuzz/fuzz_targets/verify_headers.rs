//! Fuzz target: signature header parsing for every provider. Any headers, body, URL, secrets,
//! tolerance and time go through `hooks::verify::check` for each provider and for detection, and
//! the body through the raw request parser; the only failure is a panic (or a sanitizer report).

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use hooks::verify::{check, Provider, Secret, VerifyInput};
use libfuzzer_sys::fuzz_target;

/// Header names the schemes read (every provider's, from its facts), so fuzzed values land where
/// the parsers look.
fn names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(Provider::header_names)
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    headers: Vec<(u8, &'a [u8])>,
    body: &'a [u8],
    url: &'a str,
    method: &'a str,
    secrets: Vec<&'a str>,
    tolerance: Option<u64>,
    now: u64,
}

fuzz_target!(|input: Input<'_>| {
    let names = names();
    let headers: Vec<(&str, &[u8])> = input
        .headers
        .iter()
        .map(|(name, value)| (names[usize::from(*name) % names.len()], *value))
        .collect();
    let request = VerifyInput {
        method: input.method,
        url: input.url,
        headers: &headers,
        body: input.body,
    };
    let secrets: Vec<Secret> = input.secrets.iter().take(3).map(|s| Secret::new(*s)).collect();
    let tolerance = input.tolerance.map(Duration::from_secs);
    let now = UNIX_EPOCH
        .checked_add(Duration::from_secs(input.now))
        .unwrap_or(UNIX_EPOCH);
    let _ = check(&request, &secrets, None, tolerance, now);
    for provider in Provider::ALL {
        let _ = check(&request, &secrets, Some(provider), tolerance, now);
    }
    let _ = hooks::raw_request::parse(input.body);
});
