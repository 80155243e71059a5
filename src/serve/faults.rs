//! Injected faults: a slow pod, a flaky pod, a failing pod, a pod that
//! breaks after a while. A tower layer in front of the Echo and Health
//! services, so that `grpclb bench` (and any gRPC client) meets them on the
//! calls it makes; reflection is left alone so tools keep working.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use rand::Rng;
use tonic::Code;

use crate::status::{CODE_NAMES, code_name};
use tower::{Layer, Service};

/// What a server does wrong on purpose (`grpclb serve --delay …`). The
/// default injects nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Every faulted call waits this long before it is answered.
    pub delay: Duration,
    /// Each delay varies uniformly within ± this (never below zero).
    pub jitter: Duration,
    /// This fraction of calls fails with `error_code`.
    pub error_rate: f64,
    /// The status of `error_rate` and `fail_after` failures.
    pub error_code: Code,
    /// Every call fails with this status: a failing pod.
    pub fail_with: Option<Code>,
    /// The first N calls are served; every later one fails with `error_code`.
    pub fail_after: Option<u64>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            error_rate: 0.0,
            error_code: Code::Unavailable,
            fail_with: None,
            fail_after: None,
        }
    }
}

impl Faults {
    /// True when nothing is injected.
    pub fn is_none(&self) -> bool {
        *self == Faults::default()
    }

    /// One line for the server's startup message, e.g.
    /// `delay 5ms ± 2ms, 1% UNAVAILABLE`; empty when nothing is injected.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.jitter.is_zero() {
            parts.push(format!("delay {:?} ± {:?}", self.delay, self.jitter));
        } else if !self.delay.is_zero() {
            parts.push(format!("delay {:?}", self.delay));
        }
        if let Some(code) = self.fail_with {
            parts.push(format!("every call fails with {}", code_name(code)));
        }
        if self.error_rate > 0.0 {
            parts.push(format!(
                "{}% of calls fail with {}",
                self.error_rate * 100.0,
                code_name(self.error_code)
            ));
        }
        if let Some(n) = self.fail_after {
            parts.push(format!(
                "calls after the first {n} fail with {}",
                code_name(self.error_code)
            ));
        }
        parts.join(", ")
    }
}

/// A failure status from its name (`UNAVAILABLE`, `unavailable`,
/// `Unavailable`) or number (`14`); `OK` is not a failure. The error lists
/// the names to choose from.
pub fn parse_failure_code(text: &str) -> Result<Code, String> {
    let wanted = text.trim().to_ascii_uppercase().replace('-', "_");
    let number = wanted.parse::<usize>().ok();
    let found = CODE_NAMES
        .iter()
        .position(|name| *name == wanted || name.replace('_', "") == wanted)
        .or(number.filter(|n| *n < CODE_NAMES.len()));
    match found {
        Some(0) => Err(format!(
            "{text:?} is success, not a failure; choose a failing gRPC code such as UNAVAILABLE"
        )),
        Some(n) => Ok(Code::from_i32(n as i32)),
        None => Err(format!(
            "{text:?} is not a gRPC status code; choose one of {}",
            CODE_NAMES[1..].join(", ")
        )),
    }
}

/// The services whose calls meet the faults: what clients call to do work
/// or to check a pod, not what tools call to look around (reflection).
fn is_faulted(path: &str) -> bool {
    path.starts_with("/grpclb.v1.Echo/") || path.starts_with("/grpc.health.v1.Health/")
}

/// What happens to one call.
struct Decision {
    delay: Duration,
    failure: Option<(Code, String)>,
}

/// The faults and the call count `fail_after` needs, shared by every
/// connection.
#[derive(Debug)]
struct Injector {
    faults: Faults,
    calls: AtomicU64,
}

impl Injector {
    fn decide(&self) -> Decision {
        let faults = &self.faults;
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut rng = rand::rng();
        let delay = if faults.jitter.is_zero() {
            faults.delay
        } else {
            let spread = faults.jitter.as_secs_f64();
            let offset = rng.random_range(-spread..=spread);
            Duration::from_secs_f64((faults.delay.as_secs_f64() + offset).max(0.0))
        };
        let failure = if let Some(code) = faults.fail_with {
            Some((
                code,
                "grpclb serve --fail-with: this server fails every call".to_string(),
            ))
        } else if let Some(n) = faults.fail_after.filter(|n| index >= *n) {
            Some((
                faults.error_code,
                format!(
                    "grpclb serve --fail-after {n}: this server stopped serving after {n} calls"
                ),
            ))
        } else if faults.error_rate > 0.0 && rng.random::<f64>() < faults.error_rate {
            Some((
                faults.error_code,
                format!(
                    "grpclb serve --error-rate {}: injected failure",
                    faults.error_rate
                ),
            ))
        } else {
            None
        };
        Decision { delay, failure }
    }
}

