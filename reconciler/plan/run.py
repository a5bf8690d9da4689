"""Making a plan for real: load, read the tenant, look up removals in git, build. (I/O.)"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler import aio
from reconciler.desired.loader import load
from reconciler.desired.models import Tenant
from reconciler.desired.state import DesiredState
from reconciler.diagnostics import Diagnostic
from reconciler.errors import InputError, UsageError
from reconciler.gcpause import no_gc_pauses
from reconciler.live import LiveState
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.model import Plan
from reconciler.urls import has_query

ENV_URL = "RECONCILER_TENANT_URL"
ENV_ALLOW = "RECONCILER_ALLOW"
Progress = Callable[[int, int], None]


def check_override(override: str | None) -> None:
    """An empty --tenant (an unset variable in a script: ``--tenant "$TENANT_URL"``) names no
    tenant; it is a mistake, never a fall back to RECONCILER_TENANT_URL or tenant.yaml (a
    plan of the default tenant, or credentials sent to it)."""
    if override is not None and not override.strip():
        raise UsageError(
            "--tenant needs a tenant URL, and was given an empty value",
            "write e.g. --tenant https://host/scim/v2 or --tenant local:PATH; leave --tenant "
            f"out to use {ENV_URL} or tenant.yaml's url",
        )


def chosen_url(tenant: Tenant, override: str | None) -> str:
    """The tenant URL in use: --tenant, else RECONCILER_TENANT_URL, else tenant.yaml's."""
    check_override(override)
    return override or os.environ.get(ENV_URL) or tenant.url


def tenant_url(state: DesiredState, override: str | None) -> str:
    """:func:`chosen_url`, checked when it is not tenant.yaml's own (already validated)."""
    url = chosen_url(state.tenant, override)
    if url != state.tenant.url:
        source = "--tenant" if override else ENV_URL
        if "@" in url.split("//", 1)[-1].split("/", 1)[0]:
            # Never echo it: the URL carries a secret.
            raise UsageError(
                f"the tenant URL given by {source} carries credentials (user:password@); "
                "it was not used",
                "remove them from the URL and set auth: in tenant.yaml (token_env or "
                "client_secret_env); rotate the secret if it was shared",
            )
        if has_query(url):
            # Never echo it either: a query string is where some put a token.
            raise UsageError(
                f"the tenant URL given by {source} has a query string, fragment or ;parameters; "
                "it was not used",
                "write the SCIM base URL alone (e.g. https://host/scim/v2) and set auth: in "
                "tenant.yaml (token_env); rotate the token if the URL carried one",
            )
        try:
            Tenant(url=url)
        except ValueError as exc:
            raise UsageError(
                f"not a tenant URL: {url!r} (from {source})",
                "write an http(s):// SCIM base URL or local:<path>",
            ) from exc
    return url


@dataclass
class Loaded:
    state: DesiredState
    diagnostics: list[Diagnostic]


def load_state(directory: Path) -> Loaded:
    result = load(directory)
    if not result.ok or result.state is None:
        raise InvalidState(result.diagnostics)
    return Loaded(result.state, result.diagnostics)


class InvalidState(InputError):
    def __init__(
        self,
        diagnostics: list[Diagnostic],
        message: str = "the desired state does not validate; nothing was sent to the tenant",
    ) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


async def read_tenant(state: DesiredState, url: str, progress: Progress | None = None) -> LiveState:
    from reconciler.scim import open_client, read_live

    t = state.tenant
    async with open_client(url, auth=t.auth, profile=t.profile, rate_limit=t.rate_limit) as client:
        return await read_live(client, progress=progress)


@dataclass(frozen=True)
class Guardrails:
    """What the organisation allows: policies, deliberate allowances, the base revision
    that rule changes are counted against."""

    policies: Path | None = None
    allow: tuple[str, ...] = ()
    base: str | None = None


def policy_dir(g: Guardrails, state: DesiredState) -> Path:
    """The policy directory: ``--policies``, which must exist (a mistyped one must not skip
    the guardrails), or ``policies/`` beside the desired state, which may be absent."""
    if g.policies is not None and not g.policies.is_dir():
        raise UsageError(
            f"--policies {g.policies} is a file, not a directory"
            if g.policies.exists()
            else f"no such policy directory: {g.policies}",
            "pass --policies the directory that holds the policy files, or leave it out to use "
            "policies/ beside the desired-state directory",
        )
    return g.policies or state.root.resolve().parent / "policies"


def allowances(items: tuple[str, ...]) -> dict[str, int]:
    from reconciler.plan.gates import parse_allow

    env = os.environ.get(ENV_ALLOW, "")
    return parse_allow([*items, env] if env else list(items))


def make_plan(
    state: DesiredState,
    live: LiveState,
    *,
    url: str,
    targets: tuple[str, ...] = (),
    now: dt.datetime | None = None,
    guardrails: Guardrails | None = None,
    changed_rules: tuple[str, ...] | None = None,
) -> Plan:
    """``changed_rules``: the rules changed since ``guardrails.base``, when already known."""
    with no_gc_pauses():
        return _make_plan(state, live, url, targets, now, guardrails or Guardrails(), changed_rules)


def _make_plan(
    state: DesiredState,
    live: LiveState,
    url: str,
    targets: tuple[str, ...],
    now: dt.datetime | None,
    g: Guardrails,
    changed_rules: tuple[str, ...] | None,
) -> Plan:
    from reconciler.gitops.removals import (
        head_commit,
        removals,
        rule_changes,
        shallow,
        uncommitted,
    )
    from reconciler.plan.guard import guard
    from reconciler.plan.rules import evaluate
    from reconciler.policy import load_policies

    present = {u.userName.casefold() for u in state.users}
    now = now or dt.datetime.now(dt.UTC)
    groups = {g.displayName.casefold(): g.externalId for g in state.groups}
    removed = removals(state.root, present, groups, now)
    ctx = PlanContext(
        now=now,
        commit=head_commit(state.root),
        uncommitted=uncommitted(state.root),
        removed=removed.users,
        removed_groups=removed.groups,
        shallow=shallow(state.root),
        targets=targets,
        url=url,
    )
    plan = build_plan(state, live, ctx)
    policies = load_policies(policy_dir(g, state))
    if policies.diagnostics:
        raise InvalidState(policies.diagnostics)
    return guard(
        plan,
        state,
        evaluate(state),
        policies=policies,
        allow=allowances(g.allow),
        rule_changes=(
            changed_rules
            if changed_rules is not None
            else rule_changes(state.root, g.base, state.rules)
        ),
    )


def plan_directory(
    directory: Path,
    *,
    tenant: str | None = None,
    targets: tuple[str, ...] = (),
    progress: Progress | None = None,
    guardrails: Guardrails | None = None,
) -> tuple[Plan, DesiredState]:
    from reconciler.gitops.removals import rule_changes

    g = guardrails or Guardrails()
    loaded = load_state(directory)
    url = tenant_url(loaded.state, tenant)
    if url.startswith("local:"):
        from reconciler.scim import existing_local_tenant

        existing_local_tenant(url)  # a mistyped path is not a new, empty tenant
    # Bad --allow, --policies or --base fail before any request.
    allowances(g.allow)
    policy_dir(g, loaded.state)
    changed = rule_changes(loaded.state.root, g.base, loaded.state.rules)
    live = aio.run(read_tenant(loaded.state, url, progress))
    plan = make_plan(
        loaded.state, live, url=url, targets=targets, guardrails=g, changed_rules=changed
    )
    return plan, loaded.state
