"""The progress bar while reading a tenant: on a terminal only, never in CI."""

from __future__ import annotations

import io
import sys

import pytest

from reconciler.progress import progress_bar


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("tty", "ci", "shown"),
    [(True, None, True), (False, None, False), (True, "true", False), (True, "1", False)],
)
def test_progress_bar_only_on_a_terminal_outside_ci(
    monkeypatch: pytest.MonkeyPatch, tty: bool, ci: str | None, shown: bool
) -> None:
    monkeypatch.setattr(sys, "stderr", Tty() if tty else io.StringIO())
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert (progress_bar("Reading tenant") is not None) is shown
