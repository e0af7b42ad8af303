//! Rekor v2 `POST /api/v2/log/entries` bodies (hashedrekord / dsse 0.0.2): whatever is
//! admitted must be a canonical (RFC 8785) body that a client parses back as a Rekor v2 body.
#![no_main]
use custody_core::jcs::is_canonical;
use custody_core::rekor::RekorBody;
use custody_core::rekor::request::admit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(admitted) = admit(data) else {
        return;
    };
    assert!(
        is_canonical(&admitted.body),
        "admitted body is not canonical JSON"
    );
    let body = RekorBody::parse(&admitted.body)
        .unwrap_or_else(|e| panic!("an admitted body does not parse as a Rekor body: {e}"));
    let kind_ok = matches!(
        (&body, admitted.kind),
        (RekorBody::HashedRekordV002(_), "hashedrekord") | (RekorBody::DsseV002(_), "dsse")
    );
    assert!(
        kind_ok,
        "admitted kind {} but body parses as {body:?}",
        admitted.kind
    );
});
