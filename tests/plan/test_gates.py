"""Safety gates at, below and above their limits; allowances; minimum holders; end to end."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.desired.models import Limit, Safety, Tenant
from reconciler.errors import UsageError
from reconciler.plan.gates import ALL, Loss, check_gates, check_min_holders, parse_allow
from reconciler.plan.model import Plan
from reconciler.plan.rules import Because, EffectiveAccess

REPO = Path(__file__).resolve().parents[2]
PLAN = Plan(tenant_url="local:x", live_users=100)


def measured(**counts: int) -> dict[str, Loss]:
    gates = ("deletions", "suspensions", "membership_removals", "lost_grants", "rule_changes")
    return {
        g: Loss(counts.get(g, 0), 100, tuple(f"u{i}" for i in range(counts.get(g, 0))), "lost")
        for g in gates
    }


@pytest.mark.parametrize(
    ("limit", "count", "allow", "outcome"),
    [
        (Limit(max=5), 4, 0, "pass"),
        (Limit(max=5), 5, 0, "pass"),  # at the limit
        (Limit(max=5), 6, 0, "blocked"),
        (Limit(max_percent=5), 5, 0, "pass"),  # 5 of 100 is 5%
        (Limit(max_percent=5), 6, 0, "blocked"),
        (Limit(max=50, max_percent=5), 6, 0, "blocked"),  # either limit blocks
        (Limit(max=5), 6, 6, "allowed"),
        (Limit(max=5), 7, 6, "blocked"),  # an allowance covers up to N, not more
        (Limit(max=5), 70, ALL, "allowed"),
        (Limit(), 1000, 0, "pass"),  # no limit set
    ],
)
def test_suspension_gate(limit: Limit, count: int, allow: int, outcome: str) -> None:
    diags, used = check_gates(
        PLAN,
        Safety(suspensions=limit),
        {"suspensions": allow} if allow else {},
        measured(suspensions=count),
    )
    if outcome == "pass":
        assert diags == [] and used == []
    elif outcome == "blocked":
        [d] = diags
        assert d.severity == "error" and d.code == "gate"
        assert d.message.startswith(f"safety gate suspensions: {count} would be lost")
        assert not used
        assert f"--allow suspensions={count}" in d.hint
    else:
        [d] = diags
        assert d.severity == "warning" and used[0].gate == "suspensions"


@pytest.mark.parametrize(
    ("count", "allow", "up_to"), [(3, 5, 5), (0, 5, 5), (3, ALL, "all"), (3, 0, 0)]
)
def test_every_allowance_given_is_recorded_also_when_not_needed(
    count: int, allow: int, up_to: object
) -> None:
    """Apply re-checks the gates with tenant.yaml as it is then: an allowance the plan did
    not need must still be in the plan, or a limit tightened since the review refuses what
    the reviewer allowed. Within the limit, it is recorded without a limit and no warning."""
    diags, used = check_gates(
        PLAN,
        Safety(suspensions=Limit(max=5)),
        {"suspensions": allow},
        measured(suspensions=count),
    )
    assert diags == []
    assert [a.model_dump() for a in used] == [
        {"gate": "suspensions", "up_to": up_to, "count": count, "limit": ""}
    ]


@pytest.mark.parametrize(
    "gate", ["deletions", "membership_removals", "lost_grants", "rule_changes"]
)
def test_every_dimension_is_gated(gate: str) -> None:
    diags, _ = check_gates(PLAN, Safety(**{gate: Limit(max=0)}), {}, measured(**{gate: 1}))
    assert [d.subject for d in diags] == [gate]


def test_parse_allow() -> None:
    assert parse_allow(["suspensions=40", "deletions=all,lost-grants=3"]) == {
        "suspensions": 40,
        "deletions": ALL,
        "lost_grants": 3,
    }
    with pytest.raises(UsageError, match="is not GATE=N"):
        parse_allow(["everything"])


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("suspension=1", "suspensions=1"),
        ("membership-removal=3", "membership_removals=3"),
        ("deletion=all", "deletions=all"),
        ("lost_grant", "lost_grants=N"),
    ],
)
def test_a_mistyped_gate_gets_a_did_you_mean(given: str, meant: str) -> None:
    with pytest.raises(UsageError, match="is not GATE=N: no safety gate is called") as err:
        parse_allow([given])
    assert err.value.hint.startswith(f"did you mean {meant}? gates: deletions, suspensions")


def test_min_holders() -> None:
    tenant = Tenant(
        url="local:x", min_holders=[{"grant": "role", "value": "super-admin", "min": 2}]
    )
    admin = EffectiveAccess(single={"role": ("super-admin", Because("Admins", 1, ()))})
    member = EffectiveAccess(single={"role": ("member", Because("All", 9, ()))})
    ok = {"a": admin, "b": admin, "c": member}
    assert check_min_holders(tenant, ok, {}) == []
    [d] = check_min_holders(tenant, ok, {"b": False})  # b would be suspended
    assert (
        d.message == "only 1 user(s) would hold role 'super-admin'; at least 2 must (min_holders)"
    )


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_deleting_a_team_is_blocked_then_allowed(tmp_path: Path) -> None:
    """End to end on the sample state: a PR removes the Sales team's file."""
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@x", "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "sample")
    cli = [sys.executable, "-m", "reconciler"]
    init = [*cli, "tenant", "init", "--for", "desired-state"]
    subprocess.run(init, cwd=tmp_path, check=True, capture_output=True)
    first = subprocess.run(
        [*cli, "apply", "--auto-approve"], cwd=tmp_path, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stdout + first.stderr
    (tmp_path / "desired-state" / "users" / "sales.yaml").unlink()
    for f in (tmp_path / "desired-state").rglob("*.yaml"):  # and the references to them
        text = f.read_text().replace("      - olivia.bennett@acme.example\n", "")
        f.write_text(text)
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qam", "Sales leaves")
    blocked = subprocess.run([*cli, "plan"], cwd=tmp_path, capture_output=True, text=True)
    assert blocked.returncode == 1, blocked.stdout
    assert "error: safety gate suspensions: 8 would be suspended (limit 5)" in blocked.stdout
    assert (
        "olivia.bennett@acme.example" in blocked.stdout
        and "--allow suspensions=8" in blocked.stdout
    )
    # Every lost grant is listed by user, with what that user would lose.
    assert (
        "error: safety gate lost_grants: 53 would be lost by 8 users (limit 20): "
        "chiara.rossi@acme.example (deviceGroups EMEA Desk Phones, Sales Floor Phones; "
        "products GoTo Connect, GoTo Meeting; roles member; settingsTemplate Standard; "
        "userGroup Sales EMEA)"
    ) in blocked.stdout
    allowed = subprocess.run(
        [*cli, "plan", "--allow", "suspensions=8", "--out", "plan.json", "--format", "markdown"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "RECONCILER_ALLOW": "lost_grants=all"},  # as a PR label sets it
    )
    assert allowed.returncode == 0, allowed.stdout
    assert (
        "**Allowed deliberately**: suspensions: 8 (limit 5), allowed up to 8; lost\\_grants: 53 "
        "(limit 20), allowed up to all"
    ) in allowed.stdout
    artifact = json.loads((tmp_path / "plan.json").read_text())
    assert artifact["allowances"] == [
        {"gate": "suspensions", "up_to": 8, "count": 8, "limit": "limit 5"},
        {"gate": "lost_grants", "up_to": "all", "count": 53, "limit": "limit 20"},
    ]
    shown = subprocess.run(
        [*cli, "show", "plan.json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert "Allowed deliberately: suspensions: 8 (limit 5), allowed up to 8" in shown.stdout


def test_min_holders_also_guard_a_partial_plan() -> None:
    """Applying targets one at a time must not strip the last holders either."""
    from reconciler.desired.loader import load_files
    from reconciler.live import LiveState
    from reconciler.plan.build import PlanContext, build_plan
    from reconciler.plan.guard import guard
    from reconciler.plan.rules import evaluate

    root = Path("/s")
    files = {
        root / "tenant.yaml": b"url: https://scim.example/v2\n"
        b"min_holders: [{grant: role, value: admin, min: 2}]\n",
        root / "users.yaml": b"users:\n  - userName: a@x.example\n    groups: [Admins]\n"
        b"  - userName: b@x.example\n",
        root / "groups.yaml": b"groups:\n  - displayName: Admins\n",
        root / "rules.yaml": b"rules:\n  - name: Admins\n    priority: 1\n"
        b"    match: {groups_any: [Admins]}\n    grants: {role: admin}\n",
    }
    state = load_files(root, files).state
    assert state is not None
    live = LiveState("https://scim.example/v2", (), ())
    ctx = PlanContext(now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), targets=("b@x.example",))
    plan = guard(build_plan(state, live, ctx), state, evaluate(state))
    assert plan.partial and plan.blocked
    assert [d.code for d in plan.diagnostics if d.severity == "error"] == ["min-holders"]
