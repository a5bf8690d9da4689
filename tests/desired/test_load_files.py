"""Loading from file contents (as history does from git blobs), with the document cache."""

from __future__ import annotations

from pathlib import Path

from reconciler.desired.loader import load, load_files
from reconciler.desired.models import Document

SAMPLE = Path(__file__).resolve().parents[2] / "desired-state"


def _contents(root: Path) -> dict[Path, bytes]:
    return {
        p: p.read_bytes()
        for p in root.rglob("*.yaml")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def test_same_state_as_from_disk() -> None:
    disk = load(SAMPLE)
    blobs = load_files(SAMPLE, _contents(SAMPLE))
    assert disk.ok and blobs.ok
    assert disk.state is not None and blobs.state is not None
    assert disk.state.users == blobs.state.users
    assert disk.state.rules == blobs.state.rules


def test_cache_reuses_unchanged_documents_and_still_checks_references() -> None:
    cache: dict[bytes, Document] = {}
    contents = _contents(SAMPLE)
    first = load_files(SAMPLE, contents, cache)
    assert first.ok and len(cache) == len(contents) - 1  # every file but tenant.yaml
    cached = dict(cache)
    # A new version of one file: a user now in an unknown group. The other files come from
    # the cache, and the cross-reference check still sees the problem.
    sales = SAMPLE / "users" / "sales.yaml"
    contents[sales] = contents[sales].replace(b"[All Staff, Sales]", b"[All Staff, Sails]", 1)
    second = load_files(SAMPLE, contents, cache)
    assert [d.message for d in second.diagnostics] == ["unknown group 'Sails'"]
    assert all(cache[k] is v for k, v in cached.items())
