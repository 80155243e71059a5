//! Process signals: the termination signals a server or a registration
//! waits for.

use std::future::Future;

/// Installs the SIGTERM and Ctrl-C handlers now and returns a future that
/// completes on either. Installing before the server announces itself means
/// a SIGTERM sent right after "listening on" drains instead of killing.
pub fn termination_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
