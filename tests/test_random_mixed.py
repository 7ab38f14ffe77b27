"""Random mixed use: easyrsa_py and the real easy-rsa take random turns on one PKI.

Each sequence copies a fixture PKI and runs random steps on it, each step
by easyrsa_py or by the easy-rsa version that made the fixture, chosen at
random where that version has the command:

- issue a new name with build-client-full, build-server-full, or gen-req
  then sign-req (the two commands may run in different tools);
- renew, expire, set-pass, export-p12 and export-p8 of an issued name;
- revoke, revoke-issued, revoke-expired and revoke-renewed, with a random
  reason or none;
- gen-crl and update-db.

Each step must succeed, and its result is checked (the row, the moved
file, the new passphrase). After every step random_mixed_checks.check_pki
checks the whole PKI with both tools and OpenSSL, as its docstring lists.
easy-rsa 3.1.0 lacks expire, revoke-issued and revoke-expired, so
easyrsa_py runs those alone in its sequences.

CI runs one sequence of 8 steps for each of four fixtures, with fixed
seeds, and the named regression sequences. Environment variables for
longer runs:

- EASYRSA_PY_MIXED_STEPS: steps per sequence (default 8).
- EASYRSA_PY_MIXED_SEQUENCES: sequences per fixture (default 1).
- EASYRSA_PY_MIXED_SEED: the first sequence's seed (default 20261204);
  sequence N uses SEED + N. A failure names its seed, so
  `EASYRSA_PY_MIXED_SEED=S EASYRSA_PY_MIXED_SEQUENCES=1` with `-k FIXTURE`
  replays it.

For example, 20 sequences of 40 steps on each fixture, with the counts of
each command printed at the end:

    EASYRSA_PY_MIXED_SEQUENCES=20 EASYRSA_PY_MIXED_STEPS=40 \
        python -m pytest -q -s tests/test_random_mixed.py -k random_sequences
"""

from __future__ import annotations

import os
import random
import shlex
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pkitools import run_product
from random_mixed_checks import (
    PKIView,
    Row,
    certificate_public_bytes,
    certificate_serial,
    check_pki,
    load_certificate,
    load_key,
    openssl,
    read_rows,
)

STEPS = int(os.environ.get("EASYRSA_PY_MIXED_STEPS", "8"))
SEQUENCES = int(os.environ.get("EASYRSA_PY_MIXED_SEQUENCES", "1"))
FIRST_SEED = int(os.environ.get("EASYRSA_PY_MIXED_SEED", "20261204"))

PRODUCT = "easyrsa_py"
REFERENCE = "easy-rsa"
# easy-rsa 3.1.0 renews only within EASYRSA_CERT_RENEW days of the end
# date (30 by default); a new certificate lasts 825 days.
REFERENCE_ENV = {"EASYRSA_CERT_RENEW": "1000"}
# Commands easy-rsa 3.1.0 lacks.
NOT_IN_3_1_0 = frozenset({"expire", "revoke-issued", "revoke-expired"})
# None revokes without a reason. certificateHold is left out because
# OpenSSL also needs a hold instruction for it.
REASONS = (
    None,
    "unspecified",
    "keyCompromise",
    "CACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
)
ISSUE_METHODS = ("build-client-full", "build-server-full", "gen-req+sign-req")
SIGN_TYPES = ("client", "server", "serverClient")


@dataclass(frozen=True)
class Configuration:
    """A fixture PKI and the easy-rsa version that made it."""

    version: str
    fixture: str
    ca_passphrase: str | None = None
    # Options that make new keys of the fixture's kind; the fixtures
    # without a vars file need them.
    key_options: tuple[str, ...] = ()


CONFIGURATIONS = (
    Configuration("3.1.0", "v3.1.0-rsa"),
    Configuration(
        "3.2.2", "v3.2.2-ec", "fixture-ec-ca-pass", ("--use-algo=ec", "--curve=secp384r1")
    ),
    Configuration("3.2.7", "v3.2.7-rsa"),
    Configuration("3.2.7", "v3.2.7-ed25519", None, ("--use-algo=ed", "--curve=ed25519")),
)


