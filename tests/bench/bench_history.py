"""`reconciler history --user` over 1,000 commits of a 5,000-user repository.

Goal (issue: audit): under 2x the time `git log --name-only` takes over the same range, plus
1 s, the whole command timed as a user runs it (interpreter start and imports included).

The repository is generated here with `git fast-import`. Most commits are noise a real
repository has (other users' edits and group moves, rule priority swaps); woven through them,
one subject user's effective access changes for every reason history must follow: direct
edits of their entry, their `groups:` list, the members list of a group, rule priority swaps
that move their role and user group from one rule to another, and a rename (a new userName,
the same externalId) half-way through. History is asked for the subject by their final name,
so it must follow the rename back; the number of entries it finds is checked against the
number of changes made to the subject, so the benchmark cannot pass by finding nothing.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.generate import _group_names, generate

GROUPS, RULES = 200, 50


@dataclass
class Stream:
    data: bytes
    subject: str  # the subject's userName at HEAD
    events: int  # commits that change the subject's effective state (the first one included)


def _rule_group(p: int) -> str:
    return _group_names(GROUPS)[(p * 7919) % GROUPS]


def _stream(root: Path, commits: int, rng: random.Random) -> Stream:
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

    # The subject: the first user of users-0003.yaml, put in the groups of rules 1 and 2
    # (which grant different roles and user groups), so that swapping those two rules'
    # priorities moves the subject's role and user group between them.
    subject_file = "users/users-0003.yaml"
    subject = re.search(r"userName: (\S+)", files[subject_file]).group(1)  # type: ignore[union-attr]
    rule_groups = [_rule_group(1), _rule_group(2)]

    def subject_lines() -> tuple[list[str], int]:
        lines = files[subject_file].split("\n")
        return lines, lines.index(f"  - userName: {subject}")

    def field_line(lines: list[str], start: int, key: str) -> int:
        return next(k for k in range(start, len(lines)) if lines[k].startswith(f"    {key}: "))

    lines, at = subject_lines()
    g = field_line(lines, at, "groups")
    mine = sorted(
        set(lines[g].removeprefix("    groups: [").rstrip("]").split(", ")) | set(rule_groups)
    )
    lines[g] = f"    groups: [{', '.join(mine)}]"
    files[subject_file] = "\n".join(lines)
    blob_commit("Initial desired state", files)

    events = 1
    step = max(2, commits // 24)
    # Two more rules' groups the subject is not in: one joined through the group's members
    # list (not the subject's file), one added to and removed from the subject's groups: list.
    others = [_rule_group(p) for p in range(3, RULES + 1)]
    members_group, extra_group = [x for x in dict.fromkeys(others) if x not in mine][:2]
    user_files = sorted(p for p in files if p.startswith("users/"))
    for n in range(1, commits):
        if n % step == 0:
            kind = (n // step) % 5
            if n // step == 12:  # half-way: the subject is renamed (same externalId)
                new = subject.replace("@", ".renamed@")
                changed = {p: t.replace(subject, new) for p, t in files.items() if subject in t}
                files.update(changed)
                subject = new
                blob_commit(f"Rename {subject} (#{n})", changed)
            elif kind == 0:  # a priority swap of rules 1 and 2 moves the subject's grants
                text = files["rules.yaml"]
                p1, p2 = (
                    int(re.search(rf"Rule 00{r} .*\n    priority: (\d+)", text).group(1))  # type: ignore[union-attr]
                    for r in (1, 2)
                )
                text = text.replace(f"priority: {p1}\n", "priority: X\n", 1)
                text = text.replace(f"priority: {p2}\n", f"priority: {p1}\n", 1)
                files["rules.yaml"] = text.replace("priority: X\n", f"priority: {p2}\n", 1)
                blob_commit(f"Swap rules 1 and 2 (#{n})", {"rules.yaml": files["rules.yaml"]})
            elif kind == 1:  # a direct edit of the subject's entry
                lines, at = subject_lines()
                lines[field_line(lines, at, "title")] = f"    title: Title {n}"
                files[subject_file] = "\n".join(lines)
                blob_commit(f"Retitle the subject (#{n})", {subject_file: files[subject_file]})
            elif kind == 2:  # the subject joins or leaves a group through its members list
                text = files["groups/groups.yaml"]
                head = f"  - displayName: {members_group}\n    externalId: "
                i = text.index(head)
                eol = text.index("\n", i + len(head))
                if text[eol:].startswith(f"\n    members: [{subject}]"):
                    text = text[:eol] + text[eol + len(f"\n    members: [{subject}]") :]
                else:
                    text = text[:eol] + f"\n    members: [{subject}]" + text[eol:]
                files["groups/groups.yaml"] = text
                blob_commit(f"Members of {members_group} (#{n})", {"groups/groups.yaml": text})
            else:  # the subject's own groups: list
                lines, at = subject_lines()
                g = field_line(lines, at, "groups")
                mine = lines[g].removeprefix("    groups: [").rstrip("]").split(", ")
                mine = (
                    [x for x in mine if x != extra_group]
                    if extra_group in mine
                    else [
                        *mine,
                        extra_group,
                    ]
                )
                lines[g] = f"    groups: [{', '.join(sorted(mine))}]"
                files[subject_file] = "\n".join(lines)
                blob_commit(f"Subject's groups (#{n})", {subject_file: files[subject_file]})
            events += 1
            continue
        # Noise: other users' edits and group moves, and swaps of other rules.
        kind = n % 3
        if kind == 0:
            path = "rules.yaml"
            a, b = rng.sample(range(3, RULES + 1), 2)
            text = files[path].replace(f"priority: {a * 10}\n", "priority: X\n", 1)
            text = text.replace(f"priority: {b * 10}\n", f"priority: {a * 10}\n", 1)
            files[path] = text.replace("priority: X\n", f"priority: {b * 10}\n", 1)
            message = f"Swap rule priorities {a} and {b} (#{n})"
        else:
            path = rng.choice(user_files)
            lines = files[path].split("\n")
            candidates = [
                k
                for k, line in enumerate(lines)
                if line.startswith("  - userName: ") and subject not in line
            ]
            at = rng.choice(candidates)
            if kind == 1:
                lines[field_line(lines, at, "title")] = f"    title: Title {n}"
            else:
                j = field_line(lines, at, "groups")
                if "team-sales" not in lines[j]:
                    lines[j] = lines[j].replace("]", f", team-sales-{n % 10:04d}]")
            files[path] = "\n".join(lines)
            message = f"Edit {path} (#{n})"
        blob_commit(message, {path: files[path]})
    return Stream(b"".join(out), subject, events)


def main() -> bool:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    users, commits = int(5_000 * scale), max(50, int(1_000 * scale))
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        state = Path(tmp) / "gen"
        generate(state, users=users, groups=GROUPS, rules=RULES, per_file=100)
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        t = time.perf_counter()
        stream = _stream(state, commits, rng)
        subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=stream.data, check=True)
        subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)
        print(f"generated {users} users, {commits} commits in {time.perf_counter() - t:.1f} s")
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
                    stream.subject,
                    "--format",
                    "json",
                ],
                cwd=repo,
                capture_output=True,
                text=True,
            )
            ours.append(time.perf_counter() - t)
            assert r.returncode == 0, r.stderr
        entries = json.loads(r.stdout)
    g, h = min(git_times), min(ours)
    goal = 2 * g + 1
    rule_driven = sum(any("priority changed" in c for c in e["causes"]) for e in entries)
    print(f"git log --name-only:          {g:6.2f} s")
    print(
        f"reconciler history --user:    {h:6.2f} s  ({len(entries)} entries for {stream.subject}:"
        f" {rule_driven} moved by rule priority swaps; {stream.events} changes were made)"
    )
    met = h <= goal
    print(f"goal <= 2 x git log + 1 s = {goal:.2f} s: {'met' if met else 'NOT MET'}")
    found = len(entries) == stream.events
    if not found:
        print(f"history found {len(entries)} entries, expected {stream.events}: NOT MET")
    return met and found
