"""The embedded store: one SQLite database (WAL) holding filed records, the consent ledger,
the outbox and portal messages, behind the small ``Store`` interface other back ends implement.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    patient TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT,
    category TEXT,
    recorded TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    resource TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_patient ON records (patient, recorded);
CREATE INDEX IF NOT EXISTS records_request ON records (request_id);
CREATE TABLE IF NOT EXISTS consent_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    patient TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT,
    purpose TEXT,
    action TEXT NOT NULL CHECK (action IN ('grant', 'revoke')),
    at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_events_address ON consent_events (channel, address);
CREATE INDEX IF NOT EXISTS consent_events_patient ON consent_events (patient);
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    not_before TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    provider_id TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, not_before);
CREATE INDEX IF NOT EXISTS outbox_request ON outbox (request_id);
CREATE TABLE IF NOT EXISTS portal_messages (
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    patient TEXT NOT NULL,
    key_id TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unread'
);
"""


def iso(value: dt.datetime | None) -> str | None:
    """Store times as UTC ISO strings so they sort and compare as text."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


class Store(Protocol):
    """What plugins and the host may ask of storage. The SQLite store is the reference."""

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def file_record(
        self,
        *,
        id: str,
        request_id: str,
        patient: str,
        status: str,
        channel: str | None,
        category: str | None,
        recorded: dt.datetime,
        resource: dict[str, Any],
    ) -> None: ...

    def get_record(self, id: str) -> dict[str, Any] | None: ...

    def record_meta(self, id: str) -> dict[str, Any]: ...

    def record_for_provider(self, channel: str, provider_id: str) -> str | None: ...

    def count_records(
        self, *, patient: str, channel: str, since: dt.datetime, statuses: tuple[str, ...]
    ) -> int: ...

    def find_records(
        self,
        *,
        patient: str | None = None,
        status: str | None = None,
        channel: str | None = None,
        category: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> Iterator[dict[str, Any]]: ...

    def add_consent_event(
        self,
        *,
        patient: str,
        channel: str,
        address: str | None,
        purpose: str | None,
        action: str,
        at: dt.datetime,
        source: str,
    ) -> None: ...

    def consent_events(self, *, channel: str, address: str) -> list[dict[str, Any]]: ...

    def outbox_put(
        self,
        *,
        key: str,
        record_id: str,
        request_id: str,
        channel: str,
        state: str,
        not_before: dt.datetime | None,
        payload: dict[str, Any],
        now: dt.datetime,
    ) -> bool: ...

    def outbox_mark(
        self,
        key: str,
        *,
        state: str,
        now: dt.datetime,
        error: str | None = None,
        provider_id: str | None = None,
        count_attempt: bool = True,
    ) -> None: ...

    def outbox_counts(self) -> dict[str, int]: ...

    def outbox_for_request(self, request_id: str) -> list[dict[str, Any]]: ...

    def portal_put(
        self,
        *,
        id: str,
        record_id: str,
        patient: str,
        key_id: str,
        nonce: bytes,
        ciphertext: bytes,
        created: dt.datetime,
    ) -> None: ...

    def portal_get(self, id: str) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


class SQLiteStore:
    """The embedded store. One connection guarded by a lock; WAL so readers never block the writer.

    Durability is deliberate: ``synchronous=FULL`` (every commit reaches the disk). Callers
    that write many rows group them in one ``transaction()`` so the fsync is shared.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; nested calls join the outer transaction (one commit, one fsync)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            else:
                self._depth -= 1
                if outer:
                    self._db.execute("COMMIT")

    def _write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        with self.transaction():
            return self._db.execute(sql, params)

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # records -----------------------------------------------------------------------------------
    def file_record(
        self,
        *,
        id: str,
        request_id: str,
        patient: str,
        status: str,
        channel: str | None,
        category: str | None,
        recorded: dt.datetime,
        resource: dict[str, Any],
    ) -> None:
        self._write(
            """INSERT INTO records (id, request_id, patient, status, channel, category, recorded, resource)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET status = excluded.status, channel = excluded.channel,
                   resource = excluded.resource, version = records.version + 1""",
            (id, request_id, patient, status, channel, category, iso(recorded), json.dumps(resource)),
        )

    def get_record(self, id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT resource FROM records WHERE id = ?", (id,))
        return json.loads(rows[0]["resource"]) if rows else None

    def record_meta(self, id: str) -> dict[str, Any]:
        rows = self._read(
            "SELECT id, request_id, patient, status, channel, category, version FROM records WHERE id = ?", (id,)
        )
        if not rows:
            raise KeyError(id)
        return dict(rows[0])

    def record_for_provider(self, channel: str, provider_id: str) -> str | None:
        rows = self._read(
            "SELECT record_id FROM outbox WHERE channel = ? AND provider_id = ?", (channel, provider_id)
        )
        return rows[0]["record_id"] if rows else None

    def count_records(
        self, *, patient: str, channel: str, since: dt.datetime, statuses: tuple[str, ...]
    ) -> int:
        """How many records of this patient on this channel, in these statuses, since a time."""
        marks = ", ".join("?" for _ in statuses)
        rows = self._read(
            f"SELECT COUNT(*) AS n FROM records WHERE patient = ? AND channel = ? AND recorded >= ?"
            f" AND status IN ({marks})",
            (patient, channel, iso(since), *statuses),
        )
        return int(rows[0]["n"])

    def find_records(
        self,
        *,
        patient: str | None = None,
        status: str | None = None,
        channel: str | None = None,
        category: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("patient", patient),
            ("status", status),
            ("channel", channel),
            ("category", category),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("recorded >= ?")
            params.append(iso(since))
        if until is not None:
            where.append("recorded < ?")
            params.append(iso(until))
        sql = "SELECT resource FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY recorded, id"
        for row in self._read(sql, tuple(params)):
            yield json.loads(row["resource"])

    # consent ledger ---------------------------------------------------------------------------
    def add_consent_event(
        self,
        *,
        patient: str,
        channel: str,
        address: str | None,
        purpose: str | None,
        action: str,
        at: dt.datetime,
        source: str,
    ) -> None:
        self._write(
            """INSERT INTO consent_events (patient, channel, address, purpose, action, at, source)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (patient, channel, address, purpose, action, iso(at), source),
        )

    def consent_events(self, *, channel: str, address: str) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT * FROM consent_events WHERE channel = ? AND address = ? ORDER BY seq",
            (channel, address),
        )
        return [dict(r) for r in rows]

    # outbox ------------------------------------------------------------------------------------
    def outbox_put(
        self,
        *,
        key: str,
        record_id: str,
        request_id: str,
        channel: str,
        state: str,
        not_before: dt.datetime | None,
        payload: dict[str, Any],
        now: dt.datetime,
    ) -> bool:
        cur = self._write(
            """INSERT OR IGNORE INTO outbox
                   (key, record_id, request_id, channel, state, not_before, created, updated, payload)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (key, record_id, request_id, channel, state, iso(not_before), iso(now), iso(now),
             json.dumps(payload)),
        )
        return cur.rowcount == 1

    def outbox_mark(
        self,
        key: str,
        *,
        state: str,
        now: dt.datetime,
        error: str | None = None,
        provider_id: str | None = None,
        count_attempt: bool = True,
    ) -> None:
        self._write(
            """UPDATE outbox SET state = ?, updated = ?, last_error = ?,
                   provider_id = COALESCE(?, provider_id), attempts = attempts + ?
               WHERE key = ?""",
            (state, iso(now), error, provider_id, 1 if count_attempt else 0, key),
        )

    def outbox_for_request(self, request_id: str) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT key, record_id, channel, state FROM outbox WHERE request_id = ? ORDER BY created, key",
            (request_id,),
        )
        return [dict(r) for r in rows]

    def outbox_counts(self) -> dict[str, int]:
        rows = self._read("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    # portal ------------------------------------------------------------------------------------
    def portal_put(
        self,
        *,
        id: str,
        record_id: str,
        patient: str,
        key_id: str,
        nonce: bytes,
        ciphertext: bytes,
        created: dt.datetime,
    ) -> None:
        self._write(
            """INSERT OR IGNORE INTO portal_messages (id, record_id, patient, key_id, nonce, ciphertext, created)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (id, record_id, patient, key_id, nonce, ciphertext, iso(created)),
        )

    def portal_get(self, id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM portal_messages WHERE id = ?", (id,))
        return dict(rows[0]) if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
