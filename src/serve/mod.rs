//! The HTTP service behind `zhishi serve`: one shared [`Pipeline`] answering
//! `POST /v1/process`, `GET /healthz`, and a small demo page at `/`.
//!
//! Requests are bounded in size (413 beyond `max_body_bytes`), in time (504 beyond `timeout`)
//! and in number (at most `max_in_flight` documents are processed at once; others wait for a
//! slot until their deadline, and a timed-out request keeps its slot until its work has
//! really stopped). Pipeline work runs on blocking threads so the async runtime keeps
//! accepting connections. Clients are bounded too: a request head must arrive within
//! `header_timeout`, a body within `body_timeout` (408), a connection doing nothing for
//! `idle_timeout` is closed, and at most `max_connections` are served at once. Every failure
//! answers `{"error": "..."}` as `application/json`, unparsable request heads included; a
//! server-side failure is logged in full and answered with a short message. An answer sent
//! before the request's body was read keeps its connection usable or says
//! `Connection: close`. Shutdown is graceful with a deadline: in-flight requests get
//! `shutdown_grace` to finish, then connections are dropped.
mod body;
mod conn;
mod head_errors;
mod options;
mod routes;
pub mod tree;
mod work;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;

pub use options::{
    count_range, positive_seconds_range, seconds_range, OptionError, ServeOptions, MAX_BATCH,
    MAX_BODY_BYTES, MAX_CONNECTIONS, MAX_IN_FLIGHT, MAX_SECONDS,
};

use crate::pipeline::Pipeline;

/// What can stop the service.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A limit is out of range.
    #[error("invalid service option")]
    Options(#[from] OptionError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Server(std::io::Error),
}

/// The service's routes over `pipeline`, for embedding in a larger axum app or for tests.
///
/// Request limits (body size and time, processing time and slots, batch size) apply;
/// connection limits (header and idle timeouts, connection count, shutdown deadline) are
/// up to the server the router is embedded in, as [`serve`] does.
pub fn router(pipeline: Pipeline, opts: ServeOptions) -> Router {
    routes::router(pipeline, opts)
}

/// Binds `addr` and serves until `shutdown` resolves; in-flight requests then get
/// `opts.shutdown_grace` to finish before the remaining connections are dropped.
/// `on_bound` receives the actual address (useful with port 0).
pub async fn serve(
    pipeline: Pipeline,
    addr: SocketAddr,
    opts: ServeOptions,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    opts.validate()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(ServeError::Server)?;
    on_bound(bound);
    let app = routes::router(pipeline, opts.clone());
    conn::serve_connections(listener, app, &opts, shutdown).await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
