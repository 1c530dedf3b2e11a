"""Email's one-click unsubscribe (RFC 8058) end to end: a reminder leaves through an SMTP server
that requires STARTTLS (aiosmtpd) with no SMS keyword in its words and a signed
``List-Unsubscribe`` link; an ``emrcomm serve`` process answers the link: GET asks to confirm and
changes nothing, the one-click POST withdraws email consent in the ledger with its source, and
the next email is refused."""

from __future__ import annotations

import email
import email.policy
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from emrcomm.host import Host
from emrcomm.model import Request
from mailservers import CertificateAuthority, SmtpServer, through_relay
from servers import Process, free_port, healthy, wait_until
from support import BASE_CONFIG
from test_worker import APPOINTMENT

PASSWORD = "relay-test-pw-3b8e"
EMRCOMM = Path(sys.executable).with_name("emrcomm")
PORTAL = "https://portal.riverside.example"  # the clinic's portal address: a proxy in front of serve
ADDRESS = "alex.martin@example.org"  # Patient/on-en


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def relay(ca: CertificateAuthority) -> Iterator[SmtpServer]:
    server = SmtpServer(ca, starttls=True, password=PASSWORD)
    yield server
    server.stop()


@pytest.fixture
def clinic(make_host: Callable[..., Host], tmp_path: Path, relay: SmtpServer,
           ca: CertificateAuthority) -> Iterator[tuple[Host, str]]:
    """The test clinic emailing through ``relay``, and ``emrcomm serve`` (a process) on its store.
    The relay lives for the module and record ids repeat from test to test (the clock is pinned):
    its mailbox starts empty, or a test would read the email of the one before it."""
    relay.handler.received.clear()
    (tmp_path / "smtp-password").write_text(PASSWORD, encoding="utf-8")
    host = make_host(config_text=through_relay(BASE_CONFIG, relay, ca, tmp_path / "smtp-password"))
    port = free_port()
    serve = Process([EMRCOMM, "serve", "--config", tmp_path / "emrcomm.toml", "--port", str(port)],
                    tmp_path / "serve.log")
    try:
        wait_until(lambda: not serve.alive() or healthy(port), 30, "emrcomm serve to answer")
        assert serve.alive(), (tmp_path / "serve.log").read_text(errors="replace")[-2000:]
        yield host, f"http://127.0.0.1:{port}"
    finally:
        serve.stop(20)


def reminder(rid: str) -> Request:
    return Request("Patient/on-en", "appointment-reminder", id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT}, channel="email")


def arrived(relay: SmtpServer, key: str) -> email.message.EmailMessage:
    def found() -> list[email.message.EmailMessage]:
        mails = [email.message_from_bytes(r.content, policy=email.policy.default) for r in relay.handler.received]
        return [m for m in mails if m["Message-ID"] == f"<{key}@riverside.example>"]  # type: ignore[misc]
    wait_until(found, 20, "the email at the SMTP server")
    return found()[0]


def test_an_email_carries_no_sms_keyword_and_a_one_click_unsubscribe_that_serve_records(
    clinic: tuple[Host, str], relay: SmtpServer
) -> None:
    host, serve = clinic
    outcome = host.send(reminder("u-1"))
    assert outcome.channels == ("email",)
    mail = arrived(relay, outcome.record_ids[0])
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "STOP" not in body and "Reply" not in body
    assert "STOP" not in (host.record(outcome.record_ids[0]).text or "")  # type: ignore[union-attr]  # the chart: as sent
    [link] = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link.startswith(PORTAL + "/unsubscribe/") and link in body
    local = serve + link.removeprefix(PORTAL)

    # GET (a link checker, a prefetch, the patient's first click): a page that asks, nothing changes
    page = requests.get(local, timeout=10)
    assert page.status_code == 200 and 'method="post"' in page.text and "Stop the emails" in page.text
    assert host.storage.consent.events(channel="email", address=ADDRESS) == []
    # a forged link: refused, nothing changes
    forged = requests.post(local[:-2] + ("AA" if not local.endswith("AA") else "BB"),
                           data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert forged.status_code == 404
    assert host.storage.consent.events(channel="email", address=ADDRESS) == []

    # the mail provider's one-click POST (RFC 8058): no login, no cookie
    done = requests.post(local, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    [event] = host.storage.consent.events(channel="email", address=ADDRESS)
    assert (event.action, event.patient, event.source) == ("revoke", "Patient/on-en", "email unsubscribe link")
    # the patient's own click on the page's button afterwards: same page, no second ledger entry
    assert requests.post(local, data={"lang": "en"}, headers={"Origin": serve}, timeout=10).status_code == 200
    assert len(host.storage.consent.events(channel="email", address=ADDRESS)) == 1

    refused = host.send(reminder("u-2"))
    assert "email" not in refused.channels
    assert any(f.code == "CONSENT_REVOKED" and f.channel == "email" for f in refused.findings)


def test_the_confirm_page_speaks_the_patients_language(clinic: tuple[Host, str], relay: SmtpServer) -> None:
    host, serve = clinic
    outcome = host.send(Request("Patient/qc-fr", "appointment-reminder", id="u-fr", template="appointment-reminder",
                                variables={"appointment": APPOINTMENT}, channel="email"))
    mail = arrived(relay, outcome.record_ids[0])
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "ARRET" not in body and "Pour ne plus recevoir de courriels" in body
    [link] = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
    page = requests.get(serve + link.removeprefix(PORTAL), timeout=10)
    assert page.status_code == 200 and "Arrêter les courriels" in page.text
