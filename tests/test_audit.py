"""The audit log: every decision is appended, signed and chained; it holds ids and codes, never
words or addresses; and `emrcomm audit verify` names the entry that was edited, deleted,
inserted or moved, and the entries cut off the end."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emrcomm import audit
from emrcomm.cli import main
from emrcomm.errors import ConfigError
from emrcomm.fhir import validate_resource
from emrcomm.host import Host
from emrcomm.model import Category, DeliveryUpdate, Request, Sensitivity
from emrcomm.storage.packed import unpack
from fhir_schema import schema_errors
from support import open_store, raw_store, store_bytes, write_config
from test_pipeline import TORONTO, reminder, sms_sink

NOTE = "Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily."


def entries(host: Host) -> list[dict[str, Any]]:
    return list(audit.entries(host.storage))


def kinds(host: Host, request: str | None = None) -> list[str]:
    return [e["kind"] for e in entries(host) if request is None or e.get("request") == request]


# ---------------------------------------------------------------- what is logged


def test_a_sent_request_logs_its_decision_then_the_send(host: Host) -> None:
    outcome = host.send(reminder(rid="a-1"))
    chosen, sent = entries(host)[-2:]
    assert [chosen["kind"], sent["kind"]] == ["channel.chosen", "sent"]
    assert (chosen["request"], chosen["patient"], chosen["category"]) == ("a-1", "Patient/on-en", "appointment-reminder")
    assert (chosen["channels"], chosen["records"]) == (["sms"], list(outcome.record_ids))
    # The send names its record; the decision's entry, chained before it, names the request and patient.
    assert (sent["channel"], sent["record"]) == ("sms", outcome.record_ids[0])
    assert "patient" not in sent and "request" not in sent and sent["prev"] == chosen["hash"]


def test_the_rule_codes_found_travel_with_the_decision(host: Host) -> None:
    outcome = host.send(reminder("Patient/stopped", rid="a-2"))  # SMS revoked: email instead
    [chosen] = [e for e in entries(host) if e["kind"] == "channel.chosen"]
    assert outcome.channels == ("email",) and "CONSENT_REVOKED" in chosen["codes"]


def test_a_blocked_request_logs_its_rule_codes(host: Host) -> None:
    outcome = host.send(reminder("Patient/none", rid="b-1"))
    assert kinds(host, "b-1") == ["blocked"]
    blocked = entries(host)[-1]
    assert blocked["reasons"] == ["CONSENT_MISSING"] and blocked["record"] == outcome.record_ids[0]
    assert "CONSENT_MISSING" in blocked["codes"]


def test_held_and_duplicate_requests_are_logged(host: Host, clock: Any) -> None:
    clock.now = dt.datetime(2026, 11, 23, 22, 0, tzinfo=TORONTO)
    host.send(reminder(rid="h-1"))
    host.send(reminder(rid="h-1"))
    assert kinds(host, "h-1") == ["held", "request.duplicate"]
    held = next(e for e in entries(host) if e["kind"] == "held")
    assert held["until"].startswith("2026-11-24T")


def test_reads_replies_and_opt_outs_are_logged_without_addresses(host: Host, clock: Any) -> None:
    outcome = host.send(reminder(rid="u-1"))
    host.delivery_update(DeliveryUpdate(kind="read", at=clock.now, record_id=outcome.record_ids[0]))
    host.delivery_update(DeliveryUpdate(kind="optout", at=clock.now, channel="sms", address="+16135550123",
                                        text="STOP", detail="Patient/on-en"))
    read, optout = entries(host)[-2:]
    assert (read["kind"], read["record"]) == ("read", outcome.record_ids[0])
    assert (optout["kind"], optout["channel"], optout["patient"]) == ("optout", "sms", "Patient/on-en")


def test_the_log_holds_ids_and_codes_never_words_or_addresses(host: Host, clock: Any) -> None:
    host.send(reminder(rid="p-1"))
    host.send(reminder("Patient/stopped", rid="p-2"))  # by email
    host.send(Request("Patient/on-en", Category.CLINICAL, id="p-3", text=NOTE, sensitivity=Sensitivity.RESTRICTED))
    host.delivery_update(DeliveryUpdate(kind="optout", at=clock.now, channel="sms", address="+16135550123",
                                        text="STOP please", detail="Patient/on-en"))
    [sms] = [line for line in sms_sink(host) if line["to"] == "+16135550123"][:1]
    dumped = json.dumps(entries(host))
    for secret in (sms["text"], "+16135550123", "6135550123", "sam.lee@example.org", "metformin", "HbA1c",
                   "Alex", "Martin", "STOP please"):
        assert secret not in dumped


def test_a_patient_named_by_a_health_number_cannot_be_found_again_by_hashing_guesses(host: Host) -> None:
    """``Patient?identifier=system|value`` is kept as a digest keyed with a secret of the signing
    key: a bare SHA-256 of it is found again by hashing all 10^10 health numbers, in minutes."""
    ref = "Patient?identifier=https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn|9876543210"
    host.send(reminder(ref, rid="hcn-1"))
    host.send(reminder(ref, rid="hcn-2"))
    first, second = (e["patient"] for e in entries(host) if e.get("request") in ("hcn-1", "hcn-2"))
    assert first == second and first.startswith("Patient#")  # the same patient, entry after entry
    guessed = hashlib.sha256(ref.encode()).hexdigest()[:16]
    assert guessed not in first and "9876543210" not in json.dumps(entries(host))


def test_an_entry_cannot_carry_text(host: Host) -> None:
    with pytest.raises(audit.AuditError, match="'text' is not allowed"):
        host.audit.record("sent", request="x", text="Your results are ready")
    with pytest.raises(audit.AuditError, match="unknown audit kind 'chat'"):
        host.audit.record("chat", request="x")


def test_a_send_that_rolls_back_leaves_no_entry_that_says_it_went(
        host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    host.send(reminder(rid="ok-1"))
    before = entries(host)

    def disk_full(*_: Any, **__: Any) -> bool:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(host.storage.outbox, "put", disk_full)
    with pytest.raises(sqlite3.OperationalError):
        host.send(reminder(rid="rolled-back"))
    assert entries(host) == before  # the request's entries went with its records: nowhere
    assert audit.verify(host.storage, [host.audit.key.public]).ok


# ---------------------------------------------------------------- the key


def test_the_signing_key_is_created_on_first_use_readable_by_its_owner_only(host: Host) -> None:
    path = host.audit.key.path
    assert path == host.config.store_path.parent / "audit-signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pem not in store_bytes(host.config.store_path)
    assert str(path) not in Path(host.config.source).read_text()


def test_the_key_file_setting_is_used(make_host: Callable[..., Host], tmp_path: Path) -> None:
    host = make_host('\n[audit]\nkey_file = "keys/audit.pem"\n')
    assert host.audit.key.path == tmp_path / "keys" / "audit.pem" and host.audit.key.path.exists()


def test_a_key_file_others_can_read_is_refused(make_host: Callable[..., Host], tmp_path: Path) -> None:
    make_host().close()
    key = tmp_path / "audit-signing.key"
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=rf"readable by other users \(mode 0644\); run: chmod 600 {key}"):
        make_host()


def test_a_lost_key_stops_start_up_instead_of_starting_a_new_one(
        make_host: Callable[..., Host], tmp_path: Path) -> None:
    first = make_host()
    first.send(reminder(rid="k-1"))
    first.close()
    (tmp_path / "audit-signing.key").unlink()
    with pytest.raises(ConfigError, match=r"audit.key_file: .*audit-signing.key is missing, but the audit log"):
        make_host()


def test_a_rotation_to_a_key_made_first_signs_on_and_the_old_entries_verify_with_the_old_public_key(
        make_host: Callable[..., Host], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives import serialization

    first = make_host()
    first.send(reminder(rid="before"))
    old = tmp_path / "old.pem"
    old.write_text(audit.public_pem(first.audit.key.public))
    first.close()
    rotated = "\n[audit]\nkey_file = \"audit-2027.key\"\n"
    with pytest.raises(ConfigError, match=r"to rotate to a new key, create its file first: .*openssl genpkey"):
        make_host(rotated)  # the new file is not there yet: a lost key, as far as start-up can tell
    fd = os.open(tmp_path / "audit-2027.key", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as fh:  # what openssl genpkey -algorithm ed25519 writes
        fh.write(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    second = make_host(rotated)
    second.send(reminder(rid="after"))
    second.close()
    config = str(tmp_path / "emrcomm.toml")
    code, out, _ = run(capsys, "audit", "verify", "--config", config)
    assert code == 4 and "signed with key" in out and "not a trusted key" in out
    code, out, _ = run(capsys, "audit", "verify", "--config", config, "--public-key", str(old))
    assert code == 0 and "check out" in out, out


# ---------------------------------------------------------------- tampering, found and named


@pytest.fixture
def logged(make_host: Callable[..., Host], clock: Any) -> tuple[Path, Any]:
    """A closed host's database with 12 entries, and its public key: 3 sent requests (a signed
    decision and a signed send each), 2 entries written in one transaction (7 is vouched for by
    8, which is signed), 2 sent requests."""
    host = make_host()
    for i in range(3):
        host.send(reminder(rid=f"t-{i}"))
    with host.storage.transaction():
        host.audit.append([("requeued", {"records": ["r-1"]}), ("requeued", {"records": ["r-2"]})])
    for i in range(3, 5):
        host.send(reminder(rid=f"t-{i}"))
    public = host.audit.key.public
    path = host.config.store_path
    host.close()
    return path, public


def rows(path: Path) -> list[tuple[int, bytes, bytes | None]]:
    with raw_store(path) as db:
        return db.execute("SELECT pos, entry, sig FROM audit_log ORDER BY pos").fetchall()


def rewrite(path: Path, new_rows: list[tuple[int, bytes, bytes | None]]) -> None:
    """What someone with write access to the file can do: put any rows back, in any order
    (``(seq, entry, sig)`` rows, as :func:`kept` gives them; the number is in the entry)."""
    with raw_store(path) as db:
        db.execute("DELETE FROM audit_log")
        db.executemany("INSERT INTO audit_log (pos, entry, sig) VALUES (?, ?, ?)",
                       [(i, entry, sig) for i, (_, entry, sig) in enumerate(new_rows, 1)])


def kept(path: Path) -> list[tuple[int, bytes, bytes | None]]:
    """The stored rows as (the entry's number, the entry, its signature)."""
    return [(json.loads(text(entry))["seq"], entry, sig) for _, entry, sig in rows(path)]


def text(entry: bytes) -> bytes:
    """An entry's canonical JSON, as stored (packed) or as someone wrote it in (plain)."""
    return unpack(entry)


def hash_of(entry: bytes) -> str:
    return hashlib.sha256(text(entry)).hexdigest()


def verify(path: Path, public: Any) -> audit.Report:
    store = open_store(path)
    try:
        return audit.verify(store, [public])
    finally:
        store.close()


def edit_text(entry: bytes) -> bytes:
    data = json.loads(text(entry))
    data["channel"] = "email"  # "it went by email", says the edited log
    return audit.canonical(data)


def tamper_edit(path: Path, seq: int = 5) -> None:
    """A signed entry edited (its hash is not stored: it is what the signature signs)."""
    r = kept(path)
    r[seq - 1] = (r[seq - 1][0], edit_text(r[seq - 1][1]), r[seq - 1][2])
    rewrite(path, r)


def tamper_delete(path: Path) -> None:
    rewrite(path, [r for r in kept(path) if r[0] != 6])


def tamper_insert_forged(path: Path) -> None:
    r = kept(path)
    prev = hash_of(r[5][1])
    forged = {"seq": 7, "at": "2026-11-23T15:00:00.000000+00:00", "kind": "blocked", "request": "t-9",
              "prev": prev, "key": json.loads(text(r[0][1]))["key"]}
    made_up = audit.canonical(forged)
    other = Ed25519PrivateKey.generate()  # not the log's key
    r.insert(6, (7, made_up, other.sign(hashlib.sha256(made_up).digest())))
    rewrite(path, r)


def tamper_insert_copy(path: Path) -> None:
    r = kept(path)
    r.insert(8, r[2])
    rewrite(path, r)


def tamper_reorder(path: Path) -> None:
    r = kept(path)
    r[4], r[5] = r[5], r[4]
    rewrite(path, r)


def tamper_truncate(path: Path) -> None:
    rewrite(path, kept(path)[:-3])


def tamper_edit_unsigned(path: Path) -> None:
    """Entry 7 (unsigned: entry 8, signed, vouches for it) edited."""
    r = kept(path)
    assert not r[6][2] and r[7][2]
    r[6] = (r[6][0], edit_text(r[6][1]), None)
    rewrite(path, r)


def tamper_append_unsigned(path: Path) -> None:
    """Someone without the key adds an entry at the end, chained correctly but unsigned."""
    r = kept(path)
    added = {"seq": 13, "at": "2026-11-23T15:00:00.000000+00:00", "kind": "blocked", "request": "t-9",
             "prev": hash_of(r[-1][1]), "key": json.loads(text(r[0][1]))["key"]}
    rewrite(path, [*r, (13, audit.canonical(added), None)])


TAMPERING = {
    "edit-unsigned": (tamper_edit_unsigned, "inserted", 8, "entry 8 does not follow entry 7 in the chain"),
    "append-unsigned": (tamper_append_unsigned, "forged", 13,
                        "entry 13: not signed, and no signed entry after it vouches for it"),
    # name: (what is done, the problem's kind, the entry it names, words of the message)
    "edit": (tamper_edit, "forged", 5, "entry 5: the signature does not match its content (edited"),
    "delete": (tamper_delete, "deleted", 6, "entry 6 is missing: deleted (entry 7 follows entry 5)"),
    "insert-forged": (tamper_insert_forged, "forged", 7, "entry 7: the signature does not match its content"),
    "insert-copy": (tamper_insert_copy, "inserted", 3, "entry 3 appears twice (positions 3 and 9)"),
    "reorder": (tamper_reorder, "reordered", 6, "entry 6 (position 5) comes before entry 5: the log was reordered"),
    "truncate": (tamper_truncate, "truncated", 10,
                 "the log ends at entry 9 but its signed head says 12: entries 10-12 were cut off the end"),
}


def test_an_untouched_log_verifies(logged: tuple[Path, Any]) -> None:
    path, public = logged
    report = verify(path, public)
    assert report.ok and report.entries == 12 and report.head_seq == 12


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_tampering_is_found_and_the_entry_named(logged: tuple[Path, Any], name: str) -> None:
    path, public = logged
    tamper, what, seq, words = TAMPERING[name]
    tamper(path)
    report = verify(path, public)
    assert not report.ok
    first = report.problems[0]
    assert (first.what, first.seq) == (what, seq)
    assert words in first.message


def test_a_missing_head_is_found(logged: tuple[Path, Any]) -> None:
    path, public = logged
    with raw_store(path) as db:
        db.execute("DELETE FROM audit_head")
    [problem] = verify(path, public).problems
    assert problem.what == "head" and "the signed head is missing" in problem.message


def test_entries_signed_by_an_unknown_key_are_named(logged: tuple[Path, Any]) -> None:
    path, _public = logged
    report = verify(path, Ed25519PrivateKey.generate().public_key())
    assert {p.what for p in report.problems} == {"key", "head"}
    assert "entry 1: signed with key" in report.problems[0].message


def test_a_truncation_stays_visible_after_the_host_appends_again(
        logged: tuple[Path, Any], make_host: Callable[..., Host]) -> None:
    path, public = logged
    tamper_truncate(path)
    host = make_host()
    host.send(reminder(rid="after"))
    assert host.storage.audit.head() is not None
    [anomaly] = [e for e in entries(host) if e["kind"] == "audit.anomaly"]
    assert anomaly["problem"] == "the log ended at entry 9 but its signed head named entry 12"
    assert anomaly["seq"] == 13  # numbering resumes after the head: the gap stays a gap
    report = audit.verify(host.storage, [public])
    assert sorted((p.what, p.seq) for p in report.problems) == [("anomaly", 13), ("deleted", 10)]
    assert any("entries 10-12 are missing: deleted (entry 13 follows entry 9)" in p.message
               for p in report.problems)


def test_a_head_deleted_under_a_running_host_stays_visible_though_its_anomaly_shares_a_transaction(
        make_host: Callable[..., Host]) -> None:
    """A running host finds the head missing as it appends a request's entries: the anomaly is the
    first entry of that transaction, unsigned and vouched for by the chain, and verify names it
    all the same (the head it seals afterwards checks out)."""
    host = make_host("\n[audit]\nseal_seconds = 0\n")
    host.send(reminder(rid="h-1"))
    with raw_store(host.config.store_path) as db:
        db.execute("DELETE FROM audit_head")
    host.send(reminder(rid="h-2"))
    [anomaly] = [e for e in entries(host) if e["kind"] == "audit.anomaly"]
    assert (anomaly["problem"], anomaly["sig"]) == ("the signed head was missing", "")
    [problem] = audit.verify(host.storage, [host.audit.key.public]).problems
    assert (problem.what, problem.seq) == ("anomaly", anomaly["seq"])
    assert problem.message.endswith("the log found, when it was next written, that the signed head was missing")


def test_a_log_removed_whole_is_found_and_stays_visible_after_the_host_starts_again(
        logged: tuple[Path, Any], make_host: Callable[..., Host]) -> None:
    path, public = logged
    with raw_store(path) as db:  # every entry and the head: what is left looks like a new log
        db.execute("DELETE FROM audit_log")
        db.execute("DELETE FROM audit_head")
    [problem] = verify(path, public).problems
    assert problem.what == "truncated" and "the whole log was removed" in problem.message
    host = make_host()
    host.send(reminder(rid="after"))
    first = entries(host)[0]
    assert (first["seq"], first["kind"]) == (1, "audit.anomaly") and "the whole log was removed" in first["problem"]
    anomaly, unlogged = audit.verify(host.storage, [public]).problems
    assert anomaly.what == "anomaly" and unlogged.what == "truncated"  # the 5 requests before it have no entry
    assert unlogged.message.startswith("5 request(s) in the store have no entry in the log")
    host.close()


def test_an_end_cut_back_to_a_head_signed_earlier_is_found_by_the_requests_it_leaves_behind(
        make_host: Callable[..., Host]) -> None:
    host = make_host()
    for i in range(3):
        host.send(reminder(rid=f"e-{i}"))
    public, path = host.audit.key.public, host.config.store_path
    host.close()
    with raw_store(path) as db:  # an insider keeps the head as it is now (or a copy of the file)
        kept_head = db.execute("SELECT seq, hash, sig FROM audit_head").fetchone()
    host = make_host()
    host.send(reminder(rid="e-3"))
    host.close()
    with raw_store(path) as db:  # later: the entries since cut off, the old head put back
        db.execute("DELETE FROM audit_log WHERE pos > ?", (kept_head[0],))
        db.execute("UPDATE audit_head SET seq = ?, hash = ?, sig = ?", kept_head)
    [problem] = verify(path, public).problems
    assert problem.what == "truncated"
    assert "1 request(s) in the store have no entry in the log (first: 'e-3')" in problem.message


def test_an_end_cut_back_to_a_head_signed_earlier_under_a_running_host_is_found_at_its_next_append(
        make_host: Callable[..., Host], clock: Any) -> None:
    """Entries that decided no request (a delivery report, a staff member's view of a chart) cut
    back to a head kept from earlier leave nothing in the store without an entry; the host that
    wrote them still knows how far the log had come."""
    host = make_host("\n[audit]\nseal_seconds = 0\n")
    outcome = host.send(reminder(rid="cut-1"))
    path, public = host.config.store_path, host.audit.key.public
    with raw_store(path) as db:
        kept_head = db.execute("SELECT id, seq, hash, sig FROM audit_head").fetchall()
        kept_end = db.execute("SELECT MAX(pos) FROM audit_log").fetchall()[0][0]
    host.delivery_update(DeliveryUpdate(kind="read", at=clock.now, record_id=outcome.record_ids[0]))
    host.audit.record("staff.viewed", staff="jroy", patient="Patient/on-en")
    with raw_store(path) as db:  # the two entries since, and the head back as it was
        db.execute("DELETE FROM audit_log WHERE pos > ?", (kept_end,))
        db.execute("DELETE FROM audit_head")
        db.executemany("INSERT INTO audit_head (id, seq, hash, sig) VALUES (?, ?, ?, ?)", kept_head)
    assert audit.verify(host.storage, [public]).ok  # alone, the log cannot tell
    host.send(reminder(rid="cut-2"))
    [anomaly] = [e for e in entries(host) if e["kind"] == "audit.anomaly"]
    # It had read the end at the read's entry as it appended the view after it.
    assert anomaly["problem"] == (f"the log ended at entry {kept_end}, but this host had seen it reach "
                                  f"entry {kept_end + 1}: entries were cut off it (or lost by a database server "
                                  "that crashed or failed over with commits unsynced)")
    assert anomaly["seq"] == kept_end + 2  # numbering resumes after what it had seen
    problems = audit.verify(host.storage, [public]).problems
    assert sorted((p.what, p.seq) for p in problems) == [("anomaly", kept_end + 2), ("deleted", kept_end + 1)]


def test_a_new_log_beside_no_requests_is_not_an_anomaly(make_host: Callable[..., Host]) -> None:
    host = make_host()
    host.send(reminder(rid="first"))
    assert "audit.anomaly" not in kinds(host) and audit.verify(host.storage, [host.audit.key.public]).ok
    host.close()


def test_an_anchor_noted_earlier_must_still_be_there(logged: tuple[Path, Any]) -> None:
    path, public = logged
    store = open_store(path)
    try:
        noted = (3, hash_of(rows(path)[2][1]))
        assert audit.verify(store, [public], anchor=noted).ok
        [problem] = audit.verify(store, [public], anchor=(3, "0" * 64)).problems
    finally:
        store.close()
    assert problem.what == "anchor" and problem.seq == 3


@pytest.mark.parametrize("seal_seconds", [0, 3600])
def test_verify_beside_a_running_host_checks_the_log_as_it_was_when_it_began(
        make_host: Callable[..., Host], seal_seconds: int) -> None:
    """The entries, the head and the store's requests are read as one snapshot: a host that sends
    while verify reads is neither a log cut off its end (when it seals the head meanwhile) nor a
    request without an entry (when it does not)."""
    host = make_host(f"\n[audit]\nseal_seconds = {seal_seconds}\n")
    for i in range(3):
        host.send(reminder(rid=f"live-{i}"))
    store = open_store(host.config.store_path, read_only=True)  # as `emrcomm audit verify` opens it
    every_entry = store.audit.entries

    def entries_then_a_send() -> Any:
        yield from every_entry()
        host.send(reminder(rid="live-while-verifying"))  # another process, committing meanwhile

    store.audit.entries = entries_then_a_send
    try:
        report = audit.verify(store, [host.audit.key.public])
    finally:
        store.close()
    assert report.ok, report.problems
    assert report.entries == 6


# ---------------------------------------------------------------- the command line and exports


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_host(tmp_path: Path, clock: Any) -> Path:
    from emrcomm.config import load_config

    config = write_config(tmp_path)
    with Host(load_config(config), clock=clock) as host:
        host.send(reminder(rid="c-1"))
        host.send(reminder("Patient/none", rid="c-2"))
    return config


def test_audit_verify_command_passes_then_names_the_edited_entry(
        tmp_path: Path, clock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    config = cli_host(tmp_path, clock)
    code, out, _ = run(capsys, "audit", "verify", "--config", str(config))
    assert code == 0 and "3 entries" in out and "check out" in out
    tamper_edit(tmp_path / "emrcomm.sqlite", seq=2)
    code, out, _ = run(capsys, "audit", "verify", "--config", str(config))
    assert code == 4 and "entry 2: the signature does not match its content (edited" in out
    code, out, _ = run(capsys, "audit", "verify", "--config", str(config), "--json")
    assert json.loads(out)["problems"][0]["seq"] == 2


@pytest.mark.sqlite_only  # a PostgreSQL database that is not there is not connected to (StoreNotOpened)
def test_audit_verify_of_a_database_that_is_not_there_fails_and_says_so(
        tmp_path: Path, clock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Not "0 entries; everything checks out" beside the key file of a database moved away."""
    config = cli_host(tmp_path, clock)
    (tmp_path / "emrcomm.sqlite").rename(tmp_path / "moved.sqlite")
    code, out, err = run(capsys, "audit", "verify", "--config", str(config))
    assert code == 2 and out == ""
    assert f"{tmp_path / 'emrcomm.sqlite'}: no such database, so no audit log to verify" in err
    assert not (tmp_path / "emrcomm.sqlite").exists()


@pytest.mark.parametrize("anchor", ["\u00b2:" + "a" * 64, "3:" + "g" * 64, "3", "x:" + "a" * 64])
def test_audit_verify_refuses_an_anchor_that_is_not_a_number_and_a_hash(
        tmp_path: Path, clock: Any, capsys: pytest.CaptureFixture[str], anchor: str) -> None:
    config = cli_host(tmp_path, clock)
    code, out, err = run(capsys, "audit", "verify", "--config", str(config), "--anchor", anchor)
    assert code == 2 and out == "" and "expected SEQ:HASH" in err


def test_audit_verify_that_cannot_keep_its_index_fails_and_says_so(
        tmp_path: Path, clock: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from emrcomm import audit_index

    config = cli_host(tmp_path, clock)
    # A disk with room for the index's empty tables, and no more.
    monkeypatch.setattr(audit_index, "_SCHEMA", audit_index._SCHEMA + "PRAGMA max_page_count = 3;")
    code, out, err = run(capsys, "audit", "verify", "--config", str(config))
    assert code == 2 and "check out" not in out
    assert "could not keep its index of the entries in a temporary file (database or disk is full)" in err
    assert "nothing was verified" in err and "SQLITE_TMPDIR" in err


def test_audit_verify_with_a_public_key_only(tmp_path: Path, clock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    config = cli_host(tmp_path, clock)
    code, pem, _ = run(capsys, "audit", "public-key", "--config", str(config))
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----")
    public = tmp_path / "auditor.pem"
    public.write_text(pem)
    os.rename(tmp_path / "audit-signing.key", tmp_path / "elsewhere.key")  # the auditor has no private key
    code, out, _ = run(capsys, "audit", "verify", "--config", str(config), "--public-key", str(public))
    assert code == 0 and "check out" in out
    code, _, err = run(capsys, "audit", "verify", "--config", str(config))
    assert code == 2 and "no trusted key" in err and "--public-key" in err


def test_jsonl_export_verifies_offline_with_the_public_key(
        tmp_path: Path, clock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives import serialization

    config = cli_host(tmp_path, clock)
    code, out, _ = run(capsys, "audit", "export", "--config", str(config))
    lines = [json.loads(line) for line in out.splitlines()]
    _, pem, _ = run(capsys, "audit", "public-key", "--config", str(config))
    public = serialization.load_pem_public_key(pem.encode())
    prev = audit.GENESIS
    signed = []
    for line in lines:
        digest, sig = line.pop("hash"), line.pop("sig")
        assert hashlib.sha256(audit.canonical(line)).hexdigest() == digest
        assert line["prev"] == prev
        if sig:  # the last entry of each transaction; the chain vouches for those before it
            public.verify(base64.b64decode(sig), bytes.fromhex(digest))  # type: ignore[union-attr]
            signed.append(line["seq"])
        prev = digest
    assert code == 0 and [line["seq"] for line in lines] == list(range(1, 4))
    # chosen, sent, blocked: three transactions, three signatures
    assert signed == [1, 2, 3]


def test_fhir_export_is_a_bundle_of_valid_r4_audit_events(
        tmp_path: Path, clock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    config = cli_host(tmp_path, clock)
    out_file = tmp_path / "audit.json"
    code, _, err = run(capsys, "audit", "export", "--format", "fhir", "-o", str(out_file), "--config", str(config))
    assert code == 0 and "3 entries written" in err
    bundle = json.loads(out_file.read_text())
    assert schema_errors(bundle) == []
    validate_resource(bundle)
    events = [e["resource"] for e in bundle["entry"]]
    assert [e["subtype"][0]["code"] for e in events] == [
        "channel.chosen", "sent", "blocked"]
    for event in events:
        assert schema_errors(event) == []
        validate_resource(event)
    blocked = events[-1]
    details = {d["type"]: d.get("valueString") for d in blocked["entity"][-1]["detail"]}
    assert details["reasons"] == "CONSENT_MISSING" and details["seq"] == "3"
    assert {"reference": "Patient/none"} in [e["what"] for e in blocked["entity"]]


def test_an_empty_log_exports_a_valid_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out, _ = run(capsys, "audit", "export", "--format", "fhir", "--config", str(config))
    assert code == 0 and json.loads(out) == {"resourceType": "Bundle", "type": "collection"}


def test_an_edited_unsigned_entry_is_named(logged: tuple[Path, Any]) -> None:
    path, public = logged
    tamper_edit_unsigned(path)
    problems = {(p.what, p.seq) for p in verify(path, public).problems}
    assert ("forged", 7) in problems and ("inserted", 8) in problems


def test_a_group_commit_signs_its_last_entry_once_and_verifies(make_host: Callable[..., Host]) -> None:
    host = make_host("\n[delivery]\nmode = \"queue\"\n")
    patients = ["Patient/on-en", "Patient/qc-fr"]  # one group: two patients
    outcomes = list(host.send_many([reminder(p, rid=f"g-{i}") for i, p in enumerate(patients)], group=5))
    assert [o.status.value for o in outcomes] == ["queued"] * 2
    with raw_store(host.config.store_path) as db:
        sigs = [sig for (sig,) in db.execute("SELECT sig FROM audit_log ORDER BY pos")]
    # the seal at start-up signs nothing; 2 requests x queued = 2 entries, one signature
    assert [bool(s) for s in sigs] == [False, True]
    assert audit.verify(host.storage, [host.audit.key.public]).ok


@given(st.dictionaries(st.sampled_from([*sorted(audit.FIELDS), "seq", "at", "kind", "prev", "key"]),
                       st.one_of(st.text(max_size=30), st.text(st.sampled_from(["\ud800", "\udfff", "é", "Œ", "\x1f", "\x7f", "\u2028", '"', "\\"]),
                                         max_size=5),
                                 st.integers(-2**63, 2**63 - 1),
                                 st.lists(st.text(max_size=10), max_size=4))))
@settings(suppress_health_check=[HealthCheck.too_slow])  # a fresh machine builds hypothesis' charmap first
@example({"request": "\x7f"})  # DEL: json escapes it, orjson does not
@example({"request": "\ud800"})  # a lone surrogate: orjson refuses it
def test_canonical_is_exactly_the_documented_json(entry: dict[str, Any]) -> None:
    """Offline checkers serialise with json.dumps (docs/audit.md): the bytes hashed must be those."""
    documented = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    assert audit.canonical(entry) == documented


@pytest.mark.parametrize("tamper", [tamper_append_unsigned, None], ids=["appended", "rewritten-tail"])
def test_an_unsigned_end_is_flagged_not_vouched_for_when_the_host_appends_again(
        logged: tuple[Path, Any], make_host: Callable[..., Host], tamper: Any) -> None:
    """Chaining a signed entry (or sealing the head) onto an unsigned end would vouch for
    entries added without the key: the host flags the end instead, and verify keeps failing."""
    path, public = logged
    if tamper is None:  # the last request's signed entry removed, its unsigned entry rewritten
        r = kept(path)[:-1]
        r[-1] = (r[-1][0], edit_text(r[-1][1]), None)
        rewrite(path, r)
    else:
        tamper(path)
    host = make_host()  # opening the log seals the head: it must not seal over the forged end
    host.send(reminder(rid="after"))
    [anomaly] = [e for e in entries(host) if e["kind"] == "audit.anomaly"]
    assert "the end of the log, is not signed" in anomaly["problem"]
    report = audit.verify(host.storage, [public])
    assert not report.ok and "anomaly" in {p.what for p in report.problems}


def test_an_entry_undone_inside_a_group_commit_leaves_the_end_signed(host: Host) -> None:
    # A group commit whose last transaction is undone: the end of the log is then an entry of
    # an earlier transaction of the group, which the commit must sign (not leave unsigned and
    # flagged as added without the key by the next append).
    log = host.audit
    with host.storage.group_commit():
        with host.storage.transaction():
            log.record("requeued", records=["r-1"])
        with pytest.raises(RuntimeError), host.storage.transaction():
            log.record("requeued", records=["r-2"])
            raise RuntimeError("a filer failed")
    last = host.storage.audit.last()
    assert last is not None and last["sig"] and entries(host)[-1]["records"] == ["r-1"]
    log.record("requeued", records=["r-3"])
    assert [e["records"] for e in entries(host)][-2:] == [["r-1"], ["r-3"]]  # no audit.anomaly between
    assert audit.verify(host.storage, [log.key.public]).ok


def test_an_edited_entry_that_the_signed_head_names_is_found_when_the_head_is_sealed_again(
        make_host: Callable[..., Host]) -> None:
    host = make_host("\n[audit]\nseal_seconds = 3600\n")
    host.send(reminder(rid="s-1"))
    host.audit.seal()  # the head names entry 2
    host.send(reminder(rid="s-2"))  # entries 3 and 4, after the head
    r = kept(host.config.store_path)
    assert [seq for seq, _, _ in r] == [1, 2, 3, 4]
    r[1] = (2, edit_text(r[1][1]), r[1][2])
    rewrite(host.config.store_path, r)
    host.audit.seal()  # finds entry 2 by its number, and that it is not the one the head signed
    [anomaly] = [e for e in entries(host) if e["kind"] == "audit.anomaly"]
    assert anomaly["problem"] == "entry 2, which the signed head names, is not the one it signed"


def test_an_entry_stored_before_the_position_of_its_number_is_still_found(logged: tuple[Path, Any]) -> None:
    """A 0.2 log that went on after an anomaly keeps entries at positions below their numbers."""
    path, _ = logged
    r = [row for row in kept(path) if row[0] not in (4, 5)]  # entries 6-12 now at positions 4-10
    rewrite(path, r)
    store = open_store(path)
    try:
        assert store.audit.hash_of(9) == hash_of(r[6][1]) and r[6][0] == 9
        assert store.audit.hash_of(4) is None
    finally:
        store.close()


def test_an_entry_that_is_not_one_is_named(logged: tuple[Path, Any]) -> None:
    path, public = logged
    r = kept(path)
    r[4] = (5, b"\x01 not deflate", r[4][2])  # says it is packed, and is not
    rewrite(path, r)
    problems = verify(path, public).problems
    assert (problems[0].what, problems[0].position) == ("edited", 5)
    assert "the entry at position 5 is not an entry" in problems[0].message


# ---------------------------------------------------------------- what verify costs


def log_requests(host: Host, first: int, count: int) -> None:
    """``count`` more decisions in the log (a thousand to a signed transaction), each naming a
    request the store holds, as sending them would leave it (written directly: fast)."""
    for start in range(first, first + count, 1000):
        ids = [f"m-{i:07d}" for i in range(start, min(first + count, start + 1000))]
        with host.storage.transaction():
            host.audit.append([("channel.chosen", {"request": rid, "patient": "Patient/on-en", "channels": ["sms"],
                                                   "records": [f"r-{rid}"]}) for rid in ids])
        with raw_store(host.config.store_path) as db:
            db.executemany("INSERT INTO requests (id, patient, category, created, status, record_ids) "
                           "VALUES (?, 'Patient/on-en', 'appointment-reminder', '2026-11-23', 'sent', '[]')",
                           [(rid,) for rid in ids])


@pytest.mark.slow
@pytest.mark.clockless  # entries written at the host's pinned time: one clock-guard job is enough
def test_verify_needs_no_more_memory_for_a_log_four_times_as_long(make_host: Callable[..., Host]) -> None:
    """What verify learns of each entry goes to a file, not to memory: the peak of what Python
    allocates is about the same for 4N entries as for N (it was 4 times as much before: 7 MB, 29 MB)."""
    import tracemalloc

    n = 10_000
    host = make_host()
    peaks = []
    for first, more in ((0, n), (n, 3 * n)):
        log_requests(host, first, more)
        tracemalloc.start()
        try:
            report = audit.verify(host.storage, [host.audit.key.public])
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert report.ok and report.entries == first + more
    assert peaks[1] / peaks[0] < 1.5, peaks
