"""Apply against the real embedded tenant; faults staged only where a server cannot make them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

from reconciler.apply.executor import ADOPTED, ALREADY, REJECTED_THRESHOLD
from reconciler.apply.lock import ApplyLock
from reconciler.apply.receipt import Receipt
from reconciler.apply.run import apply_plan
from reconciler.desired.loader import load
from reconciler.desired.models import Profile
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
    # The create was sent once; what followed it was a lookup, not a second POST.
    posts = [n for n, b in enumerate(t.bodies) if t.sent[n][0] == "POST" and b"user1@" in b]
    assert len(posts) == 1
    assert t.sent[posts[0] + 1][0] == "GET"
    [r] = [r for r in receipt.results if r.key == "user1@x.example" and r.action == "create"]
    assert "adopted" in r.detail


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
    before = {u["userName"]: u["meta"]["version"] for u in read(t).users}
    receipt = asyncio.run(apply_plan(plan, state.tenant, transport=t))
    by_key = {(r.action, r.key): r for r in receipt.results}
    assert by_key[("create", "user0@x.example")].status == "ok"
    failed = by_key[("create", "user1@x.example")]
    assert (failed.status, failed.cause) == ("failed", "existing_account")
    assert "externalId 'other', not 'e1'" in failed.detail
    assert names(t) == ["USER1@x.example", "user0@x.example"]
    # Another person's account is never written to.
    other = next(u for u in read(t).users if u["userName"] == "USER1@x.example")
    assert other["meta"]["version"] == before["USER1@x.example"]
    assert other["externalId"] == "other"


def test_stale_object_is_skipped_and_the_rest_proceeds(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 3)
    t = FaultTransport(tmp_path / "t.db")
    apply(state, t)
    edited = write_state(tmp_path / "s", 3, tenant="")
    (tmp_path / "s" / "state.yaml").write_text(
        (tmp_path / "s" / "state.yaml").read_text().replace("title: T", "title: New T")
    )
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


def test_failure_headings_agree_with_their_count() -> None:
    from reconciler.apply.report import _title

    assert _title("existing_account", 1) == "1 change has an existing account (uniqueness conflict)"
    assert _title("existing_account", 3) == "3 changes have existing accounts (uniqueness conflict)"
    assert _title("dependency", 1) == "1 change was skipped because something it depends on failed"
    assert _title("licence_exhausted", 1) == "1 change could not get a licence (out of licenses)"


def test_429_storm_is_honoured_and_converges(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 5)

    def fault(req: httpx.Request, n: int) -> object:
        return httpx.Response(429, headers={"Retry-After": "0"}) if n % 3 == 0 else None

    t = FaultTransport(tmp_path / "t.db", fault)
    receipt = apply(state, t)
    assert receipt.ok
    changes = len(receipt.results)
    assert receipt.retries > 0 and receipt.requests_sent == changes + receipt.retries
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


def _journal_lines(cwd: Path) -> int:
    jdir = cwd / ".reconciler" / "journal"
    journal = next(iter(jdir.glob("*.jsonl")), None) if jdir.exists() else None
    return len(journal.read_text().splitlines()) if journal is not None else 0


@pytest.mark.parametrize("phase", ["creates", "updates"])
def test_sigkill_then_resume_converges_without_duplicates(tmp_path: Path, phase: str) -> None:
    db = tmp_path / "t.db"
    n = 150
    env = {**os.environ, "NO_COLOR": "1"}
    cli = [sys.executable, "-m", "reconciler"]
    with serve_embedded(db) as url:
        # No pacing: many writes in flight when the kill lands, so some reach the tenant
        # without their result reaching the journal.
        settings = f"url: {url}\nprofile: generic\nrate_limit: 100000\n"
        write_state(tmp_path / "s", n)
        (tmp_path / "s" / "tenant.yaml").write_text(settings)
        if phase == "updates":  # the users exist; the plan retitles all of them
            subprocess.run([*cli, "apply", "--dir", "s", "--auto-approve"], check=True, env=env)
            _retitle(tmp_path / "s", n)
            (tmp_path / "s" / "tenant.yaml").write_text(settings)
            shutil.rmtree(tmp_path / ".reconciler" / "journal")
        subprocess.run(
            [*cli, "plan", "s", "--out", "plan.json"], check=True, env=env, capture_output=True
        )
        changes = len(json.loads((tmp_path / "plan.json").read_text())["changes"])
        proc = subprocess.Popen(
            [*cli, "apply", "plan.json", "--dir", "s"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _journal_lines(tmp_path) < 30:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 30 <= _journal_lines(tmp_path) < changes, "killed midway"
        resumed = subprocess.run(
            [*cli, "apply", "plan.json", "--dir", "s", "--resume", "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        receipt = json.loads(resumed.stdout)
        assert receipt["counts"] == {"ok": changes}
        users = httpx.get(f"{url}/Users", params={"count": 1000}).json()["Resources"]
        assert len(users) == n and len({u["userName"].lower() for u in users}) == n
        if phase == "updates":
            assert {u["title"] for u in users} == {f"New T{i}" for i in range(n)}
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


def _retitle(root: Path, users: int, **kw: Any) -> DesiredState:
    """The desired state of ``write_state`` with every title changed: one update per user."""
    write_state(root, users, **kw)
    path = root / "state.yaml"
    path.write_text(path.read_text().replace("title: T", "title: New T"))
    loaded = load(root).state
    assert loaded is not None
    return loaded


def test_users_wait_for_their_manager_instead_of_a_second_request(tmp_path: Path) -> None:
    # write_state chains managers: user i reports to user i-1, all created in one stage.
    state = write_state(tmp_path / "s", 8)
    t = FaultTransport(tmp_path / "t.db")
    receipt = apply(state, t, concurrency=4)
    assert receipt.ok
    changes = len(receipt.results)
    assert receipt.requests_sent == changes and len(t.writes()) == changes


def test_an_update_whose_answer_was_lost_is_ok_not_stale(tmp_path: Path) -> None:
    """An update that reached the tenant before a crash (or a timeout) hid the answer: the
    object moved, but to exactly what the change writes."""
    t = FaultTransport(tmp_path / "t.db")
    apply(write_state(tmp_path / "s", 4), t)
    state = _retitle(tmp_path / "s", 4)
    plan = plan_for(state, t)
    assert {c.action for c in plan.changes} == {"update"}
    first = asyncio.run(apply_plan(plan, state.tenant, transport=t))
    assert first.ok and first.counts == {"ok": 4}
    versions = {u["id"]: u["meta"]["version"] for u in read(t).users}
    # The same plan again, its journal lost: every If-Match fails, every object already holds.
    again = asyncio.run(apply_plan(plan, state.tenant, transport=t))
    assert again.ok, again.results
    assert {r.detail for r in again.results} == {ALREADY}
    assert {u["id"]: u["meta"]["version"] for u in read(t).users} == versions


def test_a_journal_that_lost_its_tail_resumes_without_duplicates(tmp_path: Path) -> None:
    """SIGKILL (or a power cut) after requests reached the tenant but before their results
    were journaled: --resume redoes them, and each finds its work already done."""
    t = FaultTransport(tmp_path / "t.db")
    apply(write_state(tmp_path / "old", 6), t)
    state = _retitle(tmp_path / "s", 12)  # 6 updates, 6 creates (with managers), memberships
    plan = plan_for(state, t)
    journal = tmp_path / "j.jsonl"
    full = asyncio.run(apply_plan(plan, state.tenant, transport=t, journal_path=journal))
    assert full.ok
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:3]) + "\n")  # only the first results reached the disk
    t.sent.clear()
    resumed = asyncio.run(
        apply_plan(plan, state.tenant, transport=t, journal_path=journal, resume=True)
    )
    assert resumed.ok, resumed.results
    assert names(t) == sorted(f"user{i}@x.example" for i in range(12))
    assert not [m for m, p in t.sent if m == "POST" and p.endswith("/Groups")]
    assert {r.detail for r in resumed.results[3:]} <= {"", ALREADY, ADOPTED}
    assert plan_for(state, t).changes == ()


def test_deleting_what_is_gone_is_ok_and_updating_it_is_stale(tmp_path: Path) -> None:
    t = FaultTransport(tmp_path / "t.db")
    apply(write_state(tmp_path / "old", 3, groups=1), t)
    # user2 leaves git (ownership: delete, no grace); user1 gets a new title.
    state = _retitle(tmp_path / "s", 2, groups=1, tenant="ownership: {users: delete}\n")
    plan = plan_for(state, t)
    by_key = {c.key: c for c in plan.changes}
    assert by_key["user2@x.example"].action in ("delete", "suspend")
    live = {u["userName"]: u["id"] for u in read(t).users}

    async def remove(*who: str) -> None:
        async with httpx.AsyncClient(transport=t, base_url="http://tenant.test/v2/") as h:
            for name in who:
                (await h.delete(f"Users/{live[name]}")).raise_for_status()

    asyncio.run(remove("user2@x.example", "user1@x.example"))
    receipt = asyncio.run(apply_plan(plan, state.tenant, transport=t))
    got = {(r.key, r.action): (r.status, r.detail) for r in receipt.results}
    gone = got[("user2@x.example", by_key["user2@x.example"].action)]
    if by_key["user2@x.example"].action == "delete":
        assert gone == ("ok", "already gone from the tenant")
    status, detail = got[("user1@x.example", "update")]
    assert status == "stale" and "deleted from the tenant since the plan" in detail


class NoVersions(FaultTransport):
    """A tenant without ETags or meta.version: apply re-reads and compares the values the plan
    saw. (Both servers on hand support ETags, so the fault is staged.)"""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert "If-Match" not in request.headers
        response = await super().handle_async_request(request)
        await response.aread()
        if not response.content:
            return response
        body = response.json()
        for r in [body, *(body.get("Resources") or [])] if isinstance(body, dict) else []:
            if isinstance(r, dict):
                (r.get("meta") or {}).pop("version", None)
        headers = {
            k: v for k, v in response.headers.items() if k.lower() not in ("etag", "content-length")
        }
        return httpx.Response(response.status_code, json=body, headers=headers)


@pytest.mark.parametrize("versions", [True, False], ids=["meta.version", "no-versions"])
def test_tenant_without_etags_is_reread_and_compared(tmp_path: Path, versions: bool) -> None:
    t: FaultTransport = (
        FaultTransport(tmp_path / "t.db") if versions else NoVersions(tmp_path / "t.db")
    )
    apply(write_state(tmp_path / "old", 3), t)
    state = _retitle(tmp_path / "s", 3)
    plan = plan_for(state, t).model_copy(update={"etag": False})  # not part of the hash
    live = {u["userName"]: u["id"] for u in read(t).users}

    async def touch() -> None:
        async with httpx.AsyncClient(transport=t, base_url="http://tenant.test/v2/") as h:
            op = {"op": "replace", "path": "title", "value": "Changed in the console"}
            body = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [op],
            }
            (await h.patch(f"Users/{live['user1@x.example']}", json=body)).raise_for_status()

    asyncio.run(touch())
    t.sent.clear()
    receipt = asyncio.run(apply_plan(plan, state.tenant, transport=t))
    sent = sorted(m for m, _ in t.sent)
    status = {r.key: r.status for r in receipt.results}
    assert status == {"user0@x.example": "ok", "user1@x.example": "stale", "user2@x.example": "ok"}
    titles = {u["userName"]: u.get("title") for u in read(t).users}
    assert titles["user1@x.example"] == "Changed in the console", "a stale object is not written"
    # One re-read per change, a write only for those that had not moved.
    assert sent == ["GET", "GET", "GET", "PATCH", "PATCH"]


def test_a_user_whose_manager_failed_is_created_without_it_then_retried(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    init_tenant(db, TenantSettings(licences={"GoTo Meeting": 1}))
    # Team 0 (even users) gets GoTo Meeting from the rule: user0 takes the only seat, user2's
    # create fails, user3 (Team 1, no licence needed) reports to user2.
    state = write_state(tmp_path / "s", 4)
    first = apply(state, FaultTransport(db), concurrency=1)
    got = {(r.key, r.action): r for r in first.results}
    assert (got[("user2@x.example", "create")].cause) == "licence_exhausted"
    user3 = got[("user3@x.example", "create")]
    assert (user3.status, user3.cause) == ("failed", "dependency")
    assert "created without its reference to user2@x.example" in user3.detail
    team0 = got[("Team 0", "add_member")]
    assert team0.status == "skipped" and "1 of 2 members added; not user2@x.example" in team0.detail
    assert "user3@x.example" in names(FaultTransport(db))
    from reconciler.apply.report import render_text

    text = render_text(first, "plan.json")
    assert text.index("could not get a licence") < text.index("depend on failed")
    assert "reconciler apply plan.json --retry-failed" in text

    init_tenant(db, TenantSettings(licences={"GoTo Meeting": 10}))
    t = FaultTransport(db)
    plan = plan_for(state, FaultTransport(tmp_path / "empty.db"))  # the same plan as before
    retry = asyncio.run(apply_plan(plan, state.tenant, transport=t, retry_failed=True))
    assert retry.ok, retry.results
    users = {u["userName"]: u for u in read(t).users}
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert users["user3@x.example"][ext]["manager"]["value"] == users["user2@x.example"]["id"]
    assert plan_for(state, t).changes == ()


def test_circuit_breaker_stops_when_every_write_is_rejected(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 40, groups=1)

    def fault(req: httpx.Request, n: int) -> object:
        if req.method == "POST" and req.url.path.endswith("/Users"):
            detail = {"status": "400", "scimType": "invalidValue", "detail": "bad attribute"}
            return httpx.Response(400, json=detail)
        return None

    t = FaultTransport(tmp_path / "t.db", fault)
    receipt = apply(state, t, concurrency=1)
    causes = [r.cause for r in receipt.results if r.resource_type == "User"]
    assert causes.count("rejected") == REJECTED_THRESHOLD
    assert causes.count("stopped") == 40 - REJECTED_THRESHOLD
    assert len([m for m, p in t.writes() if p.endswith("/Users")]) == REJECTED_THRESHOLD


def test_results_never_carry_secrets_or_sensitive_values(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / "tenant.yaml").write_text(
        "url: http://tenant.test/v2\nauth: {type: bearer, token_env: TEST_APPLY_TOKEN}\n"
    )
    (root / "state.yaml").write_text(
        "attributes:\n  - name: badgeNumber\n    sensitive: true\n    scim: {schema: core}\n"
        "users:\n  - userName: a@x.example\n    attributes: {badgeNumber: B-771234}\n"
    )
    state = load(root).state
    assert state is not None
    token = "tok-SECRET-9f8e7d"

    def fault(req: httpx.Request, n: int) -> object:
        if req.method == "POST":
            detail = f"badgeNumber B-771234 is not allowed for token {token}"
            return httpx.Response(400, json={"status": "400", "detail": detail})
        return None

    t = FaultTransport(tmp_path / "t.db", fault)
    plan = plan_for(state, t)
    receipt = asyncio.run(
        apply_plan(plan, state.tenant, transport=t, env={"TEST_APPLY_TOKEN": token})
    )
    [r] = receipt.results
    assert r.status == "failed" and "badgeNumber *** is not allowed for token ***" in r.detail
    text = receipt.model_dump_json()
    assert token not in text and "B-771234" not in text
    journal = next((tmp_path / ".reconciler" / "journal").glob("*.jsonl")).read_text()
    assert token not in journal and "B-771234" not in journal


def test_updates_go_as_put_where_the_tenant_lacks_patch(tmp_path: Path) -> None:
    t = FaultTransport(tmp_path / "t.db")
    apply(write_state(tmp_path / "old", 4, groups=1), t)
    # Retitled, and user3 leaves Team 0: updates and a member removal, all as PUT.
    _retitle(tmp_path / "s", 4, groups=1)
    path = tmp_path / "s" / "state.yaml"
    path.write_text(
        path.read_text().replace(
            "[user3@x.example]\n    groups: [Team 0]", "[user3@x.example]\n    groups: []"
        )
    )
    state = load(tmp_path / "s").state
    assert state is not None
    plan = plan_for(state, t).model_copy(update={"patch": False})  # not part of the hash
    assert {c.action for c in plan.changes} >= {"update", "remove_member"}
    t.sent.clear()
    receipt = asyncio.run(apply_plan(plan, state.tenant, transport=t))
    assert receipt.ok, receipt.results
    methods = {m for m, _ in t.sent}
    assert "PUT" in methods and "PATCH" not in methods
    assert plan_for(state, t).changes == ()


def test_member_changes_go_in_the_profiles_chunks(tmp_path: Path) -> None:
    state = write_state(tmp_path / "s", 230, groups=1)
    t = FaultTransport(tmp_path / "t.db")
    # The goto profile allows 100 members per PATCH (a vendor limit).
    goto = state.tenant.model_copy(update={"profile": Profile.goto, "rate_limit": 100000})
    receipt = asyncio.run(apply_plan(plan_for(state, t), goto, transport=t))
    assert receipt.ok
    sizes = [
        len(json.loads(b)["Operations"][0]["value"])
        for (m, p), b in zip(t.sent, t.bodies, strict=True)
        if m == "PATCH" and "/Groups/" in p
    ]
    assert sizes == [100, 100, 30]
    assert plan_for(state, t).changes == ()
