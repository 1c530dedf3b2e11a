"""The outbox worker (``emrcomm worker``): delivers what the host left in the outbox, with
retries, backoff, dead letters, quiet-hours release and expiry. docs/operations.md runs it.

Each row is leased to one worker in one UPDATE … RETURNING, so two workers never hold the same
row; a worker that dies leaves its rows 'sending' until the lease runs out, then another takes
them over and sends them again with the same idempotency key (the record id).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import attrs
from attrs import define, field, frozen

from emrcomm import fhir
from emrcomm.delivery import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from emrcomm.model import Finding, Message, Record, Request, Severity
from emrcomm.rules import finding
from emrcomm.store import TAKEN_OVER, Store  # TAKEN_OVER: what outbox_claim writes in last_error

if TYPE_CHECKING:
    from emrcomm.host import Host

log = logging.getLogger("emrcomm.worker")

RELEASED = "released unsent by a busy or stopping worker"
MAX_CLAIM = 256  # rows claimed at once, at most (see WorkerSettings.claim_batch)
# A claimed row starts its send within this share of its lease, or is given back: the rest of
# the lease (7/8) must cover the send itself (docs/operations.md: lease_seconds).
HELD_SHARE = 1 / 8
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
    # Seconds a settle waits for the other threads' settles before committing, when they are
    # still sending (PostgreSQL's commit_delay): one fsync and one signature for several.
    commit_delay: float = 0.001
    # Rows claimed at a time while the threads still hold ``concurrency`` of them. 0 (the
    # default) adapts it: it starts at max(concurrency, 16) and doubles (up to 256) while a
    # claim's rows are gone within lease_seconds / 32, halves when they take over
    # lease_seconds / 16 (a row not started within lease_seconds / 8 is given back). Not a
    # config key. Fewer, larger claims cost less (a claim is one commit), and rows in hand
    # never wait long enough to risk their lease.
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
            commit_delay=float(delivery.get("commit_delay", 0.001)),
        )


def backoff(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): ``base * 2**(attempt-1)``
    capped at ``cap``, then jittered down to 50-100 % so that retries of one outage spread out."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling * (0.5 + rand() / 2)


@define
class WorkerStats:
    """What one worker did; ``windows`` are the crash windows measured (seconds between the
    transport's answer and the commit that marks the row sent)."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    expired: int = 0
    # Rows found 'sending' under an expired lease: possibly sent before (a dead worker's rows in
    # flight), or only claimed (the rows it held for its threads; see Worker.run).
    taken_over: int = 0
    lost_lease: int = 0
    released: int = 0  # claimed rows given back unsent because they waited too long in hand
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

        return {"sent": self.sent, "retried": self.retried, "dead": self.dead, "expired": self.expired,
                "taken_over": self.taken_over, "lost_lease": self.lost_lease, "released": self.released,
                "crash_window_ms": {"p50": pct(0.5), "p99": pct(0.99),
                                    "max": None if most is None else round(most * 1000, 3)}}


class SharedCommits:
    """Settles from the delivery threads share commits: one fsync and one audit signature for
    every settle that arrived while the previous commit was being made.

    ``run(write)`` returns once ``write``'s effects are durable (or raises what it raised, or
    what the commit raised). The first thread to find no commit under way makes one for every
    write waiting, each in its own savepoint (a write that raises is undone alone); the others
    wait for it, and one of them commits whatever arrived meanwhile. When ``others()`` (threads
    still sending) exceeds the writes waiting, the committing thread first sleeps ``delay``
    seconds so that their settles join this commit: the other threads use the CPU meanwhile,
    and the group costs one commit instead of several. A thread alone commits at once.
    """

    def __init__(self, store: Store, *, delay: float = 0.0, others: Callable[[], int] = lambda: 0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.delay = delay
        self.others = others
        self._sleep = sleep
        self._waiting: list[_Write] = []
        self._queue = threading.Lock()
        self._committing = threading.Lock()
        self.commits = 0  # commits made, for the statistics: writes / commits = the group size

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
                if self.delay and self.others() > len(self._waiting):
                    self._sleep(self.delay)
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
            self.commits += 1
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
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = WorkerStats()
        self._rand = rand
        self._sleep = sleep
        self._stop = threading.Event()
        self._changed = threading.Condition()  # a row in hand was settled, or stop() was called
        self._in_hand = 0  # rows claimed by run() and not yet settled (being sent, or waiting for a thread)
        self._sending = 0  # threads delivering a row now (their settles may come soon)
        self._sending_lock = threading.Lock()
        self._settles = SharedCommits(host.store, delay=self.settings.commit_delay, others=lambda: self._sending)

    def stop(self) -> None:
        """Finish the messages being sent, give back the rows not started, then return from
        :meth:`run`."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def run(self, *, once: bool = False) -> WorkerStats:
        """Deliver until stopped; with ``once``, until nothing is due now.

        The threads never wait for one another: while they still hold ``concurrency`` claimed
        rows, the next ``claim_batch`` are claimed (one commit), so a thread that finishes a
        message takes the next one at once. A rate-limited transport's schedule is therefore
        not stalled between batches by the slowest message of a batch and the claim after it.
        """
        concurrency = self.settings.concurrency
        batch = self.settings.claim_batch or max(concurrency, 16)
        self._in_hand = 0

        def settled(_: object) -> None:
            with self._changed:
                self._in_hand -= 1
                self._changed.notify_all()

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="emrcomm-worker") as pool:
            try:
                self._feed(pool, once, batch, settled)
            except BaseException:
                # Ctrl-C or an error: the rows not yet started are given back rather than sent
                # while the pool drains (as on stop()).
                self._stop.set()
                raise
        return self.stats

    def _feed(self, pool: ThreadPoolExecutor, once: bool, batch: int, settled: Callable[[object], None]) -> None:
        concurrency, lease = self.settings.concurrency, self.settings.lease_seconds
        last_claim: float | None = None
        while not self._stop.is_set():
            with self._changed:
                while self._in_hand > concurrency and not self._stop.is_set():
                    self._changed.wait(self.settings.poll_seconds)
                room = concurrency + batch - self._in_hand
            if self._stop.is_set():
                break
            claimed = time.monotonic()  # before the claim: waiting for the lock uses the lease too
            rows = self._claim(room)
            if rows:
                if not self.settings.claim_batch and last_claim is not None:
                    took = claimed - last_claim  # the previous claim's rows, all but `concurrency`
                    if took < lease * HELD_SHARE / 4:
                        batch = min(MAX_CLAIM, batch * 2)
                    elif took > lease * HELD_SHARE / 2:  # well before rows would be given back
                        batch = max(concurrency, batch // 2)
                last_claim = claimed
                with self._changed:
                    self._in_hand += len(rows)
                for row in rows:
                    pool.submit(self._deliver_claimed, row, claimed).add_done_callback(settled)
                continue
            with self._changed:
                if self._in_hand:  # a row in hand may release a later leg: look again when one is done
                    self._changed.wait(self.settings.poll_seconds)
                    continue
            if once:
                break
            self._stop.wait(self.settings.poll_seconds)

    def _claim(self, limit: int) -> list[dict[str, Any]]:
        now = self.host.clock()
        return self.host.store.outbox_claim(
            owner=self.owner, now=now, lease_until=now + dt.timedelta(seconds=self.settings.lease_seconds),
            limit=limit,
        )

    def _deliver_claimed(self, row: Mapping[str, Any], claimed: float) -> None:
        """Deliver a row claimed at ``claimed`` (monotonic), unless it waited in hand so long that
        its lease might run out during the send (another worker could then take it over and send
        it a second time), or the worker is stopping: then it is given back, unsent, for the
        next claim."""
        if not self._stop.is_set() and time.monotonic() - claimed <= self.settings.lease_seconds * HELD_SHARE:
            self.deliver(row)
            return
        try:
            self.host.store.outbox_release(row["key"], owner=self.owner, now=self.host.clock(), error=RELEASED)
            self.stats.count("released")
            log.info("outbox %s: %s", row["key"], RELEASED)
        except Exception as exc:  # left to lease takeover, like any row of a worker in trouble
            log.error("outbox %s: could not give back an unsent row (%s)", row["key"], type(exc).__name__)

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
    def deliver(self, row: Mapping[str, Any]) -> None:
        progress: dict[str, Any] = {}
        with self._sending_lock:
            self._sending += 1
        try:
            self._deliver(row, progress)
        except Exception as exc:  # never lose the thread
            log.error("outbox %s: worker error %s", row["key"], type(exc).__name__)
            log.debug("outbox %s: worker error", row["key"], exc_info=True)
            try:
                if "receipt" in progress:  # the provider has it: never send it again
                    self._after_send_failed(row, progress, exc)
                else:
                    self._worker_error(row, exc)
            except Exception as again:
                # Nothing more can be written now: the row stays 'sending' until its lease runs
                # out and another worker takes it over.
                log.error("outbox %s: could not settle after a worker error (%s); left to lease takeover",
                          row["key"], type(again).__name__)
        finally:
            with self._sending_lock:
                self._sending -= 1

    def _worker_error(self, row: Mapping[str, Any], exc: BaseException) -> None:
        """An error before the provider accepted the message: retried, then dead-lettered."""
        attempts = int(row["attempts"])
        now = self.host.clock()
        error = f"worker error: {type(exc).__name__}"
        if attempts < self.settings.max_attempts:
            wait = backoff(attempts, self.settings.backoff_base, self.settings.backoff_cap, self._rand)
            self.host.store.outbox_settle(row["key"], owner=self.owner, state="retry", now=now,
                                          not_before=now + dt.timedelta(seconds=wait), error=error)
            self.stats.count("retried")
            return
        try:
            payload = json.loads(row["payload"])
            request = _parse_request(payload)
        except Exception:  # the row itself is unreadable: no record can be filed for it
            store = self.host.store
            with store.transaction():
                store.outbox_settle(row["key"], owner=self.owner, state="dead", now=now, error=error)
                for later in store.outbox_later_legs(row["key"]):
                    store.outbox_set_state(later["key"], state="dead", now=now, error="an earlier leg was not sent")
            self.stats.count("dead")
            return
        trail = self.host.audit.trail(request=request.id, patient=request.patient_ref)
        self._finish(row, payload, request, trail, state="dead", reason="DELIVERY_FAILED",
                     error=f"{error}: gave up after {attempts} attempts")

    def _after_send_failed(self, row: Mapping[str, Any], progress: Mapping[str, Any], exc: BaseException) -> None:
        """The transport accepted the message but the bookkeeping after it failed: the row is
        settled 'sent' all the same (a retry would send the message twice)."""
        host, store, key = self.host, self.host.store, row["key"]
        receipt = progress["receipt"]
        if not progress.get("settled"):
            try:  # once more, whole (with a fresh trail: the failed one still holds its entries)
                request = progress["request"]
                trail = host.audit.trail(request=request.id, patient=request.patient_ref)
                self._settle_sent(row, progress["done"], trail, progress["channel"], receipt)
            except Exception:
                log.error("outbox %s: sent, but its outcome could not be filed or audited (%s)",
                          key, type(exc).__name__)
                store.outbox_settle(key, owner=self.owner, state="sent", now=host.clock(),
                                    provider_id=receipt.provider_id, error=f"sent; worker error: {type(exc).__name__}")
            self.stats.count("sent")
        self._release_later_legs(key)

    def _settle_sent(self, row: Mapping[str, Any], done: Record, trail: Any, channel: str, receipt: Any) -> bool:
        """Mark the row sent, file the completed record, audit it and release the request's later
        legs (a portal message's notice): one transaction, whose commit it shares with the other
        threads' settles (see SharedCommits)."""
        host = self.host

        def write() -> bool:
            kept = host.store.outbox_settle(row["key"], owner=self.owner, state="sent", now=host.clock(),
                                            provider_id=receipt.provider_id)
            trail.add("sent", record=row["record_id"], channel=channel, provider_id=receipt.provider_id)
            self._file(done, trail)
            trail.flush()
            self._release_later_legs(row["key"])  # with the mark: a crash cannot leave them waiting
            return bool(kept)

        return bool(self._settles.run(write))

    def _release_later_legs(self, key: str) -> None:
        host = self.host
        for later in host.store.outbox_later_legs(key):
            if later["state"] == "waiting":
                host.store.outbox_set_state(later["key"], state="pending", now=host.clock())

    def _deliver(self, row: Mapping[str, Any], progress: dict[str, Any]) -> None:
        from emrcomm.host import payload_text

        host = self.host
        key = row["key"]
        payload = json.loads(row["payload"])
        request = _parse_request(payload)
        trail = host.audit.trail(request=request.id, patient=request.patient_ref)
        if row.get("last_error") == TAKEN_OVER:
            self.stats.count("taken_over")
            log.warning("outbox %s: taken over from a worker whose lease ran out; sending again", key)
        now = host.clock()
        channel = host.channels.get(row["channel"])
        if request.expires is not None and request.expires <= now:
            self._finish(row, payload, request, trail, state="expired", reason="MESSAGE_EXPIRED",
                         error="expired before delivery")
            return
        if channel is None:
            self._finish(row, payload, request, trail, state="dead", reason="DELIVERY_FAILED",
                         error=f"channel {row['channel']!r} is not registered")
            return
        message = Message(
            request=request,
            text="" if payload.get("sealed") else payload_text(payload, host.channels) or "",
            language=payload.get("language", "en"),
            subject=payload.get("subject"),
            html=None if payload.get("sealed") else payload_text(payload, host.channels, "html"),
            attachments=request.attachments,
            template=payload.get("template"),
        )
        revoked_by = self._revocation(channel.name, channel.address_system, payload)
        if revoked_by is not None:
            self._finish(row, payload, request, trail, state="dead", reason="CONSENT_REVOKED",
                         error=f"consent revoked after the message was queued ({revoked_by})", source=revoked_by)
            return
        try:
            receipt = channel.transport.send(message, payload["address"], row["record_id"])
        except PermanentDeliveryError as exc:
            self._finish(row, payload, request, trail, state="dead", reason="DELIVERY_FAILED",
                         error=f"{exc.reason}: {exc.provider}", status=exc.reason)
            return
        except Exception as exc:
            self._retry(row, payload, request, trail, exc)
            return
        progress["receipt"] = receipt  # from here on the row is never sent again
        answered = time.perf_counter()
        done = self._record(row, payload, request, status="completed", now=host.clock(),
                            sent=receipt.at, provider_id=receipt.provider_id)
        progress.update(done=done, request=request, channel=channel.name)
        kept = self._settle_sent(row, done, trail, channel.name, receipt)
        progress["settled"] = True
        window = time.perf_counter() - answered
        if kept:
            self.stats.count("sent", window)
        else:
            self.stats.count("lost_lease")
            log.warning("outbox %s: sent, but its lease had passed to another worker", key)

    def _revocation(self, channel: str, address_system: str | None, payload: Mapping[str, Any]) -> str | None:
        """The source of the revocation when the consent ledger's last word for this address is
        one (STOP after the row was queued or held); None when the row may go. The one
        confirmation of an opt-out still goes (docs/rule-catalogue.md B)."""
        address = payload.get("address")
        if not address_system or not address or payload.get("template") == "optout-confirmation":
            return None
        last = self.host.store.consent.last(channel=channel, address=address)
        if last is None or not last.revokes:
            return None
        return last.source or "revoked"

    def _retry(self, row: Mapping[str, Any], payload: Mapping[str, Any], request: Any, trail: Any,
               exc: BaseException) -> None:
        attempts = int(row["attempts"])
        reason = exc.reason if isinstance(exc, DeliveryError) else type(exc).__name__
        if attempts >= self.settings.max_attempts:
            self._finish(row, payload, request, trail, state="dead", reason="DELIVERY_FAILED",
                         error=f"{reason}: gave up after {attempts} attempts", status=reason)
            return
        wait = backoff(attempts, self.settings.backoff_base, self.settings.backoff_cap, self._rand)
        if isinstance(exc, TransientDeliveryError) and exc.retry_after:
            wait = max(wait, exc.retry_after)
        now = self.host.clock()
        store = self.host.store
        with store.transaction():
            store.outbox_settle(row["key"], owner=self.owner, state="retry", now=now,
                                not_before=now + dt.timedelta(seconds=wait), error=f"{reason}"[:300])
            for later in store.outbox_later_legs(row["key"]):
                store.outbox_set_state(later["key"], state="waiting", now=now)
            trail.add("delivery.failed", record=row["record_id"], channel=row["channel"], error=type(exc).__name__,
                      status=reason)
            trail.flush()
        self.stats.count("retried")
        log.info("outbox %s: attempt %d failed (%s); next in %.1f s", row["key"], attempts, reason, wait)

    def _finish(self, row: Mapping[str, Any], payload: Mapping[str, Any], request: Any, trail: Any, *,
                state: str, reason: str, error: str, status: str | None = None, **details: Any) -> None:
        """A row that will not be sent: dead (with the reason) or expired; so are its later legs."""
        host, store = self.host, self.host.store
        now = host.clock()
        kind = "expired" if state == "expired" else "delivery.dead"
        with store.transaction():
            store.outbox_settle(row["key"], owner=self.owner, state=state, now=now, error=error[:300])
            rows = [(row, payload)]
            for later in store.outbox_later_legs(row["key"]):
                store.outbox_set_state(later["key"], state=state, now=now, error="an earlier leg was not sent")
                rows.append((later, json.loads(later["payload"])))
            for each, each_payload in rows:
                f = finding(reason, plugin="worker", channel=each["channel"], severity=Severity.WARN,
                            **{"detail": error, **details})
                self._file(self._record(each, each_payload, request, status="not-done", now=now,
                                        reasons=(reason,), findings=(f,)), trail)
                trail.add(kind, record=each["record_id"], channel=each["channel"], reasons=[reason],
                          status=status)
            trail.flush()
        self.stats.count("expired" if state == "expired" else "dead")
        log.warning("outbox %s: %s (%s)", row["key"], state, status or reason)

    def _file(self, record: Record, trail: Any) -> None:
        from emrcomm.host import _FilingFailed

        try:
            with self.host.store.savepoint():
                self.host.file(record)
        except _FilingFailed as failed:
            log.error("outbox %s: the outcome could not be filed by %s", record.id, failed.plugin)
            trail.add("record.not_filed", record=record.id, plugin=failed.plugin, reasons=["RECORD_NOT_FILED"])

    def _record(self, row: Mapping[str, Any], payload: Mapping[str, Any], request: Any, *, status: str,
                now: dt.datetime, sent: dt.datetime | None = None, provider_id: str | None = None,
                reasons: tuple[str, ...] = (), findings: tuple[Any, ...] = ()) -> Record:
        from emrcomm.host import LINK_SLOT, LINK_WITHHELD

        host = self.host
        request, kept = _as_filed(host, row["record_id"], request, payload.get("filed"))
        channel = host.channels.get(row["channel"])
        sealed = bool(payload.get("sealed"))
        text = payload.get("text")
        rid = row["record_id"]
        return Record(
            id=rid, request=request, status=status, channel=row["channel"],
            medium=channel.medium if channel else None, address=payload.get("address"),
            role=payload.get("role", "primary"),
            text=None if sealed or text is None else text.replace(LINK_SLOT, LINK_WITHHELD),
            subject=None if sealed else payload.get("subject"),
            payload_reference=f"urn:uuid:{uuid.UUID(hex=rid)}" if sealed else None,
            language=payload.get("language", "en"), findings=(*kept, *findings), reasons=reasons,
            recorded=now, sent=(sent or now) if status == "completed" else None, provider_id=provider_id,
            sender_display=host.config.clinic.name,
        )


def _parse_request(payload: Mapping[str, Any]) -> Request:
    data = payload["request"]
    if payload.get("sealed"):
        # The portal keeps the words encrypted; the request only identifies the message.
        data = {**data, "payload": [{"contentString": "(kept encrypted by the portal)"}]}
    # The host wrote this copy itself (request_to_fhir), after taking the request in.
    return fhir.parse_request(data, validate=False)


_NOTE = re.compile(r"^([A-Z][A-Z0-9_]+) \((info|warn|block)\): (.+)$")


def _as_filed(host: Host, record_id: str, request: Request,
              filed: Mapping[str, Any] | None = None) -> tuple[Request, tuple[Finding, ...]]:
    """What the record filed when the message was queued says that the outbox payload's request
    does not: the request's basedOn and sender, and the warnings found then. The host writes
    them in the payload (``filed``); rows queued before it did are read from the record (the
    chart's notes)."""
    if filed is not None:
        found = tuple(Finding(code=code, severity=Severity(severity), message=message)
                      for code, severity, message in filed.get("findings", ()))
        if filed.get("based_on") is None and filed.get("sender") is None:
            return request, found
        return attrs.evolve(request, based_on=filed.get("based_on") or request.based_on,
                            sender=filed.get("sender") or request.sender), found
    resource = host.store.get_record(record_id) or {}
    based_on = next((b["reference"] for b in resource.get("basedOn", ()) if b.get("reference")), None)
    sender = (resource.get("sender") or {}).get("reference")
    kept = []
    for note in resource.get("note", ()):
        m = _NOTE.match(note.get("text", ""))
        if m:
            kept.append(Finding(code=m[1], severity=Severity(m[2]), message=m[3]))
    request = attrs.evolve(request, based_on=based_on or request.based_on, sender=sender or request.sender)
    return request, tuple(kept)


def requeue(host: Host, key: str | None = None) -> int:
    """Put one dead letter (by key or record id), or all of them, back in the queue."""
    now = host.clock()
    dead = [r for r in host.store.outbox_dead() if r["state"] == "dead" and key in (None, r["key"], r["record_id"])]
    with host.store.transaction():
        count = host.store.outbox_requeue(now=now, key=key)
        if count:
            host.audit.record("requeued", records=[r["record_id"] for r in dead])
    return count
