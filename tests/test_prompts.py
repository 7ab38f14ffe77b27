"""Interactive prompts: the revocation confirmation and the CA passphrase.

easyrsa_py runs on a pseudo-terminal through pexpect, as an operator or an
`expect` script drives it. Scripts read and reply to the subject, serial,
reason and prompt lines of the confirmation block, so those lines are compared
with what the real easy-rsa 3.2.7 shows on a terminal. The opening sentence is
easyrsa_py's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest
from pkitools import pki_state, product_env, read_index, run_product
from reference import reference_env

EC_PASSPHRASE = "fixture-ec-ca-pass"
CONFIRM_PROMPT = "Continue with revocation: "
TYPE_YES_LINE = "Type the word 'yes' to continue, or any other input to abort."
PASSPHRASE_PROMPT = "Enter pass phrase for {key}:"
TIMEOUT_SECONDS = 30


def spawn_product(pki: Path, *args: str, batch: bool = False) -> pexpect.spawn:
    env = product_env(pki, pki.parent, batch=batch)
    return pexpect.spawn(sys.executable, ["-m", "easyrsa_py", *args], env=env,
                         cwd=str(pki.parent), encoding="utf-8", timeout=TIMEOUT_SECONDS)


def spawn_reference(reference, pki: Path, *args: str, batch: bool = False) -> pexpect.spawn:
    env = reference_env(pki, pki.parent, batch, None)
    return pexpect.spawn(str(reference.script_dir / "easyrsa"), list(args), env=env,
                         cwd=str(pki.parent), encoding="utf-8", timeout=TIMEOUT_SECONDS)


def finish(child: pexpect.spawn) -> tuple[int, str]:
    """Wait for the end of output and return the exit status and the rest of the output."""
    child.expect(pexpect.EOF)
    rest = child.before
    child.close()
    return child.exitstatus, rest


def is_revoked(pki: Path, common_name: str) -> bool:
    rows = [row for row in read_index(pki) if row[5] == f"/CN={common_name}"]
    return any(row[0] == "R" for row in rows)


# The sentence that opens the confirmation block: easy-rsa's, and easyrsa_py's own.
CONFIRM_INTRODUCTIONS = ("Please confirm that you wish to revoke", "This revokes the certificate")


def confirmation_block(output: str) -> str:
    """Return the text after the confirmation's opening sentence, to the end of the prompt.

    The subject, serial, reason and prompt lines are what scripts read, so
    they must match easy-rsa's; the opening sentence is each tool's own.
    """
    text = output.replace("\r\n", "\n")
    opening = min(text.index(intro) for intro in CONFIRM_INTRODUCTIONS if intro in text)
    start = text.index("\n\n", opening) + 2
    end = text.index(CONFIRM_PROMPT) + len(CONFIRM_PROMPT)
    return text[start:end]


# --- revocation confirmation ---------------------------------------------------


def test_confirm_yes_revokes(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    child = spawn_product(pki, "revoke", "alice")
    child.expect_exact(CONFIRM_PROMPT)

    child.sendline("yes")
    status, _ = finish(child)

    assert status == 0
    assert is_revoked(pki, "alice")
    assert not (pki / "issued" / "alice.crt").exists()


@pytest.mark.parametrize("answer", ["no", "YES", "y", "yes please", ""])
def test_confirm_other_answer_aborts(pki_copy, answer):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    child = spawn_product(pki, "revoke", "alice")
    child.expect_exact(CONFIRM_PROMPT)

    child.sendline(answer)
    status, output = finish(child)

    assert status == 1
    assert pki_state(pki) == before
    assert "Aborting without confirmation" in output


def test_confirm_end_of_input_aborts(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)
    child = spawn_product(pki, "revoke", "alice")
    child.expect_exact(CONFIRM_PROMPT)

    child.sendeof()
    status, _ = finish(child)

    assert status == 1
    assert pki_state(pki) == before


def test_confirm_answer_with_spaces(pki_copy, reference_for):
    # The real script reads the answer with the shell's `read`, which strips
    # the spaces around it, so "  yes  " confirms there.
    ref_pki, py_pki = pki_copy("v3.2.7-rsa"), pki_copy("v3.2.7-rsa")
    ref_child = spawn_reference(reference_for("3.2.7"), ref_pki, "revoke", "alice")
    ref_child.expect_exact(CONFIRM_PROMPT)
    ref_child.sendline("  yes  ")
    ref_status, _ = finish(ref_child)
    py_child = spawn_product(py_pki, "revoke", "alice")
    py_child.expect_exact(CONFIRM_PROMPT)

    py_child.sendline("  yes  ")
    py_status, _ = finish(py_child)

    assert ref_status == 0
    assert py_status == ref_status
    assert is_revoked(py_pki, "alice")


def test_confirm_piped_yes(pki_copy):
    pki = pki_copy("v3.2.7-rsa")

    result = run_product(pki, "revoke", "alice", batch=False, input="yes\n")

    assert result.returncode == 0, result.stderr
    assert is_revoked(pki, "alice")
    assert TYPE_YES_LINE in result.stderr


def test_confirm_piped_no(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    before = pki_state(pki)

    result = run_product(pki, "revoke", "alice", batch=False, input="no\n")

    assert result.returncode == 1
    assert pki_state(pki) == before


def test_confirm_text_lines(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    child = spawn_product(pki, "revoke", "alice", "kc")
    child.expect_exact(CONFIRM_PROMPT)
    shown = (child.before + child.after).replace("\r\n", "\n")
    child.sendline("no")
    finish(child)

    assert f"\n{TYPE_YES_LINE}\n" in shown
    assert shown.endswith("  " + CONFIRM_PROMPT)
    assert "    commonName                = alice" in shown
    assert "    Reason: keyCompromise" in shown


@pytest.mark.parametrize("reason", [None, "superseded"])
def test_confirm_block_matches_reference(pki_copy, reference_for, reason):
    reasons = [reason] if reason else []
    ref_pki, py_pki = pki_copy("v3.2.7-rsa"), pki_copy("v3.2.7-rsa")
    ref_child = spawn_reference(reference_for("3.2.7"), ref_pki, "revoke", "alice", *reasons)
    ref_child.expect_exact(CONFIRM_PROMPT)
    ref_shown = ref_child.before + ref_child.after
    ref_child.sendline("no")
    finish(ref_child)
    py_child = spawn_product(py_pki, "revoke", "alice", *reasons)

    py_child.expect_exact(CONFIRM_PROMPT)
    py_shown = py_child.before + py_child.after
    py_child.sendline("no")
    finish(py_child)

    assert confirmation_block(py_shown) == confirmation_block(ref_shown)


def test_batch_skips_confirmation(pki_copy):
    pki = pki_copy("v3.2.7-rsa")
    child = spawn_product(pki, "revoke", "alice", batch=True)

    status, output = finish(child)

    assert status == 0
    assert CONFIRM_PROMPT not in output
    assert is_revoked(pki, "alice")


# --- CA passphrase -------------------------------------------------------------


def expect_passphrase_prompt(child: pexpect.spawn, pki: Path) -> None:
    child.expect_exact(PASSPHRASE_PROMPT.format(key=pki / "private" / "ca.key"))


def test_passphrase_typed_for_gen_crl(pki_copy):
    pki = pki_copy("v3.2.2-ec")
    old_crl = (pki / "crl.pem").read_bytes()
    child = spawn_product(pki, "gen-crl", batch=True)
    expect_passphrase_prompt(child, pki)

    child.sendline(EC_PASSPHRASE)
    status, output = finish(child)

    assert status == 0, output
    assert (pki / "crl.pem").read_bytes() != old_crl
    assert EC_PASSPHRASE not in output


def test_passphrase_typed_for_revoke(pki_copy):
    pki = pki_copy("v3.2.2-ec")
    child = spawn_product(pki, "revoke", "alice")
    child.expect_exact(CONFIRM_PROMPT)
    child.sendline("yes")
    expect_passphrase_prompt(child, pki)

    child.sendline(EC_PASSPHRASE)
    status, output = finish(child)

    assert status == 0, output
    assert is_revoked(pki, "alice")


@pytest.mark.parametrize("command", [["gen-crl"], ["update-db"], ["revoke", "alice"]])
def test_passphrase_wrong_typed(pki_copy, command):
    pki = pki_copy("v3.2.2-ec")
    before = pki_state(pki)
    child = spawn_product(pki, *command, batch=True)
    expect_passphrase_prompt(child, pki)

    child.sendline("not-the-passphrase")
    status, output = finish(child)

    assert status == 1
    assert pki_state(pki) == before
    assert str(pki / "private" / "ca.key") in output


def test_passphrase_prompt_matches_reference(pki_copy, reference_for):
    ref_pki, py_pki = pki_copy("v3.2.2-ec"), pki_copy("v3.2.2-ec")
    ref_child = spawn_reference(reference_for("3.2.7"), ref_pki, "gen-crl", batch=True)
    expect_passphrase_prompt(ref_child, ref_pki)
    ref_child.sendline(EC_PASSPHRASE)
    ref_status, _ = finish(ref_child)
    py_child = spawn_product(py_pki, "gen-crl", batch=True)

    expect_passphrase_prompt(py_child, py_pki)
    py_child.sendline(EC_PASSPHRASE)
    py_status, _ = finish(py_child)

    assert ref_status == 0
    assert py_status == 0
