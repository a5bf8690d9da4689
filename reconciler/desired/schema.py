"""JSON Schema for each desired-state file kind, for editors (yaml-language-server)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from reconciler.desired.models import AttributesFile, GroupsFile, RulesFile, Tenant, UsersFile

KINDS: dict[str, type[BaseModel]] = {
    "tenant": Tenant,
    "users": UsersFile,
    "groups": GroupsFile,
    "rules": RulesFile,
    "attributes": AttributesFile,
}


def schema_for(kind: str) -> dict[str, Any]:
    schema = KINDS[kind].model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"reconciler/{kind}.schema.json",
        **schema,
    }


def dumps(kind: str) -> str:
    return json.dumps(schema_for(kind), indent=2, sort_keys=False) + "\n"
