"""SMS transports against real servers: Kannel (bearerbox + smsbox + fakesmsc), a Prism mock of
Twilio's API, and a scripted HTTP server for the faults (429, 5xx, slow answers)."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import emrcomm_sms
from emrcomm import Delivery, PermanentDeliveryError, TransientDeliveryError, count_segments, retry_after
from emrcomm.config import load_config
from emrcomm.errors import ConfigError
from emrcomm.host import Host
from emrcomm.model import Message, Request, Status
from emrcomm.testing import make_context
from emrcomm_sms.callbacks import record_signature
from emrcomm_sms.kannel import KannelTransport
from emrcomm_sms.ratelimit import SenderLimits, TokenBucket
from emrcomm_sms.reports import ReportState, kannel_state, twilio_state
from servers import Kannel, Prism, Reply, ScriptedHTTPServer, assemble, refused_port
from support import BASE_CONFIG, communication, consent, patient, write_config

SENDER = "+16135550100"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-token-7f3a"
KANNEL_PASSWORD = "kannel-test-pw-91c2"
FRENCH = "Clinique Riverside : rappel de votre rendez-vous mardi à 10 h 30. Répondez ARRÊT pour ne plus recevoir de textos. À bientôt !"


def message(text: str = "Riverside Family Health: see you Tuesday at 10:30. Reply STOP to opt out.") -> Message:
    return Message(Request("Patient/1", "appointment-reminder", text=text), text)


# -- servers, started once per session ------------------------------------------------------------

@pytest.fixture(scope="session")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    (folder / "kannel").write_text(KANNEL_PASSWORD + "\n", encoding="utf-8")
    (folder / "kannel-wrong").write_text("not-the-password\n", encoding="utf-8")
    (folder / "twilio").write_text(AUTH_TOKEN, encoding="utf-8")
    (folder / "callback").write_text("callback-secret-5d1e", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def kannel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    gateway = Kannel(tmp_path_factory.mktemp("kannel"), password=KANNEL_PASSWORD)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="session")
def kannel_queue_full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    """A Kannel whose bearerbox refuses every message (outgoing queue limit 0)."""
    gateway = Kannel(tmp_path_factory.mktemp("kannel-full"), password=KANNEL_PASSWORD, smsc=False, queue_limit=0)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="session")
def kannel_defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    """A Kannel whose sendsms-user has Kannel's defaults (no max-messages, no concatenation: long
    messages are cut) and whose smsbox answers at once, saying how many parts it made."""
    gateway = Kannel(tmp_path_factory.mktemp("kannel-defaults"), password=KANNEL_PASSWORD, sendsms_limits="",
                     smsbox_options="immediate-sendsms-reply = true")
    yield gateway
    gateway.stop()


@pytest.fixture(scope="session")
def kannel_says_splits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    """A Kannel set up as docs/transports.md asks (max-messages, concatenation) whose smsbox
    answers at once, saying how many parts it made."""
    gateway = Kannel(tmp_path_factory.mktemp("kannel-splits"), password=KANNEL_PASSWORD,
                     smsbox_options="immediate-sendsms-reply = true")
    yield gateway
    gateway.stop()


@pytest.fixture(scope="session")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    mock = Prism(tmp_path_factory.mktemp("prism"))
    yield mock
    mock.stop()


@pytest.fixture
def http_server() -> Iterator[ScriptedHTTPServer]:
    server = ScriptedHTTPServer()
    yield server
    server.close()


def kannel_settings(url: str, secrets_dir: Path, password: str = "kannel", *, limits: bool = True,
                    **extra: Any) -> dict[str, Any]:
    """``limits``: the transport is told what the test Kannel's sendsms-user allows (docs/transports.md)."""
    table = {"url": url, "username": "emrcomm", "password": {"file": str(secrets_dir / password)},
             **({"max_messages": 10, "concatenation": True} if limits else {})}
    return {"transport": "kannel", "from": SENDER, "rate_per_second": 200, "burst": 20, "kannel": table, **extra}


def twilio_settings(url: str, secrets_dir: Path, **extra: Any) -> dict[str, Any]:
    return {"transport": "twilio", "from": SENDER, "rate_per_second": 200, "burst": 20,
            "twilio": {"account_sid": ACCOUNT_SID, "auth_token": {"file": str(secrets_dir / "twilio")},
                       "base_url": url},
            **extra}


def sms_transport(settings: dict[str, Any], tmp_path: Path) -> Any:
    plugin = emrcomm_sms.Plugin(make_context("sms", settings, tmp_path))
    [channel] = plugin.emrcomm_register_channels()
    return channel.transport


# -- the rate limit -------------------------------------------------------------------------------

class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_spaces_messages_at_the_configured_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(4, burst=2, clock=t.clock, sleep=t.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    # two saved-up tokens go at once, then one every quarter second
    assert waits == [0, 0, pytest.approx(0.25), pytest.approx(0.25), pytest.approx(0.25)]


def test_token_bucket_pause_holds_the_next_message_for_retry_after() -> None:
    t = FakeTime()
    bucket = TokenBucket(10, burst=5, clock=t.clock, sleep=t.sleep)
    bucket.pause(2.0)
    assert bucket.acquire() == pytest.approx(2.0)
    assert bucket.acquire() == pytest.approx(0.1)


def test_token_bucket_holds_the_rate_across_threads() -> None:
    bucket = TokenBucket(50, burst=1)
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: [bucket.acquire() for _ in range(10)]) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - start
    # 40 tokens at 50 a second with one saved up: the 40th is due at 39/50 s. The upper bound
    # only catches a bucket that throttles far too hard (ten times the rate), not a busy machine.
    assert 0.75 <= elapsed < 7.8


def test_each_sender_has_its_own_bucket() -> None:
    t = FakeTime()
    limits = SenderLimits(1, burst=1, clock=t.clock, sleep=t.sleep)
    assert [limits.acquire("+16135550100"), limits.acquire("+16135550111")] == [0, 0]
    assert limits.acquire("+16135550100") == pytest.approx(1.0)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
    assert retry_after("7") == 7.0
    assert retry_after("Mon, 23 Nov 2026 15:00:30 GMT", now=now) == 30.0
    assert retry_after("Mon, 23 Nov 2026 14:00:00 GMT", now=now) == 0.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_provider_report_codes_map_to_states() -> None:
    assert [kannel_state(t) for t in (1, 2, 4, 8, 16)] == [
        ReportState.DELIVERED, ReportState.FAILED, ReportState.PENDING, ReportState.SENT, ReportState.FAILED]
    assert kannel_state(1 | 16) is ReportState.FAILED
    assert [twilio_state(s) for s in ("queued", "sent", "delivered", "undelivered")] == [
        ReportState.PENDING, ReportState.SENT, ReportState.DELIVERED, ReportState.FAILED]


