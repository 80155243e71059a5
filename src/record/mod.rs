//! The recorder: per-thread tallies on the load path ([`ThreadTally`]),
//! merged and named at the end into a [`Recorder`], and live counters for
//! the progress view.
//!
//! Every call is counted exactly once, as ok or as an error, against the
//! endpoint it is attributed to; latency histograms hold successful calls.

mod histogram;
mod tally;
mod timeline;

pub use histogram::AtomicHistogram;
pub use tally::{ErrorCode, RowKey, Rows, Sent, ThreadTally};
pub use timeline::{MAX_BUCKETS, Timeline, initial_width_us};

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
    /// Calls by when they were sent.
    pub timeline: Timeline,
    /// When the first and the last call were sent, in µs from the start of
    /// the measured window.
    pub first_call_us: Option<u64>,
    pub last_call_us: Option<u64>,
}

/// Distinct error messages kept per status code: enough to see what went
/// wrong, and a bound on memory when every call fails differently.
pub const MESSAGES_PER_CODE: usize = 3;

/// Two significant digits (within 1%, as fine as the load path's shared
/// buckets, see [`AtomicHistogram`]); grows with the largest latency
/// recorded, so an endpoint holds a few KiB, not the ~190 KiB that three
/// digits with room for an hour take: 1,000 endpoints fit in a few MB.
fn new_histogram() -> Histogram<u64> {
    Histogram::new(2).expect("2 significant digits is a valid precision")
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            ok: 0,
            errors: 0,
            error_codes: BTreeMap::new(),
            error_messages: BTreeMap::new(),
            latency_us: new_histogram(),
            timeline: Timeline::default(),
            first_call_us: None,
            last_call_us: None,
        }
    }
}

impl Tally {
    pub fn requests(&self) -> u64 {
        self.ok + self.errors
    }

    /// Keeps `message` under `code` unless it is known or enough are kept.
    pub(crate) fn keep_message(&mut self, code: &str, message: &str) {
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
        self.timeline.merge(&other.timeline);
        self.first_call_us = earliest(self.first_call_us, other.first_call_us);
        self.last_call_us = self.last_call_us.max(other.last_call_us);
    }
}

fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One worker's record of its calls.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pub by_endpoint: BTreeMap<EndpointKey, Tally>,
    /// Calls sent in each of the pool's epochs (by epoch number).
    pub epoch_calls: Vec<u64>,
}

impl Recorder {
    /// Counts a successful call.
    pub fn ok(&mut self, key: EndpointKey, latency: Duration) {
        let tally = self.by_endpoint.entry(key).or_default();
        tally.ok += 1;
        tally
            .latency_us
            .record(latency.as_micros().max(1) as u64)
            .ok();
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
        add_epoch_calls(&mut self.epoch_calls, &other.epoch_calls);
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

/// Adds calls per epoch into `into`.
pub(crate) fn add_epoch_calls(into: &mut Vec<u64>, other: &[u64]) {
    if other.len() > into.len() {
        into.resize(other.len(), 0);
    }
    for (mine, theirs) in into.iter_mut().zip(other) {
        *mine += theirs;
    }
}

/// A span of the run over which the pool's ready set stayed the same, and
/// the calls sent in it: what a time-aware fair share is built on.
#[derive(Debug, Clone, PartialEq)]
pub struct Epoch {
    /// Seconds from the start of the measured window to the span's start
    /// and end (negative: before the window).
    pub from_s: f64,
    pub to_s: f64,
    /// Calls picked in the span.
    pub calls: u64,
    /// The addresses of the endpoints that could be picked.
    pub ready: Vec<String>,
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
    /// The pool's epochs with the calls each carried, when the ready set
    /// changed during the run (per-call runs); empty otherwise. Each
    /// endpoint's fair share then follows the time it could be picked.
    pub epochs: Vec<Epoch>,
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
            epochs: Vec::new(),
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
    /// Set to end the run early (a signal, nothing reachable): no new call
    /// starts, calls in flight finish and are counted.
    stop: std::sync::atomic::AtomicBool,
}

impl Live {
    /// Ends the run early.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// True once [`Live::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Adds a batch of finished calls (workers report every few calls, not
    /// each one, to keep shared counters off the load path).
    pub fn add(&self, done: u64, errors: u64) {
        self.done.fetch_add(done, Ordering::Relaxed);
        if errors > 0 {
            self.errors.fetch_add(errors, Ordering::Relaxed);
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
