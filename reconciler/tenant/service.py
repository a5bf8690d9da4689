"""scim2-server's service with list responses served from encoded resources.

scim2-server turns each listed resource into JSON with four pydantic passes (copy, publish,
dump, and a ListResponse validated and dumped again): about 1 ms per user and 8 ms per group
with 125 members. A resource's JSON depends only on its stored version, the base URL and the
``attributes``/``excludedAttributes`` asked for, so :class:`TenantService` keeps the last one
per resource (dropped by the storage when the resource changes) and splices the page.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any, cast

from scim2_models import (
    AttributeBinding,
    Context,
    Extension,
    Reference,
    Resource,
    ResourceType,
    SearchRequest,
)
from scim2_models import Path as ScimPath
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from scim2_server.storage import SearchPage
from scim2_server.utils import parametrize

from reconciler.tenant.storage import PersistentStorage


class EncodedList(dict[str, Any]):
    """A ListResponse body whose ``Resources`` are already JSON. It holds the other members;
    :meth:`encode` writes the whole body, Resources last as scim2-server writes them."""

    def __init__(self, envelope: dict[str, Any], resources: list[bytes]) -> None:
        super().__init__(envelope)
        self.resources = resources

    def encode(self) -> bytes:
        head = json.dumps(dict(self)).encode()
        return head[:-1] + b', "Resources": [' + b", ".join(self.resources) + b"]}"


class TenantService(ScimService):
    def __init__(self, storage: PersistentStorage) -> None:
        super().__init__(storage.provider, secret=os.environ.get("SCIM2_SERVER_SECRET"))
        self.storage = storage
        self._references: dict[type[Resource[Any]], list[tuple[Any, AttributeBinding]]] = {}

    def _publish_references(self, base_url: str, resource: Resource[Any]) -> None:
        """scim2-server's ``_publish_references`` with the reference attributes of each model
        resolved once, and those a resource does not hold skipped: walking every path of the
        model for every resource was a third of serving a page."""
        paths = self._references.get(type(resource))
        if paths is None:
            paths = self._references[type(resource)] = []
            for path in parametrize(ScimPath, type(resource)).iter_paths(target_type=[Reference]):
                binding = cast(AttributeBinding, path.resolve())
                target = cast(type[Reference[Any]], binding.target_type)
                kinds = set(target.__reference_types__)
                if kinds and not kinds & {"external", "uri"}:
                    paths.append((path, binding))

        def locate(reference: Any) -> Any:
            if isinstance(reference, list):
                return [locate(item) for item in reference]
            if reference is None:
                return None
            return self.reference_location(base_url, reference)

        for path, binding in paths:
            # The object holding the attribute: the resource, or its extension's (scim2-models'
            # attribute_host).
            model: type[Any] = binding.model
            host: Any = resource
            if issubclass(model, Extension) and not isinstance(host, model):
                host = getattr(resource, model.__name__, None)
            if host is None or getattr(host, binding.field_name, None) is None:
                continue  # nothing to publish; the rest is scim2-server's code
            if binding.sub_field_name is None:
                path.set(resource, locate(path.get(resource)), strict=False)
                continue
            head = f"{path.schema}:{path.parts[0]}" if path.schema else path.parts[0]
            entries = ScimPath(head).get(resource)
            for entry in entries if isinstance(entries, list) else [entries]:
                if entry is not None:
                    reference = getattr(entry, binding.sub_field_name)
                    setattr(entry, binding.sub_field_name, locate(reference))

    def search_response(
        self,
        base_url: str,
        resource_types: list[ResourceType],
        page: SearchPage,
        search_request: SearchRequest[Any],
    ) -> ScimResponse:
        """scim2-server's response, its resources encoded once per version."""
        if not page.resources:
            return super().search_response(base_url, resource_types, page, search_request)
        # The envelope (totals, cursors) as scim2-server makes it, around an empty page.
        shell = super().search_response(
            base_url, resource_types, replace(page, resources=[]), search_request
        )
        envelope = dict(shell.body or {})
        envelope.pop("Resources", None)
        envelope["itemsPerPage"] = len(page.resources)
        asked = (base_url, str(search_request.attributes), str(search_request.excluded_attributes))
        parts = [self._encoded(base_url, r, search_request, asked) for r in page.resources]
        return ScimResponse(shell.status, EncodedList(envelope, parts), shell.headers)

    def _encoded(
        self,
        base_url: str,
        resource: Resource[Any],
        search_request: SearchRequest[Any],
        asked: tuple[str, str, str],
    ) -> bytes:
        assert resource.meta is not None and resource.id is not None
        key = (resource.meta.resource_type, resource.id)
        variant = (resource.meta.version, *asked)
        cached = self.storage.encoded.get(key)
        if cached is not None and cached[0] == variant:
            return cached[1]
        dumped = self.publish(base_url, resource).model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=search_request
        )
        data = json.dumps(dumped).encode()
        self.storage.encoded[key] = (variant, data)
        return data
