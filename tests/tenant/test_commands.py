"""`reconciler tenant serve|init|seed` on bad input: a clear message, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def tenant(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "tenant", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (("serve", "--db", "t.db", "--port", "99999"), 1, "less than or equal to 65535"),
        (("serve", "--db", "t.db", "--host", "no-such-host.invalid"), 1, "--host, e.g. 127.0.0.1"),
        (("serve", "--db", "missing/t.db"), 1, "missing does not exist"),
        (("serve", "--db", "junk.txt"), 1, "is not a tenant database"),
        (("init", "--db", "t.db", "--licence", "seats"), 1, "is not PRODUCT=SEATS"),
        (("init", "--db", "t.db", "--profile", "okta"), 1, "unknown profile 'okta'"),
        (
            ("init", "--db", "t.db", "--licence", "GoTo=5", "--licence", "GoTo=7"),
            1,
            "--licence 'GoTo' is given twice (5 and 7 seats)",
        ),
        (("init", "--db", "t.db", "--verified-domain", ""), 1, "'' is not a domain name"),
        (("init", "--db", "t.db", "--verified-domain", "a b.example"), 1, "is not a domain"),
        (
            ("init", "--db", "t.db", "--schema-from", "nowhere"),
            1,
            "nowhere: error: no such directory",
        ),
        (("seed", "--db", "t.db", "--users", "-1"), 1, "greater than or equal to 0"),
        (("init",), 1, "tenant init needs --db PATH or --for DIR"),
        (("init", "--for", "s", "--db", "t.db"), 1, "cannot be combined with --db"),
        (("init", "--for", "remote"), 1, "names https://scim.example/v2, not an embedded tenant"),
        (("init", "--for", "nowhere"), 1, "nowhere: error: no such directory"),
        (
            ("init", "--for", "goto", "--profile", "generic"),  # generic, the old default
            1,
            "--profile generic contradicts goto/tenant.yaml, which says profile: goto",
        ),
        (("init", "--for", "goto", "--profile", "genesys"), 1, "which says profile: goto"),
    ],
)
def test_bad_input(tmp_path: Path, args: tuple[str, ...], code: int, expected: str) -> None:
    (tmp_path / "junk.txt").write_text("not a database, just text\n" * 100)
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "tenant.yaml").write_text("url: https://scim.example/v2\n")
    (tmp_path / "goto").mkdir()
    (tmp_path / "goto" / "tenant.yaml").write_text("url: local:t.db\nprofile: goto\n")
    r = tenant(tmp_path, *args)
    assert r.returncode == code, r.stderr
    assert expected in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "t.db").exists() or "--db" in args, "no tenant was written"


@pytest.mark.parametrize("profile", [(), ("--profile", "goto")])
def test_init_for_takes_the_profile_of_tenant_yaml(
    tmp_path: Path, profile: tuple[str, ...]
) -> None:
    """--for without --profile, or with the one tenant.yaml says, makes a tenant of that
    profile (a goto tenant lists and constrains as GoTo does)."""
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "tenant.yaml").write_text("url: local:t.db\nprofile: goto\n")
    r = tenant(tmp_path, "init", "--for", "ds", *profile)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('tenant t.db: {"profile":"goto",'), r.stdout


def test_init_again_says_what_it_replaced(tmp_path: Path) -> None:
    """Re-running init replaces a tenant's settings: what it had and loses is named, not
    dropped without a word."""
    r = tenant(
        tmp_path, "init", "--db", "t.db", "--licence", "GoTo=5", "--verified-domain", "A.example"
    )
    assert r.returncode == 0 and "note:" not in r.stdout, r.stdout + r.stderr
    assert '"verified_domains":["a.example"]' in r.stdout
    r = tenant(tmp_path, "init", "--db", "t.db", "--profile", "goto")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == (
        'note: replaced what t.db had before: profile "generic" → "goto"; licences '
        '{"GoTo": 5} → {}; verified_domains ["a.example"] → []'
    )
    again = tenant(tmp_path, "init", "--db", "t.db", "--profile", "goto")
    assert "note:" not in again.stdout


def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        r = tenant(tmp_path, "serve", "--db", "t.db", "--port", port)
    assert r.returncode == 1 and "Address already in use" in r.stderr, r.stderr
    assert "pick another --port (or 0 for a free one)" in r.stderr


def test_serve_a_database_with_records_the_schemas_reject(tmp_path: Path) -> None:
    import json
    import sqlite3

    from reconciler.tenant.seed import seed

    seed(tmp_path / "t.db", 3, 1)
    conn = sqlite3.connect(tmp_path / "t.db")
    body = {"id": "zzz", "userName": 42, "meta": {"resourceType": "User"}}
    conn.execute("INSERT INTO resources VALUES ('User', 'zzz', ?)", (json.dumps(body),))
    conn.commit()
    conn.close()
    r = tenant(tmp_path, "serve", "--db", "t.db")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "t.db holds 1 record(s) this tenant's schemas reject:" in r.stderr
    assert "User 'zzz': userName: Input should be a valid string" in r.stderr


def test_serve_lists_rows_whose_meta_does_not_name_their_type(tmp_path: Path) -> None:
    """Rows written by another tool (a restore, a script) may lack meta.resourceType; the
    row's own type says what they are, and they are served, not silently dropped."""
    import json
    import sqlite3

    import httpx

    from reconciler.tenant.seed import seed
    from tests.servers import serve_embedded

    seed(tmp_path / "t.db", 2, 0)
    conn = sqlite3.connect(tmp_path / "t.db")
    (uid,) = conn.execute("SELECT id FROM resources WHERE type = 'User' LIMIT 1").fetchone()
    rows = [
        ("Group", "g-restored", {"displayName": "Restored", "members": [{"value": uid}]}),
        ("User", "u-restored", {"userName": "restored@acme.example", "meta": {}}),
    ]
    for type_, rid, body in rows:
        schema = f"urn:ietf:params:scim:schemas:core:2.0:{type_}"
        body = {"schemas": [schema], "id": rid, **body}
        conn.execute("INSERT INTO resources VALUES (?, ?, ?)", (type_, rid, json.dumps(body)))
    conn.commit()
    conn.close()
    with serve_embedded(tmp_path / "t.db") as url:
        groups = httpx.get(f"{url}/Groups").json()["Resources"]
        users = httpx.get(f"{url}/Users", params={"filter": 'userName eq "restored@acme.example"'})
    assert [(g["displayName"], [m["value"] for m in g["members"]]) for g in groups] == [
        ("Restored", [uid])
    ]
    assert [u["id"] for u in users.json()["Resources"]] == ["u-restored"]
