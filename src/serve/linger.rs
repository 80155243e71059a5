//! A lingering close. Once HTTP/2 has sent GOAWAY and finished its last
//! stream, the socket is half-closed (FIN) and read until the client closes
//! it, rather than dropped at once. Dropping a socket that still holds
//! unread bytes (a client's frames already in flight) sends RST, and the
//! client's kernel then throws away what it had not read yet: the last
//! replies and the GOAWAY itself, failing calls the server answered.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A second handle on a connection's socket, kept for its close.
pub struct Linger(std::net::TcpStream);

impl Linger {
    /// Splits off a handle on `stream`'s socket; the socket stays open
    /// until both are dropped.
    pub fn keep(stream: TcpStream) -> io::Result<(TcpStream, Linger)> {
        let stream = stream.into_std()?;
        let kept = stream.try_clone()?;
        Ok((TcpStream::from_std(stream)?, Linger(kept)))
    }

    /// After the connection is done with the socket: FIN, then read and
    /// discard until the client closes, for at most `limit`.
    pub async fn close(self, limit: Duration) {
        let _ = self.0.shutdown(Shutdown::Write);
        let Ok(mut stream) = TcpStream::from_std(self.0) else {
            return;
        };
        let mut discard = [0u8; 4096];
        let _ = tokio::time::timeout(limit, async {
            while let Ok(read) = stream.read(&mut discard).await {
                if read == 0 {
                    break;
                }
            }
        })
        .await;
    }
}
