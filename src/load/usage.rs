//! The client's own resource use, so a report can say when the client,
//! not the server, was the limit.
//!
//! Read with `getrusage(2)` through the `libc` crate: one call, already in
//! the dependency tree (tokio and others use it), where `nix` would add a
//! crate for the same two fields.

use std::time::Duration;

/// CPU time and peak memory of this process so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU time of every thread.
    pub cpu: Duration,
    /// Peak resident set size, in bytes.
    pub max_rss_bytes: u64,
}

impl Usage {
    /// This process's usage now (zero if the kernel will not say).
    pub fn now() -> Usage {
        // SAFETY: getrusage only writes into the zeroed struct we own.
        let mut raw: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut raw) } != 0 {
            return Usage::default();
        }
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        Usage {
            cpu: time(raw.ru_utime) + time(raw.ru_stime),
            // Linux reports kilobytes.
            max_rss_bytes: (raw.ru_maxrss.max(0) as u64) * 1024,
        }
    }

    /// CPU time spent between `earlier` and this snapshot.
    pub fn cpu_since(&self, earlier: &Usage) -> Duration {
        self.cpu.saturating_sub(earlier.cpu)
    }
}

/// Raises the soft limit on open files to the hard limit: a pool over
/// 1,000 pods needs more descriptors than the usual default of 1,024.
pub fn raise_open_files_limit() {
    // SAFETY: getrlimit/setrlimit read and write a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = Usage::now();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = Usage::now();
        // Shared machines deschedule us: ask for a fraction of the spin.
        assert!(after.cpu_since(&before) >= Duration::from_millis(5));
        assert!(after.max_rss_bytes > 0);
    }
}
