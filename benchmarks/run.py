"""emrcomm's benchmarks in one run: latency in the EMR's thread, side by side, start-up.

    python benchmarks/run.py [--quick | --tiny] [--json] [--no-write]

Measures, on a synthetic clinic (``emrcomm.demo_data``) with every built-in plugin on:

* **B1** ``Host.send`` in the caller's thread, delivery mode ``queue``: everything up to the
  durable outbox row, the filed record and the signed audit entries, committed; no network.
  An SMS appointment reminder and a portal message (a clinical note: the portal plus its SMS
  notice), per-call p50 / p99 and messages per second; once with the store's default
  ``synchronous = "full"`` and once with ``"normal"`` (WAL: durable across a process crash,
  not a power loss).
* **B3** the same SMS messages to the same local HTTP sink (``http.server`` tuned as in the
  design notes, in its own process on 127.0.0.1), side by side in interleaved rounds: (a) a raw
  ``requests.Session`` POST loop, the floor; (b) Apprise 2.x through its ``json://`` service
  with its throttle off; (c) emrcomm ``Host.send``, delivery ``inline``, every rule on, records
  filed, ``synchronous = "full"``, through its Twilio transport whose base URL is the sink
  (which answers like Twilio); (d) the least a durable outbox can do with that transport (a row
  committed with an fsync before the send, deleted after): what the promise alone costs. Each round sends fresh messages through each of the three in an
  order that rotates from round to round; a ratio is taken within a round, and the median of
  the rounds' ratios is reported with their range. Also counted (not timed): the SQL statements
  and the commits one inline send runs, durable (fsync'd) or not, and the bytes the store grows
  by per message (every table and index, the audit log included).
* **B6** the opt-out confirmation's de-duplication (the consent ledger's last word for the
  address, then the confirmations sent there since) on stores of 1k to 1M records and as many
  outbox rows, the sizes probed in turn: flat when every per-message query reads an index
  (tests/test_query_plans.py checks the plans).
* **B5** start-up: ``import emrcomm`` and ``Host`` construction with every built-in plugin,
  warm caches, in a fresh interpreter, several runs, median.
* **B2** a clinic day: 1k, 10k (and 100k at the full size) reminders through ``send_many`` and
  the worker to the sink, each size in a fresh process: throughput, CPU per message, peak RSS
  and the batch's own RSS growth.
* **B4** the worker against a sink that answers 429 above 50 messages a second, the transport's
  rate set to that limit: the rate the sink saw / the limit, and the 429s drawn.

It prints a table (or one JSON object with ``--json``) and writes docs/performance.md. Nothing
here is asserted; ``--tiny`` is a smoke size that the test suite runs so the harness cannot rot.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.server
import importlib.util
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "performance.md"

SIZES: dict[str, dict[str, Any]] = {  # sends per run of each benchmark
    "tiny": {"b1_sms": 30, "b1_portal": 10, "b3": 10, "b3_rounds": 2, "b3_phases": 20, "b5": 1, "patients": 60, "b2": (20, 40), "b4": 15,
             "b6": (1000, 10000)},
    "quick": {"b1_sms": 1500, "b1_portal": 400, "b3": 200, "b3_rounds": 9, "b3_phases": 400, "b5": 5, "patients": 400, "b2": (1000, 10000),
              "b4": 300, "b6": (1000, 100_000, 1_000_000)},
    "full": {"b1_sms": 5000, "b1_portal": 1500, "b3": 400, "b3_rounds": 15, "b3_phases": 1000, "b5": 9, "patients": 1000,
             "b2": (1000, 10000, 100000), "b4": 1000, "b6": (1000, 100_000, 1_000_000)},
}
TWILIO_SID = "AC" + "0" * 32
TOKEN_ENV = "EMRCOMM_BENCH_TWILIO_TOKEN"


# ---------------------------------------------------------------------------- the local sink

class _SinkHandler(http.server.BaseHTTPRequestHandler):
    """Answers every POST like Twilio's Messages API (201 + a small JSON body)."""

    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one buffered write per answer, flushed once (DESIGN.md field notes)
    server: _Sink

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if not self.server.take():
            self._answer(429, b'{"code": 20429, "message": "Too Many Requests"}', ("Retry-After", "1"))
            return
        with self.server.lock:
            self.server.count += 1
            n = self.server.count
            self.server.last = time.monotonic()
            if self.server.first is None:
                self.server.first = self.server.last
        self._answer(201, b'{"sid": "SM%032d", "status": "queued", "num_segments": "1"}' % n)

    def do_GET(self) -> None:
        with self.server.lock:
            stats = {"accepted": self.server.count, "refused": self.server.refused,
                     "span_s": None if self.server.first is None else self.server.last - self.server.first}
        self._answer(200, json.dumps(stats).encode())

    def _answer(self, status: int, body: bytes, header: tuple[str, str] | None = None) -> None:
        self.send_response(status)
        if header is not None:
            self.send_header(*header)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Sink(http.server.ThreadingHTTPServer):
    """With ``limit``, a provider's rate limit: a token bucket of ``limit`` a second holding at
    most ``burst``; a message without a token gets 429 + Retry-After."""

    daemon_threads = True

    def __init__(self, limit: float | None = None, burst: int = 2) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.lock = threading.Lock()
        self.count = 0
        self.refused = 0
        self.first: float | None = None  # when the first and the last message were accepted (monotonic)
        self.last = 0.0
        self.limit = limit
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        if self.limit is None:
            return True
        with self.lock:
            now = time.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.limit)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            self.refused += 1
            return False


def serve_sink(limit: float | None) -> None:
    """Run the sink in this process until stdin closes (``--serve-sink``); print its port first."""
    server = _Sink(limit)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # the parent closes our stdin (or dies): stop
    server.shutdown()
    server.server_close()


