//! The demo page works when the service is nested under a path prefix: it calls only
//! relative URLs, and each one answers under the prefix (as in `examples/axum_service.rs`).
//! The page in a real browser: `tests/serve/browser.rs`.
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use tower::ServiceExt;
use zhishi::pipeline::Pipeline;
use zhishi::serve::{self, ServeOptions};

const PAGE: &str = include_str!("../../src/serve/index.html");

/// Every `start…end` substring of `s`, in order.
fn between<'s>(s: &'s str, start: &str, end: &str) -> Vec<&'s str> {
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(start) {
        rest = &rest[i + start.len()..];
        let Some(j) = rest.find(end) else { break };
        found.push(&rest[..j]);
        rest = &rest[j + end.len()..];
    }
    found
}

fn nested() -> Router {
    let pipeline = Pipeline::from_toml(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.toml"),
    )
    .unwrap();
    Router::new().nest("/zhishi", serve::router(pipeline, ServeOptions::default()))
}

async fn call(router: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn the_page_calls_only_relative_urls_that_answer_under_a_prefix() {
    // Every request goes through `api(...)`, with a relative path.
    let fetches = between(PAGE, "fetch(", ")");
    assert_eq!(fetches.len(), 3, "{fetches:?}");
    assert!(
        fetches.iter().all(|f| f.starts_with("api(\"")),
        "{fetches:?}"
    );
    let paths = between(PAGE, "api(\"", "\")");
    assert_eq!(paths, ["v1/process", "v1/kbert-tree", "healthz"]);
    assert!(!PAGE.contains("\"/v1") && !PAGE.contains("\"/healthz"));

    let router = nested();
    let (status, page) = call(&router, "GET", "/zhishi", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<textarea id=\"input\""));
    // The explain checkbox asks for evidence, and the tables show it.
    assert!(page.contains("<input id=\"explain\" type=\"checkbox\">"));
    assert!(PAGE.contains("request.explain = true") && PAGE.contains("evidenceCell("));
    let (status, health) = call(&router, "GET", "/zhishi/healthz", "").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert!(
        health.contains("\"stages\":[\"segment\",\"link\",\"facts\"]"),
        "{health}"
    );
    let (status, doc) = call(
        &router,
        "POST",
        "/zhishi/v1/process",
        r#"{"text": "胰岛素是治疗糖尿病的药物。"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert!(doc.contains("\"name\":\"胰岛素\""), "{doc}");

    // The page draws the processed document's K-BERT tree: the facts hang from their
    // mentions in the SVG the service returns for the document it answered.
    let parsed: zhishi::Document = serde_json::from_str(&doc).unwrap();
    assert!(!parsed.facts.is_empty(), "{doc}");
    let (status, svg) = call(&router, "POST", "/zhishi/v1/kbert-tree", &doc).await;
    assert_eq!(status, StatusCode::OK, "{svg}");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    let first_object: String = parsed.facts[0].object.chars().take(1).collect();
    assert!(svg.contains(&first_object), "{first_object} not drawn");
    let (status, error) = call(&router, "POST", "/zhishi/v1/kbert-tree", "{\"txt\": 1}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error.contains("invalid document"), "{error}");
}
