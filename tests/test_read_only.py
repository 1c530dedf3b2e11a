"""Commands that only ask — ``check``, ``check --patient``, ``plugins``, ``check-config`` — write
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
