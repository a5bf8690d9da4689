"""SQLite persistence: one row per resource (its JSON) plus the tenant's settings.

WAL mode and one connection per process; writes commit at once, so data survives a restart
or a kill. Everything else (filters, paging, uniqueness) works on the in-memory copy.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.tenant.settings import TenantSettings

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (type, id)
);
"""


def connect(db: Path) -> sqlite3.Connection:
    if not db.parent.is_dir():
        raise ReconcilerError(
            f"cannot open the tenant database {db}: {db.parent} does not exist",
            "create the directory first, or pass another --db",
        )
    try:
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise ReconcilerError(
            f"{db} is not a tenant database ({exc})",
            "pass the path of a database made by `reconciler tenant init`, or a new path",
        ) from exc
    return conn


def init_tenant(db: Path, settings: TenantSettings) -> None:
    """Create the database if needed and store ``settings`` (replacing earlier ones)."""
    conn = connect(db)
    with conn:
        conn.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('tenant', ?)",
            (settings.model_dump_json(),),
        )
    conn.close()


def load_settings(db: Path) -> TenantSettings:
    conn = connect(db)
    row = conn.execute("SELECT value FROM settings WHERE key = 'tenant'").fetchone()
    conn.close()
    return TenantSettings.model_validate_json(row[0]) if row else TenantSettings()


class Store:
    """Rows of one tenant database."""

    def __init__(self, db: Path) -> None:
        self.conn = connect(db)

    def rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for type_, body in self.conn.execute("SELECT type, body FROM resources ORDER BY rowid"):
            yield type_, json.loads(body)

    def count(self, type_: str) -> int:
        row = self.conn.execute("SELECT count(*) FROM resources WHERE type = ?", (type_,))
        return int(row.fetchone()[0])

    def put(self, type_: str, id_: str, body: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO resources (type, id, body) VALUES (?, ?, ?)",
            (type_, id_, json.dumps(body, separators=(",", ":"), default=str)),
        )

    def put_many(self, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO resources (type, id, body) VALUES (?, ?, ?)",
                ((t, i, json.dumps(b, separators=(",", ":"), default=str)) for t, i, b in rows),
            )

    def delete(self, type_: str, id_: str) -> None:
        self.conn.execute("DELETE FROM resources WHERE type = ? AND id = ?", (type_, id_))

    def close(self) -> None:
        self.conn.close()
