//! C2SP signed notes (`signed-note.md`), checkpoints (`tlog-checkpoint.md`) and witness
//! cosignatures (`tlog-cosignature.md`), byte-compatible with golang.org/x/mod/sumdb/note,
//! Sunlight, Tessera and Rekor (v1 ECDSA and v2 Ed25519 checkpoints).
//!
//! Parse with [`Note::parse`] (an unverified note), then [`Note::verify`] it against the keys you
//! trust to get a [`VerifiedNote`]; [`SignedCheckpoint::verify`] does both and parses the body.
//! The signed message is always the exact text received, never a re-serialization.

use std::collections::HashSet;
use std::fmt;

use crate::encoding::{base64_decode_strict, base64_encode};

mod checkpoint;
mod cosignature;
mod error;
mod keys;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod sigstore_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use checkpoint::{Checkpoint, SignedCheckpoint};
pub use cosignature::{
    Cosignature, CosignatureSigner, CosignatureVerifier, require_cosignatures, verify_cosignatures,
};
pub use error::{CheckpointProblem, KeyKind, NoteError};
pub use keys::{NoteSigner, NoteVerifier};

/// Largest note accepted, in bytes (text and signatures together).
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// Most signature lines accepted on one note. C2SP: verifiers MUST accept at least 16;
/// golang's sumdb/note stops at 100.
pub const MAX_SIGNATURES: usize = 100;

/// C2SP signed-note: a signature line starts with U+2014 EM DASH and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// One signature line: `— <name> <base64(key ID ‖ signature)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    name: String,
    key_id: u32,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// A signature line from its parts; `name` must be a valid key name.
    pub fn new(name: &str, key_id: u32, signature: Vec<u8>) -> Result<Self, NoteError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id,
            signature,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key ID, big-endian.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature bytes after the key ID.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line as it appears in a note, with its newline.
    pub fn to_line(&self) -> String {
        let mut blob = Vec::with_capacity(4 + self.signature.len());
        blob.extend_from_slice(&self.key_id.to_be_bytes());
        blob.extend_from_slice(&self.signature);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, base64_encode(&blob))
    }
}

/// A signed note, parsed but not verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note exactly as C2SP signed-note and golang's `note.Open` do.
    pub fn parse(input: &str) -> Result<Self, NoteError> {
        if input.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size: input.len(),
                max: MAX_NOTE_SIZE,
            });
        }
        check_controls(input)?;
        // C2SP: "the last empty line" separates the text (which keeps its final newline) from
        // the signature lines.
        let split = input.rfind("\n\n").ok_or(NoteError::MissingSeparator)?;
        let (text, sigs) = (&input[..split + 1], &input[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if !sigs.ends_with('\n') {
            return Err(NoteError::MissingFinalNewline);
        }
        let mut signatures = Vec::new();
        for (index, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
            if index >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures {
                    max: MAX_SIGNATURES,
                });
            }
            signatures.push(parse_signature_line(index + 1, line)?);
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// An unsigned note over `text`, which must be non-empty, end in a newline, and contain no
    /// control characters other than newline.
    pub fn new(text: &str) -> Result<Self, NoteError> {
        check_text(text)?;
        Ok(Self {
            text: text.to_owned(),
            signatures: Vec::new(),
        })
    }

    /// The signed text, including its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// All signature lines, known keys or not, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Appends a signature line (a log signature or a witness cosignature).
    pub fn push_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// The note as sent on the wire: text, blank line, signature lines.
    pub fn to_note_string(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 1 + 120 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.to_line());
        }
        out
    }

    /// Verifies the note against trusted keys (C2SP signed-note, "Verifying"):
    /// lines from unknown (name, key ID) pairs are ignored; a line from a known key whose
    /// signature is bad rejects the note; at least one known key must have signed.
    pub fn verify(&self, verifiers: &[NoteVerifier]) -> Result<VerifiedNote, NoteError> {
        let mut verified_by: Vec<(String, u32)> = Vec::new();
        let mut seen = HashSet::new();
        for signature in &self.signatures {
            let mut known = verifiers
                .iter()
                .filter(|v| v.name() == signature.name && v.key_id() == signature.key_id)
                .peekable();
            if known.peek().is_none() || !seen.insert((&signature.name, signature.key_id)) {
                continue;
            }
            if !known.any(|v| v.verifies(self.text.as_bytes(), &signature.signature)) {
                return Err(NoteError::InvalidSignature {
                    name: signature.name.clone(),
                    key_id: signature.key_id,
                });
            }
            verified_by.push((signature.name.clone(), signature.key_id));
        }
        if verified_by.is_empty() {
            return Err(NoteError::UnverifiedNote {
                signatures: self.signatures.len(),
            });
        }
        Ok(VerifiedNote {
            note: self.clone(),
            verified_by,
        })
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_note_string())
    }
}

/// A note with at least one valid signature from a trusted key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedNote {
    note: Note,
    verified_by: Vec<(String, u32)>,
}

impl VerifiedNote {
    /// The verified text.
    pub fn text(&self) -> &str {
        &self.note.text
    }

    /// The whole note, including lines from keys that were not checked.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// (key name, key ID) of every trusted key whose signature verified.
    pub fn verified_by(&self) -> &[(String, u32)] {
        &self.verified_by
    }

    /// Appends a signature line (e.g. a witness cosignature) to the note.
    pub fn push_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        self.note.push_signature(signature)
    }
}

fn parse_signature_line(line_no: usize, line: &str) -> Result<NoteSignature, NoteError> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(NoteError::SignatureLinePrefix { line: line_no })?;
    let (name, b64) = rest.split_once(' ').unwrap_or((rest, ""));
    if !is_valid_key_name(name) {
        return Err(NoteError::InvalidKeyName {
            line: line_no,
            name: name.to_owned(),
        });
    }
    let blob = match base64_decode_strict(b64) {
        Ok(blob) if !b64.is_empty() => blob,
        _ => return Err(NoteError::SignatureBase64 { line: line_no }),
    };
    if blob.len() < 5 {
        return Err(NoteError::SignatureTooShort {
            line: line_no,
            len: blob.len(),
        });
    }
    let (id, signature) = blob.split_at(4);
    let key_id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id,
        signature: signature.to_vec(),
    })
}

/// C2SP signed-note: key names are non-empty and contain no Unicode whitespace and no '+'.
pub(crate) fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

pub(crate) fn check_key_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) && check_controls(name).is_ok() {
        Ok(())
    } else {
        Err(NoteError::KeyName {
            name: name.to_owned(),
        })
    }
}

/// C2SP signed-note: no C0 control characters other than newline.
fn check_controls(input: &str) -> Result<(), NoteError> {
    match input.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter {
            offset,
            char: u32::from(input.as_bytes()[offset]),
        }),
        None => Ok(()),
    }
}

/// Text that can be signed: non-empty, newline-terminated, no other control characters.
pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            size: text.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    if !text.ends_with('\n') {
        return Err(NoteError::TextNotTerminated);
    }
    check_controls(text)
}
