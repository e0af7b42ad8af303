//! Public keys: parsing SPKI and PKCS#1, and verifying signatures.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest::{self as lc_digest, Digest};
use aws_lc_rs::signature::{
    self as lc, ParsedPublicKey, RsaParameters, UnparsedPublicKey, VerificationAlgorithm,
};
use der::asn1::{AnyRef, BitString, ObjectIdentifier, UintRef};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};

use super::{KeyAlgorithm, KeyError, KeyId, SignatureError, SignedData, oid, pem};
use crate::digest::Sha256Digest;

/// A public key that verifies signatures.
///
/// Holds the DER SubjectPublicKeyInfo it was read from (so the [`KeyId`] is over the bytes the
/// key was published as) and the algorithm it verifies with. For RSA keys the padding is not
/// in the SPKI: it defaults to PKCS#1 v1.5; choose PSS with [`PublicKey::with_algorithm`].
#[derive(Clone)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    spki: Arc<[u8]>,
    /// The key material aws-lc-rs verifies with: an uncompressed EC point, 32 raw Ed25519
    /// bytes, or a DER PKCS#1 `RSAPublicKey`.
    raw: Arc<[u8]>,
    rsa_bits: Option<u32>,
    key_id: KeyId,
    /// `raw` parsed once by aws-lc-rs for the algorithm's primary verifier (ECDSA: ASN.1 DER
    /// signatures; Ed25519; RSA: the padding `algorithm` names), so that verifying does not
    /// parse and validate the key again. `None` after switching to an algorithm it was not
    /// parsed for (then `raw` is parsed per verification, as before).
    parsed: Option<Arc<ParsedPublicKey>>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id.to_string())
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.spki == other.spki
    }
}

impl Eq for PublicKey {}

const LABELS: &str = "'PUBLIC KEY' or 'RSA PUBLIC KEY'";

impl PublicKey {
    /// Reads the first PEM block: `PUBLIC KEY` (SPKI) or PKCS#1 `RSA PUBLIC KEY`.
    pub fn from_pem(text: &[u8]) -> Result<Self, KeyError> {
        let block = pem::decode_first(text)?;
        match block.label.as_str() {
            "PUBLIC KEY" => Self::from_spki_der(&block.der),
            "RSA PUBLIC KEY" => Self::from_pkcs1_der(&block.der),
            label if label.ends_with("PRIVATE KEY") => Err(KeyError::PrivateKeyNotPublic),
            label => Err(KeyError::UnsupportedPemLabel {
                label: label.to_string(),
                expected: LABELS,
            }),
        }
    }

