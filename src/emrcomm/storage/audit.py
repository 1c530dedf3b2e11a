"""Where the signed audit log lives (emrcomm.audit signs and verifies it): its entries, in
storage order, packed (emrcomm.storage.packed), and the signed head (the last entry's number
and hash, signed apart)."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from emrcomm.storage.database import Database, Row
from emrcomm.storage.packed import AUDIT, pack, unpack


class AuditStore(Protocol):
    """Rows come back with the entry's canonical JSON as text (``entry``), its SHA-256 in hex
    (``hash``: computed, never stored: the next entry's ``prev`` holds it) and its Ed25519
    signature as bytes (``sig``; empty when the entry has none)."""

    def head(self) -> Row | None:
        """The signed head: ``seq``, ``hash`` (hex), ``sig`` (bytes); None before the first seal."""
        ...

    def last(self) -> Row | None:
        """The entry stored last: ``pos``, ``seq``, ``hash``, ``sig``."""
        ...

    def append(self, entries: list[tuple[int, bytes]], head: tuple[int, str, bytes] | None,
               *, last_sig: bytes = b"") -> None:
        """Append (seq, canonical JSON) rows, unsigned but for ``last_sig``, the last row's
        signature when its transaction is committing, and, when given, move the signed head
        (seq, hash, signature): one transaction."""
        ...

    def sign(self, pos: int, sig: bytes) -> None:
        """Set the signature of the entry stored at ``pos`` (the last of a transaction)."""
        ...

    def hash_of(self, seq: int) -> str | None: ...

    def witnessed(self) -> bool:
        """Whether the store holds requests: each one's decision is an entry of the log, so a log
        with no entries and no head beside them was removed, not never written."""
        ...

    def request_ids(self) -> Iterator[str]:
        """The id of every request the store holds (each one's decision names it in the log), in pages."""
        ...

    def entries(self) -> Iterator[Row]:
        """Every entry in storage order (``pos``, ``seq``, ``entry``, ``hash``, ``sig``), in pages."""
        ...

    # PostgreSQL: many writers, one chain (emrcomm.audit chains a transaction's entries as it commits)
    def stage(self, entries: list[tuple[str, str, str]]) -> None:
        """Keep (kind, fields as JSON, time) rows in the open transaction, to be chained at its commit."""
        ...

    def take_staged(self) -> list[tuple[str, str, str]]:
        """What the open transaction staged, in order, removed from the staging table."""
        ...

    def lock_and_end(self) -> tuple[Row | None, Row | None]:
        """Take the chain's lock until the open transaction ends (one appender at a time), then
        read :meth:`last` and :meth:`head` as the lock's last holder left them: one round trip."""
        ...


# pg_advisory_xact_lock's key for the audit chain: any fixed number no other lock uses.
AUDIT_LOCK = 0x656D72636F6D6D  # "emrcomm"
# MAX(pos) reads the key's last entry: a plan that is a search, never a scan.
LAST = "SELECT pos, entry, sig FROM audit_log WHERE pos = (SELECT MAX(pos) FROM audit_log)"
HEAD = "SELECT seq, hash, sig FROM audit_head WHERE id = 1"


def _read(packed: bytes) -> tuple[str, str, int | None]:
    """A stored entry's text, hash and number (None when the text says none)."""
    try:
        text = unpack(packed)
    except (zlib.error, ValueError):  # not packed by emrcomm: verify names it as an edited entry
        text = bytes(packed)
    try:
        seq = json.loads(text).get("seq")
    except (ValueError, AttributeError):
        seq = None
    return text.decode("utf-8", "replace"), hashlib.sha256(text).hexdigest(), seq if type(seq) is int else None


def _entry(row: Row, read: tuple[str, str, int | None]) -> dict[str, Any]:
    """A stored row as the log reads it: the text, its hash, its number (the position when the
    text has none), the signature as bytes."""
    text, digest, seq = read
    return {"pos": row["pos"], "seq": row["pos"] if seq is None else seq, "entry": text, "hash": digest,
            "sig": bytes(row["sig"] or b"")}


class SqlAuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Text and hash of the entries appended here lately, by their stored bytes: the log's end
        # is read at every append and every commit, and unpacking it each time would cost more than
        # the read. Keyed by the bytes themselves, so a row changed underneath is read afresh.
        self._recent: dict[bytes, tuple[str, str, int | None]] = {}

    def head(self) -> Row | None:
        return self._head(self.db.query(HEAD))

    def _head(self, rows: list[Row]) -> Row | None:
        if not rows:
            return None
        try:
            sig = base64.b64decode(rows[0]["sig"], validate=True)
        except ValueError:
            sig = b""  # not a signature: verify reports the head as edited
        return {"seq": rows[0]["seq"], "hash": rows[0]["hash"], "sig": sig}

    def last(self) -> Row | None:
        return self._last(self.db.query(LAST))

    def _last(self, rows: list[Row]) -> Row | None:
        if not rows:
            return None
        packed = bytes(rows[0]["entry"])
        known = self._recent.get(packed)
        return _entry(rows[0], known if known is not None else _read(packed))

    def append(self, entries: list[tuple[int, bytes]], head: tuple[int, str, bytes] | None,
               *, last_sig: bytes = b"") -> None:
        packed = [(seq, pack(text, AUDIT)) for seq, text in entries]
        if len(self._recent) > 64:
            self._recent.clear()
        for (seq, text), (_, stored) in zip(entries, packed):
            self._recent[stored] = (text.decode("utf-8"), hashlib.sha256(text).hexdigest(), seq)
        # An entry is stored at the position of its number (the key finds entry n), or after the
        # last row when that is further on (a log 0.2 wrote after an anomaly, or rows added
        # without the key: they are still found by verify, never overwritten).
        greatest = "GREATEST" if self.db.dialect == "postgresql" else "MAX"
        if self.db.dialect == "postgresql":
            # One round trip for all, the last row signed and the head upserted: the chain's
            # lock is held meanwhile, and every other writer waits (see lock_and_end).
            insert = (f"INSERT INTO audit_log (pos, entry, sig) VALUES ({greatest}(?, (SELECT COALESCE(MAX(pos), 0) "
                      "+ 1 FROM audit_log)), ?, ?)")
            statements: list[tuple[str, Sequence[Any]]] = [
                (insert, (seq, stored, last_sig if i == len(packed) - 1 and last_sig else None))
                for i, (seq, stored) in enumerate(packed)]
            if head is not None:
                seq, hash_hex, sig = head
                statements.append(("INSERT INTO audit_head (id, seq, hash, sig) VALUES (1, ?, ?, ?) ON CONFLICT (id) "
                                   "DO UPDATE SET seq = excluded.seq, hash = excluded.hash, sig = excluded.sig",
                                   (seq, hash_hex, base64.b64encode(sig).decode("ascii"))))
            self.db.query_each(statements)
            return
        with self.db.transaction():
            self.db.executemany(f"INSERT INTO audit_log (pos, entry) VALUES ({greatest}(?, (SELECT COALESCE(MAX(pos), 0) "
                                "+ 1 FROM audit_log)), ?)", packed)
            if head is not None:
                seq, hash_hex, sig = head
                self.db.execute("DELETE FROM audit_head WHERE id = 1")
                self.db.execute("INSERT INTO audit_head (id, seq, hash, sig) VALUES (1, ?, ?, ?)",
                                (seq, hash_hex, base64.b64encode(sig).decode("ascii")))

    def sign(self, pos: int, sig: bytes) -> None:
        self.db.execute("UPDATE audit_log SET sig = ? WHERE pos = ?", (sig, pos))

    def hash_of(self, seq: int) -> str | None:
        # Entry n is at position n, or before it in a log 0.2 wrote after an anomaly.
        for row in self.db.query("SELECT entry FROM audit_log WHERE pos <= ? ORDER BY pos DESC LIMIT 100", (seq,)):
            _, digest, found = _read(row["entry"])
            if found == seq:
                return digest
        return None

    def witnessed(self) -> bool:
        return bool(self.db.query("SELECT 1 AS one FROM requests LIMIT 1"))

    def request_ids(self) -> Iterator[str]:
        after = ""
        while rows := self.db.query("SELECT id FROM requests WHERE id > ? ORDER BY id LIMIT 1000", (after,)):
            yield from (row["id"] for row in rows)
            after = rows[-1]["id"]

    def entries(self) -> Iterator[Row]:
        after = -1
        while True:
            rows = self.db.query(
                "SELECT pos, entry, sig FROM audit_log WHERE pos > ? ORDER BY pos LIMIT 1000", (after,))
            if not rows:
                return
            yield from (_entry(row, _read(row["entry"])) for row in rows)
            after = rows[-1]["pos"]

    def stage(self, entries: list[tuple[str, str, str]]) -> None:
        self.db.executemany("INSERT INTO audit_staged (kind, fields, at) VALUES (?, ?, ?)", entries)

    def take_staged(self) -> list[tuple[str, str, str]]:
        # Rows of other transactions are never visible: they are removed before their commit.
        rows = self.db.query("DELETE FROM audit_staged RETURNING n, kind, fields, at")
        return [(r["kind"], r["fields"], r["at"]) for r in sorted(rows, key=lambda r: r["n"])]

    def lock_and_end(self) -> tuple[Row | None, Row | None]:
        if self.db.dialect != "postgresql":
            return self.last(), self.head()
        # Three statements, not one: a statement's snapshot is taken as it starts, so a read in
        # the lock's own statement could miss what the last holder committed while it waited.
        _, last, head = self.db.query_each([("SELECT pg_advisory_xact_lock(?)", (AUDIT_LOCK,)), (LAST, ()), (HEAD, ())])
        return self._last(last), self._head(head)
