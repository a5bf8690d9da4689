"""When was each user removed from desired-state? (For grace periods, measured from git.)

Walks ``git log -p`` of the desired-state directory once, newest first, and records for each
userName the newest commit whose diff removed a ``userName:`` line for it, and the externalId
the entry had just before (read from the file as it was before that commit): a live account
with that userName but another externalId is not the one desired-state described. Outside a
git repository nothing is known, and removed users count as unmanaged.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import git
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from reconciler.desired.loader import load_files
from reconciler.desired.models import Rule
from reconciler.errors import UsageError
from reconciler.plan.build import Removal

_REMOVED = re.compile(r"^-\s*-?\s*userName:\s*['\"]?([^'\"\s#]+)")


def removal_dates(
    directory: Path, present: set[str], now: dt.datetime | None = None
) -> dict[str, Removal]:
    """Casefolded userName → its removal, for names not in ``present`` (casefolded).

    A removal not committed yet (the working tree or the index against HEAD) counts as made
    ``now`` with no commit, so a plan looks the same before and after the commit."""
    try:
        repo = git.Repo(directory, search_parent_directories=True)
        rel = directory.resolve().relative_to(Path(repo.working_tree_dir or ".").resolve())
        path = str(rel) or "."
        out = repo.git.log("--format=%x00%H %ct", "-p", "--unified=0", "--no-color", "--", path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return {}
    try:
        pending = repo.git.diff("HEAD", "-p", "--unified=0", "--no-color", "--", path)
    except git.GitCommandError:
        pending = ""
    now = now or dt.datetime.now(dt.UTC)
    found: dict[str, Removal] = {}
    sha, when, file = "", now, ""
    before: dict[tuple[str, str], dict[str, str]] = {}  # (revision, file) → userName → externalId
    for line in (pending + "\n" + out).splitlines():
        if line.startswith("\x00"):
            sha, _, ts = line[1:].partition(" ")
            when = dt.datetime.fromtimestamp(int(ts), dt.UTC)
            continue
        if line.startswith("--- "):  # the file as it was before this diff
            file = line[6:].rstrip("\t") if line.startswith("--- a/") else ""
            continue
        m = _REMOVED.match(line)
        if m:
            name = m.group(1).casefold()
            if name not in present and name not in found:
                # The entry as it was: in the parent commit, or for a removal not committed
                # yet, in HEAD.
                revision = f"{sha}^" if sha else "HEAD"
                if (revision, file) not in before:
                    before[revision, file] = _external_ids(repo, revision, file)
                external_id = before[revision, file].get(name)
                found[name] = Removal(when=when, commit=sha, external_id=external_id)
    return found


def _external_ids(repo: git.Repo, revision: str, file: str) -> dict[str, str]:
    """Casefolded userName → externalId of the users in ``file`` at ``revision`` (empty when
    the file cannot be read or parsed: then nothing is known of them)."""
    if not file.endswith((".yaml", ".yml")):
        return {}
    try:
        data = YAML(typ="safe", pure=True).load(repo.git.show(f"{revision}:{file}"))
    except (git.GitCommandError, YAMLError, ValueError):
        return {}
    entries = data.get("users", data) if isinstance(data, dict) else data
    if isinstance(entries, dict):
        entries = [entries]
    out: dict[str, str] = {}
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("userName") and entry.get("externalId"):
            out[str(entry["userName"]).casefold()] = str(entry["externalId"])
    return out


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
        return bool(
            repo.git.status("--porcelain", "--untracked-files=normal", "--", str(rel) or ".")
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
