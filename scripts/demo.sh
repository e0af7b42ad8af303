#!/usr/bin/env bash
# custody's main job on the embedded default: make a key, sign an artifact the moment it is
# built, attest to how it was built, and verify both, as a CI job and a deployer would.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p custody
custody=$PWD/target/release/custody
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export CUSTODY_PASSWORD=demo-password
set -x
"$custody" key generate release
echo "hello from custody $(date -u +%FT%TZ)" > app.tar
"$custody" sign app.tar --key release.key
printf '{"buildType":"https://example.com/demo","builder":{"id":"demo"}}' > predicate.json
"$custody" attest app.tar --key release.key --type https://example.com/demo/v1 --predicate predicate.json
"$custody" verify app.tar --key release.pub
"$custody" verify app.tar --bundle app.tar.intoto.sigstore.json --key release.pub --output json
echo tampered >> app.tar
if "$custody" verify app.tar --key release.pub; then echo "tampered artifact verified?!"; exit 1; fi
{ set +x; } 2>/dev/null
echo "demo OK: the tampered artifact was refused (exit 1)"
