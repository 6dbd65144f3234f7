//! The routes: `POST /v1/process`, `POST /v1/kbert-tree` (a processed document's K-BERT tree
//! as SVG, [`super::tree`]), `GET /healthz`, the demo page at `/`, and JSON errors
//! (`{"error": "..."}`, `application/json`) for every failure status, axum's own included.
//!
//! A server-side failure (500) is logged in full and answered with a short message and the
//! number of its log line: error messages of stages and workers can carry backtraces (candle
//! captures one whenever `RUST_BACKTRACE` is set), file paths and panic messages, none of
//! which is for the client.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::tree::TreeError;
use super::work::{WorkError, Workers};
use super::ServeOptions;
use crate::doc::Document;
use crate::pipeline::{Pipeline, PipelineError};

/// Largest error body that [`json_errors`] rewrites into a JSON message.
const MAX_ERROR_TEXT: usize = 16 * 1024;

#[derive(Clone)]
struct AppState {
    workers: Arc<Workers>,
    opts: Arc<ServeOptions>,
    /// Whether documents need a `question` (the pipeline has a `qa` stage).
    needs_question: bool,
}

/// The service's routes over `pipeline`.
pub(super) fn router(pipeline: Pipeline, opts: ServeOptions) -> Router {
    let body_timeout = opts.body_timeout;
    let state = AppState {
        needs_question: pipeline.stage_names().contains(&"qa"),
        workers: Arc::new(Workers::new(pipeline, opts.max_in_flight)),
        opts: Arc::new(opts),
    };
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/v1/process", post(process))
        .route("/v1/kbert-tree", post(kbert_tree))
        .fallback(not_found)
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn(move |request: Request, next| {
            super::body::settle(request, next, body_timeout)
        }))
        .with_state(state)
}

/// `POST /v1/process` body: one document, or a batch under `texts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessRequest {
    text: Option<String>,
    id: Option<String>,
    question: Option<String>,
    /// The second text of a pair (sentence-pair classification).
    text_b: Option<String>,
    texts: Option<Vec<String>>,
    /// Give each prediction of a stage that injected knowledge its `evidence`.
    #[serde(default)]
    explain: bool,
}

/// `POST /v1/process` answer to a batch (documents serialise exactly as single answers do).
#[derive(Serialize)]
struct BatchResponse {
    documents: Vec<Document>,
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Counts the server-side failures logged, numbering each for the client's message.
static INTERNAL_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Logs `error` in full as the server-side failure `what`, and returns the short message the
/// client gets instead, which names the log line.
fn internal_error(what: &str, error: &dyn std::fmt::Display) -> String {
    let id = INTERNAL_ERRORS.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::error!(error_id = id, "{what}: {error}");
    format!("internal error {what} (error {id}; details are in the server log)")
}

/// Rewrites any failure response that is not JSON yet (axum's rejections, e.g. a body over
/// the limit, carry plain text) into `{"error": text}`, keeping status and other headers;
/// a server error's text is logged and replaced ([`internal_error`]).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else if status.is_server_error() {
        internal_error("while answering", &text)
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json!({ "error": message }).to_string()))
}

async fn healthz(State(state): State<AppState>) -> Response {
    let pipeline = state.workers.pipeline();
    Json(json!({
        "status": "ok",
        "pipeline": pipeline.name(),
        "stages": pipeline.stage_names(),
        "work": state.workers.stats(),
    }))
    .into_response()
}

