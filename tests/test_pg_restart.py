"""The PostgreSQL server restarts (a minor-version upgrade at night, a failover) while two
``emrcomm worker`` processes deliver a queue and ``emrcomm serve`` answers the EMR: the server
of this test's own (tests/pgserver.py) is stopped as ``pg_ctl stop -m fast`` stops it, for a few
seconds, mid-batch, and started again.

What an operator is promised (docs/operations.md, "When the database server restarts"): while
it is down the API answers 503 with an OperationOutcome and Retry-After (never a 500, never a
hang), the processes stay up, and once it is back everything resumes without anyone touching
it: every message delivered, none lost or stuck, only the messages in flight sent twice, and
the audit chain verifies.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api_kit import ClientKey, register, token_form
from emrcomm.api.scopes import ALL
from emrcomm.host import Host
from fleet_kit import (
    EMRCOMM,
    Fleet,
    LimitedSink,
    enqueue,
    fleet_config,
    outcome,
    received,
    wait_delivered,
    wait_settled,
)
from servers import Process, free_port, serve_ready, start_retrying
from support import fhir_request

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MESSAGES, PATIENTS, WORKERS, CONCURRENCY = 300, 50, 2, 4
RATE = 40  # messages a second to the sink: the batch takes ~8 s, so the outage falls mid-batch
DOWN_AFTER = 100  # messages received before the server is stopped
DOWN_SECONDS = 5.0
TEXT = "Riverside Family Health: see you Tuesday at 9:20. Reply STOP to opt out."


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A PostgreSQL server of this test's own (the session's serves every other test), with one
    database at the current schema."""
    import pgserver

    with pgserver.own_server() as (server, url):
        yield server, url


class Emr:
    """An EMR calling serve's API every 50 ms from a thread: it creates reminders (each id sent
    again, as an EMR does, until it is answered) and reads the last one back. Every answer's
    status is counted; a request that got no answer within 30 s counts as ``hang``."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.statuses: collections.Counter[str] = collections.Counter()
        self.unavailable: list[tuple[str, dict[str, str], str]] = []  # the 503s: (what, headers, body)
        self.created: list[str] = []
        self.last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Emr:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def answered_since(self, count: int) -> int:
        return sum(self.statuses.values()) - count

    def call(self, what: str, method: str, path: str, body: Any = None) -> int:
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/fhir+json"
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            connection.close()
        except TimeoutError:
            self.statuses[f"{what} hang"] += 1
            return 0
        except OSError as exc:
            self.statuses[f"{what} {type(exc).__name__}"] += 1
            return 0
        self.statuses[f"{what} {response.status}"] += 1
        self.last[what] = response.status
        if response.status == 503:
            self.unavailable.append((what, {k.lower(): v for k, v in response.getheaders()}, text))
        return response.status

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            ident = f"emr-{n}"
            status = self.call("create", "POST", "/fhir/CommunicationRequest", fhir_request(
                f"Patient/p{n % PATIENTS}", "appointment-reminder", text=TEXT, rid=ident))
            if 200 <= status < 300:
                self.created.append(ident)
                n += 1
            if self.created:
                self.call("read", "GET", f"/fhir/CommunicationRequest/{self.created[-1]}")
            self._stop.wait(0.05)


@contextlib.contextmanager
def serving(config: Path, logs: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``emrcomm serve`` on a free port of 127.0.0.1, stopped by its PID at the end."""
    def start() -> tuple[Process, int]:
        port = free_port()
        process = Process([EMRCOMM, "serve", "--config", config, "--port", str(port)], logs / "serve.log")
        if not serve_ready(port, process.popen):
            process.stop()
            raise RuntimeError("emrcomm serve did not start: " + process.log.read_text(errors="replace")[-2000:])
        return process, port

    process, port = start_retrying(start, "emrcomm serve")
    try:
        yield process.popen, port
    finally:
        process.stop(30)


