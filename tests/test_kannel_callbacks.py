"""Real Kannel (bearerbox + smsbox + fakesmsc) calling ``emrcomm serve``'s app back: delivery
reports update the record; a STOP a handset sends (a second fake SMSC injects it as MO) blocks
the next message to that number and gets exactly one confirmation; unauthenticated callbacks
are refused."""

from __future__ import annotations

import datetime as dt
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, urlsplit

import pytest
import requests

from conftest import Clock
from emrcomm.clock import VARIABLE, shift_to
from emrcomm.host import Host
from emrcomm.model import Status
from emrcomm.web.security import UNAVAILABLE
from emrcomm_sms.callbacks import kannel_mo_url
from servers import (
    FAKESMSC,
    Kannel,
    Process,
    Reply,
    ScriptedHTTPServer,
    Seen,
    free_port,
    healthy,
    listening_socket,
    wait_until,
)
from support import BASE_CONFIG, communication
from test_worker import reminder

pytestmark = pytest.mark.kannel

PASSWORD = "kannel-test-pw-91c2"
SECRET = "callback-secret-5d1e"
NUMBER = "+16135550123"  # Patient/on-en
CLINIC_NUMBER = "+16135550100"
EMRCOMM = Path(sys.executable).with_name("emrcomm")


class KannelWithHandsets(Kannel):
    """The test Kannel, plus a second fake SMSC ("mo") through which handsets send messages, and
    an sms-service that forwards every MO message to ``mo_url``."""

    def __init__(self, directory: Path, *, mo_url: str) -> None:
        self.mo_url = mo_url
        super().__init__(directory, password=PASSWORD)

    def _start(self, smsc: bool) -> None:
        self.ports["mo_port"] = free_port()
        conf = self.conf.read_text(encoding="utf-8")
        service = 'max-messages = 0\ntext = "unused"'
        assert service in conf
        conf = conf.replace(service, f'max-messages = 0\nget-url = "{self.mo_url}"')
        conf += (f'\ngroup = smsc\nsmsc = fake\nsmsc-id = mo\nport = {self.ports["mo_port"]}\n'
                 'our-host = 127.0.0.1\nconnect-allow-ip = "127.0.0.1"\nallowed-smsc-id = mo\n')
        self.conf.write_text(conf, encoding="utf-8")
        super()._start(smsc)

    def handset_sends(self, sender: str, text: str, arrived: Callable[[], bool], *, ucs2: bool = False) -> None:
        """One MO message from ``sender`` to the clinic's number, through the "mo" fake SMSC;
        with ``ucs2``, coded as a phone codes a text with a character outside GSM-7 ("ARRÊT").

        fakesmsc stays connected after its message and the fake SMSC serves one client at a
        time: the handset is stopped (by PID) once ``arrived()`` says the message got through.
        """
        log = self.dir / f"handset-{time.monotonic_ns()}.log"
        body = f"ucs2 {quote_from_bytes(text.encode('utf-16-be'), safe='')}" if ucs2 else f"text {text}"
        handset = Process([FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["mo_port"]), "-i", "0", "-m", "1",
                           f"{sender} {CLINIC_NUMBER} {body}"], log)
        try:
            wait_until(arrived, 15, f"the handset's {text!r} to arrive")
        finally:
            handset.stop()


def kannel_sms(kannel: Kannel, base: str, tmp_path: Path) -> str:
    """The sms plugin's settings for the test Kannel, with the settings docs/transports.md gives."""
    return f"""
[plugins.sms]
transport = "kannel"
from = "{CLINIC_NUMBER}"
callback_url = "{base}"
callback_secret = {{file = "{tmp_path / 'callback-secret'}"}}
[plugins.sms.kannel]
url = "{kannel.sendsms_url}"
username = "emrcomm"
smsc = "fake"
password = {{file = "{tmp_path / 'kannel-pw'}"}}
max_messages = 10
concatenation = true
"""


