"""A real PostgreSQL for the tests and benchmarks: Debian's ``postgresql`` (15), started in a
temporary folder by ``initdb`` + ``pg_ctl`` as user postgres, listening on a Unix socket only
(``listen_addresses = ''``), stopped by its PID.

Each test gets a database of its own, made from an empty template (``CREATE DATABASE … TEMPLATE``:
a few milliseconds), so tests never see one another's rows.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
USER = "postgres"
TEMPLATE = "emrcomm_template"
# Durability is not what these tests measure: fsync off makes a commit cost what it costs in
# memory (the benchmarks and the fault test keep fsync on; see PostgresServer(durable=True)).
FAST = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")


def bin_dir() -> Path | None:
    """The folder with initdb and pg_ctl, or None when PostgreSQL is not installed."""
    for folder in BIN_DIRS:
        if (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def _as_postgres(command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as user postgres (PostgreSQL refuses to run as root)."""
    argv = ["su", USER, "-s", "/bin/sh", "-c", command] if os.geteuid() == 0 else ["/bin/sh", "-c", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=check)


class PostgresServer:
    """One PostgreSQL server in ``folder`` (made when absent), on a Unix socket in it."""

    def __init__(self, folder: Path | None = None, *, durable: bool = False, max_connections: int = 200) -> None:
        found = bin_dir()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = found
        self.folder = Path(folder or tempfile.mkdtemp(prefix="emrcomm-pg-"))
        self.data = self.folder / "data"
        self.socket = self.folder / "sock"
        self.port = 5432  # the socket's name (.s.PGSQL.5432); nothing listens on TCP
        self.durable = durable
        self.max_connections = max_connections
        self.pid: int | None = None

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@/{database}?host={self.socket}&port={self.port}"

    def start(self) -> PostgresServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            uid = pwd.getpwnam(USER).pw_uid
            for path in (self.folder, self.socket):
                os.chown(path, uid, -1)
            os.chmod(self.folder, 0o755)
        if not (self.data / "PG_VERSION").exists():
            done = _as_postgres(f"{self.bin}/initdb -A trust -U {USER} -E UTF8 --locale=C.UTF-8 -D {self.data}",
                                check=False)
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed in {self.data}: {done.stderr[-2000:]}")
        options = (f"-c listen_addresses='' -k {self.socket} -p {self.port} -c max_connections={self.max_connections}"
                   " -c shared_buffers=64MB")
        if not self.durable:
            options += " " + FAST
        done = _as_postgres(f'{self.bin}/pg_ctl -D {self.data} -o "{options}" -l {self.folder}/pg.log -w -t 60 start',
                            check=False)
        if done.returncode != 0:
            log = (self.folder / "pg.log").read_text(errors="replace")[-2000:] if (self.folder / "pg.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {done.stdout}{done.stderr}\n{log}")
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        self.sql(f"CREATE DATABASE {TEMPLATE}")
        return self

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE DATABASE, say)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def new_database(self, name: str | None = None, *, template: str = TEMPLATE) -> str:
        """A fresh database copied from ``template`` (default: an empty one); returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.split("/")[3].split("?")[0]
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server by its PID (fast shutdown), then remove its folder."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)  # fast shutdown
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    os.kill(self.pid, 0)
                    time.sleep(0.05)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
