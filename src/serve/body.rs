//! Request bodies a handler left unread. An answer sent before the body was read (404 or 405
//! to a POST, 413 on a declared length, 408) leaves the rest of the body on the connection.
//! hyper then closes the connection instead of reading the next request, although the answer
//! it already wrote promised keep-alive, so a client reusing the connection fails. [`settle`]
//! reads and drops the rest when it is small ([`DRAIN_BYTES`]) and arrives within the body
//! timeout, so the connection stays usable; otherwise the answer says `Connection: close`.
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use tokio::time::Instant;

/// Most bytes of an unread body read and dropped to keep its connection open; anything
/// larger costs the client a new connection instead of the server the bytes.
pub(super) const DRAIN_BYTES: u64 = 64 * 1024;

/// Runs `next` on `request`, then drains what it left of the body (within `body_timeout` of
/// the request's arrival), or marks the answer `Connection: close`.
pub(super) async fn settle(request: Request, next: Next, body_timeout: Duration) -> Response {
    let deadline = Instant::now() + body_timeout;
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    // Reading the body of an `Expect: 100-continue` request would invite the client to send
    // it (hyper answers `100 Continue` when the body is first polled): close instead.
    let may_read = !request.headers().contains_key(header::EXPECT);
    let (parts, body) = request.into_parts();
    let shared = SharedBody(Arc::new(Mutex::new(body)));
    let mut response = next
        .run(Request::from_parts(parts, Body::new(shared.clone())))
        .await;
    let drained = shared.is_end_stream()
        || (may_read
            && tokio::time::timeout_at(deadline, drain(shared))
                .await
                .unwrap_or(false));
    if !drained {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads `body` to its end if it holds at most [`DRAIN_BYTES`] more; whether it did.
async fn drain(mut body: SharedBody) -> bool {
    let mut left = DRAIN_BYTES;
    loop {
        if body.is_end_stream() {
            return true;
        }
        if body.size_hint().lower() > left {
            return false;
        }
        match body.frame().await {
            None => return true,
            Some(Err(_)) => return false,
            Some(Ok(frame)) => {
                let n = frame.data_ref().map_or(0, |data| data.len() as u64);
                match left.checked_sub(n) {
                    Some(rest) => left = rest,
                    None => return false,
                }
            }
        }
    }
}

/// The request body behind a handle that the handler reads through: what the handler leaves
/// unread stays reachable after it has returned (and dropped its handle).
#[derive(Clone)]
struct SharedBody(Arc<Mutex<Body>>);

impl SharedBody {
    fn with<T>(&self, f: impl FnOnce(&mut Body) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.with(|body| Pin::new(body).poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.with(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.with(|body| body.size_hint())
    }
}