    /// Reads a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki =
            SubjectPublicKeyInfoRef::from_der(der).map_err(|source| KeyError::MalformedDer {
                what: "public key (SubjectPublicKeyInfo)",
                source,
            })?;
        let raw = spki
            .subject_public_key
            .as_bytes()
            .ok_or(KeyError::KeyRejected {
                what: "public key",
                reason: "the public key BIT STRING has unused bits",
            })?;
        let algorithm = spki_algorithm(spki.algorithm.oid, spki.algorithm.parameters)?;
        let (rsa_bits, parsed) = check_key_material(algorithm, raw)?;
        Ok(Self {
            algorithm,
            spki: der.into(),
            raw: raw.into(),
            rsa_bits,
            key_id: KeyId(Sha256Digest::of(der).0),
            parsed: Some(Arc::new(parsed)),
        })
    }

    /// Reads a DER PKCS#1 `RSAPublicKey` (RFC 8017 §A.1.1), wrapping it in an SPKI.
    fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let malformed = |source| KeyError::MalformedDer {
            what: "RSA public key (PKCS#1)",
            source,
        };
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: oid::RSA_ENCRYPTION,
                parameters: Some(der::Any::null()),
            },
            subject_public_key: BitString::from_bytes(der).map_err(malformed)?,
        };
        Self::from_spki_der(&spki.to_der().map_err(malformed)?)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// `-----BEGIN PUBLIC KEY-----` PEM, 64 columns, trailing newline (what cosign writes).
    pub fn to_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.spki)
    }

    /// The algorithm this key verifies with.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The modulus size in bits, for RSA keys.
    pub fn rsa_bits(&self) -> Option<u32> {
        self.rsa_bits
    }

    /// The Sigstore `PublicKeyDetails` name for this exact key (SPECS §4.1); `None` for RSA
    /// sizes Sigstore has no name for (other than 2048, 3072, 4096 bits).
    pub fn sigstore_key_details(&self) -> Option<&'static str> {
        let (pkcs1, pss) = match self.rsa_bits {
            None => return Some(self.algorithm.sigstore_key_details()),
            Some(2048) => ("PKIX_RSA_PKCS1V15_2048_SHA256", "PKIX_RSA_PSS_2048_SHA256"),
            Some(3072) => ("PKIX_RSA_PKCS1V15_3072_SHA256", "PKIX_RSA_PSS_3072_SHA256"),
            Some(4096) => ("PKIX_RSA_PKCS1V15_4096_SHA256", "PKIX_RSA_PSS_4096_SHA256"),
            Some(_) => return None,
        };
        Some(if self.algorithm == KeyAlgorithm::RsaPssSha256 {
            pss
        } else {
            pkcs1
        })
    }

    /// The same key verifying with another algorithm. Only RSA keys may switch, between
    /// PKCS#1 v1.5 and PSS; anything else is refused.
    pub fn with_algorithm(mut self, algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        if algorithm != self.algorithm && !(algorithm.is_rsa() && self.algorithm.is_rsa()) {
            return Err(KeyError::AlgorithmMismatch {
                key: self.algorithm,
                requested: algorithm,
            });
        }
        if algorithm != self.algorithm {
            self.parsed = None; // parsed for the other RSA padding
        }
        self.algorithm = algorithm;
        Ok(self)
    }

    /// Verifies `signature` over `data`.
    ///
    /// ECDSA signatures may be ASN.1 DER (Sigstore, cosign) or fixed-width `r‖s` (the DSSE
    /// spec vector, JOSE); both are tried, and either verifying is a valid signature.
    pub fn verify(&self, data: SignedData<'_>, signature: &[u8]) -> Result<(), SignatureError> {
        let alg = self.algorithm;
        if let SignedData::Sha256Digest(_) = data {
            if matches!(alg, KeyAlgorithm::Ed25519 | KeyAlgorithm::EcdsaP384Sha384) {
                return Err(SignatureError::PrehashUnsupported);
            }
        }
        let (der_alg, fixed_alg, fixed_len): (&'static dyn VerificationAlgorithm, _, _) = match alg
        {
            KeyAlgorithm::EcdsaP256Sha256 => (
                &lc::ECDSA_P256_SHA256_ASN1,
                &lc::ECDSA_P256_SHA256_FIXED,
                64,
            ),
            KeyAlgorithm::EcdsaP384Sha384 => (
                &lc::ECDSA_P384_SHA384_ASN1,
                &lc::ECDSA_P384_SHA384_FIXED,
                96,
            ),
            KeyAlgorithm::Ed25519 => {
                if signature.len() != 64 {
                    return Err(malformed(
                        alg,
                        signature,
                        "an Ed25519 signature is 64 bytes",
                    ));
                }
                return self.check(&lc::ED25519, true, data, signature);
            }
            KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256 => {
                let modulus_len = self.rsa_bits.unwrap_or(0).div_ceil(8) as usize;
                if signature.len() != modulus_len {
                    return Err(malformed(
                        alg,
                        signature,
                        "an RSA signature is as long as the key's modulus",
                    ));
                }
                let result = self.check(rsa_params(alg), true, data, signature);
                if alg == KeyAlgorithm::RsaPssSha256 && result.is_err() {
                    // RFC 8017 §9.1: the salt length is the signer's choice. Signers use the
                    // digest length (aws-lc, securesystemslib) or the maximum (Go's and older
                    // pyca defaults); securesystemslib verifies with PSS.AUTO, so accept both.
                    return self.check(&RSA_PSS_MAX_SALT, false, data, signature);
                }
                return result;
            }
        };
        let is_der = is_der_ecdsa_signature(signature);
        if !is_der && signature.len() != fixed_len {
            return Err(malformed(
                alg,
                signature,
                "an ECDSA signature is ASN.1 DER or fixed-width r||s",
            ));
        }
        if is_der {
            match self.check(der_alg, true, data, signature) {
                Err(SignatureError::Invalid) => {}
                result => return result,
            }
        }
        if signature.len() == fixed_len {
            return self.check(fixed_alg, false, data, signature);
        }
        Err(SignatureError::Invalid)
    }

    /// ECDSA P-384 over a SHA-256 digest: how sigstore-python (`ECDSA(Prehashed(SHA256))`) and
    /// cosign sign artifacts with P-384 Fulcio keys, the bundle's `messageDigest` being SHA2_256.
    /// DER signatures only (the form Sigstore bundles carry).
    pub fn verify_p384_over_sha256(
        &self,
        digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        if self.algorithm != KeyAlgorithm::EcdsaP384Sha384 {
            return Err(SignatureError::PrehashUnsupported);
        }
        let digest = Digest::import_less_safe(digest, &lc_digest::SHA256)
            .map_err(|_| SignatureError::Invalid)?;
        UnparsedPublicKey::new(&lc::ECDSA_P384_SHA256_ASN1, &self.raw[..])
            .verify_digest(&digest, signature)
            .map_err(|_| SignatureError::Invalid)
    }

    /// `primary`: `verifier` is the algorithm's primary verifier, the one `parsed` is for.
    fn check(
        &self,
        verifier: &'static dyn VerificationAlgorithm,
        primary: bool,
        data: SignedData<'_>,
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        // The key parsed at load time if `verifier` is the one it was parsed for; otherwise
        // parse `raw` now.
        if let (true, Some(parsed)) = (primary, &self.parsed) {
            let result = match data {
                SignedData::Message(message) => parsed.verify_sig(message, signature),
                SignedData::Sha256Digest(digest) => {
                    parsed.verify_digest_sig(&sha256_digest(self.algorithm, digest)?, signature)
                }
            };
            return result.map_err(|_| SignatureError::Invalid);
        }
        let key = UnparsedPublicKey::new(verifier, &self.raw[..]);
        let result = match data {
            SignedData::Message(message) => key.verify(message, signature),
            SignedData::Sha256Digest(digest) => {
                key.verify_digest(&sha256_digest(self.algorithm, digest)?, signature)
            }
        };
        result.map_err(|_| SignatureError::Invalid)
    }
}