def token(host: Host, port: int) -> str:
    key = ClientKey()
    client = register(host, key)
    audience = f"http://127.0.0.1:{port}/fhir/auth/token"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/fhir/auth/token", body=token_form(
        client, key.assertion(client, host.clock(), aud=audience), " ".join(ALL)),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200, body
    return str(json.loads(body)["access_token"])


def wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_database_server_restart_mid_batch_loses_nothing_and_the_api_answers_503_meanwhile(
        own_postgres: tuple[Any, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server, url = own_postgres
    sink = LimitedSink(None)
    try:
        config = fleet_config(tmp_path, url, sink.url, rate=RATE, patients=PATIENTS, concurrency=CONCURRENCY,
                              lease_seconds=4.0)
        queued = enqueue(config, MESSAGES, patients=PATIENTS)
        fleet = Fleet(config, tmp_path)
        with Host.from_config(config) as host, serving(config, tmp_path) as (serve, port):
            emr = Emr(port, token(host, port)).start()
            for slot in range(WORKERS):
                fleet.start(slot)
            try:
                assert wait_until(lambda: len(received(sink)) >= DOWN_AFTER, 120), "the workers sent nothing"
                before = sum(emr.statuses.values())
                server.halt()
                halted = time.monotonic()
                # Away at least DOWN_SECONDS, and until the API has answered the EMR meanwhile
                # (a 503, not a hang): on a loaded machine the first answer may take longer.
                wait_until(lambda: bool(emr.unavailable), 60)
                wait_until(lambda: False, DOWN_SECONDS - (time.monotonic() - halted))
                answered_while_down = emr.answered_since(before)
                down_for = time.monotonic() - halted
                server.start()
                created = len(emr.created)
                resumed = wait_until(lambda: len(emr.created) >= created + 10, 60)
                emr.stop()
                alive = {"serve": serve.poll() is None,
                         **{f"worker{slot}": proc.poll() is None for slot, proc in fleet.procs.items()}}
                records = queued + [r.id for ident in emr.created for r in host.storage.records.for_request(ident)]
                delivered = wait_delivered(sink, records, time.monotonic() + 120)
                wait_settled(config, time.monotonic() + 60)
            finally:
                emr.stop()
                fleet.stop()
        result = outcome(config, records, sink)
    finally:
        sink.close()
    logs = {name: (tmp_path / f"{name}.log").read_text(errors="replace") for name in ("serve", "worker0", "worker1")}
    with capsys.disabled():
        print(f"\n[pg restart] {len(records)} messages ({len(emr.created)} from the EMR during the run), "
              f"{WORKERS} workers, server down {down_for:.0f} s: lost {result['lost']}, records not saying "
              f"accepted {len(records) - result['chart'].get('accepted', 0)}, duplicates "
              f"{result['duplicates']}, stuck {result['stuck']}, audit ok {result['audit_ok']} "
              f"({result['audit_entries']} entries); API {dict(sorted(emr.statuses.items()))}, "
              f"{answered_while_down} answered while down; alive {alive}")
    assert resumed, ("the API did not take new requests after the restart", dict(emr.statuses), logs["serve"][-3000:])
    assert all(alive.values()), (alive, {k: v[-3000:] for k, v in logs.items()})
    assert not [s for s in emr.statuses if not s.endswith((" 200", " 201", " 202", " 503"))], dict(emr.statuses)
    assert emr.unavailable and answered_while_down, "the API gave no 503 while the server was down"
    for what, headers, body in emr.unavailable:
        assert headers.get("content-type", "").startswith("application/fhir+json"), (what, headers)
        assert json.loads(body)["resourceType"] == "OperationOutcome", (what, body)
        assert int(headers["retry-after"]) > 0, (what, headers)
    assert delivered and result["lost"] == 0
    assert result["stuck"] == 0 and result["chart"] == {"accepted": len(records)}, result
    # The in-flight window: a thread may have sent a message whose "sent" mark the stopped server
    # never committed; the row is taken over once the server is back and sent again. One per
    # thread of each worker; nothing else may go twice.
    assert result["duplicates"] <= WORKERS * CONCURRENCY, result
    assert result["audit_ok"], result["audit_problems"]
