"""The shape of a policy file (``policies/*.yaml``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
Subject = Literal["user", "group", "rule", "change", "plan"]

# The variables each subject's expression may use.
VARIABLES: dict[str, tuple[str, ...]] = {
    "user": ("user", "tenant"),
    "group": ("group", "tenant"),
    "rule": ("rule", "tenant"),
    "change": ("change", "tenant"),
    "plan": ("plan", "tenant"),
}


class Policy(BaseModel):
    """One guardrail. ``expression`` is CEL and must be true for a compliant subject;
    ``message`` may embed CEL in ``{{ … }}`` (e.g. ``{{ user.userName }}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    severity: Literal["error", "warning"] = "error"
    subject: Subject
    expression: Annotated[str, StringConstraints(min_length=1)]
    message: str = Field(
        "", description="Shown for each violation; {{ CEL }} placeholders are evaluated."
    )

    @field_validator("name")
    @classmethod
    def _kebab_case(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(
                f"policy name {v!r} is not kebab-case | write lower-case words and digits "
                "joined by '-', e.g. contractors-no-admin-role"
            )
        return v


class PoliciesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policies: list[Policy] = Field(default_factory=list)
