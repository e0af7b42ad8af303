//! `custody sign` and `custody attest`: sign the moment an artifact exists.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use custody_client::submit::LogTarget;
use custody_core::bundle::Bundle;
use custody_core::digest::Sha256Digest;
use custody_core::intoto::{ResourceDescriptor, Statement};
use custody_core::keys::{KeyAlgorithm, SigningKey};
use custody_core::sign::{self as signing, Signed};
use custody_core::verify::Artifact;
use serde_json::json;

use super::Context;
use super::key::load_signing_key;
use crate::cli::{AttestArgs, LogArgs, SignArgs};
use crate::files;
use crate::outcome::Outcome;

/// Ed25519 signs whole messages, so the file must fit in memory; larger files want ECDSA.
pub const MAX_ED25519_MESSAGE: u64 = 1 << 30;

pub(crate) fn signing_key(
    ctx: &Context,
    flag: Option<PathBuf>,
) -> anyhow::Result<(PathBuf, SigningKey)> {
    let path = flag.or_else(|| ctx.config.key.clone()).ok_or_else(|| {
        anyhow::anyhow!(
            "no signing key: pass --key FILE, set CUSTODY_KEY, or `key` in the config file"
        )
    })?;
    let key = load_signing_key(&path)?;
    Ok((path, key))
}

/// Hashes the artifact and, for Ed25519, keeps its bytes: both from one read, so what is signed
/// is exactly what was hashed.
pub(crate) fn read_artifact(
    path: &Path,
    algorithm: KeyAlgorithm,
) -> anyhow::Result<(Sha256Digest, u64, Option<Vec<u8>>)> {
    if algorithm == KeyAlgorithm::Ed25519 {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len > MAX_ED25519_MESSAGE {
            anyhow::bail!(
                "{}: {len} bytes is too large for an Ed25519 message signature (limit {MAX_ED25519_MESSAGE}); use an ECDSA key, which signs the streamed digest",
                path.display()
            );
        }
        let bytes = files::read(path, "artifact")?;
        let digest = Sha256Digest::of(&bytes);
        return Ok((digest, bytes.len() as u64, Some(bytes)));
    }
    let (digest, len) = files::sha256(path)?;
    Ok((digest, len, None))
}

/// What happened with the transparency log, for the report.
pub(crate) struct TlogReport {
    pub(crate) json: serde_json::Value,
    pub(crate) human: String,
}

/// With `--log`: submits the signed object through the one sign-and-log path
/// (`custody_core::sign`: request, submit, receipt checked against the bundle, entry added).
/// A log that refuses, or answers with an entry that does not match, fails the command before
/// anything is written.
pub(crate) fn log_bundle(args: &LogArgs, signed: Signed) -> anyhow::Result<(Bundle, TlogReport)> {
    let Some(url) = &args.log else {
        let report = TlogReport {
            json: json!("none"),
            human: "none (no log configured)".to_string(),
        };
        return Ok((signed.into_bundle(), report));
    };
    let target = LogTarget::new(url.clone(), args.log_token_file.as_deref())?;
    let bundle = signed.log(&target)?;
    let index = bundle
        .verification_material
        .tlog_entries
        .last()
        .map_or(0, |e| e.log_index);
    let report = TlogReport {
        json: json!({ "log": target.url, "logIndex": index }),
        human: format!("{} index {index}", target.url),
    };
    Ok((bundle, report))
}

pub(crate) fn default_bundle_path(file: &Path, suffix: &str) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The bundle suffix `custody attest` writes beside FILE for a predicate type, so attestations
/// of different kinds never share a name: SLSA provenance keeps `.intoto.sigstore.json` (the
/// name `custody build` writes and `custody verify` looks for); any other type gets
/// `.<short name>.sigstore.json`, the short name being the URI's last segment that is not a
/// version (`urn:custody:predicate:rebuild:v1` → `.rebuild.sigstore.json`,
/// `https://cosign.sigstore.dev/attestation/vuln/v1` → `.vuln.sigstore.json`).
pub(crate) fn attestation_bundle_suffix(predicate_type: &str) -> String {
    if predicate_type.starts_with("https://slsa.dev/provenance/") {
        return ".intoto.sigstore.json".into();
    }
    format!(".{}.sigstore.json", predicate_short_name(predicate_type))
}

