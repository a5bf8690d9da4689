"""Apply against the real embedded tenant; faults staged only where a server cannot make them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stamina

from reconciler.apply.lock import ApplyLock
from reconciler.apply.receipt import Receipt
from reconciler.apply.run import apply_plan
from reconciler.desired.state import DesiredState
from reconciler.errors import InputError, ReconcilerError
from reconciler.tenant.settings import TenantSettings
from reconciler.tenant.store import init_tenant
from tests.apply.conftest import CORE, FaultTransport, plan_for, read, write_state
from tests.servers import serve_embedded, serve_reference


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # the journal and lock live in ./.reconciler
    with stamina.set_testing(True, attempts=3):
        yield


def apply(state: DesiredState, t: FaultTransport, **kw: object) -> Receipt:
    return asyncio.run(apply_plan(plan_for(state, t), state.tenant, transport=t, **kw))  # type: ignore[arg-type]


def names(t: httpx.AsyncBaseTransport) -> list[str]:
    return sorted(u["userName"] for u in read(t).users)


def test_converges_and_writes_nothing_else(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 12)
    t = FaultTransport(tmp_path / "t.db")
    receipt = apply(state, t)
    assert receipt.ok and receipt.counts == {"ok": 12 + 2 + 2}
    assert plan_for(state, t).changes == ()
    # Managers created in the same stage were set after the creates.
    users = {u["userName"]: u for u in read(t).users}
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert users["user5@x.example"][ext]["manager"]["value"] == users["user4@x.example"]["id"]


def test_create_that_timed_out_after_the_server_stored_it_makes_no_duplicate(
    tmp_path: Path,
) -> None:
    state = write_state(tmp_path / "s", 3)

    def fault(req: httpx.Request, n: int) -> object:
        if req.method == "POST" and req.url.path.endswith("/Users") and b"user1@" in req.content:
            return "store-then-timeout"
        return None

    t = FaultTransport(tmp_path / "t.db", fault)
    receipt = apply(state, t)
    assert receipt.ok, receipt.results
    assert names(t) == ["user0@x.example", "user1@x.example", "user2@x.example"]


def test_409_on_create_adopts_our_object_or_fails_as_existing_account(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 2)
    t = FaultTransport(tmp_path / "t.db")
    plan = plan_for(state, t)

    # Between plan and apply, someone creates user0 (same externalId: ours) and user1 (another
    # person's account with the same userName).
    async def seed() -> None:
        async with httpx.AsyncClient(transport=t, base_url="http://tenant.test/v2/") as h:
            await h.post(
                "Users", json={"schemas": [CORE], "userName": "user0@x.example", "externalId": "e0"}
            )
            await h.post(
                "Users",
                json={"schemas": [CORE], "userName": "USER1@x.example", "externalId": "other"},
            )

    asyncio.run(seed())
    receipt = asyncio.run(apply_plan(plan, state.tenant, transport=t))
    by_key = {(r.action, r.key): r for r in receipt.results}
    assert by_key[("create", "user0@x.example")].status == "ok"
    failed = by_key[("create", "user1@x.example")]
    assert (failed.status, failed.cause) == ("failed", "existing_account")
    assert names(t) == ["USER1@x.example", "user0@x.example"]


def test_stale_object_is_skipped_and_the_rest_proceeds(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 3)
    t = FaultTransport(tmp_path / "t.db")
    apply(state, t)
    edited = write_state(tmp_path / "s", 3, tenant="")
    (tmp_path / "s" / "state.yaml").write_text(
        (tmp_path / "s" / "state.yaml").read_text().replace("title: T", "title: New T")
    )
    from reconciler.desired.loader import load

    edited = load(tmp_path / "s").state
    assert edited is not None
    plan = plan_for(edited, t)
    live = {u["userName"]: u for u in read(t).users}

    async def touch() -> None:
        async with httpx.AsyncClient(transport=t, base_url="http://tenant.test/v2/") as h:
            uid = live["user1@x.example"]["id"]
            await h.patch(
                f"Users/{uid}",
                json={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "nickName", "value": "x"}],
                },
            )

    asyncio.run(touch())
    receipt = asyncio.run(apply_plan(plan, edited.tenant, transport=t))
    status = {r.key: r.status for r in receipt.results}
    assert status == {"user0@x.example": "ok", "user1@x.example": "stale", "user2@x.example": "ok"}
    assert not receipt.ok


def test_licence_exhaustion_midway_is_grouped(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    init_tenant(db, TenantSettings(licences={"GoTo Meeting": 2}))
    state = write_state(tmp_path / "s", 8, groups=1)
    receipt = apply(state, FaultTransport(db), concurrency=1)
    failed = [r for r in receipt.results if r.status == "failed"]
    assert len(failed) == 6 and {r.cause for r in failed} == {"licence_exhausted"}
    assert failed[0].detail == "out of licenses: GoTo Meeting (2 of 2 in use)"
    from reconciler.apply.report import render_text

    assert "6 changes could not get a licence (out of licenses):" in render_text(receipt)


def test_429_storm_is_honoured_and_converges(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 5)

    def fault(req: httpx.Request, n: int) -> object:
        return httpx.Response(429, headers={"Retry-After": "0"}) if n % 3 == 0 else None

    t = FaultTransport(tmp_path / "t.db", fault)
    assert apply(state, t).ok
    t.fault = None
    assert plan_for(state, t).changes == ()


def test_circuit_breaker_stops_hammering_on_auth_failures(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 30, groups=1)

    def fault(req: httpx.Request, n: int) -> object:
        return httpx.Response(401) if req.method != "GET" else None

    t = FaultTransport(tmp_path / "t.db", fault)
    receipt = apply(state, t, concurrency=1)
    statuses = [r.status for r in receipt.results]
    assert statuses.count("failed") == 5
    assert statuses.count("skipped") == len(statuses) - 5
    writes = [m for m, _ in t.sent if m != "GET"]
    assert len(writes) == 5, "no write after the breaker opened"


def test_lock_refuses_a_second_apply(tmp_path: Path) -> None:
    with (
        ApplyLock(tmp_path / "lock"),
        pytest.raises(ReconcilerError, match="another apply is running"),
    ):
        ApplyLock(tmp_path / "lock").__enter__()


def test_tampered_plan_is_refused(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 1)
    t = FaultTransport(tmp_path / "t.db")
    plan = plan_for(state, t)
    forged = plan.model_copy(update={"changes": plan.changes[:-1]})
    with pytest.raises(InputError, match="edited after it was made"):
        asyncio.run(apply_plan(forged, state.tenant, transport=t))


def test_sigkill_then_resume_converges_without_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with serve_embedded(db) as url:
        write_state(tmp_path / "s", 60, tenant="rate_limit: 25\n")
        (tmp_path / "s" / "tenant.yaml").write_text(
            f"url: {url}\nprofile: generic\nrate_limit: 25\n"
        )
        env = {**os.environ, "NO_COLOR": "1"}
        cli = [sys.executable, "-m", "reconciler"]
        subprocess.run(
            [*cli, "plan", "s", "--out", "plan.json"], check=True, env=env, capture_output=True
        )
        proc = subprocess.Popen(
            [*cli, "apply", "plan.json", "--dir", "s"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        journal = (
            next(iter((tmp_path / ".reconciler" / "journal").glob("*.jsonl")), None)
            if (tmp_path / ".reconciler" / "journal").exists()
            else None
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jdir = tmp_path / ".reconciler" / "journal"
            journal = next(iter(jdir.glob("*.jsonl")), None) if jdir.exists() else None
            if journal is not None and len(journal.read_text().splitlines()) >= 15:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert journal is not None
        done_before = len(journal.read_text().splitlines())
        assert done_before < 60 + 2 + 2, "killed before the end"
        resumed = subprocess.run(
            [*cli, "apply", "plan.json", "--dir", "s", "--resume"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        users = httpx.get(f"{url}/Users", params={"count": 1000}).json()["Resources"]
        assert len(users) == 60 and len({u["userName"].lower() for u in users}) == 60
        again = subprocess.run(
            [*cli, "plan", "s", "--detailed-exitcode"], env=env, capture_output=True, text=True
        )
        assert again.returncode == 0, again.stdout


def test_converges_against_the_reference_server(tmp_path: Path) -> None:
    with serve_reference() as url:
        root = tmp_path / "s"
        write_state(root, 6)
        (root / "tenant.yaml").write_text(f"url: {url}\nprofile: generic\n")
        cli = [sys.executable, "-m", "reconciler"]
        first = subprocess.run(
            [*cli, "apply", "--dir", "s", "--auto-approve"], capture_output=True, text=True
        )
        assert first.returncode == 0, first.stdout + first.stderr
        again = subprocess.run(
            [*cli, "plan", "s", "--detailed-exitcode"], capture_output=True, text=True
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert "No changes. The tenant matches desired-state." in again.stdout
