//! The recorder: per-worker tallies merged at the end, and live counters
//! for the progress view.
//!
//! Every call is counted exactly once, as ok or as an error, against the
//! endpoint it is attributed to; latency histograms hold successful calls.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Name and address credited when no endpoint was available to call.
pub const NO_ENDPOINT: &str = "(no endpoint)";

/// Who a call is credited to: the server's identity and the address it was
/// reached at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointKey {
    pub name: String,
    pub address: String,
}

/// Counts and latencies for one endpoint.
#[derive(Debug, Clone)]
pub struct Tally {
    pub ok: u64,
    pub errors: u64,
    /// Errors by gRPC status code name (or `DEADLINE_EXCEEDED`, `NO_ENDPOINT`, …).
    pub error_codes: BTreeMap<String, u64>,
    /// The first few distinct `grpc-message`s per status code name.
    pub error_messages: BTreeMap<String, Vec<String>>,
    /// Latency of successful calls, in microseconds.
    pub latency_us: Histogram<u64>,
}

/// Distinct error messages kept per status code: enough to see what went
/// wrong, and a bound on memory when every call fails differently.
pub const MESSAGES_PER_CODE: usize = 3;

/// Latencies up to an hour fit; three significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            ok: 0,
            errors: 0,
            error_codes: BTreeMap::new(),
            error_messages: BTreeMap::new(),
            latency_us: new_histogram(),
        }
    }
}

impl Tally {
    pub fn requests(&self) -> u64 {
        self.ok + self.errors
    }

    /// Keeps `message` under `code` unless it is known or enough are kept.
    fn keep_message(&mut self, code: &str, message: &str) {
        if let Some(kept) = self.error_messages.get(code)
            && (kept.len() >= MESSAGES_PER_CODE || kept.iter().any(|m| m == message))
        {
            return;
        }
        self.error_messages
            .entry(code.to_string())
            .or_default()
            .push(message.to_string());
    }

    /// Adds another tally into this one.
    pub fn merge(&mut self, other: &Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        for (code, n) in &other.error_codes {
            *self.error_codes.entry(code.clone()).or_default() += n;
        }
        for (code, messages) in &other.error_messages {
            for message in messages {
                self.keep_message(code, message);
            }
        }
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
    }
}

/// One worker's record of its calls.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pub by_endpoint: BTreeMap<EndpointKey, Tally>,
}

impl Recorder {
    /// Counts a successful call.
    pub fn ok(&mut self, key: EndpointKey, latency: Duration) {
        let tally = self.by_endpoint.entry(key).or_default();
        tally.ok += 1;
        tally
            .latency_us
            .saturating_record(latency.as_micros().max(1) as u64);
    }

    /// Counts a failed call with its status code name.
    pub fn error(&mut self, key: EndpointKey, code: &str) {
        self.failed(key, code, None);
    }

    /// Counts a failed call with its status code name and the server's
    /// `grpc-message`, kept when it is among the first few of its code.
    pub fn failed(&mut self, key: EndpointKey, code: &str, message: Option<&str>) {
        let tally = self.by_endpoint.entry(key).or_default();
        tally.errors += 1;
        *tally.error_codes.entry(code.to_string()).or_default() += 1;
        if let Some(message) = message {
            tally.keep_message(code, message);
        }
    }

    /// Adds another worker's record into this one.
    pub fn merge(&mut self, other: &Recorder) {
        for (key, tally) in &other.by_endpoint {
            self.by_endpoint
                .entry(key.clone())
                .or_default()
                .merge(tally);
        }
    }

    /// The sum over all endpoints.
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for tally in self.by_endpoint.values() {
            total.merge(tally);
        }
        total
    }
}

/// A run's tallies in report order: the endpoints known to exist first, in
/// their order (with an empty tally for one that got nothing), then every
/// other key calls were credited to. This is what the verdict judges and
/// the report shows.
#[derive(Debug, Clone, Default)]
pub struct Tallies {
    pub rows: Vec<(EndpointKey, Tally)>,
    /// Endpoints (by address) that could not be reached, with why in words
    /// (`connection refused`); they fail the verdict by name when they
    /// answered no call.
    pub unreachable: BTreeMap<String, String>,
}

impl Tallies {
    /// Orders `record` after `expected`. An expected endpoint that answered
    /// under another name (a pod found mid-run) keeps the row it was
    /// recorded in.
    pub fn new(record: &Recorder, expected: &[EndpointKey]) -> Tallies {
        let mut rows = Vec::new();
        for key in expected {
            match record.by_endpoint.get(key) {
                Some(tally) => rows.push((key.clone(), tally.clone())),
                None if record.by_endpoint.keys().any(|k| k.address == key.address) => {}
                None => rows.push((key.clone(), Tally::default())),
            }
        }
        for (key, tally) in &record.by_endpoint {
            if !expected.contains(key) {
                rows.push((key.clone(), tally.clone()));
            }
        }
        Tallies {
            rows,
            unreachable: BTreeMap::new(),
        }
    }

    /// Rows of real endpoints (without the [`NO_ENDPOINT`] row).
    pub fn endpoints(&self) -> impl Iterator<Item = &(EndpointKey, Tally)> {
        self.rows.iter().filter(|(key, _)| key.name != NO_ENDPOINT)
    }

    /// The sum over every row.
    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for (_, tally) in &self.rows {
            total.merge(tally);
        }
        total
    }
}

/// Error counts by code, most frequent first: "37 UNAVAILABLE, 2 DEADLINE_EXCEEDED".
pub fn codes_text(error_codes: &BTreeMap<String, u64>) -> String {
    let mut by_count: Vec<(&String, &u64)> = error_codes.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    by_count
        .iter()
        .map(|(code, n)| format!("{n} {code}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counters the live progress view reads while the run goes on.
#[derive(Debug, Default)]
pub struct Live {
    pub done: AtomicU64,
    pub errors: AtomicU64,
}

impl Live {
    pub fn count(&self, ok: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> EndpointKey {
        EndpointKey {
            name: name.into(),
            address: format!("{name}:80"),
        }
    }

    #[test]
    fn merged_record_accounts_for_every_call() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        a.ok(key("x"), Duration::from_micros(300));
        a.error(key("x"), "UNAVAILABLE");
        b.ok(key("y"), Duration::from_millis(2));
        b.error(key("x"), "UNAVAILABLE");
        a.merge(&b);
        let x = &a.by_endpoint[&key("x")];
        assert_eq!((x.requests(), x.ok, x.errors), (3, 1, 2));
        assert_eq!(x.error_codes["UNAVAILABLE"], 2);
        let total = a.total();
        assert_eq!((total.requests(), total.ok, total.errors), (4, 2, 2));
        assert_eq!(total.latency_us.len(), 2);
    }

    #[test]
    fn only_the_first_distinct_messages_of_a_code_are_kept() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for m in ["m1", "m1", "m2"] {
            a.failed(key("x"), "INTERNAL", Some(m));
        }
        for m in ["m3", "m4", "m1"] {
            b.failed(key("y"), "INTERNAL", Some(m));
        }
        a.merge(&b);
        assert_eq!(
            a.by_endpoint[&key("x")].error_messages["INTERNAL"],
            ["m1", "m2"]
        );
        let total = a.total();
        assert_eq!(total.error_messages["INTERNAL"], ["m1", "m2", "m3"]);
        assert_eq!(total.errors, 6);
    }
}
