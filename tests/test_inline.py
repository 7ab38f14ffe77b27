"""The inline command and write_inline, compared with the real easy-rsa.

Both tools run `inline NAME` on twin copies of one PKI. The files must
agree in everything a script or OpenVPN reads: the folder and mode, the
six header lines, every `<tag>` block with its content, the directives
outside blocks (`key-direction`, `dh none`) and which commented-out tags
mark a missing part. The free-text comments differ on purpose, because
easyrsa_py writes its own.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from pkitools import pki_state, run_product

from easyrsa_py.commands import Context
from easyrsa_py.console import Console
from easyrsa_py.errors import UsageError
from easyrsa_py.inline import inline, write_inline, write_peer_fingerprint_inline
from easyrsa_py.pki import PKILayout
from easyrsa_py.settings import build_settings

BLOCK = re.compile(r"^<([a-z0-9-]+)>\n(.*?)\n</\1>$", re.DOTALL | re.MULTILINE)
COMMENTED_TAG = re.compile(r"# </?[a-z0-9-]*>")
TLS_AUTH_KEY = (
    "# Easy-RSA TLS-AUTH Key\n"
    "#\n# 2048 bit OpenVPN static key\n#\n"
    "-----BEGIN OpenVPN Static key V1-----\n"
    + "\n".join("0123456789abcdef" * 2 for _ in range(16))
    + "\n-----END OpenVPN Static key V1-----\n"
)
TLS_CRYPT_KEY = TLS_AUTH_KEY.replace("TLS-AUTH", "TLS-CRYPT")
DH_PARAMS = "-----BEGIN DH PARAMETERS-----\nMAgCAQACAQI=\n-----END DH PARAMETERS-----\n"


def twin_pkis(
    pki_copy: Callable[[str], Path], fixture: str, prepare: Callable[[Path], Any] | None = None
) -> tuple[Path, Path]:
    """Copy `fixture`, let `prepare` change it, and return it with an exact twin."""
    first = pki_copy(fixture)
    shutil.rmtree(first / "inline", ignore_errors=True)
    if prepare is not None:
        prepare(first)
    twin = first.parent.with_name(first.parent.name + "-twin") / "pki"
    twin.parent.mkdir()
    shutil.copytree(first, twin, symlinks=True)
    return first, twin


def inline_structure(text: str) -> dict[str, Any]:
    """Return the parts of an inline file that scripts and OpenVPN read."""
    outside = BLOCK.sub("", text)
    return {
        "header": text.split("\n\n", 1)[0].splitlines(),
        "blocks": BLOCK.findall(text),
        "directives": [line for line in outside.splitlines() if line and not line.startswith("#")],
        "commented tags": [line for line in outside.splitlines() if COMMENTED_TAG.fullmatch(line)],
        "ending": text[-2:],
    }


def inline_files(pki: Path) -> dict[str, int]:
    """Map each file and folder under inline/ to its mode."""
    root = pki / "inline"
    return {
        path.relative_to(root).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in sorted(root.rglob("*"))
    }


def run_both(reference: Any, ref_pki: Path, py_pki: Path, *args: str, env: dict[str, str] | None = None) -> None:
    expected = reference.run(ref_pki, *args, env=env, check=False)
    actual = run_product(py_pki, *args, env=env)
    assert expected.returncode == 0, expected.stdout + expected.stderr
    assert actual.returncode == 0, actual.stderr


def assert_same_inline(ref_pki: Path, py_pki: Path, relative: str) -> None:
    assert inline_files(py_pki) == inline_files(ref_pki)
    expected = inline_structure((ref_pki / "inline" / relative).read_text())
    actual = inline_structure((py_pki / "inline" / relative).read_text())
    for part in expected:
        assert actual[part] == expected[part], part


def add_file(relative: str, content: str) -> Callable[[Path], None]:
    def prepare(pki: Path) -> None:
        path = pki / relative
        path.write_text(content)
        path.chmod(0o600)

    return prepare


def remove_file(relative: str) -> Callable[[Path], None]:
    def prepare(pki: Path) -> None:
        (pki / relative).unlink()

    return prepare


# Each case: the name, how the PKI is prepared, and the inline file expected.
CASES = {
    "client": ("alice", None, "private/alice.inline"),
    "server without dh.pem": ("server", None, "private/server.inline"),
    "server with dh.pem": ("server", add_file("dh.pem", DH_PARAMS), "private/server.inline"),
    "client tls-auth": ("alice", add_file("private/easyrsa-tls.key", TLS_AUTH_KEY), "private/alice.inline"),
    "server tls-auth": ("server", add_file("private/easyrsa-tls.key", TLS_AUTH_KEY), "private/server.inline"),
    "client tls-crypt": ("alice", add_file("private/easyrsa-tls.key", TLS_CRYPT_KEY), "private/alice.inline"),
    "unknown TLS key": ("alice", add_file("private/easyrsa-tls.key", "not a key\n"), "private/alice.inline"),
    "TLS key shared before": (
        "alice",
        lambda pki: (
            add_file("private/easyrsa-tls.key", TLS_AUTH_KEY)(pki),
            add_file("easyrsa-keepsafe-tls.key", TLS_AUTH_KEY)(pki),
        ),
        "private/alice.inline",
    ),
    "key missing": ("alice", remove_file("private/alice.key"), "alice.inline"),
    "certificate missing": ("alice", remove_file("issued/alice.crt"), "private/alice.inline"),
    "nothing of the name": ("ghost", None, "ghost.inline"),
    "CA missing": ("alice", remove_file("ca.crt"), "private/alice.inline"),
    "external CA list": (
        "alice",
        lambda pki: ((pki / "inline").mkdir(), add_file("inline/external-ca.list", DH_PARAMS)(pki)),
        "private/alice.inline",
    ),
    "expired certificate": ("dave", None, "private/dave.inline"),
    "UTF-8 subject": ("francois", None, "private/francois.inline"),
}


@pytest.mark.reference
@pytest.mark.parametrize("case", list(CASES))
def test_inline_matches_327(case: str, pki_copy: Any, reference_for: Any) -> None:
    name, prepare, relative = CASES[case]
    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa", prepare)
    run_both(reference_for("3.2.7"), ref_pki, py_pki, "inline", name)
    assert_same_inline(ref_pki, py_pki, relative)


@pytest.mark.reference
@pytest.mark.parametrize("fixture", ["v3.2.7-ed25519", "v3.2.2-ec"])
@pytest.mark.parametrize("name", ["alice", "server"])
def test_inline_other_algorithms(fixture: str, name: str, pki_copy: Any, reference_for: Any) -> None:
    ref_pki, py_pki = twin_pkis(pki_copy, fixture)
    env = {"EASYRSA_PASSIN": "pass:fixture-ec-ca-pass"}
    run_both(reference_for("3.2.7"), ref_pki, py_pki, "inline", name, env=env)
    assert_same_inline(ref_pki, py_pki, f"private/{name}.inline")


@pytest.mark.reference
@pytest.mark.parametrize("algorithm", ["ec", "ed"])
def test_inline_server_without_rsa(algorithm: str, pki_copy: Any, reference_for: Any) -> None:
    # 3.2.7 decides on dh.pem by EASYRSA_ALGO, not by the certificate's key.
    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa")
    curves = {"ec": "secp384r1", "ed": "ed25519"}
    env = {"EASYRSA_ALGO": algorithm, "EASYRSA_CURVE": curves[algorithm]}
    run_both(reference_for("3.2.7"), ref_pki, py_pki, "inline", "server", env=env)
    assert_same_inline(ref_pki, py_pki, "private/server.inline")
    assert "dh none" in (py_pki / "inline/private/server.inline").read_text().splitlines()


@pytest.mark.reference
@pytest.mark.parametrize("kind", ["serverClient", "server"])
def test_inline_built_types(kind: str, pki_copy: Any, reference_for: Any) -> None:
    reference = reference_for("3.2.7")

    def build(pki: Path) -> None:
        reference.run(pki, f"build-{kind}-full", "built", "nopass", env={"EASYRSA_NO_INLINE": "1"})
        (pki / "private" / "easyrsa-tls.key").write_text(TLS_AUTH_KEY)

    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa", build)
    run_both(reference, ref_pki, py_pki, "inline", "built")
    assert_same_inline(ref_pki, py_pki, "private/built.inline")


@pytest.mark.reference
def test_inline_header_matches_322(pki_copy: Any, reference_for: Any) -> None:
    # 3.2.2 has no <dh> or self-signed handling, but writes the same header and blocks for a client.
    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.2-ec")
    env = {"EASYRSA_PASSIN": "pass:fixture-ec-ca-pass"}
    run_both(reference_for("3.2.2"), ref_pki, py_pki, "inline", "alice", env=env)
    assert_same_inline(ref_pki, py_pki, "private/alice.inline")


@pytest.mark.reference
def test_inline_encrypted_key_pasted(pki_copy: Any, reference_for: Any) -> None:
    def encrypt(pki: Path) -> None:
        path = pki / "private" / "alice.key"
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )

    ref_pki, py_pki = twin_pkis(pki_copy, "v3.2.7-rsa", encrypt)
    run_both(reference_for("3.2.7"), ref_pki, py_pki, "inline", "alice")
    assert_same_inline(ref_pki, py_pki, "private/alice.inline")
    assert "ENCRYPTED PRIVATE KEY" in (py_pki / "inline/private/alice.inline").read_text()


def test_inline_header_fields(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    result = run_product(pki, "inline", "server")
    assert result.returncode == 0, result.stderr
    certificate = x509.load_pem_x509_certificate((pki / "issued/server.crt").read_bytes())
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    header = (pki / "inline/private/server.inline").read_text().split("\n\n")[0].splitlines()
    assert header == [
        "# Easy-RSA Inline file",
        "# Certificate type: server",
        "# commonName: server",
        "# SHA256 fingerprint:",
        f"# {fingerprint}",
        f"# Decimal serial number: {certificate.serial_number}",
    ]


def test_inline_overwrites_and_keeps_mode(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    path = pki / "inline/private/alice.inline"
    path.write_text("old\n")
    path.chmod(0o640)
    readme = pki / "inline/private/README.inline.private"
    readme_before = readme.read_bytes()
    result = run_product(pki, "inline", "alice")
    assert result.returncode == 0, result.stderr
    assert path.read_text().startswith("# Easy-RSA Inline file\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert readme.read_bytes() == readme_before


def test_inline_new_folders_private(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    shutil.rmtree(pki / "inline")
    result = run_product(pki, "inline", "alice")
    assert result.returncode == 0, result.stderr
    assert inline_files(pki) == {
        "private": 0o700,
        "private/README.inline.private": 0o600,
        "private/alice.inline": 0o600,
    }
    assert "Wrote an incomplete inline file" in result.stderr
    assert "TLS key" in result.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--noinline", "inline", "alice"), {}),
        (("--no-inline", "inline", "alice"), {}),
        (("inline", "alice"), {"EASYRSA_NO_INLINE": "1"}),
        (("inline", "alice"), {"EASYRSA_DISABLE_INLINE": "1"}),
    ],
)
def test_inline_disabled_writes_nothing(args: tuple[str, ...], env: dict[str, str], pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    shutil.rmtree(pki / "inline")
    before = pki_state(pki)
    result = run_product(pki, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert pki_state(pki) == before
    if "EASYRSA_DISABLE_INLINE" in env:
        assert "EASYRSA_NO_INLINE" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("inline",), "Missing certificate name"),
        (("inline", ""), "Missing certificate name"),
        (("inline", "../alice"), "Invalid certificate name"),
        (("inline", "a/b"), "Invalid certificate name"),
        (("inline", "/tmp/alice"), "Invalid certificate name"),
        (("inline", ".."), "Invalid certificate name"),
        (("inline", "alice", "extra"), "Unexpected argument 'extra'"),
    ],
)
def test_inline_bad_input(args: tuple[str, ...], message: str, pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    result = run_product(pki, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert pki_state(pki) == before


def test_inline_invalid_certificate(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    (pki / "issued/alice.crt").write_text("not a certificate\n")
    before = pki_state(pki)
    result = run_product(pki, "inline", "alice")
    assert result.returncode == 1
    assert "alice.crt" in result.stderr
    assert pki_state(pki) == before


def in_process_context(pki: Path, options: dict[str, str] | None = None) -> Context:
    settings = build_settings(options or {}, {"EASYRSA_PKI": str(pki)}, pki.parent)
    console = Console(batch=True, stdout=io.StringIO(), stderr=io.StringIO())
    return Context(settings=settings, layout=PKILayout(pki), console=console, command_name="inline")


def test_inline_name_with_nul(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    with pytest.raises(UsageError, match="Invalid certificate name"):
        inline(in_process_context(pki), ["al\0ice"])
    assert pki_state(pki) == before


def test_write_inline_returns_path(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    context = in_process_context(pki)
    path = write_inline(context.layout, context.settings, context.console, "bob")
    # bob is revoked: no certificate and no key remain, so the file is public.
    assert path == pki / "inline" / "bob.inline"
    assert path.is_file()


def test_write_inline_disabled_returns_none(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    context = in_process_context(pki, {"EASYRSA_NO_INLINE": "1"})
    assert write_inline(context.layout, context.settings, context.console, "alice") is None


def fingerprint_list_lines(path: Path) -> list[str]:
    """Return the list's lines without the third, which is free text in each tool."""
    lines = path.read_text().splitlines()
    return lines[:2] + lines[3:]


