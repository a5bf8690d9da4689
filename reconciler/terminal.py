"""Text bound for a terminal or a workflow log, where some characters are not text but acts.

Names and messages come from the tenant (a userName typed in an admin console) and from git.
Printed raw, a line feed starts a line of its own (in a GitHub Actions log, one that begins
``::error`` is a workflow command), a carriage return writes over what the line said, ESC
starts a terminal escape sequence and U+202E reorders the rest of the line. Every output for
terminals and logs sends such text through :func:`visible` (markdown has its own escaping).
"""

from __future__ import annotations


def visible(text: object) -> str:
    """``text`` with each character that is not printable written as its escape, as
    ``repr`` writes it: controls (``\\n``, ``\\r``, ``\\x1b``), format characters such as
    bidirectional overrides and zero-width ones (``\\u202e``, ``\\u200b``), line and paragraph
    separators, and spaces other than the ASCII space. Everything else is kept as it is,
    backslashes too, so an ordinary name is shown exactly as it is written.

    >>> visible("inj\\n::error::x"), visible("bidi\\u202etxt.exe"), visible("Zoë Ó")
    ('inj\\\\n::error::x', 'bidi\\\\u202etxt.exe', 'Zoë Ó')
    """
    s = str(text)
    if s.isprintable():  # nearly always: one scan, no copy
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)
