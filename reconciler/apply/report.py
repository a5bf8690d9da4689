"""Apply results for people: counts, then failures grouped by cause with the objects listed."""

from __future__ import annotations

from reconciler.apply.failures import TITLES, Cause
from reconciler.apply.receipt import Receipt
from reconciler.plan.render import md


def _groups(receipt: Receipt) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in receipt.results:
        if r.status != "ok":
            out.setdefault(r.cause or "failed", []).append(
                f"{r.resource_type} {r.key}: {r.action.replace('_', ' ')}"
                + (f" — {r.detail}" if r.detail else "")
            )
    return out


def _title(cause: str, n: int) -> str:
    what = TITLES.get(Cause(cause), cause) if cause in Cause.__members__ else cause
    return f"{n} change{'s' * (n != 1)} {what}"


def render_text(receipt: Receipt) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(receipt.counts.items()))
    lines = [f"Apply {receipt.plan_hash[:12]} on {receipt.tenant_url}: {counts or 'nothing to do'}"]
    for cause, items in _groups(receipt).items():
        lines.append(f"  {_title(cause, len(items))}:")
        lines += [f"    - {item}" for item in items]
    if receipt.ok:
        lines.append("Apply complete: every change succeeded.")
    else:
        lines.append(
            "Apply incomplete: fix the causes above, then `reconciler apply --retry-failed`."
        )
    return "\n".join(lines)


def render_markdown(receipt: Receipt) -> str:
    counts = " · ".join(f"{n} {s}" for s, n in sorted(receipt.counts.items()))
    head = "✅ Applied" if receipt.ok else "❌ Apply incomplete"
    lines = [f"<!-- reconciler:apply={receipt.plan_hash} -->", f"### {head}: {counts}", ""]
    for cause, items in _groups(receipt).items():
        lines.append(f"<details open><summary>{_title(cause, len(items))}</summary>")
        lines.append("")
        lines += [f"- {md(item)}" for item in items[:200]]
        if len(items) > 200:
            lines.append(f"- … and {len(items) - 200} more (see the receipt)")
        lines += ["", "</details>", ""]
    if receipt.run_url:
        lines.append(f"[Run]({receipt.run_url}) by {md(receipt.actor)}")
    return "\n".join(lines) + "\n"