@pytest.mark.reference
@pytest.mark.parametrize("kind", ["server", "client"])
def test_peer_fingerprint_list_matches_327(kind: str, tmp_path: Path, reference_for: Any) -> None:
    reference = reference_for("3.2.7")
    ref_pki = tmp_path / "ref" / "pki"
    reference.run(ref_pki, "init-pki")
    # The CLI applies easy-rsa's umask; in-process calls get the test's.
    previous_umask = os.umask(0o077)
    try:
        compare_fingerprint_lists(reference, ref_pki, tmp_path / "py" / "pki", kind)
    finally:
        os.umask(previous_umask)


def compare_fingerprint_lists(reference: Any, ref_pki: Path, py_pki: Path, kind: str) -> None:
    context = None
    for name in ("first", "second"):
        reference.run(ref_pki, f"self-sign-{kind}", name, "nopass")
        if context is None:
            shutil.copytree(ref_pki, py_pki, symlinks=True)
            shutil.rmtree(py_pki / "inline")
            context = in_process_context(py_pki)
        for relative in (f"issued/{name}.crt", f"private/{name}.key"):
            shutil.copy2(ref_pki / relative, py_pki / relative)
        path = write_peer_fingerprint_inline(context.layout, context.settings, context.console, name)
        list_name = f"pfp-{kind}.list-inline"
        assert path == py_pki / "inline" / list_name
        for listed in (list_name, list_name + ".old"):
            expected = fingerprint_list_lines(ref_pki / "inline" / listed)
            assert fingerprint_list_lines(py_pki / "inline" / listed) == expected, listed
        assert_same_inline(ref_pki, py_pki, f"private/{name}.inline")


def test_peer_fingerprint_rejects_ca_issued(pki_copy: Any) -> None:
    pki = pki_copy("v3.2.7-rsa")
    context = in_process_context(pki)
    before = pki_state(pki)
    with pytest.raises(UsageError, match="not a self-signed client or server"):
        write_peer_fingerprint_inline(context.layout, context.settings, context.console, "alice")
    assert pki_state(pki) == before
