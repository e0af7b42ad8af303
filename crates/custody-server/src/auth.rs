//! Who is calling: the log's write token, or a release principal's token (each compared in
//! constant time), or, on a server told to allow unauthenticated writes, anyone.

use std::collections::BTreeSet;

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use custody_core::digest::Sha256Digest;
use custody_release::config::ReleaseConfig;
use custody_release::model::Role;
use custody_release::service::Caller;
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

/// The bearer token's SHA-256, if the request has one.
fn bearer_sha256(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| *Sha256Digest::of(token.trim().as_bytes()).as_bytes())
}

/// The principal a bearer token's SHA-256 belongs to. Every principal is compared (in
/// constant time each), so timing does not tell which one matched.
pub fn caller_for_token(config: &ReleaseConfig, token_sha256: &[u8; 32]) -> Option<Caller> {
    let mut found = None;
    for p in &config.principals {
        if bool::from(p.token_sha256.ct_eq(token_sha256)) {
            found = Some(Caller {
                name: p.name.clone(),
                roles: p.roles.clone(),
                environments: p.environments.clone(),
            });
        }
    }
    found
}

/// Who is calling: a principal's token or, on a server told to allow unauthenticated writes,
/// an anonymous admin. The log's write token is no principal: CI holds it to write log
/// entries, and it does nothing on the release API (403).
pub(crate) fn caller(
    state: &crate::server::AppState,
    headers: &HeaderMap,
) -> Result<Caller, Box<Response>> {
    use crate::response::{error, unauthorized};
    if let Some(hash) = bearer_sha256(headers) {
        if let Some(service) = &state.release
            && let Some(caller) = caller_for_token(&service.config(), &hash)
        {
            return Ok(caller);
        }
        if matches!(state.auth, WriteAuth::Bearer { .. }) && state.auth.check(headers).is_ok() {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "the bearer token is the log's write token, which only writes log entries: release API calls need the token of a [[principal]] with the role the call names (admin rights come only from a principal with role admin)",
            )));
        }
        return Err(Box::new(unauthorized(
            "the bearer token belongs to no principal (check the token, or the [[principal]] entries of the release config)",
        )));
    }
    if matches!(state.auth, WriteAuth::DangerouslyUnauthenticated) {
        return Ok(Caller {
            name: "anonymous".into(),
            roles: BTreeSet::from([Role::Admin]),
            environments: BTreeSet::new(),
        });
    }
    Err(Box::new(unauthorized(
        "this call needs `Authorization: Bearer <token>`",
    )))
}

/// Whether a request may write log entries: the write token, or the token of a principal
/// whose roles include writing (builder or admin). Approvers, release managers, deployers and
/// auditors write nothing to the log themselves: the server logs their records.
pub(crate) fn may_write_log(state: &crate::server::AppState, headers: &HeaderMap) -> bool {
    state.auth.check(headers).is_ok()
        || bearer_sha256(headers).is_some_and(|h| {
            state.release.as_ref().is_some_and(|s| {
                caller_for_token(&s.config(), &h).is_some_and(|c| {
                    c.roles.contains(&Role::Builder) || c.roles.contains(&Role::Admin)
                })
            })
        })
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

    #[test]
    fn a_token_names_its_principal_and_roles() {
        let text = format!(
            "[[environment]]\nname = \"prod\"\npolicy = \"policy\"\n\n[[principal]]\nname = \"rm\"\ntoken_sha256 = {:?}\nroles = [\"release-manager\"]\n\n[[principal]]\nname = \"agent\"\ntoken_sha256 = {:?}\nroles = [\"deployer\"]\nenvironments = [\"prod\"]\n",
            Sha256Digest::of(b"rm-token").hex(),
            Sha256Digest::of(b"agent-token").hex(),
        );
        let config = ReleaseConfig::parse(&text, std::path::Path::new("."), &|_| None).unwrap();
        let hash = |t: &[u8]| *Sha256Digest::of(t).as_bytes();
        let rm = caller_for_token(&config, &hash(b"rm-token")).unwrap();
        assert_eq!(rm.name, "rm");
        assert_eq!(rm.roles, BTreeSet::from([Role::ReleaseManager]));
        let agent = caller_for_token(&config, &hash(b"agent-token")).unwrap();
        assert_eq!(agent.environments, BTreeSet::from(["prod".to_owned()]));
        assert!(caller_for_token(&config, &hash(b"rm-token2")).is_none());
    }
}
