"""``Host.send_pool()``: a nightly batch decided and written by several processes at once.

One Python process decides about 1,300 reminders a second (the rules are CPU work, and the GIL
keeps threads from sharing it). A :class:`SendPool` starts ``processes`` children, each with a
Host of its own built from the same configuration (same store, same audit log, same key), and
hands each a share of the batch; each child sends its share through ``send_many`` (group
commit), so the store sees several writers, as it does when a worker runs beside the host.

What makes that safe is how the batch is shared out. ``send_many`` decides a request after
every earlier request of the same patient, address or request id has been written (per-patient
and per-address limits count them). The pool keeps that order across processes: a request goes
to the child that holds an unfinished request sharing one of those with it (its patient, any of
the patient's addresses in the directory, its id); when two children hold such requests, the
pool waits until one has finished them. Requests that share nothing go wherever there is least
work. Outcomes are yielded in the order of the requests, each once the commit that made it
durable is done.

::

    with Host.from_config("emrcomm.toml") as host, host.send_pool(processes=2) as pool:
        for outcome in pool.send_many(requests):
            ...
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import queue
import threading
import types
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any, cast

from emrcomm import fhir
from emrcomm.errors import RequestError
from emrcomm.model import Outcome, Request

if TYPE_CHECKING:
    import datetime as dt
    from importlib import metadata

    from emrcomm.config import Config
    from emrcomm.host import Host

log = logging.getLogger("emrcomm.parallel")

# Requests and outcomes keep their mappings read-only (MappingProxyType), which pickle cannot
# take; between these processes one travels as its dict and is made read-only again.
def _read_only(mapping: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(mapping)


ForkingPickler.register(types.MappingProxyType, lambda proxy: (_read_only, (dict(proxy),)))

START_TIMEOUT = 120.0  # seconds a child may take to build its Host (a cold lexicon cache is slow)
IN_FLIGHT_GROUPS = 2  # groups handed to each child ahead of its answers
DRAIN_SECONDS = 60.0  # the longest a stopping batch waits for a child's next answer


class SendPool:
    """``processes`` child processes sending ``send_many``'s requests for ``host`` (see the
    module's docstring). Needs delivery mode ``queue`` and a clock that can be pickled (the
    default, or a module-level function or object). Close it (or use it as a context manager):
    the children are stopped and waited for."""

    def __init__(self, host: Host, processes: int = 2, *, group: int = 100,
                 entry_points: Mapping[str, metadata.EntryPoint] | None = None) -> None:
        if host.config.delivery_mode != "queue":
            raise ValueError("a send pool needs [delivery] mode = \"queue\": inline delivery sends from the "
                             "caller's process")
        if processes < 1 or group < 1:
            raise ValueError("processes and group must be at least 1")
        try:
            setup = pickle.dumps((host.config, host.clock, entry_points))
        except Exception as exc:
            raise ValueError(f"a send pool starts processes that rebuild this Host: its clock and configuration "
                             f"must be picklable ({type(exc).__name__}: {exc})") from None
        self.host = host
        self.group = group
        self.handled = [0] * processes  # requests each child has answered, since the pool started
        self._batches = 0
        self._active = False  # a batch is being sent (one at a time)
        self._children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        context = multiprocessing.get_context("spawn")  # never fork a process holding SQLite and threads
        try:
            for n in range(processes):
                mine, theirs = context.Pipe()
                process = context.Process(target=_child, args=(setup, theirs, group),
                                          name=f"emrcomm-send-{n}", daemon=True)
                process.start()
                theirs.close()
                self._children.append((process, mine))
            for started, conn in self._children:
                if not conn.poll(START_TIMEOUT):
                    raise RuntimeError(f"{started.name} did not start within {START_TIMEOUT:.0f} s")
                try:
                    kind, (_, detail) = conn.recv()
                except EOFError:
                    started.join(5)
                    raise RuntimeError(f"{started.name} exited while starting (exit code {started.exitcode}); a "
                                       "script that starts a send pool must do so under "
                                       "`if __name__ == \"__main__\":`") from None
                if kind != "ready":
                    raise RuntimeError(f"{started.name} could not build its Host: {detail}")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> SendPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the children (each finishes what it holds) and wait for them; kill one that
        does not stop within 30 s."""
        for _, conn in self._children:
            with contextlib.suppress(OSError):  # a child already gone
                conn.send(("stop", None))
        for child, conn in self._children:
            child.join(30)
            if child.is_alive():
                log.error("%s (pid %s) did not stop; killed", child.name, child.pid)
                child.kill()
                child.join(5)
            conn.close()
        self._children = []

    def send_many(self, requests: Iterable[Request | Mapping[str, Any] | str | bytes]) -> Iterator[Outcome]:
        """Like :meth:`Host.send_many`, with the requests shared out among the children.

        A malformed request yields a ``failed`` Outcome and goes nowhere. If a child fails
        (an unexpected error, or it died), or something fails here (the caller's iterable, a
        request that cannot be pickled), the outcomes before the first one lost are yielded,
        then RuntimeError names the requests taken from ``requests`` but not reported (some may
        have been written) and the pool closes; no request after them was taken. Sending them
        again is safe: a request id already handled is recognised and not sent twice.

        One batch at a time: a second ``send_many`` while one is being read raises
        RuntimeError (a pool is not shared between threads). A batch left unread is finished
        by the children and its answers read when it is closed (or collected).
        """
        if not self._children:
            raise RuntimeError("the send pool is closed")
        return _Batch(self).run(requests)


