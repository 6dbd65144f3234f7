//! `zhishi serve` over real loopback HTTP: health check, processing equal to the library's
//! results, concurrent load from a bounded set of client threads, size and time limits, bad
//! requests, and graceful shutdown on SIGTERM.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use zhishi::pipeline::Pipeline;

use crate::support::server;
use server::{quickstart, Server};

/// One HTTP/1.1 request on a fresh connection; returns the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, response[split + 4..].to_vec())
}

fn post_json(addr: SocketAddr, body: &Value) -> (u16, Value) {
    let (status, bytes) = http(addr, "POST", "/v1/process", body.to_string().as_bytes());
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[test]
fn endpoints_answer_like_the_library_under_concurrent_load() {
    let server = Server::start(&["--max-in-flight", "4"]);
    let (status, health) = http(server.addr, "GET", "/healthz", b"");
    let health: Value = serde_json::from_slice(&health).unwrap();
    assert_eq!((status, &health["status"]), (200, &json!("ok")));
    assert_eq!(health["stages"], json!(["segment", "link", "facts"]));

    let (status, page) = http(server.addr, "GET", "/", b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("v1/process"));

    let pipeline = Pipeline::from_toml(quickstart()).unwrap();
    let sample = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpora/sample.txt"),
    )
    .unwrap();
    let texts: Vec<String> = sample
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    let expected: Vec<Value> = texts
        .iter()
        .map(|t| {
            serde_json::from_str(&serde_json::to_string(&pipeline.process(t).unwrap()).unwrap())
                .unwrap()
        })
        .collect();

    // 12 client threads, 30 requests each, never more than 12 connections at once.
    std::thread::scope(|scope| {
        for client in 0..12 {
            let (texts, expected, addr) = (&texts, &expected, server.addr);
            scope.spawn(move || {
                for k in 0..30 {
                    let i = (client * 7 + k) % texts.len();
                    let (status, doc) = post_json(
                        addr,
                        &json!({ "text": texts[i], "id": format!("{client}-{k}") }),
                    );
                    assert_eq!(status, 200, "{doc}");
                    assert_eq!(doc["id"], json!(format!("{client}-{k}")));
                    let mut doc = doc;
                    doc.as_object_mut().unwrap().remove("id");
                    assert!(doc == expected[i], "text {i}: {doc} != {}", expected[i]);
                }
            });
        }
    });

    let (status, batch) = post_json(server.addr, &json!({ "texts": texts[..3] }));
    assert_eq!(status, 200);
    let documents = batch["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 3);
    for (got, want) in documents.iter().zip(&expected) {
        assert!(got == want, "{got} != {want}");
    }
}

#[test]
fn bad_and_oversized_requests_get_clear_errors() {
    let server = Server::start(&["--max-body-bytes", "2000"]);
    let (status, body) = http(server.addr, "POST", "/v1/process", b"{\"text\": ");
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("invalid request"),
        "{body}"
    );

    let (status, body) = post_json(server.addr, &json!({ "txt": "姚明" }));
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `txt`"),
        "{body}"
    );

    let (status, body) = post_json(server.addr, &json!({}));
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("exactly one of `text` and `texts`"));

    let big = json!({ "text": "长".repeat(1000) }).to_string();
    let (status, _) = http(server.addr, "POST", "/v1/process", big.as_bytes());
    assert_eq!(status, 413);
}

#[test]
fn slow_requests_time_out_and_sigterm_stops_the_server_gracefully() {
    let mut server = Server::start(&["--timeout", "0.001", "--max-in-flight", "1"]);
    let texts: Vec<String> = (0..200)
        .map(|i| format!("姚明出生在上海。{}", "北京大学".repeat(200 + i)))
        .collect();
    let (status, body) = post_json(server.addr, &json!({ "texts": texts }));
    assert_eq!(status, 504, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("not processed within"));

    server.terminate();
    let (status, _) = server
        .wait_exit(Duration::from_secs(120))
        .expect("the server stops after SIGTERM");
    assert!(status.success(), "{status:?}");
    let rest = server.stderr();
    assert!(rest.contains("zhishi serve: stopped"), "{rest}");
}

/// A stage that fails the way a model stage can: a candle error whose message carries a
/// backtrace (candle captures one whenever `RUST_BACKTRACE` is set) and a server-side path;
/// a text containing "panic" makes it panic instead.
struct Failing;

/// In the failing stage's error message: must never reach a client.
const SECRET_PATH: &str = "/srv/models/secret/weights.safetensors";

impl zhishi::pipeline::Stage for Failing {
    fn name(&self) -> &'static str {
        "failing"
    }

    fn process(&self, docs: &mut [zhishi::Document]) -> Result<(), zhishi::pipeline::StageError> {
        if docs.iter().any(|d| d.text.contains("panic")) {
            panic!("index out of bounds in {SECRET_PATH}");
        }
        let inner = candle_core::Error::Msg(format!("cannot read {SECRET_PATH}"));
        let error = candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(
            error.to_string().contains(".rs:"),
            "no source paths: {error}"
        );
        Err(zhishi::pipeline::StageError::new("failing", error))
    }
}

/// `zhishi::serve::serve` over `pipeline` in this process, on a free loopback port, until
/// the returned sender is dropped.
fn serve_in_process(pipeline: Pipeline) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (bound, addr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime
            .block_on(zhishi::serve::serve(
                pipeline,
                SocketAddr::from(([127, 0, 0, 1], 0)),
                zhishi::serve::ServeOptions::default(),
                move |addr| bound.send(addr).unwrap(),
                async move {
                    let _ = stopped.await;
                },
            ))
            .unwrap();
    });
    let addr = addr.recv_timeout(Duration::from_secs(60)).unwrap();
    (addr, stop)
}

#[test]
fn with_rust_backtrace_500_bodies_carry_no_backtraces_or_source_paths() {
    let pipeline = Pipeline::builder()
        .custom_stage(Failing, &[], &[])
        .build()
        .unwrap();
    let (addr, _stop) = serve_in_process(pipeline);
    for request in [
        json!({ "text": "姚明出生在上海。" }),
        json!({ "texts": ["姚明出生在上海。", "北京"] }),
        json!({ "text": "panic" }),
    ] {
        let (status, body) = post_json(addr, &request);
        assert_eq!(status, 500, "{request}: {body}");
        let message = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
        for leak in [".rs:", "backtrace", "secret", "panicked", "/srv/"] {
            assert!(
                !message.contains(leak),
                "{request}: `{leak}` in {message:?}"
            );
        }
        assert!(message.len() < 200, "{request}: {message:?}");
    }
}
