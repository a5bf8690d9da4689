"""Credentials from environment variables: bearer tokens and OAuth2 client credentials.

Secrets live only in memory, in request headers; they never appear in messages or reprs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import httpx

from reconciler.desired.models import Auth, AuthType
from reconciler.errors import TenantAuthError
from reconciler.urls import has_credentials


def _env(env: Mapping[str, str], name: str | None, what: str) -> str:
    value = env.get(name or "")
    if not value:
        raise TenantAuthError(
            f"the {what} is not set: environment variable {name} is empty or missing",
            f"export {name}=… (in CI: a secret of the environment the job runs in)",
        )
    return value


class Credentials:
    """Produces the Authorization header for a tenant; refreshes OAuth2 tokens on expiry."""

    def __init__(self, auth: Auth, env: Mapping[str, str]) -> None:
        self.auth = auth
        self._env = env
        self._token: str | None = None
        self._expires = 0.0
        self._fetching = asyncio.Lock()
        if auth.type is AuthType.bearer:
            self._token = _env(env, auth.token_env, "bearer token")
            self._expires = float("inf")
        elif auth.type is AuthType.oauth2_client_credentials:
            if has_credentials(str(auth.token_url or "")):
                raise TenantAuthError(
                    "auth.token_url carries credentials (user:password@); they are not shown here",
                    "remove them from the URL: the client id and secret come from "
                    "client_id_env and client_secret_env",
                )
            # Fail early, before any request, when a variable is missing.
            _env(env, auth.client_id_env, "OAuth2 client id")
            _env(env, auth.client_secret_env, "OAuth2 client secret")

    def __repr__(self) -> str:
        return f"Credentials(type={self.auth.type.value})"

    def secrets(self) -> list[str]:
        """Every secret these credentials hold now (the token, a minted access token, the
        client secret), longest first: what a tenant's error message must never echo."""
        found = {
            self._token or "",
            self._env.get(self.auth.token_env or "", ""),
            self._env.get(self.auth.client_secret_env or "", ""),
        }
        return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)

    @property
    def refreshable(self) -> bool:
        return self.auth.type is AuthType.oauth2_client_credentials

    def invalidate(self) -> None:
        if self.refreshable:
            self._token = None

    async def header(self, http: httpx.AsyncClient) -> dict[str, str]:
        if self.auth.type is AuthType.none:
            return {}
        if self._token is None or time.monotonic() >= self._expires:
            async with self._fetching:  # one token request, however many tasks need one
                if self._token is None or time.monotonic() >= self._expires:
                    await self._fetch(http)
        return {"Authorization": f"Bearer {self._token}"}

    async def _fetch(self, http: httpx.AsyncClient) -> None:
        a = self.auth
        data = {"grant_type": "client_credentials"}
        if a.scope:
            data["scope"] = a.scope
        try:
            r = await http.post(
                str(a.token_url),
                data=data,
                auth=(
                    _env(self._env, a.client_id_env, "OAuth2 client id"),
                    _env(self._env, a.client_secret_env, "OAuth2 client secret"),
                ),
            )
        except httpx.HTTPError as exc:
            raise TenantAuthError(
                f"cannot reach the token endpoint {a.token_url}: {type(exc).__name__}",
                "check auth.token_url in tenant.yaml",
            ) from None
        if r.status_code != 200:
            raise TenantAuthError(
                f"the token endpoint refused the client credentials (HTTP {r.status_code})",
                f"check {a.client_id_env} and {a.client_secret_env}",
            )
        try:
            body = r.json()
            self._token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise TenantAuthError(
                "the token endpoint answered without an access_token", "check auth.token_url"
            ) from None
        # Refresh a little before expiry (a tenth of its life, at most 30 s) so a token never
        # dies mid-request; a token without expires_in lives an hour (and 401 refreshes it).
        try:
            life = max(0.0, float(body.get("expires_in", 3600)))
        except (TypeError, ValueError):
            life = 3600.0
        self._expires = time.monotonic() + life - min(30.0, life / 10)
