"""An outbox row whose stored payload this release cannot read, claimed with good rows by a real
``emrcomm worker`` process: a corrupted one is kept as a dead letter (its record not-done), one
written by a newer release is given back for a worker of that release; the rows claimed with it
are delivered once, and the worker does not claim them (or it) again and again.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Clock
from emrcomm.audit import entries
from emrcomm.cli import main
from emrcomm.host import Host
from emrcomm.model import Category, Request, Sensitivity, Status
from emrcomm.outbox.worker import Worker, WorkerSettings
from emrcomm.storage.packed import unpack
from servers import wait_until
from support import communication
from test_worker import reminder, sink
from test_worker_hung import worker_result
from test_worker_sigkill import EMRCOMM, chart_states, start_worker

WORKER = '\n[delivery]\nmode = "queue"\nconcurrency = 2\nlease_seconds = 2\npoll_seconds = 0.2\nbackoff_base = 0.5\n'
GOOD = 5
WORDS = "Reminder: your appointment"  # what the corrupted row's payload starts with; never logged


def queue(host: Host, n: int) -> list[str]:
    outcomes = [host.send(reminder(f"u-{i}")) for i in range(n)]
    assert {o.status for o in outcomes} == {Status.QUEUED}
    return [o.record_ids[0] for o in outcomes]


def store_payload(host: Host, key: str, text: str) -> None:
    with host.storage.transaction():
        host.storage.db.execute("UPDATE outbox SET payload = ? WHERE key = ?", (text, key))


def test_a_corrupted_payload_is_a_dead_letter_and_the_rows_claimed_with_it_are_delivered_once(
    make_host: Callable[..., Host], tmp_path: Path
) -> None:
    host = make_host(WORKER)
    records = queue(host, GOOD + 1)
    bad = records[2]
    store_payload(host, bad, '{"v": 3, "html": "' + WORDS)  # cut off mid-string: not JSON
    config, log = tmp_path / "emrcomm.toml", tmp_path / "worker.log"
    proc = start_worker(config, log)  # runs until stopped, as in production
    try:
        wait_until(lambda: len(sink(host)) >= GOOD and host.storage.outbox.counts() == {"dead": 1}, 30,
                   "the good rows delivered and the bad one kept as a dead letter")
        time.sleep(1.0)  # five polls more: nothing is claimed again
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    text = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, text[-2000:]
    result = worker_result(log)["worker"]
    assert (result["sent"], result["dead"], result["errors"], result["taken_over"]) == (GOOD, 1, 0, 0), result
    assert sorted(m["id"] for m in sink(host)) == sorted(r for r in records if r != bad)  # each once
    assert chart_states(config, records) == {"accepted": GOOD, "undeliverable": 1}
    resource = communication(host, bad)
    assert resource is not None and resource["status"] == "not-done"
    assert "DELIVERY_FAILED" in json.dumps(resource["statusReason"])
    [dead] = host.storage.outbox.dead()
    assert dead.key == bad and dead.last_error == ("its outbox payload cannot be read by this release "
                                                   "(JSONDecodeError): not sent")
    assert "claim failed" not in text
    assert text.count(f"outbox {bad}: its row cannot be read by this release; kept as a dead letter") == 1
    assert WORDS not in text
    # Staff see it where dead letters are listed, with why.
    listed = subprocess.run([str(EMRCOMM), "outbox", "--config", str(config), "--json"], capture_output=True,
                            text=True, check=True)
    assert [d["record_id"] for d in json.loads(listed.stdout)["dead"]] == [bad]
    [audit] = [e for e in entries(host.storage) if e.get("record") == bad and e["kind"] == "delivery.dead"]
    assert audit["reasons"] == ["DELIVERY_FAILED"]


def test_a_payload_of_a_newer_release_is_given_back_unsent_for_a_worker_that_reads_it(
    make_host: Callable[..., Host], tmp_path: Path
) -> None:
    host = make_host(WORKER)
    records = queue(host, 3)
    newer = records[1]
    [row] = [r for r in host.storage.db.query("SELECT payload FROM outbox WHERE key = ?", (newer,))]
    readable = row["payload"]
    store_payload(host, newer, json.dumps({**json.loads(readable), "v": 99, "channel_hints": ["sms"]}))
    config, log = tmp_path / "emrcomm.toml", tmp_path / "worker.log"
    proc = start_worker(config, log, "--once")
    text = log.read_text(encoding="utf-8") if proc.wait(60) is not None else ""
    assert proc.returncode == 0, text[-2000:]
    result = worker_result(log)["worker"]
    assert (result["sent"], result["newer"], result["dead"], result["errors"]) == (2, 1, 0, 0), result
    assert newer not in {m["id"] for m in sink(host)}
    left = host.storage.outbox.get(newer)
    assert left is not None and (left.state, left.attempts) == ("retry", 0)  # not destroyed, its attempt given back
    assert left.last_error == ("written by a newer release (outbox payload version 99; this one reads 2, 3)")
    assert text.count(f"outbox {newer}: written by a newer release; given back for a worker that reads it") == 1
    assert chart_states(config, [newer]) == {"queued": 1}
    # A worker of the release that wrote it (here: the row as this release reads it) delivers it.
    store_payload(host, newer, readable)
    time.sleep(0.6)  # backoff_base: it is due again
    again = start_worker(config, log, "--once")
    assert again.wait(60) == 0
    assert worker_result(log)["worker"]["sent"] == 1
    assert sorted(m["id"] for m in sink(host)) == sorted(records)


def test_a_row_whose_expiry_cannot_be_read_is_a_dead_letter_and_the_others_are_sent(
    make_host: Callable[..., Host]
) -> None:
    host = make_host(WORKER)
    records = queue(host, 3)
    bad = records[0]
    with host.storage.transaction():
        host.storage.db.execute("UPDATE outbox SET expires = 'next Tuesday' WHERE key = ?", (bad,))
    stats = Worker(host, WorkerSettings.from_config(host.config.raw["delivery"])).run(once=True)
    assert (stats.sent, stats.dead, stats.errors) == (2, 1, 0)
    assert sorted(m["id"] for m in sink(host)) == sorted(records[1:])
    [dead] = host.storage.outbox.dead()
    assert dead.key == bad and dead.last_error == "its outbox row cannot be read by this release (ValueError): not sent"


def write_as_newer(host: Host, key: str) -> None:
    """The row as a newer release would write it: a payload version above what this one reads."""
    [row] = host.storage.db.query("SELECT payload FROM outbox WHERE key = ?", (key,))
    store_payload(host, key, json.dumps({**json.loads(row["payload"]), "v": 99}))


def test_a_row_of_a_newer_release_no_worker_of_which_came_expires_when_its_row_expires(
    make_host: Callable[..., Host], clock: Clock
) -> None:
    """A fleet rolled back for good: the row is given back while it may still go, then ends as an
    expired message does (not-done, MESSAGE_EXPIRED, audit ``expired``), not given back for ever."""
    host = make_host(WORKER)
    expires = clock.now + dt.timedelta(hours=1)
    [record] = host.send(reminder("u-1", expires=expires)).record_ids
    write_as_newer(host, record)
    settings = WorkerSettings.from_config(host.config.raw["delivery"])
    stats = Worker(host, settings).run(once=True)
    assert (stats.newer, stats.expired) == (1, 0)
    row = host.storage.outbox.get(record)
    assert row is not None and row.state == "retry" and row.expires == expires
    clock.now = expires - dt.timedelta(seconds=1)  # due again, not yet expired: given back again
    assert Worker(host, settings).run(once=True).newer == 1
    clock.now = expires + dt.timedelta(seconds=1)
    stats = Worker(host, settings).run(once=True)
    assert (stats.newer, stats.expired, stats.dead, stats.errors) == (0, 1, 0, 0)
    assert host.storage.outbox.counts() == {} and sink(host) == []
    resource = communication(host, record)
    assert resource is not None and resource["status"] == "not-done"
    assert "MESSAGE_EXPIRED" in json.dumps(resource["statusReason"])
    [audit] = [e for e in entries(host.storage) if e.get("record") == record and e["kind"] == "expired"]
    assert audit["reasons"] == ["MESSAGE_EXPIRED"]
    # As any expired message: nothing for staff to follow up (the moment has passed).
    assert host.storage.inbox.items() == []


def test_the_outbox_listing_says_a_row_of_a_newer_release_waits_for_a_worker_of_that_release(
    make_host: Callable[..., Host], clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    host = make_host(WORKER)
    expires = clock.now + dt.timedelta(hours=1)
    newer, other = (host.send(reminder(f"u-{i}", expires=expires)).record_ids[0] for i in range(2))
    write_as_newer(host, newer)
    settings = WorkerSettings.from_config(host.config.raw["delivery"])
    assert Worker(host, settings).run(once=True).newer == 1
    config = str(host.config.base_dir / "emrcomm.toml")
    assert main(["outbox", "--config", config, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["counts"] == {"retry": 1} and listed["dead"] == [] and listed["overdue"] == []
    [waiting] = listed["newer"]
    assert (waiting["record_id"], waiting["channel"]) == (newer, "sms")
    assert waiting["expires"] is not None and dt.datetime.fromisoformat(waiting["expires"]) == expires
    assert other not in json.dumps(listed)
    assert main(["outbox", "--config", config]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if newer in x]
    assert line.split()[0] == "waiting"
    assert "written by a newer release: waits for a worker of that release" in line
    assert "ends expired" in line  # what happens if none comes


def test_a_portal_notice_whose_row_cannot_be_read_leaves_the_patient_not_told(make_host: Callable[..., Host]) -> None:
    """The notice dead-lettered unread: the portal message it announced is not filed as if the
    patient was told (PATIENT_NOT_TOLD, a task for staff), as when a notice is refused."""
    host = make_host(WORKER)
    note = Request("Patient/on-en", Category.CLINICAL, id="note-1", sensitivity=Sensitivity.RESTRICTED,
                   text="Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily.")
    outcome = host.send(note)
    assert outcome.channels == ("portal", "sms")
    message, notice = outcome.record_ids
    store_payload(host, notice, '{"v": 3, "link_from": ["portal", "')  # cut off: not JSON
    stats = Worker(host, WorkerSettings.from_config(host.config.raw["delivery"])).run(once=True)
    assert (stats.sent, stats.dead, stats.errors) == (0, 1, 0) and sink(host) == []
    told = communication(host, message)
    assert told is not None and told["status"] == "in-progress"
    assert "PATIENT_NOT_TOLD" in json.dumps(told["statusReason"])
    items = {item["kind"]: item for item in host.storage.inbox.items()}
    assert items["unannounced"]["record_id"] == message
    assert host.send(note).status is Status.STORED  # asked again: kept in the portal, not told


def test_a_row_whose_record_cannot_be_read_is_a_dead_letter_not_left_leased(
    make_host: Callable[..., Host], tmp_path: Path
) -> None:
    """Its record's facts corrupted: nothing says what to send. A real worker keeps the row as a
    dead letter, as one whose record is missing, instead of leaving it leased (taken over and
    raising again every lease, for good); the rows claimed with it are delivered once."""
    host = make_host(WORKER)
    records = queue(host, GOOD + 1)
    bad = records[3]
    cut = b'{"role": "primary", "text": "'  # cut off mid-string: not JSON
    with host.storage.transaction():
        host.storage.db.execute("UPDATE records SET facts = ? WHERE id = ?", (cut, bad))
    config, log = tmp_path / "emrcomm.toml", tmp_path / "worker.log"
    proc = start_worker(config, log)  # runs until stopped, as in production
    try:
        wait_until(lambda: len(sink(host)) >= GOOD and host.storage.outbox.counts() == {"dead": 1}, 30,
                   "the good rows delivered and the bad one kept as a dead letter")
        time.sleep(2.5)  # past a lease (2 s): nothing is taken over
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    text = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, text[-2000:]
    result = worker_result(log)["worker"]
    assert (result["sent"], result["dead"], result["errors"], result["taken_over"]) == (GOOD, 1, 0, 0), result
    assert sorted(m["id"] for m in sink(host)) == sorted(r for r in records if r != bad)  # each once
    [dead] = host.storage.outbox.dead()
    assert dead.key == bad and dead.lease_owner is None
    assert dead.last_error == "its record cannot be read by this release (JSONDecodeError): not sent"
    assert text.count(f"outbox {bad}: its record cannot be read by this release; kept as a dead letter") == 1
    [audit] = [e for e in entries(host.storage) if e.get("record") == bad and e["kind"] == "delivery.dead"]
    assert audit["reasons"] == ["DELIVERY_FAILED"]


def corrupt_record(host: Host, key: str) -> None:
    """The record's facts cut off mid-string: not JSON."""
    with host.storage.transaction():
        host.storage.db.execute("UPDATE records SET facts = ? WHERE id = ?", (b'{"role": "primary", "text": "', key))


