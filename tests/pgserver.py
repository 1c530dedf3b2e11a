"""A real PostgreSQL for the tests and benchmarks: Debian's ``postgresql`` (15), started in a
temporary folder by ``initdb`` + ``pg_ctl`` as user postgres, listening on a Unix socket only
(``listen_addresses = ''``), stopped by its PID.

Each test gets a database of its own, a copy of a template (``CREATE DATABASE … TEMPLATE``), so
tests never see one another's rows; a copy given back is emptied to the template's rows and lent
to the next test, which is cheaper than a new copy (``lend``, ``give_back``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
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
        self._templates: dict[str, _Snapshot] = {}
        self._free: dict[str, list[str]] = {}
        self._started = False  # start() again after halt() keeps the databases

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
        if not self._started:
            self.sql(f"CREATE DATABASE {TEMPLATE}")
            self._started = True
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
        self.sql(f"DROP DATABASE IF EXISTS {_name(url)} WITH (FORCE)")

    # Databases lent to tests and emptied when given back: CREATE DATABASE copies the template's
    # 8 MB (mostly the system catalogs) through the WAL, 0.1 s on an idle machine and 0.2-0.4 s
    # on a busy one, for each of some 600 tests; emptying ~60 small tables takes a few ms.
    def lend(self, template: str) -> str:
        """A database with ``template``'s schema and rows, none other: one given back earlier
        (see :meth:`give_back`), else a fresh copy."""
        if template not in self._templates:
            self._templates[template] = _Snapshot.of(self.url(template))
        free = self._free.setdefault(template, [])
        return free.pop() if free else self.new_database(template=template)

    def give_back(self, url: str, template: str) -> None:
        """Empty a lent database back to ``template``'s rows for the next test, after ending
        whatever sessions the test left (a killed worker's, say). A database whose schema is no
        longer the template's (a plugin's migration added a table) is dropped instead."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                               (_name(url),)).fetchall() and time.monotonic() < deadline:
                time.sleep(0.01)
        snapshot = self._templates[template]
        if snapshot.restore(url):
            self._free[template].append(url)
        else:
            self.drop_database(url)

    def halt(self) -> None:
        """Stop the server by its PID as ``pg_ctl stop -m fast`` does (SIGINT: every session is
        ended, open transactions rolled back), keeping its folder: :meth:`start` brings it back
        with its databases, as after a restart or a failover."""
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

    def stop(self) -> None:
        """Stop the server by its PID (fast shutdown), then remove its folder."""
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _name(url: str) -> str:
    return url.split("/")[3].split("?")[0]


# Everything a test can change in a schema: tables, indexes, columns, constraints, functions.
SCHEMA = """
SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
    SELECT c.relname || ':' || c.relkind::text || ':' || coalesce(a.attname, '') || ':'
           || coalesce(format_type(a.atttypid, a.atttypmod), '') AS item
    FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'constraint:' || conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'function:' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'schema:' || nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%temp%'
) AS items
"""


class _Snapshot:
    """A template database's schema fingerprint, tables, sequences and rows (a few, in meta)."""

    def __init__(self, schema: str, tables: list[str], sequences: list[str],
                 rows: dict[str, tuple[list[str], list[tuple[object, ...]]]]) -> None:
        self.schema, self.tables, self.sequences, self.rows = schema, tables, sequences, rows

    @classmethod
    def of(cls, url: str) -> _Snapshot:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            schema = conn.execute(SCHEMA).fetchone()[0]  # type: ignore[index]
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
            sequences = [r[0] for r in conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY sequencename")]
            rows = {}
            for table in tables:
                cur = conn.execute(f'SELECT * FROM "{table}"')  # type: ignore[arg-type]
                found = cur.fetchall()
                if found:
                    rows[table] = ([d.name for d in cur.description or ()], found)
        return cls(schema, tables, sequences, rows)

    def restore(self, url: str) -> bool:
        """Give ``url`` this snapshot's rows and restart its sequences; False (nothing done) when
        its schema differs."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(url) as conn:
            if conn.execute(SCHEMA).fetchone()[0] != self.schema:  # type: ignore[index]
                return False
            conn.execute("SET LOCAL session_replication_role = replica")  # no foreign-key order to follow
            conn.execute(sql.SQL("; ").join(
                [sql.SQL("DELETE FROM {}").format(sql.Identifier(t)) for t in self.tables]
                + [sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(s)) for s in self.sequences]))
            for table, (columns, found) in self.rows.items():
                statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns)))
                conn.cursor().executemany(statement, found)
        return True


@contextlib.contextmanager
def own_server() -> Iterator[tuple[PostgresServer, str]]:
    """A PostgreSQL server of one test's own, to stop and start (the session's serves every other
    test), and the URL of one database on it at the current schema: the host's tables and every
    built-in plugin's."""
    from emrcomm.api.schema import MIGRATIONS as API
    from emrcomm.staff.schema import MIGRATIONS as STAFF
    from emrcomm.storage import open_postgres
    from emrcomm_fhirserver.queue import MIGRATIONS as FILING
    from emrcomm_optout.handled import MIGRATIONS as OPTOUT
    from emrcomm_portal.storage import MIGRATIONS as PORTAL

    server = PostgresServer().start()
    try:
        url = server.new_database()
        open_postgres(url, migrations=[*API, *STAFF, *PORTAL, *FILING, *OPTOUT], upgrade_it=True).close()
        yield server, url
    finally:
        server.stop()
