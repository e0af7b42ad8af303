//! `custody verify`: does this artifact carry a bundle that verifies?
//!
//! A key bundle is checked with `--key` (and its log entries with `--trusted-root`); a
//! certificate bundle keylessly, with `--trusted-root` and an identity policy. Nothing is ever
//! fetched: without a trusted root a certificate bundle cannot verify, and the error says so.

use std::path::{Path, PathBuf};

use custody_core::bundle::{Bundle, Material};
use custody_core::digest::Sha256Digest;
use custody_core::keys::{KeyAlgorithm, PublicKey};
use custody_core::trust_root::TrustedRoot;
use custody_core::verify::{
    self, Artifact, KeyVerifyOptions, KeylessPolicy, VerifiedBundle, VerifyError,
};
use custody_core::x509::{IdentityMatcher, IdentityPattern};

use super::Context;
use super::key::load_public_key;
use super::sign::read_artifact;
use crate::cli::{IdentityArgs, VerifyArgs};
use crate::files;
use crate::outcome::{Denied, Outcome};

mod batch;
pub(crate) mod evidence_from;
pub(crate) mod gate;
mod report;

pub(crate) use gate::{load_policy, verdict_outcome, write_sarif};

/// The bundle names tried beside an artifact, in order: `custody sign`'s, the SLSA provenance
/// `custody build` and `custody attest --type https://slsa.dev/provenance/v1` write, cosign's.
/// When none exists, the one `FILE.<type>.sigstore.json` other attestation types get (e.g.
/// `FILE.rebuild.sigstore.json`), if there is exactly one.
const BUNDLE_SUFFIXES: [&str; 3] = [".sigstore.json", ".intoto.sigstore.json", ".sigstore"];

/// What is being verified: a file, or only its digest.
pub(crate) enum Subject {
    File(PathBuf),
    Digest(Sha256Digest),
}

impl Subject {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Subject> {
        let path = Path::new(text);
        if text.starts_with("sha256:") && !path.exists() {
            let digest = text
                .parse()
                .map_err(|e| anyhow::anyhow!("artifact digest {text:?}: {e}"))?;
            return Ok(Subject::Digest(digest));
        }
        Ok(Subject::File(path.to_path_buf()))
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Subject::File(p) => Some(p),
            Subject::Digest(_) => None,
        }
    }
}

