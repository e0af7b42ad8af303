#!/usr/bin/env bash
# Installs everything custody's test suite needs on a fresh Debian machine (run as root):
# Debian packages, then the peer verifiers (sigstore-python, sigstore-js, python in-toto) into
# ./.peers. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null || need+=(openssl)
{ command -v node >/dev/null && command -v npm >/dev/null; } || need+=(nodejs npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# custody-log's PostgreSQL tests start a private server (initdb + pg_ctl) from these binaries.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# The in-toto tests sign with GPG through python in-toto (custody refuses GPG by name).
command -v gpg >/dev/null || need+=(gnupg)
# custody build --reproduce / rebuild --compare-with explain differences with diffoscope
# (diffoscope-minimal: the core tool, without its many optional comparators).
command -v diffoscope >/dev/null || need+=(diffoscope-minimal)
# scripts/fuzz.sh: libfuzzer-sys compiles libFuzzer (C++); the seed script is Python.
command -v g++ >/dev/null || need+=(g++)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

shared=${CUSTODY_SHARED:-../shared}
if [ ! -x .peers/venv/bin/sigstore ] || [ ! -d .peers/npm/node_modules/@sigstore/verify ]; then
  bash "$shared/peers/install.sh" .peers
fi
