//! C2SP tlog-checkpoint: the note body a transparency log signs.

use super::{CheckpointProblem, Note, NoteError, NoteSigner, NoteVerifier, VerifiedNote};
use crate::encoding::{base64_decode_strict, base64_encode};
use crate::merkle::Hash;

/// A checkpoint body: origin, tree size, root hash, optional extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root_hash: Hash,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint with no extension lines. The origin must be non-empty and one line.
    pub fn new(origin: &str, size: u64, root_hash: Hash) -> Result<Self, NoteError> {
        if origin.is_empty() {
            return Err(CheckpointProblem::EmptyOrigin.into());
        }
        check_line(origin)?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root_hash,
            extensions: Vec::new(),
        })
    }

    /// Adds an extension line (C2SP: allowed, NOT RECOMMENDED; must be non-empty).
    pub fn with_extension(mut self, line: &str) -> Result<Self, NoteError> {
        if line.is_empty() {
            return Err(CheckpointProblem::EmptyExtension {
                line: 4 + self.extensions.len(),
            }
            .into());
        }
        check_line(line)?;
        self.extensions.push(line.to_owned());
        Ok(self)
    }

    /// Parses a checkpoint body (the text of a note, with its final newline).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::TextNotTerminated)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointProblem::MissingLines { found: lines.len() }.into());
        };
        // C2SP tlog-checkpoint: "The origin line MUST be non-empty".
        if origin.is_empty() {
            return Err(CheckpointProblem::EmptyOrigin.into());
        }
        check_line(origin)?;
        let size = parse_tree_size(size)?;
        let root_hash = base64_decode_strict(root)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| CheckpointProblem::RootHash {
                line: (*root).to_owned(),
            })?;
        let mut checkpoint = Self {
            origin: (*origin).to_owned(),
            size,
            root_hash,
            extensions: Vec::new(),
        };
        for (index, line) in extensions.iter().enumerate() {
            // "Extension lines MUST be non-empty" (so the note text never contains a blank line).
            if line.is_empty() {
                return Err(CheckpointProblem::EmptyExtension { line: index + 4 }.into());
            }
            check_line(line)?;
            checkpoint.extensions.push((*line).to_owned());
        }
        Ok(checkpoint)
    }

    /// The log's origin line (for Rekor v1: `rekor.sigstore.dev - <tree ID>`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash of the tree of that size.
    pub fn root_hash(&self) -> &Hash {
        &self.root_hash
    }

    /// Extension lines after the root hash, in order.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The note text: `origin\nsize\nbase64(root)\n[extensions\n]`.
    pub fn to_note_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            base64_encode(&self.root_hash)
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Signs the checkpoint as a note.
    pub fn sign(&self, signer: &NoteSigner) -> Result<SignedCheckpoint, NoteError> {
        let text = self.to_note_text();
        let mut note = Note::new(&text)?;
        note.push_signature(signer.sign(&text)?)?;
        Ok(SignedCheckpoint {
            checkpoint: self.clone(),
            note: VerifiedNote {
                note,
                verified_by: vec![(signer.name().to_owned(), signer.key_id())],
            },
        })
    }
}

/// A checkpoint whose note carries a valid signature from a trusted log key: produced by
/// [`Checkpoint::sign`], or by [`SignedCheckpoint::verify`] on received bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: VerifiedNote,
}

impl SignedCheckpoint {
    /// Parses a signed checkpoint note, verifies it against the trusted log keys, and parses
    /// the verified text as a checkpoint.
    pub fn verify(input: &str, verifiers: &[NoteVerifier]) -> Result<Self, NoteError> {
        let note = Note::parse(input)?.verify(verifiers)?;
        let checkpoint = Checkpoint::parse(note.text())?;
        Ok(Self { checkpoint, note })
    }

    /// The checkpoint body.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The verified note (log signature and any cosignature lines).
    pub fn note(&self) -> &VerifiedNote {
        &self.note
    }

    /// Appends a cosignature line from a witness.
    pub fn push_signature(&mut self, signature: super::NoteSignature) -> Result<(), NoteError> {
        self.note.push_signature(signature)
    }

    /// The signed note as served at `<prefix>/checkpoint`.
    pub fn to_note_string(&self) -> String {
        self.note.note().to_note_string()
    }
}

/// C2SP tlog-checkpoint: "the tree size as an ASCII decimal number, without leading zeroes"
/// (golang's tlog.ParseTree also refuses signs and hex).
fn parse_tree_size(line: &str) -> Result<u64, NoteError> {
    let bad = || {
        NoteError::from(CheckpointProblem::TreeSize {
            line: line.to_owned(),
        })
    };
    if line.is_empty()
        || !line.bytes().all(|b| b.is_ascii_digit())
        || (line.len() > 1 && line.starts_with('0'))
    {
        return Err(bad());
    }
    line.parse().map_err(|_| bad())
}

fn check_line(line: &str) -> Result<(), NoteError> {
    if line.bytes().any(|b| b < 0x20) {
        return Err(CheckpointProblem::LineContent.into());
    }
    Ok(())
}
