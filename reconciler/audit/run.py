"""Running audits over a repository: history of one entity, access at a point, access diff."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from reconciler.audit.gitlog import (
    Blobs,
    Commit,
    check_date,
    commits,
    first_parent_line,
    notes,
    repo_root,
    resolve,
    tree_at,
)
from reconciler.audit.history import (
    Entry,
    Tracker,
    causes_for,
    field_changes,
    group_view,
    rule_view,
    user_view,
)
from reconciler.audit.snapshot import Snapshot
from reconciler.desired.models import Rule
from reconciler.diagnostics import Diagnostic
from reconciler.errors import InputError, UsageError

NOTES_REF = "reconciler"  # the ref apply writes receipts under (reconciler.apply.receipt)


def _rel(directory: Path) -> tuple[Path, str]:
    root = repo_root(directory)
    rel = directory.resolve().relative_to(root.resolve()).as_posix()
    return root, "" if rel == "." else rel


def history(directory: Path, kind: str, name: str, *, since: str | None = None) -> list[Entry]:
    if since is not None:
        check_date(since, "--since")
    root, rel = _rel(directory)
    log = list(commits(root, rel or "."))
    if not log:
        raise UsageError(
            f"no commit touches {directory}",
            "name the desired-state directory as it is committed in git",
        )
    blobs = Blobs(root)
    snap = Snapshot(blobs, rel)
    tracker: Tracker | None = None
    if kind != "rule":
        section, key = ("users", "userName") if kind == "user" else ("groups", "displayName")
        tracker = Tracker(section, key, name)
        # Learn the externalId at HEAD first, so a former name's history is found too.
        head = Snapshot(blobs, rel)
        at_head = tree_at(root, "HEAD", rel or ".")
        blobs.prefetch(b for p, b in at_head.items() if head.tracked(p))
        head.reset(at_head)
        tracker.find(head)
        snap.also_sensitive = head.sensitive()
    # Git decodes the next file versions while this process works on the current one.
    blobs.stream(b for c in log for b in c.changes.values() if b)
    try:
        entries = _walk(log, snap, tracker, kind, name, since)
    finally:
        blobs.close()
    names = tracker.names if tracker else {name.casefold()}
    _receipts(root, blobs, entries, names)
    approvers = Approvers(root)
    for e in entries:
        e.approvers = approvers.of(e.commit.pr)
    return entries


def _walk(
    log: list[Commit],
    snap: Snapshot,
    tracker: Tracker | None,
    kind: str,
    name: str,
    since: str | None,
) -> list[Entry]:
    """The entries of one entity's history, oldest first."""

    def view() -> dict[str, Any] | None:
        if tracker is None:
            return rule_view(snap, name)
        return user_view(snap, tracker) if kind == "user" else group_view(snap, tracker)

    def matters(blob: str) -> bool:
        """Whether a file version can change the entity's view."""
        if kind == "rule":
            return "rules" in snap.sections(blob)
        assert tracker is not None
        if kind == "user" and snap.sections(blob) & {"groups", "rules", "attributes"}:
            return True
        return tracker.hit(snap, blob)

    entries: list[Entry] = []
    before: dict[str, Any] | None = None
    rules_before: list[Rule] = []
    ever = False
    for commit in log:
        touched = snap.apply(commit)
        if not any(matters(b) for b in touched):
            continue
        after = view()
        rules_after = snap.rules() if kind == "user" else []
        ever = ever or after is not None
        changes = field_changes(before, after)
        moved = changes or (before is None) != (after is None)
        if moved and (not since or commit.date[: len(since)] >= since.replace(" ", "T")):
            causes = causes_for(before, after, changes, rules_before, rules_after, kind)
            entries.append(Entry(commit, changes, causes))
        before, rules_before = after, rules_after
    if not ever:
        raise UsageError(
            f"no {kind} {name!r} in the history of {snap.directory or 'the repository'}",
            {
                "user": "check the spelling (a user is also found by a former userName)",
                "group": "check the spelling (a group is also found by a former displayName)",
            }.get(kind, "check the spelling of the rule's name"),
        )
    return entries


def _receipts(root: Path, blobs: Blobs, entries: list[Entry], names: set[str]) -> None:
    """Each entry's receipt: the first apply at or after its commit on the first-parent line
    (an apply of a later commit carries every earlier change with it)."""
    found = notes(root, NOTES_REF)
    if not found or not entries:
        return
    blobs.prefetch(found.values())
    line = first_parent_line(root)  # newest first
    latest: str | None = None
    first_at_or_after: dict[str, str | None] = {}
    for sha in line:
        if sha in found:
            latest = sha
        first_at_or_after[sha] = latest
    for e in entries:
        at = first_at_or_after.get(e.commit.sha)
        if at is not None:
            e.receipt = _describe(json_note(blobs.get(found[at])), at, e.commit.sha, names)


def json_note(data: bytes) -> dict[str, Any]:
    try:
        note = json.loads(data)
    except ValueError:
        return {}
    return note if isinstance(note, dict) else {}


def _describe(note: dict[str, Any], at: str, sha: str, names: set[str]) -> str:
    if note.get("kind") != "reconciler-apply-receipt":
        return ""
    counts = ", ".join(f"{n} {s}" for s, n in sorted(note.get("counts", {}).items()))
    where = "" if at == sha else f" with {at[:12]}"
    text = (
        f"applied {str(note.get('finished_at', ''))[:19]} by {note.get('actor', '?')}{where}"
        f" ({counts or 'no changes'})"
    )
    mine = [
        r
        for r in note.get("results", [])
        if isinstance(r, dict) and str(r.get("key", "")).casefold() in names
    ]
    for r in mine:
        cause = f": {r['cause']}" if r.get("cause") and r.get("status") != "ok" else ""
        text += f"; {r.get('action', '?')} {r.get('key')}: {r.get('status')}{cause}"
    return text


