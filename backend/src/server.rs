//! The binary's HTTP server: hyper's HTTP/1 connections over the
//! [`LimitedListener`], each watched for two timeouts that `axum::serve`
//! cannot set.
//!
//! - **Header read**: once the first byte of a request arrives, its headers
//!   must be complete within [`Timeouts::header_read`]. A client trickling
//!   its headers a byte at a time cannot hold a connection longer.
//! - **Idle**: a connection with no request in progress (since it opened, or
//!   since its last answer) is closed after [`Timeouts::idle`]. A
//!   connection that never sends anything gives its place back too.
//!
//! A request in progress (a waiting poll, a slow handler) is never cut by
//! either; a WebSocket leaves the watch once it is upgraded (the feed's
//! heartbeat looks after it). hyper's own `header_read_timeout` is not used:
//! it starts when the connection starts waiting, so it would also be the idle
//! timeout, and the two numbers could not differ.
//!
//! Graceful shutdown as `axum::serve` does it: stop accepting, let each
//! connection finish the request it is answering, close the idle ones, and
//! wait until all have.

use crate::connection_limit::LimitedListener;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

/// How long a connection may take to send headers, and may stay unused.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then shuts down
/// gracefully (module docs).
pub async fn serve(
    mut listener: LimitedListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send,
) {
    // Each connection holds a receiver: the sender sees them all gone once
    // the last connection closes.
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            (io, _addr) = listener.accept() => {
                tokio::spawn(serve_connection(io, router.clone(), timeouts, stopping.clone()));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    drop(stopping);
    stop.send_replace(true);
    stop.closed().await;
}

async fn serve_connection<I>(io: I, router: Router, timeouts: Timeouts, mut stopping: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { io, activity: activity.clone() });
    let answering = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let answer = router.clone().oneshot(request);
        let in_progress = Answering::begin(answering.clone());
        async move {
            let response = answer.await;
            drop(in_progress);
            response
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        // Not hyper's (module docs): ours below.
        .header_read_timeout(None)
        .serve_connection(io, service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let mut expired = pin!(activity.expired(timeouts));
    let mut stop_requested = *stopping.borrow();
    if stop_requested {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                break;
            }
            // Dropping the connection closes it: nothing is in progress.
            reason = &mut expired => {
                tracing::debug!(reason, "closing a connection");
                break;
            }
            _ = stopping.changed(), if !stop_requested => {
                stop_requested = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Where a connection is between requests.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request since this instant, no byte of it yet.
    Idle(Instant),
    /// The first bytes of a request's head arrived at this instant.
    ReadingHead(Instant),
    /// This many requests are being answered.
    Answering(usize),
}

/// One connection's phase, shared by its stream, its service and its watch.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self { phase: Mutex::new(Phase::Idle(Instant::now())), changed: Notify::new() }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *phase = change(*phase);
        drop(phase);
        self.changed.notify_one();
    }

    /// Resolves when the connection has been idle, or reading a head, for
    /// longer than allowed; names which.
    async fn expired(&self, timeouts: Timeouts) -> &'static str {
        loop {
            let phase = *self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let (deadline, reason) = match phase {
                Phase::Idle(since) => (since + timeouts.idle, "idle timeout"),
                Phase::ReadingHead(since) => (since + timeouts.header_read, "header-read timeout"),
                Phase::Answering(_) => {
                    self.changed.notified().await;
                    continue;
                }
            };
            if deadline <= Instant::now() {
                return reason;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = self.changed.notified() => {}
            }
        }
    }
}

/// A request being answered; when it is dropped (answered, or abandoned),
/// the connection is idle again unless another is in progress.
struct Answering(Arc<Activity>);

impl Answering {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.update(|phase| match phase {
            Phase::Answering(n) => Phase::Answering(n + 1),
            Phase::Idle(_) | Phase::ReadingHead(_) => Phase::Answering(1),
        });
        Self(activity)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.update(|phase| match phase {
            Phase::Answering(n) if n > 1 => Phase::Answering(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A connection's stream that tells its [`Activity`] when a request's first
/// bytes arrive.
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            let phase = *self.activity.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Phase::Idle(_) = phase {
                self.activity.update(|phase| match phase {
                    Phase::Idle(_) => Phase::ReadingHead(Instant::now()),
                    other => other,
                });
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
