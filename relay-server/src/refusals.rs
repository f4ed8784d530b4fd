//! Refused CLI sessions, logged at a bounded rate per peer address: a peer refused over and over
//! (a bad hello in a loop, before any token check) leaves a few lines a second in the log and
//! then the count of those left out, not a line each (issue 17: 25 MB of log in 0.2 s).
//!
//! Only the log is thinned: every refused peer still gets its refusal. Behind a reverse proxy
//! every peer has the proxy's address, so the limit is then the relay's as a whole.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::warn;

/// Refusals logged per peer address in one [`WINDOW`]; the others are counted, and the count is
/// logged with the peer's next refusal that is.
const LOGGED_PER_WINDOW: u32 = 3;

const WINDOW: Duration = Duration::from_secs(1);

/// Peer addresses tracked at once. When a new peer comes and all are tracked, those whose window
/// is over are forgotten (their uncounted refusals logged as one sum); if every one is recent,
/// the new peer shares [`CROWD`]'s window.
const MAX_PEERS: usize = 4096;

/// The address standing for peers beyond [`MAX_PEERS`].
const CROWD: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The relay's log of refused sessions.
#[derive(Default)]
pub(crate) struct RefusalLog {
    peers: Mutex<HashMap<IpAddr, Window>>,
}

/// One peer's refusals in its current window.
struct Window {
    start: Instant,
    logged: u32,
    /// Refusals not logged since the last one that was.
    unlogged: u64,
}

/// What one refusal leaves in the log.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    /// Whether this refusal is logged.
    log: bool,
    /// Refusals from this peer not logged before it (when it is).
    unlogged: u64,
    /// Refusals not logged from peers forgotten to make room.
    forgotten: u64,
}

impl RefusalLog {
    /// Logs that a session from `peer` was refused with `message` (already bounded: see
    /// [`crate::quote`]), unless this peer's refusals are over the rate.
    pub(crate) fn refused(&self, peer: IpAddr, message: &str) {
        let entry = self.count(peer, Instant::now());
        if entry.forgotten > 0 {
            let count = entry.forgotten;
            warn!(
                count,
                "{count} refusals from peers no longer tracked were not logged"
            );
        }
        if !entry.log {
            return;
        }
        if entry.unlogged > 0 {
            let count = entry.unlogged;
            warn!(%peer, count, "{count} refusals from this peer were not logged");
        }
        warn!(%peer, %message, "session refused");
    }

    fn count(&self, peer: IpAddr, now: Instant) -> Entry {
        let mut peers = self
            .peers
            .lock()
            .expect("refusal log lock is never poisoned");
        let mut forgotten = 0;
        if !peers.contains_key(&peer) && peers.len() >= MAX_PEERS {
            peers.retain(|_, window| {
                let recent = now.duration_since(window.start) < WINDOW;
                if !recent {
                    forgotten += window.unlogged;
                }
                recent
            });
        }
        let key = match peers.contains_key(&peer) || peers.len() < MAX_PEERS {
            true => peer,
            false => CROWD,
        };
        let window = peers.entry(key).or_insert(Window {
            start: now,
            logged: 0,
            unlogged: 0,
        });
        if now.duration_since(window.start) >= WINDOW {
            window.start = now;
            window.logged = 0;
        }
        let log = window.logged < LOGGED_PER_WINDOW;
        let unlogged = match log {
            true => {
                window.logged += 1;
                std::mem::take(&mut window.unlogged)
            }
            false => {
                window.unlogged += 1;
                0
            }
        };
        Entry {
            log,
            unlogged,
            forgotten,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    fn logged(entry: &Entry) -> Option<u64> {
        entry.log.then_some(entry.unlogged)
    }

    #[test]
    fn a_few_refusals_a_second_are_logged_per_peer_and_the_rest_counted() {
        let log = RefusalLog::default();
        let start = Instant::now();
        let burst: Vec<Option<u64>> = (0..10)
            .map(|_| logged(&log.count(peer(1), start)))
            .collect();
        assert_eq!(burst[..3], [Some(0), Some(0), Some(0)]);
        assert!(burst[3..].iter().all(Option::is_none), "{burst:?}");
        // Another peer has its own window.
        assert_eq!(logged(&log.count(peer(2), start)), Some(0));
        // The next window logs again, with the count of those left out.
        let later = start + WINDOW;
        assert_eq!(logged(&log.count(peer(1), later)), Some(7));
        assert_eq!(logged(&log.count(peer(1), later)), Some(0));
    }

    #[test]
    fn tracked_peers_are_bounded_and_nothing_left_out_goes_uncounted() {
        let log = RefusalLog::default();
        let start = Instant::now();
        for n in 1..=MAX_PEERS as u32 {
            log.count(peer(n), start);
        }
        for _ in 0..LOGGED_PER_WINDOW + 2 {
            log.count(peer(1), start);
        }
        // All recent: a new peer shares the crowd's window.
        let crowd = log.count(peer(u32::MAX), start);
        assert_eq!(logged(&crowd), Some(0));
        assert_eq!(log.peers.lock().unwrap().len(), MAX_PEERS + 1);
        // A window later the old ones are forgotten, their unlogged refusals summed.
        let later = log.count(peer(u32::MAX - 1), start + WINDOW);
        assert_eq!(later.forgotten, 3);
        assert!(log.peers.lock().unwrap().len() <= 2);
    }
}
