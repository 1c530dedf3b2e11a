"""docs/getting-started.md, followed to the letter against a real Kannel (bearerbox, smsbox and
its fake SMSC) and a real SMTP server (aiosmtpd, STARTTLS and AUTH required): the page's files
are written as it gives them, its shell blocks run in order in a folder holding the
`.venv/bin/emrcomm` the page calls, and the outputs the page shows are what the commands print.
The one change: the config points at the test's servers and the passwords are theirs."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailservers import USERNAME, CertificateAuthority, SmtpServer
from servers import Kannel
from support import REPO

PAGE = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
FILES = dict(re.findall(r"^```\w+ title=(\S+)\n(.*?)^```", PAGE, re.S | re.M))
BLOCKS = re.findall(r"^```(sh|text)\n(.*?)^```", PAGE, re.S | re.M)
INSTALL = "python3 -m venv .venv && .venv/bin/pip install .\n"
KANNEL_PASSWORD, SMTP_PASSWORD = "getting-started-kannel-9d1", "getting-started-smtp-4c7"
ALEX, CAMILLE = "+16135550123", "camille.roy@example.org"

pytestmark = pytest.mark.kannel


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    gateway = Kannel(tmp_path_factory.mktemp("kannel"), password=KANNEL_PASSWORD)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def relay(ca: CertificateAuthority) -> Iterator[SmtpServer]:
    server = SmtpServer(ca, starttls=True, password=SMTP_PASSWORD)
    yield server
    server.stop()


def pointed_at(text: str, kannel: Kannel, relay: SmtpServer) -> str:
    """The page's words with its gateway, relay and passwords replaced by the test's."""
    for page, test in zip(CHANGED, (kannel.sendsms_url, 'host = "localhost"', f"localhost:{relay.port}",
                                    f"port = {relay.port}", f'username = "{USERNAME}"', f"'{KANNEL_PASSWORD}'",
                                    f"'{SMTP_PASSWORD}'"), strict=True):
        text = text.replace(page, test)
    return text


CHANGED = ("http://127.0.0.1:13013/cgi-bin/sendsms", 'host = "smtp.riverside.example"', "smtp.riverside.example:587",
           "port = 587", 'username = "appointments@riverside.example"',
           "'the sendsms-user password from kannel.conf'", "'the password of the relay account'")


def test_the_page_gives_its_files_and_commands() -> None:
    assert all(words in PAGE for words in CHANGED)  # what the test points at its servers
    assert set(FILES) == {"clinic/emrcomm.toml", "clinic/patients.json", "clinic/reminder-alex.json",
                          "clinic/reminder-camille.json"}
    assert BLOCKS[0] == ("sh", INSTALL)  # the one block the suite does not run: its environment is installed
    assert [kind for kind, _ in BLOCKS[1:]] == ["sh", "sh", "text", "sh", "text", "sh", "text", "sh", "text"]


def test_from_nothing_to_a_first_sms_and_email(kannel: Kannel, relay: SmtpServer, ca: CertificateAuthority,
                                               tmp_path: Path) -> None:
    # The reader's folder: the page's files, and .venv/bin/emrcomm (this suite's, already installed).
    for name, body in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(pointed_at(body, kannel, relay), encoding="utf-8")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "emrcomm").symlink_to(Path(sys.executable).with_name("emrcomm"))
    # The relay's certificate comes from the test's own CA: this machine trusts it as it would a public one.
    env = {**os.environ, "SSL_CERT_FILE": str(ca.ca_file)}
    for name in ("KANNEL_PASSWORD", "SMTP_PASSWORD", "VIRTUAL_ENV"):
        env.pop(name, None)
    sms_before, mail_before = len(kannel.received()), len(relay.handler.received)

    exports = ""
    printed: list[str] = []
    for kind, block in BLOCKS[1:]:
        block = pointed_at(block, kannel, relay)
        if kind == "text":  # what the page says the last command printed
            # each line the page shows, printed as it is ("…" stands for an id the page cannot know)
            shown = [re.compile(".+".join(map(re.escape, line.split("…")))) for line in block.splitlines() if line]
            assert all(any(p.fullmatch(line) for line in printed[-1].splitlines()) for p in shown), \
                (block, printed[-1])
            continue
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", exports + block], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{block}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr
        exports += "".join(line + "\n" for line in block.splitlines() if line.startswith("export "))
        printed.append(done.stdout)
        if "doctor" in block:  # trying every server sent nothing
            assert (len(kannel.received()), len(relay.handler.received)) == (sms_before, mail_before)

    [sms] = kannel.wait_for(ALEX)
    assert sms.data.decode() == ("Riverside Family Health: Alex, your appointment is Tue, Nov 24 at 10:30 a.m. "
                                 "To change it, call +1 613 555 0100. Reply STOP to opt out.")
    assert f"*{sms.data.decode()[:60]}" in " ".join(PAGE.split())  # the page quotes what the phone shows
    [mail] = relay.handler.wait_for(mail_before + 1)[mail_before:]
    assert mail.rcpt_tos == (CAMILLE,) and mail.tls and mail.authenticated_as == USERNAME
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert message["Subject"] == "Appointment reminder from Riverside Family Health"
    assert message["Reply-To"] == "Riverside Family Health <info@riverside.example>"  # the address staff read
    assert "Camille, your appointment is Tue, Nov 24 at 2:00" in message.get_body(("plain",)).get_content()
    # the chart has both, and the folder holds what the page says it makes, readable by the user alone
    data = tmp_path / "clinic" / "data"
    assert {p.name for p in data.iterdir()} >= {"emrcomm.sqlite", "audit-signing.key"}
    assert (data / "audit-signing.key").stat().st_mode & 0o077 == 0
    reminder = [line for line in printed[-1].splitlines() if "Appointment reminder by SMS to 613-555-0123: sent" in line]
    assert len(reminder) == 1, printed[-1]

    # "Sending the same request again sends nothing"
    again = subprocess.run([str(tmp_path / ".venv" / "bin" / "emrcomm"), "send", "--config", "clinic/emrcomm.toml",
                            "clinic/reminder-alex.json"], cwd=tmp_path, env={**env, "KANNEL_PASSWORD": KANNEL_PASSWORD,
                                                                              "SMTP_PASSWORD": SMTP_PASSWORD},
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len([m for m in kannel.received() if m.receiver == ALEX]) == 1
