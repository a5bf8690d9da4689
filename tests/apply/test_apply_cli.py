"""`reconciler apply` and `reconciler receipts` as a person and CI run them: a real git
repository, the embedded tenant served over loopback, the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.apply.lock import ApplyLock
from reconciler.apply.run import journal_of
from reconciler.plan.hashing import plan_hash
from reconciler.plan.model import Plan
from tests.apply.conftest import write_state
from tests.servers import free_port, serve_embedded

CLI = [sys.executable, "-m", "reconciler"]
TOKEN = "tok-apply-cli-3b9d7c1e"


def run(
    cwd: Path, *args: str, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "TEST_TENANT_TOKEN": TOKEN}
    env.pop("GITHUB_ACTOR", None)
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, stdin=stdin, capture_output=True, text=True
    )


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def describe(root: Path, url: str) -> None:
    """A git repository at ``root`` whose desired-state (six users) names the tenant ``url``."""
    write_state(root / "desired-state", 6)
    (root / "desired-state" / "tenant.yaml").write_text(
        f"url: {url}\nprofile: generic\nauth: {{type: bearer, token_env: TEST_TENANT_TOKEN}}\n"
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Ada Admin")
    git(root, "config", "user.email", "ada@acme.example")
    git(root, "add", ".")
    git(root, "commit", "-qm", "Describe the tenant")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A git repository whose desired-state points at a served tenant (bearer token auth)."""
    with serve_embedded(tmp_path / "t.db", token=TOKEN) as url:
        root = tmp_path / "repo"
        describe(root, url)
        yield root, url


HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def active(url: str) -> dict[str, bool]:
    """Every account in the tenant: userName → whether it is active."""
    r = httpx.get(f"{url}/Users", headers=HEADERS)
    return {u["userName"]: u.get("active", True) for u in r.json().get("Resources") or []}


def snapshot(url: str) -> dict[str, Any]:
    """Every user and group as the tenant holds it, versions included: equal snapshots
    before and after mean nothing was written."""
    return {
        kind: sorted(
            httpx.get(f"{url}/{kind}", headers=HEADERS).json().get("Resources") or [],
            key=lambda r: str(r["id"]),
        )
        for kind in ("Users", "Groups")
    }


def users(url: str) -> list[str]:
    return sorted(active(url))


def user(url: str, name: str) -> dict[str, Any]:
    params = {"filter": f'userName eq "{name}"'}
    [found] = httpx.get(f"{url}/Users", params=params, headers=HEADERS).json()["Resources"]
    return dict(found)


def patch_user(url: str, uid: str, path: str, value: object) -> None:
    """A change made out of band, as in the tenant's console."""
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": path, "value": value}],
    }
    assert httpx.patch(f"{url}/Users/{uid}", json=patch, headers=HEADERS).is_success


def test_without_a_terminal_or_auto_approve_nothing_is_applied(repo: tuple[Path, str]) -> None:
    root, url = repo
    r = run(root, "apply")
    assert r.returncode == 1
    assert "+ create User user0@x.example" in r.stdout, "the plan is shown first"
    assert "refusing to apply without confirmation: no terminal to ask on" in r.stderr
    assert "--auto-approve" in r.stderr and "Traceback" not in r.stderr
    assert users(url) == []


def test_a_second_apply_in_the_same_working_copy_refuses(repo: tuple[Path, str]) -> None:
    root, url = repo
    assert run(root, "plan", "--out", "plan.json").returncode == 0
    with ApplyLock(root / ".reconciler" / "apply.lock"):  # an apply in progress
        r = run(root, "apply", "plan.json")
    assert r.returncode == 1
    assert f"another apply is running in this working copy (pid {os.getpid()})" in r.stderr
    assert users(url) == []
    # The lock went with its holder: the next apply runs.
    assert run(root, "apply", "plan.json").returncode == 0