@contextlib.contextmanager
def sink(limit: float | None = None) -> Iterator[str]:
    """The sink's base URL. It runs in its own process, as a provider would, so that it does
    not take the GIL from the client being measured; stopped by its PID."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-sink"]
    if limit is not None:
        argv += ["--sink-limit", str(limit)]
    process = subprocess.Popen(argv,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# ---------------------------------------------------------------------------- the clinic

def write_clinic(folder: Path, patients: int, *, mode: str, synchronous: str | None = None,
                 sms: str = "", poll_seconds: float | None = None) -> Path:
    """A demo-like clinic in ``folder``: config, patients bundle; returns the config path."""
    from emrcomm.demo import CONFIG
    from emrcomm.demo_data import generate_clinic, write_bundle
    from emrcomm.testing import TEST_NOW

    text = CONFIG.replace('mode = "inline"', f'mode = "{mode}"'
                          + (f"\npoll_seconds = {poll_seconds}" if poll_seconds is not None else ""))
    if synchronous is not None:
        text = text.replace('path = "emrcomm.sqlite"', f'path = "emrcomm.sqlite"\nsynchronous = "{synchronous}"')
    if sms:
        text = text.replace('transport = "file"\npath = "out/sms.jsonl"', sms)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "emrcomm.toml").write_text(text, encoding="utf-8")
    write_bundle(generate_clinic(patients, 7, today=TEST_NOW.date()), folder / "patients.json")
    return folder / "emrcomm.toml"


class _Requests:
    """Fresh requests (unique ids) of one kind, cycling over the patients that get them."""

    def __init__(self, kind: str, patients: list[str]) -> None:
        self.kind = kind
        self.patients = patients
        self.n = 0

    def next(self) -> Any:
        from emrcomm.demo import CLINIC_ZONE, CLINICAL_NOTES
        from emrcomm.model import Category, Request, Sensitivity
        from emrcomm.testing import TEST_NOW

        ref = self.patients[self.n % len(self.patients)]
        self.n += 1
        rid = f"bench-{self.kind}-{self.n}-{time.monotonic_ns()}"
        if self.kind == "portal":
            return Request(ref, Category.CLINICAL, id=rid, text=CLINICAL_NOTES[0][1],
                           sensitivity=Sensitivity.RESTRICTED, sender="Practitioner/dr-okafor")
        # Tomorrow's clinic day: a slot every 10 minutes from 8:00 to 16:50, as a clinic's reminders
        # spread (the same words repeat only within a slot, language and first name).
        slot = dt.time(8 + (self.n - 1) % 54 // 6, (self.n - 1) % 6 * 10)
        appointment = dt.datetime.combine(TEST_NOW.date() + dt.timedelta(days=1), slot, CLINIC_ZONE)
        return Request(ref, Category.APPOINTMENT_REMINDER, id=rid, template="appointment-reminder",
                       variables={"appointment": appointment}, appointment=appointment)


def eligible(host: Any, folder: Path, kind: str, channels: tuple[str, ...]) -> list[str]:
    """The patients whose request of ``kind`` would go, unheld, on exactly ``channels``."""
    from emrcomm.model import Status

    bundle = json.loads((folder / "patients.json").read_text(encoding="utf-8"))
    refs = [f"Patient/{e['resource']['id']}" for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    out = []
    for ref in refs:
        probe = _Requests(kind, [ref]).next()
        outcome = host.preview(probe)
        if outcome.status is Status.SENT and outcome.channels == channels:
            out.append(ref)
    if not out:
        raise RuntimeError(f"no patient in the synthetic clinic gets a {kind} on {'+'.join(channels)}")
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# ---------------------------------------------------------------------------- B1

def b1(size: dict[str, int], synchronous: str | None, *, group: bool = True) -> dict[str, Any]:
    """Per-call latency of Host.send (queue mode) for SMS reminders and portal messages; with
    ``group``, also their throughput through send_many's group commit."""
    from emrcomm.host import Host
    from emrcomm.testing import FixedClock

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_clinic(folder, size["patients"], mode="queue", synchronous=synchronous)
        with Host.from_config(config, clock=FixedClock()) as host:
            out: dict[str, Any] = {}
            for kind, channels, count in (("sms", ("sms",), size["b1_sms"]),
                                          ("portal", ("portal", "sms"), size["b1_portal"])):
                source = _Requests(kind, eligible(host, folder, kind, channels))
                for _ in range(min(50, count)):  # warm: caches, statements, the WAL file
                    host.send(source.next())
                times: list[float] = []
                statuses: Counter[str] = Counter()
                for _ in range(count):
                    request = source.next()
                    t = time.perf_counter()
                    outcome = host.send(request)
                    times.append(time.perf_counter() - t)
                    statuses[outcome.status.value] += 1
                out[kind] = {
                    "count": count,
                    "p50_ms": percentile(times, 0.50) * 1e3,
                    "p99_ms": percentile(times, 0.99) * 1e3,
                    "mean_ms": statistics.fmean(times) * 1e3,
                    "per_s": count / sum(times),
                    "statuses": dict(statuses),
                    "group": group_commit(host, source, count) if group else None,
                }
    return out


def group_commit(host: Any, source: _Requests, count: int, group: int = 100) -> dict[str, Any]:
    """The same sends through ``send_many`` (queue mode: ``group`` requests per commit): messages
    per second, and how long each request waited for its outcome (pulled -> yielded)."""
    pulled: dict[str, float] = {}
    waits: list[float] = []
    statuses: Counter[str] = Counter()

    def stream() -> Iterator[Any]:
        for _ in range(count):
            request = source.next()
            pulled[request.id] = time.perf_counter()
            yield request

    t = time.perf_counter()
    for outcome in host.send_many(stream(), group=group):
        waits.append(time.perf_counter() - pulled.pop(outcome.request_id))
        statuses[outcome.status.value] += 1
    total = time.perf_counter() - t
    return {"size": group, "per_s": count / total, "wait_p50_ms": percentile(waits, 0.5) * 1e3,
            "wait_p99_ms": percentile(waits, 0.99) * 1e3, "statuses": dict(statuses)}


