"""History and access from real git repositories built commit by commit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_FILES = {
    "ds/tenant.yaml": "url: local:t.db\n",
    "ds/groups.yaml": "groups:\n  - displayName: Sales\n  - displayName: Admins\n",
    "ds/rules.yaml": (
        "rules:\n"
        "  - name: Admins\n    priority: 10\n    match: {groups_any: [Admins]}\n"
        "    grants: {role: admin}\n"
        "  - name: Sales\n    priority: 20\n    match: {groups_any: [Sales]}\n"
        "    grants: {role: seller, products: [GoTo Connect]}\n"
    ),
    "ds/users.yaml": (
        "users:\n"
        "  - userName: alice@x.example\n    externalId: '1'\n    title: Rep\n    groups: [Sales]\n"
        "  - userName: bob@x.example\n    externalId: '2'\n    groups: [Sales, Admins]\n"
    ),
}


def git(cwd: Path, *args: str, date: str = "2026-01-01T10:00:00") -> str:
    env = {
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
    }
    return subprocess.run(
        ["git", "-c", "user.name=Ann Admin", "-c", "user.email=ann@x.example", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str, date: str) -> str:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message, date=date)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, REPO_FILES, "Initial state", "2026-01-01T10:00:00")
    users = REPO_FILES["ds/users.yaml"]
    # A direct edit, merged as a squash commit.
    commit(
        tmp_path,
        {"ds/users.yaml": users.replace("title: Rep", "title: Senior Rep")},
        "Promote Alice (#4)",
        "2026-02-01T10:00:00",
    )
    # A rule priority swap moves Bob's role from Admins to Sales without touching his entry.
    rules = REPO_FILES["ds/rules.yaml"].replace("priority: 10", "priority: 30")
    commit(tmp_path, {"ds/rules.yaml": rules}, "Sales before Admins (#5)", "2026-03-01T10:00:00")
    # A membership change on a branch, merged with a merge commit.
    git(tmp_path, "checkout", "-q", "-b", "admins")
    users2 = (
        (tmp_path / "ds/users.yaml")
        .read_text()
        .replace(
            "title: Senior Rep\n    groups: [Sales]",
            "title: Senior Rep\n    groups: [Sales, Admins]",
        )
    )
    commit(tmp_path, {"ds/users.yaml": users2}, "Alice joins Admins", "2026-04-01T10:00:00")
    git(tmp_path, "checkout", "-q", "main")
    git(
        tmp_path,
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge pull request #6 from acme/admins",
        "admins",
        date="2026-04-02T10:00:00",
    )
    # A rename with a stable externalId.
    users3 = (
        (tmp_path / "ds/users.yaml").read_text().replace("alice@x.example", "alice.smith@x.example")
    )
    commit(tmp_path, {"ds/users.yaml": users3}, "Alice married (#7)", "2026-05-01T10:00:00")
    return tmp_path


def history(repo: Path, *args: str) -> list[dict]:
    r = subprocess.run(
        [sys.executable, "-m", "reconciler", "history", "ds", *args, "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def test_user_history_follows_effective_access_and_renames(repo: Path) -> None:
    entries = history(repo, "--user", "alice@x.example")
    subjects = [e["subject"] for e in entries]
    assert subjects == [
        "Initial state",
        "Promote Alice (#4)",
        "Merge pull request #6 from acme/admins",
        "Alice married (#7)",
    ]
    assert [e["pull_request"] for e in entries] == [None, 4, 6, 7]
    promote = entries[1]
    assert promote["changes"] == [{"field": "title", "before": "Rep", "after": "Senior Rep"}]
    assert promote["causes"] == ["title changed"]
    joined = entries[2]
    assert "added to group Admins" in joined["causes"]
    assert {"field": "groups", "before": ["Sales"], "after": ["Admins", "Sales"]} in joined[
        "changes"
    ]
    renamed = entries[3]
    assert renamed["changes"] == [
        {"field": "userName", "before": "alice@x.example", "after": "alice.smith@x.example"}
    ]
    # The new name finds the same history.
    assert len(history(repo, "--user", "alice.smith@x.example")) == 4


def test_rule_priority_swap_shows_on_the_user_it_affects(repo: Path) -> None:
    entries = history(repo, "--user", "bob@x.example")
    swap = next(e for e in entries if e["subject"] == "Sales before Admins (#5)")
    assert swap["changes"] == [{"field": "grants.role", "before": "admin", "after": "seller"}]
    assert "rule 'Admins' priority changed (10 → 30)" in swap["causes"]
    assert "role seller from rule 'Sales' (priority 20) via group Sales" in swap["causes"]


def test_group_and_rule_history(repo: Path) -> None:
    group = history(repo, "--group", "Admins")
    assert [e["subject"] for e in group] == [
        "Initial state",
        "Merge pull request #6 from acme/admins",
        "Alice married (#7)",
    ]
    assert "alice@x.example added" in group[1]["causes"]
    rule = history(repo, "--rule", "Admins")
    assert [(e["subject"], e["changes"]) for e in rule][1] == (
        "Sales before Admins (#5)",
        [{"field": "priority", "before": 10, "after": 30}],
    )


def test_since_and_unknown_user(repo: Path) -> None:
    assert [
        e["pull_request"]
        for e in history(repo, "--user", "alice@x.example", "--since", "2026-04-01")
    ] == [6, 7]
    r = subprocess.run(
        [sys.executable, "-m", "reconciler", "history", "ds", "--user", "nobody@x.example"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert (
        r.returncode == 1
        and "no user 'nobody@x.example'" in r.stderr
        and "Traceback" not in r.stderr
    )


def test_access_at_a_date_and_diff(repo: Path) -> None:
    def access(*args: str) -> str:
        r = subprocess.run(
            [sys.executable, "-m", "reconciler", "access", "ds", *args],
            cwd=repo,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    feb = access("--at", "2026-02-15")
    assert "bob@x.example,True,admin,GoTo Connect" in feb
    mar = access("--at", "2026-03-15", "--format", "json")
    users = json.loads(mar)["users"]
    assert users["bob@x.example"]["role"] == "seller"
    diff = access("--diff", "2026-02-15", "2026-03-15")
    assert diff.splitlines() == [
        "user,change,grant,value",
        "bob@x.example,gains,role,seller",
        "bob@x.example,loses,role,admin",
    ]
