"""Item-level differences of a multi-valued attribute, for reviewers. Pure.

A field-level change of ``entitlements`` or ``emails`` shows the whole lists before and
after; with ten products, the one that moved is hard to see. Only for a field already known to
differ after normalisation (the cheap check comes first), items are paired by their value
(case-insensitively where the attribute is), and each pair that is not identical is diffed
with deepdiff to name the sub-attributes that changed (``primary``, ``type``)::

    >>> [describe(i) for i in item_changes(["Meeting", "Connect"], ["Meeting", "Webinar"])]
    ['+ "Webinar"', '- "Connect"']
    >>> item_changes(["Meeting"], ["Webinar"])
    ()
"""

from __future__ import annotations

import json
from typing import Any

from deepdiff import DeepDiff

from reconciler.plan.model import ItemChange


def _value(item: Any) -> Any:
    return item.get("value") if isinstance(item, dict) else item


def _identity(item: Any, case_insensitive: bool) -> str:
    value = _value(item)
    # A {"$user": …} placeholder or a complex value is identified by all of it.
    text = json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict) else str(value)
    return text.casefold() if case_insensitive else text


def _shown(item: Any) -> str:
    return json.dumps(_value(item), ensure_ascii=False, default=str)


def _flag(v: Any) -> Any:
    # SCIM tenants send booleans as strings too ("False"); compare them as booleans.
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    return v


def _normal(item: dict[str, Any], case_insensitive: bool) -> dict[str, Any]:
    out = {k: _flag(v) for k, v in item.items() if v not in (None, "")}
    if out.get("primary") is False:
        del out["primary"]  # absent and false mean the same
    if case_insensitive and isinstance(out.get("value"), str):
        out["value"] = out["value"].casefold()
    return out


def _sub_changes(before: dict[str, Any], after: dict[str, Any], ci: bool) -> str:
    diff = DeepDiff(_normal(before, ci), _normal(after, ci), ignore_order=True, view="tree")
    parts = []
    for kind, items in sorted(diff.items()):
        for d in items:
            name = str(d.path(output_format="list")[-1]) if d.path(output_format="list") else ""
            old = None if kind == "dictionary_item_added" else d.t1
            new = None if kind == "dictionary_item_removed" else d.t2
            parts.append(f"{name}: {_scalar(old)} → {_scalar(new)}")
    return ", ".join(sorted(parts))


def _scalar(v: Any) -> str:
    return "—" if v is None else json.dumps(v, ensure_ascii=False, default=str)


def item_changes(
    before: Any, after: Any, *, case_insensitive: bool = False
) -> tuple[ItemChange, ...]:
    """The items added, removed or changed between two values of a multi-valued attribute.

    Empty when either side is not a list, when one side is empty, or when the two have no
    item in common: then the field-level before → after says everything."""
    if not isinstance(before, list) or not isinstance(after, list) or not before or not after:
        return ()
    old = {_identity(x, case_insensitive): x for x in before}
    new = {_identity(x, case_insensitive): x for x in after}
    if not old.keys() & new.keys():
        return ()  # nothing in common: before → after says it better
    out: list[ItemChange] = []
    for key, item in new.items():
        if key not in old:
            out.append(ItemChange(op="+", value=item))
    for key, item in old.items():
        if key not in new:
            out.append(ItemChange(op="-", value=item))
    for key, item in new.items():
        previous = old.get(key)
        if isinstance(previous, dict) and isinstance(item, dict):
            detail = _sub_changes(previous, item, case_insensitive)
            if detail:
                out.append(ItemChange(op="~", value=item, detail=detail))
    return tuple(out)


def describe(change: ItemChange) -> str:
    text = f"{change.op} {_shown(change.value)}"
    return f"{text}: {change.detail}" if change.detail else text


__all__ = ["describe", "item_changes"]
