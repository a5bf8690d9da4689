"""The plan artifact: frozen, versioned, JSON-round-trippable. Apply reads only this.

References to users that may not exist yet (a member or manager created by the same plan) are
written as ``{"$user": "<userName>"}`` inside bodies and operations; apply replaces each with
the id the tenant gave (from the plan's ``ids`` or from the create that made the user).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1

Action = Literal[
    "create",
    "update",
    "rename",
    "adopt",
    "reactivate",
    "suspend",
    "delete",
    "add_member",
    "remove_member",
]
ResourceTypeName = Literal["User", "Group"]
SYMBOL: dict[str, str] = {
    "create": "+",
    "update": "~",
    "rename": "~",
    "adopt": "~",
    "reactivate": "±",
    "suspend": "±",
    "delete": "-",
    "add_member": "+",
    "remove_member": "-",
}
# Apply runs stages in this order; within a stage, changes are independent.
STAGES: tuple[tuple[ResourceTypeName, str], ...] = (
    ("Group", "create"),
    ("User", "create"),
    ("User", "update"),
    ("User", "rename"),
    ("User", "adopt"),
    ("User", "reactivate"),
    ("Group", "update"),
    ("Group", "rename"),
    ("Group", "adopt"),
    ("Group", "add_member"),
    ("Group", "remove_member"),
    ("User", "suspend"),
    ("User", "delete"),
    ("Group", "delete"),
)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemChange(Frozen):
    """One item of a multi-valued attribute: added (+), removed (-) or changed (~, with the
    sub-attributes that changed in ``detail``, e.g. ``primary: false → true``)."""

    op: Literal["+", "-", "~"]
    value: Any = None
    detail: str = ""


# The ``before`` of a sensitive field that had a value: the value itself is not recorded.
SENSITIVE_BEFORE = "(sensitive: not recorded)"


class FieldChange(Frozen):
    """A managed attribute's value before and after. ``items`` lists what changed inside a
    multi-valued attribute (empty for single values, or when one side is empty)."""

    path: str
    before: Any = None
    after: Any = None
    sensitive: bool = False
    items: tuple[ItemChange, ...] = ()
    # For a grant attribute: why each value is gained or lost ("+ Admin: rule 'IT' (priority
    # 10) via group IT"). An explanation, like a change's reason: not hashed.
    why: tuple[str, ...] = ()


class Change(Frozen):
    """One step. ``id``/``version`` are the live object's, recorded for apply's stale check."""

    action: Action
    resource_type: ResourceTypeName
    key: str
    reason: str
    id: str | None = None
    version: str | None = None
    fields: tuple[FieldChange, ...] = ()
    body: dict[str, Any] | None = None
    operations: tuple[dict[str, Any], ...] = ()
    members: tuple[str, ...] = ()
    # Attribute → value that identify the object, for looking it up after a failed create.
    lookup: dict[str, str] = Field(default_factory=dict)


class AccessChange(Frozen):
    """Who gains and who loses one grant value (e.g. products: GoTo Webinar)."""

    grant: str
    value: str
    gains: tuple[str, ...] = ()
    loses: tuple[str, ...] = ()


class PlanDiagnostic(Frozen):
    severity: Literal["error", "warning"]
    message: str
    hint: str = ""
    code: str = ""
    subject: str = ""


class Allowance(Frozen):
    """A safety gate allowed deliberately (``--allow suspensions=8``; ``"all"``: any number)."""

    gate: str
    up_to: int | Literal["all"]
    # How many the plan would do, and the limit that is over ("limit 5"); "" when the plan is
    # within the gate's limits (allowed all the same: apply honours it if tenant.yaml's limit
    # is tightened before the plan is applied).
    count: int = 0
    limit: str = ""


def count_actions(changes: tuple[Change, ...] | list[Change]) -> dict[str, int]:
    """A plan's ``summary``: how many changes of each action, in the changes' order."""
    summary: dict[str, int] = {}
    for c in changes:
        summary[c.action] = summary.get(c.action, 0) + 1
    return summary


class Plan(Frozen):
    format_version: int = FORMAT_VERSION
    tenant_url: str
    desired_commit: str | None = None
    # desired-state held changes that desired_commit does not (a local plan before committing).
    desired_uncommitted: bool = False
    created_at: str = ""
    partial: bool = False
    targets: tuple[str, ...] = ()
    live_users: int = 0
    live_groups: int = 0
    # What apply needs to know of the tenant, recorded so apply sends only the changes.
    etag: bool = False
    patch: bool = True
    live_memberships: int = 0
    live_grants: int = 0
    summary: dict[str, int] = Field(default_factory=dict)
    access: tuple[AccessChange, ...] = ()
    changes: tuple[Change, ...] = ()
    diagnostics: tuple[PlanDiagnostic, ...] = ()
    allowances: tuple[Allowance, ...] = ()
    blocked: bool = False
    # Live ids of the users the changes name (casefolded userName → id), for apply and readers.
    ids: dict[str, str] = Field(default_factory=dict)
    sensitive_paths: tuple[str, ...] = ()
    plan_hash: str = ""

    @property
    def has_errors(self) -> bool:
        return self.blocked or any(d.severity == "error" for d in self.diagnostics)