# -- settings -----------------------------------------------------------------------------------------

def config_with_sms(tmp_path: Path, sms_toml: str) -> Path:
    path = write_config(tmp_path)
    text = BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', sms_toml)
    assert text != BASE_CONFIG
    path.write_text(text, encoding="utf-8")
    return path


def test_the_file_sink_stays_the_default(tmp_path: Path) -> None:
    transport = sms_transport({}, tmp_path)
    assert isinstance(transport, emrcomm_sms.FileSink)


def test_kannel_without_its_table_is_refused_by_name(tmp_path: Path) -> None:
    path = config_with_sms(tmp_path, '[plugins.sms]\ntransport = "kannel"\n')
    with pytest.raises(ConfigError, match=r"plugins\.sms: 'kannel' is a required property"):
        Host(load_config(path))


def test_twilio_without_a_sender_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMRCOMM_TEST_TWILIO_TOKEN", "x")  # the credential is there: only the sender is missing
    path = config_with_sms(tmp_path, f'[plugins.sms]\ntransport = "twilio"\n[plugins.sms.twilio]\n'
                                     f'account_sid = "{ACCOUNT_SID}"\nauth_token = {{env = "EMRCOMM_TEST_TWILIO_TOKEN"}}\n')
    with pytest.raises(ConfigError, match=r"plugins\.sms: 'from' is a required property"):
        Host(load_config(path))


def test_a_literal_kannel_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = config_with_sms(tmp_path, '[plugins.sms]\ntransport = "kannel"\n[plugins.sms.kannel]\n'
                                     'url = "http://127.0.0.1:1/cgi-bin/sendsms"\nusername = "u"\n'
                                     'password = "hunter2-literal"\n')
    with pytest.raises(ConfigError, match=r"plugins\.sms\.kannel\.password: secrets cannot be written") as err:
        Host(load_config(path))
    assert "hunter2-literal" not in str(err.value)


def test_a_missing_password_variable_stops_a_host_that_may_send_naming_the_setting(tmp_path: Path) -> None:
    path = config_with_sms(tmp_path, '[plugins.sms]\ntransport = "kannel"\n[plugins.sms.kannel]\n'
                                     'url = "http://127.0.0.1:1/cgi-bin/sendsms"\nusername = "u"\n'
                                     'password = {env = "EMRCOMM_TEST_NO_SUCH_VAR"}\n')
    with pytest.raises(ConfigError, match=r"plugins\.sms\.kannel\.password: environment variable "
                                          r"EMRCOMM_TEST_NO_SUCH_VAR is not set"):
        Host(load_config(path))


def test_the_password_is_resolved_when_the_first_message_goes(tmp_path: Path) -> None:
    """A plugin made without the credential (a host that only reads) raises, naming the
    setting, only when its transport is used: nothing leaves."""
    settings = {"transport": "kannel", "kannel": {"url": "http://127.0.0.1:1/", "username": "u",
                                                  "password": {"env": "EMRCOMM_TEST_NO_SUCH_VAR"}}}
    [channel] = emrcomm_sms.Plugin(make_context("sms", settings, tmp_path)).emrcomm_register_channels()
    with pytest.raises(ConfigError, match=r"plugins\.sms\.kannel\.password: environment variable "
                                          r"EMRCOMM_TEST_NO_SUCH_VAR is not set"):
        channel.transport.send(Delivery(message(), "+16135550123", "k-1"))


def test_a_kannel_config_loads_into_a_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMRCOMM_TEST_KANNEL_PW", "x")
    path = config_with_sms(tmp_path, '[plugins.sms]\ntransport = "kannel"\nfrom = "+16135550100"\n'
                                     'rate_per_second = 5\n[plugins.sms.kannel]\n'
                                     'url = "http://127.0.0.1:1/cgi-bin/sendsms"\nusername = "u"\n'
                                     'password = {env = "EMRCOMM_TEST_KANNEL_PW"}\n')
    with Host(load_config(path)) as host:
        assert isinstance(host.channels["sms"].transport, KannelTransport)


# -- Kannel -------------------------------------------------------------------------------------------

def test_kannel_delivers_to_the_smsc(kannel: Kannel, secrets_dir: Path, tmp_path: Path) -> None:
    transport = sms_transport(kannel_settings(kannel.sendsms_url, secrets_dir), tmp_path)
    text = "Riverside Family Health: see you Tuesday at 10:30. Reply STOP to opt out."
    receipt = transport.send(Delivery(message(text), "+16135550201", "rec-kannel-1"))
    [got] = kannel.wait_for("+16135550201")
    assert (got.sender, got.kind, got.data.decode("utf-8")) == (SENDER, "text", text)
    assert (receipt.provider_id, receipt.status) == ("rec-kannel-1", "accepted")


def test_kannel_sends_french_as_ucs2_in_two_segments(kannel: Kannel, secrets_dir: Path, tmp_path: Path) -> None:
    transport = sms_transport(kannel_settings(kannel.sendsms_url, secrets_dir), tmp_path)
    assert 70 < len(FRENCH) <= 134  # two UCS-2 segments: ê and Ê are not in GSM-7
    transport.send(Delivery(message(FRENCH), "+15145550202", "rec-kannel-fr"))
    parts = kannel.wait_for("+15145550202", count=2)
    assert {p.udh[4] for p in parts} == {2}  # each part says "one of two"
    assert assemble(parts).decode("utf-16-be") == FRENCH


LONG = ("Riverside Family Health: your appointment is on Tuesday, November 24 at 10:30 at 100 Main Street, "
        "second floor. Please arrive ten minutes early. Reply STOP to opt out.")  # 2 GSM-7 segments


