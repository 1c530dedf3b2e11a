"""`emrcomm serve` behind a reverse proxy it was not told of (no --forwarded-allow-ips): every
client then has the proxy's address, so the sign-in limits count the whole clinic as one client.
It says so, once, and never reads the header."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

from servers import Process, free_port, healthy, wait_until
from support import write_config

EMRCOMM = Path(sys.executable).with_name("emrcomm")
SAID = "--forwarded-allow-ips was not given"


@pytest.mark.parametrize("trusted", [False, True])
def test_serve_behind_a_proxy_it_was_not_told_of_says_so_once(tmp_path: Path, trusted: bool) -> None:
    config = write_config(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    extra = ["--forwarded-allow-ips", "127.0.0.1"] if trusted else []
    process = Process([EMRCOMM, "serve", "--config", config, "--port", str(port), *extra], log)
    try:
        wait_until(lambda: healthy(port) or not process.alive(), 60, "emrcomm serve")
        for _ in range(3):
            answer = requests.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-For": "203.0.113.9"},
                                  timeout=10)
            assert answer.status_code == 200
    finally:
        process.stop()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert text.count(SAID) == (0 if trusted else 1), text[-2000:]
    assert "203.0.113.9" not in text  # the header's address is not logged
