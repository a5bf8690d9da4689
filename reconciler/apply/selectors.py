"""Protected selectors, judged on the accounts as the tenant holds them now. (I/O: GET only.)

A selector protects an account for what it is in the tenant (``user.userType == "service"``),
so it is judged on the live account, read just before the first write: the account may have
changed since the plan. Only the accounts a change would harm are read, and nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from reconciler.apply.preflight import harmed_by_selector
from reconciler.errors import TenantRequestError
from reconciler.plan.model import Change, Plan
from reconciler.plan.protection import Protection, harm, names
from reconciler.scim.client import ScimClient


def to_judge(plan: Plan, protection: Protection, done: Collection[int] = ()) -> list[Change]:
    """The changes whose accounts the selectors must judge: those that would harm an existing
    account, not made yet (``done``), and not already refused by name."""
    if not protection.programs:
        return []
    return [
        c
        for i, c in enumerate(plan.changes)
        if c.id and i not in done and harm(c) and not protection.by_name(names(c))
    ]


async def current(client: ScimClient, c: Change) -> dict[str, Any] | None:
    """The object ``c`` changes as the tenant holds it now (``None``: it is gone)."""
    try:
        return await client.get(c.resource_type, str(c.id))
    except TenantRequestError as exc:
        if exc.status == 404:
            return None
        raise


async def selected(
    client: ScimClient, protection: Protection, changes: list[Change], sem: asyncio.Semaphore
) -> list[str]:
    """``"alice would be suspended"`` for each of ``changes`` (:func:`to_judge`) whose account
    a protected selector matches now."""

    async def read(c: Change) -> tuple[Change, dict[str, Any] | None]:
        async with sem:
            return c, await current(client, c)

    checks = await asyncio.gather(*(read(c) for c in changes))
    return harmed_by_selector(protection, list(checks))
