"""Delivery callbacks in the ASGI app: authenticated Kannel and Twilio callbacks become delivery
updates and inbound keywords (docs/rule-catalogue.md B); anything unauthenticated is refused with 403."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from conftest import Clock
from emrcomm.clock import VARIABLE, shift_to
from emrcomm.host import Host
from emrcomm.lifecycle.events import Event, Source
from emrcomm.lifecycle.states import LegState
from emrcomm.model import DeliveryUpdate, Status
from emrcomm_sms.callbacks import mo_token, record_signature
from emrcomm_sms.routes import twilio_signature
from portal_kit import running_server
from support import BASE_CONFIG, communication
from test_worker import reminder
from test_worker_unreadable import corrupt_record, facts_of, newer_category, store_facts

SECRET = "callback-secret-5d1e"
TOKEN = "twilio-test-token-7f3a"
NUMBER = "+16135550123"  # Patient/on-en
BASE = "https://emrcomm.clinic.example/callbacks"
EMRCOMM = Path(sys.executable).with_name("emrcomm")


def sms_lines(host: Host) -> list[dict[str, str]]:
    path = host.config.base_dir / "out" / "sms.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def config_with(sms: str, tmp_path: Path) -> str:
    (tmp_path / "callback-secret").write_text(SECRET, encoding="utf-8")
    (tmp_path / "twilio-token").write_text(TOKEN, encoding="utf-8")
    return BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', sms)


@pytest.fixture
def host(make_host: Callable[..., Host], tmp_path: Path) -> Host:
    return make_host(config_text=config_with(f"""