@dataclass
class Sequence:
    """One random sequence of steps on one PKI, with its log for failures."""

    configuration: Configuration
    reference: Any
    view: PKIView
    rng: random.Random
    seed: int
    scratch: Path
    counts: Counter[str]
    history: list[str] = field(default_factory=list)
    new_names: int = 0

    @property
    def pki(self) -> Path:
        return self.view.pki

    @property
    def version(self) -> str:
        return self.configuration.version

    def pick_tool(self, command: str) -> str:
        if self.version == "3.1.0" and command in NOT_IN_3_1_0:
            return PRODUCT
        return self.rng.choice((PRODUCT, REFERENCE))

    def ca_options(self) -> list[str]:
        passphrase = self.configuration.ca_passphrase
        return [f"--passin=pass:{passphrase}"] if passphrase else []

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one command, log it, and fail the sequence unless it exits 0."""
        if tool == PRODUCT:
            result = run_product(self.pki, *args)
        else:
            result = self.reference.run(self.pki, *args, env=REFERENCE_ENV, check=False)
        label = PRODUCT if tool == PRODUCT else f"easy-rsa {self.version}"
        self.history.append(f"{label} {shlex.join(args)}")
        command = next(arg for arg in args if not arg.startswith("--"))
        self.counts[command] += 1
        if result.returncode != 0:
            self.fail(f"exit code {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def fail(self, message: str) -> NoReturn:
        steps = "\n".join(f"  {n}. {line}" for n, line in enumerate(self.history, 1))
        replay = (
            f"EASYRSA_PY_MIXED_SEED={self.seed} EASYRSA_PY_MIXED_SEQUENCES=1 "
            f"-k {self.configuration.fixture}"
        )
        pytest.fail(
            f"seed {self.seed} on {self.configuration.fixture} with easy-rsa "
            f"{self.version} (replay: {replay}), steps:\n{steps}\n{message}",
            pytrace=False,
        )

    def check(self) -> None:
        try:
            check_pki(self.view, self.scratch)
            return
        except AssertionError as error:
            message = str(error)
        self.fail(f"check after the last step failed: {message}")


# --- what the PKI contains ---------------------------------------------------


def names_in(pki: Path, folder: str) -> list[str]:
    return sorted(path.stem for path in (pki / folder).glob("*.crt"))


def serial_in(pki: Path, folder: str, name: str) -> str:
    return certificate_serial(load_certificate(pki / folder / f"{name}.crt"))


def row_of(pki: Path, serial: str) -> Row:
    matches = [row for row in read_rows(pki) if row.serial == serial]
    assert len(matches) == 1, f"serial {serial} has {len(matches)} rows"
    return matches[0]


def renewable_names(sequence: Sequence) -> list[str]:
    """Return issued names that every tool renews: valid, with a request, not renewed."""
    pki = sequence.pki
    now = datetime.now(UTC)
    names = []
    for name in names_in(pki, "issued"):
        row = row_of(pki, serial_in(pki, "issued", name))
        if row.status != "V" or row.expires <= now:
            continue
        if (pki / "reqs" / f"{name}.req").exists() and not (
            pki / "renewed" / "issued" / f"{name}.crt"
        ).exists():
            names.append(name)
    return names


def key_names(sequence: Sequence) -> list[str]:
    names = (path.stem for path in (sequence.pki / "private").glob("*.key"))
    return sorted(name for name in names if name not in ("ca", "easyrsa-tls"))


def exportable_names(sequence: Sequence) -> list[str]:
    keys = set(key_names(sequence))
    return [name for name in names_in(sequence.pki, "issued") if name in keys]


# --- steps --------------------------------------------------------------------


def issue(sequence: Sequence, _: str) -> None:
    sequence.new_names += 1
    name = f"mixed{sequence.new_names}"
    method = sequence.rng.choice(ISSUE_METHODS)
    key_options = list(sequence.configuration.key_options)
    if method == "gen-req+sign-req":
        sequence.run(sequence.pick_tool("gen-req"), *key_options, "gen-req", name, "nopass")
        kind = sequence.rng.choice(SIGN_TYPES)
        sequence.run(sequence.pick_tool("sign-req"), *sequence.ca_options(), "sign-req", kind, name)
    else:
        options = [*sequence.ca_options(), *key_options]
        sequence.run(sequence.pick_tool(method), *options, method, name, "nopass")

    row = row_of(sequence.pki, serial_in(sequence.pki, "issued", name))
    if row.status != "V" or row.subject != f"/CN={name}":
        sequence.fail(f"{name} was issued with the row {row}")


def renew(sequence: Sequence, name: str) -> None:
    pki = sequence.pki
    old_serial = serial_in(pki, "issued", name)
    tool = sequence.pick_tool("renew")
    arguments = ["renew", name]
    if tool == REFERENCE and sequence.version == "3.1.0":
        # easy-rsa 3.1.0 makes a new key on renewal and takes nopass for it.
        arguments.append("nopass")
        sequence.view.passphrases.pop(name, None)
    options = [*sequence.ca_options(), *sequence.configuration.key_options]
    sequence.run(tool, *options, *arguments)

    new_serial = serial_in(pki, "issued", name)
    if new_serial == old_serial or row_of(pki, new_serial).status != "V":
        sequence.fail(f"renew {name} left issued/{name}.crt with serial {new_serial}")
    if serial_in(pki, "renewed/issued", name) != old_serial:
        sequence.fail(f"renew {name} did not move serial {old_serial} to renewed/issued")


def expire(sequence: Sequence, name: str) -> None:
    serial = serial_in(sequence.pki, "issued", name)
    sequence.run(sequence.pick_tool("expire"), "expire", name)
    if (sequence.pki / "issued" / f"{name}.crt").exists():
        sequence.fail(f"expire {name} left issued/{name}.crt")
    if serial_in(sequence.pki, "expired", name) != serial:
        sequence.fail(f"expire {name} did not move serial {serial} to expired/")


def revoke_from(folder: str, command: str) -> Callable[[Sequence, str], None]:
    """Make a step that revokes NAME's certificate in ``folder`` with ``command``."""

    def revoke(sequence: Sequence, name: str) -> None:
        pki = sequence.pki
        serial = serial_in(pki, folder, name)
        reason = sequence.rng.choice(REASONS)
        words = [reason] if reason else []
        sequence.run(sequence.pick_tool(command), *sequence.ca_options(), command, name, *words)
        sequence.view.crl_fresh = False

        row = row_of(pki, serial)
        if row.status != "R" or row.reason != reason:
            sequence.fail(f"{command} {name} {reason} left the row {row}")
        if (pki / folder / f"{name}.crt").exists():
            sequence.fail(f"{command} {name} left {folder}/{name}.crt")
        if not (pki / "private" / f"{name}.key").exists():
            sequence.view.passphrases.pop(name, None)

    return revoke


