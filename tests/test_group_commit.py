"""Durability settings and group commit: ``[store] synchronous``, and ``send_many`` in queue mode
sharing one commit among many requests without reporting any of them before that commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest

from emrcomm.config import load_config
from emrcomm.errors import ConfigError
from emrcomm.host import Host
from emrcomm.loader import discover
from emrcomm.model import Status
from support import BASE_CONFIG, write_config
from test_pipeline import ALL, reminder

QUEUE = '\n[delivery]\nmode = "queue"\n'


def committed_outbox(host: Host, request_id: str) -> int:
    """Rows for ``request_id`` that another connection sees: only committed ones."""
    with sqlite3.connect(host.config.store_path) as other:
        return int(other.execute("SELECT COUNT(*) FROM outbox WHERE request_id = ?", (request_id,)).fetchone()[0])


def test_store_synchronous_defaults_to_full(host: Host) -> None:
    assert host.config.store_synchronous == "full"
    assert host.store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_store_synchronous_normal_is_applied(make_host: Callable[..., Host]) -> None:
    host = make_host(config_text=BASE_CONFIG.replace('path = "emrcomm.sqlite"',
                                                     'path = "emrcomm.sqlite"\nsynchronous = "normal"'))
    assert host.store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert host.send(reminder()).status is Status.SENT


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
    assert host.store.outbox_counts() == {"pending": 1}


def test_a_failing_filer_in_a_group_undoes_its_request_only(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    order = [s.strip() for s in ALL.split(",")] + ['"brokenfiler"']
    extra = QUEUE + f"\n[plugins]\norder = [{', '.join(order)}]\n"
    eps = {**discover(), "brokenfiler": metadata.EntryPoint(name="brokenfiler", value="fakes:BrokenFiler",
                                                             group="emrcomm")}
    with Host(load_config(write_config(tmp_path, extra)), clock=clock, entry_points=eps) as host:
        outcomes = list(host.send_many([reminder(rid="a"), reminder(rid="b")]))
        assert [o.status for o in outcomes] == [Status.FAILED, Status.FAILED]
        assert host.store.outbox_counts() == {}  # nothing left to deliver, as with one send
        assert {e["resource"]["status"] for e in host.records()["entry"]} == {"not-done"}


def test_a_transaction_inside_a_group_that_raises_is_undone_alone(tmp_path: Path) -> None:
    from emrcomm.store import SQLiteStore

    store = SQLiteStore(tmp_path / "s.sqlite")
    with store.group_commit():
        store.meta_put("kept", "1")
        with pytest.raises(RuntimeError), store.transaction():
            store.meta_put("undone", "1")
            raise RuntimeError("a filer failed")
        assert store.meta_get("undone") is None
    assert store.meta_get("kept") == "1"
    with pytest.raises(RuntimeError), store.group_commit():
        store.meta_put("group-undone", "1")
        raise RuntimeError("the whole group fails")
    assert store.meta_get("group-undone") is None
    store.close()
