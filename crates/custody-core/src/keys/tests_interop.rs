//! Interop with the OpenSSL CLI, and the PKCS#8 / SPKI shapes other tools write.

use std::path::{Path, PathBuf};
use std::process::Command;

use der::asn1::{BitStringRef, OctetStringRef, UintRef};
use der::{Decode, Encode};
use pkcs8::PrivateKeyInfoRef;

use super::tests::read;
use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("custody-keys-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs openssl; true if it exits 0. Panics if openssl is missing: this test needs it.
fn openssl(dir: &Path, args: &[&str]) -> bool {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the openssl CLI is needed for interop tests: {e}"));
    out.status.success()
}

#[test]
fn signatures_interoperate_with_the_openssl_cli() {
    let dir = TempDir::new("openssl");
    let msg = dir.write("msg", b"an artifact, signed by custody");
    let bad = dir.write("bad", b"an artifact, signed by custodY");

    // ECDSA P-256, DER signature: what cosign writes.
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let pub_pem = dir.write("ec.pub", key.public_key().to_pem().as_bytes());
    let sig = dir.write(
        "ec.sig",
        &key.sign(SignedData::Message(b"an artifact, signed by custody"))
            .unwrap(),
    );
    assert!(openssl(
        &dir.0,
        &[
            "dgst",
            "-sha256",
            "-verify",
            &pub_pem,
            "-signature",
            &sig,
            &msg
        ]
    ));
    assert!(!openssl(
        &dir.0,
        &[
            "dgst",
            "-sha256",
            "-verify",
            &pub_pem,
            "-signature",
            &sig,
            &bad
        ]
    ));

    // The other way: openssl signs with our unencrypted PKCS#8 PEM, we verify.
    let key_pem = dir.write("ec.key", key.to_unencrypted_pem().unwrap().as_bytes());
    let their_sig = dir.0.join("theirs.sig");
    let their_sig_arg = their_sig.to_string_lossy().into_owned();
    assert!(openssl(
        &dir.0,
        &[
            "dgst",
            "-sha256",
            "-sign",
            &key_pem,
            "-out",
            &their_sig_arg,
            &msg
        ]
    ));
    let their_sig = std::fs::read(&their_sig).unwrap();
    key.public_key()
        .verify(
            SignedData::Message(b"an artifact, signed by custody"),
            &their_sig,
        )
        .unwrap();

    // RSA-PSS with a digest-length salt, and Ed25519.
    let rsa = SigningKey::from_pem(
        &read("in-toto-python/pems/rsa_private_unencrypted.pem"),
        None,
    )
    .unwrap()
    .with_algorithm(KeyAlgorithm::RsaPssSha256)
    .unwrap();
    let rsa_pub = dir.write("rsa.pub", rsa.public_key().to_pem().as_bytes());
    let rsa_sig = dir.write(
        "rsa.sig",
        &rsa.sign(SignedData::Message(b"an artifact, signed by custody"))
            .unwrap(),
    );
    let pss = [
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:digest",
    ];
    let args = [
        &["dgst", "-sha256"][..],
        &pss,
        &["-verify", &rsa_pub, "-signature", &rsa_sig, &msg],
    ]
    .concat();
    assert!(openssl(&dir.0, &args));

    let ed = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let ed_pub = dir.write("ed.pub", ed.public_key().to_pem().as_bytes());
    let ed_sig = dir.write(
        "ed.sig",
        &ed.sign(SignedData::Message(b"an artifact, signed by custody"))
            .unwrap(),
    );
    let args = [
        "pkeyutl", "-verify", "-pubin", "-inkey", &ed_pub, "-rawin", "-in", &msg, "-sigfile",
        &ed_sig,
    ];
    assert!(openssl(&dir.0, &args));
}

/// Re-wraps an EC PKCS#8 with its inner ECPrivateKey's public key dropped, and optionally an
/// outer (PKCS#8 v2) public key added.
fn reshape_ec_pkcs8(pkcs8: &[u8], outer_public: Option<&[u8]>) -> Vec<u8> {
    let info = PrivateKeyInfoRef::from_der(pkcs8).unwrap();
    let mut inner = sec1::EcPrivateKey::from_der(info.private_key.as_bytes()).unwrap();
    inner.public_key = None;
    let inner = inner.to_der().unwrap();
    let mut reshaped = PrivateKeyInfoRef::new(info.algorithm, OctetStringRef::new(&inner).unwrap());
    reshaped.public_key = outer_public.map(|point| BitStringRef::from_bytes(point).unwrap());
    reshaped.to_der().unwrap()
}

#[test]
fn pkcs8_v1_and_v2_with_and_without_public_keys_are_read() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let public = key.public_key();
    let point = &public.spki_der()[26..]; // P-256 SPKI = 26-byte header ‖ 65-byte point

    let without = reshape_ec_pkcs8(&pkcs8, None);
    assert_eq!(
        SigningKey::from_pkcs8_der(&without).unwrap().public_key(),
        key.public_key()
    );
    let v2 = reshape_ec_pkcs8(&pkcs8, Some(point));
    assert_eq!(
        SigningKey::from_pkcs8_der(&v2).unwrap().public_key(),
        key.public_key()
    );

    let other = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let lying = reshape_ec_pkcs8(&pkcs8, Some(&other.public_key().spki_der()[26..]));
    let err = SigningKey::from_pkcs8_der(&lying).unwrap_err();
    assert!(matches!(err, KeyError::KeyRejected { .. }), "{err}");

    let ed = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
    let v2 = ed.to_pkcs8().unwrap();
    assert_eq!(
        SigningKey::from_pkcs8_der(v2.as_ref()).unwrap().algorithm(),
        KeyAlgorithm::Ed25519
    );
}

