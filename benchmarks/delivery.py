"""Delivery throughput at the transport, as ratios against a raw loop in the same run.

    python benchmarks/delivery.py [--messages N] [--json]

1. Real Kannel (bearerbox + smsbox + fakesmsc on 127.0.0.1): the Kannel transport against a raw
   ``requests.Session`` POST loop doing the same sendsms request.
2. A local HTTP sink answering like Kannel: the same pair, without Kannel's own cost.
3. The provider's limit: a sink that answers 429 when more than L requests arrived in the last
   second, and the transport's rate set to 97 % of L (the margin absorbs scheduling jitter: two
   sends 20 ms apart can arrive 19 ms apart); achieved rate / L and the number of 429s.

Needs Debian ``kannel`` and ``kannel-extras`` (tests/run.sh installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from emrcomm.model import Message, Request  # noqa: E402
from emrcomm.testing import make_context  # noqa: E402
from servers import Kannel, Reply, ScriptedHTTPServer  # noqa: E402

TEXT = "Riverside Family Health: your appointment is Tue, Nov 24 at 9:20 a.m. Reply STOP to opt out."
ACCEPTED = Reply(status=202, body=b"0: Accepted for delivery")
UNLIMITED = 100_000.0  # messages a second: far above what one thread reaches, so the limiter never waits


def transport(tmp: Path, url: str, rate: float) -> Any:
    import emrcomm_sms

    os.environ["EMRCOMM_BENCH_KANNEL_PASSWORD"] = "bench-secret"
    settings = {"transport": "kannel", "from": "+16135550100", "rate_per_second": rate, "burst": 1,
                "kannel": {"url": url, "username": "emrcomm",
                           "password": {"env": "EMRCOMM_BENCH_KANNEL_PASSWORD"}}}
    plugin = emrcomm_sms.Plugin(make_context("sms", settings, tmp))
    [channel] = plugin.emrcomm_register_channels()
    return channel.transport


def raw_loop(url: str, n: int) -> float:
    """The floor: the same POST, no checks, no rate limit, one pooled session."""
    session = requests.Session()
    session.trust_env = False
    headers = {"X-Kannel-Username": "emrcomm", "X-Kannel-Password": "bench-secret",
               "X-Kannel-From": "+16135550100", "Content-Type": "text/plain; charset=utf-8"}
    start = time.perf_counter()
    for i in range(n):
        headers["X-Kannel-To"] = f"+1613555{i % 100:04d}"
        session.post(url, data=TEXT.encode(), headers=headers, timeout=10).raise_for_status()
    elapsed = time.perf_counter() - start
    session.close()
    return n / elapsed


def ours(sender: Any, n: int) -> float:
    message = Message(Request("Patient/bench", "appointment-reminder", text=TEXT), TEXT)
    start = time.perf_counter()
    for i in range(n):
        sender.send(message, f"+1613555{i % 100:04d}", f"{i:032x}")
    return n / (time.perf_counter() - start)


class LimitedSink(ScriptedHTTPServer):
    """Answers 429 when more than ``limit`` requests arrived in the last second."""

    def __init__(self, limit: float) -> None:
        super().__init__(ACCEPTED)
        self.limit = limit
        self.times: deque[float] = deque()
        self.refused = 0
        self._guard = threading.Lock()

    def record(self, seen: Any) -> Reply:
        now = time.monotonic()
        with self._guard:
            while self.times and now - self.times[0] >= 1.0:
                self.times.popleft()
            if len(self.times) >= self.limit:
                self.refused += 1
                return Reply(status=429, body=b"slow down", headers=(("Retry-After", "1"),))
            self.times.append(now)
        return ACCEPTED


def run(n: int) -> dict[str, Any]:
    results: dict[str, Any] = {"messages": n}
    with tempfile.TemporaryDirectory(prefix="emrcomm-bench-") as folder:
        tmp = Path(folder)
        kannel = Kannel(tmp / "kannel", password="bench-secret")
        try:
            ours(transport(tmp, kannel.sendsms_url, UNLIMITED), 20)  # warm up both sides
            raw_loop(kannel.sendsms_url, 20)
            results["kannel_raw_per_s"] = raw_loop(kannel.sendsms_url, n)
            results["kannel_ours_per_s"] = ours(transport(tmp, kannel.sendsms_url, UNLIMITED), n)
        finally:
            kannel.stop()
        sink = ScriptedHTTPServer(ACCEPTED)
        url = sink.url + "/cgi-bin/sendsms"
        raw_loop(url, 20)
        results["sink_raw_per_s"] = raw_loop(url, n)
        results["sink_ours_per_s"] = ours(transport(tmp, url, UNLIMITED), n)
        limit = 50.0
        limited = LimitedSink(limit)
        count = int(limit * 4)  # four seconds at the limit
        results["limit_per_s"] = limit
        configured = limit * 0.97
        results["limit_configured_per_s"] = configured
        results["limit_achieved_per_s"] = ours(transport(tmp, limited.url + "/cgi-bin/sendsms", configured), count)
        results["limit_429s"] = limited.refused
    results["kannel_ratio_vs_raw"] = results["kannel_ours_per_s"] / results["kannel_raw_per_s"]
    results["sink_ratio_vs_raw"] = results["sink_ours_per_s"] / results["sink_raw_per_s"]
    results["ratio_of_limit"] = results["limit_achieved_per_s"] / limit
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = run(args.messages)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'target':<24}{'raw loop':>12}{'emrcomm':>12}{'ratio':>8}")
    for name in ("kannel", "sink"):
        print(f"{name:<24}{results[name + '_raw_per_s']:>10.0f}/s{results[name + '_ours_per_s']:>10.0f}/s"
              f"{results[name + '_ratio_vs_raw']:>8.2f}")
    print(f"rate limit {results['limit_per_s']:.0f}/s: achieved {results['limit_achieved_per_s']:.1f}/s "
          f"= {results['ratio_of_limit']:.3f} of the limit, {results['limit_429s']} answers 429")
    return 0


if __name__ == "__main__":
    sys.exit(main())
