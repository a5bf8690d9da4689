"""The baseline of the apply benchmark: a bare httpx loop, run as its own process.

    python tests/bench/bare_loop.py REQUESTS.json

REQUESTS.json holds ``{"url", "concurrency", "stages": [[[method, path, body, headers], …], …]}``.
Stages run one after another (the order any correct apply must keep: users exist before they
join groups); within a stage, ``concurrency`` requests at once. ``{"$user": name}`` in a body is
replaced by the id the POST that created that user returned. It imports only httpx, so the
process start it pays is the least any Python client pays. Prints the number of requests.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx


async def main(spec: dict[str, Any]) -> int:
    sem = asyncio.Semaphore(spec["concurrency"])
    ids: dict[str, str] = {}
    sent = 0

    def fill(v: Any) -> Any:
        if isinstance(v, dict):
            return (
                ids[v["$user"].casefold()]
                if set(v) == {"$user"}
                else {k: fill(x) for k, x in v.items()}
            )
        return [fill(x) for x in v] if isinstance(v, list) else v

    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=spec["url"] + "/", limits=limits) as h:

        async def one(method: str, path: str, body: Any, headers: dict[str, str]) -> None:
            nonlocal sent
            async with sem:
                sent += 1
                r = await h.request(
                    method, path, json=fill(body) if body is not None else None, headers=headers
                )
            r.raise_for_status()
            if method == "POST":
                created = r.json()
                ids[(created.get("userName") or created.get("displayName")).casefold()] = created[
                    "id"
                ]

        for stage in spec["stages"]:
            await asyncio.gather(*(one(*r) for r in stage))
    return sent


if __name__ == "__main__":
    print(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))))
