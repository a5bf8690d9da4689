"""History and access from real git repositories built commit by commit."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitops.github_standin import github_standin

REPO_FILES = {
    "ds/tenant.yaml": "url: local:.reconciler/t.db\n",
    "ds/attributes.yaml": (
        "attributes:\n"
        "  - name: department\n"
        "  - name: badgeNumber\n    sensitive: true\n"
        '    scim: {schema: "urn:acme:params:scim:schemas:extension:acme:1.0:User"}\n'
    ),
    "ds/groups.yaml": (
        "groups:\n  - displayName: Sales\n  - displayName: Admins\n"
        "  - displayName: Auditors\n    members: []\n"
    ),
    "ds/rules.yaml": (
        "rules:\n"
        "  - name: Admins\n    priority: 10\n    match: {groups_any: [Admins]}\n"
        "    grants: {role: admin}\n"
        "  - name: Sales\n    priority: 20\n    match: {groups_any: [Sales]}\n"
        "    grants: {role: seller, products: [GoTo Connect]}\n"
        "  - name: Auditors\n    priority: 30\n    match: {groups_any: [Auditors]}\n"
        "    grants: {products: [GoTo Resolve]}\n"
    ),
    "ds/users.yaml": (
        "users:\n"
        "  - userName: alice@x.example\n    externalId: '1'\n    title: Rep\n    groups: [Sales]\n"
        "    attributes: {badgeNumber: B-0001}\n"
        "  - userName: bob@x.example\n    externalId: '2'\n    groups: [Sales, Admins]\n"
    ),
}
CLI = [sys.executable, "-m", "reconciler"]


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


def edit(repo: Path, rel: str, old: str, new: str) -> dict[str, str]:
    text = (repo / rel).read_text()
    assert old in text, (rel, old)
    return {rel: text.replace(old, new)}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, REPO_FILES, "Initial state", "2026-01-01T10:00:00")
    # A direct edit, merged as a squash commit.
    commit(
        tmp_path,
        edit(tmp_path, "ds/users.yaml", "title: Rep", "title: Senior Rep"),
        "Promote Alice (#4)",
        "2026-02-01T10:00:00",
    )
    # A rule priority swap moves Bob's role from Admins to Sales without touching his entry;
    # the same commit edits a rule that neither Alice nor Bob matches.
    rules = REPO_FILES["ds/rules.yaml"].replace("priority: 10", "priority: 40")
    commit(
        tmp_path,
        {"ds/rules.yaml": rules.replace("GoTo Resolve", "GoTo Resolve, GoTo Training")},
        "Sales before Admins (#5)",
        "2026-03-01T10:00:00",
    )
    # A membership change on a branch, merged with a merge commit.
    git(tmp_path, "checkout", "-q", "-b", "admins")
    commit(
        tmp_path,
        edit(tmp_path, "ds/users.yaml", "groups: [Sales]\n", "groups: [Sales, Admins]\n"),
        "Alice joins Admins",
        "2026-04-01T10:00:00",
    )
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
    # A rename with a stable externalId (the group's members list follows it later).
    commit(
        tmp_path,
        edit(tmp_path, "ds/users.yaml", "alice@x.example", "alice.smith@x.example"),
        "Alice married (#7)",
        "2026-05-01T10:00:00",
    )
    # Membership through the group's own members list; a sensitive attribute changes.
    commit(
        tmp_path,
        {
            **edit(tmp_path, "ds/groups.yaml", "members: []", "members: [alice.smith@x.example]"),
            **edit(tmp_path, "ds/users.yaml", "B-0001", "B-0002"),
        },
        "Alice audits (#8)",
        "2026-06-01T10:00:00",
    )
    return tmp_path


def run(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=repo, capture_output=True, text=True, env=env, timeout=120
    )


def history(repo: Path, *args: str) -> list[dict]:
    r = run(repo, "history", "ds", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def test_user_history_follows_effective_access_and_renames(repo: Path) -> None:
    entries = history(repo, "--user", "alice@x.example")
    assert [e["subject"] for e in entries] == [
        "Initial state",
        "Promote Alice (#4)",
        "Merge pull request #6 from acme/admins",
        "Alice married (#7)",
        "Alice audits (#8)",
    ]
    assert [e["pull_request"] for e in entries] == [None, 4, 6, 7, 8]
    assert entries[0]["causes"][0] == "added to desired-state"
    assert "role seller from rule 'Sales' (priority 20) via group Sales" in entries[0]["causes"]
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
    assert len(history(repo, "--user", "ALICE.SMITH@x.example")) == 5


def test_membership_through_a_groups_members_list(repo: Path) -> None:
    audits = history(repo, "--user", "alice.smith@x.example")[-1]
    assert "added to group Auditors (in the group's members list)" in audits["causes"]
    assert (
        "products GoTo Resolve from rule 'Auditors' (priority 30) via group Auditors"
        in (audits["causes"])
    )
    assert {
        "field": "grants.products",
        "before": ["GoTo Connect"],
        "after": ["GoTo Connect", "GoTo Resolve", "GoTo Training"],
    } in audits["changes"]


def test_sensitive_values_are_compared_but_never_shown(repo: Path) -> None:
    for fmt in ("text", "markdown", "json"):
        r = run(repo, "history", "ds", "--user", "alice.smith@x.example", "--format", fmt)
        assert r.returncode == 0, r.stderr
        assert "B-000" not in r.stdout
    audits = history(repo, "--user", "alice.smith@x.example")[-1]
    assert {
        "field": "attributes.badgeNumber",
        "before": "(sensitive)",
        "after": "(sensitive)",
    } in audits["changes"]


def test_rule_priority_swap_shows_on_the_user_it_affects(repo: Path) -> None:
    entries = history(repo, "--user", "bob@x.example")
    swap = next(e for e in entries if e["subject"] == "Sales before Admins (#5)")
    assert swap["changes"] == [{"field": "grants.role", "before": "admin", "after": "seller"}]
    # Only the rules that match Bob are named: the edit to 'Auditors' is not his cause.
    assert swap["causes"] == [
        "rule 'Admins' priority changed (10 → 40)",
        "role seller from rule 'Sales' (priority 20) via group Sales",
        "role admin replaced (it was from rule 'Admins' (priority 10) via group Admins)",
    ]


def test_group_and_rule_history(repo: Path) -> None:
    group = history(repo, "--group", "admins")
    assert [e["subject"] for e in group] == [
        "Initial state",
        "Merge pull request #6 from acme/admins",
        "Alice married (#7)",
    ]
    assert "alice@x.example added" in group[1]["causes"]
    auditors = history(repo, "--group", "Auditors")
    assert "alice.smith@x.example added" in auditors[-1]["causes"]
    rule = history(repo, "--rule", "Admins")
    assert [(e["subject"], e["changes"]) for e in rule][1] == (
        "Sales before Admins (#5)",
        [{"field": "priority", "before": 10, "after": 40}],
    )


def test_text_and_markdown(repo: Path) -> None:
    text = run(repo, "history", "ds", "--user", "bob@x.example").stdout
    assert "  Ann Admin  Sales before Admins (#5)\n    pull request #5\n" in text
    assert "    grants.role: admin → seller\n" in text
    assert "no apply receipt at or after this commit" in text
    md = run(repo, "history", "ds", "--user", "bob@x.example", "--format", "markdown").stdout
    assert md.startswith("### History of user bob@\u2060x.example\n")
    assert "| 2026-03-01 | `" in md and "| #5 | grants.role: admin → seller |" in md
    assert "not applied yet" in md


def test_since(repo: Path) -> None:
    since = history(repo, "--user", "alice@x.example", "--since", "2026-04-01")
    assert [e["pull_request"] for e in since] == [6, 7, 8]
    assert run(
        repo, "history", "ds", "--user", "bob@x.example", "--since", "2030-01-01"
    ).stdout == ("no changes in that period\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("history", "ds", "--user", "nobody@x.example"), "no user 'nobody@x.example'"),
        (("history", "ds", "--group", "Nobody"), "no group 'Nobody'"),
        (("history", "ds", "--rule", "Nobody"), "no rule 'Nobody'"),
        (("history", "ds", "--user", "bob@x.example", "--since", "soon"), "--since 'soon'"),
        (("history", "ds", "--user", "x", "--since", "2026-02-30"), "not a valid date"),
        (("history", "ds", "--user", "x", "--rule", "y"), "exactly one of"),
        (("history", "nowhere", "--user", "x"), "nowhere does not exist"),
        (("history", "ds/users.yaml", "--user", "x"), "is not a directory"),
        (("access", "ds", "--at", "no-such-rev"), "'no-such-rev' is neither a revision"),
        (("access", "ds", "--at", "1999-12-31"), "no commit on or before 1999-12-31"),
        (("access", "ds", "--at", "2026-13-01"), "--at '2026-13-01' is not a valid date"),
        (("access", "ds", "--diff", "HEAD", "nope"), "'nope' is neither a revision"),
        (("access", "ds"), "pass either --at"),
    ],
)
def test_bad_input_is_one_clear_message(repo: Path, args: tuple[str, ...], message: str) -> None:
    r = run(repo, *args)
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_outside_git_and_before_the_directory_existed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    plain = tmp_path_factory.mktemp("plain")
    (plain / "ds").mkdir()
    r = run(plain, "history", "ds", "--user", "x")
    assert r.returncode == 1 and "is not in a git repository" in r.stderr
    assert "Traceback" not in r.stderr
    late = tmp_path_factory.mktemp("late")
    git(late, "init", "-q", "-b", "main")
    commit(late, {"README.md": "docs\n"}, "Docs first", "2025-12-01T10:00:00")
    commit(late, REPO_FILES, "Desired state later", "2026-01-01T10:00:00")
    r = run(late, "access", "ds", "--at", "2025-12-15")
    assert r.returncode == 1 and "ds has no desired state at 2025-12-15" in r.stderr
    assert run(late, "access", "ds", "--at", "2026-01-01").returncode == 0


def test_a_broken_historical_state_is_reported_with_its_problems(repo: Path) -> None:
    commit(
        repo,
        edit(repo, "ds/users.yaml", "groups: [Sales, Admins]\n", "groups: [Nope]\n"),
        "Oops",
        "2026-07-01T10:00:00",
    )
    r = run(repo, "access", "ds", "--at", "HEAD")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "Nope" in r.stderr and "does not load" in r.stderr
    # History reads what it can: the bad reference does not hide the rest.
    assert history(repo, "--user", "bob@x.example")[-1]["subject"] == "Oops"


def test_access_at_a_date_a_revision_and_diff(repo: Path) -> None:
    def access(*args: str) -> str:
        r = run(repo, "access", "ds", *args)
        assert r.returncode == 0, r.stderr
        return r.stdout

    feb = access("--at", "2026-02-15")
    assert "bob@x.example,true,admin,GoTo Connect" in feb
    mar = access("--at", "2026-03-15", "--format", "json")
    users = json.loads(mar)["users"]
    assert users["bob@x.example"]["role"] == "seller"
    assert users["alice@x.example"]["externalId"] == "1"
    at_rev = access("--at", "HEAD~1", "--format", "markdown")
    assert "| alice.smith@\u2060x.example | yes | seller |" in at_rev
    diff = access("--diff", "2026-02-15", "2026-03-15")
    assert diff.splitlines() == [
        "user,change,grant,value",
        "bob@x.example,gains,role,seller",
        "bob@x.example,loses,role,admin",
    ]
    # A rename is matched by externalId: not a loss of everything and a gain elsewhere.
    renamed = access("--diff", "2026-04-15", "2026-05-15", "--format", "json")
    assert json.loads(renamed) == [
        {
            "user": "alice.smith@x.example",
            "change": "renamed from",
            "grant": "userName",
            "value": "alice@x.example",
        }
    ]
    none = access("--diff", "HEAD", "HEAD", "--format", "markdown")
    assert "no access changes" in none


def test_receipts_from_real_applies(repo: Path) -> None:
    """An apply at a commit attaches its receipt; an entry shows the first apply at or after
    its commit (a later apply carries every earlier change)."""

    def apply() -> None:
        r = run(repo, "apply", "--dir", "ds", "--auto-approve")
        assert r.returncode == 0, r.stdout + r.stderr

    assert run(repo, "tenant", "init", "--for", "ds").returncode == 0
    merge = git(repo, "rev-parse", "HEAD~2")  # the merge of pull request #6
    git(repo, "checkout", "-q", merge)
    apply()
    git(repo, "checkout", "-q", "main")
    apply()
    entries = history(repo, "--user", "alice.smith@x.example")
    receipts = [e["receipt"] for e in entries]
    assert receipts[2].startswith("applied ") and f"with {merge[:12]}" not in receipts[2]
    assert "create alice@x.example: ok" in receipts[2]
    assert f"with {merge[:12]}" in receipts[0] and f"with {merge[:12]}" in receipts[1]
    head = git(repo, "rev-parse", "HEAD")
    assert f"with {head[:12]}" in receipts[3] and "rename alice.smith@x.example: ok" in receipts[3]
    assert receipts[4].startswith("applied ") and " with " not in receipts[4]  # at HEAD itself


def test_approvers_from_the_github_api(repo: Path) -> None:
    with github_standin() as (url, state):
        state.tokens = {"t0ken-value": {"pull-requests": "read"}}
        state.reviews[6] = [
            {"user": {"login": "carol"}, "state": "CHANGES_REQUESTED"},
            {"user": {"login": "dave"}, "state": "APPROVED"},
            {"user": {"login": "carol"}, "state": "APPROVED"},
            {"user": {"login": "erin"}, "state": "APPROVED"},
            {"user": {"login": "erin"}, "state": "DISMISSED"},
            {"user": {"login": "frank"}, "state": "COMMENTED"},
        ]
        env = {
            **os.environ,
            "GITHUB_TOKEN": "t0ken-value",
            "GITHUB_API_URL": url,
            "GITHUB_REPOSITORY": "acme/identity",
        }
        r = run(
            repo, "history", "ds", "--user", "alice.smith@x.example", "--format", "json", env=env
        )
        assert r.returncode == 0, r.stderr
        by_pr = {e["pull_request"]: e["approvers"] for e in json.loads(r.stdout)}
        assert by_pr[6] == ["carol", "dave"] and by_pr[4] == []
        text = run(repo, "history", "ds", "--user", "alice.smith@x.example", env=env).stdout
        assert "    pull request #6, approved by carol, dave\n" in text
        r = run(
            repo, "history", "ds", "--user", "bob@x.example", env={**env, "GITHUB_TOKEN": "wrong"}
        )
        assert r.returncode == 0
        assert "warning: approvers not shown" in r.stderr and "401" in r.stderr
        assert "wrong" not in r.stderr + r.stdout and "t0ken" not in r.stderr + r.stdout


def test_history_starts_without_the_other_commands_libraries(repo: Path) -> None:
    code = (
        "import sys\nfrom reconciler.cli import main\n"
        "sys.argv = ['reconciler', 'history', 'ds', '--user', 'bob@x.example']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('httpx', 'jinja2', 'git', 'cel', 'uvicorn') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr


def test_an_attribute_made_sensitive_later_is_masked_in_earlier_entries(repo: Path) -> None:
    commit(
        repo,
        edit(
            repo,
            "ds/users.yaml",
            "  - userName: bob@x.example\n",
            "  - userName: bob@x.example\n    attributes: {department: Ops-7}\n",
        ),
        "Bob's department",
        "2026-07-01T10:00:00",
    )
    commit(
        repo,
        edit(
            repo,
            "ds/attributes.yaml",
            "  - name: department\n",
            "  - name: department\n    sensitive: true\n",
        ),
        "Department is sensitive",
        "2026-07-02T10:00:00",
    )
    out = run(repo, "history", "ds", "--user", "bob@x.example", "--format", "json").stdout
    assert "Ops-7" not in out and '"after": "(sensitive)"' in out


def test_access_csv_cells_never_run_as_spreadsheet_formulas(repo: Path) -> None:
    """Access reviews are opened in a spreadsheet: a value written by a PR author must show
    as text there, not run as a formula."""
    formula = '=HYPERLINK("https://evil.example","x")'
    commit(
        repo,
        edit(
            repo,
            "ds/rules.yaml",
            "grants: {role: seller,",
            f"grants: {{settingsTemplate: '{formula}', role: seller,",
        ),
        "Odd role name",
        "2026-07-01T10:00:00",
    )
    r = run(repo, "access", "ds", "--at", "HEAD")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    [bob] = [row for row in rows if row[0] == "bob@x.example"]
    assert bob[rows[0].index("settingsTemplate")] == "'" + formula
    diff = list(
        csv.reader(io.StringIO(run(repo, "access", "ds", "--diff", "HEAD~1", "HEAD").stdout))
    )
    assert ["bob@x.example", "gains", "settingsTemplate", "'" + formula] in diff
