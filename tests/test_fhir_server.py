"""Filing on a real FHIR server (Medplum's router behind tests/fhir_server/shim.cjs) and reading
patients from it: every outcome lands there, is searched back, and survives the server going away
in the middle of a batch with nothing lost and nothing twice."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emrcomm.cli import main
from emrcomm.config import load_config
from emrcomm.errors import ConfigError, PluginError
from emrcomm.fhir import RECORD_ID_SYSTEM, validate_resource
from emrcomm.host import Host
from emrcomm.model import Category, DeliveryUpdate, Request, Sensitivity, Status
from emrcomm_fhirserver.client import MAX_ANSWER
from fhir_schema import schema_errors
from fhir_server.server import TOKEN_VARIABLE, ShimServer, shared_server, wait_for
from servers import Reply, ScriptedHTTPServer, scripted
from support import BASE_CONFIG, REPO, consent, merged_pair, patient, small_clinic, sms_refused, write_config
from test_pipeline import TORONTO, reminder, sms_sink
from test_worker_unreadable import corrupt_record, newer_category

pytestmark = pytest.mark.node

PATIENTS = ("Patient/on-en", "Patient/qc-fr", "Patient/fl", "Patient/stopped", "Patient/none")


@pytest.fixture
def fhir() -> Iterator[ShimServer]:
    """The session's FHIR server, running and empty."""
    server = shared_server()
    server.reset()
    yield server
    server.ensure_running()  # a test that stopped it leaves it running for the next one


def records_table(server: ShimServer, **settings: Any) -> str:
    lines = [f'base_url = "{server.base_url}"', f'token = {{env = "{TOKEN_VARIABLE}"}}']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n[plugins.fhir-records]\n" + "\n".join(lines) + "\n"


def directory_table(server: ShimServer, **settings: Any) -> str:
    lines = [f'base_url = "{server.base_url}"', f'token = {{env = "{TOKEN_VARIABLE}"}}']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n[plugins.fhir-directory]\n" + "\n".join(lines) + "\n"


def filer(host: Host) -> Any:
    return next(p.plugin for p in host.plugins if p.name == "fhir-records")


def embedded(host: Host) -> dict[str, dict[str, Any]]:
    return {entry["resource"]["id"]: entry["resource"] for entry in host.records().get("entry", [])}


def on_server(server: ShimServer, **params: Any) -> list[dict[str, Any]]:
    return server.search("Communication", **params)


def record_ids_on(resources: list[dict[str, Any]]) -> list[str]:
    return [i["value"] for r in resources for i in r.get("identifier", ()) if i.get("system") == RECORD_ID_SYSTEM]


def send_batch(host: Host, n: int, prefix: str) -> list[Any]:
    return [host.send(reminder(PATIENTS[i % len(PATIENTS)], rid=f"{prefix}-{i}")) for i in range(n)]


# ---------------------------------------------------------------- filing every outcome


def test_every_outcome_is_filed_on_the_server_and_searched_back_by_subject(
        fhir: ShimServer, make_host: Callable[..., Host], clock: Any) -> None:
    host = make_host(records_table(fhir, push="manual"))
    host.send(reminder(rid="sent"))                                                   # completed
    host.send(reminder("Patient/none", rid="blocked"))                                # not-done
    host.send(Request("Patient/on-en", Category.CLINICAL, id="portal", text="Your biopsy was benign.",
                      sensitivity=Sensitivity.RESTRICTED))                            # portal + notice
    clock.now = dt.datetime(2026, 11, 23, 22, 0, tzinfo=TORONTO)
    host.send(reminder(rid="held"))                                                   # on-hold
    report = filer(host).flush()
    assert (report.filed, report.pending, report.error) == (5, 0, None)

    mine = embedded(host)
    found = on_server(fhir, subject="Patient/on-en")
    assert sorted(record_ids_on(found)) == sorted(r["id"] for r in mine.values() if r["subject"]["reference"]
                                                  == "Patient/on-en")
    assert sorted(r["status"] for r in found) == ["completed", "completed", "completed", "on-hold"]
    [blocked] = on_server(fhir, subject="Patient/none")
    assert blocked["status"] == "not-done"
    assert blocked["statusReason"]["coding"][0]["code"] == "CONSENT_MISSING"


def test_what_the_server_holds_is_valid_r4_and_is_what_the_chart_holds(
        fhir: ShimServer, make_host: Callable[..., Host]) -> None:
    host = make_host(records_table(fhir, push="manual"))
    send_batch(host, 5, "valid")
    host.send(Request("Patient/on-en", Category.CLINICAL, id="portal", text="Your biopsy was benign.",
                      sensitivity=Sensitivity.RESTRICTED))
    filer(host).flush()
    mine = embedded(host)
    found = on_server(fhir)
    assert len(found) == len(mine) == 7
    for resource in found:
        assert schema_errors(resource) == [], resource["id"]
        validate_resource(resource)
        [record_id] = record_ids_on([resource])
        ours = {k: v for k, v in mine[record_id].items() if k not in ("id", "meta")}
        assert {k: v for k, v in resource.items() if k not in ("id", "meta")} == ours
    portal = [r for r in found if r["medium"][0]["coding"][0]["code"] == "ONLINEWRIT"]
    assert [list(p) for r in portal for p in r["payload"]] == [["contentReference"]]  # never the note's words


def test_batches_go_as_transaction_bundles(fhir: ShimServer, make_host: Callable[..., Host]) -> None:
    host = make_host(records_table(fhir, push="manual", batch_size=4))
    send_batch(host, 10, "bundle")
    records = len(embedded(host))
    filer(host).flush()
    stats = fhir.control("stats")
    assert stats["bundles"] == math.ceil(records / 4) and stats["bundleEntries"] == records
    assert stats["writes"] == stats["bundles"]  # nothing was filed one at a time


def test_batch_bundles_file_every_record_too(fhir: ShimServer, make_host: Callable[..., Host]) -> None:
    host = make_host(records_table(fhir, push="manual", bundle="batch", batch_size=50))
    send_batch(host, 10, "batch")
    report = filer(host).flush()
    assert (report.filed, report.pending) == (len(embedded(host)), 0)
    assert fhir.control("stats")["bundles"] == 1
    assert sorted(record_ids_on(on_server(fhir))) == sorted(embedded(host))


def test_a_busy_server_is_retried_with_backoff_and_retry_after(
        fhir: ShimServer, make_host: Callable[..., Host]) -> None:
    host = make_host(records_table(fhir, push="manual", retries=2))
    send_batch(host, 3, "busy")
    fhir.control("fail", status=503, count=2, retry_after=0)  # two refusals: the third attempt passes
    report = filer(host).flush()
    assert (report.filed, report.error) == (len(embedded(host)), None)
    assert fhir.control("stats")["refused"] == 2


