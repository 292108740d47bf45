//! The one accept loop of podiam's servers: an axum router over plain HTTP/1.1 or over rustls,
//! one HTTP/1.1 connection (keep-alive) per accepted stream. Used by `podiam serve` (both
//! transports) and by `podiam webhook` (HTTPS, and plain HTTP for its metrics port).
//!
//! Every connection is bounded in time, so that a slow or silent client cannot hold it:
//! the TLS handshake ([`Timeouts::handshake`]), each request head, which also bounds how long a
//! kept-alive connection may sit idle between requests ([`Timeouts::header_read`], hyper's
//! header-read timer: it starts when the connection is accepted and again whenever the
//! previous response is done), each request body ([`Timeouts::body_read`], from the end of
//! the head), and any write the client does not take in ([`Timeouts::write_stall`]: a client
//! that stops reading its response). Body *size* is the router's business (each router caps it).
//!
//! [`ReloadingCert`] serves a certificate that is re-read from disk when it changes.

mod cert;

pub use cert::{ReloadingCert, server_config};

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Time limits of every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to complete the TLS handshake, from the accept.
    pub handshake: Duration,
    /// Time to send a complete request head, from the accept or from the end of the previous
    /// response: also the keep-alive idle limit.
    pub header_read: Duration,
    /// Time to send the whole request body, from the end of its head.
    pub body_read: Duration,
    /// Time a write to the client (response, TLS handshake) may make no progress.
    pub write_stall: Duration,
    /// On shutdown, how long in-flight requests get to finish.
    pub grace: Duration,
}

impl Default for Timeouts {
    /// 10 s for the handshake and for a request head (or keep-alive idleness): SDKs send the
    /// head in one write, and reconnect when an idle pooled connection was closed; 30 s for a
    /// body (the largest legitimate one is about 1 MiB) and for a stalled write; 10 s of grace.
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            write_stall: Duration::from_secs(30),
            grace: Duration::from_secs(10),
        }
    }
}

/// Connections served at once by one listener; past it, new connections are closed at once
/// (well under the usual 20,000 open files, so `accept` itself never fails for lack of them).
pub const MAX_CONNECTIONS: usize = 8192;

/// Bytes of request bodies being received at once, across all connections of the process:
/// a body that would take the total past it fails (the handler answers 413), so slow or
/// stalled uploads cannot make the process hold more than this much, however many there are.
pub const MAX_BODY_BYTES_IN_FLIGHT: usize = 64 << 20;

static BODY_BYTES_IN_FLIGHT: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// The error of a request body that would take the bytes in flight past
/// [`MAX_BODY_BYTES_IN_FLIGHT`].
#[derive(Debug, thiserror::Error)]
#[error("too many request bodies are being received; try again")]
pub struct BodyBudgetExceeded;

/// Plain HTTP, or HTTPS with this configuration.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Plain HTTP/1.1.
    Plain,
    /// HTTP/1.1 over TLS.
    Tls(Arc<rustls::ServerConfig>),
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight connections finish
/// for up to [`Timeouts::grace`]. `on_request` may mark each request before routing, with the
/// peer's address and whether it came over TLS (for instance with extensions the handlers read).
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    app: Router,
    transport: Transport,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_request: F,
) -> std::io::Result<()>
where
    F: Fn(&mut http::Request<Body>, SocketAddr) + Clone + Send + Sync + 'static,
{
    let acceptor = match &transport {
        Transport::Plain => None,
        Transport::Tls(config) => Some(tokio_rustls::TlsAcceptor::from(Arc::clone(config))),
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .keep_alive(true);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Full: close at once rather than queue, so the process keeps its descriptors.
            tracing::warn!(%peer, max = MAX_CONNECTIONS, "connection limit reached; closing a new connection");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tcp = WriteDeadline::new(tcp, timeouts.write_stall);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let on_request = on_request.clone();
        let builder = builder.clone();
        let stop = stop_rx.clone();
        conns.spawn(async move {
            let _slot = slot;
            match acceptor {
                None => {
                    connection(
                        TokioIo::new(tcp),
                        peer,
                        app,
                        builder,
                        timeouts.body_read,
                        on_request,
                        stop,
                    )
                    .await
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        timeouts.handshake,
                        acceptor.accept(tcp),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    connection(
                        TokioIo::new(stream),
                        peer,
                        app,
                        builder,
                        timeouts.body_read,
                        on_request,
                        stop,
                    )
                    .await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(timeouts.grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
    Ok(())
}

/// One HTTP/1.1 connection, until the client closes it, a timeout fires, or shutdown.
async fn connection<I, F>(
    io: TokioIo<I>,
    peer: SocketAddr,
    app: Router,
    builder: http1::Builder,
    body_read: Duration,
    on_request: F,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(&mut http::Request<Body>, SocketAddr) + Clone + Send + Sync + 'static,
{
    let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let mut req = req.map(|b| Body::new(DeadlineBody::new(b, body_read)));
        on_request(&mut req, peer);
        app.clone().oneshot(req)
    });
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Resolves once shutdown is signalled (or the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The `Ref` of `wait_for` is not `Send`: drop it here, not across an await of the caller.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

// === impl WriteDeadline ===

/// A stream whose writes fail once they have made no progress for `limit` (the peer stopped
/// reading). Only writes are timed: hyper polls a read while a handler runs, which is no stall.
struct WriteDeadline<I> {
    inner: I,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> WriteDeadline<I> {
    fn new(inner: I, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After the inner stream answered `poll`: progress resets the clock; `Pending` starts it or
    /// fails once it ran out.
    fn track<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client took nothing in for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.track(cx, poll)
    }
}

// === impl DeadlineBody ===

/// A request body that fails once its deadline passes before it is complete.
struct DeadlineBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Bytes of this body counted in [`BODY_BYTES_IN_FLIGHT`], released when it is dropped.
    counted: usize,
}

impl Drop for DeadlineBody {
    fn drop(&mut self) {
        BODY_BYTES_IN_FLIGHT.fetch_sub(self.counted, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The error of a request body not received in time (the handler's body read fails with it).
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?}")]
pub struct BodyTimeout(pub Duration);

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
            counted: 0,
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            if let Some(Ok(f)) = &frame
                && let Some(data) = f.data_ref()
            {
                let n = data.len();
                let before =
                    BODY_BYTES_IN_FLIGHT.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                self.counted += n;
                if before.saturating_add(n) > MAX_BODY_BYTES_IN_FLIGHT {
                    return Poll::Ready(Some(Err(Box::new(BodyBudgetExceeded))));
                }
            }
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
