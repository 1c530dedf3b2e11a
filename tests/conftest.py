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

import support
from emrcomm.clock import VARIABLE, shift_to
from emrcomm.config import DATA_DIR_VARIABLE, load_config
from emrcomm.host import Host
from emrcomm.testing import TEST_NOW
from support import REPO, with_store, write_config
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
    config.addinivalue_line("markers", "sqlite_only: runs on the SQLite store only (what it tests is SQLite's)")


# The behavioural suite runs on both stores: every test that builds a host through the fixtures
# below, and every test of these modules (they start the CLI, `serve` and workers as processes
# on configs from support.write_config) that has a folder of its own: a test without tmp_path
# writes no config, so it opens no store. The rest are unit tests of one part (the content
# detector, templates, rules; a transport or a channel given emrcomm.testing.make_context's
# SQLite store) that never open the test's store: they run once.
BOTH_BACKENDS_MODULES = frozenset({
    "test_audit", "test_callbacks", "test_cli", "test_clock", "test_consent",
    "test_fhir_output", "test_fhir_server", "test_group_commit", "test_hostile_cli", "test_hostile_flood",
    "test_hostile_host", "test_hostile_web", "test_kannel_callbacks", "test_lifecycle",
    "test_pipeline", "test_portal", "test_portal_browser", "test_read_only",
    "test_storage", "test_uncertain", "test_web", "test_worker", "test_worker_pipeline", "test_worker_sigkill",
    "test_api_node", "test_plugin_extensions", "test_check_outage",
})
POSTGRES_ONLY_MODULES = frozenset({"test_postgres", "test_fleet"})
# Modules whose tests use a host only to run the content detector over a corpus: once is enough;
# and the fuzz suite, whose hosts live for the module: it runs on each store with its own fixture.
SINGLE_BACKEND_MODULES = frozenset({"test_corpus", "test_detector_quality", "test_hostile_fuzz"})
BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgres))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if ("backend" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("sqlite_only")
            or module in SINGLE_BACKEND_MODULES):
        return
    if module in POSTGRES_ONLY_MODULES:
        metafunc.parametrize("backend", BACKENDS[1:], indirect=True)
    elif ((module in BOTH_BACKENDS_MODULES and "tmp_path" in metafunc.fixturenames)
          or {"make_host", "host"} & set(metafunc.fixturenames)):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One PostgreSQL for the whole run (tests/pgserver.py), with a template database whose
    schema is current (the core's, the FHIR API's, the staff pages' and every built-in plugin's
    tables): each test copies it."""
    require("postgres")
    from emrcomm.api.schema import MIGRATIONS as API
    from emrcomm.staff.schema import MIGRATIONS as STAFF
    from emrcomm.storage import open_postgres
    from emrcomm_fhirserver.queue import MIGRATIONS as FILING
    from emrcomm_optout.handled import MIGRATIONS as OPTOUT
    from emrcomm_portal.storage import MIGRATIONS as PORTAL
    from pgserver import PostgresServer

    # Its own folder in /tmp: user postgres cannot enter pytest's (mode 700, root's).
    server = PostgresServer().start()
    try:
        server.sql("CREATE DATABASE emrcomm_current TEMPLATE emrcomm_template")
        open_postgres(server.url("emrcomm_current"), migrations=[*API, *STAFF, *PORTAL, *FILING, *OPTOUT], upgrade_it=True).close()
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The store the test's hosts and configs use: "sqlite" (a file in the test's folder), or
    "postgresql" (a database of the test's own on the session's server, its schema current)."""
    which = getattr(request, "param", "sqlite")
    if which == "sqlite":
        yield which
        return
    server = request.getfixturevalue("postgres_server")
    url = server.lend("emrcomm_current")
    support.STORE_URL = url
    try:
        yield which
    finally:
        support.STORE_URL = None
        server.give_back(url, "emrcomm_current")


@pytest.fixture
def store_url(backend: str) -> str | None:
    """The running test's PostgreSQL URL, or None on SQLite."""
    return support.STORE_URL


@pytest.fixture
def make_host(tmp_path: Path, clock: Clock, backend: str) -> Iterator[Callable[..., Host]]:
    hosts: list[Host] = []

    def make(extra: str = "", *, config_text: str | None = None, **kwargs: Any) -> Host:
        path = write_config(tmp_path, extra)
        if config_text is not None:
            path.write_text(with_store(config_text + extra), encoding="utf-8")
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