def test_kannel_with_its_default_sendsms_user_cuts_a_long_message_and_says_it_was_sent(
        kannel_defaults: Kannel, secrets_dir: Path, tmp_path: Path) -> None:
    """Why the transport must know: Kannel cuts the message at one segment and answers 202."""
    import requests

    answer = requests.post(kannel_defaults.sendsms_url, data=LONG.encode("utf-8"), timeout=10, headers={
        "Content-Type": "text/plain; charset=utf-8", "X-Kannel-Username": "emrcomm",
        "X-Kannel-Password": KANNEL_PASSWORD, "X-Kannel-To": "+16135550211", "X-Kannel-From": SENDER})
    assert count_segments(LONG) == ("GSM-7", 2)
    assert (answer.status_code, answer.text) == (202, "Sent.")
    [got] = kannel_defaults.wait_for("+16135550211")
    assert got.data.decode("utf-8") == LONG[:160]


def test_a_message_kannel_would_cut_is_refused_before_anything_is_sent(
        kannel_defaults: Kannel, secrets_dir: Path, tmp_path: Path) -> None:
    """Told nothing, the transport assumes Kannel's defaults: one segment goes whole, more would be cut."""
    transport = sms_transport(kannel_settings(kannel_defaults.sendsms_url, secrets_dir, limits=False), tmp_path)
    with pytest.raises(PermanentDeliveryError) as err:
        transport.send(Delivery(message(LONG), "+16135550212", "rec-too-long"))
    assert (err.value.reason, err.value.ambiguous) == ("too-long", False)
    assert "2 segments" in str(err.value)
    transport.send(Delivery(message(), "+16135550212", "rec-short"))  # one segment goes
    time.sleep(1)
    assert [m.data.decode("utf-8") for m in kannel_defaults.wait_for("+16135550212")] == [message().text]


def test_a_cut_kannel_reports_is_a_failure_not_a_delivery(
        kannel_defaults: Kannel, secrets_dir: Path, tmp_path: Path) -> None:
    """Told (wrongly) that the gateway concatenates, the transport learns from Kannel's answer
    that it sent one part of two, and says so: the message was cut, not delivered."""
    transport = sms_transport(kannel_settings(kannel_defaults.sendsms_url, secrets_dir), tmp_path)
    with pytest.raises(PermanentDeliveryError) as err:
        transport.send(Delivery(message(LONG), "+16135550213", "rec-cut"))
    assert (err.value.reason, err.value.ambiguous) == ("cut", True)
    assert "1 of its 2 segments" in str(err.value)
    [got] = kannel_defaults.wait_for("+16135550213")
    assert len(got.data) == 160


def test_an_emoji_kannel_splits_between_two_parts_is_delivered_not_cut(
        kannel_says_splits: Kannel, secrets_dir: Path, tmp_path: Path) -> None:
    """Kannel splits UCS-2 at every 67 UTF-16 units, through an emoji's surrogate pair (measured):
    a text counted as three segments, the emoji kept whole, leaves whole as two parts."""
    text = "Clinique Riverside : à bientôt ".ljust(66, ".") + "\U0001f600" + " Répondez ARRET.".rjust(66, ".")
    assert count_segments(text) == ("UCS-2", 3)
    transport = sms_transport(kannel_settings(kannel_says_splits.sendsms_url, secrets_dir), tmp_path)
    receipt = transport.send(Delivery(message(text), "+15145550214", "rec-emoji-split"))
    assert receipt.status == "accepted" and "Message splits: 2" in receipt.detail
    parts = kannel_says_splits.wait_for("+15145550214", count=2)
    assert assemble(parts).decode("utf-16-be") == text


def kannel_clinic(tmp_path: Path, url: str, password_file: Path, *, sms_extra: str = "") -> Path:
    """A clinic whose SMS goes through the Kannel at ``url``, told its sendsms-user's limits."""
    return config_with_sms(tmp_path, f"""[plugins.sms]
transport = "kannel"
from = "{SENDER}"
{sms_extra}[plugins.sms.kannel]
url = "{url}"
username = "emrcomm"
password = {{file = "{password_file}"}}
max_messages = 3
concatenation = true
""")


def test_a_message_the_gateway_cut_is_filed_not_done_not_completed(
        kannel_defaults: Kannel, secrets_dir: Path, tmp_path: Path, clock: Any) -> None:
    path = kannel_clinic(tmp_path, kannel_defaults.sendsms_url, secrets_dir / "kannel", sms_extra="max_segments = 3\n")
    with Host(load_config(path), clock=clock) as host:
        outcome = host.send(Request("Patient/on-en", "appointment-reminder", id="cut-1", text=LONG, channel="sms"))
        assert outcome.status is Status.FAILED and outcome.channels == ("sms",)
        [record] = outcome.record_ids
        resource = communication(host, record)
    assert resource is not None and resource["status"] == "not-done"
    assert "cut: kannel" in resource["statusReason"]["text"]


def test_a_french_portal_notice_reaches_the_handset_in_one_part_with_its_link_whole(
        kannel: Kannel, secrets_dir: Path, tmp_path: Path, clock: Any) -> None:
    path = kannel_clinic(tmp_path, kannel.sendsms_url, secrets_dir / "kannel")
    with Host(load_config(path), clock=clock) as host:
        outcome = host.send(Request("Patient/qc-fr", "results-available", id="notice-kannel",
                                    text="Votre HbA1c est de 8,1 %. Augmentez la metformine."))
        assert outcome.channels == ("portal", "sms"), outcome.explanation
        link = host.channels["portal"].transport.link_for(outcome.record_ids[0])
    [got] = kannel.wait_for("+15145550199")
    time.sleep(0.5)
    assert len(kannel.wait_for("+15145550199")) == 1  # one part, no second segment behind it
    assert (got.kind, got.udh) == ("text", b"")
    text = got.data.decode("utf-8")
    assert link in text.split() and "ARRET" in text


