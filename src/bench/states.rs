//! What the pool's connections went through during a run: each member's
//! states for the report, and the members never ready for the verdict.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::pool::{Pool, State};
use crate::report::{StateReport, TransitionReport};

/// Each member's connection states over the run, by address; `start` is
/// the end of the warm-up and `end` the end of the run.
pub(super) fn states(pool: &Pool, start: Instant, end: Instant) -> BTreeMap<String, StateReport> {
    let seconds = |at: Instant| seconds_from(start, at);
    pool.members()
        .iter()
        .map(|member| {
            let timeline = member.timeline();
            let transitions = timeline.transitions();
            // Time not ready within [start, end]: each state lasts until the next.
            let mut unavailable = 0.0;
            for (i, t) in transitions.iter().enumerate() {
                let until = transitions.get(i + 1).map_or(end, |next| next.at);
                let (from, until) = (t.at.max(start), until.min(end));
                if t.state != State::Ready && until > from {
                    unavailable += until.duration_since(from).as_secs_f64();
                }
            }
            let report = StateReport {
                now: timeline.state().name().to_string(),
                unavailable_s: (unavailable * 1000.0).round() / 1000.0,
                transitions: transitions
                    .iter()
                    .map(|t| TransitionReport {
                        at_s: seconds(t.at),
                        state: t.state.name().to_string(),
                        reason: t.reason.as_ref().map(|r| r.to_string()),
                    })
                    .collect(),
            };
            (member.endpoint().address.clone(), report)
        })
        .collect()
}

/// Seconds from `start` to `at` to the millisecond (negative: before it).
pub(super) fn seconds_from(start: Instant, at: Instant) -> f64 {
    let s = if at >= start {
        at.duration_since(start).as_secs_f64()
    } else {
        -start.duration_since(at).as_secs_f64()
    };
    (s * 1000.0).round() / 1000.0
}

/// Members that were never ready during the run, with the last reason they
/// failed: they fail the verdict by name.
pub(super) fn never_ready(pool: &Pool) -> BTreeMap<String, String> {
    pool.members()
        .iter()
        .filter_map(|member| {
            let timeline = member.timeline();
            let transitions = timeline.transitions();
            if transitions.iter().any(|t| t.state == State::Ready) {
                return None;
            }
            let why = transitions
                .iter()
                .rev()
                .find_map(|t| t.reason.as_ref())
                .map_or("never connected".to_string(), |r| r.to_string());
            Some((member.endpoint().address.clone(), why))
        })
        .collect()
}
