"""Safety gates at, below and above their limits; allowances; minimum holders; end to end."""

from __future__ import annotations

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
        assert f"--allow suspensions={count}" in d.hint
    else:
        [d] = diags
        assert d.severity == "warning" and used[0].gate == "suspensions"


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
    allowed = subprocess.run(
        [*cli, "plan", "--allow", "suspensions=8", "--allow", "lost_grants=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert allowed.returncode == 0, allowed.stdout
    assert "allowed deliberately up to 8" in allowed.stdout