def test_a_french_reminder_from_a_clinic_with_an_accented_name_reaches_the_handset_as_one_gsm7_part(
        kannel: Kannel, secrets_dir: Path, tmp_path: Path, clock: Any) -> None:
    """As typed, « Clinique de l’Île-Perrot » (î, ’) sent the reminder as UCS-2 in three parts;
    spelled for SMS it leaves in one GSM-7 part, and the chart holds what the handset shows."""
    import datetime as dt

    path = kannel_clinic(tmp_path, kannel.sendsms_url, secrets_dir / "kannel")
    path.write_text(path.read_text(encoding="utf-8").replace(
        'name = "Riverside Family Health"', 'name = "Clinique de l’Île-Perrot"'), encoding="utf-8")
    number = "+15145550231"  # this test's own: the session's Kannel keeps every handset's messages
    (tmp_path / "patients.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in (
            patient("qc-ile", given="Chloé", family="Gagnon", mobile=number, state="QC", language="fr"),
            consent("c-ile", "qc-ile", "sms", address=number))]}), encoding="utf-8")
    appointment = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    with Host(load_config(path), clock=clock) as host:
        outcome = host.send(Request("Patient/qc-ile", "appointment-reminder", id="ile-kannel",
                                    template="appointment-reminder", variables={"appointment": appointment},
                                    appointment=appointment))
        assert outcome.status is Status.SENT and outcome.channels == ("sms",), outcome.explanation
        [record] = outcome.record_ids
        filed = (communication(host, record) or {})["payload"][0]["contentString"]
    [got] = kannel.wait_for(number)
    time.sleep(0.5)
    assert len(kannel.wait_for(number)) == 1  # one part, no second segment behind it
    assert (got.kind, got.udh) == ("text", b"")
    assert got.data.decode("utf-8") == filed and filed.startswith("Rendez-vous à Clinique de l'Ile-Perrot le ")


def test_the_gateway_limits_lower_the_sms_channels_own(secrets_dir: Path, tmp_path: Path) -> None:
    """A message Kannel would cut is refused when it is decided (SMS_TOO_LONG), not at sending."""
    def limit(**kannel: Any) -> int | None:
        settings = kannel_settings("http://127.0.0.1:1/cgi-bin/sendsms", secrets_dir, limits=False)
        settings["kannel"].update(kannel)
        [channel] = emrcomm_sms.Plugin(make_context("sms", settings, tmp_path)).emrcomm_register_channels()
        return channel.max_segments

    assert limit() == 1
    assert limit(max_messages=10) == 1  # separate texts: a link split between two would break
    assert limit(max_messages=2, concatenation=True) == 2
    assert limit(max_messages=10, concatenation=True) == 3  # [plugins.sms] max_segments (3) is lower


def test_kannel_delivery_reports_name_the_record(kannel: Kannel, secrets_dir: Path, tmp_path: Path,
                                                 http_server: ScriptedHTTPServer) -> None:
    settings = kannel_settings(kannel.sendsms_url, secrets_dir, callback_url=http_server.url + "/callbacks",
                               callback_secret={"file": str(secrets_dir / "callback")})
    sms_transport(settings, tmp_path).send(Delivery(message(), "+16135550203", "rec-kannel-dlr"))
    seen = http_server.wait_for(2)  # fake SMSC: accepted (8), then delivered (1)
    assert {s.path.split("?")[0] for s in seen} == {"/callbacks/kannel/dlr"}
    assert {s.query["record"][0] for s in seen} == {"rec-kannel-dlr"}
    assert {s.query["sig"][0] for s in seen} == {record_signature("callback-secret-5d1e", "rec-kannel-dlr")}
    assert {kannel_state(int(s.query["type"][0])) for s in seen} == {ReportState.SENT, ReportState.DELIVERED}


def test_kannel_reports_a_long_message_once_not_per_segment(kannel: Kannel, secrets_dir: Path, tmp_path: Path,
                                                           http_server: ScriptedHTTPServer) -> None:
    """Kannel sends a concatenated message as several segments but reports on the message: one
    "delivered" for the whole. (The host therefore takes a report as the message's.)"""
    settings = kannel_settings(kannel.sendsms_url, secrets_dir, callback_url=http_server.url + "/callbacks",
                               callback_secret={"file": str(secrets_dir / "callback")})
    long_text = "Riverside Family Health: " + "your appointment is on Tuesday at 10:30. " * 5
    sms_transport(settings, tmp_path).send(Delivery(message(long_text), "+16135550209", "rec-kannel-long"))
    assert len(kannel.wait_for("+16135550209", count=2)) == 2  # two segments reached the SMSC
    seen = http_server.wait_for(2)
    time.sleep(1)  # a report per segment would have arrived by now
    states = [kannel_state(int(s.query["type"][0])) for s in http_server.seen]
    assert states.count(ReportState.DELIVERED) == 1 and len(states) == 2, states
    assert {s.query["record"][0] for s in seen} == {"rec-kannel-long"}


def test_kannel_down_is_a_transient_error(secrets_dir: Path, tmp_path: Path) -> None:
    with refused_port() as port, pytest.raises(TransientDeliveryError) as err:
        url = f"http://127.0.0.1:{port}/cgi-bin/sendsms"  # nothing listens there
        sms_transport(kannel_settings(url, secrets_dir), tmp_path).send(Delivery(message(), "+16135550204", "rec-down"))
    assert (err.value.reason, err.value.ambiguous) == ("unreachable", False)


def test_kannel_refusing_the_password_is_a_permanent_credentials_error(kannel: Kannel, secrets_dir: Path,
                                                                         tmp_path: Path) -> None:
    transport = sms_transport(kannel_settings(kannel.sendsms_url, secrets_dir, password="kannel-wrong"), tmp_path)
    with pytest.raises(PermanentDeliveryError) as err:
        transport.send(Delivery(message(), "+16135550205", "rec-badpw"))
    assert (err.value.reason, err.value.status) == ("unauthorized", 403)


def _refused_by_kannel(kannel: Kannel, secrets_dir: Path, tmp_path: Path) -> Path:
    """A clinic whose SMS goes through Kannel with a password Kannel refuses (403: for good)."""
    return kannel_clinic(tmp_path, kannel.sendsms_url, secrets_dir / "kannel-wrong")


