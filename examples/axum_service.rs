//! Using zhishi as a library inside your own axum service.
//!
//! ```sh
//! cargo run --release --example axum_service      # listens on 127.0.0.1:3000
//! curl -s localhost:3000/entities -d '胰岛素是治疗糖尿病的药物。'
//! curl -s localhost:3000/zhishi/v1/process -H 'content-type: application/json' -d '{"text":"胰岛素是治疗糖尿病的药物。"}'
//! ```
//!
//! The pipeline is built once (the KG and the linker load at start-up) and shared by every
//! request handler: `Pipeline` is `Send + Sync` and `Clone` is an `Arc` bump. Pipeline work is
//! CPU-bound, so handlers run it on tokio's blocking pool.
use std::path::PathBuf;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use zhishi::pipeline::Pipeline;
use zhishi::serve::{self, ServeOptions};
use zhishi::stages::facts::FactsOptions;
use zhishi::stages::segment::SegmentStageOptions;
use zhishi::text::LinkOptions;

/// Your own endpoint: the linked entities of a plain-text body.
async fn entities(State(pipeline): State<Pipeline>, body: String) -> Json<Value> {
    let doc = tokio::task::spawn_blocking(move || pipeline.process(&body)).await;
    match doc {
        Ok(Ok(doc)) => Json(json!(doc
            .mentions
            .iter()
            .map(|m| json!({"text": m.text, "entity": m.entity.name, "score": m.score}))
            .collect::<Vec<_>>())),
        Ok(Err(e)) => Json(json!({ "error": e.to_string() })),
        Err(e) => Json(json!({ "error": e.to_string() })),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kg/demo.tsv");
    // The same pipeline as pipelines/quickstart.toml, assembled in code
    // (or: Pipeline::from_toml("pipelines/quickstart.toml".as_ref())?).
    let pipeline = Pipeline::builder()
        .name("example")
        .kg_triples([kg])
        .segment(SegmentStageOptions::default())
        .link(LinkOptions::default())
        .facts(FactsOptions::default())
        .build()?;

    let app = Router::new()
        .route("/entities", post(entities))
        .with_state(pipeline.clone())
        // zhishi's own routes (POST /v1/process, GET /healthz, the demo page), mounted under /zhishi.
        .nest("/zhishi", serve::router(pipeline, ServeOptions::default()));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(serve::shutdown_signal())
        .await?;
    Ok(())
}
