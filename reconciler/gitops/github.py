"""The GitHub REST API, for what the workflows need: sticky comments, issues, merged PRs.

Configured the way Actions configures a job: ``GITHUB_TOKEN``, ``GITHUB_API_URL`` (GitHub
Enterprise works; tests point it at loopback), ``GITHUB_REPOSITORY``, ``GITHUB_EVENT_PATH``.
Pages are followed through ``Link`` headers. Rate limits are honoured as GitHub documents
them: ``retry-after`` first, then ``x-ratelimit-remaining: 0`` until ``x-ratelimit-reset``,
otherwise (a secondary limit without headers) a minute, doubling; a wait longer than
``MAX_WAIT`` is not slept through but reported, since retrying early is what gets an
integration banned. The token is never printed or put into an error: every error the client
raises is made by :meth:`GitHub._fail`, which masks it wherever the text came from, GitHub's
own messages included. A ``GITHUB_API_URL`` carrying user:password@ is refused.

What GitHub answers is checked once, by the models below (:meth:`GitHub._valid`): an answer
of another shape is one clear error naming the request and what was wrong, not a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.errors import ReconcilerError
from reconciler.urls import has_credentials

COMMENT_LIMIT = 65_536  # characters, for comments and issue bodies alike
MAX_WAIT = 300.0  # seconds one rate-limit wait may last before we give up and say when to retry
SECONDARY_WAIT = 60.0  # GitHub: "wait for at least one minute before retrying"
ATTEMPTS = 4
DEFAULT_BOT = "github-actions[bot]"
MASK = "***"


class GitHubError(ReconcilerError):
    pass


# -- what GitHub answers, as far as the commands read it ---------------------------------------
# Strict: a number is an integer and a name a string, as GitHub sends them; what we do not read
# is ignored. Null only where GitHub's schema has it.


class _Answer(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class User(_Answer):
    login: str


class Comment(_Answer):
    id: int
    body: str | None = None  # null or absent: an empty comment
    user: User | None = None  # null: a deleted account (never ours)

    @property
    def text(self) -> str:
        return self.body or ""


class Label(_Answer):
    name: str


class Issue(_Answer):
    number: int
    pull_request: Any = None  # present only on the pull requests the issues list includes

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None


class Pull(_Answer):
    number: int
    merged_at: str | None = None
    merge_commit_sha: str | None = None


M = TypeVar("M", bound=_Answer)


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
        if has_credentials(api_url):
            # httpx would send them as Basic auth instead of the token: never what is meant,
            # and a password in a URL ends up in logs.
            raise GitHubError(
                "GITHUB_API_URL carries credentials (user:password@); they are not sent, "
                "and nothing was requested",
                "remove them from the URL: the token goes in GITHUB_TOKEN",
            )
        self.repo = repository
        self.api_url = api_url.rstrip("/")
        # Secrets too short to mask without mangling the text are left (the SCIM client's
        # rule, see ``Credentials.secrets``).
        self._secrets = [token] if len(token) >= 4 else []
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
                raise self._fail(
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
        return self._fail(
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
        return self._fail(
            f"GitHub API {method} /{path}: HTTP {r.status_code} {message}".strip(),
            hints.get(r.status_code, ""),
        )

    def _fail(self, message: str, hint: str = "") -> GitHubError:
        """The one way this client makes an error: with no secret of ours in it, whatever
        GitHub (or a proxy in front of it) echoed."""
        for secret in self._secrets:
            message = message.replace(secret, MASK)
        return GitHubError(message, hint)

    def _unexpected(self, method: str, path: str, what: str) -> GitHubError:
        return self._fail(
            f"GitHub API {method} /{path}: unexpected answer ({what})",
            "check GITHUB_API_URL (GitHub Enterprise: https://HOST/api/v3)",
        )

    def _json(self, r: httpx.Response) -> Any:
        try:
            return r.json()
        except ValueError:
            raise self._fail(
                f"the GitHub API at {self.api_url} answered something that is not JSON",
                "check GITHUB_API_URL (GitHub Enterprise: https://HOST/api/v3)",
            ) from None

    def _list(self, method: str, path: str, data: Any) -> list[Any]:
        if not isinstance(data, list):
            raise self._unexpected(method, path, f"expected a list, got {_shown(data)}")
        return data

    def _valid(self, model: type[M], data: Any, method: str, path: str, where: str = "") -> M:
        """``data`` as ``model``, or the error saying what in GitHub's answer was wrong."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise self._unexpected(method, path, _why(exc, where)) from None

    def paged(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, page after page; each is an object (every list we
        read is a list of objects), or the answer is an error."""
        url: str | None = path
        query: dict[str, Any] | None = {"per_page": 100, **(params or {})}
        n = 0
        while url:
            r = self.request("GET", url, params=query)
            for item in self._list("GET", path, self._json(r)):
                n += 1
                if not isinstance(item, dict):
                    raise self._unexpected(
                        "GET", path, f"item {n} is {_shown(item)}, not an object"
                    )
                yield item
            url = r.links.get("next", {}).get("url")
            query = None  # the next link carries its own query

    def _paged_as(
        self, model: type[M], path: str, params: dict[str, Any] | None = None
    ) -> Iterator[M]:
        return self._each(model, self.paged(path, params), "GET", path)

    def _each(self, model: type[M], items: Iterable[Any], method: str, path: str) -> Iterator[M]:
        """``items`` of a list answer as ``model``, each error naming the item's place."""
        for n, item in enumerate(items, 1):
            yield self._valid(model, item, method, path, f"item {n}")

    # -- what the commands need -----------------------------------------------------------

    def sticky(self, pr: int, name: str, author: str = DEFAULT_BOT) -> Comment | None:
        """The comment carrying our marker, written by ``author`` (a marker in someone
        else's comment is not ours to edit or trust)."""
        mark = marker(name)
        for c in self._paged_as(Comment, f"repos/{self.repo}/issues/{pr}/comments"):
            if c.text.startswith(mark) and c.user is not None and c.user.login == author:
                return c
        return None

    def upsert_comment(self, pr: int, name: str, body: str, author: str = DEFAULT_BOT) -> str:
        text = fit(f"{marker(name)}\n{body}", where=run_url() or "the workflow run")
        existing = self.sticky(pr, name, author)
        if existing:
            self.request(
                "PATCH", f"repos/{self.repo}/issues/comments/{existing.id}", json={"body": text}
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
        path = f"repos/{self.repo}/commits/{sha}/pulls"
        answer = self._list("GET", path, self._json(self.request("GET", path)))
        pulls = [p for p in self._each(Pull, answer, "GET", path) if p.merged_at]
        exact = [p for p in pulls if p.merge_commit_sha == sha]
        chosen = exact or pulls
        return chosen[0].number if chosen else None

    def labels(self, pr: int) -> list[str]:
        return [
            label.name for label in self._paged_as(Label, f"repos/{self.repo}/issues/{pr}/labels")
        ]

    def open_issue(self, label: str) -> Issue | None:
        wanted = {"labels": label, "state": "open"}
        for issue in self._paged_as(Issue, f"repos/{self.repo}/issues", wanted):
            if not issue.is_pull_request:
                return issue
        return None

    def upsert_issue(self, label: str, title: str, body: str) -> tuple[str, int]:
        text = fit(body, where=run_url() or "the workflow run")
        existing = self.open_issue(label)
        if existing:
            n = existing.number
            self.request(
                "PATCH", f"repos/{self.repo}/issues/{n}", json={"title": title, "body": text}
            )
            return "updated", n
        path = f"repos/{self.repo}/issues"
        r = self.request("POST", path, json={"title": title, "body": text, "labels": [label]})
        return "opened", self._valid(Issue, self._json(r), "POST", path).number

    def close_issue(self, label: str, comment: str) -> int | None:
        existing = self.open_issue(label)
        if not existing:
            return None
        n = existing.number
        self.comment(n, comment)
        self.request(
            "PATCH",
            f"repos/{self.repo}/issues/{n}",
            json={"state": "closed", "state_reason": "completed"},
        )
        return n


def _shown(value: Any) -> str:
    """A value from an answer, as an error message names it: a container by its kind, a
    scalar as its JSON (cut short)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:39] + "…"


_EXPECTED = {
    "int_type": "an integer",
    "string_type": "a string",
    "model_type": "an object",
    "dict_type": "an object",
}


def _why(exc: ValidationError, where: str) -> str:
    """The first thing wrong in an answer, as one clause: "item 2: number is "abc", not an
    integer"."""
    err = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in err["loc"])
    subject = f"{where}: {field}" if where and field else where or field or "the answer"
    if err["type"] == "missing":
        return f"{subject} is missing"
    expected = _EXPECTED.get(err["type"])
    if expected is None:
        return f"{subject}: {err['msg']}"
    return f"{subject} is {_shown(err.get('input'))}, not {expected}"


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
