"""Import a live tenant into YAML: then a plan is empty; an existing directory is updated in
place, keeping what people wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from reconciler.importer import declared, import_tenant
from reconciler.live import Capabilities, LiveState
from tests.servers import serve_embedded, serve_reference

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "reconciler"]
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ACME = "urn:example:params:scim:schemas:extension:acme:1.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=180, env=env
    )


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*.yaml"))}


def test_import_from_the_embedded_tenant_then_plan_is_empty(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    assert run(tmp_path, "tenant", "init", "--for", "desired-state").returncode == 0
    assert run(tmp_path, "apply", "--auto-approve").returncode == 0
    imported = run(
        tmp_path, "import", "--out", "imported", "--tenant", "local:.reconciler/tenant.db"
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "imported 40 users, 13 groups, 6 custom attributes" in imported.stdout
    files = tree(tmp_path / "imported")
    # Split by department; every team's file, groups, attributes and the tenant.
    assert {"users/sales.yaml", "users/engineering.yaml", "attributes.yaml"} <= files.keys()
    assert {"groups/groups.yaml", "tenant.yaml"} <= files.keys()
    assert "department: Sales" in files["users/sales.yaml"]
    assert "department: Sales" not in files["users/engineering.yaml"]
    text = "".join(files.values())
    assert '"id"' not in text and "meta" not in text and "password" not in text
    plan = run(tmp_path, "plan", "imported", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes. The tenant matches desired-state." in plan.stdout


def test_import_onto_the_directory_it_came_from_changes_nothing(tmp_path: Path) -> None:
    """The sample desired-state, applied and imported back onto itself: not a byte moves
    (comments, quotes, shorthand emails, members lists, sensitive flags, descriptions)."""
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    assert run(tmp_path, "tenant", "init", "--for", "desired-state").returncode == 0
    assert run(tmp_path, "apply", "--auto-approve").returncode == 0
    before = tree(tmp_path / "desired-state")
    r = run(
        tmp_path,
        "import",
        "--out",
        "desired-state",
        "--tenant",
        "local:.reconciler/tenant.db",
        "--split-by",
        "none",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 files created, 0 updated" in r.stdout
    assert tree(tmp_path / "desired-state") == before


def _reference_schemas(tmp_path: Path) -> list[str]:
    """scim2-server options serving a custom extension with typed, secret and server-owned
    attributes (the RFC 7643 schemas it ships, plus this one)."""
    import scim2_server

    resources = Path(scim2_server.__file__).parent / "resources"
    schemas = json.loads((resources / "default-schemas.json").read_text())

    def attr(name: str, kind: str = "string", **more: Any) -> dict[str, Any]:
        return {
            "name": name,
            "type": kind,
            "multiValued": False,
            "required": False,
            "caseExact": False,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none",
            "description": f"The {name}.",
            **more,
        }

    schemas.append(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": ACME,
            "name": "AcmeUser",
            "description": "Acme",
            "attributes": [
                attr("employmentType"),
                attr("level", "integer"),
                attr("remote", "boolean"),
                attr("skills", multiValued=True),
                attr("pin", mutability="writeOnly", returned="never"),
                attr("score", "integer", mutability="readOnly"),
            ],
            "meta": {"resourceType": "Schema", "location": f"/v2/Schemas/{ACME}"},
        }
    )
    types = json.loads((resources / "default-resource-types.json").read_text())
    types[0]["schemaExtensions"].append({"schema": ACME, "required": False})
    (tmp_path / "schemas.json").write_text(json.dumps(schemas))
    (tmp_path / "types.json").write_text(json.dumps(types))
    return [
        "--schema",
        str(tmp_path / "schemas.json"),
        "--resource-type",
        str(tmp_path / "types.json"),
    ]


def test_import_from_the_reference_server_with_typed_custom_attributes(tmp_path: Path) -> None:
    with serve_reference(*_reference_schemas(tmp_path)) as url:
        a = httpx.post(
            f"{url}/Users",
            json={
                "schemas": [CORE, ENT, ACME],
                "userName": "a@x.example",
                "password": "hunter2-secret",
                "title": "Boss",
                "emails": [{"value": "a@x.example", "type": "work", "primary": True}],
                ENT: {"department": "R&D Ops", "employeeNumber": "0007"},
                ACME: {
                    "employmentType": "employee",
                    "level": 3,
                    "remote": True,
                    "skills": ["go", "sql"],
                    "pin": "4321",
                },
            },
        ).json()
        httpx.post(
            f"{url}/Users",
            json={
                "schemas": [CORE, ENT],
                "userName": "b@x.example",
                "active": False,
                # No type: many tenants keep none, and the plan must not call that drift.
                "emails": [{"value": "b@x.example", "primary": True}],
                "phoneNumbers": [{"value": "+1 555 0100"}],
            },
        )
        httpx.post(
            f"{url}/Groups",
            json={"schemas": [GROUP], "displayName": "Ops", "members": [{"value": a["id"]}]},
        )
        r = run(tmp_path, "import", "--out", "s", "--tenant", url, "--split-by", "employmentType")
        assert r.returncode == 0, r.stdout + r.stderr
        files = tree(tmp_path / "s")
        assert set(files) == {
            "tenant.yaml",
            "attributes.yaml",
            "groups/groups.yaml",
            "users/employee.yaml",
            "users/other.yaml",
        }
        assert "1 new users have no employmentType: written to s/users/other.yaml" in r.stdout
        attributes = files["attributes.yaml"]
        assert "  - name: level\n    type: integer\n" in attributes
        assert "  - name: remote\n    type: boolean\n" in attributes
        assert "  - name: skills\n    multi_valued: true\n" in attributes
        assert f'scim: {{schema: "{ACME}"}}' in attributes
        user = files["users/employee.yaml"]
        assert "level: 3\n" in user and "remote: true\n" in user and "skills: [go, sql]" in user
        assert "employeeNumber: '0007'" in user and "emails: [a@x.example]" in user
        text = "".join(files.values())
        assert "hunter2" not in text and "4321" not in text and "pin" not in text
        plan = run(tmp_path, "plan", "s", "--detailed-exitcode")
        assert plan.returncode == 0, plan.stdout + plan.stderr


def test_reimport_updates_in_place_and_keeps_what_people_wrote(tmp_path: Path) -> None:
    with serve_reference() as url:
        a = httpx.post(
            f"{url}/Users",
            json={
                "schemas": [CORE, ENT],
                "userName": "a@x.example",
                "externalId": "e-a",
                "title": "Boss",
                ENT: {"department": "Ops"},
            },
        ).json()
        b = httpx.post(
            f"{url}/Users", json={"schemas": [CORE, ENT], "userName": "b@x.example"}
        ).json()
        group = httpx.post(
            f"{url}/Groups",
            json={"schemas": [GROUP], "displayName": "Ops", "members": [{"value": a["id"]}]},
        ).json()
        first = run(tmp_path, "import", "--out", "s", "--tenant", url)
        assert first.returncode == 0, first.stdout + first.stderr
        s = tmp_path / "s"
        # People edit: a comment, b moved into a file of their own, the group lists its
        # members itself (with a comment) and gets a description, the attribute is sensitive.
        ops = (s / "users/ops.yaml").read_text()
        (s / "users/ops.yaml").write_text(
            "# Owned by the platform team.\n"
            + ops.replace("title: Boss", "title: Boss  # promoted in May").replace(
                "    groups: [Ops]\n", ""
            )
        )
        (s / "users/other.yaml").rename(s / "users/contractors.yml")
        groups = (s / "groups/groups.yaml").read_text()
        (s / "groups/groups.yaml").write_text(
            groups.replace(
                "  - displayName: Ops\n",
                "  - displayName: Ops\n    description: Operations\n"
                "    members:\n      - a@x.example  # the lead\n",
            )
        )
        attrs = (s / "attributes.yaml").read_text()
        (s / "attributes.yaml").write_text(
            attrs.replace("  - name: department\n", "  - name: department\n    sensitive: true\n")
        )
        assert run(tmp_path, "validate", "s").returncode == 0
        # The tenant moves on: a's title and externalId-stable rename, b joins Ops, c arrives.
        patch = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
        httpx.patch(
            f"{url}/Users/{a['id']}",
            json={
                "schemas": [patch],
                "Operations": [
                    {"op": "replace", "path": "title", "value": "CEO"},
                    {"op": "replace", "path": "userName", "value": "a.smith@x.example"},
                ],
            },
        )
        httpx.patch(
            f"{url}/Groups/{group['id']}",
            json={
                "schemas": [patch],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": b["id"]}]}],
            },
        )
        httpx.post(
            f"{url}/Users",
            json={"schemas": [CORE, ENT], "userName": "c@x.example", ENT: {"department": "Ops"}},
        )
        again = run(tmp_path, "import", "--out", "s", "--tenant", url)
        assert again.returncode == 0, again.stdout + again.stderr
        files = tree(s)
        ops = files["users/ops.yaml"]
        assert ops.startswith("# Owned by the platform team.\n")
        assert "title: CEO   # promoted in May" in ops
        assert "userName: a.smith@x.example" in ops and "a@x.example" not in ops
        assert ops.index("a.smith@x.example") < ops.index("c@x.example")  # appended
        assert "groups:" not in ops  # Ops lists its members itself
        assert "b@x.example" in (s / "users/contractors.yml").read_text()
        assert "b@x.example" not in "".join(v for k, v in files.items() if k.startswith("users/"))
        lines = [line.split("#")[0].rstrip() for line in files["groups/groups.yaml"].splitlines()]
        assert lines[-4:] == [
            "    description: Operations",
            "    members:",
            "      - a.smith@x.example",  # renamed where it was: its comment stays
            "      - b@x.example",
        ]
        assert "a.smith@x.example # the lead" in files["groups/groups.yaml"]
        assert "  - name: department\n    sensitive: true\n" in files["attributes.yaml"]
        plan = run(tmp_path, "plan", "s", "--detailed-exitcode")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        once_more = run(tmp_path, "import", "--out", "s", "--tenant", url)
        assert "0 files created, 0 updated" in once_more.stdout and tree(s) == files


def test_secrets_and_server_owned_fields_are_never_written(tmp_path: Path) -> None:
    """Even when a tenant returns what it should not (a password, a write-only attribute)."""
    schemas = {
        "Resources": [
            {
                "id": ACME,
                "attributes": [
                    {"name": "pin", "type": "string", "mutability": "writeOnly"},
                    {"name": "token", "type": "string", "returned": "never"},
                    {"name": "score", "type": "integer", "mutability": "readOnly"},
                    {"name": "address", "type": "complex"},
                    {"name": "level", "type": "integer"},
                ],
            }
        ]
    }
    user = {
        "id": "u-1",
        "meta": {"version": 'W/"1"', "resourceType": "User"},
        "schemas": [CORE, ACME],
        "userName": "a@x.example",
        "password": "hunter2",
        ACME: {"pin": "4321", "token": "tok-999", "score": 7, "address": {"x": 1}, "level": 2},
        "urn:ietf:params:scim:schemas:extension:reconciler:2.0:User": {"role": "admin"},
        "entitlements": [{"value": "GoTo Meeting"}],
    }
    live = LiveState(url="local:x", users=(user,), groups=(), capabilities=Capabilities())
    result = import_tenant(live, tmp_path / "s", url="local:x", schemas=declared(schemas))
    text = "".join(tree(tmp_path / "s").values())
    for secret in ("hunter2", "4321", "tok-999", "u-1", "W/", "score", "GoTo Meeting", "admin"):
        assert secret not in text
    assert "level: 2" in text and result.attributes == 1
    assert sorted(result.skipped) == [
        f"address ({ACME}): complex (sub-attributes)",
        f"pin ({ACME}): secret (write-only)",
        f"score ({ACME}): server-owned (read-only)",
        f"token ({ACME}): secret (write-only)",
    ]


def test_import_with_a_token_writes_its_variable_name_not_the_token(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    from reconciler.tenant.seed import seed

    seed(db, 120, 6)
    with serve_embedded(db, token="s3cr3t-value") as url:
        env = {**os.environ, "IMPORT_TOKEN": "s3cr3t-value"}
        r = run(
            tmp_path,
            "import",
            "--out",
            "s",
            "--tenant",
            url,
            "--token-env",
            "IMPORT_TOKEN",
            env=env,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        tenant = (tmp_path / "s" / "tenant.yaml").read_text()
        assert "auth: {type: bearer, token_env: IMPORT_TOKEN}" in tenant
        assert "s3cr3t" not in "".join(tree(tmp_path / "s").values()) + r.stdout + r.stderr
        assert run(tmp_path, "plan", "s", "--detailed-exitcode", env=env).returncode == 0


def test_bad_input_is_one_clear_message(tmp_path: Path) -> None:
    (tmp_path / "file.yaml").write_text("users: []\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "users.yaml").write_text("users: [\n")
    cases = [
        (("--out", "s", "--tenant", "local:missing.db"), "there is no embedded tenant"),
        (("--out", "s", "--tenant", "https://u:pw@example.com/scim"), "carries credentials"),
        (("--out", "s", "--tenant", "ftp://example.com"), "is not a tenant URL"),
        (("--out", "s", "--tenant", "http://127.0.0.1:9/scim"), "cannot reach the tenant"),
    ]
    for args, message in cases:
        r = run(tmp_path, "import", *args)
        assert r.returncode == 1 and message in r.stderr, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and "pw" not in r.stderr
    assert not (tmp_path / "s").exists()
    db = tmp_path / "t.db"
    from reconciler.tenant.seed import seed

    seed(db, 5, 2)
    for out, message in (("file.yaml", "is not a directory"), ("broken", "do not read as YAML")):
        r = run(tmp_path, "import", "--out", out, "--tenant", f"local:{db}")
        assert r.returncode == 1 and message in r.stderr, r.stdout + r.stderr
        assert "Traceback" not in r.stderr
    assert (tmp_path / "broken" / "users.yaml").read_text() == "users: [\n"
    assert (tmp_path / "file.yaml").read_text() == "users: []\n"
    # Where the file is broken, as validate says it.
    r = run(tmp_path, "import", "--out", "broken", "--tenant", f"local:{db}")
    assert "\n  broken/users.yaml:2:1: did not find expected node content\n" in r.stderr
    # An --out that cannot be created.
    r = run(tmp_path, "import", "--out", "file.yaml/sub", "--tenant", f"local:{db}")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("error: cannot create file.yaml/sub: Not a directory\n"), r.stderr


def test_import_onto_a_directory_of_another_tenant_is_refused(tmp_path: Path) -> None:
    """Importing tenant B into a directory whose tenant.yaml names tenant A would make the
    next plan create B's users in A: refused before anything is read, as is a --profile
    that contradicts tenant.yaml. The same tenant, written another way, is imported."""
    from reconciler.tenant.seed import seed

    seed(tmp_path / "a.db", 3, 1)
    seed(tmp_path / "b.db", 5, 2)
    assert run(tmp_path, "import", "--out", "s", "--tenant", "local:a.db").returncode == 0
    before = tree(tmp_path / "s")
    assert "profile: generic" in before["tenant.yaml"]
    cases = [
        (
            ("--tenant", "local:b.db"),
            "error: s/tenant.yaml names the tenant 'local:a.db', not 'local:b.db': its plans "
            "go to 'local:a.db', which would then create the users imported from 'local:b.db'",
        ),
        (
            ("--tenant", "local:./a.db", "--profile", "goto"),
            "error: s/tenant.yaml says profile: generic, not goto",
        ),
    ]
    for args, message in cases:
        r = run(tmp_path, "import", "--out", "s", *args)
        assert r.returncode == 1 and r.stderr.startswith(message + "\n"), r.stderr
    assert tree(tmp_path / "s") == before
    again = run(tmp_path, "import", "--out", "s", "--tenant", "local:./a.db")
    assert again.returncode == 0, again.stdout + again.stderr
    assert tree(tmp_path / "s") == before


def test_a_record_the_tenant_sends_broken_is_left_out_and_said(tmp_path: Path) -> None:
    """Import what is valid, and say which record was not imported, and why."""
    from tests.servers import serve_json

    def listing(resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(resources),
            "itemsPerPage": len(resources),
            "Resources": resources,
        }

    users = [
        {"id": "u1", "userName": "ok@acme.example", "active": "False"},
        {"id": "u2", "userName": "bad@acme.example", "emails": "bad@acme.example"},
    ]
    with serve_json({"Users": listing(users), "Groups": listing([])}) as url:
        r = run(tmp_path, "import", "--out", "ds", "--tenant", url)
    assert r.returncode == 0, r.stderr
    assert "imported 1 users" in r.stdout
    assert (
        "warning: skipped User 'u2' (bad@acme.example): emails is not a list of objects" in r.stderr
    )
    written = "".join(tree(tmp_path / "ds").values())
    assert "ok@acme.example" in written and "bad@acme.example" not in written


def test_what_the_import_cannot_write_is_said(tmp_path: Path) -> None:
    """A member group (desired-state lists users as members) and a manager that is no user
    are named in the import's output, not dropped without a word."""
    with serve_reference() as url:
        a = httpx.post(
            f"{url}/Users",
            json={
                "schemas": [CORE, ENT],
                "userName": "a@x.example",
                ENT: {"manager": {"value": "no-such-id"}},
            },
        ).json()
        ops = httpx.post(
            f"{url}/Groups",
            json={"schemas": [GROUP], "displayName": "Ops", "members": [{"value": a["id"]}]},
        ).json()
        httpx.post(
            f"{url}/Groups",
            json={
                "schemas": [GROUP],
                "displayName": "Leads",
                "members": [{"value": a["id"]}, {"value": ops["id"], "type": "Group"}],
            },
        )
        r = run(tmp_path, "import", "--out", "s", "--tenant", url, "--split-by", "none")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (
        "not written: group 'Leads' has the group 'Ops' as a member: desired-state lists users "
        "as members, and plans leave a member group as it is\n"
    ) in r.stdout
    assert (
        "not written: user 'a@x.example' has the manager 'no-such-id', which is no user of the "
        "tenant\n"
    ) in r.stdout
    assert "groups: [Leads, Ops]" in tree(tmp_path / "s")["users/users.yaml"]