@contextmanager
def serving(host: Host, sock: socket.socket) -> Iterator[str]:
    import uvicorn

    from emrcomm.web import create_app

    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(host), access_log=False, log_config=None, server_header=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="emrcomm-serve", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 20, "the app to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def setup(make_host: Callable[..., Host], tmp_path: Path) -> Iterator[tuple[Host, KannelWithHandsets, str]]:
    app = listening_socket()  # bound now: Kannel's configuration names its port
    base = f"http://127.0.0.1:{app.getsockname()[1]}/callbacks"
    (tmp_path / "callback-secret").write_text(SECRET, encoding="utf-8")
    (tmp_path / "kannel-pw").write_text(PASSWORD, encoding="utf-8")
    kannel = KannelWithHandsets(tmp_path / "kannel", mo_url=kannel_mo_url(base, SECRET))
    try:
        sms = kannel_sms(kannel, base, tmp_path)
        host = make_host(config_text=BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', sms))
        with serving(host, app) as url:
            yield host, kannel, url
    finally:
        kannel.stop()
        app.close()


def texts_to(kannel: Kannel, number: str) -> list[str]:
    return [m.data.decode("utf-8", "replace") for m in kannel.received() if m.receiver == number]


def test_delivery_reports_from_kannel_update_the_record(setup: tuple[Host, KannelWithHandsets, str]) -> None:
    host, kannel, _ = setup
    outcome = host.send(reminder())
    assert outcome.status is Status.SENT
    kannel.wait_for(NUMBER)

    def delivered() -> bool:
        resource = communication(host, outcome.record_ids[0]) or {}
        return any(n["text"].startswith("delivered") for n in resource.get("note", []))

    wait_until(delivered, 15, "the delivery report to reach the record")


def test_stop_from_a_handset_blocks_the_next_sms_and_is_confirmed_once(
    setup: tuple[Host, KannelWithHandsets, str]
) -> None:
    host, kannel, _ = setup
    host.send(reminder("r-1"))
    kannel.wait_for(NUMBER)
    def revocations() -> int:
        return sum(e.revokes for e in host.storage.consent.events(channel="sms", address=NUMBER))

    kannel.handset_sends(NUMBER, "STOP", lambda: revocations() == 1)  # the ledger, at once
    wait_until(lambda: len(texts_to(kannel, NUMBER)) >= 2, 15, "the confirmation at fakesmsc")
    assert "no longer receive" in texts_to(kannel, NUMBER)[1]
    kannel.handset_sends(NUMBER, "stop", lambda: revocations() == 2)  # a second STOP: no second confirmation
    outcome = host.send(reminder("r-2"))
    assert "sms" not in outcome.channels
    time.sleep(2)  # give Kannel time to deliver anything that should not have gone
    assert len(texts_to(kannel, NUMBER)) == 2


def test_an_arret_a_phone_sends_in_ucs2_opts_out_in_the_patients_words(
    setup: tuple[Host, KannelWithHandsets, str]
) -> None:
    """"ARRÊT" has a letter GSM-7 lacks, so a phone sends it in UCS-2 and Kannel passes it on as
    UTF-16BE: it is still the patient's ARRÊT, confirmed, and filed as she wrote it."""
    host, kannel, _ = setup
    host.send(reminder("r-1"))
    kannel.wait_for(NUMBER)
    kannel.handset_sends(NUMBER, "ARRÊT", lambda: bool(host.storage.consent.events(channel="sms", address=NUMBER))
                         or bool(host.storage.inbox.items()), ucs2=True)
    [event] = host.storage.consent.events(channel="sms", address=NUMBER)
    assert event.revokes and event.source == "ARRÊT reply"
    wait_until(lambda: len(texts_to(kannel, NUMBER)) >= 2, 15, "the confirmation at fakesmsc")
    assert "no longer receive" in texts_to(kannel, NUMBER)[1]
    [reply] = [e["resource"] for e in host.records(patient="Patient/on-en")["entry"]
               if e["resource"].get("sender") == {"reference": "Patient/on-en"}]
    assert reply["payload"] == [{"contentString": "ARRÊT"}]


def test_unauthenticated_callbacks_are_refused(setup: tuple[Host, KannelWithHandsets, str]) -> None:
    host, _, url = setup
    [record] = host.send(reminder()).record_ids
    forged = requests.get(f"{url}/callbacks/kannel/dlr", params={"record": record, "type": "2"}, timeout=10)
    assert forged.status_code == 403
    mo = requests.get(f"{url}/callbacks/kannel/mo", params={"from": NUMBER, "text": "STOP", "token": "x"}, timeout=10)
    assert mo.status_code == 403
    assert host.storage.consent.events(channel="sms", address=NUMBER) == []
    resource = communication(host, record)
    assert resource is not None and resource["status"] == "completed"


# -- `emrcomm serve` in a process of its own, at 22:00 -------------------------------------------

LATE = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)  # 22:00 in Ottawa: inside quiet hours


