"""Benchmark: revoke 1,000 certificates and generate the CRL in one easyrsa_py run.

Compares one `easyrsa-py --batch revoke NAME... --gen-crl` over 1,000
names with the real easy-rsa 3.2.7, which takes one `revoke` run per
certificate plus one `gen-crl`. Running the real script 1,000 times takes
minutes, so it revokes 100 certificates, and its per-revocation time is
scaled to 1,000; the report says so. Target: easyrsa_py at least 50 times
faster.

    python benchmarks/revoke_many.py [--count 1000] [--sample 100]

The PKI is the v3.2.7-rsa fixture (an RSA CA without passphrase) plus
`count` client certificates signed here with `cryptography`, with P-256
keys and requests so that each revocation moves three files, as for a
certificate easy-rsa issued.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from tools import clean_env, easyrsa_py_tool, reference_tool
from workloads import copy_fixture_pki

TARGET_SPEED_UP = 50


def _issue(pki: Path, ca_cert: x509.Certificate, ca_key: object, name: str, serial: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    (pki / "issued" / f"{name}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (pki / "reqs" / f"{name}.req").write_bytes(request.public_bytes(serialization.Encoding.PEM))
    (pki / "private" / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    expires = certificate.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    return f"V\t{expires}\t\t{serial:032X}\tunknown\t/CN={name}\n"


def build_pki(target: Path, count: int) -> list[str]:
    """Copy the fixture PKI and add `count` issued client certificates."""
    pki = copy_fixture_pki("v3.2.7-rsa", target)
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "private" / "ca.key").read_bytes(), None)
    names = [f"bulk{number:04d}" for number in range(count)]
    rows = [_issue(pki, ca_cert, ca_key, name, 0x5A00000000000000000000000000 + number) for number, name in enumerate(names)]
    with open(pki / "index.txt", "a", encoding="ascii") as index:
        index.writelines(rows)
    return names


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="certificates easyrsa_py revokes")
    parser.add_argument("--sample", type=int, default=100, help="certificates the real script revokes")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="easyrsa-py-revoke-many-") as folder:
        work = Path(folder)
        template = work / "template"
        names = build_pki(template, arguments.count)
        python_tool, reference = easyrsa_py_tool(), reference_tool()

        ours = work / "ours"
        shutil.copytree(template, ours, symlinks=True)
        env = clean_env(work, python_tool)
        ours_seconds = _run(python_tool.argv(ours, "revoke", *names, "--gen-crl"), env, work)

        theirs = work / "theirs"
        shutil.copytree(template, theirs, symlinks=True)
        env = clean_env(work, reference)
        sample = names[: arguments.sample]
        revoke_seconds = sum(_run(reference.argv(theirs, "revoke", name), env, work) for name in sample)
        gen_crl_seconds = _run(reference.argv(theirs, "gen-crl"), env, work)

    scaled = revoke_seconds / len(sample) * arguments.count + gen_crl_seconds
    speed_up = scaled / ours_seconds
    print(f"easyrsa_py: revoke {arguments.count} names --gen-crl in one run: {ours_seconds:.2f} s")
    print(
        f"easy-rsa 3.2.7: {len(sample)} revoke runs took {revoke_seconds:.2f} s "
        f"({revoke_seconds / len(sample) * 1000:.0f} ms each); gen-crl {gen_crl_seconds:.2f} s"
    )
    print(f"easy-rsa scaled to {arguments.count} revocations plus gen-crl: {scaled:.1f} s (estimate)")
    verdict = "met" if speed_up >= TARGET_SPEED_UP else "MISSED"
    print(f"speed-up {speed_up:.0f}x, target at least {TARGET_SPEED_UP}x: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