def test_applying_a_plan_again_sends_nothing_and_says_so(repo: tuple[Path, str]) -> None:
    """A re-run of the same apply (a CI retry, a second click) is not a fresh success with a
    second receipt: the journal shows it done, and nothing is sent."""
    root, url = repo
    head = git(root, "rev-parse", "HEAD").strip()
    assert run(root, "plan", "--out", "plan.json").returncode == 0
    first = run(root, "apply", "plan.json")
    assert first.returncode == 0 and "every change succeeded" in first.stdout
    note = git(root, "notes", "--ref", "reconciler", "show", head)
    again = run(root, "apply", "plan.json")
    assert again.returncode == 0, again.stderr
    assert "was already applied completely from this working copy" in again.stdout
    assert "nothing was sent" in again.stdout and "Receipt attached" not in again.stdout
    assert git(root, "notes", "--ref", "reconciler", "show", head) == note
    for flag in ("--resume", "--retry-failed"):
        again = run(root, "apply", "plan.json", flag)
        assert again.returncode == 0, again.stderr
        assert "was already applied completely" in again.stdout
        assert git(root, "notes", "--ref", "reconciler", "show", head) == note, flag
    assert len(users(url)) == 6


def test_a_new_plan_of_the_same_intent_is_applied_after_drift(repo: tuple[Path, str]) -> None:
    """The tenant drifts back after an apply (the console reactivates two suspended accounts):
    a new plan has the same changes, so the same hash, but it is a new apply, not one the
    journal shows done."""
    root, url = repo
    _offboard_two(root, url)
    assert run(root, "plan", "--out", "first.json").returncode == 0
    assert run(root, "apply", "first.json").returncode == 0
    for name in ("user4@x.example", "user5@x.example"):
        patch_user(url, user(url, name)["id"], "active", True)
    assert run(root, "plan", "--out", "second.json").returncode == 0
    first, second = (json.loads((root / f).read_text()) for f in ("first.json", "second.json"))
    assert first["plan_hash"] == second["plan_hash"]
    again = run(root, "apply", "second.json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already applied" not in again.stdout and "every change succeeded" in again.stdout
    assert not active(url)["user4@x.example"] and not active(url)["user5@x.example"]


def test_a_plan_is_applied_only_to_the_tenant_it_was_made_for(repo: tuple[Path, str]) -> None:
    root, url = repo
    assert run(root, "plan", "--out", "plan.json").returncode == 0
    r = run(root, "apply", "plan.json", "--tenant", "http://127.0.0.1:9/v2")
    assert r.returncode == 1
    assert f"this plan was made against {url}, not http://127.0.0.1:9/v2" in r.stderr
    assert users(url) == []


def test_spellings_of_one_local_tenant_are_one_tenant(tmp_path: Path) -> None:
    """A local: path is opened relative to the working directory: local:./t.db, local:t.db
    and local:sub/../t.db open one file, so a plan made under one spelling applies under
    another. Another file is another tenant; the plan keeps the URL as it was written."""
    root = tmp_path / "repo"
    describe(root, "local:./t.db")
    (root / "sub").mkdir()
    for db in ("t.db", "other.db"):
        assert run(root, "tenant", "init", "--db", db).returncode == 0
    assert run(root, "plan", "--out", "plan.json").returncode == 0
    assert json.loads((root / "plan.json").read_text())["tenant_url"] == "local:./t.db"
    other = run(root, "apply", "plan.json", "--tenant", "local:other.db")
    assert other.returncode == 1
    assert "this plan was made against local:./t.db, not local:other.db" in other.stderr
    tenant = root / "desired-state" / "tenant.yaml"
    tenant.write_text(tenant.read_text().replace("local:./t.db", "local:sub/../t.db"))
    r = run(root, "apply", "plan.json")  # tenant.yaml names the same file, spelt otherwise
    assert r.returncode == 0, r.stderr
    assert "Apply " in r.stdout and " on local:./t.db" in r.stdout
    # Once more with --tenant: a new plan, made under tenant.yaml's new spelling.
    state = root / "desired-state" / "state.yaml"
    state.write_text(state.read_text().replace("title: T0\n", "title: Lead\n"))
    assert run(root, "plan", "--out", "plan2.json").returncode == 0
    r = run(root, "apply", "plan2.json", "--tenant", "local:t.db")
    assert r.returncode == 0, r.stderr
    assert " on local:sub/../t.db" in r.stdout
    assert run(root, "plan", "--detailed-exitcode").returncode == 0


def test_a_plan_file_naming_another_tenant_gets_no_credentials(repo: tuple[Path, str]) -> None:
    """tenant.yaml's token is for tenant.yaml's tenant: a plan file (from a colleague, an
    artifact) that names another one, hash and all, is refused before any connection."""
    root, url = repo
    assert run(root, "plan", "--out", "plan.json").returncode == 0
    data = json.loads((root / "plan.json").read_text())
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        elsewhere = f"http://127.0.0.1:{listener.getsockname()[1]}/v2"
        data["tenant_url"] = elsewhere
        plan = Plan.model_validate(data)
        data["plan_hash"] = plan_hash(elsewhere, plan.changes, blocked=plan.blocked)
        (root / "evil.json").write_text(json.dumps(data))
        r = run(root, "apply", "evil.json")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert r.returncode == 1
    assert (
        f"this plan was made against {elsewhere}, but desired-state/tenant.yaml names {url}: "
        "its credentials are not sent to another tenant"
    ) in r.stderr
    assert TOKEN not in r.stdout + r.stderr
    assert users(url) == []


def test_receipt_is_a_git_note_without_secrets_and_keeps_earlier_attempts(
    repo: tuple[Path, str],
) -> None:
    root, url = repo
    head = git(root, "rev-parse", "HEAD").strip()
    assert run(root, "plan", "--out", "plan.json").returncode == 0
    # An apply that fails: the tenant refuses our token.
    (root / "desired-state" / "tenant.yaml").write_text(
        f"url: {url}\nprofile: generic\nauth: {{type: bearer, token_env: WRONG_TOKEN}}\n"
    )
    env_run = subprocess.run(
        [*CLI, "apply", "plan.json"],
        cwd=root,
        env={**os.environ, "NO_COLOR": "1", "WRONG_TOKEN": "tok-wrong-5a6b7c8d"},
        capture_output=True,
        text=True,
    )
    assert env_run.returncode == 1
    assert "failed authentication" in env_run.stdout
    assert "skipped because apply stopped early" in env_run.stdout
    assert "reconciler apply plan.json --retry-failed" in env_run.stdout
    git(root, "checkout", "-q", "desired-state/tenant.yaml")
    retried = run(root, "apply", "plan.json", "--retry-failed")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert f"Receipt attached to {head[:12]}" in retried.stdout

    note = git(root, "notes", "--ref", "reconciler", "show", head)
    receipt = json.loads(note)
    assert receipt["desired_commit"] == head and receipt["actor"] == "Ada Admin <ada@acme.example>"
    assert receipt["counts"] == {"ok": len(receipt["results"])}
    assert len(receipt["earlier"]) == 1 and receipt["earlier"][0]["counts"].get("failed")
    assert TOKEN not in note and "tok-wrong" not in note

    shown = run(root, "receipts")
    assert shown.returncode == 0
    assert "Apply complete: every change succeeded." in shown.stdout
    assert "applied by Ada Admin <ada@acme.example>" in shown.stdout
    assert "earlier: " in shown.stdout
    assert json.loads(run(root, "receipts", head[:8], "--json").stdout)["plan_hash"]

    bad = run(root, "receipts", "no-such-rev")
    assert bad.returncode == 1 and "unknown revision 'no-such-rev'" in bad.stderr
    git(root, "commit", "-q", "--allow-empty", "-m", "later")
    none = run(root, "receipts")
    assert none.returncode == 1 and "no receipt for HEAD" in none.stdout


def test_retry_failed_after_the_licence_is_raised(tmp_path: Path) -> None:
    db, port = tmp_path / "t.db", free_port()
    init = [*CLI, "tenant", "init", "--db", str(db), "--licence"]
    subprocess.run([*init, "GoTo Meeting=2"], check=True, capture_output=True)
    with serve_embedded(db, port=port) as url:
        write_state(tmp_path / "s", 6, groups=1)
        (tmp_path / "s" / "tenant.yaml").write_text(f"url: {url}\nprofile: generic\n")
        assert run(tmp_path, "plan", "s", "--out", "plan.json").returncode == 0
        first = run(tmp_path, "apply", "plan.json", "--dir", "s", "--concurrency", "1")
        assert first.returncode == 1
        assert "4 changes could not get a licence (out of licenses):" in first.stdout
        assert "out of licenses: GoTo Meeting (2 of 2 in use)" in first.stdout
        assert "reconciler apply plan.json --retry-failed" in first.stdout
    subprocess.run([*init, "GoTo Meeting=10"], check=True, capture_output=True)
    with serve_embedded(db, port=port):  # the tenant, restarted with more seats
        retry = run(tmp_path, "apply", "plan.json", "--dir", "s", "--retry-failed")
        assert retry.returncode == 0, retry.stdout + retry.stderr
        assert "Apply complete: every change succeeded." in retry.stdout
        again = run(tmp_path, "plan", "s", "--detailed-exitcode")
        assert again.returncode == 0, again.stdout


def test_uncommitted_desired_state_is_said_in_the_plan_apply_and_receipt(
    repo: tuple[Path, str],
) -> None:
    """A receipt hangs on a commit: when the state applied is not that commit's, say so."""
    root, _ = repo
    clean = run(root, "plan", "--format", "json")
    assert json.loads(clean.stdout)["desired_uncommitted"] is False
    state = root / "desired-state" / "state.yaml"
    state.write_text(state.read_text().replace("title: T1\n", "title: Lead\n"))
    head = git(root, "rev-parse", "HEAD").strip()
    plan = run(root, "plan")
    assert f"at {head[:12]} with uncommitted changes" in plan.stdout
    assert json.loads(run(root, "plan", "--format", "json").stdout)["desired_uncommitted"]
    applied = run(root, "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert f"warning: desired-state had uncommitted changes: the receipt on {head[:12]}" in (
        applied.stderr
    )
    shown = run(root, "receipts", "HEAD")
    assert "note: applied with uncommitted changes in desired-state" in shown.stdout


def _offboard_two(root: Path, url: str) -> None:
    """Apply the six users, then remove user4 and user5 in git: the next plan suspends them."""
    assert run(root, "apply", "--auto-approve").returncode == 0
    state = root / "desired-state" / "state.yaml"
    text = state.read_text()
    state.write_text(text[: text.index("  - userName: user4@x.example")])
    git(root, "commit", "-qam", "user4 and user5 leave")


def test_apply_rechecks_protected_accounts_and_gates_with_tenant_yaml_as_it_is_now(
    repo: tuple[Path, str],
) -> None:
    """A reviewed plan is applied after the merge: if, meanwhile, an account became protected
    or a limit was tightened, the plan is refused before anything is sent, all problems at
    once."""
    root, url = repo
    _offboard_two(root, url)
    plan = run(root, "plan", "--out", "plan.json")
    assert plan.returncode == 0 and "2 to suspend" in plan.stdout, plan.stdout
    tenant = root / "desired-state" / "tenant.yaml"
    tenant.write_text(
        tenant.read_text() + "protected: [USER4@x.example]\nsafety:\n  suspensions: {max: 1}\n"
    )
    r = run(root, "apply", "plan.json")
    assert r.returncode == 1
    assert (
        "this plan is not applied, and nothing was written: tenant.yaml, as it is now, does not "
        "allow it"
    ) in r.stderr
    assert "protected accounts (tenant.yaml protected:): user4@x.example would be suspended" in (
        r.stderr
    )
    assert "safety gate suspensions: 2 would be suspended (limit 1)" in r.stderr
    assert "make a new plan and review it" in r.stderr and "Traceback" not in r.stderr
    assert active(url) == {f"user{i}@x.example": True for i in range(6)}


def test_apply_honours_a_gate_the_plan_allowed_deliberately(repo: tuple[Path, str]) -> None:
    root, url = repo
    _offboard_two(root, url)
    tenant = root / "desired-state" / "tenant.yaml"
    tenant.write_text(tenant.read_text() + "safety:\n  suspensions: {max: 1}\n")
    assert run(root, "plan", "--out", "plan.json").returncode == 1  # over the gate
    assert run(root, "plan", "--out", "plan.json", "--allow", "suspensions=2").returncode == 0
    r = run(root, "apply", "plan.json")
    assert r.returncode == 0, r.stderr
    assert active(url)["user5@x.example"] is False


def test_apply_honours_an_allowance_the_plan_did_not_need_yet(repo: tuple[Path, str]) -> None:
    """A reviewer allows two suspensions while the gate would let them through anyway; the
    gate is tightened before the merge is applied. The allowance is in the plan (shown as
    such), so apply's re-check honours it, as it honours one the plan needed."""
    root, url = repo
    _offboard_two(root, url)
    plan = run(root, "plan", "--out", "plan.json", "--allow", "suspensions=2")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    expected = "suspensions: 2 (not over the limit), allowed up to 2"
    assert f"Allowed deliberately: {expected}" in plan.stdout
    artifact = json.loads((root / "plan.json").read_text())
    assert artifact["allowances"] == [{"gate": "suspensions", "up_to": 2, "count": 2, "limit": ""}]
    shown = run(root, "show", "plan.json", "--format", "markdown")
    assert f"**Allowed deliberately**: {expected}" in shown.stdout
    tenant = root / "desired-state" / "tenant.yaml"
    tenant.write_text(tenant.read_text() + "safety:\n  suspensions: {max: 1}\n")
    r = run(root, "apply", "plan.json")
    assert r.returncode == 0, r.stderr
    assert active(url)["user4@x.example"] is False and active(url)["user5@x.example"] is False


def _planned_then_break_glass(root: Path, url: str) -> Path:
    """A plan (two offboarded, user0 retitled) saved as plan.json; then, out of band,
    user5 is made a break-glass account. Returns tenant.yaml, for the test to protect."""
    _offboard_two(root, url)
    state = root / "desired-state" / "state.yaml"
    state.write_text(state.read_text().replace("title: T0\n", "title: Lead\n"))
    assert run(root, "plan", "--out", "plan.json").returncode == 0
    patch_user(url, user(url, "user5@x.example")["id"], "userType", "break-glass")
    return root / "desired-state" / "tenant.yaml"


def test_apply_checks_protected_selectors_on_the_live_accounts_before_writing(
    repo: tuple[Path, str],
) -> None:
    """A selector protects for what an account is in the tenant now: apply reads the accounts
    it would harm and refuses before its first write, even when other changes are harmless."""
    root, url = repo
    tenant = _planned_then_break_glass(root, url)
    tenant.write_text(
        tenant.read_text() + "protected:\n  - selector: user.userType == 'break-glass'\n"
    )
    r = run(root, "apply", "plan.json")
    assert r.returncode == 1
    assert "tenant.yaml's protected selectors match accounts it would change: " in r.stderr
    assert "user5@x.example would be suspended" in r.stderr
    assert "user4@x.example" not in r.stderr
    assert active(url)["user5@x.example"] is True and active(url)["user4@x.example"] is True
    assert user(url, "user0@x.example")["title"] == "T0", "not even the harmless update was sent"


SELECTOR = "  - selector: user.userType == 'break-glass'\n"


@pytest.mark.parametrize("before_connecting", ["name", "gate"])
def test_apply_names_selector_violations_with_the_others_in_one_refusal(
    repo: tuple[Path, str], before_connecting: str
) -> None:
    """All problems at once: when a name (or a gate) refuses the plan before connecting,
    apply still reads the accounts the selectors judge (GET only) and names what they match
    in the same refusal, so a second attempt does not reveal a second problem."""
    root, url = repo
    tenant = _planned_then_break_glass(root, url)
    extra = (
        "protected:\n  - user4@x.example\n" + SELECTOR
        if before_connecting == "name"
        else "protected:\n" + SELECTOR + "safety:\n  suspensions: {max: 1}\n"
    )
    tenant.write_text(tenant.read_text() + extra)
    before = snapshot(url)
    r = run(root, "apply", "plan.json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("error: ") == 1, r.stderr
    assert "this plan is not applied, and nothing was written" in r.stderr
    selected = (
        "protected selectors (tenant.yaml protected:), on the accounts as the tenant holds "
        "them now: user5@x.example would be suspended"
    )
    assert selected in r.stderr
    if before_connecting == "name":
        assert (
            "protected accounts (tenant.yaml protected:): user4@x.example would be suspended"
        ) in r.stderr
    else:
        assert "safety gate suspensions: 2 would be suspended (limit 1)" in r.stderr
    assert "not checked" not in r.stderr
    assert snapshot(url) == before, "nothing was written"


def test_a_refusal_says_when_the_selectors_could_not_be_checked(tmp_path: Path) -> None:
    """The tenant is down when a plan that names refuse is applied: the refusal names what
    was found and says that the selectors could not be judged, rather than passing them."""
    db, port = tmp_path / "t.db", free_port()
    root = tmp_path / "repo"
    with serve_embedded(db, token=TOKEN, port=port) as url:
        describe(root, url)
        _offboard_two(root, url)
        assert run(root, "plan", "--out", "plan.json").returncode == 0
        before = snapshot(url)
    tenant = root / "desired-state" / "tenant.yaml"
    tenant.write_text(tenant.read_text() + "protected:\n  - user4@x.example\n" + SELECTOR)
    r = run(root, "apply", "plan.json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "protected accounts (tenant.yaml protected:): user4@x.example would be suspended" in (
        r.stderr
    )
    assert "protected selectors were not checked (the tenant could not be read: " in r.stderr
    assert "more accounts it would change may be protected" in r.stderr
    assert TOKEN not in r.stdout + r.stderr
    with serve_embedded(db, token=TOKEN, port=port) as url:
        assert snapshot(url) == before, "nothing was written"


def test_a_resumed_apply_checks_only_what_is_left(repo: tuple[Path, str]) -> None:
    """An apply interrupted after suspending user4; then user4 is protected (say, made the
    break-glass account). Resuming applies the rest: what is done is not checked again, and
    is not called 'not applied'."""
    root, url = repo
    _offboard_two(root, url)
    assert run(root, "plan", "--out", "plan.json").returncode == 0
    plan = Plan.model_validate_json((root / "plan.json").read_text())
    first = next(i for i, c in enumerate(plan.changes) if c.key == "user4@x.example")
    journal = root / journal_of(plan)  # .reconciler/journal/<plan hash>.jsonl
    journal.parent.mkdir(parents=True, exist_ok=True)
    # What an apply killed after its first change leaves (user4 suspended, journaled).
    uid = str(plan.changes[first].id)
    patch_user(url, uid, "active", False)
    entry = {"i": first, "status": "ok", "id": uid, "action": "suspend"}
    journal.write_text(json.dumps(entry) + "\n")
    tenant = root / "desired-state" / "tenant.yaml"
    tenant.write_text(tenant.read_text() + "protected: [user4@x.example]\n")
    r = run(root, "apply", "plan.json", "--resume")
    assert r.returncode == 0, r.stdout + r.stderr
    assert active(url)["user5@x.example"] is False
    # Had user5 been protected, the rest is refused, and said so.
    journal.write_text(json.dumps(entry) + "\n")
    tenant.write_text(tenant.read_text().replace("[user4@x.example]", "[user5@x.example]"))
    r = run(root, "apply", "plan.json", "--resume")
    assert r.returncode == 1 and "the rest of this plan is not applied" in r.stderr


def test_allow_and_policies_are_for_a_new_plan_not_a_saved_one(repo: tuple[Path, str]) -> None:
    root, url = repo
    assert run(root, "plan", "--out", "plan.json").returncode == 0
    for flag in (("--allow", "suspensions=1"), ("--policies", "policies")):
        r = run(root, "apply", "plan.json", *flag)
        assert r.returncode == 1
        assert f"{flag[0]} shapes a new plan, and PLAN_FILE was made already" in r.stderr
    assert users(url) == []
