"""Protected (break-glass) accounts: which accounts, and which changes would harm them. Pure.

The plan refuses to suspend, delete, rename or strip a protected account; apply checks the
same again on the plan it is given, with tenant.yaml as it is when applying (an account may
have been protected since the plan was made, and a plan file can be edited).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.desired.models import ProtectedSelector
from reconciler.plan import scimmap
from reconciler.plan.model import Change

# The SCIM attributes grants are written to, and the grant each one carries.
GRANT_PATHS = {
    "entitlements": "products",
    "roles": "roles",
    f"{scimmap.ACCESS_EXT}:userGroup": "userGroup",
    f"{scimmap.ACCESS_EXT}:settingsTemplate": "settingsTemplate",
    f"{scimmap.ACCESS_EXT}:deviceGroups": "deviceGroups",
}


def grant_values(value: Any) -> set[str]:
    """A grant attribute's values as strings (``[{"value": "x"}]``, ``["x"]``, ``"x"``)."""
    if value in (None, "", []):
        return set()
    if isinstance(value, list):
        return {str(v.get("value") if isinstance(v, dict) else v) for v in value}
    return {str(value)}


class Protection:
    """Whether an account is protected: by userName, or by a CEL selector over the live
    account (compiled once; evaluated only for an account a change would suspend, delete,
    rename or strip). A selector that cannot be evaluated protects: failing closed."""

    def __init__(self, entries: Sequence[str | ProtectedSelector]) -> None:
        self.names = {e.casefold() for e in entries if isinstance(e, str)}
        selectors = [e.selector for e in entries if isinstance(e, ProtectedSelector)]
        self.programs = []
        if selectors:
            import cel

            self.programs = [cel.compile(s) for s in selectors]

    def by_name(self, names: Iterable[str]) -> bool:
        return any(n.casefold() in self.names for n in names)

    def __call__(self, name: str, live: Mapping[str, Any]) -> bool:
        if name.casefold() in self.names:
            return True
        if not self.programs:
            return False
        import cel

        ctx = cel.Context({"user": live_subject(live)})
        for program in self.programs:
            try:
                if program.execute(ctx) is True:
                    return True
            except (LookupError, TypeError, ValueError, RuntimeError, ArithmeticError):
                return True  # a missing field, an index out of range, a type mismatch
        return False


def live_subject(r: Mapping[str, Any]) -> dict[str, Any]:
    """What a protected selector sees of a live account (``user``)."""

    def values(key: str) -> list[str]:
        items = r.get(key)
        if not isinstance(items, list):
            return []
        return [str(x.get("value")) if isinstance(x, dict) else str(x) for x in items]

    def text(key: str) -> str:
        v = r.get(key)
        return "" if v is None else str(v)

    active = r.get("active")
    return {
        "userName": text("userName"),
        "externalId": text("externalId"),
        "displayName": text("displayName"),
        "title": text("title"),
        "userType": text("userType"),
        "active": not (active is False or str(active).lower() == "false"),
        "emails": values("emails"),
        "roles": values("roles"),
        "entitlements": values("entitlements"),
    }


def harm(c: Change) -> str:
    """What a change in a plan would do to a protected account ("suspended", "deleted",
    "renamed", "stripped of access"), or ``""`` for a change a protected account may take."""
    if c.resource_type != "User" or c.action in ("create", "add_member", "remove_member"):
        return ""
    if c.action == "delete":
        return "deleted"
    if c.action == "suspend":
        return "suspended"
    done = []
    if c.action == "rename" or any(f.path == "userName" for f in c.fields):
        done.append("renamed")
    if any(f.path == "active" and f.after is False for f in c.fields):
        done.append("suspended")
    if any(
        f.path in GRANT_PATHS and grant_values(f.before) - grant_values(f.after) for f in c.fields
    ):
        done.append("stripped of access")
    return " and ".join(done)


def names(c: Change) -> list[str]:
    """The userNames a change names the account by: its key, and a renamed account's old
    userName."""
    out = [c.key]
    out += [str(f.before) for f in c.fields if f.path == "userName" and f.before]
    return out


def protected_by_name(changes: Iterable[Change], protection: Protection) -> list[str]:
    """``"alice would be suspended"`` for each change that harms an account protected by
    name."""
    out = []
    for c in changes:
        done = harm(c)
        if done and protection.by_name(names(c)):
            out.append(f"{c.key} would be {done}")
    return out
