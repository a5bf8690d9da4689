"""The GitHub REST API, for what the workflows need: sticky comments, issues, merged PRs.

Configured the way Actions configures a job: ``GITHUB_TOKEN``, ``GITHUB_API_URL`` (GitHub
Enterprise works; tests point it at loopback), ``GITHUB_REPOSITORY``, ``GITHUB_EVENT_PATH``.
Pages are followed through ``Link`` headers. Rate limits are honoured as GitHub documents
them: ``retry-after`` first, then ``x-ratelimit-remaining: 0`` until ``x-ratelimit-reset``,
otherwise (a secondary limit without headers) a minute, doubling; a wait longer than
``MAX_WAIT`` is not slept through but reported, since retrying early is what gets an
integration banned. The token is never printed or put into an error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from reconciler.errors import ReconcilerError

COMMENT_LIMIT = 65_536  # characters, for comments and issue bodies alike
MAX_WAIT = 300.0  # seconds one rate-limit wait may last before we give up and say when to retry
SECONDARY_WAIT = 60.0  # GitHub: "wait for at least one minute before retrying"
ATTEMPTS = 4
DEFAULT_BOT = "github-actions[bot]"


class GitHubError(ReconcilerError):
    pass


def marker(name: str) -> str:
    return f"<!-- reconciler:{name} -->"


def fit(body: str, limit: int = COMMENT_LIMIT, where: str = "") -> str:
    """A body within GitHub's limit. Plans are summarised before they get here (see
    ``render_markdown``); this is the last resort for other text: cut at a paragraph, never
    mid code block, and say so and where the whole text is."""
    if len(body) <= limit:
        return body
    note = (
        "\n\n> Cut to fit GitHub's 65,536-character limit"
        + (f": the whole text is in {where}" if where else "")
        + ".\n"
    )
    cut = body.rfind("\n\n", 0, limit - len(note) - 4)
    head = body[: cut if cut > 0 else limit - len(note) - 4]
    if head.count("```") % 2:
        head += "\n```"
    return head + note


def run_url(env: Mapping[str, str] = os.environ) -> str:
    """The link to the workflow run this is part of, or "" outside Actions."""
    server, repo, run = (
        env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run}" if server and repo and run else ""


class GitHub:
    def __init__(
        self,
        token: str,
        repository: str,
        *,
        api_url: str = "https://api.github.com",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise GitHubError(
                f"GITHUB_REPOSITORY {repository!r} is not owner/name",
                "set GITHUB_REPOSITORY=owner/name (Actions sets it for every job)",
            )
        self.repo = repository
        self.api_url = api_url.rstrip("/")
        self._sleep = sleep
        self._clock = clock
        self.http = httpx.Client(
            base_url=self.api_url + "/",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "reconciler",
            },
            timeout=30,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"GitHub(repo={self.repo!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> GitHub:
        token = env.get("GITHUB_TOKEN")
        if not token:
            raise GitHubError(
                "GITHUB_TOKEN is not set",
                "in a workflow, pass it with env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
            )
        repo = env.get("GITHUB_REPOSITORY", "")
        return cls(token, repo, api_url=env.get("GITHUB_API_URL") or "https://api.github.com")

    # -- requests -------------------------------------------------------------------------

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        backoff = SECONDARY_WAIT
        for attempt in range(1, ATTEMPTS + 1):
            try:
                r = self.http.request(method, path, **kw)
            except httpx.HTTPError as exc:
                # A refused connection is a wrong URL; a dropped or slow one may pass.
                transient = not isinstance(exc, httpx.ConnectError)
                if method == "GET" and transient and attempt < ATTEMPTS:
                    self._sleep(2.0**attempt)
                    continue
                raise GitHubError(
                    f"cannot reach the GitHub API at {self.api_url}: {type(exc).__name__}",
                    "check GITHUB_API_URL (GitHub Enterprise: https://HOST/api/v3)",
                ) from None
            if method == "GET" and r.status_code in (502, 503, 504) and attempt < ATTEMPTS:
                self._sleep(2.0**attempt)
                continue
            wait = self._rate_limit_wait(r, backoff)
            if wait is None:
                break
            if wait > MAX_WAIT or attempt == ATTEMPTS:
                raise self._rate_limited(method, path, wait)
            self._sleep(wait)
            backoff *= 2
        if r.status_code >= 400:
            raise self._error(method, path, r)
        return r

    def _rate_limit_wait(self, r: httpx.Response, backoff: float) -> float | None:
        """Seconds to wait before retrying, or None when ``r`` is not a rate limit."""
        if r.status_code not in (403, 429):
            return None
        retry_after = r.headers.get("retry-after", "").strip()
        if retry_after.isdigit():
            return float(retry_after)
        if r.headers.get("x-ratelimit-remaining") == "0":
            try:
                reset = float(r.headers.get("x-ratelimit-reset", ""))
            except ValueError:
                return backoff
            return max(0.0, reset - self._clock()) + 1
        if r.status_code == 429 or "rate limit" in _message(r).lower():
            return backoff  # a secondary limit that names no time
        return None  # a 403 that is a missing permission, not a limit

    def _rate_limited(self, method: str, path: str, wait: float) -> GitHubError:
        until = dt.datetime.fromtimestamp(self._clock() + wait, dt.UTC).strftime("%H:%M:%S UTC")
        return GitHubError(
            f"GitHub API {method} /{path}: rate limited until {until} ({wait:.0f} s)",
            "a repository's GITHUB_TOKEN gets 1,000 requests an hour; re-run the job after "
            "that time",
        )

    def _error(self, method: str, path: str, r: httpx.Response) -> GitHubError:
        message = _message(r)
        hints = {
            401: "the token is invalid or expired",
            403: "the token lacks a permission: check the job's permissions: block "
            "(pull requests from forks get a read-only token)",
            404: "wrong repository or number, or the token cannot see it",
            422: "GitHub refused the content (a body over 65,536 characters?)",
        }
        return GitHubError(
            f"GitHub API {method} /{path}: HTTP {r.status_code} {message}".strip(),
            hints.get(r.status_code, ""),
        )

    def _json(self, r: httpx.Response) -> Any:
        try:
            return r.json()
        except ValueError:
            raise GitHubError(
                f"the GitHub API at {self.api_url} answered something that is not JSON",
                "check GITHUB_API_URL (GitHub Enterprise: https://HOST/api/v3)",
            ) from None

    def paged(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": 100, **(params or {})}
        while url:
            r = self.request("GET", url, params=query)
            items = self._json(r)
            if not isinstance(items, list):
                raise GitHubError(f"GitHub API GET /{path}: expected a list")
            yield from items
            url = r.links.get("next", {}).get("url")
            query = None  # the next link carries its own query

    # -- what the commands need -----------------------------------------------------------

    def sticky(self, pr: int, name: str, author: str = DEFAULT_BOT) -> dict[str, Any] | None:
        """The comment carrying our marker, written by ``author`` (a marker in someone
        else's comment is not ours to edit or trust)."""
        mark = marker(name)
        for c in self.paged(f"repos/{self.repo}/issues/{pr}/comments"):
            if str(c.get("body", "")).startswith(mark) and c.get("user", {}).get("login") == author:
                return c
        return None

    def upsert_comment(self, pr: int, name: str, body: str, author: str = DEFAULT_BOT) -> str:
        text = fit(f"{marker(name)}\n{body}", where=run_url() or "the workflow run")
        existing = self.sticky(pr, name, author)
        if existing:
            self.request(
                "PATCH", f"repos/{self.repo}/issues/comments/{existing['id']}", json={"body": text}
            )
            return "updated"
        self.request("POST", f"repos/{self.repo}/issues/{pr}/comments", json={"body": text})
        return "created"

    def comment(self, number: int, body: str) -> None:
        self.request(
            "POST",
            f"repos/{self.repo}/issues/{number}/comments",
            json={"body": fit(body, where=run_url() or "the workflow run")},
        )

    def pr_for_commit(self, sha: str) -> int | None:
        """The merged pull request ``sha`` came from: the one whose merge commit it is (merge,
        squash or rebase), else a merged one that contains it. Open PRs never count."""
        r = self.request("GET", f"repos/{self.repo}/commits/{sha}/pulls")
        pulls = [p for p in self._json(r) if p.get("merged_at")]
        exact = [p for p in pulls if p.get("merge_commit_sha") == sha]
        chosen = exact or pulls
        return int(chosen[0]["number"]) if chosen else None

    def labels(self, pr: int) -> list[str]:
        return [str(label["name"]) for label in self.paged(f"repos/{self.repo}/issues/{pr}/labels")]

    def open_issue(self, label: str) -> dict[str, Any] | None:
        for issue in self.paged(f"repos/{self.repo}/issues", {"labels": label, "state": "open"}):
            if "pull_request" not in issue:
                return issue
        return None

    def upsert_issue(self, label: str, title: str, body: str) -> tuple[str, int]:
        text = fit(body, where=run_url() or "the workflow run")
        existing = self.open_issue(label)
        if existing:
            n = int(existing["number"])
            self.request(
                "PATCH", f"repos/{self.repo}/issues/{n}", json={"title": title, "body": text}
            )
            return "updated", n
        r = self.request(
            "POST",
            f"repos/{self.repo}/issues",
            json={"title": title, "body": text, "labels": [label]},
        )
        return "opened", int(self._json(r)["number"])

    def close_issue(self, label: str, comment: str) -> int | None:
        existing = self.open_issue(label)
        if not existing:
            return None
        n = int(existing["number"])
        self.comment(n, comment)
        self.request(
            "PATCH",
            f"repos/{self.repo}/issues/{n}",
            json={"state": "closed", "state_reason": "completed"},
        )
        return n


def _message(r: httpx.Response) -> str:
    try:
        data = r.json()
    except ValueError:
        return r.text[:200]
    return str(data.get("message", "")) if isinstance(data, dict) else ""


def event_pr(env: Mapping[str, str] = os.environ) -> int | None:
    """The pull request number of the event that started the workflow, if any."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GitHubError(
            f"GITHUB_EVENT_PATH {path}: not a readable JSON event ({exc})",
            "pass --pr N, or run in a workflow (Actions writes the event there)",
        ) from None
    if not isinstance(event, dict):
        return None
    pr = event.get("pull_request")
    n = (pr.get("number") if isinstance(pr, dict) else None) or event.get("number")
    return int(n) if isinstance(n, int) and not isinstance(n, bool) else None
