"""`reconciler plan` and `show` end to end, against real servers over loopback HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import free_port, serve_embedded, serve_reference

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "reconciler"]
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_plan_against_the_embedded_tenant_with_drift(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    db = tmp_path / "tenant.db"
    assert (
        run(
            "tenant",
            "init",
            "--db",
            str(db),
            "--profile",
            "goto",
            "--schema-from",
            "desired-state",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    with serve_embedded(db) as url:
        first = run("apply", "--tenant", url, "--auto-approve", cwd=tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        # Drift: a title edited in the admin console, a member removed there.
        [olivia] = httpx.get(
            f"{url}/Users", params={"filter": 'userName eq "olivia.bennett@acme.example"'}
        ).json()["Resources"]
        httpx.patch(
            f"{url}/Users/{olivia['id']}",
            json={
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "title", "value": "CRO"}],
            },
        )
        plan = run(
            "plan", "--tenant", url, "--out", "plan.json", "--detailed-exitcode", cwd=tmp_path
        )
        assert plan.returncode == 2, plan.stdout + plan.stderr
        assert '~ title: "CRO" → "VP Sales"' in plan.stdout
        artifact = json.loads((tmp_path / "plan.json").read_text())
        [change] = artifact["changes"]
        assert change["action"] == "update" and change["version"] and change["id"] == olivia["id"]
        assert artifact["tenant_url"] == url and len(artifact["plan_hash"]) == 64
        shown = run("show", "plan.json", "--format", "markdown", cwd=tmp_path)
        assert shown.stdout.startswith(f"<!-- reconciler:plan-hash={artifact['plan_hash']} -->")


def test_plan_against_the_reference_server(tmp_path: Path) -> None:
    with serve_reference() as url:
        root = tmp_path / "s"
        root.mkdir()
        (root / "tenant.yaml").write_text(f"url: {url}\n")
        (root / "users.yaml").write_text("users:\n  - userName: a@x.example\n    title: Boss\n")
        made = httpx.post(
            f"{url}/Users",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "A@x.example",
                "title": "Intern",
            },
            timeout=30,
        )
        assert made.status_code == 201, made.text
        plan = run("plan", "s", "--format", "json", cwd=tmp_path)
        assert plan.returncode == 0, plan.stderr
        changes = json.loads(plan.stdout)["changes"]
        assert len(changes) == 1, (changes, plan.stderr)
        [change] = changes
        assert (change["action"], change["key"]) == ("update", "a@x.example")
        assert change["fields"] == [
            {
                "path": "title",
                "before": "Intern",
                "after": "Boss",
                "sensitive": False,
                "items": [],
                "why": [],
            }
        ]


def test_invalid_state_sends_nothing(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / "tenant.yaml").write_text(f"url: http://127.0.0.1:{free_port()}/v2\n")
    (root / "users.yaml").write_text("users:\n  - userName: a@x.example\n    groups: [Nope]\n")
    plan = run("plan", "s", cwd=tmp_path)
    assert plan.returncode == 1
    assert "unknown group 'Nope'" in plan.stderr
    assert "nothing was sent to the tenant" in plan.stderr and "cannot reach" not in plan.stderr
    assert "Traceback" not in plan.stderr


def test_a_mistyped_policy_directory_stops_before_any_request(tmp_path: Path) -> None:
    """A typo in --policies must not plan without the guardrails."""
    root = tmp_path / "s"
    root.mkdir()
    # Nothing listens on this port: reaching the tenant would fail with "cannot reach".
    (root / "tenant.yaml").write_text(f"url: http://127.0.0.1:{free_port()}/v2\n")
    (root / "users.yaml").write_text("users:\n  - userName: a@x.example\n")
    plan = run("plan", "s", "--policies", "polices", cwd=tmp_path)
    assert plan.returncode == 1
    assert "error: no such policy directory: polices" in plan.stderr
    assert "cannot reach" not in plan.stderr and "Traceback" not in plan.stderr


def test_a_mistyped_local_tenant_is_refused_never_created(tmp_path: Path) -> None:
    """`url: local:.reconciler/tenat.db` must not open a new, empty tenant (a plan to create
    everything): plan, apply, import and tenant status refuse it, naming the path and how to
    create a tenant; only `tenant init` (and demo, serve, seed) create one."""
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    tenant_yaml = tmp_path / "desired-state" / "tenant.yaml"
    good = tenant_yaml.read_text()
    assert "url: local:.reconciler/tenant.db\n" in good
    tenant_yaml.write_text(good.replace("tenant.db", "tenat.db"))
    for args in (
        ("plan",),
        ("apply", "--auto-approve"),
        ("tenant", "status"),
        ("import", "--out", "imported", "--tenant", "local:.reconciler/tenat.db"),
    ):
        r = run(*args, cwd=tmp_path)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stderr.startswith(
            "error: there is no embedded tenant at .reconciler/tenat.db "
            "(local:.reconciler/tenat.db)\n"
        ), (args, r.stderr)
        assert "`reconciler tenant init --for DIR`" in r.stderr and "`reconciler demo`" in r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / ".reconciler").exists() and not (tmp_path / "imported").exists()
    # A file that is there but is no tenant (empty: SQLite would make it one, and write to it).
    (tmp_path / "z.db").touch()
    (tmp_path / "notes.txt").write_text("not a tenant")
    for name, what in (("z.db", "an empty file"), ("notes.txt", "not a SQLite database")):
        r = run("plan", "--tenant", f"local:{name}", cwd=tmp_path)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"error: {name} is {what}, not an embedded tenant (local:{name})" in r.stderr
    assert (tmp_path / "z.db").stat().st_size == 0

    tenant_yaml.write_text(good)
    made = run("tenant", "init", "--for", "desired-state", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith('tenant .reconciler/tenant.db: {"profile":"goto"')
    plan = run("plan", "--out", "plan.json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "53 to create" in plan.stdout
    # A saved plan whose tenant has gone (deleted, or the plan carried elsewhere).
    (tmp_path / ".reconciler" / "tenant.db").unlink()
    applied = run("apply", "plan.json", cwd=tmp_path)
    assert applied.returncode == 1, applied.stdout
    assert "error: there is no embedded tenant at .reconciler/tenant.db" in applied.stderr
    assert not (tmp_path / ".reconciler" / "tenant.db").exists()


def test_one_tenant_spelled_two_ways_plans_one_hash(tmp_path: Path) -> None:
    """The pull request's job may name the tenant with --tenant and the merge's by
    tenant.yaml: `local:./t.db` and `local:t.db`, a trailing slash, an upper-case scheme are
    one tenant, and plan one hash (the reviewed plan matches the merged one). The
    plan file keeps the URL as it was written, and apply takes it for that tenant."""
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    assert run("tenant", "init", "--for", "desired-state", cwd=tmp_path).returncode == 0

    def planned(tenant: str, name: str) -> dict[str, str]:
        r = run("plan", "--tenant", tenant, "--out", name, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        saved: dict[str, str] = json.loads((tmp_path / name).read_text())
        return saved

    local = [
        planned(url, f"local{i}.json")
        for i, url in enumerate(("local:.reconciler/tenant.db", "local:./.reconciler//tenant.db"))
    ]
    assert local[0]["plan_hash"] == local[1]["plan_hash"]
    assert local[1]["tenant_url"] == "local:./.reconciler//tenant.db"
    with serve_embedded(tmp_path / ".reconciler" / "tenant.db") as url:
        host = url.removeprefix("http://")
        spellings = (url, url + "/", f"HTTP://{host}")
        served = [planned(u, f"http{i}.json") for i, u in enumerate(spellings)]
        assert len({p["plan_hash"] for p in served}) == 1
        assert served[2]["tenant_url"] == f"HTTP://{host}"
        applied = run("apply", "http2.json", "--tenant", url, cwd=tmp_path)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "Apply complete: every change succeeded." in applied.stdout
