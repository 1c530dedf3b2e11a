"""Times in storage: UTC ISO 8601 text with microseconds, so that they sort and compare as text;
and the SQL that times leases (the outbox's, the FHIR API's notifications') by the right clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# PostgreSQL: the server's clock when the statement started, written as iso() writes times, so
# that it compares as text with any time stored. Leases run by it there: processes on machines
# whose clocks differ must still agree on when a lease runs out. SQLite (one machine) times them
# by the host's clock.
SERVER_NOW = """to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
SERVER_LEASE_UNTIL = ("""to_char((statement_timestamp() + make_interval(secs => ?)) AT TIME ZONE 'UTC', """
                      """'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')""")


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def parse_iso(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def lease_now(dialect: str, now: dt.datetime) -> tuple[str, tuple[Any, ...]]:
    """The SQL of the time a lease is compared with, and its parameters: the server's clock on
    PostgreSQL, ``now`` (the host's) on SQLite."""
    if dialect == "postgresql":
        return SERVER_NOW, ()
    return "?", (iso(now),)


def lease_until(dialect: str, now: dt.datetime, lease: dt.timedelta) -> tuple[str, tuple[Any, ...]]:
    """The SQL of a lease's end, and its parameters: the server's clock plus ``lease`` on
    PostgreSQL, ``now`` (the host's) plus ``lease`` on SQLite."""
    if dialect == "postgresql":
        return SERVER_LEASE_UNTIL, (lease.total_seconds(),)
    return "?", (iso(now + lease),)
