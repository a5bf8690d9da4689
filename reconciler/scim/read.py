"""Read a whole tenant: every user and group, in the fewest requests, pages in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reconciler.errors import TenantProtocolError
from reconciler.gcpause import no_gc_pauses
from reconciler.live import Capabilities, LiveState
from reconciler.scim.client import ENDPOINT, ScimClient, tolerate
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
    items, raw = _resources(client, resource_type, first)
    total = _count(first.get("totalResults"))
    per_page = _count(first.get("itemsPerPage")) or raw or page_size
    if total is None:
        start = 1 + raw
        while raw and raw % per_page == 0:
            page, n = _resources(
                client,
                resource_type,
                await client.list_page(resource_type, start, per_page, filter=filter),
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
        pages[start] = _resources(client, resource_type, body)
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
                client,
                resource_type,
                await client.list_page(resource_type, s + n, end - s - n, filter=filter),
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


def _resources(
    client: ScimClient, resource_type: str, body: dict[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """The valid resources of a page, and how many records the page held. An invalid record
    is reported with its id and why, and left out; the rest of the page is used."""
    records = body.get("Resources") or []
    if not isinstance(records, list):
        raise TenantProtocolError(
            f"GET {ENDPOINT.get(resource_type, resource_type)}: Resources is not a list",
            "not a SCIM ListResponse: check the URL of the SCIM base",
        )
    out = []
    for r in records:
        reason = problem(resource_type, tolerate(r) if isinstance(r, dict) else r)
        if reason is None:
            out.append(r)
            continue
        rid = r.get("id") if isinstance(r, dict) else None
        name = r.get("userName") or r.get("displayName") if isinstance(r, dict) else None
        client.warnings.append(
            f"skipped {resource_type} {rid!r}"
            + (f" ({name})" if isinstance(name, str) else "")
            + f": {reason}; left out (not planned, not imported) until it is fixed in the tenant"
        )
    return out, len(records)


# Multi-valued attributes the plan reads: lists of objects when present.
_LISTS = ("emails", "groups", "entitlements", "roles", "phoneNumbers")


def problem(resource_type: str, r: Any) -> str | None:
    """Why a (tolerated) record cannot be used as a resource of its type, or None.

    It runs on every record of a 100,000-user read, so it checks what identifies a record
    and what matching and memberships read; the plan core reads the rest defensively.
    """
    if type(r) is not dict:
        return "not a JSON object"
    rid = r.get("id")
    if type(rid) is not str or not rid:
        return "no id"
    if resource_type == "Group":
        if type(r.get("displayName")) is not str:
            return "no displayName"
        members = r.get("members")
        if members is not None:
            if type(members) is not list:
                return "members is not a list of objects"
            for m in members:
                if type(m) is not dict or type(m.get("value")) is not str:
                    return "a member without a value"
        return None
    name = r.get("userName")
    if type(name) is not str or not name.strip():
        return "no userName"
    active = r.get("active")
    if active is not None and type(active) is not bool:
        return f"active is {active!r}, not a boolean"
    for key in _LISTS:
        value = r.get(key)
        if value is not None and (
            type(value) is not list or any(type(v) is not dict for v in value)
        ):
            return f"{key} is not a list of objects"
    for urn in r.get("schemas") or ():
        if type(urn) is str and urn in r and type(r[urn]) not in (dict, type(None)):
            return f"{urn} is not an object"
    return None


async def read_live(client: ScimClient, *, progress: Progress | None = None) -> LiveState:
    """The whole tenant: capabilities, users (active and inactive), groups with members."""
    with no_gc_pauses():
        return await _read_live(client, progress)


async def _read_live(client: ScimClient, progress: Progress | None) -> LiveState:
    caps: Capabilities = await discover(client)
    size = min(n for n in (client.facts.page_size, caps.max_results, caps.max_page_size) if n)
    if caps.pagination == "cursor":
        return await _read_live_by_cursor(client, caps, size)
    # One bound for users and groups together: the profile's concurrency is per tenant.
    bound = asyncio.Semaphore(client.facts.concurrency)
    users, groups = await asyncio.gather(
        read_all(client, "User", size, bound=bound, progress=progress),
        read_all(client, "Group", size, bound=bound),
    )
    inactive = (
        await read_all(client, "User", size, filter=INACTIVE, bound=bound)
        if client.facts.active_only_listing
        else []
    )
    return _live_state(client, caps, users, groups, inactive)


# Genesys lists only active users unless asked for the others.
INACTIVE = "active eq false"


def _live_state(
    client: ScimClient,
    caps: Capabilities,
    users: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    inactive: list[dict[str, Any]],
) -> LiveState:
    """The tenant as read: ``inactive`` users (listed apart on some tenants) join the others."""
    known = {u["id"] for u in users}
    users += [u for u in inactive if u["id"] not in known]
    return LiveState(
        url=client.url,
        users=tuple(users),
        groups=tuple(groups),
        capabilities=caps,
        warnings=tuple(client.warnings),
    )


async def read_by_cursor(
    client: ScimClient, resource_type: str, page_size: int, *, filter: str | None = None
) -> list[dict[str, Any]]:
    """Every resource of a type from a tenant that pages only by cursor (RFC 9865): one page
    after the other, each naming the next, until a page names none."""
    items: list[dict[str, Any]] = []
    cursor, seen = "", set()
    while True:
        body = await client.list_page(resource_type, 1, page_size, filter=filter, cursor=cursor)
        items += _resources(client, resource_type, body)[0]
        following = body.get("nextCursor")
        if not isinstance(following, str) or not following:
            return _unique(client, resource_type, items)
        if following in seen:
            raise TenantProtocolError(
                f"GET {ENDPOINT.get(resource_type, resource_type)}: the tenant gave cursor "
                f"{following!r} twice; paging would never end"
            )
        seen.add(following)
        cursor = following


async def _read_live_by_cursor(client: ScimClient, caps: Capabilities, size: int) -> LiveState:
    users = await read_by_cursor(client, "User", size)
    groups = await read_by_cursor(client, "Group", size)
    inactive = (
        await read_by_cursor(client, "User", size, filter=INACTIVE)
        if client.facts.active_only_listing
        else []
    )
    return _live_state(client, caps, users, groups, inactive)
