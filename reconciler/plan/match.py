"""Pairing desired objects with live ones by the tenant's ordered keys.

The first key that finds exactly one live candidate wins. Two candidates for one key is an
error naming both (never a guess); so is one live object claimed by two desired ones.

Pairing runs over every object of a large tenant on every plan, so it keeps few containers
alive (each one is work for Python's garbage collector): a key's index maps a value to the one
resource holding it (a list only for duplicates), and is built only when some desired object
gets that far down the list of keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Resource = dict[str, Any]
# Desired object i's normalised values for a key (``()`` when it has none).
DesiredKeys = Callable[[int, str], Sequence[str]]


@dataclass
class Pairing:
    # desired index -> live resource, and the key that matched it
    pairs: dict[int, Resource] = field(default_factory=dict)
    matched_by: dict[int, str] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    unmatched_live: list[Resource] = field(default_factory=list)


class _Dups(list[Resource]):
    """Several live resources share one value (a list subclass, so it is told apart from a
    resource, which is a dict)."""


def index_live(
    live: Iterable[Resource], key: str, extract: Callable[[Resource, str], list[str]]
) -> dict[str, Resource | _Dups]:
    """Live resources by their normalised values for one key."""
    index: dict[str, Resource | _Dups] = {}
    for r in live:
        for v in extract(r, key):
            found = index.get(v)
            if found is None:
                index[v] = r
            elif isinstance(found, _Dups):
                found.append(r)
            elif found is not r:
                index[v] = _Dups((found, r))
    return index


def pair(
    count: int,
    desired_keys: DesiredKeys,
    live: Sequence[Resource],
    keys: Sequence[str],
    extract: Callable[[Resource, str], list[str]],
    label: Callable[[Resource], str],
    desired_label: Callable[[int], str] = lambda i: f"desired object #{i + 1}",
) -> Pairing:
    """Pair ``count`` desired objects with ``live`` ones. ``desired_keys(i, key)`` gives
    desired object i's normalised values for a key; ``desired_label(i)`` names it in errors."""
    indexes: dict[str, dict[str, Resource | _Dups]] = {}
    result = Pairing()
    claimed: dict[str, int] = {}
    for i in range(count):
        for k in keys:
            wanted = desired_keys(i, k)
            if not wanted:
                continue
            index = indexes.get(k)
            if index is None:
                index = indexes[k] = index_live(live, k, extract)
            if len(wanted) == 1:  # the common case, without a dict of candidates
                found = index.get(wanted[0])
                if found is None:
                    continue
                if not isinstance(found, _Dups):
                    rid = str(found.get("id"))
                    if rid not in claimed:
                        claimed[rid] = i
                        result.pairs[i] = found
                        result.matched_by[i] = k
                        break
            candidates: dict[str, Resource] = {}
            for v in wanted:
                found = index.get(v)
                if found is None:
                    continue
                for r in found if isinstance(found, _Dups) else (found,):
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
                    (
                        i,
                        f"live {label(r)} (id {rid}) by {k} is already matched by "
                        f"{desired_label(claimed[rid])}",
                    )
                )
                break
            claimed[rid] = i
            result.pairs[i] = r
            result.matched_by[i] = k
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
        emails = r.get("emails")
        if not emails or not isinstance(emails, list):
            return []
        return [
            str(e["value"]).casefold() for e in emails if isinstance(e, dict) and e.get("value")
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
