#!/usr/bin/env bash
# Build provenance overhead on a 100,000-file source tree (docs/PERFORMANCE.md, "Build provenance").
# usage: bench/build-provenance.sh [TREE_DIR]   (needs target/release/custody, b3sum, sha256sum)
set -euo pipefail
custody=${CUSTODY:-$PWD/target/release/custody}
tree=${1:-/tmp/custody-bench-tree}
if [ ! -d "$tree" ]; then
  # 100 directories x 1,000 files, 1-8 KiB each (deterministic), about 450 MB.
  python3 - "$tree" <<'PY'
import os, random, sys
root = sys.argv[1]; rnd = random.Random(7)
for d in range(100):
    p = os.path.join(root, f"d{d:03}"); os.makedirs(p)
    for f in range(1000):
        with open(os.path.join(p, f"f{f:04}.bin"), "wb") as fh:
            fh.write(rnd.randbytes(rnd.randint(1024, 8192)))
PY
fi
cd "$tree"
export CUSTODY_PASSWORD=bench
[ -f /tmp/custody-bench.key ] || "$custody" key generate /tmp/custody-bench -q
find . -type f -print0 | xargs -0 cat > /dev/null   # warm the page cache
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); printf '%-70s %6.2f s\n' "$*" "$(echo "$e - $s" | bc)"; }
echo "files: $(find . -type f | wc -l), bytes: $(du -sb . | cut -f1)"
for i in 1 2 3; do
  t sh -c 'find . -type f -print0 | xargs -0 sha256sum'
  t sh -c 'find . -type f -print0 | xargs -0 b3sum'
  t sh -c 'find . -type f -print0 | xargs -0 -P2 -n 2000 sha256sum'
  t "$custody" build --key /tmp/custody-bench.key --artifacts out.bin --bundle /tmp/custody-bench.json -- sh -c 'echo > out.bin'
  rm -f out.bin
done
"$custody" build -o json --key /tmp/custody-bench.key --artifacts out.bin --bundle /tmp/custody-bench.json -- sh -c 'echo > out.bin' | python3 -c 'import json,sys; print("custody timings (ms):", json.load(sys.stdin)["timingsMs"])'
rm -f out.bin
