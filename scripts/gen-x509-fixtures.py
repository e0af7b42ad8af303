#!/usr/bin/env python3
"""Generates the attack-named X.509 fixtures in crates/custody-core/tests/fixtures/x509/.

Run once; the outputs are committed. Needs python `cryptography`. Every fixture is signed by a
throwaway test CA (`root.der`, and `intermediate.der` under it); none is trusted anywhere else.
Validity: 2024-01-01T00:00:00Z .. 2024-01-01T00:10:00Z for leaves (Fulcio-like ten minutes),
2024..2034 for CAs.
"""
import datetime, os, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID, ObjectIdentifier
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

OUT = os.path.join(os.path.dirname(__file__), "../crates/custody-core/tests/fixtures/x509")
T0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
GHA = "https://token.actions.githubusercontent.com"

def utf8(s):  # DER UTF8String
    b = s.encode()
    assert len(b) < 128
    return bytes([0x0C, len(b)]) + b

def fulcio(arc, value):
    return x509.UnrecognizedExtension(ObjectIdentifier(f"1.3.6.1.4.1.57264.1.{arc}"), value)

def key():
    return ec.generate_private_key(ec.SECP256R1())

def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "custody.test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])

def ca(subject, k, issuer, issuer_key, path_len, bc_critical=True, cert_sign=True, ca_flag=True):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(T0).not_valid_after(T0 + datetime.timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=path_len), critical=bc_critical)
         .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                                      crl_sign=True, encipher_only=False, decipher_only=False), critical=True))
    return b.sign(issuer_key, hashes.SHA384())

def leaf(issuer_cert, issuer_key, san=("uri", "https://github.com/good/x"), exts=(), subject=None,
         eku=(ExtendedKeyUsageOID.CODE_SIGNING,), ca_flag=None, minutes=10):
    b = (x509.CertificateBuilder().subject_name(subject or x509.Name([]))
         .issuer_name(issuer_cert.subject).public_key(key().public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(T0).not_valid_after(T0 + datetime.timedelta(minutes=minutes))
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=True))
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if san:
        names = {"uri": x509.UniformResourceIdentifier, "email": x509.RFC822Name, "dns": x509.DNSName}
        sans = san if isinstance(san, list) else [san]
        b = b.add_extension(x509.SubjectAlternativeName([names[k](v) for k, v in sans]), critical=True)
    if ca_flag is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
    for e, critical in exts:
        b = b.add_extension(e, critical=critical)
    return b.sign(issuer_key, hashes.SHA256())

def write(fname, cert):
    with open(os.path.join(OUT, fname), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.DER))

def main():
    os.makedirs(OUT, exist_ok=True)
    rk, ik = key(), key()
    root = ca(name("custody-test-root"), rk, name("custody-test-root"), rk, 1)
    inter = ca(name("custody-test-intermediate"), ik, root.subject, rk, 0)
    write("root.der", root)
    write("intermediate.der", inter)
    good = [(fulcio(1, GHA.encode()), False), (fulcio(8, utf8(GHA)), False)]
    write("good-leaf.der", leaf(inter, ik, exts=good))
    write("issuer-v1-only.der", leaf(inter, ik, exts=[(fulcio(1, GHA.encode()), False)]))
    write("issuer-v1-v2-disagree.der", leaf(inter, ik, exts=[
        (fulcio(1, b"https://evil.example"), False), (fulcio(8, utf8(GHA)), False)]))
    write("issuer-v2-raw-not-der.der", leaf(inter, ik, exts=[(fulcio(8, GHA.encode()), False)]))
    write("san-in-subject-cn-only.der", leaf(inter, ik, san=None, exts=good,
          subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "https://github.com/good/x")])))
    write("san-two-names.der", leaf(inter, ik, exts=good, san=[
        ("uri", "https://github.com/good/x"), ("email", "evil@example.com")]))
    write("san-dns-name.der", leaf(inter, ik, exts=good, san=("dns", "good.example")))
    write("leaf-is-ca.der", leaf(inter, ik, exts=good, ca_flag=True))
    write("leaf-eku-server-auth.der", leaf(inter, ik, exts=good, eku=(ExtendedKeyUsageOID.SERVER_AUTH,)))
    write("leaf-unknown-critical-extension.der", leaf(inter, ik, exts=good + [
        (x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), True)]))
    # An attacker-made CA with the intermediate's name, signing with its own key.
    fk = key()
    forged = ca(inter.subject, fk, root.subject, fk, 0)
    write("forged-intermediate-leaf.der", leaf(forged, fk, exts=good))
    # A non-CA (leaf) cert used as an issuer.
    lk = key()
    not_ca = ca(name("custody-test-not-a-ca"), lk, root.subject, rk, None, ca_flag=False, cert_sign=False)
    write("issuer-not-ca.der", not_ca)
    write("issued-by-not-ca.der", leaf(not_ca, lk, exts=good))
    # pathLen 0 intermediate issuing another CA that issues the leaf: one CA too many.
    sk = key()
    sub = ca(name("custody-test-sub"), sk, inter.subject, ik, None)
    write("pathlen-sub-ca.der", sub)
    write("pathlen-exceeded-leaf.der", leaf(sub, sk, exts=good))

if __name__ == "__main__":
    sys.exit(main())
