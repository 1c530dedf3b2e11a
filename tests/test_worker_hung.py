"""A third-party transport whose ``send`` never returns (a provider that takes the connection and
never answers, no timeout set), in a real ``emrcomm worker`` process: the worker reports it
(naming the plugin and the outbox row, never the address), keeps delivering the other channel,
stops on SIGTERM without waiting for it, and a second worker takes the row over after its lease.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from emrcomm.host import Host
from emrcomm.model import Status
from emrcomm.plugin.manager import discover
from servers import wait_until
from test_worker import reminder
from test_worker_sigkill import EMRCOMM, chart_states, start_worker

EMAIL = "sam.lee@example.org"  # the patient "stopped" said STOP to SMS: reminders go by email
LEASE = 2.0
WORKER = f'\n[delivery]\nmode = "queue"\nconcurrency = 1\nlease_seconds = {LEASE}\npoll_seconds = 0.2\n'

# A plugin "hangmail" in place of the built-in email plugin: while the file ``hang`` is in its
# folder, its transport's send blocks on an Event nobody sets; otherwise it writes the key down.
PLUGIN = '''
    import threading
    from pathlib import Path

    from emrcomm import Channel, Receipt, hookimpl


    class Transport:
        def __init__(self, folder, clock):
            self.folder, self.clock = folder, clock

        def send(self, delivery):
            if (self.folder / "hang").exists():
                (self.folder / "hanging").write_text(delivery.key, encoding="utf-8")
                threading.Event().wait()  # the provider never answers
            with (self.folder / "sent.txt").open("a", encoding="utf-8") as out:
                out.write(delivery.key + "\\n")
            return Receipt(channel="email", address=delivery.address, provider_id=delivery.key, at=self.clock())


    class Plugin:
        settings_schema = {"type": "object", "properties": {"folder": {"type": "string"}}}

        def __init__(self, context):
            self.transport = Transport(Path(context.settings["folder"]), context.clock)

        @hookimpl
        def emrcomm_register_channels(self):
            return [Channel(name="email", secure=False, medium="EMAILWRIT", transport=self.transport,
                            address_system="email", form="email")]
'''


def install_plugin(site: Path) -> None:
    """The plugin as an installed distribution in ``site`` (its entry point in group emrcomm)."""
    site.mkdir()
    (site / "emrcomm_hangmail.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    info = site / "emrcomm_hangmail-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: emrcomm-hangmail\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[emrcomm]\nhangmail = emrcomm_hangmail:Plugin\n", encoding="utf-8")


def worker_result(log: Path) -> dict[str, Any]:
    last = log.read_text(encoding="utf-8").rsplit('{\n  "worker"', 1)[1]
    result: dict[str, Any] = json.loads('{\n  "worker"' + last)
    return result


def test_a_hung_transport_is_reported_abandoned_and_taken_over_after_its_lease(
    make_host: Callable[..., Host], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, mail = tmp_path / "site", tmp_path / "mail"
    install_plugin(site)
    mail.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), *sys.path]))
    entry_points = {**discover(), "hangmail": metadata.EntryPoint("hangmail", "emrcomm_hangmail:Plugin", "emrcomm")}
    extra = WORKER + f'\n[plugins]\ndisable = ["email"]\n[plugins.hangmail]\nfolder = "{mail}"\n'
    host = make_host(extra, entry_points=entry_points)
    hung = host.send(reminder("by-email", patient="Patient/stopped"))
    assert hung.status is Status.QUEUED and hung.channels == ("email",)
    before = [host.send(reminder(f"sms-{i}")) for i in range(3)]
    assert {o.channels for o in before} == {("sms",)}
    config, log = tmp_path / "emrcomm.toml", tmp_path / "worker.log"
    (mail / "hang").touch()

    worker = start_worker(config, log)
    try:
        wait_until(lambda: (mail / "hanging").exists(), 60, "the email send to start")
        wait_until(lambda: "has not returned" in log.read_text(encoding="utf-8"), 60, "the hung send reported")
        # Its one thread hangs; rows queued after it, on the other channel, still go.
        after = [host.send(reminder(f"sms-late-{i}")) for i in range(3)]
        sms = [o.record_ids[0] for o in (*before, *after)]
        wait_until(lambda: chart_states(config, sms) == {"accepted": 6}, 60, "the SMS rows delivered")
        os.kill(worker.pid, signal.SIGTERM)
        # Stopping does not wait for the hung send (before, the worker never exited).
        assert worker.wait(60) == 0, log.read_text(encoding="utf-8")[-3000:]
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
    text = log.read_text(encoding="utf-8")
    reported = next(line for line in text.splitlines() if "has not returned" in line)
    assert "plugin hangmail" in reported and hung.record_ids[0] in reported and "channel email" in reported
    assert EMAIL not in text and "alex.martin" not in text  # ids only: never an address
    first = worker_result(log)
    assert first["worker"]["hung"] == 1 and first["worker"]["sent"] == 6
    assert first["outbox"] == {"sending": 1}  # the hung row stays leased: it may have left
    assert not (mail / "sent.txt").exists()
    # ... and in the audit log, where a member of staff finds which message may have left
    from emrcomm.audit import entries

    hung_entries = [{k: e.get(k) for k in ("record", "channel", "plugin")}
                    for e in entries(host.storage) if e["kind"] == "delivery.hung"]
    assert hung_entries == [{"record": hung.record_ids[0], "channel": "email", "plugin": "hangmail"}]

    # The provider answers again; once the lease has run out a second worker takes the row over
    # and sends it, with the same key.
    (mail / "hang").unlink()
    time.sleep(LEASE + 0.2)
    second = start_worker(config, log, "--once")
    assert second.wait(120) == 0, log.read_text(encoding="utf-8")[-3000:]
    result = worker_result(log)
    assert result["worker"]["taken_over"] == 1 and result["worker"]["sent"] == 1
    assert result["outbox"] == {}
    assert (mail / "sent.txt").read_text(encoding="utf-8").split() == [hung.record_ids[0]]
    assert chart_states(config, list(hung.record_ids)) == {"accepted": 1}


def blocking_sends(host: Host, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    """The SMS transport's send, held until the returned Event is set; the keys it was given."""
    import threading

    transport = host.channels["sms"].transport
    send, answer, keys = transport.send, threading.Event(), []

    def held(delivery: Any) -> Any:
        keys.append(delivery.key)
        answer.wait()
        return send(delivery)

    monkeypatch.setattr(transport, "send", held)
    return answer, keys


