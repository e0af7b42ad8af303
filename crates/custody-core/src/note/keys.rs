//! Note signing and verification keys: the C2SP / golang `vkey` and `skey` encodings for
//! Ed25519, and ECDSA P-256 keys given as DER SubjectPublicKeyInfo (Rekor v1, sigstore roots).

use std::fmt;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ED25519, Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
    UnparsedPublicKey,
};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::{KeyKind, NoteError, NoteSignature, check_key_name, check_text, is_valid_key_name};
use crate::encoding::{base64_decode_strict, base64_encode};

/// C2SP signed-note signature type: Ed25519 over the note text.
pub(crate) const ALG_ED25519: u8 = 0x01;
/// C2SP tlog-cosignature signature type: timestamped Ed25519 cosignature.
pub(crate) const ALG_COSIGNATURE_V1: u8 = 0x04;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4: no parameters), before the key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// C2SP signed-note recommended key ID: `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`.
pub(crate) fn key_id(name: &str, algorithm: u8, key: &[u8]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', algorithm])
        .chain_update(key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// `name+hash+base64(type ‖ key)`, checked: known type, 32-byte key, matching key ID.
pub(crate) fn parse_ed25519_key_string(
    kind: KeyKind,
    text: &str,
    algorithm: u8,
) -> Result<(String, u32, [u8; 32]), NoteError> {
    let expected = match kind {
        KeyKind::VerifierKey => "<name>+<8 hex digits>+<base64 key>",
        KeyKind::SignerKey => "PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>",
    };
    let format = NoteError::KeyFormat { kind, expected };
    let (name, rest) = text.split_once('+').ok_or(format.clone())?;
    let (hash, b64) = rest.split_once('+').ok_or(format.clone())?;
    if hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || !is_valid_key_name(name) {
        return Err(format);
    }
    let stated = u32::from_str_radix(hash, 16).map_err(|_| format.clone())?;
    let blob = base64_decode_strict(b64).map_err(|_| format.clone())?;
    let Some((&found, key)) = blob.split_first() else {
        return Err(format);
    };
    if found != algorithm {
        return Err(NoteError::KeyAlgorithm {
            kind,
            name: name.to_owned(),
            algorithm: found,
        });
    }
    let key: [u8; 32] = key.try_into().map_err(|_| NoteError::KeyLength {
        kind,
        name: name.to_owned(),
        len: key.len(),
    })?;
    Ok((name.to_owned(), stated, key))
}

/// An Ed25519 note key with its signature type byte (0x01 signed note, 0x04 cosignature/v1):
/// the one implementation behind [`NoteSigner`] and
/// [`CosignatureSigner`](super::cosignature::CosignatureSigner).
pub(crate) struct Ed25519NoteKey {
    name: String,
    key_id: u32,
    algorithm: u8,
    pair: Ed25519KeyPair,
    seed: Zeroizing<[u8; 32]>,
}

impl Ed25519NoteKey {
    /// Reads an skey: `PRIVATE+KEY+name+hash+base64(type ‖ seed)`, checking that the hash
    /// matches the public key.
    pub(crate) fn from_skey(skey: &str, algorithm: u8) -> Result<Self, NoteError> {
        let kind = KeyKind::SignerKey;
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::KeyFormat {
                kind,
                expected: "PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>",
            })?;
        let (name, stated, seed) = parse_ed25519_key_string(kind, rest, algorithm)?;
        let key = Self::from_seed(name, algorithm, Zeroizing::new(seed))?;
        if key.key_id != stated {
            return Err(NoteError::KeyIdMismatch {
                kind,
                name: key.name,
                stated,
                computed: key.key_id,
            });
        }
        Ok(key)
    }

    /// A new random key named `name`.
    pub(crate) fn generate(name: &str, algorithm: u8) -> Result<Self, NoteError> {
        check_key_name(name)?;
        Self::from_seed(name.to_owned(), algorithm, random_seed()?)
    }

    fn from_seed(
        name: String,
        algorithm: u8,
        seed: Zeroizing<[u8; 32]>,
    ) -> Result<Self, NoteError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
            .map_err(|_| NoteError::SigningKey)?;
        let key_id = key_id(&name, algorithm, pair.public_key().as_ref());
        Ok(Self {
            name,
            key_id,
            algorithm,
            pair,
            seed,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn key_id(&self) -> u32 {
        self.key_id
    }

    pub(crate) fn vkey(&self) -> String {
        format_vkey(
            &self.name,
            self.key_id,
            self.algorithm,
            self.pair.public_key().as_ref(),
        )
    }

    pub(crate) fn to_skey(&self) -> Zeroizing<String> {
        format_skey(&self.name, self.key_id, self.algorithm, &self.seed)
    }

    /// Signs `message`, returning the signature line with `prefix` before the signature bytes
    /// (cosignatures carry an 8-byte timestamp there).
    pub(crate) fn sign_line(
        &self,
        message: &[u8],
        prefix: &[u8],
    ) -> Result<NoteSignature, NoteError> {
        let signature = self
            .pair
            .try_sign(message)
            .map_err(|_| NoteError::SigningKey)?;
        let mut blob = Vec::with_capacity(prefix.len() + 64);
        blob.extend_from_slice(prefix);
        blob.extend_from_slice(signature.as_ref());
        Ok(NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature: blob,
        })
    }
}

impl fmt::Debug for Ed25519NoteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:08x}", self.name, self.key_id)
    }
}

/// A fresh random Ed25519 seed.
pub(crate) fn random_seed() -> Result<Zeroizing<[u8; 32]>, NoteError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(seed.as_mut())
        .map_err(|_| NoteError::Random)?;
    Ok(seed)
}