#[test]
fn sec1_and_unsupported_keys_are_refused_with_reasons() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let public = key.public_key();
    let pkcs8 = key.to_pkcs8_der().unwrap();
    let sec1_der = PrivateKeyInfoRef::from_der(&pkcs8)
        .unwrap()
        .private_key
        .as_bytes()
        .to_vec();
    assert!(matches!(
        SigningKey::from_pkcs8_der(&sec1_der),
        Err(KeyError::Sec1NotPkcs8)
    ));
    let sec1_pem = pem::encode("EC PRIVATE KEY", &sec1_der);
    assert!(matches!(
        SigningKey::from_pem(sec1_pem.as_bytes(), None),
        Err(KeyError::Sec1NotPkcs8)
    ));
    let rsa1 = pem::encode("RSA PRIVATE KEY", &sec1_der);
    assert!(matches!(
        SigningKey::from_pem(rsa1.as_bytes(), None),
        Err(KeyError::KeyRejected { .. })
    ));
    let cert = pem::encode("CERTIFICATE", &sec1_der);
    assert!(matches!(
        PublicKey::from_pem(cert.as_bytes()),
        Err(KeyError::UnsupportedPemLabel { .. })
    ));

    let p521 = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P521_SHA512_ASN1_SIGNING,
    )
    .unwrap();
    let err = SigningKey::from_pkcs8_der(p521.to_pkcs8v1().unwrap().as_ref()).unwrap_err();
    assert!(
        matches!(err, KeyError::UnsupportedCurve { ref oid } if oid == "1.3.132.0.35"),
        "{err}"
    );
    let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
        aws_lc_rs::signature::KeyPair::public_key(&p521),
    )
    .unwrap();
    assert!(matches!(
        PublicKey::from_spki_der(spki.as_ref()),
        Err(KeyError::UnsupportedCurve { .. })
    ));

    // A DSA-style OID, and a compressed P-256 point.
    let mut spki = spki::SubjectPublicKeyInfoRef::from_der(public.spki_der()).unwrap();
    spki.algorithm.oid = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
    let err = PublicKey::from_spki_der(&spki.to_der().unwrap()).unwrap_err();
    assert!(
        matches!(err, KeyError::UnsupportedAlgorithm { .. }),
        "{err}"
    );
    let mut spki = spki::SubjectPublicKeyInfoRef::from_der(public.spki_der()).unwrap();
    let point = spki.subject_public_key.raw_bytes();
    let compressed = [&[0x02 | (point[64] & 1)], &point[1..33]].concat();
    spki.subject_public_key = BitStringRef::from_bytes(&compressed).unwrap();
    let err = PublicKey::from_spki_der(&spki.to_der().unwrap()).unwrap_err();
    assert!(matches!(err, KeyError::KeyRejected { .. }), "{err}");
}

#[test]
fn small_rsa_keys_are_refused() {
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }, 1024-bit modulus.
    let mut modulus = vec![0xc5u8; 128];
    modulus[127] = 0x01;
    let ints = vec![
        UintRef::new(&modulus).unwrap(),
        UintRef::new(&[1, 0, 1]).unwrap(),
    ];
    let pkcs1 = pem::encode("RSA PUBLIC KEY", &ints.to_der().unwrap());
    let err = PublicKey::from_pem(pkcs1.as_bytes()).unwrap_err();
    assert!(matches!(err, KeyError::RsaKeySize { bits: 1024 }), "{err}");
}
