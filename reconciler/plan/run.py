"""Making a plan for real: load, read the tenant, look up removals in git, build. (I/O.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.desired.loader import load
from reconciler.desired.models import Tenant
from reconciler.desired.state import DesiredState
from reconciler.diagnostics import Diagnostic
from reconciler.errors import InputError, UsageError
from reconciler.live import LiveState
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.model import Plan

ENV_URL = "RECONCILER_TENANT_URL"
ENV_ALLOW = "RECONCILER_ALLOW"
Progress = Callable[[int, int], None]


def tenant_url(state: DesiredState, override: str | None) -> str:
    url = override or os.environ.get(ENV_URL) or state.tenant.url
    if url != state.tenant.url:
        if "@" in url.split("//", 1)[-1].split("/", 1)[0]:
            # Never echoed: user:password@ is a secret (tenant.yaml's loader refuses it too).
            raise UsageError(
                "the tenant URL given by --tenant or RECONCILER_TENANT_URL carries credentials "
                "(user:password@); they are not shown here",
                "remove them from the URL and use auth: with token_env or client_secret_env",
            )
        try:
            Tenant(url=url)
        except ValueError as exc:
            raise UsageError(
                f"not a tenant URL: {url!r}", "write an http(s):// SCIM base URL or local:<path>"
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
    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("the desired state does not validate; nothing was sent to the tenant")
        self.diagnostics = diagnostics


def ensure_local_tenant(state: DesiredState, url: str) -> None:
    """A ``local:`` tenant that does not exist yet is created to fit the desired state: its
    profile's constraints, verified domains, and the custom extension schemas it declares
    (a real tenant has these already; the embedded one learns them once)."""
    if not url.startswith("local:"):
        return
    db = Path(url.removeprefix("local:"))
    if db.exists():
        return
    from reconciler.commands.tenant_init import extensions_of
    from reconciler.tenant.settings import TenantSettings
    from reconciler.tenant.store import init_tenant

    db.parent.mkdir(parents=True, exist_ok=True)
    profile = str(state.tenant.profile)
    init_tenant(
        db,
        TenantSettings(
            profile=profile,
            verified_domains=tuple(state.tenant.verified_domains),
            groups_immutable=profile == "genesys",
            active_only_listing=profile == "genesys",
            extensions=extensions_of(state),
        ),
    )


async def read_tenant(state: DesiredState, url: str, progress: Progress | None = None) -> LiveState:
    from reconciler.scim import open_client, read_live

    ensure_local_tenant(state, url)
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
) -> Plan:
    from reconciler.gitops.removals import head_commit, removal_dates, rule_changes
    from reconciler.plan.guard import guard
    from reconciler.plan.rules import evaluate
    from reconciler.policy import load_policies

    g = guardrails or Guardrails()
    present = {u.userName.casefold() for u in state.users}
    ctx = PlanContext(
        now=now or dt.datetime.now(dt.UTC),
        commit=head_commit(state.root),
        removed=removal_dates(state.root, present),
        targets=targets,
        url=url,
    )
    plan = build_plan(state, live, ctx)
    policy_dir = g.policies or state.root.resolve().parent / "policies"
    policies = load_policies(policy_dir)
    if policies.diagnostics:
        raise InvalidState(policies.diagnostics)
    return guard(
        plan,
        state,
        evaluate(state),
        policies=policies,
        allow=allowances(g.allow),
        rule_changes=rule_changes(state.root, g.base, state.rules),
    )


def plan_directory(
    directory: Path,
    *,
    tenant: str | None = None,
    targets: tuple[str, ...] = (),
    progress: Progress | None = None,
    guardrails: Guardrails | None = None,
) -> tuple[Plan, DesiredState]:
    loaded = load_state(directory)
    url = tenant_url(loaded.state, tenant)
    allowances((guardrails or Guardrails()).allow)  # bad --allow fails before any request
    live = asyncio.run(read_tenant(loaded.state, url, progress))
    plan = make_plan(loaded.state, live, url=url, targets=targets, guardrails=guardrails)
    return plan, loaded.state
