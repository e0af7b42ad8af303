//! RFC 3161: a 2-byte length-prefixed signature, then a DER TimeStampResp (or bare token),
//! verified against the Rekor v2 conformance root (which has a TSA).
#![no_main]
use custody_core::timestamp::verify_timestamp;
use custody_fuzz::{rekor2_root, split2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((signature, der)) = split2(data) else {
        return;
    };
    let _ = verify_timestamp(der, signature, rekor2_root());
});
