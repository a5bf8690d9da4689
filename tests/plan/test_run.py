"""The I/O edge of a plan, on real git repositories in temporary folders: removal dates for
grace periods (committed and not yet committed), the --base of the rule_changes gate, and the
tenant URL given on the command line."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from reconciler.desired.loader import load
from reconciler.errors import UsageError
from reconciler.gitops.removals import (
    removal_dates,
    removals,
    rule_changes,
    shallow,
    uncommitted,
)
from reconciler.plan.run import tenant_url

USER = "  - userName: {name}\n    externalId: '{n}'\n"
RULE = (
    "  - name: R{n}\n    priority: {n}\n    match: {{groups_any: [G]}}\n"
    "    grants: {{role: r{n}}}\n"
)


def git(root: Path, *args: str, when: dt.datetime | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    return subprocess.run(
        ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def write_state(root: Path, users: list[str], rules: int = 1) -> Path:
    ds = root / "desired-state"
    ds.mkdir(parents=True, exist_ok=True)
    (ds / "tenant.yaml").write_text("url: https://scim.example/v2\n")
    (ds / "users.yaml").write_text(
        "users:\n" + "".join(USER.format(name=u, n=i) for i, u in enumerate(users))
    )
    (ds / "groups.yaml").write_text("groups:\n  - displayName: G\n")
    (ds / "rules.yaml").write_text("rules:\n" + "".join(RULE.format(n=i + 1) for i in range(rules)))
    return ds


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    write_state(tmp_path, ["alice@x.example", "bob@x.example", "carol@x.example"])
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "three", when=T0)
    return tmp_path


def test_removal_is_dated_by_the_commit_that_removed_it(repo: Path) -> None:
    ds = write_state(repo, ["alice@x.example", "carol@x.example"])
    git(repo, "commit", "-qam", "bob leaves", when=T0 + dt.timedelta(days=5))
    sha = git(repo, "rev-parse", "HEAD")
    # A later commit that does not touch bob does not move the date.
    write_state(repo, ["alice@x.example", "carol@x.example", "dan@x.example"])
    git(repo, "commit", "-qam", "dan joins", when=T0 + dt.timedelta(days=9))
    found = removal_dates(ds, {"alice@x.example", "carol@x.example", "dan@x.example"})
    assert list(found) == ["bob@x.example"]
    assert found["bob@x.example"].when == T0 + dt.timedelta(days=5)
    assert found["bob@x.example"].commit == sha


def test_a_removal_not_committed_yet_counts_from_now(repo: Path) -> None:
    ds = write_state(repo, ["alice@x.example", "bob@x.example"])  # carol: edited out, no commit
    now = T0 + dt.timedelta(days=30)
    found = removal_dates(ds, {"alice@x.example", "bob@x.example"}, now)
    assert found["carol@x.example"].when == now and found["carol@x.example"].commit == ""


def test_a_removal_knows_the_externalid_the_entry_had(repo: Path) -> None:
    ds = write_state(repo, ["alice@x.example", "carol@x.example"])
    git(repo, "commit", "-qam", "bob leaves", when=T0 + dt.timedelta(days=5))
    # carol's file goes too, not committed yet: her entry is read from HEAD.
    (ds / "users.yaml").write_text("users:\n" + USER.format(name="alice@x.example", n=0))
    found = removal_dates(ds, {"alice@x.example"})
    # write_state numbers externalIds by position: bob was '1' before he left, carol '1' after.
    assert found["bob@x.example"].external_id == "1"
    assert found["carol@x.example"].external_id == "1"
    assert found["carol@x.example"].commit == ""
    # A whole users file deleted, in a folder of its own.
    (ds / "users.yaml").unlink()
    sub = ds / "users"
    sub.mkdir()
    (sub / "team.yaml").write_text("users:\n  - userName: dan@x.example\n    externalId: E9\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "dan joins, in users/", when=T0 + dt.timedelta(days=6))
    (sub / "team.yaml").unlink()
    git(repo, "commit", "-qam", "dan leaves", when=T0 + dt.timedelta(days=7))
    # Flow style, and an externalId after a nested list.
    (sub / "team.yaml").write_text(
        'users:\n  - {userName: erin@x.example, externalId: "E 10"}  # erin\n'
        "  - userName: finn@x.example\n    emails:\n      - finn@x.example\n"
        "    externalId: E11\n"
        "  - userName: gus@x.example\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "erin, finn and gus join", when=T0 + dt.timedelta(days=8))
    (sub / "team.yaml").write_text("users: []\n")
    found = removal_dates(ds, set())
    assert found["dan@x.example"].external_id == "E9"
    assert found["alice@x.example"].external_id == "0"
    assert found["erin@x.example"].external_id == "E 10"
    assert found["finn@x.example"].external_id == "E11"
    assert found["gus@x.example"].external_id is None


def test_a_user_moved_or_rewritten_in_one_commit_is_not_removed(repo: Path) -> None:
    ds = repo / "desired-state"
    # carol moves to a file of her own, in flow style, with a quoted key.
    write_state(repo, ["alice@x.example", "bob@x.example"])
    (ds / "carol.yaml").write_text('users:\n  - {"userName": carol@x.example}\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "carol moves", when=T0 + dt.timedelta(days=1))
    present = {"alice@x.example", "bob@x.example", "carol@x.example"}
    assert removal_dates(ds, present) == {}
    # …and leaves later: dated by that commit, not by the move.
    (ds / "carol.yaml").unlink()
    git(repo, "commit", "-qam", "carol leaves", when=T0 + dt.timedelta(days=3))
    found = removal_dates(ds, present - {"carol@x.example"})
    assert found["carol@x.example"].when == T0 + dt.timedelta(days=3)


def test_a_removal_merged_from_a_branch_counts_from_the_merge(repo: Path) -> None:
    git(repo, "checkout", "-qb", "offboard-bob")
    ds = write_state(repo, ["alice@x.example", "carol@x.example"])
    git(repo, "commit", "-qam", "bob leaves", when=T0 + dt.timedelta(days=1))
    git(repo, "checkout", "-q", "main")
    git(
        repo,
        "merge",
        "-q",
        "--no-ff",
        "offboard-bob",
        "-m",
        "Merge #7",
        when=T0 + dt.timedelta(days=30),
    )
    merge = git(repo, "rev-parse", "HEAD")
    found = removal_dates(ds, {"alice@x.example", "carol@x.example"})
    assert found["bob@x.example"].commit == merge
    assert found["bob@x.example"].when == T0 + dt.timedelta(days=30)


def test_group_removals_are_read_from_the_groups_section(repo: Path) -> None:
    """Groups are told by the top-level groups: list they were removed from: block or flow
    style, quoted or with spaces, a whole file; a user's displayName edit, a group moved to
    another file, or a member taken off a group removes no group."""
    ds = repo / "desired-state"
    people = (
        "users:\n  - userName: ann@x.example\n    displayName: Sales Ops\n"
        "    groups: [Sales EMEA]\n"
    )
    (ds / "people.yaml").write_text(people)
    (ds / "groups.yaml").write_text(
        "# the directory's groups\ngroups:\n  - displayName: G\n    members: [carol@x.example]\n"
        "  - displayName: Sales EMEA\n    externalId: grp-3\n    members: [bob@x.example]\n"
        '  - {displayName: "Ops, Night", externalId: 7}\n'
        "  - displayName: Moved\n"
    )
    (ds / "old.yaml").write_text("groups:\n  - displayName: Legacy\n    externalId: L1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "groups", when=T0 + dt.timedelta(days=1))
    # One commit: Sales EMEA and "Ops, Night" go, Moved moves, a member and a user's
    # displayName change.
    (ds / "people.yaml").write_text(
        people.replace("Sales Ops", "Sales Lead").replace("[Sales EMEA]", "[]")
    )
    (ds / "groups.yaml").write_text("# the directory's groups\ngroups:\n  - displayName: G\n")
    (ds / "moved.yaml").write_text("groups:\n  - {displayName: Moved}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "reorganise", when=T0 + dt.timedelta(days=2))
    sha = git(repo, "rev-parse", "HEAD")
    (ds / "old.yaml").unlink()  # not committed yet: counts from now
    now = T0 + dt.timedelta(days=3)
    users = {"alice@x.example", "bob@x.example", "carol@x.example", "ann@x.example"}
    found = removals(ds, users, {"g": None, "moved": None}, now)
    assert found.users == {}
    assert sorted(found.groups) == ["legacy", "ops, night", "sales emea"]
    assert found.groups["sales emea"].commit == sha
    assert found.groups["sales emea"].when == T0 + dt.timedelta(days=2)
    assert found.groups["sales emea"].external_id == "grp-3"
    assert found.groups["ops, night"].external_id == "7"
    assert (found.groups["legacy"].commit, found.groups["legacy"].when) == ("", now)
    assert found.groups["legacy"].external_id == "L1"
    # Groups not looked for: none found.
    assert removals(ds, users, None, now).groups == {}


def test_group_removals_in_other_layouts_and_what_is_not_a_removal(repo: Path) -> None:
    """Flow-style files, quoted keys, unindented lists, padded names; a group renamed in place
    is not removed, a group moved into a flow-style file is not removed by the move, and a
    name given to another group (another externalId) in the same commit is a removal."""
    ds = repo / "desired-state"
    (ds / "groups.yaml").write_text(
        'groups:\n- displayName: G\n- displayName: "  Padded  "\n  externalId: p1\n'
        "- displayName: Renamed\n  externalId: r1\n- displayName: Mover\n  externalId: m1\n"
        "- displayName: Reused\n  externalId: old-1\n- displayName: Taker\n  externalId: new-1\n"
    )
    (ds / "flow.yaml").write_text("{groups: [\n  {displayName: Chess Club, externalId: c1},\n]}\n")
    (ds / "quoted.yaml").write_text('"groups":\n  - "displayName": Quoted\n    externalId: q1\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "groups", when=T0 + dt.timedelta(days=1))
    # Renamed keeps its externalId; Mover moves into a flow-style file; Taker takes Reused's
    # name; the others go.
    (ds / "groups.yaml").write_text(
        "groups:\n- displayName: G\n- displayName: Renamed Now\n  externalId: r1\n"
        "- displayName: Reused\n  externalId: new-1\n"
    )
    (ds / "moved.yaml").write_text('{groups: [{"displayName": "Mover", externalId: m1}]}\n')
    (ds / "flow.yaml").write_text("{groups: [\n]}\n")
    (ds / "quoted.yaml").write_text('"groups": []\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "reorganise", when=T0 + dt.timedelta(days=2))
    present = {"g": None, "renamed now": "r1", "reused": "new-1", "mover": "m1"}
    found = removals(ds, {"alice@x.example", "bob@x.example", "carol@x.example"}, present)
    assert sorted(found.groups) == ["chess club", "padded", "quoted", "reused"]
    assert found.groups["reused"].external_id == "old-1"
    assert found.groups["chess club"].external_id == "c1"
    # Mover leaves its flow-style file later: dated by that commit, not by the move.
    (ds / "moved.yaml").write_text("{groups: []}\n")
    git(repo, "commit", "-qam", "Mover goes", when=T0 + dt.timedelta(days=9))
    del present["mover"]
    found = removals(ds, {"alice@x.example", "bob@x.example", "carol@x.example"}, present)
    assert found.groups["mover"].when == T0 + dt.timedelta(days=9)


def test_a_shallow_clone_is_told(repo: Path, tmp_path: Path) -> None:
    ds = write_state(repo, ["alice@x.example", "carol@x.example"])
    git(repo, "commit", "-qam", "bob leaves")
    assert not shallow(ds)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    assert shallow(clone / "desired-state")
    assert not shallow(tmp_path / "nowhere")


def test_the_reconcilers_own_folder_is_not_an_uncommitted_change(tmp_path: Path) -> None:
    """desired-state at the top of its repository: .reconciler/ (journal, lock, a local
    tenant) lives inside it."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "tenant.yaml").write_text("url: local:.reconciler/tenant.db\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    (tmp_path / ".reconciler" / "journal").mkdir(parents=True)
    (tmp_path / ".reconciler" / "journal" / "x.jsonl").write_text("{}\n")
    (tmp_path / ".reconciler" / "tenant.db").write_text("")
    assert not uncommitted(tmp_path)
    (tmp_path / "users.yaml").write_text("users: []\n")
    assert uncommitted(tmp_path)


