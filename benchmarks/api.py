"""The FHIR API's cost: requests over HTTP beside ``Host.send`` in-process, in the same run.

    python benchmarks/api.py [--tiny | --quick] [--json]

On the synthetic clinic of benchmarks/run.py (every built-in plugin on, delivery mode
``queue``: everything up to the durable outbox row, the filed record and the signed audit
entries, committed; no network), the same SMS appointment reminders go

* **in-process**: ``Host.send(Request)`` in this process, one after another;
* **HTTP, one connection**: ``POST /fhir/CommunicationRequest`` to a real ``emrcomm serve``
  process on 127.0.0.1, one keep-alive connection (``http.client``), a bearer token got with a
  signed assertion first; the default answer (the Bundle of the request, its Communication and
  the OperationOutcome);
* **HTTP, four connections**: the same from four threads, each with its own connection;
* **search**: ``GET /fhir/Communication?patient=…&_count=10`` on one connection.

It prints requests per second, p50 and p99 per request, and the ratios HTTP / in-process.
Nothing here is asserted; ``--tiny`` is the smoke size tests/test_benchmarks.py runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))  # listening.py: stdlib only

from run import _Requests, eligible, percentile, write_clinic

from listening import listens

SIZES = {"tiny": {"n": 20, "patients": 60, "search": 10}, "quick": {"n": 400, "patients": 300, "search": 200},
         "full": {"n": 2000, "patients": 1000, "search": 500}}
THREADS = 4
EMRCOMM = Path(sys.executable).with_name("emrcomm")


def in_process(folder: Path, n: int, patients: int) -> tuple[dict[str, Any], list[str]]:
    from emrcomm.host import Host
    from emrcomm.testing import FixedClock

    config = write_clinic(folder, patients, mode="queue")
    with Host.from_config(config, clock=FixedClock()) as host:
        refs = eligible(host, folder, "sms", ("sms",))
        source = _Requests("sms", refs)
        for _ in range(min(20, n)):
            host.send(source.next())
        times, statuses = [], Counter[str]()
        for _ in range(n):
            request = source.next()
            t = time.perf_counter()
            statuses[host.send(request).status.value] += 1
            times.append(time.perf_counter() - t)
    return summary(times, statuses), refs


def summary(times: list[float], statuses: Counter[Any], wall: float | None = None) -> dict[str, Any]:
    return {"count": len(times), "p50_ms": percentile(times, 0.5) * 1e3, "p99_ms": percentile(times, 0.99) * 1e3,
            "per_s": len(times) / (wall if wall is not None else sum(times)), "statuses": dict(statuses)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(config: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    from emrcomm.clock import VARIABLE, shift_to
    from emrcomm.testing import TEST_NOW

    env = {**os.environ, VARIABLE: shift_to(TEST_NOW)}  # the same instant as the in-process host
    for _ in range(5):
        port = free_port()
        process = subprocess.Popen([str(EMRCOMM), "serve", "--config", str(config), "--port", str(port)],
                                   stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if not listens(process.pid, port):  # not yet, or another server took the port first
                time.sleep(0.1)
                continue
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/fhir/metadata")
                if connection.getresponse().status == 200:
                    return process, port
            except OSError:
                time.sleep(0.1)
        stop(process)
    raise RuntimeError("emrcomm serve did not start: " + log.read_text(errors="replace")[-2000:])


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)


def token(config: Path, port: int) -> str:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    from emrcomm.api.clients import ClientRegistry
    from emrcomm.api.scopes import ALL
    from emrcomm.host import Host
    from emrcomm.testing import TEST_NOW

    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": "bench", "alg": "ES384"}
    with Host.from_config(config) as host:
        client = ClientRegistry(host.storage.db, host.clock).add("benchmark", {"keys": [jwk]}, " ".join(ALL)).id
    aud = f"http://127.0.0.1:{port}/fhir/auth/token"
    now = int(TEST_NOW.timestamp())
    assertion = jwt.encode({"iss": client, "sub": client, "aud": aud, "jti": uuid.uuid4().hex, "iat": now,
                            "exp": now + 240}, key, algorithm="ES384", headers={"kid": "bench"})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/fhir/auth/token", urlencode({
        "grant_type": "client_credentials", "scope": " ".join(ALL), "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}),
        {"content-type": "application/x-www-form-urlencoded"})
    answer = connection.getresponse()
    body = json.loads(answer.read())
    if answer.status != 200:
        raise RuntimeError(f"no token: {body}")
    return str(body["access_token"])


def post_all(port: int, bearer: str, bodies: list[bytes]) -> tuple[list[float], Counter[int]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"authorization": f"Bearer {bearer}", "content-type": "application/fhir+json"}
    times, statuses = [], Counter[int]()
    for data in bodies:
        t = time.perf_counter()
        connection.request("POST", "/fhir/CommunicationRequest", data, headers)
        answer = connection.getresponse()
        answer.read()
        times.append(time.perf_counter() - t)
        statuses[answer.status] += 1
    connection.close()
    return times, statuses


def over_http(folder: Path, n: int, patients: int, refs: list[str], searches: int) -> dict[str, Any]:
    from emrcomm.fhir import request_to_fhir

    config = write_clinic(folder, patients, mode="queue")
    process, port = start_serve(config, folder / "serve.log")
    try:
        bearer = token(config, port)
        source = _Requests("sms", refs)

        def bodies(count: int) -> list[bytes]:
            return [json.dumps(request_to_fhir(source.next())).encode() for _ in range(count)]

        post_all(port, bearer, bodies(min(20, n)))  # warm
        times, statuses = post_all(port, bearer, bodies(n))
        one = summary(times, statuses)
        batches = [bodies(n // THREADS) for _ in range(THREADS)]
        results: list[tuple[list[float], Counter[int]]] = []
        lock = threading.Lock()

        def run(chunk: list[bytes]) -> None:
            got = post_all(port, bearer, chunk)
            with lock:
                results.append(got)

        threads = [threading.Thread(target=run, args=(b,)) for b in batches]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        many = summary([x for r in results for x in r[0]], sum((r[1] for r in results), Counter()), wall)

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        search_times = []
        for i in range(searches):
            t = time.perf_counter()
            connection.request("GET", f"/fhir/Communication?patient={refs[i % len(refs)]}&_count=10",
                               headers={"authorization": f"Bearer {bearer}"})
            connection.getresponse().read()
            search_times.append(time.perf_counter() - t)
        return {"one_connection": one, f"{THREADS}_connections": many,
                "search": summary(search_times, Counter({200: searches}))}
    finally:
        stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    size = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    with tempfile.TemporaryDirectory() as tmp:
        inproc, refs = in_process(Path(tmp) / "in-process", size["n"], size["patients"])
        http_ = over_http(Path(tmp) / "http", size["n"], size["patients"], refs, size["search"])
    one = http_["one_connection"]
    keys = {
        "inprocess_per_s": inproc["per_s"], "inprocess_p50_ms": inproc["p50_ms"], "inprocess_p99_ms": inproc["p99_ms"],
        "http_per_s": one["per_s"], "http_p50_ms": one["p50_ms"], "http_p99_ms": one["p99_ms"],
        f"http_{THREADS}conn_per_s": http_[f"{THREADS}_connections"]["per_s"],
        f"http_{THREADS}conn_p99_ms": http_[f"{THREADS}_connections"]["p99_ms"],
        "search_p50_ms": http_["search"]["p50_ms"], "search_p99_ms": http_["search"]["p99_ms"],
        "ratio_http_per_s_vs_inprocess": one["per_s"] / inproc["per_s"],
        "ratio_http_p50_vs_inprocess": one["p50_ms"] / inproc["p50_ms"],
    }
    report = {"keys": keys, "in_process": inproc, "http": http_,
              "machine": {"cores": os.cpu_count(), "python": platform.python_version()}, "size": size}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'':28} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for name, row in (("Host.send in-process", inproc), ("HTTP, 1 connection", one),
                      (f"HTTP, {THREADS} connections", http_[f"{THREADS}_connections"]),
                      ("search (GET, 1 conn.)", http_["search"])):
        print(f"{name:28} {row['per_s']:8.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f}  {row['statuses']}")
    print(f"HTTP / in-process: {keys['ratio_http_per_s_vs_inprocess']:.2f}x the requests per second, "
          f"{keys['ratio_http_p50_vs_inprocess']:.2f}x the p50")
    return 0


if __name__ == "__main__":
    sys.exit(main())
