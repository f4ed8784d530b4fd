//! `cargo bench --bench inspector`: what the terminal inspector costs with many captures and
//! with a large body (issue 20: 10,000 captures scroll without lag; a 25 MiB body stays
//! responsive). In this process, through the library: the store is filled by its own writer,
//! rows are read as the inspector's store worker reads them, and every frame is drawn on
//! ratatui's `TestBackend` at 120×40 (the terminal's own writes are not counted). It prints
//! figures; it asserts nothing about them.
//!
//! Sizes: `HOOKS_BENCH_CAPTURES` (default 10000) captures, `HOOKS_BENCH_BODY_MIB` (default 25)
//! MiB of JSON in the large body.

use std::time::{Duration, Instant};

use bytes::Bytes;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hooks::exchange::{now_ms, CaptureId, Exchange, Outcome, Request, Response};
use hooks::inspect::ui::{self, Msg, Row, Rows, Source, State, MAX_ROWS};
use hooks::inspect::Redactor;
use hooks::store::{self, Retention, Store, Writer};
use relay_server::protocol::Header;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let count = env_number("HOOKS_BENCH_CAPTURES", 10_000);
    let mib = env_number("HOOKS_BENCH_BODY_MIB", 25);
    let data = tempfile::tempdir()?;
    let path = data.path().join(store::FILE_NAME);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(fill(&path, count))?;
    println!("| measure | figure |\n|---|---:|");
    list(&path, count)?;
    large_body(mib)?;
    Ok(())
}

/// Opening the list of `count` captures and paging through it.
fn list(path: &std::path::Path, count: usize) -> Result<(), BoxError> {
    let before = rss_kib();
    let started = Instant::now();
    let store = Store::open(path)?;
    let mut rows: Vec<Row> = store
        .list(None, MAX_ROWS)?
        .into_iter()
        .map(Row::from_summary)
        .collect();
    rows.reverse();
    let read = started.elapsed();
    let mut state = State::new(Source::Store, (120, 40), jiff::tz::TimeZone::UTC);
    ui::start(&mut state);
    let through = rows.last().map(|r| r.id);
    let rows = Rows {
        generation: 0,
        rows,
        through,
        replace: true,
    };
    ui::update(&mut state, Msg::Rows(rows));
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40))?;
    terminal.draw(|frame| ui::view(&state, frame))?;
    let opened = started.elapsed();
    println!(
        "| {count} captures: rows read from the store | {} |",
        ms(read)
    );
    println!(
        "| {count} captures: read and first frame drawn | {} |",
        ms(opened)
    );
    println!(
        "| {count} captures: memory of the rows (RSS growth) | {:.1} MiB |",
        (rss_kib() - before) as f64 / 1024.0
    );
    ui::update(&mut state, key(KeyCode::Home));
    let pages = (count / state.list_height()).max(1);
    let started = Instant::now();
    for _ in 0..pages {
        ui::update(&mut state, key(KeyCode::PageDown));
        terminal.draw(|frame| ui::view(&state, frame))?;
    }
    let per_page = started.elapsed() / pages as u32;
    println!(
        "| {count} captures: page down and draw, each of {pages} | {} |",
        ms(per_page)
    );
    Ok(())
}

