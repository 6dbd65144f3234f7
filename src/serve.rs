//! The HTTP service behind `zhishi serve`: one shared [`Pipeline`] answering
//! `POST /v1/process`, `GET /healthz`, and a small demo page at `/`.
//!
//! Requests are bounded in size (413 beyond `max_body_bytes`), in time (504 beyond `timeout`)
//! and in number (at most `max_in_flight` documents are processed at once; others wait for a
//! slot until their deadline). Pipeline work runs on blocking threads so the async runtime
//! keeps accepting connections. Shutdown is graceful: in-flight requests finish.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::doc::Document;
use crate::pipeline::Pipeline;

/// Service limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest a request may take, waiting included.
    pub timeout: Duration,
    /// Documents processed concurrently.
    pub max_in_flight: usize,
    /// Most texts in one batch request.
    pub max_batch: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            timeout: Duration::from_secs(30),
            max_in_flight: 8,
            max_batch: 256,
        }
    }
}

/// What can stop the service.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
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

#[derive(Clone)]
struct AppState {
    pipeline: Pipeline,
    opts: Arc<ServeOptions>,
    slots: Arc<Semaphore>,
}

/// The service's routes over `pipeline`, for embedding in a larger axum app or for tests.
pub fn router(pipeline: Pipeline, opts: ServeOptions) -> Router {
    let state = AppState {
        pipeline,
        slots: Arc::new(Semaphore::new(opts.max_in_flight.max(1))),
        opts: Arc::new(opts.clone()),
    };
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/v1/process", post(process))
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .with_state(state)
}

/// Binds `addr` and serves until `shutdown` resolves; in-flight requests finish first.
/// `on_bound` receives the actual address (useful with port 0).
pub async fn serve(
    pipeline: Pipeline,
    addr: SocketAddr,
    opts: ServeOptions,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(ServeError::Server)?;
    on_bound(bound);
    axum::serve(listener, router(pipeline, opts))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Server)
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

/// `POST /v1/process` body: one document, or a batch under `texts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessRequest {
    text: Option<String>,
    id: Option<String>,
    question: Option<String>,
    texts: Option<Vec<String>>,
}

/// `POST /v1/process` answer to a batch (documents serialise exactly as single answers do).
#[derive(Serialize)]
struct BatchResponse {
    documents: Vec<Document>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    Json(json!({
        "status": "ok",
        "pipeline": state.pipeline.name(),
        "stages": state.pipeline.stage_names(),
    }))
    .into_response()
}

async fn process(State(state): State<AppState>, body: Bytes) -> Response {
    let request: ProcessRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                "invalid request: {e}; expected {{\"text\": \"...\"}} or {{\"texts\": [\"...\"]}}"
            ),
            )
        }
    };
    let (docs, batch) = match (request.text, request.texts) {
        (Some(text), None) => (
            vec![Document {
                id: request.id,
                question: request.question,
                ..Document::new(text)
            }],
            false,
        ),
        (None, Some(texts)) if texts.len() <= state.opts.max_batch => {
            (texts.into_iter().map(Document::new).collect(), true)
        }
        (None, Some(texts)) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{} texts in one request; at most {}",
                    texts.len(),
                    state.opts.max_batch
                ),
            )
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected exactly one of `text` and `texts`",
            )
        }
    };
    let timeout = state.opts.timeout;
    match tokio::time::timeout(timeout, run(state, docs)).await {
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("not processed within {:.1}s", timeout.as_secs_f64()),
        ),
        Ok(Err(response)) => response,
        Ok(Ok(documents)) if batch => Json(BatchResponse { documents }).into_response(),
        Ok(Ok(mut docs)) => Json(docs.remove(0)).into_response(),
    }
}

/// Waits for a processing slot, then runs the pipeline on a blocking thread.
async fn run(state: AppState, mut docs: Vec<Document>) -> Result<Vec<Document>, Response> {
    let _permit = state
        .slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
    let pipeline = state.pipeline.clone();
    let result = tokio::task::spawn_blocking(move || pipeline.run(&mut docs).map(|()| docs)).await;
    match result {
        Ok(Ok(docs)) => Ok(docs),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("worker failed: {e}"),
        )),
    }
}

async fn page() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(include_str!("serve/index.html")),
    )
        .into_response()
}
