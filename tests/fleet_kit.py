"""A fleet of ``emrcomm worker`` processes on one PostgreSQL, delivering to a local HTTP sink
that answers like Kannel and records every request (the record id rides in the delivery-report
URL): used by tests/test_fleet.py (the fault run) and benchmarks/fleet.py (throughput, limits).

Each worker is a process of its own with its own connections, as on its own machine.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from servers import Reply, ScriptedHTTPServer, Seen
from support import BASE_CONFIG, consent, patient

EMRCOMM = Path(sys.executable).with_name("emrcomm")
ACCEPTED = Reply(202, b"0: Accepted for delivery")
SENDER = "+16135550100"


def clinic(patients: int) -> dict[str, Any]:
    """``patients`` Ontario patients who consent to SMS (so that a group commit holds many)."""
    resources: list[dict[str, Any]] = []
    for i in range(patients):
        mobile = f"+1613555{i:04d}"
        resources += [patient(f"p{i}", given="Pat", family=f"N{i}", mobile=mobile),
                      consent(f"c{i}", f"p{i}", "sms", address=mobile)]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in resources]}


class LimitedSink(ScriptedHTTPServer):
    """A provider that allows ``limit`` requests in any sliding second: more get 429 (counted)."""

    def __init__(self, limit: float | None) -> None:
        super().__init__(ACCEPTED)
        self.limit = limit
        self.arrivals: deque[float] = deque()
        self.refused = 0
        self.times: list[float] = []  # when each accepted request arrived (monotonic)

    def record(self, seen: Seen) -> Reply:
        with self._lock:
            now = time.monotonic()
            if self.limit is not None:
                while self.arrivals and self.arrivals[0] <= now - 1.0:
                    self.arrivals.popleft()
                if len(self.arrivals) >= self.limit:
                    self.refused += 1
                    return Reply(429, b"rate limited", headers=(("Retry-After", "1"),))
                self.arrivals.append(now)
            self.seen.append(seen)
            self.times.append(now)
            return self.default


def received(sink: ScriptedHTTPServer) -> list[str]:
    """The record ids the sink accepted, in order (a duplicate appears twice)."""
    out = []
    for seen in list(sink.seen):
        dlr = seen.headers.get("X-Kannel-DLR-URL", "")
        out += urllib.parse.parse_qs(urllib.parse.urlsplit(dlr).query).get("record", [])
    return out


def fleet_config(folder: Path, store_url: str, sink_url: str, *, rate: float, patients: int,
                 concurrency: int = 4, lease_seconds: float = 2.0) -> Path:
    """A config for the fleet in ``folder``: the sink as Kannel, ``rate`` a second for the sender."""
    (folder / "patients.json").write_text(json.dumps(clinic(patients)), encoding="utf-8")
    (folder / "kannel-pw").write_text("pw-1", encoding="utf-8")
    sms = f"""[plugins.sms]
