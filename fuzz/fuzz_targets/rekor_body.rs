//! Rekor v1/v2 entry bodies as read from a log entry or a bundle's canonicalizedBody.
#![no_main]
use custody_core::rekor::RekorBody;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = RekorBody::parse(data);
});
