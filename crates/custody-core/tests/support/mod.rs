//! Shared by the conformance and mutation tests: test data paths, loading a conformance case,
//! and running one through the in-process verifier the way `custody verify` does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use custody_core::bundle::{Bundle, BundleContent};
use custody_core::keys::PublicKey;
use custody_core::trust_root::{ClientTrustConfig, TrustedRoot};
use custody_core::verify::{
    self, Artifact, KeyVerifyOptions, KeylessPolicy, VerifiedBundle, VerifyError,
};
use custody_core::x509::IdentityMatcher;

pub const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
pub const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel)
}

pub fn conformance_dir() -> PathBuf {
    testdata("sigstore-conformance/bundle-verify")
}

/// The Sigstore public-good production root (sigstore-python's embedded TUF seed).
pub fn production_root() -> TrustedRoot {
    load_root(&testdata(
        "sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json",
    ))
}

/// The Sigstore staging root (sigstore-python's embedded TUF seed).
pub fn staging_root() -> TrustedRoot {
    load_root(&testdata(
        "sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstage.dev/trusted_root.json",
    ))
}

/// A trusted_root.json, or the trusted root inside a ClientTrustConfig.
pub fn load_root(path: &Path) -> TrustedRoot {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    TrustedRoot::from_json(&bytes)
        .or_else(|_| ClientTrustConfig::from_json(&bytes).map(|c| c.trusted_root))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One sigstore-conformance `bundle-verify` case with the README's defaults applied.
pub struct Case {
    pub name: String,
    pub bundle_json: Vec<u8>,
    /// The artifact (for DSSE bundles: the in-toto subject).
    pub artifact: Vec<u8>,
    pub root: TrustedRoot,
    /// `key.pub`: `Some(Err)` when the file exists but is not a usable key.
    pub key: Option<Result<PublicKey, String>>,
    pub identity: String,
    pub issuer: String,
}

impl Case {
    pub fn load(name: &str) -> Case {
        let dir = conformance_dir().join(name);
        let read_or = |file: &str, default: &Path| {
            std::fs::read(dir.join(file)).unwrap_or_else(|_| std::fs::read(default).unwrap())
        };
        let text_or = |file: &str, default: &str| {
            std::fs::read_to_string(dir.join(file))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| default.to_string())
        };
        let own_root = dir.join("trusted_root.json");
        Case {
            name: name.to_string(),
            bundle_json: std::fs::read(dir.join("bundle.sigstore.json")).unwrap(),
            artifact: read_or("artifact", &conformance_dir().join("a.txt")),
            root: if own_root.exists() {
                load_root(&own_root)
            } else {
                production_root()
            },
            key: std::fs::read(dir.join("key.pub"))
                .ok()
                .map(|pem| PublicKey::from_pem(&pem).map_err(|e| e.to_string())),
            identity: text_or("identity", DEFAULT_IDENTITY),
            issuer: text_or("issuer", DEFAULT_ISSUER),
        }
    }

    pub fn expect_ok(&self) -> bool {
        !self.name.ends_with("_fail")
    }

    /// Verifies as `custody verify` would: `key.pub` ⇒ key-based with the root's logs,
    /// otherwise keyless with the case's identity and issuer.
    pub fn verify(&self) -> Result<VerifiedBundle, Failure> {
        verify_bytes(
            &self.bundle_json,
            &self.artifact,
            &self.root,
            self.key.as_ref(),
            &IdentityMatcher::exact(&self.identity, &self.issuer),
        )
    }
}

/// A refusal: the stable code and the message.
#[derive(Debug)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Self {
        Failure {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

pub fn verify_bytes(
    bundle_json: &[u8],
    artifact: &[u8],
    root: &TrustedRoot,
    key: Option<&Result<PublicKey, String>>,
    identity: &IdentityMatcher,
) -> Result<VerifiedBundle, Failure> {
    let bundle = Bundle::from_json(bundle_json).map_err(VerifyError::from)?;
    let artifact = Artifact::from_bytes(artifact);
    match key {
        Some(Ok(key)) => {
            let options = KeyVerifyOptions {
                trusted_root: Some(root),
            };
            Ok(verify::verify_parsed_with_key_options(
                &bundle, artifact, key, &options,
            )?)
        }
        Some(Err(e)) => Err(Failure {
            code: "key.invalid",
            message: e.clone(),
        }),
        None => {
            let policy = KeylessPolicy::new(identity.clone());
            Ok(verify::verify_keyless(&bundle, artifact, root, &policy)?)
        }
    }
}

/// What a signature covers: for comparing a mutated bundle with its original.
pub fn signed_content(bundle: &Bundle) -> (Vec<u8>, Vec<u8>, String) {
    match &bundle.content {
        BundleContent::MessageSignature { signature, .. } => {
            (signature.clone(), Vec::new(), String::new())
        }
        BundleContent::Dsse(env) => (
            env.signatures[0].sig.clone(),
            env.payload.clone(),
            env.payload_type.clone(),
        ),
    }
}
