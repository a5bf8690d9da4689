"""The shape of a policy file (``policies/*.yaml``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    description: str = ""
    severity: Literal["error", "warning"] = "error"
    subject: Subject
    expression: Annotated[str, StringConstraints(min_length=1)]
    message: str = Field(
        "", description="Shown for each violation; {{ CEL }} placeholders are evaluated."
    )


class PoliciesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policies: list[Policy] = Field(default_factory=list)
