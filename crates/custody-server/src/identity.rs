//! The log's identity: its origin and Ed25519 checkpoint key, kept in the data directory, and
//! the names Sigstore clients know it by (log ID, checkpoint key ID, `trusted_root.json`).
//!
//! Files in the data directory:
//! * `log.skey`: the signing key in golang's note format (`PRIVATE+KEY+<origin>+...`), mode 0600;
//! * `log.json`: `{"origin", "vkey", "keyCreated"}`, public; what `trust-root export` reads;
//! * `log.vkey`: the verifier key alone, for witnesses and monitors.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SubsecRound as _, Utc};
use custody_core::bundle::HashAlgorithm;
use custody_core::digest::Sha256Digest;
use custody_core::encoding::base64_decode_strict;
use custody_core::note::{NoteError, NoteSigner, NoteVerifier};
use custody_core::trust_root::{
    LogPublicKey, TRUSTED_ROOT_V0_2, TransparencyLogInstance, TrustedRoot, ValidityPeriod,
};
use serde::{Deserialize, Serialize};

use custody_core::fsio::write_atomic;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why the log's key files could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a log key file: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: NoteError,
    },
    #[error("{path}: {reason}")]
    Metadata { path: PathBuf, reason: String },
    #[error(
        "the data directory holds the log {stored:?}, not {requested:?} (the origin names the log; use another data directory for another log)"
    )]
    OriginMismatch { stored: String, requested: String },
    #[error("invalid origin {origin:?}: {source}")]
    Origin {
        origin: String,
        #[source]
        source: NoteError,
    },
}

/// The public facts about a log: enough to verify it and to name it in a trust root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogIdentity {
    /// Checkpoint origin line and key name.
    pub origin: String,
    /// The note verifier key `origin+keyid+base64(0x01 ‖ key)`.
    pub vkey: String,
    /// When the key was created: `validFor.start` in the trust root.
    pub key_created: DateTime<Utc>,
}

