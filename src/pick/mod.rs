//! Per-call pickers: which pool member serves the next call.
//!
//! A picker is one small trait with one method; each policy lives in its own
//! file. Pickers see only what they need: how many members there are and,
//! for load-aware policies, each member's in-flight calls.

mod least_request;
mod pick_first;
mod random;
mod round_robin;

use std::fmt;
use std::str::FromStr;

pub use least_request::{LeastRequest, choose_less_loaded};
pub use pick_first::PickFirst;
pub use random::Random;
pub use round_robin::RoundRobin;

/// Chooses a member for each call.
pub trait Picker: Send + Sync {
    /// Returns an index below `len` (`len` is never zero). `load(i)` is the
    /// number of calls in flight on member `i`.
    fn pick(&self, len: usize, load: &dyn Fn(usize) -> usize) -> usize;
}

/// The policies `--lb` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    RoundRobin,
    PickFirst,
    Random,
    LeastRequest,
}

impl Policy {
    /// Builds a fresh picker for this policy.
    pub fn picker(self) -> Box<dyn Picker> {
        match self {
            Policy::RoundRobin => Box::new(RoundRobin::new()),
            Policy::PickFirst => Box::new(PickFirst),
            Policy::Random => Box::new(Random),
            Policy::LeastRequest => Box::new(LeastRequest),
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round_robin",
            Policy::PickFirst => "pick_first",
            Policy::Random => "random",
            Policy::LeastRequest => "least_request",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.replace('-', "_").as_str() {
            "round_robin" => Ok(Policy::RoundRobin),
            "pick_first" => Ok(Policy::PickFirst),
            "random" => Ok(Policy::Random),
            "least_request" | "p2c" => Ok(Policy::LeastRequest),
            _ => Err(format!(
                "unknown policy {s:?}; choose round_robin, pick_first, random or least_request"
            )),
        }
    }
}
