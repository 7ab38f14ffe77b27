"""Bad input to gen-req, sign-req, import-req and build-*-full.

Each case must fail with exit code 1 and a message that names the value or
file at fault, and leave every file of the PKI as it was.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pkitools import pki_state, run_product

PATH_LIKE_NAMES = ["../escape", "a/b", "/tmp/absolute", ""]


def corrupt_signature(request_pem: bytes) -> bytes:
    """Flip the last bit of a PEM request's signature, keeping it parseable."""
    body = b"".join(line for line in request_pem.splitlines() if not line.startswith(b"-----"))
    der = bytearray(base64.b64decode(body))
    der[-1] ^= 0x01
    encoded = base64.encodebytes(bytes(der)).replace(b"\n", b"")
    lines = [encoded[start : start + 64] for start in range(0, len(encoded), 64)]
    return b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE REQUEST-----\n"


def assert_rejected(pki: Path, *args: str, expected: str, env: dict[str, str] | None = None) -> str:
    """Run a command that must fail, and check its message and that nothing changed."""
    before = pki_state(pki)
    result = run_product(pki, *args, env=env)

    assert result.returncode == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert pki_state(pki) == before
    return result.stderr


@pytest.fixture
def pki(pki_copy) -> Path:
    return pki_copy("v3.2.7-rsa")


@pytest.mark.parametrize("name", PATH_LIKE_NAMES)
@pytest.mark.parametrize("command", ["gen-req", "build-client-full"])
def test_path_like_names_rejected(pki: Path, command: str, name: str) -> None:
    assert_rejected(pki, command, name, "nopass", expected="Invalid certificate name")


@pytest.mark.parametrize("name", PATH_LIKE_NAMES)
def test_sign_req_path_like_names_rejected(pki: Path, name: str) -> None:
    assert_rejected(pki, "sign-req", "client", name, expected="Invalid certificate name")


@pytest.mark.parametrize("name", PATH_LIKE_NAMES)
def test_import_req_path_like_names_rejected(pki: Path, name: str) -> None:
    assert_rejected(pki, "import-req", str(pki / "reqs" / "alice.req"), name, expected="Invalid certificate name")


