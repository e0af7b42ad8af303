//! Keyless verification: a bundle signed with a short-lived Fulcio certificate, trusted because
//! of a trusted root and an identity policy (SPECS §4.4; Sigstore client spec §4).
//!
//! [`verify_keyless`] checks, in this order, and stops at the first failure:
//! 1. material: the bundle carries a certificate (a key bundle is refused: use a key);
//!    the `messageDigest` hint, when present, is the artifact's;
//! 2. RFC 3161 timestamps: at most [`MAX_TIMESTAMPS`], no duplicates; each that verifies over
//!    the signature bytes under a trusted timestamp authority gives a time. One that does not
//!    verify gives none, and is reported in a note (or in the error, if too few times remain),
//!    as sigstore-go and sigstore-python do: a timestamp from a TSA this root does not trust
//!    must not make an otherwise valid bundle fail, and an unverified one is never counted;
//! 3. transparency-log entries: each verifies against the trusted root (SET, inclusion proof,
//!    checkpoint, witnesses) and is bound to this bundle (CVE-2022-36056). Entries without a SET
//!    (Rekor v2) get the timestamps' times as `signed_times`, so the log key must have been valid
//!    then (with no timestamp, it must be valid now). At least `tlog_threshold` distinct logs;
//! 4. verified times (TSA `genTime`s and SET-verified `integratedTime`s): at least
//!    `timestamp_threshold`, and always at least one;
//! 5. the certificate, at **each** verified time (hybrid model): the time lies inside the leaf's
//!    validity, and the chain validates to a trusted Fulcio authority at that time;
//! 6. embedded SCTs: at least `ctlog_threshold` verify with CT log keys of the trusted root;
//! 7. identity: SAN and OIDC issuer match the policy (exact, or fully anchored regex);
//! 8. the signature over the content with the certificate's key (message: over the artifact;
//!    DSSE: over PAE, and the in-toto statement names the artifact as a subject).

use std::collections::HashSet;

use super::{
    Artifact, CertificateSigner, TimeSource, TlogStatus, VerifiedBundle, VerifiedSigner,
    VerifiedTime, VerifyError, content, tlog_time,
};
use crate::bundle::{Bundle, Material};
use crate::note::CosignatureVerifier;
use crate::rekor::Signer;
use crate::timestamp::{MAX_TIMESTAMPS, TimestampError, check_timestamp_count, verify_timestamp};
use crate::tlog::{TlogOptions, VerifiedTlogEntry, verify_bundle_entries};
use crate::trust_root::TrustedRoot;
use crate::x509::{
    Cert, IdentityError, IdentityMatcher, VerifiedCertificate, verify_chain, verify_embedded_scts,
};

/// What a keyless bundle must prove besides its signature.
#[derive(Debug, Clone)]
pub struct KeylessPolicy {
    /// Who must have signed: SAN and OIDC issuer.
    pub identity: IdentityMatcher,
    /// Distinct transparency logs the bundle's entries must verify in (default 1).
    pub tlog_threshold: usize,
    /// Embedded SCTs that must verify (default 1).
    pub ctlog_threshold: usize,
    /// Verified signing times required, from timestamps and inclusion promises (default 1; at
    /// least one is always required, since a Fulcio certificate means nothing without a time).
    pub timestamp_threshold: usize,
    /// Witnesses whose cosignatures each checkpoint must carry (`witness_threshold` of them).
    pub witnesses: Vec<CosignatureVerifier>,
    pub witness_threshold: usize,
}

impl KeylessPolicy {
    /// The Sigstore defaults: one log entry, one SCT, one verified time; no witnesses.
    pub fn new(identity: IdentityMatcher) -> Self {
        Self {
            identity,
            tlog_threshold: 1,
            ctlog_threshold: 1,
            timestamp_threshold: 1,
            witnesses: Vec::new(),
            witness_threshold: 0,
        }
    }
}

