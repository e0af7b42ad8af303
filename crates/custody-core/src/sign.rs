//! Sign, wrap, log, check the receipt: the one path every signed object takes to a
//! transparency log (`custody sign`, `attest`, `build`, the gate's VSAs, release statements).
//!
//! 1. [`sign_message`] / [`sign_statement`] sign and wrap: a v0.3 [`Bundle`] (message signature
//!    or DSSE envelope) and the typed Rekor v2 [`CreateEntryRequest`] that logs it, as one
//!    [`Signed`] value, so the request always describes the bundle it came with.
//! 2. A transport appends the request: a [`LogAppender`] (blocking, e.g. the HTTP client in
//!    `custody-client`) or an [`AsyncLogAppender`] (e.g. the server's in-process log).
//! 3. [`Signed::attach`] checks the receipt before it goes into the bundle: the entry body
//!    binds to the bundle's content, key and digest, and the inclusion proof leads to the root
//!    of the checkpoint it came with. Who signed the checkpoint is the verifier's business
//!    (against its trust root).
//!
//! [`Signed::log`] and [`Signed::log_async`] are steps 2 and 3 together.

use std::future::Future;

use crate::bundle::{Bundle, BundleContent, TransparencyLogEntry};
use crate::digest::Sha256Digest;
use crate::dsse;
use crate::encoding::base64_encode;
use crate::intoto::Statement;
use crate::keys::{KeyError, PublicKey, SignedData, SigningKey};
use crate::merkle::{self, ProofError};
use crate::note::{Checkpoint, Note, NoteError};
use crate::rekor::request::{CreateEntryRequest, RequestError};
use crate::rekor::{self, BindError, BodyError, RekorBody, Signer};
use crate::verify::Artifact;

/// Why nothing could be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("signing with key {key_id}: {source}")]
    Key {
        key_id: String,
        #[source]
        source: KeyError,
    },
    #[error("building the log request: {0}")]
    Request(#[from] RequestError),
}

/// Why a log's receipt was refused: the log answered, but not for this bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    #[error("log entry {index}: unreadable body: {source}")]
    Body {
        index: i64,
        #[source]
        source: BodyError,
    },
    #[error("log entry {index}: {source}")]
    Bind {
        index: i64,
        #[source]
        source: BindError,
    },
    #[error("log entry {index}: no inclusion proof")]
    NoProof { index: i64 },
    #[error("log entry {index}: checkpoint: {source}")]
    Checkpoint {
        index: i64,
        #[source]
        source: NoteError,
    },
    #[error("log entry {index}: a proof hash is not 32 bytes")]
    ProofHash { index: i64 },
    #[error("log entry {index}: negative index or size in the proof")]
    Negative { index: i64 },
    #[error("log entry {index}: the inclusion proof is for another tree than the checkpoint's")]
    OtherTree { index: i64 },
    #[error("log entry {index}: inclusion proof: {source}")]
    Inclusion {
        index: i64,
        #[source]
        source: ProofError,
    },
}

/// Why a signed object is not in a log: the transport failed, or its receipt was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Append(E),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
}

/// A transport that appends a request to a log and answers with its entry (blocking).
pub trait LogAppender {
    type Error: std::error::Error + Send + Sync + 'static;
    fn append(&self, request: &CreateEntryRequest) -> Result<TransparencyLogEntry, Self::Error>;
}

/// A transport that appends a request to a log and answers with its entry (async).
pub trait AsyncLogAppender {
    type Error: std::error::Error + Send + Sync + 'static;
    fn append(
        &self,
        request: &CreateEntryRequest,
    ) -> impl Future<Output = Result<TransparencyLogEntry, Self::Error>> + Send;
}

/// A signed bundle, not yet logged, with the request that logs it.
#[derive(Debug, Clone)]
pub struct Signed {
    bundle: Bundle,
    request: CreateEntryRequest,
    key: PublicKey,
    /// The digest a message signature covers (bound to the entry's digest).
    digest: Option<Sha256Digest>,
}

/// Signs `artifact` as a message signature: its bytes when given (Ed25519 signs whole
/// messages), else its SHA-256 digest (ECDSA and RSA sign the digest; any size).
pub fn sign_message(key: &SigningKey, artifact: &Artifact<'_>) -> Result<Signed, SignError> {
    let data = match artifact.bytes {
        Some(bytes) => SignedData::Message(bytes),
        None => SignedData::Sha256Digest(artifact.digest.as_bytes()),
    };
    let public = key.public_key();
    let signature = key.sign(data).map_err(|source| SignError::Key {
        key_id: public.key_id().to_string(),
        source,
    })?;
    let request = CreateEntryRequest::hashed_rekord(&artifact.digest, signature.clone(), &public)?;
    let bundle = Bundle::new_message_signature_v03(key_hint(&public), &artifact.digest, signature);
    Ok(Signed {
        bundle,
        request,
        key: public,
        digest: Some(artifact.digest),
    })
}