def generate_crl(sequence: Sequence, _: str) -> None:
    tool = sequence.pick_tool("gen-crl")
    sequence.run(tool, *sequence.ca_options(), "gen-crl")
    sequence.view.crl_fresh = True
    # easy-rsa 3.1.0 writes only crl.pem, so an older crl.der stays behind.
    sequence.view.der_fresh = not (tool == REFERENCE and sequence.version == "3.1.0")


def update_database(sequence: Sequence, _: str) -> None:
    sequence.run(sequence.pick_tool("update-db"), *sequence.ca_options(), "update-db")
    now = datetime.now(UTC)
    for row in read_rows(sequence.pki):
        if row.status == "V" and row.expires <= now:
            sequence.fail(f"update-db left the ended row {row} valid")


def set_passphrase(sequence: Sequence, name: str) -> None:
    old = sequence.view.passphrases.get(name)
    tool = sequence.pick_tool("set-pass")
    new: str | None = sequence.rng.choice((None, f"pass-{sequence.rng.randrange(10**6)}"))
    command = "set-pass"
    if tool == REFERENCE and sequence.version == "3.1.0":
        command = "set-rsa-pass"
        # 3.1.0's nopass fails under OpenSSL 3 ("Unknown cipher: noenc").
        new = new or "pass-3.1.0"
    options = [f"--passin=pass:{old}"] if old else []
    options += [f"--passout=pass:{new}"] if new else []
    words = [] if new else ["nopass"]
    sequence.run(tool, *options, command, name, *words)

    if new:
        sequence.view.passphrases[name] = new
    else:
        sequence.view.passphrases.pop(name, None)
    try:
        load_key(sequence.pki / "private" / f"{name}.key", new)
    except (TypeError, ValueError) as error:
        sequence.fail(f"{command} {name} left a key that does not open: {error}")


