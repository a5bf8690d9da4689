from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.desired.models import User
from reconciler.plan.scimmap import QuickGrants, QuickSpec

def scan(
    users: Sequence[User],
    lives: Sequence[Mapping[str, Any] | None],
    grants: Sequence[QuickGrants | None] | None,
    ids: Mapping[str, str],
    spec: QuickSpec,
    /,
) -> list[int]: ...
def user_groups(
    users: Sequence[User], names: Sequence[str], folded: dict[str, str], /
) -> tuple[list[frozenset[str]], dict[str, list[str]]] | None: ...
def index_strings(
    live: Sequence[dict[str, Any]], key: str, fold: bool, /
) -> dict[str, dict[str, Any]] | None: ...
def ids_of(
    names: Sequence[str], matched: Sequence[dict[str, Any] | None], /
) -> dict[str, str] | None: ...
def field_values(models: Sequence[Any], name: str, /) -> list[Any] | None: ...
def find(
    index: dict[str, dict[str, Any]], values: Sequence[str | None], /
) -> tuple[list[dict[str, Any] | None], int] | None: ...
def same_members(
    desired: Sequence[str], members: Any, ids: Mapping[str, str], /
) -> bool | None: ...
