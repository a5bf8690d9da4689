"""The SCIM client against real servers on loopback, and staged faults real servers can't make."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

from reconciler.desired.models import Auth, Profile
from reconciler.errors import TenantAuthError, TenantError, TenantProtocolError, TenantRequestError
from reconciler.live import LiveState
from reconciler.scim import open_client, read_live
from reconciler.scim.auth import Credentials
from reconciler.scim.client import ScimClient
from reconciler.scim.filters import eq
from reconciler.scim.profiles import ProfileFacts
from reconciler.tenant.seed import seed
from tests.servers import serve_embedded, serve_reference

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3):
        yield


def facts(page: int = 1000, chunk: int = 100) -> ProfileFacts:
    return ProfileFacts(page_size=page, member_chunk=chunk, rate_limit=0, concurrency=4)


def staged(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> ScimClient:
    http = httpx.AsyncClient(
        base_url="https://tenant.test/v2/", transport=httpx.MockTransport(handler)
    )
    return ScimClient(
        http,
        facts=kw.pop("f", facts()),
        credentials=kw.pop("creds", Credentials(Auth(), {})),
        rate_limit=0,
        url="https://tenant.test/v2",
        **kw,
    )


def test_filter_values_are_escaped() -> None:
    assert eq("userName", 'a"b\\c') == 'userName eq "a\\"b\\\\c"'
    with pytest.raises(ValueError, match="not a SCIM attribute"):
        eq('userName eq "x" or userName', "y")


def test_reads_the_embedded_tenant_in_the_fewest_requests(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    seed(db, 2500, 30)

    async def main(url: str) -> tuple[int, int, int]:
        async with open_client(url) as c:
            live = await read_live(c)
            return len(live.users), len(live.groups), c.requests_sent

    with serve_embedded(db) as url:
        users, groups, requests = asyncio.run(main(url))
    assert (users, groups) == (2500, 30)
    # 2 discovery + 3 user pages (maxResults 1000) + 1 group page.
    assert requests == 6


def test_a_read_leaves_no_page_behind_while_the_collector_is_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """read_live pauses the cyclic garbage collector (a 100,000-user read is a third faster
    without it), so each page's response must be freed by reference counting once parsed;
    otherwise a large read holds every page it has read, its JSON text beside its objects."""
    import gc

    from reconciler.scim import read

    db = tmp_path / "t.db"
    seed(db, 300, 0)
    alive: list[int] = []
    parse = read._resources

    def counting(*args: Any) -> Any:
        assert not gc.isenabled()
        alive.append(sum(isinstance(o, httpx.Response) for o in gc.get_objects()))
        return parse(*args)

    monkeypatch.setattr(read, "_resources", counting)

    async def main(url: str) -> int:
        async with httpx.AsyncClient(base_url=url + "/") as http:
            c = ScimClient(
                http,
                facts=ProfileFacts(page_size=10, member_chunk=10, rate_limit=0, concurrency=2),
                credentials=Credentials(Auth(), {}),
                rate_limit=0,
                url=url,
            )
            return len((await read_live(c)).users)

    with serve_embedded(db) as url:
        assert asyncio.run(main(url)) == 300
    assert gc.isenabled(), "the collector runs again after the read"
    # 31 pages; alive at any time: at most the responses of the two requests in flight.
    assert len(alive) == 31 and max(alive) <= 2, alive


def test_reads_the_reference_server_with_small_pages() -> None:
    with serve_reference() as url:
        for i in range(23):
            httpx.post(f"{url}/Users", json={"schemas": [CORE], "userName": f"u{i}@x.example"})

        async def main() -> tuple[int, int]:
            async with httpx.AsyncClient(base_url=url + "/") as http:
                c = ScimClient(
                    http,
                    facts=facts(page=5),
                    credentials=Credentials(Auth(), {}),
                    rate_limit=0,
                    url=url,
                )
                live = await read_live(c)
                return len({u["id"] for u in live.users}), c.requests_sent

        users, requests = asyncio.run(main())
    assert users == 23
    assert requests == 2 + 5 + 1  # discovery, ceil(23/5) user pages, one group page


def _page(resources: list[dict[str, Any]], total: int | None, start: int = 1) -> httpx.Response:
    body: dict[str, Any] = {
        "Resources": resources,
        "startIndex": start,
        "itemsPerPage": len(resources),
    }
    if total is not None:
        body["totalResults"] = total
    return httpx.Response(200, json=body)


def test_tolerates_string_booleans_integer_ids_and_bad_records() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/Users"):
            return _page(
                [
                    {"id": 7, "userName": "a", "active": "False"},
                    {"userName": "x"},
                    {"id": "8", "userName": "b", "active": "TRUE"},
                    {"id": "9", "userName": "c", "emails": "c@x.example"},
                    {"id": "10", "userName": "d", "active": "sometimes"},
                    {"id": "11", "name": "no userName"},
                    "not an object",
                    {"id": "12", "userName": "e", "schemas": [CORE, ENTERPRISE], ENTERPRISE: "x"},
                ],
                8,
            )
        return _page(
            [
                {"id": 1, "displayName": "G", "members": [{"value": 7}, {"value": "8"}]},
                {"id": "2", "displayName": "H", "members": [{"display": "no value"}]},
            ],
            2,
        )

    async def main() -> tuple[LiveState, list[str]]:
        c = staged(handler)
        return await read_live(c), c.warnings

    live, warnings = asyncio.run(main())
    assert [(u["id"], u.get("active")) for u in live.users] == [("7", False), ("8", True)]
    assert [(g["id"], [m["value"] for m in g["members"]]) for g in live.groups] == [
        ("1", ["7", "8"])
    ]
    tail = "; left out (not planned, not imported) until it is fixed in the tenant"
    assert warnings == [
        "skipped User None (x): no id" + tail,
        "skipped User '9' (c): emails is not a list of objects" + tail,
        "skipped User '10' (d): active is 'sometimes', not a boolean" + tail,
        "skipped User '11': no userName" + tail,
        "skipped User None: not a JSON object" + tail,
        f"skipped User '12' (e): {ENTERPRISE} is not an object" + tail,
        "skipped Group '2' (H): a member without a value" + tail,
    ]
    assert live.warnings == tuple(warnings)


def test_missing_total_results_reads_until_a_short_page() -> None:
    seen: list[int] = []

    def handler(req: httpx.Request) -> httpx.Response:
        start = int(req.url.params["startIndex"])
        seen.append(start)
        n = 2 if start < 5 else 1
        return _page(
            [{"id": f"{start + k}", "userName": f"u{start + k}"} for k in range(n)], None, start
        )

    async def main() -> int:
        from reconciler.scim.read import read_all

        return len(await read_all(staged(handler), "User", 2))

    assert asyncio.run(main()) == 5
    assert seen == [1, 3, 5]


def test_429_is_honoured_then_retried() -> None:
    calls = {"n": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(201, json={"id": "1", "userName": "a"})

    created = asyncio.run(staged(handler).create("User", {"userName": "a"}))
    assert created["id"] == "1" and calls["n"] == 2  # a 429 was not processed: safe to resend


def test_5xx_retried_for_get_not_for_post() -> None:
    counts = {"GET": 0, "POST": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        counts[req.method] += 1
        if req.method == "GET" and counts["GET"] < 3:
            return httpx.Response(503)
        if req.method == "POST":
            return httpx.Response(502, json={"detail": "bad gateway"})
        return httpx.Response(200, json={"id": "1"})

    c = staged(handler)
    assert asyncio.run(c.get("User", "1"))["id"] == "1"
    with pytest.raises(TenantRequestError) as err:
        asyncio.run(c.create("User", {"userName": "a"}))
    assert err.value.status == 502 and counts == {"GET": 3, "POST": 1}


def test_html_error_page_is_a_clear_protocol_error() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404,
            text="<html><title>Not Found - nginx</title></html>",
            headers={"content-type": "text/html"},
        )

    with pytest.raises(TenantProtocolError, match="HTML page \\(Not Found - nginx\\)"):
        asyncio.run(staged(handler).get("User", "1"))


def test_patch_204_without_body_and_missing_location() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "PATCH":
            body = json.loads(req.content)
            assert body["Operations"][0]["op"] == "replace"
            assert req.headers["If-Match"] == 'W/"3"'
            return httpx.Response(204)
        return httpx.Response(201, json={"id": "9", "userName": "a"})  # no Location header

    c = staged(handler)
    c.etag = True
    assert (
        asyncio.run(
            c.patch("User", "9", [{"op": "replace", "path": "title", "value": "x"}], etag='W/"3"')
        )
        is None
    )
    assert asyncio.run(c.create("User", {"userName": "a"}))["id"] == "9"


def test_http_1_0_without_keep_alive(tmp_path: Path) -> None:
    """A server speaking HTTP/1.0 and closing each connection still works."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            body = json.dumps({"id": "1", "userName": "old"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/scim+json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v2"

        async def main() -> list[str]:
            async with open_client(url) as c:
                return [(await c.get("User", "1"))["userName"] for _ in range(3)]

        assert asyncio.run(main()) == ["old"] * 3
    finally:
        server.shutdown()
        server.server_close()


