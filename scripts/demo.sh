#!/usr/bin/env bash
# custody's main job on the embedded default, as a CI job and a deployer would run it:
# build with SLSA provenance signed the moment the artifact exists, log it in a transparency log
# (custody serve, SQLite under a data directory: nothing to install), then let the policy gate
# decide from verified evidence, sign its verdict (a SLSA VSA), accept that VSA on the fast path,
# and refuse a tampered artifact with the reason. Then the release server: push, promote
# dev -> prod with an approval, deploy, revoke the key that signed release 2, and watch prod
# roll back to release 1.
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
step "releases: restart the server with environments dev -> prod and principals"
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
"$custody" key generate ci2 >/dev/null
"$custody" key generate alice >/dev/null
"$custody" key generate sec >/dev/null
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
cat > release.toml <<EOF
[[environment]]
name = "dev"
policy = "policy"
[[environment]]
name = "prod"
from = "dev"
policy = "policy"
target = "dir:srv/prod"
approvals = { required = 1, group = "ops" }
[[principal]]
name = "ci"
token_sha256 = "$(sha ci-token)"
roles = ["builder", "release-manager"]
keys = ["release.pub", "ci2.pub"]
[[principal]]
name = "alice"
token_sha256 = "$(sha alice-token)"
roles = ["approver"]
groups = ["ops"]
keys = ["alice.pub"]
[[principal]]
name = "sec"
token_sha256 = "$(sha sec-token)"
roles = ["admin", "auditor"]
keys = ["sec.pub"]
[[principal]]
name = "prod-agent"
token_sha256 = "$(sha agent-token)"
roles = ["deployer"]
environments = ["prod"]
EOF
ci2=$("$custody" key inspect ci2.pub -o json | sed 's/.*"keyId":"\([0-9a-f]*\)".*/\1/')
sed -i "s/\"$kid\"/\"$kid\", \"$ci2\"/" policy/data.json   # trust ci2's key as a signer too
"$custody" serve --listen 127.0.0.1:0 --origin demo.log --data-dir logdata --write-token-file token \
    --release-config release.toml --release-key gate.key --gate-trusted-root trusted_root.json > serve.out &
serve_pid=$!
for _ in $(seq 100); do grep -q listening serve.out 2>/dev/null && break; sleep 0.1; done
CUSTODY_SERVER=$(awk '/listening/ {print $NF; exit}' serve.out)
export CUSTODY_SERVER

release() {  # release N KEY: build, push, promote to dev, approve, promote to prod, deploy
    mkdir -p "r$1"
    (cd "r$1" && "$custody" build --key "../$2" --artifacts app.bin --log "$CUSTODY_SERVER" \
        --log-token-file ../token -- sh -c "echo release $1 > app.bin" >/dev/null)
    CUSTODY_TOKEN=ci-token "$custody" push "r$1/app.bin"
    CUSTODY_TOKEN=ci-token "$custody" promote "r$1/app.bin" --to dev
    CUSTODY_TOKEN=alice-token "$custody" approve "r$1/app.bin" --env prod --key alice.key
    CUSTODY_TOKEN=ci-token "$custody" promote "r$1/app.bin" --to prod
    CUSTODY_TOKEN=agent-token "$custody" deploy prod --target dir:srv/prod --release-key gate.pub \
        --trusted-root trusted_root.json --state state
}
set -x
release 1 release.key
release 2 ci2.key
cat srv/prod/current/*
CUSTODY_TOKEN=sec-token "$custody" revoke "key:$ci2" --reason "CI runner 2 compromised" --key sec.key
CUSTODY_TOKEN=agent-token "$custody" deploy prod --target dir:srv/prod --release-key gate.pub \
    --trusted-root trusted_root.json --state state
cat srv/prod/current/*
CUSTODY_TOKEN=sec-token "$custody" status --incidents
CUSTODY_TOKEN=sec-token "$custody" history r2/app.bin --release-key gate.pub --trusted-root trusted_root.json \
    --trusted-key ci2.pub --trusted-key alice.pub
CUSTODY_TOKEN=ci-token "$custody" audit prod --release-key gate.pub --trusted-root trusted_root.json \
    --target dir:srv/prod
{ set +x; } 2>/dev/null
grep -q "release 1" srv/prod/current/* || { echo "prod did not roll back?!"; exit 1; }

echo
echo "demo OK: built, logged, allowed by policy with a signed VSA; the tampered artifact was denied (exit 1);"
echo "         released 1 and 2 to prod with an approval; revoking release 2's key rolled prod back to release 1"
