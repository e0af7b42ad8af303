//! custody-server: the transparency log's HTTP side.
//!
//! * [`serve`]: the log server: C2SP tlog-tiles read API (`/checkpoint`, `/tile/...`), the
//!   Rekor v2 write API (`POST /api/v2/log/entries`), `trusted_root.json`, `/healthz`, and a
//!   background task that has each configured witness cosign every new checkpoint.
//! * [`store`], [`gate`], [`admission`]: the evidence store (SQLite), the policy gate with its
//!   decision cache and decision log, and the Kubernetes validating admission webhook
//!   (`/api/v1/evidence`, `/api/v1/gate/*`, `/api/v1/admission`); [`tls`] serves it all over
//!   rustls.
//! * releases (`--release-config`): `release_api` is HTTP only (typed request → the
//!   `custody_release::service::ReleaseService` → answer); [`release`] implements the
//!   service's log interface over this server's log, [`metrics`] its observer; [`auth`] says
//!   who is calling; `response` shapes every answer and maps `ReleaseError` to a status.
//! * [`witness`]: a C2SP tlog-witness (`POST /add-checkpoint`) with a durable state file.
//!
//! The clients of these APIs (tile reader, audit, monitor, log submit, load generator) are in
//! `custody-client`; Rekor v2 requests are parsed and built in `custody_core::rekor::request`.
//!
//! Everything byte-exact comes from `custody-core` (notes, Merkle proofs) and `custody-log`
//! (tile paths and bundles); this crate is HTTP plumbing and policy.

pub mod admission;
mod admit_pool;
pub mod auth;
pub mod entry;
pub mod gate;
mod gate_api;
pub mod identity;
pub mod listener;
pub mod metrics;
mod read_api;
pub mod release;
mod release_api;
mod response;
mod server;
pub mod tls;
pub mod witness;
mod witness_push;
mod write_api;

pub use server::{ServerConfig, WitnessTarget, serve};
