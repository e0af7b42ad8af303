//! Private keys: generating, reading (PKCS#8, cosign encrypted PEM), signing, writing.
//!
//! The key material lives inside aws-lc-rs objects, which AWS-LC wipes when they are freed;
//! every copy this module makes (PKCS#8 DER, PEM text, decrypted plaintext) is a `Zeroizing`
//! buffer. `Debug` shows the algorithm and key id only.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use der::Decode;
use der::asn1::ObjectIdentifier;
use pkcs8::PrivateKeyInfoRef;
use spki::SubjectPublicKeyInfoRef;
use zeroize::Zeroizing;

use super::public::{ec_algorithm, sha256_digest};
use super::{KeyAlgorithm, KeyError, PublicKey, SignatureError, SignedData, cosign, oid, pem};

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private key that signs.
pub struct SigningKey {
    inner: Inner,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.public.key_id().to_string())
            .finish_non_exhaustive()
    }
}

const PRIVATE_LABELS: &str = "'ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY', 'PRIVATE KEY' or 'RSA PRIVATE KEY'";
/// Size of generated RSA keys: NIST's recommendation through 2030.
const RSA_GENERATE: KeySize = KeySize::Rsa3072;

fn rejected(e: aws_lc_rs::error::KeyRejected) -> KeyError {
    KeyError::KeyRejected {
        what: "private key",
        reason: e.description_(),
    }
}

fn ecdsa_signing(alg: KeyAlgorithm) -> &'static lc::EcdsaSigningAlgorithm {
    match alg {
        KeyAlgorithm::EcdsaP384Sha384 => &lc::ECDSA_P384_SHA384_ASN1_SIGNING,
        _ => &lc::ECDSA_P256_SHA256_ASN1_SIGNING,
    }
}