transport = "kannel"
from = "{SENDER}"
rate_per_second = {rate}
burst = 1
callback_url = "http://127.0.0.1:9/callbacks"
callback_secret = {{file = "kannel-pw"}}
[plugins.sms.kannel]
url = "{sink_url}/cgi-bin/sendsms"
username = "emrcomm"
password = {{file = "kannel-pw"}}
"""
    text = BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', sms)
    text = text.replace('[store]\npath = "emrcomm.sqlite"', f'[store]\npath = "emrcomm.sqlite"\nurl = "{store_url}"')
    text += (f'\n[delivery]\nmode = "queue"\nconcurrency = {concurrency}\nlease_seconds = {lease_seconds}\n'
             "backoff_base = 0.2\nbackoff_cap = 1\nmax_attempts = 50\npoll_seconds = 1\n")
    path = folder / "emrcomm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def enqueue(config: Path, count: int, patients: int) -> list[str]:
    """Queue ``count`` reminders (group commits of ``patients`` distinct patients); their record ids."""
    from emrcomm.host import Host
    from emrcomm.model import Category, Request

    records = []
    with Host.from_config(config) as host:
        requests = (Request(f"Patient/p{i % patients}", Category.APPOINTMENT_REMINDER, id=f"fleet-{i}",
                            text="Riverside Family Health: see you Tuesday at 9:20. Reply STOP to opt out.")
                    for i in range(count))
        for outcome in host.send_many(requests, group=patients):
            assert outcome.status.value == "queued", outcome
            records.append(outcome.record_ids[0])
    return records


class Fleet:
    """Worker processes on ``config``; each can be killed, restarted, or have its connections cut."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config = config
        self.logs = logs
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.kills = 0

    def start(self, slot: int) -> None:
        with (self.logs / f"worker{slot}.log").open("ab") as out:
            self.procs[slot] = subprocess.Popen([str(EMRCOMM), "worker", "--config", str(self.config), "--json"],
                                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self, slot: int) -> None:
        proc = self.procs[slot]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            self.kills += 1

    def cut_connections(self, slot: int, store_url: str) -> int:
        """Terminate every database connection of worker ``slot`` (as a network cut would)."""
        import psycopg

        pid = self.procs[slot].pid
        with psycopg.connect(store_url, autocommit=True) as conn:
            rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                                (f"emrcomm:{pid}",)).fetchall()
        return len(rows)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


def chaos(fleet: Fleet, store_url: str, done: Callable[[], bool], *, kills: int, seed: int, deadline: float,
          cut_after: int = 3) -> dict[str, int]:
    """Kill a random worker and start it again every 0.3-1.2 s until ``kills`` kills and
    ``done()``; after ``cut_after`` kills, cut one worker's database connections once."""
    rand = random.Random(seed)
    cut = 0
    while time.monotonic() < deadline and not (fleet.kills >= kills and done()):
        time.sleep(rand.uniform(0.3, 1.2))
        if fleet.kills < kills:
            slot = rand.randrange(len(fleet.procs))
            fleet.kill(slot)
            fleet.start(slot)
        if fleet.kills >= cut_after and not cut:
            cut = fleet.cut_connections(rand.randrange(len(fleet.procs)), store_url)
    return {"kills": fleet.kills, "connections_cut": cut}


def wait_delivered(sink: ScriptedHTTPServer, records: list[str], deadline: float) -> bool:
    wanted = set(records)
    while time.monotonic() < deadline:
        if wanted <= set(received(sink)):
            return True
        time.sleep(0.1)
    return False


def wait_settled(config: Path, deadline: float) -> bool:
    """Every outbox row settled. A row whose settle was cut off (its worker killed, or its
    connection cut, after the sink had the message) waits for its lease to run out, then a
    worker takes it over: it is sent again (the in-flight window) and settled."""
    from emrcomm.host import Host

    with Host.from_config(config, read_only=True) as host:
        while time.monotonic() < deadline:
            if not sum(host.storage.outbox.counts().values()):
                return True
            time.sleep(0.2)
    return False


def outcome(config: Path, records: list[str], sink: ScriptedHTTPServer) -> dict[str, Any]:
    """Lost, duplicated and stuck (still in the outbox) messages, and the audit chain's verdict."""
    from emrcomm.host import Host

    ids = received(sink)
    counts = collections.Counter(ids)
    with Host.from_config(config, read_only=True) as host:
        states = collections.Counter(r.state for r in map(host.record, records) if r is not None)
        left = host.storage.outbox.counts()
    verify = subprocess.run([str(EMRCOMM), "audit", "verify", "--config", str(config), "--json"],
                            capture_output=True, text=True, timeout=600, check=False)
    report = json.loads(verify.stdout) if verify.stdout.strip().startswith("{") else {"ok": False}
    return {"messages": len(records), "lost": len(set(records) - set(ids)),
            "duplicates": sum(n - 1 for n in counts.values() if n > 1), "stuck": sum(left.values()),
            "chart": dict(states), "audit_ok": bool(report.get("ok")) and verify.returncode == 0,
            "audit_entries": report.get("entries"), "audit_problems": report.get("problems", [])}


def run_in_thread(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