# ---------------------------------------------------------------------------- B3

def _sms_texts(host: Any, folder: Path, count: int) -> tuple[list[Any], list[tuple[str, str]], list[Any]]:
    """``count`` reminder requests and, for the baselines, the (number, text) emrcomm renders and
    the message itself (for the transport alone)."""
    source = _Requests("sms", eligible(host, folder, "sms", ("sms",)))
    requests_, pairs, messages = [], [], []
    for _ in range(count):
        request = source.next()
        recipient = host.plugins.find_recipient(request)
        message = host.plugins.render(request, recipient)
        number = next(p.value for p in recipient.contact_points if p.system == "sms")
        requests_.append(request)
        pairs.append((number, message.text))
        messages.append(message)
    return requests_, pairs, messages


def spread(values: list[float]) -> dict[str, float]:
    """The median of a benchmark's rounds and their range."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def count_statements(host: Any, sends: Callable[[], None]) -> dict[str, Any]:
    """The SQL statements ``sends`` runs on the host's SQLite connection, by kind, and its commits:
    ``durable`` ones (made under ``synchronous = FULL``: fsync'd before they return) and
    ``relaxed`` ones (``synchronous = NORMAL`` for that transaction alone)."""
    connection = host.storage.db._db  # the embedded store's one connection
    durable = {"FULL": True, "EXTRA": True}.get(host.storage.db.synchronous, False)
    seen: Counter[str] = Counter()
    state = {"durable": durable}

    def trace(sql: str) -> None:
        words = sql.split()
        if not words:
            return
        head = words[0].upper()
        if head == "PRAGMA" and "SYNCHRONOUS=" in sql.upper().replace(" ", ""):
            state["durable"] = sql.upper().replace(" ", "").rsplit("=", 1)[1] in ("FULL", "EXTRA", "2", "3")
        elif head in ("COMMIT", "END"):
            seen["commit:durable" if state["durable"] else "commit:relaxed"] += 1
        seen[head] += 1

    connection.set_trace_callback(trace)
    try:
        sends()
    finally:
        connection.set_trace_callback(None)
    return dict(seen)


def stored_bytes(host: Any) -> dict[str, int]:
    """The bytes each table and index of the host's database occupies (SQLite's dbstat), after a
    checkpoint has copied the WAL into the file."""
    connection = host.storage.db._db
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return {row[0]: int(row[1]) for row in connection.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")}


def inline_phases(host: Any, requests_: list[Any]) -> dict[str, dict[str, float]]:
    """Where an inline send's time goes: each step of ``Host.send`` timed apart (median wall and
    CPU of this thread, ms): deciding (every plugin's reads and rules), writing (records, outbox
    row, audit entries and the durable commit: its wall time less its CPU is mostly the fsync),
    delivering (the transport's exchange, then "accepted" in a commit that does not wait for
    the disk)."""
    from emrcomm.pipeline.write import write

    steps: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in ("decide", "write", "deliver")}
    for request in requests_:
        marks = [(time.perf_counter(), time.thread_time())]
        req = host._parse(request)
        trail = host._trail(req)
        decision = host.decide(req, trail)
        marks.append((time.perf_counter(), time.thread_time()))
        written = write(host, decision, trail)
        marks.append((time.perf_counter(), time.thread_time()))
        host._deliver_inline(written)
        marks.append((time.perf_counter(), time.thread_time()))
        for index, (wall, cpu) in enumerate(steps.values()):
            wall.append(marks[index + 1][0] - marks[index][0])
            cpu.append(marks[index + 1][1] - marks[index][1])
    return {name: {"wall_ms": statistics.median(wall) * 1e3, "wall_mean_ms": statistics.fmean(wall) * 1e3,
                   "cpu_ms": statistics.median(cpu) * 1e3} for name, (wall, cpu) in steps.items()}


def inspect_memos(host: Any, messages: list[Any], passes: int = 5) -> dict[str, float]:
    """The content inspector on B3's messages, in the order B3 sends them: µs per message
    without its memos, with the sentence memo alone (subject.py), and with both (the findings
    of whole documents kept too). Each pass starts with these two memos empty, as a clinic's day
    does (the detector's older caches of words stay warm, alike for the three); the three
    alternate, and the median pass of each is reported."""
    from emrcomm_content import _free_text, document, subject

    plugin = host.plugins.get("content")
    kept = subject._matches

    def every(message: Any) -> Any:
        return plugin._findings(document(message), message.category, _free_text(message))

    times: dict[str, list[float]] = {"none": [], "sentences": [], "both": []}
    try:
        for _ in range(passes):
            for kind in times:
                kept.cache_clear()
                plugin._memo.cache_clear()
                subject._matches = subject._find if kind == "none" else kept
                inspect = plugin.emrcomm_inspect if kind == "both" else every
                t = time.perf_counter()
                for message in messages:
                    inspect(message)
                times[kind].append((time.perf_counter() - t) / len(messages) * 1e6)
    finally:
        subject._matches = kept
    return {kind: statistics.median(values) for kind, values in times.items()}


def b3(size: dict[str, int]) -> dict[str, Any]:
    """Inline ``Host.send`` vs a raw requests loop vs Apprise json://, to one sink, in
    interleaved rounds: each round sends ``size["b3"]`` fresh messages through each of the three,
    in an order that rotates from round to round; the ratios are taken within a round."""
    import requests

    from emrcomm.host import Host
    from emrcomm.model import Status
    from emrcomm.plugin.contract import Delivery
    from emrcomm.testing import TEST_NOW

    rounds, count = size["b3_rounds"], size["b3"]
    out: dict[str, Any] = {"rounds": rounds, "count": count}
    with sink() as sink_url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_clinic(folder, size["patients"], mode="inline", sms=twilio_sms(sink_url, 1000, 1000))
        # The same clinic with synchronous = "normal" (no fsync per commit): what the fsync costs.
        relaxed_config = write_clinic(folder / "normal", size["patients"], mode="inline", synchronous="normal",
                                      sms=twilio_sms(sink_url, 1000, 1000))
        with Host.from_config(config, clock=lambda: TEST_NOW) as host, requests.Session() as session, \
                Host.from_config(relaxed_config, clock=lambda: TEST_NOW) as relaxed_host:
            warm_n, counted_n, phases_n = 30, 50, size["b3_phases"]
            requests_, pairs, messages = _sms_texts(host, folder, warm_n + counted_n + phases_n + rounds * count)
            url = f"{sink_url}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
            session.trust_env = False
            transport = host.channels["sms"].transport
            notifier = None
            if importlib.util.find_spec("apprise") is not None:
                import apprise

                notifier = apprise.Apprise()
                notifier.add(sink_url.replace("http://", "json://") + "/apprise")
                for service in notifier:
                    service.request_rate_per_sec = 0  # its throttle off
                out["apprise_version"] = apprise.__version__

            def raw(chunk: list[tuple[str, str]]) -> None:
                # The floor: one pooled session, form POST, the JSON answer read.
                for number, text in chunk:
                    response = session.post(url, data={"To": number, "From": "+16135550100", "Body": text},
                                            timeout=(3.05, 10))
                    response.raise_for_status()
                    response.json()

            def through_apprise(chunk: list[tuple[str, str]]) -> None:
                assert notifier is not None
                for number, text in chunk:
                    if not notifier.notify(body=text, title=number):
                        raise RuntimeError("apprise failed to deliver to the local sink")

            def transport_alone(at: int, n: int) -> None:
                # The Twilio transport by itself (its own HTTP client): the exchange inline sends make.
                for index in range(at, at + n):
                    number = pairs[index][0]
                    transport.send(Delivery(messages[index], number, f"bench-transport-{index}"))

            floor_db = sqlite3.connect(folder / "floor.sqlite", isolation_level=None)
            floor_db.execute("PRAGMA journal_mode=WAL")
            floor_db.execute("CREATE TABLE outbox (key TEXT PRIMARY KEY, address TEXT, text TEXT)")

            def floor(at: int, n: int) -> None:
                # The least a durable outbox can do: the row committed with an fsync before the
                # message leaves, the same transport, the row deleted after in a commit that does
                # not wait for the disk. No rule, no record, no audit: the cost of the promise alone.
                for index in range(at, at + n):
                    number, key = pairs[index][0], f"bench-floor-{index}"
                    floor_db.execute("PRAGMA synchronous=FULL")
                    floor_db.execute("BEGIN IMMEDIATE")
                    floor_db.execute("INSERT INTO outbox VALUES (?, ?, ?)", (key, number, pairs[index][1]))
                    floor_db.execute("COMMIT")
                    transport.send(Delivery(messages[index], number, key))
                    floor_db.execute("PRAGMA synchronous=NORMAL")
                    floor_db.execute("BEGIN IMMEDIATE")
                    floor_db.execute("DELETE FROM outbox WHERE key = ?", (key,))
                    floor_db.execute("COMMIT")

            def inline(chunk: list[Any], sender: Any = host) -> None:
                statuses = Counter(sender.send(request).status for request in chunk)
                if statuses[Status.SENT] != len(chunk):
                    raise RuntimeError(f"emrcomm did not send every B3 message: {dict(statuses)}")

            stored_before = stored_bytes(host)
            # Warm every arm (connections, caches, prepared statements, the WAL file).
            raw(pairs[:warm_n])
            transport_alone(0, warm_n)
            floor(0, warm_n)
            if notifier is not None:
                through_apprise(pairs[:warm_n])
            inline(requests_[:warm_n])
            inline(requests_[:warm_n], relaxed_host)
            # What one inline send runs on the store (not timed).
            counted = requests_[warm_n:warm_n + counted_n]
            statements = count_statements(host, lambda: inline(counted))
            out["per_send"] = {kind: n / counted_n for kind, n in sorted(statements.items())}
            out["phases"] = inline_phases(host, requests_[warm_n + counted_n:warm_n + counted_n + phases_n])

            arms: list[tuple[str, Callable[[int], None]]] = [
                ("raw", lambda at: raw(pairs[at:at + count])),
                ("inline", lambda at: inline(requests_[at:at + count])),
                ("transport", lambda at: transport_alone(at, count)),
                ("floor", lambda at: floor(at, count)),
                ("inline_normal", lambda at: inline(requests_[at:at + count], relaxed_host)),
            ]
            if notifier is not None:
                arms.insert(1, ("apprise", lambda at: through_apprise(pairs[at:at + count])))
            rates: dict[str, list[float]] = {name: [] for name, _ in arms}
            at = warm_n + counted_n + phases_n
            for index in range(rounds):
                turn = index % len(arms)
                for name, arm in arms[turn:] + arms[:turn]:
                    t = time.perf_counter()
                    arm(at)
                    rates[name].append(count / (time.perf_counter() - t))
                at += count
            stored_after = stored_bytes(host)
            floor_db.close()
            memo = host.plugins.get("content")._memo.cache_info()  # the inspector's findings kept by words
            out["inspect_memo"] = {"hits": memo.hits, "misses": memo.misses}
            out["inspect_us"] = inspect_memos(host, messages)
    sent = warm_n + counted_n + phases_n + rounds * count
    out["stored_bytes_per_message"] = {
        table: (stored_after.get(table, 0) - stored_before.get(table, 0)) / sent
        for table in sorted(stored_after) if stored_after.get(table, 0) != stored_before.get(table, 0)}
    out["per_s"] = {name: spread(values) for name, values in rates.items()}
    out["rates"] = rates
    out["inline_vs_raw"] = spread([i / r for i, r in zip(rates["inline"], rates["raw"])])
    out["inline_normal_vs_raw"] = spread([i / r for i, r in zip(rates["inline_normal"], rates["raw"])])
    out["transport_vs_raw"] = spread([t / r for t, r in zip(rates["transport"], rates["raw"])])
    out["floor_vs_raw"] = spread([f / r for f, r in zip(rates["floor"], rates["raw"])])
    out["inline_vs_apprise"] = (spread([i / a for i, a in zip(rates["inline"], rates["apprise"])])
                                if "apprise" in rates else None)
    return out


# ---------------------------------------------------------------------------- B6

def _fill(path: Path, rows: int) -> list[str]:
    """A store with ``rows`` records (a year of messages to ``rows // 4`` addresses, one in 20 an
    opt-out confirmation), ``rows`` open outbox rows and ``rows // 10`` consent events, written
    directly; returns the addresses."""
    from emrcomm.storage import open_sqlite

    open_sqlite(path).close()  # the schema, as the host makes it
    addresses = [f"+1613{n:07d}" for n in range(max(rows // 4, 10))]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def records() -> Iterator[tuple[Any, ...]]:
        for n in range(rows):
            at = (start + dt.timedelta(seconds=n * 31_536_000 // rows)).isoformat()
            kind = "optout-confirmation" if n % 20 == 0 else "appointment-reminder"  # category and template
            yield (f"rec-{n}", f"req-{n}", f"Patient/p{n % 5000}", "sms", kind, "message",
                   addresses[n % len(addresses)], kind, at, "accepted", "completed", 2, at, "{}")

    def outbox() -> Iterator[tuple[Any, ...]]:
        for n in range(rows):
            at = (start + dt.timedelta(seconds=n)).isoformat()
            yield (f"ob-{n}", f"oreq-{n}", "sms", addresses[n % len(addresses)], 0, "pending", at, at, "{}")

    def consent() -> Iterator[tuple[Any, ...]]:
        for n in range(rows // 10):
            at = (start + dt.timedelta(seconds=n * 300)).isoformat()
            yield (f"Patient/p{n % 5000}", "sms", addresses[n % len(addresses)], None,
                   "revoke" if n % 2 else "grant", at, "STOP reply")

    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO records (id, request_id, patient, channel, category, role, address, template, recorded, "
            "state, status, version, updated, facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records())
        connection.executemany(
            "INSERT INTO outbox (key, request_id, channel, address, leg, state, created, updated, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", outbox())
        connection.executemany(
            "INSERT INTO consent_events (patient, channel, address, purpose, action, at, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", consent())
        connection.execute("COMMIT")  # no ANALYZE: the plans are the ones a clinic's store gets
    finally:
        connection.close()
    return addresses


def b6(sizes: tuple[int, ...], probes: int = 3000) -> dict[str, Any]:
    """What the opt-out plugin reads to let one confirmation through after a STOP (the ledger's
    last word for the address, then the confirmations sent there since), at each store size:
    the sizes' stores are probed in turn, probe by probe, so that the machine's load falls on
    every size alike. Microseconds per check, median and p99."""
    import random

    from emrcomm.storage import open_sqlite

    with tempfile.TemporaryDirectory() as tmp:
        stores, addresses, fill_s = {}, {}, {}
        try:
            for rows in sizes:
                t = time.perf_counter()
                addresses[rows] = _fill(Path(tmp) / f"{rows}.sqlite", rows)
                fill_s[rows] = time.perf_counter() - t
                stores[rows] = open_sqlite(Path(tmp) / f"{rows}.sqlite")
            since = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
            pick = random.Random(7)
            times: dict[int, list[float]] = {rows: [] for rows in sizes}
            for _ in range(probes):
                for rows in sizes:
                    store, address = stores[rows], pick.choice(addresses[rows])
                    t = time.perf_counter()
                    store.consent.last(channel="sms", address=address, purpose="clinical")
                    store.records.count_to(channel="sms", address=address, since=since, category="optout-confirmation")
                    times[rows].append(time.perf_counter() - t)
        finally:
            for store in stores.values():
                store.close()
    out: dict[str, Any] = {str(rows): {"median_us": statistics.median(values) * 1e6,
                                       "p99_us": percentile(values, 0.99) * 1e6, "fill_s": fill_s[rows]}
                           for rows, values in times.items()}
    out["ratio_largest_smallest"] = out[str(sizes[-1])]["median_us"] / out[str(sizes[0])]["median_us"]
    return out


# ---------------------------------------------------------------------------- B2 / B4

def twilio_sms(url: str, rate: float, burst: int) -> str:
    """[plugins.sms] settings for the Twilio transport pointed at the local sink."""
    os.environ[TOKEN_ENV] = "bench-token"
    return (f'transport = "twilio"\nfrom = "+16135550100"\nrate_per_second = {rate}\nburst = {burst}\n'
            f'[plugins.sms.twilio]\naccount_sid = "{TWILIO_SID}"\nauth_token = {{env = "{TOKEN_ENV}"}}\n'
            f'base_url = "{url}"')


def through_worker(count: int, patients: int, *, limit: float | None = None) -> dict[str, Any]:
    """``count`` SMS reminders through send_many (queue) then the outbox worker to the sink."""
    import resource
    import urllib.request

    from emrcomm.host import Host
    from emrcomm.outbox.worker import Worker
    from emrcomm.testing import TEST_NOW

    with sink(limit) as sink_url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rate, burst = (limit, 1) if limit is not None else (1000, 1000)
        config = write_clinic(folder, patients, mode="queue", sms=twilio_sms(sink_url, rate, burst))
        with Host.from_config(config, clock=lambda: TEST_NOW) as host:
            source = _Requests("sms", eligible(host, folder, "sms", ("sms",)))
            with _RssSampler() as rss:
                cpu, t = time.process_time(), time.perf_counter()
                queued = Counter(o.status.value for o in host.send_many(source.next() for _ in range(count)))
                submitted = time.perf_counter()
                Worker(host).run(once=True)
                done = time.perf_counter()
                cpu = time.process_time() - cpu
            outbox = host.storage.outbox.counts()
        with urllib.request.urlopen(sink_url + "/stats", timeout=10) as answer:
            seen = json.loads(answer.read())
    return {"count": count, "queued": dict(queued), "outbox": outbox, "sink": seen,
            "submit_per_s": count / (submitted - t), "deliver_per_s": count / (done - submitted),
            "per_s": count / (done - t), "cpu_ms_per_message": cpu / count * 1e3,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_batch_mb": rss.before, "rss_batch_peak_mb": rss.peak}


class _RssSampler:
    """The process's resident set before a batch and its highest value while the batch runs
    (sampled every 50 ms from /proc/self/statm): what the batch itself adds, apart from the
    start-up peak that ``ru_maxrss`` may hold."""

    def __init__(self) -> None:
        self.before = self.peak = self._now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _now() -> float:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._now())

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._now())


def b2(sizes: tuple[int, ...], patients: int) -> dict[str, Any]:
    """A clinic day: each size in a fresh process, so that its peak RSS is its own. The caches
    are warmed first (lexicons, keys, bytecode), as in B5: a cold lexicon cache is rebuilt in
    the first process, whose peak RSS would then be the build's, not the batch's."""
    with tempfile.TemporaryDirectory() as tmp:
        config = write_clinic(Path(tmp), 50, mode="queue")
        subprocess.run([sys.executable, "-c", _START, str(config)], check=True, capture_output=True, timeout=600)
    out: dict[str, Any] = {}
    for count in sizes:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--b2-one", str(count),
                               "--b2-patients", str(patients)],
                              check=True, capture_output=True, text=True, timeout=3600)
        out[str(count)] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def b4(count: int, patients: int, limit: float = 50.0) -> dict[str, Any]:
    """The worker against a sink that answers 429 above ``limit`` messages a second, with the
    transport's rate set to that limit: the rate achieved, and how many 429s it drew."""
    result = through_worker(count, patients, limit=limit)
    result["limit_per_s"] = limit
    accepted, span = result["sink"]["accepted"], result["sink"]["span_s"]
    # The rate at the provider: messages after the first over the time from the first to the
    # last it accepted (n messages at exactly the limit span (n - 1) / limit seconds).
    result["ratio_of_limit"] = (accepted - 1) / span / limit if span else None
    # The whole worker run, from Worker() to its return: start-up and the last settle included.
    result["ratio_with_startup"] = result["deliver_per_s"] / limit
    result["refused_429"] = result["sink"]["refused"]
    return result


# ---------------------------------------------------------------------------- B5

_START = """
import time, sys
t0 = time.perf_counter()
from emrcomm.host import Host
host = Host.from_config(sys.argv[1])
t1 = time.perf_counter()
print(t1 - t0, len(host.plugins))
host.close()
"""


def b5(size: dict[str, int]) -> dict[str, Any]:
    """Import + Host construction in a fresh interpreter (warm caches), median of several runs."""
    with tempfile.TemporaryDirectory() as tmp:
        config = write_clinic(Path(tmp), 50, mode="queue")

        def once() -> tuple[float, int]:
            done = subprocess.run([sys.executable, "-c", _START, str(config)], check=True,
                                  capture_output=True, text=True, timeout=120)
            seconds, plugins = done.stdout.split()
            return float(seconds), int(plugins)

        once()  # warm: keyring, audit key, bytecode (the lexicons wait for a first inspection)
        runs = [once() for _ in range(size["b5"])]
    return {"median_s": statistics.median(r[0] for r in runs), "runs": [r[0] for r in runs],
            "plugins": runs[0][1]}


# ---------------------------------------------------------------------------- report

def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "os": platform.platform(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def worker_available() -> bool:
    return importlib.util.find_spec("emrcomm.outbox.worker") is not None


def run(size_name: str, only: set[str] | None = None) -> dict[str, Any]:
    size = SIZES[size_name]
    wanted: Callable[[str], bool] = lambda name: only is None or name in only  # noqa: E731
    report: dict[str, Any] = {"size": size_name, "machine": machine(), "details": {}}
    keys: dict[str, float | None] = {}
    if wanted("b1"):
        full = b1(size, None)
        normal = b1(size, "normal")
        report["details"]["b1"] = {"full": full, "normal": normal}
        keys.update({
            "b1_sms_p50_ms": full["sms"]["p50_ms"], "b1_sms_p99_ms": full["sms"]["p99_ms"],
            "b1_sms_per_s": full["sms"]["per_s"], "b1_portal_p99_ms": full["portal"]["p99_ms"],
            "b1_normal_sms_p50_ms": normal["sms"]["p50_ms"], "b1_normal_sms_p99_ms": normal["sms"]["p99_ms"],
            "b1_normal_sms_per_s": normal["sms"]["per_s"], "b1_normal_portal_p99_ms": normal["portal"]["p99_ms"],
            "b1_group_sms_per_s": full["sms"]["group"]["per_s"],
            "b1_group_sms_wait_p99_ms": full["sms"]["group"]["wait_p99_ms"],
            "b1_group_portal_per_s": full["portal"]["group"]["per_s"],
        })
    if wanted("b3"):
        result = b3(size)
        report["details"]["b3"] = result
        per_send = result["per_send"]
        keys.update({
            "b3_inline_ratio_vs_raw": result["inline_vs_raw"]["median"],
            "b3_inline_ratio_vs_raw_min": result["inline_vs_raw"]["min"],
            "b3_inline_ratio_vs_raw_max": result["inline_vs_raw"]["max"],
            "b3_inline_ratio_vs_apprise": result["inline_vs_apprise"]["median"] if result["inline_vs_apprise"] else None,
            "b3_inline_ratio_vs_apprise_min": result["inline_vs_apprise"]["min"] if result["inline_vs_apprise"] else None,
            "b3_inline_ratio_vs_apprise_max": result["inline_vs_apprise"]["max"] if result["inline_vs_apprise"] else None,
            "b3_inline_per_s": result["per_s"]["inline"]["median"],
            "b3_raw_per_s": result["per_s"]["raw"]["median"],
            "b3_apprise_per_s": result["per_s"]["apprise"]["median"] if "apprise" in result["per_s"] else None,
            "b3_transport_ratio_vs_raw": result["transport_vs_raw"]["median"],
            "b3_inline_normal_ratio_vs_raw": result["inline_normal_vs_raw"]["median"],
            "b3_floor_ratio_vs_raw": result["floor_vs_raw"]["median"],
            **{f"b3_{step}_{what}": result["phases"][step][what] for step in ("decide", "write", "deliver")
               for what in ("wall_ms", "cpu_ms")},
            "b3_statements_per_send": float(sum(n for k, n in per_send.items() if not k.startswith("commit:"))),
            "b3_durable_commits_per_send": float(per_send.get("commit:durable", 0.0)),
            "b3_relaxed_commits_per_send": float(per_send.get("commit:relaxed", 0.0)),
            "b3_stored_bytes_per_message": float(sum(result["stored_bytes_per_message"].values())),
            "b3_inspect_memo_hit_rate": result["inspect_memo"]["hits"] / max(1, sum(result["inspect_memo"].values())),
            **{f"b3_inspect_us_{kind}": us for kind, us in result["inspect_us"].items()},
        })
    if wanted("b6"):
        result = b6(size["b6"])
        report["details"]["b6"] = result
        keys.update({f"b6_dedup_us_{rows}": result[str(rows)]["median_us"] for rows in size["b6"]})
        keys["b6_dedup_ratio_largest_smallest"] = result["ratio_largest_smallest"]
    if wanted("b5"):
        result = b5(size)
        report["details"]["b5"] = result
        keys["b5_startup_s"] = result["median_s"]
    report["missing"] = {}
    if not worker_available():
        report["missing"] = {"b2": "needs the outbox worker (emrcomm.worker), which does not exist yet",
                             "b4": "needs the outbox worker (emrcomm.worker), which does not exist yet"}
    else:
        if wanted("b2"):
            result = b2(size["b2"], size["patients"])
            report["details"]["b2"] = result
            small, large = str(size["b2"][0]), str(size["b2"][1])
            keys.update({"b2_per_s_1k": result[small]["per_s"], "b2_per_s_10k": result[large]["per_s"],
                         "b2_cpu_ms_10k": result[large]["cpu_ms_per_message"],
                         "b2_rss_mb_10k": result[large]["peak_rss_mb"]})
            keys["b2_batch_rss_growth_mb_10k"] = result[large]["rss_batch_peak_mb"] - result[large]["rss_before_batch_mb"]
            if "100000" in result:
                keys["b2_rss_ratio_100k_10k"] = result["100000"]["peak_rss_mb"] / result[large]["peak_rss_mb"]
                keys["b2_batch_rss_growth_mb_100k"] = (result["100000"]["rss_batch_peak_mb"]
                                                       - result["100000"]["rss_before_batch_mb"])
            else:
                keys["b2_rss_ratio_100k_10k"] = None
                report["missing"]["b2 100k"] = f"skipped at the {size_name} size (run without --quick)"
        if wanted("b4"):
            result = b4(size["b4"], size["patients"])
            report["details"]["b4"] = result
            keys.update({"b4_ratio_of_limit": result["ratio_of_limit"],
                         "b4_ratio_with_startup": result["ratio_with_startup"],
                         "b4_429s": float(result["refused_429"])})
    report["keys"] = keys
    return report


KEY_DOCS = {
    "b1_sms_p50_ms": "B1 SMS reminder, Host.send p50 (ms), synchronous=full",
    "b1_sms_p99_ms": "B1 SMS reminder, Host.send p99 (ms), synchronous=full",
    "b1_sms_per_s": "B1 SMS reminders per second, one caller, synchronous=full",
    "b1_portal_p99_ms": "B1 portal message + SMS notice, p99 (ms), synchronous=full",
    "b1_normal_sms_p50_ms": "B1 SMS reminder p50 (ms), synchronous=normal",
    "b1_normal_sms_p99_ms": "B1 SMS reminder p99 (ms), synchronous=normal",
    "b1_normal_sms_per_s": "B1 SMS reminders per second, synchronous=normal",
    "b1_normal_portal_p99_ms": "B1 portal message + notice p99 (ms), synchronous=normal",
    "b1_group_sms_per_s": "B1 SMS reminders per second via send_many, 100 per commit, synchronous=full",
    "b1_group_sms_wait_p99_ms": "B1 send_many: p99 wait from a request pulled to its outcome (ms)",
    "b1_group_portal_per_s": "B1 portal messages per second via send_many, 100 per commit, full",
    "b3_inline_ratio_vs_raw": "B3 inline Host.send / raw requests loop, messages/s, median of the rounds' ratios",
    "b3_inline_ratio_vs_raw_min": "B3 inline / raw loop, lowest round",
    "b3_inline_ratio_vs_raw_max": "B3 inline / raw loop, highest round",
    "b3_inline_ratio_vs_apprise": "B3 inline Host.send / Apprise json://, median of the rounds' ratios",
    "b3_inline_ratio_vs_apprise_min": "B3 inline / Apprise, lowest round",
    "b3_inline_ratio_vs_apprise_max": "B3 inline / Apprise, highest round",
    "b3_inline_per_s": "B3 emrcomm inline: Host.send one at a time (every rule, filed, synchronous=full), sent by "
                       "the caller's thread through the Twilio transport, messages/s (median round)",
    "b3_raw_per_s": "B3 raw requests.Session POST loop, messages/s (median round)",
    "b3_apprise_per_s": "B3 Apprise json://, throttle off, messages/s (median round)",
    "b3_inline_normal_ratio_vs_raw": "B3 inline Host.send with synchronous=normal (no fsync per commit) / the raw "
                                     "loop, same rounds: the durable commit's share is the gap to b3_inline_ratio_vs_raw",
    "b3_transport_ratio_vs_raw": "B3 the Twilio transport alone (emrcomm's HTTP client on urllib3) / the raw "
                                 "requests loop, the same exchange, median of the rounds' ratios",
    "b3_floor_ratio_vs_raw": "B3 the least a durable outbox costs (a row committed with an fsync before the "
                             "send, the same transport, the row deleted after; no rule, record or audit) / the raw "
                             "loop: what any inline send that keeps the promise can reach at most here",
    **{f"b3_{step}_{what}": f"B3 one inline send, the {step} step: median {kind} (ms)"
       for step in ("decide", "write", "deliver") for what, kind in (("wall_ms", "wall time"),
                                                                     ("cpu_ms", "CPU of the caller's thread"))},
    "b3_statements_per_send": "B3 SQL statements one inline send runs (BEGIN, PRAGMA and COMMIT included)",
    "b3_durable_commits_per_send": "B3 commits per inline send made under synchronous=FULL (fsync'd)",
    "b3_relaxed_commits_per_send": "B3 commits per inline send made under synchronous=NORMAL (no fsync)",
    "b3_stored_bytes_per_message": "B3 bytes the store grew by per message sent inline (every table and index, "
                                   "audit log included; after a checkpoint)",
    **{f"b6_dedup_us_{rows}": f"B6 opt-out confirmation de-duplication (the ledger's last word + the "
                              f"confirmations since), µs median, {rows:,} records and {rows:,} outbox rows"
       for rows in (1000, 10000, 100_000, 1_000_000)},
    "b3_inspect_memo_hit_rate": "B3 share of the inspections (the messages and the warm-up's) served the findings of "
                                "the same words seen before (appointments over the 54 slots of a day)",
    "b3_inspect_us_none": "B3 the content inspector alone on B3's messages in order, µs a message, without its memos",
    "b3_inspect_us_sentences": "B3 the same with the memo of marker matches by sentence (emrcomm_content.subject)",
    "b3_inspect_us_both": "B3 the same with the findings of whole documents kept too (emrcomm_content.Plugin._memo)",
    "b6_dedup_ratio_largest_smallest": "B6 de-duplication cost at the largest store / at the smallest (a scan would grow with the rows, ×1,000)",
    "b2_per_s_1k": "B2 1k reminders: send_many (queue) then the worker to the sink, end to end, per second",
    "b2_per_s_10k": "B2 10k reminders, end to end, per second",
    "b2_cpu_ms_10k": "B2 10k: CPU time per message (ms), emrcomm process (host + worker)",
    "b2_rss_mb_10k": "B2 10k: peak RSS (MB)",
    "b2_rss_ratio_100k_10k": "B2 peak RSS at 100k / at 10k",
    "b2_batch_rss_growth_mb_10k": "B2 10k: highest RSS during the batch minus RSS before it (MB)",
    "b2_batch_rss_growth_mb_100k": "B2 100k: highest RSS during the batch minus RSS before it (MB)",
    "b4_ratio_of_limit": "B4 rate at the sink, (accepted - 1) / (last accepted - first accepted), / its limit "
                         "(50 msg/s); transport rate_per_second = the limit, burst 1",
    "b4_ratio_with_startup": "B4 messages / the whole Worker.run(once=True) (start-up and last settle included), "
                             "/ the sink's limit",
    "b4_429s": "B4 429 answers drawn (goal 0)",
    "b5_startup_s": "B5 import + Host with every built-in plugin, fresh process, warm cache (s)",
}


def table(report: dict[str, Any]) -> str:
    lines = [f"{'key':<34} {'value':>10}  what", "-" * 110]
    for key, value in report["keys"].items():
        shown = "n/a" if value is None else f"{value:10.3f}" if value < 100 else f"{value:10.0f}"
        lines.append(f"{key:<34} {shown:>10}  {KEY_DOCS.get(key, '')}")
    for name, why in report["missing"].items():
        lines.append(f"{name.upper()}: not measured: {why}")
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path = REPORT) -> None:
    """Rewrite the generated part of docs/performance.md (between the markers), keep the rest."""
    m = report["machine"]
    generated = "\n".join([
        "<!-- generated by benchmarks/run.py: do not edit between these markers -->",
        f"Measured {m['date']} with `python benchmarks/run.py{' --quick' if report['size'] == 'quick' else ''}` "
        f"({report['size']} size) on {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"SQLite {m['sqlite']}, {m['os']}.",
        "",
        "| key | value | what |",
        "|---|---:|---|",
        *[f"| `{k}` | {'n/a' if v is None else f'{v:.3f}' if v < 100 else f'{v:.0f}'} | {KEY_DOCS.get(k, '')} |"
          for k, v in report["keys"].items()],
        *[f"\n**{name.upper()}** not measured: {why}." for name, why in report["missing"].items()],
        "<!-- end generated -->",
    ])
    start, end = "<!-- generated by benchmarks/run.py", "<!-- end generated -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n\n" + start + "\n" + end + "\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(head + generated + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="smaller runs: under 5 minutes on 2 cores")
    sizes.add_argument("--tiny", action="store_true", help="a smoke run for the test suite (numbers meaningless)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", action="append", choices=("b1", "b2", "b3", "b4", "b5", "b6"),
                        help="run only these (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite docs/performance.md")
    parser.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sink-limit", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--b2-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--b2-patients", type=int, default=400, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sink:
        serve_sink(args.sink_limit)
        return 0
    if args.b2_one:
        print(json.dumps(through_worker(args.b2_one, args.b2_patients)))
        return 0
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    report = run(size, set(args.only) if args.only else None)
    if not args.no_write and not args.tiny and not args.only:
        write_report(report)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
