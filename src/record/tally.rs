//! Recording on the load path: each worker thread counts into its own
//! slots indexed by row (member slot × identity), latencies go into one
//! shared histogram per row, and everything is named only at the end.
//!
//! No string keys, no locks and no allocation per call: a thread finds a
//! call's row through a cache indexed by member slot, and only a new
//! (member, identity) pair takes the registry's lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderValue;

use super::histogram::AtomicHistogram;
use super::timeline::Timeline;
use super::{EndpointKey, Recorder, Tally, add_epoch_calls};
use crate::status::CODE_NAMES;

/// Why a call failed: a gRPC status code, or one of the client's own
/// outcomes. Kept as an index so counting needs no string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(u8);

/// The client's own outcomes, numbered after gRPC's codes 0–16.
const CLIENT_NAMES: [&str; 2] = ["NOT_SERVING", "NO_ENDPOINT"];

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
    const COUNT: usize = CODE_NAMES.len() + CLIENT_NAMES.len();

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
        let i = self.0 as usize;
        CODE_NAMES
            .get(i)
            .or_else(|| CLIENT_NAMES.get(i - CODE_NAMES.len()))
            .copied()
            .unwrap_or("UNKNOWN")
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
        for thread in threads {
            add_epoch_calls(&mut recorder.epoch_calls, &thread.epoch_calls);
        }
        for (i, row) in index.rows.iter().enumerate() {
            let mut counts = Counts::default();
            for thread in threads {
                if let Some(c) = thread.counts.get(i) {
                    counts.add(c);
                }
            }
            let tally = recorder.by_endpoint.entry(name(&row.key)).or_default();
            tally.ok += counts.ok;
            tally.timeline.merge(&counts.timeline);
            if counts.ok + counts.errors.iter().sum::<u64>() > 0 {
                tally.first_call_us = super::earliest(tally.first_call_us, Some(counts.first_us));
                tally.last_call_us = tally.last_call_us.max(Some(counts.last_us));
            }
            for (code, &n) in counts.errors.iter().enumerate() {
                if n > 0 {
                    tally.errors += n;
                    *tally
                        .error_codes
                        .entry(ErrorCode(code as u8).name().to_string())
                        .or_default() += n;
                }
            }
            for thread in threads {
                for (_, code, message) in thread.messages.iter().filter(|(r, _, _)| *r == i) {
                    tally.keep_message(code.name(), message);
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
#[derive(Debug, Clone)]
struct Counts {
    ok: u64,
    errors: [u64; ErrorCode::COUNT],
    max_us: u64,
    timeline: Timeline,
    /// When the first and last call were sent (µs into the window).
    first_us: u64,
    last_us: u64,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            ok: 0,
            errors: [0; ErrorCode::COUNT],
            max_us: 0,
            timeline: Timeline::default(),
            first_us: u64::MAX,
            last_us: 0,
        }
    }
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.ok += other.ok;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors.iter()) {
            *mine += theirs;
        }
        self.max_us = self.max_us.max(other.max_us);
        self.timeline.merge(&other.timeline);
        self.first_us = self.first_us.min(other.first_us);
        self.last_us = self.last_us.max(other.last_us);
    }

    /// Places a call sent `offset_us` into the window in time.
    fn sent(&mut self, offset_us: u64, ok: bool) {
        self.timeline.count(offset_us, ok);
        self.first_us = self.first_us.min(offset_us);
        self.last_us = self.last_us.max(offset_us);
    }
}

/// A recorded call: the member it went to, the pool's epoch it was picked
/// in, and when it was sent.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub slot: usize,
    pub epoch: u32,
    pub at: Instant,
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
    /// The start of the measured window: calls are placed in time from it.
    start: Instant,
    /// The width timelines start at, in µs.
    width_us: u64,
    /// Calls sent per pool epoch.
    epoch_calls: Vec<u64>,
}

