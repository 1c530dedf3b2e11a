"""``emrcomm doctor`` against the real servers the suite runs — Kannel, Twilio's API (Prism),
aiosmtpd with STARTTLS and AUTH, the FHIR shim — working and failing, each reported in words;
it sends nothing, writes nothing, and its exit code says whether all is well."""

from __future__ import annotations

import json
import os
import re
import shutil
import socketserver
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emrcomm import Probe, hookimpl
from emrcomm.cli import main
from emrcomm.storage.schema import MIGRATIONS as CORE_STEPS
from fhir_server.server import TOKEN_VARIABLE, ShimServer, shared_server
from mailservers import USERNAME, CertificateAuthority, SmtpServer, dripping_relay, flooding_relay
from servers import Kannel, Prism, Reply, ScriptedHTTPServer, refused_port
from support import DATA, write_config
from test_read_only import files_in

LATEST = max(m.version for m in CORE_STEPS)

KANNEL_PASSWORD = "doctor-kannel-pw-5e1"
SMTP_PASSWORD = "doctor-smtp-pw-77a"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
SMS_FILE = '[plugins.sms]\npath = "out/sms.jsonl"\n'
EMAIL_FILE = '[plugins.email]\ndirectory = "out/email"\n'


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    gateway = Kannel(tmp_path_factory.mktemp("kannel"), password=KANNEL_PASSWORD)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prism]:
    mock = Prism(tmp_path_factory.mktemp("prism"))
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def relay(ca: CertificateAuthority) -> Iterator[SmtpServer]:
    server = SmtpServer(ca, starttls=True, password=SMTP_PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain_relay() -> Iterator[SmtpServer]:
    server = SmtpServer(None, starttls=False)
    yield server
    server.stop()


@pytest.fixture
def fhir() -> Iterator[ShimServer]:
    """The FHIR server shim (Node): a test that asks for it is marked ``node``."""
    server = shared_server()
    server.reset()
    yield server
    server.ensure_running()


def clinic(folder: Path, *, sms: str = SMS_FILE, email: str = EMAIL_FILE, extra: str = "") -> Path:
    """The test clinic with its SMS and email tables replaced, and ``extra`` appended."""
    path = write_config(folder)
    text = path.read_text(encoding="utf-8").replace(SMS_FILE, sms).replace(EMAIL_FILE, email)
    path.write_text(text + extra, encoding="utf-8")
    return path


def kannel_sms(url: str, password_variable: str = "DOCTOR_KANNEL_PW") -> str:
    return (f'[plugins.sms]\ntransport = "kannel"\nfrom = "+16135550100"\n[plugins.sms.kannel]\nurl = "{url}"\n'
            f'username = "emrcomm"\npassword = {{env = "{password_variable}"}}\n')


def smtp_email(port: int, ca: CertificateAuthority | None, *, auth: bool = True) -> str:
    table = f'[plugins.email]\ntransport = "smtp"\nfrom = "Riverside <noreply@riverside.example>"\n' \
            f'[plugins.email.smtp]\nhost = "localhost"\nport = {port}\ntimeout = 10\n'
    if ca is not None:
        table += f'ca_file = "{ca.ca_file}"\n'
    if auth:
        table += f'username = "{USERNAME}"\npassword = {{env = "DOCTOR_SMTP_PW"}}\n'
    return table


def doctor(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """Run ``emrcomm doctor`` twice (JSON, then text); the text is what a clinic reads."""
    code = main(["doctor", "--config", str(config), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert main(["doctor", "--config", str(config)]) == code
    return code, report, capsys.readouterr().out


def line(text: str, what: str) -> str:
    [found] = [row for row in text.splitlines() if what in row]
    return found


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCTOR_KANNEL_PW", KANNEL_PASSWORD)
    monkeypatch.setenv("DOCTOR_SMTP_PW", SMTP_PASSWORD)
    monkeypatch.setenv("DOCTOR_TWILIO_TOKEN", "twilio-doctor-token")


# -- a clinic whose servers all answer ----------------------------------------------------------------

@pytest.mark.node
def test_all_is_well_when_every_server_answers_and_nothing_is_sent_or_written(
        kannel: Kannel, relay: SmtpServer, ca: CertificateAuthority, fhir: ShimServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, fhir.token)
    records = f'\n[plugins.fhir-records]\nbase_url = "{fhir.base_url}"\ntoken = {{env = "{TOKEN_VARIABLE}"}}\n' \
              'push = "manual"\n'
    config = clinic(tmp_path, sms=kannel_sms(kannel.sendsms_url), email=smtp_email(relay.port, ca), extra=records)
    before, mail_before, sms_before = files_in(tmp_path), len(relay.handler.received), len(kannel.received())
    code, report, text = doctor(config, capsys)
    assert code == 0 and report["ok"], text
    assert line(text, "SMS gateway (Kannel)").endswith(": connected, user accepted (nothing sent)")
    assert line(text, f"SMTP relay localhost:{relay.port}").endswith(
        ": connected, STARTTLS ok, AUTH ok, sender accepted (nothing sent)")
    assert line(text, "FHIR server (records)").endswith(
        ": connected, FHIR 4.0.1 (Medplum FHIR router (emrcomm test shim)), token accepted (Communication search)")
    assert "not created yet: created at the first send" in line(text, "database (SQLite)")
    assert "All is well" in text
    assert files_in(tmp_path) == before  # no database, no key, no keyring, no sink
    assert len(relay.handler.received) == mail_before and len(kannel.received()) == sms_before
    for secret in (KANNEL_PASSWORD, SMTP_PASSWORD, fhir.token):
        assert secret not in text


def test_twilio_answers_for_its_account(prism: Prism, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sms = (f'[plugins.sms]\ntransport = "twilio"\nfrom = "+16135550100"\n[plugins.sms.twilio]\n'
           f'account_sid = "{ACCOUNT_SID}"\nauth_token = {{env = "DOCTOR_TWILIO_TOKEN"}}\nbase_url = "{prism.url}"\n')
    code, _, text = doctor(clinic(tmp_path, sms=sms), capsys)
    assert code == 0, text
    assert line(text, "SMS provider (Twilio)").split(": ", 1)[1].startswith("connected, credentials accepted")


# -- what each failure says ------------------------------------------------------------------------

def test_a_wrong_kannel_password_is_named(kannel: Kannel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOCTOR_KANNEL_PW", "not-it")
    code, report, text = doctor(clinic(tmp_path, sms=kannel_sms(kannel.sendsms_url)), capsys)
    assert code == 4 and not report["ok"]
    assert line(text, "SMS gateway").startswith("FAIL")
    assert line(text, "SMS gateway").endswith(
        ": connected, user refused (HTTP 403 Authorization failed for sendsms): check plugins.sms.kannel.username "
        "and password, and the sendsms-user group's user-allow-ip in kannel.conf")
    assert "1 of " in text and "checks failed" in text


def test_a_kannel_url_that_is_not_sendsms_is_named(kannel: Kannel, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = kannel.sendsms_url.replace("/cgi-bin/sendsms", "/sendsms")
    _, _, text = doctor(clinic(tmp_path, sms=kannel_sms(url)), capsys)
    assert "connected, no sendsms there (HTTP 404 Unknown request.)" in line(text, "SMS gateway")


def test_a_gateway_that_is_not_running_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with refused_port() as port:
        code, _, text = doctor(clinic(tmp_path, sms=kannel_sms(f"http://127.0.0.1:{port}/cgi-bin/sendsms")), capsys)
    assert code == 4
    assert line(text, "SMS gateway").endswith(
        f": cannot connect to http://127.0.0.1:{port} (connection refused): is the service running, and is "
        "plugins.sms.kannel.url right?")


def test_refused_twilio_credentials_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ScriptedHTTPServer(Reply(401, json.dumps({"code": 20003, "message": "Authenticate"}).encode()))
    try:
        sms = (f'[plugins.sms]\ntransport = "twilio"\nfrom = "+16135550100"\n[plugins.sms.twilio]\n'
               f'account_sid = "{ACCOUNT_SID}"\nauth_token = {{env = "DOCTOR_TWILIO_TOKEN"}}\n'
               f'base_url = "{server.url}"\n')
        code, _, text = doctor(clinic(tmp_path, sms=sms), capsys)
        seen = server.seen
    finally:
        server.close()
    assert code == 4
    assert line(text, "SMS provider (Twilio)").endswith(
        ": connected, credentials refused (HTTP 401, Twilio error 20003): check plugins.sms.twilio.account_sid "
        "and auth_token")
    assert {(s.method, s.path) for s in seen} == {("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}.json")}


def test_a_refused_smtp_login_is_named(relay: SmtpServer, ca: CertificateAuthority, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOCTOR_SMTP_PW", "not-it")
    code, _, text = doctor(clinic(tmp_path, email=smtp_email(relay.port, ca)), capsys)
    assert code == 4
    assert line(text, "SMTP relay").startswith("FAIL")
    assert line(text, "SMTP relay").endswith(
        ": connected, STARTTLS ok, AUTH refused (535): check plugins.email.smtp.username and "
        "plugins.email.smtp.password")


def test_a_relay_without_starttls_is_named(plain_relay: SmtpServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _, _, text = doctor(clinic(tmp_path, email=smtp_email(plain_relay.port, None, auth=False)), capsys)
    assert line(text, "SMTP relay").endswith(
        ": connected, no STARTTLS offered, and TLS is required: nothing would be sent (enable STARTTLS on the relay, "
        'or set plugins.email.smtp.security = "tls" for port 465)')


def test_a_relay_certificate_from_an_unknown_ca_is_named(relay: SmtpServer, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _, _, text = doctor(clinic(tmp_path, email=smtp_email(relay.port, None)), capsys)
    assert "connected, TLS: the relay's certificate is not trusted here (" in line(text, "SMTP relay")
    assert line(text, "SMTP relay").endswith("set plugins.email.smtp.ca_file to the CA that signed it, or check "
                                             "the host name")


def test_a_relay_that_is_not_running_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with refused_port() as port:
        _, _, text = doctor(clinic(tmp_path, email=smtp_email(port, None)), capsys)
    assert line(text, "SMTP relay").endswith(
        ": cannot connect (Connection refused): is the relay running, and are plugins.email.smtp.host and port right?")


def test_a_relay_that_answers_a_byte_at_a_time_is_cut_not_waited_on(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Before, each read got its byte in time and doctor waited on the greeting for good.
    with dripping_relay(0) as port:
        email = smtp_email(port, None, auth=False).replace("timeout = 10", "timeout = 1")
        code = main(["doctor", "--config", str(clinic(tmp_path, email=email))])  # the relay takes one session
    assert code == 4
    assert line(capsys.readouterr().out, "SMTP relay").endswith(
        ": no complete answer within 2 s (a relay answering a byte at a time, or the wrong plugins.email.smtp.port?)")


def test_a_relay_whose_answer_never_ends_is_cut_at_64_kb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with flooding_relay(0) as port:
        email = smtp_email(port, None, auth=False).replace("timeout = 10", "timeout = 5")
        code = main(["doctor", "--config", str(clinic(tmp_path, email=email))])
    assert code == 4
    assert line(capsys.readouterr().out, "SMTP relay").endswith(
        ": connected, the relay answered with 64 KB and more; not read further")


@pytest.mark.node
def test_a_wrong_fhir_token_is_named_for_records_and_patients(fhir: ShimServer, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "not-the-token")
    server = f'base_url = "{fhir.base_url}"\ntoken = {{env = "{TOKEN_VARIABLE}"}}\n'
    extra = f'\n[plugins.fhir-records]\n{server}push = "manual"\n\n[plugins.fhir-directory]\n{server}'
    code, _, text = doctor(clinic(tmp_path, extra=extra), capsys)
    assert code == 4
    assert line(text, "FHIR server (records)").endswith(
        f": connected, token refused (HTTP 401): check plugins.fhir-records.token (the variable {TOKEN_VARIABLE})")
    assert line(text, "FHIR server (patients)").endswith(
        f": connected, token refused (HTTP 401): check plugins.fhir-directory.token (the variable {TOKEN_VARIABLE})")


@pytest.mark.node
def test_a_fhir_token_renewed_in_its_file_is_read_again_by_the_next_check(
        fhir: ShimServer, tmp_path: Path) -> None:
    """A host that keeps running (an EMR that embeds emrcomm and shows the checks) has sent the
    token it read first; another program then renews it in the file, as the plugin expects."""
    from emrcomm.config import load_config
    from emrcomm.doctor import examine, table
    from emrcomm.host import Host

    token = tmp_path / "fhir-token"
    token.write_text("expired-token-23\n")
    extra = f'\n[plugins.fhir-records]\nbase_url = "{fhir.base_url}"\ntoken = {{file = "{token}"}}\npush = "manual"\n'
    with Host(load_config(clinic(tmp_path, extra=extra)), read_only=True) as host:
        assert line(table(examine(host)), "FHIR server (records)").endswith(
            f": connected, token refused (HTTP 401): check plugins.fhir-records.token: the token in the file {token} "
            "was read again and is refused too; renew it there")
        token.write_text(fhir.token + "\n")
        checked = table(examine(host))
    assert line(checked, "FHIR server (records)").endswith(", token accepted (Communication search)")
    assert "expired-token-23" not in checked and fhir.token not in checked


def test_a_fhir_base_that_is_not_fhir_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    server = ScriptedHTTPServer(Reply(200, b"<html>Welcome</html>", headers=(("Content-Type", "text/html"),)))
    monkeypatch.setenv(TOKEN_VARIABLE, "t")
    try:
        extra = f'\n[plugins.fhir-records]\nbase_url = "{server.url}"\ntoken = {{env = "{TOKEN_VARIABLE}"}}\n' \
                'push = "manual"\n'
        _, _, text = doctor(clinic(tmp_path, extra=extra), capsys)
    finally:
        server.close()
    assert line(text, "FHIR server (records)").endswith(
        ": connected, /metadata answered HTTP 200 without a CapabilityStatement: is plugins.fhir-records.base_url "
        "the server's FHIR base (it usually ends in /fhir or /r4)?")


def test_a_missing_credential_is_named_once_by_the_config_and_again_by_its_server(
        relay: SmtpServer, ca: CertificateAuthority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DOCTOR_SMTP_PW")
    code, report, text = doctor(clinic(tmp_path, email=smtp_email(relay.port, ca)), capsys)
    missing = "plugins.email.smtp.password: environment variable DOCTOR_SMTP_PW is not set"
    assert code == 4
    assert line(text, "credential:") == f"FAIL  credential: {missing}"
    assert line(text, "SMTP relay").endswith(f": connected, STARTTLS ok, {missing}")
    assert [c["what"] for c in report["checks"] if not c["ok"]] == ["credential", f"SMTP relay localhost:{relay.port}"]


# -- the host's own files ---------------------------------------------------------------------------

def test_a_database_from_a_newer_emrcomm_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from emrcomm.host import Host

    config = clinic(tmp_path)
    Host.from_config(config).close()
    with sqlite3.connect(tmp_path / "emrcomm.sqlite") as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    code, _, text = doctor(config, capsys)
    assert code == 4
    assert line(text, "database (SQLite)").startswith("FAIL")
    assert "exists, schema version 999, the database's emrcomm tables are at schema version 999, newer than " \
           "this installation knows" in line(text, "database (SQLite)")


def test_an_audit_key_others_can_read_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from emrcomm.host import Host

    config = clinic(tmp_path)
    Host.from_config(config).close()
    os.chmod(tmp_path / "audit-signing.key", 0o644)
    code, _, text = doctor(config, capsys)
    assert code == 4
    assert line(text, "audit signing key").endswith(
        f": exists, the key file is readable by other users (mode 0644); run: chmod 600 {tmp_path / 'audit-signing.key'}")
    assert "ok    database (SQLite)" in text and f"schema version {LATEST}, up to date" in line(text, "database (SQLite)")


def test_the_file_sinks_say_that_nothing_leaves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, text = doctor(clinic(tmp_path), capsys)
    assert code == 0, text
    assert line(text, "SMS file sink").endswith(": nothing leaves this machine (messages are written to this file), "
                                                "writable")
    assert line(text, "email file sink").endswith(": nothing leaves this machine (each email is written as a .eml "
                                                  "file), writable")


def test_the_portal_says_where_its_links_go_or_that_it_has_no_address_for_them(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The getting-started clinic has no portal_url yet: no notice can announce a portal message."""
    code, _, text = doctor(clinic(tmp_path), capsys)
    assert code == 0 and line(text, "portal links").endswith(": links start with https://portal.riverside.example/")
    (tmp_path / "no-portal").mkdir()
    config = clinic(tmp_path / "no-portal")
    config.write_text(re.sub(r"(?m)^portal_url = .*\n", "", config.read_text(encoding="utf-8")), encoding="utf-8")
    code, _, text = doctor(config, capsys)
    assert code == 0  # a clinic without a portal site yet: its portal messages wait for staff to tell
    assert line(text, "portal links").endswith(": no address for magic links (clinic.portal_url): a portal message "
                                               "is kept with a task for staff to tell the patient, never announced "
                                               "by a notice")


@pytest.mark.parametrize("store", ["/proc/nope/x.sqlite", "a-file/x.sqlite"])
def test_a_database_folder_that_cannot_be_made_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        store: str) -> None:
    (tmp_path / "a-file").write_text("a file, not a folder", encoding="utf-8")
    config = clinic(tmp_path)
    config.write_text(config.read_text(encoding="utf-8").replace('path = "emrcomm.sqlite"', f'path = "{store}"'),
                      encoding="utf-8")
    code, _, text = doctor(config, capsys)
    assert code == 4
    database = line(text, "database (SQLite)")
    assert database.startswith("FAIL") and "it could not be made there" in database and "store.path" in database


# -- a third party's server, through the hook ------------------------------------------------------

class Greeter(socketserver.BaseRequestHandler):
    greeting = b"220 fax gateway ready\r\n"

    def handle(self) -> None:
        self.request.sendall(self.greeting)


def test_a_plugin_adds_its_server_through_emrcomm_probe_as_the_docs_show(tmp_path: Path) -> None:
    """The fax gateway example of docs/hooks.md, loaded as any plugin, tried against a gateway
    that greets, one that greets otherwise, and one that is not running."""
    from docs_kit import example_plugin, section
    from emrcomm.config import load_config
    from emrcomm.doctor import examine, table
    from emrcomm.host import Host
    from emrcomm.plugin.manager import discover

    def doctor_with(port: int) -> str:
        config = clinic(tmp_path, extra=f'\n[plugins.fax]\nhost = "127.0.0.1"\nport = {port}\n')
        with example_plugin("emrcomm_probe", tmp_path / "code") as ep, \
                Host(load_config(config), entry_points={**discover(), "fax": ep}, read_only=True) as host:
            return table(examine(host))

    class Other(Greeter):
        greeting = b"SSH-2.0-OpenSSH\r\n"

    greeted = "ok    fax gateway 127.0.0.1:{port} (plugin fax): connected, greeted"
    for handler, said in ((Greeter, greeted),
                          (Other, "FAIL  fax gateway 127.0.0.1:{port} (plugin fax): connected, it does not greet "
                                  "like the fax gateway: is plugins.fax.port right?")):
        with socketserver.TCPServer(("127.0.0.1", 0), handler) as server:
            worker = threading.Thread(target=server.serve_forever, daemon=True)
            worker.start()
            try:
                port = server.server_address[1]
                assert said.format(port=port) in doctor_with(port).splitlines()
            finally:
                server.shutdown()
                worker.join()
    with refused_port() as port:
        assert (f"FAIL  fax gateway 127.0.0.1:{port} (plugin fax): cannot connect (Connection refused): is the "
                "gateway running, and are plugins.fax.host and port right?") in doctor_with(port).splitlines()
    assert greeted.format(port=4559) in section("emrcomm_probe").splitlines()  # what the page says it prints


def test_a_fhir_server_that_is_not_running_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "t")
    with refused_port() as port:
        extra = f'\n[plugins.fhir-records]\nbase_url = "http://127.0.0.1:{port}/fhir"\n' \
                f'token = {{env = "{TOKEN_VARIABLE}"}}\npush = "manual"\n'
        code, _, text = doctor(clinic(tmp_path, extra=extra), capsys)
    assert code == 4
    assert line(text, "FHIR server (records)").endswith(
        ": cannot connect (connection refused): is the server running, and is plugins.fhir-records.base_url right?")


def test_a_database_server_adds_its_own_checks_through_its_probe_method(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook a store on a database server fills (PostgreSQL: roles, pool): its steps are
    reported after "connected", and its ProbeFailed in words. Shown here on the SQLite store
    made to say it is a server, which is all the hook needs."""
    from emrcomm import ProbeFailed
    from emrcomm.doctor import examine
    from emrcomm.host import Host

    def probe() -> Iterator[str]:
        yield "role emrcomm_app"
        raise ProbeFailed("the role cannot write to outbox: GRANT INSERT, UPDATE ON outbox TO emrcomm_app")

    config = clinic(tmp_path)
    Host.from_config(config).close()
    with Host.from_config(config, read_only=True) as host:
        monkeypatch.setattr(host.storage.db, "dialect", "postgresql", raising=False)
        monkeypatch.setattr(host.storage.db, "probe", probe, raising=False)
        [check] = [c for c in examine(host) if c.what.startswith("database")]
    assert check.what == f"database (postgresql) {host.storage.db.where}"
    assert check.line().endswith(": connected, role emrcomm_app, the role cannot write to outbox: GRANT INSERT, "
                                 "UPDATE ON outbox TO emrcomm_app")
    assert not check.ok


def test_a_database_from_an_older_release_is_named_and_left_as_it_is(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A 0.1 clinic folder: doctor says the database waits for upgrade steps (the next start applies
    them) and upgrades nothing itself; without its audit key it says the key must come back."""
    config = clinic(tmp_path)
    shutil.copy(DATA / "release-0.1" / "emrcomm.sqlite", tmp_path / "emrcomm.sqlite")
    before = files_in(tmp_path)
    code, _, text = doctor(config, capsys)
    assert code == 4
    assert re.search(r": exists, schema version 1, \d+ upgrade step\(s\) wait, applied at the next start$",
                     line(text, "database (SQLite)")), text
    assert line(text, "audit signing key").endswith(
        ": missing, but the audit log already has entries signed with it: restore it from the backup (docs/audit.md)")
    assert files_in(tmp_path) == before
    shutil.copy(DATA / "release-0.1" / "audit-signing.key", tmp_path / "audit-signing.key")
    os.chmod(tmp_path / "audit-signing.key", 0o600)
    code, _, text = doctor(config, capsys)
    assert code == 0, text
    assert line(text, "audit signing key").endswith(": exists, owner only, a valid key")


class BrokenProbes:
    """A plugin whose emrcomm_probe raises, one that answers something that is not a Probe, and
    one whose check answers its step as a string instead of yielding it."""

    def __init__(self, context: Any) -> None:
        self.name = context.name

    @hookimpl
    def emrcomm_probe(self) -> list[Any]:
        if self.name == "raises":
            raise RuntimeError("no idea")
        if self.name == "words":
            return [Probe("fax gateway fax.example:443", lambda: "connected")]
        return ["gateway.example:443"]


def test_a_plugin_whose_probe_hook_fails_is_named_and_the_others_still_run(tmp_path: Path) -> None:
    from importlib import metadata

    from emrcomm.config import load_config
    from emrcomm.doctor import examine
    from emrcomm.host import Host
    from emrcomm.plugin.manager import discover

    config = clinic(tmp_path, extra="\n[plugins.raises]\n[plugins.answers]\n[plugins.words]\n")
    points = {name: metadata.EntryPoint(name=name, value="test_doctor:BrokenProbes", group="emrcomm")
              for name in ("raises", "answers", "words")}
    with Host(load_config(config), entry_points={**discover(), **points}, read_only=True) as host:
        lines = [c.line() for c in examine(host)]
    assert "FAIL  servers (plugin raises): plugin 'raises' could not say which servers it uses: RuntimeError: " \
           "no idea" in lines
    assert "FAIL  servers (plugin answers): plugin 'answers': emrcomm_probe returned str, not emrcomm.Probe" in lines
    # Not "c, o, n, n, e, c, t, e, d": the check must yield its steps.
    assert "FAIL  fax gateway fax.example:443 (plugin words): the check answered str, not the steps it took " \
        "(emrcomm.Probe: check() yields them)" in lines
    assert any(line.startswith("ok    SMS file sink") for line in lines)


@pytest.mark.postgres
@pytest.mark.parametrize("fault", ["no such database", "the login refused"])
def test_a_postgresql_store_that_cannot_be_opened_is_a_failed_check_not_a_stop(
        postgres_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str) -> None:
    """The admin runs doctor because something is wrong: the database that does not answer is
    a FAIL line naming store.url and why, exit 4, never a bare error (exit 2)."""
    from support import BASE_CONFIG, with_store

    url = postgres_server.new_database()
    postgres_server.drop_database(url)
    if fault == "the login refused":
        url = postgres_server.new_database()
        bad = re.sub(r"://[^@/]*@", "://nobody-here@", url, count=1)  # a role the server does not have
    else:
        bad = url
    try:
        path = write_config(tmp_path)
        path.write_text(with_store(BASE_CONFIG, bad), encoding="utf-8")
        assert main(["doctor", "--config", str(path), "--json"]) == 4
        shown = json.loads(capsys.readouterr().out)
        assert shown["ok"] is False and [c["ok"] for c in shown["checks"]] == [True, False]
        [database] = [c for c in shown["checks"] if c["what"] == "database"]
        assert database["problem"].startswith("store.url: cannot connect to ") and "were not tried" in database["problem"]
    finally:
        if fault == "the login refused":
            postgres_server.drop_database(url)


def test_a_postgresql_password_whose_variable_is_not_set_is_a_failed_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The password is resolved before any connection: its variable not set is the database's
    FAIL line naming store.password and the variable (exit 4), as an unreachable server is."""
    from support import BASE_CONFIG, with_store

    monkeypatch.delenv("EMRCOMM_DOCTOR_NO_SUCH_PASSWORD", raising=False)
    path = write_config(tmp_path)
    text = with_store(BASE_CONFIG, "postgresql://emrcomm_app@127.0.0.1:9/clinic")
    path.write_text(text.replace("[store]\n", '[store]\npassword = {env = "EMRCOMM_DOCTOR_NO_SUCH_PASSWORD"}\n', 1),
                    encoding="utf-8")
    assert main(["doctor", "--config", str(path)]) == 4
    shown = capsys.readouterr().out
    assert line(shown, "database").startswith(
        "FAIL  database: store.password: environment variable EMRCOMM_DOCTOR_NO_SUCH_PASSWORD is not set; ")
    assert main(["check-config", "--config", str(path)]) == 2  # any other command: the config error, as before


@pytest.mark.postgres
def test_a_postgresql_schema_behind_the_code_fails_and_names_db_upgrade(
        postgres_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PostgreSQL is never upgraded at start-up: a schema behind is a failed check, not a wait."""
    from support import BASE_CONFIG, with_store

    url = postgres_server.new_database()
    try:
        path = write_config(tmp_path)
        path.write_text(with_store(BASE_CONFIG, url), encoding="utf-8")
        assert main(["doctor", "--config", str(path)]) == 4
        text = capsys.readouterr().out
        assert "applied at the next start" not in text
        assert re.search(r"^FAIL  database \(postgresql\) .*schema version 0, \d+ upgrade step\(s\) not applied: "
                         r"start-up refuses it; run `emrcomm db upgrade` as the role that owns the tables$",
                         line(text, "database (postgresql)"))
    finally:
        postgres_server.drop_database(url)
