"""Merge defaults, vars, environment and options into one Settings object.

The rules follow easy-rsa 3.2.7.

Precedence, highest first:

1. the ``--days`` values of a command (EASYRSA_CA_EXPIRE, EASYRSA_CERT_EXPIRE,
   EASYRSA_CRL_DAYS, EASYRSA_PRE_EXPIRY_WINDOW in ``options``), which
   easy-rsa exports only after it has read vars;
2. ``force_set_var`` lines of the vars file;
3. other command-line options;
4. the environment;
5. ``set_var`` lines of the vars file;
6. the defaults of easy-rsa 3.2.7's default_vars().

The umask is the exception: easy-rsa sets it before reading vars, so
EASYRSA_UMASK and EASYRSA_NO_UMASK come from options and the environment
only. So does ``--force-vars``: easy-rsa 3.2.7 clears EASYRSA_FORCE_VARS
from the environment at start-up, so only the option enables it.

Compatibility with 3.1.0: its vars_setup() looked in $EASYRSA_PKI/vars (or
$PWD/pki/vars), $EASYRSA/vars, $PWD/vars and the script's own folder, and
stopped with an error when more than one of them existed. 3.2.x takes the
first file in priority order and never looks in the script's folder.
3.1.0's ``set_var NAME two words`` joined the words, had no force_set_var
and no ``--force-vars``, and set its umask before reading options.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from easyrsa_py.errors import UsageError, VarsError
from easyrsa_py.vars import VarsFile, parse_vars

logger = logging.getLogger(__name__)

# The nsComment that easy-rsa 3.2.7 puts in certificates by default.
DEFAULT_NS_COMMENT = "Easy-RSA (3.2.7) Generated Certificate"
DEFAULT_UMASK = 0o077

# easy-rsa 3.2.7 exports these from --days after reading vars, so they
# override even force_set_var.
_APPLIED_AFTER_VARS = (
    "EASYRSA_CA_EXPIRE",
    "EASYRSA_CERT_EXPIRE",
    "EASYRSA_CRL_DAYS",
    "EASYRSA_PRE_EXPIRY_WINDOW",
)
# easy-rsa 3.2.7 discards these environment values at start-up.
_ENVIRONMENT_IGNORED = ("EASYRSA_FORCE_VARS", "EASYRSA_ALIAS_DAYS")
_PASSPHRASES = ("EASYRSA_PASSIN", "EASYRSA_PASSOUT")
_ALGORITHMS = ("rsa", "ec", "ed")
_DN_MODES = ("cn_only", "org")
_DEFAULT_CURVES = {"ec": "secp384r1", "ed": "ed25519"}
_UMASK = re.compile(r"[0-7]{1,4}")
_NUMBER = re.compile(r"[0-9]+")

# default_vars() of easy-rsa 3.2.7, in its order. A callable default is
# computed from the values already in effect.
_DEFAULTS: tuple[tuple[str, str | Callable[[Mapping[str, str]], str]], ...] = (
    ("EASYRSA", lambda values: values["PWD"]),
    ("EASYRSA_OPENSSL", "openssl"),
    ("EASYRSA_PKI", lambda values: values["EASYRSA"] + "/pki"),
    ("EASYRSA_DN", "cn_only"),
    ("EASYRSA_REQ_COUNTRY", "US"),
    ("EASYRSA_REQ_PROVINCE", "California"),
    ("EASYRSA_REQ_CITY", "San Francisco"),
    ("EASYRSA_REQ_ORG", "Copyleft Certificate Co"),
    ("EASYRSA_REQ_EMAIL", "me@example.net"),
    ("EASYRSA_REQ_OU", "My Organizational Unit"),
    ("EASYRSA_REQ_SERIAL", ""),
    ("EASYRSA_ALGO", "rsa"),
    ("EASYRSA_KEY_SIZE", "2048"),
    ("EASYRSA_CA_EXPIRE", "3650"),
    ("EASYRSA_CERT_EXPIRE", "825"),
    ("EASYRSA_PRE_EXPIRY_WINDOW", "90"),
    ("EASYRSA_CRL_DAYS", "180"),
    ("EASYRSA_NS_SUPPORT", "no"),
    ("EASYRSA_NS_COMMENT", DEFAULT_NS_COMMENT),
    ("EASYRSA_TEMP_DIR", lambda values: values["EASYRSA_PKI"]),
    ("EASYRSA_REQ_CN", "ChangeMe"),
    ("EASYRSA_DIGEST", "sha256"),
    ("EASYRSA_MAX_TEMP", "1"),
)

SOURCE_OPTION = "the command line"
SOURCE_ENVIRONMENT = "the environment"
SOURCE_VARS = "the vars file"
SOURCE_DEFAULT = "the defaults"


@dataclass(frozen=True)
class Settings:
    """Every setting one easyrsa_py run uses, after all sources are merged."""

    easyrsa_dir: Path
    pki_dir: Path
    vars_file: Path | None
    batch: bool
    silent: bool
    verbose: bool
    passin: str | None = field(repr=False)
    passout: str | None = field(repr=False)
    digest: str
    crl_days: int
    cert_expire: int
    ca_expire: int
    pre_expiry_window: int
    umask: int | None
    no_lockfile: bool
    force_vars: bool
    temp_dir: Path
    algo: str
    key_size: int
    curve: str | None
    dn_mode: str
    openssl: str
    req_country: str
    req_province: str
    req_city: str
    req_org: str
    req_email: str
    req_ou: str
    req_serial: str
    req_cn: str
    ns_support: bool
    ns_comment: str
    san_critical: bool
    max_temp: int
    # Every EASYRSA_* value in effect except the passphrases, which are only
    # in passin and passout so that printing ``raw`` cannot leak them.
    raw: Mapping[str, str]
    # Notes on the vars lines that --force-vars skipped, for the CLI to show.
    vars_ignored: tuple[str, ...] = ()


@dataclass
class _Resolved:
    """Values in effect while settings are built, and where each came from."""

    values: dict[str, str]
    sources: dict[str, str]
    vars_file: Path | None = None

    def source_of(self, name: str) -> str:
        return self.sources.get(name, SOURCE_DEFAULT)

    def invalid(self, name: str, message: str) -> UsageError | VarsError:
        """Build the error for an invalid value, naming where it was set."""
        value = self.values.get(name, "")
        source = self.source_of(name)
        text = f"Invalid {name} {value!r} from {source}: {message}"
        if source == SOURCE_VARS and self.vars_file is not None:
            return VarsError(self.vars_file, f"{text} Correct it in {self.vars_file}.")
        return UsageError(text)


def build_settings(
    options: Mapping[str, str], environ: Mapping[str, str], cwd: Path
) -> Settings:
    """Resolve defaults, vars, environment and options into Settings.

    ``options`` maps EASYRSA_* names to the values the command line gave.
    ``environ`` is the process environment and ``cwd`` the working folder,
    which stands for the shell's $PWD in vars files and defaults.
    Raises VarsError for a vars file that cannot be used and UsageError for
    an invalid value from the command line or the environment.
    """
    shell_env = sourcing_environment(options, environ, cwd)
    umask = _read_umask(shell_env, options)
    force_vars = bool(options.get("EASYRSA_FORCE_VARS"))
    vars_path, expects_default_pki = select_vars_file(shell_env, cwd)

    resolved = _Resolved(dict(shell_env), _sources(options, environ, shell_env))
    vars_file = None
    if vars_path is not None:
        vars_file = load_vars_file(vars_path, shell_env, force=force_vars)
        _apply_vars(resolved, vars_file)
    for name in _APPLIED_AFTER_VARS:
        if name in options:
            resolved.values[name] = options[name]
            resolved.sources[name] = SOURCE_OPTION
    _apply_defaults(resolved.values)

    if expects_default_pki:
        _check_default_pki_vars(resolved.values, cwd, vars_path)
    return _settings_from(resolved, cwd, umask, force_vars, vars_file)


def sourcing_environment(
    options: Mapping[str, str], environ: Mapping[str, str], cwd: Path
) -> dict[str, str]:
    """Build the variables a vars file sees: environment, then options on top.

    ``--curve`` without ``--algo`` also chooses the algorithm, unless the
    environment already sets EASYRSA_ALGO, as easy-rsa 3.2.7's option loop
    does with set_var.
    """
    shell_env = {
        name: value
        for name, value in environ.items()
        if name not in _ENVIRONMENT_IGNORED
    }
    if environ.get("EASYRSA_ALIAS_DAYS"):
        logger.warning("EASYRSA_ALIAS_DAYS from the environment is ignored.")
    shell_env.update(
        (name, value)
        for name, value in options.items()
        if name not in _APPLIED_AFTER_VARS
    )
    curve = options.get("EASYRSA_CURVE")
    if curve is not None and "EASYRSA_ALGO" not in shell_env:
        shell_env["EASYRSA_ALGO"] = "ed" if curve.startswith("ed") else "ec"
    shell_env["PWD"] = str(cwd)
    return shell_env


def select_vars_file(
    shell_env: Mapping[str, str], cwd: Path
) -> tuple[Path | None, bool]:
    """Choose the vars file as easy-rsa 3.2.7's select_vars() does.

    Returns the file, or None, and whether it is the default ``pki/vars``
    found by search, which may not change EASYRSA or EASYRSA_PKI. In order:
    EASYRSA_NO_VARS turns vars off; EASYRSA_VARS_FILE (``--vars``) is used
    alone; otherwise the first existing file of $EASYRSA_PKI/vars,
    $EASYRSA/vars, $PWD/pki/vars (only if neither EASYRSA_PKI nor EASYRSA
    is set) and $PWD/vars.
    """
    if shell_env.get("EASYRSA_NO_VARS"):
        return None, False
    explicit = shell_env.get("EASYRSA_VARS_FILE")
    if explicit:
        return _resolve(explicit, cwd), False

    pki = shell_env.get("EASYRSA_PKI")
    easyrsa = shell_env.get("EASYRSA")
    candidates: list[tuple[Path, bool]] = []
    if pki:
        candidates.append((_resolve(pki, cwd) / "vars", False))
    if easyrsa:
        candidates.append((_resolve(easyrsa, cwd) / "vars", False))
    if not pki and not easyrsa:
        candidates.append((cwd / "pki" / "vars", True))
    candidates.append((cwd / "vars", False))

    for candidate, is_default_pki in candidates:
        if candidate.is_file():
            logger.debug("Selected vars file %s", candidate)
            return candidate, is_default_pki
    return None, False


def load_vars_file(
    path: Path, shell_env: Mapping[str, str], *, force: bool
) -> VarsFile:
    """Read and parse one vars file. Raises VarsError if it is missing."""
    if not path.is_file():
        raise VarsError(
            path,
            f"Missing vars file: {path} does not exist or is not a file. "
            "Correct the --vars option or EASYRSA_VARS_FILE, or remove it.",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise VarsError(path, f"Cannot read vars file {path}: {error}") from error
    logger.info("Using vars file %s", path)
    return parse_vars(text, path, environ=shell_env, force=force)


def _sources(
    options: Mapping[str, str], environ: Mapping[str, str], shell_env: Mapping[str, str]
) -> dict[str, str]:
    """Label each name with where its value came from.

    A name in ``shell_env`` that is in neither mapping is EASYRSA_ALGO
    chosen by ``--curve``, which counts as a command-line value.
    """
    sources = {name: SOURCE_OPTION for name in shell_env if name not in environ}
    sources.update((name, SOURCE_ENVIRONMENT) for name in environ if name in shell_env)
    sources.update((name, SOURCE_OPTION) for name in options)
    return sources


def _apply_vars(resolved: _Resolved, vars_file: VarsFile) -> None:
    resolved.vars_file = vars_file.path
    for name in vars_file.unset:
        resolved.values.pop(name, None)
        resolved.sources[name] = SOURCE_VARS
    for name, value in vars_file.values.items():
        resolved.values[name] = value
        resolved.sources[name] = SOURCE_VARS


def _apply_defaults(values: dict[str, str]) -> None:
    """Fill in unset names. A name set to an empty value keeps it, as in easy-rsa."""
    for name in ("EASYRSA", "EASYRSA_PKI", "EASYRSA_TEMP_DIR"):
        # An empty path would make easy-rsa use "/pki" and the like, so it
        # counts as unset here.
        if values.get(name) == "":
            del values[name]
    for name, default in _DEFAULTS:
        if name not in values:
            values[name] = default(values) if callable(default) else default
    algo = values["EASYRSA_ALGO"]
    if algo in _DEFAULT_CURVES and "EASYRSA_CURVE" not in values:
        values["EASYRSA_CURVE"] = _DEFAULT_CURVES[algo]


def _check_default_pki_vars(
    values: Mapping[str, str], cwd: Path, vars_path: Path | None
) -> None:
    """Reject a default pki/vars that moves EASYRSA or EASYRSA_PKI.

    easy-rsa compares the strings exactly, so "$PWD/pki" passes and "pki"
    does not, although both name the same folder.
    """
    expected = {"EASYRSA": str(cwd), "EASYRSA_PKI": f"{cwd}/pki"}
    changed = [
        f"{name} is {values[name]!r}, expected {expected_value!r}"
        for name, expected_value in expected.items()
        if values[name] != expected_value
    ]
    if not changed:
        return
    assert vars_path is not None
    raise VarsError(
        vars_path,
        f"The default vars file {vars_path} may not change EASYRSA or "
        f"EASYRSA_PKI: {'; '.join(changed)}. Remove those set_var lines from "
        "it, or select the PKI with --pki-dir or EASYRSA_PKI instead.",
    )


def _read_umask(shell_env: Mapping[str, str], options: Mapping[str, str]) -> int | None:
    if shell_env.get("EASYRSA_NO_UMASK"):
        return None
    text = shell_env.get("EASYRSA_UMASK") or ""
    if not text:
        return DEFAULT_UMASK
    if not _UMASK.fullmatch(text):
        source = SOURCE_OPTION if "EASYRSA_UMASK" in options else SOURCE_ENVIRONMENT
        raise UsageError(
            f"Invalid EASYRSA_UMASK {text!r} from {source}: expected an octal "
            "mode of up to four digits 0-7, such as 077."
        )
    return int(text, 8)


def _settings_from(
    resolved: _Resolved,
    cwd: Path,
    umask: int | None,
    force_vars: bool,
    vars_file: VarsFile | None,
) -> Settings:
    values = resolved.values

    def flag(name: str) -> bool:
        return bool(values.get(name))

    return Settings(
        easyrsa_dir=_resolve(values["EASYRSA"], cwd),
        pki_dir=_resolve(values["EASYRSA_PKI"], cwd),
        vars_file=vars_file.path if vars_file else None,
        batch=flag("EASYRSA_BATCH"),
        silent=flag("EASYRSA_SILENT"),
        verbose=flag("EASYRSA_VERBOSE"),
        passin=values.get("EASYRSA_PASSIN") or None,
        passout=values.get("EASYRSA_PASSOUT") or None,
        digest=_read_text(resolved, "EASYRSA_DIGEST"),
        crl_days=_read_number(resolved, "EASYRSA_CRL_DAYS"),
        cert_expire=_read_number(resolved, "EASYRSA_CERT_EXPIRE"),
        ca_expire=_read_number(resolved, "EASYRSA_CA_EXPIRE"),
        pre_expiry_window=_read_number(resolved, "EASYRSA_PRE_EXPIRY_WINDOW"),
        umask=umask,
        no_lockfile=flag("EASYRSA_NO_LOCKFILE"),
        force_vars=force_vars,
        temp_dir=_resolve(values["EASYRSA_TEMP_DIR"], cwd),
        algo=_read_choice(resolved, "EASYRSA_ALGO", _ALGORITHMS),
        key_size=_read_number(resolved, "EASYRSA_KEY_SIZE", minimum=1),
        curve=values.get("EASYRSA_CURVE") or None,
        dn_mode=_read_choice(resolved, "EASYRSA_DN", _DN_MODES),
        openssl=values["EASYRSA_OPENSSL"],
        req_country=values["EASYRSA_REQ_COUNTRY"],
        req_province=values["EASYRSA_REQ_PROVINCE"],
        req_city=values["EASYRSA_REQ_CITY"],
        req_org=values["EASYRSA_REQ_ORG"],
        req_email=values["EASYRSA_REQ_EMAIL"],
        req_ou=values["EASYRSA_REQ_OU"],
        req_serial=values["EASYRSA_REQ_SERIAL"],
        req_cn=values["EASYRSA_REQ_CN"],
        ns_support=values["EASYRSA_NS_SUPPORT"].lower() == "yes",
        ns_comment=values["EASYRSA_NS_COMMENT"],
        san_critical=flag("EASYRSA_SAN_CRIT"),
        max_temp=_read_number(resolved, "EASYRSA_MAX_TEMP", minimum=1),
        raw=MappingProxyType(_raw_values(values)),
        vars_ignored=tuple(vars_file.ignored) if vars_file else (),
    )


def _raw_values(values: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in values.items()
        if name.startswith("EASYRSA_") or name == "EASYRSA"
        if name not in _PASSPHRASES
    }


def _read_choice(resolved: _Resolved, name: str, choices: tuple[str, ...]) -> str:
    value = resolved.values[name]
    if value not in choices:
        expected = ", ".join(repr(choice) for choice in choices)
        raise resolved.invalid(name, f"expected one of {expected}.")
    return value


def _read_text(resolved: _Resolved, name: str) -> str:
    value = resolved.values[name]
    if not value:
        raise resolved.invalid(name, "the value is empty; set it or leave it unset.")
    return value


def _read_number(resolved: _Resolved, name: str, *, minimum: int = 0) -> int:
    text = resolved.values[name]
    if not _NUMBER.fullmatch(text) or int(text) < minimum:
        raise resolved.invalid(
            name, f"expected a whole number of at least {minimum}, such as 30."
        )
    return int(text)


def _resolve(value: str, cwd: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else cwd / path
