"""Email over SMTP against real servers: aiosmtpd with STARTTLS required and AUTH, one without
STARTTLS, one with implicit TLS, and Debian postfix as a real MTA relaying to a sink."""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import emrcomm_email
from emrcomm import Delivery, PermanentDeliveryError, TransientDeliveryError
from emrcomm.config import load_config
from emrcomm.errors import ConfigError
from emrcomm.host import Host
from emrcomm.model import Message, Request
from emrcomm.testing import TEST_CLINIC, make_context
from mailservers import (
    USERNAME,
    CertificateAuthority,
    Postfix,
    SmtpServer,
    dripping_relay,
    flooding_relay,
    refusing_relay,
)
from servers import refused_port
from support import BASE_CONFIG, write_config

PASSWORD = "relay-test-pw-3b8e"
SENDER = "Riverside Family Health <noreply@riverside.example>"
TEXT = "Bonjour Camille, votre rendez-vous est confirmé pour mardi à 10 h 30."


def message(text: str = TEXT) -> Message:
    return Message(Request("Patient/1", "appointment-reminder", text=text), text, language="fr",
                   subject="Votre rendez-vous")


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def password_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("smtp-secret") / "password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def secure_server(ca: CertificateAuthority) -> Iterator[SmtpServer]:
    server = SmtpServer(ca, starttls=True, password=PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plain_server() -> Iterator[SmtpServer]:
    server = SmtpServer(None, starttls=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_server(ca: CertificateAuthority) -> Iterator[SmtpServer]:
    server = SmtpServer(ca, implicit_tls=True, password=PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postfix(ca: CertificateAuthority) -> Iterator[tuple[Postfix, SmtpServer]]:
    sink = SmtpServer(None, starttls=False)
    mta = Postfix(ca, relay_port=sink.port)
    yield mta, sink
    mta.stop()
    sink.stop()


def smtp_settings(port: int, *, password_file: Path | None = None, ca: CertificateAuthority | None = None,
                  **smtp: Any) -> dict[str, Any]:
    table: dict[str, Any] = {"host": "localhost", "port": port, "timeout": 10, **smtp}
    if password_file is not None:
        table.update(username=USERNAME, password={"file": str(password_file)})
    if ca is not None:
        table["ca_file"] = str(ca.ca_file)
    return {"transport": "smtp", "from": SENDER, "smtp": table}


def transport(settings: dict[str, Any], tmp_path: Path) -> Any:
    [channel] = emrcomm_email.Plugin(make_context("email", settings, tmp_path)).emrcomm_register_channels()
    return channel.transport


def parse(content: bytes) -> email.message.EmailMessage:
    mail = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(mail, email.message.EmailMessage)
    return mail


def test_email_arrives_over_starttls_with_auth(secure_server: SmtpServer, ca: CertificateAuthority,
                                               password_file: Path, tmp_path: Path) -> None:
    smtp = transport(smtp_settings(secure_server.port, password_file=password_file, ca=ca), tmp_path)
    receipt = smtp.send(Delivery(message(), "camille.roy@example.org", "rec-mail-1"))
    smtp.close()
    [got] = [r for r in secure_server.handler.wait_for(1) if r.rcpt_tos == ("camille.roy@example.org",)]
    assert (got.mail_from, got.tls, got.authenticated_as) == ("noreply@riverside.example", True, USERNAME)
    mail = parse(got.content)
    assert (mail["From"], mail["To"], mail["Subject"]) == (SENDER, "camille.roy@example.org", "Votre rendez-vous")
    assert mail["Message-ID"] == "<rec-mail-1@riverside.example>" == receipt.provider_id
    assert mail["Date"].datetime is not None
    assert mail.get_content_type() == "text/plain" and mail["Content-Transfer-Encoding"] == "quoted-printable"
    body = mail.get_content()
    assert body.startswith(TEXT) and "reçu ce message par erreur" in body



def test_an_address_with_an_accented_domain_goes_with_its_ascii_name(secure_server: SmtpServer,
                                                                     ca: CertificateAuthority, password_file: Path,
                                                                     tmp_path: Path) -> None:
    # café.ca (IDNA: xn--caf-dma.ca) is a valid domain any relay reaches without SMTPUTF8; as
    # written it failed for good ("the address is not ASCII") and the .eml's To was an encoded word.
    smtp = transport(smtp_settings(secure_server.port, password_file=password_file, ca=ca), tmp_path)
    smtp.send(Delivery(message(), "camille.roy@café.ca", "rec-mail-idn"))
    smtp.close()
    [got] = [r for r in secure_server.handler.wait_for(1) if b"<rec-mail-idn@" in r.content]
    assert got.rcpt_tos == ("camille.roy@xn--caf-dma.ca",)
    assert parse(got.content)["To"] == "camille.roy@xn--caf-dma.ca"


def sent_through(server: SmtpServer, settings: dict[str, Any], tmp_path: Path, key: str,
                 **clinic: str) -> email.message.EmailMessage:
    """The email ``key`` as the relay received it from a transport made for a clinic changed by ``clinic``."""
    context = make_context("email", settings, tmp_path, clinic=attrs.evolve(TEST_CLINIC, **clinic))
    [channel] = emrcomm_email.Plugin(context).emrcomm_register_channels()
    channel.transport.send(Delivery(message(), "camille.roy@example.org", key))
    channel.transport.close()
    [got] = [r for r in server.handler.wait_for(1) if f"<{key}@".encode() in r.content]
    return parse(got.content)


def test_replies_go_to_the_address_the_clinic_reads(secure_server: SmtpServer, ca: CertificateAuthority,
                                                    password_file: Path, tmp_path: Path) -> None:
    settings = smtp_settings(secure_server.port, password_file=password_file, ca=ca)  # from a noreply address
    mail = sent_through(secure_server, settings, tmp_path, "rec-reply-to")
    assert mail["From"] == SENDER
    assert mail["Reply-To"] == "Riverside Family Health <info@riverside.example>"
    assert "ne sont pas lues" not in mail.get_content()


def test_an_email_from_the_address_the_clinic_reads_needs_no_reply_to(
    secure_server: SmtpServer, ca: CertificateAuthority, password_file: Path, tmp_path: Path
) -> None:
    settings = smtp_settings(secure_server.port, password_file=password_file, ca=ca)
    del settings["from"]  # the sender is then the clinic's own address
    mail = sent_through(secure_server, settings, tmp_path, "rec-from-clinic")
    assert mail["From"] == "Riverside Family Health <info@riverside.example>" and mail["Reply-To"] is None
    assert "ne sont pas lues" not in mail.get_content()


def test_without_an_address_the_clinic_reads_the_email_says_replies_are_not_read(
    secure_server: SmtpServer, ca: CertificateAuthority, password_file: Path, tmp_path: Path
) -> None:
    settings = smtp_settings(secure_server.port, password_file=password_file, ca=ca)
    mail = sent_through(secure_server, settings, tmp_path, "rec-not-read", email="")
    assert mail["From"] == SENDER and mail["Reply-To"] is None
    body = mail.get_content()
    assert body.startswith(TEXT)
    assert ("Les réponses à ce courriel ne sont pas lues. Pour joindre Riverside Family Health, appelez au "
            "+1 613 555 0100.") in body


def test_a_server_without_starttls_is_refused_when_tls_is_required(plain_server: SmtpServer,
                                                                   tmp_path: Path) -> None:
    smtp = transport(smtp_settings(plain_server.port), tmp_path)
    before = len(plain_server.handler.received)
    with pytest.raises(TransientDeliveryError, match="does not offer STARTTLS") as err:
        smtp.send(Delivery(message(), "camille.roy@example.org", "rec-mail-notls"))
    assert err.value.reason == "tls-required"
    assert len(plain_server.handler.received) == before


def test_implicit_tls_is_an_option(tls_server: SmtpServer, ca: CertificateAuthority, password_file: Path,
                                   tmp_path: Path) -> None:
    smtp = transport(smtp_settings(tls_server.port, password_file=password_file, ca=ca, security="tls"), tmp_path)
    smtp.send(Delivery(message(), "jo@example.org", "rec-mail-tls"))
    smtp.close()
    [got] = tls_server.handler.wait_for(1)
    assert (got.rcpt_tos, got.tls, got.authenticated_as) == (("jo@example.org",), True, USERNAME)


def test_a_certificate_from_an_unknown_ca_is_refused(secure_server: SmtpServer, password_file: Path,
                                                     tmp_path: Path) -> None:
    smtp = transport(smtp_settings(secure_server.port, password_file=password_file), tmp_path)  # system CAs only
    with pytest.raises(TransientDeliveryError, match=r"STARTTLS .* failed") as err:
        smtp.send(Delivery(message(), "nobody-sees-this@example.org", "rec-mail-ca"))
    assert err.value.reason == "tls-failed"


def test_a_wrong_password_is_a_permanent_credentials_error(secure_server: SmtpServer, ca: CertificateAuthority,
                                                           tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it", encoding="utf-8")
    smtp = transport(smtp_settings(secure_server.port, password_file=wrong, ca=ca), tmp_path)
    with pytest.raises(PermanentDeliveryError) as err:
        smtp.send(Delivery(message(), "camille.roy@example.org", "rec-mail-pw"))
    assert (err.value.reason, err.value.status) == ("unauthorized", 535)


@pytest.mark.parametrize(("local", "stage", "reply", "error", "code"), [
    ("busy", "rcpt", "450 4.2.1 Mailbox busy, try later", TransientDeliveryError, 450),
    ("nobody", "rcpt", "550 5.1.1 <nobody@example.org>: no such user", PermanentDeliveryError, 550),
    ("later", "data", "451 4.3.0 Local problem, try later", TransientDeliveryError, 451),
    ("spam", "data", "554 5.7.1 Message refused", PermanentDeliveryError, 554),
])
def test_smtp_4xx_is_transient_and_5xx_permanent(secure_server: SmtpServer, ca: CertificateAuthority,
                                                 password_file: Path, tmp_path: Path, local: str, stage: str,
                                                 reply: str, error: type[Exception], code: int) -> None:
    replies = secure_server.handler.rcpt_replies if stage == "rcpt" else secure_server.handler.data_replies
    replies[local] = reply
    smtp = transport(smtp_settings(secure_server.port, password_file=password_file, ca=ca), tmp_path)
    with pytest.raises(error) as err:
        smtp.send(Delivery(message(), f"{local}@example.org", f"rec-mail-{local}"))
    assert getattr(err.value, "status", None) == code
    assert f"{local}@example.org" not in str(err.value)


def test_connection_refused_is_transient(tmp_path: Path) -> None:
    with refused_port() as port, pytest.raises(TransientDeliveryError) as err:
        smtp = transport(smtp_settings(port), tmp_path)  # nothing listens there
        smtp.send(Delivery(message(), "camille.roy@example.org", "rec-mail-down"))
    assert err.value.reason == "unreachable"


@pytest.mark.parametrize("answered", [0, 1], ids=["greeting", "answer-to-mail"])
def test_a_relay_that_answers_a_byte_at_a_time_is_cut_at_the_timeout(tmp_path: Path, answered: int) -> None:
    """Before, a greeting of '220-' and a byte a second never ended (each read got its byte in
    time); now the whole greeting, and the whole message exchange, has ``timeout``."""
    errors: list[BaseException] = []

    def attempt(smtp: Any) -> None:
        try:
            smtp.send(Delivery(message(), "camille.roy@example.org", "rec-mail-drip"))
        except BaseException as exc:
            errors.append(exc)

    with dripping_relay(answered) as port:
        smtp = transport(smtp_settings(port, security="none", timeout=1), tmp_path)
        sending = threading.Thread(target=attempt, args=(smtp,), daemon=True)
        sending.start()
        sending.join(60)  # not a speed check: without the deadline it never ends
        assert not sending.is_alive()
    [error] = errors
    assert isinstance(error, TransientDeliveryError) and error.reason == "timeout"
    assert error.ambiguous is (answered > 0)  # once MAIL went, the relay may have taken something


@pytest.mark.parametrize("answered", [0, 1], ids=["answer-to-ehlo", "answer-to-mail"])
def test_an_answer_without_end_is_cut_at_64_kb_not_kept_until_the_timeout(tmp_path: Path, answered: int) -> None:
    """Before, smtplib kept every "250-" line of a reply until the deadline: a relay writing them
    without end filled the worker's memory at the network's speed (1.2 GB in 2 s on loopback)."""
    with flooding_relay(answered) as port:
        smtp = transport(smtp_settings(port, security="none", timeout=5), tmp_path)
        with pytest.raises(TransientDeliveryError) as err:
            smtp.send(Delivery(message(), "camille.roy@example.org", "rec-mail-flood"))
        smtp.close()
    assert err.value.reason == "protocol" and "64 KB" in str(err.value)
    assert err.value.ambiguous is (answered > 0)


@pytest.mark.parametrize(("greeting", "error", "code"), [
    (b"421 4.3.2 relay.example busy, try later\r\n", TransientDeliveryError, 421),
    (b"554 5.7.1 relay.example: no service for this address\r\n", PermanentDeliveryError, 554),
])
def test_a_relay_that_refuses_the_session_in_its_greeting_is_named_by_its_code(
        tmp_path: Path, greeting: bytes, error: type[Exception], code: int) -> None:
    """Before, the greeting's code went unread: the 503s after it read as "does not offer STARTTLS"."""
    with refusing_relay(greeting) as port:
        smtp = transport(smtp_settings(port), tmp_path)
        with pytest.raises(error, match="the server refused the session") as err:
            smtp.send(Delivery(message(), "camille.roy@example.org", "rec-mail-greeting"))
        smtp.close()
    assert getattr(err.value, "status", None) == code


def test_logs_carry_the_record_id_and_codes_never_the_address_or_text(
        secure_server: SmtpServer, ca: CertificateAuthority, password_file: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    smtp = transport(smtp_settings(secure_server.port, password_file=password_file, ca=ca), tmp_path)
    smtp.send(Delivery(message(), "private.person@example.org", "rec-mail-log"))
    secure_server.handler.rcpt_replies["refused"] = "550 5.1.1 no such user"
    with pytest.raises(PermanentDeliveryError):
        smtp.send(Delivery(message(), "refused@example.org", "rec-mail-log2"))
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("emrcomm"))
    assert "rec-mail-log" in logged and "rec-mail-log2" in logged and "550" in logged
    for private in ("private.person", "refused@", "rendez-vous", PASSWORD):
        assert private not in logged


def test_a_refusal_that_repeats_the_address_leaves_none_of_it_in_the_logs(
        secure_server: SmtpServer, ca: CertificateAuthority, password_file: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    # Postfix repeats the address it refuses; an apostrophe is as valid in one as a dot, and the
    # redaction took only what followed it: "<patrick.o'[address]>".
    caplog.set_level(logging.DEBUG)
    secure_server.handler.rcpt_replies["patrick.o'brien"] = ("550 5.1.1 <patrick.o'brien@example.org>: Recipient "
                                                             "address rejected: User unknown")
    smtp = transport(smtp_settings(secure_server.port, password_file=password_file, ca=ca), tmp_path)
    with pytest.raises(PermanentDeliveryError) as refused:
        smtp.send(Delivery(message(), "patrick.o'brien@example.org", "rec-mail-log3"))
    smtp.close()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("emrcomm"))
    assert "rec-mail-log3" in logged and "User unknown" in str(refused.value)
    for text in (logged, str(refused.value)):  # the error is filed with the record, and shown by `outbox`
        assert "patrick" not in text and "brien" not in text


def test_email_goes_end_to_end_through_postfix(postfix: tuple[Postfix, SmtpServer], ca: CertificateAuthority,
                                               tmp_path: Path) -> None:
    mta, sink = postfix
    smtp = transport(smtp_settings(mta.port, ca=ca), tmp_path)
    smtp.send(Delivery(message(), "camille.roy@example.org", "rec-mail-postfix"))
    smtp.close()
    [got] = sink.handler.wait_for(1, timeout=30)
    mail = parse(got.content)
    assert got.rcpt_tos == ("camille.roy@example.org",)
    assert mail["Message-ID"] == "<rec-mail-postfix@riverside.example>"
    assert "with ESMTPS" in mail["Received"]  # postfix got it over TLS
    assert mail.get_content().startswith(TEXT)


# -- settings -----------------------------------------------------------------------------------------

def config_with_email(tmp_path: Path, email_toml: str) -> Path:
    path = write_config(tmp_path)
    text = BASE_CONFIG.replace('[plugins.email]\ndirectory = "out/email"\n', email_toml)
    assert text != BASE_CONFIG
    path.write_text(text, encoding="utf-8")
    return path


def test_the_eml_sink_stays_the_default(tmp_path: Path) -> None:
    assert isinstance(transport({}, tmp_path), emrcomm_email.EmlSink)


def test_smtp_without_its_table_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"plugins\.email: 'smtp' is a required property"):
        Host(load_config(config_with_email(tmp_path, '[plugins.email]\ntransport = "smtp"\n')))


def test_plain_smtp_is_refused_for_a_remote_relay(tmp_path: Path) -> None:
    toml = '[plugins.email]\ntransport = "smtp"\n[plugins.email.smtp]\nhost = "smtp.example.org"\nsecurity = "none"\n'
    with pytest.raises(ConfigError, match=r"plugins\.email\.smtp\.host: 'smtp\.example\.org' is not valid.*"
                                          r"only for a relay on this machine"):
        Host(load_config(config_with_email(tmp_path, toml)))


def test_a_literal_smtp_password_is_refused(tmp_path: Path) -> None:
    toml = ('[plugins.email]\ntransport = "smtp"\n[plugins.email.smtp]\nhost = "smtp.example.org"\n'
            'username = "u"\npassword = "literal-pw-55"\n')
    with pytest.raises(ConfigError, match=r"plugins\.email\.smtp\.password: secrets cannot be written") as err:
        Host(load_config(config_with_email(tmp_path, toml)))
    assert "literal-pw-55" not in str(err.value)


# -- what a failure says ---------------------------------------------------------------------------------

def host_sending_email(tmp_path: Path, email_toml: str) -> Host:
    from emrcomm.testing import FixedClock

    return Host(load_config(config_with_email(tmp_path, email_toml)), clock=FixedClock())


def email_reminder() -> Request:
    # Patient "stopped" said STOP to SMS: the reminder goes by email.
    return Request("Patient/stopped", "appointment-reminder", id="mail-fail-1",
                   text="Riverside Family Health: see you Monday at 10:30. Call +1 613 555 0100 to change.")


def test_the_first_failure_to_reach_the_relay_says_what_happened(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with refused_port() as port:
        toml = f'[plugins.email]\ntransport = "smtp"\n[plugins.email.smtp]\nhost = "localhost"\nport = {port}\n'
        with host_sending_email(tmp_path, toml) as host:
            outcome = host.send(email_reminder())
            [row] = host.storage.db.query("SELECT last_error FROM outbox")
    said = f"cannot connect to localhost:{port} (Connection refused)"
    [failed] = [f for f in outcome.findings if f.code == "DELIVERY_FAILED"]
    assert f"(unreachable: smtp: {said})" in failed.message
    assert row["last_error"] == f"unreachable: smtp: {said}"
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("emrcomm"))
    assert said in logged and "no code" not in logged


def test_a_refused_login_says_so_with_the_servers_code(secure_server: SmtpServer, ca: CertificateAuthority,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "smtp-pw").write_text("not-the-password", encoding="utf-8")
    toml = (f'[plugins.email]\ntransport = "smtp"\n[plugins.email.smtp]\nhost = "localhost"\n'
            f'port = {secure_server.port}\nca_file = "{ca.ca_file}"\nusername = "{USERNAME}"\n'
            'password = {file = "smtp-pw"}\n')
    with host_sending_email(tmp_path, toml) as host:
        outcome = host.send(email_reminder())
        [dead] = host.storage.outbox.dead()
    [failed] = [f for f in outcome.findings if f.code == "DELIVERY_FAILED"]
    assert "unauthorized: smtp: credentials refused; check username and password (535" in failed.message
    assert (dead.last_error or "").startswith("unauthorized: smtp: credentials refused")
    assert "not-the-password" not in failed.message + (dead.last_error or "")
