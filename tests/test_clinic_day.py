"""A clinic's day with real servers and the processes a clinic runs: Kannel (with the settings
docs/transports.md gives) and handsets, an SMTP server that requires STARTTLS and AUTH
(aiosmtpd), ``emrcomm serve`` and ``emrcomm worker`` in processes of their own, their clocks at
10:00 and then at 22:00 in Ottawa, and Debian's Chromium for the patient's phone and the front
desk's screen. Reminders in English and French and a clinical note with its notice leave in the
morning; the patient opens the notice's link as it reached the handset, passes the date-of-birth
check, reads the note, replies and reads it again; the email's unsubscribe link is opened and
confirmed; the front desk records an opt-out; at 22:00 STOP and ARRÊT are confirmed at once, HELP
after STOP is answered and START confirmed, while the clinic's own reminder waits for morning;
the timeline, in ``emrcomm records`` and on the staff page, shows each of these in order.
Screenshots go to tests/artifacts/clinic-day/."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright import sync_api

from conftest import Clock
from emrcomm.clock import VARIABLE, shift_to
from emrcomm.host import Host
from emrcomm.model import Category, Request, Sensitivity, Status
from emrcomm.testing import TEST_NOW
from mailservers import CertificateAuthority, SmtpServer, through_relay
from portal_kit import BIRTH_DATE
from servers import Process, free_port, wait_until
from support import BASE_CONFIG, REPO
from test_kannel_callbacks import EMRCOMM, PASSWORD, SECRET, KannelWithHandsets, healthy, kannel_sms, texts_to
from test_portal_browser import ARGS, CHROMIUM, EN, VIEWPORTS, give_birth_date, heading
from test_worker import APPOINTMENT

pytestmark = [pytest.mark.kannel, pytest.mark.chromium]

SMTP_PASSWORD = "relay-test-pw-3b8e"
PORTAL = "https://portal.riverside.example"
ALEX, CHLOE = "+16135550123", "+15145550199"  # Patient/on-en (English), Patient/qc-fr (French)
NIGHT = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)  # 22:00 in Ottawa
NOTE = "Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily."
QUESTION = "Should I take the metformin with food?"
STAFF_PASSWORD = "front desk passphrase 7c41"
ARTIFACTS = REPO / "tests" / "artifacts" / "clinic-day"
from emrcomm_sms.callbacks import kannel_mo_url  # noqa: E402


class Clinic:
    def __init__(self, host: Host, folder: Path, kannel: KannelWithHandsets, relay: SmtpServer, port: int,
                 monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
        self.host, self.folder, self.kannel, self.relay, self.port = host, folder, kannel, relay, port
        self.monkeypatch, self.clock = monkeypatch, clock
        self.config = folder / "emrcomm.toml"
        self.logs: list[Path] = []

    def at(self, instant: dt.datetime) -> None:
        """The EMR's host reads ``instant``; the processes started from now on live at it (moving
        on at real speed)."""
        self.clock.now = instant
        self.monkeypatch.setenv(VARIABLE, shift_to(instant))

    def run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([str(EMRCOMM), *args, "--config", str(self.config)], capture_output=True, text=True,
                              input=stdin, timeout=120, check=False)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        return done.stdout

    @contextmanager
    def serving(self) -> Iterator[str]:
        log = self.folder / f"serve-{len(self.logs)}.log"
        self.logs.append(log)
        serve = Process([EMRCOMM, "serve", "--config", self.config, "--port", str(self.port)], log)
        try:
            wait_until(lambda: not serve.alive() or healthy(self.port), 30, "emrcomm serve to answer")
            assert serve.alive(), log.read_text(errors="replace")[-2000:]
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
        config = through_relay(config, relay, ca, tmp_path / "smtp-password")
        host = make_host('\n[delivery]\nmode = "queue"\n', config_text=config)
        yield Clinic(host, tmp_path, kannel, relay, port, monkeypatch, clock)
    finally:
        kannel.stop()
        relay.stop()


@pytest.fixture
def chromium() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screen(browser: Any, viewport: str) -> Any:
    """A tab of its own (its own cookies) at a phone's or a desktop's width."""
    return browser.new_context(viewport=VIEWPORTS[viewport], locale="en-CA").new_page()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def submit(page: Any, button: str) -> None:
    """Each step is a form post: wait for the new page, or the old heading may still be read."""
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()


def reminder(rid: str, patient: str, channel: str = "sms") -> Request:
    return Request(patient, Category.APPOINTMENT_REMINDER, id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT}, channel=channel)


def revoked(host: Host, channel: str, address: str) -> bool:
    last = host.storage.consent.last(channel=channel, address=address)
    return last is not None and last.revokes


def reported(host: Host, *patients: str) -> bool:
    """Every text that left for these patients has its delivery report from Kannel."""
    return not any(r.state == "accepted" for p in patients for r in host.storage.records.find(patient=p, channel="sms"))


def timeline(page: Any) -> list[str]:
    """The staff page's entries, each as its headline."""
    return [str(h).strip() for h in page.locator("ol.timeline > li .headline").all_inner_texts()]


