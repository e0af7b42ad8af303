//! custody-core: the formats, cryptography and verification logic of custody.
//!
//! This crate does no network or storage I/O beyond reading the files it is handed. Everything
//! that parses untrusted input returns a typed error and never panics.
//!
//! The rule that runs through every module: parse into an *unverified* type, verify the exact
//! bytes that were received, and only then hand out a *verified* value.

pub mod bundle;
pub mod digest;
pub mod dsse;
pub mod encoding;
pub mod fsio;
pub mod intoto;
pub mod intoto_legacy;
pub mod jcs;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod rekor;
pub mod sign;
pub mod timestamp;
pub mod tlog;
pub mod trust_root;
pub mod verify;
pub mod x509;
