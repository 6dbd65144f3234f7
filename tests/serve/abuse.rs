//! Healthy request latency while `zhishi serve` is abused by slow, idle and oversized clients,
//! against a baseline without abuse. Loopback only; every client loop is bounded in count and
//! time and stops by itself. Prints one JSON object. Timing-dependent, so ignored by default:
//!
//! ```text
//! cargo test --release --test serve -- abuse:: --ignored --nocapture
//! ```
use crate::support::server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server::{post, read_response, Server};

/// Length of each measured phase.
const PHASE: Duration = Duration::from_secs(20);
/// Pause between one healthy client's requests.
const PACE: Duration = Duration::from_millis(20);
/// Healthy client threads.
const HEALTHY: usize = 2;
/// Upper bound on any client loop's iterations.
const MAX_ITERATIONS: usize = 100_000;

const SLOWLORIS: usize = 50;
const IDLE: usize = 20;
const HALF_BODY: usize = 10;
const OVERSIZED: usize = 4;

#[derive(Default)]
struct Counters {
    slowloris_connections: AtomicU64,
    slowloris_closed_by_server: AtomicU64,
    slowloris_longest_ms: AtomicU64,
    idle_connections: AtomicU64,
    idle_closed_by_server: AtomicU64,
    idle_longest_ms: AtomicU64,
    half_body_requests: AtomicU64,
    half_body_408: AtomicU64,
    oversized_requests: AtomicU64,
    oversized_413: AtomicU64,
    oversized_reset_before_answer: AtomicU64,
}

/// Latency summary of one phase, in milliseconds.
fn summary(mut latencies: Vec<f64>, errors: usize) -> Value {
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if latencies.is_empty() {
            f64::NAN
        } else {
            let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            (latencies[i] * 100.0).round() / 100.0
        }
    };
    json!({
        "requests": latencies.len() + errors,
        "errors": errors,
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
    })
}

