"""The consent ledger: every grant and revocation of a channel and address, in order. The last
word for an address decides (a STOP reply, a START, a front-desk note, an unsubscribe click)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from attrs import frozen

from emrcomm.storage.database import Database, Row
from emrcomm.storage.times import iso, parse_iso


@frozen
class ConsentEvent:
    """One entry: ``action`` is ``grant`` or ``revoke``; ``seq`` orders the ledger."""

    seq: int
    patient: str
    channel: str
    address: str | None
    purpose: str | None
    action: str
    at: dt.datetime
    source: str

    @property
    def revokes(self) -> bool:
        return self.action == "revoke"


@frozen
class ConsentKey:
    """A front-desk Consent's identifier as the ledger keeps it (``identifier``: the key
    emrcomm.storage.records.identifier_key makes of system and value), with what the Consent
    said (``digest``: emrcomm.api.consent.content_digest), when it was recorded, its id
    (``consent``: the ledger number of its first entry) and the Consent as recorded
    (``resource``: its JSON without id and meta; None for one recorded at schema 10)."""

    identifier: str
    consent: int | None
    digest: bytes
    recorded: dt.datetime
    resource: str | None = None


class ConsentLedger(Protocol):
    def add(self, *, patient: str, channel: str, address: str | None, purpose: str | None, action: str,
            at: dt.datetime, source: str) -> int:
        """Append an entry; returns its ``seq``. Takes the address's :meth:`lock` first."""
        ...

    def lock(self, *, channel: str, address: str) -> None:
        """Hold the ledger of one address on one channel until the open transaction ends (commit
        or rollback): another transaction writing for it waits. A transaction that writes what
        it decided from the ledger (a START lifting only what keywords did) takes it before it
        reads, so that no other entry for the address lands between its read and its write.
        Inside a transaction only; taking it again in one is a no-op. A transaction that writes
        for several addresses takes them all first, with :meth:`lock_all`."""
        ...

    def lock_all(self, addresses: Iterable[tuple[str, str]]) -> None:
        """:meth:`lock` each of ``addresses`` ((channel, address) pairs), in one order whatever
        the order given (their keys'), before the transaction writes for any of them: two
        transactions taking the same two addresses in opposite orders would each hold one and
        wait for the other, and PostgreSQL would abort one (DeadlockDetected). A front-desk
        Consent naming several addresses takes them so."""
        ...

    def identified(self, identifiers: Sequence[str]) -> list[ConsentKey]:
        """The keys of ``identifiers`` a Consent was recorded under (none: no Consent has them)."""
        ...

    def claim(self, identifiers: Sequence[str], *, digest: bytes, at: dt.datetime) -> bool:
        """Take ``identifiers`` (identifier keys) for the Consent the open transaction records,
        before it writes an entry; False when another Consent has one (then roll back, and read
        it with :meth:`identified`). Each identifier decides one Consent: one that another
        transaction is recording meanwhile is waited for (PostgreSQL; on SQLite the transaction
        holds the write lock), and is taken when that one rolls back. In key order, so two
        Consents claiming the same two identifiers cannot each hold one."""
        ...

    def settle(self, identifiers: Sequence[str], *, consent: int, resource: str | None = None) -> None:
        """Name ``consent`` (its first entry's number) as the Consent ``identifiers`` were
        claimed for, in the claiming transaction, with the Consent as recorded (``resource``,
        JSON) that answers its retries."""
        ...

    def events(self, *, channel: str, address: str) -> list[ConsentEvent]:
        """Every entry for one address on one channel, in ledger order."""
        ...

    def last(self, *, channel: str, address: str, purpose: str | None = None) -> ConsentEvent | None:
        """The ledger's last word for one address on one channel; with ``purpose``, the last
        entry that covers it (one for that purpose, or for every purpose: ``purpose`` None)."""
        ...

    def history(self, *, patient: str | None = None, addresses: Sequence[tuple[str, str]] = (),
                since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[ConsentEvent]:
        """What the ledger says about a patient, in ledger order: their entries, and the entries
        for any of ``addresses`` ((channel, address) pairs: a STOP from their number that came
        before the host knew whose it was). Every entry when ``patient`` is None. ``since`` and
        ``until`` bound ``at`` (``until`` excluded)."""
        ...


class SqlConsentLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, *, patient: str, channel: str, address: str | None, purpose: str | None, action: str,
            at: dt.datetime, source: str) -> int:
        if action not in ("grant", "revoke"):
            raise ValueError(f"action must be 'grant' or 'revoke', not {action!r}")
        insert = ("""INSERT INTO consent_events (patient, channel, address, purpose, action, at, source)
                     VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq""",
                  (patient, channel, address if address is None else mailbox(channel, address), purpose, action,
                   iso(at), source))
        with self.db.transaction():
            if address is not None and self.db.dialect == "postgresql":
                # The lock and the entry in one round trip: an entry written while a START
                # holds the address (between its read and its write) would be lifted by it.
                _, rows = self.db.query_each([(LOCK, (lock_key(channel, address),)), insert])
            else:
                rows = self.db.query(*insert)
        return int(rows[0]["seq"])

    def lock(self, *, channel: str, address: str) -> None:
        # SQLite: a transaction holds the database's write lock from its BEGIN IMMEDIATE, which
        # serialises every writer already.
        if self.db.dialect == "postgresql":
            self.db.query(LOCK, (lock_key(channel, address),))

    def lock_all(self, addresses: Iterable[tuple[str, str]]) -> None:
        keys = sorted({lock_key(channel, address) for channel, address in addresses})
        if keys and self.db.dialect == "postgresql":
            self.db.query_each([(LOCK, (key,)) for key in keys])  # in order, in one round trip

    def identified(self, identifiers: Sequence[str]) -> list[ConsentKey]:
        if not identifiers:
            return []
        rows = self.db.query(f"SELECT * FROM consent_identifiers WHERE identifier IN "
                             f"({', '.join('?' for _ in identifiers)}) ORDER BY identifier", tuple(identifiers))
        return [ConsentKey(identifier=r["identifier"], consent=None if r["consent"] is None else int(r["consent"]),
                           digest=bytes(r["digest"]), recorded=parse_iso(r["recorded"]), resource=r["resource"])
                for r in rows]

    def claim(self, identifiers: Sequence[str], *, digest: bytes, at: dt.datetime) -> bool:
        for key in sorted(set(identifiers)):
            # The primary key arbitrates, as the request ledger's does (SqlRecords.enter_request):
            # of two transactions inserting one key, the second waits for the first and, once it
            # has committed, inserts nothing.
            taken = self.db.query("INSERT INTO consent_identifiers (identifier, digest, recorded) VALUES (?, ?, ?) "
                                  "ON CONFLICT (identifier) DO NOTHING RETURNING identifier", (key, digest, iso(at)))
            if not taken:
                return False
        return True

    def settle(self, identifiers: Sequence[str], *, consent: int, resource: str | None = None) -> None:
        if identifiers:
            self.db.execute(f"UPDATE consent_identifiers SET consent = ?, resource = ? WHERE identifier IN "
                            f"({', '.join('?' for _ in identifiers)})", (consent, resource, *identifiers))

    def events(self, *, channel: str, address: str) -> list[ConsentEvent]:
        rows = self.db.query("SELECT * FROM consent_events WHERE channel = ? AND address = ? ORDER BY seq",
                             (channel, mailbox(channel, address)))
        return [_event(r) for r in rows]

    def last(self, *, channel: str, address: str, purpose: str | None = None) -> ConsentEvent | None:
        address = mailbox(channel, address)
        if purpose is None:
            rows = self.db.query("SELECT * FROM consent_events WHERE channel = ? AND address = ? "
                                 "ORDER BY seq DESC LIMIT 1", (channel, address))
        else:
            rows = self.db.query("SELECT * FROM consent_events WHERE channel = ? AND address = ? "
                                 "AND (purpose IS NULL OR purpose = ?) ORDER BY seq DESC LIMIT 1",
                                 (channel, address, purpose))
        return _event(rows[0]) if rows else None


    def history(self, *, patient: str | None = None, addresses: Sequence[tuple[str, str]] = (),
                since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[ConsentEvent]:
        where: list[str] = []
        params: list[Any] = []
        if patient is not None:
            whose = ["patient = ?", *("(channel = ? AND address = ?)" for _ in addresses)]
            where.append("(" + " OR ".join(whose) + ")")
            params += [patient, *(part for ch, address in addresses for part in (ch, mailbox(ch, address)))]
        if since is not None:
            where.append("at >= ?")
            params.append(iso(since))
        if until is not None:
            where.append("at < ?")
            params.append(iso(until))
        sql = "SELECT * FROM consent_events" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
        return [_event(r) for r in self.db.query(sql, tuple(params))]


# A transaction-scoped advisory lock, released by its commit or rollback (never held past it by
# a connection given back to the pool).
LOCK = "SELECT pg_advisory_xact_lock(?)"


def lock_key(channel: str, address: str) -> int:
    """The advisory lock's key for one address on one channel: the first 8 bytes of a SHA-256 of
    both, as a signed 64-bit number (the same in every process, unlike Python's ``hash()``;
    two addresses sharing a key only wait for each other). The address as the ledger writes it
    (:func:`mailbox`): one mailbox, one lock."""
    digest = hashlib.sha256(f"emrcomm consent\x1f{channel}\x1f{mailbox(channel, address)}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def mailbox(channel: str, address: str) -> str:
    """How the ledger writes ``address``: an email address in lower case (one mailbox whatever
    the capitals it was typed with, as every provider reads it), anything else as it is."""
    return address.lower() if channel == "email" else address


def _event(row: Row) -> ConsentEvent:
    return ConsentEvent(seq=int(row["seq"]), patient=row["patient"], channel=row["channel"], address=row["address"],
                        purpose=row["purpose"], action=row["action"], at=parse_iso(row["at"]), source=row["source"])
