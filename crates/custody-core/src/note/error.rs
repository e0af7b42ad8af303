//! Errors of the note module: malformed input, bad keys, failed verification.

use std::fmt;

/// Why a note, key or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    #[error("malformed note: {size} bytes is more than the {max} accepted")]
    TooLarge { size: usize, max: usize },
    #[error(
        "malformed note: control character U+{char:04X} at byte {offset} (only newline is allowed)"
    )]
    ControlCharacter { offset: usize, char: u32 },
    #[error("malformed note: no blank line separates the text from the signatures")]
    MissingSeparator,
    #[error("malformed note: the text must be non-empty and end in a newline")]
    TextNotTerminated,
    #[error("malformed note: there are no signature lines")]
    NoSignatures,
    #[error("malformed note: the last signature line does not end in a newline")]
    MissingFinalNewline,
    #[error("malformed note: signature line {line} does not start with an em dash and a space")]
    SignatureLinePrefix { line: usize },
    #[error("malformed note: signature line {line} has an invalid key name {name:?}")]
    InvalidKeyName { line: usize, name: String },
    #[error("malformed note: signature line {line} is not standard padded base64")]
    SignatureBase64 { line: usize },
    #[error(
        "malformed note: signature line {line} decodes to {len} bytes; a key ID and a signature need 5 or more"
    )]
    SignatureTooShort { line: usize, len: usize },
    #[error("malformed note: more than {max} signature lines")]
    TooManySignatures { max: usize },
    #[error("invalid key name {name:?}: it must be non-empty, without spaces or '+'")]
    KeyName { name: String },
    #[error("malformed {kind}: expected {expected}")]
    KeyFormat {
        kind: KeyKind,
        expected: &'static str,
    },
    #[error("{kind} for {name}: unsupported signature algorithm 0x{algorithm:02x}")]
    KeyAlgorithm {
        kind: KeyKind,
        name: String,
        algorithm: u8,
    },
    #[error("{kind} for {name}: key is {len} bytes, Ed25519 needs 32")]
    KeyLength {
        kind: KeyKind,
        name: String,
        len: usize,
    },
    #[error("{kind} for {name}: key ID {stated:08x} does not match the key ({computed:08x})")]
    KeyIdMismatch {
        kind: KeyKind,
        name: String,
        stated: u32,
        computed: u32,
    },
    #[error("public key for {name} is not an Ed25519 or ECDSA P-256 SubjectPublicKeyInfo")]
    UnsupportedPublicKey { name: String },
    #[error("the signing key could not be used (aws-lc refused it)")]
    SigningKey,
    #[error("no random bytes available to generate a key")]
    Random,
    #[error(
        "note is not signed by any known key ({signatures} signature lines, none from a trusted key)"
    )]
    UnverifiedNote { signatures: usize },
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature { name: String, key_id: u32 },
    #[error(
        "cosignature from {name}+{key_id:08x} is {len} bytes; timestamp and Ed25519 signature need 72"
    )]
    CosignatureLength {
        name: String,
        key_id: u32,
        len: usize,
    },
    #[error("{got} distinct witness cosignatures, policy needs {need}")]
    NotEnoughCosignatures { got: usize, need: usize },
    #[error("malformed checkpoint: {problem}")]
    Checkpoint { problem: CheckpointProblem },
}

/// Which key encoding a [`NoteError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// `name+hash+base64(type ‖ key)`.
    VerifierKey,
    /// `PRIVATE+KEY+name+hash+base64(type ‖ seed)`.
    SignerKey,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::VerifierKey => "verifier key",
            Self::SignerKey => "signer key",
        })
    }
}

/// What is wrong with a checkpoint body (C2SP tlog-checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointProblem {
    /// Fewer than the three lines origin, size, root hash.
    MissingLines { found: usize },
    /// The origin line is empty.
    EmptyOrigin,
    /// The size line is not a decimal u64 without sign or leading zeros.
    TreeSize { line: String },
    /// The root hash line is not standard base64 of 32 bytes.
    RootHash { line: String },
    /// An extension line is empty.
    EmptyExtension { line: usize },
    /// An origin or extension line contains a newline or control character.
    LineContent,
}

impl fmt::Display for CheckpointProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLines { found } => {
                write!(
                    f,
                    "{found} lines, but origin, tree size and root hash are required"
                )
            }
            Self::EmptyOrigin => f.write_str("the origin line is empty"),
            Self::TreeSize { line } => {
                write!(
                    f,
                    "tree size {line:?} is not a decimal number without leading zeros"
                )
            }
            Self::RootHash { line } => {
                write!(f, "root hash {line:?} is not base64 of 32 bytes")
            }
            Self::EmptyExtension { line } => write!(f, "extension line {line} is empty"),
            Self::LineContent => f.write_str("a line contains a newline or control character"),
        }
    }
}

impl From<CheckpointProblem> for NoteError {
    fn from(problem: CheckpointProblem) -> Self {
        Self::Checkpoint { problem }
    }
}