fn find_bundle(subject: &Subject, flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path);
    }
    let Subject::File(file) = subject else {
        anyhow::bail!("verifying by digest needs --bundle FILE");
    };
    for suffix in BUNDLE_SUFFIXES {
        let mut s = file.as_os_str().to_owned();
        s.push(suffix);
        let candidate = PathBuf::from(s);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    match gate::bundles_beside(file).as_slice() {
        [only] => Ok(only.clone()),
        [] => anyhow::bail!(
            "no bundle found beside {} (looked for {}, and FILE.<type>.sigstore.json): pass --bundle FILE",
            file.display(),
            BUNDLE_SUFFIXES.join(", ")
        ),
        several => anyhow::bail!(
            "several bundles beside {} ({}): pass --bundle FILE to say which to verify, or --policy DIR to weigh them all",
            file.display(),
            several
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What the bundles are checked against, loaded once (the trusted root is parsed once even for
/// a batch of thousands).
pub(crate) struct Trust {
    /// `--key` (flag or env): used for key bundles; a certificate bundle with it is refused.
    pub key: Option<PublicKey>,
    /// The config file's `public_key`: used for key bundles only.
    pub default_key: Option<PublicKey>,
    pub root: Option<TrustedRoot>,
    pub identity: Option<IdentityMatcher>,
}

impl Trust {
    pub(crate) fn load(ctx: &Context, args: &VerifyArgs) -> anyhow::Result<Trust> {
        let key = args.key.as_deref().map(load_public_key).transpose()?;
        let default_key = match (&key, &ctx.config.public_key) {
            (None, Some(path)) => Some(load_public_key(path)?),
            _ => None,
        };
        Ok(Trust {
            key,
            default_key,
            root: args
                .trusted_root
                .as_deref()
                .map(super::trust_root::load)
                .transpose()?,
            identity: identity_matcher(&args.identity)?,
        })
    }
}

/// The identity policy from flags (or a batch line); `None` when no identity was given.
pub(crate) fn identity_matcher(args: &IdentityArgs) -> anyhow::Result<Option<IdentityMatcher>> {
    let pattern =
        |exact: &Option<String>, regexp: &Option<String>, flag: &str| match (exact, regexp) {
            (Some(value), _) => Ok(Some(IdentityPattern::exact(value))),
            (None, Some(re)) => IdentityPattern::regex(re)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{flag}: {e}")),
            (None, None) => Ok(None),
        };
    let san = pattern(
        &args.certificate_identity,
        &args.certificate_identity_regexp,
        "--certificate-identity-regexp",
    )?;
    let issuer = pattern(
        &args.certificate_oidc_issuer,
        &args.certificate_oidc_issuer_regexp,
        "--certificate-oidc-issuer-regexp",
    )?;
    match (san, issuer) {
        (Some(san), Some(issuer)) => Ok(Some(IdentityMatcher { san, issuer })),
        (None, None) => Ok(None),
        (Some(_), None) => anyhow::bail!(
            "an identity needs its OIDC issuer too: pass --certificate-oidc-issuer (or --certificate-oidc-issuer-regexp); the issuer is never left unchecked"
        ),
        (None, Some(_)) => anyhow::bail!(
            "an OIDC issuer needs the identity too: pass --certificate-identity (or --certificate-identity-regexp)"
        ),
    }
}

/// Why one bundle did not verify: the evidence's fault (exit 1), or the caller's (exit 2).
pub(crate) enum Failure {
    Denied { code: &'static str, message: String },
    Usage(anyhow::Error),
}

impl Failure {
    fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Denied { code, message } => Denied::coded(code, message).into(),
            Failure::Usage(e) => e,
        }
    }
}

/// Verifies one bundle file for `subject`; `identity` overrides the flags' policy.
pub(crate) fn verify_one(
    trust: &Trust,
    identity: Option<&IdentityMatcher>,
    subject: &Subject,
    bundle_path: &Path,
) -> Result<VerifiedBundle, Failure> {
    let bundle_bytes = files::read(bundle_path, "bundle").map_err(Failure::Usage)?;
    let denied = |e: VerifyError| Failure::Denied {
        code: e.code(),
        message: format!("verification failed: bundle {}: {e}", bundle_path.display()),
    };
    let bundle = Bundle::from_json(&bundle_bytes).map_err(|e| denied(e.into()))?;
    let usage = |text: String| Failure::Usage(anyhow::anyhow!(text));
    let shown = bundle_path.display();
    match (&bundle.verification_material.content, &trust.key) {
        (Material::PublicKeyHint(hint), None) => {
            let Some(key) = &trust.default_key else {
                return Err(usage(format!(
                    "bundle {shown} is signed with a key (hint {hint:?}): pass --key PUBLIC.pem"
                )));
            };
            verify_with_key(trust, &bundle, key, subject).map_err(|e| from_error(e, denied))
        }
        (_, Some(key)) => {
            verify_with_key(trust, &bundle, key, subject).map_err(|e| from_error(e, denied))
        }
        (_, None) => {
            let Some(root) = &trust.root else {
                return Err(usage(format!(
                    "bundle {shown} is signed with a certificate: pass --trusted-root FILE (the trusted_root.json of your Sigstore instance, e.g. from its TUF repository; custody makes no network calls)"
                )));
            };
            let Some(identity) = identity.or(trust.identity.as_ref()) else {
                return Err(usage(format!(
                    "bundle {shown} is signed with a certificate: say who must have signed it with --certificate-identity SAN (or --certificate-identity-regexp RE) and --certificate-oidc-issuer ISSUER"
                )));
            };
            let policy = KeylessPolicy::new(identity.clone());
            verify_keyless(&bundle, subject, root, &policy).map_err(|e| from_error(e, denied))
        }
    }
}

fn from_error(
    e: Result<VerifyError, anyhow::Error>,
    denied: impl Fn(VerifyError) -> Failure,
) -> Failure {
    match e {
        Ok(e) if e.is_usage() => Failure::Usage(anyhow::anyhow!("{e}")),
        Ok(e) => denied(e),
        Err(e) => Failure::Usage(e),
    }
}

fn verify_with_key(
    trust: &Trust,
    bundle: &Bundle,
    key: &PublicKey,
    subject: &Subject,
) -> Result<VerifiedBundle, Result<VerifyError, anyhow::Error>> {
    let (digest, bytes) = artifact(subject, key.algorithm()).map_err(Err)?;
    let artifact = Artifact {
        digest,
        bytes: bytes.as_deref(),
    };
    let options = KeyVerifyOptions {
        trusted_root: trust.root.as_ref(),
    };
    verify::verify_parsed_with_key_options(bundle, artifact, key, &options).map_err(Ok)
}

/// Streams the artifact's digest; only if the certificate's key signs whole messages (Ed25519)
/// is the file read again into memory.
fn verify_keyless(
    bundle: &Bundle,
    subject: &Subject,
    root: &TrustedRoot,
    policy: &KeylessPolicy,
) -> Result<VerifiedBundle, Result<VerifyError, anyhow::Error>> {
    let (digest, _) = artifact(subject, KeyAlgorithm::EcdsaP256Sha256).map_err(Err)?;
    match verify::verify_keyless(bundle, Artifact::from_digest(digest), root, policy) {
        Err(e) if e.is_usage() && subject.path().is_some() => {
            let (digest, bytes) = artifact(subject, KeyAlgorithm::Ed25519).map_err(Err)?;
            let artifact = Artifact {
                digest,
                bytes: bytes.as_deref(),
            };
            verify::verify_keyless(bundle, artifact, root, policy).map_err(Ok)
        }
        other => other.map_err(Ok),
    }
}

fn artifact(
    subject: &Subject,
    algorithm: KeyAlgorithm,
) -> anyhow::Result<(Sha256Digest, Option<Vec<u8>>)> {
    match subject {
        Subject::File(path) => {
            let (digest, _, bytes) = read_artifact(path, algorithm)?;
            Ok((digest, bytes))
        }
        Subject::Digest(d) => Ok((*d, None)),
    }
}

pub fn verify(ctx: &Context, args: VerifyArgs) -> anyhow::Result<Outcome> {
    if let Some(list) = args.bundles_from.clone() {
        return batch::run(ctx, &args, &list);
    }
    let Some(text) = args.artifact.as_deref() else {
        anyhow::bail!("pass the artifact FILE (or sha256:HEX), or --bundles-from LIST");
    };
    let subject = Subject::parse(text)?;
    if let Some(vsa) = args.gate.accept_vsa.clone() {
        return gate::accept_vsa(ctx, &args.gate, &subject, &vsa);
    }
    if let Some(dir) = args.gate.policy.clone() {
        return gate::verify_with_policy(ctx, &args, subject, &dir);
    }
    let bundle_path = find_bundle(&subject, args.bundle.clone())?;
    let trust = Trust::load(ctx, &args)?;
    let verified = verify_one(&trust, None, &subject, &bundle_path).map_err(Failure::into_error)?;
    report::single(ctx, &verified, subject.path(), &bundle_path);
    Ok(Outcome::Done)
}
