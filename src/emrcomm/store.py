"""Records, outbox, portal and filing-queue tables over the embedded database, while they move
into repositories of their own (emrcomm.storage); consent, audit, inbox and meta are there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from emrcomm.storage import Migration, open_sqlite
from emrcomm.storage.database import Row
from emrcomm.storage.schema import OPEN_STATES as _OPEN
from emrcomm.storage.schema import TAKEN_OVER
from emrcomm.storage.times import iso

log = logging.getLogger("emrcomm.store")

__all__ = ["TAKEN_OVER", "SQLiteStore", "Store", "iso"]


def _json(value: Any) -> str:
    """JSON text for a stored document (orjson: UTF-8, compact; read back with json.loads).
    What orjson refuses (a lone surrogate from the Python API) is written by json instead."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value)


class SQLiteStore:
    """The embedded store. One connection guarded by a lock; WAL so readers never block the writer.

    Durability is deliberate: ``synchronous=FULL`` by default (every commit reaches the disk
    before it returns). ``synchronous="normal"`` (``[store] synchronous``) skips the fsync per
    commit: in WAL a commit then survives a crash of the process but not a power loss or an OS
    crash (docs/performance.md). Callers that write many rows group them in one
    ``transaction()`` so the fsync is shared.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "full", read_only: bool = False,
                 migrations: Sequence[Migration] = ()) -> None:
        self.storage = open_sqlite(path, synchronous=synchronous, read_only=read_only, migrations=migrations)
        self.db = self.storage.db
        self.path = Path(path)
        self.read_only = read_only
        self.consent = self.storage.consent
        self.audit = self.storage.audit
        self.inbox = self.storage.inbox
        self.meta = self.storage.meta

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self.db.transaction()

    def savepoint(self) -> contextlib.AbstractContextManager[None]:
        return self.db.savepoint()

    def group_commit(self) -> contextlib.AbstractContextManager[None]:
        return self.db.group_commit()

    def before_commit(self, callback: Callable[[], None]) -> None:
        self.db.before_commit(callback)

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        return self.db.execute(sql, params)

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        return self.db.query(sql, params)

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
        return cur == 1

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
            rows = self.db.query(
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
            )
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
        return cur == 1

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
        return cur == 1

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
        return cur == 1

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
        return self._write(sql, params)

    def close(self) -> None:
        self.storage.close()

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


Store = SQLiteStore  # what plugins are given, while the repositories take over
