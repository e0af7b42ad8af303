//! One keep-alive HTTP/1.1 connection to the log, and the log's address.
//!
//! The load generator shares the machine with the server it measures, so its own cost per
//! request is kept small: each request is serialized completely (request line, headers, body)
//! before the clock starts and written with one `write_all` on a plain TCP stream; of the
//! answer only the status line, the framing headers (`Content-Length`, `Transfer-Encoding:
//! chunked`, `Connection: close`) and the body bytes are read.

use std::ops::Range;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::LoadError;

/// Where the log is: `http://HOST:PORT[/PREFIX]` (plain HTTP: the load generator is meant for
/// loopback or a private network).
#[derive(Clone, Debug)]
pub struct Target {
    pub authority: String,
    pub prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, LoadError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| LoadError::Url(url.to_owned()))?;
        let (authority, prefix) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(LoadError::Url(url.to_owned()));
        }
        let authority = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            authority,
            prefix: prefix.to_owned(),
        })
    }

    /// The complete HTTP/1.1 request for `prefix + path`: a POST with `body` (JSON) or a GET
    /// without.
    pub fn request(&self, path: &str, body: Option<&[u8]>, token: Option<&str>) -> Vec<u8> {
        let method = if body.is_some() { "POST" } else { "GET" };
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nhost: {}\r\n",
            self.prefix, self.authority
        );
        if let Some(token) = token {
            head += &format!("authorization: Bearer {token}\r\n");
        }
        if let Some(body) = body {
            head += &format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            );
        }
        head += "\r\n";
        let mut request = head.into_bytes();
        request.extend_from_slice(body.unwrap_or_default());
        request
    }
}

/// A connection that sends one request at a time and keeps the connection open (it opens a
/// new one after an answer with `Connection: close`).
pub struct Connection {
    stream: TcpStream,
    authority: String,
    /// Bytes read; `buf[..consumed]` is the previous answer.
    buf: Vec<u8>,
    consumed: usize,
    /// The body of a chunked answer, decoded.
    chunked: Vec<u8>,
    close: bool,
}

/// The parts of an answer's head the load generator needs.
struct Head {
    status: u16,
    /// Bytes of the status line and headers, with the blank line.
    len: usize,
    framing: Framing,
    close: bool,
}

enum Framing {
    Length(usize),
    Chunked,
    /// No length: the body runs to the end of the connection.
    UntilClose,
}

/// Where the body of the last answer is.
enum Body {
    Buf(Range<usize>),
    Chunked,
}

const READ_CHUNK: usize = 16 * 1024;

impl Connection {
    pub async fn open(target: &Target) -> Result<Self, LoadError> {
        Ok(Self {
            stream: connect(&target.authority).await?,
            authority: target.authority.clone(),
            buf: Vec::with_capacity(READ_CHUNK),
            consumed: 0,
            chunked: Vec::new(),
            close: false,
        })
    }

    /// Sends one complete request (from [`Target::request`]); returns the status and the
    /// whole body of the answer.
    pub async fn send(&mut self, request: &[u8]) -> Result<(u16, &[u8]), LoadError> {
        if self.close {
            self.stream = connect(&self.authority).await?;
            self.buf.clear();
            self.consumed = 0;
            self.close = false;
        }
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        self.stream
            .write_all(request)
            .await
            .map_err(LoadError::Io)?;
        let head = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            self.fill(READ_CHUNK).await?;
        };
        self.close = head.close;
        let body = match head.framing {
            Framing::Length(n) => {
                let end = head.len + n;
                while self.buf.len() < end {
                    // Room for the rest of the body, within reason (a bogus length must
                    // not reserve gigabytes).
                    let want = end - self.buf.len();
                    self.fill(want.clamp(READ_CHUNK, 4 << 20)).await?;
                }
                self.consumed = end;
                Body::Buf(head.len..end)
            }
            Framing::UntilClose => {
                while self.read_more(READ_CHUNK).await? {}
                self.close = true;
                self.consumed = self.buf.len();
                Body::Buf(head.len..self.buf.len())
            }
            Framing::Chunked => {
                self.chunked.clear();
                let mut at = head.len;
                loop {
                    match parse_chunk(&self.buf[at..])? {
                        Some((0, used)) => {
                            // The last chunk: skip any trailers up to the blank line.
                            let mut end = at + used;
                            loop {
                                match find_crlf(&self.buf[end..]) {
                                    Some(0) => break,
                                    Some(line) => end += line + 2,
                                    None => self.fill(READ_CHUNK).await?,
                                }
                            }
                            self.consumed = end + 2;
                            break;
                        }
                        Some((size, used)) if self.buf.len() >= at + used + size + 2 => {
                            let data = at + used;
                            self.chunked.extend_from_slice(&self.buf[data..data + size]);
                            at = data + size + 2;
                        }
                        _ => self.fill(READ_CHUNK).await?,
                    }
                }
                Body::Chunked
            }
        };
        let body = match body {
            Body::Buf(range) => &self.buf[range],
            Body::Chunked => &self.chunked[..],
        };
        Ok((head.status, body))
    }

    /// Reads what is there (at most `want` bytes); false at the end of the stream, which only
    /// an answer without a length may reach.
    async fn read_more(&mut self, want: usize) -> Result<bool, LoadError> {
        self.buf.reserve(want);
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .map_err(LoadError::Io)?;
        Ok(n > 0)
    }

    /// Reads more of an answer that is not complete yet.
    async fn fill(&mut self, want: usize) -> Result<(), LoadError> {
        if self.read_more(want).await? {
            Ok(())
        } else {
            Err(malformed(
                "the connection closed in the middle of an answer",
            ))
        }
    }
}

