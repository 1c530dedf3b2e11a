"""A clinic's day with real servers and the processes a clinic runs: Kannel (with the settings
docs/transports.md gives) and handsets, an SMTP server that requires STARTTLS and AUTH
(aiosmtpd), ``emrcomm serve`` and ``emrcomm worker`` in processes of their own, their clocks at
10:00 and then at 22:00 in Ottawa. Reminders in English and French and a clinical note with its
notice leave in the morning; the notice's link opens; an email is unsubscribed in one click; the
front desk records an opt-out; at 22:00 STOP and ARRET are confirmed at once, HELP after STOP is
answered and START confirmed, while the clinic's own reminder waits for morning; the timeline
shows each of these."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from conftest import Clock
from emrcomm.clock import VARIABLE, shift_to
from emrcomm.host import Host
from emrcomm.model import Category, Request, Sensitivity, Status
from emrcomm.testing import TEST_NOW
from mailservers import USERNAME, CertificateAuthority, SmtpServer
from servers import Process, free_port, wait_until
from support import BASE_CONFIG
from test_kannel_callbacks import EMRCOMM, PASSWORD, SECRET, KannelWithHandsets, healthy, kannel_sms, texts_to
from test_worker import APPOINTMENT

pytestmark = pytest.mark.kannel

SMTP_PASSWORD = "relay-test-pw-3b8e"
PORTAL = "https://portal.riverside.example"
ALEX, CHLOE = "+16135550123", "+15145550199"  # Patient/on-en (English), Patient/qc-fr (French)
NIGHT = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)  # 22:00 in Ottawa
from emrcomm_sms.callbacks import kannel_mo_url  # noqa: E402


class Clinic:
    def __init__(self, host: Host, folder: Path, kannel: KannelWithHandsets, relay: SmtpServer, port: int,
                 monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
        self.host, self.folder, self.kannel, self.relay, self.port = host, folder, kannel, relay, port
        self.monkeypatch, self.clock = monkeypatch, clock
        self.config = folder / "emrcomm.toml"

    def at(self, instant: dt.datetime) -> None:
        """The EMR's host reads ``instant``; the processes started from now on live at it (moving
        on at real speed)."""
        self.clock.now = instant
        self.monkeypatch.setenv(VARIABLE, shift_to(instant))

    def run(self, *args: str) -> str:
        done = subprocess.run([str(EMRCOMM), *args, "--config", str(self.config)], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        return done.stdout

    @contextmanager
    def serving(self) -> Iterator[str]:
        serve = Process([EMRCOMM, "serve", "--config", self.config, "--port", str(self.port)],
                        self.folder / f"serve-{self.port}.log")
        try:
            wait_until(lambda: not serve.alive() or healthy(self.port), 30, "emrcomm serve to answer")
            assert serve.alive(), (self.folder / f"serve-{self.port}.log").read_text(errors="replace")[-2000:]
            yield f"http://127.0.0.1:{self.port}"
        finally:
            serve.stop(20)

    def mails(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(r.content, policy=email.policy.default)  # type: ignore[misc]
                for r in self.relay.handler.received]


@pytest.fixture
def clinic(make_host: Callable[..., Host], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           clock: Clock) -> Iterator[Clinic]:
    port = free_port()
    base = f"http://127.0.0.1:{port}/callbacks"
    (tmp_path / "callback-secret").write_text(SECRET, encoding="utf-8")
    (tmp_path / "kannel-pw").write_text(PASSWORD, encoding="utf-8")
    (tmp_path / "smtp-password").write_text(SMTP_PASSWORD, encoding="utf-8")
    ca = CertificateAuthority(tmp_path / "ca")
    relay = SmtpServer(ca, starttls=True, password=SMTP_PASSWORD)
    kannel = KannelWithHandsets(tmp_path / "kannel", mo_url=kannel_mo_url(base, SECRET))
    try:
        config = BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', kannel_sms(kannel, base, tmp_path))
        config = config.replace('[plugins.email]\ndirectory = "out/email"\n', f"""[plugins.email]
