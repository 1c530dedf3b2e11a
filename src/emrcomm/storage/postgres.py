"""PostgreSQL, for clinics and vendors that outgrow one machine: many workers and many ``serve``
processes on one database (psycopg 3 and its connection pool).

Same semantics as :class:`~emrcomm.storage.sqlite.SQLiteDatabase`: nested transactions join the
outer one, :meth:`savepoint` is a part that can fail alone, :meth:`group_commit` makes many
transactions one commit, ``before_commit`` callbacks run inside every commit. Each thread has its
own connection while it is inside a transaction (taken from the pool, given back at the end);
a statement outside one runs on a pooled connection in autocommit. Repositories write ``?``
placeholders; they are translated here.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from emrcomm.errors import ConfigError
from emrcomm.storage.database import Row, StoreClosed, StoreNotOpened, StoreNotReached, StoreUnavailable

log = logging.getLogger("emrcomm.storage")

# Tables the processes only read and append to on PostgreSQL (the chain is signed as it is
# appended, never updated): the runtime role needs no UPDATE or DELETE on them.
APPEND_ONLY = frozenset({"audit_log"})
NOTIFY_CHANNEL = "emrcomm_outbox"  # LISTEN/NOTIFY: a row was put in the outbox or made due again
# While the server is known to be away, a statement waits this long for a connection before it is
# answered StoreUnavailable (the API's 503), rather than the pool's minute: the pool keeps trying
# to connect behind it, and the first statement after the server is back gets its connection.
AWAY_WAIT = 1.0
# After a dropped connection, the wait for another: the pool is making new ones, which take
# milliseconds when the server is there; when it is not, this is the one longer wait.
REPLACE_WAIT = 5.0
# TCP keepalive timings on every connection (libpq's parameters), unless store.url sets one
# itself: a firewall or NAT that forgets an idle flow drops packets silently, and a connection
# through it (an idle pooled one, the worker's LISTEN) was found dead only after the kernel's
# defaults, 2 h idle then 9 probes 75 s apart. With these it is found dead after about
# 30 + 3 x 10 = 60 s of silence. libpq applies them to TCP only (a Unix socket ignores them).
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


# What libpq (or psycopg, resolving the host) says when a server cannot be reached for now,
# rather than refusing this URL, role or database: a connection at start that fails so is
# StoreNotReached ("try later", exit 4), any other failure StoreNotOpened ("fix the config",
# exit 2). Matched in the words, lower-cased: libpq gives no SQLSTATE for a failed connection.
# The server's words are English unless its lc_messages says otherwise (then: exit 2).
NOT_REACHED = (
    "connection refused", "timeout expired", "connection timed out", "no route to host",
    "network is unreachable", "connection reset by peer", "server closed the connection unexpectedly",
    "temporary failure in name resolution",  # the resolver did not answer (a name it denies is a typo)
    "the database system is starting up", "the database system is shutting down",
    "the database system is in recovery mode", "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "sorry, too many clients already", "remaining connection slots are reserved", "too many connections for",
)


# psycopg's words when libpq tried several addresses (a host name with an IPv6 and an IPv4
# address, as "localhost" has; a list of hosts): one line for each attempt after these.
_EVERY_ATTEMPT = "multiple connection attempts failed. all failures were:"
_ATTEMPT = re.compile(r"\n- host: ")


def not_reached(said: str) -> bool:
    """Whether a connection that failed with ``said`` met a server away or busy for now (see
    :data:`NOT_REACHED`); a Unix socket that is not there is a local server not running. When
    several addresses were tried, each must have failed so: one that answered "no such
    database" (or role, or a wrong password) is the config, whatever the others said."""
    said = said.lower()
    _, listed, attempts = said.partition(_EVERY_ATTEMPT)
    if listed:
        each = _ATTEMPT.split("\n" + attempts)[1:]
        return bool(each) and all(_one_not_reached(one) for one in each)
    return _one_not_reached(said)


def _one_not_reached(said: str) -> bool:
    return any(words in said for words in NOT_REACHED) or (
        "on socket" in said and "no such file or directory" in said)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def describe(url: str) -> str:
    """Where a PostgreSQL URL points, for messages: ``postgresql://user@host:port/db`` (never a
    password; a Unix socket folder given in the query is named after it)."""
    parts = urlsplit(url)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    user = parts.username or ""
    port = f":{parts.port}" if parts.port else ""
    where = f"postgresql://{user + '@' if user else ''}{parts.hostname or ''}{port}{parts.path}"
    if not parts.hostname and query.get("host", "").startswith("/"):
        where += f" (socket in {query['host']})"
    return where


