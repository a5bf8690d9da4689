"""Pairing in bulk (``pair(..., first=...)``) against pairing one object at a time.

The plan pairs 100,000 users by their first key in bulk and falls back to one at a time
whenever the order of claims could matter. Whatever the keys, duplicates and collisions,
the result must be the one the one-at-a-time algorithm gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.plan.match import Pairing, pair, user_key_values

KEYS = st.sampled_from(
    [("externalId", "userName", "emails"), ("externalId", "emails"), ("userName", "externalId")]
)
_IDS = st.sampled_from(["1", "2", "3", "", None])
_NAMES = st.sampled_from(["a@x", "A@x", "b@x", "c@x"])
_EMAILS = st.lists(st.sampled_from(["a@x", "b@x", "m@x", "M@X"]), max_size=2)


@st.composite
def _desired(draw: st.DrawFn) -> dict[str, Any]:
    return {"externalId": draw(_IDS), "userName": draw(_NAMES), "emails": draw(_EMAILS)}


@st.composite
def _live(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 6))):
        r: dict[str, Any] = {"id": f"id{i}", "userName": draw(_NAMES)}
        if (ext := draw(_IDS)) is not None:
            r["externalId"] = ext
        if emails := draw(_EMAILS):
            r["emails"] = [{"value": e} for e in emails]
        out.append(r)
    return out


def _keys_of(desired: Sequence[dict[str, Any]]) -> Any:
    def keys(i: int, key: str) -> Sequence[str]:
        d = desired[i]
        if key == "externalId":
            return (d["externalId"],) if d["externalId"] else ()
        if key == "userName":
            return (d["userName"].casefold(),)
        return [e.casefold() for e in d["emails"]]

    return keys


def _seen(p: Pairing, n: int) -> tuple[Any, ...]:
    return (
        [id(r) if r is not None else None for r in p.matched],
        [p.how(i) for i in range(n)],
        p.errors,
        sorted(map(id, p.unmatched_live)),
        sorted(map(id, p.contested)),
    )


@settings(max_examples=500, deadline=None)
@given(st.lists(_desired(), max_size=6), _live(), KEYS)
def test_pairing_in_bulk_is_pairing_one_at_a_time(
    desired: list[dict[str, Any]], live: list[dict[str, Any]], keys: tuple[str, ...]
) -> None:
    args = (len(desired), _keys_of(desired), live, keys, user_key_values, str)
    first = {
        "externalId": [d["externalId"] for d in desired],
        "userName": [d["userName"].casefold() for d in desired],
    }[keys[0]]
    bulk, one = pair(*args, first=first), pair(*args)
    assert _seen(bulk, len(desired)) == _seen(one, len(desired))
    # The count the plan reads instead of the list (to find desired objects to create).
    for p in (bulk, one):
        assert p.paired == sum(r is not None for r in p.matched)
