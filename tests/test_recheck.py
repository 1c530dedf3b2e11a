"""A message that leaves long after it was decided (held overnight for quiet hours, queued behind
an outage) asks the directory again before it goes: the real FHIR server (tests/fhir_server)
that ``fhir-directory`` reads patients and Consents from is changed meanwhile, or stopped by its
PID. The worker loop of the worker tests delivers; the test clock, never the wall clock's hour,
says when. A row leaving soon after its decision is not asked about again."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Clock
from emrcomm.host import Host
from emrcomm.model import Status
from fhir_server.server import ShimServer
from support import communication, consent, patient
from test_directory_outage import running_clinic
from test_directory_outage import server_host as outage_host
from test_worker import QUEUE, outbox_row, reminder, sink, status_of, toronto, worker

pytestmark = pytest.mark.node

ALEX_SMS = "+16135550123"


@pytest.fixture
def fhir() -> Iterator[ShimServer]:
    yield from running_clinic()


def server_host(make_host: Callable[..., Host], server: ShimServer, tmp_path: Path, extra: str = "") -> Host:
    """Queue mode; the only directory is the FHIR server (the Bundle directory knows nobody)."""
    return outage_host(make_host, server, tmp_path, QUEUE + extra)


def directory_requests(server: ShimServer) -> int:
    return int(server.control("stats")["requests"])


def held_overnight(host: Host, clock: Clock) -> str:
    """Alex's reminder decided at 21:30 (held for quiet hours); returns its record id."""
    clock.now = toronto(21, 30)
    outcome = host.send(reminder(rid="n-1"))
    assert outcome.status is Status.HELD
    [record_id] = outcome.record_ids
    return record_id


def sms_consent_withdrawn(server: ShimServer) -> None:
    server.put(consent("c1", "on-en", "sms", address=ALEX_SMS, revoked_at="2026-11-23T22:00:00-05:00",
                       source="withdrawn at the front desk"))


def alex_deceased(server: ShimServer) -> None:
    alex = patient("on-en", given="Alex", family="Martin", mobile=ALEX_SMS, email="alex.martin@example.org")
    server.put({**alex, "deceasedBoolean": True})


def alex_inactive(server: ShimServer) -> None:
    alex = patient("on-en", given="Alex", family="Martin", mobile=ALEX_SMS, email="alex.martin@example.org")
    server.put({**alex, "active": False})


WITHDRAWN: dict[str, tuple[Callable[[ShimServer], None], str]] = {
    "sms-consent-withdrawn": (sms_consent_withdrawn, "CONSENT_REVOKED"),
    "patient-deceased": (alex_deceased, "RECIPIENT_REFUSED"),
    "patient-inactive": (alex_inactive, "RECIPIENT_REFUSED"),
}


def audit_kinds(host: Host) -> list[dict[str, Any]]:
    return [json.loads(e["entry"]) for e in host.storage.audit.entries()]


@pytest.mark.parametrize("change", WITHDRAWN)
def test_a_reminder_held_overnight_is_not_sent_when_the_emr_withdrew_its_consent_meanwhile(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, clock: Clock, change: str) -> None:
    withdraw, code = WITHDRAWN[change]
    host = server_host(make_host, fhir, tmp_path)
    record_id = held_overnight(host, clock)
    withdraw(fhir)  # 22:00, in the EMR: nothing reaches emrcomm's own consent ledger
    clock.now = toronto(8, 5, day=24)
    stats = worker(host).run(once=True)
    assert (stats.sent, stats.cancelled, stats.dead) == (0, 1, 0) and sink(host) == []
    assert host.storage.outbox.counts() == {}  # not sent, and nothing left to send
    resource = communication(host, record_id)
    assert resource is not None and resource["status"] == "not-done"
    assert code in json.dumps(resource["statusReason"])
    cancelled = [e for e in audit_kinds(host) if e["kind"] == "cancelled"]
    assert cancelled and code in json.dumps(cancelled[-1])
    assert ALEX_SMS not in json.dumps(cancelled)