class _Batch:
    """One send_many through the pool: the bookkeeping of who holds what."""

    def __init__(self, pool: SendPool) -> None:
        self.pool = pool
        self.host = pool.host
        self.conns = [conn for _, conn in pool._children]
        self.waiting: list[list[tuple[int, Request]]] = [[] for _ in self.conns]  # not handed over yet
        self.held = [0] * len(self.conns)  # handed over, outcome not back yet
        self.owner: dict[str, tuple[int, int]] = {}  # key -> (child, unfinished requests with it)
        self.keys: dict[int, tuple[int, frozenset[str]]] = {}  # request index -> (child, its keys)
        self.ids: dict[int, str] = {}
        self.done: dict[int, Outcome] = {}
        self.failure: str | None = None
        pool._batches += 1
        self.tag = pool._batches  # answers to an earlier batch, if any are still coming, are not ours

    def run(self, requests: Iterable[Request | Mapping[str, Any] | str | bytes]) -> Iterator[Outcome]:
        if self.pool._active:
            raise RuntimeError("this send pool is sending another batch: finish or close that one first (one "
                               "batch at a time; do not share a pool between threads)")
        self.pool._active = True
        following = 0
        error: Exception | None = None
        try:
            try:
                for index, item in enumerate(requests):
                    self._place(index, item)
                    limit = len(self.conns) * self.pool.group * IN_FLIGHT_GROUPS
                    while sum(self.held) + sum(map(len, self.waiting)) > limit and self.failure is None:
                        self._hand_over()
                        self._receive()
                    following = yield from self._ready(following)
                    if self.failure is not None:
                        break
                while self.failure is None and (any(self.held) or any(self.waiting)):
                    self._hand_over(partial=True)
                    self._receive()
                    following = yield from self._ready(following)
            except Exception as exc:  # here, in this process: the directory, pickling, the caller's iterable
                self.failure, error = f"the send pool could not go on ({type(exc).__name__}: {exc})", exc
            if self.failure is not None:
                self._drain()  # what the other children committed is reported, up to the first gap
            yield from self._ready(following)
        finally:
            if self.failure is None:
                self._drain()  # left early by the caller: read what is still coming; the next batch starts clean
            self.pool._active = False
        if self.failure is not None:
            self.pool.close()  # a child is gone or failing: this pool is done
            unreported = [self.ids[i] for i in sorted(self.ids)]
            raise RuntimeError(f"{self.failure}; {len(unreported)} request(s) taken but not reported, and none "
                               "after them taken (send them again: a request already handled is not sent "
                               f"twice): {', '.join(unreported[:20])}" + (" …" if len(unreported) > 20 else "")
                               ) from error

    def _drain(self) -> None:
        """Read the answers still coming from the children that hold requests."""
        while any(self.held) and self._receive(timeout=DRAIN_SECONDS):
            pass

    def _ready(self, following: int) -> Generator[Outcome, None, int]:
        """Yield the outcomes that are next in the requests' order; return the next index."""
        while following in self.done:
            yield self.done.pop(following)
            self.ids.pop(following, None)
            following += 1
        return following

    def _place(self, index: int, item: Request | Mapping[str, Any] | str | bytes) -> None:
        try:
            request = item if isinstance(item, Request) else fhir.parse_request(item)
        except RequestError as exc:
            self.done[index] = self.host._failed(item, exc)
            return
        try:
            keys = self._keys_of(request)
        except RequestError as exc:  # as send_many: that request fails, the batch goes on
            self.done[index] = self.host._failed(request, exc)
            return
        holders = {self.owner[k][0] for k in keys if k in self.owner}
        while len(holders) > 1 and self.failure is None:
            # Two children hold requests this one must follow: wait until only one does.
            self._hand_over(partial=True)
            self._receive()
            holders = {self.owner[k][0] for k in keys if k in self.owner}
        if holders:
            child = holders.pop()
        else:
            child = min(range(len(self.conns)), key=lambda c: self.held[c] + len(self.waiting[c]))
        for key in keys:
            self.owner[key] = (child, self.owner.get(key, (child, 0))[1] + 1)
        self.keys[index] = (child, keys)
        self.ids[index] = request.id
        self.waiting[child].append((index, request))
        if len(self.waiting[child]) >= self.pool.group:
            self._send(child)

    def _keys_of(self, request: Request) -> frozenset[str]:
        """What a decision about ``request`` may read that another request could write: its id,
        its patient, and every address the directory has for the patient."""
        keys = {f"request:{request.id}", f"patient:{request.patient_ref}"}
        recipient = self.host.find_recipient(request)
        if recipient is not None:
            keys.add(f"patient:{recipient.patient_ref}")
            keys.update(f"to:{point.value}" for point in recipient.contact_points)
        return frozenset(keys)

    def _hand_over(self, *, partial: bool = False) -> None:
        for child, waiting in enumerate(self.waiting):
            if waiting and (partial or len(waiting) >= self.pool.group):
                self._send(child)

    def _send(self, child: int) -> None:
        batch = self.waiting[child]
        try:
            self.conns[child].send(("send", (self.tag, batch)))  # (a request that cannot be pickled raises)
        except OSError as exc:
            self.failure = f"send pool child {child} is gone ({type(exc).__name__})"
            return
        self.waiting[child] = []
        self.held[child] += len(batch)

    def _receive(self, timeout: float | None = None) -> bool:
        """Take the answers that are there, waiting for one if none is (up to ``timeout``);
        whether any came."""
        busy = [self.conns[c] for c in range(len(self.conns)) if self.held[c]]
        ready_now = wait(busy, timeout) if busy else []
        for ready in ready_now:
            conn = cast(Connection, ready)
            child = self.conns.index(conn)
            detail: Any
            try:
                kind, (tag, detail) = conn.recv()
            except (EOFError, OSError):
                self.failure = f"send pool child {child} died"
                self.held[child] = 0
                continue
            if tag != self.tag:
                continue
            if kind == "failed":
                self.failure = f"send pool child {child} failed: {detail}"
                self.held[child] = 0
                continue
            self.pool.handled[child] += len(detail)
            for index, outcome in detail:
                self.done[index] = outcome
                self.held[child] -= 1
                self._release(index)
        return bool(ready_now)

    def _release(self, index: int) -> None:
        _, keys = self.keys.pop(index)
        for key in keys:
            owner, count = self.owner[key]
            if count <= 1:
                del self.owner[key]
            else:
                self.owner[key] = (owner, count - 1)