def test_nul_in_name_rejected(pki: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from easyrsa_py.cli import main

    monkeypatch.setenv("EASYRSA_PKI", str(pki))
    before = pki_state(pki)

    assert main(["--batch", "gen-req", "bad\0name", "nopass"]) == 1
    assert "Invalid certificate name" in capsys.readouterr().err
    assert pki_state(pki) == before


def test_unknown_type_names_folders(pki: Path) -> None:
    (pki / "reqs" / "loose.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())

    message = assert_rejected(pki, "sign-req", "nosuchtype", "loose", expected="Unknown certificate type 'nosuchtype'")

    assert str(pki / "x509-types") in message


def test_common_type_rejected(pki: Path) -> None:
    assert_rejected(pki, "sign-req", "COMMON", "francois", expected="Invalid certificate type 'COMMON'")


def test_missing_request(pki: Path) -> None:
    assert_rejected(pki, "sign-req", "client", "nobody", expected=str(pki / "reqs" / "nobody.req"))


def test_name_already_issued(pki: Path) -> None:
    assert_rejected(pki, "sign-req", "client", "alice", expected=str(pki / "issued" / "alice.crt"))


def test_request_bad_signature(pki: Path) -> None:
    request = pki / "reqs" / "newreq.req"
    request.write_bytes(corrupt_signature((pki / "reqs" / "erin.req").read_bytes()))

    assert_rejected(pki, "sign-req", "client", "newreq", expected="does not verify")


def test_request_not_pem(pki: Path) -> None:
    (pki / "reqs" / "garbage.req").write_text("this is not a request\n")

    assert_rejected(pki, "sign-req", "client", "garbage", expected="garbage.req")


def test_wrong_ca_passphrase(pki_copy) -> None:
    pki = pki_copy("v3.2.2-ec")
    (pki / "reqs" / "loose.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())

    assert_rejected(
        pki, "--passin=pass:wrong-pass", "sign-req", "client", "loose", expected="does not decrypt the CA key"
    )


def test_build_full_wrong_ca_passphrase_keeps_pki(pki_copy) -> None:
    pki = pki_copy("v3.2.2-ec")

    assert_rejected(
        pki, "--passin=pass:wrong-pass", "build-client-full", "fresh", "nopass",
        expected="does not decrypt the CA key",
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--startdate=20300101000000Z",), "--startdate needs --enddate"),
        (("--startdate=2030", "--enddate=20310101000000Z"), "Invalid --startdate value '2030'"),
        (("--enddate=20301399000000Z",), "Invalid --enddate value"),
        (("--startdate=20310101000000Z", "--enddate=20300101000000Z"), "is not after the start date"),
        (("--digest=md5",), "Invalid digest 'md5'"),
        (("--san=FOO:bar",), "unsupported name type 'FOO'"),
        (("--san=IP:300.1.1.1",), "invalid IP address '300.1.1.1'"),
    ],
)
def test_bad_signing_options(pki: Path, options: tuple[str, ...], expected: str) -> None:
    (pki / "reqs" / "loose.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())

    assert_rejected(pki, *options, "sign-req", "client", "loose", expected=expected)


def test_newsubj_without_new_subject(pki: Path) -> None:
    (pki / "reqs" / "loose.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())

    assert_rejected(pki, "sign-req", "client", "loose", "newsubj", expected="--new-subject")


def test_new_subject_without_newsubj(pki: Path) -> None:
    (pki / "reqs" / "loose.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())

    assert_rejected(pki, "--new-subject=/CN=x", "sign-req", "client", "loose", expected="'newsubj'")


def test_new_subject_without_common_name(pki: Path) -> None:
    (pki / "reqs" / "loose.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())

    assert_rejected(
        pki, "--new-subject=/O=Only Org", "sign-req", "client", "loose", "newsubj", expected="no commonName"
    )


def test_profile_line_error_names_file_and_line(pki: Path) -> None:
    (pki / "x509-types").mkdir()
    (pki / "x509-types" / "odd").write_text("basicConstraints = CA:FALSE\npolicyConstraints = requireExplicitPolicy:0\n")
    (pki / "reqs" / "loose.req").write_bytes((pki / "reqs" / "alice.req").read_bytes())

    message = assert_rejected(pki, "sign-req", "odd", "loose", expected="policyConstraints")

    assert f"{pki / 'x509-types' / 'odd'}, line 2" in message


def test_unknown_sign_req_argument(pki: Path) -> None:
    assert_rejected(pki, "sign-req", "client", "francois", "bogus", expected="Unknown argument 'bogus'")


def test_unknown_gen_req_argument(pki: Path) -> None:
    assert_rejected(pki, "gen-req", "newname", "bogus", expected="Unknown argument 'bogus'")


def test_gen_req_batch_keeps_existing_key(pki: Path) -> None:
    assert_rejected(pki, "gen-req", "alice", "nopass", expected=str(pki / "private" / "alice.key"))


@pytest.mark.parametrize("existing", ["reqs/fresh.req", "private/fresh.key", "issued/fresh.crt"])
def test_build_full_existing_files(pki: Path, existing: str) -> None:
    (pki / existing).write_bytes((pki / "reqs" / "alice.req").read_bytes())

    assert_rejected(pki, "build-client-full", "fresh", "nopass", expected=str(pki / existing))


def test_build_full_unknown_argument(pki: Path) -> None:
    assert_rejected(pki, "build-server-full", "fresh", "bogus", expected="Unknown argument 'bogus'")


def test_import_req_missing_file(pki: Path, tmp_path: Path) -> None:
    assert_rejected(pki, "import-req", str(tmp_path / "absent.req"), "incoming", expected=str(tmp_path / "absent.req"))


def test_import_req_not_a_request(pki: Path, tmp_path: Path) -> None:
    source = tmp_path / "text.req"
    source.write_text("hello\n")

    assert_rejected(pki, "import-req", str(source), "incoming", expected=str(source))


def test_import_req_bad_signature(pki: Path, tmp_path: Path) -> None:
    source = tmp_path / "tampered.req"
    source.write_bytes(corrupt_signature((pki / "reqs" / "alice.req").read_bytes()))

    assert_rejected(pki, "import-req", str(source), "incoming", expected="does not verify")


def test_import_req_name_taken(pki: Path) -> None:
    assert_rejected(
        pki, "import-req", str(pki / "reqs" / "alice.req"), "carol", expected=str(pki / "reqs" / "carol.req")
    )


def test_import_req_wrong_argument_count(pki: Path) -> None:
    assert_rejected(pki, "import-req", str(pki / "reqs" / "alice.req"), expected="import-req FILE NAME")


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--req-c=USA", "Invalid value 'USA' for 'Country Name (2 letter code)'"),
        ("--req-cn=" + "x" * 65, "Common Name"),
    ],
)
def test_gen_req_field_length(pki: Path, option: str, expected: str) -> None:
    assert_rejected(pki, "--dn-mode=org", option, "gen-req", "longname", "nopass", expected=expected)