def test_a_reminder_held_overnight_is_asked_about_again_and_sent_when_nothing_changed(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, clock: Clock) -> None:
    host = server_host(make_host, fhir, tmp_path)
    record_id = held_overnight(host, clock)
    clock.now = toronto(8, 5, day=24)
    before = directory_requests(fhir)
    assert worker(host).run(once=True).sent == 1 and len(sink(host)) == 1
    assert directory_requests(fhir) > before  # the patient and the Consents read again
    assert status_of(host, record_id) == "completed"


def test_a_held_reminder_is_given_back_unsent_while_the_directory_is_stopped_and_sent_once_it_is_back(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, clock: Clock) -> None:
    host = server_host(make_host, fhir, tmp_path)
    record_id = held_overnight(host, clock)
    fhir.stop()  # by its PID
    clock.now = toronto(8, 5, day=24)
    stats = worker(host).run(once=True)
    assert (stats.sent, stats.unchecked, stats.dead, stats.retried) == (0, 1, 0, 0) and sink(host) == []
    row = outbox_row(host)
    assert row["state"] == "retry" and row["attempts"] == 0  # given back, its attempt too: never dead for this
    assert dt.datetime.fromisoformat(row["not_before"]) == toronto(8, 5, 10, day=24)  # one backoff_base
    assert "(the directory, a validator) could not be asked again" in row["last_error"]
    assert status_of(host, record_id) != "not-done"
    clock.now = toronto(8, 5, 5, day=24)  # not due yet
    assert worker(host).run(once=True).unchecked == 0
    clock.now = toronto(8, 5, 10, day=24)  # due, the server still down: given back again
    assert worker(host).run(once=True).unchecked == 1 and sink(host) == []
    fhir.start()
    clock.now = toronto(8, 6, day=24)
    assert worker(host).run(once=True).sent == 1 and len(sink(host)) == 1
    assert status_of(host, record_id) == "completed"


def test_a_held_reminder_the_directory_cannot_be_asked_about_before_its_expiry_expires_unsent(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, clock: Clock) -> None:
    host = server_host(make_host, fhir, tmp_path)
    clock.now = toronto(21, 30)
    outcome = host.send(reminder(rid="n-2", expires=toronto(9, 0, day=24)))
    assert outcome.status is Status.HELD
    fhir.stop()
    clock.now = toronto(8, 5, day=24)
    assert worker(host).run(once=True).unchecked == 1 and sink(host) == []
    clock.now = toronto(9, 0, day=24)
    stats = worker(host).run(once=True)
    assert (stats.sent, stats.expired, stats.dead) == (0, 1, 0) and sink(host) == []
    resource = communication(host, outcome.record_ids[0])
    assert resource is not None and "MESSAGE_EXPIRED" in json.dumps(resource["statusReason"])


def test_a_row_leaving_soon_after_its_decision_is_not_asked_about_again_and_a_later_one_is(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, clock: Clock) -> None:
    """``recheck_after = 60``: a row the worker takes 30 s after its decision goes without a
    directory request (a queued row's usual case: the worker's throughput is the same); one it
    takes two minutes after its decision reads the patient again."""
    host = server_host(make_host, fhir, tmp_path, "recheck_after = 60\n")
    start = clock.now
    assert host.send(reminder(rid="f-1")).status is Status.QUEUED
    clock.now = start + dt.timedelta(seconds=30)
    before = directory_requests(fhir)
    assert worker(host).run(once=True).sent == 1
    assert directory_requests(fhir) == before
    assert host.send(reminder(rid="f-2")).status is Status.QUEUED
    clock.now += dt.timedelta(seconds=120)
    decided = directory_requests(fhir)
    assert worker(host).run(once=True).sent == 1
    assert directory_requests(fhir) > decided


def test_recheck_after_0_asks_again_for_every_row_the_worker_takes(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    host = server_host(make_host, fhir, tmp_path, "recheck_after = 0\n")
    assert host.send(reminder(rid="z-1")).status is Status.QUEUED
    before = directory_requests(fhir)
    assert worker(host).run(once=True).sent == 1  # the same instant as its decision
    assert directory_requests(fhir) > before