@pytest.fixture
def late_serve(make_host: Callable[..., Host], tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Host, KannelWithHandsets]]:
    """Kannel with handsets calling back a ``emrcomm serve`` process whose clock reads 22:00 in
    Ottawa (EMRCOMM_CLOCK); the test's own host (10:00) sent the clinic's reminder earlier."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/callbacks"
    (tmp_path / "callback-secret").write_text(SECRET, encoding="utf-8")
    (tmp_path / "kannel-pw").write_text(PASSWORD, encoding="utf-8")
    kannel = KannelWithHandsets(tmp_path / "kannel", mo_url=kannel_mo_url(base, SECRET))
    serve = None
    try:
        host = make_host(config_text=BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n',
                                                         kannel_sms(kannel, base, tmp_path)))
        monkeypatch.setenv(VARIABLE, shift_to(LATE))  # for the serve process only: the host has its own clock
        serve = Process([EMRCOMM, "serve", "--config", tmp_path / "emrcomm.toml", "--port", str(port)],
                        tmp_path / "serve.log")
        wait_until(lambda: not serve.alive() or healthy(port), 30, "emrcomm serve to answer")
        assert serve.alive(), (tmp_path / "serve.log").read_text(errors="replace")[-2000:]
        yield host, kannel
    finally:
        if serve is not None:
            serve.stop(20)
        kannel.stop()


def test_stop_at_ten_at_night_is_confirmed_at_once_and_help_and_start_are_answered_by_text(
    late_serve: tuple[Host, KannelWithHandsets]
) -> None:
    host, kannel = late_serve
    [reminded] = host.send(reminder("r-1")).record_ids
    kannel.wait_for(NUMBER)

    def filed(category: str) -> list[dict[str, Any]]:
        return [e["resource"] for e in host.records(patient="Patient/on-en", category=category).get("entry", [])]

    # STOP at 22:00: the ledger at once, and the confirmation leaves at once (no worker runs here)
    kannel.handset_sends(NUMBER, "STOP", lambda: bool(filed("optout-confirmation")))
    wait_until(lambda: len(texts_to(kannel, NUMBER)) >= 2, 15, "the confirmation at fakesmsc")
    assert "no longer receive" in texts_to(kannel, NUMBER)[1]
    # the handset can have it before serve has filed Kannel's answer: wait for the record to say so
    wait_until(lambda: all("sent" in c for c in filed("optout-confirmation")), 15, "the confirmation filed as sent")
    [confirmation] = filed("optout-confirmation")
    assert confirmation["sent"].startswith("2026-11-24T03:")  # 22:00 in Ottawa, not held until 08:00
    # HELP after STOP: answered by text, on the channel it came in on
    kannel.handset_sends(NUMBER, "HELP", lambda: bool(filed("help-reply")))
    wait_until(lambda: len(texts_to(kannel, NUMBER)) >= 3, 15, "the help reply at fakesmsc")
    assert "reply STOP" in texts_to(kannel, NUMBER)[2]
    # START: re-subscribed and confirmed
    kannel.handset_sends(NUMBER, "START", lambda: bool(filed("optin-confirmation")))
    wait_until(lambda: len(texts_to(kannel, NUMBER)) >= 4, 15, "the START confirmation at fakesmsc")
    assert "receive our text messages again" in texts_to(kannel, NUMBER)[3]
    # every answer in response to the patient's own message, which answers the clinic's reminder
    replies = {r["id"]: r for r in filed("appointment-reminder") if r.get("sender") == {"reference": "Patient/on-en"}}
    assert {r["inResponseTo"][0]["reference"] for r in replies.values()} == {f"Communication/{reminded}"}
    for category in ("optout-confirmation", "help-reply", "optin-confirmation"):
        # as with the confirmation above, the handset can have an answer before serve has filed
        # Kannel's acceptance of it: wait for the record, and fail if it never says so
        wait_until(lambda c=category: [a["status"] for a in filed(c)] == ["completed"], 15,
                   f"the {category} filed as completed")
        [answer] = filed(category)
        assert answer["inResponseTo"][0]["reference"].removeprefix("Communication/") in replies



# -- serve away: Kannel sends its reports and the patients' messages again ----------------------------

class Outage(ScriptedHTTPServer):
    """At serve's address, in front of it: answers every request 503 with Retry-After, as serve
    does while its database cannot be reached, until :meth:`over`; then passes each on to serve.
    ``answers`` holds the path and status of each request, in order."""

    def __init__(self) -> None:
        super().__init__(Reply(503, UNAVAILABLE.encode("utf-8"), (("Retry-After", "10"),)))
        self.serve: str | None = None
        self.answers: list[tuple[str, int]] = []

    def over(self, serve: str) -> None:
        self.serve = serve

    def record(self, seen: Seen) -> Reply:
        reply = super().record(seen)
        if self.serve is not None:
            answer = requests.request(seen.method, self.serve + seen.path, data=seen.body, timeout=30)
            reply = Reply(answer.status_code, answer.content)
        self.answers.append((urlsplit(seen.path).path, reply.status))
        return reply

    def answered(self, path: str, status: int) -> int:
        return sum(1 for p, s in self.answers if p == f"/callbacks/kannel/{path}" and s == status)


def gateway(make_host: Callable[..., Host], tmp_path: Path, base: str) -> tuple[Host, KannelWithHandsets]:
    """The test Kannel, calling back ``base``, and a host sending through it."""
    (tmp_path / "callback-secret").write_text(SECRET, encoding="utf-8")
    (tmp_path / "kannel-pw").write_text(PASSWORD, encoding="utf-8")
    kannel = KannelWithHandsets(tmp_path / "kannel", mo_url=kannel_mo_url(base, SECRET))
    try:
        host = make_host(config_text=BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n',
                                                         kannel_sms(kannel, base, tmp_path)))
    except BaseException:
        kannel.stop()
        raise
    return host, kannel


@pytest.fixture
def unavailable(make_host: Callable[..., Host],
                tmp_path: Path) -> Iterator[tuple[Host, KannelWithHandsets, Outage, str]]:
    """Kannel calling back an :class:`Outage` in front of the host's app; and the app's address."""
    outage, app = Outage(), listening_socket()
    try:
        host, kannel = gateway(make_host, tmp_path, f"{outage.url}/callbacks")
        try:
            with serving(host, app) as url:
                yield host, kannel, outage, url
        finally:
            kannel.stop()
    finally:
        outage.close()
        app.close()


@pytest.fixture
def down(make_host: Callable[..., Host], tmp_path: Path) -> Iterator[tuple[Host, KannelWithHandsets, socket.socket]]:
    """Kannel calling back an address that refuses connections (bound, not listening) until the
    host's app is served on it."""
    app = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        app.bind(("127.0.0.1", 0))
        host, kannel = gateway(make_host, tmp_path, f"http://127.0.0.1:{app.getsockname()[1]}/callbacks")
        try:
            yield host, kannel, app
        finally:
            kannel.stop()
    finally:
        app.close()


