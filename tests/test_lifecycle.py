"""One message lifecycle: every change is an appended event; the chart is their projection, the
same whatever order the events arrived in and however often; several processes append to one
record at once and no update is lost; filers receive each new projection."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import ClassVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import support
from emrcomm.config import load_config
from emrcomm.fhir import communication, validate_resource
from emrcomm.host import Host
from emrcomm.lifecycle.events import Event, Note, Source
from emrcomm.lifecycle.projection import RecordFacts, project, state_of
from emrcomm.lifecycle.states import RULES, LegState, rank
from emrcomm.model import Category, Finding, Request, Severity
from emrcomm.plugin.manager import discover
from emrcomm.testing import TEST_NOW
from support import write_config
from test_worker import reminder

FACTS = RecordFacts(
    id="0" * 32, request=Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1"), role="primary",
    recorded=TEST_NOW, channel="sms", medium="SMSWRIT", address="+16135550123", text="Riverside: see you Monday.",
    findings=(Finding("RECIPIENT_UNVERIFIED", Severity.WARN, "The patient never confirmed this address."),),
    sender_display="Riverside Family Health",
)
KINDS = [*LegState, *Note]  # every kind, a note added later included


def event(kind: LegState | Note, minutes: int, tag: str = "") -> Event:
    return Event(record_id=FACTS.id, kind=kind, source=Source.CALLBACK, at=TEST_NOW + dt.timedelta(minutes=minutes),
                 dedup=f"{kind.value}:{minutes}:{tag}", provider_id="P1" if kind is LegState.ACCEPTED else None,
                 reason="DELIVERY_FAILED" if kind is LegState.FAILED else None, detail="undelivered 30003")


events_st = st.lists(st.builds(event, st.sampled_from(KINDS), st.integers(0, 30), st.sampled_from(["", "x"])),
                     min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(events=events_st, seed=st.integers(0, 2**32 - 1), repeats=st.integers(0, 3))
def test_the_projection_is_the_same_whatever_the_order_and_the_duplicates(events: list[Event], seed: int,
                                                                          repeats: int) -> None:
    rng = random.Random(seed)
    shuffled = [*events, *rng.choices(events, k=repeats)]  # a retried callback, a replay
    rng.shuffle(shuffled)
    unique = list({e.dedup: e for e in shuffled}.values())  # storage keeps one event per dedup key
    assert project(FACTS, unique) == project(FACTS, list({e.dedup: e for e in events}.values()))


@settings(max_examples=200, deadline=None)
@given(events=events_st)
def test_every_projection_is_a_valid_r4_communication(events: list[Event]) -> None:
    validate_resource(communication(project(FACTS, list({e.dedup: e for e in events}.values()))))


@pytest.mark.parametrize(("kinds", "state"), [
    ((LegState.QUEUED, LegState.ACCEPTED, LegState.DELIVERED, LegState.FAILED), LegState.DELIVERED),  # late failed
    ((LegState.QUEUED, LegState.FAILED, LegState.ACCEPTED), LegState.FAILED),  # failed arrives before accepted
    ((LegState.HELD, LegState.QUEUED), LegState.QUEUED),  # released
    ((LegState.QUEUED, LegState.CANCELLED, LegState.ACCEPTED), LegState.ACCEPTED),  # it left all the same
    ((LegState.QUEUED, LegState.UNDELIVERABLE, Note.REQUEUED), LegState.QUEUED),  # staff requeued it
    ((LegState.ACCEPTED, LegState.RECALLED, LegState.READ), LegState.READ),  # read before the recall took
    ((LegState.QUEUED, LegState.HELD), LegState.HELD),  # held again as it left: its window had shut (a retry)
    ((LegState.QUEUED, LegState.UNDELIVERABLE, Note.REQUEUED, LegState.HELD), LegState.HELD),  # requeued at night
    ((LegState.QUEUED, LegState.HELD, LegState.ACCEPTED), LegState.ACCEPTED),  # then sent when it opened
    ((LegState.QUEUED, LegState.HELD, LegState.EXPIRED), LegState.EXPIRED),  # or expired first
    ((LegState.QUEUED, LegState.HELD, Note.REQUEUED), LegState.QUEUED),  # a requeue since
])
def test_the_precedence_table(kinds: tuple[LegState | Note, ...], state: LegState) -> None:
    assert state_of([event(k, i) for i, k in enumerate(kinds)])[0] is state


def test_a_hold_at_the_instant_it_was_queued_does_not_count_and_a_later_hold_carries_its_until() -> None:
    # 0.1's records, converted, carry "held" and "queued" at the time filed: it was released.
    assert state_of([event(LegState.HELD, 0), event(LegState.QUEUED, 0)])[0] is LegState.QUEUED
    until = TEST_NOW + dt.timedelta(hours=10)
    held = attrs.evolve(event(LegState.HELD, 5), reason="QUIET_HOURS", until=until)
    record = project(FACTS, [event(LegState.QUEUED, 0), held, event(Note.ATTEMPT_FAILED, 3)])
    assert (record.state, record.status, record.hold_until, record.reasons) == ("held", "on-hold", until,
                                                                                ("QUIET_HOURS",))


def test_every_state_has_a_rank_and_a_chart_status() -> None:
    assert {s for s in LegState} == set(RULES)
    assert len({rank(s) for s in LegState if s not in (LegState.BLOCKED, LegState.RECEIVED)}) == len(LegState) - 2
    assert {r.status for r in RULES.values()} <= {"on-hold", "in-progress", "not-done", "completed", "stopped"}


def test_a_late_failure_is_recorded_but_the_chart_keeps_delivered(host: Host) -> None:
    [rid] = host.send(reminder()).record_ids
    records = host.storage.records
    delivered = records.append(attrs.evolve(event(LegState.DELIVERED, 5), record_id=rid))
    failed = records.append(attrs.evolve(event(LegState.FAILED, 6), record_id=rid))
    assert delivered is not None and failed is not None  # both appended
    assert failed.state == "delivered" and failed.status == "completed" and failed.version == delivered.version + 1
    assert records.append(attrs.evolve(event(LegState.FAILED, 6), record_id=rid)) is None  # the same again: nothing


def test_a_report_that_arrives_before_the_send_is_recorded_never_makes_sent_later_than_delivered() -> None:
    """Kannel reports a message to ``serve`` within milliseconds, sometimes before the worker that
    sent it has recorded "accepted" (in tests/test_lifecycle_clinic.py, about one SMS in eight,
    by a millisecond or two): the chart's ``sent`` is the earliest event that proves it left."""
    delivered, accepted = event(LegState.DELIVERED, 5), event(LegState.ACCEPTED, 6)
    only_reported = project(FACTS, [event(LegState.QUEUED, 0), delivered])
    assert (only_reported.state, only_reported.sent) == ("delivered", delivered.at)  # it arrived, so it left
    record = project(FACTS, [event(LegState.QUEUED, 0), delivered, accepted])
    assert (record.state, record.sent, record.provider_id) == ("delivered", delivered.at, "P1")
    assert record.notes == (f"delivered {communication(record)['sent']}",)
    in_order = project(FACTS, [event(LegState.QUEUED, 0), event(LegState.ACCEPTED, 1), delivered])
    assert in_order.sent == TEST_NOW + dt.timedelta(minutes=1)


