"""Where the signed audit log lives (emrcomm.audit signs and verifies it): its entries, in
storage order, and the signed head (the last entry's number and hash, signed apart)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from emrcomm.storage.database import Database, Row


class AuditStore(Protocol):
    def head(self) -> Row | None:
        """The signed head: ``seq``, ``hash``, ``sig``; None before the first seal."""
        ...

    def last(self) -> Row | None:
        """The entry stored last: ``pos``, ``seq``, ``hash``, ``sig``."""
        ...

    def append(self, entries: list[tuple[int, str, str, str]], head: tuple[int, str, str] | None) -> None:
        """Append (seq, entry, hash, sig) rows and, when given, move the signed head: one transaction."""
        ...

    def sign(self, pos: int, sig: str) -> None:
        """Set the signature of the entry stored at ``pos`` (the last of a transaction)."""
        ...

    def hash_of(self, seq: int) -> str | None: ...

    def entries(self) -> Iterator[Row]:
        """Every entry in storage order (``pos``, ``seq``, ``entry``, ``hash``, ``sig``), in pages."""
        ...


class SqlAuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def head(self) -> Row | None:
        rows = self.db.query("SELECT seq, hash, sig FROM audit_head WHERE id = 1")
        return rows[0] if rows else None

    def last(self) -> Row | None:
        # MAX(pos) reads the key's last entry: a plan that is a search, never a scan.
        rows = self.db.query("SELECT pos, seq, hash, sig FROM audit_log WHERE pos = (SELECT MAX(pos) FROM audit_log)")
        return rows[0] if rows else None

    def append(self, entries: list[tuple[int, str, str, str]], head: tuple[int, str, str] | None) -> None:
        with self.db.transaction():
            self.db.executemany("INSERT INTO audit_log (seq, entry, hash, sig) VALUES (?, ?, ?, ?)", entries)
            if head is not None:
                self.db.execute("DELETE FROM audit_head WHERE id = 1")
                self.db.execute("INSERT INTO audit_head (id, seq, hash, sig) VALUES (1, ?, ?, ?)", head)

    def sign(self, pos: int, sig: str) -> None:
        self.db.execute("UPDATE audit_log SET sig = ? WHERE pos = ?", (sig, pos))

    def hash_of(self, seq: int) -> str | None:
        rows = self.db.query("SELECT hash FROM audit_log WHERE seq = ? ORDER BY pos LIMIT 1", (seq,))
        return str(rows[0]["hash"]) if rows else None

    def entries(self) -> Iterator[Row]:
        after = -1
        while True:
            rows = self.db.query(
                "SELECT pos, seq, entry, hash, sig FROM audit_log WHERE pos > ? ORDER BY pos LIMIT 1000", (after,))
            if not rows:
                return
            yield from rows
            after = rows[-1]["pos"]
