"""Secrets that people put in URLs: such a URL is refused, and never echoed. A module of its
own, so the loader checks tenant.yaml without importing the HTTP client."""

from __future__ import annotations


def has_credentials(url: str) -> bool:
    """Whether an http(s) URL carries user:password@ (a secret that must never be echoed)."""
    if not url.lower().startswith(("http://", "https://")):
        return False
    return "@" in url.split("//", 1)[1].split("/", 1)[0]


def has_query(url: str) -> bool:
    """Whether an http(s) URL has a query string, fragment or path parameters (``;jsessionid=``):
    no SCIM base URL has one, and some people put a token there (so it is never echoed)."""
    return url.lower().startswith(("http://", "https://")) and any(c in url for c in "?#;")