def test_a_request_sent_again_after_its_message_was_refused_for_good_says_failed(
        kannel: Kannel, secrets_dir: Path, tmp_path: Path, clock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The dead letter stays a failure when the EMR asks again: not "queued", with what to do."""
    from emrcomm.cli import format_outcome

    with Host(load_config(_refused_by_kannel(kannel, secrets_dir, tmp_path)), clock=clock) as host:
        request = Request("Patient/on-en", "appointment-reminder", id="refused-1",
                          text="Riverside Family Health: see you Tuesday at 10:30.", channel="sms")
        first = host.send(request)
        again = host.send(request)
        assert host.storage.outbox.counts() == {"dead": 1}
    assert first.status is Status.FAILED
    [refused] = [f for f in first.findings if f.code == "DELIVERY_FAILED"]
    assert "403" in refused.message and "requeue" in (refused.remedy or "")
    assert again.status is Status.FAILED and again.record_ids == first.record_ids
    shown = format_outcome(again, why=False)
    assert "FAILED" in shown and "already handled" in shown and "emrcomm outbox requeue" in shown


def test_a_portal_message_whose_notice_was_refused_for_good_is_stored_not_sent(
        kannel: Kannel, secrets_dir: Path, tmp_path: Path, clock: Any) -> None:
    """The message waits in the portal, but nothing told the patient: stored, on the first answer
    and when asked again, and the chart does not say the portal message reached them."""
    with Host(load_config(_refused_by_kannel(kannel, secrets_dir, tmp_path)), clock=clock) as host:
        request = Request("Patient/on-en", "results-available", id="refused-notice-1",
                          text="Your HbA1c is 8.1 %. Increase the metformin.")
        first = host.send(request)
        again = host.send(request)
        portal_record = communication(host, first.record_ids[0])
        tasks = host.storage.inbox.items()
    assert first.channels == ("portal", "sms"), first.explanation
    assert first.status is Status.STORED and again.status is Status.STORED
    assert any(f.code == "PATIENT_NOT_TOLD" for f in first.findings)
    assert portal_record is not None and portal_record["status"] == "in-progress"
    assert "PATIENT_NOT_TOLD" in json.dumps(portal_record["statusReason"])
    assert "unannounced" in [t["kind"] for t in tasks]


def test_kannel_answering_503_is_a_transient_error(kannel_queue_full: Kannel, secrets_dir: Path,
                                                   tmp_path: Path) -> None:
    transport = sms_transport(kannel_settings(kannel_queue_full.sendsms_url, secrets_dir), tmp_path)
    with pytest.raises(TransientDeliveryError) as err:
        transport.send(Delivery(message(), "+16135550206", "rec-full"))
    assert (err.value.reason, err.value.status) == ("server-error", 503)
    assert "try again later" in str(err.value)


def test_kannel_keeps_password_number_and_text_out_of_urls_and_logs(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    http_server.script(Reply(202, b"0: Accepted for delivery"))
    text = "Riverside Family Health: your prescription is ready."
    caplog.set_level(logging.DEBUG)
    sms_transport(kannel_settings(http_server.url + "/cgi-bin/sendsms", secrets_dir), tmp_path).send(Delivery(
        message(text), "+16135550207", "rec-private"))
    [seen] = http_server.seen
    assert seen.path == "/cgi-bin/sendsms"
    assert (seen.headers["X-Kannel-Password"], seen.headers["X-Kannel-To"]) == (KANNEL_PASSWORD, "+16135550207")
    assert seen.body.decode("utf-8") == text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "rec-private" in logged and "202" in logged
    for private in (KANNEL_PASSWORD, "6135550207", "prescription"):
        assert private not in logged


# -- Twilio against the mock of its API ------------------------------------------------------------

def test_twilio_request_is_accepted_by_the_mock_of_twilios_api(prism: Prism, secrets_dir: Path,
                                                               tmp_path: Path) -> None:
    settings = twilio_settings(prism.url, secrets_dir, callback_url="https://emrcomm.riverside.example/callbacks")
    receipt = sms_transport(settings, tmp_path).send(Delivery(message(), "+16135550301", "rec-twilio-1"))
    assert receipt.provider_id is not None and receipt.provider_id.startswith("SM")
    assert receipt.status == "queued"


def test_twilio_malformed_request_is_caught_by_the_mock(prism: Prism, secrets_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    transport = sms_transport(twilio_settings(prism.url, secrets_dir), tmp_path)
    correct = transport.form
    monkeypatch.setattr(transport, "form", lambda *a: {k: v for k, v in correct(*a).items() if k != "To"})
    with pytest.raises(PermanentDeliveryError) as err:
        transport.send(Delivery(message(), "+16135550302", "rec-twilio-bad"))
    assert (err.value.reason, err.value.status) == ("rejected", 422)
    assert "required property 'To'" in str(err.value)


def test_twilio_request_carries_auth_idempotency_and_callback(secrets_dir: Path, tmp_path: Path,
                                                              http_server: ScriptedHTTPServer) -> None:
    http_server.script(Reply(201, json.dumps({"sid": "SM" + "ab" * 16, "status": "queued"}).encode()))
    settings = twilio_settings(http_server.url, secrets_dir, callback_url="https://cb.riverside.example/callbacks")
    receipt = sms_transport(settings, tmp_path).send(Delivery(message("Hello"), "+16135550303", "rec-twilio-2"))
    [seen] = http_server.seen
    assert seen.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert base64.b64decode(seen.headers["Authorization"].split()[1]).decode() == f"{ACCOUNT_SID}:{AUTH_TOKEN}"
    assert seen.headers["I-Twilio-Idempotency-Token"] == "rec-twilio-2"
    assert seen.form == {"To": ["+16135550303"], "From": [SENDER], "Body": ["Hello"],
                         "StatusCallback": ["https://cb.riverside.example/callbacks/twilio/status?record=rec-twilio-2"]}
    assert receipt.provider_id == "SM" + "ab" * 16


# -- faults, from a scripted server ------------------------------------------------------------------

CREATED = Reply(201, json.dumps({"sid": "SM" + "cd" * 16, "status": "queued"}).encode())


def test_429_with_retry_after_waits_and_then_sends(secrets_dir: Path, tmp_path: Path,
                                                   http_server: ScriptedHTTPServer) -> None:
    http_server.script(Reply(429, b'{"code": 20429}', headers=(("Retry-After", "1"),)), CREATED)
    transport = sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path)
    start = time.monotonic()
    receipt = transport.send(Delivery(message(), "+16135550401", "rec-429"))
    assert time.monotonic() - start >= 1.0
    assert len(http_server.seen) == 2 and receipt.status == "queued"
    assert {s.headers["I-Twilio-Idempotency-Token"] for s in http_server.seen} == {"rec-429"}


def test_429_asking_for_too_long_a_wait_is_a_retryable_error(secrets_dir: Path, tmp_path: Path,
                                                             http_server: ScriptedHTTPServer) -> None:
    http_server.script(Reply(429, b"{}", headers=(("Retry-After", "120"),)), CREATED)
    transport = sms_transport(twilio_settings(http_server.url, secrets_dir, retry_after_max=5), tmp_path)
    with pytest.raises(TransientDeliveryError) as err:
        transport.send(Delivery(message(), "+16135550402", "rec-429-long"))
    assert (err.value.reason, err.value.status, err.value.retry_after) == ("rate-limited", 429, 120.0)
    assert len(http_server.seen) == 1


def test_429_on_every_attempt_gives_up_after_the_configured_attempts(secrets_dir: Path, tmp_path: Path,
                                                                     http_server: ScriptedHTTPServer) -> None:
    http_server.script(*[Reply(429, b"{}", headers=(("Retry-After", "0"),))] * 5)
    transport = sms_transport(twilio_settings(http_server.url, secrets_dir, attempts_on_429=3), tmp_path)
    with pytest.raises(TransientDeliveryError, match=r"rate limited \(HTTP 429\) after 3 attempt"):
        transport.send(Delivery(message(), "+16135550403", "rec-429-always"))
    assert len(http_server.seen) == 3


@pytest.mark.parametrize(("status", "ambiguous"), [(503, False), (500, True)])
def test_5xx_is_a_transient_error(secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer,
                                  status: int, ambiguous: bool) -> None:
    http_server.script(Reply(status, b'{"code": 20500, "message": "Internal Server Error"}'))
    with pytest.raises(TransientDeliveryError) as err:
        sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path).send(Delivery(message(), "+16135550404", "r5"))
    assert (err.value.reason, err.value.status, err.value.ambiguous) == ("server-error", status, ambiguous)


def test_4xx_is_a_permanent_error_without_the_number(secrets_dir: Path, tmp_path: Path,
                                                     http_server: ScriptedHTTPServer) -> None:
    body = {"code": 21211, "message": "The 'To' number +16135550405 is not a valid phone number.", "status": 400}
    http_server.script(Reply(400, json.dumps(body).encode()))
    with pytest.raises(PermanentDeliveryError) as err:
        sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path).send(Delivery(message(), "+16135550405", "r4"))
    assert (err.value.reason, err.value.status) == ("rejected", 400)
    assert "21211" in str(err.value) and "6135550405" not in str(err.value)


def test_a_slow_provider_times_out_as_a_transient_error_that_may_have_sent(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer) -> None:
    http_server.script(Reply(201, CREATED.body, delay=10))
    transport = sms_transport(twilio_settings(http_server.url, secrets_dir, read_timeout=0.3), tmp_path)
    start = time.monotonic()
    with pytest.raises(TransientDeliveryError) as err:
        transport.send(Delivery(message(), "+16135550406", "rec-slow"))
    assert time.monotonic() - start < 8  # it gave up long before the answer, however busy the machine
    assert (err.value.reason, err.value.ambiguous) == ("timeout", True)


def send_to_a_provider_that_reads_then(misbehave: Callable[[socket.socket], None], send: Callable[[str], Any],
                                       *, tls: ssl.SSLContext | None = None) -> tuple[bytes, BaseException]:
    """Send (``send(url)``) to a provider on 127.0.0.1 that reads one whole request, then does
    ``misbehave(connection)`` instead of answering; the bytes it got, and what ``send`` raised."""
    got: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve() -> None:
            raw, _ = listener.accept()
            with tls.wrap_socket(raw, server_side=True) if tls else raw as conn:
                conn.settimeout(5)
                data = b""
                while b"Body=" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                got.append(data)
                misbehave(conn)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        try:
            send(f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}")
        except BaseException as exc:
            raised = exc
        else:
            raise AssertionError("the send did not fail")
        finally:
            thread.join(5)
    assert got, "the provider got no request"
    return got[0], raised


def test_a_connection_closed_before_the_answer_is_transient_and_may_have_sent(secrets_dir: Path,
                                                                             tmp_path: Path) -> None:
    got, raised = send_to_a_provider_that_reads_then(
        lambda conn: None,  # hang up without a word
        lambda url: sms_transport(twilio_settings(url, secrets_dir), tmp_path).send(Delivery(message(), "+16135550409",
                                                                                   "rec-cut")))
    assert b"I-Twilio-Idempotency-Token: rec-cut" in got
    assert isinstance(raised, TransientDeliveryError)
    assert (raised.reason, raised.ambiguous) == ("unreachable", True)


def test_a_redirect_is_a_refusal_not_followed(secrets_dir: Path, tmp_path: Path,
                                              http_server: ScriptedHTTPServer) -> None:
    # Following it would turn the POST into a GET and lose the message (or send it elsewhere).
    http_server.script(Reply(307, b"", headers=(("Location", f"{http_server.url}/elsewhere"),)), CREATED)
    with pytest.raises(PermanentDeliveryError) as err:
        sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path).send(Delivery(message(), "+16135550410", "r3"))
    assert (err.value.reason, err.value.status) == ("rejected", 307)
    assert len(http_server.seen) == 1


PROXY_VARIABLES = ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                   "ALL_PROXY", "all_proxy")


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY"])
def test_the_proxy_from_the_environment_is_used_with_its_credentials(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer, monkeypatch: pytest.MonkeyPatch,
        variable: str) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # The scripted server plays the proxy; its URL carries credentials, as proxy URLs do.
    monkeypatch.setenv(variable, http_server.url.replace("http://", "http://relay:p%40ss@"))
    http_server.script(CREATED)
    settings = twilio_settings("http://api.twilio.example.invalid", secrets_dir)
    receipt = sms_transport(settings, tmp_path).send(Delivery(message(), "+16135550411", "rec-proxy"))
    [seen] = http_server.seen  # a proxy is asked for the absolute URL
    assert seen.path == f"http://api.twilio.example.invalid/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert base64.b64decode(seen.headers["Proxy-Authorization"].split()[1]) == b"relay:p@ss"
    assert seen.headers["I-Twilio-Idempotency-Token"] == "rec-proxy" and receipt.status == "queued"


def test_a_proxy_refusing_its_credentials_is_a_permanent_configuration_error(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", http_server.url)
    http_server.script(Reply(407, b"Proxy Authentication Required"))
    with pytest.raises(PermanentDeliveryError) as err:
        sms_transport(twilio_settings("http://api.twilio.example.invalid", secrets_dir), tmp_path).send(Delivery(
            message(), "+16135550414", "rec-407"))
    assert (err.value.reason, err.value.status, err.value.ambiguous) == ("unauthorized", 407, False)
    assert "proxy" in str(err.value)


def test_a_303_answer_is_a_dead_letter_that_may_have_been_sent(secrets_dir: Path, tmp_path: Path,
                                                               http_server: ScriptedHTTPServer) -> None:
    http_server.script(Reply(303, b"", headers=(("Location", f"{http_server.url}/Messages/SM1"),)))
    with pytest.raises(PermanentDeliveryError) as err:
        sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path).send(Delivery(message(), "+16135550415", "r303"))
    assert (err.value.reason, err.value.status, err.value.ambiguous) == ("rejected", 303, True)


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[ScriptedHTTPServer, Path]]:
    from mailservers import CertificateAuthority

    ca = CertificateAuthority(tmp_path / "ca")
    server = ScriptedHTTPServer(CREATED, tls=ca.server_context())
    yield server, ca.ca_file
    server.close()


def test_https_to_a_provider_whose_certificate_is_not_trusted_is_refused_before_sending(
        secrets_dir: Path, tmp_path: Path, https_server: tuple[ScriptedHTTPServer, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = https_server
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(TransientDeliveryError) as err:
        sms_transport(twilio_settings(server.url, secrets_dir), tmp_path).send(Delivery(message(), "+16135550412", "rec-tls"))
    assert (err.value.reason, err.value.ambiguous) == ("unreachable", False)  # nothing went
    assert "TLS" in str(err.value) and server.seen == []


def test_https_with_the_ca_bundle_from_the_environment(secrets_dir: Path, tmp_path: Path,
                                                      https_server: tuple[ScriptedHTTPServer, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server, ca_file = https_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    receipt = sms_transport(twilio_settings(server.url, secrets_dir), tmp_path).send(Delivery(message(), "+16135550413",
                                                                                    "rec-tls-ok"))
    [seen] = server.seen
    assert seen.headers["I-Twilio-Idempotency-Token"] == "rec-tls-ok" and receipt.status == "queued"


def test_a_tls_error_after_the_request_went_is_ambiguous(secrets_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from mailservers import CertificateAuthority

    ca = CertificateAuthority(tmp_path / "ca")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.ca_file))

    def corrupt_record(conn: socket.socket) -> None:  # application data that fails to decrypt
        with socket.socket(fileno=os.dup(conn.fileno())) as plain:
            plain.sendall(b"\x17\x03\x03\x00\x20" + b"X" * 32)

    got, raised = send_to_a_provider_that_reads_then(
        corrupt_record,
        lambda url: sms_transport(twilio_settings(url, secrets_dir), tmp_path).send(Delivery(message(), "+16135550416",
                                                                                   "rec-tls-cut")),
        tls=ca.server_context())
    assert b"rec-tls-cut" in got  # the provider had it
    assert isinstance(raised, TransientDeliveryError)
    assert (raised.reason, raised.ambiguous) == ("unreachable", True)


def test_connections_to_the_provider_are_pooled(secrets_dir: Path, tmp_path: Path,
                                                http_server: ScriptedHTTPServer) -> None:
    http_server.script(CREATED, CREATED, CREATED)
    transport = sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path)
    for i in range(3):
        transport.send(Delivery(message(), "+16135550407", f"rec-pool-{i}"))
    assert len({s.client_port for s in http_server.seen}) == 1


def test_the_rate_limit_spaces_provider_requests(secrets_dir: Path, tmp_path: Path,
                                                 http_server: ScriptedHTTPServer) -> None:
    http_server.default = CREATED
    transport = sms_transport(twilio_settings(http_server.url, secrets_dir, rate_per_second=20, burst=1), tmp_path)
    start = time.monotonic()
    for i in range(11):
        transport.send(Delivery(message(), "+16135550408", f"rec-rate-{i}"))
    assert time.monotonic() - start >= 0.5  # 10 gaps of 1/20 s



# -- answers that must not be taken at their word -----------------------------------------------------

def test_retry_after_ignores_what_is_not_a_wait() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
    for unreadable in ("-5", "1.5", "\u0661\u0662", "Wed, 21 Oct 99999 07:28:00 GMT", "9" * 400, "0x10"):
        assert retry_after(unreadable, now=now) is None, unreadable
    assert retry_after("1000000000000", now=now) == 1e12  # readable: its users bound it
    assert retry_after("Wed, 21 Oct 2099 07:28:00 GMT", now=now) == pytest.approx(2.3e9, rel=0.01)


class RecordedLimits:
    """The sender's limits, recording each pause instead of keeping a schedule."""

    def __init__(self) -> None:
        self.paused: list[float] = []

    def acquire(self, sender: str) -> float:
        return 0.0

    def pause(self, sender: str, seconds: float) -> None:
        self.paused.append(seconds)


@pytest.mark.parametrize("asked", ["100", "1000000000000", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_a_429_pauses_the_sender_no_longer_than_retry_after_max(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer, asked: str) -> None:
    """The provider's wait is passed on to reschedule the message, but the sender's bucket (which
    holds every worker thread sending from that number) is paused at most retry_after_max."""
    http_server.script(Reply(429, b"{}", headers=(("Retry-After", asked),)))
    transport = sms_transport(twilio_settings(http_server.url, secrets_dir, retry_after_max=2), tmp_path)
    transport.client.limits = limits = RecordedLimits()
    with pytest.raises(TransientDeliveryError) as err:
        transport.send(Delivery(message(), "+16135550420", "rec-429-bound"))
    assert limits.paused == [2.0]
    assert err.value.reason == "rate-limited" and err.value.retry_after is not None and err.value.retry_after > 2


def drip(first: bytes, then: bytes, every: float = 0.2, for_at_most: float = 20.0) -> Callable[[socket.socket], None]:
    """A provider that answers ``first`` and then ``then`` every ``every`` seconds, for as long as
    the client listens (at most ``for_at_most`` s)."""
    def misbehave(conn: socket.socket) -> None:
        conn.sendall(first)
        end = time.monotonic() + for_at_most
        try:
            while time.monotonic() < end:
                conn.sendall(then)
                time.sleep(every)
        except OSError:
            pass  # the client hung up: what we wanted

    return misbehave


@pytest.mark.parametrize(("status", "kind"), [(b"201 Created", PermanentDeliveryError),
                                              (b"503 Service Unavailable", TransientDeliveryError)])
def test_an_answer_that_never_ends_is_given_up_at_the_deadline(secrets_dir: Path, tmp_path: Path, status: bytes,
                                                               kind: type) -> None:
    """A byte every 0.2 s keeps each read under read_timeout; the whole answer still has to come
    within connect_timeout + read_timeout. After a success status the message most likely went:
    a dead letter staff check (a retry could send it twice); after an error status, a retry."""
    start = time.monotonic()
    _, raised = send_to_a_provider_that_reads_then(
        drip(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
             b"1\r\n \r\n"),
        lambda url: sms_transport(twilio_settings(url, secrets_dir, connect_timeout=0.5, read_timeout=1),
                                  tmp_path).send(Delivery(message(), "+16135550421", "rec-drip")))
    assert time.monotonic() - start < 15  # the deadline is 1.5 s; the server would drip for 20
    assert type(raised) is kind
    assert (raised.reason, raised.ambiguous) == ("timeout", True)
    assert "whole answer" in str(raised)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_an_answer_too_large_for_a_provider_is_not_read_whole(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer, framing: str) -> None:
    padding = "x" * (200 * 1024)
    body = json.dumps({"sid": "SM" + "cd" * 16, "status": "queued", "padding": padding}).encode()
    if framing == "length":
        http_server.script(Reply(201, body))
        send = lambda: sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path).send(  # noqa: E731
            Delivery(message(), "+16135550422", "rec-big"))
        with pytest.raises(PermanentDeliveryError) as err:
            send()
        raised: BaseException = err.value
    else:
        _, raised = send_to_a_provider_that_reads_then(
            drip(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", b"4000\r\n" + b"x" * 0x4000 + b"\r\n",
                 every=0.0),
            lambda url: sms_transport(twilio_settings(url, secrets_dir), tmp_path).send(
                Delivery(message(), "+16135550422", "rec-big")))
    assert isinstance(raised, PermanentDeliveryError)  # a 201: it most likely went; not sent again
    assert (raised.reason, raised.ambiguous) == ("protocol", True)
    assert "larger than" in str(raised)


@pytest.mark.parametrize("answer", [
    Reply(200, b"<html>503 Service Unavailable</html>"),
    Reply(202, b"Authorization failed"),
    Reply(200, b"0: Accepted for delivery\xff\xfe"),
    Reply(200, b"\xc3\x28"),
    Reply(202, b""),
    Reply(204, b""),
    Reply(202, b"0: Accepted for delivery, or not"),
])
def test_kannel_answering_2xx_without_accepting_is_a_dead_letter_that_may_have_gone(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer, answer: Reply) -> None:
    http_server.script(answer)
    transport = sms_transport(kannel_settings(http_server.url + "/cgi-bin/sendsms", secrets_dir), tmp_path)
    with pytest.raises(PermanentDeliveryError) as err:
        transport.send(Delivery(message(), "+16135550423", "rec-kannel-odd"))
    assert (err.value.reason, err.value.status, err.value.ambiguous) == ("protocol", answer.status, True)
    assert "unexpected answer" in str(err.value)
    assert len(http_server.seen) == 1  # not sent again
    http_server.script(Reply(202, b"3: Queued for later delivery"))  # Kannel's own words are still taken
    receipt = transport.send(Delivery(message(), "+16135550423", "rec-kannel-queued"))
    assert (receipt.provider_id, receipt.status) == ("rec-kannel-queued", "queued")


def test_twilio_answering_that_the_message_failed_is_a_refusal_with_its_code(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer) -> None:
    http_server.script(Reply(201, json.dumps({"sid": None, "status": "failed", "error_code": 30003,
                                              "error_message": "Unreachable +16135550425"}).encode()))
    with pytest.raises(PermanentDeliveryError) as err:
        sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path).send(
            Delivery(message(), "+16135550425", "rec-twilio-failed"))
    assert (err.value.reason, err.value.status, err.value.ambiguous) == ("rejected", 201, False)
    assert "30003" in str(err.value) and "6135550425" not in str(err.value)


@pytest.mark.parametrize("body", [
    b"<html>oops</html>", b'["sid"]', b"{}", b'{"status": "queued"}', b'{"sid": {"a": 1}}', b'{"sid": 12}',
    json.dumps({"sid": "SM" + "ab" * 15 + "a\x00"}).encode(), json.dumps({"sid": "SM\x1b[2J" + "ab" * 15}).encode(),
    json.dumps({"sid": "SM" + "ab" * 16 + "\r\nX: y"}).encode(), json.dumps({"sid": "SM" + "a" * 10_000}).encode(),
    json.dumps({"sid": "XX" + "ab" * 16}).encode(), b"\xff\xfe{}",
])
def test_twilio_answering_2xx_without_a_message_sid_is_a_dead_letter_that_may_have_gone(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer, body: bytes) -> None:
    http_server.script(Reply(201, body))
    with pytest.raises(PermanentDeliveryError) as err:
        sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path).send(
            Delivery(message(), "+16135550426", "rec-twilio-odd"))
    assert (err.value.reason, err.value.status, err.value.ambiguous) == ("protocol", 201, True)
    assert "unexpected answer" in str(err.value)
    assert len(http_server.seen) == 1


def test_twilio_s_odd_status_or_segments_do_not_reach_the_receipt(
        secrets_dir: Path, tmp_path: Path, http_server: ScriptedHTTPServer) -> None:
    http_server.script(Reply(201, json.dumps({"sid": "MM" + "AB" * 16, "status": {"x": 1},
                                              "num_segments": "9" * 5000}).encode()))
    receipt = sms_transport(twilio_settings(http_server.url, secrets_dir), tmp_path).send(
        Delivery(message(), "+16135550427", "rec-twilio-mm"))
    assert (receipt.provider_id, receipt.status) == ("MM" + "AB" * 16, "accepted")
    assert receipt.detail is not None and len(receipt.detail) < 100
