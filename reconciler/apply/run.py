"""Applying a plan for real: lock, journal, client, executor, receipt. (I/O.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx

from reconciler.apply.executor import Executor
from reconciler.apply.journal import Journal
from reconciler.apply.lock import ApplyLock
from reconciler.apply.preflight import Problems, plan_problems, refuse
from reconciler.apply.receipt import Receipt, actor, from_results, run_url
from reconciler.apply.selectors import selected, to_judge
from reconciler.desired.models import Tenant
from reconciler.errors import InputError, TenantError
from reconciler.plan.hashing import ensure_unedited
from reconciler.plan.model import Plan
from reconciler.plan.protection import Protection
from reconciler.scim import ScimClient, open_client

WORK = Path(".reconciler")


def check_integrity(plan: Plan) -> None:
    """Refuse a plan edited after it was made, or one with errors."""
    ensure_unedited(plan)
    if plan.has_errors:
        raise InputError(
            "this plan is blocked by errors (see its diagnostics); it cannot be applied",
            "fix the errors, or allow the gate deliberately, then plan again",
        )


def journal_of(plan: Plan) -> Path:
    """Where this working copy journals the apply of ``plan``."""
    return WORK / "journal" / f"{plan.plan_hash}.jsonl"


def applied_already(plan: Plan, journal_path: Path | None = None) -> bool:
    """Whether this working copy's journal shows every change of ``plan`` applied, from this
    very plan file: a new plan of the same changes (hashed alike), made after the tenant
    drifted back, is a new apply, not one already done. (``--resume`` and ``--retry-failed``
    still take the journal of an earlier plan of the same hash.)"""
    entries = Journal.read(journal_path or journal_of(plan))
    if any(e.get("made") != plan.created_at for e in entries.values()):
        return False
    done = Journal.completed(entries)
    return bool(plan.changes) and done >= set(range(len(plan.changes)))


async def apply_plan(
    plan: Plan,
    tenant: Tenant,
    *,
    url: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    concurrency: int | None = None,
    journal_path: Path | None = None,
    repo_dir: Path = Path(),
    progress: Callable[[int, int], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    env: Mapping[str, str] = os.environ,
) -> Receipt:
    check_integrity(plan)
    journal_path = journal_path or journal_of(plan)
    started = dt.datetime.now(dt.UTC)
    with ApplyLock(WORK / "apply.lock"):
        done = Journal.read(journal_path) if (resume or retry_failed) else {}
        protection = Protection(tenant.protected)  # compiled once: here and in the executor
        completed = Journal.completed(done)
        problems = plan_problems(plan, tenant.safety, protection, completed)
        if problems:
            connect = functools.partial(_connect, plan, tenant, url, env, transport)
            await _refuse(problems, plan, protection, completed, connect)
        if not (resume or retry_failed) and journal_path.exists():
            journal_path.unlink()
        journal = Journal(journal_path, made=plan.created_at)
        try:
            async with _connect(plan, tenant, url, env, transport) as client:
                # The plan recorded what apply needs of the tenant: no discovery requests.
                client.etag, client.patch_supported = plan.etag, plan.patch
                executor = Executor(
                    plan,
                    client,
                    journal=journal,
                    concurrency=concurrency or client.facts.concurrency,
                    done=done,
                    retry_failed=retry_failed,
                    progress=progress,
                    secrets=client.credentials.secrets(),
                    protection=protection,
                )
                results = await executor.run()
                sent, retries = client.requests_sent, client.retries
        finally:
            journal.close()
    changes, counts = from_results(results)
    return Receipt(
        plan_hash=plan.plan_hash,
        tenant_url=plan.tenant_url,
        desired_commit=plan.desired_commit,
        desired_uncommitted=plan.desired_uncommitted,
        actor=actor(repo_dir),
        run_url=run_url(),
        started_at=started.isoformat(),
        finished_at=dt.datetime.now(dt.UTC).isoformat(),
        counts=counts,
        requests_sent=sent,
        retries=retries,
        results=changes,
    )


def _connect(
    plan: Plan,
    tenant: Tenant,
    url: str | None,
    env: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None,
) -> AbstractAsyncContextManager[ScimClient]:
    return open_client(
        url or plan.tenant_url,
        auth=tenant.auth,
        profile=tenant.profile,
        rate_limit=tenant.rate_limit,
        env=env,
        transport=transport,
    )


async def _refuse(
    problems: Problems,
    plan: Plan,
    protection: Protection,
    done: Collection[int],
    connect: Callable[[], AbstractAsyncContextManager[ScimClient]],
) -> None:
    """Refuse a plan that names or gates refuse, with every problem at once: what the
    protected selectors match is read (GET only) from the tenant and named too, or, when the
    tenant cannot be read, the refusal says the selectors were not checked."""
    todo = to_judge(plan, protection, done)
    found: list[str] = []
    unchecked = ""
    if todo:
        try:
            async with connect() as client:
                sem = asyncio.Semaphore(max(1, client.facts.concurrency))
                found = await selected(client, protection, todo, sem)
        except TenantError as exc:
            unchecked = f"the tenant could not be read: {exc}"
    refuse(problems, resumed=bool(done), selected=found, unchecked=unchecked)
