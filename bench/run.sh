#!/usr/bin/env bash
# Sigstore bundle verification: custody vs sigstore-python vs sigstore-js, same machine, same run.
# usage: bench/run.sh            (from the worktree root; needs .peers and a release build:
#                                 cargo build --release -p custody --bin custody &&
#                                 cargo build --release -p custody-core --example bench_keyless)
# Writes nothing outside $TMPDIR; prints the figures docs/PERFORMANCE.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."
C=../shared/testdata/sigstore-conformance/bundle-verify
PROD="../shared/testdata/sigstore-python/embedded-tuf-store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json"
R2="$C/rekor2-happy-path/trusted_root.json"
ID=https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main
ISS=https://token.actions.githubusercontent.com
CUSTODY=target/release/custody
PY=.peers/venv/bin/python
export NODE_PATH=.peers/npm/node_modules
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 ../shared/peers/trust-config.py "$PROD" "$WORK/tc-prod.json"
python3 ../shared/peers/trust-config.py "$R2" "$WORK/tc-r2.json"

echo "== in-process (median; trusted root parsed once) =="
target/release/examples/bench_keyless 2000
for case in happy-path-v0.3 rekor2-happy-path; do
  root=$PROD; [ "$case" = rekor2-happy-path ] && root=$R2
  echo -n "sigstore-python  "; $PY bench/sp_inprocess.py "$case" "$root" 200
  echo -n "sigstore-js      "; node bench/sjs_inprocess.js "$case" "$root" 200
done

echo "== whole process =="
for case in happy-path-v0.3 rekor2-happy-path; do
  root=$PROD; tc=$WORK/tc-prod.json
  [ "$case" = rekor2-happy-path ] && root=$R2 && tc=$WORK/tc-r2.json
  B=$C/$case/bundle.sigstore.json
  hyperfine -N --warmup 10 --runs 100 --export-markdown "$WORK/$case-custody.md" \
    "$CUSTODY verify $C/a.txt --bundle $B --trusted-root $root --certificate-identity $ID --certificate-oidc-issuer $ISS"
  hyperfine -N --warmup 3 --runs 30 --export-markdown "$WORK/$case-sjs.md" \
    "node ../shared/peers/sjs-verify.js --bundle $B --trusted-root $root --identity $ID --issuer $ISS $C/a.txt"
  hyperfine -N --warmup 2 --runs 10 --export-markdown "$WORK/$case-sp.md" \
    ".peers/venv/bin/sigstore --trust-config $tc verify identity --offline --bundle $B --cert-identity $ID --cert-oidc-issuer $ISS $C/a.txt"
done

echo "== batch: 10,000 copies of happy-path-v0.3 through --bundles-from =="
mkdir -p "$WORK/batch"
for i in $(seq 1 10000); do
  cp "$C/happy-path-v0.3/bundle.sigstore.json" "$WORK/batch/$i.sigstore.json"
  echo "$C/a.txt $WORK/batch/$i.sigstore.json"
done > "$WORK/list"
for jobs in 1 2; do
  hyperfine -N --warmup 1 --runs 5 \
    "$CUSTODY -q verify --bundles-from $WORK/list --jobs $jobs --trusted-root $PROD --certificate-identity $ID --certificate-oidc-issuer $ISS"
done
