//! Request counts and latencies, rendered in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    /// Requests per (route, status).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Latency per route.
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Ended connections per outcome (closed, header_timeout, malformed, broken, refused).
    connections: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((route.to_string(), status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = latency.entry(route.to_string()).or_default();
        for (c, bound) in h.counts.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *c += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn connection(&self, outcome: &'static str) {
        *self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    /// Requests counted so far with `status` on `route`.
    pub fn count(&self, route: &str, status: u16) -> u64 {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests
            .get(&(route.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP ferrite_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE ferrite_requests_total counter\n");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "ferrite_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP ferrite_connections_total Ended connections by outcome.\n");
        out.push_str("# TYPE ferrite_connections_total counter\n");
        for (outcome, n) in self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "ferrite_connections_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP ferrite_request_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE ferrite_request_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (c, bound) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "ferrite_request_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "ferrite_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "ferrite_request_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "ferrite_request_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out
    }
}