def export_options(sequence: Sequence, name: str) -> tuple[list[str], list[str]]:
    """Return the options and words that export NAME's key under its passphrase."""
    passphrase = sequence.view.passphrases.get(name)
    if passphrase is None:
        return [], ["nopass"]
    return [f"--passin=pass:{passphrase}", f"--passout=pass:{passphrase}"], []


def export_passin(sequence: Sequence, name: str) -> str:
    """Return the -passin value that opens NAME's exports.

    easyrsa_py writes `nopass` exports unencrypted, and easy-rsa encrypts
    them with an empty passphrase (compat.md D27 and D29): `pass:` opens both.
    """
    return f"pass:{sequence.view.passphrases.get(name, '')}"


def export_p12(sequence: Sequence, name: str) -> None:
    options, words = export_options(sequence, name)
    sequence.run(sequence.pick_tool("export-p12"), *options, "export-p12", name, *words)
    check_p12_export(sequence, name)


def check_p12_export(sequence: Sequence, name: str) -> None:
    bundle = sequence.pki / "private" / f"{name}.p12"
    result = openssl(
        "pkcs12", "-in", str(bundle), "-passin", export_passin(sequence, name),
        "-nokeys", "-clcerts",
    )
    if result.returncode != 0:
        sequence.fail(f"openssl pkcs12 cannot open {bundle}:\n{result.stderr}")
    certificate = x509.load_pem_x509_certificate(result.stdout.encode())
    if certificate_serial(certificate) != serial_in(sequence.pki, "issued", name):
        sequence.fail(f"{bundle} contains another certificate")


def export_p8(sequence: Sequence, name: str) -> None:
    options, words = export_options(sequence, name)
    sequence.run(sequence.pick_tool("export-p8"), *options, "export-p8", name, *words)
    check_p8_export(sequence, name)


def check_p8_export(sequence: Sequence, name: str) -> None:
    key = sequence.pki / "private" / f"{name}.p8"
    result = openssl(
        "pkey", "-in", str(key), "-passin", export_passin(sequence, name), "-pubout"
    )
    if result.returncode != 0:
        sequence.fail(f"openssl pkey cannot open {key}:\n{result.stderr}")
    public_key = serialization.load_pem_public_key(result.stdout.encode())
    certificate = load_certificate(sequence.pki / "issued" / f"{name}.crt")
    if public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certificate_public_bytes(certificate):
        sequence.fail(f"{key} does not match issued/{name}.crt")


@dataclass(frozen=True)
class Step:
    """A kind of step: its weight, the names it can act on, and how to take it."""

    name: str
    weight: int
    targets: Callable[[Sequence], list[str]]
    take: Callable[[Sequence, str], None]


def always(_: Sequence) -> list[str]:
    return [""]


def in_folder(folder: str) -> Callable[[Sequence], list[str]]:
    return lambda sequence: names_in(sequence.pki, folder)


def not_expired_yet(sequence: Sequence) -> list[str]:
    expired = set(names_in(sequence.pki, "expired"))
    return [name for name in names_in(sequence.pki, "issued") if name not in expired]


STEP_KINDS = (
    Step("issue", 4, always, issue),
    Step("renew", 2, renewable_names, renew),
    Step("expire", 1, not_expired_yet, expire),
    Step("revoke", 2, in_folder("issued"), revoke_from("issued", "revoke")),
    Step("revoke-issued", 1, in_folder("issued"), revoke_from("issued", "revoke-issued")),
    Step("revoke-expired", 2, in_folder("expired"), revoke_from("expired", "revoke-expired")),
    Step(
        "revoke-renewed",
        2,
        in_folder("renewed/issued"),
        revoke_from("renewed/issued", "revoke-renewed"),
    ),
    Step("gen-crl", 2, always, generate_crl),
    Step("update-db", 1, always, update_database),
    Step("set-pass", 1, key_names, set_passphrase),
    Step("export-p12", 1, exportable_names, export_p12),
    Step("export-p8", 1, exportable_names, export_p8),
)


