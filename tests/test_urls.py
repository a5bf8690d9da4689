"""Which spellings of a tenant URL name one tenant (and which do not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.urls import canonical, same_tenant


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        # local: paths name the file they open, relative to the working directory.
        ("local:t.db", "local:t.db", True),
        ("local:./t.db", "local:t.db", True),
        ("local:sub/../t.db", "local:t.db", True),
        ("local:sub//./t2.db", "local:sub/t2.db", True),
        ("local:link.db", "local:t.db", True),  # a symbolic link opens its target
        ("local:{cwd}/t.db", "local:t.db", True),
        ("local:t.db", "local:sub/t.db", False),
        ("local:t.db", "local:nothing-here.db", False),
        ("local:t.db", "http://127.0.0.1:1/v2", False),
        # http(s) URLs are compared in their canonical form; nothing else is loosened.
        ("https://scim.example/v2/", "https://scim.example/v2", True),
        ("https://scim.example/v2", "https://SCIM.example/v2", True),
        ("HTTPS://scim.example/v2", "https://scim.example/v2", True),
        ("https://scim.example/v2", "https://scim.example/V2", False),
        ("https://scim.example/./v2", "https://scim.example/v2", False),
        ("https://scim.example:443/v2", "https://scim.example/v2", False),
    ],
)
def test_same_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, a: str, b: str, same: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "t.db").write_bytes(b"")
    (tmp_path / "link.db").symlink_to("t.db")
    a, b = a.format(cwd=tmp_path), b.format(cwd=tmp_path)
    assert same_tenant(a, b) is same
    assert same_tenant(b, a) is same


@pytest.mark.parametrize(
    ("url", "written"),
    [
        ("local:t.db", "local:t.db"),
        ("local:./t.db", "local:t.db"),
        ("local:sub/../t.db", "local:t.db"),
        ("local:sub//./t2.db", "local:sub/t2.db"),
        ("local:.reconciler/tenant.db", "local:.reconciler/tenant.db"),
        # A relative path stays relative: the pull request's plan and the merge's are made
        # in different checkouts, and must hash the same.
        ("local:../t.db", "local:../t.db"),
        ("local:/srv/t.db", "local:/srv/t.db"),
        ("http://127.0.0.1:8/v2/", "http://127.0.0.1:8/v2"),
        ("HTTP://Scim.Example:8443/Api/V2", "http://scim.example:8443/Api/V2"),
        ("https://scim.example", "https://scim.example"),
        ("https://scim.example/", "https://scim.example"),
        ("https://[::1]:8443/v2", "https://[::1]:8443/v2"),
        # Not guessed at: a default port, dot segments.
        ("https://scim.example:443/v2", "https://scim.example:443/v2"),
        ("https://scim.example/./v2", "https://scim.example/./v2"),
    ],
)
def test_canonical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, written: str) -> None:
    monkeypatch.chdir(tmp_path)  # a canonical form does not depend on where it is made
    assert canonical(url) == written
    assert canonical(written) == written
