"""Policies: loading, compile errors with positions, and every sample policy passing and failing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.desired.loader import load
from reconciler.policy import evaluate_state, load_policies
from reconciler.policy.evaluate import evaluate, fields_used
from reconciler.policy.subjects import EMPTY_GRANTS

REPO = Path(__file__).resolve().parents[2]
SAMPLE_POLICIES = REPO / "policies"
TENANT = {"verified_domains": ["acme.example"], "profile": "goto", "protected": [], "url": "x"}


def user(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "userName": "a@acme.example",
        "externalId": "",
        "displayName": "",
        "title": "",
        "userType": "",
        "active": True,
        "emails": ["a@acme.example"],
        "manager": "",
        "groups": [],
        "attributes": {"employmentType": "employee", "employeeNumber": "1", "costCenter": "C"},
        "grants": dict(EMPTY_GRANTS),
    }
    base.update(kw)
    return base


def grants(**kw: Any) -> dict[str, Any]:
    return {**EMPTY_GRANTS, **kw}


CONTRACTOR = {"employmentType": "contractor"}

# (policy, subject kind, subject data, passes?)
CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    ("email-in-verified-domain", "user", user(), True),
    ("email-in-verified-domain", "user", user(emails=["A@ACME.EXAMPLE"]), True),
    ("email-in-verified-domain", "user", user(emails=["a@gmail.com"]), False),
    ("employees-have-number-and-cost-center", "user", user(), True),
    ("employees-have-number-and-cost-center", "user", user(attributes=CONTRACTOR), True),
    (
        "employees-have-number-and-cost-center",
        "user",
        user(attributes={"employmentType": "employee", "costCenter": "C"}),
        False,
    ),
    (
        "employees-have-number-and-cost-center",
        "user",
        user(userType="service", attributes={"employmentType": "employee"}),
        True,
    ),
    ("contractors-no-admin-role", "user", user(attributes=CONTRACTOR), True),
    (
        "contractors-no-admin-role",
        "user",
        user(attributes=CONTRACTOR, grants=grants(role="member")),
        True,
    ),
    (
        "contractors-no-admin-role",
        "user",
        user(attributes=CONTRACTOR, grants=grants(role="super-admin")),
        False,
    ),
    (
        "contractors-no-admin-role",
        "user",
        user(attributes=CONTRACTOR, grants=grants(roles=["admin"])),
        False,
    ),
    ("contractors-no-admin-role", "user", user(grants=grants(role="admin")), True),
    ("admins-in-admin-group", "user", user(grants=grants(role="member")), True),
    (
        "admins-in-admin-group",
        "user",
        user(groups=["IT Admins"], grants=grants(role="super-admin")),
        True,
    ),
    ("admins-in-admin-group", "user", user(groups=["Sales"], grants=grants(role="admin")), False),
    (
        "no-product-for-everyone",
        "rule",
        {"name": "r", "grants": grants(products=["GoTo Meeting"]), "matched": 9, "population": 10},
        True,
    ),
    (
        "no-product-for-everyone",
        "rule",
        {"name": "r", "grants": grants(products=["GoTo Meeting"]), "matched": 10, "population": 10},
        False,
    ),
    (
        "no-product-for-everyone",
        "rule",
        {"name": "r", "grants": grants(role="member"), "matched": 10, "population": 10},
        True,
    ),
    ("groups-have-descriptions", "group", {"displayName": "G", "description": "why"}, True),
    ("groups-have-descriptions", "group", {"displayName": "G", "description": ""}, False),
]


@pytest.mark.parametrize(("name", "kind", "data", "passes"), CASES)
def test_sample_policy(name: str, kind: str, data: dict[str, Any], passes: bool) -> None:
    ps = load_policies(SAMPLE_POLICIES)
    assert not ps.diagnostics
    [policy] = [p for p in ps.policies if p.policy.name == name]
    violations = evaluate([policy], [("subject", data, None)], kind, TENANT)
    assert (not violations) is passes, violations
    for v in violations:
        assert "?" not in v.message, "every message placeholder resolves"


def test_every_sample_policy_is_covered_both_ways() -> None:
    names = {p.policy.name for p in load_policies(SAMPLE_POLICIES).policies}
    assert names == {c[0] for c in CASES if c[3]} == {c[0] for c in CASES if not c[3]}


def test_sample_state_passes_sample_policies() -> None:
    state = load(REPO / "desired-state").state
    assert state is not None
    assert evaluate_state(load_policies(SAMPLE_POLICIES), state) == []


def write_policy(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "policies"
    d.mkdir(exist_ok=True)
    (d / "p.yaml").write_text(body)
    return d


BROKEN = [
    (
        "policies:\n  - name: p\n    subject: user\n    expression: user.userName ==\n",
        4,
        17,
        "policy 'p': CEL syntax error in 'user.userName ==': ERROR: <input>:1:17: Syntax error:",
    ),
    (
        "policies:\n  - name: p\n    subject: user\n    expression: usr.userName == ''\n",
        4,
        17,
        "policy 'p' uses unknown variable 'usr'",
    ),
    (
        "policies:\n  - name: p\n    subject: group\n    expression: user.userName == ''\n",
        4,
        17,
        "policy 'p' uses unknown variable 'user'",
    ),
    (
        "policies:\n  - name: p\n    subject: users\n    expression: 'true'\n",
        3,
        14,
        "policies[0].subject must be one of 'user', 'group', 'rule', 'change' or 'plan', not "
        "'users'",
    ),
    (
        "policies:\n  - name: p\n    subject: user\n    expression: 'true'\n"
        "    message: '{{ user. }}'\n",
        5,
        14,
        "policy 'p': message placeholder: CEL syntax error in 'user.': ERROR: <input>:1:6:",
    ),
]


@pytest.mark.parametrize(("body", "line", "col", "message"), BROKEN)
def test_broken_policy_is_a_validation_error(
    tmp_path: Path, body: str, line: int, col: int, message: str
) -> None:
    ps = load_policies(write_policy(tmp_path, body))
    [d] = ps.diagnostics
    assert (d.line, d.col) == (line, col)
    assert d.message.startswith(message), d.message
    assert ps.policies == []


def test_evaluation_error_fails_closed(tmp_path: Path) -> None:
    body = (
        "policies:\n  - name: p\n    subject: user\n    expression: user.attributes.nope == 'x'\n"
    )
    ps = load_policies(write_policy(tmp_path, body))
    [v] = evaluate(ps.policies, [("a", user(), None)], "user", TENANT)
    assert "could not be evaluated for a" in v.message and "has(" in v.message


def test_validate_reports_violation_at_the_users_line(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    shutil.copytree(SAMPLE_POLICIES, tmp_path / "policies")
    sales = tmp_path / "desired-state" / "users" / "sales.yaml"
    text = sales.read_text()
    sales.write_text(text.replace('      employeeNumber: "E01002"\n', "", 1))
    r = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "--format", "github"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stdout
    assert (
        "::error file=desired-state/users/sales.yaml,line=19,col=5::employee "
        "lukas.schmidt@acme.example lacks employeeNumber or costCenter "
        "(policy employees-have-number-and-cost-center)"
    ) in r.stdout


def test_change_and_plan_policies_block_a_plan_with_annotations(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    shutil.copytree(SAMPLE_POLICIES, tmp_path / "policies")
    (tmp_path / "policies" / "changes.yaml").write_text(
        "policies:\n"
        "  - name: no-new-groups\n    subject: change\n"
        '    expression: \'!(change.action == "create" && change.resource_type == "Group")\'\n'
        "    message: 'new group {{ change.key }} needs a ticket'\n"
        "  - name: small-plans\n    subject: plan\n    severity: warning\n"
        "    expression: plan.changes < 10\n"
        "    message: '{{ plan.changes }} changes in one plan'\n"
    )
    init = [sys.executable, "-m", "reconciler", "tenant", "init", "--for", "desired-state"]
    subprocess.run(init, cwd=tmp_path, check=True, capture_output=True)
    r = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "--format", "github"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "::error title=policy no-new-groups::new group Sales needs a ticket" in r.stdout
    assert "::warning title=policy small-plans::66 changes in one plan" in r.stdout


def _validate(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_validate_sees_the_grants_rules_give(tmp_path: Path) -> None:
    """A policy on user.grants or rule.matched is checked by validate with the real values
    (rules evaluated), not with empty grants that always pass."""
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    shutil.copytree(SAMPLE_POLICIES, tmp_path / "policies")
    other = tmp_path / "desired-state" / "users" / "other.yaml"
    text = other.read_text()
    other.write_text(
        text.replace("groups: [Contractors, Engineering]", "groups: [Contractors, IT Admins]", 1)
    )
    rules = tmp_path / "desired-state" / "rules.yaml"
    rules.write_text(
        rules.read_text()
        + "\n  - name: Everyone meets\n    priority: 99\n    match: {groups_any: [All Staff, "
        "Contractors, IT Admins]}\n    grants: {products: [GoTo Meeting]}\n"
    )
    r = _validate(tmp_path)
    assert r.returncode == 1, r.stdout
    assert (
        "desired-state/users/other.yaml:5:5: error: contractor wen.zhou@acme.example would get "
        "the super-admin role"
    ) in r.stdout
    assert "rule 'Everyone meets' grants ['GoTo Meeting'] to all 40 users" in r.stdout


def test_every_broken_policy_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    d = write_policy(
        tmp_path,
        "policies:\n"
        "  - name: p1\n    subject: user\n    expression: 'user.userName =='\n"
        "  - name: Bad Name\n    subject: users\n    expression: 'true'\n"
        "  - name: p3\n    subject: group\n    expression: 'user.userName != \"\"'\n"
        "  - name: p4\n    subject: user\n    expression: 'true'\n",
    )
    ps = load_policies(d)
    got = sorted((x.line, x.message.split(":")[0]) for x in ps.diagnostics)
    assert got == [
        (4, "policy 'p1'"),
        (5, "policy name 'Bad Name' is not kebab-case"),
        (
            6,
            "policies[1].subject must be one of 'user', 'group', 'rule', 'change' or 'plan', "
            "not 'users'",
        ),
        (10, "policy 'p3' uses unknown variable 'user'"),
    ]
    assert [p.policy.name for p in ps.policies] == ["p4"]


def test_fields_used() -> None:
    expr = (
        "has(user.attributes.costCenter) && user.grants.roles.exists(r, r == 'x') "
        "&& user.emails.all(e, e.endsWith('@' + tenant.verified_domains[0])) && user.userName != ''"
    )
    assert fields_used([expr], "user") == {
        "attributes": {"costCenter"},
        "grants": {"roles"},
        "emails": None,
        "userName": None,
    }
    assert fields_used([expr], "tenant") == {"verified_domains": None}
    assert fields_used(["size(user) > 0"], "user") is None  # used whole: everything
    assert fields_used(['user.attributes["costCenter"] == "x"'], "user") == {"attributes": None}


def test_sample_policies_give_the_same_verdicts_on_pruned_subjects() -> None:
    """Each subject is converted to CEL with only the fields policies read; the verdicts and
    messages are those of the whole subject."""
    ps = load_policies(SAMPLE_POLICIES).for_subject("user")
    for data, _, _ in [(d, k, p) for (_, k, d, p) in CASES if k == "user"]:
        pruned = evaluate(ps, [("s", data, None)], "user", TENANT)
        whole = [v for p in ps for v in _evaluate_whole(p, data)]
        assert [(v.policy, v.message) for v in pruned] == whole


def _evaluate_whole(p: Any, data: dict[str, Any]) -> list[tuple[str, str]]:
    import cel

    from reconciler.policy.evaluate import FUNCTIONS, _render

    ctx = cel.Context({"user": data, "tenant": TENANT}, functions=FUNCTIONS)
    return [] if p.program.execute(ctx) is True else [(p.policy.name, _render(p, ctx))]


BADGE_POLICY = (
    "policies:\n"
    "  - name: badge-holders\n    subject: user\n    severity: warning\n"
    # The expression sees the real value: only the holder of BG-7731 violates.
    "    expression: '!has(user.attributes.badgeNumber) || "
    'user.attributes.badgeNumber != "BG-7731"\'\n'
    "    message: '{{ user.userName }} holds badge {{ user.attributes.badgeNumber }} "
    "({{ user.attributes }}; {{ user.attributes.badgeNumber.lowerAscii() }}; "
    '{{ user.attributes.badgeNumber == "BG-7731" }})\'\n'
)


def test_a_sensitive_value_is_masked_in_policy_messages(tmp_path: Path) -> None:
    """A message may template a `sensitive` attribute (declared in attributes.yaml): the
    violation is found on the real value, and the PR comment, validate's annotations and the
    plan file show it masked, whichever way the message reads it."""
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    shutil.copytree(SAMPLE_POLICIES, tmp_path / "policies")
    (tmp_path / "policies" / "badges.yaml").write_text(BADGE_POLICY)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cli = [sys.executable, "-m", "reconciler", *args]
        return subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    assert run("tenant", "init", "--for", "desired-state").returncode == 0
    plan = run("plan", "--format", "markdown", "--out", "plan.json")
    validate = run("validate", "--format", "github")
    assert plan.returncode == 0 and validate.returncode == 0, plan.stderr + validate.stdout
    comment, annotations = plan.stdout, validate.stdout
    # The plan file keeps the value from git in its change (apply writes it), not in messages.
    diagnostics = json.loads((tmp_path / "plan.json").read_text())["diagnostics"]
    messages = "\n".join(d["message"] for d in diagnostics)
    for shown in (comment.replace("\\*", "*"), annotations, messages):
        assert "breakglass-admin@" in shown and "holds badge *** (" in shown, shown[-2000:]
        assert "BG-7731" not in shown and "bg-7731" not in shown
        assert "'badgeNumber': '***'" in shown and "'costCenter': 'CC-1300'" in shown
        assert "; ***; False)" in shown  # derived from, and compared with, the mask
    assert "(policy badge-holders)" in annotations


def test_a_sensitive_value_in_a_rule_condition_is_masked_in_policy_messages(
    tmp_path: Path,
) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / "tenant.yaml").write_text("url: https://scim.example/v2\n")
    (root / "state.yaml").write_text(
        "attributes:\n  - name: pin\n    sensitive: true\n  - name: site\n"
        "groups:\n  - displayName: Ops\n"
        "users:\n  - userName: a@x.example\n    groups: [Ops]\n"
        "    attributes: {pin: '9999', site: HQ}\n"
        "rules:\n  - name: Vault\n    priority: 1\n"
        "    match:\n      groups_any: [Ops]\n      conditions:\n"
        "        - {attribute: PIN, op: eq, value: '9999'}\n"
        "        - {attribute: site, op: eq, value: HQ}\n"
        "    grants: {role: vault}\n"
    )
    body = (
        "policies:\n  - name: no-vault\n    subject: rule\n"
        "    expression: rule.grants.role != 'vault'\n"
        "    message: '{{ rule.name }} on {{ rule.conditions }}'\n"
    )
    state = load(root).state
    assert state is not None
    [v] = evaluate_state(load_policies(write_policy(tmp_path, body)), state)
    assert "9999" not in v.message
    assert "'attribute': 'PIN'" in v.message and "'value': '***'" in v.message
    assert "'value': 'HQ'" in v.message, "only the sensitive attribute is masked"