def take_random_step(sequence: Sequence) -> None:
    choices = [(kind, kind.targets(sequence)) for kind in STEP_KINDS]
    choices = [(kind, targets) for kind, targets in choices if targets]
    weights = [kind.weight for kind, _ in choices]
    kind, targets = sequence.rng.choices(choices, weights)[0]
    kind.take(sequence, sequence.rng.choice(targets))


def start_sequence(
    configuration: Configuration, reference: Any, pki: Path, scratch: Path, seed: int
) -> Sequence:
    def run_reference(target: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return reference.run(target, *args, env=REFERENCE_ENV, check=False)

    view = PKIView(pki, configuration.version, run_reference, configuration.ca_passphrase)
    return Sequence(
        configuration, reference, view, random.Random(seed), seed, scratch, Counter()
    )


def run_sequence(
    configuration: Configuration,
    reference: Any,
    pki: Path,
    scratch: Path,
    seed: int,
    steps: int,
) -> Counter[str]:
    """Take ``steps`` random steps on ``pki``, checking it before and after each."""
    sequence = start_sequence(configuration, reference, pki, scratch, seed)
    sequence.check()
    for _ in range(steps):
        take_random_step(sequence)
        sequence.check()
    return sequence.counts


@pytest.mark.parametrize(
    "configuration", CONFIGURATIONS, ids=[c.fixture for c in CONFIGURATIONS]
)
def test_random_sequences(configuration, reference_for, pki_copy, tmp_path):
    reference = reference_for(configuration.version)
    totals: Counter[str] = Counter()
    for index in range(SEQUENCES):
        scratch = tmp_path / f"scratch-{index}"
        scratch.mkdir()
        pki = pki_copy(configuration.fixture)
        totals += run_sequence(
            configuration, reference, pki, scratch, FIRST_SEED + index, STEPS
        )
    print(
        f"\n{configuration.fixture}: {SEQUENCES} sequences of {STEPS} steps, "
        f"commands run: {dict(sorted(totals.items()))}"
    )


# --- regression sequences -----------------------------------------------------

CONFIGURATION_BY_FIXTURE = {c.fixture: c for c in CONFIGURATIONS}
# Sequences that random runs failed on, as (tool, arguments) steps; the
# checks run after each step. Each failure was in the test's own checks,
# and these keep them right.
REGRESSION_SEQUENCES = {
    # cryptography spells the reason cACompromise, index.txt CACompromise.
    "ca-compromise-crl-by-reference": (
        "v3.2.7-rsa",
        [(PRODUCT, ("revoke", "alice", "CACompromise")), (REFERENCE, ("gen-crl",))],
    ),
    "ca-compromise-crl-by-product": (
        "v3.2.7-rsa",
        [(REFERENCE, ("revoke", "alice", "CACompromise")), (PRODUCT, ("gen-crl",))],
    ),
    # After update-db writes E rows, easy-rsa 3.1.0's show-revoke stops
    # with "Unexpected status: E".
    "e-rows-in-3.1.0": ("v3.1.0-rsa", [(PRODUCT, ("update-db",))]),
    # easy-rsa's export-p8 nopass encrypts with an empty passphrase, which
    # cryptography cannot open but openssl pkey -passin pass: can.
    "empty-passphrase-p8": (
        "v3.2.7-ed25519",
        [(REFERENCE, ("export-p8", "alice", "nopass"))],
    ),
}


@pytest.mark.parametrize("name", sorted(REGRESSION_SEQUENCES))
def test_regression_sequence(name, reference_for, pki_copy, tmp_path):
    fixture, steps = REGRESSION_SEQUENCES[name]
    configuration = CONFIGURATION_BY_FIXTURE[fixture]
    reference = reference_for(configuration.version)
    pki = pki_copy(fixture)
    sequence = start_sequence(configuration, reference, pki, tmp_path, seed=0)
    sequence.check()
    for tool, arguments in steps:
        sequence.run(tool, *sequence.ca_options(), *arguments)
        command = arguments[0]
        if command == "gen-crl":
            sequence.view.crl_fresh = True
        elif command == "revoke":
            sequence.view.crl_fresh = False
        elif command == "export-p8":
            check_p8_export(sequence, arguments[1])
        sequence.check()
