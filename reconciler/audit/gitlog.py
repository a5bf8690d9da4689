"""Git plumbing for audits: the commits that touched a directory, and blobs read once each.

One ``git log --raw`` walks the history (each commit with the blob ids of the files it
changed), and one ``git cat-file --batch`` process reads blob contents on demand; a blob is
read at most once. Together they replay the directory's tree at every commit without a
checkout.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import ReconcilerError

ZERO = "0" * 40
_PR = (re.compile(r"^Merge pull request #(\d+)"), re.compile(r"\(#(\d+)\)\s*$"))


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    email: str
    date: str
    subject: str
    # path (relative to the repository) -> blob id, or None when deleted
    changes: dict[str, str | None] = field(default_factory=dict)

    @property
    def pr(self) -> int | None:
        for pattern in _PR:
            m = pattern.search(self.subject)
            if m:
                return int(m.group(1))
        return None


def repo_root(path: Path) -> Path:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=path if path.is_dir() else path.parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise ReconcilerError(
            f"{path} is not in a git repository", "history and access read git: run it in a clone"
        ) from exc
    return Path(out.stdout.strip())


def commits(root: Path, directory: str, until: str = "HEAD") -> Iterator[Commit]:
    """Oldest first, every commit that touched ``directory`` (relative to ``root``)."""
    cmd = [
        "git", "log", "--reverse", "--raw", "--no-abbrev", "--no-renames", "--first-parent",
        "-m", "--format=%x1e%H%x1f%an%x1f%ae%x1f%aI%x1f%s", until, "--", directory,
    ]  # fmt: skip
    try:
        out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True).stdout
    except subprocess.CalledProcessError as exc:
        raise ReconcilerError(
            f"git log failed: {exc.stderr.strip()}", "check the revision"
        ) from exc
    for record in out.split("\x1e")[1:]:
        head, _, raw = record.partition("\n")
        sha, author, email, date, subject = head.split("\x1f", 4)
        changes: dict[str, str | None] = {}
        for line in raw.splitlines():
            if not line.startswith(":"):
                continue
            meta, _, path = line.partition("\t")
            new = meta.split()[3]
            changes[path] = None if new == ZERO else new
        yield Commit(sha, author, email, date, subject, changes)


class Blobs:
    """``git cat-file --batch``: each blob read once, on demand."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.cache: dict[str, bytes] = {}

    def get(self, sha: str) -> bytes:
        data = self.cache.get(sha)
        if data is not None:
            return data
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{sha}\n".encode())
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        size = int(header[2]) if len(header) == 3 else 0
        data = self.proc.stdout.read(size)
        self.proc.stdout.read(1)  # the newline after each object
        self.cache[sha] = data
        return data

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc.wait()


def tree_at(root: Path, rev: str, directory: str) -> dict[str, str]:
    """path -> blob id of every file under ``directory`` at ``rev``."""
    out = subprocess.run(
        ["git", "ls-tree", "-r", "--full-tree", rev, "--", directory],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tree = {}
    for line in out.splitlines():
        meta, _, path = line.partition("\t")
        tree[path] = meta.split()[2]
    return tree


def resolve(root: Path, point: str) -> str:
    """A revision, or a date (YYYY-MM-DD[THH:MM]) meaning the last commit before its end."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][\d:]+)?", point):
        until = point if "T" in point or " " in point else f"{point} 23:59:59"
        out = subprocess.run(
            ["git", "rev-list", "-1", f"--before={until}", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not out:
            raise ReconcilerError(f"no commit on or before {point}", "pick a later date")
        return out
    r = subprocess.run(
        ["git", "rev-parse", "--verify", f"{point}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise ReconcilerError(
            f"unknown revision or date {point!r}", "write a commit, a tag, or YYYY-MM-DD"
        )
    return r.stdout.strip()
