"""A GitHub REST API stand-in on loopback: the endpoints the reconciler uses, with pagination
(Link headers), the permissions of each job's token enforced as GitHub enforces them, rate
limits staged on demand, the 65,536-character body limit, and every request recorded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

BOT = "github-actions[bot]"
BODY_LIMIT = 65_536


def github_cli(api: str, token: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``reconciler github ARGS`` against the API at ``api``, for acme/identity, with
    ``token`` and nothing else of this process's environment but ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "github", *args],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "GITHUB_API_URL": api,
            "GITHUB_REPOSITORY": "acme/identity",
            "GITHUB_TOKEN": token,
            **env,
        },
    )


@dataclass
class Pull:
    number: int
    merged: bool = False
    merge_commit_sha: str | None = None
    commits: set[str] = field(default_factory=set)
    labels: list[str] = field(default_factory=list)


@dataclass
class State:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    pulls: dict[int, Pull] = field(default_factory=dict)
    # pull request number → its reviews ({"user": {"login": …}, "state": "APPROVED", …})
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # token → permissions ({"issues": "write", …}); a token not here is rejected (401).
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    # Responses to send instead of the next ones: (status, headers, message).
    staged: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    # An answer to every request instead of the API's, token or not: (status, JSON body), or
    # (status, bytes) sent as text/plain, and optionally headers: a GitHub, a proxy or a wrong
    # URL answering oddly.
    canned: tuple[Any, ...] | None = None
    next_id: int = 1000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def grant(self, token: str, permissions: dict[str, str]) -> None:
        self.tokens[token] = dict(permissions)

    def pull(self, number: int) -> Pull:
        return self.pulls.setdefault(number, Pull(number))

    def merged(self, number: int, merge_commit_sha: str) -> None:
        p = self.pull(number)
        p.merged, p.merge_commit_sha = True, merge_commit_sha
        p.commits.add(merge_commit_sha)

    def comment_bodies(self, number: int) -> list[str]:
        return [str(c["body"]) for c in self.comments.get(number, [])]


def _allowed(perms: dict[str, str], scope: str, level: str) -> bool:
    have = perms.get(scope, "none")
    return have == "write" or (level == "read" and have == "read")


def _handler(state: State, base: list[str]) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = isinstance(body, bytes)
            data = body if raw else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if raw else "application/json")
            self.send_header("Content-Length", str(len(data)))
            limits = {
                "x-ratelimit-limit": "1000",
                "x-ratelimit-remaining": "999",
                "x-ratelimit-reset": str(int(time.time()) + 3600),
            }
            for k, v in {**limits, **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n) or b"{}")

        def _page(self, items: list[Any], query: dict[str, list[str]], path: str) -> None:
            per = min(int(query.get("per_page", ["30"])[0]), 100)
            page = int(query.get("page", ["1"])[0])
            chunk = items[(page - 1) * per : page * per]
            headers = {}
            if page * per < len(items):
                rest = "&".join(
                    f"{k}={v[0]}" for k, v in query.items() if k not in ("page", "per_page")
                )
                nxt = f"{base[0]}{path}?per_page={per}&page={page + 1}" + (
                    f"&{rest}" if rest else ""
                )
                headers["Link"] = f'<{nxt}>; rel="next"'
            self._send(200, chunk, headers)

        def _token(self) -> dict[str, str] | None:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in state.tokens:
                self._send(401, {"message": "Bad credentials"})
                return None
            if state.staged:
                status, headers, message = state.staged.pop(0)
                self._send(status, {"message": message}, headers)
                return None
            return state.tokens[token]

        def _forbidden(self) -> None:
            self._send(403, {"message": "Resource not accessible by integration"})

        def _needs(self, perms: dict[str, str], number: int | None, level: str) -> bool:
            """Issue comments and labels key their permission off the target: a pull request
            needs pull-requests, an issue needs issues."""
            scope = "pull-requests" if number in state.pulls else "issues"
            if _allowed(perms, scope, level):
                return True
            self._forbidden()
            return False

        def _too_long(self, body: dict[str, Any]) -> bool:
            if len(str(body.get("body", ""))) > BODY_LIMIT:
                self._send(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": ["body is too long (maximum is 65536 characters)"],
                    },
                )
                return True
            return False

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            path, query = url.path, parse_qs(url.query)
            state.requests.append((method, path))
            if state.canned is not None:
                return self._send(*state.canned)
            perms = self._token()
            if perms is None:
                return
            m = re.fullmatch(r"/repos/[^/]+/[^/]+/(.*)", path)
            if not m:
                return self._send(404, {"message": "Not Found"})
            rest = m.group(1)
            if c := re.fullmatch(r"issues/(\d+)/comments", rest):
                n = int(c.group(1))
                if method == "GET":
                    if self._needs(perms, n, "read"):
                        self._page(state.comments.get(n, []), query, path)
                    return None
                if method == "POST" and self._needs(perms, n, "write"):
                    body = self._body()
                    if self._too_long(body):
                        return None
                    item = {"id": state.new_id(), "body": body["body"], "user": {"login": BOT}}
                    state.comments.setdefault(n, []).append(item)
                    self._send(201, item)
                return None
            if method == "PATCH" and (c := re.fullmatch(r"issues/comments/(\d+)", rest)):
                for n, items in state.comments.items():
                    for item in items:
                        if item["id"] == int(c.group(1)):
                            if not self._needs(perms, n, "write"):
                                return None
                            body = self._body()
                            if self._too_long(body):
                                return None
                            item["body"] = body["body"]
                            return self._send(200, item)
                return self._send(404, {"message": "Not Found"})
            if method == "GET" and (c := re.fullmatch(r"commits/([0-9a-f]{40})/pulls", rest)):
                if not _allowed(perms, "pull-requests", "read"):
                    return self._forbidden()
                found = [
                    {
                        "number": p.number,
                        "state": "closed" if p.merged else "open",
                        "merged_at": "2024-05-01T12:00:00Z" if p.merged else None,
                        "merge_commit_sha": p.merge_commit_sha,
                    }
                    for p in state.pulls.values()
                    if c.group(1) in p.commits
                ]
                return self._send(200, found)
            if method == "GET" and (c := re.fullmatch(r"pulls/(\d+)/reviews", rest)):
                if not _allowed(perms, "pull-requests", "read"):
                    return self._forbidden()
                return self._page(state.reviews.get(int(c.group(1)), []), query, path)
            if method == "GET" and (c := re.fullmatch(r"issues/(\d+)/labels", rest)):
                n = int(c.group(1))
                if self._needs(perms, n, "read"):
                    labels = state.pulls[n].labels if n in state.pulls else []
                    self._page([{"name": x} for x in labels], query, path)
                return None
            if rest == "issues" and method == "GET":
                if not _allowed(perms, "issues", "read"):
                    return self._forbidden()
                label = query.get("labels", [""])[0]
                wanted = query.get("state", ["open"])[0]
                found = [i for i in state.issues if label in i["labels"] and i["state"] == wanted]
                return self._page(
                    [{**i, "labels": [{"name": x} for x in i["labels"]]} for i in found],
                    query,
                    path,
                )
            if rest == "issues" and method == "POST":
                if not _allowed(perms, "issues", "write"):
                    return self._forbidden()
                body = self._body()
                if self._too_long(body):
                    return None
                issue = {
                    "number": state.new_id(),
                    "title": body["title"],
                    "body": body["body"],
                    "labels": body.get("labels", []),
                    "state": "open",
                }
                state.issues.append(issue)
                return self._send(201, issue)
            if method == "PATCH" and (c := re.fullmatch(r"issues/(\d+)", rest)):
                if not _allowed(perms, "issues", "write"):
                    return self._forbidden()
                body = self._body()
                if self._too_long(body):
                    return None
                for issue in state.issues:
                    if issue["number"] == int(c.group(1)):
                        issue.update({k: v for k, v in body.items() if k != "state_reason"})
                        return self._send(200, issue)
            return self._send(404, {"message": "Not Found"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return H


@contextmanager
def github_standin() -> Iterator[tuple[str, State]]:
    state = State()
    base = [""]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, base))
    base[0] = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base[0], state
    finally:
        server.shutdown()
        server.server_close()
