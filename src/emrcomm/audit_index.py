"""What ``emrcomm audit verify`` learns about each entry (its number, position, hash, link and
whether its signature held), kept in a private SQLite file on disk, not in memory: the order,
duplicate and vouching checks look entries up by number, and a log can hold tens of millions.

The file is SQLite's own temporary database (an empty name): deleted when it is closed, its
pages cached up to ``cache_size`` and the rest on disk (in ``SQLITE_TMPDIR``, else ``TMPDIR``,
else /var/tmp or /tmp). It works the same whatever the store is, and needs no write access to it:
verify opens the store read-only, where PostgreSQL refuses even a temporary table.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterable, Iterator
from types import TracebackType

from emrcomm.errors import EmrcommError

# What verify found about an entry with a number (an entry without one is reported and not kept).
UNSIGNED = 0  # no signature of its own: vouched for by the chain (or not: verify says which)
SIGNED = 1    # its signature, by a trusted key, matches
KEYLESS = 2   # signed with a key that is not trusted: reported, yet it vouches for the entry before it
FORGED = 3    # its signature does not match
INTACT = (UNSIGNED, SIGNED)

# Numbers this far from 0 cannot be an entry's (and seq ± 1 must stay a 64-bit integer).
SEQ_LIMIT = 2**62

_BATCH = 1000
_HEX = re.compile(r"[0-9a-f]{64}")

_SCHEMA = """
CREATE TABLE entry (pos INTEGER PRIMARY KEY, seq INTEGER NOT NULL, state INTEGER NOT NULL, prev BLOB,
                    hash BLOB NOT NULL);
CREATE TABLE named (id TEXT PRIMARY KEY) WITHOUT ROWID;
"""
# Per number: the first intact entry (the one the chain and the head are checked against), and
# the first signed with a key not given (it vouches in its place when there is no intact one).
_BY_SEQ = """
CREATE INDEX entry_seq ON entry (seq);
CREATE TABLE by_seq (seq INTEGER PRIMARY KEY, first INTEGER, keyless INTEGER);
INSERT INTO by_seq SELECT seq, MIN(CASE WHEN state IN (0, 1) THEN pos END), MIN(CASE WHEN state = 2 THEN pos END)
FROM entry WHERE state IN (0, 1, 2) GROUP BY seq;
"""


class IndexFailed(EmrcommError):
    """The index could not be kept (no room on disk, no temporary folder): verify did not run."""


@contextlib.contextmanager
def _on_disk() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise IndexFailed(f"audit verify could not keep its index of the entries in a temporary file ({exc}); "
                          "nothing was verified: point SQLITE_TMPDIR (or TMPDIR) at a folder with room") from exc


def link(prev: object) -> bytes | None:
    """An entry's ``prev`` as the bytes of the hash it names, or None when it names no hash (a
    hash is a SHA-256 hex digest, lowercase: anything else equals no entry's hash)."""
    return bytes.fromhex(prev) if isinstance(prev, str) and _HEX.fullmatch(prev) else None


class EntryIndex:
    """Filled in storage order by :meth:`add` and :meth:`name`, then read after :meth:`finish`."""

    def __init__(self) -> None:
        with _on_disk():
            self._db = sqlite3.connect("", isolation_level=None)
            self._db.execute("PRAGMA journal_mode = OFF")
            self._db.execute("PRAGMA synchronous = OFF")
            self._db.executescript(_SCHEMA)
            self._db.execute("BEGIN")
        self._entries: list[tuple[int, int, int, bytes | None, bytes]] = []
        self._named: list[tuple[str]] = []

    def __enter__(self) -> EntryIndex:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._db.close()

    def add(self, pos: int, seq: int, state: int, prev: bytes | None, digest: bytes) -> None:
        """The entry at ``pos``: its number (within ±:data:`SEQ_LIMIT`), what its signature said,
        the hash it links to (see :func:`link`) and its own."""
        self._entries.append((pos, seq, state, prev, digest))
        if len(self._entries) >= _BATCH:
            self._flush()

    def name(self, request: str) -> None:
        """A request id an entry names."""
        try:
            request.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no id the store holds is this one
            return
        self._named.append((request,))
        if len(self._named) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        with _on_disk():
            self._db.executemany("INSERT INTO entry (pos, seq, state, prev, hash) VALUES (?, ?, ?, ?, ?)",
                                 self._entries)
            self._db.executemany("INSERT OR IGNORE INTO named (id) VALUES (?)", self._named)
        self._entries, self._named = [], []

    def finish(self) -> None:
        """Index what was added by number; :meth:`add` and :meth:`name` are done."""
        self._flush()
        with _on_disk():
            self._db.execute("COMMIT")
            self._db.executescript(_BY_SEQ)

    def in_order(self) -> Iterator[tuple[int, int, int, bytes | None, int | None, bytes | None]]:
        """Every entry in storage order: position, number, state, link, the position of the
        first intact entry with its number, and the hash of the first intact entry with the
        number before (None when there is none)."""
        with _on_disk():
            yield from self._db.execute(
                "SELECT e.pos, e.seq, e.state, e.prev, f.first, w.hash FROM entry e LEFT JOIN by_seq f ON f.seq = e.seq "
                "LEFT JOIN by_seq b ON b.seq = e.seq - 1 LEFT JOIN entry w ON w.pos = b.first ORDER BY e.pos")

    def numbers(self, low: int, high: int) -> Iterator[int]:
        """The numbers in [low, high) some entry carries (intact or not), ascending."""
        with _on_disk():
            for (seq,) in self._db.execute("SELECT DISTINCT seq FROM entry WHERE seq >= ? AND seq < ? ORDER BY seq",
                                           (low, high)):
                yield seq

    def chain(self) -> Iterator[tuple[int, int, int, bytes | None, bytes]]:
        """Per number, highest first: the first intact entry, else the first signed with a key
        not given (number, position, state, link, hash)."""
        with _on_disk():
            yield from self._db.execute(
                "SELECT b.seq, e.pos, e.state, e.prev, e.hash FROM by_seq b "
                "JOIN entry e ON e.pos = COALESCE(b.first, b.keyless) ORDER BY b.seq DESC")

    def hash_of(self, seq: int) -> bytes | None:
        """The hash of the first intact entry numbered ``seq``."""
        if not -SEQ_LIMIT < seq < SEQ_LIMIT:
            return None
        with _on_disk():
            rows = self._db.execute("SELECT e.hash FROM by_seq b JOIN entry e ON e.pos = b.first WHERE b.seq = ?",
                                    (seq,)).fetchall()
        return rows[0][0] if rows else None

    def unnamed(self, ids: Iterable[str]) -> tuple[int, str | None]:
        """How many of ``ids`` no entry names, and the first of them."""
        count, first = 0, None
        chunk: list[str] = []
        for rid in _with_end(ids):
            if rid is not None:
                chunk.append(rid)
            if chunk and (rid is None or len(chunk) >= 500):
                with _on_disk():
                    found = {row[0] for row in self._db.execute(
                        f"SELECT id FROM named WHERE id IN ({', '.join('?' * len(chunk))})", chunk)}
                for each in chunk:
                    if each not in found:
                        count += 1
                        first = first if first is not None else each
                chunk = []
        return count, first


def _with_end(ids: Iterable[str]) -> Iterator[str | None]:
    yield from ids
    yield None
