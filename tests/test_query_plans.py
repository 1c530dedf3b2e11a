"""Every statement a message runs reads through an index: SQLite's query plan for it searches,
it never scans a table (the portal's own tables included). Checked on the plans, not on time, so that the cost of a message stays
flat however long the chart and the outbox grow (benchmarks/run.py prints the opt-out
de-duplication's cost at 1k to 1M rows).
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from attrs import evolve as attrs_evolve

from conftest import Clock
from emrcomm.host import Host
from emrcomm.model import Category, DeliveryUpdate, Identifier, Request, Sensitivity, Status
from emrcomm.outbox.worker import Worker

# SQLite's plans (EXPLAIN QUERY PLAN on the store's own connection). PostgreSQL has the same
# indexes (storage/schema.py), but its planner chooses by table statistics: a plan read on a
# test's tiny tables would say nothing about a clinic's.
pytestmark = pytest.mark.sqlite_only

TORONTO = dt.timezone(dt.timedelta(hours=-5))
APPOINTMENT = dt.datetime(2026, 11, 24, 10, 30, tzinfo=TORONTO)
# A scan allowed by name: the claim reads the partial index of open outbox rows in due order and
# stops at its limit, so it reads what is due now, never the history.
ORDERED_PARTIAL = {"outbox_claim_order"}


def reminder(rid: str) -> Request:
    return Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT}, appointment=APPOINTMENT)


@contextmanager
def traced(host: Host) -> Iterator[list[str]]:
    """The statements run on the host's database meanwhile, as SQLite ran them."""
    seen: list[str] = []
    connection: sqlite3.Connection = host.storage.db._db  # type: ignore[attr-defined]
    connection.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        connection.set_trace_callback(None)


def scans(host: Host, statements: list[str]) -> dict[str, list[str]]:
    """Each statement whose plan reads a whole table (or a whole index), with those plan lines."""
    connection: sqlite3.Connection = host.storage.db._db  # type: ignore[attr-defined]
    found: dict[str, list[str]] = {}
    for sql in statements:
        if sql.split(None, 1)[0].upper() not in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
            continue
        plan = [row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + sql)]
        bad = [line for line in plan if line.startswith("SCAN ") and line != "SCAN CONSTANT ROW"
               and not any(f"USING INDEX {name}" in line for name in ORDERED_PARTIAL)]
        if bad:
            found[re.sub(r"\s+", " ", sql)[:160]] = bad
    return found


def test_every_statement_a_message_runs_searches_an_index(make_host: Callable[..., Host], clock: Clock) -> None:
    inline = make_host()
    inline.send(reminder("warm"))  # the first send reads the key, the plugins' settings: not per message
    with traced(inline) as seen:
        # A portal message (kept encrypted by the portal) and its SMS notice, then read.
        note = inline.send(Request("Patient/on-en", Category.CLINICAL, id="note-1", sensitivity=Sensitivity.RESTRICTED,
                                   text="Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily."))
        inline.delivery_update(DeliveryUpdate(kind="read", at=clock.now, record_id=note.record_ids[0],
                                              source="portal"))
        sent = inline.send(reminder("r-1"))
        record = sent.record_ids[0]
        inline.delivery_update(DeliveryUpdate(kind="delivered", at=clock.now, channel="sms", record_id=record,
                                              provider_id="p-1", key="p-1:delivered"))
        inline.delivery_update(DeliveryUpdate(kind="failed", at=clock.now, channel="sms", provider_id="p-1"))
        clock.now += dt.timedelta(minutes=5)
        # STOP: a reply to the last message, the consent ledger, and the one confirmation (its
        # de-duplication reads the messages sent to that address since the opt-out).
        inline.delivery_update(DeliveryUpdate(kind="reply", at=clock.now, channel="sms", address="+16135550123",
                                              text="STOP", provider_id="mo-1"))
        after_stop = inline.send(reminder("r-2"))
    assert note.channels == ("portal", "sms") and sent.status is Status.SENT and after_stop.channels == ("email",)

    queued = make_host('\n[delivery]\nmode = "queue"\n', clock=Clock(clock.now))
    queued.send(reminder("q-warm"))
    Worker(queued).run(once=True)
    with traced(queued) as seen_by_worker:
        assert queued.send(reminder("q-1")).status is Status.QUEUED
        assert Worker(queued).run(once=True).sent == 1

    statements = seen + seen_by_worker
    assert any("category = " in s and "state NOT IN" in s for s in statements), \
        "the confirmation's de-duplication did not run"
    assert any("portal_messages" in s for s in statements), "the portal kept nothing"
    assert any("outbox_claim_order" in s for s in statements), "the worker's claim did not run"
    assert scans(inline, statements) == {}


def test_a_search_of_requests_by_identifier_searches_its_index(host: Host) -> None:
    with_system, without = Identifier("urn:emr:appointments", "A-1"), Identifier(None, "A-2")
    host.send(attrs_evolve(reminder("ident-1"), identifier=with_system))
    host.send(reminder("no-ident"))
    with traced(host) as seen:
        assert [r.id for r in host.storage.records.requests_by_identifier(with_system, limit=100)] == ["ident-1"]
        assert host.storage.records.requests_by_identifier(without, limit=100) == []
    connection: sqlite3.Connection = host.storage.db._db  # type: ignore[attr-defined]
    searches = [s for s in seen if "WHERE identifier = " in s]
    assert len(searches) == 2 and scans(host, searches) == {}
    for sql in searches:
        plan = " ".join(row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX requests_identifier" in plan, plan


def test_a_request_with_several_identifiers_is_entered_decided_again_and_found_through_indexes(host: Host) -> None:
    first, second, third = (Identifier("urn:emr:appointments", "A-1"), Identifier("urn:emr:orders", "O-1"),
                            Identifier(None, "V-1"))
    host.send(reminder("warm"))
    with traced(host) as seen:
        host.send(attrs_evolve(reminder("several"), identifier=first, other_identifiers=(second, third)))
        blocked = Request("Patient/none", Category.APPOINTMENT_REMINDER, id="again", text="See you soon.",
                          identifier=first, other_identifiers=(second,))
        assert host.send(blocked).status is Status.BLOCKED
        assert host.send(attrs_evolve(reminder("again"), identifier=third)).status is Status.SENT  # decided again
        for identifier in (first, second, third):
            host.storage.records.requests_by_identifier(identifier, limit=100)
    assert any(s.startswith("DELETE FROM request_identifiers") for s in seen), "the second decision deleted nothing"
    assert any("INSERT INTO request_identifiers" in s for s in seen)
    assert scans(host, seen) == {}
    connection: sqlite3.Connection = host.storage.db._db  # type: ignore[attr-defined]
    [search, *_] = [s for s in seen if "JOIN requests" in s]
    plan = " ".join(row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + search))
    assert "USING INDEX requests_identifier" in plan and "request_identifiers USING PRIMARY KEY" in plan, plan


def test_the_check_finds_a_statement_that_scans(host: Host) -> None:
    found = scans(host, ["SELECT id FROM records WHERE facts LIKE '%Patient%'"])
    assert list(found.values()) == [["SCAN records"]]