def test_auth_failures_never_show_the_secret() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        assert req.headers["Authorization"] == "Bearer s3cr3t-token"
        return httpx.Response(401)

    c = staged(
        handler, creds=Credentials(Auth(type="bearer", token_env="TOK"), {"TOK": "s3cr3t-token"})
    )
    with pytest.raises(TenantAuthError) as err:
        asyncio.run(c.get("User", "1"))
    assert "s3cr3t" not in str(err.value) + err.value.hint and "s3cr3t" not in repr(c.credentials)
    with pytest.raises(TenantAuthError, match="environment variable TOK is empty or missing"):
        Credentials(Auth(type="bearer", token_env="TOK"), {})


@pytest.mark.parametrize(
    "answer",
    [
        lambda auth: httpx.Response(500, json={"detail": f"rejected {auth}"}),
        lambda auth: httpx.Response(400, json={"scimType": auth, "detail": "bad"}),
        lambda auth: httpx.Response(401, json={"detail": f"refused {auth}"}),
        lambda auth: httpx.Response(
            502, text=f"<html><title>{auth}</title></html>", headers={"content-type": "text/html"}
        ),
    ],
)
def test_a_tenant_that_echoes_our_secrets_does_not_get_them_shown(
    answer: Callable[[str], httpx.Response],
) -> None:
    """Some tenants quote the Authorization header they refused: plan, import and status
    print the error, and in CI a minted OAuth token is not a registered secret to mask."""
    static = Credentials(Auth(type="bearer", token_env="TOK"), {"TOK": "s3cr3t-token"})
    oauth = Credentials(
        Auth(
            type="oauth2_client_credentials",
            token_url="https://tenant.test/oauth/token",
            client_id_env="CID",
            client_secret_env="CSEC",
        ),
        {"CID": "client-id", "CSEC": "client-s3cr3t"},
    )
    for creds, echoed in ((static, ""), (oauth, " client-s3cr3t")):

        def handler(req: httpx.Request) -> httpx.Response:
            if req.url.path == "/oauth/token":
                return httpx.Response(200, json={"access_token": "minted-s3cr3t"})
            return answer(req.headers["Authorization"] + echoed)  # noqa: B023 (called at once)

        c = staged(handler, creds=creds)
        with pytest.raises(TenantError) as err:
            asyncio.run(c.get("User", "1"))
        shown = f"{err.value} {err.value.hint} {getattr(err.value, 'detail', '')}"
        assert "s3cr3t" not in shown, shown
        assert "***" in shown


