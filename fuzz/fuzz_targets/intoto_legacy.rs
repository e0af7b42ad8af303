//! in-toto layouts and links (Metablock and DSSE wrappers): parse, verify against bob's key
//! from the python in-toto demo, read the payload as a link and a layout, and a link's
//! value → link round-trips; canonical JSON of any payload never panics.
#![no_main]
use custody_core::intoto_legacy::{Layout, Link, Metadata, SslibKey, canonical};
use custody_core::keys::PublicKey;
use custody_fuzz::BOB_PEM;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn bob() -> &'static (SslibKey, Vec<String>) {
    static K: OnceLock<(SslibKey, Vec<String>)> = OnceLock::new();
    K.get_or_init(|| {
        let key = SslibKey::from_public_key(&PublicKey::from_pem(BOB_PEM).unwrap()).unwrap();
        let ids = key.candidate_key_ids();
        (key, ids)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(metadata) = Metadata::from_json(data) else {
        return;
    };
    let _ = metadata.payload_type();
    let (key, ids) = bob();
    let _ = metadata.verify(key, ids);
    let payload = match &metadata {
        Metadata::Metablock { signed, .. } => signed,
        Metadata::Envelope { payload, .. } => payload,
    };
    let _ = canonical::encode(payload);
    if let Ok(link) = Link::from_value(payload) {
        let again = Link::from_value(&link.to_value())
            .unwrap_or_else(|e| panic!("a link custody wrote does not read back: {e}"));
        assert_eq!(
            again.to_value(),
            link.to_value(),
            "link changed across a write and read"
        );
    }
    if let Ok(layout) = Layout::from_value(payload) {
        let _ = layout.steps.len();
    }
});