def test_a_server_that_stays_busy_leaves_everything_queued(
        fhir: ShimServer, make_host: Callable[..., Host]) -> None:
    host = make_host(records_table(fhir, push="manual", retries=1))
    send_batch(host, 3, "busier")
    fhir.control("fail", status=429, count=2, retry_after=0)
    first = filer(host).flush()
    assert first.filed == 0 and first.pending == len(embedded(host)) and "HTTP 429" in (first.error or "")
    second = filer(host).flush()
    assert (second.filed, second.pending) == (len(embedded(host)), 0)
    assert Counter(record_ids_on(on_server(fhir))) == Counter(list(embedded(host)))


THROTTLED = Reply(429, json.dumps({"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "throttled", "diagnostics": "slow down"}]}).encode(),
    headers=(("Retry-After", "120"),))


def test_a_retry_after_longer_than_a_request_may_wait_is_not_shortened(
        make_host: Callable[..., Host], monkeypatch: pytest.MonkeyPatch) -> None:
    with scripted(THROTTLED) as clinic:
        host = make_host(scripted_records(clinic).replace("retries = 0", "retries = 2"))
        host.send(reminder(rid="throttled"))
        waits: list[float] = []
        monkeypatch.setattr(filer(host).client, "sleep", waits.append)
        report = filer(host).flush()
        assert (report.filed, report.pending) == (0, 1) and "HTTP 429" in (report.error or "")
        # asked to come back in 120 s: no retry 30 s later, the flush hands the wait to the pusher
        assert (len(clinic.seen), waits, report.retry_after) == (1, [], 120)


def test_the_pusher_waits_as_long_as_retry_after_asks(make_host: Callable[..., Host]) -> None:
    with scripted(THROTTLED) as clinic:
        lines = [f'base_url = "{clinic.url}/r4"', "retries = 0", "max_backoff = 1"]
        host = make_host("\n[plugins.fhir-records]\n" + "\n".join(lines) + "\n")
        host.send(reminder(rid="throttled-bg"))
        assert wait_for(lambda: len(clinic.seen) >= 1)
        time.sleep(2.5)  # the pusher's own backoff (0.5 s, then max_backoff 1 s) would have tried twice more
        assert len(clinic.seen) == 1


def test_a_changed_record_updates_the_same_resource_on_the_server(
        fhir: ShimServer, make_host: Callable[..., Host], clock: Any) -> None:
    host = make_host(records_table(fhir, push="manual"))
    outcome = host.send(reminder(rid="read-me"))
    filer(host).flush()
    host.delivery_update(DeliveryUpdate(kind="read", at=clock.now, record_id=outcome.record_ids[0]))
    assert filer(host).flush().filed == 1
    [resource] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{outcome.record_ids[0]}")
    assert resource["received"] == "2026-11-23T15:00:00Z"
    history = fhir.get(f"Communication/{resource['id']}/_history")
    assert len(history["entry"]) == 2


def test_two_processes_filing_one_record_never_leave_an_older_version_on_the_server(
        fhir: ShimServer, make_host: Callable[..., Host], clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two hosts on one store (serve and `fhir-records flush`, or two workers) file the same record:
    the one holding the older version is overtaken on the wire. The server must end with the newest."""
    first = make_host(records_table(fhir, push="manual"))
    record_id = first.send(reminder(rid="raced")).record_ids[0]
    filer(first).flush()
    second = make_host(records_table(fhir, push="manual"))  # another process, the same store
    first.delivery_update(DeliveryUpdate(kind="delivered", at=clock.now, record_id=record_id))
    slow = filer(first)
    real = slow.client.bundle

    def overtaken(entries: Any, kind: str = "transaction") -> Any:
        # this host read the record (delivered) and is about to send it; the other files a newer one (read)
        second.delivery_update(DeliveryUpdate(kind="read", at=clock.now, record_id=record_id))
        assert filer(second).flush().filed == 1
        monkeypatch.setattr(slow.client, "bundle", real)
        return real(entries, kind)

    monkeypatch.setattr(slow.client, "bundle", overtaken)
    slow.flush()
    for host in (first, second):
        assert filer(host).flush().pending == 0
    [resource] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{record_id}")
    mine = embedded(first)[record_id]
    assert resource["received"] == "2026-11-23T15:00:00Z"  # the read is not undone by the late delivered
    assert {k: v for k, v in resource.items() if k not in ("id", "meta")} == \
        {k: v for k, v in mine.items() if k not in ("id", "meta")}
    assert filer(first).queue_status()["rejected"] == []


# ---------------------------------------------------------------- edited on the server by someone else

CLINICIAN_NOTE = {"text": "Patient called back; appointment confirmed.", "authorReference": {"reference": "Practitioner/dr-osei"}}
EXTENSION = {"url": "http://clinic.example/fhir/StructureDefinition/reviewed", "valueBoolean": True}


def edited_on_server(server: ShimServer, record_id: str, **changes: Any) -> dict[str, Any]:
    """A clinician edits the filed Communication on the server (its versionId moves)."""
    [resource] = on_server(server, identifier=f"{RECORD_ID_SYSTEM}|{record_id}")
    edited = {k: v for k, v in resource.items() if k != "meta"} | changes
    return server.put(edited)


def test_a_record_edited_on_the_server_keeps_the_edit_and_takes_emrcomms_change(
        fhir: ShimServer, make_host: Callable[..., Host], clock: Any) -> None:
    host = make_host(records_table(fhir, push="manual"))
    record_id = host.send(reminder(rid="edited")).record_ids[0]
    filer(host).flush()
    [filed] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{record_id}")
    edited_on_server(fhir, record_id, note=[*filed["note"], CLINICIAN_NOTE], extension=[EXTENSION])
    host.delivery_update(DeliveryUpdate(kind="read", at=clock.now, record_id=record_id))
    report = filer(host).flush()
    assert (report.filed, report.rejected, report.pending, report.error) == (1, 0, 0, None)
    [resource] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{record_id}")
    mine = embedded(host)[record_id]
    assert resource["received"] == mine["received"] == "2026-11-23T15:00:00Z"
    assert resource["note"] == [*mine["note"], CLINICIAN_NOTE] and resource["extension"] == [EXTENSION]
    assert len(fhir.get(f"Communication/{resource['id']}/_history")["entry"]) == 3


def test_an_edit_kept_on_the_server_survives_emrcomms_later_updates(
        fhir: ShimServer, make_host: Callable[..., Host], clock: Any) -> None:
    host = make_host(records_table(fhir, push="manual"))
    record_id = host.send(reminder(rid="kept")).record_ids[0]
    filer(host).flush()
    [filed] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{record_id}")
    edited_on_server(fhir, record_id, note=[*filed["note"], CLINICIAN_NOTE], extension=[EXTENSION])
    host.delivery_update(DeliveryUpdate(kind="delivered", at=clock.now, record_id=record_id))
    assert filer(host).flush().filed == 1
    host.delivery_update(DeliveryUpdate(kind="read", at=clock.now, record_id=record_id))
    assert filer(host).flush().filed == 1  # no 412 this time: the server's copy was emrcomm's last
    [resource] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{record_id}")
    assert resource["received"] == "2026-11-23T15:00:00Z" and resource["extension"] == [EXTENSION]
    assert resource["note"] == [*embedded(host)[record_id]["note"], CLINICIAN_NOTE]


def test_a_field_emrcomm_owns_changed_on_the_server_is_set_aside_until_overwritten_deliberately(
        fhir: ShimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path, records_table(fhir, push="manual"))
    with Host(load_config(config), clock=clock) as host:
        record_id = host.send(reminder(rid="disputed")).record_ids[0]
        filer(host).flush()
        edited_on_server(fhir, record_id, status="entered-in-error", extension=[EXTENSION])
        host.delivery_update(DeliveryUpdate(kind="read", at=clock.now, record_id=record_id))
        with caplog.at_level(logging.DEBUG):
            first = filer(host).flush()
            second = filer(host).flush()  # nothing goes round again: it waits for a person
        assert (first.filed, first.rejected, first.pending) == (0, 1, 0)
        assert (second.filed, second.rejected, second.pending) == (0, 0, 0)
        [refused] = filer(host).queue_status()["rejected"]
        assert refused["record_id"] == record_id
        assert "status" in refused["last_error"] and f"fhir-records overwrite {record_id}" in refused["last_error"]
        assert "613" not in caplog.text and "appointment" not in caplog.text.lower()
    [resource] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{record_id}")
    assert resource["status"] == "entered-in-error" and "received" not in resource  # nothing overwritten

    code, out = run(capsys, "fhir-records", "overwrite", record_id, "--config", str(config))
    assert code == 0 and record_id in out
    [resource] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{record_id}")
    assert resource["status"] == "completed" and resource["received"] == "2026-11-23T15:00:00Z"
    assert resource["extension"] == [EXTENSION]  # what emrcomm does not own is kept
    code, out = run(capsys, "fhir-records", "queue", "--config", str(config), "--json")
    assert (json.loads(out)["pending"], json.loads(out)["rejected"]) == (0, [])


def test_a_reply_is_filed_from_the_patient_in_response_to_the_record(
        fhir: ShimServer, make_host: Callable[..., Host], clock: Any) -> None:
    host = make_host(records_table(fhir, push="manual"))
    outcome = host.send(reminder(rid="asked"))
    update = DeliveryUpdate(kind="reply", at=clock.now, channel="sms", record_id=outcome.record_ids[0],
                            provider_id="SM-reply-1", text="Can I come at 11 instead?")
    host.delivery_update(update)
    host.delivery_update(update)  # the provider called back twice: still one reply
    filer(host).flush()
    replies = [r for r in on_server(fhir, subject="Patient/on-en") if r.get("inResponseTo")]
    assert len(replies) == 1
    [reply] = replies
    [original] = [r for r in on_server(fhir, subject="Patient/on-en") if not r.get("inResponseTo")]
    assert reply["inResponseTo"] == [{"reference": f"Communication/{outcome.record_ids[0]}"}]
    assert reply["sender"] == {"reference": "Patient/on-en"}
    assert reply["recipient"] == [{"display": "Riverside Family Health"}]
    assert reply["payload"] == [{"contentString": "Can I come at 11 instead?"}]
    assert reply["status"] == "completed" and reply["basedOn"] == original["basedOn"]
    assert schema_errors(reply) == []


# ---------------------------------------------------------------- durable queue, server down and back


def test_the_message_goes_only_once_its_record_is_queued(
        fhir: ShimServer, make_host: Callable[..., Host], monkeypatch: pytest.MonkeyPatch) -> None:
    host = make_host(records_table(fhir, push="manual"))

    def full_disk(**_: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(filer(host).queue, "put", full_disk)
    outcome = host.send(reminder(rid="no-queue"))
    assert outcome.status is Status.FAILED
    assert [(f.code, f.plugin) for f in outcome.findings] == [("RECORD_NOT_FILED", "fhir-records")]
    assert sms_sink(host) == []


def test_records_wait_while_the_server_is_down_and_are_filed_when_a_host_starts(
        fhir: ShimServer, make_host: Callable[..., Host]) -> None:
    fhir.stop()
    settings = records_table(fhir, max_backoff=1, retries=0)
    host = make_host(settings)
    outcomes = send_batch(host, 6, "offline")
    assert all(o.status in (Status.SENT, Status.BLOCKED) for o in outcomes)  # the messages went out
    assert len(sms_sink(host)) == sum(o.status is Status.SENT and o.channels == ("sms",) for o in outcomes)
    waiting = filer(host).queue_status()["pending"]
    assert waiting == len(embedded(host)) > 0
    started = time.monotonic()
    host.close()  # the server is known to be down: closing does not wait for it
    # Waiting for the pusher's retries would take its whole join bound (timeout x attempts + 5 s = 15 s).
    assert time.monotonic() - started < 10

    fhir.start()
    again = make_host(settings)  # the same store: its pusher files what was left, at start-up
    assert wait_for(lambda: filer(again).queue_status()["pending"] == 0)
    assert sorted(record_ids_on(on_server(fhir))) == sorted(embedded(again))


def test_a_server_crash_in_the_middle_of_a_batch_loses_nothing_and_duplicates_nothing(
        fhir: ShimServer, make_host: Callable[..., Host]) -> None:
    host = make_host(records_table(fhir, push="manual", batch_size=8, retries=1))
    send_batch(host, 30, "crash")
    mine = embedded(host)
    fhir.crash_after_writes(2)  # the 2nd bundle is written, then the server dies before answering
    first = filer(host).flush()
    fhir.wait_until_dead()
    assert first.filed == 8 and first.pending == len(mine) - 8 and "unavailable" in (first.error or "")

    fhir.start()
    assert len(on_server(fhir)) == 16  # the unanswered bundle did reach the server
    second = filer(host).flush()
    assert (second.filed, second.pending, second.error) == (len(mine) - 8, 0, None)
    found = on_server(fhir)
    counts = Counter(record_ids_on(found))
    assert sorted(counts) == sorted(mine) and set(counts.values()) == {1}
    for resource in found:
        [record_id] = record_ids_on([resource])
        assert resource["status"] == mine[record_id]["status"]


def test_stopping_the_server_while_sending_loses_nothing_and_duplicates_nothing(
        fhir: ShimServer, make_host: Callable[..., Host]) -> None:
    host = make_host(records_table(fhir, batch_size=8, max_backoff=1, retries=1))
    outcomes = []
    for i in range(60):
        if i == 20:
            fhir.kill()  # mid-stream: the pusher is filing what the first 20 sends queued
        outcomes.append(host.send(reminder(PATIENTS[i % len(PATIENTS)], rid=f"stop-{i}")))
    assert all(o.status in (Status.SENT, Status.BLOCKED) for o in outcomes)
    assert filer(host).queue_status()["pending"] > 0
    fhir.start()
    assert wait_for(lambda: filer(host).queue_status()["pending"] == 0, timeout=30)
    mine = embedded(host)
    found = on_server(fhir)
    counts = Counter(record_ids_on(found))
    assert sorted(counts) == sorted(mine) and set(counts.values()) == {1}
    assert {r["status"] for r in found} == {mine[i]["status"] for i in counts}


# ---------------------------------------------------------------- refusals


def test_a_wrong_token_is_refused_named_and_never_written(
        fhir: ShimServer, make_host: Callable[..., Host], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "not-the-token-42")
    host = make_host(records_table(fhir, push="manual"))
    host.send(reminder(rid="bad-token"))
    with caplog.at_level(logging.DEBUG):
        report = filer(host).flush()
    assert report.filed == 0 and report.pending == 1
    assert "HTTP 401" in (report.error or "") and "plugins.fhir-records.token" in (report.error or "")
    assert fhir.control("stats")["unauthorized"] >= 1 and on_server(fhir) == []
    assert "not-the-token-42" not in caplog.text and "not-the-token-42" not in (report.error or "")
    assert "not-the-token-42" not in host.config.base_dir.joinpath("emrcomm.toml").read_text()


def test_a_token_renewed_in_its_file_is_used_without_a_restart(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    """A short-lived token (SMART Backend Services) is renewed by another program into the file
    the settings name: the running host's next 401 reads it again."""
    token = tmp_path / "fhir-token"
    token.write_text("expired-token-17\n")
    table = records_table(fhir, push="manual").replace(f'{{env = "{TOKEN_VARIABLE}"}}', f'{{file = "{token}"}}')
    host = make_host(table)
    host.send(reminder(rid="renewed"))
    first = filer(host).flush()
    assert first.filed == 0 and "HTTP 401" in (first.error or "") and "expired-token-17" not in (first.error or "")
    token.write_text(fhir.token + "\n")
    second = filer(host).flush()
    assert (second.filed, second.pending, second.error) == (len(embedded(host)), 0, None)


def test_a_record_the_server_refuses_is_set_aside_and_the_rest_are_filed(
        fhir: ShimServer, make_host: Callable[..., Host]) -> None:
    host = make_host(records_table(fhir, push="manual"))
    outcomes = send_batch(host, 4, "refuse")
    spoiled = outcomes[0].record_ids[0]
    for _ in range(2):  # two resources already claim this record's identifier: no conditional create can
        fhir.post({"resourceType": "Communication", "status": "completed",
                   "identifier": [{"system": RECORD_ID_SYSTEM, "value": spoiled}]})
    report = filer(host).flush()
    assert (report.rejected, report.pending) == (1, 0)
    status = filer(host).queue_status()
    assert [r["record_id"] for r in status["rejected"]] == [spoiled]
    assert status["rejected"][0]["last_error"].startswith(("HTTP 412", "HTTP 400"))
    assert sorted(set(record_ids_on(on_server(fhir))) - {spoiled}) == sorted(set(embedded(host)) - {spoiled})


@pytest.mark.parametrize("spoil", [corrupt_record, newer_category], ids=["damaged", "newer"])
def test_a_record_this_release_cannot_read_is_set_aside_and_the_rest_are_filed(
        fhir: ShimServer, make_host: Callable[..., Host], spoil: Callable[[Host, str], Any],
        caplog: pytest.LogCaptureFixture) -> None:
    """Set aside as one the server refuses, with why, for a release that reads it to file it
    (flush --retry-rejected); the flush raised RecordUnreadable at it, every time, and nothing
    queued with or after it was filed."""
    host = make_host(records_table(fhir, push="manual"))
    ids = [o.record_ids[0] for o in send_batch(host, 4, "unreadable")]
    spoiled = ids[1]
    spoil(host, spoiled)
    with caplog.at_level(logging.INFO):
        report = filer(host).flush()
    assert (report.filed, report.rejected, report.pending, report.error) == (3, 1, 0, None)
    [refused] = filer(host).queue_status()["rejected"]
    assert refused["record_id"] == spoiled and "--retry-rejected" in refused["last_error"]
    assert refused["last_error"].startswith("written by a newer release" if spoil is newer_category
                                            else "its record cannot be read by this release")
    assert sorted(record_ids_on(on_server(fhir))) == sorted(i for i in ids if i != spoiled)
    assert f"record {spoiled} cannot be read by this release and is not filed" in caplog.text


def test_a_refusal_inside_a_batch_bundle_names_the_servers_issue(
        fhir: ShimServer, make_host: Callable[..., Host], caplog: pytest.LogCaptureFixture) -> None:
    host = make_host(records_table(fhir, push="manual", bundle="batch"))
    outcomes = send_batch(host, 3, "batch-refuse")
    spoiled = outcomes[0].record_ids[0]
    for _ in range(2):  # two resources already claim this record's identifier: no conditional create can
        fhir.post({"resourceType": "Communication", "status": "completed",
                   "identifier": [{"system": RECORD_ID_SYSTEM, "value": spoiled}]})
    with caplog.at_level(logging.INFO):
        report = filer(host).flush()
    assert (report.rejected, report.pending) == (1, 0)
    [refused] = filer(host).queue_status()["rejected"]
    assert refused["record_id"] == spoiled
    assert refused["last_error"] == "HTTP 412: multiple-matches: Multiple resources found matching condition"
    assert f"record {spoiled} refused by the server (HTTP 412, multiple-matches)" in caplog.text


def test_a_batch_entrys_issue_that_quotes_the_message_is_reported_without_its_words(
        make_host: Callable[..., Host]) -> None:
    words = "Tue, Nov 24 at 10:30"
    answer = {"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {"status": "400", "outcome": {
        "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid",
                                                        "diagnostics": f"payload[0].contentString '{words}' is too long"}]}}}]}
    with scripted(Reply(200, json.dumps(answer).encode())) as clinic:
        host = make_host(scripted_records(clinic, bundle="batch", batch_size=1))
        host.send(reminder(rid="quoted"))
        assert filer(host).flush().rejected == 1
        [refused] = filer(host).queue_status()["rejected"]
        assert refused["last_error"] == "HTTP 400: invalid: payload[0].contentString [withheld] is too long"