# What the front desk reads, in this order (the consents on file come first).
ALEX_DAY = [
    "Consented to clinical messages by SMS at 613-555-0123 (patient file)",
    "Consented to clinical messages by email at alex.martin@example.org (patient file)",
    "Consented to clinical messages by the portal (patient file)",
    # 10:00
    "Clinical by the portal: read by the patient",
    "Appointment reminder by email to alex.martin@example.org: sent",
    "Appointment reminder by SMS to 613-555-0123: delivered",
    "Clinical: notice of the portal message by SMS to 613-555-0123: delivered",
    "Reply from the patient by the portal, to the clinical message of 2026-11-23 10:00: received",
    "Opted out of email at alex.martin@example.org by email unsubscribe link",
    # 22:00
    "Appointment reminder by SMS to 613-555-0123: held until 2026-11-24 08:00",
    "Reply from the patient by SMS, to the appointment reminder of 2026-11-23 10:00: received",
    "Opted out of SMS at 613-555-0123 by STOP reply",
    "Opt-out confirmation by SMS to 613-555-0123: delivered",
    "Reply from the patient by SMS, to the appointment reminder of 2026-11-23 10:00: received",
    "Answer to HELP by SMS to 613-555-0123: delivered",
    "Reply from the patient by SMS, to the appointment reminder of 2026-11-23 10:00: received",
    "Opted in to SMS at 613-555-0123 by START reply",
    "Opt-in confirmation by SMS to 613-555-0123: delivered",
]
CHLOE_DAY = [
    "Consented to clinical messages by SMS at 514-555-0199 (patient file)",
    "Consented to clinical messages by email at chloe.gagnon@example.org (patient file)",
    "Consented to clinical messages by the portal (patient file)",
    "Consented to billing messages by email at chloe.gagnon@example.org (patient file)",
    "Appointment reminder by SMS to 514-555-0199: delivered",
    "Appointment reminder by email to chloe.gagnon@example.org: sent",
    "Opted out of email at chloe.gagnon@example.org by front desk, in person, recorded by J. Tremblay",
    "Reply from the patient by SMS, to the appointment reminder of 2026-11-23 10:00: received",
    "Opted out of SMS at 514-555-0199 by ARRÊT reply",
    "Opt-out confirmation by SMS to 514-555-0199: delivered",
]


