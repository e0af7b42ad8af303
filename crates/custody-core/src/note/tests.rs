//! Signed-note, checkpoint and cosignature tests against C2SP, golang/mod, sigstore-conformance
//! and Rekor v1 data, plus mutation property tests.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

pub(super) fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
}

pub(super) fn read(path: &str) -> String {
    let full = testdata().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

pub(super) fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub(super) fn golang(name: &str) -> String {
    read(&format!("signed-notes/golang-mod-note/{name}"))
}

pub(super) fn peter() -> NoteVerifier {
    NoteVerifier::from_vkey(golang("PeterNeumann.vkey").trim_end()).unwrap()
}

pub(super) fn enoch() -> NoteVerifier {
    NoteVerifier::from_vkey(golang("EnochRoot.vkey").trim_end()).unwrap()
}

#[test]
fn c2sp_example_verifies() {
    let vkey = read("signed-notes/c2sp/example.com-foo.vkey");
    let verifier = NoteVerifier::from_vkey(vkey.trim_end()).unwrap();
    assert_eq!(verifier.key_id(), 0x530d903a);
    assert_eq!(verifier.vkey().as_deref(), Some(vkey.trim_end()));
    let note = Note::parse(&read("signed-notes/c2sp/example.com-foo.note")).unwrap();
    assert_eq!(note.text(), "This is an example message.\n");
    let verified = note.verify(std::slice::from_ref(&verifier)).unwrap();
    assert_eq!(
        verified.verified_by(),
        &[("example.com/foo".to_owned(), 0x530d903a)]
    );

    // The same example as transcribed in testdata/c2sp/, after its '-----' marker line.
    let example = read("c2sp/signed-note-example.txt");
    let (_, note_text) = example.split_once("-----\n").unwrap();
    Note::parse(note_text).unwrap().verify(&[verifier]).unwrap();
}

#[test]
fn golang_good_notes_verify() {
    let (peter, enoch) = (peter(), enoch());
    assert_eq!(peter.key_id(), 0xc74f20a3);
    let signed = Note::parse(&golang("peter-signed.note")).unwrap();
    signed.verify(std::slice::from_ref(&peter)).unwrap();
    let both = Note::parse(&golang("peter-enoch-signed.note")).unwrap();
    both.verify(std::slice::from_ref(&peter)).unwrap();
    both.verify(std::slice::from_ref(&enoch)).unwrap();
    assert_eq!(both.verify(&[peter, enoch]).unwrap().verified_by().len(), 2);
}

#[test]
fn golang_bad_notes_fail_for_the_stated_reason() {
    let peter = [peter()];
    let invalid = Note::parse(&golang("peter-invalid-sig.note"))
        .unwrap()
        .verify(&peter)
        .unwrap_err();
    assert_eq!(
        invalid.to_string(),
        "invalid signature for key PeterNeumann+c74f20a3"
    );
    // The key ID (wronghash) or the name (misnamed) does not match: no known key signed.
    for name in ["wronghash-sig.note", "misnamed-sig.note"] {
        let err = Note::parse(&golang(name))
            .unwrap()
            .verify(&peter)
            .unwrap_err();
        assert!(
            matches!(err, NoteError::UnverifiedNote { signatures: 1 }),
            "{name}: {err}"
        );
    }
    for name in [
        "malformed-no-sig.note",
        "malformed-trailing-line.note",
        "malformed-bad-name.note",
    ] {
        let err = Note::parse(&golang(name)).unwrap_err();
        assert!(
            err.to_string().starts_with("malformed note"),
            "{name}: {err}"
        );
    }
}

#[test]
fn golang_bad_vkeys_are_rejected() {
    let bad = golang("bad-vkeys.txt");
    let mut count = 0;
    for line in bad.lines().filter(|l| !l.is_empty()) {
        assert!(NoteVerifier::from_vkey(line).is_err(), "{line}");
        count += 1;
    }
    assert_eq!(count, 2);
    let err = NoteVerifier::from_vkey(
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    );
    assert!(
        matches!(
            err,
            Err(NoteError::KeyAlgorithm {
                algorithm: 0x65,
                ..
            })
        ),
        "{err:?}"
    );
    // Tampered key ID, and keys that are not vkeys at all.
    for vkey in [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter+Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+",
        "",
        "+++",
    ] {
        assert!(NoteVerifier::from_vkey(vkey).is_err(), "{vkey:?}");
    }
}

#[test]
fn golang_skey_signs_exactly_like_go() {
    let signer = NoteSigner::from_skey(golang("PeterNeumann.skey").trim_end()).unwrap();
    assert_eq!(signer.vkey(), golang("PeterNeumann.vkey").trim_end());
    assert_eq!(
        signer.to_skey().as_str(),
        golang("PeterNeumann.skey").trim_end()
    );
    let expected = golang("peter-signed.note");
    let note = Note::parse(&expected).unwrap();
    let mut ours = Note::new(note.text()).unwrap();
    ours.push_signature(signer.sign(note.text()).unwrap())
        .unwrap();
    // Ed25519 is deterministic: the note must be byte-identical to Go's.
    assert_eq!(ours.to_note_string(), expected);
    assert!(NoteSigner::from_skey(golang("PeterNeumann.vkey").trim_end()).is_err());
    assert!(
        NoteSigner::from_skey(
            "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
        )
        .is_err()
    );
}

#[test]
fn golang_tlog_tree_notes() {
    let golden = Checkpoint::parse(&read("signed-notes/golang-mod-tlog/tree-golden.txt")).unwrap();
    assert_eq!(golden.origin(), "go.sum database tree");
    assert_eq!(golden.size(), 123_456_789_012);
    assert_eq!(
        golden.to_note_text(),
        read("signed-notes/golang-mod-tlog/tree-golden.txt"),
        "round trip"
    );
    for bad in ["tree-bad-hex-size.txt", "tree-bad-hash.txt"] {
        let err =
            Checkpoint::parse(&read(&format!("signed-notes/golang-mod-tlog/{bad}"))).unwrap_err();
        assert!(matches!(err, NoteError::Checkpoint { .. }), "{bad}: {err}");
    }
}

#[test]
fn c2sp_format_examples_parse() {
    let quasimodo = Note::parse(&read("signed-notes/c2sp/quasimodo.note")).unwrap();
    assert!(
        quasimodo.text().contains("\n\ned \u{e8} subito sera.\n"),
        "text keeps its blank line"
    );
    assert_eq!(
        quasimodo.signatures()[0].name(),
        "quasimodo.example/salvatore"
    );

    let plain = Note::parse(&read("signed-notes/c2sp/behind-the-sofa.checkpoint")).unwrap();
    let checkpoint = Checkpoint::parse(plain.text()).unwrap();
    assert_eq!(checkpoint.origin(), "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size(), 20_852_163);
    assert_eq!(
        base64_encode(checkpoint.root_hash()),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    );

    let cosigned = Note::parse(&read(
        "signed-notes/c2sp/behind-the-sofa-cosigned.checkpoint",
    ))
    .unwrap();
    assert_eq!(cosigned.text(), plain.text());
    let witness = &cosigned.signatures()[1];
    assert_eq!(witness.name(), "witness.example.com/w1");
    assert_eq!(
        witness.signature().len(),
        8 + 64,
        "timestamp and Ed25519 signature"
    );
    let timestamp = u64::from_be_bytes(witness.signature()[..8].try_into().unwrap());
    assert_eq!(timestamp, 1_679_315_147);
    // The keys are not published: an unrelated key neither verifies nor errors.
    let (stranger, _) = CosignatureSigner::generate("witness.example.com/w1").unwrap();
    assert_eq!(
        verify_cosignatures(&cosigned, &[stranger.verifier().unwrap()]).unwrap(),
        vec![]
    );
}

#[test]
fn sign_and_verify_a_checkpoint_round_trip() {
    let (signer, vkey) = NoteSigner::generate("example.com/log").unwrap();
    let restored = NoteSigner::from_skey(&signer.to_skey()).unwrap();
    assert_eq!(restored.vkey(), vkey);
    let root = crate::merkle::leaf_hash(b"entry");
    let checkpoint = Checkpoint::new("example.com/log", 1, root)
        .unwrap()
        .with_extension("Timestamp: 1")
        .unwrap();
    let signed = checkpoint.sign(&signer).unwrap();
    let wire = signed.to_note_string();
    let verifier = NoteVerifier::from_vkey(&vkey).unwrap();
    let back = SignedCheckpoint::verify(&wire, &[verifier]).unwrap();
    assert_eq!(back.checkpoint(), &checkpoint);
    assert_eq!(back, signed);
    let other = NoteSigner::generate("example.com/log")
        .unwrap()
        .0
        .verifier()
        .unwrap();
    assert!(matches!(
        SignedCheckpoint::verify(&wire, &[other]),
        Err(NoteError::UnverifiedNote { .. })
    ));
}

#[test]
fn cosignatures_count_distinct_witnesses() {
    let (log, log_vkey) = NoteSigner::generate("example.com/log").unwrap();
    let checkpoint = Checkpoint::new("example.com/log", 5, [7; 32]).unwrap();
    let mut signed = checkpoint.sign(&log).unwrap();
    let text = checkpoint.to_note_text();
    let (w1, w1_vkey) = CosignatureSigner::generate("witness.example/one").unwrap();
    let (w2, _) = CosignatureSigner::generate("witness.example/two").unwrap();
    let (w3, _) = CosignatureSigner::generate("witness.example/three").unwrap();
    signed
        .push_signature(w1.cosign(&text, 1_700_000_000).unwrap())
        .unwrap();
    signed
        .push_signature(w1.cosign(&text, 1_700_000_001).unwrap())
        .unwrap();
    signed
        .push_signature(w2.cosign(&text, 1_700_000_002).unwrap())
        .unwrap();
    let wire = signed.to_note_string();

    // The log signature still verifies; cosignature lines are unknown keys to it.
    let back =
        SignedCheckpoint::verify(&wire, &[NoteVerifier::from_vkey(&log_vkey).unwrap()]).unwrap();
    let note = back.note().note();
    let v1 = CosignatureVerifier::from_vkey(&w1_vkey).unwrap();
    assert_eq!(
        CosignatureSigner::from_skey(&w1.to_skey()).unwrap().vkey(),
        w1_vkey
    );
    let witnesses = [
        v1.clone(),
        v1.clone(),
        w2.verifier().unwrap(),
        w3.verifier().unwrap(),
    ];
    let valid = verify_cosignatures(note, &witnesses).unwrap();
    assert_eq!(
        valid.len(),
        2,
        "w1 twice in the list and twice on the note counts once"
    );
    require_cosignatures(note, &witnesses, 2).unwrap();
    assert!(matches!(
        require_cosignatures(note, &witnesses, 3),
        Err(NoteError::NotEnoughCosignatures { got: 2, need: 3 })
    ));
    // A cosignature vkey is not a note vkey, and the other way round.
    assert!(NoteVerifier::from_vkey(&w1_vkey).is_err());
    assert!(CosignatureVerifier::from_vkey(&log_vkey).is_err());
    // A cosignature over other text from a known witness is an error.
    let mut forged = Note::parse(&wire).unwrap();
    forged
        .push_signature(
            w3.cosign(
                "example.com/log\n6\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
                1,
            )
            .unwrap(),
        )
        .unwrap();
    assert!(matches!(
        verify_cosignatures(&forged, &witnesses),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn note_parsing_edge_cases() {
    let (signer, vkey) = NoteSigner::generate("k").unwrap();
    let line = signer.sign("t\n").unwrap().to_line();
    assert!(Note::parse(&format!("t\n\n{line}")).is_ok());
    for (input, what) in [
        (format!("t\r\n\n{line}"), "carriage return"),
        (format!("t\t\n\n{line}"), "tab"),
        (format!("t\n\n{}", line.trim_end()), "no final newline"),
        (format!("t\n{line}"), "no blank line"),
        ("t\n\n".to_owned(), "no signatures"),
        (format!("t\n\n{line}\n"), "blank line after signatures"),
        (
            format!("t\n\n{}", line.replace('\u{2014}', "-")),
            "hyphen instead of em dash",
        ),
        (
            "t\n\n\u{2014} k AAAA\n".to_owned(),
            "signature shorter than 5 bytes",
        ),
        ("t\n\n\u{2014} k+x AAAAAAA=\n".to_owned(), "'+' in name"),
        ("t\n\n\u{2014} k AAAAAAA\n".to_owned(), "unpadded base64"),
        ("t\n\n\u{2014} k\n".to_owned(), "no signature"),
    ] {
        assert!(Note::parse(&input).is_err(), "{what}");
    }
    let verifier = NoteVerifier::from_vkey(&vkey).unwrap();
    // C2SP: accept at least 16 signatures; golang stops at 100.
    let unknown = "\u{2014} other AAAAAAAA\n";
    let many = format!("t\n\n{}{line}", unknown.repeat(MAX_SIGNATURES - 1));
    Note::parse(&many)
        .unwrap()
        .verify(std::slice::from_ref(&verifier))
        .unwrap();
    let too_many = format!("t\n\n{}{line}", unknown.repeat(MAX_SIGNATURES));
    assert!(matches!(
        Note::parse(&too_many),
        Err(NoteError::TooManySignatures { .. })
    ));
    assert!(Note::parse(&"x".repeat(MAX_NOTE_SIZE + 1)).is_err());
    assert!(signer.sign("no newline").is_err());
}

#[test]
fn checkpoint_body_rules() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    assert_eq!(
        Checkpoint::parse(&format!("o\n0\n{root}\n"))
            .unwrap()
            .size(),
        0
    );
    assert_eq!(
        Checkpoint::parse(&format!("o\n18446744073709551615\n{root}\n"))
            .unwrap()
            .size(),
        u64::MAX
    );
    let ext = Checkpoint::parse(&format!("o\n1\n{root}\nTimestamp: 5\nmore\n")).unwrap();
    assert_eq!(ext.extensions(), ["Timestamp: 5", "more"]);
    for (body, what) in [
        (format!("o\n01\n{root}\n"), "leading zero"),
        (format!("o\n+1\n{root}\n"), "plus sign"),
        (format!("o\n-1\n{root}\n"), "minus sign"),
        (format!("o\n 1\n{root}\n"), "space"),
        (format!("o\n18446744073709551616\n{root}\n"), "overflow"),
        (format!("o\n\n{root}\n"), "empty size"),
        (
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n".to_owned(),
            "31-byte root",
        ),
        (
            format!("o\n1\n{}\n", root.trim_end_matches('=')),
            "unpadded root",
        ),
        (format!("\n1\n{root}\n"), "empty origin"),
        (format!("o\n1\n{root}\n\nx\n"), "empty extension line"),
        (format!("o\n1\n{root}"), "no final newline"),
        ("o\n1\n".to_owned(), "no root line"),
    ] {
        assert!(Checkpoint::parse(&body).is_err(), "{what}");
    }
    assert!(Checkpoint::new("", 1, [0; 32]).is_err());
    assert!(Checkpoint::new("a\nb", 1, [0; 32]).is_err());
    assert!(
        Checkpoint::new("o", 1, [0; 32])
            .unwrap()
            .with_extension("")
            .is_err()
    );
}
