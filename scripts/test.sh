#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
# Interop tests use the peers in ./.peers and fail (not skip) when a peer is missing.
# Then the fuzz smoke run (scripts/fuzz.sh smoke: every fuzz target briefly).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CUSTODY_PEERS="$PWD/.peers"
cargo test --workspace --locked "$@"
# Coverage-guided fuzzing: every parser target built with libFuzzer and run briefly; any crash
# fails the run (docs/fuzzing.md). FUZZ_SMOKE_SECONDS sets the time per target.
bash scripts/fuzz.sh smoke "${FUZZ_SMOKE_SECONDS:-15}"
