"""When was each user and group removed from desired-state? (For grace periods, measured
from git.)

Walks ``git log -p`` of the desired-state directory once, newest first, and records for each
userName the newest commit whose diff removed a ``userName:`` line for it, and the externalId
removed with it (the same entry, block or flow style): a live account with that userName but
another externalId is not the one desired-state described.

Groups are compared whole: in a commit whose diff removes a ``displayName`` line outside a
``users:`` section, the group entries (a ``displayName`` and no ``userName``) of the files it
changes are read as YAML before and after it. An entry whose externalId is still there (under
any name, or in another file: a rename, a move) or, without an externalId, whose name is, was
not removed. A diff alone cannot tell: ``--unified=0`` shows a rename as a removed and an
added name, and lines an entry shares with its neighbours may be shown as another's.

Outside a git repository nothing is known, and removed users and groups count as unmanaged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Mapping
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


# A hunk's header and the top-level key git names on it (the section the hunk is in); a
# top-level key in a changed line; a file's path in a diff's header.
_HUNK = re.compile(r"^@@ [^@]* @@ ?(.*)$")
_TOP_KEY = re.compile(r"^\{?\s*[\"']?([A-Za-z_][\w-]*)[\"']?\s*:")
_PATH = re.compile(r"^(?:---|\+\+\+) [ab]/(.*)$")


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


def _group_entries(text: str | None) -> list[tuple[str, str | None]]:
    """(displayName, externalId) of each group entry (a mapping with a displayName and no
    userName) in a YAML file's ``text``; nothing when it cannot be read."""
    out: list[tuple[str, str | None]] = []
    if not text or "displayName" not in text:
        return out
    with contextlib.suppress(YAMLError):
        _walk(YAML(typ="safe").load(text), out)
    return out


def _walk(node: Any, out: list[tuple[str, str | None]]) -> None:
    if isinstance(node, dict):
        if "userName" in node:
            return  # a user's entry: its displayName is a person's name
        name = node.get("displayName")
        if isinstance(name, str) and name.strip():
            ext = node.get("externalId")
            out.append((name.strip(), None if ext in (None, "") else str(ext)))
            return
        for v in node.values():
            _walk(v, out)
    elif isinstance(node, list):
        for v in node:
            _walk(v, out)


def _gone(
    before: list[tuple[str, str | None]], after: list[tuple[str, str | None]]
) -> dict[str, str | None]:
    """The group entries of ``before`` that ``after`` does not hold: by externalId where the
    entry has one (renamed or moved, it is still there), else by name."""
    exts = {ext for _, ext in after if ext is not None}
    names = {name.casefold() for name, _ in after}
    return {
        name.casefold(): ext
        for name, ext in before
        if (ext not in exts if ext is not None else name.casefold() not in names)
    }


def removals(
    directory: Path,
    present: set[str],
    present_groups: Mapping[str, str | None] | None = None,
    now: dt.datetime | None = None,
) -> Removals:
    """The users (casefolded userNames not in ``present``) and groups removed from
    desired-state. ``present_groups``: casefolded displayName → externalId of the groups in
    desired-state (None: groups are not looked for); a removed group whose name is present
    again with another externalId (the name given to another group) is removed too.

    The history read is the first-parent one, as on the main branch: a removal merged from a
    pull request counts from its merge, when it reached the branch, not from when it was
    written on the pull request's branch. A commit that removes a user or group and adds it
    back (moved to another file, rewritten in another style) removes nothing. A removal not
    committed yet (the working tree or the index against HEAD) counts as made ``now`` with no
    commit, so a plan looks the same before and after the commit."""
    try:
        repo = git.Repo(directory, search_parent_directories=True)
        top = Path(repo.working_tree_dir or ".").resolve()
        rel = directory.resolve().relative_to(top)
        where = str(rel) or "."
        out = repo.git.log(
            "--first-parent",
            "-m",
            "--format=%x00%H %ct",
            "-p",
            "--unified=0",
            "--no-color",
            "--",
            where,
        )
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return Removals()
    try:
        pending = repo.git.diff("HEAD", "-p", "--unified=0", "--no-color", "--", where)
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
    # Groups: the section of the line being read, and the files the commit changes: those
    # whose changed lines name a displayName outside users: are read before and after it.
    section = ""
    files: set[str] = set()
    touched = False

    def read_groups(rev: str | None, paths: set[str]) -> list[tuple[str, str | None]]:
        entries: list[tuple[str, str | None]] = []
        for name in sorted(paths):
            text: str | None
            if rev is None:  # the working tree
                try:
                    text = (top / name).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    text = None
            else:
                try:
                    text = repo.git.show(f"{rev}:{name}")
                except git.GitCommandError:
                    text = None  # not there at that revision
            entries += _group_entries(text)
        return entries

    def groups_removed() -> None:
        if present_groups is None or not touched:
            return
        before = read_groups(f"{sha}^1" if sha else "HEAD", files)
        after = read_groups(sha or None, files)
        for cf, ext in _gone(before, after).items():
            if cf in found_groups:
                continue
            now_ext = present_groups.get(cf, "")
            if cf not in present_groups or (ext and now_ext and now_ext != ext):
                found_groups[cf] = Removal(when=when, commit=sha, external_id=ext)

    def close() -> None:
        nonlocal name, external_id, indent
        if name is not None:
            removed.setdefault(name.casefold(), external_id)
        name = external_id = None
        indent = -1

    def commit_read() -> None:
        nonlocal touched
        close()
        groups_removed()
        files.clear()
        touched = False
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
        hunk = _HUNK.match(line)
        if hunk or line.startswith("diff "):
            key = _TOP_KEY.match(hunk.group(1)) if hunk else None
            section = key.group(1) if key else ""
        elif (file := _PATH.match(line)) is not None:
            if file.group(1).endswith((".yaml", ".yml")):
                files.add(file.group(1))
        elif line[:1] in ("-", "+"):
            key = _TOP_KEY.match(line[1:])
            if key and line[1:2] not in (" ", "\t"):
                section = key.group(1)
            if line[0] == "-" and section != "users" and "displayName" in line:
                touched = True
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
