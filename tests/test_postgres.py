"""PostgreSQL for clinics that outgrow one machine: what only a shared database can show. The
schema is upgraded by a command and refused when behind; many processes append to one signed
audit chain; an idle worker wakes on LISTEN/NOTIFY; a sender's limit and a client's limit hold
for every process together; two ``emrcomm serve`` processes answering alternately behave as one.

The rest of the behavioural suite runs on PostgreSQL too (tests/conftest.py ``backend``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import support
from api_kit import ApiClient
from conftest import Clock
from emrcomm import audit, hookimpl
from emrcomm.api import notify
from emrcomm.api.notify import Notifier
from emrcomm.api.settings import ApiSettings
from emrcomm.api.subscriptions import Subscriptions
from emrcomm.cli import main
from emrcomm.config import load_config
from emrcomm.errors import ConfigError
from emrcomm.host import Host
from emrcomm.model import Status
from emrcomm.outbox.worker import Worker, WorkerSettings
from emrcomm.plugin.manager import discover
from emrcomm.storage import open_postgres
from emrcomm.storage.outbox import Item
from emrcomm.storage.times import iso, parse_iso
from emrcomm.web import create_app
from fleet_kit import LimitedSink, enqueue, fleet_config, received, wait_settled
from portal_kit import BIRTH_DATE, WRONG_DATE, notice_for, send_note, token_in
from servers import ScriptedHTTPServer, free_port, scripted, serve_ready
from support import fhir_request, with_store, write_config
from test_api import NO_NOTIFY, SMS_AND_EMAIL, TEXT, consent, consent_entries
from test_pipeline import ALL as ALL_PLUGINS
from test_worker import QUEUE, reminder

pytestmark = pytest.mark.postgres

EMRCOMM = Path(sys.executable).with_name("emrcomm")
QUEUED = "\n[delivery]\nmode = \"queue\"\n"


@pytest.fixture
def pg(backend: str) -> str:
    """The test's PostgreSQL database (its schema current)."""
    assert backend == "postgresql", "tests/conftest.py runs this module on PostgreSQL only"
    assert support.STORE_URL is not None
    return support.STORE_URL


@pytest.fixture
def empty_pg(postgres_server: object) -> Iterator[str]:
    """A database with no tables at all, pointed at by the test's configs."""
    url = postgres_server.new_database()  # type: ignore[attr-defined]
    support.STORE_URL = url
    try:
        yield url
    finally:
        support.STORE_URL = None
        postgres_server.drop_database(url)  # type: ignore[attr-defined]


def run(*argv: str) -> tuple[int, str]:
    out = subprocess.run([str(EMRCOMM), *argv], capture_output=True, text=True, timeout=300, check=False)
    return out.returncode, out.stdout + out.stderr


# ---------------------------------------------------------------------------------- the schema


def test_start_up_refuses_a_schema_older_than_the_code_and_names_the_command(empty_pg: str, tmp_path: Path) -> None:
    path = write_config(tmp_path)
    with pytest.raises(ConfigError, match=r"older than this emrcomm .*emrcomm 1.*run `emrcomm db upgrade`"):
        Host(load_config(path))


def test_db_status_lists_the_steps_and_db_upgrade_applies_them(empty_pg: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write_config(tmp_path))
    assert main(["db", "status", "--config", path]) == 4
    status = capsys.readouterr().out
    assert "emrcomm 1:" in status and "portal 1:" in status and "behind" in status
    assert main(["db", "upgrade", "--config", path]) == 0
    assert "applied emrcomm 1" in capsys.readouterr().out
    assert main(["db", "status", "--config", path]) == 0
    assert "not applied" not in capsys.readouterr().out
    with Host(load_config(path)) as host:
        assert host.send(fhir_request("Patient/on-en", "appointment-reminder", text="See you Tuesday.")).status.value


def test_a_schema_newer_than_the_code_is_refused(pg: str, tmp_path: Path) -> None:
    storage = open_postgres(pg)
    storage.meta.put("schema_version", "99")
    storage.close()
    with pytest.raises(ConfigError, match="schema version 99, newer than this installation knows"):
        Host(load_config(write_config(tmp_path)))


