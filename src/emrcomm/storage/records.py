"""The chart: one row of fixed facts per record, the events appended to it, and the request
ledger that says which request ids were handled. The row also keeps the projection's state and
FHIR status, so that searches and counts use an index; only the owner of a change writes it,
in the transaction that appends the event (docs/architecture.md, "one message lifecycle").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import orjson
from attrs import frozen

from emrcomm.lifecycle.events import Event, Source, kind_of
from emrcomm.lifecycle.projection import RecordFacts, UnknownValue, project
from emrcomm.model import Identifier, Record
from emrcomm.outbox.payload import NEWER
from emrcomm.storage.database import Database, Row
from emrcomm.storage.packed import DICTIONARIES, FACTS, NewerPacking, pack, unpack
from emrcomm.storage.times import iso, parse_iso

log = logging.getLogger("emrcomm.storage")

# The version of the facts this release writes (slim_facts); one above it is a newer release's.
FACTS_VERSION = 2
# A request whose earlier decision was one of these may be decided again under the same id.
RETRYABLE = frozenset({"blocked", "failed"})


@frozen
class RequestRow:
    """A request id the host has decided: its patient, how it ended first, its records."""

    id: str
    patient: str
    category: str
    created: dt.datetime
    status: str
    attempts: int
    record_ids: tuple[str, ...]
    identifiers: tuple[Identifier, ...] = ()
    # What it asked for (emrcomm.pipeline.digest), to tell a retry from an id used again for
    # another message; None for a request entered before schema 8.
    digest: bytes | None = None

    @property
    def identifier(self) -> Identifier | None:
        """The request's first identifier (None: it has none)."""
        return self.identifiers[0] if self.identifiers else None


class Records(Protocol):
    def enter_request(self, *, id: str, patient: str, category: str, now: dt.datetime, status: str,
                      record_ids: Sequence[str], identifiers: Sequence[Identifier] = (),
                      digest: bytes | None = None) -> int | None:
        """Enter a decided request in the ledger and return its attempt number (1, or more when an
        earlier decision was blocked or failed); None when the id was handled before: a repeat.
        Two processes deciding one id at once: one gets a number, the other None. ``identifiers``
        are the EMR's own ids for it, in order (kept as the last decision gave them); ``digest`` what it
        asked for (emrcomm.pipeline.digest.content_digest), ``patient`` and ``category`` kept likewise
        (a request blocked, then decided anew for another patient, is answered for that one)."""
        ...

    def request(self, id: str) -> RequestRow | None: ...

    def requests_by_identifier(self, identifier: Identifier, *, limit: int) -> list[RequestRow]:
        """The requests entered with ``identifier`` among their identifiers (its system None: an
        identifier without a system), oldest first, at most ``limit``: what a search by identifier
        reads. A request is listed once, whichever of its identifiers it is."""
        ...

    def next_attempt(self, id: str) -> int:
        """The attempt number the next decision of ``id`` will have."""
        ...

    def add(self, facts: RecordFacts, template: str | None, first: Sequence[Event]) -> Record:
        """File a new record with its first events; returns it projected. Filing an id that
        exists raises (a record is filed once; what happens to it is events)."""
        ...

    def append(self, event: Event) -> Record | None:
        """Append one event and return the record projected anew; None when the event was seen
        before (its dedup key) or the record is unknown: nothing changed."""
        ...

    def keep(self, event: Event) -> bool:
        """Keep ``event`` on a record whose facts this release cannot read (RecordUnreadable), not
        projected: its state and status stay as they were until a release that reads the facts
        appends the next event (a projection reads every event). False when it was seen before
        (its dedup key) or the record is unknown."""
        ...

    def get(self, id: str) -> Record | None:
        """Record ``id`` projected; None when there is none. Raises RecordUnreadable when its
        facts cannot be read, as :meth:`facts`, :meth:`read` and :meth:`last_to` do."""
        ...

    def facts(self, id: str) -> RecordFacts | None: ...

    def events(self, id: str) -> list[Event]: ...

    def for_request(self, request_id: str, *, unreadable: list[Unreadable] | None = None) -> list[Record]:
        """The records of a request in filing order. A listing (this, :meth:`find`, :meth:`page`)
        raises RecordUnreadable at a record whose facts cannot be read, unless given an
        ``unreadable`` list: then that record is left out and added to it, the others listed."""
        ...

    def by_provider(self, provider_id: str) -> str | None:
        """The record a provider's message id belongs to (from its "accepted" event)."""
        ...

    def last_to(self, channel: str, address: str, *, exclude_categories: Sequence[str] = (),
                unreadable: list[Unreadable] | None = None) -> Record | None:
        """The last message that left for ``address`` on ``channel`` (what a reply answers), not
        counting those of ``exclude_categories``. When this release cannot read it: None, and it
        is added to ``unreadable`` (without the list, RecordUnreadable)."""
        ...

    def count(self, *, patient: str, channel: str, since: dt.datetime, statuses: Sequence[str],
              exclude_categories: Sequence[str] = ()) -> int:
        """Messages to the patient on ``channel`` filed since a time in one of ``statuses`` (the
        patient's own replies are not messages to them), leaving out ``exclude_categories``."""
        ...

    def count_to(self, *, channel: str, address: str, since: dt.datetime, category: str) -> int:
        """Messages of ``category`` filed for ``address`` since a time that were not given up."""
        ...

    def find(self, *, patient: str | None = None, status: str | None = None, channel: str | None = None,
             category: str | None = None, since: dt.datetime | None = None,
             until: dt.datetime | None = None, unreadable: list[Unreadable] | None = None) -> Iterator[Record]:
        """The matching records in filing order (``unreadable``: see :meth:`for_request`; it is
        filled as the records are read)."""
        ...

    def page(self, query: PageQuery, *, unreadable: list[Unreadable] | None = None) -> list[tuple[Record, dt.datetime]]:
        """One page of records in filing order (recorded, id) matching ``query``, each with
        when it last changed: what a FHIR search of Communications reads. A record left out
        into ``unreadable`` (see :meth:`for_request`) still takes its place in the page: the
        page is full, and the next one starts after it, as if it were listed."""
        ...

    def count_matching(self, query: PageQuery) -> int:
        """How many records match ``query``'s filters (its limit and cursor aside): a search's total."""
        ...

    def read(self, id: str) -> tuple[Record, dt.datetime] | None:
        """Record ``id`` and when it last changed: what a FHIR read of a Communication answers."""
        ...


