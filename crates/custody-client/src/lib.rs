//! custody-client: custody's HTTP clients, the other side of `custody-server`.
//!
//! * [`submit`]: the Rekor v2 write API (`POST /api/v2/log/entries`) as a
//!   [`custody_core::sign::LogAppender`], so `sign`, `attest` and `build` log through the one
//!   sign-and-log path in `custody-core`.
//! * [`tiles`]: a blocking C2SP tlog-tiles reader (checkpoint, tiles, entry bundles).
//! * [`audit`], [`monitor`]: recompute a log's tree from its tiles; follow a log and raise alerts.
//! * [`release`]: the release API client (`push`, `approve`, `promote`, `rollback`, `revoke`,
//!   `status`, `history`, `audit`, `key rotate`).
//! * [`loadgen`]: the `custody bench log` load generator.
//!
//! Everything byte-exact (requests, bodies, notes, proofs) comes from `custody-core` and
//! `custody-log`; this crate only moves bytes over HTTP and reports typed errors.

pub mod audit;
pub mod loadgen;
pub mod monitor;
pub mod release;
pub mod submit;
pub mod tiles;
