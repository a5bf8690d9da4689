"""``reconciler github …`` against a GitHub (or something in its place) that answers oddly: an
answer of another shape than GitHub's is one clear error, never a traceback, and no error ever
shows the token or the credentials of a ``GITHUB_API_URL``, whatever the server echoes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gitops.github_standin import BOT, State, github_cli, github_standin

TOKEN = "ghs_SECRETTOKEN123456"
REPO = "acme/identity"
SHA = "c" * 40
HASH = "ab" * 32


@pytest.fixture
def standin() -> Iterator[tuple[str, State]]:
    with github_standin() as (api, gh):
        gh.grant(TOKEN, {"issues": "write", "pull-requests": "write", "contents": "read"})
        yield api, gh


def cli(api: str, *args: str) -> subprocess.CompletedProcess[str]:
    return github_cli(api, TOKEN, *args)


def one_clear_error(r: subprocess.CompletedProcess[str], message: str, *secrets: str) -> None:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.splitlines()[0] == message, r.stderr
    for secret in (TOKEN, *secrets):
        assert secret not in r.stdout + r.stderr


COMMANDS = {
    "reviewed-hash": (("reviewed-hash", "--pr", "3"), f"repos/{REPO}/issues/3/comments"),
    "allow-from-labels": (("allow-from-labels", "--pr", "3"), f"repos/{REPO}/issues/3/labels"),
    "merged-pr": (("merged-pr", "--sha", SHA), f"repos/{REPO}/commits/{SHA}/pulls"),
    "issue": (("issue", "--label", "l", "--title", "t"), f"repos/{REPO}/issues"),
    "close-issue": (("close-issue", "--label", "l", "--comment", "c"), f"repos/{REPO}/issues"),
}
NOT_OBJECTS = [[1, 2], [None]]
NULLS = [{"body": None, "user": None, "id": None}]


@pytest.mark.parametrize(
    ("command", "answer", "what"),
    [
        *(
            (c, a, f"item 1 is {'1' if a[0] else 'null'}, not an object")
            for c in COMMANDS
            for a in NOT_OBJECTS
        ),
        ("issue", NULLS, "item 1: number is missing"),
        ("close-issue", NULLS, "item 1: number is missing"),
        ("allow-from-labels", NULLS, "item 1: name is missing"),
        ("reviewed-hash", NULLS, "item 1: id is null, not an integer"),
        (
            "merged-pr",
            [{"number": "abc", "merged_at": "x"}],
            'item 1: number is "abc", not an integer',
        ),
        ("merged-pr", {}, "expected a list, got an object"),
        ("reviewed-hash", {}, "expected a list, got an object"),
        ("issue", "text", 'expected a list, got "text"'),
        (
            "reviewed-hash",
            [{"id": 1, "user": {"login": 5}}],
            "item 1: user.login is 5, not a string",
        ),
        (
            "allow-from-labels",
            [{"name": "x"}, {"name": ["x"]}],
            "item 2: name is a list, not a string",
        ),
        # What GitHub's answer holds is shown, but never the token it may echo.
        ("merged-pr", [{"number": TOKEN}], 'item 1: number is "***", not an integer'),
    ],
)
def test_an_answer_of_another_shape_is_one_clear_error(
    standin: tuple[str, State], command: str, answer: Any, what: str
) -> None:
    api, gh = standin
    gh.canned = (200, answer)
    args, path = COMMANDS[command]
    r = cli(api, *args)
    one_clear_error(r, f"error: GitHub API GET /{path}: unexpected answer ({what})")


def test_the_created_issue_is_checked_too(standin: tuple[str, State]) -> None:
    api, gh = standin
    gh.canned = (201, [])  # the GET of open issues finds none; the POST gets a list back
    r = cli(api, "issue", "--label", "l", "--title", "t")
    one_clear_error(
        r,
        f"error: GitHub API POST /repos/{REPO}/issues: unexpected answer "
        "(the answer is a list, not an object)",
    )


def test_a_comment_with_no_body_or_no_author_is_skipped_not_an_error(
    standin: tuple[str, State],
) -> None:
    """GitHub sends a null body for an empty comment, and a null user for a deleted account."""
    api, gh = standin
    gh.comments[3] = [
        {"id": 1, "body": None, "user": {"login": BOT}},
        {"id": 2, "user": {"login": BOT}},
        {"id": 3, "body": "<!-- reconciler:plan -->\nspoof", "user": None},
        {
            "id": 4,
            "body": f"<!-- reconciler:plan -->\n<!-- reconciler:plan-hash={HASH} -->\n",
            "user": {"login": BOT},
        },
    ]
    r = cli(api, "reviewed-hash", "--pr", "3")
    assert r.returncode == 0 and r.stdout.strip() == HASH, r.stderr


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (401, {"message": f"Bad credentials {TOKEN}"}, "HTTP 401 Bad credentials ***"),
        (500, {"message": f"token {TOKEN} broke us"}, "HTTP 500 token *** broke us"),
        (500, f"upstream said Bearer {TOKEN}".encode(), "HTTP 500 upstream said Bearer ***"),
        (403, {"message": f"API rate limit exceeded for {TOKEN}"}, None),
    ],
)
def test_the_token_echoed_by_github_is_masked(
    standin: tuple[str, State], status: int, body: Any, shown: str | None
) -> None:
    api, gh = standin
    gh.canned = (status, body, {"retry-after": "3600"}) if shown is None else (status, body)
    r = cli(api, "reviewed-hash", "--pr", "3")
    where = f"error: GitHub API GET /repos/{REPO}/issues/3/comments"
    if shown is None:  # a rate limit says when to retry; its message is not shown
        assert r.returncode == 1 and r.stderr.startswith(f"{where}: rate limited until")
        assert "Traceback" not in r.stderr and TOKEN not in r.stdout + r.stderr
    else:
        one_clear_error(r, f"{where}: {shown}")


def test_credentials_in_the_api_url_are_refused(standin: tuple[str, State]) -> None:
    """A GITHUB_API_URL with user:password@ would have httpx send those instead of the token:
    refused before any request, and the password never shown."""
    api, gh = standin
    port = api.rsplit(":", 1)[1]
    secret = "s3cretpw"
    message = (
        "error: GITHUB_API_URL carries credentials (user:password@); they are not sent, and "
        "nothing was requested"
    )
    for args, _ in COMMANDS.values():
        r = cli(f"http://user:{secret}@127.0.0.1:{port}", *args)
        one_clear_error(r, message, secret)
    assert gh.requests == []