/// Applies [`Faults`] to the Echo and Health calls of the service it wraps.
#[derive(Debug, Clone)]
pub struct FaultLayer {
    injector: Arc<Injector>,
}

impl FaultLayer {
    pub fn new(faults: Faults) -> FaultLayer {
        FaultLayer {
            injector: Arc::new(Injector {
                faults,
                calls: AtomicU64::new(0),
            }),
        }
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> FaultService<S> {
        FaultService {
            inner,
            injector: self.injector.clone(),
        }
    }
}

/// The service [`FaultLayer`] makes.
#[derive(Debug, Clone)]
pub struct FaultService<S> {
    inner: S,
    injector: Arc<Injector>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for FaultService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !is_faulted(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let Decision { delay, failure } = self.injector.decide();
        // The clone that was made ready is the one that must serve this call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move {
            // Answered on arrival, delivered after the delay: the delay is the
            // work, and a call that arrived while serving is answered as such
            // even if the server starts draining meanwhile.
            let response = match failure {
                Some((code, message)) => tonic::Status::new(code, message).into_http(),
                None => inner.call(request).await?,
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_name_parses_back_to_its_code() {
        for (number, name) in CODE_NAMES.iter().enumerate().skip(1) {
            let code = parse_failure_code(name).expect(name);
            assert_eq!(code as usize, number);
            assert_eq!(code_name(code), *name);
            assert_eq!(parse_failure_code(&name.to_lowercase()), Ok(code));
            assert_eq!(parse_failure_code(&number.to_string()), Ok(code));
        }
        assert_eq!(parse_failure_code("Unavailable"), Ok(Code::Unavailable));
        assert_eq!(
            parse_failure_code("deadline-exceeded"),
            Ok(Code::DeadlineExceeded)
        );
    }

    #[test]
    fn ok_and_unknown_names_are_refused_with_the_choices() {
        assert!(
            parse_failure_code("OK")
                .unwrap_err()
                .contains("not a failure")
        );
        assert!(
            parse_failure_code("0")
                .unwrap_err()
                .contains("not a failure")
        );
        let err = parse_failure_code("BROKEN").unwrap_err();
        assert!(
            err.contains("UNAVAILABLE") && err.contains("DATA_LOSS"),
            "{err}"
        );
        assert!(parse_failure_code("17").is_err());
    }

    fn injector(faults: Faults) -> Injector {
        Injector {
            faults,
            calls: AtomicU64::new(0),
        }
    }

    #[test]
    fn fail_after_serves_exactly_n_calls_then_fails_every_one() {
        let faults = injector(Faults {
            fail_after: Some(3),
            error_code: Code::Internal,
            ..Faults::default()
        });
        let failed: Vec<Option<Code>> = (0..6)
            .map(|_| faults.decide().failure.map(|(code, _)| code))
            .collect();
        let internal = Some(Code::Internal);
        assert_eq!(failed, [None, None, None, internal, internal, internal]);
    }

    #[test]
    fn error_rate_fails_about_that_fraction() {
        let faults = injector(Faults {
            error_rate: 0.1,
            ..Faults::default()
        });
        let failed = (0..20_000)
            .filter(|_| faults.decide().failure.is_some())
            .count();
        // Binomial(20000, 0.1): sd ≈ 42, so ±300 is 7 sd.
        assert!(failed.abs_diff(2_000) < 300, "{failed} of 20000 failed");
    }

    #[test]
    fn jittered_delays_stay_within_the_jitter_and_vary() {
        let faults = injector(Faults {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(2),
            ..Faults::default()
        });
        let delays: Vec<Duration> = (0..1_000).map(|_| faults.decide().delay).collect();
        let (low, high) = (Duration::from_millis(3), Duration::from_millis(7));
        assert!(delays.iter().all(|d| (low..=high).contains(d)));
        let min = delays.iter().min().copied().unwrap_or_default();
        let max = delays.iter().max().copied().unwrap_or_default();
        assert!(max - min > Duration::from_millis(3), "{min:?}..{max:?}");
    }

    #[test]
    fn only_echo_and_health_calls_are_faulted() {
        assert!(is_faulted("/grpclb.v1.Echo/Echo"));
        assert!(is_faulted("/grpc.health.v1.Health/Check"));
        assert!(!is_faulted(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
    }
}