async fn connect(authority: &str) -> Result<TcpStream, LoadError> {
    let connect = |source| LoadError::Connect {
        addr: authority.to_owned(),
        source,
    };
    let stream = TcpStream::connect(authority).await.map_err(connect)?;
    stream.set_nodelay(true).map_err(connect)?;
    Ok(stream)
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

fn malformed(what: &str) -> LoadError {
    LoadError::Protocol(what.to_owned())
}

/// The status line and headers, once all of them are in `buf`.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, LoadError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            return Err(malformed("answer head over 64 KiB"));
        }
        return Ok(None);
    };
    let mut lines = buf[..end].split(|b| *b == b'\n').map(|l| l.trim_ascii());
    let status_line = lines.next().unwrap_or_default();
    if !status_line.starts_with(b"HTTP/1.") {
        return Err(malformed("not an HTTP/1.x answer"));
    }
    let status = status_line
        .get(9..12)
        .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok())
        .ok_or_else(|| malformed("no status code"))?;
    let keep_alive_default = status_line.starts_with(b"HTTP/1.1");
    let (mut framing, mut close) = (Framing::UntilClose, !keep_alive_default);
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            if !matches!(framing, Framing::Chunked) {
                let n = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| malformed("bad Content-Length"))?;
                framing = Framing::Length(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            if value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    // No body, whatever the headers say (RFC 9112 §6.3).
    if status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some(Head {
        status,
        len: end + 4,
        framing,
        close,
    }))
}

/// A chunk's size line: (size, bytes of the line with its CRLF), once it is complete.
fn parse_chunk(bytes: &[u8]) -> Result<Option<(usize, usize)>, LoadError> {
    let Some(line) = find_crlf(bytes) else {
        return Ok(None);
    };
    let digits = bytes[..line]
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let size = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| usize::from_str_radix(d, 16).ok())
        .ok_or_else(|| malformed("bad chunk size"))?;
    Ok(Some((size, line + 2)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:3000/").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.prefix.as_str()),
            ("127.0.0.1:3000", "")
        );
        let t = Target::parse("http://log.example/a/b").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.prefix.as_str()),
            ("log.example:80", "/a/b")
        );
        assert!(Target::parse("https://log.example").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn requests_are_complete() {
        let t = Target::parse("http://127.0.0.1:3000/log").unwrap();
        assert_eq!(
            t.request("/api/v2/log/entries", Some(b"{}"), Some("tok")),
            b"POST /log/api/v2/log/entries HTTP/1.1\r\nhost: 127.0.0.1:3000\r\n\
              authorization: Bearer tok\r\ncontent-type: application/json\r\n\
              content-length: 2\r\n\r\n{}"
        );
        assert_eq!(
            t.request("/checkpoint", None, None),
            b"GET /log/checkpoint HTTP/1.1\r\nhost: 127.0.0.1:3000\r\n\r\n"
        );
    }

    /// A server that answers each request (read up to its blank line) with the next canned
    /// answer, written in pieces of `piece` bytes.
    async fn canned(answers: Vec<&'static [u8]>, piece: usize) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            for answer in answers {
                let mut seen = Vec::new();
                while !seen.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    if socket.read(&mut byte).await.unwrap() == 0 {
                        return;
                    }
                    seen.push(byte[0]);
                }
                for part in answer.chunks(piece) {
                    socket.write_all(part).await.unwrap();
                    socket.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
                if answer.starts_with(b"HTTP/1.0") {
                    return;
                }
            }
        });
        Target::parse(&format!("http://{addr}")).unwrap()
    }

    #[tokio::test]
    async fn answers_are_framed_by_length_or_chunks() {
        for piece in [1, 7, 4096] {
            let target = canned(
                vec![
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nCONTENT-LENGTH: 5\r\n\r\nhello",
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n",
                    b"HTTP/1.1 204 No Content\r\n\r\n",
                    b"HTTP/1.0 200 OK\r\n\r\nto the end",
                ],
                piece,
            )
            .await;
            let mut c = Connection::open(&target).await.unwrap();
            let get = target.request("/x", None, None);
            assert_eq!(c.send(&get).await.unwrap(), (201, &b"hello"[..]));
            assert_eq!(c.send(&get).await.unwrap(), (503, &b""[..]));
            assert_eq!(c.send(&get).await.unwrap(), (200, &b"abcde"[..]));
            assert_eq!(c.send(&get).await.unwrap(), (204, &b""[..]));
            assert_eq!(c.send(&get).await.unwrap(), (200, &b"to the end"[..]));
        }
        // Closed in the middle of an answer: an error, not a hang.
        let target = canned(
            vec![b"HTTP/1.0 200 OK\r\ncontent-length: 10\r\n\r\nshort"],
            4096,
        )
        .await;
        let mut c = Connection::open(&target).await.unwrap();
        assert!(c.send(&target.request("/x", None, None)).await.is_err());
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-len")
                .unwrap()
                .is_none()
        );
        assert!(parse_chunk(b"zz\r\n").is_err());
    }
}
