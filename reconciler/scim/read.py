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
    bound: asyncio.Semaphore | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Every resource of a type. Once ``totalResults`` is known, the remaining pages are
    fetched concurrently (at most ``concurrency`` requests in flight, or the shared ``bound``);
    the server's ``itemsPerPage`` sets the stride; the read stops on ``totalResults``, not on
    an empty page. Without ``totalResults``, pages are read one after the other until a short
    page."""
    sem = bound or asyncio.Semaphore(concurrency)
    async with sem:
        first = await client.list_page(resource_type, 1, page_size, filter=filter)
    items, raw = _resources(client, first)
    total = _count(first.get("totalResults"))
    per_page = _count(first.get("itemsPerPage")) or raw or page_size
    if total is None:
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
        return _unique(client, resource_type, items)
    if progress:
        progress(raw, total)
    starts = list(range(1 + per_page, total + 1, per_page)) if per_page else []
    pages: dict[int, tuple[list[dict[str, Any]], int]] = {}

    async def fetch(start: int) -> None:
        async with sem:
            body = await client.list_page(resource_type, start, per_page, filter=filter)
        pages[start] = _resources(client, body)
        if progress:
            progress(raw + sum(n for _, n in pages.values()), total)

    await asyncio.gather(*(fetch(s) for s in starts))
    for s in starts:
        page, n = pages[s]
        items += page
        # A page shorter than the stride (a server that trims, or a tenant that shrank while
        # we read) leaves a gap before the next page: read that range, in order.
        end = min(s + per_page, total + 1)
        while n and s + n < end:
            more, m = _resources(
                client, await client.list_page(resource_type, s + n, end - s - n, filter=filter)
            )
            if not m:
                break
            items += more
            n += m
    return _unique(client, resource_type, items)


def _count(value: Any) -> int | None:
    """A count the tenant sent: an integer, or digits in a string (some tenants quote them)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _unique(
    client: ScimClient, resource_type: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each resource once: index paging over a tenant that changes while we read can show
    one twice."""
    seen: set[str] = set()
    out = []
    for r in items:
        if r["id"] not in seen:
            seen.add(r["id"])
            out.append(r)
    if len(out) < len(items):
        client.warnings.append(
            f"{len(items) - len(out)} {resource_type} record(s) listed twice (the tenant "
            "changed while it was read); each is kept once"
        )
    return out


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
    # One bound for users and groups together: the profile's concurrency is per tenant.
    bound = asyncio.Semaphore(client.facts.concurrency)
    users, groups = await asyncio.gather(
        read_all(client, "User", size, bound=bound, progress=progress),
        read_all(client, "Group", size, bound=bound),
    )
    if client.facts.active_only_listing:
        # Genesys lists only active users unless asked for the others.
        inactive = await read_all(client, "User", size, filter="active eq false", bound=bound)
        known = {u["id"] for u in users}
        users += [u for u in inactive if u["id"] not in known]
    return LiveState(url=client.url, users=tuple(users), groups=tuple(groups), capabilities=caps)
