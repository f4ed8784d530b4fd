//! The capture store's upkeep (checkpoints, pruning, removing body files) as the log sees it:
//! a task that keeps failing, as every one does on a full disk, is reported once.

use tracing::{debug, warn};

/// The failing upkeep tasks (checkpoints, pruning, removing body files). On a full disk each
/// fails after every burst of captures: its failure is logged once, and again only after it has
/// worked in between.
#[derive(Debug, Default)]
pub(super) struct Upkeep {
    failing: Vec<&'static str>,
}

impl Upkeep {
    /// Logs the outcome of the upkeep task `what` ("prune the capture store") if it is news;
    /// says whether the task worked.
    pub(super) fn report(&mut self, what: &'static str, result: rusqlite::Result<()>) -> bool {
        let known = self.failing.iter().position(|&task| task == what);
        match (result, known) {
            (Ok(()), None) => true,
            (Ok(()), Some(at)) => {
                self.failing.swap_remove(at);
                debug!("could {what} again");
                true
            }
            (Err(e), None) => {
                warn!(error = %e, "could not {what}");
                self.failing.push(what);
                false
            }
            (Err(e), Some(_)) => {
                debug!(error = %e, "still could not {what}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_upkeep_task_warns_once_per_run_of_failures() {
        let log = Log::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        let full = || {
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(13),
                None,
            ))
        };
        let mut upkeep = Upkeep::default();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5 {
                assert!(!upkeep.report("checkpoint the capture store", full()));
                assert!(upkeep.report("prune the capture store", Ok(())));
            }
            assert!(upkeep.report("checkpoint the capture store", Ok(())));
            assert!(!upkeep.report("checkpoint the capture store", full()));
        });
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text.matches("could not checkpoint the capture store")
                .count(),
            2,
            "once, and once more after it worked in between: {text}"
        );
        assert!(!text.contains("prune"), "{text}");
    }
}
