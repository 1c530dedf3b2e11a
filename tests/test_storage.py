"""Storage with seams: versioned migrations for the core and for the tables a plugin owns, a
schema version that is checked, and a read-only database that writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from emrcomm.errors import ConfigError, PluginError
from emrcomm.host import Host
from emrcomm.model import Identifier
from emrcomm.plugin.manager import discover
from emrcomm.storage import CORE, Migration, open_sqlite, schema_version
from emrcomm.storage.schema import MIGRATIONS
from emrcomm.storage.sqlite import SQLiteDatabase
from emrcomm.testing import TEST_NOW
from emrcomm_portal.storage import MIGRATIONS as PORTAL
from support import open_store, write_config

LATEST = max(m.version for m in MIGRATIONS)
NOTES = Migration("notes", 1, "a table", statements={"*": ["CREATE TABLE notes (id TEXT PRIMARY KEY)"]})
NOTES_2 = Migration("notes", 2, "a column", statements={"*": ["ALTER TABLE notes ADD COLUMN body TEXT"]})


def test_a_new_database_gets_the_core_schema_at_its_latest_version(tmp_path: Path) -> None:
    storage = open_store(tmp_path / "s.sqlite")
    try:
        assert schema_version(storage.db) == LATEST
        assert storage.meta.get("schema_version") == str(LATEST)
    finally:
        storage.close()


def test_a_plugins_steps_run_once_in_order_and_their_version_is_kept(tmp_path: Path) -> None:
    storage = open_store(tmp_path / "s.sqlite", migrations=[NOTES_2, NOTES])  # given out of order
    storage.db.execute("INSERT INTO notes (id, body) VALUES ('n1', 'kept')")
    assert schema_version(storage.db, "notes") == 2
    storage.close()
    again = open_store(tmp_path / "s.sqlite", migrations=[NOTES, NOTES_2])  # nothing left to do
    try:
        assert again.db.query("SELECT body FROM notes") == [{"body": "kept"}]
    finally:
        again.close()


@pytest.mark.parametrize("owner", [CORE, "notes"])
def test_a_database_from_a_newer_release_is_refused_by_name(tmp_path: Path, owner: str) -> None:
    storage = open_store(tmp_path / "s.sqlite", migrations=[NOTES])
    key = "schema_version" if owner == CORE else f"schema_version:{owner}"
    storage.meta.put(key, "99")
    storage.close()
    with pytest.raises(ConfigError, match=r"schema version 99, newer than this installation knows") as err:
        open_store(tmp_path / "s.sqlite", migrations=[NOTES])
    assert ("emrcomm" if owner == CORE else "plugin 'notes'") in str(err.value)


def test_a_failed_step_leaves_the_version_where_it_was(tmp_path: Path) -> None:
    broken = Migration("notes", 2, "broken", statements={"*": ["ALTER TABLE nowhere ADD COLUMN x TEXT"]})
    open_store(tmp_path / "s.sqlite", migrations=[NOTES]).close()
    with pytest.raises(Exception, match="nowhere"):
        open_store(tmp_path / "s.sqlite", migrations=[NOTES, broken])
    storage = open_store(tmp_path / "s.sqlite", migrations=[NOTES])
    try:
        assert schema_version(storage.db, "notes") == 1
    finally:
        storage.close()


def test_an_upgrade_that_fails_half_way_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    # Both steps are pending; the second fails: the first, applied before it, is undone too.
    broken = Migration("notes", 2, "broken", statements={"*": ["ALTER TABLE nowhere ADD COLUMN x TEXT"]})
    open_store(tmp_path / "s.sqlite", migrations=[]).close()
    with pytest.raises(Exception, match="nowhere"):
        open_store(tmp_path / "s.sqlite", migrations=[NOTES, broken])
    storage = open_store(tmp_path / "s.sqlite", migrations=[])
    try:
        assert schema_version(storage.db, "notes") == 0
        with pytest.raises(Exception, match="notes"):
            storage.db.query("SELECT id FROM notes")
    finally:
        storage.close()


@pytest.mark.sqlite_only  # a file that is not there: PostgreSQL has no such thing
def test_a_read_only_database_that_does_not_exist_is_empty_and_in_memory(tmp_path: Path) -> None:
    storage = open_sqlite(tmp_path / "absent.sqlite", read_only=True, migrations=PORTAL)
    try:
        assert storage.consent.last(channel="sms", address="+16135550123") is None
        assert schema_version(storage.db, "portal") == 1
    finally:
        storage.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.sqlite_only
def test_a_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    SQLiteDatabase(tmp_path / "s.sqlite").close()
    assert (tmp_path / "s.sqlite").stat().st_mode & 0o077 == 0


class _Trespasser:
    """A plugin whose migration would change the host's own tables."""

    from emrcomm import hookimpl

    @hookimpl
    def emrcomm_migrations(self) -> list[Migration]:
        return [Migration(CORE, 99, "not mine", statements={"*": ["DROP TABLE outbox"]})]


