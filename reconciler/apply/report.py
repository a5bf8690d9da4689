"""Apply results for people: counts, then failures grouped by cause with the objects listed.

Root causes come first (existing accounts, licences, …); what was skipped because of them, or
because apply stopped early, comes last. The closing line says what to do next: plan again
for stale objects (the plan no longer describes them), retry for the rest.
"""

from __future__ import annotations

from reconciler.apply.failures import TITLES, Cause
from reconciler.apply.receipt import Receipt
from reconciler.plan.render import fence, md
from reconciler.terminal import visible

_LAST = (Cause.dependency.value, Cause.stopped.value)


def _groups(receipt: Receipt) -> list[tuple[str, list[str]]]:
    out: dict[str, list[str]] = {}
    for r in receipt.results:
        if r.status != "ok":
            out.setdefault(r.cause or "failed", []).append(
                f"{r.resource_type} {r.key}: {r.action.replace('_', ' ')}"
                + (f" — {r.detail}" if r.detail else "")
            )
    return sorted(out.items(), key=lambda kv: _LAST.index(kv[0]) + 1 if kv[0] in _LAST else 0)


def _title(cause: str, n: int) -> str:
    one, many = TITLES[Cause(cause)] if cause in Cause.__members__ else (cause, cause)
    return f"{n} change{'s' * (n != 1)} {one if n == 1 else many}"


def _counts(receipt: Receipt, sep: str) -> str:
    order = ("ok", "failed", "stale", "skipped")
    keys = sorted(receipt.counts, key=lambda s: order.index(s) if s in order else len(order))
    return sep.join(f"{receipt.counts[s]} {s}" for s in keys)


def next_steps(receipt: Receipt, plan_file: str | None = None) -> list[str]:
    """What to do after an incomplete apply."""
    if receipt.ok:
        return []
    statuses = {r.status for r in receipt.results}
    steps = []
    if statuses & {"failed", "skipped"}:
        again = f"reconciler apply {plan_file} --retry-failed" if plan_file else "reconciler apply"
        steps.append(f"fix the causes above, then `{again}` (only what did not succeed is redone)")
    if "stale" in statuses:
        steps.append(
            "objects marked stale changed in the tenant after the plan was made: "
            "`reconciler plan` again to see them as they are now"
        )
    return steps


def render_text(receipt: Receipt, plan_file: str | None = None, *, hints: bool = True) -> str:
    head = f"Apply {receipt.plan_hash[:12]} on {visible(receipt.tenant_url)}"
    lines = [f"{head}: {_counts(receipt, ', ') or 'nothing to do'}"]
    for cause, items in _groups(receipt):
        lines.append(f"  {_title(cause, len(items))}:")
        # Keys and the tenant's messages for a terminal or a log: escaped (see visible).
        lines += [f"    - {visible(item)}" for item in items]
    if receipt.ok:
        lines.append("Apply complete: every change succeeded.")
    elif hints:
        lines.append("Apply incomplete:")
        lines += [f"  {step}" for step in next_steps(receipt, plan_file)]
    else:
        lines.append("Apply incomplete.")
    return "\n".join(lines)


def render_markdown(receipt: Receipt, plan_file: str | None = None) -> str:
    head = "✅ Applied" if receipt.ok else "❌ Apply incomplete"
    lines = [
        f"<!-- reconciler:apply={receipt.plan_hash} -->",
        f"### {head}: {_counts(receipt, ' · ') or 'nothing to do'}",
        "",
    ]
    for cause, items in _groups(receipt):
        lines.append(f"<details open><summary>{_title(cause, len(items))}</summary>")
        lines.append("")
        lines += [f"- {md(item)}" for item in items[:200]]
        if len(items) > 200:
            lines.append(f"- … and {len(items) - 200} more (see the receipt)")
        lines += ["", "</details>", ""]
    safe = fence(plan_file).replace("`", "'") if plan_file else None
    lines += [f"Next: {step}" for step in next_steps(receipt, safe)]
    if receipt.run_url:
        lines.append(f"[Run]({receipt.run_url}) by {md(receipt.actor)}")
    return "\n".join(lines) + "\n"
