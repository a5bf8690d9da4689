"""When was each user removed from desired-state? (For grace periods, measured from git.)

Walks ``git log -p`` of the desired-state directory once, newest first, and records for each
userName the newest commit whose diff removed a ``userName:`` line for it, and the externalId
removed with it (the same entry, block or flow style): a live account with that userName but
another externalId is not the one desired-state described. Outside a git repository nothing
is known, and removed users count as unmanaged.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import git

from reconciler.desired.loader import load_files
from reconciler.desired.models import Rule
from reconciler.errors import UsageError
from reconciler.plan.build import Removal

# In a line of a diff: the start of a removed list item, and the keys of a user entry (block or
# flow style, the key quoted or not; an externalId quoted either way, or plain).
_ITEM = re.compile(r"^-(\s*)-\s")
_NAME = re.compile(r"(?:^[-+]|[\s{,])[\"']?userName[\"']?:\s*['\"]?([^'\",}\s#]+)")
_EXTERNAL_ID = re.compile(
    r"(?:^-|[\s{,])[\"']?externalId[\"']?:\s*(?:'([^']*)'|\"([^\"]*)\"|([^,}\s#]+))"
)


def removal_dates(
    directory: Path, present: set[str], now: dt.datetime | None = None
) -> dict[str, Removal]:
    """Casefolded userName → its removal, for names not in ``present`` (casefolded).

    The history read is the first-parent one, as on the main branch: a removal merged from a
    pull request counts from its merge, when it reached the branch, not from when it was
    written on the pull request's branch. A commit that removes a user and adds it back (moved
    to another file, rewritten in another style) removes nobody. A removal not committed yet
    (the working tree or the index against HEAD) counts as made ``now`` with no commit, so a
    plan looks the same before and after the commit."""
    try:
        repo = git.Repo(directory, search_parent_directories=True)
        rel = directory.resolve().relative_to(Path(repo.working_tree_dir or ".").resolve())
        path = str(rel) or "."
        out = repo.git.log(
            "--first-parent",
            "-m",
            "--format=%x00%H %ct",
            "-p",
            "--unified=0",
            "--no-color",
            "--",
            path,
        )
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return {}
    try:
        pending = repo.git.diff("HEAD", "-p", "--unified=0", "--no-color", "--", path)
    except git.GitCommandError:
        pending = ""
    now = now or dt.datetime.now(dt.UTC)
    found: dict[str, Removal] = {}
    sha, when = "", now
    # In the commit being read: the users it removes (with the externalId removed with each)
    # and the ones it adds.
    removed: dict[str, str | None] = {}
    added: set[str] = set()
    # The entry being read in a run of removed lines: its userName, its externalId, and the
    # indentation of the list item that started it (a deeper item, say an email, is inside).
    name: str | None = None
    external_id: str | None = None
    indent = -1

    def close() -> None:
        nonlocal name, external_id, indent
        if name is not None:
            removed.setdefault(name.casefold(), external_id)
        name = external_id = None
        indent = -1

    def commit_read() -> None:
        close()
        for cf, ext in removed.items():
            if cf not in present and cf not in found and cf not in added:
                found[cf] = Removal(when=when, commit=sha, external_id=ext)
        removed.clear()
        added.clear()

    for line in (pending + "\n" + out).splitlines():
        if line.startswith("\x00"):
            commit_read()
            sha, _, ts = line[1:].partition(" ")
            when = dt.datetime.fromtimestamp(int(ts), dt.UTC)
            continue
        if not line.startswith("-") or line.startswith("---"):  # kept, added, or a header
            close()
            if line.startswith("+") and not line.startswith("+++"):
                m = _NAME.search(line.split(" #", 1)[0])
                if m:
                    added.add(m.group(1).casefold())
            continue
        item = _ITEM.match(line)
        if item and (indent < 0 or item.end(1) <= indent):
            close()
            indent = item.end(1)
        line = line.split(" #", 1)[0]  # not a comment
        m = _NAME.search(line)
        if m:
            if name is not None:
                close()
            name = m.group(1)
        m = _EXTERNAL_ID.search(line)
        if m and external_id is None:
            external_id = next(v for v in m.groups() if v is not None)
    commit_read()
    return found


def shallow(directory: Path) -> bool:
    """Whether ``directory`` is in a shallow clone: its history stops short, so removals made
    before the first commit it holds cannot be found."""
    try:
        repo = git.Repo(directory, search_parent_directories=True)
        return str(repo.git.rev_parse("--is-shallow-repository")).strip() == "true"
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return False


def head_commit(directory: Path) -> str | None:
    try:
        return git.Repo(directory, search_parent_directories=True).head.commit.hexsha
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None


def uncommitted(directory: Path) -> bool:
    """Whether ``directory`` holds changes git has not committed (edited, added, deleted or
    untracked files): then the plan's commit does not hold the state that was planned."""
    try:
        repo = git.Repo(directory, search_parent_directories=True)
        rel = directory.resolve().relative_to(Path(repo.working_tree_dir or ".").resolve())
        # Not the reconciler's own working folder (journal, lock, a local tenant), should
        # desired-state be the repository's top folder.
        return bool(
            repo.git.status(
                "--porcelain",
                "--untracked-files=normal",
                "--",
                str(rel) or ".",
                ":(exclude,glob)**/.reconciler/**",
            )
        )
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return False


def rule_changes(directory: Path, base: str | None, current: tuple[Rule, ...]) -> tuple[str, ...]:
    """Names of rules added, removed or changed since ``base`` (a git revision).

    A ``base`` that cannot be read is a usage error, never "no rule changed": a typo must not
    switch the rule_changes gate off."""
    if not base:
        return ()
    try:
        repo = git.Repo(directory, search_parent_directories=True)
        top = Path(repo.working_tree_dir or ".").resolve()
        rel = directory.resolve().relative_to(top)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError) as exc:
        raise UsageError(
            f"--base {base!r}: {directory} is not in a git repository",
            "run the plan inside the repository, or leave out --base",
        ) from exc
    try:
        repo.git.rev_parse("--verify", "--quiet", f"{base}^{{commit}}")
        names = repo.git.ls_tree("-r", "--name-only", base, "--", str(rel)).splitlines()
        contents = {
            top / name: repo.git.show(f"{base}:{name}").encode()
            for name in names
            if name.endswith((".yaml", ".yml"))
        }
    except git.GitCommandError as exc:
        raise UsageError(
            f"--base {base!r} is not a revision of this repository",
            "name a branch, tag or commit, e.g. --base origin/main (fetch it first in CI)",
        ) from exc
    old = load_files(directory.resolve(), contents).state
    before = {r.name: r for r in (old.rules if old else ())}
    after = {r.name: r for r in current}
    return tuple(sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n)))
