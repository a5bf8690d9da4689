"""The main job, end to end, against a fresh embedded tenant: what `make demo` runs.

1. A fresh embedded tenant is provisioned from desired-state (plan + apply).
2. Someone changes the tenant behind git's back: a user added in the admin console, a title
   edited there, and a former employee (removed from desired-state in git history) still
   present.
3. The plan shows exactly that drift, apply fixes it, and the next plan is empty.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from reconciler import aio
from reconciler.apply.report import render_text as render_receipt
from reconciler.apply.run import apply_plan
from reconciler.commands.tenant_init import fitting
from reconciler.desired.state import DesiredState
from reconciler.plan.model import Plan
from reconciler.plan.render import render_text
from reconciler.plan.run import load_state, make_plan, read_tenant
from reconciler.scim import open_client
from reconciler.tenant.store import init_tenant

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
# In desired-state's git history: added, then removed when they left the company.
FORMER = "pat.doe@acme.example"


async def _plan(state: DesiredState, url: str) -> Plan:
    return make_plan(state, await read_tenant(state, url), url=url)


async def _drift(url: str) -> None:
    async with open_client(url) as c:
        await c.create(
            "User",
            {
                "schemas": [CORE],
                "userName": "temp.helper@acme.example",
                "displayName": "Temp Helper (added in the admin console)",
                "emails": [{"value": "temp.helper@acme.example", "type": "work"}],
            },
        )
        [olivia] = await c.find("User", "userName", "olivia.bennett@acme.example")
        await c.patch(
            "User",
            olivia["id"],
            [{"op": "replace", "path": "title", "value": "Chief Revenue Officer"}],
        )
        await c.create(
            "User",
            {
                "schemas": [CORE],
                "userName": FORMER,
                "externalId": "03099",
                "displayName": "Pat Doe",
                "emails": [{"value": FORMER, "type": "work", "primary": True}],
                "entitlements": [{"value": "GoTo Meeting"}],
            },
        )


def run_demo(directory: Path, say: Callable[[str], None], *, color: bool = False) -> int:
    loaded = load_state(directory)
    state = loaded.state
    url = state.tenant.url
    if url.startswith("local:"):
        db = Path(url.removeprefix("local:"))
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            stale.unlink(missing_ok=True)
        shutil.rmtree(Path(".reconciler") / "journal", ignore_errors=True)
        db.parent.mkdir(parents=True, exist_ok=True)
        init_tenant(db, fitting(state))  # plan and apply never create a local: tenant
    say(f"== 1. Provision a fresh embedded tenant ({url}) from {directory}/")
    first = aio.run(_plan(state, url))
    receipt = aio.run(apply_plan(first, state.tenant, repo_dir=directory))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(receipt.counts.items()))
    say(f"   {len(first.changes)} changes applied: {counts}")

    say("\n== 2. Drift: changes made in the tenant, not in git")
    aio.run(_drift(url))
    say("   + temp.helper@acme.example created in the admin console")
    say("   ~ olivia.bennett@acme.example: title edited in the admin console")
    say(f"   ! {FORMER} is still in the tenant, but was removed from desired-state in git")

    say("\n== 3. reconciler plan")
    plan = aio.run(_plan(state, url))
    say(render_text(plan, color=color))

    say("\n== 4. reconciler apply")
    receipt = aio.run(apply_plan(plan, state.tenant, repo_dir=directory))
    say(render_receipt(receipt))

    say("\n== 5. reconciler plan (again)")
    again = aio.run(_plan(state, url))
    say(render_text(again, color=color))
    return 0 if receipt.ok and not again.changes else 1
