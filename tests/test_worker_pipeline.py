"""The outbox worker keeps its threads fed (claims ahead, no wait for a whole batch), gives back
rows it could not start in time, and keeps bounded statistics however long it runs; on
PostgreSQL its threads' settles share commits; the SMS client prepares a request before it asks
the rate limiter for a slot."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from emrcomm.host import Host
from emrcomm.model import Status
from emrcomm.outbox.worker import WINDOWS_KEPT, SharedCommits, Worker, WorkerSettings, WorkerStats
from emrcomm.storage.outbox import RELEASED, TAKEN_OVER, Item
from emrcomm_sms.http import ProviderClient
from emrcomm_sms.ratelimit import SenderLimits
from servers import Reply, ScriptedHTTPServer
from test_worker import QUEUE, let_leases_run_out, reminder, sink


def test_a_worker_with_small_claims_delivers_everything_in_several_claims(make_host: Callable[..., Host]) -> None:
    host = make_host(QUEUE)
    outcomes = [host.send(reminder(f"p-{i}")) for i in range(23)]
    assert {o.status for o in outcomes} == {Status.QUEUED}
    w = Worker(host, WorkerSettings(concurrency=2, claim_batch=3))
    claims: list[int] = []
    claim = w._claim

    def counting(limit: int) -> list[Item]:
        rows = claim(limit)
        claims.append(len(rows))
        return rows

    w._claim = counting
    stats = w.run(once=True)
    assert stats.sent == 23 and len(sink(host)) == 23
    assert host.storage.outbox.counts() == {}
    assert max(claims) <= 2 + 3 and sum(claims) == 23 and claims[-1] == 0


def test_a_slow_message_does_not_hold_back_the_other_threads(make_host: Callable[..., Host]) -> None:
    """While one thread is stuck on a message, the others keep taking new rows (the old worker
    waited for the whole batch of ``concurrency`` rows before claiming the next)."""
    host = make_host(QUEUE)
    for i in range(12):
        host.send(reminder(f"s-{i}"))
    w = Worker(host, WorkerSettings(concurrency=2, claim_batch=2))
    release = threading.Event()
    first = threading.Event()
    deliver = w.deliver

    def slow_first(row: Any) -> None:
        if not first.is_set():
            first.set()
            assert release.wait(30)
        deliver(row)

    w.deliver = slow_first
    runner = threading.Thread(target=w.run, kwargs={"once": True})
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while w.stats.sent < 11 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w.stats.sent == 11  # everything but the stuck message went meanwhile
    finally:
        release.set()
        runner.join(30)
    assert w.stats.sent == 12 and host.storage.outbox.counts() == {}


def test_a_row_held_too_long_is_given_back_unsent_and_sent_later(make_host: Callable[..., Host]) -> None:
    host = make_host(QUEUE)
    host.send(reminder("late-1"))
    w = Worker(host, WorkerSettings(lease_seconds=10))
    [row] = w._claim(5)
    w._deliver_claimed(attrs.evolve(row, held_until=time.monotonic() + 4))  # claimed more than an eighth of its lease ago
    assert sink(host) == [] and w.stats.released == 1
    [state] = host.storage.db.query("SELECT state, last_error, lease_owner, attempts FROM outbox")
    # given back as it was: due again, and the claim's attempt taken back (nothing was tried)
    assert (state["state"], state["last_error"], state["lease_owner"], state["attempts"]) == ("retry", RELEASED, None, 0)
    assert w.run(once=True).sent == 1 and len(sink(host)) == 1


def test_a_stopping_worker_gives_back_the_rows_it_has_not_started(make_host: Callable[..., Host]) -> None:
    host = make_host(QUEUE)
    for i in range(3):
        host.send(reminder(f"stop-{i}"))
    w = Worker(host)
    rows = w._claim(5)
    w.stop()
    for row in rows:
        w._deliver_claimed(row)
    assert sink(host) == [] and host.storage.outbox.counts() == {"retry": 3}
    assert Worker(host).run(once=True).sent == 3


def test_an_interrupted_worker_gives_back_the_rows_it_has_not_started(make_host: Callable[..., Host]) -> None:
    """Ctrl-C while run() waits for its threads: the claimed rows not yet started go back to
    the outbox instead of being sent while the pool drains."""
    host = make_host(QUEUE)
    for i in range(20):
        host.send(reminder(f"k-{i}"))
    w = Worker(host, WorkerSettings(concurrency=1, claim_batch=16))
    deliver = w.deliver

    def slowish(row: Any) -> None:
        time.sleep(0.05)
        deliver(row)

    def interrupted(*args: Any, **kwargs: Any) -> bool:
        raise KeyboardInterrupt

    w.deliver = slowish  # type: ignore[method-assign]
    w._changed.wait = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        w.run()
    sent = len(sink(host))
    assert sent <= 1 and w.stats.released >= 15  # at most the one being sent went
    counts = host.storage.outbox.counts()
    assert counts.get("sending", 0) == 0 and sum(counts.values()) == 20 - sent  # a sent row leaves the outbox


def test_a_taken_over_row_given_back_keeps_its_mark(make_host: Callable[..., Host], clock: Any) -> None:
    """A row taken over from a dead worker may have been sent before: giving it back unsent
    must not erase that, so the next claim still counts and reports it."""
    host = make_host(QUEUE)
    host.send(reminder("t-1"))
    dead = Worker(host, WorkerSettings(lease_seconds=1))
    [row] = dead._claim(1)  # the first worker dies holding it
    let_leases_run_out(host, clock, 1.1)
    w = Worker(host, WorkerSettings(lease_seconds=10))
    [row] = w._claim(1)
    assert row.last_error == TAKEN_OVER
    w.stop()
    w._deliver_claimed(row)
    [again] = Worker(host)._claim(1)
    assert again.last_error == TAKEN_OVER and again.attempts == 2


def test_crash_windows_are_bounded_and_the_max_is_kept() -> None:
    stats = WorkerStats()
    stats.count("sent", 5.0)
    for _ in range(WINDOWS_KEPT + 10):
        stats.count("sent", 0.001)
    assert len(stats.windows) == WINDOWS_KEPT and stats.sent == WINDOWS_KEPT + 11
    assert stats.as_dict()["crash_window_ms"] == {"p50": 1.0, "p99": 1.0, "max": 5000.0}


# -- the SMS client ----------------------------------------------------------------------------------

class _Limits(SenderLimits):
    def __init__(self, events: list[str]) -> None:
        super().__init__(1000, 10)
        self.events = events

    def acquire(self, sender: str) -> float:
        self.events.append("acquire")
        return super().acquire(sender)


@pytest.fixture
def server() -> Iterator[ScriptedHTTPServer]:
    s = ScriptedHTTPServer(Reply(201, b"{}"))
    yield s
    s.close()


def test_the_request_is_prepared_before_the_rate_limiter_gives_its_slot(server: ScriptedHTTPServer) -> None:
    events: list[str] = []
    client = ProviderClient("test", limits=_Limits(events), base_url=server.url, auth=("user", "secret"))
    prepare, exchange = client.prepare, client.exchange

    def preparing(*args: Any, **kwargs: Any) -> Any:
        events.append("prepare")
        return prepare(*args, **kwargs)

    def sending(prepared: Any) -> Any:
        events.append("send")
        return exchange(prepared)

    client.prepare = preparing  # type: ignore[method-assign]
    client.exchange = sending  # type: ignore[method-assign]
    server.script(Reply(429, b"{}", headers=(("Retry-After", "0"),)), Reply(201, b"{}"))
    try:
        response = client.request("POST", f"{server.url}/send", key="rec-1", sender="+16135550100",
                                  headers={"X-Key": "rec-1"}, data={"To": "+16135550401", "Body": "Hello"})
    finally:
        client.close()
    assert response.status_code == 201
    assert events == ["prepare", "acquire", "send", "acquire", "send"]
    first, again = server.seen
    assert first.body == again.body and first.form == {"To": ["+16135550401"], "Body": ["Hello"]}
    assert first.headers["X-Key"] == again.headers["X-Key"] == "rec-1"
    assert first.headers["Authorization"] == again.headers["Authorization"]


# -- settles share commits on PostgreSQL ---------------------------------------------------------


def settle_behind_a_held_commit(shared: SharedCommits, writes: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Settle "k0" with a write that holds its commit open until the ``writes`` (one thread
    each) are all waiting, then let it go; what each thread got, a result or an exception."""
    first_in, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def held() -> str:
        first_in.set()
        assert release.wait(30)
        shared.store.meta.put("k0", "v")
        return "k0"

    def settle(name: str, write: Callable[[], Any]) -> None:
        try:
            results[name] = shared.run(write)
        except BaseException as exc:  # the test records what each thread got
            results[name] = exc

    first = threading.Thread(target=settle, args=("k0", held))
    first.start()
    assert first_in.wait(30)
    others = [threading.Thread(target=settle, args=item) for item in writes.items()]
    for t in others:
        t.start()
    deadline = time.monotonic() + 30
    while len(shared._waiting) < len(writes) and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in (first, *others):
        t.join(30)
    return results


