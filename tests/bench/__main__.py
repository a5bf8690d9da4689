"""`make bench`: run every tests/bench/bench_*.py's main() and print the figures.

Select some with `make bench BENCH="validate read"`; sizes are the issues' unless
BENCH_SCALE (e.g. 0.1) shrinks them for a quick look.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = os.environ.get("BENCH", "").split()
    if wanted:
        names = [n for n in names if n.removeprefix("bench_") in wanted]
    failed = 0
    for name in names:
        print(f"\n=== {name.removeprefix('bench_')} ===", flush=True)
        start = time.perf_counter()
        module = importlib.import_module(f"tests.bench.{name}")
        ok = module.main()
        print(f"({name} took {time.perf_counter() - start:.1f} s)", flush=True)
        failed += ok is False
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
