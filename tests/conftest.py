"""Shared fixtures: a Host on the small test clinic with a fixed clock, and CLI runners; the
markers of tests that need a real server, skipped by hand without it, never in CI."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from emrcomm.clock import VARIABLE, shift_to
from emrcomm.config import DATA_DIR_VARIABLE, load_config
from emrcomm.host import Host
from emrcomm.testing import TEST_NOW
from support import REPO, write_config
from tools import TOOLS, require

# Fixtures that start a real server: a test that uses one carries the server's marker.
SERVER_FIXTURES = {"kannel": "kannel", "kannel_queue_full": "kannel", "prism": "node", "postfix": "postfix"}


CHECKOUT_STATUS = pytest.StashKey[list[str] | None]()


def checkout_status() -> list[str] | None:
    """``git status`` of the checkout the tests run from (None outside a git checkout)."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                              capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return None
    return done.stdout.splitlines() if done.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[CHECKOUT_STATUS] = checkout_status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite leaves the checkout as it found it: a file a test (or the product it runs) left
    in the repository fails the run."""
    before, after = session.config.stash.get(CHECKOUT_STATUS, None), checkout_status()
    if before is None or after is None:
        return
    left = sorted(set(after) - set(before))
    if left:
        print("\nThe tests left files in the checkout (git status):\n  " + "\n  ".join(left), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    for name, (_, how) in TOOLS.items():
        config.addinivalue_line("markers", f"{name}: needs {name} ({how})")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in SERVER_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in TOOLS:
        if item.get_closest_marker(marker) is not None:
            require(marker)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(autouse=True)
def _pinned_clock_and_data(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every Host built without a clock of its own (the CLI in process, ``serve``, workers and the
    send pool's children as processes) lives at TEST_NOW, moving from there at real speed; the
    embedded defaults keep their data in a temporary folder, not the user's."""
    monkeypatch.setenv(VARIABLE, shift_to(TEST_NOW))
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(tmp_path_factory.mktemp("user-data")))


@pytest.fixture
def clock() -> Clock:
    """10:00 in Ottawa on a Monday: inside every quiet-hours window."""
    return Clock(TEST_NOW)


@pytest.fixture
def make_host(tmp_path: Path, clock: Clock) -> Iterator[Callable[..., Host]]:
    hosts: list[Host] = []

    def make(extra: str = "", *, config_text: str | None = None, **kwargs: Any) -> Host:
        path = write_config(tmp_path, extra)
        if config_text is not None:
            path.write_text(config_text + extra, encoding="utf-8")
        config = load_config(path)
        host = Host(config, clock=kwargs.pop("clock", clock), **kwargs)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()


@pytest.fixture
def host(make_host: Callable[..., Host]) -> Host:
    return make_host()