def test_a_re_added_user_is_not_removed(repo: Path) -> None:
    ds = write_state(repo, ["alice@x.example", "carol@x.example"])
    git(repo, "commit", "-qam", "bob leaves", when=T0 + dt.timedelta(days=1))
    write_state(repo, ["alice@x.example", "bob@x.example", "carol@x.example"])
    git(repo, "commit", "-qam", "bob is back", when=T0 + dt.timedelta(days=2))
    assert removal_dates(ds, {"alice@x.example", "bob@x.example", "carol@x.example"}) == {}


def test_outside_git_nothing_is_known(tmp_path: Path) -> None:
    ds = write_state(tmp_path, ["alice@x.example"])
    assert removal_dates(ds, set()) == {}


def test_rule_changes_since_base(repo: Path) -> None:
    ds = write_state(repo, ["alice@x.example", "bob@x.example", "carol@x.example"], rules=3)
    state = load(ds).state
    assert state is not None
    assert rule_changes(ds, "main", state.rules) == ("R2", "R3")
    assert rule_changes(ds, None, state.rules) == ()


def test_a_bad_base_is_an_error_not_an_open_gate(repo: Path) -> None:
    ds = repo / "desired-state"
    state = load(ds).state
    assert state is not None
    with pytest.raises(UsageError, match="--base 'origin/mian' is not a revision"):
        rule_changes(ds, "origin/mian", state.rules)