pub(crate) fn format_vkey(name: &str, key_id: u32, algorithm: u8, key: &[u8]) -> String {
    let mut blob = vec![algorithm];
    blob.extend_from_slice(key);
    format!("{name}+{key_id:08x}+{}", base64_encode(&blob))
}

pub(crate) fn format_skey(
    name: &str,
    key_id: u32,
    algorithm: u8,
    seed: &[u8; 32],
) -> Zeroizing<String> {
    let mut blob = Zeroizing::new(vec![algorithm]);
    blob.extend_from_slice(seed);
    Zeroizing::new(format!(
        "PRIVATE+KEY+{name}+{key_id:08x}+{}",
        base64_encode(&blob)
    ))
}

pub(crate) fn ed25519_verifies(key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message, signature)
        .is_ok()
}

#[derive(Clone)]
enum VerifierKey {
    Ed25519([u8; 32]),
    /// Verifies ASN.1 DER ECDSA signatures over SHA-256 of the note text.
    EcdsaP256(ParsedPublicKey),
}

/// A key trusted to sign notes: a (name, key ID) pair and the public key.
#[derive(Clone)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    key: VerifierKey,
}

impl NoteVerifier {
    /// Reads a C2SP / golang verifier key `name+hash+base64(0x01 ‖ 32-byte Ed25519 key)`,
    /// refusing unknown types, wrong lengths and a key ID that does not match the key.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let kind = KeyKind::VerifierKey;
        let (name, stated, key) = parse_ed25519_key_string(kind, vkey, ALG_ED25519)?;
        let computed = key_id(&name, ALG_ED25519, &key);
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
            key: VerifierKey::Ed25519(key),
        })
    }

    /// An Ed25519 key under `name`; key ID `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]`.
    pub fn ed25519(name: &str, key: [u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key_id = key_id(name, ALG_ED25519, &key);
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key: VerifierKey::Ed25519(key),
        })
    }

    /// An ECDSA P-256 key from its DER SubjectPublicKeyInfo under `name`; key ID
    /// `SHA-256(SPKI DER)[:4]`, as Rekor v1 checkpoints and sigstore trusted roots use.
    pub fn ecdsa_p256(name: &str, spki_der: &[u8]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let unsupported = || NoteError::UnsupportedPublicKey {
            name: name.to_owned(),
        };
        // aws-lc parses the SPKI and checks the curve; also refuse a bare point, which it accepts.
        if spki_der.first() != Some(&0x30) {
            return Err(unsupported());
        }
        let key =
            ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki_der).map_err(|_| unsupported())?;
        let digest = Sha256::digest(spki_der);
        let key_id = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key: VerifierKey::EcdsaP256(key),
        })
    }

    /// A key from a DER SubjectPublicKeyInfo, as `trusted_root.json` carries it
    /// (`publicKey.rawBytes`): Ed25519 (Rekor v2) or ECDSA P-256 (Rekor v1).
    pub fn from_spki(name: &str, spki_der: &[u8]) -> Result<Self, NoteError> {
        match spki_der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            Some(key) => match <[u8; 32]>::try_from(key) {
                Ok(key) => Self::ed25519(name, key),
                Err(_) => Err(NoteError::UnsupportedPublicKey {
                    name: name.to_owned(),
                }),
            },
            None => Self::ecdsa_p256(name, spki_der),
        }
    }

    /// The key name signature lines must carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID signature lines must carry.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The vkey string, for Ed25519 keys.
    pub fn vkey(&self) -> Option<String> {
        match &self.key {
            VerifierKey::Ed25519(key) => {
                Some(format_vkey(&self.name, self.key_id, ALG_ED25519, key))
            }
            VerifierKey::EcdsaP256(_) => None,
        }
    }

    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            VerifierKey::Ed25519(key) => ed25519_verifies(key, message, signature),
            VerifierKey::EcdsaP256(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = match self.key {
            VerifierKey::Ed25519(_) => "Ed25519",
            VerifierKey::EcdsaP256(_) => "ECDSA P-256",
        };
        write!(
            f,
            "NoteVerifier({}+{:08x}, {algorithm})",
            self.name, self.key_id
        )
    }
}

/// An Ed25519 note signing key.
pub struct NoteSigner(Ed25519NoteKey);

impl NoteSigner {
    /// Reads golang's signer key `PRIVATE+KEY+name+hash+base64(0x01 ‖ 32-byte seed)`.
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        Ed25519NoteKey::from_skey(skey, ALG_ED25519).map(Self)
    }

    /// A new random key named `name`; returns the signer and its vkey.
    pub fn generate(name: &str) -> Result<(Self, String), NoteError> {
        let key = Ed25519NoteKey::generate(name, ALG_ED25519)?;
        let vkey = key.vkey();
        Ok((Self(key), vkey))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.0.key_id()
    }

    /// The verifier key string for this signer.
    pub fn vkey(&self) -> String {
        self.0.vkey()
    }

    /// The signer key string, to store (it is secret).
    pub fn to_skey(&self) -> Zeroizing<String> {
        self.0.to_skey()
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Result<NoteVerifier, NoteError> {
        NoteVerifier::from_vkey(&self.vkey())
    }

    /// Signs note text (non-empty, newline-terminated, no other control characters).
    pub fn sign(&self, text: &str) -> Result<NoteSignature, NoteError> {
        check_text(text)?;
        self.0.sign_line(text.as_bytes(), &[])
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSigner({:?})", self.0)
    }
}
