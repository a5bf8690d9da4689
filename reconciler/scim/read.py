"""Read a whole tenant: every user and group, in the fewest requests, pages in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reconciler.live import Capabilities, LiveState
from reconciler.scim.client import ScimClient, tolerate
from reconciler.scim.discovery import discover

Progress = Callable[[int, int], None]


async def read_all(
    client: ScimClient,
    resource_type: str,
    page_size: int,
    *,
    filter: str | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Every resource of a type. Once ``totalResults`` is known, the remaining pages are
    fetched concurrently; the server's ``itemsPerPage`` sets the stride; the read stops on
    ``totalResults``, not on an empty page. Without ``totalResults``, pages are read one
    after the other until a short page."""
    first = await client.list_page(resource_type, 1, page_size, filter=filter)
    items, raw = _resources(client, first)
    total = first.get("totalResults")
    per_page = int(first.get("itemsPerPage") or raw or page_size)
    if not isinstance(total, int):
        start = 1 + raw
        while raw and raw % per_page == 0:
            page, n = _resources(
                client, await client.list_page(resource_type, start, per_page, filter=filter)
            )
            if not n:
                break
            items += page
            raw += n
            start += n
        return items
    if progress:
        progress(raw, total)
    starts = list(range(1 + per_page, total + 1, per_page)) if per_page else []
    sem = asyncio.Semaphore(concurrency)
    pages: dict[int, tuple[list[dict[str, Any]], int]] = {}

    async def fetch(start: int) -> None:
        async with sem:
            body = await client.list_page(resource_type, start, per_page, filter=filter)
        pages[start] = _resources(client, body)
        if progress:
            progress(raw + sum(n for _, n in pages.values()), total)

    await asyncio.gather(*(fetch(s) for s in starts))
    for s in starts:
        items += pages[s][0]
        raw += pages[s][1]
    # A server that returned fewer than itemsPerPage mid-way leaves gaps: read them in order.
    while raw < total:
        more, n = _resources(
            client, await client.list_page(resource_type, raw + 1, per_page, filter=filter)
        )
        if not n:
            break
        items += more
        raw += n
    return items


def _resources(client: ScimClient, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The valid resources of a page, and how many records the page held."""
    records = body.get("Resources") or []
    out = []
    for r in records:
        if not isinstance(r, dict) or not r.get("id"):
            rid = r.get("id") if isinstance(r, dict) else None
            client.warnings.append(f"skipped a record that is not a valid resource (id {rid!r})")
            continue
        out.append(tolerate(r))
    return out, len(records)


async def read_live(client: ScimClient, *, progress: Progress | None = None) -> LiveState:
    """The whole tenant: capabilities, users (active and inactive), groups with members."""
    caps: Capabilities = await discover(client)
    size = client.facts.page_size
    if caps.max_results:
        size = min(size, caps.max_results)
    conc = client.facts.concurrency
    users, groups = await asyncio.gather(
        read_all(client, "User", size, concurrency=conc, progress=progress),
        read_all(client, "Group", size, concurrency=conc),
    )
    if client.facts.active_only_listing:
        # Genesys lists only active users unless asked for the others.
        inactive = await read_all(client, "User", size, filter="active eq false", concurrency=conc)
        known = {u["id"] for u in users}
        users += [u for u in inactive if u["id"] not in known]
    return LiveState(url=client.url, users=tuple(users), groups=tuple(groups), capabilities=caps)
