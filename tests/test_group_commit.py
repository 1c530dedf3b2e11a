"""Durability settings and group commit: ``[store] synchronous``, and ``send_many`` in queue mode
sharing one commit among many requests without reporting any of them before that commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from emrcomm.config import load_config
from emrcomm.errors import ConfigError
from emrcomm.host import Host
from emrcomm.model import Status
from emrcomm.plugin.manager import discover
from emrcomm.storage import open_sqlite
from support import BASE_CONFIG, open_store, raw_store, write_config
from test_pipeline import ALL, reminder

QUEUE = '\n[delivery]\nmode = "queue"\n'


def committed_outbox(host: Host, request_id: str) -> int:
    """Rows for ``request_id`` that another connection sees: only committed ones."""
    with raw_store(host.config.store_path) as other:
        return int(other.execute("SELECT COUNT(*) FROM outbox WHERE request_id = ?", (request_id,)).fetchone()[0])


@pytest.mark.sqlite_only  # SQLite's own: its pragmas, its write lock
def test_store_synchronous_defaults_to_full(host: Host) -> None:
    assert host.config.store_synchronous == "full"
    assert host.storage.db.query("PRAGMA synchronous") == [{"synchronous": 2}]  # FULL


@pytest.mark.sqlite_only  # SQLite's own: its pragmas, its write lock
def test_store_synchronous_normal_is_applied(make_host: Callable[..., Host]) -> None:
    host = make_host(config_text=BASE_CONFIG.replace('path = "emrcomm.sqlite"',
                                                     'path = "emrcomm.sqlite"\nsynchronous = "normal"'))
    assert host.storage.db.query("PRAGMA synchronous") == [{"synchronous": 1}]  # NORMAL
    assert host.send(reminder()).status is Status.SENT


def _commits_by_level(store: Any, write: Callable[[], None]) -> list[str]:
    """The synchronous level each COMMIT that ``write`` makes runs under (SQLite's trace)."""
    connection = store.db._db
    level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[connection.execute("PRAGMA synchronous").fetchone()[0]]
    seen: list[str] = []

    def trace(sql: str) -> None:
        nonlocal level
        words = sql.replace(" ", "").upper()
        if words.startswith("PRAGMASYNCHRONOUS="):
            level = words.rsplit("=", 1)[1]
        elif words == "COMMIT":
            seen.append(level)

    connection.set_trace_callback(trace)
    try:
        write()
    finally:
        connection.set_trace_callback(None)
    return seen


@pytest.mark.sqlite_only  # SQLite's own: its pragmas
def test_a_relaxed_commit_leaves_the_next_durable_one_fsynced(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path / "s.sqlite")

    def writes() -> None:
        store.meta.put("a", "1")
        for key in ("b", "c"):
            with store.db.relaxed():  # type: ignore[attr-defined]
                store.meta.put(key, "1")
        store.meta.put("d", "1")
        with store.transaction():
            store.meta.put("e", "1")

    assert _commits_by_level(store, writes) == ["FULL", "NORMAL", "NORMAL", "FULL", "FULL"]
    store.close()


@pytest.mark.sqlite_only  # SQLite's own: its statements
def test_a_savepoint_runs_only_around_statements_and_still_undoes_alone(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path / "s.sqlite")
    statements: list[str] = []
    store.db._db.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    with store.transaction():
        with store.db.savepoint():
            pass  # a filer with nothing to file
        assert not any(s.startswith("SAVEPOINT") for s in statements)
        store.meta.put("kept", "1")
        with pytest.raises(RuntimeError), store.db.savepoint(), store.db.savepoint():
            store.meta.put("undone", "1")
            raise RuntimeError("a filer fails")
        with store.db.savepoint():
            store.meta.put("also kept", "1")
    store.db._db.set_trace_callback(None)  # type: ignore[attr-defined]
    assert [store.meta.get(k) for k in ("kept", "undone", "also kept")] == ["1", None, "1"]
    store.close()


@pytest.mark.sqlite_only  # SQLite's own: its statements
def test_a_savepoint_that_cannot_begin_reports_its_own_error(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path / "s.sqlite")
    connection = store.db._db  # type: ignore[attr-defined]

    class Refusing:  # SQLite refusing the SAVEPOINT itself (say, out of memory)
        def __getattr__(self, name: str) -> Any:
            return getattr(connection, name)

        def execute(self, sql: str, params: Any = ()) -> Any:
            if sql.startswith("SAVEPOINT"):
                raise sqlite3.OperationalError("out of memory")
            return connection.execute(sql, params)

    with store.transaction():
        store.meta.put("kept", "1")
        store.db._db = Refusing()  # type: ignore[attr-defined]
        try:
            with pytest.raises(sqlite3.OperationalError, match="out of memory"), store.db.savepoint():
                store.meta.put("never", "1")
        finally:
            store.db._db = connection  # type: ignore[attr-defined]
    assert [store.meta.get(k) for k in ("kept", "never")] == ["1", None]
    store.close()


def test_store_synchronous_refuses_an_unknown_level(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(BASE_CONFIG.replace('path = "emrcomm.sqlite"', 'path = "emrcomm.sqlite"\nsynchronous = "off"'),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="synchronous"):
        load_config(path)


def test_send_many_in_queue_mode_reports_each_request_only_once_committed(make_host: Callable[..., Host]) -> None:
    host = make_host(QUEUE)
    seen_uncommitted: list[int] = []

    def requests() -> Iterator[object]:
        for n in range(5):
            if n:  # the group is still open while it is being filled
                seen_uncommitted.append(committed_outbox(host, f"g-{n - 1}"))
            yield reminder(rid=f"g-{n}")

    for outcome in host.send_many(requests(), group=3):
        assert outcome.status is Status.QUEUED
        assert committed_outbox(host, outcome.request_id) == 1
    assert seen_uncommitted == [0, 0, 1, 0]  # g-2 was committed with its group before g-3 began


def test_send_many_in_a_group_recognises_a_repeated_request_id(make_host: Callable[..., Host]) -> None:
    host = make_host(QUEUE)
    outcomes = list(host.send_many([reminder(rid="same"), reminder(rid="same")]))
    assert [o.status for o in outcomes] == [Status.QUEUED, Status.QUEUED]
    assert "already handled" in outcomes[1].explanation[0]
    assert host.storage.outbox.counts() == {"pending": 1}


def test_a_failing_filer_in_a_group_undoes_its_request_only(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    order = [s.strip() for s in ALL.split(",")] + ['"brokenfiler"']
    extra = QUEUE + f"\n[plugins]\norder = [{', '.join(order)}]\n"
    eps = {**discover(), "brokenfiler": metadata.EntryPoint(name="brokenfiler", value="fakes:BrokenFiler",
                                                             group="emrcomm")}
    with Host(load_config(write_config(tmp_path, extra)), clock=clock, entry_points=eps) as host:
        outcomes = list(host.send_many([reminder(rid="a"), reminder(rid="b")]))
        assert [o.status for o in outcomes] == [Status.FAILED, Status.FAILED]
        assert host.storage.outbox.counts() == {}  # nothing left to deliver, as with one send
        assert {e["resource"]["status"] for e in host.records()["entry"]} == {"not-done"}


def test_a_transaction_inside_a_group_that_raises_is_undone_alone(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite")
    with store.group_commit():
        store.meta.put("kept", "1")
        with pytest.raises(RuntimeError), store.transaction():
            store.meta.put("undone", "1")
            raise RuntimeError("a filer failed")
        assert store.meta.get("undone") is None
    assert store.meta.get("kept") == "1"
    with pytest.raises(RuntimeError), store.group_commit():
        store.meta.put("group-undone", "1")
        raise RuntimeError("the whole group fails")
    assert store.meta.get("group-undone") is None
    store.close()


def test_a_group_decides_a_patients_second_request_after_writing_the_first(
        make_host: Callable[..., Host]) -> None:
    """Requests of a group are decided before the group is written, so a second request for the
    same patient would not see the first: a per-patient cap (the US exemption's one SMS a day)
    must still count it. The group is committed first and the second request decided again."""
    from support import BASE_CONFIG

    host = make_host(QUEUE, config_text=BASE_CONFIG.replace(
        'turnaround = "two business days"', 'turnaround = "two business days"\nus_healthcare_exemption = true'))
    outcomes = list(host.send_many([reminder("Patient/ny", rid="ny-1"), reminder("Patient/fl", rid="fl-1"),
                                    reminder("Patient/ny", rid="ny-2")], group=10))
    assert [o.channels for o in outcomes[:2]] == [("sms",), ("sms",)]
    assert "EXEMPTION_FREQUENCY" in {f.code for f in outcomes[2].findings} and outcomes[2].channels != ("sms",)
    assert [o.request_id for o in outcomes] == ["ny-1", "fl-1", "ny-2"]  # in order all the same


@pytest.mark.sqlite_only  # SQLite's own: its pragmas, its write lock
def test_a_group_holds_the_write_lock_only_to_write(make_host: Callable[..., Host]) -> None:
    """While a group's requests are being decided another connection (a worker process) can
    write: the group takes the lock when it writes, not for its whole run."""
    host = make_host(QUEUE)
    other = sqlite3.connect(host.config.store_path, timeout=0)  # no waiting: a held lock fails at once
    writes: list[str] = []
    real_find = host.plugins.find_recipient

    def find_and_write(request: object) -> object:
        other.execute("INSERT INTO meta (key, value) VALUES (?, 'x')", (f"worker-{len(writes)}",))
        other.commit()  # raises "database is locked" if the group held the lock now
        writes.append("ok")
        return real_find(request)  # type: ignore[arg-type]

    host.plugins.find_recipient = find_and_write  # type: ignore[method-assign]
    patients = ["Patient/on-en", "Patient/qc-fr"]
    outcomes = list(host.send_many([reminder(p, rid=f"w-{i}") for i, p in enumerate(patients)], group=2))
    other.close()
    assert writes == ["ok"] * 2 and [o.status for o in outcomes] == [Status.QUEUED] * 2


def test_a_failure_after_a_commit_inside_a_group_reports_what_that_commit_made_durable(
        make_host: Callable[..., Host]) -> None:
    """a and b share a patient, so a is committed before b is decided; when writing c then
    fails unexpectedly, a's outcome has already been yielded (it is durable), b and c are not."""
    host = make_host(QUEUE)
    outbox = host.storage.outbox
    real = outbox.put

    def failing(item: Any, **fields: Any) -> None:
        if item.request_id == "c":
            raise RuntimeError("disk trouble")
        real(item, **fields)

    outbox.put = failing  # type: ignore[method-assign]
    reported: list[str] = []
    with pytest.raises(RuntimeError, match="disk trouble"):
        for outcome in host.send_many([reminder("Patient/on-en", rid="a"), reminder("Patient/on-en", rid="b"),
                                       reminder("Patient/qc-fr", rid="c")], group=10):
            reported.append(outcome.request_id)
    assert reported == ["a"]
    assert [committed_outbox(host, rid) for rid in ("a", "b", "c")] == [1, 0, 0]


def test_one_request_id_for_two_patients_in_a_group_is_decided_once(make_host: Callable[..., Host]) -> None:
    """As with two sends one after the other: the second, which asks for another patient, is
    refused as an id used again (failed), whatever it would have decided on its own (here:
    blocked, no consent), and nothing is filed for it."""
    host = make_host(QUEUE)
    first, second = host.send_many([reminder("Patient/on-en", rid="x"), reminder("Patient/none", rid="x")],
                                   group=10)
    assert first.status is Status.QUEUED
    assert second.status is Status.FAILED and "id x was already used" in second.explanation[0]
    patients = {e["resource"]["subject"]["reference"] for e in host.records()["entry"]}
    assert patients == {"Patient/on-en"}


@pytest.mark.sqlite_only  # SQLite's own: its pragmas, its write lock
def test_a_group_that_sqlite_rolled_back_itself_writes_nothing_more(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path / "s.sqlite")
    errors: list[str] = []

    def attempt(write: Callable[[], None]) -> None:
        try:
            with store.transaction():
                write()
        except sqlite3.OperationalError as exc:
            errors.append(str(exc))

    def fails() -> None:
        store.meta.put("b", "1")
        store.db._db.execute("ROLLBACK")  # type: ignore[attr-defined]  # what SQLite itself does on SQLITE_FULL or I/O errors
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(sqlite3.OperationalError, match="rolled back by SQLite"), store.group_commit():
        store.meta.put("a", "1")
        attempt(fails)
        attempt(lambda: store.meta.put("c", "1"))  # would have committed on its own, outside the group
    assert errors[0] == "database or disk is full"  # the real error, not "no such savepoint"
    assert "rolled back by SQLite" in errors[1]
    assert [store.meta.get(k) for k in ("a", "b", "c")] == [None, None, None]
    store.meta.put("after", "1")  # the store is usable again
    assert store.meta.get("after") == "1"
    store.close()


@pytest.mark.sqlite_only  # SQLite's own: its pragmas, its write lock
def test_a_write_waits_for_another_processs_lock_and_gives_up_after_the_busy_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from emrcomm.storage import sqlite as store_module

    store = open_sqlite(tmp_path / "s.sqlite")
    other = sqlite3.connect(tmp_path / "s.sqlite", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process's group commit holds the write lock
    threading.Timer(0.05, other.execute, ("COMMIT",)).start()
    store.meta.put("waited", "1")  # waits for the lock rather than failing at once
    assert store.meta.get("waited") == "1"
    assert store.db.query("PRAGMA busy_timeout") == [{"timeout": 30_000}]  # restored for the rest
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.1)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.meta.put("never", "1")
    other.execute("ROLLBACK")
    other.close()
    store.close()
