"""Does a live resource already hold what a change would write? (Pure.)

Apply asks this when a write cannot be sent as planned: after a 412 (the object moved: by
someone else, or by our own earlier attempt whose result was lost to a crash or a timeout),
and before re-sending a create's attributes to an object adopted after a lost answer. When
the object already holds every value, the change is done, and writing again would only move
it. Comparisons are exact on values and lenient on what tenants add: an element of a list or
an object may carry more keys than we sent (``primary``, ``display``, ``$ref``), and SCIM
attribute names compare case-insensitively.

    >>> holds({"title": "VP", "meta": {}}, {"op": "replace", "path": "title", "value": "VP"})
    True
    >>> holds({"members": [{"value": "a"}]}, {"op": "remove", "path": 'members[value eq "a"]'})
    False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def _get(obj: Any, name: str) -> Any:
    if not isinstance(obj, Mapping):
        return _MISSING
    if name in obj:
        return obj[name]
    folded = name.casefold()
    for k, v in obj.items():
        if isinstance(k, str) and k.casefold() == folded:
            return v
    return _MISSING


def value_at(resource: Mapping[str, Any], path: str) -> Any:
    """The value at a simple, dotted (``name.givenName``) or URN-qualified path, or None."""
    if path.startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        value = _get(_get(resource, urn), attr)
    elif "." in path:
        head, _, sub = path.partition(".")
        value = _get(_get(resource, head), sub)
    else:
        value = _get(resource, path)
    return None if value is _MISSING else value


def contains(live: Any, want: Any) -> bool:
    """``live`` has every value of ``want`` (objects: every key; lists: every element)."""
    if isinstance(want, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(contains(_get(live, str(k)), v) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(live, list):
            return False
        return all(any(contains(x, w) for x in live) for w in want)
    if isinstance(want, bool) or isinstance(live, bool):
        return live is want or (
            isinstance(live, str) and isinstance(want, bool) and live.lower() == str(want).lower()
        )
    return bool(live == want)


def same(live: Any, want: Any) -> bool:
    """``live`` is ``want``: :func:`contains`, and a list has no elements we did not send."""
    if isinstance(want, list) and isinstance(live, list) and len(live) != len(want):
        return False
    if want is None or want == [] or want == {}:
        return live is None or live == [] or live == {}
    return contains(live, want)


def holds(resource: Mapping[str, Any], op: Mapping[str, Any]) -> bool:
    """Does ``resource`` already reflect the PATCH operation ``op`` (one of ours)?"""
    kind = str(op.get("op", "")).lower()
    path = str(op.get("path", ""))
    if path.startswith("members[value eq "):
        uid = path.split('"')[1]
        present = any(
            isinstance(m, Mapping) and str(m.get("value")) == uid
            for m in resource.get("members") or []
        )
        return present is (kind != "remove")
    current = value_at(resource, path)
    if kind == "remove":
        return same(current, None)
    if kind == "add":
        return contains(current, op.get("value"))
    return same(current, op.get("value"))


def unchanged(resource: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    """Every path still has the value the plan saw (``before``: path → live value then)."""
    return all(same(value_at(resource, p), v) for p, v in before.items())
