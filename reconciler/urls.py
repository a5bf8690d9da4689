"""Tenant URLs: secrets that people put in them (such a URL is refused, and never echoed), and
which spellings name one tenant. A module of its own, so the loader checks tenant.yaml without
importing the HTTP client."""

from __future__ import annotations

import os
from pathlib import Path

LOCAL = "local:"


def has_credentials(url: str) -> bool:
    """Whether an http(s) URL carries user:password@ (a secret that must never be echoed)."""
    if not url.lower().startswith(("http://", "https://")):
        return False
    return "@" in url.split("//", 1)[1].split("/", 1)[0]


def has_query(url: str) -> bool:
    """Whether an http(s) URL has a query string, fragment or path parameters (``;jsessionid=``):
    no SCIM base URL has one, and some people put a token there (so it is never echoed)."""
    return url.lower().startswith(("http://", "https://")) and any(c in url for c in "?#;")


def local_db(url: str) -> Path:
    """The database file of a ``local:<path>`` URL, as it is opened: relative to the current
    directory (the one the reconciler runs from), never to tenant.yaml's."""
    return Path(url.removeprefix(LOCAL))


def canonical(url: str) -> str:
    """One spelling of a tenant URL, for the plan hash: the same tenant written another way
    hashes the same. An http(s) URL's scheme and host are lower-cased (they are
    case-insensitive) and its path loses a trailing slash; a ``local:`` path is normalised as
    written, a relative one staying relative (never resolved: the pull request's plan and
    the merge's are made in different directories, and must hash the same). Nothing else is
    guessed at (a default port, a path's case or ``.`` segments).

    >>> canonical("HTTPS://SCIM.Example/V2/"), canonical("local:./sub/../t.db")
    ('https://scim.example/V2', 'local:t.db')
    """
    if url.startswith(LOCAL):
        return LOCAL + os.path.normpath(url.removeprefix(LOCAL))
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    return f"{scheme.lower()}://{userinfo}{at}{host.lower()}{(slash + path).rstrip('/')}"


def same_tenant(a: str, b: str) -> bool:
    """Whether two tenant URLs name one tenant. ``local:`` URLs name the file they open, so
    ``local:./t.db``, ``local:t.db`` and ``local:sub/../t.db`` are one tenant; http(s) URLs
    are compared in their :func:`canonical` form (a default port or ``.`` segments are not
    guessed at: a credential goes only where the plan said).

    >>> same_tenant("local:./t.db", "local:t.db"), same_tenant("https://a/v2/", "HTTPS://A/v2")
    (True, True)
    """
    if a.startswith(LOCAL) and b.startswith(LOCAL):
        one, other = local_db(a), local_db(b)
        try:
            return one.samefile(other)  # also on a case-insensitive file system
        except OSError:  # a file that is not there (yet): compared by its resolved path
            return os.path.realpath(one) == os.path.realpath(other)
    return canonical(a) == canonical(b)
