#!/usr/bin/env python3
"""sigstore-python in-process verification timing (median of RUNS), offline.

usage: .peers/venv/bin/python bench/sp_inprocess.py CASE TRUSTED_ROOT [RUNS]
Each run parses the bundle JSON and calls Verifier.verify_artifact (the trusted root is loaded
once, as custody's in-process benchmark does), for the conformance artifact a.txt and identity.
"""
import statistics
import sys
import time
from pathlib import Path

from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity

CONFORMANCE = Path(__file__).resolve().parent.parent / "../shared/testdata/sigstore-conformance/bundle-verify"
IDENTITY = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"

case, root_path = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 200
bundle_json = (CONFORMANCE / case / "bundle.sigstore.json").read_bytes()
artifact = (CONFORMANCE / "a.txt").read_bytes()
verifier = Verifier(trusted_root=TrustedRoot.from_file(root_path))
policy = Identity(identity=IDENTITY, issuer=ISSUER)


def once():
    verifier.verify_artifact(artifact, Bundle.from_json(bundle_json), policy)


for _ in range(max(10, runs // 10)):
    once()
times = []
for _ in range(runs):
    t = time.perf_counter()
    once()
    times.append(time.perf_counter() - t)
times.sort()
print(f"{case:<22} median {statistics.median(times) * 1e6:8.1f} µs  p10 {times[len(times) // 10] * 1e6:8.1f} µs  p90 {times[len(times) * 9 // 10] * 1e6:8.1f} µs  ({runs} runs)")