def _child(setup: bytes, conn: Connection, group: int) -> None:
    """A child's life: build a Host, then send what it is handed until told to stop."""
    from emrcomm.host import Host

    config: Config
    clock: Callable[[], dt.datetime]
    try:
        config, clock, entry_points = pickle.loads(setup)
        host = Host(config, clock=clock, entry_points=entry_points)
    except BaseException as exc:
        conn.send(("failed", (0, f"{type(exc).__name__}: {exc}")))
        return
    conn.send(("ready", (0, None)))
    # What the parent hands over is read at once, by a thread of its own: the parent never
    # waits to hand over a batch while this process waits to hand back a large answer (two full
    # pipe buffers, each side waiting for the other).
    handed: queue.Queue[tuple[str, Any]] = queue.Queue()

    def read() -> None:
        try:
            while True:
                message = conn.recv()
                handed.put(message)
                if message[0] == "stop":
                    return
        except (EOFError, OSError):  # the parent is gone
            handed.put(("stop", None))

    threading.Thread(target=read, name="emrcomm-send-reader", daemon=True).start()
    try:
        while True:
            kind, work = handed.get()
            if kind == "stop":
                return
            tag, batch = work
            done: list[tuple[int, Outcome]] = []
            try:
                for (index, _), outcome in zip(batch, host.send_many([r for _, r in batch], group=group)):
                    done.append((index, outcome))
            except Exception as exc:  # what send_many yielded before the error is durable: report it
                conn.send(("done", (tag, done)))
                conn.send(("failed", (tag, f"{type(exc).__name__}: {exc}")))
                return
            conn.send(("done", (tag, done)))
    except (EOFError, KeyboardInterrupt):
        return
    finally:
        host.close()
