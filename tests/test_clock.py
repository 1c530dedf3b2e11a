"""One clock for every decision (emrcomm.clock): a Host built without one, a ``emrcomm`` command
and a worker process all read the system clock, or the one ``EMRCOMM_CLOCK`` moves them to."""

from __future__ import annotations

import datetime as dt
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from emrcomm.cli import main
from emrcomm.clock import VARIABLE, ShiftedClock, default_clock, parse, shift_to, utcnow
from emrcomm.errors import ConfigError
from emrcomm.host import Host
from emrcomm.model import Status
from support import write_config
from test_worker import reminder, sink

TORONTO = dt.timezone(dt.timedelta(hours=-5))
EVENING = dt.datetime(2026, 11, 23, 22, 30, tzinfo=TORONTO)  # quiet hours (08:00-21:00)
MORNING = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TORONTO)
EMRCOMM = Path(sys.executable).with_name("emrcomm")


def test_without_the_variable_the_clock_is_the_systems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE)
    before = dt.datetime.now(dt.UTC)
    assert default_clock() is utcnow
    assert before <= utcnow() <= dt.datetime.now(dt.UTC)


def test_a_shifted_clock_starts_at_the_instant_and_moves() -> None:
    clock = parse(EVENING.isoformat())
    first = clock()
    assert abs((first - EVENING).total_seconds()) < 60
    time.sleep(0.01)
    assert clock() > first


def test_processes_given_the_same_anchored_value_agree() -> None:
    value = shift_to(EVENING, at=1_700_000_000.0)
    a, b = parse(value), parse(value)
    assert a.offset == b.offset == EVENING - dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)


def test_a_shifted_clock_can_be_sent_to_a_child_process() -> None:
    clock = parse(shift_to(EVENING))
    assert pickle.loads(pickle.dumps(clock)) == clock and isinstance(clock, ShiftedClock)


@pytest.mark.parametrize(("value", "says"), [
    ("tomorrow", "expected an ISO date-time"),
    ("2026-11-23T22:30:00", "has no zone"),
    ("2026-11-23T22:30:00Z@yesterday", "Unix time"),
])
def test_a_bad_value_names_the_variable(value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=rf"{VARIABLE}=.*{says}"):
        parse(value)


def test_a_host_without_a_clock_of_its_own_decides_by_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path)
    monkeypatch.setenv(VARIABLE, shift_to(EVENING))
    with Host.from_config(config) as host:
        assert host.send(reminder("r-evening")).status is Status.HELD
    monkeypatch.setenv(VARIABLE, shift_to(MORNING))
    with Host.from_config(config) as host:
        assert host.send(reminder("r-morning")).status is Status.SENT


def test_the_command_line_decides_by_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path))
    text = "Riverside Family Health: see you Monday at 10:30. Reply STOP to opt out."
    ask = ["check", "--config", config, "--patient", "Patient/on-en", "--text", text]
    monkeypatch.setenv(VARIABLE, shift_to(EVENING))
    assert main(ask) == 0
    assert "would be: HELD on sms" in capsys.readouterr().out
    monkeypatch.setenv(VARIABLE, shift_to(MORNING))
    assert main(ask) == 0
    assert "would be: SENT on sms" in capsys.readouterr().out


def test_a_worker_process_releases_a_held_message_by_the_variable(
        make_host: Callable[..., Host], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = make_host('\n[delivery]\nmode = "queue"\n', clock=lambda: EVENING)
    assert host.send(reminder()).status is Status.HELD  # until 08:00 tomorrow in Toronto
    host.close()

    def worker_at(instant: dt.datetime) -> None:
        monkeypatch.setenv(VARIABLE, shift_to(instant))
        done = subprocess.run([str(EMRCOMM), "worker", "--once", "--config", str(tmp_path / "emrcomm.toml")],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]

    worker_at(EVENING + dt.timedelta(minutes=5))
    assert sink(host) == []
    worker_at(EVENING + dt.timedelta(hours=10))  # 08:30 the next morning
    assert len(sink(host)) == 1