def test_a_clinic_day_from_morning_reminders_to_a_stop_at_ten_at_night(clinic: Clinic, chromium: Any) -> None:
    host, kannel = clinic.host, clinic.kannel
    # -- 10:00: the EMR asks; the worker delivers, serve takes Kannel's delivery reports -----------
    for request in (reminder("en-1", "Patient/on-en"), reminder("fr-1", "Patient/qc-fr"),
                    reminder("mail-1", "Patient/on-en", channel="email"),
                    reminder("mail-fr", "Patient/qc-fr", channel="email"),
                    Request("Patient/on-en", Category.CLINICAL, id="note-1", sensitivity=Sensitivity.RESTRICTED,
                            text=NOTE)):
        assert host.send(request).status is Status.QUEUED, request.id
    clinic.at(TEST_NOW + dt.timedelta(minutes=1))
    with clinic.serving() as serve:
        clinic.run("worker", "--once")
        kannel.wait_for(ALEX, 2)
        kannel.wait_for(CHLOE, 1)
        wait_until(lambda: len(clinic.mails()) >= 2, 20, "the two emails at the SMTP server")
        wait_until(lambda: reported(host, "Patient/on-en", "Patient/qc-fr"), 20, "Kannel's delivery reports")
        assert "Rendez-vous" in texts_to(kannel, CHLOE)[0]
        [notice] = [t for t in texts_to(kannel, ALEX) if "/m/" in t]
        assert "metformin" not in notice and "HbA1c" not in notice

        # on Alex's phone: the notice's link as it reached the handset, the date of birth, the note
        [path] = re.findall(re.escape(PORTAL) + r"(/m/\S+)", notice)
        phone = screen(chromium, "phone")
        phone.goto(serve + path)  # the reverse proxy's job in production
        assert heading(phone) == EN["confirm_title"] and "metformin" not in phone.content()
        shot(phone, "01-notice-link")
        submit(phone, EN["continue"])
        assert heading(phone) == EN["identity_title"]
        give_birth_date(phone, BIRTH_DATE)
        assert phone.get_by_role("article").inner_text().strip() == NOTE
        shot(phone, "02-note")
        phone.get_by_label(EN["reply_label"]).fill(QUESTION)
        submit(phone, EN["send_reply"])
        assert heading(phone) == EN["replied_title"]
        assert phone.get_by_role("article").inner_text().strip() == NOTE  # to read again after replying
        shot(phone, "03-replied")

        # Alex's email said no "Reply STOP"; its unsubscribe link, opened and confirmed
        [mail] = [m for m in clinic.mails() if m["To"] == "alex.martin@example.org"]
        words = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        [link] = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
        assert "STOP" not in words and link in words  # the header's link is the footer's
        assert mail["Reply-To"] == "Riverside Family Health <info@riverside.example>"  # replies reach staff
        phone.goto(serve + link.removeprefix(PORTAL))
        assert heading(phone) == "Stop emails from Riverside Family Health"
        assert not revoked(host, "email", "alex.martin@example.org")  # the page only asks
        submit(phone, "Stop the emails")
        assert heading(phone) == "You are unsubscribed"
        assert revoked(host, "email", "alex.martin@example.org")
        shot(phone, "04-unsubscribed")
        # the mail provider's RFC 8058 one-click POST on the same link: answered, recorded once
        assert requests.post(serve + link.removeprefix(PORTAL), data={"List-Unsubscribe": "One-Click"},
                             timeout=10).status_code == 200
        phone.context.close()
    # Chloé tells the front desk: no more email
    clinic.run("consent", "revoke", "--patient", "Patient/qc-fr", "--channel", "email", "--by", "J. Tremblay")

    # -- 22:00: the patients text back; serve answers, the worker sends at once --------------------
    clinic.at(NIGHT)
    late = host.send(reminder("en-2", "Patient/on-en"))  # the clinic's own message now waits
    assert late.status is Status.HELD
    with clinic.serving():
        kannel.handset_sends(ALEX, "STOP", lambda: revoked(host, "sms", ALEX))
        kannel.handset_sends(CHLOE, "ARRÊT", lambda: revoked(host, "sms", CHLOE))
        clinic.run("worker", "--once")  # on serve's clock: what serve queued at 22:00 leaves now
        kannel.wait_for(ALEX, 3)
        kannel.wait_for(CHLOE, 2)
        assert "no longer receive" in texts_to(kannel, ALEX)[-1]
        assert "ne recevrez plus" in texts_to(kannel, CHLOE)[-1]
        answered = len(texts_to(kannel, ALEX))
        kannel.handset_sends(ALEX, "HELP", lambda: bool(list(host.storage.records.find(category="help-reply"))))
        clinic.run("worker", "--once")
        kannel.wait_for(ALEX, answered + 1)
        assert "+1 613 555 0100" in texts_to(kannel, ALEX)[-1]
        kannel.handset_sends(ALEX, "START", lambda: not revoked(host, "sms", ALEX))
        clinic.run("worker", "--once")
        kannel.wait_for(ALEX, answered + 2)
        assert "again" in texts_to(kannel, ALEX)[-1]
        wait_until(lambda: reported(host, "Patient/on-en", "Patient/qc-fr"), 20, "Kannel's delivery reports")
    assert sum("your appointment" in t for t in texts_to(kannel, ALEX)) == 1  # en-2 still held

    # -- the timeline says what happened: emrcomm records, and the staff page in the browser ----------
    clinic.at(NIGHT + dt.timedelta(minutes=5))
    alex = clinic.run("records", "--patient", "Patient/on-en")
    for words in ALEX_DAY[3:]:
        assert words in alex, (words, alex)
    assert QUESTION not in alex  # the portal keeps the reply's words encrypted; the staff page reads them
    chloe = clinic.run("records", "--patient", "Patient/qc-fr")
    for words in CHLOE_DAY[4:]:
        assert words in chloe, (words, chloe)

    clinic.run("staff", "add", "jroy", "--full-name", "Julie Roy", "--password-stdin", stdin=STAFF_PASSWORD + "\n")
    with clinic.serving() as serve:
        desk = screen(chromium, "desktop")
        desk.goto(serve + "/staff/patients?patient=Patient/on-en")
        assert heading(desk) == "Sign in"
        desk.get_by_label("Account name").fill("jroy")
        desk.get_by_label("Password").fill(STAFF_PASSWORD)
        submit(desk, "Sign in")
        assert heading(desk).startswith("Alex Martin")
        assert timeline(desk) == ALEX_DAY
        steps = desk.locator("ol.timeline .steps").all_inner_texts()
        assert "sent at 22:00, delivered at 22:00" in steps, steps  # the STOP confirmation, at once
        assert all(t.index("sent at") < t.index("delivered at") for t in steps if "delivered" in t), steps
        assert desk.get_by_text(QUESTION).is_visible()  # the portal reply in the patient's words
        assert desk.get_by_text("STOP", exact=True).is_visible()
        shot(desk, "05-staff-alex")
        desk.goto(serve + "/staff/patients?patient=Patient/qc-fr")
        assert heading(desk).startswith("Chloé Gagnon")
        assert timeline(desk) == CHLOE_DAY
        assert desk.get_by_text("ARRÊT", exact=True).is_visible()  # her words, accent and all
        shot(desk, "06-staff-chloe")
        desk.context.close()
    # what serve wrote of the day: ids, never the words, the numbers, the addresses, the links or the password
    written = "".join(log.read_text(errors="replace") for log in clinic.logs)
    assert "POST /m/" in written and "POST /unsubscribe/" in written, written[-2000:]
    for secret in ("HbA1c", "metformin", "food", "STOP", "ARRET", "ARRÊT", "6135550123", "613-555-0123", "5145550199",
                   "alex.martin", "chloe.gagnon", STAFF_PASSWORD, path.rsplit("/", 1)[1], link.rsplit(".", 1)[1]):
        assert secret not in written, secret
