"""Running audits over a repository: history of one entity, access at a point, access diff."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.audit.gitlog import Blobs, commits, repo_root, resolve, tree_at
from reconciler.audit.history import (
    Entry,
    Snapshot,
    UserTracker,
    causes_for,
    flatten,
    group_view,
    rule_view,
)
from reconciler.desired.loader import load_files
from reconciler.desired.models import Rule
from reconciler.errors import ReconcilerError
from reconciler.plan.rules import evaluate


def _rel(directory: Path) -> tuple[Path, str]:
    root = repo_root(directory)
    rel = directory.resolve().relative_to(root).as_posix()
    return root, rel


def history(directory: Path, kind: str, name: str, *, since: str | None = None) -> list[Entry]:
    root, rel = _rel(directory)
    blobs = Blobs(root)
    snap = Snapshot(blobs, rel)
    tracker = UserTracker(name)
    if kind == "user":
        # Learn the externalId at HEAD first, so a former userName's history is found too.
        head = Snapshot(blobs, rel)
        head.tree = {
            p: b for p, b in tree_at(root, "HEAD", rel).items() if p.endswith((".yaml", ".yml"))
        }
        tracker.find(head)
    view: Callable[[], dict[str, Any] | None]
    if kind == "user":
        from reconciler.audit.history import user_view

        view = lambda: user_view(snap, tracker)  # noqa: E731
    elif kind == "group":
        view = lambda: group_view(snap, name)  # noqa: E731
    else:
        view = lambda: rule_view(snap, name)  # noqa: E731
    entries: list[Entry] = []
    before: dict[str, Any] | None = None
    rules_before: list[Rule] = []
    ever = False
    try:
        for commit in commits(root, rel):
            snap.apply(commit)
            after = view()
            rules_after = snap.rules() if kind == "user" else []
            if after is not None:
                ever = True
            old, new = flatten(before), flatten(after)
            changes = [
                (k, old.get(k), new.get(k))
                for k in sorted(old.keys() | new.keys())
                if old.get(k) != new.get(k)
            ]
            moved = changes or (before is None) != (after is None)
            if moved and (not since or commit.date[:10] >= since):
                causes = causes_for(before, after, changes, rules_before, rules_after, kind)
                entries.append(Entry(commit, changes, causes))
            before, rules_before = after, rules_after
    finally:
        blobs.close()
    if not ever:
        raise ReconcilerError(
            f"no {kind} {name!r} in the history of {directory}",
            "check the spelling; a user can also be found by a former userName",
        )
    for e in entries:
        e.receipt = _receipt(root, e.commit.sha)
        e.approvers = _approvers(e.commit.pr)
    return entries


def _receipt(root: Path, sha: str) -> str:
    r = subprocess.run(
        ["git", "notes", "--ref", "reconciler", "show", sha],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return ""
    import json

    try:
        data = json.loads(r.stdout)
    except ValueError:
        return ""
    counts = ", ".join(f"{n} {s}" for s, n in sorted(data.get("counts", {}).items()))
    return f"applied {data.get('finished_at', '')[:19]} by {data.get('actor', '?')} ({counts})"


def _approvers(pr: int | None) -> list[str]:
    token, repo = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not (pr and token and repo):
        return []
    from reconciler.gitops.github import GitHub, GitHubError

    try:
        gh = GitHub(token, repo, api_url=os.environ.get("GITHUB_API_URL", "https://api.github.com"))
        reviews = gh.paged(f"repos/{repo}/pulls/{pr}/reviews")
        return sorted({r["user"]["login"] for r in reviews if r.get("state") == "APPROVED"})
    except GitHubError:
        return []


def access_at(directory: Path, point: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """(commit, userName → grants) of the desired state at a revision or date."""
    root, rel = _rel(directory)
    sha = resolve(root, point)
    tree = tree_at(root, sha, rel)
    blobs = Blobs(root)
    try:
        contents = {
            directory.resolve() / Path(p).relative_to(rel): blobs.get(b)
            for p, b in tree.items()
            if p.endswith((".yaml", ".yml"))
        }
    finally:
        blobs.close()
    result = load_files(directory.resolve(), contents)
    if result.state is None:
        raise ReconcilerError(f"the desired state at {point} ({sha[:12]}) does not load")
    acc = evaluate(result.state)
    out = {}
    for u in result.state.users:
        grants = acc[u.userName.casefold()].as_dict() if u.active else {}
        out[u.userName] = {"active": u.active, **grants}
    return sha, out


def access_diff(
    a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]
) -> list[tuple[str, str, str, str]]:
    """(user, 'gains'|'loses', grant, value) between two access maps."""
    out = []
    for user in sorted(a.keys() | b.keys(), key=str.casefold):
        before, after = a.get(user, {}), b.get(user, {})
        for grant in sorted((before.keys() | after.keys()) - {"active"}):
            old = _values(before.get(grant))
            new = _values(after.get(grant))
            out += [(user, "gains", grant, v) for v in sorted(new - old)]
            out += [(user, "loses", grant, v) for v in sorted(old - new)]
    return out


def _values(v: Any) -> set[str]:
    if not v:
        return set()
    return {str(x) for x in v} if isinstance(v, list) else {str(v)}
