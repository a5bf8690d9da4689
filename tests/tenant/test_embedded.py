"""The embedded tenant over real HTTP: SCIM behaviour, persistence, vendor constraints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.tenant.settings import TenantSettings
from reconciler.tenant.store import init_tenant
from tests.servers import serve_embedded

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def user(name: str, **kw: Any) -> dict[str, Any]:
    return {"schemas": [CORE], "userName": name, **kw}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    db = tmp_path_factory.mktemp("tenant") / "t.db"
    with serve_embedded(db) as url, httpx.Client(base_url=url + "/") as c:
        yield c


def test_discovery(served: httpx.Client) -> None:
    spc = served.get("ServiceProviderConfig").json()
    assert spc["patch"]["supported"] and spc["etag"]["supported"] and spc["filter"]["supported"]
    schemas = {s["id"] for s in served.get("Schemas").json()["Resources"]}
    assert ENTERPRISE in schemas
    assert "urn:ietf:params:scim:schemas:extension:reconciler:2.0:User" in schemas
    types = {t["name"] for t in served.get("ResourceTypes").json()["Resources"]}
    assert types == {"User", "Group"}


def test_username_unique_regardless_of_case(served: httpx.Client) -> None:
    assert served.post("Users", json=user("Case.Test@x.example")).status_code == 201
    r = served.post("Users", json=user("case.test@X.EXAMPLE"))
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness"


def test_filters_paging_sorting(served: httpx.Client) -> None:
    for i in range(7):
        served.post(
            "Users",
            json=user(
                f"page{i}@x.example",
                schemas=[CORE, ENTERPRISE],
                **{ENTERPRISE: {"department": "Paging" if i % 2 else "Other"}},
            ),
        )
    r = served.get("Users", params={"filter": f'{ENTERPRISE}:department eq "Paging"'}).json()
    assert r["totalResults"] == 3
    page = served.get(
        "Users", params={"filter": 'userName sw "page"', "startIndex": 3, "count": 2}
    ).json()
    assert page["totalResults"] == 7 and page["itemsPerPage"] == 2 and page["startIndex"] == 3
    names = [
        u["userName"]
        for u in served.get(
            "Users",
            params={
                "filter": 'userName sw "page"',
                "sortBy": "userName",
                "sortOrder": "descending",
            },
        ).json()["Resources"]
    ]
    assert names == sorted(names, reverse=True)


def test_etag_if_match(served: httpx.Client) -> None:
    created = served.post("Users", json=user("etag@x.example"))
    uid, etag = created.json()["id"], created.headers["ETag"]
    ok = served.patch(
        f"Users/{uid}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "A"}]},
        headers={"If-Match": etag},
    )
    assert ok.status_code in (200, 204)
    stale = served.patch(
        f"Users/{uid}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "B"}]},
        headers={"If-Match": etag},
    )
    assert stale.status_code == 412
    assert served.get(f"Users/{uid}").json()["title"] == "A"


def test_members_must_exist_and_deleted_user_leaves_groups(served: httpx.Client) -> None:
    bad = served.post(
        "Groups", json={"schemas": [GROUP], "displayName": "Bad", "members": [{"value": "nope"}]}
    )
    assert bad.status_code == 400 and "does not exist" in bad.json()["detail"]
    a = served.post("Users", json=user("member.a@x.example")).json()["id"]
    b = served.post("Users", json=user("member.b@x.example")).json()["id"]
    g = served.post(
        "Groups",
        json={"schemas": [GROUP], "displayName": "Team", "members": [{"value": a}, {"value": b}]},
    ).json()
    removed = served.patch(
        f"Groups/{g['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "remove", "path": f'members[value eq "{b}"]'}],
        },
    )
    assert removed.status_code in (200, 204)
    assert served.delete(f"Users/{a}").status_code == 204
    after = served.get(f"Groups/{g['id']}").json()
    assert not after.get("members")
    assert after["meta"]["version"] != g["meta"]["version"]


def test_data_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with serve_embedded(db) as url:
        uid = httpx.post(f"{url}/Users", json=user("persist@x.example")).json()["id"]
        version = httpx.get(f"{url}/Users/{uid}").json()["meta"]["version"]
    with serve_embedded(db) as url:
        again = httpx.get(f"{url}/Users/{uid}").json()
        assert again["userName"] == "persist@x.example"
        # Versions never repeat after a restart, so a stale ETag can never match again.
        patched = httpx.patch(
            f"{url}/Users/{uid}",
            json={
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "title", "value": "x"}],
            },
        )
        assert patched.status_code in (200, 204)
        assert httpx.get(f"{url}/Users/{uid}").json()["meta"]["version"] != version


def test_token_required_when_configured(tmp_path: Path) -> None:
    with serve_embedded(tmp_path / "t.db", token="s3cret") as url:
        assert httpx.get(f"{url}/Users").status_code == 401
        ok = httpx.get(f"{url}/Users", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        # Announced as RFC 7643 §5 asks; /ServiceProviderConfig needs no token.
        spc = httpx.get(f"{url}/ServiceProviderConfig").json()
        assert [s["type"] for s in spc["authenticationSchemes"]] == ["oauthbearertoken"]


def _constrained(tmp_path: Path, **settings: Any) -> Path:
    db = tmp_path / "t.db"
    init_tenant(db, TenantSettings(**settings))
    return db


def test_licence_capacity(tmp_path: Path) -> None:
    db = _constrained(tmp_path, licences={"GoTo Meeting": 1})
    with serve_embedded(db) as url:
        seat = [{"value": "GoTo Meeting"}]
        assert (
            httpx.post(f"{url}/Users", json=user("l1@x.example", entitlements=seat)).status_code
            == 201
        )
        r = httpx.post(f"{url}/Users", json=user("l2@x.example", entitlements=seat))
        assert r.status_code == 400
        assert r.json()["detail"] == "out of licenses: GoTo Meeting (1 of 1 in use)"


def test_verified_domains(tmp_path: Path) -> None:
    db = _constrained(tmp_path, verified_domains=("acme.example",))
    with serve_embedded(db) as url:
        ok = user("a@acme.example", emails=[{"value": "a@acme.example"}])
        bad = user("b@gmail.example", emails=[{"value": "b@gmail.example"}])
        assert httpx.post(f"{url}/Users", json=ok).status_code == 201
        r = httpx.post(f"{url}/Users", json=bad)
        assert r.status_code == 400 and r.json()["detail"].startswith("domain not verified: ")


def test_genesys_groups_immutable_and_active_only_listing(tmp_path: Path) -> None:
    db = _constrained(tmp_path, groups_immutable=True, active_only_listing=True)
    with serve_embedded(db) as url:
        r = httpx.post(f"{url}/Groups", json={"schemas": [GROUP], "displayName": "G"})
        assert r.status_code == 403
        httpx.post(f"{url}/Users", json=user("on@x.example"))
        httpx.post(f"{url}/Users", json=user("off@x.example", active=False))
        listed = httpx.get(f"{url}/Users").json()
        assert [u["userName"] for u in listed["Resources"]] == ["on@x.example"]
        inactive = httpx.get(f"{url}/Users", params={"filter": "active eq false"}).json()
        assert [u["userName"] for u in inactive["Resources"]] == ["off@x.example"]


def test_seeding_again_adds_without_duplicates(tmp_path: Path) -> None:
    from reconciler.tenant.seed import seed

    db = tmp_path / "t.db"
    seed(db, 30, 3)
    seed(db, 30, 3)
    seed(db, 30, 3, seed=1)
    with serve_embedded(db) as url:
        users = httpx.get(f"{url}/Users", params={"count": 1000}).json()["Resources"]
        groups = httpx.get(f"{url}/Groups").json()["Resources"]
    for resources, keys in (
        (users, ("id", "userName", "externalId")),
        (groups, ("id", "displayName", "externalId")),
    ):
        for key in keys:
            values = [r[key].lower() for r in resources]
            assert len(values) == len(set(values)), key
    assert (len(users), len(groups)) == (90, 9)