/// Verifies a certificate-signed bundle for `artifact` under `root` and `policy`; see the module
/// documentation for the order of checks.
pub fn verify_keyless(
    bundle: &Bundle,
    artifact: Artifact<'_>,
    root: &TrustedRoot,
    policy: &KeylessPolicy,
) -> Result<VerifiedBundle, VerifyError> {
    // 1. Material.
    let (leaf, intermediates): (&[u8], &[Vec<u8>]) = match &bundle.verification_material.content {
        Material::Certificate(der) => (der, &[]),
        Material::X509CertificateChain(chain) => match chain.split_first() {
            Some((leaf, rest)) => (leaf, rest),
            None => return Err(crate::bundle::BundleError::EmptyCertificateChain.into()),
        },
        Material::PublicKeyHint(_) => return Err(VerifyError::KeyBundle),
    };
    content::check_message_digest(&bundle.content, &artifact)?;

    // 2. Timestamps over the signature bytes.
    let (mut times, ignored) = verify_timestamps(bundle, root)?;
    let signed_times: Vec<_> = times.iter().map(|t| t.time).collect();

    // 3. Log entries, bound to this bundle.
    let entries = verify_entries(bundle, root, policy, leaf, &artifact, &signed_times)?;
    times.extend(entries.iter().filter_map(tlog_time));

    // 4. Enough trusted time.
    let required = policy.timestamp_threshold.max(1);
    if times.len() < required {
        return Err(VerifyError::NotEnoughTimes {
            found: times.len(),
            required,
            ignored,
        });
    }
    let notes = ignored
        .iter()
        .map(|(i, e)| format!("RFC 3161 timestamp {i} was not counted: {e}"))
        .collect();

    // 5. The certificate at each verified time.
    let cert = verify_certificate(leaf, intermediates, root, &times)?;

    // 6. Certificate transparency.
    let scts = if policy.ctlog_threshold == 0 {
        Vec::new()
    } else {
        verify_embedded_scts(&cert, root, policy.ctlog_threshold).map_err(VerifyError::Sct)?
    };

    // 7. Identity.
    policy
        .identity
        .check(&cert)
        .map_err(|source| VerifyError::Identity { source })?;
    let issuer = cert.claims.issuer.clone().ok_or(VerifyError::Identity {
        source: IdentityError::NoIssuer,
    })?;

    // 8. The signature.
    let signer = || format!("the signing certificate's key ({})", cert.identity.as_str());
    let content = content::verify_content(&bundle.content, &artifact, &cert.public_key, &signer)?;

    let tlog = if entries.is_empty() {
        TlogStatus::Absent
    } else {
        TlogStatus::Verified {
            entries: entries.len(),
            integrated_time: entries
                .iter()
                .filter_map(VerifiedTlogEntry::integrated_time)
                .min(),
        }
    };
    Ok(VerifiedBundle {
        artifact: artifact.digest,
        signer: VerifiedSigner::Certificate(Box::new(CertificateSigner {
            algorithm: cert.public_key.algorithm(),
            identity: cert.identity,
            issuer,
            claims: cert.claims,
            not_before: cert.not_before,
            not_after: cert.not_after,
            authority: cert.authority_uri,
            scts,
        })),
        media_type: bundle.media_type.clone(),
        content,
        tlog,
        tlog_entries: entries,
        times,
        notes,
    })
}

/// The verified timestamps' times, and the timestamps that did not verify (1-based index).
#[allow(clippy::type_complexity)]
pub(super) fn verify_timestamps(
    bundle: &Bundle,
    root: &TrustedRoot,
) -> Result<(Vec<VerifiedTime>, Vec<(usize, TimestampError)>), VerifyError> {
    let timestamps = &bundle.verification_material.rfc3161_timestamps;
    check_timestamp_count(timestamps, MAX_TIMESTAMPS).map_err(VerifyError::TimestampLimit)?;
    let signature = content::signature_bytes(&bundle.content);
    let (mut times, mut ignored) = (Vec::new(), Vec::new());
    for (i, der) in timestamps.iter().enumerate() {
        match verify_timestamp(der, signature, root) {
            Ok(ts) => times.push(VerifiedTime {
                time: ts.time,
                source: TimeSource::Timestamp { tsa: ts.tsa },
            }),
            Err(e) => ignored.push((i + 1, e)),
        }
    }
    Ok((times, ignored))
}

fn verify_entries(
    bundle: &Bundle,
    root: &TrustedRoot,
    policy: &KeylessPolicy,
    leaf: &[u8],
    artifact: &Artifact<'_>,
    signed_times: &[chrono::DateTime<chrono::Utc>],
) -> Result<Vec<VerifiedTlogEntry>, VerifyError> {
    let count = bundle.verification_material.tlog_entries.len();
    if count == 0 && policy.tlog_threshold > 0 {
        return Err(VerifyError::NoTlogEntry);
    }
    let options = TlogOptions {
        signed_times,
        witnesses: &policy.witnesses,
        witness_threshold: policy.witness_threshold,
        now: None,
    };
    let entries = verify_bundle_entries(
        bundle,
        root,
        Signer::Certificate(leaf),
        Some(artifact),
        &options,
    )?;
    let logs: HashSet<_> = entries.iter().map(VerifiedTlogEntry::log_id).collect();
    if logs.len() < policy.tlog_threshold {
        return Err(VerifyError::TlogThreshold {
            verified: logs.len(),
            required: policy.tlog_threshold,
        });
    }
    Ok(entries)
}

/// Hybrid model: the leaf must be valid, and its chain trusted, at every verified time.
fn verify_certificate(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    root: &TrustedRoot,
    times: &[VerifiedTime],
) -> Result<VerifiedCertificate, VerifyError> {
    let Some(first) = times.first() else {
        return Err(VerifyError::NotEnoughTimes {
            found: 0,
            required: 1,
            ignored: Vec::new(),
        });
    };
    let parsed =
        Cert::parse(leaf, "signing certificate").map_err(|source| VerifyError::Certificate {
            at: Box::new(first.clone()),
            source: Box::new(source),
        })?;
    let (not_before, not_after) = (parsed.not_before(), parsed.not_after());
    let mut verified = None;
    for at in times {
        if at.time < not_before {
            return Err(VerifyError::CertificateNotYetValid {
                not_before,
                at: Box::new(at.clone()),
            });
        }
        if at.time > not_after {
            return Err(VerifyError::CertificateExpired {
                not_after,
                at: Box::new(at.clone()),
            });
        }
        let cert = verify_chain(leaf, intermediates, root, at.time).map_err(|source| {
            VerifyError::Certificate {
                at: Box::new(at.clone()),
                source: Box::new(source),
            }
        })?;
        verified.get_or_insert(cert);
    }
    verified.ok_or(VerifyError::NotEnoughTimes {
        found: 0,
        required: 1,
        ignored: Vec::new(),
    })
}
