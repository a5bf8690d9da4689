"""Git plumbing for audits: the commits that touched a directory, and blobs read once each.

One ``git log --raw`` walks the history (each commit with the blob ids of the files it
changed), and one ``git cat-file --batch`` process streams the contents of every blob those
commits name, in one pass (no request/response round trip per blob); a blob is read at most
once. Together they replay the directory's tree at every commit without a checkout.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import re
import subprocess
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import ReconcilerError, UsageError

ZERO = "0" * 40
_PR = (re.compile(r"^Merge pull request #(\d+)"), re.compile(r"\(#(\d+)\)\s*$"))
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; elsewhere the call just fails
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?")


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    email: str
    authored: str
    # When the commit was made on its branch (the merge or squash time on main): what
    # --since and access --at compare against, and what history shows as its date.
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


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def repo_root(path: Path) -> Path:
    if not path.exists():
        raise UsageError(
            f"{path} does not exist", "name the desired-state directory of a git clone"
        )
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory", "name the desired-state directory")
    try:
        out = _git(path, "rev-parse", "--show-toplevel")
    except FileNotFoundError as exc:
        raise ReconcilerError("git is not installed", "install git") from exc
    if out.returncode != 0:
        raise UsageError(
            f"{path} is not in a git repository",
            "history and access read git history: run them in a clone of the repository",
        )
    root = Path(out.stdout.strip())
    if _git(root, "rev-parse", "--verify", "-q", "HEAD").returncode != 0:
        raise UsageError(f"the repository at {root} has no commits yet", "commit desired-state")
    return root


def commits(root: Path, directory: str, until: str = "HEAD") -> Iterator[Commit]:
    """Oldest first, every commit on the first-parent line that touched ``directory``
    (relative to ``root``); a merge shows what it brought relative to its first parent."""
    cmd = [
        "log", "--reverse", "--raw", "--no-abbrev", "--no-renames", "--first-parent",
        "-m", "--format=%x1e%H%x1f%an%x1f%ae%x1f%aI%x1f%cI%x1f%s", until, "--", directory,
    ]  # fmt: skip
    out = _git(root, *cmd)
    if out.returncode != 0:
        raise ReconcilerError(f"git log failed: {out.stderr.strip()}", "check the revision")
    for record in out.stdout.split("\x1e")[1:]:
        head, _, raw = record.partition("\n")
        sha, author, email, authored, date, subject = head.split("\x1f", 5)
        changes: dict[str, str | None] = {}
        for line in raw.splitlines():
            if not line.startswith(":"):
                continue
            meta, _, path = line.partition("\t")
            new = meta.split()[3]
            changes[path] = None if new == ZERO else new
        yield Commit(sha, author, email, authored, date, subject, changes)


class Blobs:
    """Blob contents by id, each read from git once.

    :meth:`stream` starts one ``git cat-file --batch`` over many blobs (the ids come from a
    file, so no pipe can fill up and block) and returns at once: :meth:`get` reads the
    stream forward to the blob it needs, so git decodes the next blobs while the caller
    works on this one. :meth:`prefetch` reads them all now. A blob not asked for before is
    read on its own. :meth:`close` ends a stream not read to its end.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, bytes] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: deque[str] = deque()
        self._queued: set[str] = set()

    def stream(self, shas: Iterable[str]) -> None:
        self.close()
        wanted = [s for s in dict.fromkeys(shas) if s not in self.cache]
        if not wanted:
            return
        with tempfile.TemporaryFile() as ids:
            ids.write("".join(f"{s}\n" for s in wanted).encode())
            ids.seek(0)
            self._proc = subprocess.Popen(
                ["git", "cat-file", "--batch"],
                cwd=self.root,
                stdin=ids,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        assert self._proc.stdout is not None
        with contextlib.suppress(OSError, AttributeError):  # let git run further ahead
            fcntl.fcntl(self._proc.stdout.fileno(), _F_SETPIPE_SZ, 1 << 20)
        self._pending = deque(wanted)
        self._queued = set(wanted)

    def prefetch(self, shas: Iterable[str]) -> None:
        self.stream(shas)
        while self._pending:
            self._next()
        self.close()

    def _next(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        out = self._proc.stdout
        sha = self._pending.popleft()
        self._queued.discard(sha)
        header = out.readline().split()
        if len(header) == 3 and header[1] == b"blob":
            self.cache[sha] = out.read(int(header[2]))
            out.read(1)  # the newline after each object
        elif len(header) == 3:  # not a blob (a submodule, say): skip its content
            out.read(int(header[2]) + 1)
            self.cache[sha] = b""
        else:  # "<sha> missing" (a shallow or partial clone), or git stopped
            self.cache[sha] = b""

    def get(self, sha: str) -> bytes:
        if sha not in self.cache:
            if sha in self._queued:
                while sha not in self.cache:
                    self._next()
            else:
                pending, queued, proc = self._pending, self._queued, self._proc
                self._proc = None  # read this one on its own; the stream goes on after
                self.prefetch([sha])
                self._pending, self._queued, self._proc = pending, queued, proc
        return self.cache[sha]

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdout is not None
            if self._pending:
                self._proc.kill()
            self._proc.stdout.close()
            self._proc.wait()
        self._proc, self._pending, self._queued = None, deque(), set()


def tree_at(root: Path, rev: str, directory: str) -> dict[str, str]:
    """path -> blob id of every file under ``directory`` at ``rev``."""
    out = _git(root, "ls-tree", "-r", "--full-tree", rev, "--", directory)
    if out.returncode != 0:
        raise ReconcilerError(f"git ls-tree failed: {out.stderr.strip()}", "check the revision")
    tree = {}
    for line in out.stdout.splitlines():
        meta, _, path = line.partition("\t")
        kind, sha = meta.split()[1:3]
        if kind == "blob":
            tree[path] = sha
    return tree


def check_date(text: str, option: str) -> str:
    """``text`` if it is a real YYYY-MM-DD[THH:MM[:SS]] date; a UsageError otherwise."""
    if not _DATE.fullmatch(text):
        raise UsageError(f"{option} {text!r} is not a date", "write YYYY-MM-DD, e.g. 2026-06-30")
    try:
        dt.datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError as exc:
        raise UsageError(f"{option} {text!r} is not a valid date: {exc}", "") from exc
    return text


def looks_like_date(point: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}(?:[T ].*)?", point))


def resolve(root: Path, point: str, option: str = "--at") -> str:
    """A revision, or a date (YYYY-MM-DD[THH:MM]) meaning the last commit on the first-parent
    line committed on or before the end of that day (or that minute)."""
    if looks_like_date(point):
        check_date(point, option)
        until = point if len(point) > 10 else f"{point} 23:59:59"
        out = _git(root, "rev-list", "-1", "--first-parent", f"--before={until}", "HEAD")
        if not out.stdout.strip():
            first = _git(root, "log", "--reverse", "--first-parent", "--format=%cI", "HEAD")
            since = first.stdout.split("\n", 1)[0][:10]
            raise UsageError(
                f"no commit on or before {point}: the history starts on {since}",
                f"pick a date on or after {since}",
            )
        return out.stdout.strip()
    r = _git(root, "rev-parse", "--verify", "-q", f"{point}^{{commit}}")
    if r.returncode != 0:
        raise UsageError(
            f"{point!r} is neither a revision of this repository nor a date",
            "write a commit, a tag or a branch, or a date as YYYY-MM-DD",
        )
    return r.stdout.strip()


def notes(root: Path, ref: str) -> dict[str, str]:
    """commit -> note blob of every note under ``refs/notes/<ref>``."""
    out = _git(root, "notes", "--ref", ref, "list")
    found = {}
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        note, _, commit = line.partition(" ")
        if commit:
            found[commit.strip()] = note
    return found


def first_parent_line(root: Path) -> list[str]:
    """The commits of HEAD's first-parent line, newest first."""
    return _git(root, "rev-list", "--first-parent", "HEAD").stdout.split()
