//! C2SP tlog-cosignature: timestamped Ed25519 witness cosignatures (`cosignature/v1`).
//!
//! A cosignature is a signature line on a checkpoint note whose key ID is
//! `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4]` and whose blob is
//! `key ID ‖ u64 big-endian timestamp ‖ Ed25519(message)`, with message
//! `"cosignature/v1\ntime <timestamp>\n" ‖ checkpoint note text`.

use std::collections::HashSet;
use std::fmt;

use zeroize::Zeroizing;

use super::keys::{
    ALG_COSIGNATURE_V1, Ed25519NoteKey, ed25519_verifies, format_vkey, key_id,
    parse_ed25519_key_string,
};
use super::{KeyKind, Note, NoteError, NoteSignature, check_key_name, check_text};

/// The signed message for a cosignature at `timestamp` over `checkpoint_text`.
fn message(timestamp: u64, checkpoint_text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_text}").into_bytes()
}

/// A valid cosignature found on a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness key name.
    pub witness: String,
    /// The witness key ID.
    pub key_id: u32,
    /// When the witness signed, POSIX seconds.
    pub timestamp: u64,
}

/// A witness public key (Ed25519, cosignature/v1).
#[derive(Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: [u8; 32],
}

impl CosignatureVerifier {
    /// Reads a witness vkey `name+hash+base64(0x04 ‖ 32-byte Ed25519 key)`.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let kind = KeyKind::VerifierKey;
        let (name, stated, key) = parse_ed25519_key_string(kind, vkey, ALG_COSIGNATURE_V1)?;
        let computed = key_id(&name, ALG_COSIGNATURE_V1, &key);
        if computed != stated {
            return Err(NoteError::KeyIdMismatch {
                kind,
                name,
                stated,
                computed,
            });
        }
        Ok(Self {
            name,
            key_id: computed,
            key,
        })
    }

    /// A witness key from its name and raw Ed25519 public key.
    pub fn ed25519(name: &str, key: [u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, ALG_COSIGNATURE_V1, &key),
            key,
        })
    }

    /// The witness key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID its cosignature lines carry.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The vkey string.
    pub fn vkey(&self) -> String {
        format_vkey(&self.name, self.key_id, ALG_COSIGNATURE_V1, &self.key)
    }

    /// Checks this witness's cosignature on `note`: `Ok(Some(timestamp))` if a line from this
    /// key verifies, `Ok(None)` if the note has no line from it, an error if a line from it is
    /// malformed or does not verify.
    pub fn verify(&self, note: &Note) -> Result<Option<u64>, NoteError> {
        let mut found = None;
        for line in note.signatures() {
            if line.name() != self.name || line.key_id() != self.key_id {
                continue;
            }
            let invalid = || NoteError::InvalidSignature {
                name: self.name.clone(),
                key_id: self.key_id,
            };
            let Some((time, signature)) = line.signature().split_first_chunk::<8>() else {
                return Err(self.length_error(line));
            };
            if signature.len() != 64 {
                return Err(self.length_error(line));
            }
            let timestamp = u64::from_be_bytes(*time);
            if !ed25519_verifies(&self.key, &message(timestamp, note.text()), signature) {
                return Err(invalid());
            }
            found = Some(timestamp);
        }
        Ok(found)
    }

    fn length_error(&self, line: &NoteSignature) -> NoteError {
        NoteError::CosignatureLength {
            name: self.name.clone(),
            key_id: self.key_id,
            len: line.signature().len(),
        }
    }
}

impl fmt::Debug for CosignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignatureVerifier({}+{:08x})", self.name, self.key_id)
    }
}

/// The valid cosignatures on `note` from the given witnesses, one per distinct witness key
/// (a key listed twice, or signing twice, counts once). A line from a listed witness that does
/// not verify is an error, as C2SP signed-note recommends for known keys.
///
/// This checks only cosignatures; verify the log's own signature with [`Note::verify`] or
/// [`super::SignedCheckpoint::verify`].
pub fn verify_cosignatures(
    note: &Note,
    witnesses: &[CosignatureVerifier],
) -> Result<Vec<Cosignature>, NoteError> {
    let mut seen = HashSet::new();
    let mut valid = Vec::new();
    for witness in witnesses {
        if !seen.insert(witness.key) {
            continue;
        }
        if let Some(timestamp) = witness.verify(note)? {
            valid.push(Cosignature {
                witness: witness.name.clone(),
                key_id: witness.key_id,
                timestamp,
            });
        }
    }
    Ok(valid)
}

/// A k-of-n witness policy: at least `threshold` distinct witnesses from `witnesses` cosigned.
pub fn require_cosignatures(
    note: &Note,
    witnesses: &[CosignatureVerifier],
    threshold: usize,
) -> Result<Vec<Cosignature>, NoteError> {
    let valid = verify_cosignatures(note, witnesses)?;
    if valid.len() < threshold {
        return Err(NoteError::NotEnoughCosignatures {
            got: valid.len(),
            need: threshold,
        });
    }
    Ok(valid)
}

/// A witness signing key (Ed25519, cosignature/v1).
pub struct CosignatureSigner(Ed25519NoteKey);

impl CosignatureSigner {
    /// Reads `PRIVATE+KEY+name+hash+base64(0x04 ‖ 32-byte seed)`.
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        Ed25519NoteKey::from_skey(skey, ALG_COSIGNATURE_V1).map(Self)
    }

    /// A new random witness key; returns the signer and its vkey.
    pub fn generate(name: &str) -> Result<(Self, String), NoteError> {
        let key = Ed25519NoteKey::generate(name, ALG_COSIGNATURE_V1)?;
        let vkey = key.vkey();
        Ok((Self(key), vkey))
    }

    /// The witness key name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The vkey string.
    pub fn vkey(&self) -> String {
        self.0.vkey()
    }

    /// The signer key string (secret).
    pub fn to_skey(&self) -> Zeroizing<String> {
        self.0.to_skey()
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Result<CosignatureVerifier, NoteError> {
        CosignatureVerifier::from_vkey(&self.vkey())
    }

    /// Cosigns a checkpoint note text at `timestamp` (POSIX seconds): the line to append.
    pub fn cosign(
        &self,
        checkpoint_text: &str,
        timestamp: u64,
    ) -> Result<NoteSignature, NoteError> {
        check_text(checkpoint_text)?;
        self.0.sign_line(
            &message(timestamp, checkpoint_text),
            &timestamp.to_be_bytes(),
        )
    }
}

impl fmt::Debug for CosignatureSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignatureSigner({:?})", self.0)
    }
}
