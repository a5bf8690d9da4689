"""How history reads file versions: split into items, each parsed once, any layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.audit.gitlog import Blobs
from reconciler.audit.snapshot import Snapshot, _split
from reconciler.desired.loader import load_files


class FakeBlobs(Blobs):
    """Blob contents given in the test: the parsing is what is under test here, not git."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        super().__init__(Path())
        self.cache = dict(blobs)


def test_split_keeps_each_item_whole_in_any_block_layout() -> None:
    data = (
        b"# head comment\nusers:\n  # about alice\n  - userName: a@x.example\n"
        b"    emails:\n      - value: a@x.example\n    groups: [x]\n"
        b"  - userName: b@x.example\n# tail\ngroups:\n- displayName: G\n  members:\n  - a\n"
    )
    assert _split(data) == {
        "users": [
            b"  - userName: a@x.example\n    emails:\n      - value: a@x.example\n    groups: [x]",
            b"  - userName: b@x.example\n# tail",
        ],
        "groups": [b"- displayName: G\n  members:\n  - a\n"],
    }


@pytest.mark.parametrize(
    "data",
    [b"users: [{userName: a@x.example}]\n", b"users:\n  foo: 1\n", b"{users: []}\n"],
)
def test_other_layouts_are_parsed_whole(data: bytes) -> None:
    assert _split(data) is None or _split(data) == {}


def test_any_layout_gives_the_same_models_as_the_loader(tmp_path: Path) -> None:
    files = {
        "block": b"users:\n  - userName: a@x.example\n    groups: [G]\n",
        "flow": b'{"users": [{"userName": "b@x.example", "title": "T"}]}\n',
        "zero": b"users:\n- userName: c@x.example\n  title: Zero\n",
        "groups": b"groups:\n  - displayName: G\n    members: [b@x.example]\n",
    }
    snap = Snapshot(FakeBlobs(files), "")
    snap.reset({f"{k}.yaml": k for k in files})
    users = {u.userName: u for b in ("block", "flow", "zero") for u in snap.models(b, "users")}
    tenant = {tmp_path / "tenant.yaml": b"url: local:t.db\n"}
    loaded = load_files(tmp_path, tenant | {tmp_path / f"{k}.yaml": v for k, v in files.items()})
    assert loaded.state is not None
    assert users == {u.userName: u for u in loaded.state.users}


def test_an_invalid_item_is_left_out_not_fatal() -> None:
    data = b"users:\n  - userName: a@x.example\n  - userName: b@x.example\n    bogus: 1\n"
    snap = Snapshot(FakeBlobs({"v": data}), "")
    assert [u.userName for u in snap.models("v", "users")] == ["a@x.example"]


def test_a_rule_that_differs_only_in_priority_is_not_parsed_again() -> None:
    before = (
        b"rules:\n  - name: A\n    priority: 10\n    match: {groups_any: [G]}\n"
        b"    grants: {role: admin}\n  - name: B\n    priority: 20\n"
        b"    match: {groups_any: [H]}\n    grants: {role: user}\n"
    )
    after = before.replace(b"priority: 10", b"priority: 99")
    snap = Snapshot(FakeBlobs({"v1": before, "v2": after}), "")
    snap.models("v1", "rules")
    parsed = len(snap._shapes)
    fast = snap.models("v2", "rules")
    assert len(snap._shapes) == parsed  # reused, not parsed
    slow = Snapshot(FakeBlobs({"v2": after}), "").models("v2", "rules")
    assert fast == slow and [r.priority for r in fast] == [99, 20]
