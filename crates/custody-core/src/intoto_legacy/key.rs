//! securesystemslib public key objects: `{"keytype", "scheme", "keyval": {"public"}}`, and the
//! two ways their key ids are computed.
//!
//! SPECS §2.2. Verifiers take the key id written in the layout and never recompute it; only
//! when custody *creates* a key object (to sign a link) does it compute one, the in-toto 3.x
//! way ([`modern_key_id`]). [`legacy_key_id`] exists to recognise a layout key given as a
//! PEM file when the layout was signed by in-toto ≤ 2.x.

use der::Decode as _;
use serde_json::{Value, json};
use spki::SubjectPublicKeyInfoRef;

use super::canonical;
use super::error::MetadataError;
use crate::digest::Sha256Digest;
use crate::keys::{KeyAlgorithm, PublicKey};

/// A functionary or layout key: the key id it is known by, and the key that verifies.
#[derive(Debug, Clone)]
pub struct SslibKey {
    /// The key id as written (layout `keys` map key, or computed for a PEM file).
    pub keyid: String,
    pub keytype: String,
    pub scheme: String,
    pub public: PublicKey,
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4), before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl SslibKey {
    /// Reads a key object from a layout's `keys` map. `keyid` is the map key.
    pub fn from_layout(keyid: &str, object: &Value) -> Result<Self, MetadataError> {
        let bad = |reason: String| MetadataError::Key {
            keyid: keyid.to_string(),
            reason,
        };
        let field = |name: &str| object.get(name).and_then(Value::as_str);
        // securesystemslib's GPG key dicts (`type`/`method`, or a `pgp+` scheme) and their
        // `keyval.public` object ({e, n} or {q}).
        let pgp = |name: &str| field(name).is_some_and(|v| v.starts_with("pgp+"));
        if pgp("method")
            || pgp("scheme")
            || object
                .get("keyval")
                .and_then(|kv| kv.get("public"))
                .is_some_and(Value::is_object)
        {
            return Err(MetadataError::Gpg {
                what: "key",
                keyid: keyid.to_string(),
            });
        }
        let keytype = field("keytype").ok_or_else(|| bad("no `keytype` string".into()))?;
        let scheme = field("scheme").ok_or_else(|| bad("no `scheme` string".into()))?;
        let public = object
            .get("keyval")
            .and_then(|kv| kv.get("public"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `keyval.public` string".into()))?;
        let key = match keytype {
            "ed25519" => {
                let raw = hex::decode(public)
                    .ok()
                    .filter(|raw| raw.len() == 32)
                    .ok_or_else(|| bad("`keyval.public` is not 64 hex characters".into()))?;
                let der = [&ED25519_SPKI_PREFIX[..], &raw].concat();
                PublicKey::from_spki_der(&der).map_err(|e| bad(e.to_string()))?
            }
            "rsa" | "ecdsa" | "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" => {
                PublicKey::from_pem(public.as_bytes()).map_err(|e| bad(e.to_string()))?
            }
            other => return Err(bad(format!("key type {other:?} is not supported"))),
        };
        let algorithm = scheme_algorithm(scheme)
            .ok_or_else(|| bad(format!("signature scheme {scheme:?} is not supported")))?;
        let public = key.with_algorithm(algorithm).map_err(|_| {
            bad(format!(
                "scheme {scheme:?} does not fit the {keytype} key in `keyval.public`"
            ))
        })?;
        Ok(Self {
            keyid: keyid.to_string(),
            keytype: keytype.to_string(),
            scheme: scheme.to_string(),
            public,
        })
    }

    /// The key object for a public key, keyed by its in-toto 3.x key id. RSA keys sign
    /// `rsassa-pss-sha256`, as securesystemslib's default.
    pub fn from_public_key(public: &PublicKey) -> Result<Self, MetadataError> {
        let (keytype, scheme, algorithm) = match public.algorithm() {
            KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256 => {
                ("rsa", "rsassa-pss-sha256", KeyAlgorithm::RsaPssSha256)
            }
            KeyAlgorithm::EcdsaP256Sha256 => ("ecdsa", "ecdsa-sha2-nistp256", public.algorithm()),
            KeyAlgorithm::EcdsaP384Sha384 => ("ecdsa", "ecdsa-sha2-nistp384", public.algorithm()),
            KeyAlgorithm::Ed25519 => ("ed25519", "ed25519", KeyAlgorithm::Ed25519),
        };
        let public = public
            .clone()
            .with_algorithm(algorithm)
            .map_err(|e| MetadataError::Key {
                keyid: public.key_id().to_string(),
                reason: e.to_string(),
            })?;
        let mut key = Self {
            keyid: String::new(),
            keytype: keytype.into(),
            scheme: scheme.into(),
            public,
        };
        key.keyid = modern_key_id(&key.object(false))?;
        Ok(key)
    }

    /// `keyval.public` as securesystemslib writes it: SPKI PEM with a trailing newline (pyca's
    /// `public_bytes`), or 64 hex characters for Ed25519.
    pub fn public_value(&self) -> String {
        if self.keytype == "ed25519" {
            let spki = self.public.spki_der();
            if let Ok(info) = SubjectPublicKeyInfoRef::from_der(spki) {
                if let Some(raw) = info.subject_public_key.as_bytes() {
                    return hex::encode(raw);
                }
            }
            return String::new();
        }
        self.public.to_pem()
    }

    /// The public key object; `legacy` adds `keyid_hash_algorithms` and drops the PEM's
    /// trailing newline, as securesystemslib < 1.0 did.
    fn object(&self, legacy: bool) -> Value {
        let mut public = self.public_value();
        if legacy {
            public = public.trim_end().to_string();
            return json!({"keytype": self.keytype, "scheme": self.scheme,
                "keyid_hash_algorithms": ["sha256", "sha512"], "keyval": {"public": public}});
        }
        json!({"keytype": self.keytype, "scheme": self.scheme, "keyval": {"public": public}})
    }

    /// The key object as it goes into a layout's `keys` map (in-toto 3.x shape plus `keyid`).
    pub fn to_layout_json(&self) -> Value {
        let mut object = self.object(false);
        if let Some(map) = object.as_object_mut() {
            map.insert("keyid".into(), Value::String(self.keyid.clone()));
        }
        object
    }

    /// Every key id this key may be known by in a signature: its own, then the in-toto 3.x
    /// and ≤ 2.x computations (a layout key given as a PEM file has no declared id).
    pub fn candidate_key_ids(&self) -> Vec<String> {
        let mut ids = vec![self.keyid.clone()];
        for legacy in [false, true] {
            if let Ok(id) = modern_key_id(&self.object(legacy)) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }
}

/// The custody key algorithm a securesystemslib scheme verifies with.
fn scheme_algorithm(scheme: &str) -> Option<KeyAlgorithm> {
    Some(match scheme {
        "rsassa-pss-sha256" => KeyAlgorithm::RsaPssSha256,
        "rsa-pkcs1v15-sha256" => KeyAlgorithm::RsaPkcs1Sha256,
        "ecdsa-sha2-nistp256" => KeyAlgorithm::EcdsaP256Sha256,
        "ecdsa-sha2-nistp384" => KeyAlgorithm::EcdsaP384Sha384,
        "ed25519" => KeyAlgorithm::Ed25519,
        _ => return None,
    })
}

/// securesystemslib ≥ 1.0 `compute_default_keyid`: SHA-256 of the canonical key object.
fn modern_key_id(object: &Value) -> Result<String, MetadataError> {
    let bytes = canonical::encode(object).map_err(MetadataError::Canonical)?;
    Ok(Sha256Digest::of(&bytes).hex())
}

/// The in-toto 3.x key id of a public key (what `in-toto-run -k` would name its link after).
pub fn key_id(public: &PublicKey) -> Result<String, MetadataError> {
    Ok(SslibKey::from_public_key(public)?.keyid)
}

/// The in-toto ≤ 2.x (securesystemslib < 1.0) key id of a public key.
pub fn legacy_key_id(public: &PublicKey) -> Result<String, MetadataError> {
    let key = SslibKey::from_public_key(public)?;
    modern_key_id(&key.object(true))
}
