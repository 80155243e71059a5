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
    Tls(Box<TlsStream<TcpStream>>),
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// TCP failed (refused, unreachable, …).
    #[error("{0}")]
    Tcp(String),
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
            .map_err(|e| ConnectError::Tcp(e.to_string()))?;
        // Small calls must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        match tls {
            None => Ok(Stream::Plain(tcp)),
            Some(tls) => tls
                .handshake(tcp, address)
                .await
                .map(|s| Stream::Tls(Box::new(s)))
                .map_err(ConnectError::Tls),
        }
    };
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or(Err(ConnectError::TimedOut(limit)))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
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
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A tonic/hyper connector that dials `address` over TLS, whatever URI it
/// is asked for (the pool names each member's address itself).
pub fn connector(
    address: String,
    tls: ClientTls,
    limit: Duration,
) -> impl tower::Service<
    http::Uri,
    Response = hyper_util::rt::TokioIo<Stream>,
    Error = ConnectError,
    Future = impl Future<Output = Result<hyper_util::rt::TokioIo<Stream>, ConnectError>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_uri: http::Uri| {
        let address = address.clone();
        let tls = tls.clone();
        async move {
            connect(&address, Some(&tls), limit)
                .await
                .map(hyper_util::rt::TokioIo::new)
        }
    })
}
