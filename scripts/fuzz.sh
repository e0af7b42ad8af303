#!/usr/bin/env bash
# Coverage-guided fuzzing of custody's parsers (libFuzzer, stable toolchain): see docs/fuzzing.md.
#
#   scripts/fuzz.sh smoke [SECONDS]              build, run every target SECONDS (default 15); fail on any crash
#   scripts/fuzz.sh campaign SECONDS [TARGET..]  the same, longer, and a summary in fuzz/out/summary.md
#   scripts/fuzz.sh build                        build the targets only
#   scripts/fuzz.sh list                         the targets
#
# Environment: FUZZ_SMOKE_OPT_LEVEL (smoke builds' opt-level; default 1), FUZZ_JOBS (fuzzers at once; default min(2, cores)), FUZZ_TARGETS (a space-separated
# subset), FUZZ_RSS_MB (default 2048), FUZZ_TIMEOUT (seconds one input may take; default 10).
# The corpus lives in fuzz/corpus/<target> (gitignored; seeded from ../shared/testdata and
# fuzz/seeds on every run, and kept between runs); crashes go to fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
fuzz=$repo/fuzz
# shellcheck source=scripts/fuzz-env.sh
source "$repo/scripts/fuzz-env.sh"
bin_dir=$fuzz/target/$FUZZ_TARGET_TRIPLE/release
out=$fuzz/out
jobs=${FUZZ_JOBS:-$(( $(nproc) < 2 ? $(nproc) : 2 ))}

targets() {
  if [ -n "${FUZZ_TARGETS:-}" ]; then echo "$FUZZ_TARGETS" | tr ' ' '\n'; return; fi
  sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz/Cargo.toml" | grep -v '^custody-fuzz$'
}

build() {
  local start=$SECONDS
  (cd "$fuzz" && cargo build --release --locked --target "$FUZZ_TARGET_TRIPLE" --bins)
  echo "fuzz: built $(targets | wc -l) targets in $((SECONDS - start)) s"
}

seed() {
  python3 "$repo/scripts/fuzz-seeds.py" "$fuzz/corpus" >/dev/null
}

# run TARGET SECONDS: one fuzzer; prints one line; exit status non-zero on a finding.
run_one() {
  local t=$1 secs=$2 log=$out/$1.log
  mkdir -p "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
  local status=0
  "$bin_dir/$t" "$fuzz/corpus/$t" -max_total_time="$secs" -print_final_stats=1 \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout="${FUZZ_TIMEOUT:-10}" -max_len=262144 \
    -artifact_prefix="$fuzz/artifacts/$t/" -close_fd_mask=1 >"$log" 2>&1 || status=$?
  local execs rate cov ft corpus findings
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corpus=$(find "$fuzz/corpus/$t" -type f | wc -l)
  findings=$(find "$fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  printf '%-16s execs %10s  exec/s %6s  cov %5s  ft %6s  corpus %5s  findings %s%s\n' \
    "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$findings" \
    "$([ "$status" -ne 0 ] && echo "  FAILED (exit $status, see fuzz/out/$t.log)")"
  [ "$status" -eq 0 ]
}

run_all() {
  local secs=$1
  shift
  mkdir -p "$out"
  seed
  local failed=0 running=0
  local -a list
  if [ $# -gt 0 ]; then list=("$@"); else mapfile -t list < <(targets); fi
  for t in "${list[@]}"; do
    [ -x "$bin_dir/$t" ] || { echo "fuzz: no target $t (scripts/fuzz.sh list)" >&2; exit 2; }
  done
  for t in "${list[@]}"; do
    run_one "$t" "$secs" >"$out/$t.line" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n || failed=1; running=$((running - 1)); fi
  done
  while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
  for t in "${list[@]}"; do cat "$out/$t.line"; done
  return $failed
}

mode=${1:-smoke}
case "$mode" in
  list) targets ;;
  build) build ;;
  smoke)
    # A smoke run wants the targets built quickly more than fast: opt-level 1 roughly halves
    # the instrumented build (most of the smoke run's cost in CI); campaigns keep opt-level 3.
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=${FUZZ_SMOKE_OPT_LEVEL:-1}
    build
    start=$SECONDS
    if run_all "${2:-15}"; then
      echo "fuzz smoke: no crash in $(targets | wc -l) targets ($((SECONDS - start)) s)"
    else
      echo "fuzz smoke: FAILED: a target crashed, timed out or ran out of memory; the input is in fuzz/artifacts/<target>/ (docs/fuzzing.md: reproduce)" >&2
      exit 1
    fi
    ;;
  campaign)
    secs=${2:?usage: scripts/fuzz.sh campaign SECONDS [TARGET...]}
    shift 2
    build
    status=0
    run_all "$secs" "$@" | tee "$out/campaign.txt" || status=1
    {
      echo "# custody fuzz campaign, $(date -u +%Y-%m-%dT%H:%MZ), $secs s per target, $jobs at once"
      echo
      echo '```'
      cat "$out/campaign.txt"
      echo '```'
    } >"$out/summary.md"
    echo "fuzz campaign: summary in fuzz/out/summary.md"
    exit $status
    ;;
  *) echo "usage: scripts/fuzz.sh smoke [SECONDS] | campaign SECONDS [TARGET...] | build | list" >&2; exit 2 ;;
esac
