"""Pairing desired objects with live ones by the tenant's ordered keys.

The first key that finds exactly one live candidate wins. Two candidates for one key is an
error naming both (never a guess); so is one live object claimed by two desired ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Resource = dict[str, Any]


@dataclass
class Pairing:
    # desired index -> (live resource, the key that matched)
    pairs: dict[int, tuple[Resource, str]] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    unmatched_live: list[Resource] = field(default_factory=list)


def index_live(
    live: Iterable[Resource], keys: Sequence[str], extract: Callable[[Resource, str], list[str]]
) -> dict[str, dict[str, list[Resource]]]:
    index: dict[str, dict[str, list[Resource]]] = {k: {} for k in keys}
    for r in live:
        for k in keys:
            for v in extract(r, k):
                index[k].setdefault(v, []).append(r)
    return index


def pair(
    desired_keys: Sequence[Mapping[str, list[str]]],
    live: Sequence[Resource],
    keys: Sequence[str],
    extract: Callable[[Resource, str], list[str]],
    label: Callable[[Resource], str],
) -> Pairing:
    """``desired_keys[i][key]`` are desired object i's normalised values for each key."""
    index = index_live(live, keys, extract)
    result = Pairing()
    claimed: dict[str, int] = {}
    for i, values in enumerate(desired_keys):
        for k in keys:
            candidates: dict[str, Resource] = {}
            for v in values.get(k, []):
                for r in index[k].get(v, []):
                    candidates[str(r.get("id"))] = r
            if not candidates:
                continue
            if len(candidates) > 1:
                names = " and ".join(
                    sorted(f"{label(r)} (id {rid})" for rid, r in candidates.items())
                )
                result.errors.append((i, f"ambiguous match by {k}: {names}"))
                break
            rid, r = next(iter(candidates.items()))
            if rid in claimed:
                result.errors.append(
                    (i, f"live {label(r)} (id {rid}) is matched by two desired objects")
                )
                break
            claimed[rid] = i
            result.pairs[i] = (r, k)
            break
    result.unmatched_live = [r for r in live if str(r.get("id")) not in claimed]
    return result


def user_key_values(r: Resource, key: str) -> list[str]:
    """A live user's normalised values for a matching key."""
    if key == "externalId":
        v = r.get("externalId")
        return [str(v)] if v not in (None, "") else []
    if key == "userName":
        v = r.get("userName")
        return [str(v).casefold()] if v else []
    if key == "emails":
        return [
            str(e.get("value")).casefold()
            for e in r.get("emails") or []
            if isinstance(e, dict) and e.get("value")
        ]
    return []


def group_key_values(r: Resource, key: str) -> list[str]:
    if key == "externalId":
        v = r.get("externalId")
        return [str(v)] if v not in (None, "") else []
    if key == "displayName":
        v = r.get("displayName")
        return [str(v).casefold()] if v else []
    return []