/// `HEALTHY` threads sending small documents, paced, for `PHASE`.
fn healthy_phase(addr: SocketAddr) -> Value {
    let results: Vec<(Vec<f64>, usize)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..HEALTHY)
            .map(|c| {
                scope.spawn(move || {
                    let end = Instant::now() + PHASE;
                    let (mut latencies, mut errors) = (Vec::new(), 0);
                    for k in 0..MAX_ITERATIONS {
                        if Instant::now() >= end {
                            break;
                        }
                        let start = Instant::now();
                        let response = post(
                            addr,
                            &json!({ "text": "姚明出生在上海。北京大学位于北京。", "id": format!("{c}-{k}") }),
                        );
                        if response.status == 200 {
                            latencies.push(start.elapsed().as_secs_f64() * 1e3);
                        } else {
                            errors += 1;
                        }
                        std::thread::sleep(PACE);
                    }
                    (latencies, errors)
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let errors = results.iter().map(|r| r.1).sum();
    summary(results.into_iter().flat_map(|r| r.0).collect(), errors)
}

fn record_max(slot: &AtomicU64, value: Duration) {
    slot.fetch_max(value.as_millis() as u64, Ordering::Relaxed);
}

/// Whether the server closed `stream` (EOF or error) within one short read.
fn server_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Header bytes one at a time every 0.3 s, reconnecting when cut off, until `end`.
fn slowloris(addr: SocketAddr, end: Instant, counters: &Counters) {
    let head = format!("POST /v1/process HTTP/1.1\r\nHost: {addr}\r\n");
    for _ in 0..MAX_ITERATIONS {
        if Instant::now() >= end {
            return;
        }
        let Ok(mut stream) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        counters
            .slowloris_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
        let opened = Instant::now();
        let mut bytes = head
            .bytes()
            .chain(b"X-Slow: ".iter().copied())
            .chain(std::iter::repeat(b'a'));
        while Instant::now() < end {
            let byte = bytes.next().unwrap_or(b'a');
            if stream.write_all(&[byte]).is_err() || server_closed(&mut stream) {
                counters
                    .slowloris_closed_by_server
                    .fetch_add(1, Ordering::Relaxed);
                record_max(&counters.slowloris_longest_ms, opened.elapsed());
                break;
            }
        }
    }
}

/// Connections that send nothing, reconnecting when closed, until `end`.
fn idle(addr: SocketAddr, end: Instant, counters: &Counters) {
    for _ in 0..MAX_ITERATIONS {
        if Instant::now() >= end {
            return;
        }
        let Ok(mut stream) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        counters.idle_connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let opened = Instant::now();
        while Instant::now() < end {
            if server_closed(&mut stream) {
                counters
                    .idle_closed_by_server
                    .fetch_add(1, Ordering::Relaxed);
                record_max(&counters.idle_longest_ms, opened.elapsed());
                break;
            }
        }
    }
}

/// A head and the first bytes of a 1000-byte body, then silence; until `end`.
fn half_body(addr: SocketAddr, end: Instant, counters: &Counters) {
    for _ in 0..MAX_ITERATIONS {
        if Instant::now() >= end {
            return;
        }
        let Ok(mut stream) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        counters.half_body_requests.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_read_timeout(Some(
            end.saturating_duration_since(Instant::now()) + Duration::from_millis(10),
        ));
        let _ = write!(
            stream,
            "POST /v1/process HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000\r\n\r\n{{\"text\": \""
        );
        if read_response(&mut stream).is_ok_and(|r| r.status == 408) {
            counters.half_body_408.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// 8 MiB bodies as fast as loopback takes them, alternately declared and chunked; until `end`.
fn oversized(addr: SocketAddr, end: Instant, counters: &Counters) {
    let chunk = vec![b'x'; 64 * 1024];
    for k in 0..MAX_ITERATIONS {
        if Instant::now() >= end {
            return;
        }
        let Ok(mut stream) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        counters.oversized_requests.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let chunked = k % 2 == 1;
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {}", 128 * chunk.len())
        };
        let _ = write!(
            stream,
            "POST /v1/process HTTP/1.1\r\nHost: {addr}\r\n{framing}\r\nConnection: close\r\n\r\n"
        );
        for _ in 0..128 {
            let sent = if chunked {
                write!(stream, "{:x}\r\n", chunk.len())
                    .and_then(|()| stream.write_all(&chunk))
                    .and_then(|()| stream.write_all(b"\r\n"))
            } else {
                stream.write_all(&chunk)
            };
            if sent.is_err() {
                break;
            }
        }
        match read_response(&mut stream) {
            Ok(r) if r.status == 413 => {
                counters.oversized_413.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => {
                counters
                    .oversized_reset_before_answer
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[test]
#[ignore = "timing measurement: cargo test --release --test serve -- abuse:: --ignored --nocapture"]
fn healthy_latency_under_slow_idle_and_oversized_clients() {
    let server = Server::start(&[]);
    let addr = server.addr;
    // Warm up (first requests fill caches).
    for _ in 0..20 {
        assert_eq!(
            post(addr, &json!({ "text": "姚明出生在上海。" })).status,
            200
        );
    }
    let baseline = healthy_phase(addr);

    let counters = Arc::new(Counters::default());
    // The abuse runs a little longer than the measured phase, which starts once it is on.
    let ramp = Duration::from_secs(2);
    let end = Instant::now() + ramp + PHASE + Duration::from_secs(1);
    let under_abuse = std::thread::scope(|scope| {
        let c = &*counters;
        for _ in 0..SLOWLORIS {
            scope.spawn(move || slowloris(addr, end, c));
        }
        for _ in 0..IDLE {
            scope.spawn(move || idle(addr, end, c));
        }
        for _ in 0..HALF_BODY {
            scope.spawn(move || half_body(addr, end, c));
        }
        for _ in 0..OVERSIZED {
            scope.spawn(move || oversized(addr, end, c));
        }
        std::thread::sleep(ramp);
        healthy_phase(addr)
    });
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let c = &*counters;
    let report = json!({
        "server_flags": "defaults (header 10 s, body 20 s, idle 5 s, 1024 connections, 8 in flight)",
        "phase_seconds": PHASE.as_secs(),
        "healthy_clients": HEALTHY,
        "pace_ms": PACE.as_millis() as u64,
        "baseline": baseline,
        "under_abuse": under_abuse,
        "abuse": {
            "slowloris_clients": SLOWLORIS,
            "slowloris_connections": load(&c.slowloris_connections),
            "slowloris_closed_by_server": load(&c.slowloris_closed_by_server),
            "slowloris_longest_ms": load(&c.slowloris_longest_ms),
            "idle_clients": IDLE,
            "idle_connections": load(&c.idle_connections),
            "idle_closed_by_server": load(&c.idle_closed_by_server),
            "idle_longest_ms": load(&c.idle_longest_ms),
            "half_body_clients": HALF_BODY,
            "half_body_requests": load(&c.half_body_requests),
            "half_body_408": load(&c.half_body_408),
            "oversized_clients": OVERSIZED,
            "oversized_requests": load(&c.oversized_requests),
            "oversized_413": load(&c.oversized_413),
            "oversized_reset_before_answer": load(&c.oversized_reset_before_answer),
        },
        "work_after": server.work(),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(under_abuse["errors"], json!(0), "{report}");
}
