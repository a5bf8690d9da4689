"""The GitHub client and the ``reconciler github`` commands against the stand-in: pages, rate
limits as GitHub documents them, the comment size limit, permissions, bad input."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.gitops.github import COMMENT_LIMIT, GitHub, GitHubError, fit
from reconciler.plan.hashing import plan_hash
from reconciler.plan.model import AccessChange, Change, FieldChange, Plan
from tests.gitops.github_standin import State, github_cli, github_standin

TOKEN = "gh-test-token-9d2e"
WRITE = {"issues": "write", "pull-requests": "write", "contents": "read"}


@pytest.fixture
def standin() -> Iterator[tuple[str, State]]:
    with github_standin() as (api, gh):
        gh.grant(TOKEN, WRITE)
        yield api, gh


class Clock:
    """Time that passes only when slept, so a test of waiting takes no time."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client(api: str, clock: Clock) -> GitHub:
    return GitHub(TOKEN, "acme/identity", api_url=api, sleep=clock.sleep, clock=clock.time)


def cli(api: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return github_cli(api, TOKEN, *args, **env)


# -- rate limits ------------------------------------------------------------------------------


def test_primary_limit_waits_until_the_reset(standin: tuple[str, State]) -> None:
    api, gh = standin
    clock = Clock()
    reset = str(int(clock.now) + 30)
    gh.staged = [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}, "API rate limit exceeded")
    ]
    assert client(api, clock).upsert_comment(5, "plan", "hello") == "created"
    assert clock.slept == [31.0], "until the reset, plus a second, and not before"


def test_secondary_limit_honours_retry_after(standin: tuple[str, State]) -> None:
    api, gh = standin
    clock = Clock()
    gh.staged = [(429, {"retry-after": "7"}, "You have exceeded a secondary rate limit")]
    client(api, clock).comment(5, "hi")
    assert clock.slept == [7.0] and len(gh.comments[5]) == 1


def test_secondary_limit_without_headers_waits_a_minute_then_longer(
    standin: tuple[str, State],
) -> None:
    api, gh = standin
    clock = Clock()
    message = "You have exceeded a secondary rate limit. Please wait a few minutes."
    gh.staged = [(403, {}, message), (403, {}, message)]
    client(api, clock).comment(5, "hi")
    assert clock.slept == [60.0, 120.0]


def test_a_long_limit_is_reported_with_its_time_not_slept_through(
    standin: tuple[str, State],
) -> None:
    api, gh = standin
    clock = Clock()
    reset = str(int(clock.now) + 2 * 3600)
    gh.staged = [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}, "API rate limit exceeded")
    ]
    with pytest.raises(GitHubError, match=r"rate limited until \d\d:\d\d:\d\d UTC") as err:
        client(api, clock).comment(5, "hi")
    assert clock.slept == [] and "re-run the job" in err.value.hint
    assert 5 not in gh.comments


def test_a_missing_permission_is_not_mistaken_for_a_rate_limit(
    standin: tuple[str, State],
) -> None:
    api, gh = standin
    gh.grant(TOKEN, {"contents": "read", "pull-requests": "read"})  # a fork's token
    gh.pull(5)
    clock = Clock()
    with pytest.raises(GitHubError, match="HTTP 403 Resource not accessible") as err:
        client(api, clock).upsert_comment(5, "plan", "hi")
    assert clock.slept == [] and "forks get a read-only token" in err.value.hint


def test_the_cli_waits_out_a_limit_and_never_prints_the_token(
    standin: tuple[str, State], tmp_path: Path
) -> None:
    api, gh = standin
    body = tmp_path / "b.md"
    body.write_text("hello")
    gh.staged = [
        (403, {"x-ratelimit-remaining": "0", "retry-after": "1"}, "API rate limit exceeded")
    ]
    started = time.monotonic()
    ok = cli(api, "comment", "--marker", "plan", "--body-file", str(body), "--pr", "5")
    assert ok.returncode == 0, ok.stderr
    assert time.monotonic() - started >= 1 and len(gh.comments[5]) == 1
    bad = cli(api, "comment", "--body-file", str(body), "--pr", "5", GITHUB_TOKEN="wrong-token")
    assert bad.returncode == 1 and "HTTP 401 Bad credentials" in bad.stderr
    assert "Traceback" not in bad.stderr and "wrong-token" not in bad.stdout + bad.stderr


# -- pages, markers, sizes --------------------------------------------------------------------


