"""Which paired users may differ from their live accounts: the plan's hot path at scale.

Most users of a large tenant are unchanged on any one plan. :func:`scan` finds the few that
may differ by exact equality (:func:`reconciler.plan.scimmap.unchanged`), and the plan
compares only those fully. ``reconciler._speedups.scan`` does the same comparisons in C,
several times faster; it is built with the package where a C compiler is available, and
this module falls back to the Python reference where it is not (``NATIVE`` says which
runs). Either way the plan is the same: the C module may call a user "may differ"
where the reference calls it unchanged (it then compares that user fully), never the other
way round.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.desired.models import User
from reconciler.plan.scimmap import QuickGrants, QuickSpec, unchanged

Scan = Callable[
    [
        Sequence[User],
        Sequence["Mapping[str, Any] | None"],
        "Sequence[QuickGrants | None] | None",
        Mapping[str, str],
        QuickSpec,
    ],
    list[int],
]


def scan_python(
    users: Sequence[User],
    lives: Sequence[Mapping[str, Any] | None],
    grants: Sequence[QuickGrants | None] | None,
    ids: Mapping[str, str],
    spec: QuickSpec,
) -> list[int]:
    """The reference :func:`scan`, in Python."""
    return [
        i
        for i, live in enumerate(lives)
        if live is not None
        and not (
            type(live) is dict
            and unchanged(users[i], spec, grants[i] if grants is not None else None, ids, live)
        )
    ]


_native: Scan | None
try:
    from reconciler._speedups import scan as _native
except ImportError:  # built without a C compiler: the reference runs
    _native = None

NATIVE = _native is not None
scan: Scan = _native if _native is not None else scan_python
"""``scan(users, lives, grants, ids, spec)``: the indices, in order, of the users whose
paired live resource (``lives[i]``; None: not paired, skipped) may differ from them.
``grants[i]``: what the rules give user i (:func:`scimmap.quick_grants`), or ``grants`` None
when there are no rules; ``ids``: casefolded userName → live id, for managers."""
