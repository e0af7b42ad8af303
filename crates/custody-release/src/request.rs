//! Idempotency keys bound to their request: a client's `request_id` names one request, and
//! the store keeps the SHA-256 of that request's canonical content next to the release it
//! made. A retry with the same id and the same content gets the first answer; the same id with
//! other content is refused (409), saying what differs.

use custody_core::digest::Sha256Digest;
use serde_json::Value as Json;

use crate::model::{Release, ReleaseKind};

/// The fields of a state-changing release request that decide what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestContent {
    /// `POST /api/v1/promotions`.
    Promotion { digest: String, environment: String },
    /// `POST /api/v1/rollbacks`; `digest` is the target asked for (none: the latest earlier
    /// release that passes).
    Rollback {
        environment: String,
        digest: Option<String>,
        reason: String,
    },
}

impl RequestContent {
    /// The canonical form: compact JSON with the keys in sorted order.
    pub fn canonical(&self) -> String {
        // Written out, so the key order does not depend on serde_json's map features.
        let text = |v: &str| Json::String(v.to_owned()).to_string();
        match self {
            RequestContent::Promotion {
                digest,
                environment,
            } => format!(
                r#"{{"digest":{},"environment":{},"operation":"promotion"}}"#,
                text(digest),
                text(environment)
            ),
            RequestContent::Rollback {
                environment,
                digest,
                reason,
            } => format!(
                r#"{{"digest":{},"environment":{},"operation":"rollback","reason":{}}}"#,
                digest.as_deref().map_or_else(|| "null".to_owned(), text),
                text(environment),
                text(reason)
            ),
        }
    }

    /// The hex SHA-256 of [`canonical`](Self::canonical): what a request id is bound to.
    pub fn sha256_hex(&self) -> String {
        Sha256Digest::of(self.canonical().as_bytes()).hex()
    }

    /// How this request differs from the one that made `release` (as far as the release
    /// shows it), e.g. `digest sha256:… (was sha256:…)`. Empty when nothing visible differs.
    pub fn differences(&self, release: &Release) -> Vec<String> {
        let mut out = Vec::new();
        let mut differs = |what: &str, now: &str, was: &str| {
            if now != was {
                out.push(format!("{what} {now} (was {was})"));
            }
        };
        match self {
            RequestContent::Promotion {
                digest,
                environment,
            } => {
                differs("operation", "promotion", release.kind.as_str());
                differs("environment", environment, &release.environment);
                differs("digest", digest, &release.digest);
            }
            RequestContent::Rollback {
                environment,
                digest,
                reason,
            } => {
                differs("operation", "rollback", release.kind.as_str());
                differs("environment", environment, &release.environment);
                if let Some(digest) = digest {
                    differs("digest", digest, &release.digest);
                }
                differs(
                    "reason",
                    &format!("{reason:?}"),
                    &format!("{:?}", release.reason.as_deref().unwrap_or_default()),
                );
            }
        }
        out
    }

    /// Whether a release made before bindings were recorded (no stored digest) answers this
    /// request: same operation and every field the release shows equal.
    pub fn matches_unbound(&self, release: &Release) -> bool {
        let kind = match self {
            RequestContent::Promotion { .. } => ReleaseKind::Promotion,
            RequestContent::Rollback { .. } => ReleaseKind::Rollback,
        };
        release.kind == kind && self.differences(release).is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn promotion(digest: char, env: &str) -> RequestContent {
        RequestContent::Promotion {
            digest: format!("sha256:{}", digest.to_string().repeat(64)),
            environment: env.to_owned(),
        }
    }

    #[test]
    fn the_digest_changes_with_every_field_and_operation() {
        let base = promotion('a', "prod");
        assert_eq!(base.sha256_hex(), promotion('a', "prod").sha256_hex());
        assert_eq!(base.sha256_hex().len(), 64);
        assert_ne!(base.sha256_hex(), promotion('b', "prod").sha256_hex());
        assert_ne!(base.sha256_hex(), promotion('a', "dev").sha256_hex());
        let rollback = |digest: Option<&str>, reason: &str| RequestContent::Rollback {
            environment: "prod".into(),
            digest: digest.map(str::to_owned),
            reason: reason.into(),
        };
        assert_ne!(
            rollback(None, "x").sha256_hex(),
            rollback(None, "y").sha256_hex()
        );
        assert_ne!(
            rollback(None, "x").sha256_hex(),
            rollback(Some("sha256:00"), "x").sha256_hex()
        );
        assert_eq!(
            base.canonical(),
            format!(
                r#"{{"digest":"sha256:{}","environment":"prod","operation":"promotion"}}"#,
                "a".repeat(64)
            )
        );
    }
}