def delivered(host: Host, record: str) -> bool:
    resource = communication(host, record) or {}
    return any(n["text"].startswith("delivered") for n in resource.get("note", []))


def revocations(host: Host) -> int:
    return sum(e.revokes for e in host.storage.consent.events(channel="sms", address=NUMBER))


def confirmations(host: Host) -> int:
    return len(host.records(patient="Patient/on-en", category="optout-confirmation").get("entry", []))


def refused(kannel: Kannel, path: str) -> bool:
    """smsbox logged that serve refused its connection for a request to ``path``."""
    log = kannel.dir / "smsbox.log"
    lines = log.read_bytes().splitlines() if log.exists() else []
    return any(b"Couldn't fetch" in line and f"/callbacks/kannel/{path}?".encode() in line for line in lines)


def test_a_report_and_a_stop_answered_503_reach_the_chart_once_serve_is_back(
    unavailable: tuple[Host, KannelWithHandsets, Outage, str]
) -> None:
    """With http-request-retry and http-queue-delay (docs/transports.md), smsbox sends a report
    or a patient's message that serve answered 503 again every 10 s: once serve takes them, the
    record ends delivered, and the STOP is in the ledger and confirmed, once."""
    host, kannel, outage, url = unavailable
    [record] = host.send(reminder()).record_ids
    kannel.wait_for(NUMBER)
    wait_until(lambda: outage.answered("dlr", 503) >= 1, 15, "Kannel's report to be answered 503")
    kannel.handset_sends(NUMBER, "STOP", lambda: outage.answered("mo", 503) >= 1)
    assert not delivered(host, record) and revocations(host) == 0  # nothing reached the chart meanwhile
    outage.over(url)
    wait_until(lambda: delivered(host, record), 60, "Kannel to send the report again")
    wait_until(lambda: len(texts_to(kannel, NUMBER)) >= 2, 60, "Kannel to send the STOP again, and its confirmation")
    assert "no longer receive" in texts_to(kannel, NUMBER)[1]
    # serve answers Kannel once the confirmation is sent: wait for its 200, after which Kannel sends no more
    wait_until(lambda: outage.answered("mo", 200) >= 1, 30, "serve's answer to the STOP")
    assert outage.answered("mo", 200) == 1
    assert revocations(host) == 1 and confirmations(host) == 1