class Approvers:
    """Who approved a pull request, from the GitHub API when GITHUB_TOKEN is set.

    The repository is GITHUB_REPOSITORY, or else the one the ``origin`` remote points to on
    GitHub. A reviewer counts when their latest decisive review approves. Problems are told
    once on stderr (never the token) and history goes on without approvers.
    """

    def __init__(self, root: Path) -> None:
        self.token = os.environ.get("GITHUB_TOKEN", "")
        self.repo = os.environ.get("GITHUB_REPOSITORY") or (_origin(root) if self.token else "")
        self.cache: dict[int, list[str]] = {}
        self.failed = False

    def of(self, pr: int | None) -> list[str]:
        if not pr or not self.token or self.failed:
            return []
        if not self.repo:
            self._warn("GITHUB_REPOSITORY is not set and origin is not on GitHub")
            return []
        if pr not in self.cache:
            self.cache[pr] = self._fetch(pr)
        return self.cache[pr]

    def _fetch(self, pr: int) -> list[str]:
        from reconciler.gitops.github import GitHub, GitHubError

        try:
            gh = GitHub(
                self.token,
                self.repo,
                api_url=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
            )
            latest: dict[str, str] = {}
            for r in gh.paged(f"repos/{self.repo}/pulls/{pr}/reviews"):
                login = (r.get("user") or {}).get("login")
                if login and r.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                    latest[login] = r["state"]
            return sorted((u for u, s in latest.items() if s == "APPROVED"), key=str.casefold)
        except GitHubError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            self._warn(f"{exc}{hint}")
            return []

    def _warn(self, why: str) -> None:
        self.failed = True
        print(f"warning: approvers not shown: {why}", file=sys.stderr)


def _origin(root: Path) -> str:
    out = subprocess.run(
        ["git", "remote", "get-url", "origin"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    m = re.search(r"github\.com[:/]([^/]+/[^/]+?)(?:\.git)?/?$", out)
    return m.group(1) if m else ""


class HistoricalStateError(InputError):
    def __init__(self, point: str, sha: str, diagnostics: list[Diagnostic]) -> None:
        super().__init__(
            f"the desired state at {point} ({sha[:12]}) does not load",
            "the problems above were committed then (files as they were at that commit); "
            "pick another point",
        )
        self.diagnostics = diagnostics


def access_at(
    directory: Path, point: str, option: str = "--at"
) -> tuple[str, dict[str, dict[str, Any]]]:
    """(commit, userName → grants) of the desired state at a revision or date."""
    from reconciler.desired.loader import load_files
    from reconciler.plan.rules import evaluate

    root, rel = _rel(directory)
    sha = resolve(root, point, option)
    tree = tree_at(root, sha, rel or ".")
    blobs = Blobs(root)
    wanted = {p: b for p, b in tree.items() if p.endswith((".yaml", ".yml"))}
    if not wanted:
        raise UsageError(
            f"{directory} has no desired state at {point} ({sha[:12]})",
            "pick a later date or revision",
        )
    blobs.prefetch(wanted.values())
    base = directory.resolve()
    contents = {
        base / (Path(p).relative_to(rel) if rel else Path(p)): blobs.get(b)
        for p, b in wanted.items()
    }
    result = load_files(base, contents)
    if not result.ok or result.state is None:
        raise HistoricalStateError(point, sha, result.diagnostics)
    acc = evaluate(result.state)
    out = {}
    for u in result.state.users:
        grants = acc[u.userName.casefold()].as_dict() if u.active else {}
        out[u.userName] = {"active": u.active, "externalId": u.externalId, **grants}
    return sha, out


def access_diff(
    a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]
) -> list[tuple[str, str, str, str]]:
    """(user, 'gains'|'loses'|'renamed from', grant, value) between two access maps. A user
    is matched across the two by externalId (else userName), so a rename is no loss."""

    def key(name: str, v: dict[str, Any]) -> str:
        return f"id:{v['externalId']}" if v.get("externalId") else f"name:{name.casefold()}"

    old = {key(n, v): (n, v) for n, v in a.items()}
    new = {key(n, v): (n, v) for n, v in b.items()}
    out: list[tuple[str, str, str, str]] = []
    for k in old.keys() | new.keys():
        name_a, before = old.get(k, ("", {}))
        name_b, after = new.get(k, ("", {}))
        user = name_b or name_a
        if name_a and name_b and name_a != name_b:
            out.append((user, "renamed from", "userName", name_a))
        for grant in sorted((before.keys() | after.keys()) - {"active", "externalId"}):
            was = _values(before.get(grant))
            now = _values(after.get(grant))
            out += [(user, "gains", grant, v) for v in sorted(now - was)]
            out += [(user, "loses", grant, v) for v in sorted(was - now)]
    order = {"renamed from": 0, "gains": 1, "loses": 2}
    return sorted(
        out, key=lambda r: (r[0].casefold(), r[1] != "renamed from", r[2], order[r[1]], r[3])
    )


def _values(v: Any) -> set[str]:
    if not v:
        return set()
    return {str(x) for x in v} if isinstance(v, list) else {str(v)}
