//! Shared by the backend tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod contract;
pub mod service;
