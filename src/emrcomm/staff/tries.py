"""How many sign-ins each key may try: a bucket per key in the database (shared by every ``serve``
process, kept across restarts), timed by the host's clock, taken before a password is checked.

A bucket holds ``size`` tries and gets one back every ``EVERY`` seconds. It is one number, the
time at which it is full again (``due``, the generic cell rate algorithm): a try at ``now`` is
allowed when ``max(due, now) + EVERY - now <= size * EVERY``, and moves ``due`` on by ``EVERY``.
A row whose ``due`` has passed is a full bucket, and is deleted. Keys and names are kept as
their SHA-256: a name that is no account's may be a password typed in the wrong field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from attrs import frozen

from emrcomm.storage import Database

EVERY = 180.0  # seconds for a bucket to get one try back: 20 an hour, the long-run rate before (5 per 15 minutes)


@frozen
class Key:
    """One bucket: ``key`` names it, ``name`` is the account name it is about (None: an address's),
    so that a new password or an enabled account starts its buckets again."""

    key: str
    name: str | None
    size: int

    @property
    def stored(self) -> tuple[str, str | None]:
        return _digest(self.key), _digest(self.name) if self.name is not None else None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


class _Refused(Exception):
    pass


class Tries:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._greatest = "GREATEST" if db.dialect == "postgresql" else "MAX"

    def take(self, keys: Sequence[Key], now: float) -> float:
        """Take one try from every bucket in ``keys``, all or none (one transaction, in the order
        given: callers give kinds in one order, so two transactions never wait on each other in a
        cycle). 0.0 when taken, else the seconds until every bucket has a try again."""
        greatest = self._greatest
        sql = f"""INSERT INTO staff_tries (key, name, due) VALUES (?, ?, ?)
                  ON CONFLICT (key) DO UPDATE SET due = {greatest}(staff_tries.due, ?) + ?
                  WHERE {greatest}(staff_tries.due, ?) + ? - ? <= ?
                  RETURNING due"""
        try:
            with self.db.transaction():  # RETURNING rows are read before the commit
                self.db.execute("DELETE FROM staff_tries WHERE due <= ?", (now,))
                for k in keys:
                    if not self.db.query(sql, (*k.stored, now + EVERY, now, EVERY, now, EVERY, now,
                                               k.size * EVERY)):
                        raise _Refused
        except _Refused:
            return max(self.wait(k, now) for k in keys)
        return 0.0

    def wait(self, key: Key, now: float) -> float:
        """The seconds until ``key``'s bucket has a try (0.0: it has one now)."""
        rows = self.db.query("SELECT due FROM staff_tries WHERE key = ?", (key.stored[0],))
        if not rows:
            return 0.0
        return max(0.0, max(float(rows[0]["due"]), now) + EVERY - key.size * EVERY - now)

    def give_back(self, keys: Sequence[Key]) -> None:
        """One try back to each of ``keys`` (a sign-in that was right costs nothing)."""
        with self.db.transaction():
            for k in keys:
                self.db.execute("UPDATE staff_tries SET due = due - ? WHERE key = ?", (EVERY, k.stored[0]))

    def reset(self, keys: Sequence[Key]) -> None:
        """Fill ``keys``' buckets again."""
        with self.db.transaction():
            for k in keys:
                self.db.execute("DELETE FROM staff_tries WHERE key = ?", (k.stored[0],))

    def forget(self, name: str) -> None:
        """Fill every bucket about account name ``name`` (a new password, an account enabled)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM staff_tries WHERE name = ?", (_digest(name),))
