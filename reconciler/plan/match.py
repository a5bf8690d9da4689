"""Pairing desired objects with live ones by the tenant's ordered keys.

The first key that finds exactly one live candidate wins. Two candidates for one key is an
error naming both (never a guess); so is one live object claimed by two desired ones.

Pairing runs over every object of a large tenant on every plan, so it keeps few containers
alive (each one is work for Python's garbage collector): a key's index maps a value to the one
resource holding it (a list only for duplicates), and is built only when some desired object
gets that far down the list of keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_, is_not
from typing import Any, cast

Resource = dict[str, Any]
# Desired object i's normalised values for a key (``()`` when it has none).
DesiredKeys = Callable[[int, str], Sequence[str]]


@dataclass
class Pairing:
    # Desired index -> the live resource it pairs with (None: none), and the key that matched
    # it (see how()).
    matched: list[Resource | None] = field(default_factory=list)
    matched_by: dict[int, str] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    unmatched_live: list[Resource] = field(default_factory=list)
    # The key that matched every paired object not in matched_by (pairing in bulk).
    first_key: str = ""
    # How many desired objects pair with a live one (``len(matched)`` when all do: then no
    # caller reads the whole list to find a None).
    paired: int = 0
    # Live resources an ambiguous match named (each could be the desired object: none is
    # to be treated as not in desired-state).
    contested: list[Resource] = field(default_factory=list)

    def how(self, i: int) -> str:
        """The key that paired desired object ``i`` ("" when it is not paired)."""
        if self.matched[i] is None:
            return ""
        return self.matched_by.get(i, self.first_key)


class _Dups(list[Resource]):
    """Several live resources share one value (a list subclass, so it is told apart from a
    resource, which is a dict)."""


def index_live(
    live: Sequence[Resource], key: str, extract: Callable[[Resource, str], list[str]]
) -> dict[str, Resource | _Dups]:
    """Live resources by their normalised values for one key."""
    fold = _ONE_STRING.get((extract, key))
    if fold is not None:
        fast = index_strings(live, key, fold)
        if fast is not None:
            return cast(dict[str, Resource | _Dups], fast)
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


def index_strings_python(
    live: Sequence[Resource], key: str, fold: bool
) -> dict[str, Resource] | None:
    """Live resources by their one string value for ``key`` (casefolded when ``fold``);
    those without one (absent, None, "") are left out. None when a value is not a string
    (or is None, when ``fold``), or two resources share one: :func:`index_live`'s loop then
    says which. The reference of ``reconciler._speedups.index_strings``; in C over the whole
    list either way."""
    values: list[Any] = list(map(dict.get, live, repeat(key)))
    kinds = set(map(type, values))
    if not kinds <= {str, type(None)}:
        return None
    if fold:
        if type(None) in kinds:
            return None
        values = list(map(str.casefold, values))
    index: dict[str, Resource] = dict(compress(zip(values, live, strict=True), values))
    if len(index) != len(values) - values.count(None) - values.count(""):
        return None
    return index


_native: Callable[[Sequence[Resource], str, bool], dict[str, Resource] | None] | None
try:
    from reconciler._speedups import index_strings as _native
except ImportError:  # built without a C compiler: the reference runs
    _native = None
index_strings = _native if _native is not None else index_strings_python


def find_python(
    index: dict[str, Resource], values: Sequence[str | None]
) -> tuple[list[Resource | None], int] | None:
    """What each value finds in ``index`` (None finds nothing), and how many found
    something; None when two equal values found something (who claims it then depends on
    the order: the caller pairs one object at a time). The reference of
    ``reconciler._speedups.find``, which also answers None for a value that is not a str."""
    lookup = cast(Callable[[str | None], Resource | None], index.get)
    found = list(map(lookup, values))
    kept = list(compress(values, map(is_not, found, repeat(None))))
    return (found, len(kept)) if len(set(kept)) == len(kept) else None


_native_find: Callable[[dict[str, Resource], Sequence[str | None]], Any] | None
try:
    from reconciler._speedups import find as _native_find
except ImportError:  # built without a C compiler: the reference runs
    _native_find = None


def find(
    index: dict[str, Resource], values: Sequence[str | None]
) -> tuple[list[Resource | None], int] | None:
    """:func:`find_python`, in C where built (its answer None, for a value that is not a
    str, is then checked by the reference)."""
    if _native_find is not None:
        got = _native_find(index, values)
        if got is not None:
            return cast(tuple[list[Resource | None], int], got)
    return find_python(index, values)


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
        self.pairs: dict[int, Resource] = {}
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
                    self.pairs[i] = found
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
                result.contested += candidates.values()
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
            self.pairs[i] = r
            result.matched_by[i] = k
            return r
        return None

    def finish(self, count: int) -> Pairing:
        """The pairing of ``count`` desired objects, with the live resources nobody
        claimed."""
        self.result.matched = list(map(self.pairs.get, range(count)))
        self.result.paired = len(self.pairs)
        claimed, live = self.claimed, self.live
        self.result.unmatched_live = (
            [] if len(claimed) == len(live) else [r for r in live if id(r) not in claimed]
        )
        return self.result


def pair(
    count: int,
    desired_keys: DesiredKeys,
    live: Sequence[Resource],
    keys: Sequence[str],
    extract: Callable[[Resource, str], list[str]],
    label: Callable[[Resource], str],
    desired_label: Callable[[int], str] = lambda i: f"desired object #{i + 1}",
    *,
    first: Sequence[str | None] | None = None,
) -> Pairing:
    """Pair ``count`` desired objects with ``live`` ones. ``desired_keys(i, key)`` gives
    desired object i's normalised values for a key; ``desired_label(i)`` names it in errors.

    ``first``, when given, is each desired object's one value for ``keys[0]`` (None: it has
    none), as ``desired_keys`` would give it: most objects then pair in bulk, and the result
    is the same as pairing one object at a time."""
    if first is not None and keys:
        fast = _pair_by_first_key(
            count, desired_keys, live, keys, extract, label, desired_label, first
        )
        if fast is not None:
            return fast
    pairer = Pairer(live, keys, extract, label, desired_label)
    for i in range(count):
        pairer.match(i, desired_keys)
    return pairer.finish(count)


def _ids_found(found: Sequence[Resource | None]) -> set[int]:
    """The id() of each live resource ``found`` holds (None: nothing found)."""
    return set(map(id, compress(found, map(is_not, found, repeat(None)))))


def _pair_by_first_key(
    count: int,
    desired_keys: DesiredKeys,
    live: Sequence[Resource],
    keys: Sequence[str],
    extract: Callable[[Resource, str], list[str]],
    label: Callable[[Resource], str],
    desired_label: Callable[[int], str],
    first: Sequence[str | None],
) -> Pairing | None:
    """:func:`pair` in bulk for the objects the first key finds, one at a time for the rest;
    None when the two could disagree (a value several live objects hold, a live object two
    desired ones find, or one the rest reach by a later key), for the caller to pair one at
    a time. Every step here runs in C over the whole list (map, compress, dict)."""
    key = keys[0]
    fold = _ONE_STRING.get((extract, key))
    index = None if fold is None else index_strings(live, key, fold)
    if index is None:
        return None  # a value several live objects hold, or not a plain string
    # The key is single-valued, so two objects find one live object only by one value.
    got = find(index, first)
    if got is None:
        return None  # two objects find one live object
    found, hits = got
    result = Pairing(matched=found, first_key=key)
    rest = [] if hits == count else list(compress(range(count), map(is_, found, repeat(None))))
    if rest:
        claimed = _ids_found(found)
        pairer = Pairer(live, keys, extract, label, desired_label)
        pairer.indexes[key] = cast(dict[str, Resource | _Dups], index)
        for i in rest:
            r = pairer.match(i, desired_keys)
            if r is not None and id(r) in claimed:
                return None  # who claims it first depends on the order: pair one at a time
        for i, r in pairer.pairs.items():
            found[i] = r
        result.matched_by = pairer.result.matched_by
        result.errors = pairer.result.errors
        result.contested = pairer.result.contested
        paired = hits + len(pairer.pairs)
    else:
        paired = hits
    result.paired = paired
    if paired != len(live):
        claimed = _ids_found(found)
        result.unmatched_live = [r for r in live if id(r) not in claimed]
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


# (extract, key) whose values are the live resource's one string value for the key, as it is
# (False) or casefolded (True): index_live reads those in bulk.
_ONE_STRING: dict[tuple[Callable[[Resource, str], list[str]], str], bool] = {
    (user_key_values, "externalId"): False,
    (user_key_values, "userName"): True,
    (group_key_values, "externalId"): False,
    (group_key_values, "displayName"): True,
}
