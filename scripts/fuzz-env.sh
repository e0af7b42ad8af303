# Sourced by scripts/fuzz.sh: the flags cargo-fuzz passes to rustc (sanitizer coverage for
# libFuzzer, --cfg fuzzing), all stable; no AddressSanitizer (nightly-only, and custody forbids
# unsafe code). Debug assertions and overflow checks come from fuzz/Cargo.toml's profile.
FUZZ_TARGET_TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export FUZZ_TARGET_TRIPLE
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing -Cforce-frame-pointers"