def test_oauth2_client_credentials_refresh_once_on_401() -> None:
    tokens = iter(["t1", "t2"])
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/oauth/token":
            assert req.headers["Authorization"].startswith("Basic ")
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 3600})
        seen.append(req.headers["Authorization"])
        if req.headers["Authorization"] == "Bearer t1":
            return httpx.Response(401)
        return httpx.Response(200, json={"id": "1"})

    auth = Auth(
        type="oauth2_client_credentials",
        token_url="https://tenant.test/oauth/token",
        client_id_env="CID",
        client_secret_env="CSEC",
    )
    c = staged(handler, creds=Credentials(auth, {"CID": "id", "CSEC": "sec"}))
    assert asyncio.run(c.get("User", "1"))["id"] == "1"
    assert seen == ["Bearer t1", "Bearer t2"]


def test_connection_refused_is_a_clear_error() -> None:
    from tests.servers import free_port

    async def main() -> None:
        async with open_client(f"http://127.0.0.1:{free_port()}/v2") as c:
            await c.get("User", "1")

    with pytest.raises(TenantError, match=r"cannot reach the tenant at http://127\.0\.0\.1:"):
        asyncio.run(main())


def test_genesys_profile_reads_inactive_users_too(tmp_path: Path) -> None:
    from reconciler.tenant.settings import TenantSettings
    from reconciler.tenant.store import init_tenant

    db = tmp_path / "g.db"
    init_tenant(
        db, TenantSettings(profile="genesys", active_only_listing=True, groups_immutable=True)
    )
    with serve_embedded(db) as url:
        httpx.post(f"{url}/Users", json={"schemas": [CORE], "userName": "on@x.example"})
        httpx.post(
            f"{url}/Users", json={"schemas": [CORE], "userName": "off@x.example", "active": False}
        )

        async def main() -> tuple[set[str], bool]:
            async with open_client(url, profile=Profile.genesys, rate_limit=1000) as c:
                live = await read_live(c)
                return {u["userName"] for u in live.users}, live.capabilities.can_create_groups

        names, can_create = asyncio.run(main())
    assert names == {"on@x.example", "off@x.example"} and can_create is False


