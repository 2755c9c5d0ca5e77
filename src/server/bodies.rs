//! The two body wrappers every request goes through.
//!
//! - [`TimedBody`]: a request body must keep arriving (no pause longer than
//!   `server.body_idle_timeout`) and must be complete within `server.body_read_timeout` of the
//!   request head, so a client announcing ten megabytes and trickling a byte a minute cannot
//!   hold a connection. The timers exist only while a read actually waits: a request without
//!   a body, or whose body is already buffered, costs nothing.
//! - [`Tracked`]: a response body that keeps its request counted as in flight until it has
//!   been sent (or abandoned), so the connection's supervisor knows when it is idle.
//!
//! Hand-written rather than tower-http's `TimeoutBody`, which has only the pause timer: a
//! trickle of one byte per pause would still last forever.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::connections::InFlight;

/// The request body did not arrive in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// Limits on how a request body arrives.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Longest pause between two chunks.
    pub idle: Duration,
    /// Longest time for the whole body, from the request head.
    pub total: Duration,
}

pub struct TimedBody {
    inner: Incoming,
    limits: BodyLimits,
    deadline: Instant,
    /// When the current wait for the next chunk began.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl TimedBody {
    pub fn new(inner: Incoming, limits: BodyLimits) -> TimedBody {
        TimedBody {
            inner,
            limits,
            deadline: Instant::now() + limits.total,
            waiting_since: None,
            timer: None,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting_since = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let now = Instant::now();
                let since = *this.waiting_since.get_or_insert(now);
                let wake_at = (since + this.limits.idle).min(this.deadline);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(wake_at)));
                if timer.deadline() != wake_at {
                    timer.as_mut().reset(wake_at);
                }
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(Box::new(BodyTimeout))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds its request's [`InFlight`] mark until it is done.
pub struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub fn new(body: B, in_flight: InFlight) -> Tracked<B> {
        Tracked {
            body,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
