"""A progress bar on a TTY, nothing otherwise (CI logs stay clean)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rich.progress import Progress


def progress_bar(label: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
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
