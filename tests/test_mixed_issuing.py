"""Mixed issuing: one tool issues a certificate and the other renews and revokes it.

Each test walks one certificate through its life on a copy of a fixture
PKI: issue it (build-client-full, build-server-full, or gen-req and
sign-req), show it with show-cert, renew it, revoke the old certificate
with revoke-renewed and the new one with revoke, and generate the CRL.
easyrsa_py and the real easy-rsa (3.1.0, 3.2.2 and 3.2.7, each on the
fixture it made) take the steps in turns:

- easyrsa_py issues, and easy-rsa takes every later step;
- easy-rsa issues, and easyrsa_py takes every later step;
- easy-rsa issues and renews, and easyrsa_py shows and revokes;
- easyrsa_py issues and renews, and easy-rsa shows and revokes.

After every step `openssl verify -CAfile ca.crt` must accept each
certificate of the walk, and renewal must keep the extended key usage.
With `-crl_check` and the final CRL, openssl must reject both revoked
certificates and still accept a valid one.

A last test has one tool write a request with gen-req and the other sign
it with sign-req.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from pkitools import read_index, run_product, serial_of

# The fixture each reference version made, so each version runs on its own
# layout.
VERSION_FIXTURES = {"3.1.0": "v3.1.0-rsa", "3.2.2": "v3.2.2-ec", "3.2.7": "v3.2.7-rsa"}
EC_FIXTURE = "v3.2.2-ec"
EC_PASSPHRASE = "fixture-ec-ca-pass"
# The EC fixture has no vars file, so keys of its kind need these options.
EC_KEY_OPTIONS = ("--use-algo=ec", "--curve=secp384r1")
# A certificate that every fixture contains and no test revokes.
VALID_NAME = "alice"
NEW_NAME = "mixed-user"

CLIENT_FULL = "build-client-full"
SERVER_FULL = "build-server-full"
REQUEST_AND_SIGN = "gen-req+sign-req"
ISSUE_METHODS = (CLIENT_FULL, SERVER_FULL, REQUEST_AND_SIGN)
# The extended key usage each method gives; gen-req+sign-req signs a client.
EXPECTED_USAGE = {
    CLIENT_FULL: [ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string],
    SERVER_FULL: [ExtendedKeyUsageOID.SERVER_AUTH.dotted_string],
    REQUEST_AND_SIGN: [ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string],
}

# easy-rsa 3.1.0 renews only certificates that expire within
# EASYRSA_CERT_RENEW days (30 by default). A new certificate lasts 825
# days, so the tests widen the window. easy-rsa 3.2.2 and 3.2.7 do not
# read the variable.
RENEW_ENV = {"EASYRSA_CERT_RENEW": "1000"}

@dataclass(frozen=True)
class Tool:
    """One easy-rsa implementation, able to run a command on a PKI."""

    label: str
    version: str | None
    runner: Callable[..., subprocess.CompletedProcess[str]]
    extra_env: dict[str, str] = field(default_factory=dict)

    def run(self, pki: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one command and fail the test, with its output, on a non-zero exit."""
        result = self.runner(pki, *args, env={**RENEW_ENV, **self.extra_env})
        assert result.returncode == 0, (
            f"{self.label} {' '.join(args)} exited with {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
        return result


def product_tool() -> Tool:
    return Tool("easyrsa_py", None, run_product)


def reference_tool(reference: Any) -> Tool:
    def run(
        pki: Path, *args: str, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        return reference.run(pki, *args, env=env, check=False)

    return Tool(f"easy-rsa {reference.version}", reference.version, run)


def ca_options(fixture: str) -> list[str]:
    """Return the options that unlock the fixture's CA key."""
    return [f"--passin=pass:{EC_PASSPHRASE}"] if fixture == EC_FIXTURE else []


def key_options(fixture: str) -> list[str]:
    """Return the options that make new keys of the fixture's kind."""
    return list(EC_KEY_OPTIONS) if fixture == EC_FIXTURE else []


# --- steps -------------------------------------------------------------------


def issue(tool: Tool, pki: Path, fixture: str, method: str) -> Path:
    """Issue NEW_NAME with ``method`` and return its certificate file."""
    options = [*ca_options(fixture), *key_options(fixture)]
    if method == REQUEST_AND_SIGN:
        tool.run(pki, *key_options(fixture), "gen-req", NEW_NAME, "nopass")
        tool.run(pki, *ca_options(fixture), "sign-req", "client", NEW_NAME)
    else:
        tool.run(pki, *options, method, NEW_NAME, "nopass")
    return pki / "issued" / f"{NEW_NAME}.crt"


def show_certificate(tool: Tool, pki: Path) -> str:
    return tool.run(pki, "show-cert", NEW_NAME).stdout


def renew(tool: Tool, pki: Path, fixture: str) -> Path:
    """Renew NEW_NAME and return its new certificate file.

    easy-rsa 3.1.0 makes a new key on renewal and takes nopass for it.
    Later versions sign the existing request again and take no nopass.
    """
    arguments = ["renew", NEW_NAME]
    if tool.version == "3.1.0":
        arguments.append("nopass")
    tool.run(pki, *ca_options(fixture), *key_options(fixture), *arguments)
    return pki / "issued" / f"{NEW_NAME}.crt"


def revoke_old(tool: Tool, pki: Path, fixture: str) -> None:
    """Revoke the certificate that the renewal replaced."""
    tool.run(pki, *ca_options(fixture), "revoke-renewed", NEW_NAME, "superseded")


def revoke_current(tool: Tool, pki: Path, fixture: str) -> None:
    tool.run(pki, *ca_options(fixture), "revoke", NEW_NAME, "keyCompromise")


def generate_crl(tool: Tool, pki: Path, fixture: str) -> None:
    tool.run(pki, *ca_options(fixture), "gen-crl")


# --- checks ------------------------------------------------------------------


def openssl_verify(
    pki: Path, certificate: Path, *crl_options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl",
            "verify",
            *crl_options,
            "-CAfile",
            str(pki / "ca.crt"),
            str(certificate),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_chain_valid(pki: Path, certificate: Path) -> None:
    result = openssl_verify(pki, certificate)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{certificate}: OK" in result.stdout


def assert_crl_rejects(pki: Path, *revoked: Path) -> None:
    """Check that the PKI's CRL rejects each of ``revoked`` and accepts VALID_NAME."""
    crl_options = ("-crl_check", "-CRLfile", str(pki / "crl.pem"))
    for certificate in revoked:
        rejected = openssl_verify(pki, certificate, *crl_options)
        assert rejected.returncode != 0, rejected.stdout
        assert "certificate revoked" in rejected.stdout + rejected.stderr
    valid = pki / "issued" / f"{VALID_NAME}.crt"
    accepted = openssl_verify(pki, valid, *crl_options)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def index_status(pki: Path, serial: str) -> str:
    statuses = [row[0] for row in read_index(pki) if row[3] == serial]
    assert len(statuses) == 1, f"serial {serial} has {len(statuses)} rows in index.txt"
    return statuses[0]


def extended_key_usage(certificate: Path) -> list[str]:
    loaded = x509.load_pem_x509_certificate(certificate.read_bytes())
    usage = loaded.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    return [oid.dotted_string for oid in usage]


def keep_copy(certificate: Path, folder: Path, label: str) -> Path:
    """Copy a certificate aside, because renew and revoke move the original."""
    copy = folder / f"{label}.crt"
    shutil.copyfile(certificate, copy)
    return copy


# --- the walk ----------------------------------------------------------------


@dataclass(frozen=True)
class Roles:
    """The tool that runs each step of a certificate's life."""

    issuer: Tool
    viewer: Tool
    renewer: Tool
    revoker: Tool


def walk_certificate_life(
    roles: Roles, pki: Path, fixture: str, method: str, scratch: Path
) -> None:
    """Issue, show, renew and revoke NEW_NAME, then publish a CRL, checking each step.

    The revoker revokes both the old certificate (revoke-renewed) and the
    new one (revoke), and generates the CRL.
    """
    issued = issue(roles.issuer, pki, fixture, method)
    assert_chain_valid(pki, issued)
    assert extended_key_usage(issued) == EXPECTED_USAGE[method]
    first_serial = serial_of(issued)
    assert index_status(pki, first_serial) == "V"

    output = show_certificate(roles.viewer, pki)
    assert NEW_NAME in output
    assert_chain_valid(pki, issued)

    first = keep_copy(issued, scratch, "first")
    renewed = renew(roles.renewer, pki, fixture)
    assert_chain_valid(pki, renewed)
    assert extended_key_usage(renewed) == EXPECTED_USAGE[method]
    second_serial = serial_of(renewed)
    assert second_serial != first_serial
    assert index_status(pki, second_serial) == "V"
    assert_chain_valid(pki, first)

    second = keep_copy(renewed, scratch, "second")
    revoke_old(roles.revoker, pki, fixture)
    assert index_status(pki, first_serial) == "R"
    assert index_status(pki, second_serial) == "V"
    assert_chain_valid(pki, first)

    revoke_current(roles.revoker, pki, fixture)
    assert index_status(pki, second_serial) == "R"
    assert_chain_valid(pki, second)

    generate_crl(roles.revoker, pki, fixture)
    assert_crl_rejects(pki, first, second)


@pytest.mark.parametrize("method", ISSUE_METHODS)
def test_product_issues_reference_handles(reference, pki_copy, tmp_path, method):
    fixture = VERSION_FIXTURES[reference.version]
    product, real = product_tool(), reference_tool(reference)
    roles = Roles(issuer=product, viewer=real, renewer=real, revoker=real)
    walk_certificate_life(roles, pki_copy(fixture), fixture, method, tmp_path)


@pytest.mark.parametrize("method", ISSUE_METHODS)
def test_reference_issues_product_handles(reference, pki_copy, tmp_path, method):
    fixture = VERSION_FIXTURES[reference.version]
    product, real = product_tool(), reference_tool(reference)
    roles = Roles(issuer=real, viewer=product, renewer=product, revoker=product)
    walk_certificate_life(roles, pki_copy(fixture), fixture, method, tmp_path)


def test_reference_renews_product_revokes(reference, pki_copy, tmp_path):
    fixture = VERSION_FIXTURES[reference.version]
    product, real = product_tool(), reference_tool(reference)
    roles = Roles(issuer=real, viewer=product, renewer=real, revoker=product)
    walk_certificate_life(roles, pki_copy(fixture), fixture, CLIENT_FULL, tmp_path)


def test_product_renews_reference_revokes(reference, pki_copy, tmp_path):
    fixture = VERSION_FIXTURES[reference.version]
    product, real = product_tool(), reference_tool(reference)
    roles = Roles(issuer=product, viewer=real, renewer=product, revoker=real)
    walk_certificate_life(roles, pki_copy(fixture), fixture, CLIENT_FULL, tmp_path)


@pytest.mark.parametrize(
    "requester_is_product", [True, False], ids=["py-req", "ref-req"]
)
def test_request_signed_by_other_tool(reference, pki_copy, requester_is_product):
    fixture = VERSION_FIXTURES[reference.version]
    pki = pki_copy(fixture)
    product, real = product_tool(), reference_tool(reference)
    requester, signer = (product, real) if requester_is_product else (real, product)

    requester.run(pki, *key_options(fixture), "gen-req", NEW_NAME, "nopass")
    signer.run(pki, *ca_options(fixture), "sign-req", "server", NEW_NAME)

    issued = pki / "issued" / f"{NEW_NAME}.crt"
    assert_chain_valid(pki, issued)
    assert extended_key_usage(issued) == EXPECTED_USAGE[SERVER_FULL]
    assert index_status(pki, serial_of(issued)) == "V"
    request = x509.load_pem_x509_csr((pki / "reqs" / f"{NEW_NAME}.req").read_bytes())
    certificate = x509.load_pem_x509_certificate(issued.read_bytes())
    assert certificate.public_key() == request.public_key()
    assert certificate.subject == request.subject
