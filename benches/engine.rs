//! Micro-benchmarks of the load path's per-call steps: picking a member
//! (per policy, over k = 3, 100 and 1,000 ready members) and recording a
//! call. A plain harness: `cargo bench --bench engine` prints ns per call.
//!
//! The pick is measured as `Pool::pick` does it: load the ready list from
//! its `ArcSwap`, let the policy choose with each member's in-flight count
//! at hand, clone the chosen member's `Arc`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use grpclb::pick::Policy;
use grpclb::record::{Rows, Sent, ThreadTally};
use http::HeaderValue;

/// Runs `step` in batches until about `budget` has passed; returns the best
/// batch's nanoseconds per step (the least disturbed by other processes).
fn ns_per_call(budget: Duration, mut step: impl FnMut(usize)) -> f64 {
    const BATCH: usize = 100_000;
    let started = Instant::now();
    let mut best = f64::MAX;
    let mut i = 0usize;
    while started.elapsed() < budget {
        let batch = Instant::now();
        for _ in 0..BATCH {
            step(i);
            i = i.wrapping_add(1);
        }
        best = best.min(batch.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    best
}

/// Stands in for a pool member: what a pick reads.
struct Member {
    in_flight: AtomicUsize,
}

fn main() {
    let budget = Duration::from_millis(500);
    println!("{:<28} {:>8} {:>10}", "step", "k", "ns/call");
    for policy in [Policy::RoundRobin, Policy::Random, Policy::LeastRequest] {
        for k in [3usize, 100, 1000] {
            let ready: ArcSwap<Vec<Arc<Member>>> = ArcSwap::from_pointee(
                (0..k)
                    .map(|i| {
                        Arc::new(Member {
                            in_flight: AtomicUsize::new(i % 4),
                        })
                    })
                    .collect(),
            );
            let picker = policy.picker();
            let ns = ns_per_call(budget, |_| {
                let ready = ready.load();
                let chosen =
                    picker.pick(ready.len(), &|i| ready[i].in_flight.load(Ordering::Relaxed));
                black_box(Arc::clone(&ready[chosen]));
            });
            println!("{:<28} {k:>8} {ns:>10.1}", format!("pick {policy}"));
        }
    }
    for k in [3usize, 1000] {
        let rows = Arc::new(Rows::default());
        let start = Instant::now();
        let mut tally = ThreadTally::new(rows, start, 50_000);
        let names: Vec<HeaderValue> = (0..k)
            .map(|i| HeaderValue::from_str(&format!("pod-{i}")).expect("valid"))
            .collect();
        let ns = ns_per_call(budget, |i| {
            let slot = i % k;
            let sent = Sent {
                slot,
                epoch: 0,
                // The load path has the send time at hand already.
                at: start + Duration::from_micros(i as u64),
            };
            tally.ok(
                sent,
                Some(&names[slot]),
                Duration::from_micros(200 + (i % 700) as u64),
            );
        });
        println!("{:<28} {k:>8} {ns:>10.1}", "record ok");
    }
}