trespasser = _Trespasser()


def test_a_plugin_that_migrates_tables_it_does_not_own_stops_start_up(
        tmp_path: Path, make_host: Callable[..., Host]) -> None:
    found = dict(discover())
    found["trespasser"] = metadata.EntryPoint("trespasser", "test_storage:trespasser", "emrcomm")
    config = write_config(tmp_path, '\n[plugins.trespasser]\n')
    from emrcomm.config import load_config

    with pytest.raises(PluginError, match="'trespasser' contributes a migration for tables owned by 'emrcomm'"):
        Host(load_config(config), entry_points=found)
    host = make_host()  # the outbox is still there
    assert host.storage.db.query("SELECT COUNT(*) AS n FROM outbox") == [{"n": 0}]


# ---------------------------------------------------------------- the request ledger's identifiers

A, B, C = Identifier("urn:emr:appointments", "A-1"), Identifier("urn:emr:orders", "O-1"), Identifier(None, "V-1")


def enter(host: Host, rid: str, status: str, identifiers: list[Identifier]) -> int | None:
    return host.storage.records.enter_request(id=rid, patient="Patient/on-en", category="clinical", now=TEST_NOW,
                                              status=status, record_ids=[], identifiers=identifiers)


def found(host: Host, identifier: Identifier) -> list[str]:
    return [r.id for r in host.storage.records.requests_by_identifier(identifier, limit=10)]


def test_a_request_keeps_every_identifier_in_order_and_is_found_by_each(host: Host) -> None:
    enter(host, "several", "sent", [B, C, A])
    enter(host, "one", "sent", [A])
    row = host.storage.records.request("several")
    assert row is not None and row.identifiers == (B, C, A) and row.identifier == B
    assert (found(host, A), found(host, B), found(host, C)) == (["one", "several"], ["several"], ["several"])


def test_a_request_decided_again_is_found_by_its_new_identifiers_not_its_old(host: Host) -> None:
    assert enter(host, "r", "blocked", [A, B]) == 1
    assert enter(host, "r", "sent", [A, C]) == 2
    assert enter(host, "r", "sent", [B]) is None  # handled: nothing changes
    row = host.storage.records.request("r")
    assert row is not None and row.identifiers == (A, C)
    assert (found(host, A), found(host, B), found(host, C)) == (["r"], [], ["r"])
    assert enter(host, "s", "failed", [A, B]) == 1 and enter(host, "s", "sent", [C]) == 2
    assert (found(host, A), found(host, B), found(host, C)) == (["r"], [], ["r", "s"])


def test_an_identifier_sent_twice_in_one_request_finds_it_once(host: Host) -> None:
    enter(host, "twice", "sent", [A, B, A])
    row = host.storage.records.request("twice")
    assert row is not None and row.identifiers == (A, B, A) and found(host, A) == ["twice"]