@frozen
class PageQuery:
    """A search of records: every given filter must hold (a tuple means any of its values);
    ``updated`` bounds when a record last changed, as (operator, time) pairs with operators
    ``>=``, ``>``, ``<=``, ``<``; ``after`` is the (recorded, id) the previous page ended on."""

    limit: int
    patient: str | None = None
    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()
    updated: tuple[tuple[str, dt.datetime], ...] = ()
    after: tuple[dt.datetime, str] | None = None


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:  # a lone surrogate from the Python API: json writes it escaped
        return json.dumps(value)


# The facts a record's row already holds in its columns: (key in the facts JSON, column).
_IN_COLUMNS = (("role", "role"), ("channel", "channel"), ("address", "address"))
_REQUEST_IN_COLUMNS = (("id", "request_id"), ("patient", "patient"), ("category", "category"))
FACT_COLUMNS = "id, request_id, patient, category, channel, role, address, recorded, facts"


def slim_facts(data: Mapping[str, Any], row: Row) -> dict[str, Any]:
    """A record's facts JSON without what its row's columns say (kept where they differ), and
    without empty values: what is stored (version 2 of the facts)."""
    out = dict(data)
    for key, column in _IN_COLUMNS:
        if key in out and out[key] == row[column]:
            del out[key]
    recorded = out.get("recorded")
    if recorded is not None and dt.datetime.fromisoformat(recorded) == parse_iso(row["recorded"]):
        del out["recorded"]
    request = {k: v for k, v in (out.pop("request", None) or {}).items() if v is not None}
    for key, column in _REQUEST_IN_COLUMNS:
        if key in request and request[key] == row[column]:
            del request[key]
    if request.get("priority") == "routine":  # the default (RecordFacts.from_json)
        del request["priority"]
    if request:
        out["request"] = request
    out["v"] = FACTS_VERSION
    return out


