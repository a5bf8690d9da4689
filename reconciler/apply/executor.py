"""Executing a plan's changes against the tenant, stage by stage.

Invariants:
- Changes run in the plan's stage order (groups created → users created/updated → members
  added → members removed → suspends → user deletes → group deletes); within a stage, up to
  ``concurrency`` at once, under the client's rate limiter.
- Every change ends with exactly one result: ok, failed, stale or skipped, journaled at once.
- A create is never sent twice blindly: after a timeout, a connection error, a 5xx or a 409,
  the object is looked up by its keys first and adopted when it is the one we meant.
- An object that moved since the plan (its ETag differs) is not written: it is ``stale``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.apply.failures import SYSTEMIC, Cause, classify
from reconciler.apply.journal import Journal
from reconciler.errors import TenantAuthError, TenantError, TenantRequestError
from reconciler.plan.model import STAGES, Change, Plan
from reconciler.scim.client import ScimClient

USER_REF = "$user"
BREAKER_THRESHOLD = 5


@dataclass
class Result:
    index: int
    action: str
    resource_type: str
    key: str
    status: str  # ok | failed | stale | skipped
    cause: str = ""
    detail: str = ""
    id: str | None = None

    def entry(self) -> dict[str, Any]:
        return {
            "i": self.index,
            "status": self.status,
            "cause": self.cause,
            "detail": self.detail,
            "id": self.id,
            "at": dt.datetime.now(dt.UTC).isoformat(),
        }


class _Unresolved(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class Executor:
    plan: Plan
    client: ScimClient
    journal: Journal | None = None
    concurrency: int = 4
    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    retry_failed: bool = False
    progress: Callable[[int, int], None] | None = None
    results: dict[int, Result] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    group_ids: dict[str, str] = field(default_factory=dict)
    failed_keys: set[tuple[str, str]] = field(default_factory=set)
    # Creates whose body referred to a user created in the same stage (a manager): the
    # reference is set by a PATCH once every create of the stage is done.
    deferred: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    _systemic_streak: int = 0
    _stopped: str = ""

    def __post_init__(self) -> None:
        self.user_ids = {k.casefold(): v for k, v in self.plan.ids.items()}
        for c in self.plan.changes:
            if c.resource_type == "Group" and c.id:
                self.group_ids[c.key.casefold()] = c.id

    # -- driving --------------------------------------------------------------------------

    async def run(self) -> list[Result]:
        order = {stage: n for n, stage in enumerate(STAGES)}
        by_stage: dict[int, list[tuple[int, Change]]] = {}
        for i, c in enumerate(self.plan.changes):
            by_stage.setdefault(order[(c.resource_type, c.action)], []).append((i, c))
        sem = asyncio.Semaphore(max(1, self.concurrency))
        total = len(self.plan.changes)
        for stage in sorted(by_stage):

            async def one(i: int, c: Change) -> None:
                async with sem:
                    await self._one(i, c)
                if self.progress:
                    self.progress(len(self.results), total)

            await asyncio.gather(*(one(i, c) for i, c in by_stage[stage]))
            await self._settle_deferred()
        return [self.results[i] for i in sorted(self.results)]

    async def _settle_deferred(self) -> None:
        for i, ops in sorted(self.deferred.items()):
            c = self.plan.changes[i]
            if self.results[i].status != "ok":
                continue
            rid = self.results[i].id
            try:
                await self._patch(
                    c.resource_type, str(rid), [self._resolve(op) for op in ops], None
                )
                if self.journal is not None:
                    self.journal.record(self.results[i].entry())  # nothing pending any more
            except _Unresolved as exc:
                self._finish(
                    i, c, "failed", Cause.dependency, f"user {exc.name} was not created", rid
                )
            except TenantError as exc:
                cause, detail = classify(exc)
                self._finish(
                    i, c, "failed", cause, f"created, but setting references failed: {detail}", rid
                )
        self.deferred.clear()

    def _remember(self, c: Change, rid: str | None) -> None:
        if rid is None:
            return
        target = self.user_ids if c.resource_type == "User" else self.group_ids
        target[c.key.casefold()] = rid

    async def _one(self, i: int, c: Change) -> None:
        prior = self.done.get(i)
        if prior is not None and (prior["status"] == "ok" or not self.retry_failed):
            self._remember(c, prior.get("id"))
            if prior.get("pending"):
                # Killed between a create and the PATCH that sets its references: redo it.
                self.deferred[i] = list(prior["pending"])
            self.results[i] = Result(
                i,
                c.action,
                c.resource_type,
                c.key,
                prior["status"],
                prior.get("cause", ""),
                prior.get("detail", ""),
                prior.get("id"),
            )
            if prior["status"] != "ok":
                self.failed_keys.add((c.resource_type, c.key.casefold()))
            return
        if self._stopped:
            self._finish(i, c, "skipped", Cause.stopped, self._stopped)
            return
        if self._depends_on_failure(c):
            self._finish(
                i, c, "skipped", Cause.dependency, f"{c.resource_type} {c.key} failed earlier"
            )
            return
        try:
            rid = await self._execute(c, i)
        except _Unresolved as exc:
            self._finish(i, c, "skipped", Cause.dependency, f"user {exc.name} was not created")
            return
        except TenantError as exc:
            cause, detail = classify(exc)
            status = "stale" if cause is Cause.stale else "failed"
            if cause is Cause.stale:
                detail = (
                    f"{c.resource_type} {c.key} changed in the tenant since the plan; plan again"
                )
            self._finish(i, c, status, cause, detail)
            self._trip(cause)
            return
        self._systemic_streak = 0
        self._remember(c, rid)
        self._finish(i, c, "ok", None, "", rid)

    def _depends_on_failure(self, c: Change) -> bool:
        if c.resource_type == "Group" and ("Group", c.key.casefold()) in self.failed_keys:
            return c.action != "create"
        return False

    def _trip(self, cause: Cause) -> None:
        if cause in SYSTEMIC:
            self._systemic_streak += 1
            if self._systemic_streak >= BREAKER_THRESHOLD and not self._stopped:
                self._stopped = (
                    f"stopped after {self._systemic_streak} consecutive {cause.value} failures "
                    "(like Entra's quarantine): fix the cause, then apply --retry-failed"
                )
        else:
            self._systemic_streak = 0

    def _finish(
        self,
        i: int,
        c: Change,
        status: str,
        cause: Cause | None,
        detail: str,
        rid: str | None = None,
    ) -> None:
        r = Result(
            i,
            c.action,
            c.resource_type,
            c.key,
            status,
            cause.value if cause else "",
            detail,
            rid or c.id,
        )
        self.results[i] = r
        if status != "ok":
            self.failed_keys.add((c.resource_type, c.key.casefold()))
        if self.journal is not None:
            entry = r.entry()
            if status == "ok" and i in self.deferred:
                # Journaled with what is still to do, in case we are killed before it is done.
                entry["pending"] = self.deferred[i]
            self.journal.record(entry)

    # -- one change -----------------------------------------------------------------------

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {USER_REF}:
                name = str(value[USER_REF])
                rid = self.user_ids.get(name.casefold())
                if rid is None:
                    raise _Unresolved(name)
                return rid
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        return value

    async def _execute(self, c: Change, i: int) -> str | None:
        if c.action == "create":
            return await self._create(c, i)
        if c.action == "delete":
            await self._stale_check(c)
            await self.client.delete(c.resource_type, str(c.id), etag=c.version)
            return c.id
        if c.action in ("add_member", "remove_member"):
            return await self._members(c)
        await self._stale_check(c)
        ops = [self._resolve(op) for op in c.operations]
        await self._patch(c.resource_type, str(c.id), ops, c.version)
        return c.id

    async def _stale_check(self, c: Change) -> None:
        """Without ETag support, re-read and compare the version the plan recorded."""
        if self.client.etag or not c.version or not c.id:
            return
        current = await self.client.get(c.resource_type, c.id)
        if (current.get("meta") or {}).get("version") not in (None, c.version):
            raise TenantRequestError("moved since the plan", status=412)

    async def _patch(
        self, rtype: str, rid: str, ops: list[dict[str, Any]], etag: str | None
    ) -> None:
        if self.client.patch_supported:
            await self.client.patch(rtype, rid, ops, etag=etag)
            return
        # PUT fallback: apply our own operations to the current resource, then replace it.
        current = await self.client.get(rtype, rid)
        for op in ops:
            _apply_op(current, op)
        current.pop("meta", None)
        await self.client.replace(rtype, rid, current, etag=etag)

    def _split_refs(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The body without references that cannot be resolved yet, and PATCH operations
        that set them later (only extension attributes such as the manager hold them)."""
        later: list[dict[str, Any]] = []
        out: dict[str, Any] = {}
        for k, v in body.items():
            try:
                out[k] = self._resolve(v)
            except _Unresolved:
                if k.startswith("urn:") and isinstance(v, dict):
                    kept = {}
                    for attr, value in v.items():
                        try:
                            kept[attr] = self._resolve(value)
                        except _Unresolved:
                            later.append({"op": "replace", "path": f"{k}:{attr}", "value": value})
                    out[k] = kept
                else:
                    raise
        return out, later

    async def _create(self, c: Change, i: int | None = None) -> str | None:
        body, later = self._split_refs(c.body or {})
        if later and i is not None:
            self.deferred[i] = later
        try:
            created = await self.client.create(c.resource_type, body)
            return str(created.get("id")) if created.get("id") else await self._lookup(c)
        except TenantRequestError as exc:
            if exc.status != 409 and exc.status < 500:
                raise
            found = await self._lookup(c)
            if found is None or (exc.status == 409 and not await self._ours(c, found)):
                raise
            return await self._adopt(c, found, body)
        except TenantAuthError:
            raise
        except TenantError:
            # The request may have reached the tenant (a timeout, a reset): look before retrying.
            found = await self._lookup(c)
            if found is None:
                created = await self.client.create(c.resource_type, body)
                return str(created.get("id"))
            return await self._adopt(c, found, body)

    async def _adopt(self, c: Change, rid: str, body: dict[str, Any]) -> str:
        """The object exists already (an earlier attempt, or an interrupted apply): make it
        what the create meant, attribute by attribute."""
        ops: list[dict[str, Any]] = []
        for k, v in body.items():
            if k in ("schemas", "userName", "displayName", "members"):
                continue
            if k.startswith("urn:") and isinstance(v, dict):
                ops += [{"op": "replace", "path": f"{k}:{a}", "value": x} for a, x in v.items()]
            else:
                ops.append({"op": "replace", "path": k, "value": v})
        if ops:
            await self._patch(c.resource_type, rid, ops, None)
        return rid

    async def _lookup(self, c: Change) -> str | None:
        for attr, value in c.lookup.items():
            hits = await self.client.find(c.resource_type, attr, value)
            if len(hits) == 1:
                return str(hits[0]["id"])
        return None

    async def _ours(self, c: Change, rid: str) -> bool:
        """Is the conflicting live object the one this create meant (same keys)?"""
        live = await self.client.get(c.resource_type, rid)
        body = c.body or {}
        for attr in ("externalId",):
            if body.get(attr) and live.get(attr) not in (None, body.get(attr)):
                return False
        return True

    async def _members(self, c: Change) -> str | None:
        gid = c.id or self.group_ids.get(c.key.casefold())
        if gid is None:
            raise _Unresolved(c.key)
        chunk = max(1, self.client.facts.member_chunk)
        if c.action == "add_member":
            values = self._resolve(c.operations[0]["value"]) if c.operations else []
            for n in range(0, len(values), chunk):
                op = {"op": "add", "path": "members", "value": values[n : n + chunk]}
                await self._patch("Group", gid, [op], None)
        else:
            ops = list(c.operations)
            for n in range(0, len(ops), chunk):
                await self._patch("Group", gid, ops[n : n + chunk], None)
        return gid


def _apply_op(resource: dict[str, Any], op: dict[str, Any]) -> None:
    """Our own PATCH operations (replace/remove/add on simple, dotted or URN paths, and
    ``members[value eq "…"]``) applied locally, for tenants without PATCH."""
    path = str(op.get("path", ""))
    kind = str(op.get("op", "")).lower()
    if path.startswith("members[value eq "):
        uid = path.split('"')[1]
        resource["members"] = [m for m in resource.get("members") or [] if m.get("value") != uid]
        return
    if path.startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        target = resource.setdefault(urn, {})
    elif "." in path:
        head, _, attr = path.partition(".")
        target = resource.setdefault(head, {})
    else:
        target, attr = resource, path
    if kind == "remove":
        target.pop(attr, None)
    elif kind == "add" and isinstance(target.get(attr), list):
        target[attr] = target[attr] + list(op.get("value") or [])
    else:
        target[attr] = op.get("value")
