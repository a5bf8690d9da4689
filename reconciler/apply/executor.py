"""Executing a plan's changes against the tenant, stage by stage.

Invariants:
- Changes run in the plan's stage order (groups created → users created/updated → members
  added → members removed → suspends → user deletes → group deletes); within a stage, up to
  ``concurrency`` at once, under the client's rate limiter.
- Every change ends with exactly one result: ok, failed, stale or skipped, journaled at once.
- One request per change when nothing goes wrong. A user whose manager is created in the same
  stage waits for that create (outside the concurrency slots, so waiting never blocks others)
  and is created with the manager's new id: no second request to set the reference.
- A create is never sent twice blindly: after a timeout, a connection error, a 5xx or a 409,
  the object is looked up by its keys first and adopted when it is the one we meant (same
  externalId); another account with the same userName fails as an existing account.
- An object that moved since the plan (its ETag differs) is not written: it is ``stale``,
  unless it already holds every value the change writes (our own earlier attempt reached the
  tenant before a crash or a timeout hid the answer): then the change is done, ``ok``.
- Details never carry a secret or a sensitive attribute's value.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.apply.failures import SYSTEMIC, Cause, classify
from reconciler.apply.journal import Journal
from reconciler.apply.preflight import refuse_selected
from reconciler.apply.selectors import current, selected, to_judge
from reconciler.apply.verify import holds, unchanged
from reconciler.errors import TenantAuthError, TenantError, TenantRequestError
from reconciler.plan.model import STAGES, Change, Plan
from reconciler.plan.protection import Protection
from reconciler.scim.client import ScimClient

USER_REF = "$user"
# The breaker opens after this many consecutive systemic failures (authentication, server
# errors, the network, rate limiting that outlasts our retries)…
BREAKER_THRESHOLD = 5
# …or after this many consecutive rejections with no success in between: every write refused.
REJECTED_THRESHOLD = 20
MASK = "***"
ADOPTED = "found in the tenant with our keys (an earlier attempt, or made since the plan): adopted"
ALREADY = "already in the tenant (applied by an earlier attempt)"


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


class _Partial(Exception):
    """The change was made, but not all of it: ``rid`` is the object, ``detail`` says what."""

    def __init__(self, rid: str | None, detail: str, status: str = "failed") -> None:
        super().__init__(detail)
        self.rid = rid
        self.detail = detail
        self.status = status


class _Done(Exception):
    """Nothing to write: the tenant already holds what the change meant."""

    def __init__(self, rid: str | None, detail: str) -> None:
        super().__init__(detail)
        self.rid = rid
        self.detail = detail


def _stale(c: Change, what: str = "changed in the tenant since the plan") -> TenantRequestError:
    return TenantRequestError(
        f"{c.resource_type} {c.key} {what}",
        status=412,
        detail=f"{what} (recorded version {c.version or 'none'}); plan again to include it",
    )


@dataclass
class Executor:
    plan: Plan
    client: ScimClient
    journal: Journal | None = None
    concurrency: int = 4
    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    retry_failed: bool = False
    progress: Callable[[int, int], None] | None = None
    secrets: Iterable[str] = ()
    # tenant.yaml's protected accounts: selectors are checked on the live accounts first.
    protection: Protection | None = None
    results: dict[int, Result] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    group_ids: dict[str, str] = field(default_factory=dict)
    failed_keys: set[tuple[str, str]] = field(default_factory=set)
    # Users being created in the current stage, by casefolded userName: set when settled.
    _creating: dict[str, asyncio.Event] = field(default_factory=dict)
    _systemic_streak: int = 0
    _rejected_streak: int = 0
    _stopped: str = ""

    def __post_init__(self) -> None:
        self.user_ids = {k.casefold(): v for k, v in self.plan.ids.items()}
        for c in self.plan.changes:
            if c.resource_type == "Group" and c.id:
                self.group_ids[c.key.casefold()] = c.id
        self._sensitive = set(self.plan.sensitive_paths)
        self._secrets = sorted({s for s in self.secrets if len(s) >= 4}, key=len, reverse=True)

    # -- driving --------------------------------------------------------------------------

    async def run(self) -> list[Result]:
        order = {stage: n for n, stage in enumerate(STAGES)}
        by_stage: dict[int, list[tuple[int, Change]]] = {}
        for i, c in enumerate(self.plan.changes):
            by_stage.setdefault(order[(c.resource_type, c.action)], []).append((i, c))
        sem = asyncio.Semaphore(max(1, self.concurrency))
        total = len(self.plan.changes)
        await self._check_selectors(sem)
        for stage in sorted(by_stage):
            items = by_stage[stage]
            self._creating = {
                c.key.casefold(): asyncio.Event()
                for _, c in items
                if c.action == "create" and c.resource_type == "User"
            }

            async def one(i: int, c: Change) -> None:
                try:
                    if self._creating:
                        await self._wait_for_refs(c)
                    async with sem:
                        await self._one(i, c)
                finally:
                    settled = self._creating.get(c.key.casefold())
                    if settled is not None and c.action == "create":
                        settled.set()
                if self.progress:
                    self.progress(len(self.results), total)

            await asyncio.gather(*(one(i, c) for i, c in items))
        return [self.results[i] for i in sorted(self.results)]

    async def _check_selectors(self, sem: asyncio.Semaphore) -> None:
        """Before anything is written: no change may harm an account a protected selector
        matches as the tenant holds it now (by-name protection was checked before connecting)."""
        if self.protection is None:
            return
        todo = to_judge(self.plan, self.protection, Journal.completed(self.done))
        if todo:
            refuse_selected(await selected(self.client, self.protection, todo, sem))

    async def _wait_for_refs(self, c: Change) -> None:
        """Wait (holding no slot) until every user this change refers to is settled."""
        own = c.key.casefold()
        for name in _refs(c.body):
            event = self._creating.get(name.casefold())
            if event is not None and name.casefold() != own:
                await event.wait()

    def _remember(self, c: Change, rid: str | None) -> None:
        if rid is None:
            return
        target = self.user_ids if c.resource_type == "User" else self.group_ids
        target[c.key.casefold()] = rid

    async def _one(self, i: int, c: Change) -> None:
        prior = self.done.get(i)
        if prior is not None and (prior["status"] == "ok" or not self.retry_failed):
            self._remember(c, prior.get("id"))
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
            rid = await self._execute(c)
        except _Done as done:
            self._ok(i, c, done.rid, done.detail)
            return
        except _Partial as part:
            self._remember(c, part.rid)
            self._finish(i, c, part.status, Cause.dependency, part.detail, part.rid)
            return
        except _Unresolved as exc:
            self._finish(i, c, "skipped", Cause.dependency, f"user {exc.name} was not created")
            return
        except TenantError as exc:
            cause, detail = classify(exc)
            status = "stale" if cause is Cause.stale else "failed"
            self._finish(i, c, status, cause, detail)
            self._trip(cause)
            return
        self._ok(i, c, rid)

    def _ok(self, i: int, c: Change, rid: str | None, detail: str = "") -> None:
        self._systemic_streak = self._rejected_streak = 0
        self._remember(c, rid)
        self._finish(i, c, "ok", None, detail, rid)

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
        elif cause is Cause.rejected:
            self._rejected_streak += 1
            if self._rejected_streak >= REJECTED_THRESHOLD and not self._stopped:
                self._stopped = (
                    f"stopped after {self._rejected_streak} consecutive writes were rejected by "
                    "the tenant: fix the cause shown for them, then apply --retry-failed"
                )

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
            self._mask(c, detail),
            rid or c.id,
        )
        self.results[i] = r
        if status != "ok":
            self.failed_keys.add((c.resource_type, c.key.casefold()))
        if self.journal is not None:
            self.journal.record(r.entry())

    def _mask(self, c: Change, detail: str) -> str:
        """A tenant's error detail may quote what we sent: never a secret nor a sensitive
        attribute's value in results (they reach receipts, PR comments and issues)."""
        if not detail:
            return detail
        hidden = list(self._secrets)
        if self._sensitive:
            hidden += [v for v in _sensitive_values(c, self._sensitive) if len(v) >= 2]
        for value in sorted(set(hidden), key=len, reverse=True):
            detail = detail.replace(value, MASK)
        return detail

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

    async def _execute(self, c: Change) -> str | None:
        if c.action == "create":
            return await self._create(c)
        if c.action in ("add_member", "remove_member"):
            return await self._members(c)
        rid = str(c.id)
        if c.action == "delete":
            await self._stale_check(c, [])
            try:
                await self.client.delete(c.resource_type, rid, etag=c.version)
            except TenantRequestError as exc:
                if exc.status == 404:
                    raise _Done(rid, "already gone from the tenant") from None
                if classify(exc)[0] is not Cause.stale:
                    raise
                current = await self._current(c)
                if current is None:
                    raise _Done(rid, "already gone from the tenant") from None
                if not self._left_by_our_deletes(c, current):
                    raise _stale(c) from None
                version = (current.get("meta") or {}).get("version")
                await self.client.delete(c.resource_type, rid, etag=version)
            return rid
        ops = [self._resolve(op) for op in c.operations]
        await self._stale_check(c, ops)
        try:
            await self._patch(c.resource_type, rid, ops, c.version)
        except TenantRequestError as exc:
            if exc.status == 404:
                raise _stale(c, "was deleted from the tenant since the plan") from None
            if classify(exc)[0] is Cause.stale:
                current = await self._current(c)
                if current is not None and all(holds(current, op) for op in ops):
                    raise _Done(rid, ALREADY) from None
                raise _stale(c) from None
            raise
        return rid

    async def _current(self, c: Change) -> dict[str, Any] | None:
        return await current(self.client, c)

    def _left_by_our_deletes(self, c: Change, current: dict[str, Any]) -> bool:
        """A group to delete whose version moved because users this apply deleted left it
        (tenants drop a deleted user from its groups). Its deletion does not depend on its
        members, so it goes ahead, as long as it is still the group the plan named."""
        if c.resource_type != "Group" or not any(
            r.status == "ok" and r.action == "delete" and r.resource_type == "User"
            for r in self.results.values()
        ):
            return False
        return str(current.get("displayName") or "").casefold() == c.key.casefold()

    async def _stale_check(self, c: Change, ops: list[dict[str, Any]]) -> None:
        """Without ETags, re-read: the object must still be at the version the plan
        recorded (or, on a tenant without versions, hold the values the plan saw)."""
        if self.client.etag or not c.id:
            return
        current = await self._current(c)
        if current is None:
            if c.action == "delete":
                raise _Done(c.id, "already gone from the tenant")
            raise _stale(c, "was deleted from the tenant since the plan")
        version = (current.get("meta") or {}).get("version")
        if c.version and version is not None:
            moved = version != c.version
        else:
            # A sensitive field's value was not recorded (plan.model.SENSITIVE_BEFORE).
            moved = not unchanged(current, {f.path: f.before for f in c.fields if not f.sensitive})
        if moved:
            if ops and all(holds(current, op) for op in ops):
                raise _Done(c.id, ALREADY)
            if c.action == "delete" and self._left_by_our_deletes(c, current):
                return
            raise _stale(c)

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

    def _body(self, c: Change) -> tuple[dict[str, Any], list[str]]:
        """The create's body with references resolved, and the users it refers to that do not
        exist (their create failed): extension references to them (the manager) are left out;
        anything else unresolvable skips the change."""
        missing: list[str] = []
        out: dict[str, Any] = {}
        for k, v in (c.body or {}).items():
            try:
                out[k] = self._resolve(v)
            except _Unresolved:
                if not (k.startswith("urn:") and isinstance(v, dict)):
                    raise
                kept = {}
                for attr, value in v.items():
                    try:
                        kept[attr] = self._resolve(value)
                    except _Unresolved as exc:
                        missing.append(exc.name)
                out[k] = kept
        return out, missing

    async def _create(self, c: Change) -> str | None:
        body, missing = self._body(c)
        rid, adopted = await self._post(c, body)
        if missing:
            raise _Partial(
                rid,
                f"created without its reference to {', '.join(missing)}: that user's create "
                "failed (apply --retry-failed sets it once that user exists)",
            )
        if adopted:
            raise _Done(rid, ADOPTED)
        return rid

    async def _post(self, c: Change, body: dict[str, Any]) -> tuple[str | None, bool]:
        """(the id, whether it was adopted rather than created by this request)"""
        try:
            created = await self.client.create(c.resource_type, body)
        except TenantAuthError:
            raise
        except TenantRequestError as exc:
            if exc.status != 409 and exc.status < 500:
                raise
            # 409: an object with our keys exists (our own earlier attempt, or someone else's).
            # 5xx: the tenant may or may not have stored it. Either way: look before writing.
            found = await self._lookup(c)
            if found is not None:
                return await self._adopt(c, found, body), True
            if exc.status == 409:
                raise
            created = await self.client.create(c.resource_type, body)
        except TenantError:
            # The request may have reached the tenant (a timeout, a reset): look before retrying.
            found = await self._lookup(c)
            if found is not None:
                return await self._adopt(c, found, body), True
            created = await self.client.create(c.resource_type, body)
        if created.get("id"):
            return str(created["id"]), False
        found = await self._lookup(c)  # a tenant that answers a create without the resource
        return (str(found["id"]) if found is not None else None), False

    async def _adopt(self, c: Change, live: dict[str, Any], body: dict[str, Any]) -> str:
        """The object exists already. Ours (same externalId, or none to tell): make it what
        the create meant, sending only the attributes it does not hold yet. Another's: fail."""
        rid = str(live["id"])
        want = body.get("externalId")
        if want and live.get("externalId") not in (None, want):
            what = "userName" if c.resource_type == "User" else "displayName"
            raise TenantRequestError(
                f"{c.resource_type} {c.key}: taken by another account",
                status=409,
                scim_type="uniqueness",
                detail=(
                    f"an account with this {what} already exists (id {rid}, externalId "
                    f"{live.get('externalId')!r}, not {want!r}): it is not the one desired-state "
                    "describes; rename one of them, or match it by changing its externalId"
                ),
            )
        ops: list[dict[str, Any]] = []
        for k, v in body.items():
            if k in ("schemas", "userName", "displayName", "members"):
                continue
            if k.startswith("urn:") and isinstance(v, dict):
                ops += [{"op": "replace", "path": f"{k}:{a}", "value": x} for a, x in v.items()]
            else:
                ops.append({"op": "replace", "path": k, "value": v})
        ops = [op for op in ops if not holds(live, op)]
        if ops:
            await self._patch(c.resource_type, rid, ops, None)
        return rid

    async def _lookup(self, c: Change) -> dict[str, Any] | None:
        for attr, value in c.lookup.items():
            hits = await self.client.find(c.resource_type, attr, value)
            if len(hits) == 1:
                return hits[0]
        return None

    async def _members(self, c: Change) -> str | None:
        gid = c.id or self.group_ids.get(c.key.casefold())
        if gid is None:
            raise _Unresolved(c.key)
        chunk = max(1, self.client.facts.member_chunk)
        if c.action == "add_member":
            values: list[Any] = []
            missing: list[str] = []
            for v in c.operations[0]["value"] if c.operations else []:
                try:
                    values.append(self._resolve(v))
                except _Unresolved as exc:
                    missing.append(exc.name)
            for n in range(0, len(values), chunk):
                op = {"op": "add", "path": "members", "value": values[n : n + chunk]}
                await self._patch("Group", gid, [op], None)
            if missing:
                raise _Partial(
                    gid,
                    f"{len(values)} of {len(values) + len(missing)} members added; not "
                    f"{', '.join(missing)}: their create failed",
                    status="skipped",
                )
        else:
            ops = list(c.operations)
            for n in range(0, len(ops), chunk):
                part = ops[n : n + chunk]
                try:
                    await self._patch("Group", gid, part, None)
                except TenantRequestError as exc:
                    if exc.scim_type != "noTarget":
                        raise
                    # Some tenants refuse to remove a member that is gone already (an earlier,
                    # interrupted attempt): remove only those still there.
                    current = await self.client.get("Group", gid)
                    left = [op for op in part if not holds(current, op)]
                    if left:
                        await self._patch("Group", gid, left, None)
        return gid


def _refs(value: Any) -> Iterator[str]:
    """The userNames a body refers to with ``{"$user": …}``."""
    if isinstance(value, dict):
        if set(value) == {USER_REF}:
            yield str(value[USER_REF])
            return
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def _sensitive_values(c: Change, sensitive: set[str]) -> Iterator[str]:
    for f in c.fields:
        if f.sensitive or f.path in sensitive:
            yield from _strings(f.before)
            yield from _strings(f.after)
    for op in c.operations:
        if op.get("path") in sensitive:
            yield from _strings(op.get("value"))
    for k, v in (c.body or {}).items():
        if k.startswith("urn:") and isinstance(v, dict):
            for attr, x in v.items():
                if f"{k}:{attr}" in sensitive:
                    yield from _strings(x)
        elif k in sensitive:
            yield from _strings(v)


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
