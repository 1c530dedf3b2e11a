"""A bounded flood from one address against a real ``emrcomm serve`` process (its own process,
uvicorn on 127.0.0.1, the test clock): the flooder gets 429s, and a well-behaved client on
another address gets every answer it should. Its p99 during the flood is printed, not asserted
(a timing on a shared machine decides nothing); docs/security.md records a measured one."""

from __future__ import annotations

import http.client
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from emrcomm.host import Host
from emrcomm_sms.callbacks import record_signature
from hostile_kit import SECRET, kannel_config
from portal_kit import notice_for, send_note, token_in
from servers import free_port, serve_ready
from support import communication

FLOODER, GOOD = "127.0.0.3", "127.0.0.2"  # two client addresses on the loopback network
FLOOD_THREADS, FLOOD_EACH = 6, 400  # 2,400 requests from one address
GOOD_REQUESTS = 100  # half portal pages, half signed reports: within each limit's burst
PER_MINUTE = 60  # on the portal and on the callbacks: bursts of 60, then one a second
LIMITS = f"callback_rate_limit_per_minute = {PER_MINUTE}\n"
PORTAL_LIMIT = f'[plugins.portal]\nkeyring = "keyring.json"\nrate_limit_per_minute = {PER_MINUTE}\n'

EMRCOMM = Path(sys.executable).with_name("emrcomm")


@pytest.fixture
def server(make_host: Callable[..., Host], tmp_path: Path) -> Iterator[tuple[Host, int]]:
    config = kannel_config(tmp_path, LIMITS).replace('[plugins.portal]\nkeyring = "keyring.json"\n', PORTAL_LIMIT)
    host = make_host(config_text=config)
    for _ in range(5):  # a port taken between free_port() and the bind: try another
        port = free_port()
        log = (tmp_path / "serve.log").open("wb")
        # `emrcomm serve` itself, in a process of its own (its clock pinned by the test's EMRCOMM_CLOCK)
        process = subprocess.Popen([str(EMRCOMM), "serve", "--config", str(tmp_path / "emrcomm.toml"),
                                    "--port", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            if serve_ready(port, process, 30):
                yield host, port
                return
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # uvicorn stops cleanly on SIGINT
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(20)
            log.close()
    pytest.fail("emrcomm serve did not start: " + (tmp_path / "serve.log").read_text(errors="replace")[-2000:])


def client(port: int, source: str) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))


def get(connection: http.client.HTTPConnection, path: str) -> int:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response.status


def test_a_flood_from_one_address_gets_429s_while_another_client_is_served(server: tuple[Host, int]) -> None:
    host, port = server
    outcome = send_note(host, rid="flood-note")  # a portal message, and its SMS notice's record
    token = token_in(notice_for(host, outcome)["text"])
    record = outcome.record_ids[-1]
    signed = "/callbacks/kannel/dlr?" + urlencode({"record": record, "sig": record_signature(SECRET, record),
                                                  "type": "1"})
    flood_answers: Counter[int] = Counter()
    lock = threading.Lock()
    flooding = threading.Event()

    def flood(n: int) -> None:
        connection = client(port, FLOODER)
        for i in range(FLOOD_EACH):
            flooding.set()
            path = f"/m/1{'a' * 52}" if i % 2 else f"/callbacks/kannel/dlr?record=x{n}&sig=bad&type=1"
            try:
                status = get(connection, path)
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = client(port, FLOODER)
                status = 0
            with lock:
                flood_answers[status] += 1
        connection.close()

    flooders = [threading.Thread(target=flood, args=(n,), daemon=True) for n in range(FLOOD_THREADS)]
    for thread in flooders:
        thread.start()
    flooding.wait(10)
    good = client(port, GOOD)
    answers: list[int] = []
    seconds: list[float] = []
    for i in range(GOOD_REQUESTS):
        path = f"/m/{token}" if i % 2 == 0 else signed
        start = time.perf_counter()
        answers.append(get(good, path))
        seconds.append(time.perf_counter() - start)
    still_flooding = any(thread.is_alive() for thread in flooders)
    for thread in flooders:
        thread.join(120)
    good.close()

    assert answers == [200] * GOOD_REQUESTS  # every confirm page and every signed report
    # Past a burst of 60 on each of the portal and the callbacks the flooder is refused: even had
    # the flood lasted a whole minute, at most 60 more on each would have gone through.
    assert flood_answers[403] + flood_answers[404] <= 4 * PER_MINUTE, flood_answers
    assert set(flood_answers) <= {403, 404, 429}, flood_answers  # no 5xx, no dropped connection
    resource = communication(host, record)
    assert resource is not None and sum(n["text"].startswith("delivered") for n in resource["note"]) == 1
    p99 = statistics.quantiles(seconds, n=100)[98] * 1000
    print(f"\nflood: {sum(flood_answers.values())} requests from {FLOODER} ({dict(flood_answers)}); "
          f"{GOOD_REQUESTS} from {GOOD}, all answered; p99 {p99:.1f} ms, median "
          f"{statistics.median(seconds) * 1000:.1f} ms" + ("" if still_flooding else " (the flood ended first)"))
