#!/usr/bin/env python3
"""Builds each fuzz target's seed corpus from the real vectors in ../shared/testdata, custody's
own fixtures and the small hand-made seeds in fuzz/seeds/<target>/.

Usage: fuzz-seeds.py OUT_DIR   (writes OUT_DIR/<target>/<sha1> files; OUT_DIR is gitignored)
"""
import base64
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CUSTODY_SHARED", ROOT.parent / "shared")) / "testdata"
OUT = Path(sys.argv[1])
CORPUS = {}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    if data:
        CORPUS.setdefault(target, {})[hashlib.sha1(data).hexdigest()] = data


def b64(text):
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except Exception:
        return b""


def pem_blocks(text):
    out, cur = [], None
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            cur = []
        elif line.startswith("-----END") and cur is not None:
            out.append(b64("".join(cur)))
            cur = None
        elif cur is not None:
            cur.append(line.strip())
    return out


def load_json(path):
    try:
        return json.loads(path.read_bytes())
    except Exception:
        return None


def len2(first, rest):
    return struct.pack(">H", len(first)) + first + rest


def files(pattern, base=SHARED):
    return sorted(p for p in base.glob(pattern) if p.is_file())


if not SHARED.is_dir():
    sys.exit(f"fuzz-seeds: {SHARED} is missing: check out ../shared beside the repository")

# Bundles: every Sigstore bundle in testdata, and what is inside them.
bundles = [p for p in files("**/*") if p.name.endswith((".sigstore.json", ".sigstore")) or p.name.endswith(".bundle.json")]
for p in bundles:
    raw = p.read_bytes()
    add("bundle", raw)
    add("policy_input", raw)
    doc = load_json(p)
    if not isinstance(doc, dict):
        continue
    vm = doc.get("verificationMaterial") or {}
    certs = []
    if "certificate" in vm:
        certs.append(b64(vm["certificate"].get("rawBytes", "")))
    for c in (vm.get("x509CertificateChain") or {}).get("certificates", []):
        certs.append(b64(c.get("rawBytes", "")))
    for c in certs:
        add("x509", c)
    if len(certs) > 1:
        add("x509", len2(certs[0], certs[1]))
    env = doc.get("dsseEnvelope")
    sig = b""
    if env:
        add("dsse", json.dumps(env))
        add("statement", b64(env.get("payload", "")))
        sig = b64((env.get("signatures") or [{}])[0].get("sig", ""))
    ms = doc.get("messageSignature")
    if ms:
        sig = b64(ms.get("signature", ""))
    for ts in (vm.get("timestampVerificationData") or {}).get("rfc3161Timestamps", []):
        add("timestamp", len2(sig, b64(ts.get("signedTimestamp", ""))))
    for entry in vm.get("tlogEntries", []):
        body = b64(entry.get("canonicalizedBody", ""))
        add("rekor_body", body)
        cp = ((entry.get("inclusionProof") or {}).get("checkpoint") or {}).get("envelope")
        if cp:
            add("note", cp)
        # An entry bundle of this body, twice: what a tile client decodes.
        add("tiles", struct.pack(">H", len(body)) + body + struct.pack(">H", len(body)) + body)
        # A Rekor v2 request rebuilt from a v2 body: what a client POSTs.
        body_doc = None
        try:
            body_doc = json.loads(body)
        except Exception:
            pass
        spec = (body_doc or {}).get("spec") or {}
        hr = spec.get("hashedRekordV002")
        if hr:
            add("rekor_request", json.dumps({"hashedRekordRequestV002": {
                "digest": hr["data"]["digest"], "signature": hr["signature"]}}))
        ds = spec.get("dsseV002")
        if ds and env:
            add("rekor_request", json.dumps({"dsseRequestV002": {
                "envelope": env, "verifiers": [s["verifier"] for s in ds.get("signatures", [])]}}))

# The managed-key bundle as a Rekor v2 hashedrekord request with a public key.
mk = SHARED / "sigstore-conformance/bundle-verify/managed-key-happy-path"
if mk.is_dir():
    key = pem_blocks((mk / "key.pub").read_text())[0]
    sig = json.loads((mk / "bundle.sigstore.json").read_bytes())["messageSignature"]["signature"]
    digest = hashlib.sha256((SHARED / "sigstore-conformance/a.txt").read_bytes()).digest()
    add("rekor_request", json.dumps({"hashedRekordRequestV002": {
        "digest": base64.b64encode(digest).decode(), "signature": {"content": sig, "verifier": {
            "publicKey": {"rawBytes": base64.b64encode(key).decode()},
            "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}}))

# Trusted roots, signing configs, client trust configs; their certificates and keys.
for p in files("**/*.json"):
    if not any(k in p.name for k in ("trusted_root", "signing_config", "trust_config")):
        continue
    raw = p.read_bytes()
    add("trust_root", raw)
    doc = load_json(p)
    if not isinstance(doc, dict):
        continue
    root = doc.get("trustedRoot", doc)
    for ca in root.get("certificateAuthorities", []) + root.get("timestampAuthorities", []):
        add("trust_root", json.dumps(ca))
        chain = [b64(c.get("rawBytes", "")) for c in (ca.get("certChain") or {}).get("certificates", [])]
        for c in chain:
            add("x509", c)
        if len(chain) > 1:
            add("x509", len2(chain[0], chain[1]))
    for log in root.get("tlogs", []) + root.get("ctlogs", []):
        add("keys", b64((log.get("publicKey") or {}).get("rawBytes", "")))

# Certificates and keys in PEM files.
for p in files("**/*.pem") + files("**/*.crt") + files("**/*.pub"):
    text = p.read_text(errors="replace")
    if "CERTIFICATE" in text:
        ders = pem_blocks(text)
        for d in ders:
            add("x509", d)
        if len(ders) > 1:
            add("x509", len2(ders[0], b"".join(ders[1:2])))
    elif "PUBLIC KEY" in text:
        add("keys", text)
        for d in pem_blocks(text):
            add("keys", d)

# DSSE envelopes and in-toto metadata.
for p in files("dsse-spec/**/*.json"):
    add("dsse", p.read_bytes())
dv = load_json(SHARED / "dsse/hello_world_vector.json")
if dv:
    add("dsse", json.dumps(dv["envelope"]))
for p in files("in-toto-python/**/*.link") + files("in-toto-python/**/*.layout*"):
    add("intoto_legacy", p.read_bytes())
    doc = load_json(p)
    if isinstance(doc, dict) and "payload" in doc:
        add("dsse", p.read_bytes())

# in-toto statements and SLSA provenance.
for p in files("in-toto-attestation*/**/*.json") + files("slsa/*.json") + files("sigstore-conformance/statement.json"):
    add("statement", p.read_bytes())

# Signed notes and checkpoints.
for p in files("signed-notes/**/*") + files("c2sp/*") + files("sigstore-derived/**/*"):
    if p.suffix in (".note", ".checkpoint", ".txt") or "checkpoint" in p.name:
        add("note", p.read_bytes())

# custody's own fixtures: AdmissionReviews.
for p in files("crates/custody/tests/fixtures/admission/*.json", ROOT):
    add("admission", p.read_bytes())

# Hand-made seeds committed in fuzz/seeds/<target>/.
for d in sorted((ROOT / "fuzz/seeds").iterdir()):
    for p in sorted(d.iterdir()):
        add(d.name, p.read_bytes())

for target, seeds in sorted(CORPUS.items()):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (d / name).write_bytes(data)
    print(f"seeds {target}: {len(seeds)}")
