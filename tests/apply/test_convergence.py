"""The property that ties plan and apply together: for any desired state and any live state,
apply(plan) then plan is empty, and nothing outside the plan was written."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.apply.run import apply_plan
from reconciler.desired.loader import load
from tests.apply.conftest import BASE, CORE, FaultTransport, plan_for, read

NAMES = [f"u{i}@x.example" for i in range(6)]
TITLES = ["A", "B", "C"]
GROUPS = ["G1", "G2"]

desired_users = st.dictionaries(
    st.sampled_from(NAMES),
    st.tuples(st.sampled_from(TITLES), st.sets(st.sampled_from(GROUPS)), st.booleans()),
    max_size=5,
)
live_users = st.dictionaries(
    st.sampled_from([*NAMES, "stranger@x.example"]),
    st.tuples(st.sampled_from([*TITLES, "Old"]), st.booleans()),
    max_size=5,
)


def _write(root: Path, users: dict[str, tuple[str, set[str], bool]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tenant.yaml").write_text(f"url: {BASE}\n")
    lines = (
        ["groups:"]
        + [f"  - displayName: {g}" for g in GROUPS]
        + ["users:" if users else "users: []"]
    )
    for name, (title, groups, active) in sorted(users.items()):
        lines.append(
            f"  - userName: {name}\n    externalId: '{name}'\n    title: {title}\n"
            f"    active: {str(active).lower()}\n    groups: [{', '.join(sorted(groups))}]"
        )
    (root / "state.yaml").write_text("\n".join(lines) + "\n")


async def _seed(t: httpx.AsyncBaseTransport, live: dict[str, tuple[str, bool]]) -> None:
    async with httpx.AsyncClient(transport=t, base_url=BASE + "/") as h:
        for name, (title, active) in sorted(live.items()):
            r = await h.post(
                "Users",
                json={
                    "schemas": [CORE],
                    "userName": name,
                    "title": title,
                    "active": active,
                    "externalId": name,
                },
            )
            r.raise_for_status()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desired=desired_users, live=live_users)
def test_apply_then_plan_is_empty(desired: dict[str, Any], live: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root / "s", desired)
        state = load(root / "s").state
        assert state is not None
        t = FaultTransport(root / "t.db")
        asyncio.run(_seed(t, live))
        before = {u["id"]: u for u in read(t).users}
        plan = plan_for(state, t)
        receipt = asyncio.run(
            apply_plan(plan, state.tenant, transport=t, journal_path=root / "j.jsonl")
        )
        assert receipt.ok, receipt.results
        assert plan_for(state, t).changes == (), "apply(plan) then plan is empty"
        touched = {c.id for c in plan.changes if c.id}
        for u in read(t).users:
            if u["id"] in before and u["id"] not in touched:
                assert u["meta"]["version"] == before[u["id"]]["meta"]["version"], u["userName"]
