"""The outbox worker (``emrcomm worker``): delivers what waits in the outbox with the same
routine as an inline send (emrcomm.pipeline.deliver): retries, backoff, dead letters, holds
released when their time comes, expiry, and the opt-out re-check. docs/operations.md runs it.

Each row is leased to one worker in one claim, so two workers never hold the same row; a worker
that dies leaves its rows 'sending' until the lease runs out (by the database server's clock on
PostgreSQL), then another takes them over and sends them again with the same idempotency key
(the record id). A worker counts what is left of its own leases on its monotonic clock. On
PostgreSQL the settles of a worker's threads share commits (SharedCommits): one hold of the
audit chain's lock for several. A send that does not return within ``send_timeout`` is
abandoned in its thread (emrcomm.pipeline.watch): another thread takes its place, its row stays
leased, and its channel is put off until a send on it returns.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from attrs import define, field, frozen

from emrcomm.lifecycle.events import Source
from emrcomm.pipeline.deliver import RetryPolicy, deliver, unreadable_record
from emrcomm.pipeline.watch import HELD_SHARE, Sending
from emrcomm.storage.outbox import RELEASED, Item
from emrcomm.storage.records import RecordUnreadable

if TYPE_CHECKING:
    from emrcomm.host import Host
    from emrcomm.storage import Storage

log = logging.getLogger("emrcomm.worker")

__all__ = ["HELD_SHARE", "SharedCommits", "Worker", "WorkerSettings", "WorkerStats"]

WINDOWS_KEPT = 10_000  # crash windows kept for the percentiles (the most recent ones)


@frozen
class WorkerSettings:
    """``[delivery]`` settings the worker reads (schemas/config.schema.json documents them)."""

    max_attempts: int = 8
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0
    concurrency: int = 4
    lease_seconds: float = 120.0
    poll_seconds: float = 1.0
    # Rows claimed at a time while the threads still hold ``concurrency`` of them (0: the larger
    # of ``concurrency`` and 16). Not a config key. A claim is one commit; a row not started
    # within lease_seconds / 8 of its claim is given back.
    claim_batch: int = 0

    @classmethod
    def from_config(cls, delivery: Mapping[str, Any], concurrency: int | None = None) -> WorkerSettings:
        return cls(
            max_attempts=int(delivery.get("max_attempts", 8)),
            backoff_base=float(delivery.get("backoff_base", 30.0)),
            backoff_cap=float(delivery.get("backoff_cap", 3600.0)),
            concurrency=int(concurrency or delivery.get("concurrency", 4)),
            lease_seconds=float(delivery.get("lease_seconds", 120.0)),
            poll_seconds=float(delivery.get("poll_seconds", 1.0)),
        )


@define
class WorkerStats:
    """What one worker did; ``windows`` are the crash windows measured (seconds between the
    transport's answer and the commit that marks the row sent)."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    expired: int = 0
    cancelled: int = 0  # the patient opted out after the row was queued: not sent
    held: int = 0  # due, but its sending window was closed (QUIET_HOURS): held until it opens
    # Rows found 'sending' under an expired lease: possibly sent before (a dead worker's rows in
    # flight), or only claimed (the rows it held for its threads; see Worker.run).
    taken_over: int = 0
    lost_lease: int = 0
    released: int = 0  # claimed rows given back unsent because they waited too long in hand
    # Sends that did not return within send_timeout: their threads were abandoned, their rows left
    # leased (taken over when the lease runs out).
    hung: int = 0
    put_off: int = 0  # rows given back unsent because a send on their channel hung
    newer: int = 0  # rows written by a newer release, given back unsent for a worker that reads them
    # Rows decided more than recheck_after ago whose patient the directory could not be asked
    # about again: given back unsent, for a later try.
    unchecked: int = 0
    # Rows whose delivery raised (a bug, a privilege the role lacks): left leased, taken over
    # when the lease runs out, as a dead worker's.
    errors: int = 0
    # Messages sent whose record the database refused to write (SQLSTATE class 42: a privilege the
    # role lacks): not tried again for the lease; their rows removed, their records in progress.
    unrecorded: int = 0
    # Commits that recorded how deliveries ended: one per settle on SQLite; on PostgreSQL fewer,
    # as settles share them (SharedCommits).
    settle_commits: int = 0
    # The most recent windows only (a worker runs for months): p50 and p99 are of these; the
    # max is of every window since the worker started.
    windows: deque[float] = field(factory=lambda: deque(maxlen=WINDOWS_KEPT))
    window_max: float | None = None
    _lock: threading.Lock = field(factory=threading.Lock, repr=False)

    def count(self, what: str, window: float | None = None) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)
            if window is not None:
                self.windows.append(window)
                self.window_max = window if self.window_max is None else max(self.window_max, window)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            ordered = sorted(self.windows)
            most = self.window_max

        def pct(p: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 3) if ordered else None

        return {"sent": self.sent, "retried": self.retried, "dead": self.dead, "expired": self.expired, "cancelled": self.cancelled,
                "held": self.held,
                "taken_over": self.taken_over, "lost_lease": self.lost_lease, "released": self.released,
                "hung": self.hung, "put_off": self.put_off, "newer": self.newer, "unchecked": self.unchecked,
                "errors": self.errors,
                "unrecorded": self.unrecorded,
                "settle_commits": self.settle_commits,
                "crash_window_ms": {"p50": pct(0.5), "p99": pct(0.99),
                                    "max": None if most is None else round(most * 1000, 3)}}


