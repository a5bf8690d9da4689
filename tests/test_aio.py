"""reconciler.aio.run: a coroutine's result comes back without being formatted."""

from __future__ import annotations

from reconciler import aio


class Huge:
    """Stands for a 100,000-user LiveState or Plan: formatting it is what must not happen."""

    formatted = 0

    def __repr__(self) -> str:
        Huge.formatted += 1
        return "Huge(…)"


def test_run_returns_the_result_without_formatting_it() -> None:
    async def read() -> Huge:
        return Huge()

    result = aio.run(read())
    assert isinstance(result, Huge)
    # asyncio.run on Python 3.11 formats its main task (result included) when it restores
    # the SIGINT handler; aio.run's main task holds no result.
    assert Huge.formatted == 0
