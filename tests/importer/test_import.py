"""Import a live tenant into YAML: then a plan is empty; comments and order survive a re-import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import serve_embedded, serve_reference

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "reconciler"]


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=180)


def test_import_from_the_embedded_tenant_then_plan_is_empty(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    assert run(tmp_path, "apply", "--auto-approve").returncode == 0
    imported = run(
        tmp_path, "import", "--out", "imported", "--tenant", "local:.reconciler/tenant.db"
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "imported 40 users, 13 groups, 6 custom attributes" in imported.stdout
    files = sorted(
        p.relative_to(tmp_path / "imported").as_posix()
        for p in (tmp_path / "imported").rglob("*.yaml")
    )
    assert (
        "users/sales.yaml" in files and "attributes.yaml" in files and "groups/groups.yaml" in files
    )
    text = "".join(p.read_text() for p in (tmp_path / "imported").rglob("*.yaml"))
    assert '"id"' not in text and "meta" not in text and "password" not in text
    plan = run(tmp_path, "plan", "imported", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes. The tenant matches desired-state." in plan.stdout


def test_import_from_the_reference_server_and_reimport_keeps_comments(tmp_path: Path) -> None:
    core = "urn:ietf:params:scim:schemas:core:2.0:User"
    ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    with serve_reference() as url:
        a = httpx.post(
            f"{url}/Users",
            json={
                "schemas": [core, ent],
                "userName": "a@x.example",
                "title": "Boss",
                ent: {"department": "Ops"},
            },
        ).json()
        httpx.post(
            f"{url}/Groups",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Ops",
                "members": [{"value": a["id"]}],
            },
        )
        first = run(tmp_path, "import", "--out", "s", "--tenant", url, "--split-by", "none")
        assert first.returncode == 0, first.stdout + first.stderr
        users = tmp_path / "s" / "users" / "users.yaml"
        users.write_text(
            "# Owned by the platform team.\n"
            + users.read_text().replace("title: Boss", "title: Boss  # promoted in May")
        )
        httpx.post(f"{url}/Users", json={"schemas": [core], "userName": "b@x.example"})
        again = run(tmp_path, "import", "--out", "s", "--tenant", url, "--split-by", "none")
        assert again.returncode == 0, again.stdout + again.stderr
        text = users.read_text()
        assert text.startswith("# Owned by the platform team.")
        assert "title: Boss  # promoted in May" in text
        assert text.index("a@x.example") < text.index("b@x.example")
        assert "groups: [Ops]" in text and "department: Ops" in text
        plan = run(tmp_path, "plan", "s", "--detailed-exitcode")
        assert plan.returncode == 0, plan.stdout + plan.stderr


def test_import_onto_the_embedded_tenant_served_over_http(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    from reconciler.tenant.seed import seed

    seed(db, 120, 6)
    with serve_embedded(db) as url:
        r = run(tmp_path, "import", "--out", "s", "--tenant", url)
        assert r.returncode == 0, r.stdout + r.stderr
        assert run(tmp_path, "plan", "s", "--detailed-exitcode").returncode == 0
