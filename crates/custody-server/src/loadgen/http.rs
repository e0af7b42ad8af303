//! One keep-alive HTTP/1.1 connection to the log (hyper), and the log's address.

use axum::body::Bytes;
use axum::http::{Method, Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
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
}

/// A connection that sends one request at a time and keeps the connection open.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    target: Target,
}

impl Connection {
    pub async fn open(target: &Target) -> Result<Self, LoadError> {
        let connect = |source| LoadError::Connect {
            addr: target.authority.clone(),
            source,
        };
        let stream = TcpStream::connect(&target.authority)
            .await
            .map_err(connect)?;
        stream.set_nodelay(true).map_err(connect)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(LoadError::Http)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            target: target.clone(),
        })
    }

    /// Sends a request to `prefix + path`; returns the status and the whole body.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        token: Option<&str>,
    ) -> Result<(u16, Bytes), LoadError> {
        self.sender.ready().await.map_err(LoadError::Http)?;
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.target.prefix))
            .header(header::HOST, &self.target.authority);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| LoadError::Url(e.to_string()))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(LoadError::Http)?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(LoadError::Http)?
            .to_bytes();
        Ok((status, bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