def test_a_short_page_mid_way_is_filled_in_place_and_nothing_is_read_twice() -> None:
    asked: list[tuple[int, int]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        start, count = int(req.url.params["startIndex"]), int(req.url.params["count"])
        asked.append((start, count))
        n = 3 if (start, count) == (6, 5) else count  # the second page comes back short
        ids = [{"id": str(i), "userName": f"u{i}"} for i in range(start, min(start + n, 16))]
        return httpx.Response(
            200,
            json={"totalResults": "15", "itemsPerPage": str(len(ids)), "Resources": ids},
        )

    async def main() -> list[dict[str, Any]]:
        from reconciler.scim.read import read_all

        return await read_all(staged(handler), "User", 5)

    users = asyncio.run(main())
    assert [u["id"] for u in users] == [str(i) for i in range(1, 16)]
    assert (9, 2) in asked  # the gap the short page left, and only it


def test_a_resource_listed_twice_is_kept_once_with_a_warning() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        start = int(req.url.params["startIndex"])
        # The tenant shifted between pages: "2" shows again at the top of page two.
        ids = {1: ["1", "2"], 3: ["2", "3"]}.get(start, [])
        return _page([{"id": i, "userName": f"u{i}"} for i in ids], 4, start)

    async def main() -> tuple[list[str], list[str]]:
        from reconciler.scim.read import read_all

        c = staged(handler)
        return [u["id"] for u in await read_all(c, "User", 2)], c.warnings

    ids, warnings = asyncio.run(main())
    assert ids == ["1", "2", "3"]
    assert warnings == [
        "1 User record(s) listed twice (the tenant changed while it was read); each is kept once"
    ]


def test_users_and_groups_share_one_concurrency_bound() -> None:
    state = {"now": 0, "peak": 0}

    async def handler(req: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        if req.url.path.endswith(("Users", "Groups")):
            start = int(req.url.params["startIndex"])
            return _page(
                [{"id": f"{req.url.path}{start}", "userName": "u", "displayName": "g"}], 40, start
            )
        return httpx.Response(404)

    async def main() -> tuple[int, int]:
        http = httpx.AsyncClient(
            base_url="https://tenant.test/v2/", transport=httpx.MockTransport(handler)
        )
        c = ScimClient(
            http,
            facts=ProfileFacts(page_size=1, member_chunk=1, rate_limit=0, concurrency=3),
            credentials=Credentials(Auth(), {}),
            rate_limit=0,
            url="https://tenant.test/v2",
        )
        live = await read_live(c)
        return len(live.users), len(live.groups)

    assert asyncio.run(main()) == (40, 40)
    assert state["peak"] == 3


def _timed_client(handler: Callable[[httpx.Request], httpx.Response], rate: float) -> ScimClient:
    http = httpx.AsyncClient(
        base_url="https://tenant.test/v2/", transport=httpx.MockTransport(handler)
    )
    return ScimClient(
        http,
        facts=facts(),
        credentials=Credentials(Auth(), {}),
        rate_limit=rate,
        url="https://tenant.test/v2",
    )


def test_the_rate_limit_spaces_requests_across_tasks() -> None:
    import time

    arrived: list[float] = []

    def handler(req: httpx.Request) -> httpx.Response:
        arrived.append(time.monotonic())
        return httpx.Response(200, json={"id": "1"})

    async def main() -> float:
        c = _timed_client(handler, rate=20)
        start = time.monotonic()
        await asyncio.gather(*(c.get("User", "1") for _ in range(8)))
        return time.monotonic() - start

    # 20/s: eight requests from eight tasks take at least seven intervals of 50 ms (a lower
    # bound that a busy machine can only lengthen; without the limiter they take ~10 ms).
    assert asyncio.run(main()) >= 0.35 and len(arrived) == 8


def test_429_retry_after_pauses_every_request_not_only_the_refused_one() -> None:
    import time

    arrived: list[tuple[str, float]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        arrived.append((req.url.path, time.monotonic()))
        if len(arrived) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200, json={"id": "1"})

    async def main() -> None:
        c = _timed_client(handler, rate=0)
        first = asyncio.create_task(c.get("User", "a"))
        await asyncio.sleep(0.1)  # the 429 has come back; a second request starts meanwhile
        await asyncio.gather(first, c.get("User", "b"))

    asyncio.run(main())
    refused_at = arrived[0][1]
    later = {path: at - refused_at for path, at in arrived[1:]}
    assert set(later) == {"/v2/Users/a", "/v2/Users/b"}
    assert min(later.values()) >= 0.95, later


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("1.5", 1.5), ("soon", 1.0), ("", 1.0), ("-4", 0.0), ("86400", 120.0)],
)
def test_retry_after_values(header: str, seconds: float) -> None:
    from reconciler.scim.client import retry_after

    assert retry_after(httpx.Response(429, headers={"Retry-After": header})) == seconds


