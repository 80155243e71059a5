//! The byte stream a connection runs over: plain TCP, or TLS on top of it.
//! One type for both, so a connection layer stays one type whatever the
//! target asks for.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{ClientTls, HandshakeFailure};

/// A connected stream, plaintext or TLS.
pub enum Stream {
    Plain(TcpStream),
    /// TLS, with the first bytes the server sent already read (see
    /// [`first_answer`]) and handed out before anything else.
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        unread: Vec<u8>,
    },
}

/// How long to wait for the server's first bytes after the handshake. In
/// TLS 1.3 a server refuses a client certificate (or its absence) only
/// after the client considers the handshake done, in an alert that arrives
/// with the first read; an HTTP/2 server sends its SETTINGS at once, so
/// waiting for them turns that refusal into a handshake failure with its
/// reason. A server that waits for the client's preface costs this much.
const FIRST_ANSWER_WAIT: Duration = Duration::from_millis(300);

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// TCP failed (refused, unreachable, …): the kind, for classifying,
    /// and the words.
    #[error("{1}")]
    Tcp(io::ErrorKind, String),
    /// TCP and TLS together took longer than allowed.
    #[error("connect timed out after {0:?}")]
    TimedOut(Duration),
    /// The TLS handshake failed, for this reason.
    #[error("{0}")]
    Tls(HandshakeFailure),
}

/// Opens a connection to `address` (`host:port`): TCP with `TCP_NODELAY`,
/// then the TLS handshake when `tls` is given; bounded by `limit` in all.
pub async fn connect(
    address: &str,
    tls: Option<&ClientTls>,
    limit: Duration,
) -> Result<Stream, ConnectError> {
    let attempt = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| ConnectError::Tcp(e.kind(), e.to_string()))?;
        // Small calls must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        match tls {
            None => Ok(Stream::Plain(tcp)),
            Some(tls) => {
                let mut stream = tls
                    .handshake(tcp, address)
                    .await
                    .map_err(ConnectError::Tls)?;
                let unread = first_answer(&mut stream).await.map_err(ConnectError::Tls)?;
                Ok(Stream::Tls {
                    stream: Box::new(stream),
                    unread,
                })
            }
        }
    };
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or(Err(ConnectError::TimedOut(limit)))
}

/// The server's first bytes, or why it refused us (see [`FIRST_ANSWER_WAIT`]).
async fn first_answer(stream: &mut TlsStream<TcpStream>) -> Result<Vec<u8>, HandshakeFailure> {
    use tokio::io::AsyncReadExt;
    let mut first = vec![0u8; 16 * 1024];
    match tokio::time::timeout(FIRST_ANSWER_WAIT, stream.read(&mut first)).await {
        // Quiet so far: whatever it says comes with the first real read.
        Err(_waited) => Ok(Vec::new()),
        Ok(Ok(0)) => Err(HandshakeFailure::Other(
            "the server closed the connection right after the handshake (did it want a client certificate?)"
                .into(),
        )),
        Ok(Ok(n)) => {
            first.truncate(n);
            Ok(first)
        }
        Ok(Err(e)) => Err(super::explain(&e).unwrap_or_else(|| HandshakeFailure::during_handshake(&e))),
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls { stream, unread } => {
                if !unread.is_empty() {
                    let n = unread.len().min(buf.remaining());
                    buf.put_slice(&unread[..n]);
                    unread.drain(..n);
                    return Poll::Ready(Ok(()));
                }
                Pin::new(stream.as_mut()).poll_read(cx, buf)
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls { stream: s, .. } => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
