#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
# Interop tests use the peers in ./.peers and fail (not skip) when a peer is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CUSTODY_PEERS="$PWD/.peers"
cargo test --workspace --locked "$@"
