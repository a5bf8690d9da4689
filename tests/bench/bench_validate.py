"""Validating 100,000 users / 2,000 groups / 50 rules vs parsing the same files.

Goal (issue: foundation): `reconciler validate` takes at most 3x the time ruamel.yaml's
C-accelerated safe loader needs just to parse the files, measured in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.generate import generate

CHILD = r"""
import sys, time
from pathlib import Path
mode, root = sys.argv[1], Path(sys.argv[2])
t = time.perf_counter()
if mode == "parse":
    from ruamel.yaml import YAML
    y = YAML(typ="safe")
    for p in sorted(root.rglob("*.yaml")):
        y.load(p.read_text(encoding="utf-8"))
else:
    # The whole command as a user runs it (CLI, load, checks, policies, report), in-process.
    from reconciler.cli import main
    sys.argv = ["reconciler", "validate", str(root)]
    try:
        main()
    except SystemExit as exc:
        assert exc.code == 0, f"the generated state does not validate (exit {exc.code})"
wall = time.perf_counter() - t
print(wall, int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))))
"""


def _run(mode: str, root: Path) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(root)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    if mode == "validate":
        assert out[0].startswith("valid: "), out[0]
    wall, rss = out[-1].split()
    return float(wall), int(rss)


def main() -> bool:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    users, groups, rules = int(100_000 * scale), max(8, int(2_000 * scale)), 50
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "state"
        t = time.perf_counter()
        g = generate(root, users=users, groups=groups, rules=rules)
        print(
            f"generated {users} users / {groups} groups / {rules} rules in {g.files} files "
            f"({time.perf_counter() - t:.1f} s)"
        )
        parse = [_run("parse", root) for _ in range(2)]
        valid = [_run("validate", root) for _ in range(2)]
    p = min(w for w, _ in parse)
    v = min(w for w, _ in valid)
    ratio = v / p
    print(f"parse only (ruamel C safe loader): {p:8.2f} s  peak RSS {parse[0][1] / 1024:7.0f} MiB")
    print(f"reconciler validate DIR:           {v:8.2f} s  peak RSS {valid[0][1] / 1024:7.0f} MiB")
    print(
        f"ratio validate/parse: {ratio:.2f}  (goal <= 3.00): {'met' if ratio <= 3 else 'NOT MET'}"
    )
    return ratio <= 3
