//! custody-build: the pure parts of `custody build`.
//!
//! Everything here works on values handed in (an environment map, file contents, relative
//! paths): no process is spawned, no git is called, nothing is read from disk. The CLI crate runs
//! the build, asks git and hashes files, then calls in here to decide what is recorded.
//!
//! - [`env`]: which environment variables a provenance may record (allowlist, secret names).
//! - [`ci`]: the builder and source a CI platform describes in its environment.
//! - [`lint`]: pinning findings over Dockerfiles, workflows, manifests and lockfiles.
//! - [`artifacts`]: `--artifacts` globs.
//! - [`provenance`]: the SLSA Provenance v1 document and its in-toto Statement.
//! - [`secrets`]: secret-looking values in recorded text, replaced by a visible marker.

pub mod artifacts;
pub mod ci;
pub mod env;
pub mod lint;
pub mod provenance;
pub mod secrets;

pub use artifacts::{ArtifactGlobs, GlobError};