def test_sticky_comment_found_across_pages_and_not_spoofed(standin: tuple[str, State]) -> None:
    api, gh = standin
    gh.comments[7] = [
        {"id": i, "body": f"chatter {i}", "user": {"login": "someone"}} for i in range(250)
    ]
    gh.comments[7].insert(
        3, {"id": 999, "body": "<!-- reconciler:plan -->\nspoof", "user": {"login": "mallory"}}
    )
    c = client(api, Clock())
    assert c.upsert_comment(7, "plan", "first") == "created"
    assert c.upsert_comment(7, "plan", "second") == "updated"
    ours = [x for x in gh.comments[7] if x["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == 1 and ours[0]["body"].endswith("second")
    assert gh.comments[7][3]["body"].endswith("spoof"), "someone else's comment is never edited"
    pages = [p for m, p in gh.requests if m == "GET"]
    assert len(pages) == 2 * 3, "three pages of 100, followed twice"


def huge_plan(n: int = 4000) -> Plan:
    changes = tuple(
        Change(
            action="update",
            resource_type="User",
            key=f"user{i}@acme.example",
            reason="attributes differ from desired-state (title, roles)",
            fields=(
                FieldChange(path="title", before="Engineer", after="Senior Engineer"),
                FieldChange(path="roles", after=[{"value": "member", "primary": True}]),
            ),
        )
        for i in range(n)
    )
    return Plan(
        tenant_url="local:t.db",
        plan_hash=plan_hash("local:t.db", changes),
        changes=changes,
        summary={"update": n},
        # As the changes give it (a plan file whose table disagrees is refused).
        access=(AccessChange(grant="roles", value="member", gains=tuple(c.key for c in changes)),),
    )


def test_a_huge_plan_comment_is_summarised_to_fit_with_its_marker(
    standin: tuple[str, State], tmp_path: Path
) -> None:
    api, gh = standin
    plan_json = tmp_path / "plan.json"
    plan_json.write_text(huge_plan().model_dump_json())
    r = cli(api, "comment", "--marker", "plan", "--plan", str(plan_json), "--pr", "9")
    assert r.returncode == 0, r.stderr
    [posted] = gh.comment_bodies(9)
    assert len(posted) <= COMMENT_LIMIT, "the stand-in refuses longer bodies as GitHub does"
    marker = "<!-- reconciler:plan -->\n<!-- reconciler:plan-hash=" + huge_plan().plan_hash
    assert posted.startswith(marker)
    assert "Summarised to fit a comment:" in posted and "plan-json artifact" in posted
    assert "Cut to fit" not in posted, "summarised, not cut"


def test_other_text_over_the_limit_is_cut_at_a_paragraph_and_says_so() -> None:
    text = "\n\n".join(f"paragraph {i} " + "x" * 500 for i in range(300))
    text = "```\n" + text
    out = fit(text, where="the run's summary")
    assert len(out) <= COMMENT_LIMIT and out.count("```") % 2 == 0
    assert out.endswith("the whole text is in the run's summary.\n")


def test_plan_falls_back_to_the_body_file_when_planning_failed(
    standin: tuple[str, State], tmp_path: Path
) -> None:
    api, gh = standin
    body = tmp_path / "plan.md"
    body.write_text("### Reconciler plan failed\n")
    missing = tmp_path / "plan.json"
    r = cli(api, "comment", "--plan", str(missing), "--body-file", str(body), "--pr", "9")
    assert r.returncode == 0, r.stderr
    assert gh.comment_bodies(9) == ["<!-- reconciler:plan -->\n### Reconciler plan failed\n"]
    neither = cli(api, "comment", "--plan", str(missing), "--pr", "9")
    assert neither.returncode == 1 and "nothing to post" in neither.stderr


# -- merged pull requests, labels, events -----------------------------------------------------


def test_only_a_merged_pull_request_counts(standin: tuple[str, State]) -> None:
    api, gh = standin
    sha = "c" * 40
    gh.pull(3).commits.add(sha)  # an open PR that contains the commit
    c = client(api, Clock())
    assert c.pr_for_commit(sha) is None
    gh.pull(4).commits.add(sha)
    gh.merged(5, sha)  # the PR whose merge commit it is
    assert c.pr_for_commit(sha) == 5
    r = cli(api, "merged-pr", "--sha", "d" * 40)
    assert r.returncode == 1 and "did not come from a merged pull request" in r.stderr


def test_labels_become_allowances_and_unknown_ones_are_named(standin: tuple[str, State]) -> None:
    api, gh = standin
    gh.pull(6).labels = ["reconciler:allow-deletes", "reconciler:allow-lost-grants", "bug"]
    gh.pull(6).labels.append("reconciler:allow-everything")
    r = cli(api, "allow-from-labels", "--pr", "6")
    assert r.returncode == 0 and r.stdout.strip() == "deletions=all,lost_grants=all"
    assert "label reconciler:allow-everything names no safety gate" in r.stderr
    assert cli(api, "allow-from-labels", "--pr", "").stdout == "", "no pull request, no allowance"


def test_the_pull_request_comes_from_the_event_and_a_bad_event_is_an_error(
    standin: tuple[str, State], tmp_path: Path
) -> None:
    api, _ = standin
    body = tmp_path / "b.md"
    body.write_text("hi")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"number": 8, "pull_request": {"number": 8}}))
    ok = cli(api, "comment", "--body-file", str(body), GITHUB_EVENT_PATH=str(event))
    assert ok.returncode == 0 and "created the plan comment on #8" in ok.stdout
    for bad in ("{not json", "[]"):
        event.write_text(bad)
        r = cli(api, "comment", "--body-file", str(body), GITHUB_EVENT_PATH=str(event))
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "pass --pr N" in r.stderr
    r = cli(api, "comment", "--body-file", str(body), "--pr", "abc")
    assert r.returncode == 1 and "'abc' is not a pull request number" in r.stderr


def test_unreachable_api_and_bad_repository_are_plain_errors(tmp_path: Path) -> None:
    body = tmp_path / "b.md"
    body.write_text("hi")
    r = cli("http://127.0.0.1:9", "comment", "--body-file", str(body), "--pr", "1")
    assert r.returncode == 1 and "cannot reach the GitHub API at http://127.0.0.1:9" in r.stderr
    r = cli(
        "http://127.0.0.1:9",
        "comment",
        "--body-file",
        str(body),
        "--pr",
        "1",
        GITHUB_REPOSITORY="acme",
    )
    assert r.returncode == 1 and "is not owner/name" in r.stderr and "Traceback" not in r.stderr
