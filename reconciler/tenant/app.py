"""The embedded tenant as an ASGI application (served by uvicorn, or in process by httpx)."""

from __future__ import annotations

import hmac
from pathlib import Path

from scim2_models import UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.requests import ScimRequest

from reconciler.tenant.provider import build_provider
from reconciler.tenant.storage import PersistentStorage
from reconciler.tenant.store import load_settings

# The SCIM endpoints live under this prefix of the server root (scim2-server's layout).
SCIM_PREFIX = "/v2"


class TenantApplication(ASGIApplication):
    """scim2-server's ASGI application over our persistent storage, with an optional token."""

    def __init__(self, storage: PersistentStorage, token: str | None) -> None:
        super().__init__(AsyncInMemoryStorage(storage), build_provider(storage.settings))
        self.persistent = storage
        self._token = token

    def check_auth(self, request: ScimRequest) -> None:
        if self._token is None:
            return
        scheme, _, given = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._token):
            raise UnauthorizedException


def build_app(db_path: Path, *, token: str | None = None) -> TenantApplication:
    """The tenant stored in ``db_path`` (created when missing). With ``token``, every request
    needs ``Authorization: Bearer <token>``. The SCIM base is ``<root>/v2``."""
    settings = load_settings(db_path)
    storage = PersistentStorage(db_path, build_provider(settings), settings)
    return TenantApplication(storage, token)