[plugins.sms]
path = "out/sms.jsonl"
callback_url = "{BASE}"
callback_secret = {{file = "{tmp_path / 'callback-secret'}"}}
""", tmp_path))


class Client:
    """requests against ``emrcomm serve``'s app running under uvicorn on 127.0.0.1."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()

    def get(self, path: str, params: dict[str, str]) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=30)

    def post(self, path: str, data: dict[str, str], headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.post(self.base + path, data=data, headers=headers or {}, timeout=30)


@pytest.fixture
def client(host: Host) -> Iterator[Client]:
    with running_server(host) as base:
        yield Client(base.rstrip("/"))


def dlr(client: Client, record: str, dlr_type: int, sig: str | None = None, part: str = "") -> requests.Response:
    return client.get("/callbacks/kannel/dlr", params={
        "record": record, "sig": record_signature(SECRET, record) if sig is None else sig,
        "type": str(dlr_type), "answer": "ACK/", "at": "2026-11-23 10:00:00", "smsc_id": part})


def mo(client: Client, text: str, msg_id: str, token: str | None = None, sender: str = NUMBER) -> requests.Response:
    return client.get("/callbacks/kannel/mo", params={
        "token": mo_token(SECRET) if token is None else token, "from": sender, "to": "+16135550100",
        "text": text, "id": msg_id})


def test_kannel_delivery_report_without_a_valid_signature_is_refused(host: Host, client: Client) -> None:
    [record] = host.send(reminder()).record_ids
    assert client.get("/callbacks/kannel/dlr", params={"record": record, "type": "1"}).status_code == 403
    assert dlr(client, record, 1, sig="0" * 64).status_code == 403
    assert dlr(client, "another-record", 1, sig=record_signature(SECRET, record)).status_code == 403
    resource = communication(host, record)
    assert resource is not None and not any(n["text"].startswith("delivered") for n in resource.get("note", []))


def test_kannel_delivery_report_updates_the_record(host: Host, client: Client) -> None:
    [record] = host.send(reminder()).record_ids
    assert dlr(client, record, 8, part="p1").status_code == 200  # accepted by the SMSC: no change yet
    assert dlr(client, record, 1, part="p1").status_code == 200
    resource = communication(host, record)
    assert resource is not None and any(n["text"].startswith("delivered") for n in resource["note"])


@pytest.mark.parametrize("order", [(2, 1), (1, 2)], ids=["failed-first", "delivered-first"])
def test_delivered_outranks_failed_whatever_order_the_reports_come_in(host: Host, client: Client,
                                                                     order: tuple[int, int]) -> None:
    """The handset has the message once the provider says so: a "failed" for it, before (a
    report about an earlier try, arriving late) or after (a replay), is recorded and moves nothing."""
    [record] = host.send(reminder()).record_ids
    for dlr_type in order:
        assert dlr(client, record, dlr_type).status_code == 200
    resource = communication(host, record)
    assert resource is not None and resource["status"] == "completed" and "statusReason" not in resource
    assert any(n["text"].startswith("delivered") for n in resource["note"])
    assert [e.kind.value for e in host.storage.records.events(record)][-2:] == \
        [{1: "delivered", 2: "failed"}[t] for t in order]  # both recorded


def test_a_signed_report_url_replayed_with_its_type_written_otherwise_adds_nothing(host: Host,
                                                                                 client: Client) -> None:
    """The signature covers the record, not the type Kannel writes in: "01", "+1" or a type of
    4,000 digits are not other reports to keep (each would be an event, and a notification)."""
    [record] = host.send(reminder()).record_ids
    before = len(host.storage.records.events(record))
    sig = record_signature(SECRET, record)
    for written in ("01", "+1", " 1", "1 ", "1.0", "٣", "0", "32", "1" * 4000, ""):
        answer = client.get("/callbacks/kannel/dlr", params={"record": record, "sig": sig, "type": written})
        assert answer.status_code == 400, written
    assert len(host.storage.records.events(record)) == before
    assert dlr(client, record, 1).status_code == 200
    assert dlr(client, record, 1).status_code == 200  # a retry of the same report
    assert [e.kind.value for e in host.storage.records.events(record)[before:]] == ["delivered"]


def test_a_report_for_a_record_id_longer_than_any_is_refused_unread(host: Host, client: Client) -> None:
    long = "r" * 129
    assert dlr(client, long, 1, sig=record_signature(SECRET, long)).status_code == 400
    assert dlr(client, "r" * 128, 1, sig=record_signature(SECRET, "r" * 128)).status_code == 200  # unknown: kept


def test_kannel_mo_without_the_token_is_refused_and_changes_nothing(host: Host, client: Client) -> None:
    host.send(reminder())
    assert mo(client, "STOP", "mo-1", token="nope").status_code == 403
    assert host.storage.consent.events(channel="sms", address=NUMBER) == []


def test_stop_updates_the_ledger_blocks_the_next_sms_and_is_confirmed_exactly_once(
    host: Host, client: Client
) -> None:
    host.send(reminder("r-1"))
    assert mo(client, "Arrêt", "mo-1").status_code == 200
    assert mo(client, "STOP", "mo-2").status_code == 200  # a second STOP: no second confirmation
    assert mo(client, "Arrêt", "mo-1").status_code == 200  # Kannel retrying the callback
    events = host.storage.consent.events(channel="sms", address=NUMBER)
    assert events and events[-1].revokes
    confirmations = [x for x in sms_lines(host) if "no longer receive" in x["text"]]
    assert len(confirmations) == 1
    before = len(sms_lines(host))
    outcome = host.send(reminder("r-2"))
    assert "sms" not in outcome.channels and len(sms_lines(host)) == before


def test_start_re_subscribes(host: Host, client: Client) -> None:
    host.send(reminder("r-1"))
    mo(client, "STOP", "mo-1")
    mo(client, "start", "mo-2")
    outcome = host.send(reminder("r-2"))
    assert outcome.status is Status.SENT and outcome.channels == ("sms",)


def mo_without_id(client: Client, text: str, received: str | None) -> requests.Response:
    """A message as a get-url without ``id=%I`` brings it (an earlier release's), with ``time=%T``
    or without."""
    return client.get("/callbacks/kannel/mo", params={
        "token": mo_token(SECRET), "from": NUMBER, "to": "+16135550100", "text": text,
        **({"time": received} if received is not None else {})})


def patient_messages(host: Host) -> list[dict[str, Any]]:
    return [e["resource"] for e in host.records(patient="Patient/on-en")["entry"]
            if e["resource"].get("sender") == {"reference": "Patient/on-en"}]


def test_a_kannel_message_without_its_id_is_filed_once_however_often_smsbox_sends_it(
    host: Host, client: Client, clock: Clock
) -> None:
    """smsbox repeats %T, the time Kannel received the message, on every retry: the sender, the
    words and that time make the message's id. The same words a minute later are a second message."""
    host.send(reminder())
    assert mo_without_id(client, "Can I come at 10 instead?", "1795514400").status_code == 200
    clock.now += dt.timedelta(seconds=10)  # smsbox's http-queue-delay
    assert mo_without_id(client, "Can I come at 10 instead?", "1795514400").status_code == 200
    assert len(patient_messages(host)) == 1
    clock.now += dt.timedelta(seconds=50)
    assert mo_without_id(client, "Can I come at 10 instead?", "1795514460").status_code == 200
    assert len(patient_messages(host)) == 2


def test_the_id_made_for_a_kannel_message_without_one_cannot_be_recomputed_from_the_number_and_words(
    host: Host, client: Client
) -> None:
    """The id reaches the audit log beside the entry's time: a bare SHA-256 of the sender, the
    receiver, %T and "STOP" would give the patient's number back to whoever hashes every number."""
    import hashlib

    from emrcomm.audit import entries

    host.send(reminder())
    assert mo_without_id(client, "STOP", "1795514400").status_code == 200
    ids = {e["provider_id"] for e in entries(host.storage) if str(e.get("provider_id", "")).startswith("kannel-mo-")}
    assert len(ids) == 1
    bare = hashlib.sha256("\x1f".join((NUMBER, "+16135550100", "1795514400", "STOP")).encode()).hexdigest()[:32]
    assert ids != {f"kannel-mo-{bare}"}


def test_a_kannel_start_retried_late_without_its_id_does_not_undo_a_later_stop(host: Host, client: Client,
                                                                               clock: Clock) -> None:
    host.send(reminder())
    mo(client, "STOP", "mo-1")
    mo_without_id(client, "START", "1795514400")
    clock.now += dt.timedelta(seconds=5)
    mo_without_id(client, "STOP", "1795514405")
    clock.now += dt.timedelta(seconds=10)
    mo_without_id(client, "START", "1795514400")  # smsbox sending the START again, late
    assert host.storage.consent.last(channel="sms", address=NUMBER).revokes  # type: ignore[union-attr]


def test_a_time_that_is_not_kannels_is_refused(host: Host, client: Client) -> None:
    for written in ("2026-11-24 10:00", "-1", "1" * 13, "١٧٩٥"):
        assert mo_without_id(client, "STOP", written).status_code == 400, written
    assert host.storage.consent.events(channel="sms", address=NUMBER) == []


def test_a_get_url_without_id_or_time_is_named_once_in_the_log_without_the_number_or_words(
    host: Host, client: Client, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    host.send(reminder())
    with caplog.at_level(logging.WARNING):
        for text in ("Can I come at 10 instead?", "Thanks"):
            assert mo_without_id(client, text, None).status_code == 200
            clock.now += dt.timedelta(seconds=30)
    [warning] = [r.getMessage() for r in caplog.records if "get-url" in r.getMessage()]
    assert "id=%I" in warning and "kannel_mo_url" in warning
    assert NUMBER not in caplog.text and "6135550123" not in caplog.text and "Thanks" not in caplog.text
    assert len(patient_messages(host)) == 2  # nothing lost


def front_desk_revokes(host: Host, purpose: str | None) -> None:
    """The front desk records that the patient withdrew SMS consent (for ``purpose``), as
    ``emrcomm consent revoke`` and POST /fhir/Consent do."""
    from emrcomm.api import consent

    resource = consent.front_desk(patient="Patient/on-en", channel="sms", action="revoke", staff="J. Tremblay",
                                  how="in person", purpose=purpose)
    consent.record(host, consent.entries(host, resource, client="front-desk"))


@pytest.mark.parametrize("stop", ["STOP", "Arrêt"])
def test_start_lifts_the_stop_and_not_a_revocation_the_front_desk_recorded(host: Host, client: Client,
                                                                          stop: str) -> None:
    """START undoes what the texted keywords did: no appointment reminders by text, as the
    patient told the front desk, stays so until staff lift it."""
    host.send(reminder("r-1"))
    front_desk_revokes(host, "clinical")
    mo(client, stop, "mo-1")
    mo(client, "START", "mo-2")
    held = host.send(reminder("r-2"))
    assert "sms" not in held.channels
    assert any(f.code == "CONSENT_REVOKED" and "J. Tremblay" in f.message for f in held.findings)
    assert not [x for x in sms_lines(host) if "receive our text messages again" in x["text"]]  # nothing lifted
    # the other purposes are back on: the STOP, which covered them, is undone
    assert not host.storage.consent.last(channel="sms", address=NUMBER, purpose="billing").revokes  # type: ignore[union-attr]
    # staff lift it, and the reminders go again
    from emrcomm.api import consent
    consent.record(host, consent.entries(host, consent.front_desk(
        patient="Patient/on-en", channel="sms", action="grant", staff="J. Tremblay", how="by phone",
        purpose="clinical"), client="front-desk"))
    assert host.send(reminder("r-3")).channels == ("sms",)


def test_start_lifts_the_stop_whatever_the_front_desk_holds_for_another_purpose(host: Host, client: Client) -> None:
    host.send(reminder("r-1"))
    front_desk_revokes(host, "billing")
    mo(client, "STOP", "mo-1")
    assert "sms" not in host.send(reminder("r-2")).channels
    mo(client, "START", "mo-2")
    assert host.send(reminder("r-3")).channels == ("sms",)
    assert [x for x in sms_lines(host) if "receive our text messages again" in x["text"]]
    last = host.storage.consent.last(channel="sms", address=NUMBER, purpose="billing")
    assert last is not None and last.revokes and "J. Tremblay" in last.source  # still withdrawn


def test_start_does_not_lift_a_front_desk_revocation_of_every_purpose(host: Host, client: Client) -> None:
    host.send(reminder("r-1"))
    front_desk_revokes(host, None)
    mo(client, "START", "mo-1")
    mo(client, "START", "mo-1")  # Kannel retrying it: still nothing written
    outcome = host.send(reminder("r-2"))
    assert "sms" not in outcome.channels
    assert [e.action for e in host.storage.consent.events(channel="sms", address=NUMBER)] == ["revoke"]


def test_a_front_desk_consent_is_answered_with_its_own_entry_when_a_stop_lands_just_after_it(
    host: Host, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the front desk recorded is found by what it says, not as the address's last entry: a
    STOP committed just after a grant made it answer 500 ("the ledger did not take the entry"),
    and just after a revocation gave the STOP's number as the Consent's."""
    from emrcomm.api import consent

    optout = host.plugins.get("optout")
    real = optout._write

    def then_a_stop(update: DeliveryUpdate, kind: str, source: str, purpose: str | None = None) -> int:
        seq = real(update, kind, source, purpose)
        host.storage.consent.add(patient="Patient/on-en", channel="sms", address=NUMBER, purpose=None,
                                 action="revoke", at=clock(), source="STOP reply")
        return seq

    monkeypatch.setattr(optout, "_write", then_a_stop)
    for action in ("grant", "revoke"):
        found = consent.entries(host, consent.front_desk(patient="Patient/on-en", channel="sms", action=action,
                                                         staff="J. Tremblay", how="in person"), client="front-desk")
        [seq] = consent.record(host, found)
        [entry] = [e for e in host.storage.consent.events(channel="sms", address=NUMBER) if e.seq == seq]
        assert (entry.action, entry.source) == (action, "front desk, in person, recorded by J. Tremblay")


def waiting_on_the_address_lock(host: Host) -> bool:
    """Whether a backend of the test's database waits for the consent ledger's advisory lock on
    NUMBER (pg_locks gives a 64-bit key as its two halves)."""
    from emrcomm.storage.consent import lock_key

    key = lock_key("sms", NUMBER) & 0xFFFF_FFFF_FFFF_FFFF
    return bool(host.storage.db.query(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid::bigint = ? AND objid::bigint = ?", (key >> 32, key & 0xFFFF_FFFF)))


def test_a_start_waits_for_a_front_desk_revocation_being_written_and_does_not_lift_it(
    host: Host, clock: Clock, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The front desk's revocation of every purpose is being written (its transaction open) when
    the patient's START comes: the START waits for it, then reads it, and lifts nothing. Read
    before the revocation committed, it granted every purpose after it: the START overrode the
    front desk."""
    import threading
    import time

    import emrcomm.storage.sqlite
    from support import open_store

    host.send(reminder("r-1"))
    host.delivery_update(DeliveryUpdate(kind="reply", at=clock(), channel="sms", address=NUMBER, text="STOP",
                                        provider_id="kannel-mo-1"))
    waits = threading.Event()  # SQLite: the START's BEGIN IMMEDIATE found the write lock taken

    class Watched:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            if threading.current_thread() is start:
                waits.set()
            time.sleep(seconds)

    monkeypatch.setattr(emrcomm.storage.sqlite, "time", Watched)
    front_desk = open_store(host.config.store_path)
    failed: list[BaseException] = []

    def text_start() -> None:
        try:
            host.delivery_update(DeliveryUpdate(kind="reply", at=clock(), channel="sms", address=NUMBER,
                                                text="START", provider_id="kannel-mo-2"))
        except BaseException as exc:
            failed.append(exc)

    start = threading.Thread(target=text_start)
    try:
        with front_desk.transaction():
            front_desk.consent.add(patient="Patient/on-en", channel="sms", address=NUMBER, purpose=None,
                                   action="revoke", at=clock(), source="front desk, in person, recorded by J. Tremblay")
            start.start()
            deadline = time.monotonic() + 60
            while not (waits.is_set() if backend == "sqlite" else waiting_on_the_address_lock(host)):
                assert start.is_alive(), "the START was handled while the front desk's revocation was being written"
                assert time.monotonic() < deadline, "the START never waited for the front desk's revocation"
                time.sleep(0.01)
        start.join(60)
        assert not start.is_alive() and not failed, failed
    finally:
        front_desk.close()
    for purpose in ("clinical", "billing", "commercial"):
        last = host.storage.consent.last(channel="sms", address=NUMBER, purpose=purpose)
        assert last is not None and last.revokes and "J. Tremblay" in last.source, (purpose, last)
    assert "sms" not in host.send(reminder("r-2")).channels
    assert not [x for x in sms_lines(host) if "receive our text messages again" in x["text"]]


def test_help_gets_the_help_reply(host: Host, client: Client) -> None:
    host.send(reminder())
    mo(client, "AIDE", "mo-1")
    last = sms_lines(host)[-1]
    assert last["to"] == NUMBER and "+1 613 555 0100" in last["text"]


LATE = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)  # 22:00 in Ottawa, inside quiet hours


def category_of(resource: dict[str, Any]) -> str:
    return str(resource["category"][0]["coding"][0]["code"])


def filed(host: Host, category: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in host.records(patient="Patient/on-en")["entry"]
            if category_of(e["resource"]) == category]


def test_stop_at_ten_at_night_is_confirmed_at_once_in_response_to_the_stop(
    host: Host, client: Client, clock: Clock
) -> None:
    host.send(reminder())
    clock.now = LATE
    mo(client, "STOP", "mo-1")
    assert "no longer receive" in sms_lines(host)[-1]["text"] and sms_lines(host)[-1]["to"] == NUMBER
    [confirmation] = filed(host, "optout-confirmation")
    [stop] = [r for r in filed(host, "appointment-reminder") if r.get("sender") == {"reference": "Patient/on-en"}]
    assert confirmation["status"] == "completed" and confirmation["sent"] == "2026-11-24T03:00:00Z"
    assert confirmation["inResponseTo"] == [{"reference": f"Communication/{stop['id']}"}]


def test_a_stop_confirmation_whose_send_failed_for_now_at_eleven_at_night_is_retried_at_once_not_held(
    host: Host, client: Client, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer to the patient's STOP has no sending window (QUIET_HOURS does not apply to it):
    a retry at night goes at night, as the carriers expect, not at 08:00."""
    from emrcomm.delivery import TransientDeliveryError
    from emrcomm.outbox.worker import Worker, WorkerSettings

    host.send(reminder())
    clock.now = LATE + dt.timedelta(hours=1)  # 23:00 in Ottawa
    transport = host.channels["sms"].transport
    send = transport.send
    failures = [TransientDeliveryError("busy", provider="sink", reason="server-error", retry_after=60)]

    def flaky(delivery: Any) -> Any:
        if failures:
            raise failures.pop()
        return send(delivery)

    monkeypatch.setattr(transport, "send", flaky)
    mo(client, "STOP", "mo-1")
    [row] = host.storage.db.query("SELECT state, not_before FROM outbox")
    assert row["state"] == "retry" and dt.datetime.fromisoformat(row["not_before"]) == clock.now + dt.timedelta(
        seconds=60)
    clock.now += dt.timedelta(seconds=61)
    worker = Worker(host, WorkerSettings.from_config({}), rand=lambda: 1.0)
    stats = worker.run(once=True)
    assert (stats.sent, stats.held) == (1, 0) and "no longer receive" in sms_lines(host)[-1]["text"]
    [confirmation] = filed(host, "optout-confirmation")
    assert confirmation["status"] == "completed"


def test_in_queue_mode_a_worker_process_sends_the_stop_confirmation_at_ten_at_night(
    make_host: Callable[..., Host], tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = make_host('\n[delivery]\nmode = "queue"\n', config_text=config_with(f"""
[plugins.sms]
path = "out/sms.jsonl"
callback_url = "{BASE}"
callback_secret = {{file = "{tmp_path / 'callback-secret'}"}}
""", tmp_path))

    def worker_once() -> None:
        done = subprocess.run([str(EMRCOMM), "worker", "--once", "--config", str(tmp_path / "emrcomm.toml")],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]

    assert host.send(reminder("r-1")).status is Status.QUEUED
    worker_once()  # at 10:00: the reminder goes
    assert len(sms_lines(host)) == 1
    clock.now = LATE
    with running_server(host) as base:
        assert mo(Client(base.rstrip("/")), "STOP", "mo-1").status_code == 200
    # the clinic's own message at 22:00 waits for 08:00; the answer to the patient's STOP does not
    held = host.send(reminder("r-2", patient="Patient/qc-fr"))
    assert held.status is Status.HELD
    monkeypatch.setenv(VARIABLE, shift_to(LATE + dt.timedelta(minutes=1)))
    worker_once()
    assert [x["to"] for x in sms_lines(host)] == [NUMBER, NUMBER]
    assert "no longer receive" in sms_lines(host)[1]["text"]


def test_help_after_stop_is_answered_by_text_at_any_hour(host: Host, client: Client, clock: Clock) -> None:
    [reminded] = host.send(reminder()).record_ids
    clock.now = LATE
    mo(client, "STOP", "mo-1")
    mo(client, "HELP", "mo-2")
    last = sms_lines(host)[-1]
    assert last["to"] == NUMBER and "+1 613 555 0100" in last["text"] and "reply STOP" in last["text"]
    [answer] = filed(host, "help-reply")
    assert answer["medium"][0]["coding"][0]["code"] == "SMSWRIT" and answer["status"] == "completed"
    # HELP answers the clinic's reminder, not the confirmation sent in between
    help_reply = [r for r in filed(host, "appointment-reminder") if r.get("payload", [{}])[0].get("contentString")
                  == "HELP"]
    assert help_reply[0]["inResponseTo"] == [{"reference": f"Communication/{reminded}"}]
    assert not filed(host, "results-available")  # nothing went to the portal or by email instead


def test_start_is_confirmed_once(host: Host, client: Client, clock: Clock) -> None:
    host.send(reminder("r-1"))
    clock.now = LATE
    mo(client, "STOP", "mo-1")
    mo(client, "START", "mo-2")
    mo(client, "START", "mo-2")  # Kannel retrying the callback
    mo(client, "START", "mo-3")  # START while subscribed: nothing to confirm
    confirmations = [x for x in sms_lines(host) if "receive our text messages again" in x["text"]]
    assert len(confirmations) == 1 and confirmations[0]["to"] == NUMBER
    assert len(filed(host, "optin-confirmation")) == 1


def test_an_answer_that_answers_no_patient_message_is_not_sent(host: Host) -> None:
    from emrcomm.model import Request

    outcome = host.send(Request("Patient/on-en", "help-reply", id="unasked", template="help-reply", channel="sms"))
    assert outcome.status is Status.BLOCKED and sms_lines(host) == []
    assert any("answers a message from this patient" in line for line in outcome.explanation)
    # nor one that names a message of the clinic's instead of the patient's reply
    [sent] = host.send(reminder("r-1", patient="Patient/qc-fr")).record_ids
    forged = host.send(Request("Patient/qc-fr", "help-reply", id="forged", template="help-reply", in_response_to=sent))
    assert forged.status is Status.BLOCKED and len(sms_lines(host)) == 1


@pytest.mark.parametrize("text", ["please stop texting me", "Stop please", "Stop sending me reminders"])
def test_free_text_that_reads_like_an_opt_out_goes_to_staff_and_changes_no_ledger(
    host: Host, client: Client, text: str
) -> None:
    host.send(reminder())
    sent = len(sms_lines(host))
    mo(client, text, "mo-1")
    assert host.storage.consent.events(channel="sms", address=NUMBER) == []
    [item] = host.storage.inbox.items()
    assert item["priority"] == "urgent" and "PROBABLE_REVOCATION" in item["reason"]
    assert len(sms_lines(host)) == sent  # no automatic answer to someone asking us to stop


def test_other_replies_are_filed_in_response_to_the_clinics_message_and_answered_once(
    host: Host, client: Client
) -> None:
    [record] = host.send(reminder()).record_ids
    mo(client, "Can I come at 11 instead?", "mo-1")
    mo(client, "Hello?", "mo-2")
    filed = [e["resource"] for e in host.records(patient="Patient/on-en")["entry"]]
    replies = [r for r in filed if r.get("sender") == {"reference": "Patient/on-en"}]
    # each answers the clinic's reminder, not the automatic answer sent in between
    assert [r["inResponseTo"][0]["reference"] for r in replies] == [f"Communication/{record}"] * 2
    [answer] = [r for r in filed if r["category"][0]["coding"][0]["code"] == "auto-answer"]
    [first] = [r for r in replies if r["payload"][0]["contentString"].startswith("Can I come")]
    assert answer["inResponseTo"][0]["reference"] == f"Communication/{first['id']}"
    answers = [x for x in sms_lines(host) if "we answer within" in x["text"]]
    assert len(answers) == 1 and "911" in answers[0]["text"]


def test_the_auto_answer_goes_once_a_clinic_day_not_once_a_utc_day(host: Host, client: Client, clock: Clock) -> None:
    """18:30 and 22:00 in Ottawa are one evening, though 22:00 is the next day in UTC."""
    host.send(reminder())
    clock.now = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)  # 18:30 in Ottawa
    mo(client, "Can I come at 11 instead?", "mo-1")
    assert len(filed(host, "auto-answer")) == 1
    clock.now = LATE  # 22:00 in Ottawa, Tuesday in UTC
    mo(client, "Hello?", "mo-2")
    assert len(filed(host, "auto-answer")) == 1
    clock.now = LATE + dt.timedelta(hours=12)  # 10:00 the next morning in Ottawa
    mo(client, "Anyone there?", "mo-3")
    assert len(filed(host, "auto-answer")) == 2


def test_a_texted_question_becomes_a_staff_task_pointing_at_the_reply(
    host: Host, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    host.send(reminder())
    mo(client, "Can I come at 10 instead?", "mo-1")
    mo(client, "Can I come at 10 instead?", "mo-1")  # Kannel retrying the callback: still one task
    [reply] = [e["resource"] for e in host.records(patient="Patient/on-en")["entry"]
               if e["resource"].get("sender") == {"reference": "Patient/on-en"}]
    [item] = host.storage.inbox.items()
    assert item["kind"] == "reply" and item["patient"] == "Patient/on-en"
    assert item["task"]["focus"] == {"reference": f"Communication/{reply['id']}"}
    assert "10 instead" not in json.dumps(item["task"])  # the words stay in the chart
    # staff read them with the task
    from emrcomm.cli import main

    assert main(["inbox", "--text", "--config", str(host.config.base_dir / "emrcomm.toml")]) == 0
    listed = capsys.readouterr().out
    assert "reply" in listed and "    | Can I come at 10 instead?" in listed
    # the clock reads 15:00 UTC: 10:00 in Ottawa, as the staff's day has it
    assert listed.splitlines()[0] == "times in America/Toronto, the clinic's time zone"
    assert listed.splitlines()[1].startswith(f"{item['id']}  2026-11-23 10:00  routine  reply ")


def test_staff_read_a_reply_with_terminal_controls_escaped_and_its_json_unchanged(
    host: Host, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anyone can text the clinic's number: escape sequences in a reply (retitle, clear the
    screen, a carriage return that hides the start of the line) reach the staff's terminal as
    visible escapes, never as controls; --json gives the same words back."""
    from emrcomm.cli import main

    host.send(reminder())
    words = "pain \x1b]0;owned\x07\x1b[2J\rall fine \x9b31m\u2028end"
    assert mo(client, words, "mo-1").status_code == 200
    config = str(host.config.base_dir / "emrcomm.toml")
    assert main(["inbox", "--text", "--config", config]) == 0
    listed = capsys.readouterr().out
    # each line break of the reply (a carriage return, a line separator) starts a quoted line
    assert "    | pain \\u001b]0;owned\\u0007\\u001b[2J\n    | all fine \\u009b31m\n    | end\n" in listed
    assert main(["records", "--patient", "Patient/on-en", "--config", config]) == 0
    chart = capsys.readouterr().out
    assert "\\u001b]0;owned" in chart
    for shown in (listed, chart):
        assert not {"\x1b", "\x07", "\r", "\x9b", "\u2028"} & set(shown)
    assert main(["inbox", "--text", "--json", "--config", config]) == 0
    [task] = [e["resource"] for e in json.loads(capsys.readouterr().out)["entry"]]
    assert task["note"] == [{"text": words}]


# -- Twilio ----------------------------------------------------------------------------------------

@pytest.fixture
def twilio_client(make_host: Callable[..., Host], tmp_path: Path) -> Iterator[tuple[Host, Client]]:
    host = make_host('\n[delivery]\nmode = "queue"\n', config_text=config_with(f"""
[plugins.sms]
transport = "twilio"
from = "+16135550100"
callback_url = "{BASE}"
[plugins.sms.twilio]
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = {{file = "{tmp_path / 'twilio-token'}"}}
base_url = "http://127.0.0.1:9"
""", tmp_path))
    with running_server(host) as base:
        yield host, Client(base.rstrip("/"))


def twilio_post(client: Client, path: str, form: dict[str, str], token: str = TOKEN) -> requests.Response:
    signature = twilio_signature(token, BASE + path.removeprefix("/callbacks"), form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def test_twilio_signature_matches_twilios_published_example() -> None:
    # https://www.twilio.com/docs/usage/security#validating-requests
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == \
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_callbacks_with_a_bad_signature_are_refused(twilio_client: tuple[Host, Client]) -> None:
    host, client = twilio_client
    form = {"From": NUMBER, "Body": "STOP", "MessageSid": "SM1"}
    assert client.post("/callbacks/twilio/inbound", data=form).status_code == 403
    assert twilio_post(client, "/callbacks/twilio/inbound", form, token="wrong").status_code == 403
    assert twilio_post(client, "/callbacks/twilio/status?record=x", {"MessageStatus": "delivered"},
                       token="wrong").status_code == 403
    assert host.storage.consent.events(channel="sms", address=NUMBER) == []


def test_twilio_status_and_inbound_stop(twilio_client: tuple[Host, Client]) -> None:
    host, client = twilio_client
    [record] = host.send(reminder()).record_ids
    # Twilio took it (as a worker would record it): SM123 is its Message SID
    host.storage.outbox.finish(record, owner=None)
    host.storage.records.append(Event(record_id=record, kind=LegState.ACCEPTED, source=Source.WORKER,
                                      at=host.clock(), dedup=f"{record}:accepted:SM123", provider_id="SM123"))
    status = twilio_post(client, f"/callbacks/twilio/status?record={record}",
                         {"MessageSid": "SM123", "MessageStatus": "undelivered", "ErrorCode": "30003"})
    assert status.status_code == 200
    resource = communication(host, record)
    assert resource is not None and resource["status"] == "not-done" and "30003" in resource["statusReason"]["text"]
    answer = twilio_post(client, "/callbacks/twilio/inbound", {"From": NUMBER, "Body": "STOP", "MessageSid": "SM9"})
    assert answer.status_code == 200 and "<Response>" in answer.text
    assert host.storage.consent.last(channel="sms", address=NUMBER).revokes
    # the confirmation waits in the outbox for the worker: exactly one
    confirmations = [r for r in host.storage.db.query("SELECT request_id FROM outbox")
                     if r["request_id"].startswith("optout-confirmation")]
    assert len(confirmations) == 1


def test_a_keyword_twilio_matched_itself_moves_the_ledger_as_twilio_moved_its_block_list(
        twilio_client: tuple[Host, Client]) -> None:
    """With Advanced Opt-Out, a clinic may add its own keywords in Twilio's console: Twilio then
    blocks the number on a word emrcomm does not know, and says so in OptOutType. The ledger
    follows, or every later message would be refused by Twilio (21610) while filed as allowed."""
    host, client = twilio_client
    [record] = host.send(reminder()).record_ids  # the reply is matched to the clinic's message
    host.storage.outbox.finish(record, owner=None)  # Twilio took it, as a worker records it
    host.storage.records.append(Event(record_id=record, kind=LegState.ACCEPTED, source=Source.WORKER,
                                      at=host.clock(), dedup=f"{record}:accepted:SM123", provider_id="SM123"))

    def inbound(body: str, sid: str, kind: str | None) -> None:
        form = {"From": NUMBER, "Body": body, "MessageSid": sid, **({"OptOutType": kind} if kind else {})}
        assert twilio_post(client, "/callbacks/twilio/inbound", form).status_code == 200

    def out() -> bool:
        last = host.storage.consent.last(channel="sms", address=NUMBER)
        return last is not None and last.revokes

    inbound("CANCELNOW", "SM20", None)  # without Twilio's word, not a keyword: a reply for staff
    assert not out()
    inbound("CANCELNOW", "SM21", "STOP")
    assert out()
    confirmations = [r for r in host.storage.db.query("SELECT request_id FROM outbox")
                     if r["request_id"].startswith("optout-confirmation")]
    assert len(confirmations) == 1
    inbound("REJOIN", "SM22", "start")
    assert not out()


def test_twilios_start_does_not_lift_a_front_desk_revocation(twilio_client: tuple[Host, Client]) -> None:
    """Twilio's OptOutType START (its block list lifted) is a texted keyword too: it undoes the
    STOP, not what the patient told the front desk."""
    host, client = twilio_client
    [record] = host.send(reminder()).record_ids
    host.storage.outbox.finish(record, owner=None)  # Twilio took it, as a worker records it
    front_desk_revokes(host, "clinical")
    for body, sid, kind in (("STOP", "SM30", "STOP"), ("UNSTOP", "SM31", "START")):
        form = {"From": NUMBER, "Body": body, "MessageSid": sid, "OptOutType": kind}
        assert twilio_post(client, "/callbacks/twilio/inbound", form).status_code == 200
    last = host.storage.consent.last(channel="sms", address=NUMBER, purpose="clinical")
    assert last is not None and last.revokes and "J. Tremblay" in last.source
    assert not host.storage.consent.last(channel="sms", address=NUMBER, purpose="commercial").revokes  # type: ignore[union-attr]


def test_a_long_message_is_delivered_with_one_report(host: Host, client: Client) -> None:
    """Kannel reports once on a concatenated message (tests/test_sms_transports.py measures it
    on a real Kannel): that report is the message's."""
    from emrcomm.model import Category, Request

    text = ("Riverside Family Health: your appointment is on Tuesday, November 24 at 10:30 at 100 Main Street, "
            "second floor. Please arrive ten minutes early. To change the time, call us at +1 613 555 0100 "
            "during office hours. Reply STOP to opt out.")
    outcome = host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="long-1", text=text))
    assert outcome.status is Status.SENT, outcome.findings
    [record] = outcome.record_ids

    def delivered() -> bool:
        resource = communication(host, record) or {}
        return any(n["text"].startswith("delivered") for n in resource.get("note", []))

    assert not delivered()
    dlr(client, record, 1, part="msg-1")
    assert delivered()
    version = host.storage.records.get(record).version  # type: ignore[union-attr]
    dlr(client, record, 1, part="msg-1")  # Kannel retrying the callback: nothing changes
    assert host.storage.records.get(record).version == version  # type: ignore[union-attr]


def test_a_confirmation_that_failed_is_sent_when_the_provider_retries_the_stop(
    host: Host, client: Client, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emrcomm.errors import PluginError

    host.send(reminder("r-1"))
    clock.now += dt.timedelta(minutes=5)
    optout = host.plugins.get("optout")
    real, calls = optout._answer, []

    def directory_down_once(*args: Any) -> None:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("directory down")
        real(*args)

    monkeypatch.setattr(optout, "_answer", directory_down_once)
    with pytest.raises(PluginError, match="'optout'"):  # the ledger is written, the answer is not
        host.delivery_update(DeliveryUpdate(kind="reply", at=host.clock(), channel="sms", address=NUMBER,
                                            text="STOP", provider_id="mo-1"))
    events = host.storage.consent.events(channel="sms", address=NUMBER)
    assert events and events[-1].revokes
    assert mo(client, "STOP", "mo-1").status_code == 200  # Kannel retrying the callback
    assert mo(client, "STOP", "mo-1").status_code == 200  # and once more: already handled
    assert mo(client, "STOP", "mo-2").status_code == 200  # a second STOP: no second confirmation
    confirmations = [x for x in sms_lines(host) if "no longer receive" in x["text"]]
    assert len(confirmations) == 1


@pytest.mark.parametrize(("first", "then"), [("STOP", "START"), ("START", "STOP")])
def test_a_late_retry_of_a_keyword_does_not_undo_the_patients_later_word(
    host: Host, client: Client, clock: Clock, first: str, then: str
) -> None:
    """Kannel or Twilio repeating a patient's message after the patient said the opposite (a
    retry that lands late, a replay, another serve) changes nothing: the ledger's last word is
    still the patient's last word, and nothing is confirmed twice."""
    host.send(reminder("r-1"))
    if first == "START":
        mo(client, "STOP", "mo-0")
        clock.now += dt.timedelta(minutes=5)
    mo(client, first, "mo-1")
    clock.now += dt.timedelta(minutes=5)
    mo(client, then, "mo-2")
    clock.now += dt.timedelta(minutes=5)
    sent = len(sms_lines(host))
    assert mo(client, first, "mo-1").status_code == 200  # the provider repeating the earlier message
    events = host.storage.consent.events(channel="sms", address=NUMBER)
    assert [e.action for e in events][-2:] == (["revoke", "grant"] if then == "START" else ["grant", "revoke"])
    assert len(sms_lines(host)) == sent  # no second confirmation
    outcome = host.send(reminder("r-2"))
    assert ("sms" in outcome.channels) is (then == "START")


@pytest.mark.parametrize("written", ["16135550123", "6135550123"])
def test_a_stop_from_the_number_written_without_its_plus_opts_that_number_out(
    host: Host, client: Client, written: str
) -> None:
    """An SMSC may give Kannel the sender without its "+", or in its national form: it is the
    number the reminder went to, and its STOP stops it."""
    host.send(reminder("r-1"))
    assert mo(client, "STOP", "mo-1", sender=written).status_code == 200
    assert host.storage.consent.last(channel="sms", address=NUMBER).revokes  # type: ignore[union-attr]
    [confirmation] = [x for x in sms_lines(host) if "no longer receive" in x["text"]]
    assert confirmation["to"] == NUMBER
    assert "sms" not in host.send(reminder("r-2")).channels


@pytest.mark.parametrize("spoil", [corrupt_record, newer_category], ids=["damaged", "newer"])
def test_a_report_for_a_record_this_release_cannot_read_is_answered_and_kept_for_one_that_can(
    host: Host, client: Client, spoil: Callable[[Host, str], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Answered 200 as a report for an unknown record is, so that Kannel does not retry it for
    ever; kept (once, a retry too) as an event of the record, which a release that reads the
    record projects: here, the facts put back as they were."""
    [record] = host.send(reminder()).record_ids
    [row] = host.storage.db.query("SELECT facts, state FROM records WHERE id = ?", (record,))
    words = str(facts_of(host, record)["text"])
    spoil(host, record)
    with caplog.at_level(logging.INFO):
        assert dlr(client, record, 1).status_code == 200
        assert dlr(client, record, 1).status_code == 200  # Kannel's retry of the same report
    assert [e.kind.value for e in host.storage.records.events(record)].count("delivered") == 1
    [after] = host.storage.db.query("SELECT state FROM records WHERE id = ?", (record,))
    assert after["state"] == row["state"]  # not projected by a release that cannot read it
    assert f"record {record}: its record cannot be read by this release" in caplog.text
    assert words not in caplog.text
    store_facts(host, record, bytes(row["facts"]))
    read_again = host.record(record)
    assert read_again is not None and read_again.state == "delivered"


@pytest.mark.parametrize("spoil", [corrupt_record, newer_category], ids=["damaged", "newer"])
def test_a_stop_answering_a_message_this_release_cannot_read_still_stops_and_goes_to_staff(
    host: Host, client: Client, spoil: Callable[[Host, str], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The number's last message cannot be read (its patient unknown here): the STOP is in the
    ledger all the same, and staff get the message naming that record, as for a number no
    message went to; it was a 500 Kannel retried, and the STOP was never recorded."""
    [record] = host.send(reminder("r-1")).record_ids
    spoil(host, record)
    with caplog.at_level(logging.INFO):
        assert mo(client, "STOP", "mo-1").status_code == 200
        assert mo(client, "STOP", "mo-1").status_code == 200  # Kannel retrying the callback
    events = host.storage.consent.events(channel="sms", address=NUMBER)
    assert events and events[-1].revokes
    [item] = host.storage.inbox.items()
    task = json.dumps(item["task"])
    assert item["kind"] == "reply" and item["record_id"] == record and record in task
    assert f"reply on sms to record {record}, which this release cannot read: sent to staff" in caplog.text
    assert NUMBER not in caplog.text and "STOP" not in task
    outcome = host.send(reminder("r-2"))
    assert "sms" not in outcome.channels
