"""The local Actions runner is only worth as much as its faithfulness: its expression
semantics, checked against what GitHub documents."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gitops.runner import Expression

CTX: dict[str, Any] = {
    "steps": {
        "pr": {"outputs": {"number": "12"}, "outcome": "success"},
        "apply": {"outcome": "skipped"},
    },
    "github": {"event": {"pull_request": {"number": 12}}, "sha": "abc"},
    "secrets": {},
}


@pytest.mark.parametrize(
    ("expr", "failed", "expected"),
    [
        ("steps.pr.outputs.number != ''", False, True),
        ("steps.nope.outputs.number != ''", False, False),  # missing is null, null == ''
        ("steps.apply.outcome == 'SKIPPED'", False, True),  # strings compare case-insensitively
        ("github.event.pull_request.number == '12'", False, True),  # number vs string
        ("github.event.pull_request.number || github.sha", False, 12.0),
        ("github.event.issue.number || github.sha", False, "abc"),
        ("always() && steps.apply.outcome != 'skipped'", True, False),
        ("failure()", True, True),
        ("success()", True, False),
        ("!cancelled() && steps.pr.outputs.number", False, "12"),
        ("startsWith(github.sha, 'AB')", False, True),
        ("secrets.SCIM_TOKEN", False, None),
    ],
)
def test_expressions_evaluate_as_on_github(expr: str, failed: bool, expected: object) -> None:
    value = Expression(expr).evaluate(
        CTX.__getitem__,
        lambda fn: {"success": not failed, "failure": failed}.get(fn, fn == "always"),
    )
    assert value == expected


def test_a_condition_names_its_status_function_or_gets_success() -> None:
    assert Expression("failure() && steps.apply.outcome == 'failure'").uses_status
    assert not Expression("steps.apply.outcome == 'failure'").uses_status


def test_unknown_functions_fail_loudly() -> None:
    with pytest.raises(AssertionError, match="does not know the function fromJSON"):
        Expression("fromJSON('1')").evaluate(CTX.__getitem__, lambda fn: True)