impl ThreadTally {
    /// Tallies for a window starting at `start`, whose timelines start
    /// `width_us` wide.
    pub fn new(rows: Arc<Rows>, start: Instant, width_us: u64) -> ThreadTally {
        ThreadTally {
            rows,
            cache: Vec::new(),
            no_endpoint: None,
            counts: Vec::new(),
            calls: 0,
            messages: Vec::new(),
            start,
            width_us,
            epoch_calls: Vec::new(),
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
            let width_us = self.width_us;
            self.counts.resize_with(index + 1, || Counts {
                timeline: Timeline::new(width_us),
                ..Counts::default()
            });
        }
        &mut self.counts[index]
    }

    /// Places a call in time and in its epoch.
    fn placed(&mut self, index: usize, at: Instant, epoch: Option<u32>, ok: bool) {
        let offset_us = at.saturating_duration_since(self.start).as_micros() as u64;
        self.counts(index).sent(offset_us, ok);
        if let Some(epoch) = epoch {
            let epoch = epoch as usize;
            if epoch >= self.epoch_calls.len() {
                self.epoch_calls.resize(epoch + 1, 0);
            }
            self.epoch_calls[epoch] += 1;
        }
        self.calls += 1;
    }

    /// Counts a successful call.
    pub fn ok(&mut self, sent: Sent, identity: Option<&HeaderValue>, latency: Duration) {
        let us = (latency.as_micros() as u64).max(1);
        let (index, row) = self.locate(sent.slot, identity);
        row.latency_us.record(us);
        let counts = self.counts(index);
        counts.ok += 1;
        counts.max_us = counts.max_us.max(us);
        self.placed(index, sent.at, Some(sent.epoch), true);
    }

    /// Counts a failed call.
    pub fn error(
        &mut self,
        sent: Sent,
        identity: Option<&HeaderValue>,
        code: ErrorCode,
        message: Option<&str>,
    ) {
        let (index, _) = self.locate(sent.slot, identity);
        self.counts(index).errors[code.0 as usize] += 1;
        self.placed(index, sent.at, Some(sent.epoch), false);
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

    /// Counts a call, sent at `at`, that found no member to go to.
    pub fn no_endpoint(&mut self, at: Instant) {
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
        self.placed(index, at, None, false);
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
        let start = Instant::now();
        let sent = |slot: usize, epoch: u32, ms: u64| Sent {
            slot,
            epoch,
            at: start + Duration::from_millis(ms),
        };
        let mut one = ThreadTally::new(Arc::clone(&rows), start, 100_000);
        let mut two = ThreadTally::new(Arc::clone(&rows), start, 100_000);
        one.ok(sent(0, 0, 10), Some(&a), Duration::from_micros(300));
        two.ok(sent(0, 0, 20), Some(&a), Duration::from_micros(500));
        two.error(
            sent(0, 1, 150),
            Some(&a),
            ErrorCode::UNAVAILABLE,
            Some("gone"),
        );
        two.error(
            sent(0, 1, 160),
            Some(&a),
            ErrorCode::UNAVAILABLE,
            Some("gone"),
        );
        one.ok(sent(1, 1, 170), Some(&b), Duration::from_millis(2));
        one.error(sent(1, 1, 250), None, ErrorCode::DEADLINE_EXCEEDED, None);
        two.no_endpoint(start + Duration::from_millis(300));
        let record = rows.finish(&[one, two], key_of);
        let pod_a = &record.by_endpoint[&EndpointKey {
            name: "pod-a".into(),
            address: "Some(0)".into(),
        }];
        assert_eq!((pod_a.ok, pod_a.errors), (2, 2));
        assert_eq!(pod_a.error_codes["UNAVAILABLE"], 2);
        assert_eq!(pod_a.error_messages["UNAVAILABLE"], ["gone"], "kept once");
        assert_eq!(pod_a.latency_us.len(), 2);
        assert_eq!(pod_a.timeline.ok, [2, 0]);
        assert_eq!(pod_a.timeline.errors, [0, 2]);
        assert_eq!(
            (pod_a.first_call_us, pod_a.last_call_us),
            (Some(10_000), Some(160_000))
        );
        assert_eq!(
            record.epoch_calls,
            [2, 4],
            "calls without an endpoint have no epoch"
        );
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
