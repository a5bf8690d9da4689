"""The reviewed plan, as the sticky comment holds it: its hash, and what changed since.

Pure: text in, text out. The comment is ``<!-- reconciler:plan -->`` then the plan's markdown,
whose first line is ``<!-- reconciler:plan-hash=… -->``; the hash is read from that line
only, never from anywhere in the body (user text such as a display name is rendered further
down and could carry a look-alike).
"""

from __future__ import annotations

import difflib
import re

_HEAD = re.compile(r"<!-- reconciler:plan -->\r?\n<!-- reconciler:plan-hash=([0-9a-f]{64}) -->")
_FENCE = re.compile(r"^```diff\n(.*?)^```", re.MULTILINE | re.DOTALL)
_CHANGE = re.compile(r"^[+\-~±] \S")  # "~ update olivia…" (a field line has three spaces)
SUMMARISED = "Summarised:"
MAX_LINES = 200


def reviewed_hash(comment: str) -> str | None:
    """The plan hash at the head of a sticky plan comment (None when it carries none, e.g.
    the plan failed)."""
    m = _HEAD.match(comment)
    return m.group(1) if m else None


def plan_lines(markdown: str, *, changes_only: bool = False) -> list[str]:
    """The lines of a rendered plan that say what is done: the change and field lines inside
    its ``diff`` blocks, without the reasons (``#`` lines, which explain rather than do)."""
    out = []
    for block in _FENCE.findall(markdown):
        for line in block.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            if changes_only and not _CHANGE.match(line):
                continue
            out.append(line)
    return out


def what_changed(reviewed: str, now: str) -> list[str]:
    """A unified diff (``-`` reviewed, ``+`` now) of the two plans' lines; empty when they
    read the same. When either rendering was summarised (no field details), only the change
    lines are compared, so the missing details do not show as differences."""
    summarised = SUMMARISED in reviewed or SUMMARISED in now
    before = plan_lines(reviewed, changes_only=summarised)
    after = plan_lines(now, changes_only=summarised)
    # Without the ---/+++ file header: the comment says which side is which.
    diff = list(difflib.unified_diff(before, after, n=1, lineterm=""))[2:]
    if len(diff) > MAX_LINES:
        diff = [*diff[:MAX_LINES], f"… {len(diff) - MAX_LINES} more lines"]
    return diff
