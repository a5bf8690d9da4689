"""A progress bar on a TTY, nothing otherwise or in CI (CI logs stay clean)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from rich.progress import Progress


def progress_bar(label: str) -> Callable[[int, int], None] | None:
    # CI runners that allocate a terminal still set CI=true; their logs keep no bars either.
    if not sys.stderr.isatty() or os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return None
    bar = Progress(transient=True)
    task = bar.add_task(label, total=None)
    started = False

    def update(done: int, total: int) -> None:
        nonlocal started
        if not started:
            bar.start()
            started = True
        bar.update(task, completed=done, total=total)
        if done >= total:
            bar.stop()

    return update
