//! For the tests of `zhishi serve` (and `link::output_contract`): a `zhishi serve` child process
//! on a free loopback port, and raw HTTP/1.1 over `std::net::TcpStream` (every wait bounded).
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// `pipelines/quickstart.toml`.
pub fn quickstart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.toml")
}

/// A running `zhishi serve` on a free port; killed on drop if still running. Its stderr is
/// drained by a thread (so logging can never block it) and kept for inspection.
pub struct Server {
    /// The child process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `zhishi serve pipelines/quickstart.toml --addr 127.0.0.1:0 <extra>` and waits
    /// (at most 120 s) for its "listening" line.
    pub fn start(extra: &[&str]) -> Server {
        Self::start_with(&quickstart(), extra)
    }

    /// [`Server::start`] over the pipeline TOML `pipeline`.
    pub fn start_with(pipeline: &std::path::Path, extra: &[&str]) -> Server {
        let mut child = Command::cargo_bin("zhishi")
            .unwrap()
            .args(["serve", pipeline.to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        let drain = std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            let mut tx = Some(tx);
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(addr) = line
                    .trim()
                    .strip_prefix("zhishi serve: listening on http://")
                {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr.to_string());
                    }
                }
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: log,
            drain: Some(drain),
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("server not listening: {}", server.stderr()));
        server.addr = addr.parse().unwrap();
        server
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Waits at most `bound` for the process to exit; its status and how long it took. Once
    /// it has exited, [`Server::stderr`] holds all its output.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<(ExitStatus, Duration)> {
        let start = Instant::now();
        while start.elapsed() < bound {
            if let Some(status) = self.child.try_wait().unwrap() {
                let took = start.elapsed();
                // The pipe is closed: collect the last lines.
                if let Some(drain) = self.drain.take() {
                    let _ = drain.join();
                }
                return Some((status, took));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The `work` object of `GET /healthz` (`in_flight`, `in_flight_peak`, `max_in_flight`).
    pub fn work(&self) -> Value {
        let response = request(self.addr, "GET", "/healthz", &[], b"").unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()["work"].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The head, lower-cased.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text, cut to its first 500 characters (for assertion messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(500)
            .collect()
    }

    /// A header's value (name lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim())
        })
    }
}

/// Reads one response (with a `Content-Length` body) from `stream`.
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<Response> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let mut response = Response {
        status,
        head,
        body: Vec::new(),
    };
    let length: usize = response
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    response.body = vec![0; length];
    stream.read_exact(&mut response.body)?;
    Ok(response)
}

/// A connection to `addr` whose reads give up after 60 s.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
}

/// One request on a fresh connection (`Connection: close`, `Content-Length` set) with extra
/// header lines.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = connect(addr);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    read_response(&mut stream)
}

/// `POST /v1/process` with a JSON body.
pub fn post(addr: SocketAddr, body: &Value) -> Response {
    request(
        addr,
        "POST",
        "/v1/process",
        &["Content-Type: application/json"],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

/// How long until the server closes `stream` (EOF or reset), reading and discarding
/// whatever it sends; `None` if still open after `bound`.
pub fn closed_within(stream: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while start.elapsed() < bound {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}
