"""Small named values the host keeps beside its tables (schema versions, the audit log's keys)."""

from __future__ import annotations

from typing import Protocol

from emrcomm.storage.database import Database


class Meta(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class SqlMeta:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str) -> str | None:
        rows = self.db.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def put(self, key: str, value: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
