"""Shared fixtures: a Host on the small test clinic with a fixed clock, and CLI runners."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from emrcomm.config import load_config
from emrcomm.host import Host
from emrcomm.testing import TEST_NOW
from support import write_config


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


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
