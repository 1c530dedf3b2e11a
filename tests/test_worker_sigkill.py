"""`emrcomm worker` killed with SIGKILL in the middle of a batch, then restarted: every message
is delivered, none is lost, and the duplicates are counted (0 with the file sink, which takes the
record id as its key; at most one per message in flight with Kannel, which takes no key)."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emrcomm.host import Host
from emrcomm.model import Status
from servers import Reply, ScriptedHTTPServer, wait_until
from support import BASE_CONFIG
from test_worker import reminder

N = 200
EMRCOMM = Path(sys.executable).with_name("emrcomm")
WORKER = '\n[delivery]\nmode = "queue"\nconcurrency = 4\nlease_seconds = 2\nbackoff_base = 0.1\nbackoff_cap = 1\n'


def start_worker(config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([str(EMRCOMM), "worker", "--config", str(config), "--json", *extra],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def kill_mid_batch(config: Path, log: Path, progress: Callable[[], int]) -> int:
    """Start a worker, SIGKILL it once a third of the queue is out, and return how far it got."""
    proc = start_worker(config, log)
    try:
        wait_until(lambda: progress() >= N // 3, 60, "a third of the batch delivered", interval=0.005)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    return progress()


def finish(config: Path, log: Path, lease_seconds: float = 2.0) -> dict[str, Any]:
    """Restart after the dead worker's leases ran out, deliver everything due, return its stats."""
    time.sleep(lease_seconds + 0.2)
    proc = start_worker(config, log, "--once")
    assert proc.wait(120) == 0, log.read_text(encoding="utf-8")[-2000:]
    last = log.read_text(encoding="utf-8").rsplit('{\n  "worker"', 1)[1]
    result: dict[str, Any] = json.loads('{\n  "worker"' + last)
    return result


def chart_states(config: Path, records: list[str]) -> dict[str, int]:
    """How many of ``records`` the chart has in each lifecycle state."""
    with Host.from_config(config, read_only=True) as host:
        return dict(collections.Counter(r.state for r in map(host.record, records) if r is not None))


def enqueue(host: Host) -> list[str]:
    outcomes = [host.send(reminder(f"k-{i}")) for i in range(N)]
    assert {o.status for o in outcomes} == {Status.QUEUED}
    return [o.record_ids[0] for o in outcomes]


def test_sigkill_mid_batch_with_the_file_sink_loses_nothing_and_duplicates_nothing(
    make_host: Callable[..., Host], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = make_host(WORKER)
    records = enqueue(host)
    host.close()
    config, log = tmp_path / "emrcomm.toml", tmp_path / "worker.log"
    sink = tmp_path / "out" / "sms.jsonl"

    def lines(*, written: bool = True) -> list[str]:
        """The ids in the sink; while the worker runs (``written=False``), a last line it is still writing
        is not counted yet (a reader can see a line half written; it failed this test once)."""
        if not sink.exists():
            return []
        text = sink.read_text(encoding="utf-8")
        if not written:
            text = text[: text.rfind("\n") + 1]
        return [json.loads(x)["id"] for x in text.splitlines()]

    at_kill = kill_mid_batch(config, log, lambda: len(lines(written=False)))
    assert at_kill < N, "the worker finished before it could be killed"
    result = finish(config, log)
    ids = lines()
    duplicates = len(ids) - len(set(ids))
    assert set(ids) == set(records)  # none lost
    assert duplicates == 0
    assert result["outbox"] == {}  # nothing left to deliver
    assert chart_states(config, records) == {"accepted": N}  # and the chart says so, for each
    with capsys.disabled():
        print(f"\n[sigkill/file sink] killed at {at_kill}/{N}; taken over {result['worker']['taken_over']}; "
              f"duplicates {duplicates}; crash window {result['worker']['crash_window_ms']} ms")


def test_sigkill_mid_batch_with_kannel_loses_nothing_and_counts_duplicates(
    make_host: Callable[..., Host], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ScriptedHTTPServer(Reply(202, b"0: Accepted for delivery", delay=0.005))
    try:
        (tmp_path / "kannel-pw").write_text("pw-1", encoding="utf-8")
        kannel = f"""
[plugins.sms]
transport = "kannel"
from = "+16135550100"
rate_per_second = 1000
burst = 50
callback_url = "http://127.0.0.1:9/callbacks"
callback_secret = {{file = "{tmp_path / 'kannel-pw'}"}}
[plugins.sms.kannel]
url = "{server.url}/cgi-bin/sendsms"
username = "emrcomm"
password = {{file = "{tmp_path / 'kannel-pw'}"}}
"""
        host = make_host(WORKER, config_text=BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', kannel))
        records = enqueue(host)
        host.close()
        config, log = tmp_path / "emrcomm.toml", tmp_path / "worker.log"

        def received() -> list[str]:
            out = []
            for seen in list(server.seen):
                dlr = seen.headers.get("X-Kannel-DLR-URL", "")
                out += urllib.parse.parse_qs(urllib.parse.urlsplit(dlr).query).get("record", [])
            return out

        at_kill = kill_mid_batch(config, log, lambda: len(server.seen))
        assert at_kill < N
        result = finish(config, log)
        ids = received()
        twice = {k: n for k, n in collections.Counter(ids).items() if n > 1}
        assert set(ids) == set(records)  # none lost
        assert result["outbox"] == {}
        assert chart_states(config, records) == {"accepted": N}
        # Kannel takes no key: only a message in flight when the worker died (at most one per
        # thread: concurrency = 4) can go twice. The other rows it had claimed were never sent;
        # they are taken over too, after their lease.
        assert sum(n - 1 for n in twice.values()) <= min(result["worker"]["taken_over"], 4)
        with capsys.disabled():
            print(f"\n[sigkill/kannel] killed at {at_kill}/{N}; taken over {result['worker']['taken_over']}; "
                  f"received twice {len(twice)}")
    finally:
        server.close()
