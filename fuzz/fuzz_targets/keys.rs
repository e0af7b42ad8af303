//! Public keys from PEM and DER SPKI (key files, trusted roots, Rekor verifiers).
#![no_main]
use custody_core::keys::PublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = PublicKey::from_pem(data) {
        let again = PublicKey::from_pem(key.to_pem().as_bytes()).expect("written PEM reads back");
        assert_eq!(again.spki_der(), key.spki_der());
        let _ = key.verify(custody_core::keys::SignedData::Message(b"m"), data);
    }
    if let Ok(key) = PublicKey::from_spki_der(data) {
        let _ = key.key_id();
        let _ = key.sigstore_key_details();
    }
});
