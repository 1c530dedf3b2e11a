"""The outbox: the legs left to deliver, one row each (keyed by the record id), with when they
are due and who holds them. A row leaves the table when its leg is settled (sent, expired,
cancelled): what happened to it is in the record's events. Dead letters stay until requeued.

A row is leased to one deliverer at a time (a worker, or the process sending inline) until
``lease_until``; a row whose deliverer died is taken over when the lease runs out. A leg waits
while a leg before it of the same request is still in the table (a notice after its message).

Leases are timed by the database server's clock on PostgreSQL (workers on several machines
whose clocks differ must still agree on when a lease runs out), by the host's on SQLite (one
machine). Everything else (when a row is due, when it expires) is the host's time.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

from attrs import frozen

from emrcomm.outbox.payload import NEWER, Payload, Unreadable
from emrcomm.storage.database import Database, Row
from emrcomm.storage.times import iso, lease_now, lease_until, parse_iso

TAKEN_OVER = "taken over after an expired lease"  # the claim's mark on a row whose deliverer died
RELEASED = "released unsent by a busy or stopping worker"
OPEN = ("pending", "held", "retry", "sending")  # the states a claim looks at


@frozen
class Item:
    """One outbox row (a leg to deliver)."""

    key: str  # the record id
    request_id: str
    channel: str
    address: str | None
    leg: int  # its order in the request: 0 the message, 1 its notice
    state: str
    attempts: int
    payload: Payload
    not_before: dt.datetime | None = None
    expires: dt.datetime | None = None
    last_error: str | None = None
    lease_owner: str | None = None
    # As the store wrote it: on PostgreSQL the database server's clock, which no host's clock
    # may be compared with. A holder counts its lease by ``held_until``.
    lease_until: dt.datetime | None = None
    # The holder's own reckoning (time.monotonic()) of when its lease runs out, counted from
    # before the claim (or the inline sender's put): never later than the store's. None on a
    # row read, not claimed.
    held_until: float | None = None
    # When the send watch found its send hung (the host's clock), by the process making it.
    hung_at: dt.datetime | None = None

    @property
    def taken_over(self) -> bool:
        return self.last_error == TAKEN_OVER


class Outbox(Protocol):
    def put(self, item: Item, *, now: dt.datetime, lease: dt.timedelta | None = None) -> None:
        """Add a row (inside the transaction that files its record). With a lease (the inline
        sender holds it for ``lease``), the row counts an attempt, as a claim would."""
        ...

    def claim(self, *, owner: str, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Item]:
        """Lease up to ``limit`` rows due at ``now`` to ``owner`` for ``lease`` (safe between
        processes), with their ``held_until``; counts an attempt."""
        ...

    def finish(self, key: str, *, owner: str | None) -> bool:
        """Remove a settled row (sent, expired, cancelled); with ``owner``, only while it holds the
        lease. False when the row is gone or another holds it."""
        ...

    def retry(self, key: str, *, owner: str, now: dt.datetime, not_before: dt.datetime, error: str) -> bool: ...

    def hold(self, key: str, *, owner: str, now: dt.datetime, not_before: dt.datetime) -> bool:
        """Hold a leased row unsent until ``not_before`` (its sending window is closed): state
        'held', its attempt given back. False when the lease had passed to another."""
        ...

    def bury(self, key: str, *, owner: str | None, now: dt.datetime, error: str) -> bool:
        """Keep the row as a dead letter (refused for good, or attempts used up)."""
        ...

    def release(self, key: str, *, owner: str, now: dt.datetime, error: str,
                not_before: dt.datetime | None = None) -> bool:
        """Give back a leased row that was never tried: due again (from ``not_before`` when
        given), its attempt taken back."""
        ...

    def unlease(self, keys: Sequence[str], *, owner: str, now: dt.datetime) -> None:
        """Give back rows the inline sender leased but did not get to (the leg before failed)."""
        ...

    def later_legs(self, key: str) -> list[Item]:
        """The rows of the same request after this one."""
        ...

    def for_request(self, request_id: str) -> list[Item]: ...

    def get(self, key: str) -> Item | None: ...

    def counts(self) -> dict[str, int]: ...

    def dead(self, limit: int | None = 1000) -> list[Item]:
        """The dead letters, oldest first (``limit`` None: all of them)."""
        ...

    def found_hung(self, key: str, *, owner: str, now: dt.datetime) -> bool:
        """Mark the row whose send the watch found hung (emrcomm.pipeline.watch), while ``owner``
        still holds it. False when the row is settled or another holds it."""
        ...

    def overdue(self, now: dt.datetime, limit: int = 1000) -> list[Item]:
        """The rows ``sending`` whose send was found hung, or whose lease has run out (their
        deliverer died or hung): oldest first. A row claimed and not yet started is neither."""
        ...

    def newer(self, limit: int = 1000) -> list[Item]:
        """The rows written by a newer release that a worker of this one gave back unsent: they
        wait for a worker of that release (or their expiry). Oldest given back first. A row
        given back for its record (its payload reads) is listed too: whether its record still is
        a newer release's is for the records to say (``Records.facts`` raises RecordUnreadable)."""
        ...

    def requeue(self, *, now: dt.datetime, key: str | None = None) -> list[str]:
        """Put one dead letter (by key), or all, back in the queue; return their keys."""
        ...

    def due_count(self, now: dt.datetime) -> int: ...


class SqlOutbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _wake_workers(self) -> None:
        """PostgreSQL: an idle worker listening (LISTEN) is woken when this transaction commits."""
        if self.db.dialect == "postgresql":
            self.db.query("SELECT pg_notify('emrcomm_outbox', '')")

    @property
    def _server_clock(self) -> bool:
        return self.db.dialect == "postgresql"

    def put(self, item: Item, *, now: dt.datetime, lease: dt.timedelta | None = None) -> None:
        with self.db.transaction():
            if lease is None:  # a row the inline sender leases wakes nobody
                self._wake_workers()
            self._put(item, now=now, lease=lease)

    def _put(self, item: Item, *, now: dt.datetime, lease: dt.timedelta | None) -> None:
        until, until_params = lease_until(self.db.dialect, now, lease) if lease is not None else ("NULL", ())
        self.db.execute(
            f"""INSERT INTO outbox (key, request_id, channel, address, leg, state, not_before, expires, attempts,
                                    lease_owner, lease_until, created, updated, payload)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {until}, ?, ?, ?)""",
            (item.key, item.request_id, item.channel, item.address, item.leg, item.state, iso(item.not_before),
             iso(item.expires), 1 if item.lease_owner else 0, item.lease_owner, *until_params, iso(now), iso(now),
             json.dumps(item.payload.to_json())))

    def claim(self, *, owner: str, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Item]:
        # A row another holds is taken over when its lease has run out by the clock that timed
        # it: the server's on PostgreSQL, whatever the clock of the machine claiming.
        expired, expired_params = lease_now(self.db.dialect, now)
        due = f"""o.state IN ('pending', 'held', 'retry', 'sending')
                  AND ((o.state != 'sending' AND (o.not_before IS NULL OR o.not_before <= ?))
                       OR (o.state = 'sending' AND o.lease_until <= {expired}))
                  AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.request_id = o.request_id AND e.leg < o.leg)"""
        due_params = (iso(now), *expired_params)
        order = "ORDER BY COALESCE(o.not_before, o.created), o.key LIMIT ?"
        until, until_params = lease_until(self.db.dialect, now, lease)
        # hung_at: a send found hung was the last holder's; this one's has not started.
        take = f"""state = 'sending', lease_owner = ?, lease_until = {until}, updated = ?, attempts = attempts + 1,
                   hung_at = NULL, last_error = CASE WHEN state = 'sending' THEN '{TAKEN_OVER}' ELSE last_error END"""
        take_params = (owner, *until_params, iso(now))
        # Before the claim (waiting for the store's lock uses the lease too): the holder's own
        # count of its lease can then only end before the store's.
        held_until = time.monotonic() + lease.total_seconds()
        with self.db.transaction():
            if self._server_clock:
                # The rows are picked once, in a materialized CTE: PostgreSQL may run a LIMIT
                # subquery under `key IN (...)` more than once, each run skipping the rows the
                # last one locked, and so claim more than `limit` rows.
                rows = self.db.query(
                    f"""WITH picked AS MATERIALIZED (
                            SELECT o.key FROM outbox o WHERE {due} {order} FOR UPDATE SKIP LOCKED)
                        UPDATE outbox SET {take} FROM picked WHERE outbox.key = picked.key RETURNING outbox.*""",
                    (*due_params, limit, *take_params))
            else:
                pick = f"SELECT o.key FROM outbox o INDEXED BY outbox_claim_order WHERE {due} {order}"
                rows = self.db.query(f"UPDATE outbox SET {take} WHERE key IN ({pick}) RETURNING *",
                                     (*take_params, *due_params, limit))
        # Each row read on its own, after the commit: one this release cannot read is handed on as
        # such (its payload says so) and settled by the deliverer; the others go on.
        items = [_item(r, held_until=held_until) for r in rows]
        return sorted(items, key=lambda i: (i.not_before or dt.datetime.min.replace(tzinfo=dt.UTC), i.key))

    def finish(self, key: str, *, owner: str | None) -> bool:
        if owner is None:
            return self.db.execute("DELETE FROM outbox WHERE key = ?", (key,)) == 1
        return self.db.execute("DELETE FROM outbox WHERE key = ? AND lease_owner = ? AND state = 'sending'",
                               (key, owner)) == 1

    def retry(self, key: str, *, owner: str, now: dt.datetime, not_before: dt.datetime, error: str) -> bool:
        return self.db.execute(
            """UPDATE outbox SET state = 'retry', not_before = ?, last_error = ?, updated = ?,
                   lease_owner = NULL, lease_until = NULL
               WHERE key = ? AND lease_owner = ? AND state = 'sending'""",
            (iso(not_before), error[:300], iso(now), key, owner)) == 1

    def hold(self, key: str, *, owner: str, now: dt.datetime, not_before: dt.datetime) -> bool:
        # last_error stays: a row taken over keeps its mark, so its attempts still count (see claim).
        return self.db.execute(
            """UPDATE outbox SET state = 'held', not_before = ?, updated = ?,
                   attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                   lease_owner = NULL, lease_until = NULL
               WHERE key = ? AND lease_owner = ? AND state = 'sending'""",
            (iso(not_before), iso(now), key, owner)) == 1

    def bury(self, key: str, *, owner: str | None, now: dt.datetime, error: str) -> bool:
        guard, params = ("AND lease_owner = ? AND state = 'sending'", (owner,)) if owner else ("", ())
        return self.db.execute(
            f"""UPDATE outbox SET state = 'dead', last_error = ?, updated = ?, lease_owner = NULL, lease_until = NULL
                WHERE key = ? {guard}""", (error[:300], iso(now), key, *params)) == 1

    def release(self, key: str, *, owner: str, now: dt.datetime, error: str,
                not_before: dt.datetime | None = None) -> bool:
        with self.db.transaction():
            self._wake_workers()
            return self._release(key, owner=owner, now=now, error=error, not_before=not_before)

    def _release(self, key: str, *, owner: str, now: dt.datetime, error: str,
                 not_before: dt.datetime | None = None) -> bool:
        return self.db.execute(
            """UPDATE outbox SET state = 'retry', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                   updated = ?, last_error = CASE WHEN last_error = ? THEN last_error ELSE ? END,
                   not_before = COALESCE(?, not_before), lease_owner = NULL, lease_until = NULL
               WHERE key = ? AND lease_owner = ? AND state = 'sending'""",
            (iso(now), TAKEN_OVER, error, iso(not_before) if not_before is not None else None, key, owner)) == 1

    def unlease(self, keys: Sequence[str], *, owner: str, now: dt.datetime) -> None:
        for key in keys:
            self.db.execute(
                """UPDATE outbox SET state = 'pending', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                       updated = ?, lease_owner = NULL, lease_until = NULL
                   WHERE key = ? AND lease_owner = ? AND state = 'sending'""", (iso(now), key, owner))

    def later_legs(self, key: str) -> list[Item]:
        rows = self.db.query(
            """SELECT e.* FROM outbox o JOIN outbox e ON e.request_id = o.request_id AND e.leg > o.leg
               WHERE o.key = ? ORDER BY e.leg""", (key,))
        return [_item(r) for r in rows]

    def for_request(self, request_id: str) -> list[Item]:
        return [_item(r) for r in self.db.query("SELECT * FROM outbox WHERE request_id = ? ORDER BY leg",
                                                (request_id,))]

    def get(self, key: str) -> Item | None:
        rows = self.db.query("SELECT * FROM outbox WHERE key = ?", (key,))
        return _item(rows[0]) if rows else None

    def counts(self) -> dict[str, int]:
        return {r["state"]: int(r["n"]) for r in self.db.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")}

    def dead(self, limit: int | None = 1000) -> list[Item]:
        sql = "SELECT * FROM outbox WHERE state = 'dead' ORDER BY updated, key"
        rows = self.db.query(sql, ()) if limit is None else self.db.query(sql + " LIMIT ?", (limit,))
        return [_item(r) for r in rows]

    def found_hung(self, key: str, *, owner: str, now: dt.datetime) -> bool:
        return self.db.execute("UPDATE outbox SET hung_at = ? WHERE key = ? AND lease_owner = ? AND state = 'sending'",
                               (iso(now), key, owner)) == 1

    def overdue(self, now: dt.datetime, limit: int = 1000) -> list[Item]:
        # Not the claim's time: a worker holds the rows of its claim unstarted (behind a rate
        # limit, the rows ahead) for up to an eighth of the lease, a started send runs up to
        # send_timeout after that, and neither is late. Only the process making a send knows when
        # it started; it writes down only the sends its watch finds hung (no write per send).
        expired, expired_params = lease_now(self.db.dialect, now)
        rows = self.db.query(f"""SELECT * FROM outbox WHERE state = 'sending'
                                 AND (hung_at IS NOT NULL OR lease_until <= {expired})
                                 ORDER BY updated, key LIMIT ?""", (*expired_params, limit))
        return [_item(r) for r in rows]

    def newer(self, limit: int = 1000) -> list[Item]:
        # Found by what the worker that gave them back wrote (no payload read for the rows that
        # do not say so), and kept when their payload still is a newer release's, or reads.
        rows = self.db.query("""SELECT * FROM outbox WHERE state = 'retry' AND last_error LIKE ?
                                ORDER BY updated, key LIMIT ?""", (NEWER + " (%", limit))
        items = [_item(r) for r in rows]
        return [i for i in items if i.payload.unreadable is None or i.payload.unreadable.newer]

    def requeue(self, *, now: dt.datetime, key: str | None = None) -> list[str]:
        sql = """UPDATE outbox SET state = 'pending', attempts = 0, not_before = NULL, updated = ?
                 WHERE state = 'dead'"""
        params: tuple[Any, ...] = (iso(now),)
        if key is not None:
            sql += " AND key = ?"
            params += (key,)
        with self.db.transaction():
            self._wake_workers()
            return [r["key"] for r in self.db.query(sql + " RETURNING key", params)]

    def due_count(self, now: dt.datetime) -> int:
        rows = self.db.query("""SELECT COUNT(*) AS n FROM outbox WHERE state IN ('pending', 'held', 'retry')
                                AND (not_before IS NULL OR not_before <= ?)""", (iso(now),))
        return int(rows[0]["n"])


def _item(row: Row, *, held_until: float | None = None) -> Item:
    """A row as stored. One whose columns this release cannot read (a payload corrupted or of a
    version it does not know, a time that does not parse) is read all the same, its payload
    saying so: it is listed, and its deliverer keeps it as a dead letter (or gives it back, for a
    newer release) instead of one row stopping a whole claim or listing."""
    try:
        return _read(row, held_until=held_until)
    except (ValueError, TypeError, KeyError) as exc:
        said = f"its outbox row cannot be read by this release ({type(exc).__name__})"
        return Item(key=row["key"], request_id=row["request_id"], channel=row["channel"], address=row["address"],
                    leg=int(row["leg"]), state=row["state"], attempts=int(row["attempts"]),
                    payload=Payload(unreadable=Unreadable(said)), last_error=row["last_error"],
                    lease_owner=row["lease_owner"], held_until=held_until)


def _read(row: Row, *, held_until: float | None) -> Item:
    return Item(
        key=row["key"], request_id=row["request_id"], channel=row["channel"], address=row["address"],
        leg=int(row["leg"]), state=row["state"], attempts=int(row["attempts"]),
        payload=Payload.read(row["payload"]),
        not_before=parse_iso(row["not_before"]) if row["not_before"] else None,
        expires=parse_iso(row["expires"]) if row["expires"] else None,
        last_error=row["last_error"], lease_owner=row["lease_owner"],
        lease_until=parse_iso(row["lease_until"]) if row["lease_until"] else None, held_until=held_until,
        hung_at=parse_iso(row["hung_at"]) if row["hung_at"] else None,
    )
