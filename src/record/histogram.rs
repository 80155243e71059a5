//! A latency histogram that every worker thread records into at once (one
//! relaxed atomic add per call), so an endpoint has one histogram however
//! many threads send to it.
//!
//! Log-linear buckets: values below 256 µs are exact, above that each
//! power of two is split into 128 buckets (within 0.8%). Buckets are
//! allocated one power of two at a time, when first used, so an endpoint
//! answering in 100 µs–10 ms holds about 8 KiB.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// Values below this are counted exactly.
const LINEAR: u64 = 256;
/// Buckets per power of two above [`LINEAR`].
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Chunk 0 is the linear range; chunk `s` (s ≥ 1) holds values in
/// `[2^(s+7), 2^(s+8))`. 56 chunks cover every `u64`.
const CHUNKS: usize = 57;

/// Counts of recorded values, shared by threads.
pub struct AtomicHistogram {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram {
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
        }
    }
}

/// The chunk and bucket of a value.
fn position(value: u64) -> (usize, usize) {
    if value < LINEAR {
        return (0, value as usize);
    }
    let shift = 63 - value.leading_zeros() - SUB_BITS;
    (shift as usize, ((value >> shift) as usize) - SUB)
}

/// The range of values a bucket holds.
fn bounds(chunk: usize, bucket: usize) -> (u64, u64) {
    if chunk == 0 {
        return (bucket as u64, bucket as u64);
    }
    let low = ((bucket + SUB) as u64) << chunk;
    (low, low + ((1u64 << chunk) - 1))
}

impl AtomicHistogram {
    /// Counts one value.
    pub fn record(&self, value: u64) {
        let (chunk, bucket) = position(value);
        let counts = self.chunks[chunk].get_or_init(|| {
            let len = if chunk == 0 { LINEAR as usize } else { SUB };
            (0..len).map(|_| AtomicU64::new(0)).collect()
        });
        counts[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the counts into an HdrHistogram, each bucket at its middle
    /// value; `max` (the exact largest value, when known) replaces one
    /// count of the top bucket so the maximum is reported exactly.
    pub fn to_hdr(&self, max: Option<u64>, into: &mut Histogram<u64>) {
        let mut buckets: Vec<(u64, u64, u64)> = Vec::new();
        for (chunk, counts) in self.chunks.iter().enumerate() {
            let Some(counts) = counts.get() else {
                continue;
            };
            for (bucket, count) in counts.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let (low, high) = bounds(chunk, bucket);
                    buckets.push((low + (high - low) / 2, high, count));
                }
            }
        }
        if let Some(last) = buckets.pop() {
            let (middle, high, count) = last;
            match max.filter(|&m| m <= high) {
                Some(max) => {
                    let _ = into.record_n(middle.min(max).max(1), count - 1);
                    let _ = into.record_n(max.max(1), 1);
                }
                None => {
                    let _ = into.record_n(middle.max(1), count);
                }
            }
        }
        for (middle, _, count) in buckets {
            let _ = into.record_n(middle.max(1), count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_that_holds_it() {
        for value in (0..5000u64).chain([65_535, 1 << 40, u64::MAX]) {
            let (chunk, bucket) = position(value);
            let (low, high) = bounds(chunk, bucket);
            assert!(low <= value && value <= high, "{value}: {low}..{high}");
            assert!(
                high - low <= low / 128,
                "bucket {low}..{high} is within 0.8%"
            );
        }
    }

    #[test]
    fn percentiles_survive_the_copy_within_a_percent() {
        let histogram = AtomicHistogram::default();
        for value in 1..=10_000u64 {
            histogram.record(value);
        }
        let mut hdr = Histogram::<u64>::new(3).expect("hdr");
        histogram.to_hdr(Some(10_000), &mut hdr);
        assert_eq!(hdr.len(), 10_000);
        assert_eq!(hdr.max(), hdr.highest_equivalent(10_000));
        let p50 = hdr.value_at_quantile(0.5) as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.01, "{p50}");
    }

    #[test]
    fn small_latencies_take_little_memory() {
        let histogram = AtomicHistogram::default();
        for value in [90, 400, 2_000, 9_000] {
            histogram.record(value);
        }
        let used = histogram
            .chunks
            .iter()
            .filter(|c| c.get().is_some())
            .count();
        assert_eq!(used, 4);
    }
}