def test_settles_arriving_during_a_commit_share_the_next_one(make_host: Callable[..., Host]) -> None:
    store = make_host().storage
    commits: list[int] = []
    shared = SharedCommits(store, committed=lambda: commits.append(1))

    def put(name: str) -> Callable[[], str]:
        def write() -> str:
            store.meta.put(name, "v")
            if name == "bad":
                raise RuntimeError("a filer failed")
            return name
        return write

    results = settle_behind_a_held_commit(shared, {n: put(n) for n in ("k1", "bad", "k2")})
    assert results["k0"] == "k0" and results["k1"] == "k1" and results["k2"] == "k2"
    assert isinstance(results["bad"], RuntimeError)
    assert len(commits) == 2  # the first alone, then the three that waited for it, together
    assert [store.meta.get(k) for k in ("k0", "k1", "k2", "bad")] == ["v", "v", "v", None]


def test_a_failed_shared_commit_fails_every_settle_in_it(make_host: Callable[..., Host]) -> None:
    store = make_host().storage
    commits: list[int] = []
    shared = SharedCommits(store, committed=lambda: commits.append(1))
    armed = [True]

    def disk_full() -> None:
        if armed[0]:
            raise OSError("No space left on device")

    store.before_commit(disk_full)
    results = settle_behind_a_held_commit(shared, {"k1": lambda: store.meta.put("k1", "v")})
    armed[0] = False
    assert isinstance(results["k0"], OSError) and isinstance(results["k1"], OSError)
    assert store.meta.get("k0") is None and store.meta.get("k1") is None and commits == []


def test_a_settle_raising_systemexit_is_undone_alone_and_raised_in_its_own_thread(
        make_host: Callable[..., Host]) -> None:
    store = make_host().storage
    shared = SharedCommits(store)

    def exits() -> None:  # a filer plugin calling sys.exit, say
        store.meta.put("exits", "v")
        raise SystemExit(3)

    def fine() -> str:
        store.meta.put("fine", "v")
        return "fine"

    results = settle_behind_a_held_commit(shared, {"exits": exits, "fine": fine})
    assert isinstance(results["exits"], SystemExit) and results["fine"] == "fine" and results["k0"] == "k0"
    assert store.meta.get("fine") == "v" and store.meta.get("exits") is None


def test_the_worker_shares_settle_commits_on_postgresql_and_commits_each_alone_on_sqlite(
        make_host: Callable[..., Host], backend: str) -> None:
    host = make_host(QUEUE)
    for i in range(6):
        host.send(reminder(f"c-{i}"))
    w = Worker(host, WorkerSettings(concurrency=1))  # one thread: a group is one settle either way
    assert (w.shared is not None) == (backend == "postgresql")
    stats = w.run(once=True)
    assert stats.sent == 6 and stats.settle_commits == 6 and stats.as_dict()["settle_commits"] == 6