impl LogIdentity {
    /// Reads `log.json` from a data directory.
    pub fn load(data_dir: &Path) -> Result<Self, IdentityError> {
        let path = data_dir.join("log.json");
        let bytes = std::fs::read(&path).map_err(|source| IdentityError::Io {
            path: path.clone(),
            source,
        })?;
        let identity: Self =
            serde_json::from_slice(&bytes).map_err(|e| IdentityError::Metadata {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        identity
            .verifier()
            .map_err(|source| IdentityError::Key { path, source })?;
        Ok(identity)
    }

    /// The checkpoint verifier.
    pub fn verifier(&self) -> Result<NoteVerifier, NoteError> {
        NoteVerifier::from_vkey(&self.vkey)
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        raw_key(&self.vkey).unwrap_or([0; 32])
    }

    /// DER SubjectPublicKeyInfo of the key (`publicKey.rawBytes` in a trust root).
    pub fn spki_der(&self) -> Vec<u8> {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.public_key());
        der
    }

    /// Rekor v2 log ID: SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ key) (SPECS §4.2).
    pub fn log_id(&self) -> [u8; 32] {
        let mut preimage = self.origin.as_bytes().to_vec();
        preimage.extend_from_slice(&[0x0a, 0x01]);
        preimage.extend_from_slice(&self.public_key());
        *Sha256Digest::of(&preimage).as_bytes()
    }

    /// The signed-note key ID: the first 4 bytes of the log ID.
    pub fn checkpoint_key_id(&self) -> [u8; 4] {
        let id = self.log_id();
        [id[0], id[1], id[2], id[3]]
    }

    /// A `trusted_root.json` (media type v0.2) trusting this log at `base_url`.
    pub fn trusted_root(&self, base_url: &str) -> TrustedRoot {
        TrustedRoot {
            media_type: TRUSTED_ROOT_V0_2.to_owned(),
            tlogs: vec![TransparencyLogInstance {
                base_url: base_url.trim_end_matches('/').to_owned(),
                hash_algorithm: HashAlgorithm::Sha2_256,
                public_key: LogPublicKey {
                    raw_bytes: Some(self.spki_der()),
                    key_details: "PKIX_ED25519".to_owned(),
                    valid_for: ValidityPeriod {
                        start: Some(self.key_created),
                        end: None,
                    },
                },
                log_id: self.log_id().to_vec(),
                checkpoint_key_id: Some(self.checkpoint_key_id().to_vec()),
                operator: None,
            }],
            certificate_authorities: Vec::new(),
            ctlogs: Vec::new(),
            timestamp_authorities: Vec::new(),
        }
    }
}

/// The 32 raw key bytes of an Ed25519 vkey `name+id+base64(0x01 ‖ key)`.
fn raw_key(vkey: &str) -> Option<[u8; 32]> {
    // The base64 may contain '+'; the name and the key ID cannot.
    let b64 = vkey.splitn(3, '+').nth(2)?;
    let blob = base64_decode_strict(b64).ok()?;
    let key = blob.strip_prefix(&[0x01])?;
    key.try_into().ok()
}

/// Opens the log key in `data_dir`, creating the directory, a new key and its metadata on
/// first start. `origin` is required on first start unless a default is given by the caller;
/// afterwards it must match the stored one (or be `None`).
pub fn open_or_create(
    data_dir: &Path,
    origin: &str,
    origin_explicit: bool,
) -> Result<(NoteSigner, LogIdentity), IdentityError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IdentityError::Io { path, source }
    };
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let skey_path = data_dir.join("log.skey");
    if skey_path.exists() {
        let text = std::fs::read_to_string(&skey_path).map_err(io(&skey_path))?;
        let signer = NoteSigner::from_skey(text.trim()).map_err(|source| IdentityError::Key {
            path: skey_path.clone(),
            source,
        })?;
        let identity = LogIdentity::load(data_dir)?;
        if identity.vkey != signer.vkey() {
            return Err(IdentityError::Metadata {
                path: data_dir.join("log.json"),
                reason: "its vkey is not the key in log.skey".to_owned(),
            });
        }
        if origin_explicit && identity.origin != origin {
            return Err(IdentityError::OriginMismatch {
                stored: identity.origin,
                requested: origin.to_owned(),
            });
        }
        return Ok((signer, identity));
    }
    let (signer, vkey) = NoteSigner::generate(origin).map_err(|source| IdentityError::Origin {
        origin: origin.to_owned(),
        source,
    })?;
    let identity = LogIdentity {
        origin: origin.to_owned(),
        vkey,
        key_created: Utc::now().trunc_subsecs(0),
    };
    // The public files first: a crash before the key is written leaves no key, so the next
    // start creates everything again.
    let json = serde_json::to_vec_pretty(&identity).unwrap_or_default();
    let meta = data_dir.join("log.json");
    write_atomic(&meta, &json, false).map_err(io(&meta))?;
    let vkey_path = data_dir.join("log.vkey");
    write_atomic(&vkey_path, format!("{}\n", identity.vkey).as_bytes(), false)
        .map_err(io(&vkey_path))?;
    let skey = signer.to_skey();
    write_atomic(&skey_path, format!("{}\n", skey.as_str()).as_bytes(), true)
        .map_err(io(&skey_path))?;
    Ok((signer, identity))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn raw_key_survives_plus_signs_in_the_base64() {
        for _ in 0..64 {
            let (signer, vkey) = NoteSigner::generate("log.example").unwrap();
            let key = raw_key(&vkey).unwrap();
            let identity = LogIdentity {
                origin: "log.example".into(),
                vkey,
                key_created: Utc::now(),
            };
            assert_eq!(identity.public_key(), key);
            let id = signer.key_id().to_be_bytes();
            assert_eq!(identity.checkpoint_key_id(), id);
            let from_spki = NoteVerifier::from_spki("log.example", &identity.spki_der()).unwrap();
            assert_eq!(from_spki.vkey(), Some(identity.vkey.clone()));
        }
    }
}
