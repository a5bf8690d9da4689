"""What a terminal or a workflow log is shown of a name: acts escaped, text as written."""

from __future__ import annotations

import pytest

from reconciler.terminal import visible


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("olivia.bennett@acme.example", "olivia.bennett@acme.example"),
        ("Zoë Ó'Brien 李 \\ DOMAIN\\user", "Zoë Ó'Brien 李 \\ DOMAIN\\user"),  # kept as written
        ("inj\n::error::x", "inj\\n::error::x"),
        ("cr\rNo changes.", "cr\\rNo changes."),
        ("esc\x1b[2J", "esc\\x1b[2J"),
        ("bel\x07 nul\x00 del\x7f", "bel\\x07 nul\\x00 del\\x7f"),
        ("tab\tx", "tab\\tx"),
        ("bidi\u202egpj.exe \u2066iso\u2069", "bidi\\u202egpj.exe \\u2066iso\\u2069"),
        ("zero\u200bwidth \ufeffbom", "zero\\u200bwidth \\ufeffbom"),
        ("line\u2028para\u2029next\x85", "line\\u2028para\\u2029next\\x85"),
        ("nbsp\u00a0ideo\u3000", "nbsp\\xa0ideo\\u3000"),
    ],
)
def test_visible(text: str, shown: str) -> None:
    assert visible(text) == shown
    assert visible(shown) == shown  # what is shown is plain text