def test_a_report_and_a_stop_sent_while_serve_is_down_reach_the_chart_once_it_is_up(
    down: tuple[Host, KannelWithHandsets, socket.socket]
) -> None:
    """serve restarting (connection refused): smsbox tries again every 10 s, as for a 503."""
    host, kannel, app = down
    [record] = host.send(reminder()).record_ids
    kannel.wait_for(NUMBER)
    wait_until(lambda: refused(kannel, "dlr"), 15, "Kannel's report to be refused")
    kannel.handset_sends(NUMBER, "STOP", lambda: refused(kannel, "mo"))
    with serving(host, app):
        wait_until(lambda: delivered(host, record), 60, "Kannel to send the report again")
        wait_until(lambda: len(texts_to(kannel, NUMBER)) >= 2, 60, "Kannel to send the STOP again, and its confirmation")
        assert "no longer receive" in texts_to(kannel, NUMBER)[1]
        assert revocations(host) == 1 and confirmations(host) == 1


class LostAnswer(Outage):
    """Passes every request on to serve, and answers Kannel 503 to the first patient's message
    serve took: as if serve's 200 was lost (a timeout, a proxy), so that smsbox sends it again."""

    def __init__(self, serve: str) -> None:
        super().__init__()
        self.over(serve)
        self.lost = False

    def record(self, seen: Seen) -> Reply:
        reply = super().record(seen)
        if not self.lost and urlsplit(seen.path).path.endswith("/kannel/mo") and reply.status == 200:
            self.lost = True
            self.answers[-1] = (self.answers[-1][0], 503)
            return Reply(503, UNAVAILABLE.encode("utf-8"), (("Retry-After", "10"),))
        return reply


def test_a_message_through_a_get_url_without_its_id_is_filed_once_when_smsbox_sends_it_again(
    make_host: Callable[..., Host], tmp_path: Path, clock: Clock
) -> None:
    """An earlier release's get-url had no id=%I: smsbox's retry of a message serve took (its
    answer lost) is the same message, by %T, the time Kannel received it; not a second reply."""
    app = listening_socket()
    outage = LostAnswer(f"http://127.0.0.1:{app.getsockname()[1]}")
    kannel: KannelWithHandsets | None = None
    try:
        (tmp_path / "callback-secret").write_text(SECRET, encoding="utf-8")
        (tmp_path / "kannel-pw").write_text(PASSWORD, encoding="utf-8")
        old_url = kannel_mo_url(f"{outage.url}/callbacks", SECRET).replace("&id=%I", "")
        kannel = KannelWithHandsets(tmp_path / "kannel", mo_url=old_url)
        host = make_host(config_text=BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n',
                                                         kannel_sms(kannel, f"{outage.url}/callbacks", tmp_path)))

        def replies() -> list[dict[str, Any]]:
            return [e["resource"] for e in host.records(patient="Patient/on-en").get("entry", [])
                    if e["resource"].get("sender") == {"reference": "Patient/on-en"}]

        with serving(host, app):
            host.send(reminder())
            kannel.wait_for(NUMBER)
            kannel.handset_sends(NUMBER, "Can I come at 10 instead?", lambda: outage.lost)
            clock.now += dt.timedelta(seconds=10)  # serve's clock when smsbox sends it again
            wait_until(lambda: outage.answered("mo", 200) >= 1, 40, "smsbox to send the message again")
            assert len(replies()) == 1
    finally:
        if kannel is not None:
            kannel.stop()
        outage.close()
        app.close()
