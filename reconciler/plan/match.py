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


class Pairer:
    """Pairs desired objects with ``live`` ones, one desired object at a time, in order (an
    earlier object claims a live one first). The plan pairs each user as it compares it,
    while both are fresh in memory; :func:`pair` pairs a whole list.

    Live resources are distinct objects with distinct ids (the reader keeps each id once), so
    a claim is recorded by the resource object itself: telling the unmatched ones apart then
    never reads them again."""

    def __init__(
        self,
        live: Sequence[Resource],
        keys: Sequence[str],
        extract: Callable[[Resource, str], list[str]],
        label: Callable[[Resource], str],
        desired_label: Callable[[int], str] = lambda i: f"desired object #{i + 1}",
    ) -> None:
        self.live = live
        self.keys = keys
        self.extract = extract
        self.label = label
        self.desired_label = desired_label
        self.indexes: dict[str, dict[str, Resource | _Dups]] = {}
        self.result = Pairing()
        self.claimed: dict[int, int] = {}  # id() of a claimed live resource -> desired index

    def match(self, i: int, desired_keys: DesiredKeys) -> Resource | None:
        """The live resource desired object ``i`` pairs with (recorded), or None: none, or an
        error (recorded in ``result.errors``)."""
        claimed, result = self.claimed, self.result
        for k in self.keys:
            wanted = desired_keys(i, k)
            if not wanted:
                continue
            index = self.indexes.get(k)
            if index is None:
                index = self.indexes[k] = index_live(self.live, k, self.extract)
            if len(wanted) == 1:  # the common case, without a dict of candidates
                found = index.get(wanted[0])
                if found is None:
                    continue
                if not isinstance(found, _Dups) and id(found) not in claimed:
                    claimed[id(found)] = i
                    result.pairs[i] = found
                    result.matched_by[i] = k
                    return found
            candidates: dict[int, Resource] = {}
            for v in wanted:
                found = index.get(v)
                if found is None:
                    continue
                for r in found if isinstance(found, _Dups) else (found,):
                    candidates[id(r)] = r
            if not candidates:
                continue
            label = self.label
            if len(candidates) > 1:
                names = " and ".join(
                    sorted(f"{label(r)} (id {r.get('id')})" for r in candidates.values())
                )
                result.errors.append((i, f"ambiguous match by {k}: {names}"))
                return None
            r = next(iter(candidates.values()))
            if id(r) in claimed:
                result.errors.append(
                    (
                        i,
                        f"live {label(r)} (id {r.get('id')}) by {k} is already matched by "
                        f"{self.desired_label(claimed[id(r)])}",
                    )
                )
                return None
            claimed[id(r)] = i
            result.pairs[i] = r
            result.matched_by[i] = k
            return r
        return None

    def finish(self) -> Pairing:
        """The pairing, with the live resources nobody claimed."""
        claimed = self.claimed
        self.result.unmatched_live = [r for r in self.live if id(r) not in claimed]
        return self.result


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
    pairer = Pairer(live, keys, extract, label, desired_label)
    for i in range(count):
        pairer.match(i, desired_keys)
    return pairer.finish()


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