def test_a_replay_after_a_restart_changes_nothing(make_host: Callable[..., Host]) -> None:
    host = make_host()
    [rid] = host.send(reminder()).record_ids
    report = attrs.evolve(event(LegState.DELIVERED, 5), record_id=rid)
    before = host.storage.records.append(report)
    host.close()
    again = make_host()  # the same database, a new process's view
    assert again.storage.records.append(report) is None
    assert again.record(rid) == before


class RecordingFiler:
    """A chart of the EMR's own: it keeps every version of every record it is given."""

    filed: ClassVar[list[tuple[str, str, int]]] = []

    def __init__(self, context: object) -> None:
        type(self).filed = []

    from emrcomm import hookimpl

    @hookimpl
    def emrcomm_file_record(self, record):  # type: ignore[no-untyped-def]
        type(self).filed.append((record.id, record.status, record.version))


recording_filer = RecordingFiler


def test_filers_receive_each_new_projection_never_an_older_one(tmp_path: Path, clock: object) -> None:
    eps = {**discover(), "emrchart": metadata.EntryPoint("emrchart", "test_lifecycle:recording_filer", "emrcomm")}
    config = load_config(write_config(tmp_path, '\n[plugins.emrchart]\n'))
    with Host(config, clock=clock, entry_points=eps) as host:  # type: ignore[arg-type]
        [rid] = host.send(reminder()).record_ids
        host.storage.records.append(attrs.evolve(event(LegState.DELIVERED, 5), record_id=rid))  # not through filers
        from emrcomm.model import DeliveryUpdate

        host.delivery_update(DeliveryUpdate(kind="delivered", at=TEST_NOW, channel="sms", record_id=rid, key="dlr-1"))
        host.delivery_update(DeliveryUpdate(kind="delivered", at=TEST_NOW, channel="sms", record_id=rid, key="dlr-1"))
    filed = RecordingFiler.filed
    assert [(s, v) for r, s, v in filed if r == rid] == [("in-progress", 1), ("completed", 2), ("completed", 4)]


APPEND = """
import sys, datetime as dt
from emrcomm.storage import open_postgres, open_sqlite
from emrcomm.lifecycle.events import Event, Note, Source
path, record, who, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
storage = open_postgres(path) if path.startswith("postgresql://") else open_sqlite(path)
at = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
for i in range(n):
    storage.records.append(Event(record_id=record, kind=Note.PROGRESS, source=Source.CALLBACK,
                                 at=at + dt.timedelta(seconds=i), dedup=f"{who}-{i}"))
storage.close()
"""


def test_two_processes_appending_to_one_record_lose_no_update(make_host: Callable[..., Host]) -> None:
    """The 0.1 release lost a third of its updates here (read, edit, write back from four places)."""
    host = make_host()
    [rid] = host.send(reminder()).record_ids
    path = support.STORE_URL or str(host.config.store_path)
    host.close()
    procs = [subprocess.Popen([sys.executable, "-c", APPEND, path, rid, who, "150"]) for who in ("serve-a", "serve-b")]
    assert [p.wait(120) for p in procs] == [0, 0]
    again = make_host()
    record = again.record(rid)
    assert record is not None and record.version == 2 + 300  # queued, accepted, and every report
    assert len(again.storage.records.events(rid)) == 302
