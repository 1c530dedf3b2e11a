"""A clinic folder made by the 0.1 release (tests/data/release-0.1) opened with today's code:
the schema upgrades in place, every record keeps what it said, what waited in the outbox is
delivered, the consent ledger and the portal keep their rows, and the audit log verifies."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from emrcomm.cli import main
from emrcomm.fhir import validate_resource
from emrcomm.host import Host
from emrcomm.outbox.worker import Worker
from emrcomm.storage import schema_version
from emrcomm.storage.schema import MIGRATIONS
from emrcomm.testing import TEST_NOW, FixedClock
from emrcomm_portal.storage import PortalStore
from support import DATA, communication

RELEASE = DATA / "release-0.1"
NEXT_MORNING = TEST_NOW + dt.timedelta(hours=23)  # 09:00 the next day in Toronto: the hold is over


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "clinic"
    shutil.copytree(RELEASE, copy)
    for secret in ("audit-signing.key", "keyring.json"):  # git keeps no modes
        (copy / secret).chmod(0o600)
    return copy


def old_records(folder: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    with sqlite3.connect(folder / "emrcomm.sqlite") as db:
        return {rid: json.loads(resource) for rid, resource in db.execute("SELECT id, resource FROM records")}


def test_the_schema_upgrades_in_place_and_every_record_says_what_it_said(folder: Path) -> None:
    before = old_records(folder)
    with Host.from_config(folder / "emrcomm.toml", clock=FixedClock(NEXT_MORNING)) as host:
        assert schema_version(host.storage.db) == max(m.version for m in MIGRATIONS)  # 1 -> 2 -> … in place
        assert {r.id for r in host.storage.records.find()} == set(before)
        for rid, old in before.items():
            new = communication(host, rid)
            assert new is not None
            validate_resource(new)
            for field in ("status", "subject", "category", "medium", "basedOn", "sent", "payload"):
                assert new.get(field) == old.get(field), (rid, field)
            assert [n for n in old.get("note", []) if n not in new.get("note", [])] == [], rid
        assert host.storage.consent.last(channel="sms", address="+15145550177").revokes  # the STOP
        assert len(PortalStore(host.storage.db).sealed()) == 1  # the result note, still encrypted


def test_what_waited_in_the_outbox_is_delivered_once_after_the_upgrade(folder: Path) -> None:
    sink = folder / "out" / "sms.jsonl"
    lines_before = sink.read_text(encoding="utf-8").splitlines()
    with Host.from_config(folder / "emrcomm.toml", clock=FixedClock(NEXT_MORNING)) as host:
        assert host.storage.outbox.counts() == {"pending": 1, "held": 1}
        stats = Worker(host).run(once=True)
        assert stats.sent == 2 and host.storage.outbox.counts() == {}
        for request in ("rel-queued", "rel-held"):
            [record] = host.storage.records.for_request(request)
            assert record.status == "completed" and record.sent is not None
        assert "already handled" in host.send(json.loads(json.dumps({
            "resourceType": "CommunicationRequest", "id": "rel-queued", "status": "active",
            "category": [{"coding": [{"system": "http://emrcomm.org/fhir/CodeSystem/category",
                                      "code": "appointment-reminder"}]}],
            "subject": {"reference": "Patient/on-en"}, "payload": [{"contentString": "again"}]}))).explanation[0]
    assert len(sink.read_text(encoding="utf-8").splitlines()) == len(lines_before) + 2


def test_the_audit_log_verifies_after_the_upgrade(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Host.from_config(folder / "emrcomm.toml", clock=FixedClock(NEXT_MORNING)) as host:
        Worker(host).run(once=True)
    assert main(["audit", "verify", "--config", str(folder / "emrcomm.toml")]) == 0
    assert "check out" in capsys.readouterr().out