def test_an_abandoned_send_that_returns_is_recorded_and_not_sent_again(
    make_host: Callable[..., Host], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    from emrcomm.outbox.worker import Worker

    host = make_host('\n[delivery]\nmode = "queue"\nconcurrency = 1\nlease_seconds = 10\nsend_timeout = 0.3\n'
                     "poll_seconds = 0.1\n")
    record = host.send(reminder("held")).record_ids[0]
    answer, keys = blocking_sends(host, monkeypatch)
    worker = Worker(host)
    runner = threading.Thread(target=worker.run)
    runner.start()
    wait_until(lambda: worker.stats.hung == 1, 30, "the send reported hung")
    worker.stop()
    runner.join(30)
    assert not runner.is_alive()  # stopping did not wait for the hung send
    assert host.storage.outbox.counts() == {"sending": 1}
    answer.set()  # the provider answers at last: recorded while the lease holds
    wait_until(lambda: host.storage.outbox.counts() == {}, 30, "the late answer recorded")
    assert keys == [record] and worker.stats.sent == 1
    assert host.record(record).state == "accepted"  # type: ignore[union-attr]
    assert any("returned after" in r.getMessage() for r in caplog.records)


def test_an_inline_send_past_its_bound_is_reported_and_still_waited_for(
    make_host: Callable[..., Host], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    host = make_host('\n[delivery]\nmode = "inline"\nsend_timeout = 0.3\n')
    answer, _ = blocking_sends(host, monkeypatch)
    outcome: list[Any] = []
    caller = threading.Thread(target=lambda: outcome.append(host.send(reminder("inline"))))
    caller.start()
    wait_until(lambda: any("has not returned" in r.getMessage() for r in caplog.records), 30, "the report")
    assert caller.is_alive() and not outcome  # the caller's call is not cut short
    answer.set()
    caller.join(30)
    assert outcome[0].status is Status.SENT


def test_a_send_timeout_longer_than_the_lease_allows_stops_the_start(tmp_path: Path) -> None:
    from emrcomm.config import load_config
    from emrcomm.errors import ConfigError
    from support import write_config

    path = write_config(tmp_path, '\n[delivery]\nlease_seconds = 8\nsend_timeout = 7.5\n')
    with pytest.raises(ConfigError, match=r"delivery\.send_timeout: 7\.5 s is more than seven eighths .* at most 7\b"):
        load_config(path)


def test_a_hung_send_is_listed_by_emrcomm_outbox_and_ends_worker_once_with_exit_4(
    make_host: Callable[..., Host], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Monitoring saw a hung send only in a log line and in the summary of a worker that exits;
    ``emrcomm outbox`` lists a row sending past delivery.send_timeout (by record id), whatever
    worker holds it, and a ``worker --once`` that leaves one so says so with exit 4, not 0."""
    site, mail = tmp_path / "site", tmp_path / "mail"
    install_plugin(site)
    mail.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), *sys.path]))
    entry_points = {**discover(), "hangmail": metadata.EntryPoint("hangmail", "emrcomm_hangmail:Plugin", "emrcomm")}
    # A lease long enough that nothing takes the row over while the test looks at it.
    extra = ('\n[delivery]\nmode = "queue"\nconcurrency = 1\nlease_seconds = 120\nsend_timeout = 1\npoll_seconds = 0.2\n'
             f'\n[plugins]\ndisable = ["email"]\n[plugins.hangmail]\nfolder = "{mail}"\n')
    host = make_host(extra, entry_points=entry_points)
    hung = host.send(reminder("by-email", patient="Patient/stopped"))
    sms = host.send(reminder("by-sms"))
    config, log = tmp_path / "emrcomm.toml", tmp_path / "worker.log"
    outbox = [str(EMRCOMM), "outbox", "--json", "--config", str(config)]
    listed = json.loads(subprocess.run(outbox, capture_output=True, text=True, timeout=60, check=True).stdout)
    assert listed["overdue"] == []
    (mail / "hang").touch()

    worker = start_worker(config, log, "--once")
    assert worker.wait(60) == 4, log.read_text(encoding="utf-8")[-3000:]
    result = worker_result(log)
    assert result["worker"]["hung"] == 1 and result["worker"]["sent"] == 1
    assert result["outbox"] == {"sending": 1}
    listed = json.loads(subprocess.run(outbox, capture_output=True, text=True, timeout=60, check=True).stdout)
    assert [(r["record_id"], r["channel"]) for r in listed["overdue"]] == [(hung.record_ids[0], "email")]
    assert sms.record_ids[0] not in json.dumps(listed)
    text = subprocess.run(outbox[:2] + outbox[3:], capture_output=True, text=True, timeout=60, check=True).stdout
    assert f"overdue  {hung.record_ids[0]} email" in text and "delivery.send_timeout (1 s)" in text, text
    assert EMAIL not in text


def test_rows_a_rate_limited_worker_holds_unstarted_are_not_listed_overdue(
    make_host: Callable[..., Host], clock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """A healthy worker on a channel that sends one message a second holds the rest of its claim
    unstarted while the rows ahead of them go (up to an eighth of the lease: 15 s of 120, longer
    than this send_timeout): `emrcomm outbox` listed them overdue, an alarm for a worker at work."""
    import datetime as dt

    from emrcomm.cli import main
    from emrcomm.clock import VARIABLE, shift_to
    from emrcomm.outbox.worker import Worker, WorkerSettings

    host = make_host('\n[delivery]\nmode = "queue"\nconcurrency = 1\nsend_timeout = 10\n')
    queued = [host.send(reminder(f"sms-{i}")).record_ids[0] for i in range(12)]
    transport = host.channels["sms"].transport
    send = transport.send

    def one_a_second(delivery: Any) -> Any:  # the provider's rate: each send waits a second for its slot
        clock.now += dt.timedelta(seconds=1)
        return send(delivery)

    monkeypatch.setattr(transport, "send", one_a_second)
    worker = Worker(host, WorkerSettings.from_config(host.config.raw["delivery"]))
    claimed = worker._claim(16)  # one claim, as the worker makes it (emrcomm.outbox.worker.Worker.run)
    assert sorted(r.key for r in claimed) == sorted(queued)
    for row in claimed[:11]:
        worker.deliver(row)
    assert worker.stats.sent == 11  # 11 s after the claim, its last row still waits its turn, unstarted

    monkeypatch.setenv(VARIABLE, shift_to(clock.now))  # `emrcomm outbox` reads the clock where the worker left it
    assert main(["outbox", "--json", "--config", str(tmp_path / "emrcomm.toml")]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["counts"] == {"sending": 1}
    assert listed["overdue"] == []


def test_a_row_whose_lease_ran_out_while_sending_is_listed_overdue(
    make_host: Callable[..., Host], clock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker that died (or froze) with a row in hand marks nothing: the row is overdue once its
    lease has run out while it is still sending, until the next worker's claim takes it over."""
    import datetime as dt

    from emrcomm.cli import main
    from emrcomm.clock import VARIABLE, shift_to

    host = make_host('\n[delivery]\nmode = "queue"\n')
    queued = {host.send(reminder(rid)).record_ids[0] for rid in ("one", "two")}
    # Its lease runs out as it is taken; the other row stays pending.
    [row] = host.storage.outbox.claim(owner="died", now=clock.now, lease=dt.timedelta(0), limit=1)
    [waiting] = queued - {row.key}

    monkeypatch.setenv(VARIABLE, shift_to(clock.now + dt.timedelta(seconds=1)))
    assert main(["outbox", "--json", "--config", str(tmp_path / "emrcomm.toml")]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["counts"] == {"pending": 1, "sending": 1}
    assert [(r["record_id"], r["hung_at"]) for r in listed["overdue"]] == [(row.key, None)]
    assert waiting not in json.dumps(listed["overdue"])


def test_a_hung_row_taken_over_is_no_longer_overdue(make_host: Callable[..., Host], clock: Any) -> None:
    """The mark of a send found hung is its holder's: the worker that takes the row over when the
    lease runs out has not started its own send yet."""
    import datetime as dt

    host = make_host('\n[delivery]\nmode = "queue"\n')
    key = host.send(reminder("hung")).record_ids[0]
    outbox = host.storage.outbox
    assert [r.key for r in outbox.claim(owner="hung", now=clock.now, lease=dt.timedelta(0), limit=1)] == [key]
    assert outbox.found_hung(key, owner="hung", now=clock.now)
    assert [r.key for r in outbox.overdue(clock.now)] == [key]
    [taken] = outbox.claim(owner="next", now=clock.now, lease=dt.timedelta(seconds=120), limit=1)
    assert taken.taken_over and taken.hung_at is None
    assert outbox.overdue(clock.now) == []
    assert not outbox.found_hung(key, owner="hung", now=clock.now)  # too late: the row is another's
