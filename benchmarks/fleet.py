"""Workers on one PostgreSQL: delivery throughput with 1, 2 and 4 worker processes, in the same
run, against a sink without a limit and against one that enforces a provider's limit.

    python benchmarks/fleet.py [--messages N] [--limit L] [--json]
    python benchmarks/fleet.py --fault [--messages 5000]

Each worker is an ``emrcomm worker`` process of its own (its own connections, as on its own
machine), concurrency 4, on a PostgreSQL 15 started here (fsync on: a real commit). The sink
answers like Kannel (tests/fleet_kit.py). Throughput is counted between the first and the last
message the sink received (start-up excluded). Printed: messages a second for each fleet size,
the scaling ratio against one worker, and for the limited sink the achieved rate as a share of
the limit and the number of 429 answers (the fleet's sender limit is ``rate_per_second`` =
97 % of the sink's: a margin for scheduling jitter, as in benchmarks/delivery.py).

``--fault`` runs tests/test_fleet.py's scenario (4 workers killed at random 10 times, one cut
off from the database) with ``--messages`` messages and prints lost, duplicates, stuck, audit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from emrcomm.clock import VARIABLE, shift_to  # noqa: E402
from emrcomm.storage.audit import AUDIT_LOCK  # noqa: E402
from emrcomm.testing import TEST_NOW  # noqa: E402
from fleet_kit import Fleet, LimitedSink, chaos, enqueue, fleet_config, outcome, received, wait_settled  # noqa: E402
from pgserver import PostgresServer  # noqa: E402

PATIENTS = 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its waited-for children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def server_pids(server: PostgresServer) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == server.pid:
                    out.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return [server.pid or 0, *out]


class LockSampler:
    """Samples pg_stat_activity every 20 ms: how often a worker's backend waits for the audit
    chain's advisory lock, for another lock, or runs; and pg_locks: how often some backend holds
    the chain's lock (its utilisation: with the commits a second, how long one hold takes)."""

    def __init__(self, url: str) -> None:
        import threading

        self.url = url
        self.samples: dict[str, int] = {"active": 0, "advisory": 0, "other_lock": 0, "io": 0, "ticks": 0, "held": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.02):
                for _state, kind, event in conn.execute(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE application_name LIKE 'emrcomm:%%' AND state = 'active'"):
                    self.samples["active"] += 1
                    if kind == "Lock":
                        self.samples["advisory" if event == "advisory" else "other_lock"] += 1
                    elif kind in ("IO", "LWLock"):
                        self.samples["io"] += 1
                self.samples["ticks"] += 1
                self.samples["held"] += int(conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = %s", (AUDIT_LOCK,)).fetchone()[0] > 0)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(5)
        return dict(self.samples)


def worker_totals(folder: Path, workers: int) -> dict[str, Any]:
    """Messages sent and settle commits made, from what each stopped worker printed (--json):
    sent / settle_commits is how many settles a commit held on average; and the largest p50,
    p99 and max of the workers' crash windows (the provider's answer to the commit recording it)."""
    totals: dict[str, Any] = {"sent": 0, "settle_commits": 0, "window_ms": {"p50": 0.0, "p99": 0.0, "max": 0.0}}
    for slot in range(workers):
        text = (folder / f"worker{slot}.log").read_text(encoding="utf-8", errors="replace")
        start = text.rfind('{\n  "worker"')
        try:
            stats = json.JSONDecoder().raw_decode(text[start:])[0]["worker"] if start >= 0 else {}
        except ValueError:
            stats = {}
        for key in ("sent", "settle_commits"):
            totals[key] += int(stats.get(key, 0))
        for key, value in (stats.get("crash_window_ms") or {}).items():
            totals["window_ms"][key] = max(totals["window_ms"][key], value or 0.0)
    return totals


@contextlib.contextmanager
def held_back(url: str) -> Iterator[None]:
    """The queued rows are not due until the block ends (then every listening worker is woken):
    a worker process takes ~1-2 s of CPU to start, which would otherwise be spent while the
    first one started already delivers, and be counted against the larger fleets."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM outbox WHERE not_before IS NOT NULL").fetchone()[0] == 0
        conn.execute("UPDATE outbox SET not_before = '9999-12-31T00:00:00.000000+00:00'")
        try:
            yield
        finally:
            conn.execute("UPDATE outbox SET not_before = NULL")
            conn.execute("SELECT pg_notify('emrcomm_outbox', '')")


def wait_listening(url: str, workers: int) -> None:
    """Until ``workers`` worker processes wait on LISTEN (started, idle)."""
    import psycopg

    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND query = 'LISTEN emrcomm_outbox'").fetchone()[0] < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers did not start within 120 s")
            time.sleep(0.05)
    time.sleep(0.5)  # past their first claim (nothing due) and into their wait


def one_run(server: PostgresServer, folder: Path, workers: int, messages: int, limit: float | None) -> dict[str, Any]:
    url = server.new_database()
    folder.mkdir(parents=True)
    sink = LimitedSink(limit)
    try:
        config = fleet_config(folder, url, sink.url, rate=limit * 0.97 if limit else 1000, patients=PATIENTS)
        from emrcomm.host import Host

        Host.from_config(config, upgrade=True).close()
        records = enqueue(config, messages, PATIENTS)
        fleet = Fleet(config, folder)
        with held_back(url):  # every worker started and idle before the first row is due
            for slot in range(workers):
                fleet.start(slot)
            wait_listening(url, workers)
            cpu_before = {"workers": sum(cpu_seconds(p.pid) for p in fleet.procs.values()),
                          "postgres": sum(cpu_seconds(p) for p in server_pids(server)),
                          "sink_and_bench": time.process_time()}
            sampler = LockSampler(url)
            sampled = time.monotonic()
        deadline = time.monotonic() + 600
        try:
            while len(set(received(sink))) < messages and time.monotonic() < deadline:
                time.sleep(0.05)
            cpu = {"workers": sum(cpu_seconds(p.pid) for p in fleet.procs.values()) - cpu_before["workers"],
                   "postgres": sum(cpu_seconds(p) for p in server_pids(server)) - cpu_before["postgres"],
                   "sink_and_bench": time.process_time() - cpu_before["sink_and_bench"]}
        finally:
            locks = sampler.stop()
            sampled = time.monotonic() - sampled
            fleet.stop()
        times = sink.times
        span = times[-1] - times[0] if len(times) > 1 else float("nan")
        lost = len(set(records) - set(received(sink)))
        settles = worker_totals(folder, workers)
        return {"workers": workers, "limit": limit, "messages": messages, "per_s": (len(times) - 1) / span,
                "refused_429": sink.refused, "lost": lost, "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
                "backend_samples": locks, "sent": settles["sent"], "settle_commits": settles["settle_commits"],
                "crash_window_ms": settles["window_ms"],
                # the chain's lock: the share of samples it was held, and so how long one hold took
                # (each settle commit holds it once; the claims chain nothing)
                "lock_held_share": locks["held"] / max(1, locks["ticks"]),
                "lock_hold_ms": locks["held"] / max(1, locks["ticks"]) * sampled * 1000 / max(1, settles["settle_commits"])}
    finally:
        sink.close()
        server.drop_database(url)


def throughput(messages: int, limit: float) -> dict[str, Any]:
    results: dict[str, Any] = {"cores": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="emrcomm-fleet-") as tmp, PostgresServer(durable=True) as server:
        for sink_limit, count in ((None, messages), (limit, min(messages, int(limit * 8)))):
            for workers in (1, 2, 4):
                run = one_run(server, Path(tmp) / f"{sink_limit}-{workers}", workers, count, sink_limit)
                results["runs"].append(run)
                print(f"  {'unlimited' if sink_limit is None else f'limit {sink_limit:g}/s':<14} {workers} worker(s): "
                      f"{run['per_s']:7.1f} messages/s, {run['refused_429']} x 429, lost {run['lost']}; "
                      f"CPU s {run['cpu_seconds']}; backends active/advisory-wait {run['backend_samples']}; "
                      f"settles a commit {run['sent'] / max(1, run['settle_commits']):.2f}; chain lock held "
                      f"{run['lock_held_share']:.0%}, {run['lock_hold_ms']:.2f} ms a hold; crash window ms "
                      f"{run['crash_window_ms']}",
                      file=sys.stderr)
    by = {(r["limit"], r["workers"]): r["per_s"] for r in results["runs"]}
    results["scaling_unlimited"] = {f"{w}/1": by[(None, w)] / by[(None, 1)] for w in (2, 4)}
    results["limited_share_of_limit"] = {str(w): by[(limit, w)] / limit for w in (1, 2, 4)}
    results["limited_429s"] = sum(r["refused_429"] for r in results["runs"] if r["limit"])
    return results


def fault(messages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="emrcomm-fault-") as tmp, PostgresServer(durable=True) as server:
        url = server.new_database()
        sink = LimitedSink(None)
        try:
            config = fleet_config(Path(tmp), url, sink.url, rate=1000, patients=PATIENTS)
            from emrcomm.host import Host

            Host.from_config(config, upgrade=True).close()
            records = enqueue(config, messages, PATIENTS)
            fleet = Fleet(config, Path(tmp))
            started = time.monotonic()
            for slot in range(4):
                fleet.start(slot)
            wanted = set(records)
            try:
                faults = chaos(fleet, url, lambda: wanted <= set(received(sink)), kills=10, seed=15,
                               deadline=time.monotonic() + 900)
                while not wanted <= set(received(sink)) and time.monotonic() < started + 1200:
                    time.sleep(0.1)
                wait_settled(config, time.monotonic() + 60)  # what is left after it is stuck
            finally:
                fleet.stop()
            took = time.monotonic() - started
            return {**faults, **outcome(config, records, sink), "seconds": round(took, 1)}
        finally:
            sink.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--limit", type=float, default=50.0, help="the limited sink's requests a second")
    parser.add_argument("--fault", action="store_true", help="the fault run instead (tests/test_fleet.py)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault(VARIABLE, shift_to(TEST_NOW))  # 10:00 in Toronto: outside quiet hours
    results = fault(args.messages) if args.fault else throughput(args.messages, args.limit)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if args.fault:
        print(f"{results['messages']} messages, 4 workers, {results['kills']} kills, {results['connections_cut']} "
              f"connections cut: lost {results['lost']}, duplicates {results['duplicates']}, stuck {results['stuck']}, "
              f"audit {'verifies' if results['audit_ok'] else 'FAILS'} ({results['audit_entries']} entries), "
              f"{results['seconds']} s")
        return 0
    runs = results["runs"]
    for r in runs:
        label = "unlimited sink" if r["limit"] is None else f"sink limit {r['limit']:g}/s"
        print(f"{label:<22} {r['workers']} worker(s) {r['per_s']:8.1f}/s  429s: {r['refused_429']}")
    print("scaling (unlimited): " + ", ".join(f"{k} = {v:.2f}" for k, v in results["scaling_unlimited"].items()))
    print("limited: achieved / limit: " + ", ".join(f"{k} worker(s) {v:.3f}"
                                                    for k, v in results["limited_share_of_limit"].items())
          + f"; 429 answers in all: {results['limited_429s']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
