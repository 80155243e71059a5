//! Recording on the load path: each worker thread counts into its own
//! slots indexed by row (member slot × identity), latencies go into one
//! shared histogram per row, and everything is named only at the end.
//!
//! No string keys, no locks and no allocation per call: a thread finds a
//! call's row through a cache indexed by member slot, and only a new
//! (member, identity) pair takes the registry's lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;

use super::histogram::AtomicHistogram;
use super::{EndpointKey, Recorder, Tally};

/// Why a call failed: a gRPC status code, or one of the client's own
/// outcomes. Kept as an index so counting needs no string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(u8);

/// Names by index: gRPC's codes 0–16, then the client's own.
const NAMES: [&str; 19] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
    "NOT_SERVING",
    "NO_ENDPOINT",
];

impl ErrorCode {
    pub const CANCELLED: ErrorCode = ErrorCode(1);
    pub const UNKNOWN: ErrorCode = ErrorCode(2);
    pub const DEADLINE_EXCEEDED: ErrorCode = ErrorCode(4);
    pub const PERMISSION_DENIED: ErrorCode = ErrorCode(7);
    pub const RESOURCE_EXHAUSTED: ErrorCode = ErrorCode(8);
    pub const UNIMPLEMENTED: ErrorCode = ErrorCode(12);
    pub const INTERNAL: ErrorCode = ErrorCode(13);
    pub const UNAVAILABLE: ErrorCode = ErrorCode(14);
    pub const UNAUTHENTICATED: ErrorCode = ErrorCode(16);
    /// The health check answered, but not SERVING.
    pub const NOT_SERVING: ErrorCode = ErrorCode(17);
    /// No member became ready within the call's timeout.
    pub const NO_ENDPOINT: ErrorCode = ErrorCode(18);
    const COUNT: usize = NAMES.len();

    /// The code of a `grpc-status` value; `None` for 0 (OK). Values
    /// outside gRPC's range count as UNKNOWN, as the spec says.
    pub fn from_grpc_status(value: &[u8]) -> Option<ErrorCode> {
        let code = std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.trim().parse::<u8>().ok());
        match code {
            Some(0) => None,
            Some(c) if c <= 16 => Some(ErrorCode(c)),
            _ => Some(ErrorCode::UNKNOWN),
        }
    }

    /// The canonical upper-case name.
    pub fn name(self) -> &'static str {
        NAMES[self.0 as usize]
    }
}

/// What a row counts: calls to one member answered as one identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    /// The member's slot; `None` for calls that found no member.
    pub slot: Option<usize>,
    /// The identity header's value, when the reply carried one.
    pub identity: Option<HeaderValue>,
}

/// A row's shared part: its key and its latencies.
pub struct Row {
    pub key: RowKey,
    latency_us: AtomicHistogram,
}

/// Every row of a run, shared by the worker threads.
#[derive(Default)]
pub struct Rows {
    inner: Mutex<RowIndex>,
}

#[derive(Default)]
struct RowIndex {
    rows: Vec<Arc<Row>>,
    by_key: HashMap<RowKey, usize>,
}

impl Rows {
    /// The row of `key` and its index, created on first use.
    fn row(&self, key: RowKey) -> (usize, Arc<Row>) {
        // A poisoned lock only means another thread panicked mid-insert;
        // the index is still consistent (insert is the last step).
        let mut index = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&i) = index.by_key.get(&key) {
            return (i, Arc::clone(&index.rows[i]));
        }
        let i = index.rows.len();
        let row = Arc::new(Row {
            key: key.clone(),
            latency_us: AtomicHistogram::default(),
        });
        index.rows.push(Arc::clone(&row));
        index.by_key.insert(key, i);
        (i, row)
    }

    /// Merges the threads' counts with the shared latencies and names each
    /// row with `name`; rows that share a name are added together.
    pub fn finish(
        &self,
        threads: &[ThreadTally],
        name: impl Fn(&RowKey) -> EndpointKey,
    ) -> Recorder {
        let index = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut recorder = Recorder::default();
        for (i, row) in index.rows.iter().enumerate() {
            let mut counts = Counts::default();
            for thread in threads {
                if let Some(c) = thread.counts.get(i) {
                    counts.add(c);
                }
            }
            let tally = recorder.by_endpoint.entry(name(&row.key)).or_default();
            tally.ok += counts.ok;
            for (code, &n) in counts.errors.iter().enumerate() {
                if n > 0 {
                    tally.errors += n;
                    *tally
                        .error_codes
                        .entry(NAMES[code].to_string())
                        .or_default() += n;
                }
            }
            for thread in threads {
                for (_, code, message) in thread.messages.iter().filter(|(r, _, _)| *r == i) {
                    tally.keep_message(NAMES[code.0 as usize], message);
                }
            }
            let mut latency = Tally::default().latency_us;
            row.latency_us
                .to_hdr((counts.ok > 0).then_some(counts.max_us), &mut latency);
            let _ = tally.latency_us.add(&latency);
        }
        recorder
    }
}

/// One row's counts on one thread.
#[derive(Debug, Clone, Default)]
struct Counts {
    ok: u64,
    errors: [u64; ErrorCode::COUNT],
    max_us: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.ok += other.ok;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors.iter()) {
            *mine += theirs;
        }
        self.max_us = self.max_us.max(other.max_us);
    }
}

/// The last row a member's calls went to, on this thread.
struct Cached {
    identity: Option<HeaderValue>,
    index: usize,
    row: Arc<Row>,
}