def full_facts(data: dict[str, Any], row: Row) -> dict[str, Any]:
    """The facts JSON with what :func:`slim_facts` left to the columns put back."""
    for key, column in _IN_COLUMNS:
        if key not in data and row[column] is not None:
            data[key] = row[column]
    if "recorded" not in data:
        data["recorded"] = row["recorded"]
    request = data.get("request")
    if request is None:
        data["request"] = {"id": row["request_id"], "patient": row["patient"], "category": row["category"]}
    else:
        for key, column in _REQUEST_IN_COLUMNS:
            if key not in request:
                request[key] = row[column]
    return data


def pack_facts(data: Mapping[str, Any], row: Row) -> bytes:
    return pack(_json(slim_facts(data, row)).encode("utf-8"), FACTS)


def pack_facts_row(row: Row) -> bytes:
    """A stored row's facts (as any version wrote them), packed as this version stores them."""
    return pack_facts(full_facts(json.loads(unpack(row["facts"])), row), row)


def dedup_digest(key: str) -> bytes:
    """What is stored of an event's dedup key: the first 16 bytes of its SHA-256 (a key is any
    length, a callback's or a record id and a time; 128 bits keep two keys apart)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:16]


@frozen
class Unreadable:
    """A record a listing left out because its facts cannot be read (RecordUnreadable): its id,
    when it was filed, why (``reason``: the error's words, never the facts' text) and whether a
    newer release wrote it."""

    id: str
    recorded: dt.datetime
    reason: str
    newer: bool


class RecordUnreadable(ValueError):
    """A record whose stored facts this release cannot read: nothing can be sent from it, nor
    appended to it. ``newer`` when a newer release wrote them (packed with a dictionary above the
    ones this release knows, holding a value it does not know, or of a facts version above
    ``FACTS_VERSION`` that does not read), for a release that reads them; else they are
    corrupted. Says the error's class, never the facts' text; ``record`` is the record's id (None
    when not known)."""

    def __init__(self, message: str, *, newer: bool = False, record: str | None = None) -> None:
        super().__init__(message)
        self.newer = newer
        self.record = record


def _facts(row: Row) -> RecordFacts:
    try:
        return _read_facts(row)
    except RecordUnreadable as exc:
        exc.record = row["id"]
        raise


def _read_facts(row: Row) -> RecordFacts:
    data: Any = None
    try:
        data = json.loads(unpack(row["facts"]))
        return RecordFacts.from_json(row["id"], full_facts(data, row))
    except NewerPacking as exc:
        raise RecordUnreadable(f"{NEWER} (its record is packed with dictionary {exc.dictionary}; this one knows "
                               f"{', '.join(map(str, sorted(DICTIONARIES)))})", newer=True) from exc
    except UnknownValue as exc:
        raise RecordUnreadable(f"{NEWER} (its record holds {exc} this one does not know)", newer=True) from exc
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, zlib.error) as exc:
        version = data.get("v") if isinstance(data, dict) else None
        if isinstance(version, int) and not isinstance(version, bool) and version > FACTS_VERSION:
            raise RecordUnreadable(f"{NEWER} (its record's facts are version {version}; this one reads up to "
                                   f"{FACTS_VERSION})", newer=True) from exc
        raise RecordUnreadable(f"its record cannot be read by this release ({type(exc).__name__})") from exc


class SqlRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    # the request ledger ----------------------------------------------------------------------------
    def enter_request(self, *, id: str, patient: str, category: str, now: dt.datetime, status: str,
                      record_ids: Sequence[str], identifiers: Sequence[Identifier] = (),
                      digest: bytes | None = None) -> int | None:
        retryable = ", ".join(f"'{s}'" for s in sorted(RETRYABLE))
        with self.db.transaction():
            rows = self.db.query(
                f"""INSERT INTO requests (id, patient, category, created, status, attempts, record_ids, identifier,
                                         digest)
                    VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET status = excluded.status, record_ids = excluded.record_ids,
                        attempts = requests.attempts + 1, identifier = excluded.identifier, digest = excluded.digest,
                        patient = excluded.patient, category = excluded.category
                    WHERE requests.status IN ({retryable}) RETURNING attempts""",
                (id, patient, category, iso(now), status, _json(list(record_ids)), identifiers_text(identifiers),
                 digest))
            if not rows:
                return None
            attempt = int(rows[0]["attempts"])
            # A request with several identifiers is found by each through request_identifiers; one
            # with none or one (nearly all) writes nothing there.
            if attempt > 1:  # decided again: the identifiers are the new decision's
                self.db.execute("DELETE FROM request_identifiers WHERE request_id = ?", (id,))
            if len(identifiers) > 1:
                self.db.executemany(
                    "INSERT INTO request_identifiers (identifier, request_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(identifier_key(i), id) for i in identifiers])
        return attempt

    def request(self, id: str) -> RequestRow | None:
        rows = self.db.query("SELECT * FROM requests WHERE id = ?", (id,))
        return _request_row(rows[0]) if rows else None

    def requests_by_identifier(self, identifier: Identifier, *, limit: int) -> list[RequestRow]:
        # A request with one identifier has its key in its row (the partial index requests_identifier,
        # whose condition the first term repeats so that the planner may use it: no key starts
        # with "[["); one with several, in request_identifiers. A request is in one or the other.
        key = identifier_key(identifier)
        rows = self.db.query(
            f"""SELECT * FROM requests WHERE identifier = ? AND {SINGLE_IDENTIFIER}
                UNION ALL
                SELECT requests.* FROM request_identifiers JOIN requests ON requests.id = request_identifiers.request_id
                WHERE request_identifiers.identifier = ?
                ORDER BY created, id LIMIT ?""", (key, key, limit))
        return [_request_row(r) for r in rows]

    def next_attempt(self, id: str) -> int:
        """The attempt number the next decision of ``id`` will have."""
        row = self.request(id)
        return 1 if row is None else row.attempts + 1

    # records ---------------------------------------------------------------------------------------
    def add(self, facts: RecordFacts, template: str | None, first: Sequence[Event]) -> Record:
        record = project(facts, first)
        recorded = iso(facts.recorded)
        columns = {"role": facts.role, "channel": facts.channel, "address": facts.address, "recorded": recorded,
                   "request_id": facts.request.id, "patient": facts.request.patient_ref,
                   "category": facts.request.category.value}
        with self.db.transaction():
            self.db.execute(
                """INSERT INTO records (id, request_id, patient, channel, category, role, address, template,
                                        recorded, state, status, version, updated, facts)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (facts.id, facts.request.id, facts.request.patient_ref, facts.channel, facts.request.category.value,
                 facts.role, facts.address, template, recorded, record.state, record.status,
                 record.version, recorded, pack_facts(facts.to_json(), columns)))
            for event in first:
                self._insert(event)
        return record

    def append(self, event: Event) -> Record | None:
        with self.db.transaction():
            if self.db.dialect == "postgresql":  # the record's projection has one writer at a time
                self.db.query("SELECT id FROM records WHERE id = ? FOR UPDATE", (event.record_id,))
            facts = self.facts(event.record_id)
            if facts is None or not self._insert(event):
                return None
            record = project(facts, self.events(event.record_id))
            self.db.execute("UPDATE records SET state = ?, status = ?, version = ?, updated = ? WHERE id = ?",
                            (record.state, record.status, record.version, iso(event.at), event.record_id))
        return record

    def _insert(self, event: Event) -> bool:
        return self.db.execute(
            """INSERT INTO events (record_id, kind, source, at, provider_id, reason, detail, until, dedup)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup) DO NOTHING""",
            (event.record_id, event.kind.value, event.source.value, iso(event.at), event.provider_id, event.reason,
             event.detail or None, iso(event.until), dedup_digest(event.dedup))) == 1

    def keep(self, event: Event) -> bool:
        with self.db.transaction():
            if not self.db.query("SELECT id FROM records WHERE id = ?", (event.record_id,)):
                return False
            return self._insert(event)

    def get(self, id: str) -> Record | None:
        facts = self.facts(id)
        return None if facts is None else project(facts, self.events(id))

    def facts(self, id: str) -> RecordFacts | None:
        rows = self.db.query(f"SELECT {FACT_COLUMNS} FROM records WHERE id = ?", (id,))
        return _facts(rows[0]) if rows else None

    def events(self, id: str) -> list[Event]:
        return [_event(r) for r in self.db.query("SELECT * FROM events WHERE record_id = ? ORDER BY seq", (id,))]

    def for_request(self, request_id: str, *, unreadable: list[Unreadable] | None = None) -> list[Record]:
        rows = self.db.query(f"SELECT {FACT_COLUMNS} FROM records WHERE request_id = ? ORDER BY recorded, id", (request_id,))
        return list(self._projected(rows, unreadable))

    def by_provider(self, provider_id: str) -> str | None:
        rows = self.db.query("SELECT record_id FROM events WHERE provider_id = ? AND kind = 'accepted' "
                             "ORDER BY seq LIMIT 1", (provider_id,))
        return str(rows[0]["record_id"]) if rows else None

    def last_to(self, channel: str, address: str, *, exclude_categories: Sequence[str] = (),
                unreadable: list[Unreadable] | None = None) -> Record | None:
        skip = "".join(" AND (category IS NULL OR category != ?)" for _ in exclude_categories)
        rows = self.db.query(
            f"""SELECT {FACT_COLUMNS} FROM records WHERE channel = ? AND address = ?
                  AND state IN ('accepted', 'delivered', 'failed', 'read'){skip}
                ORDER BY recorded DESC, id DESC LIMIT 1""", (channel, address, *exclude_categories))
        return next(self._projected(rows, unreadable), None)

    def count(self, *, patient: str, channel: str, since: dt.datetime, statuses: Sequence[str],
              exclude_categories: Sequence[str] = ()) -> int:
        marks = ", ".join("?" for _ in statuses)
        skip = "".join(" AND (category IS NULL OR category != ?)" for _ in exclude_categories)
        rows = self.db.query(
            f"SELECT COUNT(*) AS n FROM records WHERE patient = ? AND channel = ? AND recorded >= ? AND status IN ({marks})"
            f" AND role != 'reply'{skip}", (patient, channel, iso(since), *statuses, *exclude_categories))
        return int(rows[0]["n"])

    def count_to(self, *, channel: str, address: str, since: dt.datetime, category: str) -> int:
        rows = self.db.query(
            """SELECT COUNT(*) AS n FROM records WHERE channel = ? AND address = ? AND recorded >= ?
                 AND category = ? AND state NOT IN ('cancelled', 'expired', 'undeliverable')""",
            (channel, address, iso(since), category))
        return int(rows[0]["n"])

    def find(self, *, patient: str | None = None, status: str | None = None, channel: str | None = None,
             category: str | None = None, since: dt.datetime | None = None,
             until: dt.datetime | None = None, unreadable: list[Unreadable] | None = None) -> Iterator[Record]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("patient", patient), ("status", status), ("channel", channel), ("category", category)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("recorded >= ?")
            params.append(iso(since))
        if until is not None:
            where.append("recorded < ?")
            params.append(iso(until))
        sql = f"SELECT {FACT_COLUMNS} FROM records" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.db.query(sql + " ORDER BY recorded, id", tuple(params))
        for start in range(0, len(rows), 500):  # events read a page of records at a time
            yield from self._projected(rows[start:start + 500], unreadable)

    def page(self, query: PageQuery, *, unreadable: list[Unreadable] | None = None) -> list[tuple[Record, dt.datetime]]:
        where, params = _filters(query)
        if query.after is not None:
            recorded, last_id = query.after
            where.append("(recorded > ? OR (recorded = ? AND id > ?))")
            params.extend((iso(recorded), iso(recorded), last_id))
        sql = (f"SELECT {FACT_COLUMNS}, updated FROM records" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY recorded, id LIMIT ?")
        rows = self.db.query(sql, (*params, query.limit))
        updated = {r["id"]: parse_iso(r["updated"]) for r in rows}
        return [(record, updated[record.id]) for record in self._projected(rows, unreadable)]

    def count_matching(self, query: PageQuery) -> int:
        where, params = _filters(query)
        rows = self.db.query("SELECT COUNT(*) AS n FROM records" + (" WHERE " + " AND ".join(where) if where else ""),
                             tuple(params))
        return int(rows[0]["n"])

    def read(self, id: str) -> tuple[Record, dt.datetime] | None:
        rows = self.db.query(f"SELECT {FACT_COLUMNS}, updated FROM records WHERE id = ?", (id,))
        return next(((record, parse_iso(rows[0]["updated"])) for record in self._projected(rows)), None)

    def _projected(self, rows: Iterable[Row], unreadable: list[Unreadable] | None = None) -> Iterator[Record]:
        """The rows' records projected; one whose facts cannot be read raises RecordUnreadable,
        or with an ``unreadable`` list is added to it and left out."""
        rows = list(rows)
        if not rows:
            return
        ids = [r["id"] for r in rows]
        marks = ", ".join("?" for _ in ids)
        events: dict[str, list[Event]] = {i: [] for i in ids}
        for r in self.db.query(f"SELECT * FROM events WHERE record_id IN ({marks}) ORDER BY seq", tuple(ids)):
            events[r["record_id"]].append(_event(r))
        for r in rows:
            try:
                facts = _facts(r)
            except RecordUnreadable as exc:
                if unreadable is None:
                    raise
                log.warning("record %s: its facts cannot be read by this release; left out of a listing", r["id"])
                unreadable.append(Unreadable(r["id"], parse_iso(r["recorded"]), str(exc), exc.newer))
                continue
            yield project(facts, events[r["id"]])


def _filters(query: PageQuery) -> tuple[list[str], list[Any]]:
    """The WHERE terms and their parameters of a search's filters (not its cursor)."""
    where: list[str] = []
    params: list[Any] = []
    if query.patient is not None:
        where.append("patient = ?")
        params.append(query.patient)
    for column, values in (("status", query.statuses), ("category", query.categories),
                           ("request_id", query.request_ids)):
        if values:
            where.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    for op, when in query.updated:
        if op not in (">=", ">", "<=", "<"):
            raise ValueError(f"operator {op!r}")
        where.append(f"updated {op} ?")
        params.append(iso(when))
    return where, params


def identifier_key(identifier: Identifier) -> str:
    """What the ledger keeps of a request's identifier: ``[system, value]`` as compact JSON (system
    null when it has none), one text that two identifiers share only when both parts are equal."""
    return _json([identifier.system, identifier.value])


# The condition of the index requests_identifier: a row whose identifier column is one key (a
# list of several starts with "[["), so that an entry stays within PostgreSQL's size for one.
SINGLE_IDENTIFIER = "substr(identifier, 1, 2) <> '[['"


def identifiers_text(identifiers: Sequence[Identifier]) -> str | None:
    """The requests row's identifier column: NULL for none, the key of the one (as schema 6 kept
    it), or for several a JSON list of their ``[system, value]`` in the order sent."""
    if not identifiers:
        return None
    if len(identifiers) == 1:
        return identifier_key(identifiers[0])
    return _json([[i.system, i.value] for i in identifiers])


def _identifiers(text: str | None) -> tuple[Identifier, ...]:
    if text is None:
        return ()
    data = json.loads(text)
    pairs = data if isinstance(data[0], list) else [data]
    return tuple(Identifier(system, value) for system, value in pairs)


def _request_row(r: Row) -> RequestRow:
    return RequestRow(id=r["id"], patient=r["patient"], category=r["category"], created=parse_iso(r["created"]),
                      status=r["status"], attempts=int(r["attempts"]), record_ids=tuple(json.loads(r["record_ids"])),
                      identifiers=_identifiers(r["identifier"]),
                      digest=bytes(r["digest"]) if r["digest"] is not None else None)


def _event(row: Row) -> Event:
    return Event(record_id=row["record_id"], kind=kind_of(row["kind"]), source=Source(row["source"]),
                 at=parse_iso(row["at"]), dedup=bytes(row["dedup"]).hex(), provider_id=row["provider_id"], reason=row["reason"],
                 detail=row["detail"] or "", until=parse_iso(row["until"]) if row["until"] else None, seq=row["seq"])
