//! DSSE envelope: parse → write → parse round-trips; against the DSSE spec key only the
//! spec's payload ("hello world", HelloWorld type) may ever verify.
#![no_main]
use custody_core::dsse::{Envelope, SignatureVerifier};
use custody_core::keys::PublicKey;
use custody_fuzz::DSSE_KEY_PEM;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static PublicKey {
    static K: OnceLock<PublicKey> = OnceLock::new();
    K.get_or_init(|| PublicKey::from_pem(DSSE_KEY_PEM).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_json(data) else {
        return;
    };
    let written = envelope.to_json();
    let again = Envelope::from_json(written.as_bytes())
        .unwrap_or_else(|e| panic!("an envelope custody wrote does not parse: {e}\n{written}"));
    assert_eq!(again, envelope, "envelope changed across a write and parse");
    let verifiers: [&dyn SignatureVerifier; 1] = [key()];
    if let Ok(verified) = envelope.verify(&verifiers, 1) {
        assert_eq!(verified.payload_type, "http://example.com/HelloWorld");
        assert_eq!(
            verified.payload, b"hello world",
            "a mutated payload verified"
        );
    }
});
