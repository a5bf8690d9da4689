"""Which changes in a plan would harm a protected account (apply re-checks these)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.desired.models import _SELECTOR_LISTS as _LISTS
from reconciler.desired.models import _SELECTOR_TEXT as _TEXT
from reconciler.desired.models import ProtectedSelector
from reconciler.plan import scimmap
from reconciler.plan.model import Change, FieldChange
from reconciler.plan.protection import Protection, harm, live_subject, protected_by_name


def change(action: str, *fields: tuple[str, Any, Any], rtype: str = "User") -> Change:
    return Change(
        action=action,  # type: ignore[arg-type]
        resource_type=rtype,  # type: ignore[arg-type]
        key="alice",
        reason="r",
        fields=tuple(FieldChange(path=p, before=b, after=a) for p, b, a in fields),
    )


ROLES = "roles"


@pytest.mark.parametrize(
    ("c", "expected"),
    [
        (change("delete"), "deleted"),
        (change("suspend", ("active", True, False)), "suspended"),
        (change("rename", ("userName", "al", "alice")), "renamed"),
        (change("update", ("title", "A", "B")), ""),
        (
            change("update", (ROLES, [{"value": "admin"}], [{"value": "member"}])),
            "stripped of access",
        ),
        (change("update", (ROLES, [{"value": "admin"}], [{"value": "admin"}, {"value": "x"}])), ""),
        (change("update", ("entitlements", None, [{"value": "GoTo Meeting"}])), ""),
        (change("adopt", ("active", True, False)), "suspended"),
        (change("reactivate", ("active", False, True)), ""),
        (change("create"), ""),
        (change("delete", rtype="Group"), ""),
        (
            change("rename", ("userName", "al", "alice"), (ROLES, ["admin"], [])),
            "renamed and stripped of access",
        ),
    ],
)
def test_harm(c: Change, expected: str) -> None:
    assert harm(c) == expected


def test_the_access_extension_paths_are_grants() -> None:
    group = f"{scimmap.ACCESS_EXT}:userGroup"
    assert harm(change("update", (group, "Sales", None))) == "stripped of access"
    assert harm(change("update", (group, None, "Sales"))) == ""


def test_protected_by_name_finds_a_renamed_account_by_its_old_name() -> None:
    protection = Protection(["AL", ProtectedSelector(selector="user.userType == 'x'")])
    renamed = change("rename", ("userName", "al", "alice"))
    assert protected_by_name([renamed, change("update", ("title", "A", "B"))], protection) == [
        "alice would be renamed"
    ]
    assert protection("bob", {"userType": "x"}) and not protection("bob", {"userType": "y"})


@pytest.mark.parametrize(
    ("selector", "error"),
    [
        # A misspelt field fails on every account, and failing protects: everyone, silently.
        ('user.titel == "Break glass"', "protected selector reads user.titel, which an account"),
        ("user.department == 'IT'", "protected selector reads user.department"),
        # Not a condition: protects nobody.
        ("user.title", "protected selector gives str, not true or false"),
    ],
)
def test_a_selector_that_would_protect_everyone_or_nobody_does_not_validate(
    selector: str, error: str
) -> None:
    with pytest.raises(ValidationError, match=error):
        ProtectedSelector(selector=selector)


def test_selectors_that_depend_on_the_account_validate() -> None:
    for selector in (
        'user.userType == "service" || "super-admin" in user.roles',
        'size(user.emails) > 0 && user.emails[0].endsWith("@ops.example")',
        'user.emails[0] == "x"',  # fails for an account without emails: protects it
    ):
        ProtectedSelector(selector=selector)


def test_validation_knows_every_field_a_selector_sees() -> None:
    seen = set(live_subject({}))
    for field in seen:
        ProtectedSelector(selector=f"has(user.{field})")
        value = "true" if field == "active" else ("[]" if field in _LISTS else '""')
        ProtectedSelector(selector=f"user.{field} == {value}")
    assert seen == {*_TEXT, *_LISTS, "active"}
