#!/usr/bin/env bash
# Benchmarks for the foundation (docs/PERFORMANCE.md): SHA-256 throughput of a large file in page
# cache against sha256sum, and `custody verify` of a small file as a whole process against
# sigstore-js on the same bundle. Side by side in one run; medians and ratios.
# Needs: hyperfine (Debian), the peers in ./.peers (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --release --locked -q -p custody
custody=$root/target/release/custody
size_mib=${BENCH_SIZE_MIB:-2048}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

head -c $((size_mib << 20)) /dev/urandom > big.bin
cat big.bin > /dev/null   # into page cache
hyperfine -N --warmup 1 --runs 7 --export-json hash.json \
  "$custody digest big.bin" "sha256sum big.bin" "taskset -c 0 $custody digest big.bin" >/dev/null

export CUSTODY_PASSWORD=bench
"$custody" -q key generate k
echo "small artifact" > small.txt
"$custody" -q sign small.txt --key k.key
node_cmd="node $root/crates/custody/tests/peers/sjs-verify.js --bundle small.txt.sigstore.json --trusted-root $root/../shared/testdata/sigstore-trust-root/public-good.trusted_root.json --key k.pub --tlog-threshold 0 --timestamp-threshold 0 small.txt"
NODE_PATH=$root/.peers/npm/node_modules hyperfine -N --warmup 10 --runs 200 --export-json verify.json \
  "$custody verify small.txt --key k.pub" >/dev/null
NODE_PATH=$root/.peers/npm/node_modules hyperfine -N --warmup 3 --runs 30 --export-json verify-sjs.json \
  "$node_cmd" >/dev/null

python3 - "$size_mib" <<'PY'
import json, sys
size = int(sys.argv[1]) * 2**20
def med(f, i=0):
    return json.load(open(f))["results"][i]["median"]
def cpu(f, i=0):
    # Mean user+system CPU seconds: robust when other processes share the cores.
    r = json.load(open(f))["results"][i]
    return r["user"] + r["system"]
h_c, h_s, h_c1 = med("hash.json", 0), med("hash.json", 1), med("hash.json", 2)
v_c, v_j = med("verify.json"), med("verify-sjs.json")
c_c, c_s = cpu("hash.json", 0), cpu("hash.json", 1)
print(f"| SHA-256 of a {size>>20} MiB file in page cache, wall | custody digest: {size/h_c/1e9:.2f} GB/s (pinned to one core: {size/h_c1/1e9:.2f} GB/s) | sha256sum: {size/h_s/1e9:.2f} GB/s | {h_s/h_c:.1f}x |")
print(f"| same, per CPU-second (user+sys) | custody digest: {size/c_c/1e9:.2f} GB/s | sha256sum: {size/c_s/1e9:.2f} GB/s | {c_s/c_c:.1f}x |")
print(f"| verify a small file with a key bundle, whole process | custody verify: {v_c*1e3:.2f} ms | sigstore-js (node sjs-verify.js): {v_j*1e3:.1f} ms | {v_j/v_c:.0f}x |")
PY
