//! X.509: one DER certificate (or leaf + intermediates: 2-byte length-prefixed leaf, then
//! the rest as one intermediate), checked as a Fulcio chain against the public-good root.
#![no_main]
use custody_core::x509::{cert_is_ca, cert_is_root_ca, verify_chain};
use custody_fuzz::{fixed_time, public_good_root, split2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cert_is_ca(data);
    let _ = cert_is_root_ca(data);
    let _ = verify_chain(data, &[], public_good_root(), fixed_time());
    if let Some((leaf, rest)) = split2(data) {
        let _ = verify_chain(leaf, &[rest.to_vec()], public_good_root(), fixed_time());
    }
});
