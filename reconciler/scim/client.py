"""An async SCIM 2.0 client on httpx that tolerates real tenants.

Every request goes through one place (:meth:`ScimClient.request`): the rate limiter (which also
honours 429 + Retry-After for everyone), the credentials (refreshed once on 401 for OAuth2),
retries with backoff and jitter (stamina) for idempotent requests on 5xx and connection errors,
and the translation of failures into :mod:`reconciler.errors` types — once, here.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from typing import Any

import httpx
import stamina

from reconciler.errors import (
    TenantAuthError,
    TenantError,
    TenantProtocolError,
    TenantRequestError,
)
from reconciler.scim.auth import Credentials
from reconciler.scim.filters import eq
from reconciler.scim.profiles import ProfileFacts

# Retries are reported in our results, not as log lines on stderr.
stamina.instrumentation.set_on_retry_hooks([])

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENDPOINT = {"User": "Users", "Group": "Groups"}
IDEMPOTENT = {"GET", "PUT", "DELETE", "HEAD"}


class _Transient(Exception):
    """A failure worth retrying (5xx, connection error, 429)."""

    def __init__(self, response: httpx.Response | None, exc: Exception | None = None) -> None:
        super().__init__(str(exc or response))
        self.response = response
        self.exc = exc


class RateLimiter:
    """Spaces requests to ``rate`` per second across every task, and pauses everyone after a
    429 until its Retry-After has passed.

    No lock: the event loop runs one task at a time and nothing here awaits before the slot
    is taken, so two tasks can never take the same slot.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._paused_until = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        start = max(now, self._next, self._paused_until)
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


# A Retry-After longer than this is capped: the request is retried (and may be refused again)
# rather than the run hanging for as long as a tenant asks.
MAX_RETRY_AFTER = 120.0


def retry_after(response: httpx.Response, default: float = 1.0) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date; RFC 9110 §10.2.3).
    A value that is neither gives ``default``; the result is between 0 and MAX_RETRY_AFTER."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            seconds = when.timestamp() - time.time()
        except (TypeError, ValueError):
            seconds = default
    if seconds != seconds:  # NaN
        seconds = default
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def _scim_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("scimType") or ""), str(body.get("detail") or "")


def _html_title(text: str) -> str:
    m = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return (m.group(1) if m else re.sub(r"<[^>]+>", " ", text)).strip()[:120]


def tolerate(resource: dict[str, Any]) -> dict[str, Any]:
    """Normalise what real tenants send: string booleans, integer ids and member values."""
    if "id" in resource and not isinstance(resource["id"], str):
        resource["id"] = str(resource["id"])
    active = resource.get("active")
    if isinstance(active, str) and active.strip().lower() in ("true", "false"):
        resource["active"] = active.strip().lower() == "true"
    members = resource.get("members")
    if isinstance(members, list):
        for m in members:
            if isinstance(m, dict) and not isinstance(m.get("value"), str) and "value" in m:
                m["value"] = str(m["value"])
    return resource