def test_retry_after_as_an_http_date() -> None:
    import email.utils
    import time

    from reconciler.scim.client import retry_after

    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after(httpx.Response(429, headers={"Retry-After": when})) <= 30


def test_credentials_in_urls_are_refused_before_any_request_and_never_shown() -> None:
    from reconciler.scim import has_credentials

    async def main() -> None:
        async with open_client("https://admin:pa55word@tenant.test/v2"):
            pass

    with pytest.raises(TenantError) as err:
        asyncio.run(main())
    assert "pa55word" not in str(err.value) + err.value.hint
    assert "credentials" in str(err.value)
    assert not has_credentials("local:me@home/t.db") and has_credentials("http://a:b@h/v2")

    async def query() -> None:
        async with open_client("https://tenant.test/v2?access_token=pa55word"):
            pass

    with pytest.raises(TenantError) as err:
        asyncio.run(query())
    assert "pa55word" not in str(err.value) + err.value.hint
    assert "query string" in str(err.value)

    async def unreadable() -> None:  # from a plan file, say: never an httpx traceback
        async with open_client("http://[::1"):
            pass

    with pytest.raises(TenantError, match="the tenant URL cannot be read"):
        asyncio.run(unreadable())
    auth = Auth(
        type="oauth2_client_credentials",
        token_url="https://id:pa55word@login.test/oauth/token",
        client_id_env="CID",
        client_secret_env="CSEC",
    )
    with pytest.raises(TenantAuthError) as aerr:
        Credentials(auth, {"CID": "id", "CSEC": "sec"})
    assert "pa55word" not in str(aerr.value) + aerr.value.hint


