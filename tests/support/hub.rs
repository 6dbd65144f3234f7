//! `hf:ORG/NAME` models without the network: a Hugging Face cache laid out as hf-hub and
//! `huggingface_hub` write it ([`lay_out`]), and a loopback server that serves a model the
//! way the hub does ([`HubServer`]), counting the requests it gets.
//!
//! Every command these tests run gets the cache and the hub through its own environment
//! (`HF_HUB_CACHE`, `HF_ENDPOINT`, `HF_HUB_OFFLINE`): [`hub_env`].
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// The commit every test model is at.
pub const COMMIT: &str = "5f3c1d2e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";

/// The hex SHA-256 of `bytes` (a blob's etag, as the hub gives for LFS files).
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lays the files of `model` (a model directory, with its `encoder/` sub-directory if it has
/// one) out in the cache `cache` as `repo` (`ORG/NAME`) at [`COMMIT`]: `blobs/SHA256`,
/// `snapshots/COMMIT/FILE` -> relative symlinks to the blobs, `refs/main`. Returns the
/// snapshot directory.
pub fn lay_out(cache: &Path, repo: &str, model: &Path) -> PathBuf {
    let root = cache.join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = root.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(root.join("blobs")).unwrap();
    std::fs::create_dir_all(root.join("refs")).unwrap();
    for (from, to, blobs) in [
        (model.to_path_buf(), snapshot.clone(), "../../blobs"),
        (
            model.join("encoder"),
            snapshot.join("encoder"),
            "../../../blobs",
        ),
    ] {
        if !from.is_dir() {
            continue;
        }
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let blob = sha256(&bytes);
            std::fs::write(root.join("blobs").join(&blob), &bytes).unwrap();
            let link = to.join(path.file_name().unwrap());
            std::os::unix::fs::symlink(Path::new(blobs).join(&blob), &link).unwrap();
        }
    }
    std::fs::write(root.join("refs/main"), COMMIT).unwrap();
    snapshot
}

/// Sets `cmd`'s environment for the cache `cache`, the hub `endpoint` (none: an address
/// nothing listens on) and `offline`; clears the proxies, tokens and HF_HOME it could
/// inherit.
pub fn hub_env(cmd: &mut assert_cmd::Command, cache: &Path, endpoint: Option<&str>, offline: bool) {
    for var in [
        "HF_HOME",
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HF_HUB_CACHE", cache)
        .env("HF_ENDPOINT", endpoint.unwrap_or("http://127.0.0.1:9"));
    if offline {
        cmd.env("HF_HUB_OFFLINE", "1");
    }
}

/// A loopback hub serving one model: `GET /api/models/REPO/revision/REV` lists its files
/// (plus a `tf_model.h5` it does not serve), `GET /REPO/resolve/REV/FILE` answers with the
/// `etag`, `x-repo-commit` and `Content-Range` headers hf-hub reads, honouring `Range`; the
/// weights (`*.safetensors`) are redirected, as the hub redirects LFS files to its CDN, to
/// `/cdn/SHA256` with `x-linked-etag`. Anything else is a 404. Stops when dropped.
pub struct HubServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every request line's path, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HubServer {
    /// Serves the files of `model` as `repo` at [`COMMIT`] (revision `main` or the commit).
    pub fn start(repo: &str, model: &Path) -> Self {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(model)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt, repo) = (requests.clone(), stop.clone(), repo.to_string());
        let files = Arc::new(files);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (files, log, repo) = (files.clone(), log.clone(), repo.clone());
                // One thread a connection: hf-hub holds a redirect's connection open while
                // it follows it.
                std::thread::spawn(move || {
                    let _ = serve(stream, addr, &repo, &files, &log);
                });
            }
        });
        Self {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The endpoint to give as `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The paths requested so far.
    pub fn requested(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request on `stream` and closes it.
fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    repo: &str,
    files: &[(String, Vec<u8>)],
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(path.clone());
    let mut out = stream;
    let revision_ok = |rev: &str| rev == "main" || rev == COMMIT;
    let api = format!("/api/models/{repo}/revision/");
    let resolve = format!("/{repo}/resolve/");
    if let Some(rev) = path.strip_prefix(&api) {
        if !revision_ok(rev) {
            return respond(&mut out, "404 Not Found", &[], b"");
        }
        let mut siblings: Vec<serde_json::Value> = files
            .iter()
            .map(|(name, _)| serde_json::json!({ "rfilename": name }))
            .collect();
        siblings.push(serde_json::json!({ "rfilename": "tf_model.h5" }));
        let body = serde_json::json!({ "sha": COMMIT, "siblings": siblings }).to_string();
        return respond(
            &mut out,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            body.as_bytes(),
        );
    }
    if let Some(rest) = path.strip_prefix(&resolve) {
        let (rev, name) = rest.split_once('/').unwrap_or((rest, ""));
        let Some((_, bytes)) = files.iter().find(|(n, _)| n == name) else {
            return respond(&mut out, "404 Not Found", &[], b"");
        };
        if !revision_ok(rev) {
            return respond(&mut out, "404 Not Found", &[], b"");
        }
        let sha = sha256(bytes);
        if name.ends_with(".safetensors") {
            let headers = [
                ("Location", format!("http://{addr}/cdn/{sha}")),
                ("x-repo-commit", COMMIT.into()),
                ("x-linked-etag", format!("\"{sha}\"")),
                ("x-linked-size", bytes.len().to_string()),
                ("etag", "\"pointer-etag\"".into()),
            ];
            return respond(&mut out, "302 Found", &headers, b"");
        }
        let headers = [
            ("etag", format!("\"{sha}\"")),
            ("x-repo-commit", COMMIT.to_string()),
        ];
        return ranged(&mut out, &headers, bytes, range.as_deref());
    }
    if let Some(sha) = path.strip_prefix("/cdn/") {
        if let Some((_, bytes)) = files.iter().find(|(_, b)| sha256(b) == sha) {
            return ranged(&mut out, &[], bytes, range.as_deref());
        }
    }
    respond(&mut out, "404 Not Found", &[], b"")
}

/// `bytes`, or the part `range` (`bytes=A-` or `bytes=A-B`) asks for as a 206.
fn ranged(
    out: &mut TcpStream,
    headers: &[(&str, String)],
    bytes: &[u8],
    range: Option<&str>,
) -> std::io::Result<()> {
    let Some(spec) = range.and_then(|r| r.strip_prefix("bytes=")) else {
        return respond(out, "200 OK", headers, bytes);
    };
    let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
    let start: usize = a.parse().unwrap_or(0).min(bytes.len());
    let end: usize = b
        .parse()
        .map_or(bytes.len(), |e: usize| (e + 1).min(bytes.len()));
    let mut all = headers.to_vec();
    all.push((
        "Content-Range",
        format!("bytes {start}-{}/{}", end.saturating_sub(1), bytes.len()),
    ));
    respond(out, "206 Partial Content", &all, &bytes[start..end])
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()?;
    out.shutdown(std::net::Shutdown::Write)
}