/// Imports a prehashed SHA-256 digest for an algorithm that signs SHA-256 digests.
pub(crate) fn sha256_digest(
    algorithm: KeyAlgorithm,
    digest: &[u8; 32],
) -> Result<Digest, SignatureError> {
    match algorithm {
        KeyAlgorithm::Ed25519 | KeyAlgorithm::EcdsaP384Sha384 => {
            Err(SignatureError::PrehashUnsupported)
        }
        _ => Digest::import_less_safe(digest, &lc_digest::SHA256)
            .map_err(|_| SignatureError::Invalid),
    }
}

/// RSA-PSS SHA-256 with the longest salt the modulus allows.
static RSA_PSS_MAX_SALT: RsaParameters =
    lc::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(lc::RsaPssSaltLength::Max);

pub(crate) fn rsa_params(algorithm: KeyAlgorithm) -> &'static RsaParameters {
    match algorithm {
        KeyAlgorithm::RsaPssSha256 => &lc::RSA_PSS_2048_8192_SHA256,
        _ => &lc::RSA_PKCS1_2048_8192_SHA256,
    }
}

/// Whether `signature` is a DER `SEQUENCE { INTEGER r, INTEGER s }` (RFC 3279 §2.2.3).
fn is_der_ecdsa_signature(signature: &[u8]) -> bool {
    matches!(Vec::<UintRef<'_>>::from_der(signature), Ok(ints) if ints.len() == 2)
}

/// Malformed, or a plausible signature of some other algorithm.
fn malformed(algorithm: KeyAlgorithm, signature: &[u8], reason: &'static str) -> SignatureError {
    let looks_like = match signature.len() {
        _ if algorithm.is_rsa() && is_der_ecdsa_signature(signature) => {
            Some("an ECDSA signature (ASN.1 DER)")
        }
        64 if algorithm != KeyAlgorithm::Ed25519 => {
            Some("an Ed25519 or P-256 r||s signature (64 bytes)")
        }
        256 | 384 | 512 if !algorithm.is_rsa() => Some("an RSA signature"),
        _ => None,
    };
    match looks_like {
        Some(looks_like) => SignatureError::WrongAlgorithm {
            key: algorithm,
            looks_like,
        },
        None => SignatureError::Malformed { algorithm, reason },
    }
}

/// The algorithm named by an SPKI AlgorithmIdentifier (RFC 5480, RFC 8410, RFC 8017).
fn spki_algorithm(
    algorithm: ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
) -> Result<KeyAlgorithm, KeyError> {
    let malformed = |source| KeyError::MalformedDer {
        what: "public key algorithm parameters",
        source,
    };
    match algorithm {
        oid::EC_PUBLIC_KEY => {
            let curve: ObjectIdentifier = parameters
                .ok_or(KeyError::UnsupportedCurve {
                    oid: "(none: explicit or missing curve parameters)".into(),
                })?
                .decode_as()
                .map_err(|_| KeyError::UnsupportedCurve {
                    oid: "(explicit curve parameters)".into(),
                })?;
            ec_algorithm(curve)
        }
        // RFC 8410 §3: parameters MUST be absent.
        oid::ED25519 if parameters.is_some() => Err(KeyError::KeyRejected {
            what: "Ed25519 public key",
            reason: "algorithm parameters must be absent",
        }),
        oid::ED25519 => Ok(KeyAlgorithm::Ed25519),
        oid::RSA_ENCRYPTION => {
            // RFC 8017 §A.1: parameters SHALL be NULL (tolerate absent, as Go does).
            if let Some(params) = parameters {
                params.decode_as::<der::asn1::Null>().map_err(malformed)?;
            }
            Ok(KeyAlgorithm::RsaPkcs1Sha256)
        }
        other => Err(KeyError::UnsupportedAlgorithm {
            oid: other.to_string(),
        }),
    }
}

pub(crate) fn ec_algorithm(curve: ObjectIdentifier) -> Result<KeyAlgorithm, KeyError> {
    match curve {
        oid::SECP256R1 => Ok(KeyAlgorithm::EcdsaP256Sha256),
        oid::SECP384R1 => Ok(KeyAlgorithm::EcdsaP384Sha384),
        other => Err(KeyError::UnsupportedCurve {
            oid: other.to_string(),
        }),
    }
}

/// Validates the raw key with aws-lc-rs (point on curve, RSA modulus sane); returns the RSA
/// bits and the key parsed for the algorithm's primary verifier.
fn check_key_material(
    algorithm: KeyAlgorithm,
    raw: &[u8],
) -> Result<(Option<u32>, ParsedPublicKey), KeyError> {
    let rejected = |e: aws_lc_rs::error::KeyRejected| KeyError::KeyRejected {
        what: "public key",
        reason: e.description_(),
    };
    let (verifier, point_len): (&'static dyn VerificationAlgorithm, _) = match algorithm {
        KeyAlgorithm::EcdsaP256Sha256 => (&lc::ECDSA_P256_SHA256_ASN1, 65),
        KeyAlgorithm::EcdsaP384Sha384 => (&lc::ECDSA_P384_SHA384_ASN1, 97),
        KeyAlgorithm::Ed25519 => (&lc::ED25519, 32),
        KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256 => {
            let bits =
                RsaParameters::public_modulus_len(raw).map_err(|_| KeyError::KeyRejected {
                    what: "RSA public key",
                    reason: "not a PKCS#1 RSAPublicKey",
                })?;
            if !(2048..=8192).contains(&bits) {
                return Err(KeyError::RsaKeySize { bits });
            }
            let parsed = ParsedPublicKey::new(rsa_params(algorithm), raw).map_err(rejected)?;
            return Ok((Some(bits), parsed));
        }
    };
    // Uncompressed points only (0x04 ‖ X ‖ Y), as Go's x509 requires: one encoding per key,
    // so one key ID per key.
    let uncompressed = algorithm == KeyAlgorithm::Ed25519 || raw.first() == Some(&0x04);
    if raw.len() != point_len || !uncompressed {
        return Err(KeyError::KeyRejected {
            what: "public key",
            reason: "wrong length or compressed point",
        });
    }
    let parsed = ParsedPublicKey::new(verifier, raw).map_err(rejected)?;
    Ok((None, parsed))
}
