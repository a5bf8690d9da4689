"""When was each user removed from desired-state? (For grace periods, measured from git.)

Walks ``git log -p`` of the desired-state directory once, newest first, and records for each
userName the newest commit whose diff removed a ``userName:`` line for it. Outside a git
repository nothing is known, and removed users count as unmanaged.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import git

from reconciler.desired.loader import load_files
from reconciler.desired.models import Rule
from reconciler.plan.build import Removal

_REMOVED = re.compile(r"^-\s*-?\s*userName:\s*['\"]?([^'\"\s#]+)")


def removal_dates(directory: Path, present: set[str]) -> dict[str, Removal]:
    """Casefolded userName → its removal, for names not in ``present`` (casefolded)."""
    try:
        repo = git.Repo(directory, search_parent_directories=True)
        rel = directory.resolve().relative_to(Path(repo.working_tree_dir or ".").resolve())
        out = repo.git.log(
            "--format=%x00%H %ct", "-p", "--unified=0", "--no-color", "--", str(rel) or "."
        )
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return {}
    found: dict[str, Removal] = {}
    sha, when = "", dt.datetime.fromtimestamp(0, dt.UTC)
    for line in out.splitlines():
        if line.startswith("\x00"):
            sha, _, ts = line[1:].partition(" ")
            when = dt.datetime.fromtimestamp(int(ts), dt.UTC)
            continue
        m = _REMOVED.match(line)
        if m:
            name = m.group(1).casefold()
            if name not in present and name not in found:
                found[name] = Removal(when=when, commit=sha)
    return found


def head_commit(directory: Path) -> str | None:
    try:
        return git.Repo(directory, search_parent_directories=True).head.commit.hexsha
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None


def rule_changes(directory: Path, base: str | None, current: tuple[Rule, ...]) -> tuple[str, ...]:
    """Names of rules added, removed or changed since ``base`` (a git revision)."""
    if not base:
        return ()
    try:
        repo = git.Repo(directory, search_parent_directories=True)
        top = Path(repo.working_tree_dir or ".").resolve()
        rel = directory.resolve().relative_to(top)
        names = repo.git.ls_tree("-r", "--name-only", base, "--", str(rel)).splitlines()
        contents = {
            top / name: repo.git.show(f"{base}:{name}").encode()
            for name in names
            if name.endswith((".yaml", ".yml"))
        }
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return ()
    old = load_files(directory.resolve(), contents).state
    before = {r.name: r for r in (old.rules if old else ())}
    after = {r.name: r for r in current}
    return tuple(sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n)))
