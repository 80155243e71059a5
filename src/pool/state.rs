//! A member's connection state as gRPC models it, and the timeline of its
//! transitions (when and why), for reports.

use std::fmt;
use std::time::Instant;

/// gRPC's connectivity states (IDLE is not used: members connect eagerly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A TCP connection and HTTP/2 handshake are under way.
    Connecting,
    /// Connected; calls may be sent.
    Ready,
    /// The last attempt failed; the next one waits for the backoff.
    TransientFailure,
    /// The server sent GOAWAY: calls in flight finish, no new ones start.
    Draining,
    /// Removed from the pool; never used again.
    Shutdown,
}

impl State {
    /// The lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Ready => "ready",
            State::TransientFailure => "transient_failure",
            State::Draining => "draining",
            State::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a connection attempt failed or a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    ConnectionRefused,
    TimedOut,
    ConnectionReset,
    /// The server closed the connection (EOF, or GOAWAY then close).
    ClosedByServer,
    /// The server sent GOAWAY.
    GoAway,
    /// The HTTP/2 handshake or the connection failed at the protocol level.
    Protocol(String),
    /// Any other I/O error (unreachable network, no such host, …).
    Io(String),
    /// The TLS handshake failed; the failure in words ("TLS: unknown CA…").
    Tls(String),
    /// The resolver dropped the endpoint.
    Removed,
}

impl Reason {
    /// Classifies an I/O error from connecting or reading.
    pub fn of_io(error: &std::io::Error) -> Reason {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::ConnectionRefused => Reason::ConnectionRefused,
            ErrorKind::TimedOut => Reason::TimedOut,
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
                Reason::ConnectionReset
            }
            ErrorKind::UnexpectedEof => Reason::ClosedByServer,
            _ => Reason::Io(error.to_string()),
        }
    }

    /// Classifies a failure to open the TCP (and TLS) stream.
    pub fn of_connect(error: crate::tls::ConnectError) -> Reason {
        use crate::tls::ConnectError;
        match error {
            ConnectError::Tcp(kind, words) => Reason::of_io(&std::io::Error::new(kind, words)),
            ConnectError::TimedOut(_) => Reason::TimedOut,
            ConnectError::Tls(failure) => Reason::Tls(failure.to_string()),
        }
    }

    /// Classifies an HTTP/2 error.
    pub fn of_h2(error: &h2::Error) -> Reason {
        if let Some(io) = error.get_io() {
            return Reason::of_io(io);
        }
        if error.is_go_away() && error.is_remote() {
            return Reason::GoAway;
        }
        Reason::Protocol(error.to_string())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ConnectionRefused => f.write_str("connection refused"),
            Reason::TimedOut => f.write_str("connect timed out"),
            Reason::ConnectionReset => f.write_str("connection reset"),
            Reason::ClosedByServer => f.write_str("closed by the server"),
            Reason::GoAway => f.write_str("GOAWAY from the server"),
            Reason::Protocol(e) => write!(f, "HTTP/2 error: {e}"),
            Reason::Io(e) => f.write_str(e),
            Reason::Tls(e) => f.write_str(e),
            Reason::Removed => f.write_str("removed by the resolver"),
        }
    }
}

/// One state change.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub at: Instant,
    pub state: State,
    /// Why, for failures, draining and shutdown.
    pub reason: Option<Reason>,
}

/// Most transitions kept per member: a pod flapping for hours keeps the
/// first ones and the latest, not an unbounded list.
const KEPT: usize = 256;

/// The state now and how it got there.
#[derive(Debug, Clone)]
pub struct Timeline {
    transitions: Vec<Transition>,
    /// Transitions dropped from the middle once [`KEPT`] was reached.
    pub dropped: u64,
}

impl Timeline {
    /// Starts in `Connecting` at `at`.
    pub fn new(at: Instant) -> Timeline {
        Timeline {
            transitions: vec![Transition {
                at,
                state: State::Connecting,
                reason: None,
            }],
            dropped: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.transitions
            .last()
            .map_or(State::Connecting, |t| t.state)
    }

    /// Records a change; returns false (and records nothing) when the state
    /// and reason are unchanged or the member is already shut down.
    pub fn record(&mut self, at: Instant, state: State, reason: Option<Reason>) -> bool {
        if let Some(last) = self.transitions.last()
            && (last.state == State::Shutdown || (last.state == state && last.reason == reason))
        {
            return false;
        }
        if self.transitions.len() >= KEPT {
            // Keep the first half as it was; drop the oldest of the rest.
            self.transitions.remove(KEPT / 2);
            self.dropped += 1;
        }
        self.transitions.push(Transition { at, state, reason });
        true
    }

    /// Every kept transition, oldest first.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_states_are_recorded_once_and_shutdown_is_final() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(t0);
        assert!(timeline.record(t0, State::Ready, None));
        assert!(!timeline.record(t0, State::Ready, None));
        assert!(timeline.record(t0, State::Shutdown, Some(Reason::Removed)));
        assert!(!timeline.record(t0, State::Ready, None));
        assert_eq!(timeline.state(), State::Shutdown);
        assert_eq!(timeline.transitions().len(), 3);
    }

    #[test]
    fn a_flapping_member_keeps_a_bounded_timeline() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(t0);
        for i in 0..10_000 {
            let state = if i % 2 == 0 {
                State::Ready
            } else {
                State::TransientFailure
            };
            timeline.record(t0, state, None);
        }
        assert_eq!(timeline.transitions().len(), KEPT);
        assert_eq!(timeline.dropped, 10_001 - KEPT as u64);
        assert_eq!(timeline.transitions()[0].state, State::Connecting);
    }
}