def test_an_invalid_communication_is_refused_before_it_reaches_the_server(
        fhir: ShimServer, make_host: Callable[..., Host], monkeypatch: pytest.MonkeyPatch) -> None:
    import emrcomm_fhirserver.filer

    host = make_host(records_table(fhir, push="manual"))
    assert host.send(reminder(rid="invalid")).status is Status.SENT
    real = emrcomm_fhirserver.filer.communication
    # a Communication the chart could not have made (the projection's output is valid R4)
    monkeypatch.setattr(emrcomm_fhirserver.filer, "communication", lambda r: {**real(r), "sent": "yesterday"})
    report = filer(host).flush()
    assert (report.filed, report.rejected) == (0, 1)
    [rejected] = filer(host).queue_status()["rejected"]
    assert rejected["last_error"].startswith("not valid FHIR R4: sent")
    assert on_server(fhir) == []


# ---------------------------------------------------------------- the command line


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_the_plugin_command_flushes_and_shows_the_queue(
        fhir: ShimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, records_table(fhir, push="manual"))
    with Host.from_config(config) as host:
        send_batch(host, 3, "cli")
        expected = len(embedded(host))
    code, out = run(capsys, "fhir-records", "queue", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["pending"] == expected
    code, out = run(capsys, "fhir-records", "flush", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["filed"] == expected
    fhir.stop()
    with Host.from_config(config) as host:
        host.send(reminder(rid="cli-late"))
    code, out = run(capsys, "fhir-records", "flush", "--config", str(config))
    assert code == 4 and "1 waiting" in out and "unavailable" in out


def test_a_store_the_plugin_has_not_started_on_has_an_empty_queue_and_backfill_files_what_it_held(
        fhir: ShimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Switched on for a clinic that already sends, then asked before anything started with it."""
    plain = write_config(tmp_path, "")
    with Host.from_config(plain) as host:
        send_batch(host, 2, "before")
    config = write_config(tmp_path, records_table(fhir, push="manual"))
    code, out = run(capsys, "fhir-records", "queue", "--config", str(config), "--json")
    status = json.loads(out)
    assert code == 0 and (status["pending"], status["done"], status["rejected"]) == (0, 0, [])
    with Host.from_config(config) as host:  # the first start that writes makes the queue
        host.send(reminder(rid="after-1"))
        chart = embedded(host)
        made_after = {r for r, res in chart.items() if "after-1" in json.dumps(res)}
    code, out = run(capsys, "fhir-records", "queue", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["pending"] == len(made_after) > 0
    # the records made before it was on: queued once by backfill, then filed like the others
    code, out = run(capsys, "fhir-records", "backfill", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["queued"] == len(chart) - len(made_after) > 0
    code, out = run(capsys, "fhir-records", "backfill", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["queued"] == 0
    code, out = run(capsys, "fhir-records", "flush", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["filed"] == len(chart)
    assert sorted(record_ids_on(on_server(fhir))) == sorted(chart)


def test_records_search_the_server_by_patient_status_channel_and_date(
        fhir: ShimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: Any) -> None:
    config = write_config(tmp_path, records_table(fhir, push="manual"))
    with Host(load_config(config), clock=clock) as host:  # sent at 2026-11-23T15:00Z
        send_batch(host, 5, "search")
        filer(host).flush()
        mine = embedded(host)
    base = ("fhir-records", "search", "--config", str(config))
    code, out = run(capsys, *base, "--patient", "Patient/qc-fr")
    bundle = json.loads(out)
    assert code == 0 and bundle["type"] == "searchset" and schema_errors(bundle) == []
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {"Patient/qc-fr"}
    code, out = run(capsys, *base, "--status", "not-done")
    assert [e["resource"]["statusReason"]["coding"][0]["code"] for e in json.loads(out)["entry"]] == \
        ["CONSENT_MISSING"]
    code, out = run(capsys, *base, "--channel", "email")
    emailed = sorted(r["id"] for r in mine.values() if r.get("medium", [{}])[0].get("coding", [{}])[0].get("code")
                     == "EMAILWRIT")
    assert sorted(record_ids_on([e["resource"] for e in json.loads(out)["entry"]])) == emailed
    sent = sum(1 for r in mine.values() if "sent" in r)
    code, out = run(capsys, *base, "--since", "2026-11-23T00:00:00+00:00", "--until", "2026-11-24")
    assert len(json.loads(out)["entry"]) == sent
    code, out = run(capsys, *base, "--since", "2026-11-24")
    assert "entry" not in json.loads(out)


# ---------------------------------------------------------------- the directory on the server

MRN = "http://riverside.example/fhir/sid/mrn"


def load_clinic(server: ShimServer, extra: list[dict[str, Any]] | None = None) -> None:
    for entry in small_clinic()["entry"]:
        resource = dict(entry["resource"])
        if resource["resourceType"] == "Patient":
            resource["identifier"] = [{"system": MRN, "value": f"MRN-{resource['id']}"}]
        server.put(resource)
    for resource in extra or ():
        server.put(resource)


def directory_host(make_host: Callable[..., Host], server: ShimServer, tmp_path: Path, **settings: Any) -> Host:
    # The Bundle directory knows nobody here: every patient comes from the server.
    (tmp_path / "empty.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    text = BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "empty.json"')
    return make_host(config_text=text + directory_table(server, **settings))


def test_directory_reads_patient_and_consents_from_the_server(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    load_clinic(fhir)
    host = directory_host(make_host, fhir, tmp_path)
    assert host.send(reminder(rid="d-1")).channels == ("sms",)
    assert host.send(reminder("Patient/stopped", rid="d-2")).channels == ("email",)  # the revoked SMS consent
    blocked = host.send(reminder("Patient/none", rid="d-3"))
    assert blocked.status is Status.BLOCKED and "CONSENT_MISSING" in {f.code for f in blocked.findings}
    host.send(reminder("Patient/qc-fr", rid="d-4"))
    assert "rendez-vous" in sms_sink(host)[-1]["text"].lower()


def test_directory_finds_a_patient_by_identifier(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    load_clinic(fhir)
    host = directory_host(make_host, fhir, tmp_path)
    outcome = host.send(reminder(f"Patient?identifier={MRN}|MRN-on-en", rid="by-mrn"))
    assert outcome.status is Status.SENT and sms_sink(host)[0]["to"] == "+16135550123"
    assert host.send(reminder(f"{MRN}|MRN-qc-fr", rid="by-token")).status is Status.SENT


def test_a_request_by_identifier_is_filed_on_the_server_as_the_patient_found(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    load_clinic(fhir)
    (tmp_path / "empty.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    text = BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "empty.json"')
    host = make_host(config_text=text + directory_table(fhir) + records_table(fhir))
    sent = host.send(reminder(f"Patient?identifier={MRN}|MRN-on-en", rid="by-mrn"))
    assert sent.status is Status.SENT and sent.patient_ref == "Patient/on-en"
    filer(host).flush()
    [filed] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{sent.record_ids[0]}")
    assert filed["subject"] == {"reference": "Patient/on-en"} and filed["recipient"] == [{"reference": "Patient/on-en"}]
    assert record_ids_on(on_server(fhir, subject="Patient/on-en")) == list(sent.record_ids)
    lost = host.send(reminder(f"Patient?identifier={MRN}|MRN-9876543210", rid="nobody"))
    assert [f.code for f in lost.findings] == ["RECIPIENT_UNKNOWN"]
    filer(host).flush()
    [unknown] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{lost.record_ids[0]}")
    assert "subject" not in unknown and "9876543210" not in json.dumps(unknown)


def test_directory_a_reference_it_cannot_read_is_logged_without_what_it_carries(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``Patient?identifier=…&birthdate=…`` is not supported: the warning says so, and carries
    neither the health number nor a bare digest of the reference (hashing guesses undoes one)."""
    import hashlib

    load_clinic(fhir)
    host = directory_host(make_host, fhir, tmp_path)
    ref = f"Patient?identifier={MRN}|9876543210&birthdate=1980-01-01"
    with caplog.at_level(logging.WARNING):
        outcome = host.send(reminder(ref, rid="two-parameters"))
    assert [f.code for f in outcome.findings] == ["RECIPIENT_UNKNOWN"]
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "only Patient?identifier=system|value is supported" in said
    assert "9876543210" not in said and hashlib.sha256(ref.encode()).hexdigest()[:16] not in said


def test_directory_an_identifier_two_patients_share_finds_nobody(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    twin = {**patient("twin", given="Tom", family="Twin", mobile="+16135550188"),
            "identifier": [{"system": MRN, "value": "MRN-on-en"}]}
    load_clinic(fhir, [twin, consent("c-twin", "twin", "sms")])
    host = directory_host(make_host, fhir, tmp_path)
    outcome = host.send(reminder(f"Patient?identifier={MRN}|MRN-on-en", rid="twins"))
    assert outcome.status is Status.BLOCKED and [f.code for f in outcome.findings] == ["RECIPIENT_UNKNOWN"]
    assert sms_sink(host) == []


def test_directory_a_patient_the_server_lacks_is_unknown(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    load_clinic(fhir)
    host = directory_host(make_host, fhir, tmp_path)
    outcome = host.send(reminder("Patient/nobody-here", rid="ghost"))
    assert [f.code for f in outcome.findings] == ["RECIPIENT_UNKNOWN"]


def test_a_chart_merged_on_the_server_is_sent_and_filed_there_as_the_one_kept(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    load_clinic(fhir, merged_pair())
    (tmp_path / "empty.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    text = BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "empty.json"')
    host = make_host(config_text=text + directory_table(fhir) + records_table(fhir))
    sent = host.send(reminder("Patient/blake-old", rid="merged"))
    assert sent.status is Status.SENT and sent.patient_ref == "Patient/blake", sent.explanation
    [sms] = sms_sink(host)
    assert sms["to"] == "+15145550167" and "rendez-vous" in sms["text"].lower()
    filer(host).flush()
    [filed] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{sent.record_ids[0]}")
    assert filed["subject"] == {"reference": "Patient/blake"} and filed["recipient"] == [{"reference": "Patient/blake"}]
    assert on_server(fhir, subject="Patient/blake-old") == []
    # The chart the EMR named is on the record: the merge, for staff reading it on the server.
    merged = "Patient/blake-old was merged into Patient/blake; sent to and filed under Patient/blake."
    assert {"text": f"PATIENT_MERGED (warn): {merged}"} in filed["note"]
    assert [f.message for f in sent.findings if f.code == "PATIENT_MERGED"] == [merged]


@pytest.mark.parametrize("ref", ["Patient/blake-old", "Patient/blake"])
def test_sms_refused_under_the_chart_merged_away_on_the_server_stays_refused_under_the_one_kept(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, ref: str) -> None:
    # The directory read Consent?patient=Patient/blake alone: the refusal recorded under Blake's
    # old chart, not moved at the merge, no longer counted, and he was texted.
    load_clinic(fhir, [*merged_pair(), sms_refused("c-blake-old-deny", "blake-old")])
    host = directory_host(make_host, fhir, tmp_path)
    outcome = host.send(reminder(ref, rid="refused-" + ref.replace("/", "-")))
    assert outcome.patient_ref == "Patient/blake" and "sms" not in outcome.channels and sms_sink(host) == []
    assert any(f.code == "CONSENT_REVOKED" and f.channel == "sms" for f in outcome.findings), outcome.findings


def test_the_timeline_of_the_chart_kept_on_the_server_shows_what_was_filed_under_the_chart_merged_away(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    # Blake was texted under his old chart; the EMR then merged it into Patient/blake on the
    # server. His timeline read Patient/blake's records alone: the message before the merge was gone.
    from emrcomm import timeline

    old, old_consent, _kept, _kept_consent = merged_pair()
    load_clinic(fhir, [{**{k: v for k, v in old.items() if k != "link"}, "active": True}, old_consent])
    host = directory_host(make_host, fhir, tmp_path)
    assert host.send(reminder("Patient/blake-old", rid="before-merge")).status is Status.SENT
    for resource in merged_pair():
        fhir.put(resource)
    clock.now += dt.timedelta(days=1)
    assert host.send(reminder("Patient/blake", rid="after-merge")).status is Status.SENT
    chart = timeline.for_patient(host, "Patient/blake")
    assert chart.merged == ("Patient/blake-old",)
    assert {e.request_id: e.patient for e in chart.entries if e.kind == "message"} == {
        "before-merge": "Patient/blake-old", "after-merge": "Patient/blake"}


def test_a_search_matching_a_merged_chart_and_the_one_kept_on_the_server_is_sent_and_filed_as_the_one_kept(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    # Both of Blake's charts keep his health number after the merge: the search matched two
    # Patients and was blocked RECIPIENT_UNKNOWN, though the server said which chart is in use.
    hcn = {"system": MRN, "value": "MRN-blake"}
    load_clinic(fhir, [{**r, "identifier": [hcn]} if r["resourceType"] == "Patient" else r for r in merged_pair()])
    (tmp_path / "empty.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    text = BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "empty.json"')
    host = make_host(config_text=text + directory_table(fhir) + records_table(fhir))
    sent = host.send(reminder(f"Patient?identifier={MRN}|MRN-blake", rid="merged-search"))
    assert sent.status is Status.SENT and sent.patient_ref == "Patient/blake", sent.explanation
    [sms] = sms_sink(host)
    assert sms["to"] == "+15145550167" and "rendez-vous" in sms["text"].lower()
    filer(host).flush()
    [filed] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{sent.record_ids[0]}")
    assert filed["subject"] == {"reference": "Patient/blake"}
    merged = "Patient/blake-old was merged into Patient/blake; sent to and filed under Patient/blake."
    assert {"text": f"PATIENT_MERGED (warn): {merged}"} in filed["note"]
    assert [f.message for f in sent.findings if f.code == "PATIENT_MERGED"] == [merged]


def test_directory_a_search_matching_charts_that_lead_to_two_charts_in_use_finds_nobody(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    # Blake's chart merged away keeps the number another patient's chart in use has: two patients.
    hcn = {"system": MRN, "value": "MRN-shared"}
    old, old_consent, kept, kept_consent = merged_pair()
    other = {**patient("other", given="Ann", family="Roy", mobile="+16135550171"), "identifier": [hcn]}
    load_clinic(fhir, [{**old, "identifier": [hcn]}, old_consent, kept, kept_consent, other,
                       consent("c-other", "other", "sms")])
    host = directory_host(make_host, fhir, tmp_path)
    outcome = host.send(reminder(f"Patient?identifier={MRN}|MRN-shared", rid="two-in-use"))
    assert outcome.status is Status.BLOCKED and [f.code for f in outcome.findings] == ["RECIPIENT_UNKNOWN"]
    assert sms_sink(host) == []


def test_directory_a_chart_the_server_refuses_is_blocked_as_refused_with_its_reason(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # It was RECIPIENT_UNKNOWN ("No directory knows this patient"), the reason in the log only.
    gone = {**patient("gone", given="Ada", family="Roy", mobile="+16135550170"), "deceasedBoolean": True}
    closed = {**patient("closed", given="Kim", family="Roy", mobile="+16135550168"), "active": False}
    loop = [{**patient(pid, given="Lou", family="Roy", mobile="+16135550169"), "active": False,
             "link": [{"other": {"reference": f"Patient/{other}"}, "type": "replaced-by"}]}
            for pid, other in (("loop-a", "loop-b"), ("loop-b", "loop-a"))]
    load_clinic(fhir, [gone, consent("c-gone", "gone", "sms"), closed, consent("c-closed", "closed", "sms"),
                       *loop, consent("c-loop", "loop-a", "sms")])
    (tmp_path / "empty.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    text = BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "empty.json"')
    host = make_host(config_text=text + directory_table(fhir) + records_table(fhir))
    reasons = {"Patient/gone": "Patient/gone is recorded as deceased",
               "Patient/closed": "Patient/closed is marked inactive (active: false)",
               "Patient/loop-a": "the replaced-by links of Patient/loop-a, Patient/loop-b lead back to Patient/loop-a"}
    with caplog.at_level(logging.WARNING):
        for ref, reason in reasons.items():
            outcome = host.send(reminder(ref, rid=ref.replace("/", "-")))
            assert outcome.status is Status.BLOCKED and [f.code for f in outcome.findings] == ["RECIPIENT_REFUSED"]
            assert outcome.findings[0].plugin == "fhir-directory" and reason in outcome.findings[0].message
            filer(host).flush()
            [filed] = on_server(fhir, identifier=f"{RECORD_ID_SYSTEM}|{outcome.record_ids[0]}")
            assert filed["status"] == "not-done" and filed["subject"] == {"reference": ref}
            assert filed["statusReason"]["coding"][0]["code"] == "RECIPIENT_REFUSED"
            assert reason in filed["statusReason"]["text"] and "+161355501" not in json.dumps(filed)
    assert sms_sink(host) == []
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "refuses the patient (RECIPIENT_REFUSED)" in said and "+161355501" not in said


def test_directory_server_down_stops_the_request_and_names_the_server(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    load_clinic(fhir)
    host = directory_host(make_host, fhir, tmp_path, retries=0)
    fhir.stop()
    with pytest.raises(PluginError, match=rf"fhir-directory.*{fhir.base_url} is unavailable.*send the request again"):
        host.send(reminder(rid="down"))
    assert host.records()["total"] == 0 and sms_sink(host) == []
    fhir.start()
    assert host.send(reminder(rid="down")).status is Status.SENT  # the same request, once the server is back


# ---------------------------------------------------------------- servers that misbehave


def scripted_records(server: ScriptedHTTPServer, **settings: Any) -> str:
    lines = [f'base_url = "{server.url}/r4"', 'push = "manual"', "retries = 0"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n[plugins.fhir-records]\n" + "\n".join(lines) + "\n"


def test_a_redirect_is_never_followed_and_nothing_counts_as_filed(
        make_host: Callable[..., Host], capsys: pytest.CaptureFixture[str]) -> None:
    with scripted() as elsewhere, scripted() as clinic:
        clinic.default = Reply(307, b"", headers=(("Location", f"{elsewhere.url}/steal"),))
        host = make_host(scripted_records(clinic))
        host.send(reminder(rid="redirected"))
        report = filer(host).flush()
        assert elsewhere.seen == [] and len(clinic.seen) >= 1
        assert (report.filed, report.rejected, report.pending) == (0, 0, 1)
        assert "HTTP 307" in (report.error or "") and "plugins.fhir-records.base_url" in (report.error or "")
        assert filer(host).queue_status()["done"] == 0
        with pytest.raises(ConfigError, match=r"plugins\.fhir-records\.base_url"):
            filer(host).search({"status": "completed"})
        assert elsewhere.seen == []


def test_a_next_link_to_another_server_is_not_followed(make_host: Callable[..., Host]) -> None:
    with scripted() as elsewhere, scripted() as clinic:
        page = {"resourceType": "Bundle", "type": "searchset", "entry": [],
                "link": [{"relation": "next", "url": f"{elsewhere.url}/r4/Communication?page=2"}]}
        clinic.default = Reply(200, json.dumps(page).encode())
        host = make_host(scripted_records(clinic))
        with pytest.raises(ConfigError, match="another server"):
            filer(host).search({"status": "completed"})
        assert elsewhere.seen == []


def test_the_directory_never_follows_a_redirect(make_host: Callable[..., Host], tmp_path: Path) -> None:
    with scripted() as elsewhere, scripted() as clinic:
        clinic.default = Reply(302, b"", headers=(("Location", f"{elsewhere.url}/Patient/on-en"),))
        (tmp_path / "empty.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
        text = BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "empty.json"')
        host = make_host(config_text=text + f'\n[plugins.fhir-directory]\nbase_url = "{clinic.url}"\nretries = 0\n')
        with pytest.raises(PluginError, match=r"HTTP 302.*plugins\.fhir-directory\.base_url"):
            host.send(reminder(rid="dir-redirect"))
        assert elsewhere.seen == [] and sms_sink(host) == []


@pytest.mark.parametrize("answer", [
    {"resourceType": "Bundle", "entry": ["x"]},
    {"resourceType": "Bundle", "entry": [{"response": "201"}]},
    {"resourceType": "Bundle", "entry": {"a": 1}},
    {"resourceType": "Bundle", "entry": [{"response": {"status": ["201"]}}]},
    {"resourceType": "Bundle", "entry": [{"response": {"status": "201 Created", "location": 7}}]},
    ["not", "a", "bundle"],
], ids=["entry-str", "response-str", "entry-object", "status-list", "location-int", "list"])
def test_a_transaction_response_of_the_wrong_shape_is_a_failed_push_not_a_traceback(
        make_host: Callable[..., Host], tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: Any) -> None:
    with scripted(Reply(200, json.dumps(answer).encode())) as clinic:
        config = write_config(tmp_path, scripted_records(clinic))
        with Host.from_config(config) as host:
            host.send(reminder(rid="malformed"))
            report = filer(host).flush()
            assert (report.filed, report.rejected, report.pending) == (0, 0, 1)
            assert "could not be read" in (report.error or "")
        code, out = run(capsys, "fhir-records", "flush", "--config", str(config))
        assert code == 4 and "0 filed" in out and "1 waiting" in out and "could not be read" in out


@pytest.mark.parametrize("reply", [
    Reply(201, b"<html>Created</html>", headers=(("Content-Type", "text/html"),)),
    Reply(200, json.dumps({"resourceType": "Bundle", "type": "batch-response",
                           "entry": [{"response": {"status": "201 Created"}}]}).encode()),
], ids=["html", "entry-without-location"])
def test_a_create_answered_without_a_location_or_id_is_not_counted_as_filed(
        make_host: Callable[..., Host], reply: Reply) -> None:
    with scripted(reply) as clinic:
        host = make_host(scripted_records(clinic, bundle="batch", batch_size=1))
        host.send(reminder(rid="no-location"))
        report = filer(host).flush()
        assert (report.filed, report.pending) == (0, 1)
        assert "could not be read" in (report.error or "") or "no Location" in (report.error or "")
        assert filer(host).queue_status()["done"] == 0


@pytest.mark.parametrize(("reply", "why"), [
    (Reply(200, trickle=0.05), "no complete answer within 1 s"),
    (Reply(200, trickle=0.05, trickle_in="headers"), "no complete answer within 1 s"),
    (Reply(200, trickle=0.05, trickle_in="close"), "no complete answer within 1 s"),
    (Reply(200, b" " * (MAX_ANSWER + 1)), f"longer than {MAX_ANSWER} bytes"),
], ids=["slow-body", "slow-headers", "slow-body-until-close", "too-large"])
def test_an_answer_that_never_ends_or_is_too_large_is_a_failed_push_within_the_timeout(
        make_host: Callable[..., Host], reply: Reply, why: str) -> None:
    with scripted(reply) as clinic:
        host = make_host(scripted_records(clinic, timeout=1))
        host.send(reminder(rid="slow"))
        reports: list[Any] = []
        flushing = threading.Thread(target=lambda: reports.append(filer(host).flush()), daemon=True)
        flushing.start()
        flushing.join(30)  # far past the timeout; without the deadline it ran for the trickle's minute
        assert not flushing.is_alive()
        [report] = reports
        assert (report.filed, report.pending) == (0, 1) and why in (report.error or "")


# ---------------------------------------------------------------- configuration


def test_fhir_plugins_run_only_when_the_config_names_them(make_host: Callable[..., Host]) -> None:
    names = [p.name for p in make_host().plugins]
    assert "fhir-records" not in names and "fhir-directory" not in names


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('\n[plugins.fhir-records]\nbase_url = "http://fhir.clinic.example/r4"\n',
         "plugins.fhir-records.base_url: 'http://fhir.clinic.example/r4': plain http is allowed only for a "
         "server on this machine; use https"),
        ("\n[plugins.fhir-records]\nbatch_size = 8\n", "'base_url' is a required property"),
        ('\n[plugins.fhir-records]\nbase_url = "https://emrcomm:abc123@fhir.clinic.example/r4"\n',
         "plugins.fhir-records.base_url: the URL carries a user name or password before '@'"),
        ('\n[plugins.fhir-records]\nbase_url = "https://x.example"\ntoken = "abc123"\n',
         "plugins.fhir-records.token: secrets cannot be written in the config file"),
        ('\n[plugins.fhir-directory]\nbase_url = "https://x.example"\ntoken = {env = "EMRCOMM_NO_SUCH_VAR"}\n',
         "plugins.fhir-directory.token: environment variable EMRCOMM_NO_SUCH_VAR is not set"),
    ],
    ids=["http-elsewhere", "no-base-url", "credentials-in-url", "literal-token", "token-variable-unset"],
)
def test_fhir_settings_errors_name_the_setting(make_host: Callable[..., Host], table: str, expected: str) -> None:
    with pytest.raises((ConfigError, PluginError)) as err:
        make_host(table)
    assert expected in str(err.value)
    assert "abc123" not in str(err.value)


# ---------------------------------------------------------------- docs/records.md stays true


def test_every_outcome_in_docs_records_has_a_valid_sample() -> None:
    text = (REPO / "docs" / "records.md").read_text(encoding="utf-8")
    table = text.split("## What each state files", 1)[1].split("\n## ", 1)[0]
    linked = re.findall(r"\]\(#([a-z-]+)\)", table)
    sections = dict(re.findall(r"^### ([a-z-]+)\n.*?```json\n(.*?)```", text, re.S | re.M))
    assert linked and sorted(linked) == sorted(sections)
    for name, sample in sections.items():
        resource = json.loads(sample)
        assert resource["resourceType"] == "Communication", name
        assert schema_errors(resource) == [], name
        validate_resource(resource)


def test_a_merge_keeps_others_notes_and_stops_at_one_of_emrcomms_notes_removed() -> None:
    from emrcomm_fhirserver.merge import merge

    filed = {"status": "in-progress", "note": [{"text": "held until 08:00"}]}
    ours = {"status": "completed", "sent": "2026-11-24T13:00:00Z", "note": [{"text": "sms to ..."}]}
    theirs = {"id": "c1", "meta": {"versionId": "7", "tag": [{"code": "reviewed"}]}, "status": "in-progress",
              "note": [{"text": "held until 08:00"}, {"text": "called the patient"}], "encounter": {"reference": "E/1"}}
    result = merge(theirs, ours, filed)
    assert result.clashes == ()
    assert result.resource == {"id": "c1", "meta": {"tag": [{"code": "reviewed"}]}, "status": "completed",
                               "sent": "2026-11-24T13:00:00Z", "encounter": {"reference": "E/1"},
                               "note": [{"text": "sms to ..."}, {"text": "called the patient"}]}
    kept = {**ours, "note": [*ours["note"], {"text": "delivered"}]}
    removed = merge({**result.resource, "note": [{"text": "called the patient"}]}, kept, ours)
    assert removed.clashes == ("note",)
