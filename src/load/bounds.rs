//! The checked range of every load setting: a value outside it is a usage
//! error with a message that says the range, never a panic or a run that
//! exhausts memory.

use std::time::Duration;

use super::{LoadPlan, Stop};

/// Calls in flight at most (each is a task and an HTTP/2 stream).
pub const MAX_CONCURRENCY: usize = 10_000;
/// Connections to a Service address in clusterip mode.
pub const MAX_CONNECTIONS: usize = 1_000;
/// Echo payload: the reply carries it back, and gRPC servers refuse
/// messages over 4 MiB by default.
pub const MAX_PAYLOAD_BYTES: usize = 4_000_000;
pub const MAX_REQUESTS: u64 = 1_000_000_000_000;
/// Open-loop rates, in calls per second.
pub const MIN_RATE: f64 = 0.01;
pub const MAX_RATE: f64 = 10_000_000.0;
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
pub const MAX_WARMUP: Duration = Duration::from_secs(3600);
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
pub const MAX_THREADS: usize = 256;

impl LoadPlan {
    /// Checks every setting against its range; the error names the flag,
    /// the range and an example.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(format!(
                "--concurrency must be at least 1 and at most {MAX_CONCURRENCY} calls in flight (got {}; e.g. -c 32)",
                self.concurrency
            ));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(format!(
                "--threads {} must be from 1 to {MAX_THREADS} (default: the number of cores)",
                self.threads
            ));
        }
        match self.stop {
            Stop::Requests(n) if !(1..=MAX_REQUESTS).contains(&n) => {
                return Err(format!(
                    "--requests {n} must be from 1 to {MAX_REQUESTS} (or use --duration)"
                ));
            }
            Stop::Duration(d) if d.is_zero() || d > MAX_DURATION => {
                return Err(format!(
                    "--duration {} must be longer than 0 and at most 7 days (e.g. 30s, 10m)",
                    humantime::format_duration(d)
                ));
            }
            _ => {}
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate)) {
                return Err(format!(
                    "--rate {rate} must be from {MIN_RATE} to {MAX_RATE} calls per second (e.g. --rate 1000)"
                ));
            }
            if let Stop::Requests(n) = self.stop {
                let takes = n as f64 / rate;
                if takes > MAX_DURATION.as_secs_f64() {
                    return Err(format!(
                        "--requests {n} at --rate {rate} would take {:.0} days; lower --requests or raise --rate",
                        takes / 86_400.0
                    ));
                }
            }
        }
        if self.warmup > MAX_WARMUP {
            return Err(format!(
                "--warmup {} must be at most 1h (e.g. 500ms)",
                humantime::format_duration(self.warmup)
            ));
        }
        if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&self.timeout) {
            return Err(format!(
                "--timeout {} must be from 1ms to 1h (e.g. 5s)",
                humantime::format_duration(self.timeout)
            ));
        }
        if let super::CallKind::Echo { payload } = &self.call
            && payload.len() > MAX_PAYLOAD_BYTES
        {
            return Err(format!(
                "--payload-bytes {} must be at most {MAX_PAYLOAD_BYTES} (gRPC servers refuse messages over 4 MiB)",
                payload.len()
            ));
        }
        Ok(())
    }
}

/// Checks `--connections` (clusterip mode).
pub fn check_connections(connections: usize) -> Result<(), String> {
    if (1..=MAX_CONNECTIONS).contains(&connections) {
        Ok(())
    } else {
        Err(format!(
            "--connections {connections} must be from 1 to {MAX_CONNECTIONS} (e.g. --connections 4)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::CallKind;

    fn plan() -> LoadPlan {
        LoadPlan {
            concurrency: 8,
            threads: 1,
            stop: Stop::Requests(100),
            rate: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(5),
            call: CallKind::Health {
                service: String::new(),
            },
            identity_header: "hostname".into(),
            metadata: Default::default(),
        }
    }

    #[test]
    fn every_out_of_range_setting_is_refused_by_name() {
        let cases: Vec<(LoadPlan, &str)> = vec![
            (
                LoadPlan {
                    concurrency: 0,
                    ..plan()
                },
                "--concurrency",
            ),
            (
                LoadPlan {
                    concurrency: 1_000_000,
                    ..plan()
                },
                "--concurrency",
            ),
            (
                LoadPlan {
                    threads: 0,
                    ..plan()
                },
                "--threads",
            ),
            (
                LoadPlan {
                    rate: Some(1e-20),
                    ..plan()
                },
                "--rate",
            ),
            (
                LoadPlan {
                    rate: Some(f64::NAN),
                    ..plan()
                },
                "--rate",
            ),
            (
                LoadPlan {
                    rate: Some(0.01),
                    stop: Stop::Requests(MAX_REQUESTS),
                    ..plan()
                },
                "would take",
            ),
            (
                LoadPlan {
                    timeout: Duration::from_secs(20_000 * 365 * 86_400),
                    ..plan()
                },
                "--timeout",
            ),
            (
                LoadPlan {
                    stop: Stop::Duration(Duration::from_secs(u64::MAX / 2)),
                    ..plan()
                },
                "--duration",
            ),
            (
                LoadPlan {
                    warmup: Duration::from_secs(u64::MAX / 2),
                    ..plan()
                },
                "--warmup",
            ),
            (
                LoadPlan {
                    call: CallKind::Echo {
                        payload: vec![0; MAX_PAYLOAD_BYTES + 1],
                    },
                    ..plan()
                },
                "--payload-bytes",
            ),
        ];
        for (plan, flag) in cases {
            let error = plan.check().expect_err(flag);
            assert!(error.contains(flag), "{error}");
        }
        assert!(plan().check().is_ok());
        assert!(check_connections(0).is_err());
        assert!(check_connections(MAX_CONNECTIONS + 1).is_err());
    }
}
