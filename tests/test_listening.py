"""The readiness check the suite and the API benchmark use to know a server on a port is theirs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from listening import listens


def test_a_port_this_process_listens_on_is_its_own_and_another_process_s_is_not() -> None:
    with socket.socket() as mine:
        mine.bind(("127.0.0.1", 0))
        port = mine.getsockname()[1]
        assert not listens(os.getpid(), port)  # bound, not yet listening
        mine.listen()
        assert listens(os.getpid(), port)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            assert not listens(child.pid, port)  # the port answers, but not from the child
        finally:
            child.kill()
            child.wait()
    assert not listens(os.getpid(), port)  # closed


def test_a_process_that_is_gone_listens_on_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not listens(child.pid, 1)
