"""A group removed from git, end to end: a real git repository, the embedded tenant served
over loopback, the CLI in a subprocess. Emptied first, deleted once its grace period (dated
by the commit that removed it) is over, then nothing left to do."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.apply.conftest import write_state
from tests.servers import serve_embedded

CLI = [sys.executable, "-m", "reconciler"]
TOKEN = "tok-group-lifecycle-5e1f"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "TEST_TENANT_TOKEN": TOKEN}
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True)


def git(cwd: Path, *args: str, when: dt.datetime | None = None) -> str:
    env = {**os.environ}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def applied(tmp_path: Path, url: str, users: int, tenant: str = "") -> Path:
    """A git repository of ``users`` users in three teams, committed and applied to the
    tenant at ``url``; its root."""
    root = tmp_path / "repo"
    ds = root / "desired-state"
    write_state(ds, users, groups=3)
    (ds / "tenant.yaml").write_text(
        f"url: {url}\nprofile: generic\nauth: {{type: bearer, token_env: TEST_TENANT_TOKEN}}\n"
        + tenant
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Ada Admin")
    git(root, "config", "user.email", "ada@acme.example")
    git(root, "add", ".")
    git(root, "commit", "-qm", "Describe the tenant")
    assert run(root, "apply", "--auto-approve").returncode == 0
    return root


def groups(url: str) -> dict[str, list[str]]:
    """Every group in the tenant: displayName → its members' ids."""
    found = httpx.get(f"{url}/Groups", headers=HEADERS).json().get("Resources") or []
    return {g["displayName"]: sorted(m["value"] for m in g.get("members") or []) for g in found}


def test_a_group_removed_from_git_is_emptied_then_deleted_after_its_grace_period(
    tmp_path: Path,
) -> None:
    with serve_embedded(tmp_path / "t.db", token=TOKEN) as url:
        root = applied(tmp_path, url, 4, "lifecycle: {delete_after: 21d}\n")
        ds = root / "desired-state"
        assert len(groups(url)["Team 2"]) == 1  # user2

        # Team 2 leaves git (with user2's membership), in a commit made 5 days ago.
        state = ds / "state.yaml"
        text = state.read_text()
        state.write_text(
            text.replace("  - displayName: Team 2\n    externalId: g2\n", "").replace(
                "groups: [Team 2]", "groups: []"
            )
        )
        now = dt.datetime.now(dt.UTC)
        git(root, "commit", "-qam", "Team 2 is no more", when=now - dt.timedelta(days=5))
        sha = git(root, "rev-parse", "HEAD")[:10]
        since = (
            f"group removed from desired-state in {sha} on {(now - dt.timedelta(days=5)).date()}"
        )

        plan = run(root, "plan", "--detailed-exitcode")
        assert plan.returncode == 2, plan.stdout + plan.stderr
        assert "- remove member Group Team 2" in plan.stdout
        deadline = (now + dt.timedelta(days=16)).date()
        assert f"# {since}; deleted after {deadline}" in plan.stdout
        assert "- members: user2@x.example" in plan.stdout
        assert "drift" not in plan.stdout
        assert run(root, "apply", "--auto-approve").returncode == 0
        assert groups(url)["Team 2"] == []
        # Emptied, within its grace period: nothing more to do yet.
        assert run(root, "plan", "--detailed-exitcode").returncode == 0

        # The same removal, dated 30 days ago (history rewritten): its grace period is over.
        git(
            root,
            "commit",
            "-q",
            "--amend",
            "--no-edit",
            "--date",
            (now - dt.timedelta(days=30)).isoformat(),
            when=now - dt.timedelta(days=30),
        )
        plan = run(root, "plan", "--detailed-exitcode")
        assert plan.returncode == 2, plan.stdout + plan.stderr
        assert "- delete Group Team 2" in plan.stdout
        assert "grace period 21d is over" in plan.stdout
        assert run(root, "apply", "--auto-approve").returncode == 0
        assert sorted(groups(url)) == ["Team 0", "Team 1"]
        final = run(root, "plan", "--detailed-exitcode")
        assert final.returncode == 0, final.stdout
        assert "No changes. The tenant matches desired-state." in final.stdout


def test_a_partial_plan_moves_the_targeted_user_out_of_groups_it_left(tmp_path: Path) -> None:
    """`--target USER` (provision on demand): the user leaves the groups it left in git, a
    removed group included, and nobody else is touched; the full plan then holds the rest."""
    with serve_embedded(tmp_path / "t.db", token=TOKEN) as url:
        root = applied(tmp_path, url, 6)  # Team 0: user0, user3; Team 1: 1, 4; Team 2: 2, 5
        ds = root / "desired-state"
        found = httpx.get(f"{url}/Users", headers=HEADERS).json()["Resources"]
        ids = {u["userName"].split("@")[0]: u["id"] for u in found}

        # Everyone leaves Team 0 (and its rule's grants) for Team 1; Team 2 leaves git.
        state = ds / "state.yaml"
        text = state.read_text().replace("  - displayName: Team 2\n    externalId: g2\n", "")
        text = text.replace("groups: [Team 0]", "groups: [Team 1]")
        state.write_text(text.replace("groups: [Team 2]", "groups: []"))
        git(root, "commit", "-qam", "Team 0 moves to Team 1; Team 2 is no more")

        for user, team in (("user0", "Team 0"), ("user5", "Team 2")):
            plan = run(root, "plan", "--target", f"{user}@x.example", "--out", f"{user}.json")
            assert plan.returncode == 0, plan.stdout + plan.stderr
            assert f"- remove member Group {team}" in plan.stdout, plan.stdout
            assert f"- members: {user}@x.example\n" in plan.stdout, plan.stdout
            assert ("- products GoTo Meeting: user0@x.example" in plan.stdout) is (user == "user0")
            done = run(root, "apply", f"{user}.json", "--auto-approve")
            assert done.returncode == 0, done.stdout + done.stderr
        after = groups(url)
        assert after["Team 0"] == [ids["user3"]]  # user3 was not targeted
        assert after["Team 1"] == sorted(ids[u] for u in ("user0", "user1", "user4"))
        assert after["Team 2"] == [ids["user2"]]  # kept until a full plan, or its own target

        full = run(root, "plan", "--detailed-exitcode")
        assert full.returncode == 2
        assert "- remove member Group Team 0" in full.stdout
        assert "- members: user3@x.example\n" in full.stdout
        assert "- products GoTo Meeting: user3@x.example\n" in full.stdout
        assert "- members: user2@x.example\n" in full.stdout
        assert "user0" not in full.stdout and "user5" not in full.stdout
