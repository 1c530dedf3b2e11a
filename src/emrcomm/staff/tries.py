"""How many sign-ins each key may try: a bucket per key in the database (shared by every ``serve``
process, kept across restarts), timed by the host's clock, taken before a password is checked.

A bucket holds ``size`` tries and gets one back every ``EVERY`` seconds. It is one number, the
time at which it is full again (``due``, the generic cell rate algorithm): a try at ``now`` is
allowed when ``max(due, now) + EVERY - now <= size * EVERY``, and moves ``due`` on by ``EVERY``.
A row whose ``due`` has passed is a full bucket, and is deleted. Keys and names are kept as
their HMAC-SHA256 under a secret the database does not hold (derived from the audit signing
key): a name that is no account's may be a password typed in the wrong field, and a copy of the
database alone must not let anyone test guesses against it.
"""

from __future__ import annotations

import hashlib
import hmac
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


class _Refused(Exception):
    pass


class Tries:
    def __init__(self, db: Database, secret: bytes) -> None:
        self.db = db
        self._secret = secret
        self._greatest = "GREATEST" if db.dialect == "postgresql" else "MAX"

    def _digest(self, text: str) -> str:
        return hmac.new(self._secret, text.encode("utf-8", "replace"), hashlib.sha256).hexdigest()

    def _stored(self, key: Key) -> tuple[str, str | None]:
        return self._digest(key.key), self._digest(key.name) if key.name is not None else None

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
                    if not self.db.query(sql, (*self._stored(k), now + EVERY, now, EVERY, now, EVERY, now,
                                               k.size * EVERY)):
                        raise _Refused
        except _Refused:
            return max(self.wait(k, now) for k in keys)
        return 0.0

    def wait(self, key: Key, now: float) -> float:
        """The seconds until ``key``'s bucket has a try (0.0: it has one now)."""
        rows = self.db.query("SELECT due FROM staff_tries WHERE key = ?", (self._digest(key.key),))
        if not rows:
            return 0.0
        return max(0.0, max(float(rows[0]["due"]), now) + EVERY - key.size * EVERY - now)

    def give_back(self, keys: Sequence[Key]) -> None:
        """One try back to each of ``keys`` (a sign-in that was right costs nothing)."""
        with self.db.transaction():
            for k in keys:
                self.db.execute("UPDATE staff_tries SET due = due - ? WHERE key = ?", (EVERY, self._digest(k.key)))

    def reset(self, keys: Sequence[Key]) -> None:
        """Fill ``keys``' buckets again."""
        with self.db.transaction():
            for k in keys:
                self.db.execute("DELETE FROM staff_tries WHERE key = ?", (self._digest(k.key),))

    def forget(self, name: str) -> None:
        """Fill every bucket about account name ``name`` (a new password, an account enabled)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM staff_tries WHERE name = ?", (self._digest(name),))
