"""`reconciler tenant status`: capabilities, counts, custom schema check, clear failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.servers import free_port, serve_embedded, serve_html, serve_reference

REPO = Path(__file__).resolve().parents[2]


def status(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``reconciler tenant status``, with ``env`` added to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "tenant", "status", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
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


SECRET = "s3cr3t-Tok3n-value"


def _state_with_auth(tmp_path: Path, auth: str) -> Path:
    """The sample desired state with tenant.yaml's auth block replaced."""
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    tenant = tmp_path / "desired-state" / "tenant.yaml"
    text = tenant.read_text()
    start = text.index("auth:\n")
    end = text.index("\n\n", start)
    tenant.write_text(text[:start] + auth + text[end:])
    return tmp_path


def _clear_failure(r: subprocess.CompletedProcess[str], *expected: str) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out, out
    for text in expected:
        assert text in r.stderr, out
    assert SECRET not in out, out


def test_status_with_a_wrong_token_fails_clearly_without_showing_it(tmp_path: Path) -> None:
    cwd = _state_with_auth(tmp_path, "auth:\n  type: bearer\n  token_env: SCIM_TOKEN")
    with serve_embedded(tmp_path / "t.db", token="the-right-one") as url:
        bad = status(cwd, "--tenant", url, env={"SCIM_TOKEN": SECRET})
        good = status(cwd, "--tenant", url, env={"SCIM_TOKEN": "the-right-one"})
    _clear_failure(bad, "HTTP 401", "refused our credentials", "check the token")
    assert good.returncode in (0, 1) and "users    0" in good.stdout, good.stderr


def test_status_with_the_token_variable_unset(tmp_path: Path) -> None:
    cwd = _state_with_auth(tmp_path, "auth:\n  type: bearer\n  token_env: SCIM_TOKEN_UNSET")
    r = status(cwd, "--tenant", f"http://127.0.0.1:{free_port()}/v2", env={})
    _clear_failure(r, "SCIM_TOKEN_UNSET is empty or missing", "export SCIM_TOKEN_UNSET=")


def test_status_with_an_oauth2_token_endpoint_refusing(tmp_path: Path) -> None:
    auth = (
        "auth:\n  type: oauth2_client_credentials\n"
        "  token_url: {url}/oauth/token\n  client_id_env: CID\n  client_secret_env: CSECRET"
    )
    with serve_html() as url:
        cwd = _state_with_auth(tmp_path, auth.format(url=url))
        r = status(cwd, "--tenant", url, env={"CID": "client", "CSECRET": SECRET})
    _clear_failure(r, "token endpoint refused the client credentials (HTTP 502)", "CSECRET")


def test_status_of_a_wrong_url_on_a_real_server(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    with serve_embedded(tmp_path / "t.db") as url:
        r = status(tmp_path, "--tenant", url.removesuffix("/v2") + "/scim/nope")
    _clear_failure(r, "HTTP 404", "check the URL")


def test_status_of_an_html_error_page(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    with serve_html() as url:
        r = status(tmp_path, "--tenant", url)
    _clear_failure(r, "HTTP 502 with an HTML page (502 Bad Gateway)", "not a SCIM endpoint")


def test_status_over_tls_to_an_untrusted_certificate(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    with serve_html(tls=True) as url:
        r = status(tmp_path, "--tenant", url)
    _clear_failure(r, "TLS handshake with https://127.0.0.1:", "CERTIFICATE_VERIFY_FAILED")


def test_status_over_tls_to_a_plain_http_port(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    with serve_embedded(tmp_path / "t.db") as url:
        r = status(tmp_path, "--tenant", url.replace("http://", "https://"))
    _clear_failure(r, "TLS handshake with https://127.0.0.1:")


def test_credentials_in_a_tenant_url_override_are_refused_unseen(tmp_path: Path) -> None:
    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    r = status(tmp_path, "--tenant", f"https://admin:{SECRET}@127.0.0.1:{free_port()}/v2")
    _clear_failure(r, "credentials")


def test_status_of_a_genesys_tenant_counts_inactive_users(tmp_path: Path) -> None:
    import httpx

    shutil.copytree(REPO / "desired-state", tmp_path / "desired-state")
    tenant_yaml = tmp_path / "desired-state" / "tenant.yaml"
    tenant_yaml.write_text(tenant_yaml.read_text().replace("profile: goto", "profile: genesys"))
    db = tmp_path / "t.db"
    init = [sys.executable, "-m", "reconciler", "tenant", "init", "--db", str(db)]
    subprocess.run(
        [*init, "--profile", "genesys", "--schema-from", "desired-state"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    core = "urn:ietf:params:scim:schemas:core:2.0:User"
    with serve_embedded(db) as url:
        for name, active in (("on@x.example", True), ("off@x.example", False)):
            user = {"schemas": [core], "userName": name, "active": active}
            assert httpx.post(f"{url}/Users", json=user).status_code == 201
        r = status(tmp_path, "--tenant", url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "users    1 (+ 1 inactive)" in r.stdout
    assert "client rate limit 5 requests/s" in r.stdout
    assert "groups can be created no · deleted no" in r.stdout
