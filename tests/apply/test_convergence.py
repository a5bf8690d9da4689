"""The property that ties plan and apply together: for any desired state and any live state,
apply(plan) then plan is empty, and nothing outside the plan was written.

Run on the embedded tenant (in process) and, end to end over loopback HTTP, on the
third-party ``scim2-server``. Live states have users the desired state knows (with other
titles, suspended, with another or no externalId), strangers, groups with members (and a
group desired-state does not describe); desired states have managers, memberships and
suspended users, and each ownership mode for what they do not describe.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reconciler.apply.run import apply_plan
from reconciler.desired.loader import load
from reconciler.desired.state import DesiredState
from reconciler.live import LiveState
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.model import Plan
from reconciler.scim import open_client, read_live
from tests.apply.conftest import BASE, CORE, FaultTransport
from tests.servers import serve_reference

NAMES = [f"u{i}@x.example" for i in range(6)]
STRANGER = "stranger@x.example"
TITLES = ["A", "B", "C"]
GROUPS = ["G1", "G2"]
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"

desired_states = st.fixed_dictionaries(
    {
        # userName → (title, groups, active, manager: an index into NAMES, kept when lower)
        "users": st.dictionaries(
            st.sampled_from(NAMES),
            st.tuples(
                st.sampled_from(TITLES),
                st.sets(st.sampled_from(GROUPS)),
                st.booleans(),
                st.none() | st.integers(0, len(NAMES) - 1),
            ),
            max_size=5,
        ),
        "ownership_users": st.sampled_from(["report", "suspend", "delete"]),
        "ownership_groups": st.sampled_from(["report", "delete"]),
    }
)
live_states = st.fixed_dictionaries(
    {
        # userName → (title, active, externalId: the same as desired, another, or none)
        "users": st.dictionaries(
            st.sampled_from([*NAMES, STRANGER]),
            st.tuples(
                st.sampled_from([*TITLES, "Old"]),
                st.booleans(),
                st.sampled_from(["same", "other", "none"]),
            ),
            max_size=5,
        ),
        "groups": st.dictionaries(
            st.sampled_from([*GROUPS, "Stray"]),
            st.sets(st.sampled_from([*NAMES, STRANGER])),
            max_size=3,
        ),
    }
)


def _write(root: Path, desired: dict[str, Any], url: str) -> DesiredState:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tenant.yaml").write_text(
        f"url: {url}\nownership: {{users: {desired['ownership_users']}, "
        f"groups: {desired['ownership_groups']}}}\n"
        "lifecycle: {removed_users: delete, delete_after: 0d}\n"
    )
    users = desired["users"]
    lines = ["groups:"] + [f"  - displayName: {g}" for g in GROUPS]
    lines.append("users:" if users else "users: []")
    for name, (title, groups, active, manager) in sorted(users.items()):
        lines.append(
            f"  - userName: {name}\n    externalId: '{name}'\n    title: {title}\n"
            f"    active: {str(active).lower()}\n    groups: [{', '.join(sorted(groups))}]"
        )
        boss = NAMES[manager] if manager is not None else None
        if boss is not None and boss in users and NAMES.index(boss) < NAMES.index(name):
            lines.append(f"    manager: {boss}")
    (root / "state.yaml").write_text("\n".join(lines) + "\n")
    result = load(root)
    assert result.ok and result.state is not None, result.diagnostics
    return result.state


async def _seed(h: httpx.AsyncClient, live: dict[str, Any]) -> None:
    ids = {}
    for name, (title, active, ext) in sorted(live["users"].items()):
        body: dict[str, Any] = {"schemas": [CORE], "userName": name, "title": title}
        body["active"] = active
        if ext != "none":
            body["externalId"] = name if ext == "same" else f"x-{name}"
        r = await h.post("Users", json=body)
        r.raise_for_status()
        ids[name] = r.json()["id"]
    for group, members in sorted(live["groups"].items()):
        values = [{"value": ids[m]} for m in sorted(members) if m in ids]
        body = {"schemas": [GROUP], "displayName": group, "members": values}
        (await h.post("Groups", json=body)).raise_for_status()


def _touched(plan: Plan, live: LiveState) -> set[str]:
    """Ids the plan may write: its objects, the members its membership changes name, and the
    groups a deleted user leaves (the tenant removes it from them)."""
    out = {c.id for c in plan.changes if c.id}
    deleted = {c.id for c in plan.changes if c.action == "delete" and c.resource_type == "User"}
    for g in live.groups:
        if any(isinstance(m, dict) and m.get("value") in deleted for m in g.get("members") or []):
            out.add(str(g["id"]))
    for c in plan.changes:
        for op in c.operations:
            path = str(op.get("path", ""))
            if path.startswith("members[value eq "):
                out.add(path.split('"')[1])
            elif path == "members":
                out |= {v["value"] for v in op["value"] if isinstance(v.get("value"), str)}
    return out


def _versions(live: LiveState) -> dict[str, str]:
    return {
        str(r["id"]): str((r.get("meta") or {}).get("version")) for r in [*live.users, *live.groups]
    }


class Tenant:
    """Reads a tenant, plans and applies, through a transport or a URL."""

    def __init__(self, url: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url, self.transport = url, transport

    def read(self) -> LiveState:
        async def main() -> LiveState:
            async with open_client(self.url, transport=self.transport, rate_limit=1e6) as c:
                return await read_live(c)

        return asyncio.run(main())

    def plan(self, state: DesiredState) -> Plan:
        ctx = PlanContext(now=dt.datetime.now(dt.UTC), url=self.url)
        return build_plan(state, self.read(), ctx)

    def seed(self, live: dict[str, Any]) -> None:
        async def main() -> None:
            async with httpx.AsyncClient(transport=self.transport, base_url=self.url + "/") as h:
                await _seed(h, live)

        asyncio.run(main())

    def clear(self) -> None:
        async def main() -> None:
            async with httpx.AsyncClient(transport=self.transport, base_url=self.url + "/") as h:
                for kind in ("Groups", "Users"):
                    page = (await h.get(kind, params={"count": 1000})).json()
                    for r in page.get("Resources") or []:
                        (await h.delete(f"{kind}/{r['id']}")).raise_for_status()

        asyncio.run(main())


def check_convergence(tenant: Tenant, root: Path, desired: dict[str, Any]) -> None:
    state = _write(root / "s", desired, tenant.url)
    live = tenant.read()
    before = _versions(live)
    plan = tenant.plan(state)
    assert not plan.has_errors, plan.diagnostics
    for kind in sorted({f"{c.action} {c.resource_type}" for c in plan.changes}):
        event(kind)
    receipt = asyncio.run(
        apply_plan(
            plan,
            state.tenant,
            transport=tenant.transport,
            concurrency=3,
            journal_path=root / "journal.jsonl",
        )
    )
    assert receipt.ok, receipt.results
    # One request per change; a group deleted after users that left it is re-read and its
    # delete sent again with the new version (the users' deletion moved it).
    users_deleted = any(c.action == "delete" and c.resource_type == "User" for c in plan.changes)
    groups_deleted = sum(c.action == "delete" and c.resource_type == "Group" for c in plan.changes)
    extra = 2 * groups_deleted if users_deleted else 0
    assert receipt.requests_sent <= len(plan.changes) + extra, "one request per change"
    again = tenant.plan(state)
    assert again.changes == (), f"apply(plan) then plan is empty: {again.changes}"
    touched = _touched(plan, live)
    after = _versions(tenant.read())
    for rid, version in before.items():
        if rid not in touched and rid in after:
            assert after[rid] == version, f"{rid} was written, but no change named it"


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        yield Path(tmp)  # the apply lock and journal live in ./.reconciler


@settings(
    max_examples=30,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(desired=desired_states, live=live_states)
def test_apply_then_plan_is_empty(desired: dict[str, Any], live: dict[str, Any]) -> None:
    with _workdir() as root:
        tenant = Tenant(BASE, FaultTransport(root / "t.db"))
        tenant.seed(live)
        check_convergence(tenant, root, desired)


@pytest.fixture(scope="module")
def reference_url() -> Iterator[str]:
    with serve_reference() as url:
        yield url


@settings(
    max_examples=12,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(desired=desired_states, live=live_states)
def test_apply_then_plan_is_empty_on_scim2_server(
    reference_url: str, desired: dict[str, Any], live: dict[str, Any]
) -> None:
    """The same property end to end over loopback HTTP, on a server we did not write."""
    tenant = Tenant(reference_url)
    tenant.clear()
    tenant.seed(live)
    with _workdir() as root:
        check_convergence(tenant, root, desired)
