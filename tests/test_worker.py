"""The outbox worker: what is due goes, what fails is retried with backoff and then dead-lettered,
holds are released when their window opens, expired requests are not sent, two workers never
share a row, and a notice waits for the portal message it announces."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from conftest import Clock
from emrcomm.cli import main
from emrcomm.host import Host
from emrcomm.model import Category, DeliveryUpdate, Request, Sensitivity, Severity, Status
from emrcomm.outbox.worker import Worker, WorkerSettings
from emrcomm.pipeline.deliver import RetryPolicy
from servers import Reply, ScriptedHTTPServer
from support import BASE_CONFIG, communication, kannel_sms

TORONTO = dt.timezone(dt.timedelta(hours=-5))
APPOINTMENT = dt.datetime(2026, 11, 24, 10, 30, tzinfo=TORONTO)
QUEUE = '\n[delivery]\nmode = "queue"\nmax_attempts = 3\nbackoff_base = 10\nbackoff_cap = 60\n'
INLINE = '\n[delivery]\nmax_attempts = 3\nbackoff_base = 10\nbackoff_cap = 60\n'


def reminder(rid: str = "r-1", patient: str = "Patient/on-en", expires: dt.datetime | None = None) -> Request:
    return Request(patient, Category.APPOINTMENT_REMINDER, id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT}, appointment=APPOINTMENT, expires=expires)


def sink(host: Host) -> list[dict[str, str]]:
    path = host.config.base_dir / "out" / "sms.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def status_of(host: Host, record_id: str) -> str:
    resource = communication(host, record_id)
    assert resource is not None
    return str(resource["status"])


def worker(host: Host) -> Worker:
    """A worker whose jitter is always the full backoff, so waits can be asserted exactly."""
    return Worker(host, WorkerSettings.from_config(host.config.raw.get("delivery", {})), rand=lambda: 1.0)


@pytest.fixture
def http_server() -> Iterator[ScriptedHTTPServer]:
    server = ScriptedHTTPServer(Reply(202, b"0: Accepted for delivery"))
    yield server
    server.close()


@pytest.fixture
def kannel_host(make_host: Callable[..., Host], http_server: ScriptedHTTPServer, tmp_path: Path) -> Host:
    """Queue mode, SMS through a Kannel-speaking scripted HTTP server."""
    (tmp_path / "kannel-pw").write_text("pw-1", encoding="utf-8")
    kannel = f"""
