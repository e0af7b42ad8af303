#!/usr/bin/env bash
# Releases under measurement: starts `custody serve --release-config` (release build, SQLite),
# pushes N signed artifacts, then times over loopback HTTP (curl's time_total):
#   * promotion: POST /api/v1/promotions into `dev` (gate decision over the evidence, release
#     statement + VSA signed and logged, compare-and-swap append), N times;
#   * revocation: POST /api/v1/revocations of the current release's digest (signed by an admin
#     key), which reconciles over the whole history (verifies every released artifact's
#     evidence against every revocation), quarantines and rolls `dev` back: R times, each on a
#     history one release shorter.
# Prints medians and p90 in milliseconds.
#
#   bench/release.sh [N]      (default 50; R = 5)
#
# Environment: BENCH_NO_BUILD=1, BENCH_BIN=PATH. Needs curl, jq.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
r=5
if [ -n "${BENCH_BIN:-}" ]; then
    bin=$BENCH_BIN
else
    [ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -q -p custody
    bin=$PWD/target/release/custody
fi
work=$(mktemp -d /tmp/custody-release-bench.XXXXXX)
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
export CUSTODY_PASSWORD=bench
cd "$work"
"$bin" key generate release >/dev/null 2>&1
"$bin" key generate ci >/dev/null 2>&1
"$bin" key generate sec >/dev/null 2>&1
kid=$("$bin" key inspect ci.pub -o json | jq -r .keyId)
"$bin" policy init policy --trust-key-id "$kid" >/dev/null
jq '.custody.config.provenance.required = false' policy/data.json >p.json && mv p.json policy/data.json
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
cat >release.toml <<EOF
[[environment]]
name = "dev"
policy = "policy"
[[principal]]
name = "ci"
token_sha256 = "$(sha ci-token)"
roles = ["builder", "release-manager"]
keys = ["ci.pub"]
[[principal]]
name = "sec"
token_sha256 = "$(sha sec-token)"
roles = ["admin"]
keys = ["sec.pub"]
EOF
"$bin" serve --listen 127.0.0.1:0 --data-dir srv --release-config release.toml \
    --release-key release.key --insecure-allow-unauthenticated-writes >serve.out 2>serve.err &
server_pid=$!
for _ in $(seq 100); do grep -q listening serve.out 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on //p' serve.out)
export CUSTODY_SERVER=$url
mkdir -p a
digests=()
for i in $(seq "$n"); do
    echo "artifact $i" >a/app$i.bin
    "$bin" sign a/app$i.bin --key ci.key >/dev/null 2>&1
    CUSTODY_TOKEN=ci-token "$bin" push a/app$i.bin >/dev/null
    digests+=("sha256:$(sha256sum a/app$i.bin | cut -d' ' -f1)")
done
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms, p90 %.1f ms (n=%d)\n", a[int((NR+1)/2)]*1000, a[int(NR*0.9+0.5)]*1000, NR}'; }
: >promote.t
for d in "${digests[@]}"; do
    curl -s -o /dev/null -w '%{time_total}\n' -H "authorization: Bearer ci-token" \
        -H 'content-type: application/json' \
        -d "{\"digest\":\"$d\",\"to\":\"dev\"}" "$url/api/v1/promotions" >>promote.t
done
echo "promotion into dev ($n artifacts): $(stats <promote.t)"
: >revoke.t
: >reconcile.t
for i in $(seq "$r"); do
    d=${digests[$((n - i))]}
    start=$(date +%s%N)
    "$bin" revoke "digest:$d" --reason bench --key sec.key --server "$url" --token sec-token >/dev/null
    echo "$(( $(date +%s%N) - start ))" | awk '{print $1/1e9}' >>revoke.t
    curl -s -o /dev/null -w '%{time_total}\n' -X POST -H "authorization: Bearer sec-token" \
        "$url/api/v1/reconcile" >>reconcile.t
done
echo "custody revoke (CLI: key decryption, sign, quarantine, rollback of dev): $(stats <revoke.t)"
echo "reconcile pass over a history of $n releases with $r revocations: $(stats <reconcile.t)"
curl -s "$url/api/v1/environments" -H "authorization: Bearer ci-token" | jq -c '.environments[0].current | {seq, digest}'
