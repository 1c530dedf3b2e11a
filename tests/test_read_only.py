"""Commands that only ask — ``check``, ``check --patient``, ``plugins``, ``check-config``, ``doctor`` — write
nothing: no data folder, no database, no key, wherever they run; a read-only host refuses to send."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emrcomm.errors import EmrcommError
from emrcomm.host import Host
from emrcomm.model import DeliveryUpdate
from emrcomm.testing import TEST_NOW
from support import write_config
from test_worker import reminder

EMRCOMM = Path(sys.executable).with_name("emrcomm")
ASKING = (
    ["check", "--channel", "sms", "--text", "Riverside: your appointment is on Monday at 10:30."],
    ["check", "--channel", "sms", "--text", "Your HbA1c came back at 8.1%."],
    ["plugins"],
    ["check-config"],
    ["doctor"],
)


def files_in(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def emrcomm(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EMRCOMM), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=os.environ)


@pytest.mark.parametrize("args", ASKING, ids=lambda a: " ".join(a[:2]))
def test_asking_on_the_embedded_defaults_writes_nothing_anywhere(args: list[str], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    here, data = tmp_path / "here", tmp_path / "data"
    here.mkdir()
    monkeypatch.setenv("EMRCOMM_DATA_DIR", str(data))
    done = emrcomm(args, here)
    assert done.returncode in (0, 3), done.stderr
    assert not data.exists() and list(here.iterdir()) == []


@pytest.mark.parametrize("args", [["clients", "list"], ["staff", "list"]], ids=" ".join)
def test_listing_accounts_before_the_first_send_creates_no_database_and_no_key(
        args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here, data = tmp_path / "here", tmp_path / "data"
    here.mkdir()
    monkeypatch.setenv("EMRCOMM_DATA_DIR", str(data))
    done = emrcomm(args, here)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no ")
    assert not data.exists() and list(here.iterdir()) == []


@pytest.mark.parametrize("args", ASKING, ids=lambda a: " ".join(a[:2]))
def test_asking_leaves_an_existing_clinic_folder_byte_for_byte_as_it_was(args: list[str], tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with Host.from_config(config) as host:
        host.send(reminder())
    before = files_in(tmp_path)
    done = emrcomm([*args, "--config", str(config)], tmp_path)
    assert done.returncode in (0, 3), done.stderr
    assert files_in(tmp_path) == before


def test_a_dry_run_for_a_patient_reads_the_consent_ledger_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with Host.from_config(config) as host:
        host.send(reminder())
        host.delivery_update(DeliveryUpdate(kind="optout", at=TEST_NOW, channel="sms", address="+16135550123",
                                            text="STOP reply", detail="Patient/on-en"))
    before = files_in(tmp_path)
    done = emrcomm(["check", "--config", str(config), "--patient", "Patient/on-en", "--text",
                    "Riverside Family Health: see you Monday at 10:30. Reply STOP to opt out."], tmp_path)
    assert "sms: rejected (CONSENT_REVOKED" in done.stdout, done.stdout + done.stderr
    assert files_in(tmp_path) == before


def test_a_read_only_host_refuses_to_send(tmp_path: Path) -> None:
    with Host.from_config(write_config(tmp_path), read_only=True) as host:
        with pytest.raises(EmrcommError, match="read-only"):
            host.send(reminder())
        with pytest.raises(EmrcommError, match="read-only"):
            list(host.send_many([reminder("r-2")]))
    assert not (tmp_path / "emrcomm-data").exists() and not (tmp_path / "out").exists()


# -- credentials: only a host that may send needs them ----------------------------------------------

SECRETS = {"EMRCOMM_TEST_KANNEL_PW": "kannel-pw", "EMRCOMM_TEST_SMTP_PW": "smtp-pw",
           "EMRCOMM_TEST_CALLBACK": "callback-secret", "EMRCOMM_TEST_RECORDS_TOKEN": "fhir-token"}


def config_with_credentials(folder: Path) -> Path:
    """The test clinic sending by Kannel and an SMTP relay, filing on a FHIR server: every one of
    them a credential from the environment (nothing listens: the tests here never send)."""
    path = write_config(folder, '\n[delivery]\nmode = "queue"\n')
    text = path.read_text(encoding="utf-8")
    text = text.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', """[plugins.sms]
transport = "kannel"
from = "+16135550100"
callback_url = "https://emrcomm.riverside.example/callbacks"
callback_secret = { env = "EMRCOMM_TEST_CALLBACK" }

[plugins.sms.kannel]
url = "http://127.0.0.1:9/cgi-bin/sendsms"
username = "emrcomm"
password = { env = "EMRCOMM_TEST_KANNEL_PW" }
""")
    text = text.replace('[plugins.email]\ndirectory = "out/email"\n', """[plugins.email]
transport = "smtp"

[plugins.email.smtp]
host = "localhost"
port = 9
username = "clinic-relay"
password = { env = "EMRCOMM_TEST_SMTP_PW" }

