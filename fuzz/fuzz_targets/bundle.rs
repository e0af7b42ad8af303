//! Sigstore bundle: parse → write → parse must give the same bundle; verification against
//! the managed conformance key for `a.txt` must never accept anything but the genuine
//! signature, and never panic.
#![no_main]
use custody_core::bundle::{Bundle, BundleContent};
use custody_core::verify::{Artifact, verify_parsed_with_key};
use custody_fuzz::{ARTIFACT, managed_key, managed_signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::from_json(data) else {
        return;
    };
    let written = bundle.to_json();
    let again = Bundle::from_json(written.as_bytes())
        .unwrap_or_else(|e| panic!("a bundle custody wrote does not parse: {e}\n{written}"));
    assert_eq!(again, bundle, "bundle changed across a write and parse");
    assert_eq!(again.to_json(), written, "writing a bundle is not stable");
    if let Ok(verified) =
        verify_parsed_with_key(&bundle, Artifact::from_bytes(ARTIFACT), managed_key())
    {
        assert_eq!(
            verified.artifact,
            custody_core::digest::Sha256Digest::of(ARTIFACT)
        );
        match &bundle.content {
            BundleContent::MessageSignature { signature, .. } => {
                assert_eq!(
                    signature.as_slice(),
                    managed_signature(),
                    "a mutated signature verified"
                );
            }
            BundleContent::Dsse(_) => panic!("a DSSE bundle verified against the managed key"),
        }
    }
});
