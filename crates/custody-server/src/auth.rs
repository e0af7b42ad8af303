//! Who may write: a bearer token, compared in constant time.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use custody_core::digest::Sha256Digest;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The write API's authentication. Safe by default: there is no `Default`, and the
/// unauthenticated variant is spelled dangerously.
pub enum WriteAuth {
    /// `Authorization: Bearer <token>`; only the token's SHA-256 is kept.
    Bearer { token_sha256: Zeroizing<[u8; 32]> },
    /// Anyone who reaches the port may write (`--insecure-allow-unauthenticated-writes`, only on
    /// a loopback address).
    DangerouslyUnauthenticated,
}

impl std::fmt::Debug for WriteAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bearer { .. } => "WriteAuth::Bearer(..)",
            Self::DangerouslyUnauthenticated => "WriteAuth::DangerouslyUnauthenticated",
        })
    }
}

/// Why a write was refused (HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("writes need `Authorization: Bearer <token>`")]
    Missing,
    #[error("the bearer token is not the log's write token")]
    Wrong,
}

impl WriteAuth {
    /// Bearer authentication with `token` (surrounding whitespace removed). `None` if empty.
    pub fn bearer(token: &str) -> Option<Self> {
        let token = token.trim();
        (!token.is_empty()).then(|| Self::Bearer {
            token_sha256: Zeroizing::new(*Sha256Digest::of(token.as_bytes()).as_bytes()),
        })
    }

    /// Checks a request's headers. Hashing both sides first makes the comparison constant-time
    /// in the token's length too.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let Self::Bearer { token_sha256 } = self else {
            return Ok(());
        };
        let value = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        let offered = Sha256Digest::of(token.trim().as_bytes());
        if bool::from(offered.as_bytes().ct_eq(&token_sha256[..])) {
            Ok(())
        } else {
            Err(AuthError::Wrong)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn only_the_exact_token_passes() {
        let auth = WriteAuth::bearer("s3cret\n").unwrap();
        assert_eq!(auth.check(&headers("Bearer s3cret")), Ok(()));
        assert_eq!(auth.check(&headers("bearer s3cret")), Ok(()));
        assert_eq!(auth.check(&headers("Bearer s3cre")), Err(AuthError::Wrong));
        assert_eq!(
            auth.check(&headers("Bearer s3cret2")),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            auth.check(&headers("Basic s3cret")),
            Err(AuthError::Missing)
        );
        assert_eq!(auth.check(&HeaderMap::new()), Err(AuthError::Missing));
        assert!(WriteAuth::bearer("  ").is_none());
    }
}
