"""``reconciler validate``: check a desired-state directory, reporting every problem at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path

import typer

from reconciler.desired.loader import load
from reconciler.desired.models import OwnershipMode
from reconciler.desired.state import DesiredState, Source
from reconciler.desired.yamlsource import PositionIndex
from reconciler.diagnostics import (
    Diagnostic,
    Severity,
    display_path,
    has_errors,
    render_github,
    render_json,
    render_text,
    summary_line,
)
from reconciler.plan.rules import EffectiveAccess, evaluate, lint, rule_matches
from reconciler.policy import evaluate_state, load_policies
from reconciler.policy.report import place, to_diagnostics
from reconciler.scim.profiles import facts


class Format(StrEnum):
    text = "text"
    github = "github"
    json = "json"


DIR_ARG = typer.Argument(
    Path("desired-state"),
    help="The desired-state directory (tenant.yaml plus any YAML files below it).",
    show_default=True,
)


def run(
    directory: Path = DIR_ARG,
    fmt: Format = typer.Option(
        Format.text,
        "--format",
        "-f",
        help="text for people; github for ::error annotations on the PR diff; json for tools.",
    ),
    policies: Path | None = typer.Option(
        None,
        "--policies",
        help="Policy directory (CEL guardrails). Default: policies/ beside the directory.",
    ),
) -> None:
    """Check desired-state files and policies: schema, types, references, duplicates,
    domains, secrets, and the user, group and rule policies in policies/. Warns of rules
    that match nobody or are shadowed, and of tenant.yaml settings the profile cannot carry
    out.

    Every problem in every file is reported in one run, each with file:line:col, what is wrong
    and what to write instead. Exit 0 when valid (warnings allowed), 1 when not.
    """
    result = load(directory)
    policy_set = load_policies(policies or directory.resolve().parent / "policies")
    if policies is not None and not policies.is_dir():
        # Only the default may be absent: a mistyped --policies must not skip the guardrails.
        policy_set.diagnostics.append(
            Diagnostic(
                display_path(policies),
                0,
                0,
                "a file, not a policy directory"
                if policies.exists()
                else "no such policy directory",
                "pass --policies the directory that holds the policy files, or leave it out "
                "to use policies/ beside the desired-state directory",
            )
        )
    diags = sorted(result.diagnostics + policy_set.diagnostics, key=_order)
    if result.ok and result.state is not None:
        state = result.state
        access = evaluate(state)
        if not policy_set.diagnostics:
            grants = {user: acc.as_dict() for user, acc in access.items()}
            diags += to_diagnostics(
                evaluate_state(policy_set, state, grants, rule_matches(access.values()))
            )
        diags += _rule_lints(state, access)
        diags += _profile_lints(state)
    ok = result.state is not None and not has_errors(diags)
    if fmt is Format.json:
        typer.echo(render_json(diags))
    elif fmt is Format.github:
        if diags:
            typer.echo(render_github(diags))
        typer.echo(_verdict(ok, result.state.summary() if result.state else "", diags))
    else:
        if diags:
            typer.echo(render_text(diags))
        typer.echo(_verdict(ok, result.state.summary() if result.state else "", diags))
    raise typer.Exit(0 if ok else 1)


def _rule_lints(state: DesiredState, access: Mapping[str, EffectiveAccess]) -> list[Diagnostic]:
    """Rules that match nobody or are shadowed, as warnings at the rule (as the plan shows)."""
    sources = dict(zip((r.name for r in state.rules), state.rule_sources, strict=False))
    hint = "reorder, narrow or remove the rule"
    found = [
        (sources.get(rule.name), message, hint) for rule, message in lint(state, access.values())
    ]
    return _warnings(found, "rule-lint")


def _warnings(found: Sequence[tuple[Source | None, str, str]], code: str) -> list[Diagnostic]:
    """Warnings at the places ``(source, message, hint)`` name, each file indexed once."""
    indexes: dict[Path, PositionIndex] = {}
    out = []
    for source, message, hint in found:
        file, line, col = place(source, indexes)
        out.append(Diagnostic(file, line, col, message, hint, severity=Severity.warning, code=code))
    return out


def _profile_lints(state: DesiredState) -> list[Diagnostic]:
    """Settings the tenant's profile cannot carry out (VENDORS.md), as warnings at the
    setting: the plan does what the tenant can instead, and says so, but the setting should
    not promise more than happens."""
    tenant, source = state.tenant, state.tenant_source
    can = facts(tenant.profile)
    lifecycle, ownership = tenant.lifecycle, tenant.ownership
    no_groups = f"the {tenant.profile.value} profile cannot delete groups"
    no_users = f"the {tenant.profile.value} profile does not delete users by sync"
    # (whether it applies, the setting, what happens instead, what to write)
    table = [
        (
            lifecycle.removed_groups == "delete" and not can.can_delete_groups,
            ("lifecycle", "removed_groups"),
            f"{no_groups}: a group removed from git is emptied and kept, not deleted",
            "write removed_groups: empty (what happens), and delete the group with the "
            "identity provider if it must go",
        ),
        (
            lifecycle.removed_users == "delete" and not can.can_delete_users,
            ("lifecycle", "removed_users"),
            f"{no_users}: a user removed from git is suspended and kept, not deleted",
            "write removed_users: suspend (what happens)",
        ),
        (
            ownership.groups is OwnershipMode.delete and not can.can_delete_groups,
            ("ownership", "groups"),
            f"{no_groups}: a group not in desired-state is reported, not deleted",
            "write groups: report (what happens), and remove such groups with the identity "
            "provider",
        ),
        (
            ownership.users is OwnershipMode.delete and not can.can_delete_users,
            ("ownership", "users"),
            f"{no_users}: a user not in desired-state is suspended, not deleted",
            "write users: suspend (what happens)",
        ),
    ]
    if source is None:
        return []
    found = [(Source(source, path), message, hint) for on, path, message, hint in table if on]
    return _warnings(found, "profile-lint")


def _order(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file, d.line, d.col, d.message)


def _verdict(ok: bool, summary: str, diags: list[Diagnostic]) -> str:
    if ok:
        return f"valid: {summary}" + (f" ({summary_line(diags)})" if diags else "")
    return f"invalid: {summary_line(diags)}"
