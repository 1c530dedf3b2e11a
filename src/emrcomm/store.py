"""The embedded store: one SQLite database (WAL) holding filed records, the consent ledger,
the outbox and portal messages, behind the small ``Store`` interface other back ends implement.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson

log = logging.getLogger("emrcomm.store")

SCHEMA_VERSION = 1
# [store] synchronous -> the SQLite pragma (https://sqlite.org/pragma.html#pragma_synchronous).
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}

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
CREATE TABLE IF NOT EXISTS filing_queue (
    target TEXT NOT NULL,
    record_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'rejected')),
    queued TEXT NOT NULL,
    updated TEXT NOT NULL,
    server_id TEXT,
    pushed_version INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (target, record_id)
);
CREATE INDEX IF NOT EXISTS filing_queue_due ON filing_queue (target, state, queued);
CREATE TABLE IF NOT EXISTS audit_log (
    pos INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    entry TEXT NOT NULL,
    hash TEXT NOT NULL,
    sig TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_seq ON audit_log (seq);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    sig TEXT NOT NULL
);
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
CREATE TABLE IF NOT EXISTS portal_sessions (
    digest TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    expires TEXT NOT NULL,
    replied INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS inbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    patient TEXT NOT NULL,
    request_id TEXT,
    record_id TEXT,
    message_id TEXT,
    created TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    priority TEXT NOT NULL DEFAULT 'routine',
    keywords TEXT NOT NULL DEFAULT '[]',
    reason TEXT NOT NULL DEFAULT '',
    task TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_open ON inbox (state, created);
"""

# Columns added to tables that older databases already have (name, declaration).
_ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "outbox": (
        ("lease_owner", "TEXT"),  # the worker delivering the row (state 'sending') ...
        ("lease_until", "TEXT"),  # ... until this time; after it another worker may take it over
    ),
    "portal_messages": (
        ("kind", "TEXT NOT NULL DEFAULT 'message'"),  # message (to the patient) or reply (from them)
        ("in_response_to", "TEXT"),
        ("language", "TEXT NOT NULL DEFAULT 'en'"),
        ("link_digest", "TEXT"),  # SHA-256 of the magic link's token; the token itself is never stored
        ("link_key_id", "TEXT"),
        ("expires", "TEXT"),
        ("attempts", "INTEGER NOT NULL DEFAULT 0"),
        ("locked", "TEXT"),
        ("read_at", "TEXT"),
        ("recalled_at", "TEXT"),
    ),
}
TAKEN_OVER = "taken over after an expired lease"  # outbox_claim's mark (emrcomm.worker reads it)
_OPEN = "('pending', 'retry', 'held', 'waiting', 'sending')"  # the states a claim looks at
_ADDED_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS portal_link ON portal_messages (link_digest)",
    "CREATE INDEX IF NOT EXISTS portal_record ON portal_messages (record_id)",
    # The claim's order, over open rows only: a claim reads the first due rows in order and
    # stops, instead of sorting every due row (160 ms a claim with 100k rows queued). An
    # index ends with the rowid, the order's tie-break.
    f"CREATE INDEX IF NOT EXISTS outbox_claim_order ON outbox (COALESCE(not_before, created)) "
    f"WHERE state IN {_OPEN}",
)


CHECKPOINT_SECONDS = 0.25  # how often the checkpointer copies the WAL into the database
AUTOCHECKPOINT_PAGES = 10_000  # a writer checkpoints itself only past this (the default is 1,000)
BUSY_TIMEOUT = 30.0  # seconds a write waits for another connection's write lock before it fails


class _Checkpointer:
    """A daemon thread with its own connection running ``PRAGMA wal_checkpoint(PASSIVE)`` every
    CHECKPOINT_SECONDS: it never waits for a writer or a reader, and SQLite lets the writers go
    on meanwhile (the GIL is released while it runs). Stopped by ``SQLiteStore.close``."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path, self._synchronous = path, synchronous
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emrcomm-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=5)
        except sqlite3.Error:
            return  # the writers' own checkpoints still run
        try:
            while not self._stop.wait(CHECKPOINT_SECONDS):
                try:
                    db.execute(f"PRAGMA synchronous={self._synchronous}")  # once it is set, this is free
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # never waits for a lock
                except sqlite3.Error as exc:  # busy, or the file went away: try again later
                    log.debug("checkpoint of %s skipped: %s", self._path.name, exc)
        finally:
            db.close()

    def stop(self, *, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread is not threading.current_thread():
            self._thread.join(5)


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (0600, like the keys): chart notes
    hold phone numbers and addresses. SQLite gives its -wal and -shm files the same mode.
    An existing file keeps the mode it has."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _json(value: Any) -> str:
    """JSON text for a stored document (orjson: UTF-8, compact; read back with json.loads).
    What orjson refuses (a lone surrogate from the Python API) is written by json instead."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value)