class SharedCommits:
    """The settles of one worker's threads share commits (PostgreSQL): one commit, and one hold
    of the audit chain's lock with one signature, for every settle that arrived while the
    previous commit was being made. Every commit chains its audit entries under one database-wide
    lock held until the commit is done (docs/audit.md); a commit per settle made the fleet queue
    on it (docs/performance.md, "Many workers on PostgreSQL").

    ``run(write)`` returns once ``write``'s effects are durable (or raises what it raised, or
    what the commit raised). The first thread to find no commit under way commits every write
    waiting, each in its own savepoint (a write that raises is undone alone); the others wait
    for it, and one of them then commits whatever arrived meanwhile. Nothing waits on a timer:
    a group is what queued up behind the commit before it, at most one settle per thread.
    """

    def __init__(self, store: Storage, *, committed: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self._committed = committed  # called after each commit (the worker counts them)
        self._waiting: list[_Write] = []
        self._queue = threading.Lock()
        self._committing = threading.Lock()

    def run(self, write: Callable[[], Any]) -> Any:
        mine = _Write(write)
        with self._queue:
            self._waiting.append(mine)
        try:
            self._committing.acquire()
        except BaseException:  # interrupted while waiting: not written, unless a commit has it
            with self._queue:
                self._waiting = [each for each in self._waiting if each is not mine]
            raise
        try:
            if not mine.done:
                with self._queue:
                    group, self._waiting = self._waiting, []
                self._commit(group)
        finally:
            self._committing.release()
        if mine.error is not None:
            raise mine.error
        return mine.result

    def _commit(self, group: list[_Write]) -> None:
        try:
            with self.store.group_commit():
                for each in group:
                    try:
                        with self.store.transaction():  # a savepoint inside the group
                            each.result = each.write()
                    except BaseException as exc:  # undone alone; raised in its own thread only
                        each.result, each.error = None, exc
            self._committed()
        except BaseException as exc:  # the commit itself failed: nothing of the group is durable
            for each in group:
                if each.error is None:
                    each.result = None
                    if isinstance(exc, Exception):
                        each.error = exc
                    else:  # an interrupt belongs to the thread it hit (this one), not to the others
                        each.error = RuntimeError(f"the shared commit was interrupted ({type(exc).__name__})")
                        each.error.__cause__ = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            for each in group:
                each.done = True


@define
class _Write:
    write: Callable[[], Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = False


class Worker:
    """Delivers due outbox rows of ``host`` with ``settings.concurrency`` threads.

    ::

        with Host.from_config(path) as host:
            Worker(host).run(once=True)
    """

    def __init__(
        self,
        host: Host,
        settings: WorkerSettings | None = None,
        *,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host = host
        self.settings = settings or WorkerSettings.from_config(host.config.raw.get("delivery", {}))
        self.policy = RetryPolicy(self.settings.max_attempts, self.settings.backoff_base, self.settings.backoff_cap)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = WorkerStats()
        self._rand = rand
        self._sleep = sleep
        self._stop = threading.Event()
        self._changed = threading.Condition()  # a row in hand was settled, or stop() was called
        self._settled = threading.Event()  # a row in hand was settled (what stopping waits for)
        self._in_hand = 0  # rows claimed by run() and not yet settled (being sent, or waiting for a thread)
        self._rows: queue.SimpleQueue[Item | None] = queue.SimpleQueue()  # rows in hand, for the threads
        self._threads: set[threading.Thread] = set()  # the delivery threads, hung ones excepted
        self._abandoned: dict[int, Sending] = {}  # by thread ident: sends found hung, not returned yet
        self._put_off: dict[str, float] = {}  # channel -> monotonic end of its pause after a hung send
        self._probing: set[str] = set()  # paused channels with one send being tried
        self._names = itertools.count(1)
        listen = getattr(host.storage.db, "listen", None)
        self._listener: Any = listen() if callable(listen) else None
        # SQLite has one writer and no chain lock to share: each settle commits on its own there.
        self.shared = (SharedCommits(host.storage, committed=lambda: self.stats.count("settle_commits"))
                       if host.storage.db.dialect == "postgresql" else None)

    def stop(self) -> None:
        """Finish the messages being sent, give back the rows not started, then return from
        :meth:`run`. A send that has not returned within ``send_timeout`` is not waited for: its
        row stays leased and is taken over when the lease runs out."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def run(self, *, once: bool = False) -> WorkerStats:
        """Deliver until stopped; with ``once``, until nothing is due now.

        A claim that fails (the database unavailable: its server away, a lock held elsewhere past
        ``store.lock_timeout``; or any other error, such as a privilege the role lacks) is tried
        again every ``poll_seconds``; with ``once`` its error is raised instead (``worker --once``
        exits 4, or 2 for a statement the server refuses), so that a run from cron or a script
        reports it rather than trying for ever.

        The threads never wait for one another: while they still hold ``concurrency`` claimed
        rows, the next ``claim_batch`` are claimed (one commit), so a thread that finishes a
        message takes the next one at once. A rate-limited transport's schedule is therefore
        not stalled between batches by the slowest message of a batch and the claim after it.

        A send found hung (emrcomm.pipeline.watch) no longer counts among the rows in hand: a
        new thread takes the place of its own (up to ``concurrency`` hung at once), and its
        channel's rows are put off until a send on it returns (one is tried every
        ``send_timeout``). The threads are daemons: a hung one does not keep the process alive.
        """
        concurrency = self.settings.concurrency
        batch = self.settings.claim_batch or max(concurrency, 16)
        self._in_hand = 0
        self._rows = queue.SimpleQueue()
        if self._listener is not None:
            self._listener.open()
        self.host.sends.listen(self._hung)
        try:
            for _ in range(concurrency):
                self._start_thread()
            try:
                self._feed(once, batch)
            except BaseException:
                # Ctrl-C or an error: the rows not yet started are given back rather than sent
                # while the threads drain (as on stop()).
                self._stop.set()
                raise
            finally:
                self._drain()
        finally:
            self.host.sends.unlisten(self._hung)
            if self._listener is not None:
                self._listener.close()
        return self.stats

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._serve, name=f"emrcomm-worker-{next(self._names)}", daemon=True)
        with self._changed:
            self._threads.add(thread)
        thread.start()

    def _serve(self) -> None:
        """A delivery thread: the rows put in hand, one at a time, until told to end (None) or
        abandoned (its send was found hung: another thread has taken its place)."""
        me = threading.current_thread()
        while True:
            row = self._rows.get()
            if row is None:
                with self._changed:
                    self._threads.discard(me)
                    self._changed.notify_all()
                return
            try:
                self._deliver_claimed(row)
            finally:
                with self._changed:
                    abandoned = self._abandoned.pop(me.ident or 0, None)
                    if abandoned is None:
                        self._in_hand -= 1
                    self._settled.set()
                    self._changed.notify_all()
            if abandoned is not None:
                return

    def _hung(self, sending: Sending) -> None:
        """The watch found a send hung: if it is one of this worker's threads, stop counting its
        row in hand, put its channel off, and start a thread in its place."""
        with self._changed:
            thread = next((t for t in self._threads if t.ident == sending.thread), None)
            if thread is None or sending.thread in self._abandoned:
                return
            self._threads.discard(thread)
            self._abandoned[sending.thread] = sending
            self._in_hand -= 1
            self._settled.set()
            self._probing.discard(sending.channel)
            self._put_off[sending.channel] = time.monotonic() + max(sending.bound, self.settings.poll_seconds)
            # Never none left: the rows in hand must be sent or given back, even when stopping.
            replace = (len(self._abandoned) <= self.settings.concurrency and not self._stop.is_set()) or not self._threads
            self._changed.notify_all()
        self.stats.count("hung")
        if replace:
            self._start_thread()
        else:
            log.error("worker: %d sends hung at once; delivering with fewer threads until one returns",
                      len(self._abandoned))

    def _drain(self) -> None:
        """Wait for the rows in hand (each sent, given back, or found hung), then end the threads."""
        while True:
            with self._changed:
                if self._in_hand <= 0:
                    threads = list(self._threads)
                    break
                self._settled.clear()
            self._settled.wait(self.settings.poll_seconds)
        for _ in threads:
            self._rows.put(None)
        for thread in threads:
            thread.join()
        if self._abandoned:
            log.error("worker: stopping with %d sends hung (outbox %s); their rows stay leased and are taken "
                      "over when their leases run out", len(self._abandoned),
                      ", ".join(s.key for s in self._abandoned.values()))

    def _feed(self, once: bool, batch: int) -> None:
        concurrency = self.settings.concurrency
        while not self._stop.is_set():
            with self._changed:
                while self._in_hand > concurrency and not self._stop.is_set():
                    self._changed.wait(self.settings.poll_seconds)
                room = concurrency + batch - self._in_hand
            if self._stop.is_set():
                break
            try:
                rows = self._claim(room)
            except Exception as exc:  # the database away (a network cut, a failover): try again
                if once:  # cron, a timer or a script: told now (exit 4, or 2), and it runs again later
                    log.error("outbox: claim failed (%s); stopping (--once)", type(exc).__name__)
                    raise
                log.error("outbox: claim failed (%s); trying again", type(exc).__name__)
                self._stop.wait(self.settings.poll_seconds)
                continue
            if rows:
                with self._changed:
                    self._in_hand += len(rows)
                for row in rows:
                    self._rows.put(row)
                continue
            with self._changed:
                if self._in_hand:  # a row in hand may release a later leg: look again when one is done
                    self._changed.wait(self.settings.poll_seconds)
                    continue
            if once:
                break
            self._idle()

    def _idle(self) -> None:
        """Nothing due: wait ``poll_seconds``, or less when the database says a row was put in
        the outbox (PostgreSQL's LISTEN/NOTIFY) or stop() is called."""
        if self._listener is None:
            self._stop.wait(self.settings.poll_seconds)
            return
        deadline = time.monotonic() + self.settings.poll_seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._listener.wait(min(left, 0.2)):  # short waits: stop() is seen at once
                return

    def _claim(self, limit: int) -> list[Item]:
        return self.host.storage.outbox.claim(owner=self.owner, now=self.host.clock(),
                                              lease=dt.timedelta(seconds=self.settings.lease_seconds), limit=limit)

    def _deliver_claimed(self, row: Item) -> None:
        """Deliver a claimed row, unless it waited in hand so long that its lease might run out
        during the send (another worker could then take it over and send it a second time), or
        the worker is stopping: then it is given back, unsent, for the next claim. A row whose
        channel has a hung send is given back too, due again once the channel's pause is over;
        after the pause one of its rows at a time is tried, until a send on it returns."""
        left = row.held_until - time.monotonic() if row.held_until is not None else 0.0
        later = None
        if not self._stop.is_set() and left >= self.settings.lease_seconds * (1 - HELD_SHARE):
            later = self._channel_paused(row.channel)
            if later is None:
                try:
                    self.deliver(row)
                finally:
                    with self._changed:
                        if row.channel in self._probing and threading.get_ident() not in self._abandoned:
                            # the channel answered: its rows go again
                            self._probing.discard(row.channel)
                            self._put_off.pop(row.channel, None)
                return
        why = RELEASED if later is None else f"put off: a send on channel {row.channel} did not return"
        not_before = None if later is None else self.host.clock() + dt.timedelta(seconds=later)
        try:
            self.host.storage.outbox.release(row.key, owner=self.owner, now=self.host.clock(), error=why,
                                             not_before=not_before)
            self.stats.count("released" if later is None else "put_off")
            log.info("outbox %s: %s", row.key, why)
        except Exception as exc:  # left to lease takeover, like any row of a worker in trouble
            log.error("outbox %s: could not give back an unsent row (%s)", row.key, type(exc).__name__)

    def _channel_paused(self, channel: str) -> float | None:
        """None when a row of ``channel`` may be sent now; else the seconds to put it off. A
        channel with a hung send is paused for one ``send_timeout``; then one send at a time is
        tried on it (none while ``concurrency`` sends are hung) until one returns."""
        with self._changed:
            until = self._put_off.get(channel)
            if until is None:
                return None
            wait = until - time.monotonic()
            if wait > 0:
                return wait
            if channel in self._probing or len(self._abandoned) >= self.settings.concurrency:
                # Not every poll: a busy channel's rows would be claimed and given back again and again.
                return max(self.host.sends.bound, self.settings.poll_seconds)
            self._probing.add(channel)
            return None

    def run_batch(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Claim up to ``concurrency`` due rows and deliver them all; returns how many were
        claimed. (:meth:`run` does not wait for a whole batch: it keeps its threads fed.)"""
        rows = self._claim(self.settings.concurrency)
        if pool is None or len(rows) == 1:
            for row in rows:
                self.deliver(row)
        else:
            list(pool.map(self.deliver, rows))
        return len(rows)

    # one row -------------------------------------------------------------------------------------
    def deliver(self, row: Item) -> None:
        """Deliver one claimed row (emrcomm.pipeline.deliver); its settle is one durable commit,
        shared with the other threads' settles on PostgreSQL (SharedCommits)."""
        try:
            if row.taken_over:
                self.stats.count("taken_over")
            try:
                facts = self.host.storage.records.facts(row.key)
            except RecordUnreadable as exc:
                done = unreadable_record(self.host, row, exc, owner=self.owner, source=Source.WORKER,
                                         policy=self.policy, commit=self._commit)
            else:
                done = deliver(self.host, row, facts, owner=self.owner, source=Source.WORKER,
                               policy=self.policy, commit=self._commit, rand=self._rand, record_while_leased=True)
            if done.result == "accepted":
                self.stats.count("sent" if done.kept else "lost_lease", done.window if done.kept else None)
                if done.not_recorded is not None:
                    self.stats.count("unrecorded")
            else:
                self.stats.count({"retry": "retried", "undeliverable": "dead"}.get(done.result, done.result))
        except Exception as exc:  # never lose the thread: the row stays leased until another takes it over
            self.stats.count("errors")
            log.error("outbox %s: worker error %s; left to lease takeover", row.key, type(exc).__name__)
            log.debug("outbox %s: worker error", row.key, exc_info=True)

    def _commit(self, write: Callable[[], Any]) -> Any:
        if self.shared is not None:
            return self.shared.run(write)
        with self.host.storage.transaction():
            result = write()
        self.stats.count("settle_commits")
        return result
