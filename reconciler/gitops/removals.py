"""When was each user and group removed from desired-state? (For grace periods, measured
from git.)

Walks ``git log -p`` of the desired-state directory once, newest first, and records for each
userName the newest commit whose diff removed a ``userName:`` line for it, and the externalId
removed with it (the same entry, block or flow style): a live account with that userName but
another externalId is not the one desired-state described. Groups likewise, by the
``displayName`` of an entry removed from a top-level ``groups:`` list (git names the section a
change is in on each hunk's header; a user's displayName is in ``users:``). Outside a git
repository nothing is known, and removed users and groups count as unmanaged.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

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


# A hunk's header, and the section git names on it (the last line above the hunk that starts
# at the first column: in YAML, the top-level key); a top-level key in a changed line.
_HUNK = re.compile(r"^@@ [^@]* @@ ?(.*)$")
_TOP_KEY = re.compile(r"^[\"']?([A-Za-z_][\w-]*)[\"']?\s*:")
_ITEM_START = re.compile(r"^(\s*)-(?:\s|$)")


@dataclass(frozen=True)
class Removals:
    """Casefolded userName → its removal; casefolded group displayName → its removal."""

    users: dict[str, Removal] = field(default_factory=dict)
    groups: dict[str, Removal] = field(default_factory=dict)


def removal_dates(
    directory: Path, present: set[str], now: dt.datetime | None = None
) -> dict[str, Removal]:
    """Casefolded userName → its removal, for names not in ``present`` (casefolded)."""
    return removals(directory, present, None, now).users


def _group_entries(lines: list[str]) -> list[tuple[str, str | None]]:
    """(displayName, externalId) of each group entry in ``lines``: the changed lines of a
    ``groups:`` section, whole entries or parts of one, block or flow style. Read as YAML at
    once, or else one list item at a time (a run of changed lines may start inside an
    entry)."""
    out: list[tuple[str, str | None]] = []
    if _read(lines, out):
        return out
    marks = [(len(m.group(1)), n) for n, ln in enumerate(lines) if (m := _ITEM_START.match(ln))]
    top = min((indent for indent, _ in marks), default=0)
    starts = sorted({0, *(n for indent, n in marks if indent == top)})
    for a, b in zip(starts, [*starts[1:], len(lines)], strict=True):
        _read(lines[a:b], out)
    return out


def _read(lines: list[str], out: list[tuple[str, str | None]]) -> bool:
    chunk = [ln for ln in lines if ln.strip()]
    if not chunk:
        return True
    cut = min(len(ln) - len(ln.lstrip()) for ln in chunk)
    try:
        found = YAML(typ="safe").load("\n".join(ln[cut:] for ln in chunk))
    except YAMLError:
        return False
    _walk(found, out)
    return True


def _walk(node: Any, out: list[tuple[str, str | None]]) -> None:
    if isinstance(node, dict):
        name = node.get("displayName")
        if isinstance(name, str) and name:
            ext = node.get("externalId")
            out.append((name, None if ext in (None, "") else str(ext)))
            return
        for v in node.values():
            _walk(v, out)
    elif isinstance(node, list):
        for v in node:
            _walk(v, out)


def removals(
    directory: Path,
    present: set[str],
    present_groups: set[str] | None = None,
    now: dt.datetime | None = None,
) -> Removals:
    """The users (casefolded userNames not in ``present``) and groups (casefolded displayNames
    not in ``present_groups``; None: groups are not looked for) removed from desired-state.

    The history read is the first-parent one, as on the main branch: a removal merged from a
    pull request counts from its merge, when it reached the branch, not from when it was
    written on the pull request's branch. A commit that removes a user or group and adds it
    back (moved to another file, rewritten in another style) removes nothing. A removal not
    committed yet (the working tree or the index against HEAD) counts as made ``now`` with no
    commit, so a plan looks the same before and after the commit."""
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
        return Removals()
    try:
        pending = repo.git.diff("HEAD", "-p", "--unified=0", "--no-color", "--", path)
    except git.GitCommandError:
        pending = ""
    now = now or dt.datetime.now(dt.UTC)
    found: dict[str, Removal] = {}
    found_groups: dict[str, Removal] = {}
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
    # Groups: the top-level section the line being read is in; the changed lines of the
    # current run in a groups: section, removed and added; what the commit removes and adds.
    section = ""
    group_lines: dict[str, list[str]] = {"-": [], "+": []}
    removed_groups: dict[str, str | None] = {}
    # Added lines are read only when the commit removed a group (to tell a move).
    added_group_lines: list[list[str]] = []

    def close_groups() -> None:
        removed_lines, added_lines = group_lines["-"], group_lines["+"]
        for gname, ext in _group_entries(removed_lines) if removed_lines else ():
            removed_groups.setdefault(gname.casefold(), ext)
        if added_lines:
            added_group_lines.append(added_lines)
        group_lines["-"], group_lines["+"] = [], []

    def close() -> None:
        nonlocal name, external_id, indent
        if name is not None:
            removed.setdefault(name.casefold(), external_id)
        name = external_id = None
        indent = -1

    def commit_read() -> None:
        close()
        close_groups()
        for cf, ext in removed.items():
            if cf not in present and cf not in found and cf not in added:
                found[cf] = Removal(when=when, commit=sha, external_id=ext)
        gone = {
            cf: ext
            for cf, ext in removed_groups.items()
            if cf not in (present_groups or ()) and cf not in found_groups
        }
        if gone:
            for lines in added_group_lines:
                for gname, _ in _group_entries(lines):
                    gone.pop(gname.casefold(), None)
        for cf, ext in gone.items():
            found_groups[cf] = Removal(when=when, commit=sha, external_id=ext)
        removed.clear()
        added.clear()
        removed_groups.clear()
        added_group_lines.clear()

    for line in (pending + "\n" + out).splitlines():
        if line.startswith("\x00"):
            commit_read()
            section = ""
            sha, _, ts = line[1:].partition(" ")
            when = dt.datetime.fromtimestamp(int(ts), dt.UTC)
            continue
        hunk = _HUNK.match(line)
        if hunk or line.startswith(("diff ", "---", "+++")):
            close_groups()
            top = _TOP_KEY.match(hunk.group(1)) if hunk else None
            section = top.group(1) if top else ""
        elif line[:1] in ("-", "+"):
            top = _TOP_KEY.match(line[1:])
            if top:
                close_groups()
                section = top.group(1)
            if section == "groups" and present_groups is not None:
                group_lines[line[0]].append(line[1:])
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
    return Removals(found, found_groups)


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
