"""A GitHub REST API stand-in on loopback: just the endpoints the reconciler uses, with
pagination (Link headers), rate-limit headers and recorded requests."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

BOT = "github-actions[bot]"


@dataclass
class State:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[int, list[str]] = field(default_factory=dict)
    commit_prs: dict[str, int] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    rate_limit_once: bool = False
    next_id: int = 1000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


def _handler(state: State, base: list[str]) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ratelimit-remaining", "4999")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n) or b"{}")

        def _page(self, items: list[Any], query: dict[str, list[str]], path: str) -> None:
            per = int(query.get("per_page", ["30"])[0])
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

        def _auth(self) -> bool:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if state.tokens and token not in state.tokens:
                self._send(401, {"message": "Bad credentials"})
                return False
            if state.rate_limit_once:
                state.rate_limit_once = False
                self._send(
                    403,
                    {"message": "API rate limit exceeded"},
                    {"x-ratelimit-remaining": "0", "retry-after": "1"},
                )
                return False
            return True

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            path, query = url.path, parse_qs(url.query)
            state.requests.append((method, path))
            if not self._auth():
                return
            m = re.fullmatch(r"/repos/[^/]+/[^/]+/(.*)", path)
            if not m:
                return self._send(404, {"message": "Not Found"})
            rest = m.group(1)
            if method == "GET" and (c := re.fullmatch(r"issues/(\d+)/comments", rest)):
                return self._page(state.comments.get(int(c.group(1)), []), query, path)
            if method == "POST" and (c := re.fullmatch(r"issues/(\d+)/comments", rest)):
                item = {"id": state.new_id(), "body": self._body()["body"], "user": {"login": BOT}}
                state.comments.setdefault(int(c.group(1)), []).append(item)
                return self._send(201, item)
            if method == "PATCH" and (c := re.fullmatch(r"issues/comments/(\d+)", rest)):
                for items in state.comments.values():
                    for item in items:
                        if item["id"] == int(c.group(1)):
                            item["body"] = self._body()["body"]
                            return self._send(200, item)
                return self._send(404, {"message": "Not Found"})
            if method == "GET" and (c := re.fullmatch(r"commits/([0-9a-f]+)/pulls", rest)):
                n = state.commit_prs.get(c.group(1))
                return self._send(
                    200, [{"number": n, "state": "closed", "merged_at": "x"}] if n else []
                )
            if method == "GET" and (c := re.fullmatch(r"pulls/(\d+)/reviews", rest)):
                return self._page(state.reviews.get(int(c.group(1)), []), query, path)
            if method == "GET" and (c := re.fullmatch(r"issues/(\d+)/labels", rest)):
                return self._send(200, [{"name": x} for x in state.labels.get(int(c.group(1)), [])])
            if method == "GET" and rest == "issues":
                label = query.get("labels", [""])[0]
                wanted = query.get("state", ["open"])[0]
                found = [i for i in state.issues if label in i["labels"] and i["state"] == wanted]
                return self._page(
                    [{**i, "labels": [{"name": x} for x in i["labels"]]} for i in found],
                    query,
                    path,
                )
            if method == "POST" and rest == "issues":
                body = self._body()
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
                for issue in state.issues:
                    if issue["number"] == int(c.group(1)):
                        issue.update(self._body())
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
