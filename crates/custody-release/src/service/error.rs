//! The one error every release operation returns. The server maps it to an HTTP status in
//! one place (`custody-server/src/response.rs`); the message is one line naming the object and
//! the fix.

use custody_policy::Verdict;

use crate::model::Role;
use crate::store::StoreError;

/// A failed release operation.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The request itself is wrong (a malformed digest, bundle, or field).
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this: a role it lacks (`missing_role`), or a signature that is
    /// not theirs, or bytes withheld from them.
    #[error("{message}")]
    Forbidden {
        message: String,
        missing_role: Option<Role>,
    },
    /// The environment's policy denied it; the verdict says why.
    #[error("{message}")]
    Denied {
        message: String,
        verdict: Box<Verdict>,
    },
    /// The request contradicts the record (an older digest, a report of a release not on
    /// record, a reused request id, a quarantined digest).
    #[error("{0}")]
    Conflict(String),
    /// No such environment, artifact, or release.
    #[error("{0}")]
    NotFound(String),
    /// The release store failed or lost a compare-and-swap (`StoreError::Conflict`: nothing
    /// changed, the same request may be sent again).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The transparency log did not take an entry: nothing was recorded; retry later.
    #[error("{0}")]
    Log(String),
    /// Something that should not fail did (a signing key without a Sigstore type, a task
    /// that panicked, the evidence store).
    #[error("{0}")]
    Internal(String),
}

impl ReleaseError {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            message: message.into(),
            missing_role: None,
        }
    }
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
    pub(crate) fn internal(what: impl std::fmt::Display) -> Self {
        Self::Internal(what.to_string())
    }

    /// Whether sending the same request again (same request id) may succeed: another
    /// promotion or rollback took the environment's next seq first and nothing changed.
    pub fn retry(&self) -> bool {
        matches!(self, Self::Store(StoreError::Conflict { .. }))
    }

    /// The policy verdict of a denial.
    pub fn verdict(&self) -> Option<&Verdict> {
        match self {
            Self::Denied { verdict, .. } => Some(verdict),
            _ => None,
        }
    }
}