/// A stable file-name word for a predicate type URI: its last segment (split on `/`, `:`, `#`
/// and `?`) that is not a version like `v1` or `0.2`, lower-cased, with every run of other
/// characters than `a-z0-9` made one `-`; at most 40 characters. `attestation` when nothing is
/// left, or when the word would be one of the names custody gives other bundles (`intoto`,
/// `sigstore`).
fn predicate_short_name(predicate_type: &str) -> String {
    let is_version = |s: &str| {
        let digits = s.strip_prefix(['v', 'V']).unwrap_or(s);
        digits.starts_with(|c: char| c.is_ascii_digit())
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
    };
    let segment = predicate_type
        .split(['/', ':', '#', '?'])
        .rfind(|s| !s.is_empty() && !is_version(s))
        .unwrap_or("");
    let mut word = String::new();
    for c in segment.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            word.push(c);
        } else if !word.is_empty() && !word.ends_with('-') {
            word.push('-');
        }
    }
    word.truncate(40);
    let word = word.trim_end_matches('-');
    match word {
        "" | "intoto" | "sigstore" => "attestation".into(),
        w => w.to_string(),
    }
}

/// Signs an in-toto statement (`custody_core::sign::sign_statement`): a DSSE bundle and the
/// request that logs it. Returns it with the key id.
pub(crate) fn sign_statement(
    key: &SigningKey,
    key_path: &Path,
    statement: &Statement,
) -> anyhow::Result<(Signed, String)> {
    let signed = signing::sign_statement(key, statement)
        .with_context(|| format!("signing with {}", key_path.display()))?;
    let key_id = signed.key().key_id().to_string();
    Ok((signed, key_id))
}

pub fn sign(ctx: &Context, args: SignArgs) -> anyhow::Result<Outcome> {
    let (key_path, key) = signing_key(ctx, args.key)?;
    let (digest, size, bytes, bundle_path) = match (&args.file, &args.digest) {
        (Some(file), _) => {
            let (digest, size, bytes) = read_artifact(file, key.algorithm())?;
            let out = args
                .bundle
                .clone()
                .unwrap_or_else(|| default_bundle_path(file, ".sigstore.json"));
            (digest, Some(size), bytes, out)
        }
        (None, Some(text)) => {
            let digest: Sha256Digest =
                text.parse().with_context(|| format!("--digest {text:?}"))?;
            let out = args
                .bundle
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.sigstore.json", digest.hex())));
            (digest, None, None, out)
        }
        (None, None) => anyhow::bail!("give a FILE to sign, or --digest sha256:HEX"),
    };
    let artifact = Artifact {
        digest,
        bytes: bytes.as_deref(),
    };
    let signed = signing::sign_message(&key, &artifact)
        .with_context(|| format!("signing with {}", key_path.display()))?;
    let key_id = signed.key().key_id();
    let (bundle, tlog) = log_bundle(&args.log, signed)?;
    let key_id = key_id.to_string();
    files::write_atomic(&bundle_path, bundle.to_json().as_bytes(), false)?;
    tracing::info!(artifact = %digest, bundle = %bundle_path.display(), "signed");
    ctx.emit(
        &json!({ "ok": true, "artifact": { "path": args.file, "digest": digest.to_string(), "size": size },
                 "bundle": bundle_path, "keyId": key_id, "tlog": tlog.json }),
        || format!("Signed {digest}\n  bundle  {}\n  key     {key_id}\n  tlog    {}\n", bundle_path.display(), tlog.human),
    );
    Ok(Outcome::Done)
}