impl SigningKey {
    /// Generates a fresh key. RSA keys are 3072 bits.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self, KeyError> {
        let failed = |_| KeyError::Crypto {
            operation: "generate a key",
        };
        let inner = match alg {
            KeyAlgorithm::EcdsaP256Sha256 | KeyAlgorithm::EcdsaP384Sha384 => {
                Inner::Ecdsa(EcdsaKeyPair::generate(ecdsa_signing(alg)).map_err(failed)?)
            }
            KeyAlgorithm::Ed25519 => Inner::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            KeyAlgorithm::RsaPkcs1Sha256 | KeyAlgorithm::RsaPssSha256 => {
                Inner::Rsa(RsaKeyPair::generate(RSA_GENERATE).map_err(failed)?)
            }
        };
        Self::from_inner(inner)?.with_algorithm(alg)
    }

    /// Reads a DER PKCS#8 `PrivateKeyInfo` / `OneAsymmetricKey` (RFC 5208, RFC 5958: v1 or
    /// v2). EC keys may or may not embed their public key. RSA keys verify as PKCS#1 v1.5 by
    /// default; see [`SigningKey::with_algorithm`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = PrivateKeyInfoRef::from_der(der).map_err(|source| not_pkcs8(der, source))?;
        let inner = match info.algorithm.oid {
            oid::EC_PUBLIC_KEY => {
                let curve: ObjectIdentifier = info
                    .algorithm
                    .parameters
                    .and_then(|params| params.decode_as().ok())
                    .ok_or(KeyError::UnsupportedCurve {
                        oid: "(missing or explicit curve parameters)".into(),
                    })?;
                let alg = ec_algorithm(curve)?;
                // The inner RFC 5915 ECPrivateKey; AWS-LC derives the public point if absent.
                let pair = EcdsaKeyPair::from_private_key_der(
                    ecdsa_signing(alg),
                    info.private_key.as_bytes(),
                )
                .map_err(rejected)?;
                if let Some(embedded) = info.public_key.and_then(|bits| bits.as_bytes()) {
                    if embedded != pair.public_key().as_ref() {
                        return Err(KeyError::KeyRejected {
                            what: "private key",
                            reason: "the embedded public key does not match the private key",
                        });
                    }
                }
                Inner::Ecdsa(pair)
            }
            // v1 and v2; a v2 public key is checked against the private key.
            oid::ED25519 => Inner::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?),
            // The inner PKCS#1 RSAPrivateKey, whatever the outer version.
            oid::RSA_ENCRYPTION => {
                Inner::Rsa(RsaKeyPair::from_der(info.private_key.as_bytes()).map_err(rejected)?)
            }
            other => {
                return Err(KeyError::UnsupportedAlgorithm {
                    oid: other.to_string(),
                });
            }
        };
        Self::from_inner(inner)
    }

    fn from_inner(inner: Inner) -> Result<Self, KeyError> {
        let spki: Result<PublicKeyX509Der<'static>, _> = match &inner {
            Inner::Ecdsa(pair) => pair.public_key().as_der(),
            Inner::Ed25519(pair) => pair.public_key().as_der(),
            Inner::Rsa(pair) => pair.public_key().as_der(),
        };
        let spki = spki.map_err(|_| KeyError::Crypto {
            operation: "encode the public key",
        })?;
        let public = PublicKey::from_spki_der(spki.as_ref())?;
        Ok(Self { inner, public })
    }

    /// Reads a private key PEM: cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` or legacy
    /// `ENCRYPTED COSIGN PRIVATE KEY` (password required; may be empty), or an unencrypted
    /// PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` (password ignored).
    pub fn from_pem(text: &[u8], password: Option<&[u8]>) -> Result<Self, KeyError> {
        let block = pem::decode_first(text)?;
        match block.label.as_str() {
            cosign::LABEL_SIGSTORE | cosign::LABEL_COSIGN => {
                let password = password.ok_or(KeyError::PasswordRequired)?;
                // SPECS §7.1: the plaintext must be PKCS#8; SEC1 is refused, as cosign does.
                Self::from_pkcs8_der(&cosign::decrypt(&block.der, password)?)
            }
            "PRIVATE KEY" => Self::from_pkcs8_der(&block.der),
            // PKCS#1 RSAPrivateKey (RFC 8017 §A.1.2): what in-toto and OpenSSL write for RSA.
            "RSA PRIVATE KEY" => Self::from_inner(Inner::Rsa(
                RsaKeyPair::from_der(&block.der).map_err(rejected)?,
            )),
            "EC PRIVATE KEY" => Err(KeyError::Sec1NotPkcs8),
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(KeyError::PublicKeyNotPrivate),
            label => Err(KeyError::UnsupportedPemLabel {
                label: label.to_string(),
                expected: PRIVATE_LABELS,
            }),
        }
    }

    /// Whether `text` is a cosign encrypted key, i.e. whether [`SigningKey::from_pem`] needs a
    /// password for it.
    pub fn is_encrypted_pem(text: &[u8]) -> bool {
        matches!(
            pem::first_label(text).as_deref(),
            Some(cosign::LABEL_SIGSTORE | cosign::LABEL_COSIGN)
        )
    }

    /// The same key signing with another algorithm. Only RSA keys may switch, between
    /// PKCS#1 v1.5 and PSS.
    pub fn with_algorithm(mut self, algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        self.public = self.public.with_algorithm(algorithm)?;
        Ok(self)
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.public.algorithm()
    }

    /// Signs `data`. ECDSA signatures are ASN.1 DER, as Sigstore and cosign write them.
    pub fn sign(&self, data: SignedData<'_>) -> Result<Vec<u8>, KeyError> {
        let algorithm = self.algorithm();
        let failed = |_| KeyError::Crypto { operation: "sign" };
        let digest = match data {
            SignedData::Message(_) => None,
            SignedData::Sha256Digest(digest) => {
                Some(sha256_digest(algorithm, digest).map_err(|e| match e {
                    SignatureError::PrehashUnsupported => {
                        KeyError::PrehashUnsupported { algorithm }
                    }
                    _ => KeyError::Crypto {
                        operation: "import the digest",
                    },
                })?)
            }
        };
        match (&self.inner, data, digest) {
            (Inner::Ecdsa(pair), SignedData::Message(message), _) => Ok(pair
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            (Inner::Ecdsa(pair), _, Some(digest)) => {
                Ok(pair.sign_digest(&digest).map_err(failed)?.as_ref().to_vec())
            }
            (Inner::Ed25519(pair), SignedData::Message(message), _) => {
                Ok(pair.sign(message).as_ref().to_vec())
            }
            (Inner::Rsa(pair), data, digest) => {
                let padding: &'static dyn lc::RsaEncoding = match algorithm {
                    KeyAlgorithm::RsaPssSha256 => &lc::RSA_PSS_SHA256,
                    _ => &lc::RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0u8; pair.public_modulus_len()];
                match (data, digest) {
                    (SignedData::Message(message), _) => pair
                        .sign(padding, &SystemRandom::new(), message, &mut signature)
                        .map_err(failed)?,
                    (_, Some(digest)) => pair
                        .sign_digest(padding, &digest, &mut signature)
                        .map_err(failed)?,
                    _ => return Err(KeyError::Crypto { operation: "sign" }),
                }
                Ok(signature)
            }
            // Prehashed data for Ed25519 was refused above; nothing else reaches here.
            _ => Err(KeyError::PrehashUnsupported { algorithm }),
        }
    }

    /// The key as DER PKCS#8 v1 (RFC 5208), the form cosign encrypts.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let failed = |_| KeyError::Crypto {
            operation: "encode the private key",
        };
        let der = match &self.inner {
            Inner::Ecdsa(pair) => {
                Zeroizing::new(pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec())
            }
            Inner::Ed25519(pair) => {
                Zeroizing::new(pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec())
            }
            Inner::Rsa(pair) => {
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(failed)?;
                Zeroizing::new(der.as_ref().to_vec())
            }
        };
        Ok(der)
    }

    /// cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`): scrypt N=65536 r=8 p=1 with a
    /// fresh 32-byte salt, NaCl secretbox with a fresh 24-byte nonce.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, KeyError> {
        let body = cosign::encrypt(&self.to_pkcs8_der()?, password, cosign::WRITE_LOG_N)?;
        Ok(pem::encode(cosign::LABEL_SIGSTORE, &body))
    }

    /// Unencrypted PKCS#8 `PRIVATE KEY` PEM. Only for an explicit, dangerously named CLI flag.
    pub fn to_unencrypted_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        Ok(pem::encode_secret("PRIVATE KEY", &self.to_pkcs8_der()?))
    }
}

/// Why DER that is not PKCS#8 was refused: SEC1 and public keys get their own reasons.
fn not_pkcs8(der: &[u8], source: der::Error) -> KeyError {
    if sec1::EcPrivateKey::from_der(der).is_ok() {
        KeyError::Sec1NotPkcs8
    } else if SubjectPublicKeyInfoRef::from_der(der).is_ok() {
        KeyError::PublicKeyNotPrivate
    } else {
        KeyError::MalformedDer {
            what: "PKCS#8 private key",
            source,
        }
    }
}
