"""Token buckets in the database, shared by every process on it: a provider's limit per sender
holds for all workers together, and a client's limit for every ``serve`` process.

One row per bucket, changed by one atomic statement (refill by the time since its stamp, take a
token, stamp it), so two processes taking at once are served one after the other. The time is
the database server's on PostgreSQL (machines' clocks may differ by more than a token's
spacing), the system's on SQLite (one machine). Bucket writes skip the fsync
(``Database.relaxed``): a bucket lost in a crash only starts full again.
"""

from __future__ import annotations

import time
from typing import Protocol

from emrcomm.storage.database import Database


class Rates(Protocol):
    def take(self, scope: str, key: str, *, rate: float, burst: float, reserve: bool = False) -> float:
        """Take a token from bucket ``(scope, key)``: ``rate`` a second, at most ``burst`` saved.

        Without ``reserve``: 0.0 when a token was taken, else the seconds until one would be
        (nothing taken). With ``reserve`` the token is always taken, the bucket going below
        zero, and the result is the seconds the caller waits before using it: callers in every
        process are served in the order they asked, at the rate.
        """
        ...

    def pause(self, scope: str, key: str, *, rate: float, burst: float, seconds: float) -> None:
        """Hand out nothing for ``seconds`` (a provider's Retry-After), for every process."""
        ...


class SqlRates:
    def __init__(self, db: Database) -> None:
        self.db = db
        pg = db.dialect == "postgresql"
        self._now = "EXTRACT(EPOCH FROM clock_timestamp())::float8" if pg else "?"
        self._least, self._greatest = ("LEAST", "GREATEST") if pg else ("MIN", "MAX")

    def _time(self) -> tuple[float, ...]:
        return () if self.db.dialect == "postgresql" else (time.time(),)

    def take(self, scope: str, key: str, *, rate: float, burst: float, reserve: bool = False) -> float:
        now, least, greatest = self._now, self._least, self._greatest
        refill = f"{least}(?, rate_buckets.tokens + {greatest}(0.0, {now} - rate_buckets.stamp) * ?)"
        take = "1" if reserve else f"CASE WHEN {refill} >= 1 THEN 1 ELSE 0 END"
        sql = f"""INSERT INTO rate_buckets (scope, key, tokens, stamp, taken) VALUES (?, ?, ? - 1, {now}, 1)
                  ON CONFLICT (scope, key) DO UPDATE SET
                      tokens = {refill} - {take}, taken = {take}, stamp = {now}
                  RETURNING tokens, taken"""
        t = self._time()
        refill_params = (burst, *t, rate)
        again = () if reserve else refill_params  # the refill is written out again in `take`, twice
        params = (scope, key, burst, *t, *refill_params, *again, *again, *t)
        with self.db.relaxed():  # type: ignore[attr-defined]
            row = self.db.query(sql, params)[0]
        tokens, taken = float(row["tokens"]), bool(row["taken"])
        if reserve or taken:
            return max(0.0, -tokens / rate)
        return (1.0 - tokens) / rate

    def pause(self, scope: str, key: str, *, rate: float, burst: float, seconds: float) -> None:
        now, least, greatest = self._now, self._least, self._greatest
        floor = 1.0 - seconds * rate
        refill = f"{least}(?, rate_buckets.tokens + {greatest}(0.0, {now} - rate_buckets.stamp) * ?)"
        sql = f"""INSERT INTO rate_buckets (scope, key, tokens, stamp) VALUES (?, ?, ?, {now})
                  ON CONFLICT (scope, key) DO UPDATE SET tokens = {least}({refill}, ?), stamp = {now}"""
        t = self._time()
        with self.db.relaxed():  # type: ignore[attr-defined]
            self.db.execute(sql, (scope, key, min(burst, floor), *t, burst, *t, rate, floor, *t))
