"""Whether a plan's access table (who gains, who loses) agrees with its changes. Pure.

The plan hash covers the changes only, so a plan file whose ``access`` was edited still
passes the hash check while showing reviewers (and the ``lost_grants`` gate) another story
than the changes tell. The table cannot be recomputed from the changes alone (a suspended
user loses what the tenant held, which the changes do not record), but most of it can be
checked against them:

- a user in the table is a user some change touches;
- a created user gains exactly the grant values its fields write, and loses nothing;
- a suspended or deleted user gains nothing;
- a reactivated user gains at least what its grant fields write, and loses nothing;
- an updated, renamed or adopted user gains and loses exactly what its grant fields add and
  remove (before → after), or, when the change makes it inactive, gains nothing and loses at
  least what those fields held.

One case cannot be told apart from an edit: an updated user whose grant fields change but who
has no row at all is right when the account is inactive both in git and in the tenant (its
grants are rewritten, but nobody gains or loses access). That is returned as ``unsure``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.plan.model import SENSITIVE_BEFORE, Change, Plan
from reconciler.plan.protection import GRANT_PATHS, grant_values

Grant = tuple[str, str]  # (grant, value), e.g. ("products", "GoTo Meeting")


@dataclass
class AccessCheck:
    """``mismatches``: where the table contradicts the changes (the file was edited);
    ``unsure``: users whose rows the changes alone cannot confirm (see the module doc)."""

    mismatches: list[str] = field(default_factory=list)
    unsure: list[str] = field(default_factory=list)


def check_access(plan: Plan) -> AccessCheck:
    table: dict[str, tuple[set[Grant], set[Grant]]] = {}
    for a in plan.access:
        for who in a.gains:
            table.setdefault(who, (set(), set()))[0].add((a.grant, a.value))
        for who in a.loses:
            table.setdefault(who, (set(), set()))[1].add((a.grant, a.value))
    by_user: dict[str, list[Change]] = {}
    for c in plan.changes:
        if c.resource_type == "User":
            by_user.setdefault(c.key, []).append(c)
    out = AccessCheck()
    for who in table:
        if who not in by_user:
            out.mismatches.append(f"it lists {who}, whom no change touches")
    for who, changes in by_user.items():
        if len(changes) == 1:
            gains, loses = table.get(who, (set(), set()))
            _check_user(out, who, changes[0], gains, loses)
    return out


def _check_user(
    out: AccessCheck, who: str, c: Change, gains: set[Grant], loses: set[Grant]
) -> None:
    before: set[Grant] = set()
    after: set[Grant] = set()
    deactivated = False
    for f in c.fields:
        if f.path == "active":
            deactivated = f.after is False or str(f.after).lower() == "false"
        grant = GRANT_PATHS.get(f.path)
        if grant is None:
            continue
        if f.before == SENSITIVE_BEFORE:
            return  # not recorded: nothing to check against
        before |= {(grant, v) for v in grant_values(f.before)}
        after |= {(grant, v) for v in grant_values(f.after)}
    added, removed = after - before, before - after

    def exactly(want_gains: set[Grant], want_loses: set[Grant]) -> None:
        _report(out, who, "gain", want_gains - gains, gains - want_gains)
        _report(out, who, "lose", want_loses - loses, loses - want_loses)

    if c.action == "create":
        exactly(set() if deactivated else after, set())
    elif c.action in ("suspend", "delete"):
        _report(out, who, "gain", set(), gains)
    elif c.action == "reactivate":
        # It held nothing while inactive: every value it is given back is a gain.
        _report(out, who, "gain", after - gains, set())
        _report(out, who, "lose", set(), loses)
    elif deactivated:
        _report(out, who, "gain", set(), gains)
        _report(out, who, "lose", before - loses, set())
    elif not gains and not loses and (added or removed):
        out.unsure.append(
            f"{who}: the changes {_what(added, removed)}, and the access table shows no "
            "change of access; right only if the account is inactive in git and in the tenant"
        )
    else:
        exactly(added, removed)


def _report(out: AccessCheck, who: str, verb: str, hidden: set[Grant], extra: set[Grant]) -> None:
    """``hidden``: what the changes do that the table does not show; ``extra``: what the table
    shows that the changes do not do."""
    if hidden:
        out.mismatches.append(
            f"the changes make {who} {verb} {_grants(hidden)}, which it does not show"
        )
    if extra:
        out.mismatches.append(
            f"it shows that {who} would {verb} {_grants(extra)}, which no change does"
        )


def _what(added: set[Grant], removed: set[Grant]) -> str:
    parts = []
    if added:
        parts.append(f"write {_grants(added)}")
    if removed:
        parts.append(f"remove {_grants(removed)}")
    return " and ".join(parts)


def _grants(items: Iterable[Grant]) -> str:
    return ", ".join(f"{grant} {value}" for grant, value in sorted(items))