/// Why `POST /v1/process` failed; each maps to one status.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    /// The body is over `max_body_bytes` (declared or counted).
    #[error("request body over {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body did not arrive within `body_timeout`.
    #[error("request body not received within {:.1}s", .0.as_secs_f64())]
    BodyTimeout(Duration),
    /// The connection failed while the body was read.
    #[error("cannot read the request body")]
    BodyRead(#[source] axum::BoxError),
    /// The body is not a valid request.
    #[error("invalid request; expected {{\"text\": \"...\"}} or {{\"texts\": [\"...\"]}}")]
    InvalidJson(#[source] serde_json::Error),
    /// The body of `POST /v1/kbert-tree` is not a document.
    #[error("invalid document; expected the JSON `POST /v1/process` answered")]
    InvalidDocument(#[source] serde_json::Error),
    /// The tree could not be drawn.
    #[error(transparent)]
    Tree(#[from] super::tree::TreeError),
    /// Neither or both of `text` and `texts`.
    #[error("expected exactly one of `text` and `texts`")]
    TextOrTexts,
    /// The pipeline answers questions and the request asks none.
    #[error("the pipeline's `qa` stage needs a `question` with the `text` (one per request)")]
    NoQuestion,
    /// A batch over `max_batch`.
    #[error("{count} texts in one request; at most {max}")]
    TooManyTexts {
        /// Texts sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Not processed within `timeout`.
    #[error("not processed within {:.1}s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The pipeline or its worker failed, or the service is stopping.
    #[error(transparent)]
    Work(#[from] WorkError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BodyTooLarge { .. } | ApiError::TooManyTexts { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyRead(_)
            | ApiError::InvalidJson(_)
            | ApiError::InvalidDocument(_)
            | ApiError::TextOrTexts
            | ApiError::NoQuestion => StatusCode::BAD_REQUEST,
            ApiError::Tree(TreeError::Flatten(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Work(WorkError::Closed | WorkError::Cancelled) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Tree(TreeError::Draw(_))
            | ApiError::Work(WorkError::Pipeline(_) | WorkError::Worker(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// What the client is told: the error itself, or for a server-side failure (500) a short
    /// message saying where it happened ([`internal_error`] logs the whole).
    fn client_message(&self) -> String {
        if self.status() != StatusCode::INTERNAL_SERVER_ERROR {
            return crate::error::report(self);
        }
        let what = match self {
            ApiError::Work(WorkError::Pipeline(PipelineError::Stage(e))) => {
                format!("in stage `{}`", e.stage)
            }
            ApiError::Tree(_) => "while drawing the tree".to_string(),
            _ => "while processing the documents".to_string(),
        };
        internal_error(&what, &crate::error::report(self))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status(), self.client_message())
    }
}

/// The request body, within `max_body_bytes` (413) and `body_timeout` (408).
async fn read_body(request: Request, opts: &ServeOptions) -> Result<Bytes, ApiError> {
    let limit = opts.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let body = Limited::new(request.into_body(), limit);
    match tokio::time::timeout(opts.body_timeout, body.collect()).await {
        Err(_) => Err(ApiError::BodyTimeout(opts.body_timeout)),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(ApiError::BodyTooLarge { limit }),
        Ok(Err(e)) => Err(ApiError::BodyRead(e)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// The documents a request asks for, whether it was a batch, and whether it asks for
/// explanations. With `needs_question`, each document must come with its question (so only
/// single documents can).
fn documents(
    body: &[u8],
    max_batch: usize,
    needs_question: bool,
) -> Result<(Vec<Document>, bool, bool), ApiError> {
    let request: ProcessRequest = serde_json::from_slice(body).map_err(ApiError::InvalidJson)?;
    let explain = request.explain;
    let (docs, batch) = match (request.text, request.texts) {
        (Some(_), None) if needs_question && request.question.is_none() => {
            Err(ApiError::NoQuestion)
        }
        (None, Some(_)) if needs_question => Err(ApiError::NoQuestion),
        (Some(text), None) => Ok((
            vec![Document {
                id: request.id,
                question: request.question,
                text_b: request.text_b,
                ..Document::new(text)
            }],
            false,
        )),
        (None, Some(texts)) if texts.len() <= max_batch => {
            Ok((texts.into_iter().map(Document::new).collect(), true))
        }
        (None, Some(texts)) => Err(ApiError::TooManyTexts {
            count: texts.len(),
            max: max_batch,
        }),
        _ => Err(ApiError::TextOrTexts),
    }?;
    Ok((docs, batch, explain))
}

async fn process(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let body = read_body(request, &state.opts).await?;
    let (docs, batch, explain) = documents(&body, state.opts.max_batch, state.needs_question)?;
    drop(body);
    let timeout = state.opts.timeout;
    let mut documents = tokio::time::timeout(timeout, state.workers.run(docs, explain))
        .await
        .map_err(|_| ApiError::Timeout(timeout))??;
    Ok(if batch {
        Json(BatchResponse { documents }).into_response()
    } else {
        Json(documents.remove(0)).into_response()
    })
}

/// `POST /v1/kbert-tree`: a document (as `/v1/process` answered it) in, its K-BERT tree as
/// `image/svg+xml` out. Drawing runs on the blocking pool (the visible matrix is quadratic
/// in the drawn length, which [`super::tree::MAX_TREE_TOKENS`] caps).
async fn kbert_tree(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let body = read_body(request, &state.opts).await?;
    let doc: Document = serde_json::from_slice(&body).map_err(ApiError::InvalidDocument)?;
    drop(body);
    let timeout = state.opts.timeout;
    let drawing = tokio::task::spawn_blocking(move || super::tree::kbert_tree_svg(&doc));
    let svg = tokio::time::timeout(timeout, drawing)
        .await
        .map_err(|_| ApiError::Timeout(timeout))?
        .map_err(|e| ApiError::Work(WorkError::Worker(e)))??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

async fn page() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(include_str!("index.html")),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qa_pipeline_needs_one_text_with_its_question() {
        let single = br#"{"text": "Who?", "question": "Q"}"#;
        let (docs, batch, explain) = documents(single, 8, true).unwrap();
        assert_eq!((docs[0].question.as_deref(), batch), (Some("Q"), false));
        assert!(!explain);
        let (_, _, explain) = documents(br#"{"text": "a", "explain": true}"#, 8, false).unwrap();
        assert!(explain);
        for body in [
            &br#"{"text": "Who?"}"#[..],
            br#"{"texts": ["Who?"], "question": "Q"}"#,
        ] {
            let err = documents(body, 8, true).unwrap_err();
            assert!(matches!(err, ApiError::NoQuestion), "{err}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        assert!(documents(br#"{"texts": ["a", "b"]}"#, 8, false).is_ok());
    }
}