[plugins.sms]
transport = "kannel"
from = "+16135550100"
rate_per_second = 500
burst = 50
[plugins.sms.kannel]
url = "{http_server.url}/cgi-bin/sendsms"
username = "emrcomm"
password = {{file = "{tmp_path / 'kannel-pw'}"}}
"""
    return make_host(QUEUE, config_text=BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', kannel))


@pytest.fixture
def inline_kannel_host(make_host: Callable[..., Host], http_server: ScriptedHTTPServer, tmp_path: Path) -> Host:
    """Inline delivery (Host.send tries at once), SMS through the scripted Kannel."""
    sms = kannel_sms(http_server.url, tmp_path)
    return make_host(INLINE, config_text=BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', sms))


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(backoff_base=10, backoff_cap=60)
    assert [policy.wait(n, rand=lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
    assert policy.wait(3, rand=lambda: 0.0) == 20  # jitter never goes below half


def test_worker_delivers_queued_messages_and_files_them_completed(make_host: Callable[..., Host]) -> None:
    host = make_host(QUEUE)
    outcomes = [host.send(reminder(f"r-{i}")) for i in range(5)]
    assert {o.status for o in outcomes} == {Status.QUEUED} and sink(host) == []
    stats = worker(host).run(once=True)
    assert stats.sent == 5 and len(sink(host)) == 5
    assert host.storage.outbox.counts() == {}  # nothing left to deliver
    assert {status_of(host, o.record_ids[0]) for o in outcomes} == {"completed"}


def test_quiet_hours_hold_is_released_when_the_window_opens(make_host: Callable[..., Host], clock: Clock) -> None:
    host = make_host(QUEUE)
    clock.now = dt.datetime(2026, 11, 23, 21, 30, tzinfo=TORONTO)
    outcome = host.send(reminder())
    assert outcome.status is Status.HELD
    assert worker(host).run(once=True).sent == 0 and sink(host) == []
    clock.now = dt.datetime(2026, 11, 24, 8, 0, 1, tzinfo=TORONTO)
    assert worker(host).run(once=True).sent == 1
    assert len(sink(host)) == 1 and status_of(host, outcome.record_ids[0]) == "completed"


def test_a_not_before_at_night_is_sent_when_the_window_opens_not_at_night(
        make_host: Callable[..., Host], clock: Clock) -> None:
    host = make_host(QUEUE)
    clock.now = dt.datetime(2026, 11, 23, 14, 0, tzinfo=TORONTO)
    request = attrs.evolve(reminder(), not_before=dt.datetime(2026, 11, 23, 23, 0, tzinfo=TORONTO))
    assert host.send(request).status is Status.HELD
    clock.now = dt.datetime(2026, 11, 23, 23, 0, 1, tzinfo=TORONTO)
    assert worker(host).run(once=True).sent == 0 and sink(host) == []
    clock.now = dt.datetime(2026, 11, 24, 8, 0, tzinfo=TORONTO)
    assert worker(host).run(once=True).sent == 1 and len(sink(host)) == 1


def test_a_reminder_held_past_its_appointment_is_not_sent_when_the_window_opens(
        make_host: Callable[..., Host], clock: Clock) -> None:
    # Decided at 22:30 for an appointment at 07:30: held until 08:00, when the appointment is past.
    host = make_host(QUEUE)
    clock.now = dt.datetime(2026, 11, 23, 22, 30, tzinfo=TORONTO)
    early = dt.datetime(2026, 11, 24, 7, 30, tzinfo=TORONTO)
    outcome = host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-early",
                                template="appointment-reminder", variables={"appointment": early}))
    assert outcome.status is Status.HELD
    clock.now = dt.datetime(2026, 11, 24, 8, 0, tzinfo=TORONTO)
    stats = worker(host).run(once=True)
    assert (stats.sent, stats.expired) == (0, 1) and sink(host) == []
    resource = communication(host, outcome.record_ids[0])
    assert resource is not None and resource["status"] == "not-done"
    assert "MESSAGE_EXPIRED" in json.dumps(resource["statusReason"])


def test_an_expired_request_is_not_sent_and_is_filed_not_done(make_host: Callable[..., Host], clock: Clock) -> None:
    host = make_host(QUEUE)
    outcome = host.send(reminder(expires=clock.now + dt.timedelta(hours=1)))
    clock.now += dt.timedelta(hours=2)
    stats = worker(host).run(once=True)
    assert stats.expired == 1 and sink(host) == []
    assert host.storage.outbox.counts() == {}  # nothing left to deliver
    resource = communication(host, outcome.record_ids[0])
    assert resource is not None and resource["status"] == "not-done"
    assert "MESSAGE_EXPIRED" in json.dumps(resource["statusReason"])


def test_a_server_error_is_retried_after_backoff_then_delivered(
    kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock
) -> None:
    outcome = kannel_host.send(reminder())
    http_server.script(Reply(503, b"busy"))
    w = worker(kannel_host)
    assert w.run(once=True).retried == 1
    [row] = kannel_host.storage.db.query("SELECT state, attempts, not_before, last_error FROM outbox")
    # What the gateway said, for `emrcomm outbox`: the reason, the provider, the code, its words.
    assert row["state"] == "retry" and row["attempts"] == 1 and row["last_error"] == "server-error: kannel: HTTP 503: busy"
    assert dt.datetime.fromisoformat(row["not_before"]) == clock.now + dt.timedelta(seconds=10)
    assert w.run(once=True).sent == 0  # not due yet
    clock.now += dt.timedelta(seconds=11)
    assert w.run(once=True).sent == 1
    assert len(http_server.seen) == 2 and status_of(kannel_host, outcome.record_ids[0]) == "completed"


def test_retry_after_longer_than_the_backoff_is_honoured(
    kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock
) -> None:
    kannel_host.send(reminder())
    http_server.script(Reply(429, b"slow down", headers=(("Retry-After", "300"),)))
    worker(kannel_host).run(once=True)
    [row] = kannel_host.storage.db.query("SELECT state, not_before FROM outbox")
    assert row["state"] == "retry"
    assert dt.datetime.fromisoformat(row["not_before"]) == clock.now + dt.timedelta(seconds=300)


def test_attempts_used_up_make_a_dead_letter_filed_not_done_and_requeue_revives_it(
    kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock
) -> None:
    outcome = kannel_host.send(reminder())
    http_server.script(*[Reply(500, b"down")] * 3)
    w = worker(kannel_host)
    for _ in range(3):
        w.run(once=True)
        clock.now += dt.timedelta(seconds=61)
    assert w.stats.retried == 2 and w.stats.dead == 1
    [dead] = kannel_host.storage.outbox.dead()
    assert dead.state == "dead" and "gave up after 3 attempts" in (dead.last_error or "")
    resource = communication(kannel_host, outcome.record_ids[0])
    assert resource is not None and resource["status"] == "not-done"
    assert "DELIVERY_FAILED" in json.dumps(resource["statusReason"])
    [follow_up] = kannel_host.storage.inbox.items()  # staff are asked to reach the patient another way
    assert (follow_up["kind"], follow_up["record_id"]) == ("follow-up", outcome.record_ids[0])
    assert kannel_host.requeue() == 1
    assert kannel_host.storage.inbox.items() == [follow_up]  # put back, not sent yet: still to do
    assert w.run(once=True).sent == 1 and status_of(kannel_host, outcome.record_ids[0]) == "completed"
    assert kannel_host.storage.inbox.items() == []  # it went after all: nothing left for staff
    [done] = kannel_host.storage.inbox.items(state="done")
    assert done["id"] == follow_up["id"] and done["task"]["status"] == "completed"
    assert done["task"]["note"] == [{"text": "The message was sent after all: nothing left to do."}]


def test_a_permanent_refusal_is_a_dead_letter_at_once(kannel_host: Host, http_server: ScriptedHTTPServer) -> None:
    kannel_host.send(reminder())
    http_server.script(Reply(400, b"Invalid receiver"))
    stats = worker(kannel_host).run(once=True)
    assert stats.dead == 1 and stats.retried == 0
    [dead] = kannel_host.storage.outbox.dead()
    assert dead.attempts == 1 and dead.last_error == "rejected: kannel: request rejected (HTTP 400): Invalid receiver"


def test_an_inline_send_that_failed_for_now_is_queued_with_the_failed_try_then_sent_by_the_worker(
    inline_kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock
) -> None:
    """The gateway answers 503 to the first, inline try: the outbox tries again, so the message is
    going. Host.send says queued, as a repeat and the FHIR API do, with the failed try as a
    warning; once the worker has sent it, a repeat says sent."""
    http_server.script(Reply(503, b"busy"))
    first = inline_kannel_host.send(reminder())
    assert first.status is Status.QUEUED and first.channels == ("sms",)
    [failed] = [f for f in first.findings if f.code == "DELIVERY_FAILED"]
    assert failed.severity is Severity.WARN and "HTTP 503" in failed.message
    assert inline_kannel_host.send(reminder()).status is Status.QUEUED  # asked again: the same
    clock.now += dt.timedelta(seconds=61)  # past the retry's backoff (its cap)
    assert worker(inline_kannel_host).run(once=True).sent == 1
    again = inline_kannel_host.send(reminder())
    assert again.status is Status.SENT and again.record_ids == first.record_ids
    assert len(http_server.seen) == 2 and status_of(inline_kannel_host, first.record_ids[0]) == "completed"


def test_send_many_says_queued_for_a_send_that_failed_for_now_and_failed_for_one_refused_for_good(
    inline_kannel_host: Host, http_server: ScriptedHTTPServer
) -> None:
    http_server.script(Reply(503, b"busy"), Reply(400, b"Invalid receiver"))
    going, refused = inline_kannel_host.send_many([reminder("r-1"), reminder("r-2", patient="Patient/qc-fr")])
    assert going.status is Status.QUEUED and refused.status is Status.FAILED
    for outcome in (going, refused):
        assert [(f.code, f.severity) for f in outcome.findings] == [("DELIVERY_FAILED", Severity.WARN)]
    again = list(inline_kannel_host.send_many([reminder("r-1"), reminder("r-2", patient="Patient/qc-fr")]))
    assert [o.status for o in again] == [Status.QUEUED, Status.FAILED]
    assert inline_kannel_host.storage.outbox.counts() == {"retry": 1, "dead": 1}


def test_two_workers_never_claim_the_same_row(make_host: Callable[..., Host], clock: Clock) -> None:
    first = make_host(QUEUE)
    for i in range(40):
        first.send(reminder(f"r-{i}"))
    second = Host(first.config, clock=clock)
    try:
        claimed: list[list[str]] = [[], []]
        barrier = threading.Barrier(2)

        def claim(index: int, host: Host) -> None:
            barrier.wait()
            while rows := host.storage.outbox.claim(owner=f"w{index}", now=clock.now,
                                                    lease=dt.timedelta(minutes=1), limit=3):
                claimed[index] += [r.key for r in rows]

        threads = [threading.Thread(target=claim, args=(i, h)) for i, h in enumerate((first, second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(claimed[0]) + len(claimed[1]) == 40
        assert not set(claimed[0]) & set(claimed[1])
    finally:
        second.close()


def let_leases_run_out(host: Host, clock: Clock, seconds: float) -> None:
    """Let a lease of ``seconds`` run out by the clock that times it: the host's on SQLite (moved
    here), the database server's on PostgreSQL (which only waiting moves)."""
    if host.storage.db.dialect == "postgresql":
        time.sleep(seconds)
    else:
        clock.now += dt.timedelta(seconds=seconds)


