"""Tests for easyrsa_py.vars: reading vars files as data."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from easyrsa_py.errors import VarsError
from easyrsa_py.vars import VarsFile, parse_vars

DATA = Path(__file__).parent / "data" / "vars"
EXAMPLES = sorted(DATA.glob("*vars.example-*"))
ENV = {"PWD": "/work/ca", "HOME": "/home/op"}


def parse(
    text: str, environ: dict[str, str] | None = None, force: bool = False
) -> VarsFile:
    return parse_vars(
        text, Path("vars"), environ=ENV if environ is None else environ, force=force
    )


def rejection(text: str) -> str:
    with pytest.raises(VarsError) as caught:
        parse(text)
    return str(caught.value)


def uncommented(example: Path) -> str:
    """Return the example with every '#set_var' line made active.

    The '${0%/*}' line is dropped: it names the easyrsa script's folder,
    which easyrsa_py rejects (see test_script_folder_rejected).
    """
    lines = []
    for line in example.read_text().split("\n"):
        if "${0%/*}" in line:
            continue
        lines.append(re.sub(r"^#(set_var)", r"\1", line))
    return "\n".join(lines)


# --- the shipped examples ---------------------------------------------------


def test_examples_present():
    names = {path.name for path in EXAMPLES}
    assert names >= {
        "vars.example-3.0.8",
        "vars.example-3.1.0",
        "vars.example-3.2.2",
        "vars.example-3.2.7",
        "pki-vars.example-3.2.7",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_as_shipped_sets_nothing(example: Path):
    result = parse_vars(example.read_text(), example, environ=ENV)
    assert result.values == {}
    assert result.ignored == []


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_uncommented_sets_every_name(example: Path):
    text = uncommented(example)
    names = re.findall(r"^set_var\s+(\w+)", text, flags=re.MULTILINE)

    result = parse_vars(text, example, environ=ENV)

    assert set(result.values) == set(names)


def test_example_values_3_0_8():
    result = parse(uncommented(DATA / "vars.example-3.0.8"))
    assert result.values["EASYRSA_PKI"] == "/work/ca/pki"
    assert result.values["EASYRSA_TEMP_DIR"] == "/work/ca/pki"
    # $EASYRSA is not set while vars is read, as in easy-rsa 3.2.7.
    assert result.values["EASYRSA_SSL_CONF"] == "/openssl-easyrsa.cnf"
    assert result.values["EASYRSA_EXT_DIR"] == "/x509-types"
    assert result.values["EASYRSA_BATCH"] == ""


def test_example_first_set_var_wins():
    result = parse(uncommented(DATA / "vars.example-3.2.7"))
    assert result.values["EASYRSA_OPENSSL"] == "openssl"


def test_example_escaped_backslashes():
    result = parse(uncommented(DATA / "pki-vars.example-3.2.7"))
    expected = "C:\\Program Files\\Openvpn\\bin\\openvpn.exe"
    assert result.values["EASYRSA_OPENVPN"] == expected


def test_example_tab_separated():
    result = parse(uncommented(DATA / "vars.example-3.2.7"))
    assert result.values["EASYRSA_KU_CRIT"] == "1"
    assert result.values["EASYRSA_REQ_ORG"] == "Copyleft Certificate Co"


def test_script_folder_rejected():
    message = rejection('set_var EASYRSA\t"${0%/*}"\n')
    assert "line 1" in message
    assert "${0%/*}" in message
    assert "folder's path" in message


# --- forms of set_var -------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('set_var X "two words"', "two words"),
        ("set_var X 'two words'", "two words"),
        ("set_var X plain", "plain"),
        ("set_var X 'a $HOME'", "a /home/op"),
        ("set_var X 'a\\$HOME'", "a$HOME"),
        ("set_var X 'x\\}y'", "x}y"),
        ('set_var X "$HOME/pki"', "/home/op/pki"),
        ('set_var X "${HOME}x"', "/home/opx"),
        ("set_var X $HOME", "/home/op"),
        ('set_var X "$PWD"/pki', "/work/ca/pki"),
        ("set_var X ~/pki", "/home/op/pki"),
        ("set_var X a\\ b", "a b"),
        ('set_var X "C:\\\\Program Files\\\\x"', "C:\\Program Files\\x"),
        ('set_var X "C:\\\\bin"', "C:\\bin"),
        ('set_var X ""', ""),
        ("set_var X", ""),
        ('set_var X "$UNDEFINED"', ""),
        ("set_var X cost$", "cost$"),
        ("set_var X a#b", "a#b"),
        ("\t  set_var\tX\t\tv   # trailing comment", "v"),
        ("set_var X \\\n  continued", "continued"),
        ('set_var X "first\nsecond"', "first\nsecond"),
    ],
)
def test_set_var_value(line: str, expected: str):
    assert parse(line + "\n").values == {"X": expected}


def test_reference_to_earlier_line():
    result = parse(
        'set_var EASYRSA_PKI "$PWD/pki"\nset_var EASYRSA_TEMP_DIR "$EASYRSA_PKI/tmp"\n'
    )
    assert result.values["EASYRSA_TEMP_DIR"] == "/work/ca/pki/tmp"


def test_crlf_line_endings():
    assert parse("set_var X one\r\nset_var Y two\r\n").values == {
        "X": "one",
        "Y": "two",
    }


def test_comments_and_blank_lines():
    assert parse("# set_var X 1\n\n   # indented comment\n\t\n").values == {}


def test_empty_text():
    assert parse("").values == {}


def test_line_without_final_newline():
    assert parse("set_var X 1").values == {"X": "1"}


# --- set_var and force_set_var against the environment -----------------------


def test_set_var_keeps_environment():
    result = parse("set_var EASYRSA_DIGEST sha512\n", {"EASYRSA_DIGEST": "sha384"})
    assert result.values == {}


def test_set_var_keeps_empty_environment():
    result = parse("set_var EASYRSA_BATCH 1\n", {"EASYRSA_BATCH": ""})
    assert result.values == {}


def test_set_var_keeps_earlier_line():
    result = parse("set_var X first\nset_var X second\n")
    assert result.values == {"X": "first"}


def test_force_set_var_overrides_environment():
    result = parse(
        "force_set_var EASYRSA_DIGEST sha512\n", {"EASYRSA_DIGEST": "sha384"}
    )
    assert result.values == {"EASYRSA_DIGEST": "sha512"}


def test_force_set_var_overrides_earlier_line():
    result = parse("set_var X first\nset_var Y y\nforce_set_var X second\n")
    assert result.values == {"Y": "y", "X": "second"}
    assert list(result.values) == ["Y", "X"]


def test_force_set_var_empty_unsets_environment():
    result = parse('force_set_var EASYRSA_BATCH ""\n', {"EASYRSA_BATCH": "1"})
    assert result.values == {}
    assert result.unset == frozenset({"EASYRSA_BATCH"})


def test_set_var_after_unset_applies():
    result = parse('force_set_var X ""\nset_var X again\n', {"X": "env"})
    assert result.values == {"X": "again"}
    assert result.unset == frozenset()


def test_unset_name_expands_empty():
    result = parse('force_set_var HOME ""\nset_var X "[$HOME]"\n')
    assert result.values == {"X": "[]"}


# --- the guard block --------------------------------------------------------


GUARD_3_0 = """if [ -z "$EASYRSA_CALLER" ]; then
\techo "You appear to be sourcing an Easy-RSA 'vars' file." >&2
\techo "This is no longer necessary and is disallowed." >&2
\treturn 1
fi
set_var X after
"""


def test_guard_block_skipped():
    assert parse(GUARD_3_0).values == {"X": "after"}


def test_guard_with_other_command_rejected():
    text = GUARD_3_0.replace("\treturn 1", "\trm -rf /tmp/x\n\treturn 1")
    message = rejection(text)
    assert "lines 1-6" in message
    assert "'if' starts a shell compound command" in message


# --- shell code rejected ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("set_var X $(id -u)\n", 1, "'$(' (command substitution"),
        ("\nset_var X `id -u`\n", 2, "backtick"),
        ("set_var X 'a`b'\n", 1, "backtick"),
        ("export EASYRSA_DIGEST=sha512\n", 1, "'export'"),
        ("unset EASYRSA_BATCH\n", 1, "'unset'"),
        ("EASYRSA_DIGEST=sha512\n", 1, "assignment"),
        ("FOO=bar\n", 1, "'FOO=' is a shell assignment"),
        ("set_var X 1; set_var Y 2\n", 1, "operator ';'"),
        ("set_var X 1 | cat\n", 1, "operator '|'"),
        ("set_var X 1 > /tmp/out\n", 1, "operator '>'"),
        ("set_var X 1 &\n", 1, "operator '&'"),
        ("alias awk=/alt/bin/awk\n", 1, "'alias' is a shell command"),
        (". /etc/other-vars\n", 1, "'.' is a shell command"),
        ("source /etc/other-vars\n", 1, "'source' is a shell command"),
        ("case x in\n  x) set_var X 1 ;;\nesac\n", 1, "lines 1-3"),
        ("for i in 1; do\n  set_var X $i\ndone\n", 1, "lines 1-3"),
        ("my_func() {\n  set_var X 1\n}\n", 1, "lines 1-3"),
        ('if [ "$A" ]; then\n  set_var X 1\nelse\n  set_var X 2\nfi\n', 1, "lines 1-5"),
        ("set_var X ${HOME:-/root}\n", 1, "parameter expansion"),
        ("set_var X $1\n", 1, "special shell parameter"),
        ("set_var X *.pem\n", 1, "wildcard"),
        ("set_var X ~root/pki\n", 1, "another user's home"),
        ("set_var $NAME value\n", 1, "variable name must be written out"),
        ('set_var X "unclosed\n', 1, "never closed"),
    ],
)
def test_shell_code_rejected(text: str, line: int, reason: str):
    message = rejection(text)
    assert f"line {line}" in message or f"lines {line}-" in message
    assert reason in message
    assert "--force-vars" in message


def test_rejection_names_file_and_text():
    with pytest.raises(VarsError) as caught:
        parse_vars("\n\nexport X=1\n", Path("/srv/pki/vars"), environ=ENV)
    assert caught.value.path == Path("/srv/pki/vars")
    assert "/srv/pki/vars" in str(caught.value)
    assert "line 3: 'export X=1'" in str(caught.value)


def test_rejection_lists_every_line_in_order():
    message = rejection("export A=1\nset_var OK 1\nunset B\n")
    assert message.index("line 1") < message.index("line 3")


def test_screen_checks_trailing_comment():
    # easy-rsa 3.2.7 greps the whole line, so a comment mentioning
    # 'export ' after a setting is rejected there too.
    assert "'export'" in rejection("set_var X 1 # do not export this\n")


def test_comment_mentioning_passphrase_allowed():
    assert parse("# EASYRSA_PASSIN is not allowed here\n").values == {}


@pytest.mark.parametrize("name", ["EASYRSA_PASSIN", "EASYRSA_PASSOUT"])
def test_passphrase_rejected(name: str):
    message = rejection(f"set_var {name} pass:secret\n")
    assert f"{name} is not permitted" in message
    assert "--passin/--passout" in message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("set_var X two words\n", "takes a name and one value"),
        ("set_var EASYRSA_PKI=pki\n", "assignment"),
        ("set_var 9X value\n", "not a valid variable name"),
        ("force_set_var\n", "needs a variable name"),
    ],
)
def test_malformed_set_var_rejected(text: str, reason: str):
    assert reason in rejection(text)


# --- force mode -------------------------------------------------------------


def test_force_skips_shell_code():
    text = "set_var A 1\nexport B=2\nset_var C $(date)\nset_var D 4\n"
    result = parse(text, force=True)
    assert result.values == {"A": "1", "D": "4"}
    assert len(result.ignored) == 2
    assert result.ignored[0].startswith("line 2: 'export B=2'")
    assert result.ignored[1].startswith("line 3:")


def test_force_skips_whole_if_block():
    text = 'if [ "$(id -u)" = 0 ]; then\n  set_var X root\nfi\nset_var Y 1\n'
    result = parse(text, force=True)
    assert result.values == {"Y": "1"}
    assert result.ignored[0].startswith("lines 1-3:")


def test_force_skips_one_line_if():
    text = 'if [ "$A" ]; then set_var X 1; fi\nset_var Y 1\n'
    result = parse(text, force=True)
    assert result.values == {"Y": "1"}
    assert result.ignored[0].startswith("line 1:")


def test_screened_value_rejected():
    message = rejection('set_var EASYRSA_REQ_ORG "Sunset Co"\n')
    assert "'unset' is not permitted" in message


def test_force_applies_screened_value():
    result = parse('set_var EASYRSA_REQ_ORG "Sunset Co"\n', force=True)
    assert result.values == {"EASYRSA_REQ_ORG": "Sunset Co"}
    assert result.ignored == []


def test_force_skips_backtick_value():
    result = parse("set_var X 'a`id`b'\n", force=True)
    assert result.values == {}
    assert "backtick" in result.ignored[0]


def test_force_keeps_passphrase_error():
    with pytest.raises(VarsError) as caught:
        parse("export A=1\nset_var EASYRSA_PASSOUT pass:x\n", force=True)
    message = str(caught.value)
    assert "line 2" in message
    assert "line 1" not in message
    assert "--force-vars" in message


def test_force_keeps_passphrase_inside_block():
    text = "if true; then\n  set_var EASYRSA_PASSIN pass:x\nfi\n"
    with pytest.raises(VarsError, match="line 2"):
        parse(text, force=True)


def test_force_keeps_malformed_set_var():
    with pytest.raises(VarsError, match="takes a name and one value"):
        parse("set_var X two words\n", force=True)


# --- the real easy-rsa 3.2.7 agrees ------------------------------------------


@pytest.fixture(scope="module")
def easyrsa_327() -> Path:
    """The real easy-rsa 3.2.7 script, located by tests/reference.py."""
    from reference import ReferenceNotFound, is_ci, reference_easyrsa

    try:
        return reference_easyrsa("3.2.7") / "easyrsa"
    except ReferenceNotFound as error:
        if is_ci():
            raise
        pytest.skip(str(error))


def real_environment(cwd: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/home/op",
        "EASYRSA_BATCH": "1",
        "EASYRSA_DEBUG": "1",
    }


def run_show_host(
    script: Path, cwd: Path, environ: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run 'show-host', which with EASYRSA_DEBUG prints the environment after vars."""
    return subprocess.run(
        [str(script), "show-host"],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def shown_values(output: str) -> dict[str, str]:
    """Read NAME=value lines of single-line EASYRSA_* values from 'env' output."""
    found = re.findall(r"^(EASYRSA\w*)=(.*)$", output, flags=re.MULTILINE)
    return dict(found)


REAL_FORMS = [
    '"two words"',
    "'lit $HOME'",
    '"$PWD"/pki',
    "~/x",
    "a\\ b",
    '"$EASYRSA_T1-${EASYRSA_T2}"',
    "'cost$'",
    "'a\\$b'",
    "'a\\}b'",
    '"C:\\\\Program Files\\\\x"',
    "'a\\\\\\$b'",
    '""',
]


@pytest.mark.reference
def test_real_script_agrees_on_forms(easyrsa_327: Path, tmp_path: Path):
    lines = [
        f"set_var EASYRSA_T{index}\t{form}  # form {index}"
        for index, form in enumerate(REAL_FORMS, 1)
    ]
    lines += [
        "set_var EASYRSA_T1 ignored",
        "force_set_var EASYRSA_T2 forced",
        "set_var EASYRSA_DIGEST sha512",
    ]
    text = "\n".join(lines) + "\n"
    (tmp_path / "vars").write_text(text)
    environ = real_environment(tmp_path)
    environ["EASYRSA_DIGEST"] = "sha384"

    completed = run_show_host(easyrsa_327, tmp_path, environ)
    result = parse_vars(
        text, tmp_path / "vars", environ={**environ, "PWD": str(tmp_path)}
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    real_values = shown_values(completed.stdout)
    assert len(result.values) == len(REAL_FORMS)
    for name, value in result.values.items():
        assert real_values[name] == value, name
    assert real_values["EASYRSA_DIGEST"] == "sha384"


@pytest.mark.reference
@pytest.mark.parametrize("version", ["3.0.8", "3.1.0", "3.2.2", "3.2.7"])
def test_real_script_agrees_on_example(easyrsa_327: Path, tmp_path: Path, version: str):
    text = uncommented(DATA / f"vars.example-{version}")
    (tmp_path / "vars").write_text(text)
    environ = real_environment(tmp_path)

    completed = run_show_host(easyrsa_327, tmp_path, environ)
    result = parse_vars(
        text, tmp_path / "vars", environ={**environ, "PWD": str(tmp_path)}
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    real_values = shown_values(completed.stdout)
    for name, value in result.values.items():
        # easy-rsa rewrites these after reading vars; settings.py covers them.
        if name not in ("EASYRSA_SAN_CRIT", "EASYRSA_EXT_DIR", "EASYRSA_SSL_CONF"):
            assert real_values[name] == value, name


@pytest.mark.reference
@pytest.mark.parametrize(
    "line",
    [
        "export EASYRSA_DIGEST=sha512",
        "set_var EASYRSA_PASSIN pass:x",
        "set_var X `id -u`",
    ],
)
def test_real_script_rejects_too(easyrsa_327: Path, tmp_path: Path, line: str):
    (tmp_path / "vars").write_text(line + "\n")

    completed = run_show_host(easyrsa_327, tmp_path, real_environment(tmp_path))

    assert completed.returncode != 0
    with pytest.raises(VarsError):
        parse_vars(line + "\n", tmp_path / "vars", environ=ENV)


@pytest.mark.reference
def test_real_script_force_applies_screened(easyrsa_327: Path, tmp_path: Path):
    text = 'set_var EASYRSA_REQ_ORG "Sunset Co"  # export nothing\n'
    (tmp_path / "vars").write_text(text)
    environ = real_environment(tmp_path)

    plain = run_show_host(easyrsa_327, tmp_path, environ)
    forced = subprocess.run(
        [str(easyrsa_327), "--force-vars", "show-host"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = parse_vars(text, tmp_path / "vars", environ=environ, force=True)

    assert plain.returncode != 0
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert shown_values(forced.stdout)["EASYRSA_REQ_ORG"] == "Sunset Co"
    assert result.values == {"EASYRSA_REQ_ORG": "Sunset Co"}