def iso(value: dt.datetime | None) -> str | None:
    """Store times as UTC ISO strings so they sort and compare as text."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


class Store(Protocol):
    """What plugins and the host may ask of storage. The SQLite store is the reference."""

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def savepoint(self) -> contextlib.AbstractContextManager[None]: ...

    def group_commit(self) -> contextlib.AbstractContextManager[None]: ...

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

    def records_for_request(self, request_id: str) -> list[dict[str, Any]]: ...

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
        lease_owner: str | None = None,
        lease_until: dt.datetime | None = None,
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

    # The filing queue: records waiting to be filed in an external chart (a FHIR server).
    def filing_queue_put(self, *, target: str, record_id: str, now: dt.datetime) -> None: ...

    def filing_queue_due(self, *, target: str, limit: int) -> list[dict[str, Any]]: ...

    def filing_queue_mark(
        self,
        *,
        target: str,
        record_id: str,
        state: str,
        now: dt.datetime,
        version: int | None = None,
        server_id: str | None = None,
        error: str | None = None,
    ) -> bool: ...

    def filing_queue_forget_server_id(self, *, target: str, record_id: str) -> None: ...

    def filing_queue_counts(self, *, target: str) -> dict[str, int]: ...

    def filing_queue_rejected(self, *, target: str) -> list[dict[str, Any]]: ...

    def filing_queue_retry(self, *, target: str, now: dt.datetime) -> int: ...

    # The audit log (emrcomm.audit): signed entries and the signed head.
    def audit_head(self) -> dict[str, Any] | None: ...

    def audit_last(self) -> dict[str, Any] | None: ...

    def audit_append(self, entries: list[tuple[int, str, str, str]], head: tuple[int, str, str] | None) -> None: ...

    def audit_sign(self, pos: int, sig: str) -> None: ...

    def before_commit(self, callback: Callable[[], None]) -> None: ...

    def audit_hash(self, seq: int) -> str | None: ...

    def audit_entries(self) -> Iterator[dict[str, Any]]: ...

    def meta_get(self, key: str) -> str | None: ...

    def meta_put(self, key: str, value: str) -> None: ...

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

    # The portal's links, states, reading sessions and re-encryption (emrcomm_portal).
    def portal_set_link(self, id: str, *, digest: str, key_id: str, expires: dt.datetime, language: str) -> None: ...

    def portal_by_link(self, digest: str) -> dict[str, Any] | None: ...

    def portal_by_record(self, record_id: str) -> dict[str, Any] | None: ...

    def portal_put_reply(
        self,
        *,
        id: str,
        record_id: str,
        patient: str,
        in_response_to: str,
        language: str,
        key_id: str,
        nonce: bytes,
        ciphertext: bytes,
        created: dt.datetime,
    ) -> None: ...

    def portal_count_attempt(self, id: str, *, limit: int, now: dt.datetime) -> int: ...

    def portal_transition(self, id: str, *, from_states: tuple[str, ...], to: str, now: dt.datetime) -> bool: ...

    def portal_due_to_expire(self, now: dt.datetime) -> list[str]: ...

    def portal_sealed(self, *, not_key: str | None = None) -> list[dict[str, Any]]: ...

    def portal_reseal(self, id: str, *, key_id: str, nonce: bytes, ciphertext: bytes, old_key_id: str) -> bool: ...

    def portal_key_use(self) -> dict[str, int]: ...

    def portal_session_put(self, digest: str, *, message_id: str, expires: dt.datetime) -> None: ...

    def portal_session_get(self, digest: str, now: dt.datetime) -> dict[str, Any] | None: ...

    def portal_session_use(self, digest: str) -> bool: ...

    def portal_sessions_purge(self, now: dt.datetime) -> int: ...

    # The practice inbox: patients' replies and staff follow-ups.
    def inbox_add(
        self,
        *,
        id: str,
        kind: str,
        patient: str,
        created: dt.datetime,
        task: dict[str, Any],
        request_id: str | None = None,
        record_id: str | None = None,
        message_id: str | None = None,
        priority: str = "routine",
        keywords: tuple[str, ...] = (),
        reason: str = "",
    ) -> bool: ...

    def inbox_items(self, *, state: str | None = "open", patient: str | None = None) -> list[dict[str, Any]]: ...

    def inbox_close(self, id: str, *, task: dict[str, Any]) -> bool: ...

    def close(self) -> None: ...

    def portal_reserve_attempt(self, id: str, *, limit: int) -> int | None: ...

    def portal_open(self, id: str, *, now: dt.datetime) -> bool: ...

    def outbox_queued_since(self, channel: str, address: str, since: str, *, template: str | None = None) -> int: ...


class SQLiteStore:
    """The embedded store. One connection guarded by a lock; WAL so readers never block the writer.

    Durability is deliberate: ``synchronous=FULL`` by default (every commit reaches the disk
    before it returns). ``synchronous="normal"`` (``[store] synchronous``) skips the fsync per
    commit: in WAL a commit then survives a crash of the process but not a power loss or an OS
    crash (docs/performance.md). Callers that write many rows group them in one
    ``transaction()`` so the fsync is shared.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "full") -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(self.path)
        self._lock = threading.RLock()
        self._depth = 0
        self._grouped = False  # inside group_commit(): transactions are savepoints
        self._before_commit: list[Callable[[], None]] = []
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={SYNCHRONOUS[synchronous]}")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._add_columns()
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        # The WAL is copied back into the database by a thread of its own, so that no send pays
        # for a checkpoint (they were B1's p99: ~2.3 ms with them, ~1.4 ms without). The
        # writers' own checkpoint stays as a safety net, at a WAL ten times the usual size.
        self._db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        self._checkpointer = _Checkpointer(self.path, SYNCHRONOUS[synchronous])
        # A store dropped without close() (a plugin author's test, say) stops its thread too.
        weakref.finalize(self, self._checkpointer.stop, wait=False)

    def _add_columns(self) -> None:
        for table, columns in _ADDED_COLUMNS.items():
            have = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns:
                if name not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
        for statement in _ADDED_INDEXES:
            self._db.execute(statement)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; nested calls join the outer transaction (one commit, one fsync).

        Inside :meth:`group_commit` an outermost transaction is a savepoint instead: just as
        atomic (undone whole when it raises), but durable only when the group commits.
        """
        with self._lock:
            outer = self._depth == 0
            begin, commit, rollback = (
                ("SAVEPOINT grp", "RELEASE grp", "ROLLBACK TO grp; RELEASE grp") if self._grouped
                else ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
            )
            if outer:
                if self._grouped:
                    self._still_open()  # else a savepoint begun now would commit on its own
                    self._db.execute(begin)
                else:
                    self._begin()
            self._depth += 1
            try:
                yield
                if outer and not self._grouped:
                    self._still_open()
                    self._finish()
            except BaseException:
                self._depth -= 1
                if outer and self._db.in_transaction:  # (not if SQLite has rolled back already)
                    for statement in rollback.split("; "):
                        self._db.execute(statement)
                raise
            else:
                self._depth -= 1
                if outer:
                    self._db.execute(commit)

    @contextlib.contextmanager
    def group_commit(self) -> Iterator[None]:
        """Many transactions, one commit (one fsync): each ``transaction()`` inside stays atomic,
        and all become durable together when the block ends, or none when it raises.

        The caller must report nothing done before the block has ended. The store's lock is
        held throughout, so keep groups short (a few hundred sends).
        """
        with self._lock:
            if self._depth or self._grouped:
                raise RuntimeError("group_commit() cannot run inside a transaction or another group")
            self._begin()
            self._grouped = True
            try:
                yield
                self._still_open()
                self._finish()
            except BaseException:
                self._grouped = False
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            else:
                self._grouped = False
                self._db.execute("COMMIT")

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting for another process's write lock in steps of a fraction of a
        millisecond, for up to BUSY_TIMEOUT. (SQLite's own wait sleeps 1, 2, 5, 10, 15, 20, 25 ms
        in turn: a lock held 25 ms by a group commit in another process cost ~33 ms.)"""
        self._db.execute("PRAGMA busy_timeout = 0")
        try:
            delay, deadline = 0.0001, time.monotonic() + BUSY_TIMEOUT
            while True:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; else the message
                    busy = code & 0xFF == sqlite3.SQLITE_BUSY if code is not None else "locked" in str(exc)
                    if not busy or time.monotonic() > deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 0.001)
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")

    def _still_open(self) -> None:
        """Raise if SQLite has rolled the open transaction back by itself (it does on some
        errors: disk full, I/O): what follows would run outside any transaction."""
        if not self._db.in_transaction:
            raise sqlite3.OperationalError("the transaction was rolled back by SQLite (disk full or I/O "
                                           "error): nothing of it was written")

    def before_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` inside every transaction just before it commits (once per group
        commit); if it raises, the transaction rolls back instead (the audit log signs its tail)."""
        self._before_commit.append(callback)

    def _finish(self) -> None:
        for callback in self._before_commit:
            callback()

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the current transaction that can fail alone: its writes are undone, the
        rest of the transaction stands (e.g. "marked sent" survives a filer that fails)."""
        with self.transaction():
            name = f"sp{self._depth}"
            self._db.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute(f"ROLLBACK TO {name}")
                    self._db.execute(f"RELEASE {name}")
                raise
            else:
                self._db.execute(f"RELEASE {name}")

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
            (id, request_id, patient, status, channel, category, iso(recorded), _json(resource)),
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

    def records_for_request(self, request_id: str) -> list[dict[str, Any]]:
        """The records filed for one request: id, channel, status (no resource)."""
        rows = self._read("SELECT id, channel, status FROM records WHERE request_id = ? ORDER BY recorded, id",
                          (request_id,))
        return [dict(r) for r in rows]

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
        lease_owner: str | None = None,
        lease_until: dt.datetime | None = None,
    ) -> bool:
        """Insert a row; False when the key exists already (the same request, seen before).

        A row written with a lease (state ``sending``) belongs to its owner — the inline sender —
        until the lease runs out; a worker takes it over only then. Like a claim, it counts an
        attempt."""
        cur = self._write(
            """INSERT OR IGNORE INTO outbox
                   (key, record_id, request_id, channel, state, not_before, created, updated, payload,
                    lease_owner, lease_until, attempts)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (key, record_id, request_id, channel, state, iso(not_before), iso(now), iso(now),
             _json(payload), lease_owner, iso(lease_until), 1 if lease_owner else 0),
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

    # outbox worker (emrcomm.worker) -----------------------------------------------------------
    def outbox_claim(self, *, owner: str, now: dt.datetime, lease_until: dt.datetime, limit: int) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due rows to ``owner`` in one statement (safe between workers).

        Due: pending, retry, held or waiting rows whose ``not_before`` has passed, and rows
        still 'sending' under an expired lease (their worker died). A leg waits until every
        earlier leg of its request (in insertion order) is sent. Claiming counts an attempt.
        """
        with self.transaction():  # RETURNING rows are read before the commit
            rows = self._db.execute(
            f"""UPDATE outbox SET state = 'sending', lease_owner = ?, lease_until = ?, updated = ?,
                   attempts = attempts + 1,
                   last_error = CASE WHEN state = 'sending' THEN '{TAKEN_OVER}'
                                     ELSE last_error END
               WHERE key IN (
                   SELECT o.key FROM outbox o INDEXED BY outbox_claim_order
                   WHERE o.state IN {_OPEN} AND ((o.state IN ('pending', 'retry', 'held', 'waiting')
                           AND (o.not_before IS NULL OR o.not_before <= ?))
                          OR (o.state = 'sending' AND o.lease_until <= ?))
                     AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.request_id = o.request_id
                                     AND e.rowid < o.rowid AND e.state != 'sent')
                   ORDER BY COALESCE(o.not_before, o.created), o.rowid LIMIT ?)
               RETURNING key, record_id, request_id, channel, attempts, not_before, last_error, payload""",
            (owner, iso(lease_until), iso(now), iso(now), iso(now), limit),
            ).fetchall()
        return [dict(r) for r in rows]

    def outbox_settle(
        self,
        key: str,
        *,
        owner: str,
        state: str,
        now: dt.datetime,
        not_before: dt.datetime | None = None,
        error: str | None = None,
        provider_id: str | None = None,
    ) -> bool:
        """Move a leased row to ``state`` and release the lease; False when ``owner`` no longer
        holds it (the lease ran out and another worker took the row)."""
        cur = self._write(
            """UPDATE outbox SET state = ?, not_before = ?, last_error = ?, updated = ?,
                   provider_id = COALESCE(?, provider_id), lease_owner = NULL, lease_until = NULL
               WHERE key = ? AND lease_owner = ? AND state = 'sending'""",
            (state, iso(not_before), error, iso(now), provider_id, key, owner),
        )
        return cur.rowcount == 1

    def outbox_release(self, key: str, *, owner: str, now: dt.datetime, error: str) -> bool:
        """Give back a leased row that was never sent: due again at once, and the attempt its
        claim counted is taken back (a worker that stops often must not use up attempts). A row
        taken over from a dead worker keeps that mark: it may have been sent before."""
        cur = self._write(
            """UPDATE outbox SET state = 'retry', attempts = MAX(attempts - 1, 0), updated = ?,
                   last_error = CASE WHEN last_error = ? THEN last_error ELSE ? END,
                   lease_owner = NULL, lease_until = NULL
               WHERE key = ? AND lease_owner = ? AND state = 'sending'""",
            (iso(now), TAKEN_OVER, error, key, owner),
        )
        return cur.rowcount == 1

    def outbox_later_legs(self, key: str) -> list[dict[str, Any]]:
        """The legs of the same request after ``key`` that are not sent yet."""
        rows = self._read(
            """SELECT e.key, e.record_id, e.channel, e.state, e.payload FROM outbox o JOIN outbox e
                   ON e.request_id = o.request_id AND e.rowid > o.rowid
               WHERE o.key = ? AND e.state NOT IN ('sent', 'dead', 'expired') ORDER BY e.rowid""",
            (key,),
        )
        return [dict(r) for r in rows]

    def outbox_set_state(self, key: str, *, state: str, now: dt.datetime, error: str | None = None) -> bool:
        """Set an unleased row's state (a later leg waiting for, or failing with, an earlier one)."""
        cur = self._write(
            """UPDATE outbox SET state = ?, last_error = COALESCE(?, last_error), updated = ?
               WHERE key = ? AND state != 'sending'""",
            (state, error, iso(now), key),
        )
        return cur.rowcount == 1

    def outbox_get(self, key: str) -> dict[str, Any] | None:
        """One outbox row with its payload decoded."""
        rows = self._read("SELECT * FROM outbox WHERE key = ?", (key,))
        if not rows:
            return None
        row = dict(rows[0])
        row["payload"] = json.loads(row["payload"])
        return row

    def outbox_last_to(self, channel: str, address: str) -> dict[str, Any] | None:
        """The last message sent to ``address`` on ``channel`` (record_id, request_id, patient,
        category): what an inbound reply from that address answers."""
        rows = self._read(
            """SELECT o.record_id, o.request_id, r.patient, r.category FROM outbox o
               JOIN records r ON r.id = o.record_id
               WHERE o.channel = ? AND o.state = 'sent' AND json_extract(o.payload, '$.address') = ?
               ORDER BY o.updated DESC, o.rowid DESC LIMIT 1""",
            (channel, address),
        )
        return dict(rows[0]) if rows else None

    def outbox_dead(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Dead letters (and expired rows): what ``emrcomm outbox`` lists, without payloads."""
        rows = self._read(
            """SELECT key, record_id, request_id, channel, state, attempts, last_error, updated FROM outbox
               WHERE state IN ('dead', 'expired') ORDER BY updated, key LIMIT ?""",
            (limit,),
        )
        return [dict(r) for r in rows]

    def outbox_requeue(self, *, now: dt.datetime, key: str | None = None) -> int:
        """Put one dead row (by key or record id), or every dead row, back to pending with its
        attempts reset; expired rows stay expired."""
        sql = """UPDATE outbox SET state = 'pending', attempts = 0, not_before = NULL, updated = ?
                 WHERE state = 'dead'"""
        params: tuple[Any, ...] = (iso(now),)
        if key is not None:
            sql += " AND (key = ? OR record_id = ?)"
            params += (key, key)
        return self._write(sql, params).rowcount

    # filing queue ------------------------------------------------------------------------------
    def filing_queue_put(self, *, target: str, record_id: str, now: dt.datetime) -> None:
        """Queue a record for ``target``; a record already waiting keeps its place in the queue."""
        self._write(
            """INSERT INTO filing_queue (target, record_id, state, queued, updated)
               VALUES (?, ?, 'pending', ?, ?)
               ON CONFLICT (target, record_id) DO UPDATE SET
                   queued = CASE WHEN filing_queue.state = 'pending' THEN filing_queue.queued
                                 ELSE excluded.queued END,
                   state = 'pending', updated = excluded.updated""",
            (target, record_id, iso(now), iso(now)),
        )

    def filing_queue_due(self, *, target: str, limit: int) -> list[dict[str, Any]]:
        """The oldest waiting records, each with its current Communication and version."""
        rows = self._read(
            """SELECT q.record_id, q.server_id, q.pushed_version, q.attempts, r.version, r.resource
               FROM filing_queue q LEFT JOIN records r ON r.id = q.record_id
               WHERE q.target = ? AND q.state = 'pending' ORDER BY q.queued, q.record_id LIMIT ?""",
            (target, limit),
        )
        return [
            {**dict(r), "resource": json.loads(r["resource"]) if r["resource"] is not None else None}
            for r in rows
        ]

    def filing_queue_mark(
        self,
        *,
        target: str,
        record_id: str,
        state: str,
        now: dt.datetime,
        version: int | None = None,
        server_id: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Record a filing attempt. ``done`` only sticks when ``version`` is still the record's
        version: a record changed while it was being filed stays pending and is filed again."""
        if state == "done":
            cur = self._write(
                """UPDATE filing_queue SET
                       state = CASE WHEN (SELECT version FROM records WHERE id = ?) = ? THEN 'done'
                                    ELSE 'pending' END,
                       pushed_version = ?, server_id = COALESCE(?, server_id), last_error = NULL,
                       attempts = attempts + 1, updated = ?
                   WHERE target = ? AND record_id = ? AND state = 'pending'""",
                (record_id, version, version, server_id, iso(now), target, record_id),
            )
        else:
            cur = self._write(
                """UPDATE filing_queue SET state = ?, server_id = COALESCE(?, server_id),
                       last_error = COALESCE(?, last_error), attempts = attempts + 1, updated = ?
                   WHERE target = ? AND record_id = ?""",
                (state, server_id, error, iso(now), target, record_id),
            )
        return cur.rowcount == 1

    def filing_queue_forget_server_id(self, *, target: str, record_id: str) -> None:
        """The server no longer has the resource it gave this id: file it again by identifier."""
        self._write("UPDATE filing_queue SET server_id = NULL WHERE target = ? AND record_id = ?",
                    (target, record_id))

    def filing_queue_counts(self, *, target: str) -> dict[str, int]:
        rows = self._read("SELECT state, COUNT(*) AS n FROM filing_queue WHERE target = ? GROUP BY state",
                          (target,))
        return {r["state"]: r["n"] for r in rows}

    def filing_queue_rejected(self, *, target: str) -> list[dict[str, Any]]:
        rows = self._read(
            """SELECT record_id, attempts, last_error, updated FROM filing_queue
               WHERE target = ? AND state = 'rejected' ORDER BY updated, record_id""",
            (target,),
        )
        return [dict(r) for r in rows]

    def filing_queue_retry(self, *, target: str, now: dt.datetime) -> int:
        """Put every rejected record back in the queue (after the cause was fixed)."""
        cur = self._write(
            "UPDATE filing_queue SET state = 'pending', queued = ?, updated = ? WHERE target = ? AND state = 'rejected'",
            (iso(now), iso(now), target),
        )
        return cur.rowcount

    # audit log ---------------------------------------------------------------------------------
    def audit_head(self) -> dict[str, Any] | None:
        rows = self._read("SELECT seq, hash, sig FROM audit_head WHERE id = 1")
        return dict(rows[0]) if rows else None

    def audit_last(self) -> dict[str, Any] | None:
        rows = self._read("SELECT pos, seq, hash, sig FROM audit_log ORDER BY pos DESC LIMIT 1")
        return dict(rows[0]) if rows else None

    def audit_append(self, entries: list[tuple[int, str, str, str]], head: tuple[int, str, str] | None) -> None:
        """Append (seq, entry, hash, sig) rows and, when given, move the signed head: one transaction."""
        with self.transaction():
            self._db.executemany("INSERT INTO audit_log (seq, entry, hash, sig) VALUES (?, ?, ?, ?)", entries)
            if head is not None:
                self._db.execute("INSERT OR REPLACE INTO audit_head (id, seq, hash, sig) VALUES (1, ?, ?, ?)", head)

    def audit_sign(self, pos: int, sig: str) -> None:
        """Set the signature of the entry stored at ``pos`` (the last of a transaction)."""
        self._write("UPDATE audit_log SET sig = ? WHERE pos = ?", (sig, pos))

    def audit_hash(self, seq: int) -> str | None:
        rows = self._read("SELECT hash FROM audit_log WHERE seq = ? ORDER BY pos LIMIT 1", (seq,))
        return str(rows[0]["hash"]) if rows else None

    def audit_entries(self) -> Iterator[dict[str, Any]]:
        """Every entry in storage order, read in pages so a long log never sits in memory."""
        after = -1
        while True:
            rows = self._read(
                "SELECT pos, seq, entry, hash, sig FROM audit_log WHERE pos > ? ORDER BY pos LIMIT 1000", (after,)
            )
            if not rows:
                return
            for row in rows:
                yield dict(row)
            after = rows[-1]["pos"]

    def meta_get(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def meta_put(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

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

    def portal_set_link(self, id: str, *, digest: str, key_id: str, expires: dt.datetime, language: str) -> None:
        """Attach the magic link (its digest, never the token) and its expiry to a stored message."""
        self._write(
            "UPDATE portal_messages SET link_digest = ?, link_key_id = ?, expires = ?, language = ? WHERE id = ?",
            (digest, key_id, iso(expires), language, id),
        )

    def portal_by_link(self, digest: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM portal_messages WHERE link_digest = ?", (digest,))
        return dict(rows[0]) if rows else None

    def portal_by_record(self, record_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM portal_messages WHERE record_id = ? AND kind = 'message'", (record_id,))
        return dict(rows[0]) if rows else None

    def portal_put_reply(
        self,
        *,
        id: str,
        record_id: str,
        patient: str,
        in_response_to: str,
        language: str,
        key_id: str,
        nonce: bytes,
        ciphertext: bytes,
        created: dt.datetime,
    ) -> None:
        self._write(
            """INSERT INTO portal_messages (id, record_id, patient, key_id, nonce, ciphertext, created, state,
                                            kind, in_response_to, language)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'received', 'reply', ?, ?)""",
            (id, record_id, patient, key_id, nonce, ciphertext, iso(created), in_response_to, language),
        )

    def portal_count_attempt(self, id: str, *, limit: int, now: dt.datetime) -> int:
        """Count one wrong identity answer; lock the link when it reaches ``limit``. Returns the count."""
        with self.transaction():
            self._db.execute(
                "UPDATE portal_messages SET attempts = attempts + 1 WHERE id = ? AND attempts < ?", (id, limit)
            )
            self._db.execute(
                "UPDATE portal_messages SET locked = ? WHERE id = ? AND attempts >= ? AND locked IS NULL",
                (iso(now), id, limit),
            )
            rows = self._db.execute("SELECT attempts FROM portal_messages WHERE id = ?", (id,)).fetchall()
        return int(rows[0]["attempts"]) if rows else limit

    def portal_transition(self, id: str, *, from_states: tuple[str, ...], to: str, now: dt.datetime) -> bool:
        """Move a message from one of ``from_states`` to ``to`` (read, recalled, expired).

        Atomic: of two concurrent readers of one link, exactly one gets True.
        """
        column = {"read": "read_at", "recalled": "recalled_at"}.get(to)
        marks = ", ".join("?" for _ in from_states)
        stamp = f", {column} = ?" if column else ""
        params: tuple[Any, ...] = (to, *((iso(now),) if column else ()), id, *from_states)
        cur = self._write(f"UPDATE portal_messages SET state = ?{stamp} WHERE id = ? AND state IN ({marks})", params)
        return cur.rowcount == 1

    def portal_due_to_expire(self, now: dt.datetime) -> list[str]:
        rows = self._read(
            "SELECT id FROM portal_messages WHERE kind = 'message' AND state = 'unread' AND expires IS NOT NULL"
            " AND expires <= ? ORDER BY expires",
            (iso(now),),
        )
        return [r["id"] for r in rows]

    def portal_sealed(self, *, not_key: str | None = None) -> list[dict[str, Any]]:
        """Every stored message and reply (id, key_id, nonce, ciphertext), optionally only those not
        under ``not_key``: what a key rotation re-encrypts."""
        sql = "SELECT id, key_id, nonce, ciphertext FROM portal_messages"
        params: tuple[Any, ...] = ()
        if not_key is not None:
            sql += " WHERE key_id != ?"
            params = (not_key,)
        return [dict(r) for r in self._read(sql + " ORDER BY created, id", params)]

    def portal_reseal(self, id: str, *, key_id: str, nonce: bytes, ciphertext: bytes, old_key_id: str) -> bool:
        cur = self._write(
            "UPDATE portal_messages SET key_id = ?, nonce = ?, ciphertext = ? WHERE id = ? AND key_id = ?",
            (key_id, nonce, ciphertext, id, old_key_id),
        )
        return cur.rowcount == 1

    def portal_key_use(self) -> dict[str, int]:
        """How many stored messages each key id encrypts or each link key id signs."""
        rows = self._read(
            "SELECT key_id AS k, COUNT(*) AS n FROM portal_messages GROUP BY key_id"
            " UNION ALL SELECT link_key_id AS k, COUNT(*) AS n FROM portal_messages"
            " WHERE link_key_id IS NOT NULL GROUP BY link_key_id"
        )
        out: dict[str, int] = {}
        for r in rows:
            out[r["k"]] = out.get(r["k"], 0) + int(r["n"])
        return out

    def portal_session_put(self, digest: str, *, message_id: str, expires: dt.datetime) -> None:
        self._write("INSERT INTO portal_sessions (digest, message_id, expires) VALUES (?, ?, ?)",
                    (digest, message_id, iso(expires)))

    def portal_session_get(self, digest: str, now: dt.datetime) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM portal_sessions WHERE digest = ? AND expires > ?", (digest, iso(now)))
        return dict(rows[0]) if rows else None

    def portal_session_use(self, digest: str) -> bool:
        """Mark a reading session as having replied; False when it already had."""
        cur = self._write("UPDATE portal_sessions SET replied = 1 WHERE digest = ? AND replied = 0", (digest,))
        return cur.rowcount == 1

    def portal_sessions_purge(self, now: dt.datetime) -> int:
        return self._write("DELETE FROM portal_sessions WHERE expires <= ?", (iso(now),)).rowcount

    # practice inbox ----------------------------------------------------------------------------
    def inbox_add(
        self,
        *,
        id: str,
        kind: str,
        patient: str,
        created: dt.datetime,
        task: dict[str, Any],
        request_id: str | None = None,
        record_id: str | None = None,
        message_id: str | None = None,
        priority: str = "routine",
        keywords: tuple[str, ...] = (),
        reason: str = "",
    ) -> bool:
        """Add an item for staff (a reply, a follow-up); the same id twice is one item."""
        cur = self._write(
            """INSERT OR IGNORE INTO inbox (id, kind, patient, request_id, record_id, message_id, created,
                                            priority, keywords, reason, task)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (id, kind, patient, request_id, record_id, message_id, iso(created), priority,
             json.dumps(list(keywords)), reason, json.dumps(task)),
        )
        return cur.rowcount == 1

    def inbox_items(self, *, state: str | None = "open", patient: str | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if patient is not None:
            where.append("patient = ?")
            params.append(patient)
        sql = "SELECT * FROM inbox" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY CASE priority WHEN 'urgent' THEN 0 ELSE 1 END, created, id"
        out = []
        for row in self._read(sql, tuple(params)):
            item = dict(row)
            item["keywords"] = json.loads(item["keywords"])
            item["task"] = json.loads(item["task"])
            out.append(item)
        return out

    def inbox_close(self, id: str, *, task: dict[str, Any]) -> bool:
        cur = self._write("UPDATE inbox SET state = 'done', task = ? WHERE id = ? AND state = 'open'",
                          (json.dumps(task), id))
        return cur.rowcount == 1

    def close(self) -> None:
        self._checkpointer.stop()
        with self._lock:
            self._db.close()

    def portal_reserve_attempt(self, id: str, *, limit: int) -> int | None:
        """Take one of a link's ``limit`` identity tries *before* the answer is compared, so
        concurrent answers cannot all slip under the limit. Returns the tries taken so far
        (this one included), or None when none is left or the link is locked."""
        with self.transaction():  # RETURNING rows are read before the commit
            rows = self._db.execute(
                """UPDATE portal_messages SET attempts = attempts + 1
                   WHERE id = ? AND attempts < ? AND locked IS NULL RETURNING attempts""",
                (id, limit),
            ).fetchall()
        return int(rows[0]["attempts"]) if rows else None

    def portal_open(self, id: str, *, now: dt.datetime) -> bool:
        """unread -> read, only while the link is not locked (atomic, like ``portal_transition``)."""
        cur = self._write(
            "UPDATE portal_messages SET state = 'read', read_at = ? WHERE id = ? AND state = 'unread' AND locked IS NULL",
            (iso(now), id),
        )
        return cur.rowcount == 1

    def outbox_queued_since(self, channel: str, address: str, since: str, *, template: str | None = None) -> int:
        """How many messages (of ``template``, if given) to ``address`` on ``channel`` were queued
        at or after ``since`` (an ISO time as stored) and are sent or still on their way (not
        cancelled, dead or expired)."""
        rows = self._read(
            """SELECT COUNT(*) AS n FROM outbox
               WHERE channel = ? AND json_extract(payload, '$.address') = ? AND created >= ?
                 AND (? IS NULL OR json_extract(payload, '$.template') = ?)
                 AND state NOT IN ('cancelled', 'dead', 'expired')""",
            (channel, address, since, template, template),
        )
        return int(rows[0]["n"])
