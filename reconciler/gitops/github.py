"""The GitHub REST API, for what the workflows need: sticky comments, issues, merged PRs.

Configured the way Actions configures a job: ``GITHUB_TOKEN``, ``GITHUB_API_URL`` (GitHub
Enterprise works; tests point it at loopback), ``GITHUB_REPOSITORY``, ``GITHUB_EVENT_PATH``.
Pages are followed through ``Link`` headers; rate limits are waited out (bounded). The token
is never printed or put into an error.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from reconciler.errors import ReconcilerError

COMMENT_LIMIT = 65_536
MAX_WAIT = 120.0
DEFAULT_BOT = "github-actions[bot]"


class GitHubError(ReconcilerError):
    pass


def marker(name: str) -> str:
    return f"<!-- reconciler:{name} -->"


def fit(body: str, limit: int = COMMENT_LIMIT) -> str:
    """A body within GitHub's comment limit, cut at a paragraph and saying so, never mid-table."""
    if len(body) <= limit:
        return body
    note = "\n\n> Truncated to fit a GitHub comment: the full text is in the job's artifacts.\n"
    cut = body.rfind("\n\n", 0, limit - len(note))
    head = body[: cut if cut > 0 else limit - len(note)]
    if head.count("```") % 2:
        head += "\n```"
    return head + note


class GitHub:
    def __init__(
        self,
        token: str,
        repository: str,
        *,
        api_url: str = "https://api.github.com",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if "/" not in repository:
            raise GitHubError(
                f"GITHUB_REPOSITORY {repository!r} is not owner/name", "set GITHUB_REPOSITORY"
            )
        self.repo = repository
        self._token = token
        self.http = httpx.Client(
            base_url=api_url.rstrip("/") + "/",
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
        return cls(token, repo, api_url=env.get("GITHUB_API_URL", "https://api.github.com"))

    # -- requests -------------------------------------------------------------------------

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        for _ in range(4):
            try:
                r = self.http.request(method, path, **kw)
            except httpx.HTTPError as exc:
                raise GitHubError(f"cannot reach the GitHub API: {type(exc).__name__}") from None
            wait = self._rate_limited(r)
            if wait is None:
                break
            time.sleep(min(wait, MAX_WAIT))
        if r.status_code >= 400:
            raise self._error(method, path, r)
        return r

    @staticmethod
    def _rate_limited(r: httpx.Response) -> float | None:
        if r.status_code not in (403, 429):
            return None
        if r.headers.get("retry-after", "").isdigit():
            return float(r.headers["retry-after"])
        if r.headers.get("x-ratelimit-remaining") == "0":
            reset = float(r.headers.get("x-ratelimit-reset", "0") or 0)
            return max(0.0, reset - time.time()) + 1
        return None

    def _error(self, method: str, path: str, r: httpx.Response) -> GitHubError:
        try:
            message = str(r.json().get("message", ""))
        except ValueError:
            message = r.text[:200]
        hints = {
            401: "the token is invalid or expired",
            403: "the token lacks a permission: check the job's permissions: block",
            404: "wrong repository or number, or the token cannot see it",
        }
        return GitHubError(
            f"GitHub API {method} /{path}: HTTP {r.status_code} {message}".strip(),
            hints.get(r.status_code, ""),
        )

    def paged(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": 100, **(params or {})}
        while url:
            r = self.request("GET", url, params=query)
            yield from r.json()
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
        text = fit(f"{marker(name)}\n{body}")
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
            "POST", f"repos/{self.repo}/issues/{number}/comments", json={"body": fit(body)}
        )

    def pr_for_commit(self, sha: str) -> int | None:
        r = self.request("GET", f"repos/{self.repo}/commits/{sha}/pulls")
        pulls = [
            p for p in r.json() if p.get("merged_at") or p.get("state") == "closed"
        ] or r.json()
        return int(pulls[0]["number"]) if pulls else None

    def labels(self, pr: int) -> list[str]:
        r = self.request("GET", f"repos/{self.repo}/issues/{pr}/labels")
        return [str(label["name"]) for label in r.json()]

    def open_issue(self, label: str) -> dict[str, Any] | None:
        for issue in self.paged(f"repos/{self.repo}/issues", {"labels": label, "state": "open"}):
            if "pull_request" not in issue:
                return issue
        return None

    def upsert_issue(self, label: str, title: str, body: str) -> tuple[str, int]:
        existing = self.open_issue(label)
        if existing:
            n = int(existing["number"])
            self.request(
                "PATCH", f"repos/{self.repo}/issues/{n}", json={"title": title, "body": fit(body)}
            )
            return "updated", n
        r = self.request(
            "POST",
            f"repos/{self.repo}/issues",
            json={"title": title, "body": fit(body), "labels": [label]},
        )
        return "opened", int(r.json()["number"])

    def close_issue(self, label: str, comment: str) -> int | None:
        existing = self.open_issue(label)
        if not existing:
            return None
        n = int(existing["number"])
        self.comment(n, comment)
        self.request("PATCH", f"repos/{self.repo}/issues/{n}", json={"state": "closed"})
        return n


HASH = re.compile(r"reconciler:plan-hash=([0-9a-f]{64})")


def reviewed_hash(body: str) -> str | None:
    m = HASH.search(body)
    return m.group(1) if m else None


def event_pr(env: Mapping[str, str] = os.environ) -> int | None:
    """The pull request number of the event that started the workflow, if any."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return None
    event = json.loads(Path(path).read_text(encoding="utf-8"))
    pr = event.get("pull_request") or {}
    n = pr.get("number") or event.get("number")
    return int(n) if n else None