def test_requeue_puts_back_every_dead_letter_it_can_and_names_the_one_whose_record_cannot_be_read(
    make_host: Callable[..., Host], capsys: pytest.CaptureFixture[str]
) -> None:
    """One dead letter whose record cannot be read rolled back the requeue of them all (exit 1,
    a traceback): it stays dead, named with why, and the others go back."""
    host = make_host(WORKER)
    good, bad = queue(host, 2)
    store_payload(host, good, '{"v": 3, "html": "')  # an ordinary dead letter once the worker has tried it
    corrupt_record(host, bad)
    assert Worker(host, WorkerSettings.from_config(host.config.raw["delivery"])).run(once=True).dead == 2
    config = str(host.config.base_dir / "emrcomm.toml")
    assert main(["outbox", "requeue", "--all-dead", "--config", config, "--json"]) == 4
    out, err = capsys.readouterr()
    assert json.loads(out) == {"requeued": 1, "unreadable": [
        {"record_id": bad, "reason": "its record cannot be read by this release (JSONDecodeError)"}]}
    assert "Traceback" not in err
    assert {k: host.storage.outbox.get(k).state for k in (good, bad)} == {good: "pending", bad: "dead"}  # type: ignore[union-attr]
    assert host.storage.records.events(good)[-1].kind.value == "requeued"
    # By its id, in words: the same, and nothing requeued.
    assert main(["outbox", "requeue", bad, "--config", config]) == 4
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "requeued 0 dead letter(s); 1 kept dead, their record unreadable:"
    assert out.splitlines()[1].split() == ["dead", bad, "its", "record", "cannot", "be", "read", "by", "this",
                                           "release", "(JSONDecodeError):", "not", "requeued"]
    assert "Traceback" not in err and host.storage.outbox.get(bad).state == "dead"  # type: ignore[union-attr]


