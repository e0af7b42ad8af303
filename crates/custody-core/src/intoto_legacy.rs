//! in-toto legacy metadata (spec v0.9/v1.0): layouts and links, as python in-toto 3.x writes
//! and verifies them.
//!
//! * [`canonical`]: securesystemslib canonical JSON, the bytes classic signatures cover.
//! * [`key`]: securesystemslib key objects and their two key id computations.
//! * [`metadata`]: the Metablock and DSSE wrappers: parse (unverified), verify, sign.
//! * [`model`]: Layout, Step, Inspection, Link.
//! * [`params`]: `{NAME}` layout parameter substitution.
//! * [`rules`]: artifact rules and their queue semantics.
//! * [`verify`]: the verification algorithm of `in_toto_verify`.
//! * [`record`]: hashing materials and products for a link.
//!
//! Running commands (for `intoto run` and for inspections) is the caller's business: this
//! crate does not start processes; [`verify::InspectionRunner`] is how the verifier asks.

pub mod canonical;
mod error;
pub mod key;
pub mod metadata;
pub mod model;
pub mod params;
pub mod record;
pub mod rules;
pub mod verify;

pub use error::{MetadataError, VerifyError};
pub use key::SslibKey;
pub use metadata::Metadata;
pub use model::{Artifacts, DigestSet, Inspection, Layout, Link, Step};
pub use verify::{InspectionRunner, VerifiedChain, VerifyOptions, in_toto_verify};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
