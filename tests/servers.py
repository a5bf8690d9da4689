"""Real SCIM servers on loopback for tests: the embedded tenant and third-party scim2-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
def serve_embedded(db: Path, *, token: str | None = None) -> Iterator[str]:
    """``reconciler tenant serve`` in a subprocess; yields its SCIM base URL."""
    env = dict(os.environ)
    args = [sys.executable, "-m", "reconciler", "tenant", "serve", "--db", str(db), "--port", "0"]
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
