"""SCIM filters built safely: values escaped, attribute names checked, never concatenated raw."""

from __future__ import annotations

import json
import re

_ATTR = re.compile(r"^(urn:[A-Za-z0-9:._-]+:)?[A-Za-z][A-Za-z0-9_$-]*(\.[A-Za-z][A-Za-z0-9_$-]*)?$")


def attr(name: str) -> str:
    if not _ATTR.match(name):
        raise ValueError(f"not a SCIM attribute path: {name!r}")
    return name


def literal(value: str | bool | int) -> str:
    """A SCIM filter literal. Strings are JSON strings: quotes and backslashes escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def eq(name: str, value: str | bool | int) -> str:
    """``eq('userName', 'a"b')`` → ``userName eq "a\\"b"``."""
    return f"{attr(name)} eq {literal(value)}"
