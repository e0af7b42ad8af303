//! Property tests on RFC 3161 tokens: mutations never panic; a mutation of any signed byte
//! (TSTInfo, signed attributes, signature) never verifies; a mutation of an unsigned byte
//! (status, certificate set, unsigned attributes) either fails or yields exactly the original
//! verified result — it can never change what the timestamp says.

use proptest::prelude::*;

use super::tests::signature_bytes;
use super::*;
use crate::x509::tests::conformance;

fn case() -> (Vec<u8>, Vec<u8>, TrustedRoot) {
    let (bundle, root) = conformance("rekor2-timestamp-with-embedded-cert");
    let ts = bundle.verification_material.rfc3161_timestamps[0].clone();
    (ts, signature_bytes(&bundle), root)
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

/// Byte ranges of the response that the TSA's signature covers (or that are the signature).
fn signed_ranges(response: &[u8]) -> Vec<std::ops::Range<usize>> {
    let token = token::parse(response).unwrap();
    let tst = find(response, &token.tst_info_der);
    let attrs = &token.signed_attrs_der[2..]; // content only: the [0] tag differs from SET
    let attrs_at = find(response, attrs);
    let sig = token.signer.signature.as_bytes();
    let sig_at = find(response, sig);
    vec![
        tst..tst + token.tst_info_der.len(),
        attrs_at..attrs_at + attrs.len(),
        sig_at..sig_at + sig.len(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn mutated_signed_bytes_never_verify(pick in any::<prop::sample::Index>(), offset in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (mut response, sig, root) = case();
        let ranges = signed_ranges(&response);
        let range = &ranges[pick.index(ranges.len())];
        let i = range.start + offset.index(range.len());
        response[i] ^= flip;
        prop_assert!(verify_timestamp(&response, &sig, &root).is_err(), "byte {} ^ {:#x} verified", i, flip);
    }

    #[test]
    fn mutated_bytes_never_change_the_result(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (mut response, sig, root) = case();
        let original = verify_timestamp(&response, &sig, &root).unwrap();
        let i = index.index(response.len());
        response[i] ^= flip;
        if let Ok(verified) = verify_timestamp(&response, &sig, &root) {
            prop_assert_eq!(verified, original);
        }
    }

    #[test]
    fn truncated_response_never_verifies(cut in any::<prop::sample::Index>()) {
        let (response, sig, root) = case();
        prop_assert!(verify_timestamp(&response[..cut.index(response.len())], &sig, &root).is_err());
    }
}
