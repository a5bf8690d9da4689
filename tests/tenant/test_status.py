"""`reconciler tenant status`: capabilities, counts, custom schema check, clear failures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.servers import free_port, serve_embedded, serve_reference

REPO = Path(__file__).resolve().parents[2]


def status(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "tenant", "status", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_of_a_tenant_that_knows_our_schemas(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    db = tmp_path / "t.db"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "tenant",
            "init",
            "--db",
            str(db),
            "--schema-from",
            "desired-state",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    with serve_embedded(db) as url:
        r = status(tmp_path, "--tenant", url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "users    0" in r.stdout and "etag yes" in r.stdout
    assert (
        "ok       employmentType (urn:acme:params:scim:schemas:extension:acme:1.0:User" in r.stdout
    )


def test_missing_custom_schema_and_unreachable_tenant(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    with serve_reference() as url:
        r = status(tmp_path, "--tenant", url)
    assert r.returncode == 1
    assert "MISSING  employmentType" in r.stdout and "ok       costCenter" in r.stdout
    r = status(tmp_path, "--tenant", f"http://127.0.0.1:{free_port()}/v2")
    assert (
        r.returncode == 1 and "cannot reach the tenant" in r.stderr and "Traceback" not in r.stderr
    )
