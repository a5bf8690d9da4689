"""Running a coroutine from synchronous code."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, returning its result without the main task holding it.

    On Python 3.11, ``asyncio.run`` ends by asking ``signal.getsignal`` for its SIGINT
    handler, a partial holding the main task; that formats the task's repr, result
    included, into an error it then drops. For a 100,000-user tenant that repr is hundreds
    of megabytes and seconds of CPU. Here the main task's result is ``None``.
    """
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]
