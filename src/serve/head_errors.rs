//! JSON bodies on hyper's own answers. hyper answers a request head it cannot parse itself,
//! before any service sees a request: 400 (a malformed request line or header), 414 (a URI
//! over 65534 bytes) or 431 (more than [`MAX_HEADERS`] header fields, or a head over
//! [`MAX_HEAD_BYTES`]), always with an empty body, and then closes the connection.
//! [`JsonHeadErrors`] sits between hyper and the socket and replaces exactly those answers,
//! recognised by their shape (one of these statuses, `content-length: 0`, no other header
//! than `date` and `connection`: every answer of the routes has a body and a content type),
//! with the same status line, `{"error": "..."}` as `application/json`, and
//! `Connection: close`.
//!
//! Not answered at all: a head that does not arrive within the header timeout (hyper drops
//! the connection without writing) and an HTTP/2 preface (such a client cannot read an
//! HTTP/1 answer).
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most header fields in a request head (hyper's default, named here for the 431 message).
pub(super) const MAX_HEADERS: usize = 100;
/// Largest request head in bytes: hyper's default read buffer, set as its `max_header_size`
/// (without it a head arriving in one large read can exceed the buffer unchecked).
pub(super) const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
/// hyper's longest request URI in bytes.
const MAX_URI_BYTES: usize = 65_534;
/// Longer writes are never one of hyper's bodiless answers (a status line and two headers).
const MAX_ANSWER_BYTES: usize = 512;

/// An I/O stream whose writes of hyper's bodiless 400/414/431 answers are replaced by answers
/// with a JSON body.
pub(super) struct JsonHeadErrors<T> {
    inner: T,
    /// An answer being written in place of hyper's.
    replacing: Option<Replacement>,
}

/// Our answer, written in place of `claimed` bytes of hyper's.
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    claimed: usize,
}

impl<T> JsonHeadErrors<T> {
    /// Wraps `inner`.
    pub(super) fn new(inner: T) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

/// The message for hyper's automatic answer with `status`, if it gives such answers.
fn message(status: &str) -> Option<String> {
    Some(match status {
        "400" => "malformed request: the request line or a header is not valid HTTP/1.1".into(),
        "414" => format!("request URI too long: over {MAX_URI_BYTES} bytes"),
        "431" => format!(
            "request head too large: over {MAX_HEADERS} header fields or {MAX_HEAD_BYTES} bytes"
        ),
        _ => return None,
    })
}

/// Our answer in place of `written`, when `written` is exactly one of hyper's bodiless
/// answers to a request head it could not parse.
fn replacement(written: &[u8]) -> Option<Vec<u8>> {
    if written.len() > MAX_ANSWER_BYTES {
        return None;
    }
    let head = std::str::from_utf8(written)
        .ok()?
        .strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        ["HTTP/1.1" | "HTTP/1.0", status, _, ..] => status,
        _ => return None,
    };
    let message = message(status)?;
    let (mut empty, mut date) = (false, None);
    for line in lines {
        match line.split_once(": ")? {
            ("content-length", "0") => empty = true,
            ("date", _) => date = Some(line),
            ("connection", "close" | "keep-alive") => {}
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let body = serde_json::json!({ "error": message }).to_string();
    let mut answer = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(date) = date {
        answer.push_str(date);
        answer.push_str("\r\n");
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(answer.into_bytes())
}

impl<T: AsyncWrite + Unpin> JsonHeadErrors<T> {
    /// Writes the pending replacement; ready with the length of hyper's answer it stands for.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(r) = self.replacing.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while r.written < r.bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &r.bytes[r.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            r.written += n;
        }
        let claimed = r.claimed;
        self.replacing = None;
        Poll::Ready(Ok(claimed))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonHeadErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonHeadErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            if let Some(bytes) = replacement(buf) {
                self.replacing = Some(Replacement {
                    bytes,
                    written: 0,
                    claimed: buf.len(),
                });
            }
        }
        if self.replacing.is_some() {
            return self.poll_replacement(cx);
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().position(|b| !b.is_empty());
        // hyper queues its answer as one slice of its own: write what precedes it first.
        let answer = bufs.iter().position(|b| replacement(b).is_some());
        match (first, answer) {
            (Some(i), _) if self.replacing.is_some() => self.poll_write(cx, &bufs[i]),
            (Some(i), Some(j)) if i == j => self.poll_write(cx, &bufs[i]),
            (_, Some(j)) => Pin::new(&mut self.inner).poll_write_vectored(cx, &bufs[..j]),
            _ => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "date: Mon, 07 Dec 2026 14:41:00 GMT";

    #[test]
    fn hypers_bodiless_head_errors_get_a_json_body() {
        let hyper = format!("HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n{DATE}\r\n\r\n");
        let ours = String::from_utf8(replacement(hyper.as_bytes()).unwrap()).unwrap();
        let (head, body) = ours.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\nconnection: close\r\n") && head.ends_with(DATE));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["error"]
            .as_str()
            .unwrap()
            .contains("100 header fields"));
    }

    #[test]
    fn other_answers_pass_unchanged() {
        for written in [
            // A route's answers have bodies and content types.
            format!("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n{DATE}\r\n\r\n"),
            format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n{DATE}\r\n\r\n"),
            // Statuses hyper does not send itself, a body after the head, a partial head.
            format!("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n{DATE}\r\n\r\n"),
            format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n{DATE}\r\n\r\n{{}}"),
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n".to_string(),
            "{\"text\": \"HTTP/1.1 400 Bad Request\\r\\ncontent-length: 0\\r\\n\\r\\n\"}".to_string(),
        ] {
            assert!(replacement(written.as_bytes()).is_none(), "{written:?}");
        }
    }
}