class ScimClient:
    """A session with one tenant. Use :func:`reconciler.scim.open_client` to make one."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        facts: ProfileFacts,
        credentials: Credentials,
        rate_limit: float,
        url: str,
        attempts: int = 4,
    ) -> None:
        self.http = http
        self.facts = facts
        self.credentials = credentials
        self.limiter = RateLimiter(rate_limit)
        self.url = url
        self.attempts = attempts
        self.requests_sent = 0
        self.retries = 0  # requests sent again: after a 429, a 5xx, a reset, a refreshed token
        self.etag = False
        self.patch_supported = True
        self.warnings: list[str] = []

    # -- the one place requests go through ------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        idempotent = method in IDEMPOTENT
        refreshed = False
        try:
            async for attempt in stamina.retry_context(
                on=_Transient, attempts=self.attempts, wait_initial=0.2, wait_max=10.0
            ):
                with attempt:
                    self.retries += attempt.num > 1
                    response = await self._send(method, path, params, json, headers, idempotent)
                    if (
                        response.status_code == 401
                        and self.credentials.refreshable
                        and not refreshed
                    ):
                        refreshed = True
                        self.retries += 1
                        self.credentials.invalidate()
                        response = await self._send(method, path, params, json, headers, idempotent)
        except _Transient as exc:
            raise self._give_up(method, path, exc) from None
        return self._check(method, path, response)

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: Any,
        headers: dict[str, str] | None,
        idempotent: bool,
    ) -> httpx.Response:
        await self.limiter.acquire()
        all_headers = {
            "Accept": "application/scim+json, application/json",
            **(await self.credentials.header(self.http)),
            **(headers or {}),
        }
        self.requests_sent += 1
        try:
            response = await self.http.request(
                method, path, params=params, json=body, headers=all_headers
            )
            # The body is read; httpx's response and its stream refer to each other, which
            # would keep a megabyte-long page alive until a cyclic collection, and a read
            # pauses those (see reconciler.gcpause). Let the stream go.
            response.stream = httpx.ByteStream(b"")
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing reached the server: safe to retry whatever the method.
            raise _Transient(None, exc) from exc
        except httpx.TransportError as exc:
            if idempotent:
                raise _Transient(None, exc) from exc
            raise TenantError(
                f"{method} {path}: {type(exc).__name__} after the request was sent",
                "the tenant may have applied it; look the object up before retrying",
            ) from exc
        if response.status_code == 429:
            self.limiter.pause(retry_after(response))
            raise _Transient(response)
        if response.status_code >= 500 and idempotent:
            raise _Transient(response)
        return response

    def _give_up(self, method: str, path: str, exc: _Transient) -> TenantError:
        if exc.response is not None:
            return self._error(method, path, exc.response)
        cause = exc.exc
        if isinstance(cause, httpx.ConnectError) and "SSL" in str(cause).upper():
            return TenantError(
                f"TLS handshake with {self.url} failed: {cause}",
                "check the URL and the tenant's certificate (SSL_CERT_FILE for a private CA)",
            )
        return TenantError(
            f"cannot reach the tenant at {self.url}: {type(cause).__name__}: {cause}",
            "check the URL in tenant.yaml (or --tenant) and that the tenant is up",
        )

    def _check(self, method: str, path: str, response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        raise self._error(method, path, response)

    def _redact(self, text: str) -> str:
        """A tenant's text without any secret of ours that it echoes (some quote the
        Authorization header they refused)."""
        for secret in self.credentials.secrets():
            text = text.replace(secret, "***")
        return text

    def _error(self, method: str, path: str, response: httpx.Response) -> TenantError:
        """What the tenant refused, in its words, never with a secret of ours in them."""
        status = response.status_code
        ctype = response.headers.get("content-type", "")
        if "json" not in ctype and response.text.lstrip().startswith("<"):
            return TenantProtocolError(
                f"{method} {path}: HTTP {status} with an HTML page "
                f"({self._redact(_html_title(response.text))})",
                "not a SCIM endpoint's answer: check the URL (the SCIM base, e.g. …/scim/v2)",
            )
        scim_type, detail = map(self._redact, _scim_error(response))
        if status in (401, 403) and not scim_type:
            return TenantAuthError(
                f"{method} {path}: HTTP {status}: the tenant refused our credentials"
                + (f" ({detail})" if detail else ""),
                "check the token or client credentials named in tenant.yaml's auth",
            )
        hint = ""
        if status == 404 and path in (*ENDPOINT.values(), "ServiceProviderConfig"):
            # A collection every SCIM tenant has is missing: the base URL is wrong.
            hint = (
                f"check the URL {self.url}: it must be the tenant's SCIM base, where /Users "
                "and /Groups live (e.g. https://…/scim/v2)"
            )
        return TenantRequestError(
            f"{method} {path}: HTTP {status}"
            + (f" {scim_type}" if scim_type else "")
            + (f": {detail}" if detail else ""),
            hint=hint,
            status=status,
            scim_type=scim_type,
            detail=detail,
            method=method,
            path=path,
        )

    def _json(self, method: str, path: str, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise TenantProtocolError(
                f"{method} {path}: the answer is not JSON", "check the URL of the SCIM base"
            ) from None
        if not isinstance(body, dict):
            raise TenantProtocolError(f"{method} {path}: the answer is not a JSON object")
        return body

    # -- resources ------------------------------------------------------------------------

    @staticmethod
    def _path(resource_type: str, rid: str | None = None) -> str:
        base = ENDPOINT.get(resource_type, resource_type)
        return f"{base}/{rid}" if rid else base

    def _if_match(self, etag: str | None) -> dict[str, str]:
        return {"If-Match": etag} if etag and self.etag else {}

    async def get(self, resource_type: str, rid: str) -> dict[str, Any]:
        path = self._path(resource_type, rid)
        return tolerate(self._json("GET", path, await self.request("GET", path)))

    async def list_page(
        self,
        resource_type: str,
        start: int,
        count: int,
        *,
        filter: str | None = None,
        excluded: str | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page: by index (``start``, 1-based) or, with ``cursor`` ("" for the first
        page), by RFC 9865 cursor."""
        params: dict[str, Any] = (
            {"startIndex": start, "count": count}
            if cursor is None
            else {"cursor": cursor, "count": count}
        )
        if filter:
            params["filter"] = filter
        if excluded:
            params["excludedAttributes"] = excluded
        path = self._path(resource_type)
        return self._json("GET", path, await self.request("GET", path, params=params))

    async def find(self, resource_type: str, attribute: str, value: str) -> list[dict[str, Any]]:
        page = await self.list_page(resource_type, 1, 10, filter=eq(attribute, value))
        return [tolerate(r) for r in page.get("Resources") or [] if isinstance(r, dict)]

    async def create(self, resource_type: str, body: dict[str, Any]) -> dict[str, Any]:
        path = self._path(resource_type)
        return tolerate(self._json("POST", path, await self.request("POST", path, json=body)))

    async def patch(
        self,
        resource_type: str,
        rid: str,
        operations: list[dict[str, Any]],
        *,
        etag: str | None = None,
    ) -> dict[str, Any] | None:
        """PATCH with lower-case ops. ``None`` when the tenant answered 204 with no body."""
        path = self._path(resource_type, rid)
        body = {"schemas": [PATCH_OP], "Operations": operations}
        r = await self.request("PATCH", path, json=body, headers=self._if_match(etag))
        if r.status_code == 204 or not r.content:
            return None
        return tolerate(self._json("PATCH", path, r))

    async def replace(
        self, resource_type: str, rid: str, body: dict[str, Any], *, etag: str | None = None
    ) -> dict[str, Any]:
        path = self._path(resource_type, rid)
        r = await self.request("PUT", path, json=body, headers=self._if_match(etag))
        return tolerate(self._json("PUT", path, r))

    async def delete(self, resource_type: str, rid: str, *, etag: str | None = None) -> None:
        path = self._path(resource_type, rid)
        await self.request("DELETE", path, headers=self._if_match(etag))
