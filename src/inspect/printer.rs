//! The printer: one thread that writes what `hooks listen` shows, fed through a [`Printer`]
//! that never waits. Exchanges wait for the terminal up to a count and a size; past either,
//! they are not shown (they are answered, acknowledged and captured all the same), and once the
//! terminal has caught up the printer says how many it skipped. A terminal that is not being
//! read (`hooks listen -v | less`, paused) thus costs a bounded amount of memory.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::{print, Event, History, OutputOptions, Print};
use crate::exchange::Exchange;

/// Most exchanges waiting for the terminal.
const MAX_WAITING: usize = 1024;

/// Most bytes of headers and bodies (of the parts that will be printed) waiting for the
/// terminal. One exchange larger than this is still shown when nothing else waits.
const MAX_WAITING_BYTES: u64 = 16 << 20;

/// Most bytes of output gathered before they are written.
const PRINT_BATCH_BYTES: usize = 256 * 1024;

/// Hands events to the printer thread; cheap to clone. The thread ends when every clone is
/// gone.
#[derive(Clone)]
pub struct Printer {
    events: mpsc::UnboundedSender<Event>,
    waiting: Arc<Mutex<Waiting>>,
    /// What the printer prints of each exchange, so the rest need not wait in memory.
    print: Print,
    json: bool,
    /// Whether the capture store has the exchanges, for the note on those not shown.
    stored: bool,
}

/// What waits for the terminal.
#[derive(Debug, Default)]
struct Waiting {
    /// Exchanges sent and not yet written.
    count: usize,
    /// Their sizes.
    bytes: u64,
    /// Exchanges not shown since the printer last said so.
    skipped: u64,
}