def test_plan_shows_the_records_the_read_skipped(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    from tests.servers import serve_json

    def listing(resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "totalResults": len(resources),
            "itemsPerPage": len(resources),
            "Resources": resources,
        }

    shutil.copytree(Path(__file__).parents[2] / "desired-state", tmp_path / "desired-state")
    users = [
        {"id": "u1", "userName": "olivia.bennett@acme.example", "active": "False"},
        {"id": "u2", "userName": "bad@acme.example", "emails": "bad@acme.example"},
    ]
    with serve_json({"Users": listing(users), "Groups": listing([])}) as url:
        r = subprocess.run(
            [sys.executable, "-m", "reconciler", "plan", "--tenant", url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode == 0, r.stderr
    assert "(1 users, 0 groups live)" in r.stdout
    assert (
        "warning: skipped User 'u2' (bad@acme.example): emails is not a list of objects" in r.stdout
    )


def _oauth_client(handler: Callable[[httpx.Request], httpx.Response]) -> ScimClient:
    auth = Auth(
        type="oauth2_client_credentials",
        token_url="https://tenant.test/oauth/token",
        client_id_env="CID",
        client_secret_env="CSEC",
        scope="identity:scim.org",
    )
    return staged(handler, creds=Credentials(auth, {"CID": "id", "CSEC": "sec"}))


def test_oauth2_token_refreshed_before_it_expires() -> None:
    fetched: list[str] = []
    used: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/oauth/token":
            assert b"scope=identity%3Ascim.org" in req.content
            fetched.append(f"t{len(fetched) + 1}")
            return httpx.Response(200, json={"access_token": fetched[-1], "expires_in": 1})
        used.append(req.headers["Authorization"])
        return httpx.Response(200, json={"id": "1", "userName": "a"})

    async def main() -> None:
        c = _oauth_client(handler)
        await c.get("User", "1")
        await asyncio.sleep(1.0)  # the 1-second token has (nearly) expired
        await c.get("User", "1")

    asyncio.run(main())
    assert used == ["Bearer t1", "Bearer t2"]


def test_oauth2_one_token_request_for_many_concurrent_requests() -> None:
    fetched: list[str] = []

    async def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/oauth/token":
            await asyncio.sleep(0.05)
            fetched.append("t")
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(200, json={"id": "1", "userName": "a"})

    async def main() -> None:
        c = _oauth_client(handler)  # type: ignore[arg-type]
        await asyncio.gather(*(c.get("User", "1") for _ in range(6)))

    asyncio.run(main())
    assert fetched == ["t"]


def _discover(url: str) -> Any:
    from reconciler.scim.discovery import discover

    async def main() -> Any:
        async with open_client(url) as c:
            return await discover(c)

    return asyncio.run(main())


def test_discovery_of_both_real_servers(tmp_path: Path) -> None:
    with serve_embedded(tmp_path / "t.db") as url:
        ours = _discover(url)
    with serve_reference() as url:
        reference = _discover(url)
    for caps in (ours, reference):
        assert (caps.patch, caps.bulk, caps.filter, caps.sort, caps.etag) == (True,) * 5
        assert (caps.bulk_max_operations, caps.max_results, caps.pagination) == (
            1000,
            1000,
            "index",
        )
        assert "department" in caps.extension_schemas[ENTERPRISE]
    access = "urn:ietf:params:scim:schemas:extension:reconciler:2.0:User"
    assert set(ours.extension_schemas[access]) == {
        "role",
        "userGroup",
        "deviceGroups",
        "settingsTemplate",
    }
    assert access not in reference.extension_schemas


def test_discovery_reads_loose_self_descriptions() -> None:
    config = {
        "patch": {"supported": "true"},
        "bulk": {"supported": True, "maxOperations": "1,000", "maxPayloadSize": "oops"},
        "filter": {"supported": "True", "maxResults": "200"},
        "etag": {"supported": "false"},
        "pagination": {"index": True, "cursor": True, "maxPageSize": 50},
        "authenticationSchemes": ["oauth", {"type": "oauthbearertoken"}, {"name": "x"}],
    }
    schemas = {"Resources": [{"id": "urn:x:1.0:User", "attributes": ["a", {"name": "b"}]}, 7]}
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        path = req.url.path.rsplit("/", 1)[1]
        if path in ("Users", "Groups"):
            seen.append(req.url.params["count"])
            return _page([], 0)
        return httpx.Response(200, json=config if path == "ServiceProviderConfig" else schemas)

    live = asyncio.run(read_live(staged(handler)))
    caps = live.capabilities
    assert (caps.patch, caps.bulk, caps.filter, caps.etag) == (True, True, True, False)
    assert (caps.bulk_max_operations, caps.bulk_max_payload) == (1000, 0)
    assert (caps.max_results, caps.max_page_size, caps.pagination) == (200, 50, "index")
    assert caps.auth_schemes == ("oauthbearertoken",)
    assert caps.extension_schemas == {"urn:x:1.0:User": ("b",)}
    assert seen == ["50", "50"]  # pages no larger than maxPageSize


def test_a_tenant_that_pages_only_by_cursor() -> None:
    config = {"pagination": {"cursor": True, "index": False}}
    asked: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        path = req.url.path.rsplit("/", 1)[1]
        if path == "Users":
            cursor = req.url.params["cursor"]
            assert "startIndex" not in req.url.params
            asked.append(cursor)
            n = int(cursor or 0)
            body: dict[str, Any] = {
                "Resources": [{"id": f"{n * 2 + k}", "userName": f"u{n * 2 + k}"} for k in (0, 1)]
            }
            if n < 2:
                body["nextCursor"] = str(n + 1)
            return httpx.Response(200, json=body)
        if path == "Groups":
            return httpx.Response(200, json={"Resources": [], "nextCursor": "same"})
        return httpx.Response(200, json=config if path == "ServiceProviderConfig" else [])

    with pytest.raises(TenantProtocolError, match="gave cursor 'same' twice"):
        asyncio.run(read_live(staged(handler)))
    assert asked == ["", "1", "2"]

    async def users() -> list[str]:
        from reconciler.scim.read import read_by_cursor

        return [u["id"] for u in await read_by_cursor(staged(handler), "User", 2)]

    assert asyncio.run(users()) == [str(i) for i in range(6)]


@pytest.fixture(params=["embedded", "reference"])
def real_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each real SCIM server on loopback: `reconciler tenant serve` and scim2-server."""
    if request.param == "embedded":
        with serve_embedded(tmp_path / "t.db") as url:
            yield url
    else:
        with serve_reference() as url:
            yield url


def test_writes_against_real_servers(real_server: str) -> None:
    from reconciler.scim.discovery import discover

    tricky = 'o"brien\\ops@x.example'  # a quote and a backslash, escaped in filters

    async def main() -> None:
        async with open_client(real_server) as c:
            await discover(c)
            assert c.etag and c.patch_supported
            a = await c.create("User", {"schemas": [CORE], "userName": tricky})
            b = await c.create("User", {"schemas": [CORE], "userName": "b@x.example"})
            assert [u["id"] for u in await c.find("User", "userName", tricky)] == [a["id"]]
            assert await c.find("User", "userName", 'o"brien') == []
            version = a["meta"]["version"]
            op = [{"op": "replace", "path": "title", "value": "Ops"}]
            # scim2-server answers 204 with no body (RFC 7644 allows it): read it back then.
            patched = await c.patch("User", a["id"], op, etag=version) or await c.get(
                "User", a["id"]
            )
            assert patched["title"] == "Ops" and patched["meta"]["version"] != version
            with pytest.raises(TenantRequestError) as stale:
                await c.patch("User", a["id"], op, etag=version)
            assert stale.value.status == 412
            body = {"schemas": [CORE], "userName": tricky, "displayName": "O'Brien"}
            replaced = await c.replace("User", a["id"], body, etag=patched["meta"]["version"])
            assert replaced["displayName"] == "O'Brien" and "title" not in replaced
            g = await c.create(
                "Group",
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Team",
                    "members": [{"value": a["id"]}, {"value": b["id"]}],
                },
            )
            remove = [{"op": "remove", "path": f"members[value eq {json.dumps(b['id'])}]"}]
            await c.patch("Group", g["id"], remove)
            assert [m["value"] for m in (await c.get("Group", g["id"]))["members"]] == [a["id"]]
            await c.delete("User", b["id"])
            with pytest.raises(TenantRequestError) as gone:
                await c.get("User", b["id"])
            assert gone.value.status == 404

    asyncio.run(main())


@pytest.mark.parametrize("fault", ["slow", "reset"])
def test_timeouts_and_resets_retried_for_get_never_for_post(fault: str) -> None:
    from tests.servers import serve_faults

    async def call(url: str, method: str) -> dict[str, Any]:
        timeout = httpx.Timeout(0.3, connect=1.0)
        async with httpx.AsyncClient(base_url=url + "/", timeout=timeout) as http:
            c = ScimClient(
                http, facts=facts(), credentials=Credentials(Auth(), {}), rate_limit=0, url=url
            )
            if method == "GET":
                return await c.get("User", "1")
            return await c.create("User", {"userName": "a@x.example"})

    with serve_faults([fault]) as (url, seen):
        assert asyncio.run(call(url, "GET"))["id"] == "1"
        assert seen == ["GET", "GET"]  # the first try failed, the retry went through
    with serve_faults([fault]) as (url, seen):
        with pytest.raises(TenantError, match="after the request was sent") as err:
            asyncio.run(call(url, "POST"))
        assert "look the object up before retrying" in err.value.hint
        assert seen == ["POST"]  # a POST that may have landed is never sent twice
