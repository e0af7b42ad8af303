//! trusted_root.json, ClientTrustConfig, SigningConfig, one certificate authority: parse,
//! and for the trusted root write → parse must give the same root.
#![no_main]
use custody_core::trust_root::{
    CertificateAuthority, ClientTrustConfig, SigningConfig, TrustedRoot,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(root) = TrustedRoot::from_json(data) {
        let written = root.to_json();
        let again = TrustedRoot::from_json(written.as_bytes())
            .unwrap_or_else(|e| panic!("a root custody wrote does not parse: {e}\n{written}"));
        assert_eq!(
            again.to_json(),
            written,
            "writing a trusted root is not stable"
        );
    }
    let _ = ClientTrustConfig::from_json(data);
    let _ = SigningConfig::from_json(data);
    let _ = CertificateAuthority::from_json(data);
});