/// Signs an in-toto statement: DSSE over `PAE("application/vnd.in-toto+json", statement)`, in
/// a v0.3 bundle whose key hint is also the envelope's `keyid`.
pub fn sign_statement(key: &SigningKey, statement: &Statement) -> Result<Signed, SignError> {
    sign_in_toto_payload(key, statement.to_json_bytes())
}

/// [`sign_statement`] for a statement's JSON bytes as they are (re-signing an existing
/// payload, e.g. after a key rotation, without re-serializing it).
pub fn sign_in_toto_payload(key: &SigningKey, payload: Vec<u8>) -> Result<Signed, SignError> {
    let public = key.public_key();
    let envelope = dsse::sign_in_toto(key, payload).map_err(|source| SignError::Key {
        key_id: public.key_id().to_string(),
        source,
    })?;
    signed_envelope(envelope, public)
}

/// A DSSE envelope someone has already signed with `key` (a client's approval or revocation
/// the server logs on its behalf), made ready to log like any other [`Signed`] value.
pub fn signed_envelope(envelope: dsse::Envelope, key: PublicKey) -> Result<Signed, SignError> {
    let request = CreateEntryRequest::dsse(envelope.clone(), &key)?;
    let bundle = Bundle::new_dsse_v03(key_hint(&key), envelope);
    Ok(Signed {
        bundle,
        request,
        key,
        digest: None,
    })
}

/// The bundle's public-key hint: base64 of SHA-256(DER SPKI), as cosign and sigstore-go write
/// it. Verifiers treat it as a hint only (protobuf-specs `PublicKeyIdentifier`).
pub fn key_hint(key: &PublicKey) -> String {
    base64_encode(&key.key_id().0)
}

impl Signed {
    /// The bundle, without a log entry.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The Rekor v2 request that logs this bundle.
    pub fn request(&self) -> &CreateEntryRequest {
        &self.request
    }

    /// The key that signed.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The bundle, for when no log is configured.
    pub fn into_bundle(self) -> Bundle {
        self.bundle
    }

    /// Checks `entry` against this bundle (see the module documentation) and adds it.
    pub fn attach(self, entry: TransparencyLogEntry) -> Result<Bundle, ReceiptError> {
        let artifact = self.digest.map(Artifact::from_digest);
        check_receipt(&entry, &self.bundle.content, &self.key, artifact.as_ref())?;
        Ok(self.bundle.with_tlog_entry(entry))
    }

    /// Appends the request through `log`, checks the receipt, and returns the logged bundle.
    pub fn log<A: LogAppender>(self, log: &A) -> Result<Bundle, LogError<A::Error>> {
        let entry = log.append(&self.request).map_err(LogError::Append)?;
        Ok(self.attach(entry)?)
    }

    /// [`Signed::log`] for an async transport.
    pub async fn log_async<A: AsyncLogAppender>(
        self,
        log: &A,
    ) -> Result<Bundle, LogError<A::Error>> {
        let entry = log.append(&self.request).await.map_err(LogError::Append)?;
        Ok(self.attach(entry)?)
    }
}

/// The receipt check of [`Signed::attach`], for a bundle already built.
pub fn check_receipt(
    entry: &TransparencyLogEntry,
    content: &BundleContent,
    key: &PublicKey,
    artifact: Option<&Artifact<'_>>,
) -> Result<(), ReceiptError> {
    let index = entry.log_index;
    let body = RekorBody::parse(&entry.canonicalized_body)
        .map_err(|source| ReceiptError::Body { index, source })?;
    rekor::bind(&body, content, Signer::Key(key), artifact)
        .map_err(|source| ReceiptError::Bind { index, source })?;
    let proof = entry
        .inclusion_proof
        .as_ref()
        .ok_or(ReceiptError::NoProof { index })?;
    let checkpoint = Note::parse(&proof.checkpoint)
        .and_then(|note| Checkpoint::parse(note.text()))
        .map_err(|source| ReceiptError::Checkpoint { index, source })?;
    let hashes: Vec<merkle::Hash> = proof
        .hashes
        .iter()
        .map(|h| h.as_slice().try_into())
        .collect::<Result<_, _>>()
        .map_err(|_| ReceiptError::ProofHash { index })?;
    let (Ok(leaf_index), Ok(size)) = (
        u64::try_from(proof.log_index),
        u64::try_from(proof.tree_size),
    ) else {
        return Err(ReceiptError::Negative { index });
    };
    if size != checkpoint.size() || proof.root_hash.as_slice() != checkpoint.root_hash() {
        return Err(ReceiptError::OtherTree { index });
    }
    let leaf = merkle::leaf_hash(&entry.canonicalized_body);
    merkle::verify_inclusion(leaf_index, size, &leaf, &hashes, checkpoint.root_hash())
        .map_err(|source| ReceiptError::Inclusion { index, source })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