def test_an_expired_lease_is_taken_over_and_counted(make_host: Callable[..., Host], clock: Clock) -> None:
    host = make_host(QUEUE)
    host.send(reminder())
    [_leased] = host.storage.outbox.claim(owner="dead-worker", now=clock.now, lease=dt.timedelta(seconds=2), limit=5)
    assert worker(host).run(once=True).sent == 0  # still leased
    let_leases_run_out(host, clock, 2.1)
    stats = worker(host).run(once=True)
    assert stats.sent == 1 and stats.taken_over == 1 and len(sink(host)) == 1


def test_a_row_taken_over_past_its_attempts_is_a_dead_letter_not_sent_again(
        make_host: Callable[..., Host], clock: Clock) -> None:
    """Deliverers that never come back (a send that never returns, a worker that keeps dying on
    it): each takeover counts an attempt, and past max_attempts (3 here) the row is not sent again
    every lease, for good, but kept for staff, saying it may have gone."""
    host = make_host(QUEUE)
    [record] = host.send(reminder()).record_ids
    for n in range(3):  # three deliverers that took it and were never heard of again
        [leased] = host.storage.outbox.claim(owner=f"gone-{n}", now=clock.now, lease=dt.timedelta(seconds=2), limit=5)
        let_leases_run_out(host, clock, 2.1)
    assert leased.attempts == 3
    stats = worker(host).run(once=True)
    assert (stats.sent, stats.dead, stats.taken_over, len(sink(host))) == (0, 1, 1, 0)
    [dead] = host.storage.outbox.dead()
    assert dead.key == record and "may have been sent" in (dead.last_error or "")
    assert status_of(host, record) == "not-done"