/// Opening, paging through and jumping to the end of a `mib` MiB JSON body.
fn large_body(mib: usize) -> Result<(), BoxError> {
    let body = big_json(mib << 20);
    let size = body.len();
    let before = rss_kib();
    let mut state = State::new(Source::Store, (120, 40), jiff::tz::TimeZone::UTC);
    ui::start(&mut state);
    let row = Row {
        id: CaptureId(1),
        received_at_ms: now_ms(),
        method: "POST".into(),
        path: "/big".into(),
        provider: None,
        event_type: None,
        event_id: None,
        verdict: None,
        status: Some(200),
        duration: Duration::from_millis(3),
        size: size as u64,
        replay_of: None,
        sent: false,
        route: None,
        flags: Default::default(),
    };
    let rows = Rows {
        generation: 0,
        rows: vec![row],
        through: Some(CaptureId(1)),
        replace: true,
    };
    ui::update(&mut state, Msg::Rows(rows));
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40))?;
    ui::update(&mut state, key(KeyCode::Enter));
    let started = Instant::now();
    let loaded = ui::load(exchange(body), &Redactor::default());
    ui::update(&mut state, Msg::Loaded(CaptureId(1), Ok(Box::new(loaded))));
    ui::update(&mut state, key(KeyCode::Char('2')));
    terminal.draw(|frame| ui::view(&state, frame))?;
    let opened = started.elapsed();
    let mib = size as f64 / (1 << 20) as f64;
    println!(
        "| {mib:.0} MiB JSON body: indexed and first frame drawn | {} |",
        ms(opened)
    );
    println!(
        "| {mib:.0} MiB JSON body: memory of body and index (RSS growth) | {:.0} MiB |",
        (rss_kib() - before) as f64 / 1024.0
    );
    let started = Instant::now();
    for _ in 0..100 {
        ui::update(&mut state, key(KeyCode::PageDown));
        terminal.draw(|frame| ui::view(&state, frame))?;
    }
    println!(
        "| {mib:.0} MiB JSON body: page down and draw, each of 100 | {} |",
        ms(started.elapsed() / 100)
    );
    let started = Instant::now();
    ui::update(&mut state, key(KeyCode::End));
    terminal.draw(|frame| ui::view(&state, frame))?;
    println!(
        "| {mib:.0} MiB JSON body: to the end and draw | {} |",
        ms(started.elapsed())
    );
    let started = Instant::now();
    ui::update(&mut state, key(KeyCode::Char('f')));
    terminal.draw(|frame| ui::view(&state, frame))?;
    println!(
        "| {mib:.0} MiB JSON body: fold all and draw | {} |",
        ms(started.elapsed())
    );
    let started = Instant::now();
    ui::update(&mut state, key(KeyCode::Char('v')));
    ui::update(&mut state, key(KeyCode::Char('v')));
    ui::update(&mut state, key(KeyCode::End));
    terminal.draw(|frame| ui::view(&state, frame))?;
    println!(
        "| {mib:.0} MiB JSON body: hex view, to the end and draw | {} |",
        ms(started.elapsed())
    );
    Ok(())
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The resident set size, in KiB (0 where /proc is missing).
fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// About `len` bytes of minified JSON: an array of small Stripe-like objects.
fn big_json(len: usize) -> Vec<u8> {
    let mut out = b"{\"object\":\"list\",\"data\":[".to_vec();
    let mut i = 0;
    while out.len() < len {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!(r#"{{"id":"il_{i:012}","amount":{},"currency":"usd","period":{{"start":1718000000,"end":1720592000}},"tags":["a","b"]}}"#, i % 9973).as_bytes(),
        );
        i += 1;
    }
    out.extend_from_slice(b"],\"has_more\":false}");
    out
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn exchange(body: Vec<u8>) -> Exchange {
    let request = Request {
        method: "POST".into(),
        path: "/webhooks/stripe".into(),
        headers: vec![header("content-type", "application/json")],
        body: Bytes::from(body),
    };
    let outcome = Outcome::Answered(Response {
        status: 200,
        headers: vec![header("content-type", "application/json")],
        body: Bytes::from_static(br#"{"received":true}"#),
    });
    let mut exchange = Exchange::new(
        now_ms(),
        "http://127.0.0.1:3000".into(),
        request,
        outcome,
        Duration::from_millis(3),
    );
    exchange.id = Some(CaptureId(1));
    exchange
}

/// Writes `count` captures of about 1 KiB into a new store at `path`.
async fn fill(path: &std::path::Path, count: usize) -> Result<(), BoxError> {
    let (conn, _) = store::open_or_replace(path)?;
    let writer = Writer::spawn(conn, path.to_owned(), Retention::default())?;
    let mut pending = Vec::new();
    for i in 0..count {
        let mut capture = exchange(big_json(900));
        capture.id = None;
        capture.request.path = format!("/webhooks/stripe/{i}");
        pending.push(writer.record(capture)?);
        if pending.len() == 512 || i + 1 == count {
            for done in pending.drain(..) {
                done.await??;
            }
        }
    }
    Ok(())
}