/// One worker thread's tallies.
pub struct ThreadTally {
    rows: Arc<Rows>,
    /// By member slot.
    cache: Vec<Option<Cached>>,
    no_endpoint: Option<usize>,
    /// By row index.
    counts: Vec<Counts>,
    /// Calls counted so far on this thread.
    pub calls: u64,
    /// The first distinct `grpc-message`s per row and code on this thread
    /// (errors only, so off the fast path).
    messages: Vec<(usize, ErrorCode, String)>,
}

impl ThreadTally {
    pub fn new(rows: Arc<Rows>) -> ThreadTally {
        ThreadTally {
            rows,
            cache: Vec::new(),
            no_endpoint: None,
            counts: Vec::new(),
            calls: 0,
            messages: Vec::new(),
        }
    }

    /// The row index (and shared row) of a call to `slot` answered as
    /// `identity`.
    fn locate(&mut self, slot: usize, identity: Option<&HeaderValue>) -> (usize, &Row) {
        if slot >= self.cache.len() {
            self.cache.resize_with(slot + 1, || None);
        }
        let hit = matches!(&self.cache[slot], Some(c) if c.identity.as_ref() == identity);
        if !hit {
            let (index, row) = self.rows.row(RowKey {
                slot: Some(slot),
                identity: identity.cloned(),
            });
            self.cache[slot] = Some(Cached {
                identity: identity.cloned(),
                index,
                row,
            });
        }
        match &self.cache[slot] {
            Some(cached) => (cached.index, &cached.row),
            None => unreachable!("filled above"),
        }
    }

    fn counts(&mut self, index: usize) -> &mut Counts {
        if index >= self.counts.len() {
            self.counts.resize_with(index + 1, Counts::default);
        }
        &mut self.counts[index]
    }

    /// Counts a successful call.
    pub fn ok(&mut self, slot: usize, identity: Option<&HeaderValue>, latency: Duration) {
        let us = (latency.as_micros() as u64).max(1);
        let (index, row) = self.locate(slot, identity);
        row.latency_us.record(us);
        let counts = self.counts(index);
        counts.ok += 1;
        counts.max_us = counts.max_us.max(us);
        self.calls += 1;
    }

    /// Counts a failed call.
    pub fn error(
        &mut self,
        slot: usize,
        identity: Option<&HeaderValue>,
        code: ErrorCode,
        message: Option<&str>,
    ) {
        let (index, _) = self.locate(slot, identity);
        self.counts(index).errors[code.0 as usize] += 1;
        self.calls += 1;
        if let Some(message) = message {
            let kept = self
                .messages
                .iter()
                .filter(|(i, c, _)| *i == index && *c == code);
            let (count, known) = kept.fold((0, false), |(n, known), (_, _, m)| {
                (n + 1, known || m == message)
            });
            if !known && count < super::MESSAGES_PER_CODE {
                self.messages.push((index, code, message.to_string()));
            }
        }
    }

    /// Counts a call that found no member to go to.
    pub fn no_endpoint(&mut self) {
        let index = match self.no_endpoint {
            Some(index) => index,
            None => {
                let (index, _) = self.rows.row(RowKey {
                    slot: None,
                    identity: None,
                });
                self.no_endpoint = Some(index);
                index
            }
        };
        self.counts(index).errors[ErrorCode::NO_ENDPOINT.0 as usize] += 1;
        self.calls += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(row: &RowKey) -> EndpointKey {
        let name = row
            .identity
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        EndpointKey {
            address: format!("{:?}", row.slot),
            name,
        }
    }

    #[test]
    fn threads_merge_into_one_row_per_member_and_identity() {
        let rows = Arc::new(Rows::default());
        let a = HeaderValue::from_static("pod-a");
        let b = HeaderValue::from_static("pod-b");
        let mut one = ThreadTally::new(Arc::clone(&rows));
        let mut two = ThreadTally::new(Arc::clone(&rows));
        one.ok(0, Some(&a), Duration::from_micros(300));
        two.ok(0, Some(&a), Duration::from_micros(500));
        two.error(0, Some(&a), ErrorCode::UNAVAILABLE, Some("gone"));
        two.error(0, Some(&a), ErrorCode::UNAVAILABLE, Some("gone"));
        one.ok(1, Some(&b), Duration::from_millis(2));
        one.error(1, None, ErrorCode::DEADLINE_EXCEEDED, None);
        two.no_endpoint();
        let record = rows.finish(&[one, two], key_of);
        let pod_a = &record.by_endpoint[&EndpointKey {
            name: "pod-a".into(),
            address: "Some(0)".into(),
        }];
        assert_eq!((pod_a.ok, pod_a.errors), (2, 2));
        assert_eq!(pod_a.error_codes["UNAVAILABLE"], 2);
        assert_eq!(pod_a.error_messages["UNAVAILABLE"], ["gone"], "kept once");
        assert_eq!(pod_a.latency_us.len(), 2);
        assert_eq!(
            pod_a.latency_us.max(),
            pod_a.latency_us.highest_equivalent(500)
        );
        let total = record.total();
        assert_eq!((total.requests(), total.ok, total.errors), (7, 3, 4));
        let lost = &record.by_endpoint[&EndpointKey {
            name: "none".into(),
            address: "None".into(),
        }];
        assert_eq!(lost.error_codes["NO_ENDPOINT"], 1);
    }

    #[test]
    fn grpc_status_values_map_to_codes() {
        assert_eq!(ErrorCode::from_grpc_status(b"0"), None);
        assert_eq!(
            ErrorCode::from_grpc_status(b"14").map(ErrorCode::name),
            Some("UNAVAILABLE")
        );
        assert_eq!(
            ErrorCode::from_grpc_status(b"99").map(ErrorCode::name),
            Some("UNKNOWN")
        );
    }
}
