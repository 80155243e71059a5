//! `grpclb serve`: run the backend until SIGTERM / Ctrl-C.

use crate::cli::{Failure, ServePlan};
use crate::serve::{bind, serve, termination_signal};

/// Serves until a termination signal, then drains.
pub async fn run(plan: ServePlan) -> Result<(), Failure> {
    let listener = bind(plan.listen)
        .await
        .map_err(|e| Failure::CannotRun(e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::CannotRun(format!("cannot read the bound address: {e}")))?;
    eprintln!(
        "grpclb serve: listening on {bound} as {}",
        plan.identity.name
    );
    serve(listener, plan.identity, termination_signal())
        .await
        .map_err(|e| Failure::CannotRun(e.to_string()))?;
    eprintln!("grpclb serve: drained, bye");
    Ok(())
}
