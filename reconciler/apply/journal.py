"""The apply journal: one JSON line per finished change, flushed and fsynced as it happens.

An apply killed at any point leaves every result it reported on disk; ``--resume`` skips
them, and ``--retry-failed`` redoes only the failed ones. Creates record the new id.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8")

    def record(self, entry: dict[str, Any]) -> None:
        self._fh.write(json.dumps(entry, separators=(",", ":"), default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    @staticmethod
    def read(path: Path) -> dict[int, dict[str, Any]]:
        """The last entry for each change index (a torn last line is ignored)."""
        out: dict[int, dict[str, Any]] = {}
        if not path.is_file():
            return out
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            out[int(entry["i"])] = entry
        return out
