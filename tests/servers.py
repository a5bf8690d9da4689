"""Real SCIM servers on loopback for tests: the embedded tenant and third-party scim2-server."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/ServiceProviderConfig", timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(url)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@contextmanager
def serve_embedded(db: Path, *, token: str | None = None, port: int = 0) -> Iterator[str]:
    """``reconciler tenant serve`` in a subprocess; yields its SCIM base URL. ``port``: a
    given one, so a restarted tenant keeps its URL (0: any free one)."""
    env = dict(os.environ)
    args = [sys.executable, "-m", "reconciler", "tenant", "serve", "--db", str(db)]
    args += ["--port", str(port)]
    if token:
        env["TEST_TENANT_TOKEN"] = token
        args += ["--token-env", "TEST_TENANT_TOKEN"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(
                f"no URL from tenant serve: {url!r} {proc.stderr.read() if proc.stderr else ''}"
            )
        if not token:
            _wait(url, proc)
        yield url
    finally:
        _stop(proc)


@contextmanager
def serve_reference(*args: str) -> Iterator[str]:
    """The third-party ``scim2-server`` (in memory) on a free loopback port; ``args`` are
    more of its options (``--schema FILE``, ``--resource-type FILE``)."""
    exe = shutil.which("scim2-server", path=str(Path(sys.executable).parent)) or "scim2-server"
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--hostname", "127.0.0.1", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v2"
    try:
        _wait(url, proc)
        yield url
    finally:
        _stop(proc)


class _PageHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with an HTML error page, as a proxy or a wrong URL does."""

    def do_GET(self) -> None:
        body = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve_html(*, tls: bool = False) -> Iterator[str]:
    """A loopback server answering HTML error pages; with ``tls``, over HTTPS with a
    self-signed certificate no client trusts (tests/data/selfsigned-loopback.pem)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(Path(__file__).parent / "data" / "selfsigned-loopback.pem")
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}/v2"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_json(routes: dict[str, Any]) -> Iterator[str]:
    """A loopback server answering GET <path> with the JSON in ``routes`` (404 otherwise):
    a tenant that sends what a real one only sends by accident (invalid records)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = routes.get(self.path.split("?", 1)[0].removeprefix("/v2/"))
            data = json.dumps(body).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_faults(script: list[str]) -> Iterator[tuple[str, list[str]]]:
    """A loopback server that answers its n-th request as ``script[n]`` says: "slow" (1 s
    before answering), "reset" (drops the connection with a TCP reset, no answer) or "ok" (a
    user); past the script, "ok". Yields the base URL and the methods it received."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            n = len(seen)
            seen.append(self.command)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            action = script[n] if n < len(script) else "ok"
            if action == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                self.connection.close()
                self.close_connection = True
                return
            if action == "slow":
                time.sleep(1.0)
            data = json.dumps({"id": "1", "userName": "a@x.example"}).encode()
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2", seen
    finally:
        server.shutdown()
        server.server_close()