def test_the_portal_keeps_the_message_when_it_is_written_and_the_worker_sends_its_notice(
        make_host: Callable[..., Host], clock: Clock) -> None:
    """The portal is the encrypted store itself: the message is kept in the transaction that files
    its record, before anything leaves; only the notice waits in the outbox."""
    host = make_host(QUEUE)
    note = Request("Patient/on-en", Category.CLINICAL, id="note-1", sensitivity=Sensitivity.RESTRICTED,
                   text="Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily.")
    outcome = host.send(note)
    assert outcome.status is Status.QUEUED and outcome.channels == ("portal", "sms")
    portal, notice_id = outcome.record_ids
    assert status_of(host, portal) == "completed" and status_of(host, notice_id) == "in-progress"
    assert [item.key for item in host.storage.outbox.for_request("note-1")] == [notice_id]
    stats = worker(host).run(once=True)
    assert stats.sent == 1
    [notice] = sink(host)
    assert "https://portal.riverside.example" in notice["text"] and "{{" not in notice["text"]
    assert "metformin" not in notice["text"]
    assert {status_of(host, r) for r in outcome.record_ids} == {"completed"}


def test_outbox_command_shows_counts_and_dead_letters_and_requeues(
    kannel_host: Host, http_server: ScriptedHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = kannel_host.send(reminder())
    http_server.script(Reply(400, b"Invalid receiver"))
    worker(kannel_host).run(once=True)
    config = str(kannel_host.config.base_dir / "emrcomm.toml")
    assert main(["outbox", "--config", config, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["counts"] == {"dead": 1} and shown["dead"][0]["record_id"] == outcome.record_ids[0]
    assert main(["outbox", "requeue", "--all-dead", "--config", config]) == 0
    assert "requeued 1" in capsys.readouterr().out
    prefix = outcome.record_ids[0][:8]
    assert main(["outbox", "requeue", prefix, "--config", config]) == 2  # a prefix is not an id: bad input
    assert capsys.readouterr().err == (f"emrcomm: error: outbox requeue: no outbox row has the id {prefix} (give it "
                                       "in full, as `emrcomm outbox` lists it)\n")
    # The row it put back is queued, not dead: nothing to requeue, and the answer says why (exit 4).
    state = kannel_host.storage.outbox.get(outcome.record_ids[0]).state
    assert state != "dead"
    assert main(["outbox", "requeue", outcome.record_ids[0], "--config", config, "--json"]) == 4
    assert json.loads(capsys.readouterr().out) == {"requeued": 0, "state": state}


def test_the_worker_files_the_outcome_with_what_was_filed_at_queueing_time(make_host: Callable[..., Host]) -> None:
    host = make_host(QUEUE)
    request = Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-based",
                      text="Riverside Clinic: your appointment is tomorrow at 10:00. Book now and save 20% on "
                           "your next cleaning! Reply STOP to opt out.",
                      appointment=APPOINTMENT, based_on="ServiceRequest/77", sender="Practitioner/9")
    [record] = host.send(request).record_ids
    queued = communication(host, record)
    worker(host).run(once=True)
    filed = communication(host, record)
    assert queued is not None and filed is not None
    assert queued["status"] == "in-progress" and filed["status"] == "completed" and "sent" in filed
    assert filed["basedOn"] == [{"reference": "ServiceRequest/77"}]
    assert filed["sender"] == {"reference": "Practitioner/9"}
    assert [n for n in queued.get("note", []) if n not in filed.get("note", [])] == []
    warned = [n["text"] for n in queued.get("note", []) if "(warn)" in n["text"]]
    assert warned and all({"text": n} in filed["note"] for n in warned)  # the warnings found then


def test_a_stop_after_the_hold_stops_the_held_reminder(make_host: Callable[..., Host], clock: Clock) -> None:
    host = make_host(QUEUE)
    clock.now = dt.datetime(2026, 11, 23, 21, 30, tzinfo=TORONTO)
    outcome = host.send(reminder())
    assert outcome.status is Status.HELD
    clock.now = dt.datetime(2026, 11, 23, 21, 45, tzinfo=TORONTO)
    host.delivery_update(DeliveryUpdate(kind="optout", at=clock.now, channel="sms", address="+16135550123",
                                        text="STOP reply", detail="Patient/on-en"))
    clock.now = dt.datetime(2026, 11, 24, 8, 5, tzinfo=TORONTO)
    stats = worker(host).run(once=True)
    assert stats.sent == 0 and stats.cancelled == 1 and sink(host) == []
    assert host.storage.outbox.counts() == {}  # not sent, and nothing left to send
    resource = communication(host, outcome.record_ids[0])
    assert resource is not None and resource["status"] == "not-done"
    assert "CONSENT_REVOKED" in json.dumps(resource["statusReason"])
    trail = [json.loads(e["entry"]) for e in host.storage.audit.entries()]
    trail = [e for e in trail if e["kind"] == "cancelled"]
    assert trail and "CONSENT_REVOKED" in json.dumps(trail[-1])


def test_the_chart_names_the_opt_out_that_stopped_a_held_reminder(make_host: Callable[..., Host], clock: Clock) -> None:
    host = make_host(QUEUE)
    clock.now = dt.datetime(2026, 11, 23, 21, 30, tzinfo=TORONTO)
    outcome = host.send(reminder())
    clock.now = dt.datetime(2026, 11, 23, 21, 45, tzinfo=TORONTO)
    host.delivery_update(DeliveryUpdate(kind="optout", at=clock.now, channel="sms", address="+16135550123",
                                        text="ARRÊT reply", detail="Patient/on-en"))
    clock.now = dt.datetime(2026, 11, 24, 8, 5, tzinfo=TORONTO)
    worker(host).run(once=True)
    resource = communication(host, outcome.record_ids[0])
    assert resource is not None
    assert resource["statusReason"]["text"] == "The patient withdrew consent for sms (ARRÊT reply)."


def test_a_queued_row_is_not_sent_after_stop_but_the_confirmation_is(
    make_host: Callable[..., Host], clock: Clock
) -> None:
    host = make_host(QUEUE)
    host.send(reminder("r-0"))
    assert worker(host).run(once=True).sent == 1  # the message the patient answers
    outcome = host.send(reminder())
    assert outcome.status is Status.QUEUED
    clock.now += dt.timedelta(minutes=5)
    host.delivery_update(DeliveryUpdate(kind="reply", at=host.clock(), channel="sms", address="+16135550123",
                                        text="STOP", provider_id="mo-1"))
    stats = worker(host).run(once=True)
    assert stats.sent == 1 and stats.cancelled == 1
    [_first, confirmation] = sink(host)  # the confirmation goes by SMS although SMS is revoked
    assert "no longer receive" in confirmation["text"]
    assert status_of(host, outcome.record_ids[0]) == "not-done"


def test_a_start_confirmation_still_queued_when_the_patient_stops_again_is_not_sent(
    make_host: Callable[..., Host], clock: Clock
) -> None:
    """STOP, START, STOP before the worker ran: the patient is out, and the last words they read
    are that they are out (one confirmation of the last STOP), never "you will receive our text
    messages again" nor the confirmation of the STOP their START ended."""
    host = make_host(QUEUE)
    host.send(reminder("r-0"))
    assert worker(host).run(once=True).sent == 1  # the message the patient answers
    said = {}
    for n, words in enumerate(["STOP", "START", "STOP"], start=1):
        clock.now += dt.timedelta(minutes=1)
        said[n] = host.clock()
        host.delivery_update(DeliveryUpdate(kind="reply", at=said[n], channel="sms", address="+16135550123",
                                            text=words, provider_id=f"mo-{n}"))
    clock.now += dt.timedelta(minutes=1)
    stats = worker(host).run(once=True)
    assert stats.sent == 1 and stats.cancelled == 2
    [_reminder, confirmation] = sink(host)
    assert "no longer receive" in confirmation["text"]
    assert host.storage.outbox.counts() == {}
    # the confirmation that went answers the last STOP
    [sent] = [r for r in host.storage.records.find(category="optout-confirmation") if r.status == "completed"]
    assert sent.in_response_to is not None
    answered = host.record(sent.in_response_to.removeprefix("Communication/"))
    assert answered is not None and answered.sent == said[3]


def counted_sends(host: Host, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every call of the SMS transport's send from now on (it still sends)."""
    transport = host.channels["sms"].transport
    real_send, sends = transport.send, []

    def counted(*args: Any) -> Any:
        sends.append(args)
        return real_send(*args)

    monkeypatch.setattr(transport, "send", counted)
    return sends


@pytest.mark.parametrize("failures", [1, 99])
def test_an_error_after_the_send_never_sends_the_message_again(
    make_host: Callable[..., Host], clock: Clock, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    host = make_host(QUEUE + "lease_seconds = 0.5\n")  # the recording is tried again while the lease holds
    outcome = host.send(reminder())
    records = host.storage.records
    real_append = records.append
    left = [failures]

    def locked(event: Any) -> Any:
        if left[0] > 0 and event.kind.value == "accepted":
            left[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real_append(event)

    monkeypatch.setattr(records, "append", locked)
    sends = counted_sends(host, monkeypatch)
    w = worker(host)
    w.run(once=True)
    clock.now += dt.timedelta(hours=2)
    w.run(once=True)
    assert len(sends) == 1 and len(sink(host)) == 1
    assert host.storage.outbox.counts() == {} and w.stats.retried == 0
    if failures == 1:  # the bookkeeping is done again, whole, and audited once
        assert status_of(host, outcome.record_ids[0]) == "completed"
        kinds = [json.loads(e["entry"]).get("kind") for e in host.storage.audit.entries()]
        assert kinds.count("sent") == 1, kinds


def test_a_store_that_cannot_be_written_for_a_moment_after_the_send_never_sends_the_message_again(
    make_host: Callable[..., Host], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk freed a second later: the worker keeps trying to record the message that left
    while its lease holds, rather than leaving the row to be taken over and sent again."""
    host = make_host(QUEUE)
    outcome = host.send(reminder())
    outbox = host.storage.outbox
    real_finish, left = outbox.finish, [6]  # more failures than the three tries there used to be

    def full(*args: Any, **kwargs: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(outbox, "finish", full)
    sends = counted_sends(host, monkeypatch)
    w = worker(host)
    w.run(once=True)
    clock.now += dt.timedelta(hours=2)  # any lease has run out: a row left 'sending' is taken over
    w.run(once=True)
    assert len(sends) == 1 and w.stats.taken_over == 0
    assert host.storage.outbox.counts() == {} and status_of(host, outcome.record_ids[0]) == "completed"


def test_a_message_sent_while_the_database_was_away_is_never_settled_without_its_record(
    make_host: Callable[..., Host], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away after the send and is back only once the lease has run out, just
    as the record's last try failed (test_pg_restart met it): the row is not ended alone, which
    would leave the record 'queued' for a message the patient had. It stays leased, is taken
    over and sent again with the same key (the in-flight window), and the record says sent."""
    from emrcomm.storage import StoreUnavailable

    host = make_host(QUEUE + "lease_seconds = 0.5\n")
    outcome = host.send(reminder())
    records = host.storage.records
    real_append = records.append

    def away_after_the_first_send(event: Any) -> Any:
        if len(sends) == 1 and event.kind.value == "accepted":
            raise StoreUnavailable("the database server cannot be reached")
        return real_append(event)  # the row's end alone, after the last try, is durable

    monkeypatch.setattr(records, "append", away_after_the_first_send)
    sends = counted_sends(host, monkeypatch)
    w = worker(host)
    w.run(once=True)
    clock.now += dt.timedelta(hours=2)  # the lease has run out (on PostgreSQL by the server's
    time.sleep(0.5)                      # clock: it may already have been taken over above)
    w.run(once=True)
    assert len(sends) == 2 and w.stats.taken_over == 1 and w.stats.sent == 1
    assert host.storage.outbox.counts() == {} and status_of(host, outcome.record_ids[0]) == "completed"


def test_a_message_sent_inline_while_the_database_was_away_is_recorded_once_it_is_back(
    make_host: Callable[..., Host], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller of send stops waiting after seconds and is told the store is away; the host
    keeps trying while the row's lease holds (minutes inline), and a database back within it
    takes the record: the message is not sent again when the lease would have run out."""
    import emrcomm.pipeline.deliver
    from emrcomm.storage import StoreUnavailable

    monkeypatch.setattr(emrcomm.pipeline.deliver, "OUTAGE_RECORD_WAIT", 0.2)  # the caller's wait, cut short
    host = make_host()
    host.late_records.pause = 0.05
    records = host.storage.records
    real_append = records.append
    away = threading.Event()
    away.set()

    def away_while_set(event: Any) -> Any:
        if away.is_set() and event.kind.value == "accepted":
            raise StoreUnavailable("the database server cannot be reached")
        return real_append(event)

    monkeypatch.setattr(records, "append", away_while_set)
    sends = counted_sends(host, monkeypatch)
    with pytest.raises(StoreUnavailable):
        host.send(reminder())
    [record] = records.for_request("r-1")
    assert len(sends) == 1 and host.late_records.waiting() == 1 and status_of(host, record.id) == "in-progress"
    away.clear()  # the database is back
    deadline = time.monotonic() + 30
    while host.late_records.waiting() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert status_of(host, record.id) == "completed" and host.storage.outbox.counts() == {}
    clock.now += dt.timedelta(hours=2)  # past the inline lease: nothing left to take over
    worker(host).run(once=True)
    assert len(sends) == 1


def test_a_worker_error_gives_up_through_the_dead_letter_path(
    make_host: Callable[..., Host], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emrcomm.pipeline.deliver

    host = make_host(QUEUE)
    note = Request("Patient/on-en", Category.CLINICAL, id="note-1", sensitivity=Sensitivity.RESTRICTED,
                   text="Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily.")
    outcome = host.send(note)
    assert outcome.channels == ("portal", "sms")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("render failed")

    monkeypatch.setattr(emrcomm.pipeline.deliver, "message_for", broken)
    w = worker(host)
    for _ in range(3):
        w.run(once=True)
        clock.now += dt.timedelta(seconds=61)
    assert w.stats.retried == 2 and w.stats.dead == 1 and sink(host) == []
    assert host.storage.outbox.counts() == {"dead": 1}  # the notice does not wait forever
    resource = communication(host, outcome.record_ids[1])
    assert resource is not None and resource["status"] == "not-done"
    assert "DELIVERY_FAILED" in json.dumps(resource["statusReason"])
    # the message waits in the portal, but nobody could tell the patient: the chart says so, and
    # staff are asked to follow the notice up and to tell the patient
    message = communication(host, outcome.record_ids[0])
    assert message is not None and message["status"] == "in-progress"
    assert "PATIENT_NOT_TOLD" in json.dumps(message["statusReason"])
    items = {item["kind"]: item for item in host.storage.inbox.items()}
    assert set(items) == {"follow-up", "unannounced"}
    assert "DELIVERY_FAILED" in items["follow-up"]["reason"]


@pytest.mark.parametrize("asked", ["1000000000000", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_a_retry_after_beyond_reason_reschedules_within_the_bound(
    kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock, asked: str
) -> None:
    """A provider asking for decades (or more seconds than a datetime can hold) neither crashes the
    worker nor loses the row: it is retried within an hour (the larger of backoff_cap and 1 h)."""
    kannel_host.send(reminder())
    http_server.script(Reply(429, b"slow down", headers=(("Retry-After", asked),)))
    assert worker(kannel_host).run(once=True).retried == 1
    [row] = kannel_host.storage.db.query("SELECT state, not_before FROM outbox")
    assert row["state"] == "retry"
    assert dt.datetime.fromisoformat(row["not_before"]) == clock.now + dt.timedelta(hours=1)


def test_a_providers_words_stay_out_of_the_log(
    kannel_host: Host, http_server: ScriptedHTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The log says the record, the status and the error; what the gateway said (which may echo
    the message) is kept for staff in the outbox only."""
    kannel_host.send(reminder())
    http_server.script(Reply(503, b"Queue full for message: Alex, your appointment is Tue, Dec 8 at 10:30"))
    caplog.set_level(logging.DEBUG)
    assert worker(kannel_host).run(once=True).retried == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "503" in logged and "server-error" in logged
    for private in ("Alex", "Queue full", "Dec 8 at 10:30"):  # its words (the category is an id)
        assert private not in logged
    [row] = kannel_host.storage.db.query("SELECT last_error FROM outbox")
    assert "Queue full for message" in row["last_error"]


def test_a_secret_the_provider_echoes_is_masked_for_staff(
    kannel_host: Host, http_server: ScriptedHTTPServer
) -> None:
    kannel_host.send(reminder())
    http_server.script(Reply(400, b"Bad request: username=emrcomm&password=pw-1 refused"))
    assert worker(kannel_host).run(once=True).dead == 1
    [dead] = kannel_host.storage.outbox.dead()
    assert dead.last_error is not None and "pw-1" not in dead.last_error
    assert "Bad request" in dead.last_error and "password=***" in dead.last_error


# Quiet hours again as a row leaves (QUIET_HOURS, docs/rules.md) -----------------------------------

def toronto(hour: int, minute: int = 0, second: int = 0, day: int = 23) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=TORONTO)


def outbox_row(host: Host) -> Any:
    [row] = host.storage.db.query("SELECT state, attempts, not_before, last_error FROM outbox")
    return row


def test_a_retry_whose_backoff_ends_at_night_waits_for_the_window_to_open(
    kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock
) -> None:
    clock.now = toronto(20, 55)
    outcome = kannel_host.send(reminder())
    assert outcome.status is Status.QUEUED
    http_server.script(Reply(429, b"slow down", headers=(("Retry-After", "600"),)))  # 21:05: the window has shut
    w = worker(kannel_host)
    assert w.run(once=True).retried == 1
    row = outbox_row(kannel_host)
    assert row["state"] == "retry" and dt.datetime.fromisoformat(row["not_before"]) == toronto(8, day=24)
    for step in (toronto(21, 30), toronto(2, day=24), toronto(7, 59, day=24)):
        clock.now = step
        assert w.run(once=True).sent == 0
    assert len(http_server.seen) == 1
    clock.now = toronto(8, day=24)
    assert w.run(once=True).sent == 1
    assert len(http_server.seen) == 2 and status_of(kannel_host, outcome.record_ids[0]) == "completed"


def dead_letter_at_eight_pm(host: Host, http_server: ScriptedHTTPServer, clock: Clock, request: Request) -> str:
    clock.now = toronto(20, 0)
    [record_id] = host.send(request).record_ids
    http_server.script(*[Reply(500, b"down")] * 3)
    w = worker(host)
    for _ in range(3):
        w.run(once=True)
        clock.now += dt.timedelta(seconds=61)
    assert w.stats.dead == 1
    return record_id


def test_a_dead_letter_requeued_at_night_is_held_until_eight_and_reads_on_hold(
    kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock
) -> None:
    record_id = dead_letter_at_eight_pm(kannel_host, http_server, clock, reminder())
    clock.now = toronto(23, 0)
    assert kannel_host.requeue() == 1
    clock.now = toronto(23, 0, 30)
    w = worker(kannel_host)
    stats = w.run(once=True)
    assert (stats.sent, stats.held) == (0, 1) and len(http_server.seen) == 3
    row = outbox_row(kannel_host)
    assert (row["state"], row["attempts"]) == ("held", 0)
    assert dt.datetime.fromisoformat(row["not_before"]) == toronto(8, day=24)
    resource = communication(kannel_host, record_id)
    assert resource is not None and resource["status"] == "on-hold"
    assert "QUIET_HOURS" in json.dumps(resource["statusReason"])
    record = kannel_host.record(record_id)
    assert record is not None and record.hold_until == toronto(8, day=24)
    clock.now = toronto(7, 59, day=24)
    assert w.run(once=True).sent == 0 and len(http_server.seen) == 3
    clock.now = toronto(8, day=24)
    assert w.run(once=True).sent == 1
    assert len(http_server.seen) == 4 and status_of(kannel_host, record_id) == "completed"


def test_a_held_row_that_fails_again_when_the_window_opens_reads_retrying_not_on_hold(
    kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock
) -> None:
    """The hold ended when the window opened and the row was tried: a failure then is a retry in
    progress, not "on hold until 08:00" for good."""
    record_id = dead_letter_at_eight_pm(kannel_host, http_server, clock, reminder())
    clock.now = toronto(23, 0)
    assert kannel_host.requeue() == 1
    clock.now = toronto(23, 0, 30)
    w = worker(kannel_host)
    assert w.run(once=True).held == 1 and status_of(kannel_host, record_id) == "on-hold"
    http_server.script(Reply(500, b"down"))
    clock.now = toronto(8, day=24)
    assert w.run(once=True).retried == 1
    resource = communication(kannel_host, record_id)
    assert resource is not None and resource["status"] == "in-progress", resource
    record = kannel_host.record(record_id)
    assert record is not None and record.hold_until is None
    clock.now = toronto(9, day=24)
    assert w.run(once=True).sent == 1 and status_of(kannel_host, record_id) == "completed"


def test_a_dead_letter_requeued_at_night_that_expires_before_eight_expires_unsent(
    kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock
) -> None:
    record_id = dead_letter_at_eight_pm(kannel_host, http_server, clock, reminder(expires=toronto(23, 30)))
    clock.now = toronto(23, 0)
    assert kannel_host.requeue() == 1
    clock.now = toronto(23, 0, 30)
    stats = worker(kannel_host).run(once=True)
    assert (stats.sent, stats.held, stats.expired) == (0, 0, 1) and len(http_server.seen) == 3
    assert kannel_host.storage.outbox.counts() == {}
    resource = communication(kannel_host, record_id)
    assert resource is not None and resource["status"] == "not-done"
    assert "MESSAGE_EXPIRED" in json.dumps(resource["statusReason"])


def test_a_requeued_row_that_expires_at_the_same_instant_reads_expired_not_queued(
    kannel_host: Host, http_server: ScriptedHTTPServer, clock: Clock
) -> None:
    """Requeued and found expired by the same clock reading (a clock that does not move between
    the two, as a coarse one does): the expiry comes after the requeue, so the record says
    expired; it read "queued" with no row left to send it."""
    record_id = dead_letter_at_eight_pm(kannel_host, http_server, clock, reminder(expires=toronto(21, 0)))
    clock.now = toronto(23, 0)
    assert kannel_host.requeue() == 1
    stats = worker(kannel_host).run(once=True)
    assert (stats.sent, stats.expired) == (0, 1) and kannel_host.storage.outbox.counts() == {}
    resource = communication(kannel_host, record_id)
    assert resource is not None and resource["status"] == "not-done"
    assert "MESSAGE_EXPIRED" in json.dumps(resource["statusReason"])
    # the events' times keep the order they were written in
    assert [e.kind.value for e in kannel_host.storage.records.events(record_id)][-2:] == ["requeued", "expired"]


def test_a_row_taken_over_at_night_is_held_not_sent(make_host: Callable[..., Host], clock: Clock) -> None:
    host = make_host(QUEUE)
    clock.now = toronto(20, 59)
    [record_id] = host.send(reminder()).record_ids
    [_leased] = host.storage.outbox.claim(owner="dead-worker", now=clock.now, lease=dt.timedelta(seconds=2), limit=5)
    clock.now = toronto(21, 30)
    let_leases_run_out(host, clock, 2.1)
    stats = worker(host).run(once=True)
    assert (stats.sent, stats.taken_over, stats.held) == (0, 1, 1) and sink(host) == []
    row = outbox_row(host)
    assert (row["state"], row["attempts"]) == ("held", 1)  # the takeover's attempt given back; the mark kept
    assert dt.datetime.fromisoformat(row["not_before"]) == toronto(8, day=24)
    assert status_of(host, record_id) == "on-hold"
    clock.now = toronto(8, day=24)
    assert worker(host).run(once=True).sent == 1 and len(sink(host)) == 1
    assert status_of(host, record_id) == "completed"


def as_payload_v2(host: Host) -> None:
    """The row as 0.2 wrote it: no sending window kept."""
    [row] = host.storage.db.query("SELECT key, payload FROM outbox")
    old = {k: v for k, v in json.loads(row["payload"]).items() if k != "window"}
    host.storage.db.execute("UPDATE outbox SET payload = ? WHERE key = ?", (json.dumps({**old, "v": 2}), row["key"]))


def test_a_row_queued_by_0_2_is_read_and_its_window_asked_again_as_it_leaves(
        make_host: Callable[..., Host], clock: Clock) -> None:
    host = make_host(QUEUE)
    [record_id] = host.send(reminder()).record_ids  # 10:00: queued
    as_payload_v2(host)
    assert host.storage.outbox.get(record_id) is not None  # read, not refused
    clock.now = toronto(23, 0)  # a worker that was down all day, started at night
    stats = worker(host).run(once=True)
    assert (stats.sent, stats.held) == (0, 1) and sink(host) == []
    assert dt.datetime.fromisoformat(outbox_row(host)["not_before"]) == toronto(8, day=24)
    clock.now = toronto(8, day=24)
    assert worker(host).run(once=True).sent == 1 and status_of(host, record_id) == "completed"


def test_a_row_queued_by_0_2_whose_patient_is_not_found_again_keeps_the_narrowest_window(
        make_host: Callable[..., Host], clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    host = make_host(QUEUE)
    [record_id] = host.send(reminder()).record_ids
    as_payload_v2(host)
    monkeypatch.setattr(host.plugins, "find_recipient", lambda request: None)
    clock.now = toronto(20, 30)  # inside the clinic's 08:00–21:00, outside 08:00–20:00: held, fail closed
    assert worker(host).run(once=True).held == 1 and sink(host) == []
    assert dt.datetime.fromisoformat(outbox_row(host)["not_before"]) == toronto(8, day=24)
    assert status_of(host, record_id) == "on-hold"


def test_an_inline_send_whose_window_shut_after_the_decision_is_held_not_sent(
        make_host: Callable[..., Host], clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A decision on the stroke of the window's end, the send a moment later: the inline caller
    hears held, and the worker sends it when the window opens."""
    from emrcomm import SendingWindow

    class Ticking(Clock):  # a real clock moves between the decision and the send
        def __call__(self) -> dt.datetime:
            self.now += dt.timedelta(microseconds=1)
            return self.now

    clock = Ticking(clock.now)
    host = make_host(clock=clock)
    shut = SendingWindow(dt.time(8, 0), dt.time(9, 0), ("America/Toronto",))  # 10:00: shut since 09:00
    monkeypatch.setattr(host.plugins, "sending_window", lambda message, recipient, channel: shut)
    outcome = host.send(reminder())
    assert outcome.status is Status.HELD and sink(host) == []
    assert dt.datetime.fromisoformat(outbox_row(host)["not_before"]) == toronto(8, day=24)
    assert status_of(host, outcome.record_ids[0]) == "on-hold"
    clock.now = toronto(8, day=24)
    assert worker(host).run(once=True).sent == 1 and len(sink(host)) == 1