transport = "smtp"
from = "Riverside Family Health <noreply@riverside.example>"
[plugins.email.smtp]
host = "localhost"
port = {relay.port}
username = "{USERNAME}"
password = {{file = "{tmp_path / 'smtp-password'}"}}
ca_file = "{ca.ca_file}"
timeout = 10
""")
        host = make_host('\n[delivery]\nmode = "queue"\n', config_text=config)
        yield Clinic(host, tmp_path, kannel, relay, port, monkeypatch, clock)
    finally:
        kannel.stop()
        relay.stop()


def reminder(rid: str, patient: str, channel: str = "sms") -> Request:
    return Request(patient, Category.APPOINTMENT_REMINDER, id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT}, channel=channel)


def test_a_clinic_day_from_morning_reminders_to_a_stop_at_ten_at_night(clinic: Clinic) -> None:
    host, kannel = clinic.host, clinic.kannel
    # -- 10:00: the EMR asks; the worker delivers -------------------------------------------------
    for request in (reminder("en-1", "Patient/on-en"), reminder("fr-1", "Patient/qc-fr"),
                    reminder("mail-1", "Patient/on-en", channel="email"),
                    reminder("mail-fr", "Patient/qc-fr", channel="email"),
                    Request("Patient/on-en", Category.CLINICAL, id="note-1", sensitivity=Sensitivity.RESTRICTED,
                            text="Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily.")):
        assert host.send(request).status is Status.QUEUED, request.id
    clinic.at(TEST_NOW + dt.timedelta(minutes=1))
    clinic.run("worker", "--once")
    kannel.wait_for(ALEX, 2)
    kannel.wait_for(CHLOE, 1)
    wait_until(lambda: len(clinic.mails()) >= 2, 20, "the two emails at the SMTP server")
    assert "Rendez-vous" in texts_to(kannel, CHLOE)[0]
    [notice] = [t for t in texts_to(kannel, ALEX) if "/m/" in t]
    assert "metformin" not in notice and "HbA1c" not in notice

    with clinic.serving() as serve:
        # the notice's link opens the portal's confirm page
        [path] = re.findall(re.escape(PORTAL) + r"(/m/\S+)", notice)
        assert requests.get(serve + path, timeout=10).status_code == 200
        # the patient unsubscribes from email in one click; the email said no "Reply STOP"
        [mail] = [m for m in clinic.mails() if m["To"] == "alex.martin@example.org"]
        assert "STOP" not in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        [link] = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
        assert requests.post(serve + link.removeprefix(PORTAL), data={"List-Unsubscribe": "One-Click"},
                             timeout=10).status_code == 200
    # Chloé tells the front desk: no more email
    clinic.run("consent", "revoke", "--patient", "Patient/qc-fr", "--channel", "email", "--by", "J. Tremblay")

    # -- 22:00: the patients text back; serve answers, the worker sends at once --------------------
    clinic.at(NIGHT)
    late = host.send(reminder("en-2", "Patient/on-en"))  # the clinic's own message now waits
    assert late.status is Status.HELD
    with clinic.serving():
        ledger = host.storage.consent

        def revoked(number: str) -> bool:
            last = ledger.last(channel="sms", address=number)
            return last is not None and last.revokes

        kannel.handset_sends(ALEX, "STOP", lambda: revoked(ALEX))
        kannel.handset_sends(CHLOE, "ARRET", lambda: revoked(CHLOE))
        clinic.at(NIGHT + dt.timedelta(minutes=1))
        clinic.run("worker", "--once")
        kannel.wait_for(ALEX, 3)
        kannel.wait_for(CHLOE, 2)
        assert "no longer receive" in texts_to(kannel, ALEX)[-1]
        assert "ne recevrez plus" in texts_to(kannel, CHLOE)[-1]
        answered = len(texts_to(kannel, ALEX))
        kannel.handset_sends(ALEX, "HELP", lambda: bool(list(host.storage.records.find(category="help-reply"))))
        clinic.run("worker", "--once")
        kannel.wait_for(ALEX, answered + 1)
        assert "+1 613 555 0100" in texts_to(kannel, ALEX)[-1]
        kannel.handset_sends(ALEX, "START", lambda: not revoked(ALEX))
        clinic.run("worker", "--once")
        kannel.wait_for(ALEX, answered + 2)
        assert "again" in texts_to(kannel, ALEX)[-1]
    assert sum("your appointment" in t for t in texts_to(kannel, ALEX)) == 1  # en-2 still held

    # -- the timeline says what happened -------------------------------------------------------------
    clinic.at(NIGHT + dt.timedelta(minutes=5))
    alex = clinic.run("records", "--patient", "Patient/on-en")
    for words in ("Appointment reminder by SMS to 613-555-0123", "notice of the portal message by SMS",
                  "Opted out of email at alex.martin@example.org by email unsubscribe link",
                  "Opted out of SMS at 613-555-0123 by STOP reply", "Opt-out confirmation by SMS",
                  "Answer to HELP by SMS", "Opted in to SMS at 613-555-0123 by START reply",
                  "Opt-in confirmation by SMS", "held until 2026-11-24 08:00"):
        assert words in alex, (words, alex)
    chloe = clinic.run("records", "--patient", "Patient/qc-fr")
    for words in ("Opted out of email at chloe.gagnon@example.org by front desk, in person, recorded by J. Tremblay",
                  "Opted out of SMS at 514-555-0199 by ARRET reply", "Opt-out confirmation by SMS"):
        assert words in chloe, (words, chloe)
