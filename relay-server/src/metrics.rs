//! Prometheus metrics at `GET /_hooks/metrics`, every name prefixed `hooks_`.
//!
//! Plain atomics written on the hot path and read when scraped; no registry, no locks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::channel::Stats;

/// Upper bounds of the webhook latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// The relay's counters.
pub(crate) struct Metrics {
    /// Webhooks answered, by status code (index = code - 100).
    by_status: Vec<AtomicU64>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
    pub request_bytes: AtomicU64,
    pub response_bytes: AtomicU64,
    pub sessions_refused: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            by_status: (100..600).map(|_| AtomicU64::new(0)).collect(),
            buckets: Default::default(),
            latency_sum_us: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
            request_bytes: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            sessions_refused: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one answered webhook.
    pub fn webhook(&self, status: u16, took: Duration) {
        if let Some(counter) = status
            .checked_sub(100)
            .and_then(|i| self.by_status.get(usize::from(i)))
        {
            counter.fetch_add(1, Relaxed);
        }
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_sum_us
            .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition, with the gauges read at scrape time: the channels'
    /// (`stats`) and the memory budget's bytes `memory` of `memory_limit`.
    pub fn render(&self, stats: &Stats, memory: usize, memory_limit: usize) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str(
            "# HELP hooks_requests_total Webhooks answered by the relay, by status code.\n",
        );
        out.push_str("# TYPE hooks_requests_total counter\n");
        for (i, counter) in self.by_status.iter().enumerate() {
            let n = counter.load(Relaxed);
            if n > 0 {
                let _ = writeln!(out, "hooks_requests_total{{code=\"{}\"}} {n}", i + 100);
            }
        }
        out.push_str("# HELP hooks_request_duration_seconds Time from a webhook's arrival to the relay's answer.\n");
        out.push_str("# TYPE hooks_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "hooks_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            out,
            "hooks_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "hooks_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "hooks_request_duration_seconds_count {count}");
        let gauges = [
            (
                "hooks_sessions",
                "CLI sessions attached now.",
                "gauge",
                stats.attached as u64,
            ),
            (
                "hooks_channels",
                "Channels known to the relay.",
                "gauge",
                stats.channels as u64,
            ),
            (
                "hooks_queue_depth",
                "Webhooks queued and not yet acknowledged, all channels.",
                "gauge",
                stats.queued as u64,
            ),
            (
                "hooks_memory_bytes",
                "Bytes of webhook requests held in memory (counted against --max-memory).",
                "gauge",
                memory as u64,
            ),
            (
                "hooks_memory_limit_bytes",
                "The relay's --max-memory.",
                "gauge",
                memory_limit as u64,
            ),
            (
                "hooks_outbox_bytes",
                "Bytes of frames waiting for or being written to CLI sessions, all sessions.",
                "gauge",
                stats.outbox_bytes as u64,
            ),
            (
                "hooks_sessions_refused_total",
                "CLI sessions refused (token, channel, limits).",
                "counter",
                self.sessions_refused.load(Relaxed),
            ),
            (
                "hooks_request_bytes_total",
                "Webhook body bytes received.",
                "counter",
                self.request_bytes.load(Relaxed),
            ),
            (
                "hooks_response_bytes_total",
                "Response body bytes returned to senders.",
                "counter",
                self.response_bytes.load(Relaxed),
            ),
        ];
        for (name, help, kind, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let metrics = Metrics::default();
        metrics.webhook(200, Duration::from_millis(3));
        metrics.webhook(200, Duration::from_millis(300));
        metrics.webhook(413, Duration::from_micros(10));
        let stats = Stats {
            channels: 4,
            attached: 2,
            queued: 7,
            outbox_bytes: 9,
        };
        let text = metrics.render(&stats, 10, 20);
        assert!(
            text.contains("hooks_requests_total{code=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hooks_requests_total{code=\"413\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("hooks_request_duration_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("hooks_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("hooks_queue_depth 7\n"), "{text}");
        assert!(text.contains("hooks_sessions 2\n"), "{text}");
        assert!(text.contains("hooks_outbox_bytes 9\n"), "{text}");
        assert!(text.contains("hooks_memory_bytes 10\n"), "{text}");
        assert!(text.contains("hooks_memory_limit_bytes 20\n"), "{text}");
    }
}