def keepalives(url: str) -> dict[str, int]:
    """The :data:`KEEPALIVES` that ``url`` does not set itself (a clinic's own setting wins)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        given = conninfo_to_dict(url)
    except ProgrammingError:  # not a URL libpq reads: the connection says so, naming store.url
        given = {}
    return {key: value for key, value in KEEPALIVES.items() if key not in given}


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Local(threading.local):
    conn: Any = None
    depth: int = 0
    grouped: bool = False


class PostgresDatabase:
    """One PostgreSQL database (see the module docstring).

    ``read_only`` makes every transaction read-only (``default_transaction_read_only``) and
    skips migrations: the commands that only ask (check, records, audit verify) write nothing.
    """

    dialect = "postgresql"

    def __init__(self, url: str, *, password: str | None = None, read_only: bool = False, pool_min: int = 1,
                 pool_max: int = 10, application_name: str | None = None, connect_timeout: float = 10.0,
                 pool_wait: float = 60.0, lock_timeout: float = 30.0) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError:  # pragma: no cover - the dependency is declared
            raise ConfigError("store.url names PostgreSQL, but psycopg is not installed: "
                              "pip install 'emrcomm[postgres]'") from None
        self._psycopg = psycopg
        self._pool_timeout = PoolTimeout
        self.url = url
        self.where = describe(url)
        self.read_only = read_only
        self.in_memory = False
        self._local = _Local()
        self._before_commit: list[Callable[[], None]] = []
        self._closed = False
        self._away: float | None = None  # since when (monotonic) the server cannot be reached
        self._away_lock = threading.Lock()
        # pg_stat_activity names each connection's process: "emrcomm:<pid>" (docs/operations.md).
        application_name = application_name or f"emrcomm:{os.getpid()}"
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row, "application_name": application_name,
                                  "connect_timeout": max(1, int(connect_timeout))}
        if password is not None:
            kwargs["password"] = password
        kwargs.update(keepalives(url))
        # A statement gives up waiting for a lock another session holds (a forgotten `BEGIN; LOCK
        # TABLE`, a VACUUM FULL, an upgrade run beside the processes) after lock_timeout, and is
        # answered 'unavailable' like a server away: without it every worker and request waited,
        # silently, for as long as the lock was held. 0 sends nothing: PgBouncer refuses startup
        # options it does not track, and the role's own setting (ALTER ROLE … SET) applies.
        self.lock_timeout = lock_timeout
        options = [f"-c lock_timeout={max(1, round(lock_timeout * 1000))}"] if lock_timeout > 0 else []
        if read_only:
            options.append("-c default_transaction_read_only=on")
        if options:
            kwargs["options"] = " ".join(options)
        self._kwargs = kwargs
        try:  # fail now, with the address, rather than at the first statement
            psycopg.connect(url, **kwargs).close()
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, psycopg.errors.ConnectionTimeout) or not_reached(str(exc)):
                raise StoreNotReached(f"store.url: cannot connect to {self.where}: {first}; try again "
                                      "when the server is up") from None
            raise StoreNotOpened(f"store.url: cannot connect to {self.where}: {first}") from None
        # No check on each loan (a round trip: ~0.2 ms on every statement): a connection found
        # broken at its first statement is replaced once, below (_fresh).
        self.pool = ConnectionPool(url, kwargs=kwargs, min_size=pool_min, max_size=max(pool_min, pool_max),
                                   timeout=pool_wait, name="emrcomm", open=True, configure=_nul_free)

    # transactions ------------------------------------------------------------------------------
    def _fresh(self, first: Callable[[Any], Any]) -> tuple[contextlib.ExitStack, Any, Any]:
        """A connection from the pool and the result of ``first(conn)``, its first statement. A
        pooled connection the server or the network dropped while idle fails there: it is thrown
        away, and so is every other idle one that no longer answers (a server restart or a
        failover drops them all at once), and ``first`` runs once more on another (nothing of it
        had run). Returns the stack that gives the connection back. Raises StoreUnavailable when
        the server cannot be reached: at once when no connection answers, within AWAY_WAIT while
        it is known to be away."""
        for attempt in (1, 2):
            if self._closed:
                raise StoreClosed(f"{self.where}: the store is closed")
            stack = contextlib.ExitStack()
            try:
                wait = AWAY_WAIT if self._away else REPLACE_WAIT if attempt == 2 else None
                conn = stack.enter_context(self.pool.connection(timeout=wait))
            except self._pool_timeout as exc:
                if self._all_lent():
                    raise self._exhausted(wait) from None
                raise self._unavailable(exc, "no connection could be had") from None
            try:
                result = first(conn)
            except self._psycopg.OperationalError as exc:
                broken = conn.closed or conn.broken
                stack.close()
                if isinstance(exc, self._psycopg.errors.LockNotAvailable):
                    raise self._lock_wait() from None
                if not broken:
                    raise
                if attempt == 2:
                    raise self._unavailable(exc, "its connections were dropped") from None
                log.info("a pooled connection to %s was dropped; the idle ones are checked, another is used",
                         self.where)
                self.pool.check()  # one round trip per idle connection, once per drop
                continue
            self._back()
            return stack, conn, result
        raise AssertionError("unreachable")

    def _lock_wait(self) -> StoreUnavailable:
        """A statement waited ``lock_timeout`` for a lock another session holds: said at each,
        with where to look; the server answers, so it is not marked away."""
        said = (f"a statement waited {self.lock_timeout:g} s for a lock another session holds "
                f"(store.lock_timeout) and gave up; find the holder in pg_locks and pg_stat_activity "
                f"(an old xact_start, 'idle in transaction')")
        log.error("%s: %s", self.where, said)
        return StoreUnavailable(f"{self.where}: {said}; try again")

    def _all_lent(self) -> bool:
        """Whether every connection the pool may have is open and lent out: a wait for one that
        timed out then says the process asks for more than ``store.pool_size``, not that the
        server is away (its connections would have been dropped and given back)."""
        stats = self.pool.get_stats()
        return stats.get("pool_size", 0) >= self.pool.max_size and stats.get("pool_available", 0) == 0

    def _exhausted(self, wait: float | None) -> StoreUnavailable:
        """Every connection busy for the whole wait (a slow statement, a lock held elsewhere, more
        threads than connections): said at each such wait, the server not marked away."""
        size = self.pool.max_size
        waited = self.pool.timeout if wait is None else wait
        said = (f"all {size} connection(s) of the pool are in use (waited {waited:g} s for one); raise "
                f"store.pool_size (keeping the sum over every process under the server's max_connections) or "
                f"find what holds them: pg_stat_activity where application_name = "
                f"'{self._kwargs['application_name']}'")
        log.error("%s: %s", self.where, said)
        return StoreUnavailable(f"{self.where}: {said}; try again")

    def _unavailable(self, exc: BaseException, what: str) -> StoreUnavailable:
        """The server is away: said once in the log (not once per statement) until it is back."""
        with self._away_lock:
            first = self._away is None
            if first:
                self._away = time.monotonic()
        if first:
            log.error("the database server %s cannot be reached (%s: %s); answering 'unavailable' and "
                      "trying again until it is back", self.where, what, type(exc).__name__)
        return StoreUnavailable(f"the database server {self.where} cannot be reached ({what}); try again")

    def _back(self) -> None:
        if self._away is None:
            return
        with self._away_lock:
            since, self._away = self._away, None
        if since is not None:
            log.warning("the database server %s is reachable again after %.0f s", self.where, time.monotonic() - since)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; nested calls join the outer transaction (one commit). Inside
        :meth:`group_commit` an outermost transaction is a savepoint instead."""
        local = self._local
        outer = local.depth == 0
        if outer and not local.grouped:
            with self._begun():
                yield
            return
        if not outer:
            local.depth += 1
            try:
                yield
            finally:
                local.depth -= 1
            return
        # Inside group_commit: atomic alone, durable with the group. A connection lost meanwhile
        # is said as for a transaction of its own (StoreUnavailable), to the part that met it.
        conn = local.conn
        try:
            conn.execute("SAVEPOINT grp")
            local.depth += 1
            try:
                yield
            except BaseException:
                local.depth -= 1
                self._rollback_to("grp")
                raise
            local.depth -= 1
            conn.execute("RELEASE SAVEPOINT grp")
        except self._psycopg.OperationalError as exc:
            if isinstance(exc, self._psycopg.errors.LockNotAvailable):
                raise self._lock_wait() from None
            if not (conn.closed or conn.broken):
                raise
            raise self._unavailable(exc, "the connection was lost in a transaction") from exc

    @contextlib.contextmanager
    def _begun(self) -> Iterator[None]:
        """An outermost transaction on a connection of this thread's own."""
        local = self._local
        stack, conn, _ = self._fresh(lambda c: c.execute("BEGIN"))
        with stack:
            local.conn = conn
            local.depth = 1
            try:
                try:
                    yield
                    self._finish()
                except BaseException as exc:
                    self._abort(conn)
                    if isinstance(exc, self._psycopg.errors.LockNotAvailable):
                        raise self._lock_wait() from None
                    if isinstance(exc, self._psycopg.OperationalError) and (conn.closed or conn.broken):
                        raise self._unavailable(exc, "the connection was lost in a transaction") from exc
                    raise
                try:
                    conn.execute("COMMIT")
                except self._psycopg.OperationalError as exc:
                    if not (conn.closed or conn.broken):
                        raise
                    raise self._unavailable(exc, "the connection was lost at a commit, whose outcome is "
                                            "unknown") from exc
            finally:
                local.conn = None
                local.depth = 0

    def _abort(self, conn: Any) -> None:
        with contextlib.suppress(Exception):  # a broken connection: the pool throws it away
            conn.execute("ROLLBACK")

    def _rollback_to(self, name: str) -> None:
        conn = self._local.conn
        try:
            conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            conn.execute(f"RELEASE SAVEPOINT {name}")
        except self._psycopg.Error:
            pass  # the connection is gone: the outer transaction fails as a whole

    @contextlib.contextmanager
    def group_commit(self) -> Iterator[None]:
        """Many transactions, one commit: each ``transaction()`` inside stays atomic (a savepoint),
        and all become durable together when the block ends, or none when it raises."""
        local = self._local
        if local.depth or local.grouped:
            raise RuntimeError("group_commit() cannot run inside a transaction or another group")
        with self._begun():
            local.depth, local.grouped = 0, True
            try:
                yield
            finally:  # the commit's callbacks run as in a transaction (nested ones join it)
                local.depth, local.grouped = 1, False

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads on one connection in one REPEATABLE READ, READ ONLY transaction: each sees what
        was committed when the first began, whatever other processes commit meanwhile."""
        local = self._local
        if local.conn is not None:
            yield
            return
        stack, conn, _ = self._fresh(lambda c: c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        with stack:
            local.conn, local.depth = conn, 1  # a transaction() inside joins it
            try:
                yield
            finally:
                self._abort(conn)
                local.conn, local.depth = None, 0

    @contextlib.contextmanager
    def relaxed(self) -> Iterator[None]:
        """A transaction whose commit does not wait for the WAL to reach the disk
        (``synchronous_commit = off`` for it alone): for a write whose loss a later step repairs."""
        with self.transaction():
            if self._local.depth == 1 and not self._local.grouped:
                self._local.conn.execute("SET LOCAL synchronous_commit = off")
            yield

    def before_commit(self, callback: Callable[[], None]) -> None:
        self._before_commit.append(callback)

    def _finish(self) -> None:
        for callback in self._before_commit:
            callback()

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the current transaction that can fail alone (its writes undone)."""
        with self.transaction():
            name = f"sp{self._local.depth}"
            self._local.conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                self._rollback_to(name)
                raise
            else:
                self._local.conn.execute(f"RELEASE SAVEPOINT {name}")

    def in_transaction(self) -> bool:
        return self._local.conn is not None

    # statements --------------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.transaction():
            cur = self._local.conn.execute(translate(sql), tuple(params) or None)
            return int(cur.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.transaction(), self._local.conn.cursor() as cur:
            cur.executemany(translate(sql), [tuple(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self._local.conn is not None:
            cur = self._local.conn.execute(translate(sql), tuple(params) or None)
            return list(cur.fetchall()) if cur.description is not None else []
        # Outside a transaction: a read on a pooled connection (a write is always in one).
        stack, _, rows = self._fresh(lambda c: _rows(c.execute(translate(sql), tuple(params) or None)))
        stack.close()
        return rows

    def query_each(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """Sent together in psycopg's pipeline mode: the server still runs them one after
        another, each with a snapshot of its own (a statement after a lock sees what the lock's
        last holder committed), and the client waits once, not once a statement."""
        with self.transaction():
            conn = self._local.conn
            with conn.pipeline():
                cursors = [conn.execute(translate(sql), tuple(params) or None) for sql, params in statements]
            return [_rows(cur) for cur in cursors]

    def probe(self) -> Iterator[str]:
        """``emrcomm doctor``'s look at the server beyond "connected": its version, and whether the
        role may do what the processes do to every table and sequence (a table whose owner had
        no ``ALTER DEFAULT PRIVILEGES`` for the role is found here, not at the first write)."""
        from emrcomm.errors import ProbeFailed

        found = self.query("SELECT current_user AS role, current_setting('server_version_num')::int AS version")[0]
        role, version = found["role"], found["version"]
        yield f"role {role}"
        if version < 150000:
            raise ProbeFailed(f"PostgreSQL {version // 10000} is older than 15, which emrcomm needs")
        yield f"PostgreSQL {version // 10000}"
        missing = self.query(
            "SELECT c.relname AS name, string_agg(p.privilege, ', ' ORDER BY p.n) AS privileges "
            "FROM pg_class c CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) WITH ORDINALITY "
            "AS p(privilege, n) WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
            "AND NOT (c.relname = ANY(?) AND p.privilege IN ('UPDATE', 'DELETE')) "
            "AND NOT has_table_privilege(c.oid, p.privilege) GROUP BY c.relname ORDER BY c.relname",
            (list(APPEND_ONLY),))
        sequences = [r["name"] for r in self.query(
            "SELECT relname AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'S' "
            "AND NOT CASE WHEN relkind = 'S' THEN has_sequence_privilege(oid, 'USAGE') ELSE true END ORDER BY relname")]
        if missing or sequences:
            grants = [f"GRANT {r['privileges']} ON {r['name']} TO {role}" for r in missing]
            grants += [f"GRANT USAGE ON SEQUENCE {', '.join(sequences)} TO {role}"] if sequences else []
            names = [r["name"] for r in missing] + sequences
            raise ProbeFailed(f"the role {role} lacks privileges the processes need on {len(names)} table(s) or "
                              f"sequence(s) ({', '.join(names)}): as the owner role, {'; '.join(grants)} "
                              "(and ALTER DEFAULT PRIVILEGES for the tables to come: docs/operations.md)")
        yield "the role may read and write every table"

    def notify(self, channel: str = NOTIFY_CHANNEL) -> None:
        """Tell the listeners on ``channel`` when the current transaction commits."""
        self.query(f"SELECT pg_notify('{channel}', '')")

    def listen(self, channel: str = NOTIFY_CHANNEL) -> Listener:
        """A connection of its own that waits for ``channel``'s notifications."""
        return Listener(self._psycopg, self.url, self._kwargs, channel)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.pool.close()


def _nul_free(conn: Any) -> None:
    """PostgreSQL text cannot hold NUL (SQLite's can): a NUL in a value, written or looked up,
    becomes U+FFFD, the replacement character, rather than failing the statement. A hostile id
    with a NUL is then simply not found, and text kept with one keeps the rest
    (docs/operations.md)."""
    from psycopg.types.string import StrDumperUnknown

    class NulFree(StrDumperUnknown):
        def dump(self, obj: str) -> Any:
            return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)

    conn.adapters.register_dumper(str, NulFree)


def _rows(cur: Any) -> list[Row]:
    return list(cur.fetchall()) if cur.description is not None else []


class Listener:
    """LISTEN on a connection of its own: :meth:`wait` returns when a notification came (True),
    or after ``timeout`` seconds (False). A broken connection is opened again at the next wait."""

    def __init__(self, psycopg: Any, url: str, kwargs: dict[str, Any], channel: str) -> None:
        self._psycopg = psycopg
        self._url = url
        self._kwargs = kwargs
        self._channel = channel
        self._conn: Any = None

    def open(self) -> None:
        """LISTEN now, so that nothing committed from here on is missed."""
        try:
            self._connect()
        except self._psycopg.Error as exc:
            log.warning("outbox listener: %s; polling until it connects", type(exc).__name__)

    def _connect(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._psycopg.connect(self._url, **self._kwargs)
            self._conn.execute(f"LISTEN {self._channel}")
        return self._conn

    def wait(self, timeout: float) -> bool:
        try:
            conn = self._connect()
            # (A burst of rows wakes it once per wait: the claim after it takes them all.)
            return any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
        except self._psycopg.Error as exc:
            log.warning("outbox listener: %s; polling until it reconnects", type(exc).__name__)
            self.close()
            time.sleep(min(timeout, 1.0))
            return False

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

