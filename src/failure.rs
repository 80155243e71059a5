//! Why a command could not do its job, and the exit code that says so.

use crate::resolve::ResolveError;

/// A command that did not run to a verdict.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad usage: flags or target syntax (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Could not run: resolution failed, nothing reachable, permission denied (exit 3).
    #[error("{0}")]
    CannotRun(String),
}

impl Failure {
    /// The process exit code (design: exit codes).
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::CannotRun(_) => 3,
        }
    }
}

impl From<ResolveError> for Failure {
    fn from(err: ResolveError) -> Self {
        match err {
            ResolveError::Unsupported(m) => Failure::Usage(m),
            ResolveError::Failed(m) => Failure::CannotRun(m),
        }
    }
}

impl From<crate::target::TargetError> for Failure {
    fn from(err: crate::target::TargetError) -> Self {
        Failure::Usage(err.to_string())
    }
}
