"""`reconciler history --user` over 1,000 commits of a 5,000-user repository.

Goal (issue: audit): under 2x the time `git log --name-only` takes over the same range, plus
1 s. The repository is generated here with `git fast-import`: attribute edits, membership
moves and rule priority swaps, one per commit.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.generate import generate


def _stream(root: Path, commits: int, rng: random.Random) -> bytes:
    files = {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*.yaml")}
    out: list[bytes] = []
    when = 1_700_000_000

    def blob_commit(message: str, changed: dict[str, str]) -> None:
        nonlocal when
        when += 3600
        out.append(b"commit refs/heads/main\n")
        out.append(f"committer Bench <bench@x.example> {when} +0000\n".encode())
        msg = message.encode()
        out.append(f"data {len(msg)}\n".encode() + msg + b"\n")
        for path, text in changed.items():
            data = text.encode()
            out.append(
                f"M 644 inline desired-state/{path}\ndata {len(data)}\n".encode() + data + b"\n"
            )

    blob_commit("Initial desired state", files)
    user_files = sorted(p for p in files if p.startswith("users/"))
    for n in range(1, commits):
        kind = n % 3
        if kind == 0:
            path = "rules.yaml"
            a, b = rng.sample(range(1, 51), 2)
            text = files[path].replace(f"priority: {a * 10}\n", "priority: X\n", 1)
            text = text.replace(f"priority: {b * 10}\n", f"priority: {a * 10}\n", 1)
            files[path] = text.replace("priority: X\n", f"priority: {b * 10}\n", 1)
            message = f"Swap rule priorities {a} and {b} (#{n})"
        else:
            path = rng.choice(user_files)
            lines = files[path].split("\n")
            i = rng.choice([k for k, line in enumerate(lines) if line.startswith("    title: ")])
            lines[i] = f"    title: Title {n}" if kind == 1 else lines[i]
            if kind == 2:
                j = next(k for k in range(i, len(lines)) if lines[k].startswith("    groups: "))
                lines[j] = (
                    lines[j].replace("]", f", team-sales-{n % 10:04d}]")
                    if "team-sales" not in lines[j]
                    else lines[j]
                )
            files[path] = "\n".join(lines)
            message = f"Edit {path} (#{n})"
        blob_commit(message, {path: files[path]})
    return b"".join(out)


def main() -> bool:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    users, commits = int(5_000 * scale), max(10, int(1_000 * scale))
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        state = Path(tmp) / "gen"
        generate(state, users=users, groups=200, rules=50, per_file=100)
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        t = time.perf_counter()
        subprocess.run(
            ["git", "fast-import", "--quiet"],
            cwd=repo,
            input=_stream(state, commits, rng),
            check=True,
        )
        subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)
        print(f"generated {users} users, {commits} commits in {time.perf_counter() - t:.1f} s")
        name = (
            subprocess.run(
                [
                    "git",
                    "grep",
                    "-h",
                    "-m1",
                    "userName:",
                    "main",
                    "--",
                    "desired-state/users/users-0003.yaml",
                ],
                cwd=repo,
                capture_output=True,
                text=True,
            )
            .stdout.split("userName:")[1]
            .strip()
        )
        git_times, ours = [], []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run(
                ["git", "log", "--name-only", "--", "desired-state"],
                cwd=repo,
                capture_output=True,
                check=True,
            )
            git_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "reconciler",
                    "history",
                    "desired-state",
                    "--user",
                    name,
                    "--format",
                    "json",
                ],
                cwd=repo,
                capture_output=True,
                text=True,
            )
            ours.append(time.perf_counter() - t)
            assert r.returncode == 0, r.stderr
        entries = r.stdout.count('"commit"')
    g, h = min(git_times), min(ours)
    goal = 2 * g + 1
    print(f"git log --name-only:          {g:6.2f} s")
    print(f"reconciler history --user:    {h:6.2f} s  ({entries} entries for {name})")
    met = h <= goal
    print(f"goal <= 2 x git log + 1 s = {goal:.2f} s: {'met' if met else 'NOT MET'}")
    return met