pub fn attest(ctx: &Context, args: AttestArgs) -> anyhow::Result<Outcome> {
    if args.predicate_type.trim().is_empty() {
        anyhow::bail!("--type must be a predicate type URI, e.g. https://slsa.dev/provenance/v1");
    }
    let bundle_path = args.bundle.clone().unwrap_or_else(|| {
        default_bundle_path(&args.file, &attestation_bundle_suffix(&args.predicate_type))
    });
    // Before anything is signed or logged: an existing bundle (another attestation, or the
    // provenance `custody build` wrote) is never replaced by accident.
    if !args.force && bundle_path.symlink_metadata().is_ok() {
        anyhow::bail!(
            "bundle {} already exists: pass --bundle FILE to write this {} attestation elsewhere, or --force to overwrite it",
            bundle_path.display(),
            args.predicate_type
        );
    }
    let (key_path, key) = signing_key(ctx, args.key)?;
    let predicate_bytes = files::read(&args.predicate, "predicate")?;
    let predicate: serde_json::Value = serde_json::from_slice(&predicate_bytes).map_err(|e| {
        anyhow::anyhow!(
            "predicate {}: not valid JSON: {e}",
            args.predicate.display()
        )
    })?;
    if !predicate.is_object() {
        anyhow::bail!(
            "predicate {}: must be a JSON object",
            args.predicate.display()
        );
    }
    let (digest, size) = files::sha256(&args.file)?;
    let name = args
        .file
        .file_name()
        .map_or_else(|| "_".to_string(), |n| n.to_string_lossy().into_owned());
    let subject = ResourceDescriptor::from_sha256(name, &digest);
    let statement = Statement::new_v1(vec![subject], args.predicate_type.clone(), predicate);
    let (signed, key_id) = sign_statement(&key, &key_path, &statement)?;
    let (bundle, tlog) = log_bundle(&args.log, signed)?;
    files::write_atomic(&bundle_path, bundle.to_json().as_bytes(), false)?;
    ctx.emit(
        &json!({ "ok": true, "artifact": { "path": args.file, "digest": digest.to_string(), "size": size },
                 "predicateType": args.predicate_type, "bundle": bundle_path, "keyId": key_id, "tlog": tlog.json }),
        || format!(
            "Attested {digest}\n  type    {}\n  bundle  {}\n  key     {key_id}\n  tlog    {}\n",
            args.predicate_type,
            bundle_path.display(),
            tlog.human,
        ),
    );
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::attestation_bundle_suffix;

    #[test]
    fn attestation_bundle_names_differ_by_predicate_type() {
        let cases = [
            ("https://slsa.dev/provenance/v1", ".intoto.sigstore.json"),
            ("https://slsa.dev/provenance/v0.2", ".intoto.sigstore.json"),
            ("urn:custody:predicate:rebuild:v1", ".rebuild.sigstore.json"),
            (
                "urn:custody:predicate:reproducibility:v1",
                ".reproducibility.sigstore.json",
            ),
            (
                "https://cosign.sigstore.dev/attestation/vuln/v1",
                ".vuln.sigstore.json",
            ),
            (
                "https://in-toto.io/attestation/vulns/v0.1",
                ".vulns.sigstore.json",
            ),
            (
                "https://slsa.dev/verification_summary/v1",
                ".verification-summary.sigstore.json",
            ),
            ("https://spdx.dev/Document/v2.3", ".document.sigstore.json"),
            ("https://custody.dev/approval/v1", ".approval.sigstore.json"),
            (
                "https://example.com/review/v1#draft",
                ".draft.sigstore.json",
            ),
            // Nothing but versions, or a reserved word: a neutral name, never the provenance's.
            ("v1", ".attestation.sigstore.json"),
            (
                "https://example.com/intoto/v1",
                ".attestation.sigstore.json",
            ),
            ("urn:x:Sigstore:2", ".attestation.sigstore.json"),
            // Path tricks cannot escape the file name.
            ("https://e.com/../../etc/passwd", ".passwd.sigstore.json"),
            ("https://e.com/..", ".attestation.sigstore.json"),
            ("https://e.com/A B__c", ".a-b-c.sigstore.json"),
        ];
        for (predicate_type, want) in cases {
            assert_eq!(
                attestation_bundle_suffix(predicate_type),
                want,
                "{predicate_type}"
            );
        }
        let long = format!("urn:x:{}", "a".repeat(100));
        assert_eq!(
            attestation_bundle_suffix(&long).len(),
            40 + ".sigstore.json".len() + 1
        );
    }
}
