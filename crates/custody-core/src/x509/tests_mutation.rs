//! Property tests: mutated conformance certificates never panic and never verify.

use proptest::prelude::*;

use super::tests::{conformance, integrated_time, leaf_and_rest};
use super::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn mutated_leaf_never_verifies(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (bundle, root) = conformance("happy-path-v0.3");
        let (mut leaf, _) = leaf_and_rest(&bundle);
        let at = integrated_time(&bundle).unwrap();
        let i = index.index(leaf.len());
        leaf[i] ^= flip;
        prop_assert!(verify_chain(&leaf, &[], &root, at).is_err(), "byte {} ^ {:#x} verified", i, flip);
        let _ = cert_is_ca(&leaf);
        let _ = FulcioClaims::from_certificate_der(&leaf);
        let _ = SubjectAlternativeName::from_certificate_der(&leaf);
    }

    #[test]
    fn truncated_or_extended_leaf_never_verifies(cut in any::<prop::sample::Index>(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
        let (bundle, root) = conformance("happy-path-v0.3");
        let (leaf, _) = leaf_and_rest(&bundle);
        let at = integrated_time(&bundle).unwrap();
        let truncated = &leaf[..cut.index(leaf.len())];
        prop_assert!(verify_chain(truncated, &[], &root, at).is_err());
        let mut extended = leaf.clone();
        extended.extend_from_slice(&extra);
        prop_assert!(verify_chain(&extended, &[], &root, at).is_err());
    }

    #[test]
    fn mutated_sct_certificate_never_passes_sct_check(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        // The SCT check on its own (the chain check would refuse first): any change to the
        // signed precertificate or the SCT list makes it fail.
        let (bundle, root) = conformance("happy-path-v0.3");
        let (leaf, _) = leaf_and_rest(&bundle);
        let mut cert = verify_chain(&leaf, &[], &root, integrated_time(&bundle).unwrap()).unwrap();
        let tbs_end = Cert::parse(&leaf, "leaf").unwrap().tbs.len() + 4;
        let i = index.index(tbs_end.min(cert.der.len()));
        cert.der[i] ^= flip;
        prop_assert!(verify_embedded_scts(&cert, &root, 1).is_err(), "byte {} ^ {:#x} passed", i, flip);
    }
}
