"""Human-readable renderings that easy-rsa users see in prompts and show-* output."""

from __future__ import annotations

from cryptography import x509

# RFC 2253 section 2.4: characters escaped with a backslash in a DN value.
_SPECIAL = set(',+"\\<>;')


def _escape_value(value: str) -> str:
    escaped = "".join("\\" + char if char in _SPECIAL else char for char in value)
    if escaped.startswith((" ", "#")):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and len(escaped) > 1:
        escaped = escaped[:-1] + "\\ "
    return escaped


def multiline_dn(name: x509.Name, title: str = "subject") -> str:
    """Render a name as `openssl x509 -subject -nameopt utf8,sep_multiline,space_eq,lname,align`.

    easy-rsa shows this in its confirmation prompts: a `subject=` line, then
    one line per attribute, indented four spaces, with the long attribute
    name padded to 25 characters.
    """
    lines = [f"{title}="]
    for attribute in name:
        long_name = attribute.oid._name  # OpenSSL's long names, e.g. commonName
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
        lines.append(f"    {long_name:<25} = {_escape_value(value)}")
    return "\n".join(lines)