def facts_of(host: Host, key: str) -> dict[str, Any]:
    [row] = host.storage.db.query("SELECT facts FROM records WHERE id = ?", (key,))
    return dict(json.loads(unpack(row["facts"])))


def store_facts(host: Host, key: str, facts: bytes) -> None:
    with host.storage.transaction():
        host.storage.db.execute("UPDATE records SET facts = ? WHERE id = ?", (facts, key))


def packed_with_dictionary(dictionary: int, text: bytes, zdict: bytes = b"") -> bytes:
    """``text`` packed as packed.pack does, with a dictionary id of our choosing."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -10, 4, zlib.Z_DEFAULT_STRATEGY, *([zdict] if zdict else []))
    return bytes((dictionary,)) + packer.compress(text) + packer.flush()


def newer_packing(host: Host, key: str) -> str:
    # A dictionary added by a newer release (dictionaries are only added, never changed).
    store_facts(host, key, packed_with_dictionary(3, json.dumps(facts_of(host, key)).encode(), b'"findings":[["'))
    return "written by a newer release (its record is packed with dictionary 3; this one knows 1, 2)"


def newer_category(host: Host, key: str) -> str:
    facts = facts_of(host, key)
    facts["request"] = {**facts.get("request", {}), "category": "vaccine-recall"}
    store_facts(host, key, json.dumps(facts).encode())
    return "written by a newer release (its record holds a category this one does not know)"


def newer_finding(host: Host, key: str) -> str:
    facts = facts_of(host, key)
    facts["findings"] = [["LINK_DOMAIN", "warning", "A link.", "Check it.", "policy", "sms", None, "a field added"]]
    store_facts(host, key, json.dumps(facts).encode())
    return "written by a newer release (its record holds a finding with more fields this one does not know)"


def newer_severity(host: Host, key: str) -> str:
    facts = facts_of(host, key)
    facts["findings"] = [["LINK_DOMAIN", "advisory", "A link.", "Check it.", "policy", "sms", None]]
    store_facts(host, key, json.dumps(facts).encode())
    return "written by a newer release (its record holds a severity this one does not know)"


def newer_version(host: Host, key: str) -> str:
    facts = facts_of(host, key)
    facts.update(v=3, findings=[{"code": "LINK_DOMAIN", "severity": "warning"}])  # a shape this release cannot read
    store_facts(host, key, json.dumps(facts).encode())
    return "written by a newer release (its record's facts are version 3; this one reads up to 2)"


@pytest.mark.parametrize("write_as_newer_record",
                         [newer_packing, newer_category, newer_finding, newer_severity, newer_version])
def test_a_record_of_a_newer_release_is_given_back_unsent_and_listed_as_waiting_not_buried(
    make_host: Callable[..., Host], clock: Clock, capsys: pytest.CaptureFixture[str],
    write_as_newer_record: Callable[[Host, str], str]
) -> None:
    """As a row whose payload a newer release wrote: a fleet part-way through an upgrade. It was
    kept as a dead letter (DELIVERY_FAILED, the legs after it cancelled) as if corrupted."""
    host = make_host(WORKER)
    newer, other = queue(host, 2)
    said = write_as_newer_record(host, newer)
    settings = WorkerSettings.from_config(host.config.raw["delivery"])
    stats = Worker(host, settings).run(once=True)
    assert (stats.sent, stats.newer, stats.dead, stats.errors) == (1, 1, 0, 0)
    assert [m["id"] for m in sink(host)] == [other]
    left = host.storage.outbox.get(newer)
    assert left is not None and (left.state, left.attempts, left.last_error) == ("retry", 0, said)
    assert left.not_before == clock.now + dt.timedelta(seconds=0.5)  # backoff_base
    config = str(host.config.base_dir / "emrcomm.toml")
    assert main(["outbox", "--config", config, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["dead"] == [] and [w["record_id"] for w in listed["newer"]] == [newer]
    assert main(["outbox", "--config", config]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if newer in x]
    assert line.split()[0] == "waiting" and "written by a newer release: waits for a worker of that release" in line
    # A worker of the release that wrote it (here: the facts as this release reads them) delivers it.
    store_facts(host, newer, json.dumps({"v": 2}).encode())
    clock.now += dt.timedelta(seconds=1)
    assert Worker(host, settings).run(once=True).sent == 1
    assert sorted(m["id"] for m in sink(host)) == sorted([newer, other])


def test_a_record_of_a_newer_release_no_worker_of_which_came_ends_expired_with_its_request(
    make_host: Callable[..., Host], clock: Clock
) -> None:
    """A fleet rolled back: given back until the row expires, then the row leaves as an expired
    one (audit expired), not given back for ever; the portal message it announces, whose record a
    newer release wrote too, is left as it is."""
    host = make_host(WORKER)
    expires = clock.now + dt.timedelta(hours=1)
    note = Request("Patient/on-en", Category.CLINICAL, id="note-1", sensitivity=Sensitivity.RESTRICTED,
                   text="Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily.", expires=expires)
    message, notice = host.send(note).record_ids
    for key in (message, notice):
        newer_packing(host, key)
    settings = WorkerSettings.from_config(host.config.raw["delivery"])
    assert (Worker(host, settings).run(once=True).newer, host.storage.outbox.counts()) == (1, {"retry": 1})
    clock.now = expires + dt.timedelta(seconds=1)
    stats = Worker(host, settings).run(once=True)
    assert (stats.newer, stats.expired, stats.dead, stats.errors) == (0, 1, 0, 0)
    assert host.storage.outbox.counts() == {} and sink(host) == []
    expired = [e for e in entries(host.storage) if e["kind"] == "expired"]
    assert [(e["record"], e["reasons"]) for e in expired] == [(notice, ["MESSAGE_EXPIRED"])]


@pytest.mark.parametrize("facts", [
    bytes((2,)) + b"\xff" * 12,  # a dictionary this release knows, the deflate data damaged
    packed_with_dictionary(0, b'{"role": "primary"}'),  # below the known ones: never a newer release's
    b'[{"role": "primary"}]',  # text, damaged: a printable first byte is never a dictionary's id
    json.dumps({"request": {"category": 7}}).encode(),  # a value that is not even a word
], ids=["known-dictionary", "dictionary-0", "text", "category-number"])
def test_a_record_damaged_is_a_dead_letter_not_taken_for_a_newer_release(
    make_host: Callable[..., Host], facts: bytes
) -> None:
    host = make_host(WORKER)
    [bad] = queue(host, 1)
    store_facts(host, bad, facts)
    stats = Worker(host, WorkerSettings.from_config(host.config.raw["delivery"])).run(once=True)
    assert (stats.dead, stats.newer, stats.errors) == (1, 0, 0)
    [dead] = host.storage.outbox.dead()
    assert dead.key == bad and dead.last_error.startswith("its record cannot be read by this release (")  # type: ignore[union-attr]
