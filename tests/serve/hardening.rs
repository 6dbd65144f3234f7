//! `zhishi serve` under misuse: out-of-range flags (item 12), slow and idle clients and the
//! connection cap (item 14), shutdown with a deadline (item 15), honest slot accounting after
//! timeouts (item 16), and JSON bodies on every error status (item 17). Time bounds here are
//! generous upper bounds (a limit of 1 s must act well before 30 s), never latency targets.
use crate::support::server;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{json, Value};
use server::{closed_within, connect, post, quickstart, read_response, request, Server};

/// Generous bound for "the server closed it": the limits under test are 1 s.
const CLOSE_BOUND: Duration = Duration::from_secs(15);

/// Runs `zhishi serve quickstart.toml <args>`, expecting a usage error; returns its stderr.
fn rejected(args: &[&str]) -> String {
    let out = Command::cargo_bin("zhishi")
        .unwrap()
        .args([
            "serve",
            quickstart().to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} accepted: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

#[test]
fn item12_out_of_range_flags_are_rejected_naming_the_flag_and_range() {
    for flag in [
        "--timeout",
        "--header-timeout",
        "--body-timeout",
        "--idle-timeout",
    ] {
        for value in ["inf", "1e30", "nan", "-1", "0", "86400.5", "soon"] {
            let stderr = rejected(&[&format!("{flag}={value}")]);
            assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
            assert!(
                stderr.contains("0 < seconds <= 86400"),
                "{flag} {value}: {stderr}"
            );
        }
    }
    for value in ["inf", "nan", "-1", "1e9"] {
        let stderr = rejected(&[&format!("--shutdown-grace={value}")]);
        assert!(
            stderr.contains("--shutdown-grace") && stderr.contains("0 <= seconds <= 86400"),
            "{value}: {stderr}"
        );
    }
    for (flag, max) in [
        ("--max-body-bytes", "1073741824"),
        ("--max-in-flight", "512"),
        ("--max-connections", "65536"),
    ] {
        for value in ["0", "-3", "99999999999999999999999", "many", "1073741825"] {
            let stderr = rejected(&[&format!("{flag}={value}")]);
            assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
            assert!(
                stderr.contains(&format!("1 <= n <= {max}")),
                "{flag} {value}: {stderr}"
            );
        }
    }
}

#[test]
fn item14_slowloris_headers_are_cut_off_by_the_header_timeout() {
    let server = Server::start(&["--header-timeout", "1", "--idle-timeout", "60"]);
    let mut stream = connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Slow: ", server.addr);
    let start = Instant::now();
    let mut closed = None;
    // One byte every 0.3 s, at most 100 bytes: bytes keep moving, so only the header
    // timeout can end this.
    for byte in head.bytes().chain(std::iter::repeat(b'a')).take(100) {
        if stream.write_all(&[byte]).is_err() {
            closed = Some(start.elapsed());
            break;
        }
        if let Some(after) = closed_within(&mut stream, Duration::from_millis(300)) {
            closed = Some(start.elapsed() - Duration::from_millis(300) + after);
            break;
        }
    }
    let closed = closed.expect("slowloris connection still open after 100 bytes");
    assert!(closed < CLOSE_BOUND, "closed after {closed:?}");
}

#[test]
fn item14_idle_keep_alive_connections_are_closed() {
    let server = Server::start(&["--idle-timeout", "1", "--header-timeout", "60"]);
    // Served once, then left idle on keep-alive.
    let mut stream = connect(server.addr);
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    )
    .unwrap();
    let response = read_response(&mut stream).unwrap();
    assert_eq!(response.status, 200);
    let closed = closed_within(&mut stream, Duration::from_secs(30));
    assert!(closed.is_some_and(|t| t < CLOSE_BOUND), "{closed:?}");
    // Never sent a byte.
    let mut silent = connect(server.addr);
    let closed = closed_within(&mut silent, Duration::from_secs(30));
    assert!(closed.is_some_and(|t| t < CLOSE_BOUND), "{closed:?}");
}

#[test]
fn item14_half_sent_bodies_get_408_and_are_closed() {
    let server = Server::start(&["--body-timeout", "1", "--idle-timeout", "60"]);
    let mut stream = connect(server.addr);
    write!(
        stream,
        "POST /v1/process HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"text\": \"",
        server.addr
    )
    .unwrap();
    let start = Instant::now();
    let response = read_response(&mut stream).unwrap();
    assert!(start.elapsed() < CLOSE_BOUND, "{:?}", start.elapsed());
    assert_eq!(response.status, 408, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(response.json()["error"]
        .as_str()
        .unwrap()
        .contains("not received within"));
    let closed = closed_within(&mut stream, Duration::from_secs(30));
    assert!(closed.is_some_and(|t| t < CLOSE_BOUND), "{closed:?}");
}

#[test]
fn item14_connections_beyond_max_connections_wait_for_a_slot() {
    let server = Server::start(&[
        "--max-connections",
        "2",
        "--header-timeout",
        "60",
        "--idle-timeout",
        "60",
    ]);
    // Two connections hold both slots with half a request line each.
    let mut holders: Vec<_> = (0..2)
        .map(|_| {
            let mut s = connect(server.addr);
            s.write_all(b"GET /heal").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut third = connect(server.addr);
    write!(
        third,
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let early = read_response(&mut third);
    assert!(early.is_err(), "served beyond the cap: {early:?}");
    // A slot frees up: the waiting client is served.
    holders.pop();
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let response = read_response(&mut third).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn item15_sigterm_with_a_half_sent_request_line_exits_after_the_grace_period() {
    let mut server = Server::start(&[
        "--shutdown-grace",
        "1",
        "--header-timeout",
        "600",
        "--idle-timeout",
        "600",
    ]);
    let mut stream = connect(server.addr);
    stream.write_all(b"POST /v1/proc").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    let (status, took) = server
        .wait_exit(Duration::from_secs(30))
        .expect("still running 30 s after SIGTERM");
    assert!(status.success(), "{status:?}: {}", server.stderr());
    assert!(took < CLOSE_BOUND, "{took:?}");
    assert!(
        server.stderr().contains("zhishi serve: stopped"),
        "{}",
        server.stderr()
    );
    drop(stream);
}

/// One document of about 60k characters full of mentions: linking time grows faster than
/// its length, so this takes seconds (about 2 s in the test profile).
fn large_text() -> String {
    "高血压和糖尿病都是常见的慢性疾病，需要长期服药。".repeat(60_000 / 24)
}

/// ~870 KB of dense mentions (just under the default body limit): about a second of pipeline
/// work even in a release build, 20x a 0.05 s time limit, so timeout tests do not hinge on speed.
fn heavy_text() -> String {
    "高血压和糖尿病都是常见的慢性疾病，需要长期服药。".repeat(290_000 / 24)
}

#[test]
fn item15_sigterm_lets_in_flight_requests_finish() {
    let mut server = Server::start(&["--shutdown-grace", "60"]);
    let addr = server.addr;
    let text = large_text();
    let client = std::thread::spawn(move || post(addr, &json!({ "text": text, "id": "last" })));
    let start = Instant::now();
    while server.work()["in_flight"] != json!(1) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "request never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server.terminate();
    let response = client.join().unwrap();
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.json()["id"], json!("last"));
    let (status, _) = server
        .wait_exit(Duration::from_secs(60))
        .expect("still running after the request finished");
    assert!(status.success(), "{status:?}");
}

#[test]
fn item16_timed_out_requests_keep_their_slot_until_their_work_ends() {
    let server = Server::start(&["--timeout", "0.05", "--max-in-flight", "1"]);
    let body = json!({ "text": heavy_text() });
    // One after another: each times out while its document is still being processed.
    for _ in 0..3 {
        let response = post(server.addr, &body);
        assert_eq!(response.status, 504, "{}", response.head);
        assert_eq!(response.header("content-type"), Some("application/json"));
    }
    // All at once: one runs, the others wait and give up their place at their deadline.
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| post(server.addr, &body)))
            .collect();
        for client in clients {
            assert_eq!(client.join().unwrap().status, 504);
        }
    });
    let start = Instant::now();
    loop {
        let work = server.work();
        assert!(work["in_flight"].as_u64().unwrap() <= 1, "{work}");
        if work["in_flight"] == json!(0) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{work}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let work = server.work();
    assert_eq!(work["in_flight_peak"], json!(1), "{work}");
    assert_eq!(work["max_in_flight"], json!(1), "{work}");
    let response = post(server.addr, &json!({ "text": "姚明出生在上海。" }));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(server.work()["in_flight_peak"], json!(1));
}

/// Asserts `response` has `status` and a JSON `{"error": "..."}` body.
fn assert_json_error(response: &server::Response, status: u16) -> String {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{status}: {}",
        response.head
    );
    let body: Value = response.json();
    let message = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert!(!message.is_empty());
    message.to_string()
}

#[test]
fn item17_every_error_status_answers_json() {
    let server = Server::start(&["--max-body-bytes", "2000", "--body-timeout", "1"]);
    let addr = server.addr;
    let json_type = ["Content-Type: application/json"];

    let message = assert_json_error(&request(addr, "GET", "/nope", &[], b"").unwrap(), 404);
    assert!(message.contains("/nope"), "{message}");
    assert_json_error(
        &request(addr, "POST", "/nope", &json_type, b"{}").unwrap(),
        404,
    );

    let response = request(addr, "GET", "/v1/process", &[], b"").unwrap();
    assert_json_error(&response, 405);
    assert_eq!(response.header("allow"), Some("post"));
    assert_json_error(&request(addr, "DELETE", "/healthz", &[], b"").unwrap(), 405);

    assert_json_error(
        &request(addr, "POST", "/v1/process", &json_type, b"{\"text\": ").unwrap(),
        400,
    );
    assert_json_error(
        &request(addr, "POST", "/v1/process", &json_type, b"\xff\xfe").unwrap(),
        400,
    );

    // Over the limit: declared up front, and streamed in chunks without a length.
    let big = json!({ "text": "长".repeat(1000) }).to_string();
    let message = assert_json_error(
        &request(addr, "POST", "/v1/process", &json_type, big.as_bytes()).unwrap(),
        413,
    );
    assert!(message.contains("2000"), "{message}");
    let mut stream = connect(addr);
    write!(
        stream,
        "POST /v1/process HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    for _ in 0..10 {
        let chunk = "长".repeat(100);
        if write!(stream, "{:x}\r\n{chunk}\r\n", chunk.len()).is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    assert_json_error(&read_response(&mut stream).unwrap(), 413);
    // Too many texts in one batch.
    let texts: Vec<&str> = vec!["a"; 257];
    assert_json_error(&post(addr, &json!({ "texts": texts })), 413);

    // A body that never arrives.
    let mut stream = connect(addr);
    write!(
        stream,
        "POST /v1/process HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    assert_json_error(&read_response(&mut stream).unwrap(), 408);

    // Any Content-Type is accepted (README's `curl -d` sends a form type): not an error.
    let response = request(addr, "GET", "/healthz", &["Content-Type: text/plain"], b"").unwrap();
    assert_eq!(response.status, 200);

    // Not processed in time.
    let slow = Server::start(&["--timeout", "0.05"]);
    let message = assert_json_error(&post(slow.addr, &json!({ "text": heavy_text() })), 504);
    assert!(message.contains("not processed within"), "{message}");
}

/// Sends `raw` as it is on a fresh connection and reads the answer.
fn raw_exchange(addr: std::net::SocketAddr, raw: &[u8]) -> server::Response {
    let mut stream = connect(addr);
    stream.write_all(raw).unwrap();
    read_response(&mut stream).unwrap_or_else(|e| panic!("no answer: {e}"))
}

#[test]
fn hyper_protocol_errors_400_414_431_answer_json_bodies() {
    let server = Server::start(&[]);
    let addr = server.addr;
    let malformed: [&[u8]; 4] = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        b"G\x01T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/process HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
    ];
    for raw in malformed {
        let response = raw_exchange(addr, raw);
        let message = assert_json_error(&response, 400);
        assert!(message.contains("malformed"), "{message}");
        assert_eq!(response.header("connection"), Some("close"));
    }

    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let response = raw_exchange(addr, long_uri.as_bytes());
    let message = assert_json_error(&response, 414);
    assert!(message.contains("URI"), "{message}");

    let mut many_headers = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..120 {
        many_headers.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    many_headers.push_str("\r\n");
    let response = raw_exchange(addr, many_headers.as_bytes());
    let message = assert_json_error(&response, 431);
    assert!(message.contains("head"), "{message}");

    // The server still answers normally.
    let response = request(addr, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(response.status, 200);
}

/// Sends `head` then, after `delay`, `body` on one keep-alive connection, expects an error
/// answer with `status`, then asks `GET /healthz` on the same connection: unless the error
/// answer said `Connection: close`, the connection must carry that second request.
fn reuse_after_error(
    addr: std::net::SocketAddr,
    head: &str,
    body: &[u8],
    delay: Duration,
    status: u16,
) {
    let mut stream = connect(addr);
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(delay);
    // The server may already have closed (after saying so): a failed write is fine then.
    let sent = stream.write_all(body).is_ok();
    let response = read_response(&mut stream).unwrap_or_else(|e| panic!("{head}: {e}"));
    assert_json_error(&response, status);
    if response.header("connection") == Some("close") {
        let closed = closed_within(&mut stream, CLOSE_BOUND);
        assert!(closed.is_some(), "{head}: said close, stayed open");
        return;
    }
    assert!(sent, "{head}: body refused without `Connection: close`");
    let second = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let reused = stream
        .write_all(second.as_bytes())
        .and_then(|()| read_response(&mut stream));
    match reused {
        Ok(r) => assert_eq!(r.status, 200, "{head}: {}", r.text()),
        Err(e) => panic!(
            "{head}: {status} kept the connection open (no `Connection: close`) but it failed \
             the next request: {e}"
        ),
    }
}

#[test]
fn after_early_error_answers_keep_alive_connections_are_reused_or_closed_with_connection_close() {
    let server = Server::start(&["--max-body-bytes", "2000", "--body-timeout", "1"]);
    let addr = server.addr;
    let json_head = |method: &str, path: &str, length: usize| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n"
        )
    };
    let small = json!({ "text": "姚明" }).to_string();
    let large = "x".repeat(5000);
    for delay in [Duration::ZERO, Duration::from_millis(300)] {
        // 404 on a POST with a body, 405, 413 (declared), 400 on bad JSON.
        let cases: [(String, &[u8], u16); 5] = [
            (
                json_head("POST", "/nope", small.len()),
                small.as_bytes(),
                404,
            ),
            (
                json_head("POST", "/healthz", small.len()),
                small.as_bytes(),
                405,
            ),
            (
                json_head("PUT", "/v1/process", small.len()),
                small.as_bytes(),
                405,
            ),
            (
                json_head("POST", "/v1/process", large.len()),
                large.as_bytes(),
                413,
            ),
            (json_head("POST", "/v1/process", 9), b"{\"text\": ", 400),
        ];
        for (head, body, status) in cases {
            reuse_after_error(addr, &head, body, delay, status);
        }
    }
    // A body that arrives too late (408) and one streamed past the limit (413).
    reuse_after_error(
        addr,
        &json_head("POST", "/v1/process", small.len()),
        small.as_bytes(),
        Duration::from_millis(2500),
        408,
    );
    let chunk = format!("{:x}\r\n{}\r\n", 1500, "x".repeat(1500));
    reuse_after_error(
        addr,
        &format!(
            "POST /v1/process HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}"
        ),
        b"0\r\n\r\n",
        Duration::from_millis(300),
        413,
    );
}
