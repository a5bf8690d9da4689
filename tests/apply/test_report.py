"""Apply results for people: the text report names accounts as the tenant holds them."""

from __future__ import annotations

from reconciler.apply.receipt import ChangeResult, Receipt
from reconciler.apply.report import render_text


def test_names_and_tenant_messages_are_shown_escaped() -> None:
    """A userName from the console and the tenant's own error message cannot add a line to
    the apply log (one that starts with :: would be a workflow command) or rewrite one."""
    name = "inj\n::error file=desired-state/tenant.yaml::applied, all good\r"
    receipt = Receipt(
        plan_hash="a" * 64,
        tenant_url="local:t.db",
        desired_commit=None,
        actor="ci",
        run_url=None,
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:01Z",
        counts={"failed": 1},
        results=(
            ChangeResult(
                index=0,
                action="suspend",
                resource_type="User",
                key=name,
                status="failed",
                cause="rejected",
                detail="the tenant said: \x1b[2Jno\u202e",
            ),
        ),
    )
    text = render_text(receipt)
    assert not [line for line in text.splitlines() if line.startswith("::")]
    assert "\r" not in text and "\x1b" not in text and "\u202e" not in text
    assert "User inj\\n::error file=desired-state/tenant.yaml::applied, all good\\r: " in text
    assert "the tenant said: \\x1b[2Jno\\u202e" in text
