#!/usr/bin/env bash
# custody's main job on the embedded default, as a CI job and a deployer would run it:
# build with SLSA provenance signed the moment the artifact exists, log it in a transparency log
# (custody serve, SQLite under a data directory: nothing to install), then let the policy gate
# decide from verified evidence, sign its verdict (a SLSA VSA), accept that VSA on the fast path,
# and refuse a tampered artifact with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p custody
custody=$PWD/target/release/custody
work=$(mktemp -d)
serve_pid=
cleanup() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
export CUSTODY_PASSWORD=demo-password

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "keys: one for the build, one for the gate"
"$custody" key generate release
"$custody" key generate gate

step "a transparency log on the embedded default"
head -c 24 /dev/urandom | base64 > token
"$custody" serve --listen 127.0.0.1:0 --origin demo.log --data-dir logdata --write-token-file token > serve.out &
serve_pid=$!
for _ in $(seq 100); do grep -q listening serve.out 2>/dev/null && break; sleep 0.1; done
url=$(awk '/listening/ {print $NF; exit}' serve.out)
echo "log at $url"
"$custody" trust-root export --server "$url" --out trusted_root.json

step "build: provenance signed and logged at once"
set -x
"$custody" build --key release.key --artifacts app.tar --log "$url" --log-token-file token \
    -- sh -c 'echo "hello from custody" > app.tar'
{ set +x; } 2>/dev/null

step "the gate: a starter policy trusting the release key, requiring a log entry"
kid=$("$custody" key inspect release.pub -o json | sed 's/.*"keyId":"\([0-9a-f]*\)".*/\1/')
"$custody" policy init policy --trust-key-id "$kid"
sed -i 's/"tlog": false/"tlog": true/; s/"clean": true/"clean": false/' policy/data.json
"$custody" policy test policy
set -x
"$custody" verify app.tar --policy policy --key release.pub --trusted-root trusted_root.json \
    --env prod --stage production \
    --vsa-out app.vsa.json --vsa-key gate.key --log "$url" --log-token-file token
"$custody" verify app.tar --accept-vsa app.vsa.json --gate-key gate.pub --env prod
{ set +x; } 2>/dev/null

step "a tampered artifact is denied, with the reason"
echo tampered >> app.tar
set -x
if "$custody" verify app.tar --policy policy --key release.pub --trusted-root trusted_root.json --env prod; then
    { set +x; } 2>/dev/null; echo "tampered artifact allowed?!"; exit 1
fi
if "$custody" verify app.tar --accept-vsa app.vsa.json --gate-key gate.pub; then
    { set +x; } 2>/dev/null; echo "tampered artifact accepted by VSA?!"; exit 1
fi
{ set +x; } 2>/dev/null
echo
echo "demo OK: built, logged, allowed by policy with a signed VSA; the tampered artifact was denied (exit 1)"
