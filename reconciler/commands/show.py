"""``reconciler show``: render a saved plan artifact."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from reconciler.commands.plan import Format, echo_plan
from reconciler.errors import InputError
from reconciler.plan.accesscheck import check_access
from reconciler.plan.hashing import ensure_unedited
from reconciler.plan.model import FORMAT_VERSION, Plan

_REQUIRED = ("format_version", "tenant_url", "summary", "changes", "plan_hash")


def read_plan(path: Path) -> Plan:
    try:
        plan = Plan.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "the file"
        more = exc.error_count() - 1
        raise InputError(
            f"{path} is not a reconciler plan: {where}: {first['msg']}"
            + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""),
            "pass a file written by `reconciler plan --out`",
        ) from exc
    # Every plan written by `reconciler plan` has these: a file without them was not.
    missing = [k for k in _REQUIRED if k not in plan.model_fields_set]
    if missing:
        raise InputError(
            f"{path} is not a reconciler plan: it has no {', '.join(missing)}",
            "pass a file written by `reconciler plan --out`",
        )
    if plan.format_version != FORMAT_VERSION:
        raise InputError(
            f"{path} has plan format {plan.format_version}; this reconciler reads {FORMAT_VERSION}",
            "plan again with this version",
        )
    ensure_unedited(plan, str(path))
    return plan


def run(
    plan_file: Path = typer.Argument(..., help="A plan written by `reconciler plan --out`."),
    fmt: Format = typer.Option(
        Format.text, "--format", "-f", help="text, markdown (a PR comment), json or github."
    ),
) -> None:
    """Show a saved plan in text, markdown (a PR comment), JSON or GitHub annotations.

    A plan edited after it was made is refused (exit 1): its changes must match its hash, and
    its summary and its access table (who gains, who loses) must agree with its changes.
    """
    plan = read_plan(plan_file)
    echo_plan(plan, fmt, plan_file)
    for note in check_access(plan).unsure:
        typer.echo(f"warning: access table: {note}", err=True)
