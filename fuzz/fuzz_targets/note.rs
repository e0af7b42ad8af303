//! C2SP signed notes, checkpoints and cosignatures: parse, write → parse round-trips,
//! verification against the C2SP and golang example keys never panics.
#![no_main]
use custody_core::note::{
    Checkpoint, CosignatureVerifier, Note, NoteVerifier, verify_cosignatures,
};
use custody_fuzz::{ENOCH_VKEY, NOTE_VKEY, PETER_VKEY};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn verifiers() -> &'static [NoteVerifier] {
    static V: OnceLock<Vec<NoteVerifier>> = OnceLock::new();
    V.get_or_init(|| {
        [NOTE_VKEY, PETER_VKEY, ENOCH_VKEY]
            .iter()
            .map(|k| NoteVerifier::from_vkey(k.trim()).unwrap())
            .collect()
    })
}

fn witnesses() -> &'static [CosignatureVerifier] {
    static V: OnceLock<Vec<CosignatureVerifier>> = OnceLock::new();
    // Any Ed25519 key can be read as a witness key (type 0x04 over the same bytes).
    V.get_or_init(|| {
        [NOTE_VKEY, PETER_VKEY]
            .iter()
            .filter_map(|k| {
                let (name, rest) = k.trim().split_once('+')?;
                let (_, b64) = rest.split_once('+')?;
                let raw = custody_core::encoding::base64_decode_strict(b64).ok()?;
                let key: [u8; 32] = raw.get(1..)?.try_into().ok()?;
                CosignatureVerifier::ed25519(name, key).ok()
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(checkpoint) = Checkpoint::parse(text) {
        let _ = checkpoint.origin();
    }
    let Ok(note) = Note::parse(text) else {
        return;
    };
    let written = note.to_note_string();
    let again = Note::parse(&written)
        .unwrap_or_else(|e| panic!("a note custody wrote does not parse: {e}\n{written}"));
    assert_eq!(again, note, "note changed across a write and parse");
    let _ = Checkpoint::parse(note.text());
    let _ = note.verify(verifiers());
    let _ = verify_cosignatures(&note, witnesses());
});
