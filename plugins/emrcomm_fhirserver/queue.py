"""The fhir-records plugin's queue: records waiting to be filed on the FHIR server, with the
server's id for each and the version last filed. Created by the plugin's migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from emrcomm.storage import Database, Migration, iso, statements

OWNER = "fhir-records"

_V1 = """
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
CREATE INDEX IF NOT EXISTS filing_queue_due ON filing_queue (target, state, queued)
"""

MIGRATIONS = (
    Migration(OWNER, 1, "the filing queue", statements={
        "sqlite": statements(_V1),
        # Text compares byte by byte on PostgreSQL too, as on SQLite (the queue's order).
        "postgresql": statements(_V1.replace("TEXT NOT NULL", 'TEXT COLLATE "C" NOT NULL'))}),
    # The record version each row waits to file: a row is done only once the server has it.
    Migration(OWNER, 2, "the version each record waits to file", statements={"*": [
        "ALTER TABLE filing_queue ADD COLUMN wanted_version INTEGER NOT NULL DEFAULT 0"]}),
    # The server's version id of what was filed last: an update is sent with If-Match on it, so a
    # process holding an older version of a record never overwrites a newer one another filed.
    Migration(OWNER, 3, "the server's version of what was filed last", statements={"*": [
        "ALTER TABLE filing_queue ADD COLUMN server_version TEXT"]}),
    # The Communication emrcomm last filed (JSON), kept only while the server's copy also holds
    # what someone else added (a note, an extension): later updates merge onto it, never replace it.
    Migration(OWNER, 4, "what emrcomm filed under others' additions", statements={"*": [
        "ALTER TABLE filing_queue ADD COLUMN filed_resource TEXT"]}),
)


class FilingQueue:
    """The queue of one database, shared by every fhir-records target (``target`` names one)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # filing queue ------------------------------------------------------------------------------
    def put(self, *, target: str, record_id: str, version: int, now: dt.datetime) -> None:
        """Queue version ``version`` of a record for ``target``; a record already waiting keeps
        its place in the queue."""
        self.db.execute(
            """INSERT INTO filing_queue (target, record_id, state, queued, updated, wanted_version)
               VALUES (?, ?, 'pending', ?, ?, ?)
               ON CONFLICT (target, record_id) DO UPDATE SET
                   queued = CASE WHEN filing_queue.state = 'pending' THEN filing_queue.queued
                                 ELSE excluded.queued END,
                   wanted_version = CASE WHEN excluded.wanted_version > filing_queue.wanted_version
                                         THEN excluded.wanted_version ELSE filing_queue.wanted_version END,
                   state = 'pending', updated = excluded.updated""",
            (target, record_id, iso(now), iso(now), version),
        )

    def backfill(self, *, target: str, now: dt.datetime) -> int:
        """Queue every record of the embedded chart ``target`` has never had queued (the records
        made before it was switched on), in one statement; returns how many."""
        return self.db.execute(
            """INSERT INTO filing_queue (target, record_id, state, queued, updated, wanted_version)
               SELECT ?, r.id, 'pending', ?, ?, r.version FROM records r
               WHERE NOT EXISTS (SELECT 1 FROM filing_queue q WHERE q.target = ? AND q.record_id = r.id)
               ON CONFLICT (target, record_id) DO NOTHING""",
            (target, iso(now), iso(now), target),
        )

    def due(self, *, target: str, limit: int) -> list[dict[str, Any]]:
        """The oldest waiting rows: record id, the server's id, the version last filed."""
        return [dict(r) for r in self.db.query(
            """SELECT record_id, server_id, server_version, pushed_version, attempts, filed_resource
               FROM filing_queue WHERE target = ? AND state = 'pending' ORDER BY queued, record_id LIMIT ?""",
            (target, limit))]

    def get(self, *, target: str, record_id: str) -> dict[str, Any] | None:
        """One row as :meth:`due` gives it, with its state, or None."""
        rows = self.db.query(
            """SELECT record_id, state, server_id, server_version, pushed_version, attempts, filed_resource
               FROM filing_queue WHERE target = ? AND record_id = ?""", (target, record_id))
        return dict(rows[0]) if rows else None

    def keep_filed(self, *, target: str, record_id: str, resource: str | None) -> None:
        """Keep (JSON) or drop (None) the Communication emrcomm filed under others' additions."""
        self.db.execute("UPDATE filing_queue SET filed_resource = ? WHERE target = ? AND record_id = ?",
                        (resource, target, record_id))

    def mark(
        self,
        *,
        target: str,
        record_id: str,
        state: str,
        now: dt.datetime,
        version: int | None = None,
        server_id: str | None = None,
        server_version: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Record a filing attempt. ``done`` only sticks when ``version`` is the latest version
        queued: a record changed while it was being filed stays pending and is filed again. A
        ``done`` for a version older than one already filed (another process filed a newer one
        first) changes nothing. ``done`` and ``pending`` set ``server_version``, the server's
        version of what it now holds (None: unknown)."""
        if state == "done":
            cur = self.db.execute(
                """UPDATE filing_queue SET
                       state = CASE WHEN wanted_version <= ? THEN 'done' ELSE 'pending' END,
                       pushed_version = ?, server_id = COALESCE(?, server_id), server_version = ?,
                       last_error = NULL, attempts = attempts + 1, updated = ?
                   WHERE target = ? AND record_id = ? AND state = 'pending'
                     AND (pushed_version IS NULL OR pushed_version <= ?)""",
                (version, version, server_id, server_version, iso(now), target, record_id, version),
            )
        elif state == "pending":
            cur = self.db.execute(
                """UPDATE filing_queue SET state = 'pending', server_id = COALESCE(?, server_id),
                       server_version = ?, last_error = COALESCE(?, last_error), attempts = attempts + 1,
                       updated = ?
                   WHERE target = ? AND record_id = ?""",
                (server_id, server_version, error, iso(now), target, record_id),
            )
        else:
            cur = self.db.execute(
                """UPDATE filing_queue SET state = ?, server_id = COALESCE(?, server_id),
                       last_error = COALESCE(?, last_error), attempts = attempts + 1, updated = ?
                   WHERE target = ? AND record_id = ?""",
                (state, server_id, error, iso(now), target, record_id),
            )
        return cur == 1

    def forget_server_id(self, *, target: str, record_id: str) -> None:
        """The server no longer has the resource it gave this id: file it again by identifier."""
        self.db.execute("UPDATE filing_queue SET server_id = NULL, server_version = NULL, filed_resource = NULL "
                        "WHERE target = ? AND record_id = ?",
                    (target, record_id))

    def counts(self, *, target: str) -> dict[str, int]:
        rows = self.db.query("SELECT state, COUNT(*) AS n FROM filing_queue WHERE target = ? GROUP BY state",
                          (target,))
        return {r["state"]: r["n"] for r in rows}

    def rejected(self, *, target: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            """SELECT record_id, attempts, last_error, updated FROM filing_queue
               WHERE target = ? AND state = 'rejected' ORDER BY updated, record_id""",
            (target,),
        )
        return [dict(r) for r in rows]

    def retry(self, *, target: str, now: dt.datetime, record_id: str | None = None) -> int:
        """Put every rejected record (or the one ``record_id``) back in the queue (after the cause
        was fixed)."""
        one = "" if record_id is None else " AND record_id = ?"
        cur = self.db.execute(
            "UPDATE filing_queue SET state = 'pending', queued = ?, updated = ? WHERE target = ? AND state = 'rejected'"
            + one, (iso(now), iso(now), target, *(() if record_id is None else (record_id,))),
        )
        return cur
