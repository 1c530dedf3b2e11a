"""Clinic folders made by earlier releases (tests/data/release-0.1, release-0.2) opened with
today's code: the schema upgrades in place, every record keeps what it said, what waited in the
outbox is delivered, the consent ledger and the portal keep their rows, and the audit log (the
old release's entries and the new ones after them) verifies."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from emrcomm import audit
from emrcomm.cli import main
from emrcomm.fhir import validate_resource
from emrcomm.host import Host
from emrcomm.model import Category, DeliveryUpdate, Identifier, Request
from emrcomm.outbox.worker import Worker
from emrcomm.storage import schema_version
from emrcomm.storage.schema import MIGRATIONS
from emrcomm.testing import TEST_NOW, FixedClock
from emrcomm_portal.storage import PortalStore
from support import DATA, communication

RELEASE = DATA / "release-0.1"
RELEASE_02 = DATA / "release-0.2"  # schema 3: text audit entries and hashes, text dedup keys, facts as JSON
NEXT_MORNING = TEST_NOW + dt.timedelta(hours=23)  # 09:00 the next day in Toronto: the hold is over


def copied(release: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "clinic"
    shutil.copytree(release, copy)
    for secret in ("audit-signing.key", "keyring.json"):  # git keeps no modes
        (copy / secret).chmod(0o600)
    return copy


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copied(RELEASE, tmp_path)


@pytest.fixture
def folder_02(tmp_path: Path) -> Path:
    return copied(RELEASE_02, tmp_path)


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


# ---------------------------------------------------------------- a database of the 0.2 release


def old_audit(folder: Path) -> list[tuple[int, str]]:
    """(seq, hash) of every audit entry as the 0.2 release stored them."""
    with sqlite3.connect(folder / "emrcomm.sqlite") as db:
        return db.execute("SELECT seq, hash FROM audit_log ORDER BY pos").fetchall()


def test_a_0_2_database_upgrades_in_place_and_every_communication_says_what_it_said(folder_02: Path) -> None:
    shown = json.loads((folder_02 / "communications.json").read_text(encoding="utf-8"))
    with sqlite3.connect(folder_02 / "emrcomm.sqlite") as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
    with Host.from_config(folder_02 / "emrcomm.toml", clock=FixedClock(NEXT_MORNING)) as host:
        assert schema_version(host.storage.db) == max(m.version for m in MIGRATIONS)
        assert {r.id for r in host.storage.records.find()} == set(shown)
        for rid, old in shown.items():
            assert communication(host, rid) == old, rid
    with sqlite3.connect(folder_02 / "emrcomm.sqlite") as db:  # what is kept now: packed, without the columns
        facts = [f for (f,) in db.execute("SELECT facts FROM records")]
        dedup = [d for (d,) in db.execute("SELECT dedup FROM events")]
    assert all(isinstance(f, bytes) and not f.startswith(b"{") for f in facts)
    assert all(isinstance(d, bytes) and len(d) == 16 for d in dedup)


def test_a_0_2_request_has_no_identifier_after_the_upgrade_and_a_new_one_keeps_and_finds_its_own(
        folder_02: Path) -> None:
    # 0.2 kept no identifier: the column is added empty; a request sent after the upgrade keeps its own.
    ident = Identifier("urn:emr:appointments", "A-1")
    with Host.from_config(folder_02 / "emrcomm.toml", clock=FixedClock(NEXT_MORNING)) as host:
        old = host.storage.records.request("rel-reminder")
        assert old is not None and old.identifier is None and old.record_ids
        host.send(Request("Patient/on-en", Category.CLINICAL, id="after-upgrade", text="See you soon.", identifier=ident))
        assert [r.id for r in host.storage.records.requests_by_identifier(ident, limit=10)] == ["after-upgrade"]
    with sqlite3.connect(folder_02 / "emrcomm.sqlite") as db:
        assert db.execute("SELECT count(*) FROM requests WHERE identifier IS NULL").fetchone() == (5,)
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'requests_identifier'").fetchone()


def test_a_delivery_report_0_2_filed_changes_nothing_when_it_comes_again(folder_02: Path) -> None:
    with Host.from_config(folder_02 / "emrcomm.toml", clock=FixedClock(NEXT_MORNING)) as host:
        [sent] = host.storage.records.for_request("rel-reminder")
        events, shown = host.storage.records.events(sent.id), communication(host, sent.id)
        assert shown is not None and shown["status"] == "completed"
        # the same report as in MADE_BY.py.txt: its dedup key, kept as text then, is found as a digest now
        host.delivery_update(DeliveryUpdate(kind="delivered", at=TEST_NOW, channel="sms", record_id=sent.id))
        assert host.storage.records.events(sent.id) == events and communication(host, sent.id) == shown


def test_the_0_2_audit_chain_and_the_entries_after_it_verify(folder_02: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = old_audit(folder_02)
    with Host.from_config(folder_02 / "emrcomm.toml", clock=FixedClock(NEXT_MORNING)) as host:
        assert Worker(host).run(once=True).sent == 1  # the pickup held for quiet hours
        after = list(audit.entries(host.storage))
    # the 0.2 entries are the same chain (their hashes, recomputed from what is kept now)...
    assert [(e["seq"], e["hash"]) for e in after[:len(before)]] == before
    assert "request.received" in {e["kind"] for e in after[:len(before)]}
    # ...and the new ones follow it
    assert after[len(before)]["prev"] == before[-1][1] and after[-1]["kind"] == "sent"
    assert main(["audit", "verify", "--config", str(folder_02 / "emrcomm.toml")]) == 0
    assert "check out" in capsys.readouterr().out


@pytest.mark.postgres
def test_a_postgresql_database_at_schema_3_with_0_2_rows_upgrades(postgres_server: Any) -> None:
    """PostgreSQL converts what 0.2 wrote as SQLite does: the 0.2 rows, put into a PostgreSQL
    database at schema 3, are packed and digested by the upgrade; the chain and the chart hold."""
    from emrcomm.fhir import communication as to_fhir
    from emrcomm.storage import open_postgres
    from emrcomm.storage.database import upgrade
    from emrcomm.storage.postgres import PostgresDatabase

    url = postgres_server.new_database()
    try:
        db = PostgresDatabase(url)
        try:
            upgrade(db, [m for m in MIGRATIONS if m.version <= 3])
            with sqlite3.connect(RELEASE_02 / "emrcomm.sqlite") as old, db.transaction():
                old.row_factory = sqlite3.Row
                for table in ("requests", "records", "events", "audit_log", "audit_head", "consent_events"):
                    rows = old.execute(f"SELECT * FROM {table}").fetchall()
                    names = list(rows[0].keys())
                    db.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                                   [tuple(r) for r in rows])
                db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", old.execute(
                    "SELECT key, value FROM meta WHERE key LIKE 'audit%'").fetchall())
        finally:
            db.close()
        store = open_postgres(url, upgrade_it=True)
        try:
            assert schema_version(store.db) == max(m.version for m in MIGRATIONS)
            shown = json.loads((RELEASE_02 / "communications.json").read_text(encoding="utf-8"))
            for rid, old_resource in shown.items():
                record = store.records.get(rid)
                assert record is not None and to_fhir(record) == old_resource, rid
            report = audit.verify(store, [audit.load_public_key(RELEASE_02 / "audit-signing.key")])
            assert report.ok and report.entries == len(old_audit(RELEASE_02)), report.problems
            old_request = store.records.request("rel-reminder")  # kept no identifier: none after the upgrade
            assert old_request is not None and old_request.identifier is None
            ident = Identifier("urn:emr:appointments", "A-1")
            store.records.enter_request(id="after-upgrade", patient="Patient/on-en", category="clinical",
                                        now=NEXT_MORNING, status="sent", record_ids=[], identifiers=[ident])
            assert [r.id for r in store.records.requests_by_identifier(ident, limit=10)] == ["after-upgrade"]
        finally:
            store.close()
    finally:
        postgres_server.drop_database(url)


# ---------------------------------------------------------------- a database at schema 6

ONE = Identifier("urn:emr:appointments", "A-6")
SEVERAL = (Identifier("urn:emr:appointments", "A-7"), Identifier("urn:emr:orders", "O-7"), Identifier(None, "V-7"))


def at_schema_6(db: Any) -> None:
    """The schema 6 made and a request it entered with its one identifier, as it wrote it."""
    from emrcomm.storage.database import upgrade

    upgrade(db, [m for m in MIGRATIONS if m.version <= 6])
    db.execute("""INSERT INTO requests (id, patient, category, created, status, attempts, record_ids, identifier)
                  VALUES ('at-6', 'Patient/on-en', 'clinical', '2026-11-23T15:00:00+00:00', 'sent', 1, '[]',
                          '["urn:emr:appointments","A-6"]')""")


def keeps_and_finds_identifiers(store: Any) -> None:
    """The request schema 6 entered is found by its identifier; one entered now with several
    keeps them all and is found by each."""
    old = store.records.request("at-6")
    assert old is not None and old.identifiers == (ONE,)
    assert [r.id for r in store.records.requests_by_identifier(ONE, limit=10)] == ["at-6"]
    store.records.enter_request(id="at-7", patient="Patient/on-en", category="clinical", now=NEXT_MORNING,
                                status="sent", record_ids=[], identifiers=SEVERAL)
    row = store.records.request("at-7")
    assert row is not None and row.identifiers == SEVERAL
    for identifier in SEVERAL:
        assert [r.id for r in store.records.requests_by_identifier(identifier, limit=10)] == ["at-7"], identifier


def test_a_schema_6_database_upgrades_and_keeps_and_finds_every_identifier(tmp_path: Path) -> None:
    from emrcomm.storage import open_sqlite
    from emrcomm.storage.sqlite import SQLiteDatabase

    db = SQLiteDatabase(tmp_path / "emrcomm.sqlite")
    try:
        at_schema_6(db)
        assert schema_version(db) == 6
    finally:
        db.close()
    store = open_sqlite(tmp_path / "emrcomm.sqlite")
    try:
        assert schema_version(store.db) == max(m.version for m in MIGRATIONS)
        keeps_and_finds_identifiers(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgresql_database_at_schema_6_upgrades_and_keeps_and_finds_every_identifier(postgres_server: Any) -> None:
    from emrcomm.storage import open_postgres
    from emrcomm.storage.postgres import PostgresDatabase

    url = postgres_server.new_database()
    try:
        db = PostgresDatabase(url)
        try:
            at_schema_6(db)
        finally:
            db.close()
        store = open_postgres(url, upgrade_it=True)
        try:
            assert schema_version(store.db) == max(m.version for m in MIGRATIONS)
            keeps_and_finds_identifiers(store)
            long = tuple(Identifier("urn:emr:" + "s" * 240, f"{n}" + "v" * 250) for n in range(10))
            # Ten identifiers of 500 characters: more than one entry of a PostgreSQL index holds.
            store.records.enter_request(id="long", patient="Patient/on-en", category="clinical", now=NEXT_MORNING,
                                        status="sent", record_ids=[], identifiers=long)
            assert [r.id for r in store.records.requests_by_identifier(long[9], limit=10)] == ["long"]
        finally:
            store.close()
    finally:
        postgres_server.drop_database(url)


# ---------------------------------------------------------------- a database at schema 7

def at_schema_7(db: Any) -> None:
    """The schema 7 made and a request it entered, with no digest of what it asked for."""
    from emrcomm.storage.database import upgrade

    upgrade(db, [m for m in MIGRATIONS if m.version <= 7])
    db.execute("""INSERT INTO requests (id, patient, category, created, status, attempts, record_ids, identifier)
                  VALUES ('at-7', 'Patient/on-en', 'clinical', '2026-11-23T15:00:00+00:00', 'sent', 1, '[]',
                          '["urn:emr:appointments","A-7"]')""")


def keeps_old_requests_without_a_digest(store: Any) -> None:
    """The request schema 7 entered has no digest (a repeat of it is answered as before); one
    entered now keeps its own."""
    old = store.records.request("at-7")
    assert old is not None and old.digest is None and old.identifiers == (SEVERAL[0],)
    store.records.enter_request(id="at-8", patient="Patient/on-en", category="clinical", now=NEXT_MORNING,
                                status="sent", record_ids=[], digest=bytes(range(16)))
    row = store.records.request("at-8")
    assert row is not None and row.digest == bytes(range(16))


def test_a_schema_7_database_upgrades_and_its_requests_have_no_digest(tmp_path: Path) -> None:
    from emrcomm.storage import open_sqlite
    from emrcomm.storage.sqlite import SQLiteDatabase

    db = SQLiteDatabase(tmp_path / "emrcomm.sqlite")
    try:
        at_schema_7(db)
        assert schema_version(db) == 7
    finally:
        db.close()
    store = open_sqlite(tmp_path / "emrcomm.sqlite")
    try:
        assert schema_version(store.db) == max(m.version for m in MIGRATIONS) == 11
        keeps_old_requests_without_a_digest(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgresql_database_at_schema_7_upgrades_and_its_requests_have_no_digest(postgres_server: Any) -> None:
    from emrcomm.storage import open_postgres
    from emrcomm.storage.postgres import PostgresDatabase

    url = postgres_server.new_database()
    try:
        db = PostgresDatabase(url)
        try:
            at_schema_7(db)
        finally:
            db.close()
        store = open_postgres(url, upgrade_it=True)
        try:
            assert schema_version(store.db) == max(m.version for m in MIGRATIONS) == 11
            keeps_old_requests_without_a_digest(store)
        finally:
            store.close()
    finally:
        postgres_server.drop_database(url)


# ---------------------------------------------------------------- a database at schema 9

FORM = '["urn:emr:consent-forms","F-9"]'  # an identifier key (emrcomm.storage.records.identifier_key)


def at_schema_9(db: Any) -> None:
    """The schema 9 made and a front-desk grant it recorded (no identifier kept: it had nowhere to)."""
    from emrcomm.storage.database import upgrade

    upgrade(db, [m for m in MIGRATIONS if m.version <= 9])
    db.execute("""INSERT INTO consent_events (patient, channel, address, purpose, action, at, source)
                  VALUES ('Patient/on-en', 'sms', '+16135550123', NULL, 'grant', '2026-11-23T15:00:00+00:00',
                          'signed form, front desk')""")


def keeps_consents_and_claims_identifiers(store: Any) -> None:
    """The grant schema 9 recorded stands; a Consent recorded now claims its identifier once,
    and is found by it."""
    last = store.consent.last(channel="sms", address="+16135550123")
    assert last is not None and last.action == "grant" and last.source == "signed form, front desk"
    assert store.consent.identified([FORM]) == []
    with store.transaction():
        assert store.consent.claim([FORM], digest=bytes(range(16)), at=NEXT_MORNING)
        store.consent.settle([FORM], consent=last.seq)
    with store.transaction():
        assert not store.consent.claim([FORM], digest=bytes(16), at=NEXT_MORNING)
    [row] = store.consent.identified([FORM])
    assert (row.consent, row.digest, row.recorded) == (last.seq, bytes(range(16)), NEXT_MORNING)


def test_a_schema_9_database_upgrades_keeps_its_consents_and_claims_consent_identifiers(tmp_path: Path) -> None:
    from emrcomm.storage import open_sqlite
    from emrcomm.storage.sqlite import SQLiteDatabase

    db = SQLiteDatabase(tmp_path / "emrcomm.sqlite")
    try:
        at_schema_9(db)
        assert schema_version(db) == 9
    finally:
        db.close()
    store = open_sqlite(tmp_path / "emrcomm.sqlite")
    try:
        assert schema_version(store.db) == max(m.version for m in MIGRATIONS) == 11
        keeps_consents_and_claims_identifiers(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgresql_database_at_schema_9_upgrades_keeps_its_consents_and_claims_consent_identifiers(
        postgres_server: Any) -> None:
    from emrcomm.storage import open_postgres
    from emrcomm.storage.postgres import PostgresDatabase

    url = postgres_server.new_database()
    try:
        db = PostgresDatabase(url)
        try:
            at_schema_9(db)
        finally:
            db.close()
        store = open_postgres(url, upgrade_it=True)
        try:
            assert schema_version(store.db) == max(m.version for m in MIGRATIONS) == 11
            keeps_consents_and_claims_identifiers(store)
        finally:
            store.close()
    finally:
        postgres_server.drop_database(url)


def test_an_email_opt_out_an_older_release_filed_with_capitals_stops_the_mailbox_after_the_upgrade(
        folder_02: Path) -> None:
    # The 0.2 release kept an address as it was typed: this unsubscribe stopped only that spelling.
    with sqlite3.connect(folder_02 / "emrcomm.sqlite") as db:
        db.execute("INSERT INTO consent_events (patient, channel, address, purpose, action, at, source) "
                   "VALUES ('Patient/on-en', 'email', 'Alex.Martin@Example.ORG', NULL, 'revoke', "
                   "'2026-11-20T15:00:00+00:00', 'unsubscribe link')")
    with Host.from_config(folder_02 / "emrcomm.toml", clock=FixedClock(NEXT_MORNING)) as host:
        last = host.storage.consent.last(channel="email", address="alex.martin@example.org")
        assert last is not None and last.revokes and last.source == "unsubscribe link"
        assert host.storage.consent.last(channel="email", address="ALEX.MARTIN@EXAMPLE.ORG") == last
    with sqlite3.connect(folder_02 / "emrcomm.sqlite") as db:
        assert db.execute("SELECT address FROM consent_events WHERE channel = 'email'").fetchall() == [
            ("alex.martin@example.org",)]


def at_staff_schema_2(db: Any) -> None:
    """The staff tables as schema 2 left them: an account with the lock columns, and a bucket
    keyed by the bare SHA-256 of a name typed at the sign-in form (a password, perhaps)."""
    import hashlib

    from argon2 import PasswordHasher

    from emrcomm.staff.schema import MIGRATIONS as STAFF
    from emrcomm.storage.database import upgrade

    upgrade(db, [*MIGRATIONS, *STAFF[:2]])
    db.execute("""INSERT INTO staff_accounts (name, full_name, password_hash, created, password_changed, failures)
                  VALUES ('jroy', 'Julie Roy', ?, '2026-11-23T15:00:00+00:00', '2026-11-23T15:00:00+00:00', 2)""",
               (PasswordHasher().hash(_PASSWORD),))
    typed = hashlib.sha256(b"Tr0ub4dor&3 typed as the name").hexdigest()
    db.execute("INSERT INTO staff_tries (key, name, due) VALUES (?, ?, 1e12)", (hashlib.sha256(b"k").hexdigest(), typed))


_PASSWORD = "correct horse battery staple"


def staff_upgraded_and_signs_in(db: Any) -> None:
    from emrcomm.audit import SigningKey
    from emrcomm.staff.accounts import StaffAccounts
    from emrcomm.staff.schema import MIGRATIONS as STAFF
    from emrcomm.storage.database import upgrade

    assert [m.version for m in upgrade(db, STAFF)] == [3]
    assert schema_version(db, "staff") == 3
    assert db.query("SELECT COUNT(*) AS n FROM staff_tries")[0]["n"] == 0  # the bare digests are gone
    [account] = db.query("SELECT * FROM staff_accounts")
    assert set(account) == {"name", "full_name", "password_hash", "created", "password_changed", "disabled"}
    accounts = StaffAccounts(db, lambda: NEXT_MORNING, SigningKey.ephemeral())
    assert accounts.sign_in("jroy", _PASSWORD, "192.0.2.1").session is not None


def test_staff_tables_at_schema_2_drop_the_lock_columns_and_the_bare_digests(tmp_path: Path) -> None:
    from emrcomm.storage.sqlite import SQLiteDatabase

    db = SQLiteDatabase(tmp_path / "emrcomm.sqlite")
    try:
        at_staff_schema_2(db)
        staff_upgraded_and_signs_in(db)
    finally:
        db.close()


@pytest.mark.postgres
def test_postgresql_staff_tables_at_schema_2_drop_the_lock_columns_and_the_bare_digests(postgres_server: Any) -> None:
    from emrcomm.storage.postgres import PostgresDatabase

    url = postgres_server.new_database()
    try:
        db = PostgresDatabase(url)
        try:
            at_staff_schema_2(db)
            staff_upgraded_and_signs_in(db)
        finally:
            db.close()
    finally:
        postgres_server.drop_database(url)


# ---------------------------------------------------------------- a database at schema 10

def at_schema_10(db: Any) -> None:
    """The schema 10 made, with a Consent it recorded under an identifier (no resource kept)."""
    from emrcomm.storage.database import upgrade

    upgrade(db, [m for m in MIGRATIONS if m.version <= 10])
    db.execute("""INSERT INTO consent_events (patient, channel, address, purpose, action, at, source)
                  VALUES ('Patient/on-en', 'sms', '+16135550123', NULL, 'grant', '2026-11-23T15:00:00+00:00',
                          'signed form, front desk')""")
    db.execute("INSERT INTO consent_identifiers (identifier, consent, digest, recorded) VALUES (?, 1, ?, ?)",
               (FORM, bytes(range(16)), "2026-11-23T15:00:00+00:00"))


def keeps_consent_identifiers_and_keeps_resources(store: Any) -> None:
    """The identifier schema 10 kept still names its Consent and digest, with no resource; one
    claimed now keeps the Consent as recorded."""
    [old] = store.consent.identified([FORM])
    assert (old.consent, old.digest, old.resource) == (1, bytes(range(16)), None)
    other = '["urn:emr:consent-forms","F-11"]'
    with store.transaction():
        assert store.consent.claim([other], digest=bytes(16), at=NEXT_MORNING)
        store.consent.settle([other], consent=1, resource='{"resourceType":"Consent","status":"active"}')
    [row] = store.consent.identified([other])
    assert json.loads(row.resource or "null") == {"resourceType": "Consent", "status": "active"}


def test_a_schema_10_database_upgrades_and_keeps_its_consent_identifiers(tmp_path: Path) -> None:
    from emrcomm.storage import open_sqlite
    from emrcomm.storage.sqlite import SQLiteDatabase

    db = SQLiteDatabase(tmp_path / "emrcomm.sqlite")
    try:
        at_schema_10(db)
        assert schema_version(db) == 10
    finally:
        db.close()
    store = open_sqlite(tmp_path / "emrcomm.sqlite")
    try:
        assert schema_version(store.db) == max(m.version for m in MIGRATIONS) == 11
        keeps_consent_identifiers_and_keeps_resources(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgresql_database_at_schema_10_upgrades_and_keeps_its_consent_identifiers(postgres_server: Any) -> None:
    from emrcomm.storage import open_postgres
    from emrcomm.storage.postgres import PostgresDatabase

    url = postgres_server.new_database()
    try:
        db = PostgresDatabase(url)
        try:
            at_schema_10(db)
        finally:
            db.close()
        store = open_postgres(url, upgrade_it=True)
        try:
            assert schema_version(store.db) == max(m.version for m in MIGRATIONS) == 11
            keeps_consent_identifiers_and_keeps_resources(store)
        finally:
            store.close()
    finally:
        postgres_server.drop_database(url)