[plugins.fhir-records]
base_url = "http://127.0.0.1:9/r4"
token = { env = "EMRCOMM_TEST_RECORDS_TOKEN" }
push = "manual"
""")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def clinic_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clinic folder that has sent a reminder (queued) and a portal message, then lost every
    credential from its environment."""
    from emrcomm.model import Request, Sensitivity

    config = config_with_credentials(tmp_path)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with Host.from_config(config) as host:
        host.send(reminder())
        host.send(Request("Patient/on-en", "clinical", id="note-1", text="Your results are in: see the note.",
                          sensitivity=Sensitivity.RESTRICTED))
    for name in SECRETS:
        monkeypatch.delenv(name)
    return config


READING = (["records"], ["records", "--patient", "Patient/on-en"], ["outbox"], ["inbox"], ["inbox", "--text"],
           ["keys", "list"], ["fhir-records", "queue"], ["clients", "list"], ["staff", "list"])


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_reading_commands_need_no_credential_and_write_nothing(args: list[str], clinic_without_credentials: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from emrcomm.cli import main

    folder = clinic_without_credentials.parent
    before = files_in(folder)
    code = main([*args, "--config", str(clinic_without_credentials)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "is not set" not in err and out.strip()
    assert files_in(folder) == before


def test_records_reads_the_chart_without_the_credentials(clinic_without_credentials: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from emrcomm.cli import main

    assert main(["records", "--config", str(clinic_without_credentials)]) == 0
    assert capsys.readouterr().out.startswith("Every patient: ")  # the timeline, for people
    assert main(["records", "--fhir", "--config", str(clinic_without_credentials)]) == 0
    bundle = json.loads(capsys.readouterr().out)
    # A request from Python has no FHIR resource of its own: the record names its id.
    assert {ref["identifier"]["value"] for e in bundle["entry"] for ref in e["resource"]["basedOn"]} == {
        "r-1", "note-1"}


@pytest.mark.parametrize("args", [["worker", "--once"], ["outbox", "requeue", "--all-dead"]], ids=" ".join)
def test_a_command_that_may_send_or_change_says_which_credential_is_missing_before_anything(
        args: list[str], clinic_without_credentials: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from emrcomm.cli import main

    folder = clinic_without_credentials.parent
    before = files_in(folder)
    code = main([*args, "--config", str(clinic_without_credentials)])
    err = capsys.readouterr().err
    assert code == 2
    assert "plugins.sms.callback_secret: environment variable EMRCOMM_TEST_CALLBACK is not set" in err
    assert files_in(folder) == before


def test_check_config_names_every_missing_credential_and_writes_nothing(clinic_without_credentials: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from emrcomm.cli import main

    folder = clinic_without_credentials.parent
    before = files_in(folder)
    code = main(["check-config", "--config", str(clinic_without_credentials)])
    out = capsys.readouterr().out
    assert code == 2 and "NOT OK" in out
    for setting, variable in (("plugins.sms.callback_secret", "EMRCOMM_TEST_CALLBACK"),
                              ("plugins.sms.kannel.password", "EMRCOMM_TEST_KANNEL_PW"),
                              ("plugins.email.smtp.password", "EMRCOMM_TEST_SMTP_PW"),
                              ("plugins.fhir-records.token", "EMRCOMM_TEST_RECORDS_TOKEN")):
        assert f"{setting}: environment variable {variable} is not set" in out
    assert not any(value in out for value in SECRETS.values())
    assert files_in(folder) == before


def test_a_read_only_host_starts_no_filing_thread(clinic_without_credentials: Path) -> None:
    import threading

    with Host.from_config(clinic_without_credentials, read_only=True) as host:
        assert host.plugins.get("fhir-records") is not None
        assert not [t for t in threading.enumerate() if t.name.startswith("emrcomm-fhir-records")]


FAILING = {
    "bundle missing": ('[plugins.directory]\nbundle = "patients.json"\n', '[plugins.directory]\nbundle = "gone.json"\n'),
    "bad setting": ('[plugins.portal]\nkeyring = "keyring.json"\n',
                    '[plugins.portal]\nkeyring = "keyring.json"\nlink_days = "a week"\n'),
    "unknown plugin": ("[plugins.portal]\n", "[plugins.fax]\n[plugins.portal]\n"),
    "credential unset": ('[plugins.email]\ndirectory = "out/email"\n',
                         '[plugins.email]\ntransport = "smtp"\n[plugins.email.smtp]\nhost = "localhost"\n'
                         'username = "u"\npassword = {env = "EMRCOMM_TEST_UNSET"}\n'),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_check_config_that_fails_writes_nothing_either(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from emrcomm.cli import main

    monkeypatch.delenv("EMRCOMM_TEST_UNSET", raising=False)
    config = write_config(tmp_path)
    old, new = FAILING[case]
    config.write_text(config.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    before = files_in(tmp_path)
    assert main(["check-config", "--config", str(config)]) == 2
    assert capsys.readouterr().err or case == "credential unset"
    assert files_in(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "emrcomm.toml", "patients.json"]