def test_a_password_is_taken_only_by_reference(tmp_path: Path) -> None:
    text = support.BASE_CONFIG.replace('[store]\npath = "emrcomm.sqlite"', '[store]\nurl = "postgresql://app:hunter2@db/x"')
    (tmp_path / "emrcomm.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"store\.url: secrets cannot be written") as err:
        load_config(tmp_path / "emrcomm.toml")
    assert "hunter2" not in str(err.value)
    (tmp_path / "emrcomm.toml").write_text(text.replace("app:hunter2@db/x\"", 'app@db/x"\npassword = "hunter2"'),
                                           encoding="utf-8")
    with pytest.raises(ConfigError, match=r"store.password: secrets cannot be written"):
        load_config(tmp_path / "emrcomm.toml")


@pytest.mark.parametrize("url", [
    "postgresql://app@db/x?sslmode=verify-full&password=hunter2",
    "postgresql://app@db/x?password=hunter2",
    "postgresql://app@db/x?sslmode=require&pass%77ord=hunter2",
    "postgresql://app@db/x?sslkey=k.pem&sslpassword=hunter2",
])
def test_a_password_in_the_urls_query_is_refused_too(tmp_path: Path, url: str) -> None:
    """libpq takes a password from the query as well as from the user part."""
    text = support.BASE_CONFIG.replace('[store]\npath = "emrcomm.sqlite"', f'[store]\nurl = "{url}"')
    (tmp_path / "emrcomm.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"store\.url: secrets cannot be written") as err:
        load_config(tmp_path / "emrcomm.toml")
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize("url", [
    "host=db dbname=x user=app password=hunter2",  # libpq's key=value form, not a URL
    "host=db dbname=x user=app password = 'hunter2'",
    "postgresql://app:hunter2@db /x",  # a URL the schema refuses (a space)
])
def test_a_malformed_store_url_with_a_password_is_refused_without_echoing_it(tmp_path: Path, url: str) -> None:
    """The schema's message quotes a value it refuses: a store.url with a password in it must
    be refused as a secret first, so that the password never reaches the error (and the log)."""
    text = support.BASE_CONFIG.replace('[store]\npath = "emrcomm.sqlite"', f'[store]\nurl = "{url}"')
    (tmp_path / "emrcomm.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"store\.url: secrets cannot be written") as err:
        load_config(tmp_path / "emrcomm.toml")
    assert "hunter2" not in str(err.value)


def test_the_password_reference_reaches_the_server(pg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test server trusts its socket, so any password works: what is checked is that the
    variable is read, and that a missing one is named."""
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("[store]\n", '[store]\npassword = {env = "EMRCOMM_TEST_PG"}\n', 1))
    with pytest.raises(ConfigError, match=r"store\.password: environment variable EMRCOMM_TEST_PG is not set"):
        Host(load_config(path))
    monkeypatch.setenv("EMRCOMM_TEST_PG", "s3cret")
    Host(load_config(path)).close()


def test_a_nul_in_a_value_is_kept_as_the_replacement_character_and_finds_nothing(pg: str) -> None:
    """PostgreSQL text cannot hold NUL (the driver refuses the statement): hostile input with
    one must not turn a lookup or a write into an error (docs/operations.md)."""
    storage = open_postgres(pg)
    try:
        assert storage.records.get("a\x00b") is None
        assert storage.meta.get("k\x00") is None
        storage.meta.put("k", "a\x00b")
        assert storage.meta.get("k") == "a\ufffdb"
    finally:
        storage.close()


def test_every_pooled_connection_dropped_at_once_costs_no_statement(pg: str) -> None:
    """A server restart (or a failover) drops every idle connection of a pool at once: the first
    statement after it finds one broken, and the pool throws away all the others it holds, so
    neither that statement nor the next ones fail on a connection that died while idle."""
    import psycopg

    from emrcomm.storage.postgres import PostgresDatabase

    db = PostgresDatabase(pg, pool_min=4, pool_max=4)
    try:
        db.pool.wait(30)
        with psycopg.connect(pg, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND pid <> pg_backend_pid()")
        for _ in range(6):
            assert db.query("SELECT 1 AS one") == [{"one": 1}]
        with db.transaction():
            assert db.query("SELECT 2 AS two") == [{"two": 2}]
    finally:
        db.close()


def test_a_write_whose_connection_is_lost_in_a_group_commit_is_told_the_store_is_unavailable(pg: str) -> None:
    """As a transaction of its own is: a worker's settle in a shared commit that met the server
    going away must know it (a worker then leaves its row leased rather than ending it without
    its record), not take it for an error of its own."""
    import psycopg

    from emrcomm.storage import StoreUnavailable
    from emrcomm.storage.postgres import PostgresDatabase

    db = PostgresDatabase(pg)
    settle: list[BaseException] = []
    try:
        with pytest.raises(StoreUnavailable), db.group_commit():  # the commit: nothing of the group is durable
            try:
                with db.transaction():
                    [row] = db.query("SELECT pg_backend_pid() AS pid")
                    with psycopg.connect(pg, autocommit=True) as admin:
                        admin.execute("SELECT pg_terminate_backend(%s)", (row["pid"],))
                    db.query("SELECT 1 AS one")
            except Exception as exc:  # as SharedCommits keeps it for the settle's own thread
                settle.append(exc)
    finally:
        db.close()
    assert [type(e) for e in settle] == [StoreUnavailable], settle


def test_doctor_asks_the_database_server_and_compares_its_schema(pg: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``emrcomm doctor`` on PostgreSQL: the database line names the server's database (never a
    password), says it answered, and compares its schema: current, then newer than this
    emrcomm knows (tests/test_doctor.py checks the rest of doctor, on SQLite)."""
    from emrcomm.storage.schema import MIGRATIONS

    latest = max(m.version for m in MIGRATIONS)
    path = write_config(tmp_path)
    Host(load_config(path)).close()

    def doctor() -> tuple[int, str]:
        code = main(["doctor", "--config", str(path)])
        [database] = [row for row in capsys.readouterr().out.splitlines() if "database (postgresql)" in row]
        return code, database

    code, database = doctor()
    assert code == 0 and database.startswith("ok"), database
    assert "connected, role postgres, PostgreSQL " in database
    assert f", the role may read and write every table, schema version {latest}, up to date" in database
    storage = open_postgres(pg)
    storage.meta.put("schema_version", "999")
    storage.close()
    code, database = doctor()
    assert code == 4 and database.startswith("FAIL")
    assert "schema version 999, newer than this installation knows" in database


# ---------------------------------------------------------------------------- one audit chain


def test_concurrent_senders_in_separate_processes_append_one_verified_chain(pg: str, tmp_path: Path) -> None:
    path = write_config(tmp_path, QUEUED)
    Host(load_config(path)).close()  # the key file, before four processes race to make it
    per_process, processes = 15, 4
    for p in range(processes):
        lines = [json.dumps(fhir_request("Patient/on-en", "appointment-reminder", text="See you Tuesday at 9:20.",
                                         rid=f"p{p}-{i}")) for i in range(per_process)]
        (tmp_path / f"batch{p}.jsonl").write_text("\n".join(lines) + "\n")
    senders = [subprocess.Popen([str(EMRCOMM), "send", "--config", str(path), str(tmp_path / f"batch{p}.jsonl")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for p in range(processes)]
    assert [s.wait(300) for s in senders] == [0] * processes, [s.stderr.read() for s in senders if s.stderr]
    code, out = run("audit", "verify", "--config", str(path), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] and report["problems"] == []
    storage = open_postgres(pg)
    try:
        kinds = [json.loads(r["entry"])["kind"] for r in storage.audit.entries()]
        seqs = [r["seq"] for r in storage.audit.entries()]
    finally:
        storage.close()
    assert kinds.count("queued") == per_process * processes  # each request's decision, its category with it
    assert seqs == list(range(1, len(seqs) + 1))  # one order: storage order is chain order


def test_the_chain_lock_waiter_reads_the_end_its_last_holder_committed(pg: str) -> None:
    """The lock and the reads of the log's end go in one round trip but as separate statements:
    one waiting for the lock then reads what the holder committed meanwhile (a read in the lock's
    own statement would use a snapshot from before the wait, and fork the chain)."""
    first, second = open_postgres(pg), open_postgres(pg)
    try:
        ends: list[Any] = []
        holding = first.db.transaction()
        holding.__enter__()
        try:
            last, _ = first.audit.lock_and_end()
            seq = last["seq"] if last else 0
            text = json.dumps({"kind": "first", "seq": seq + 1}).encode()
            first.audit.append([(seq + 1, text)], None, last_sig=b"signed")

            def wait_then_read() -> None:
                with second.db.transaction():
                    ends.append(second.audit.lock_and_end())

            waiter = threading.Thread(target=wait_then_read)
            waiter.start()
            deadline = time.monotonic() + 30
            while not first.db.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                      "AND wait_event = 'advisory' AND datname = current_database()"):
                assert time.monotonic() < deadline, "the second transaction never waited for the lock"
                time.sleep(0.01)
        finally:
            holding.__exit__(None, None, None)  # commits, and so releases the lock
        waiter.join(30)
        [(last, _)] = ends
        assert last is not None and (last["seq"], last["hash"]) == (seq + 1, hashlib.sha256(text).hexdigest())
        assert last["sig"] == b"signed"  # stored with its row, not set after
    finally:
        first.close()
        second.close()


# --------------------------------------------------------------------- one address's consent


def test_a_start_texted_while_the_patients_stop_is_being_written_waits_for_it_lifts_it_and_is_confirmed(
        make_host: Callable[..., Host], clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two serves take the patient's STOP and, a moment later, their START. The START waits for
    the STOP's transaction, reads the STOP, lifts it and says so. Read before the STOP committed,
    it found nothing to lift: its grant came after the STOP's revocation, the patient was
    subscribed again and told nothing."""
    from emrcomm.model import DeliveryUpdate
    from emrcomm_optout import handled
    from test_callbacks import NUMBER, waiting_on_the_address_lock
    from test_worker import sink

    host = make_host()
    host.send(reminder("r-1"))
    real = handled.mark
    stop_writing, go_on = threading.Event(), threading.Event()

    def held_open(db: Any, message: str, seq: int) -> None:  # the STOP's transaction, its entry written
        if message == "sms|kannel-mo-1":
            stop_writing.set()
            assert go_on.wait(60)
        real(db, message, seq)

    monkeypatch.setattr(handled, "mark", held_open)
    failed: list[BaseException] = []

    def text(words: str, provider_id: str) -> threading.Thread:
        def deliver() -> None:
            try:
                host.delivery_update(DeliveryUpdate(kind="reply", at=clock(), channel="sms", address=NUMBER,
                                                    text=words, provider_id=provider_id))
            except BaseException as exc:
                failed.append(exc)
        thread = threading.Thread(target=deliver)
        thread.start()
        return thread

    stop = text("STOP", "kannel-mo-1")
    try:
        assert stop_writing.wait(60), "the STOP never reached the ledger"
        start = text("START", "kannel-mo-2")
        deadline = time.monotonic() + 60
        while not waiting_on_the_address_lock(host):
            assert start.is_alive(), "the START was handled while the STOP was being written"
            assert time.monotonic() < deadline, "the START never waited for the STOP"
            time.sleep(0.01)
    finally:
        go_on.set()
    stop.join(60)
    start.join(60)
    assert not stop.is_alive() and not start.is_alive() and not failed, failed
    actions = [(e.action, e.source) for e in host.storage.consent.events(channel="sms", address=NUMBER)]
    assert actions == [("revoke", "STOP reply"), ("grant", "START reply")]
    assert [x for x in sink(host) if "receive our text messages again" in x["text"]]


def test_two_blocked_decisions_of_one_id_written_at_once_are_its_first_and_second_attempts(
        make_host: Callable[..., Host]) -> None:
    """Both read attempt 1; the second to enter finds the first's: on PostgreSQL it was Raced,
    escaping send. It is written again as attempt 2, as it is when it comes second (and on SQLite,
    whose write reads the number holding the lock)."""
    host = make_host()
    ledger = host.storage.records
    real = ledger.next_attempt
    read, entered = threading.Event(), threading.Event()
    late = threading.current_thread()
    answers: list[object] = []

    def waits_for_the_other(request_id: str) -> int:
        number = real(request_id)
        if threading.current_thread() is not late and not read.is_set():
            read.set()
            assert entered.wait(60)
        return number

    ledger.next_attempt = waits_for_the_other  # type: ignore[method-assign]

    def send() -> None:
        try:
            answers.append(host.send(reminder("r-twice", "Patient/nobody-we-know")))
        except BaseException as exc:
            answers.append(exc)

    slow = threading.Thread(target=send)
    slow.start()
    try:
        assert read.wait(60), "the slow decision never reached its write"
        first = host.send(reminder("r-twice", "Patient/nobody-we-know"))
    finally:
        entered.set()
    slow.join(60)
    [second] = answers
    assert first.status is Status.BLOCKED and second.status is Status.BLOCKED, second  # type: ignore[union-attr]
    blocked = [r.id for r in ledger.for_request("r-twice")]
    assert sorted(blocked) == sorted({*first.record_ids, *second.record_ids}) and len(blocked) == 2  # type: ignore[union-attr]
    row = ledger.request("r-twice")
    assert row is not None and row.attempts == 2 and row.record_ids == second.record_ids  # type: ignore[union-attr]


# ------------------------------------------------------------------------------- the workers


def listening(pg: str) -> int:
    storage = open_postgres(pg)
    try:
        return int(storage.db.query("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND query = 'LISTEN emrcomm_outbox'")[0]["n"])
    finally:
        storage.close()


def test_an_idle_worker_wakes_when_a_message_is_queued_not_at_its_next_poll(pg: str, tmp_path: Path) -> None:
    path = write_config(tmp_path, QUEUED + "poll_seconds = 600\n")
    Host(load_config(path)).close()
    worker = subprocess.Popen([str(EMRCOMM), "worker", "--config", str(path)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while listening(pg) == 0:  # the worker has claimed nothing and waits: 600 s till it polls again
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.1)
        with Host(load_config(path)) as host:
            outcome = host.send(fhir_request("Patient/on-en", "appointment-reminder", text="See you Tuesday."))
            assert outcome.status.value == "queued"
            deadline = time.monotonic() + 60  # far under the poll: only the notification can wake it
            while host.storage.outbox.counts():
                assert time.monotonic() < deadline, "the worker did not wake"
                time.sleep(0.05)
            assert host.record(outcome.record_ids[0]).state == "accepted"  # type: ignore[union-attr]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


def test_a_senders_limit_is_one_bucket_for_every_process(pg: str) -> None:
    """Two processes' stores (two pools, as on two machines) reserve from one bucket: the second
    waits behind what the first reserved, instead of starting a bucket of its own."""
    first, second = open_postgres(pg), open_postgres(pg)
    try:
        waits = [first.rates.take("sms", "+16135550100", rate=2.0, burst=1, reserve=True) for _ in range(6)]
        assert waits[0] == 0.0 and 2.0 < waits[-1] <= 2.5  # 0, 0.5, … 2.5 s: reserved, not slept
        theirs = second.rates.take("sms", "+16135550100", rate=2.0, burst=1, reserve=True)
        assert theirs >= waits[-1]  # behind the six: 3 s, less what elapsed
        other = second.rates.take("sms", "+16135550199", rate=2.0, burst=1, reserve=True)
        assert other == 0.0  # another sender's bucket is its own
    finally:
        first.close()
        second.close()


def test_a_notification_cursor_never_steps_over_a_transaction_that_commits_late(
        make_host: Callable[..., Host]) -> None:
    """A transaction that took its event's seq first and commits after another's: the EMR still
    hears of both. A cursor on seq alone would have moved past the late one for good."""
    host = make_host("\n[api]\nnotify = false\n")
    db = host.storage.db
    text = "Riverside Family Health: your appointment is on Nov 25 at 2:30 PM. Reply STOP to opt out."
    with scripted() as emr:
        Subscriptions(db, host.clock).create({
            "resourceType": "Subscription", "status": "requested", "reason": "EMR",
            "criteria": "Communication?patient=Patient/on-en",
            "channel": {"type": "rest-hook", "endpoint": emr.url, "payload": "application/fhir+json"}},
            client="emr", allow_http=True)
        [rid] = host.send(fhir_request("Patient/on-en", "appointment-reminder", text=text, rid="c-1")).record_ids
        notifier = Notifier(host, ApiSettings())
        assert notifier.run_once() == 1
        began, release = threading.Event(), threading.Event()

        def late() -> None:  # another connection (the store's are per thread): seq taken, not committed
            with db.transaction():
                db.execute("INSERT INTO events (record_id, kind, source, at, dedup) VALUES (?, ?, ?, ?, ?)",
                           (rid, "delivered", "callback", "2026-01-05T15:00:01+00:00", "late-delivery"))
                began.set()
                release.wait(60)

        writer = threading.Thread(target=late)
        writer.start()
        try:
            assert began.wait(60)
            host.send(fhir_request("Patient/on-en", "appointment-reminder", text=text, rid="c-2"))  # commits first
            assert notifier.run_once() == 0  # the committed one waits behind the open transaction
        finally:
            release.set()
            writer.join(60)
        assert notifier.run_once() == 2
        heard = sorted(seen.headers["X-Emrcomm-Event"] for seen in emr.seen)
    assert heard == ["delivered", "sent", "sent"]


class _Holding:
    """A test server that keeps each request waiting until ``release`` is set (at most ``hold``
    seconds): a delivery or a send under way for as long as a test needs. ``held_to_the_end``
    says whether a hold outlasted the test's release (the test then proved nothing)."""

    def _hold(self, hold: float) -> None:
        self.hold = hold
        self.release = threading.Event()
        self.held_to_the_end = False

    def record(self, seen: Any) -> Any:
        reply = super().record(seen)  # type: ignore[misc]
        if not self.release.wait(self.hold):
            self.held_to_the_end = True
        return reply


class HoldingEMR(_Holding, ScriptedHTTPServer):
    """An EMR endpoint that keeps each notification waiting (:class:`_Holding`)."""

    def __init__(self, hold: float) -> None:
        ScriptedHTTPServer.__init__(self)
        self._hold(hold)


def subscribed(host: Host, endpoint: str) -> None:
    Subscriptions(host.storage.db, host.clock).create({
        "resourceType": "Subscription", "status": "requested", "reason": "EMR",
        "criteria": "Communication?patient=Patient/on-en",
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"}},
        client="emr", allow_http=True)


def server_lease_left(host: Host) -> float:
    """Seconds left of the one notification lease by the database server's clock."""
    [row] = host.storage.db.query("SELECT lease_until, clock_timestamp() AS server FROM api_notifications "
                                  "WHERE lease_until IS NOT NULL")
    return float((parse_iso(row["lease_until"]) - row["server"]).total_seconds())


def test_a_notifier_whose_clock_runs_minutes_ahead_leaves_alone_a_notification_another_is_delivering(
        make_host: Callable[..., Host], clock: Clock) -> None:
    """Two notifiers on one database (two ``serve`` processes), the second on a machine whose
    clock is 3 minutes ahead, more than the lease: while the first's notification is held by the
    EMR, the second looks for due notifications again and again and takes nothing, since the
    lease runs by the database server's clock. The EMR is notified once."""
    holder = make_host(NO_NOTIFY)
    ahead = make_host(NO_NOTIFY, clock=Clock(clock.now + dt.timedelta(minutes=3)))
    emr = HoldingEMR(hold=5.0)  # under notify_timeout: the holder's delivery is taken
    try:
        subscribed(holder, emr.url)
        holder.send(fhir_request("Patient/on-en", "appointment-reminder", text=TEXT, rid="h-1"))
        taken: list[int] = []
        delivering = threading.Thread(target=lambda: taken.append(Notifier(holder, ApiSettings()).run_once()))
        delivering.start()
        try:
            emr.wait_for(1, timeout=30)  # the holder's delivery is under way
            other = Notifier(ahead, ApiSettings())
            rounds = [other.run_once() for _ in range(5)]
        finally:
            emr.release.set()
            delivering.join(30)
        seen = len(emr.seen)
    finally:
        emr.close()
    assert (taken, rounds, seen) == ([1], [0] * 5, 1)
    assert not emr.held_to_the_end, "the delivery ended before the other notifier looked: nothing was tested"


@pytest.mark.parametrize("shift", [dt.timedelta(minutes=3), dt.timedelta(minutes=-3)], ids=["ahead", "behind"])
def test_a_notification_whose_notifier_died_is_taken_over_once_its_lease_runs_out_by_the_servers_clock(
        make_host: Callable[..., Host], clock: Clock, monkeypatch: pytest.MonkeyPatch, shift: dt.timedelta) -> None:
    """The notifier holding a notification dies before sending it; another, on a machine whose
    clock is 3 minutes ahead or behind, takes it over when the lease has run out by the database
    server's clock: not sooner (ahead), not minutes later (behind). The EMR is notified once."""
    monkeypatch.setattr(notify, "LEASE", dt.timedelta(seconds=5))  # a notify_timeout of 1 s keeps it 5 s
    dead = make_host(NO_NOTIFY)
    other = make_host(NO_NOTIFY, clock=Clock(clock.now + shift))
    with scripted() as emr:
        subscribed(dead, emr.url)
        dead.send(fhir_request("Patient/on-en", "appointment-reminder", text=TEXT, rid="d-1"))
        quick = ApiSettings(notify_timeout=1)
        gone, notifier = Notifier(dead, quick), Notifier(other, quick)
        # Fanned out by the notifier whose clock is behind: when a notification is due (next_at)
        # is business time, the host's, and one fanned out 3 minutes ahead is not due before then.
        fanning = notifier if shift < dt.timedelta(0) else gone
        for sub in fanning.subscriptions.active():
            fanning._fan_out(sub)
        assert len(gone._claim()) == 1  # claimed, never sent: the process died here
        assert notifier.run_once() == 0
        left = server_lease_left(dead)
        deadline = time.monotonic() + 60
        while server_lease_left(dead) > 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert notifier.run_once() == 1
        assert notifier.run_once() == 0
        assert len(emr.seen) == 1
    assert left > 0, "the lease ran out before the other notifier first looked: nothing was tested"


def deliver_in_two_commits(w: Worker, rows: list[Item]) -> None:
    """Deliver ``rows``, each on a thread of its own, the first settle's commit held open until
    every other settle waits behind it: one commit for the first, one shared by all the rest."""
    assert w.shared is not None
    run, first_in, release = w.shared.run, threading.Event(), threading.Event()

    def held(write: Callable[[], Any]) -> Any:
        def waiting() -> Any:
            first_in.set()
            assert release.wait(30)
            return write()
        w.shared.run = run  # type: ignore[method-assign,union-attr]
        return run(waiting)

    w.shared.run = held  # type: ignore[method-assign]
    first = threading.Thread(target=w.deliver, args=(rows[0],))
    first.start()
    assert first_in.wait(30)
    others = [threading.Thread(target=w.deliver, args=(row,)) for row in rows[1:]]
    for t in others:
        t.start()
    deadline = time.monotonic() + 30
    while len(w.shared._waiting) < len(others) and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in (first, *others):
        t.join(30)


def sent_entries(host: Host) -> list[tuple[str, bool]]:
    """The record and whether it is signed, of every ``sent`` audit entry, in chain order."""
    return [(json.loads(r["entry"])["record"], bool(r["sig"])) for r in host.storage.audit.entries()
            if json.loads(r["entry"])["kind"] == "sent"]


def test_a_workers_settles_share_one_commit_and_keep_each_messages_record_and_audit_entry(
        make_host: Callable[..., Host]) -> None:
    host = make_host(QUEUE)
    records = [host.send(reminder(f"g-{i}")).record_ids[0] for i in range(4)]
    w = Worker(host, WorkerSettings(concurrency=4))
    rows = w._claim(4)
    deliver_in_two_commits(w, rows)
    assert w.stats.sent == 4 and w.stats.settle_commits == 2
    assert host.storage.outbox.counts() == {}
    for record in records:
        assert host.record(record).state == "accepted"  # type: ignore[union-attr]
        assert [e.kind.value for e in host.storage.records.events(record)].count("accepted") == 1
    sent = sent_entries(host)
    assert sorted(r for r, _ in sent) == sorted(records)
    # one signature a commit: the first settle's entry, and the last of the three chained together
    assert [signed for _, signed in sent] == [True, False, False, True]
    assert audit.verify(host.storage, [host.audit.key.public]).ok


def test_a_worker_gone_before_its_shared_commit_loses_nothing_its_rows_are_taken_over(
        make_host: Callable[..., Host], clock: Clock) -> None:
    """The worker dies with its group's messages sent and the commit recording them not made
    (as SIGKILL leaves it: the server rolls the transaction back): after their lease another
    worker takes the rows over and sends them again, the in-flight window, ≤ concurrency."""
    host = make_host(QUEUE)
    records = [host.send(reminder(f"k-{i}")).record_ids[0] for i in range(4)]
    transport = host.channels["sms"].transport
    real_send, sends = transport.send, []

    def counted(delivery: Any) -> Any:
        sends.append(delivery.key)
        return real_send(delivery)

    transport.send = counted  # type: ignore[method-assign]
    gone = [True]

    def killed() -> None:
        if gone[0]:
            raise ConnectionResetError("the worker was killed before its commit")

    dead = Worker(host, WorkerSettings(concurrency=4, lease_seconds=2))  # waited out below: the server's clock times it
    rows = dead._claim(4)
    host.storage.before_commit(killed)
    try:
        deliver_in_two_commits(dead, rows)
    finally:
        gone[0] = False
    assert dead.stats.sent == 0 and dead.stats.settle_commits == 0
    assert host.storage.outbox.counts() == {"sending": 4} and sorted(sends) == sorted(records)
    time.sleep(2.1)
    stats = Worker(host, WorkerSettings(concurrency=4, lease_seconds=30)).run(once=True)
    assert stats.taken_over == 4 and stats.sent == 4 and host.storage.outbox.counts() == {}
    assert sorted(sends) == sorted(records * 2)  # each sent again once: the in-flight window
    for record in records:
        assert host.record(record).state == "accepted"  # type: ignore[union-attr]
        assert [e.kind.value for e in host.storage.records.events(record)].count("accepted") == 1
    assert sorted(r for r, _ in sent_entries(host)) == sorted(records)
    assert audit.verify(host.storage, [host.audit.key.public]).ok


# ------------------------------------------------------------------ leases, by the server's clock

CLOCK_SHIFT = Path(__file__).with_name("clock_shift.py")


class HoldingSink(_Holding, LimitedSink):
    """A Kannel-speaking sink that keeps each send waiting (:class:`_Holding`)."""

    def __init__(self, hold: float) -> None:
        LimitedSink.__init__(self, None)
        self._hold(hold)


def lease_config(folder: Path, pg: str, sink: HoldingSink, *, lease_seconds: float) -> Path:
    config = fleet_config(folder, pg, sink.url, rate=1000, patients=1, concurrency=1, lease_seconds=lease_seconds)
    config.write_text(config.read_text(encoding="utf-8").replace("poll_seconds = 1\n", "poll_seconds = 0.2\n"),
                      encoding="utf-8")
    return config


def start_worker(config: Path, name: str, *, shift: dt.timedelta = dt.timedelta(0)) -> subprocess.Popen[bytes]:
    """``emrcomm worker`` as a process (as on a machine of its own), its system clock moved by
    ``shift`` (libfaketime: the host's clock, which runs from it, moves too)."""
    argv = [str(EMRCOMM), "worker", "--config", str(config), "--json"]
    if shift:
        when = dt.datetime.now(dt.UTC) + shift
        argv = [sys.executable, str(CLOCK_SHIFT), when.strftime("%Y-%m-%d %H:%M:%S"), "--", *argv]
    with (config.parent / f"{name}.out").open("wb") as out, (config.parent / f"{name}.log").open("wb") as err:
        return subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)


def claiming(pg: str, worker: subprocess.Popen[bytes]) -> None:
    """Wait until ``worker`` listens for new rows: it has started claiming (and claims again every poll)."""
    storage = open_postgres(pg)
    try:
        deadline = time.monotonic() + 60
        while not storage.db.query("SELECT 1 FROM pg_stat_activity WHERE application_name = ? "
                                   "AND query = 'LISTEN emrcomm_outbox'", (f"emrcomm:{worker.pid}",)):
            assert time.monotonic() < deadline and worker.poll() is None, "the worker did not start"
            time.sleep(0.05)
    finally:
        storage.close()


def stopped(worker: subprocess.Popen[bytes], config: Path, name: str) -> dict[str, Any]:
    """Stop ``worker`` (SIGTERM) and return what it says it did."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    out = (config.parent / f"{name}.out").read_text(encoding="utf-8")
    assert out.strip(), (config.parent / f"{name}.log").read_text(encoding="utf-8")
    return dict(json.loads(out)["worker"])


def test_a_claim_times_its_lease_by_the_servers_clock_written_as_the_store_writes_times(
        make_host: Callable[..., Host], clock: Clock) -> None:
    host = make_host(QUEUE)
    host.send(reminder("l-1"))
    clock.now += dt.timedelta(days=400)  # the host's clock far off: the lease does not follow it
    [row] = host.storage.outbox.claim(owner="w", now=clock.now, lease=dt.timedelta(seconds=60), limit=1)
    [stored] = host.storage.db.query("SELECT lease_until, updated, clock_timestamp() AS server FROM outbox")
    assert stored["lease_until"] == iso(parse_iso(stored["lease_until"]))  # compares as text with any time stored
    assert abs(parse_iso(stored["lease_until"]) - stored["server"] - dt.timedelta(seconds=60)) < dt.timedelta(seconds=5)
    assert stored["updated"] == iso(clock.now)  # the row's business times stay the host's
    assert row.lease_until == parse_iso(stored["lease_until"]) and row.held_until is not None


def test_a_worker_whose_clock_runs_minutes_ahead_leaves_alone_a_row_another_is_still_sending(
        pg: str, tmp_path: Path) -> None:
    """Two worker processes on one database, the second's clock 3 minutes ahead (another
    machine's, badly set): it looks for due rows again and again while the first is still
    sending, and takes nothing, since the lease runs by the database server's clock. The patient
    gets the message once."""
    sink = HoldingSink(hold=9.0)  # under the transport's 10 s read timeout
    try:
        config = lease_config(tmp_path, pg, sink, lease_seconds=20)
        [record] = enqueue(config, 1, patients=1)
        holder = start_worker(config, "holder")
        try:
            sink.wait_for(1, timeout=60)  # the holder's send is under way
            ahead = start_worker(config, "ahead", shift=dt.timedelta(minutes=3))
            try:
                claiming(pg, ahead)
                time.sleep(1.0)  # five polls of the outbox while the send is held
            finally:
                sink.release.set()
            assert wait_settled(config, time.monotonic() + 30)
        finally:
            holders = stopped(holder, config, "holder")
            aheads = stopped(ahead, config, "ahead")
    finally:
        sink.close()
    assert not sink.held_to_the_end, "the send ended before the other worker looked: nothing was tested"
    assert received(sink) == [record]
    assert (holders["sent"], holders["lost_lease"], aheads["taken_over"], aheads["sent"]) == (1, 0, 0, 0)


@pytest.mark.parametrize("shift", [dt.timedelta(minutes=3), dt.timedelta(minutes=-3)], ids=["ahead", "behind"])
def test_a_row_whose_worker_died_is_taken_over_once_its_lease_runs_out_by_the_servers_clock(
        pg: str, tmp_path: Path, shift: dt.timedelta) -> None:
    """The worker sending a row is killed mid-send; another, on a machine whose clock is 3 minutes
    ahead or behind, takes the row over when the lease has run out by the database server's
    clock: not sooner (ahead), not minutes later (behind). It is sent again (the in-flight window)."""
    lease = 6.0
    sink = HoldingSink(hold=9.0)
    try:
        config = lease_config(tmp_path, pg, sink, lease_seconds=lease)
        [record] = enqueue(config, 1, patients=1)
        holder = start_worker(config, "holder")
        sink.wait_for(1, timeout=60)
        holder.kill()  # SIGKILL, mid-send: its row stays 'sending', leased
        holder.wait(30)
        sink.release.set()
        other = start_worker(config, "other", shift=shift)
        try:
            sink.wait_for(2, timeout=lease + 60)
            assert wait_settled(config, time.monotonic() + 30)
        finally:
            others = stopped(other, config, "other")
    finally:
        sink.close()
    # The holder claimed the row within an eighth of the lease before its send reached the sink.
    waited = sink.times[1] - sink.times[0]
    assert lease * 7 / 8 <= waited <= lease + 30
    assert received(sink) == [record, record]
    assert (others["taken_over"], others["sent"]) == (1, 1)


# ---------------------------------------------------------------------------- stateless serve


@pytest.fixture
def two_serves(pg: str, tmp_path: Path) -> Iterator[Callable[[str], tuple[Host, list[int]]]]:
    processes: list[subprocess.Popen[bytes]] = []
    hosts: list[Host] = []

    def start(extra: str = "", config_text: str | None = None) -> tuple[Host, list[int]]:
        path = write_config(tmp_path, extra)
        if config_text is not None:
            path.write_text(with_store(config_text + extra), encoding="utf-8")
        host = Host(load_config(path))
        hosts.append(host)
        ports = []
        for n in range(2):
            for _ in range(5):  # a port taken between free_port() and the bind: another
                port = free_port()
                log = (tmp_path / f"serve{n}.log").open("wb")
                process = subprocess.Popen([str(EMRCOMM), "serve", "--config", str(path), "--port", str(port)],
                                           stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                processes.append(process)
                if serve_ready(port, process):
                    ports.append(port)
                    break
            else:
                pytest.fail("emrcomm serve did not start: " + (tmp_path / f"serve{n}.log").read_text()[-2000:])
        return host, ports

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(20)
    for host in hosts:
        host.close()


def request(port: int, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    from urllib.parse import urlencode

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = urlencode(form) if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read().decode("utf-8", "replace")


def answer(date: object) -> dict[str, str]:
    return {"day": str(date.day), "month": str(date.month), "year": str(date.year)}  # type: ignore[attr-defined]


def test_two_serves_answering_alternately_share_a_clients_rate_limit(
        two_serves: Callable[..., tuple[Host, list[int]]]) -> None:
    _, (a, b) = two_serves("")
    # The portal allows a client 30 requests a minute: 30 answers alternate between the two
    # processes, and the 31st is refused whichever gets it, though each alone has seen 15.
    statuses = [request(a if i % 2 else b, "GET", f"/m/{'x' * 43}")[0] for i in range(31)]
    assert 429 not in statuses[:30]
    assert statuses[30] == 429
    assert request(a, "GET", f"/m/{'x' * 43}")[0] == 429  # and the other one says the same


def test_two_serves_answering_alternately_lock_a_link_after_the_same_tries(
        two_serves: Callable[..., tuple[Host, list[int]]]) -> None:
    host, (a, b) = two_serves("")
    token = token_in(notice_for(host, send_note(host, "two-serves"))["text"])
    answers = [request(a if i % 2 else b, "POST", f"/m/{token}/open", answer(WRONG_DATE))[0] for i in range(5)]
    assert answers == [400, 400, 400, 400, 403]  # as one process answers (tests/test_web.py)
    assert request(b, "POST", f"/m/{token}/open", answer(BIRTH_DATE))[0] == 403
    assert request(a, "POST", f"/m/{token}/open", answer(BIRTH_DATE))[0] == 403


def test_two_serves_file_a_repeated_delivery_report_once(two_serves: Callable[..., tuple[Host, list[int]]],
                                                         tmp_path: Path) -> None:
    from urllib.parse import urlencode

    from emrcomm_sms.callbacks import record_signature
    from hostile_kit import SECRET, kannel_config

    host, (a, b) = two_serves("", kannel_config(tmp_path, ""))
    record = send_note(host, "dlr-twice").record_ids[-1]  # the SMS notice
    path = "/callbacks/kannel/dlr?" + urlencode({"record": record, "sig": record_signature(SECRET, record),
                                                 "type": "1"})
    assert [request(port, "GET", path)[0] for port in (a, b, a)] == [200, 200, 200]
    delivered = [e for e in host.storage.records.events(record) if e.kind.value == "delivered"]
    assert len(delivered) == 1


@pytest.fixture
def runtime_role(empty_pg: str) -> Iterator[str]:
    """The URL of ``empty_pg`` as a role that may read and write rows but not change the schema
    (the runtime role of docs/operations.md, "Roles and least privilege")."""
    import uuid

    import psycopg

    role = f"app_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(empty_pg, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")  # type: ignore[arg-type]
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        admin.execute(f"GRANT USAGE ON SCHEMA public TO {role}")  # type: ignore[arg-type]
        admin.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON "  # type: ignore[arg-type]
                      f"TABLES TO {role}")
        admin.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO {role}")  # type: ignore[arg-type]
    try:
        yield empty_pg.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    finally:
        with psycopg.connect(empty_pg, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")  # type: ignore[arg-type]
            admin.execute(f"DROP ROLE {role}")  # type: ignore[arg-type]


def test_db_upgrade_by_the_runtime_role_names_the_owner_role_instead_of_a_traceback(
        runtime_role: str, tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(with_store(support.BASE_CONFIG, runtime_role), encoding="utf-8")
    code, said = run("db", "upgrade", "--config", str(path))
    assert code == 2, said
    assert "Traceback" not in said
    assert "cannot change the schema" in said and "as the role that owns the tables" in said


def test_db_copy_by_the_runtime_role_names_the_owner_role_instead_of_a_traceback(
        runtime_role: str, empty_pg: str, tmp_path: Path) -> None:
    from emrcomm.demo import run_demo

    run_demo(tmp_path / "demo", patients=5, seed=7, day=None, progress=False, out=sys.stderr)
    sqlite_config = tmp_path / "demo" / "emrcomm.toml"
    owner, app = tmp_path / "demo" / "owner.toml", tmp_path / "demo" / "emrcomm-pg.toml"
    for config, url in ((owner, empty_pg), (app, runtime_role)):
        config.write_text(sqlite_config.read_text().replace('path = "emrcomm.sqlite"',
                                                            f'path = "emrcomm.sqlite"\nurl = "{url}"'))
    assert run("db", "upgrade", "--config", str(owner))[0] == 0
    code, said = run("db", "copy", "--from", str(sqlite_config), "--config", str(app))
    assert code == 2, said
    assert "Traceback" not in said
    assert "cannot change the schema" in said and "as the role that owns the tables" in said
    assert run("db", "copy", "--from", str(sqlite_config), "--config", str(owner))[0] == 0  # nothing was left


# ------------------------------------------------------------------------- SQLite to PostgreSQL


def test_db_copy_moves_the_demo_clinic_and_records_prints_the_same_bundle_from_both(
        pg: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from emrcomm.demo import run_demo

    run_demo(tmp_path / "demo", patients=30, seed=7, day=None, progress=False, out=sys.stderr)
    sqlite_config = tmp_path / "demo" / "emrcomm.toml"
    pg_config = tmp_path / "demo" / "emrcomm-pg.toml"  # the same folder: the same keys and key ring
    pg_config.write_text(sqlite_config.read_text().replace('path = "emrcomm.sqlite"',
                                                           f'path = "emrcomm.sqlite"\nurl = "{pg}"'))
    capsys.readouterr()
    assert main(["db", "copy", "--from", str(sqlite_config), "--config", str(pg_config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["audit"]["ok"] and report["audit"]["entries"] > 0
    assert report["tables"]["records"]["source"] == report["tables"]["records"]["target"] > 0
    printed = []
    for view in (["--fhir"], []):  # the FHIR Bundle, and the clinic's log as staff read it
        assert main(["records", *view, "--config", str(sqlite_config)]) == 0
        printed.append(capsys.readouterr().out)
        assert main(["records", *view, "--config", str(pg_config)]) == 0
        assert capsys.readouterr().out == printed[-1]
    assert json.loads(printed[0])["total"] == report["tables"]["records"]["source"]
    # A second copy into the same database is refused: it is no longer empty.
    assert main(["db", "copy", "--from", str(sqlite_config), "--config", str(pg_config)]) == 2
    assert "is not empty" in capsys.readouterr().err


# ------------------------------------------------------------------------- a pool with every connection lent


def test_a_pool_whose_connections_are_all_in_use_says_so_rather_than_that_the_server_is_away(
        pg: str, caplog: pytest.LogCaptureFixture) -> None:
    """More threads than ``store.pool_size`` connections, one holding its connection past the
    pool's wait: the one left waiting is answered 'unavailable' naming the pool, and the log does
    not blame a server that answers (nor does the next statement wait only the away-wait)."""
    import logging

    from emrcomm.storage import StoreUnavailable
    from emrcomm.storage.postgres import PostgresDatabase

    db = PostgresDatabase(pg, pool_max=1, pool_wait=0.5)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction():
            db.query("SELECT 1")
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with caplog.at_level(logging.INFO, logger="emrcomm.storage"), pytest.raises(StoreUnavailable) as err:
            db.query("SELECT 1")
    finally:
        release.set()
        holder.join()
    assert "all 1 connection(s) of the pool are in use" in str(err.value)
    assert "store.pool_size" in str(err.value)
    assert "cannot be reached" not in caplog.text and "cannot be reached" not in str(err.value)
    assert "all 1 connection(s) of the pool are in use" in caplog.text
    assert db.query("SELECT 1 AS one") == [{"one": 1}]
    assert "reachable again" not in caplog.text
    db.close()


# ------------------------------------------------------------------------- a lock held elsewhere


def lock_outbox(url: str) -> Callable[[], None]:
    """Another session (a DBA's forgotten ``BEGIN; LOCK TABLE …``, a ``VACUUM FULL``) holding
    the outbox until the function returned is called."""
    import psycopg

    other = psycopg.connect(url)
    other.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")

    def release() -> None:
        other.rollback()
        other.close()
    return release


@pytest.fixture
def outbox_locked(pg: str) -> Iterator[None]:
    release = lock_outbox(pg)
    yield
    release()


def test_a_statement_waits_for_a_lock_held_elsewhere_at_most_store_lock_timeout(
        pg: str, outbox_locked: None, caplog: pytest.LogCaptureFixture) -> None:
    """Without a bound every worker and every request waits, silently, for as long as the other
    session holds the lock; with it the statement is answered 'unavailable' (tried again, the
    API's 503), and the log names the lock and where to look."""
    import logging

    from emrcomm.storage import StoreUnavailable
    from emrcomm.storage.postgres import PostgresDatabase

    db = PostgresDatabase(pg, lock_timeout=0.3)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="emrcomm.storage"):
        with pytest.raises(StoreUnavailable, match=r"waited 0\.3 s for a lock"):
            db.query("SELECT count(*) FROM outbox")  # outside a transaction
        with pytest.raises(StoreUnavailable, match=r"waited 0\.3 s for a lock"), db.transaction():
            db.execute("UPDATE outbox SET attempts = attempts WHERE key = ?", ("none",))
    assert time.monotonic() - started < 5
    assert "store.lock_timeout" in caplog.text and "pg_locks" in caplog.text
    assert "cannot be reached" not in caplog.text
    assert db.query("SELECT 1 AS one") == [{"one": 1}]  # the rest of the database answers
    db.close()


def test_a_worker_behind_a_locked_outbox_says_so_and_delivers_once_the_lock_is_released(
        pg: str, tmp_path: Path) -> None:
    """``[store] lock_timeout`` from the config reaches the worker's connections: its claim
    gives up waiting after it and says why (not silence for as long as the lock is held), and
    the long-running worker delivers as soon as the other session lets go."""
    path = write_config(tmp_path, QUEUE)
    path.write_text(path.read_text(encoding="utf-8").replace("[store]\n", "[store]\nlock_timeout = 0.5\n", 1),
                    encoding="utf-8")
    with Host(load_config(path)) as host:
        assert host.send(reminder("locked-1")).status.value == "queued"
    release = lock_outbox(pg)
    proc = subprocess.Popen([str(EMRCOMM), "worker", "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    said: list[str] = []
    try:
        reader = threading.Thread(target=lambda: said.extend(proc.stdout or ()), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while not any("waited 0.5 s for a lock" in line for line in said) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any("waited 0.5 s for a lock" in line for line in said), said
    finally:
        release()
    try:
        with Host(load_config(path), read_only=True) as host:
            deadline = time.monotonic() + 60
            while host.storage.outbox.counts() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert host.storage.outbox.counts() == {}, said
        proc.send_signal(signal.SIGTERM)  # finishes what it holds, prints its summary, exits 0
        assert proc.wait(timeout=60) == 0, said
    finally:
        proc.kill()
    reader.join(10)
    assert "Traceback" not in "".join(said)
    assert "sent=1" in "".join(said), said


def test_worker_once_behind_an_unavailable_database_says_so_and_exits_4_instead_of_waiting(
        pg: str, tmp_path: Path) -> None:
    """``worker --once`` is what cron, systemd timers and scripts run: a claim that finds the
    database unavailable (here a lock held elsewhere past store.lock_timeout, for the whole run)
    ends the run with the usual line and exit 4, the queued message left for the next run; it
    waited for as long as the lock was held. (The 60 s bound is generous: it exits in seconds.)"""
    path = write_config(tmp_path, QUEUE)
    path.write_text(path.read_text(encoding="utf-8").replace("[store]\n", "[store]\nlock_timeout = 0.3\n", 1),
                    encoding="utf-8")
    with Host(load_config(path)) as host:
        assert host.send(reminder("locked-once")).status.value == "queued"
    release = lock_outbox(pg)
    try:
        done = subprocess.run([str(EMRCOMM), "worker", "--once", "--config", str(path)], capture_output=True,
                              text=True, timeout=60, check=False)
    finally:
        release()
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert "emrcomm: error:" in done.stderr and "waited 0.3 s for a lock" in done.stderr
    with Host(load_config(path), read_only=True) as host:
        assert host.storage.outbox.counts() == {"pending": 1}


def _owner_and_app(tmp_path: Path, owner_url: str, app_url: str) -> tuple[Path, Path]:
    """A store made by the owner role, with a message queued, and a config of the runtime role
    (beside it: one audit key)."""
    owner, app = write_config(tmp_path), tmp_path / "app.toml"
    owner.write_text(with_store(support.BASE_CONFIG + QUEUE, owner_url), encoding="utf-8")
    app.write_text(with_store(support.BASE_CONFIG + QUEUE, app_url), encoding="utf-8")
    assert run("db", "upgrade", "--config", str(owner))[0] == 0
    with Host(load_config(owner)) as host:
        assert host.send(reminder("once-errors")).status.value == "queued"
    return owner, app


def test_worker_once_whose_claim_the_server_refuses_says_so_and_exits_2_instead_of_trying_for_ever(
        runtime_role: str, empty_pg: str, tmp_path: Path) -> None:
    """A claim that fails otherwise than "unavailable" (here the runtime role may not UPDATE the
    outbox) was tried again every poll_seconds, for ever, even with --once: cron's run never
    ended. It ends in one line; a privilege the role lacks is the config (exit 2)."""
    import psycopg

    _, app = _owner_and_app(tmp_path, empty_pg, runtime_role)
    role = runtime_role.split("//", 1)[1].split("@", 1)[0]
    with psycopg.connect(empty_pg, autocommit=True) as admin:
        admin.execute(f"REVOKE UPDATE ON outbox FROM {role}")  # type: ignore[arg-type]
    done = subprocess.run([str(EMRCOMM), "worker", "--once", "--config", str(app)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("emrcomm: error:")]
    assert error == ("emrcomm: error: worker --once: the outbox could not be claimed from: InsufficientPrivilege: "
                     "permission denied for table outbox"), done.stderr


def test_worker_once_that_could_not_settle_a_send_says_so_and_exits_4(
        runtime_role: str, empty_pg: str, tmp_path: Path) -> None:
    """A row whose delivery raises (here the role may not read the records it settles) is
    left leased for a takeover while the other rows go, as in the long-running worker; --once
    counted nothing, exited 0 and so told cron all was done."""
    import psycopg

    _, app = _owner_and_app(tmp_path, empty_pg, runtime_role)
    role = runtime_role.split("//", 1)[1].split("@", 1)[0]
    with psycopg.connect(empty_pg, autocommit=True) as admin:
        admin.execute(f"REVOKE SELECT ON records FROM {role}")  # type: ignore[arg-type]
    done = subprocess.run([str(EMRCOMM), "worker", "--once", "--json", "--config", str(app)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert result["worker"]["errors"] == 1 and result["worker"]["sent"] == 0, result
    assert result["outbox"] == {"sending": 1}, result


def test_a_sent_message_whose_record_the_server_refuses_is_not_recorded_again_for_its_lease_and_once_exits_2(
        runtime_role: str, empty_pg: str, tmp_path: Path) -> None:
    """The message left, but the runtime role may not INSERT its event: the record was written
    again and again for the row's whole lease (a worker thread held for minutes), and --once then
    exited 0. A refusal (SQLSTATE class 42) is not a moment that passes: the row is removed at
    once (never sent twice), its record stays in progress, and --once says so and exits 2, as
    for a claim the server refuses."""
    import psycopg

    owner, app = _owner_and_app(tmp_path, empty_pg, runtime_role)
    app.write_text(app.read_text(encoding="utf-8").replace('mode = "queue"\n', 'mode = "queue"\nlease_seconds = 8\n'),
                   encoding="utf-8")
    role = runtime_role.split("//", 1)[1].split("@", 1)[0]
    with psycopg.connect(empty_pg, autocommit=True) as admin:
        admin.execute(f"REVOKE INSERT ON events FROM {role}")  # type: ignore[arg-type]
    done = subprocess.run([str(EMRCOMM), "worker", "--once", "--json", "--config", str(app)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert (result["worker"]["sent"], result["worker"]["unrecorded"], result["worker"]["errors"]) == (1, 1, 0), result
    assert result["outbox"] == {}, result  # removed: no worker sends it again
    [sent] = [json.loads(line) for line in (tmp_path / "out" / "sms.jsonl").read_text(encoding="utf-8").splitlines()]
    [refusal] = [line for line in done.stderr.splitlines() if "refuses to record it" in line]
    assert refusal.endswith(f"outbox {sent['id']}: sent, but the database refuses to record it (InsufficientPrivilege, "
                            "SQLSTATE 42501: a privilege the role lacks); not tried again"), done.stderr
    assert "recording it failed" not in done.stderr  # not tried again and again
    [error] = [line for line in done.stderr.splitlines() if line.startswith("emrcomm: error:")]
    assert error.startswith("emrcomm: error: worker --once: 1 sent but not recorded: the database refuses this role"), error
    with Host(load_config(owner), read_only=True) as host:
        record = host.record(sent["id"])
        assert record is not None and record.state == "queued"


def test_a_lock_wait_in_one_part_of_a_group_commit_is_said_to_that_part_alone(pg: str, outbox_locked: None) -> None:
    from emrcomm.storage import StoreUnavailable
    from emrcomm.storage.postgres import PostgresDatabase

    db = PostgresDatabase(pg, lock_timeout=0.3)
    failed: list[BaseException] = []
    with db.group_commit():
        try:
            with db.transaction():
                db.execute("UPDATE outbox SET attempts = attempts WHERE key = ?", ("none",))
        except Exception as exc:
            failed.append(exc)
        with db.transaction():
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("lock-test", "kept"))
    assert [type(e) for e in failed] == [StoreUnavailable]
    assert db.query("SELECT value FROM meta WHERE key = ?", ("lock-test",)) == [{"value": "kept"}]
    db.close()


def test_a_command_that_finds_the_database_unavailable_says_so_and_exits_4_without_a_traceback(
        pg: str, tmp_path: Path, outbox_locked: None) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("[store]\n", "[store]\nlock_timeout = 0.3\n", 1),
                    encoding="utf-8")
    code, said = run("outbox", "--config", str(path))
    assert code == 4, said
    assert "Traceback" not in said
    assert "emrcomm: error:" in said and "waited 0.3 s for a lock" in said


def _pointed_at(tmp_path: Path, url: str) -> Path:
    path = write_config(tmp_path)
    path.write_text(re.sub(r"(?m)^url = .*$", f'url = "{url}"', path.read_text(encoding="utf-8"), count=1),
                    encoding="utf-8")
    return path


def test_a_database_server_that_cannot_be_reached_at_start_exits_4_not_2(pg: str, tmp_path: Path) -> None:
    """A server down, or one that refuses a connection for now (its connections all taken), is
    "try later" to cron and systemd: exit 4 with the one line, as when it goes away part-way. It
    was exit 2, "fix the config", so a script could not tell a restart from a typo."""
    import socket as so
    import uuid

    import psycopg

    with so.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # a port nothing listens on once closed
    down = _pointed_at(tmp_path, f"postgresql://postgres@127.0.0.1:{port}/emrcomm")
    for argv in (("worker", "--once"), ("outbox",), ("records",)):
        code, said = run(*argv, "--config", str(down))
        assert code == 4, said
        assert "Traceback" not in said, said
        [error] = [line for line in said.splitlines() if line.startswith("emrcomm: error:")]
        assert error.startswith(f"emrcomm: error: store.url: cannot connect to postgresql://postgres@127.0.0.1:{port}"
                                "/emrcomm: ") and "Connection refused" in error, said
    role = f"busy_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")  # type: ignore[arg-type]
        admin.execute(f"GRANT pg_read_all_data TO {role}")  # type: ignore[arg-type]
    try:
        as_role = pg.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
        (tmp_path / "busy").mkdir()
        with psycopg.connect(as_role):  # the role's one connection, taken
            code, said = run("outbox", "--config", str(_pointed_at(tmp_path / "busy", as_role)))
        assert code == 4, said
        assert "too many connections for role" in said and "Traceback" not in said, said
    finally:
        with psycopg.connect(pg, autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")  # type: ignore[arg-type]


def test_a_database_that_is_not_there_or_a_role_that_is_not_is_config_exit_2(pg: str, tmp_path: Path) -> None:
    """What waiting does not mend stays "fix the config" (exit 2): the server answers, and says
    no such database, or no such role (as it says a wrong password)."""
    database = pg.split("@/", 1)[1].split("?", 1)[0]
    for name, url in (("db", pg.replace(f"@/{database}?", "@/no_such_database?", 1)),
                      ("role", pg.replace("postgresql://postgres@", "postgresql://no_such_role@", 1))):
        (tmp_path / name).mkdir()
        code, said = run("outbox", "--config", str(_pointed_at(tmp_path / name, url)))
        assert code == 2, said
        assert "Traceback" not in said, said
        [error] = [line for line in said.splitlines() if line.startswith("emrcomm: error:")]
        assert "does not exist" in error, said


def test_a_url_whose_one_host_is_down_and_other_refuses_its_database_is_config_exit_2(
        pg: str, tmp_path: Path) -> None:
    """libpq tries every address of a URL ("localhost": ::1, then 127.0.0.1); when one is down
    and the other answers that the database (or the role, or the password) is wrong, waiting
    does not mend it: exit 2. The "Connection refused" of the first in psycopg's list of every
    attempt made it exit 4, "try again when the server is up", for a typo."""
    import socket as so

    with so.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # a port nothing listens on once closed
    database = pg.split("@/", 1)[1].split("?", 1)[0]
    query = dict(part.split("=", 1) for part in pg.split("?", 1)[1].split("&"))
    url = (f"postgresql://postgres@/no_such_database?host=127.0.0.1,{query['host']}"
           f"&port={port},{query['port']}")
    assert database != "no_such_database"
    code, said = run("outbox", "--config", str(_pointed_at(tmp_path, url)))
    assert code == 2, said
    assert "Traceback" not in said and "does not exist" in said, said
    assert "try again" not in said, said


def test_doctor_names_the_privileges_the_runtime_role_lacks_and_the_grant_to_run(
        runtime_role: str, empty_pg: str, tmp_path: Path) -> None:
    """A table the role may not write (its owner gave no default privileges for it) fails the
    doctor's database check, naming it and the GRANT, instead of the first write failing later."""
    import psycopg

    owner, app = tmp_path / "owner", tmp_path / "app"
    for folder, url in ((owner, empty_pg), (app, runtime_role)):
        folder.mkdir()
        write_config(folder).write_text(with_store(support.BASE_CONFIG, url), encoding="utf-8")
    assert run("db", "upgrade", "--config", str(owner / "emrcomm.toml"))[0] == 0
    code, said = run("doctor", "--config", str(app / "emrcomm.toml"))
    assert code == 0, said
    role = runtime_role.split("//", 1)[1].split("@", 1)[0]
    assert f"role {role}, PostgreSQL" in said and "the role may read and write every table" in said
    with psycopg.connect(empty_pg, autocommit=True) as admin:
        admin.execute(f"REVOKE INSERT, UPDATE ON outbox FROM {role}")  # type: ignore[arg-type]
        admin.execute(f"REVOKE USAGE ON SEQUENCE events_seq_seq FROM {role}")  # type: ignore[arg-type]
    code, said = run("doctor", "--config", str(app / "emrcomm.toml"))
    assert code == 4, said
    assert (f"lacks privileges the processes need on 2 table(s) or sequence(s) (outbox, events_seq_seq): as the "
            f"owner role, GRANT INSERT, UPDATE ON outbox TO {role}; GRANT USAGE ON SEQUENCE events_seq_seq TO "
            f"{role}") in said


def test_the_processes_need_only_select_and_insert_on_the_audit_log(
        runtime_role: str, empty_pg: str, tmp_path: Path) -> None:
    """docs/operations.md's hardening: with UPDATE and DELETE on audit_log revoked from the
    runtime role (entries are appended signed, never changed), a send, a worker's delivery and
    ``audit verify`` work as before, and the role cannot erase an entry."""
    import psycopg

    owner, app = tmp_path / "owner", tmp_path / "app"
    for folder, url in ((owner, empty_pg), (app, runtime_role)):
        folder.mkdir()
        write_config(folder, QUEUE).write_text(with_store(support.BASE_CONFIG + QUEUE, url), encoding="utf-8")
    assert run("db", "upgrade", "--config", str(owner / "emrcomm.toml"))[0] == 0
    role = runtime_role.split("//", 1)[1].split("@", 1)[0]
    with psycopg.connect(empty_pg, autocommit=True) as admin:
        admin.execute(f"REVOKE UPDATE, DELETE ON audit_log FROM {role}")  # type: ignore[arg-type]
    (app / "audit-signing.key").write_bytes((owner / "audit-signing.key").read_bytes())
    (app / "audit-signing.key").chmod(0o600)
    with Host(load_config(app / "emrcomm.toml")) as host:
        assert host.send(reminder("append-only-1")).status.value == "queued"
    code, said = run("worker", "--once", "--config", str(app / "emrcomm.toml"))
    assert code == 0 and "sent=1" in said, said
    code, said = run("audit", "verify", "--config", str(app / "emrcomm.toml"))
    assert code == 0, said
    code, said = run("doctor", "--config", str(app / "emrcomm.toml"))
    assert code == 0, said
    with psycopg.connect(runtime_role, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM audit_log")


def test_a_lock_timeout_of_0_sends_no_startup_option_and_leaves_the_roles_own_setting(pg: str) -> None:
    """Behind PgBouncer (which refuses startup options it does not track) ``lock_timeout = 0``
    sends none, and the server's setting for the role applies."""
    from emrcomm.storage.postgres import PostgresDatabase

    db = PostgresDatabase(pg, lock_timeout=0)
    assert "options" not in db._kwargs
    assert db.query("SHOW lock_timeout") == [{"lock_timeout": "0"}]
    db.close()
    db = PostgresDatabase(pg, lock_timeout=2.5)
    assert db.query("SHOW lock_timeout") == [{"lock_timeout": "2500ms"}]
    db.close()
    # under half a millisecond is still a bound, not PostgreSQL's 0 (wait for ever)
    db = PostgresDatabase(pg, lock_timeout=0.0002)
    assert db.query("SHOW lock_timeout") == [{"lock_timeout": "1ms"}]
    db.close()


@contextlib.contextmanager
def tcp_hop(socket_file: Path) -> Iterator[int]:
    """A port on 127.0.0.1 whose connections are forwarded to the server's Unix socket: a TCP
    leg for what libpq applies to TCP only. Yields the port; the listener closes at the end."""
    import socket as so

    listener = so.create_server(("127.0.0.1", 0))

    def pump(source: so.socket, sink: so.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(so.SHUT_RDWR)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                server = so.socket(so.AF_UNIX, so.SOCK_STREAM)
                server.connect(str(socket_file))
                for a, b in ((client, server), (server, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def keepalive_options(fd: int) -> tuple[int, int, int, int]:
    """SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT of the client's socket ``fd``."""
    import socket as so

    with so.socket(fileno=os.dup(fd)) as sock:
        return (sock.getsockopt(so.SOL_SOCKET, so.SO_KEEPALIVE), sock.getsockopt(so.IPPROTO_TCP, so.TCP_KEEPIDLE),
                sock.getsockopt(so.IPPROTO_TCP, so.TCP_KEEPINTVL), sock.getsockopt(so.IPPROTO_TCP, so.TCP_KEEPCNT))


def test_connections_over_tcp_send_keepalives_unless_the_url_sets_them(pg: str) -> None:
    """A firewall or NAT that forgets an idle flow drops its packets silently: without TCP
    keepalives a pooled connection or the worker's LISTEN through it hung for the kernel's
    2 hours. Every connection turns them on (idle 30 s, then 3 probes 10 s apart); a setting in
    store.url wins, each on its own."""
    from urllib.parse import parse_qs, urlsplit

    from emrcomm.storage.postgres import PostgresDatabase

    parts = urlsplit(pg)
    socket_file = Path(parse_qs(parts.query)["host"][0]) / f".s.PGSQL.{parse_qs(parts.query)['port'][0]}"
    with tcp_hop(socket_file) as port:
        url = f"postgresql://postgres@127.0.0.1:{port}{parts.path}"
        db = PostgresDatabase(url, lock_timeout=0)
        try:
            with db.pool.connection() as conn:
                assert keepalive_options(conn.pgconn.socket) == (1, 30, 10, 3)
            listener = db.listen()
            listener.open()
            assert keepalive_options(listener._conn.pgconn.socket) == (1, 30, 10, 3)
            listener.close()
        finally:
            db.close()
        db = PostgresDatabase(f"{url}?keepalives_idle=300&keepalives_count=5", lock_timeout=0)
        try:
            with db.pool.connection() as conn:
                assert keepalive_options(conn.pgconn.socket) == (1, 300, 10, 5)
        finally:
            db.close()
        db = PostgresDatabase(f"{url}?keepalives=0", lock_timeout=0)
        try:
            with db.pool.connection() as conn:
                assert keepalive_options(conn.pgconn.socket)[0] == 0
        finally:
            db.close()


# A third party's plugin that reads the store as it starts (its own queue, say) and adds a command.
READING_PLUGIN = '''
import emrcomm


class Plugin:
    def __init__(self, context):
        self.context = context

    def start(self):
        self.context.storage.db.query("SELECT count(*) AS n FROM outbox")

    @emrcomm.hookimpl
    def emrcomm_cli_commands(self):
        return [emrcomm.Command("fax-queue", "faxes waiting", lambda args, plugin: 0, read_only=True)]
'''


def install_reading_plugin(site: Path) -> dict[str, str]:
    """The plugin above installed in ``site``; returns the environment a command finds it in."""
    site.mkdir()
    (site / "emrcomm_faxqueue.py").write_text(READING_PLUGIN, encoding="utf-8")
    info = site / "emrcomm_faxqueue-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: emrcomm-faxqueue\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[emrcomm]\nfaxqueue = emrcomm_faxqueue:Plugin\n", encoding="utf-8")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}


def test_a_plugin_that_finds_the_store_unavailable_as_the_commands_are_listed_is_said_in_one_line_exit_4(
        pg: str, tmp_path: Path, outbox_locked: None) -> None:
    """Listing the plugins' commands starts the plugins; one that reads the store then and finds
    it unavailable (here a lock held elsewhere past store.lock_timeout) ends the command with the
    usual line and exit 4, not a traceback; ``emrcomm --help`` still shows the core's commands and
    says why the plugins' are missing."""
    env = install_reading_plugin(tmp_path / "site")
    path = write_config(tmp_path, "\n[plugins.faxqueue]\n")
    path.write_text(path.read_text(encoding="utf-8").replace("[store]\n", "[store]\nlock_timeout = 0.3\n", 1),
                    encoding="utf-8")
    done = subprocess.run([str(EMRCOMM), "fax-queue", "--config", str(path)], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert "emrcomm: error:" in done.stderr and "waited 0.3 s for a lock" in done.stderr
    done = subprocess.run([str(EMRCOMM), "--config", str(path), "--help"], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "worker" in done.stdout and "fax-queue" not in done.stdout
    assert "the plugins' commands are not listed" in done.stderr and "waited 0.3 s for a lock" in done.stderr


def test_help_with_a_config_whose_database_server_is_down_shows_the_core_commands(tmp_path: Path) -> None:
    """``emrcomm --config clinic.toml --help`` read the config's file name as a command and, the
    server down, answered with an error instead of help; the core's commands need no plugin."""
    import socket as so

    with so.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # a port nothing listens on once closed
    path = write_config(tmp_path)
    path.write_text(re.sub(r"(?m)^url = .*$", f'url = "postgresql://postgres@127.0.0.1:{port}/emrcomm"',
                           path.read_text(encoding="utf-8"), count=1), encoding="utf-8")
    for argv in (("--config", str(path), "--help"), (f"--config={path}", "--help"), ("--help", "--config", str(path))):
        code, said = run(*argv)
        assert code == 0, said
        assert "Traceback" not in said and "worker" in said and "COMMAND" in said
        assert f"the plugins' commands are not listed: store.url: cannot connect to postgresql://postgres@127.0.0.1:{port}" in said
    code, said = run("--config", str(path), "demo", "--help")
    assert code == 0 and "--patients" in said, said


class StopsTheServer:
    """The database server stops (``pg_ctl stop -m fast``) as a front-desk Consent reaches its
    email address, its SMS entry written (while SERVER is set)."""

    SERVER: Any = None

    def __init__(self, context: Any) -> None:
        self.name = context.name

    @hookimpl
    def emrcomm_delivery_update(self, update: Any) -> None:
        if StopsTheServer.SERVER is not None and update.channel == "email":
            StopsTheServer.SERVER.halt()


@pytest.fixture
def own_server() -> Iterator[tuple[Any, str]]:
    """A PostgreSQL server of this test's own, to stop (the session's serves every other test),
    with one database at the current schema."""
    import pgserver

    with pgserver.own_server() as (server, url):
        yield server, url


def test_a_consent_cut_off_by_a_server_restart_records_nothing_and_its_retry_records_each_address_once(
        own_server: tuple[Any, str], make_host: Callable[..., Host], monkeypatch: pytest.MonkeyPatch) -> None:
    """The server stops between a Consent's SMS entry and its email entry: the EMR is answered
    503, and the SMS entry went with the transaction, so its retry, once the server is back,
    records each address once. Each entry committed on its own, the SMS one stayed (a Consent
    answered 'try again' was half in force) and the retry wrote it twice."""
    server, url = own_server
    monkeypatch.setattr(support, "STORE_URL", url)
    monkeypatch.setattr(StopsTheServer, "SERVER", server)
    points = {**discover(), "stops": metadata.EntryPoint(name="stops", value="test_postgres:StopsTheServer",
                                                         group="emrcomm")}
    host = make_host(NO_NOTIFY + f'\n[plugins]\norder = ["stops", {ALL_PLUGINS}]\n', entry_points=points)
    api = ApiClient(host, create_app(host))
    try:
        cut = api.call("POST", "/fhir/Consent", consent(provision=SMS_AND_EMAIL))
        assert cut.status_code == 503 and cut.headers["retry-after"], cut.text
        monkeypatch.setattr(StopsTheServer, "SERVER", None)
        server.start()
        deadline = time.monotonic() + 60
        while (again := api.call("POST", "/fhir/Consent", consent(provision=SMS_AND_EMAIL))).status_code == 503:
            assert time.monotonic() < deadline, "the store was not back within 60 s of the server"
            time.sleep(0.2)  # as the EMR does, told Retry-After
        assert again.status_code == 201, again.text
        assert consent_entries(host) == [("sms", "+16135550123", "revoke"),
                                         ("email", "alex.martin@example.org", "revoke")]
    finally:
        api.http.close()
