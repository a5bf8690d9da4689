"""The embedded tenant as an ASGI application (served by uvicorn, or in process by httpx)."""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

from scim2_models import ResourceType, SearchRequest, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication, Send
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.storage import SearchPage

from reconciler.tenant.provider import build_provider
from reconciler.tenant.service import EncodedList, TenantService
from reconciler.tenant.storage import PersistentStorage
from reconciler.tenant.store import load_settings

# The SCIM endpoints live under this prefix of the server root (scim2-server's layout).
SCIM_PREFIX = "/v2"


class _AsyncStorage(AsyncInMemoryStorage):
    """The async face of our storage. Its search pages hold the stored resources, not copies:
    the only reader is :class:`TenantService`, which publishes copies and changes nothing."""

    storage: PersistentStorage

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        return self.storage.search_stored(resource_types, search_request, position=position)


class TenantApplication(ASGIApplication):
    """scim2-server's ASGI application over our persistent storage, with an optional token."""

    def __init__(self, storage: PersistentStorage, token: str | None) -> None:
        super().__init__(_AsyncStorage(storage), storage.provider, TenantService(storage))
        self.persistent = storage
        self._token = token

    def check_auth(self, request: ScimRequest) -> None:
        if self._token is None:
            return
        scheme, _, given = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._token):
            raise UnauthorizedException

    @staticmethod
    async def send_response(response: ScimResponse, send: Send) -> None:
        """scim2-server's ``send_response``; a list of encoded resources is spliced."""
        if isinstance(response.body, EncodedList):
            body = response.body.encode()
        else:
            body = b"" if response.body is None else json.dumps(response.body).encode()
        headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
        await send(
            {"type": "http.response.start", "status": int(response.status), "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})


def build_app(db_path: Path, *, token: str | None = None) -> TenantApplication:
    """The tenant stored in ``db_path`` (created when missing). With ``token``, every request
    needs ``Authorization: Bearer <token>``. The SCIM base is ``<root>/v2``."""
    settings = load_settings(db_path)
    provider = build_provider(settings, token_required=token is not None)
    storage = PersistentStorage(db_path, provider, settings)
    return TenantApplication(storage, token)