impl Printer {
    /// Shows a session event (ready, disconnected, reconnected): always, they are few.
    pub fn show(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Shows `exchange` unless the terminal is too far behind, in which case it is counted and
    /// dropped. Never waits.
    pub fn offer(&self, mut exchange: Box<Exchange>) {
        self.keep_printed_parts(&mut exchange);
        let size = exchange.size();
        let mut waiting = self.waiting();
        let room = waiting.count < MAX_WAITING && waiting.bytes + size <= MAX_WAITING_BYTES;
        if waiting.count > 0 && !room {
            waiting.skipped += 1;
            return;
        }
        // The note goes where the skipped ones would have been, before the next one shown.
        if waiting.skipped > 0 {
            let count = std::mem::take(&mut waiting.skipped);
            let stored = self.stored;
            let _ = self.events.send(Event::Skipped { count, stored });
        }
        waiting.count += 1;
        waiting.bytes += size;
        let _ = self.events.send(Event::Request(exchange));
    }

    /// Drops the headers and bodies the printer will not print.
    fn keep_printed_parts(&self, exchange: &mut Exchange) {
        let print = if self.json {
            Print::default()
        } else {
            self.print
        };
        let request = &mut exchange.request;
        if !print.request_body {
            request.body = bytes::Bytes::new();
            if !print.request_headers {
                request.headers = Vec::new();
            }
        }
        if let crate::exchange::Outcome::Answered(response) = &mut exchange.outcome {
            if !print.response_body {
                response.body = bytes::Bytes::new();
                if !print.response_headers {
                    response.headers = Vec::new();
                }
            }
        }
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().expect("printer lock is never poisoned")
    }
}

/// Starts the printer thread, printing as `options` say; `stored` says whether the capture
/// store has the exchanges, for the note on those skipped. It ends when every [`Printer`] is
/// gone.
pub fn spawn_printer(
    options: OutputOptions,
    stored: bool,
) -> (Printer, tokio::task::JoinHandle<()>) {
    let (
        printer,
        Feed {
            mut rx, waiting, ..
        },
    ) = channel(options.print, options.json, stored);
    let handle = tokio::task::spawn_blocking(move || {
        let mut thread = Thread {
            options,
            stored,
            history: History::default(),
            buffer: Vec::with_capacity(64 * 1024),
            waiting,
        };
        while let Some(first) = rx.blocking_recv() {
            thread.batch(first, &mut rx);
        }
        // Skipped at the very end, with nothing shown after.
        let skipped = std::mem::take(&mut thread.lock().skipped);
        thread.note(skipped);
    });
    (printer, handle)
}

/// A [`Printer`] and the receiving end of what it is offered.
fn channel(print: Print, json: bool, stored: bool) -> (Printer, Feed) {
    let (events, rx) = mpsc::unbounded_channel::<Event>();
    let printer = Printer {
        events,
        waiting: Arc::default(),
        print,
        json,
        stored,
    };
    let waiting = Arc::clone(&printer.waiting);
    (
        printer,
        Feed {
            rx,
            waiting,
            stored,
        },
    )
}

/// A [`Printer`] whose events go to another consumer than the printing thread: the inspector
/// (`hooks listen --ui`). It gets the same bounds: at most `MAX_WAITING` exchanges and
/// `MAX_WAITING_BYTES` waiting, and an [`Event::Skipped`] for those it fell too far behind to
/// be offered. Exchanges keep their request (the list shows its size) and lose their answer's
/// headers and body (the detail view reads those from the store).
pub fn feed(stored: bool) -> (Printer, Feed) {
    let print = Print {
        request_body: true,
        ..Print::default()
    };
    channel(print, false, stored)
}

/// What a [`Printer`] made with [`feed`] was offered, in order.
pub struct Feed {
    rx: mpsc::UnboundedReceiver<Event>,
    waiting: Arc<Mutex<Waiting>>,
    stored: bool,
}

impl Feed {
    /// The next event if one is waiting; `Err(true)` once every [`Printer`] is gone. Once
    /// the feed is empty, the exchanges skipped since the last note are one
    /// [`Event::Skipped`] (the printer says so before the next exchange it offers, and there
    /// may be none for a while).
    pub fn try_next(&mut self) -> Result<Event, bool> {
        match self.rx.try_recv() {
            Ok(event) => {
                self.taken(&event);
                Ok(event)
            }
            Err(mpsc::error::TryRecvError::Empty) => {
                let mut waiting = self.waiting.lock().expect("printer lock is never poisoned");
                match std::mem::take(&mut waiting.skipped) {
                    0 => Err(false),
                    count => Ok(Event::Skipped {
                        count,
                        stored: self.stored,
                    }),
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => Err(true),
        }
    }

    /// Makes room for another exchange once `event` is out of the feed.
    fn taken(&self, event: &Event) {
        if let Event::Request(exchange) = event {
            let mut waiting = self.waiting.lock().expect("printer lock is never poisoned");
            waiting.count -= 1;
            waiting.bytes -= exchange.size();
        }
    }
}

/// The printer thread's state.
struct Thread {
    options: OutputOptions,
    stored: bool,
    history: History,
    buffer: Vec<u8>,
    waiting: Arc<Mutex<Waiting>>,
}

impl Thread {
    /// Prints `first` and everything already waiting, in one write: under load that is one
    /// system call for many lines instead of one per line. Then, if the terminal has caught up,
    /// says how many it skipped meanwhile.
    fn batch(&mut self, first: Event, rx: &mut mpsc::UnboundedReceiver<Event>) {
        let (mut count, mut bytes) = (0, 0);
        let mut next = Some(first);
        while let Some(event) = next.take() {
            if let Event::Request(exchange) = &event {
                count += 1;
                bytes += exchange.size();
            }
            self.print(&event);
            if self.buffer.len() < PRINT_BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        self.flush();
        let skipped = {
            let mut waiting = self.lock();
            waiting.count -= count;
            waiting.bytes -= bytes;
            // Nothing sent is unwritten: the count is the last word.
            if waiting.count == 0 {
                std::mem::take(&mut waiting.skipped)
            } else {
                0
            }
        };
        self.note(skipped);
    }

    /// Says that `count` requests were not shown, if any were not.
    fn note(&mut self, count: u64) {
        if count > 0 {
            self.print(&Event::Skipped {
                count,
                stored: self.stored,
            });
            self.flush();
        }
    }

    fn print(&mut self, event: &Event) {
        let stderr = std::io::stderr();
        let result = print(
            event,
            &self.options,
            &mut self.history,
            &mut self.buffer,
            &mut stderr.lock(),
        );
        report(result, &stderr);
    }

    fn flush(&mut self) {
        let stderr = std::io::stderr();
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        report(
            out.write_all(&self.buffer).and_then(|()| out.flush()),
            &stderr,
        );
        self.buffer.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().expect("printer lock is never poisoned")
    }
}

/// Reports an output error once; a closed stdout (`hooks listen | head`) is not worth one.
fn report(result: std::io::Result<()>, stderr: &std::io::Stderr) {
    if let Err(e) = result {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = writeln!(stderr.lock(), "hooks: error: could not write output: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Outcome, Request};

    fn exchange() -> Box<Exchange> {
        let request = Request {
            method: "POST".into(),
            path: "/".into(),
            headers: Vec::new(),
            body: bytes::Bytes::from_static(b"{}"),
        };
        let outcome = Outcome::Failed("refused".into());
        let duration = std::time::Duration::ZERO;
        Box::new(Exchange::new(0, String::new(), request, outcome, duration))
    }

    /// The inspector's feed holds at most MAX_WAITING exchanges; the rest are counted, and the
    /// count comes out once the feed is drained, even with no exchange after it.
    #[test]
    fn a_feed_that_falls_behind_says_how_many_it_skipped() {
        let (printer, mut feed) = feed(true);
        for _ in 0..MAX_WAITING + 6 {
            printer.offer(exchange());
        }
        let mut requests = 0;
        let skipped = loop {
            match feed.try_next() {
                Ok(Event::Request(e)) => {
                    assert_eq!(&e.request.body[..], b"{}", "the request body is kept");
                    requests += 1;
                }
                Ok(Event::Skipped { count, stored }) => break (count, stored),
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!((requests, skipped), (MAX_WAITING, (6, true)));
        assert!(matches!(feed.try_next(), Err(false)), "empty, still open");
        printer.offer(exchange());
        assert!(
            matches!(feed.try_next(), Ok(Event::Request(_))),
            "room again"
        );
        drop(printer);
        assert!(matches!(feed.try_next(), Err(true)), "closed");
    }
}