def test_a_bad_base_outside_git_is_an_error(tmp_path: Path) -> None:
    ds = write_state(tmp_path, ["alice@x.example"])
    state = load(ds).state
    assert state is not None
    with pytest.raises(UsageError, match="not in a git repository"):
        rule_changes(ds, "main", state.rules)


def test_a_tenant_url_with_credentials_is_refused_without_echoing_it(tmp_path: Path) -> None:
    state = load(write_state(tmp_path, ["alice@x.example"])).state
    assert state is not None
    with pytest.raises(UsageError) as err:
        tenant_url(state, "https://admin:hunter2@scim.example/v2")
    assert "hunter2" not in str(err.value) and "hunter2" not in err.value.hint
    assert "carries credentials" in str(err.value)
    for url in (
        "https://scim.example/v2?access_token=hunter2",
        "https://scim.example/v2;jsessionid=hunter2",
        "https://scim.example/v2#hunter2",
    ):
        with pytest.raises(UsageError) as err:
            tenant_url(state, url)
        assert "hunter2" not in str(err.value) and "hunter2" not in err.value.hint
        assert "has a query string, fragment or ;parameters" in str(err.value)
    assert tenant_url(state, "https://other.example/v2") == "https://other.example/v2"


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://127.0.0.1:18600:x/v2", "https://h.example:99999/v2", "http://:80/v2"],
)
def test_a_tenant_url_whose_host_or_port_cannot_be_read_is_a_usage_error(
    tmp_path: Path, url: str
) -> None:
    """Not a traceback from the HTTP client; and validate says so of tenant.yaml too."""
    ds = write_state(tmp_path, ["alice@x.example"])
    state = load(ds).state
    assert state is not None
    with pytest.raises(UsageError, match="not a tenant URL"):
        tenant_url(state, url)
    (ds / "tenant.yaml").write_text(f"url: '{url}'\n")
    result = load(ds)
    assert not result.ok
    [d] = result.diagnostics
    assert d.message.startswith("not a tenant URL") and d.line == 1


def test_an_upper_case_scheme_is_a_tenant_url(tmp_path: Path) -> None:
    """`--tenant HTTP://…` names the tenant `http://…` does (the scheme is case-insensitive);
    the plan keeps the URL as it was written."""
    ds = write_state(tmp_path, ["alice@x.example"])
    state = load(ds).state
    assert state is not None
    assert tenant_url(state, "HTTP://127.0.0.1:8/v2") == "HTTP://127.0.0.1:8/v2"
    (ds / "tenant.yaml").write_text("url: HTTPS://scim.example/v2\n")
    assert load(ds).ok


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_tenant_is_a_usage_error_not_the_default_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    """`--tenant "$TENANT_URL"` with the variable unset names no tenant: it must not fall
    back to RECONCILER_TENANT_URL or tenant.yaml's url."""
    monkeypatch.setenv("RECONCILER_TENANT_URL", "https://default.example/v2")
    state = load(write_state(tmp_path, ["alice@x.example"])).state
    assert state is not None
    with pytest.raises(UsageError, match="--tenant needs a tenant URL, and was given an empty"):
        tenant_url(state, empty)
    assert tenant_url(state, None) == "https://default.example/v2"
