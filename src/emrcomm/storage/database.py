"""What every storage backend gives: connections, transactions and versioned migrations.

Repositories (records, outbox, consent ledger, audit, inbox, and the tables a plugin owns) are
written against :class:`Database` with portable SQL (``?`` placeholders), so the same code runs
on SQLite and PostgreSQL; the few statements that differ ask :attr:`Database.dialect`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from attrs import frozen

from emrcomm.errors import ConfigError

Row = Mapping[str, Any]
CORE = "emrcomm"  # the owner of the core's migrations; a plugin's own tables are owned by its name


class StoreClosed(Exception):
    """A statement after the store was closed (a background thread outliving its host)."""


class StoreNotOpened(ConfigError):
    """The store could not be opened at start for a reason waiting does not mend (the server
    refuses the login, or has no such database; the URL is malformed or names a host that does
    not exist; its password's variable is not set or its file cannot be read): a config error to
    every command (exit 2), a failed check to ``emrcomm doctor``. A server that cannot be reached
    for now is :class:`StoreNotReached` instead."""


class StoreUnavailable(Exception):
    """The database server cannot be reached now (it is restarting, failing over, or the network
    is cut). The transaction was not done, unless it was its commit that was cut off: then
    whether it was is unknown, and only a look after the server is back tells. Callers answer
    "try again" (the API's 503) or try again themselves; never "failed for good"."""


class StoreNotReached(StoreUnavailable):
    """The store could not be opened at start because its server cannot be reached for now: the
    connection refused or timed out, the server starting up or shutting down, all its connection
    slots taken, its host name not resolved for want of an answer. "Try again later" to every
    command (exit 4), not "fix the config"; a failed check to ``emrcomm doctor``."""


class Database(Protocol):
    """One database. Writes happen inside :meth:`transaction`; nested transactions join the
    outer one (one commit); :meth:`savepoint` is a part that can fail alone."""

    dialect: str  # "sqlite" or "postgresql"
    read_only: bool
    where: str  # a name for messages: the file, or the server and database (never a password)

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def savepoint(self) -> contextlib.AbstractContextManager[None]: ...

    def group_commit(self) -> contextlib.AbstractContextManager[None]: ...

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """Reads that all see the database as it was at the first of them, whatever other
        connections commit meanwhile (``audit verify`` beside a running host). For reading only;
        inside a transaction, that transaction's own view."""
        ...

    def before_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` inside every transaction just before it commits (once per group);
        if it raises, the transaction rolls back instead."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write (inside a transaction) and return how many rows it changed."""
        ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of a read (or of a write with RETURNING, inside a transaction), as mappings."""
        ...

    def query_each(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """The rows of each statement, run one after another in the open transaction (each sees
        what the ones before it did and what committed before it started). PostgreSQL sends
        them together: one round trip instead of one each."""
        ...

    def close(self) -> None: ...


@frozen
class Migration:
    """One step of a schema: ``owner`` (``emrcomm``, or a plugin's name for its own tables),
    its ``version`` (1, 2, … in order), and what it runs: SQL statements per dialect, or a
    function given the database (inside the migration's transaction)."""

    owner: str
    version: int
    description: str
    statements: Mapping[str, Sequence[str]] | None = None
    run: Callable[[Database], None] | None = None

    def apply(self, db: Database) -> None:
        if self.statements is not None:
            for sql in self.statements.get(db.dialect, self.statements.get("*", ())):
                db.execute(sql)
        if self.run is not None:
            self.run(db)


def version_key(owner: str) -> str:
    return "schema_version" if owner == CORE else f"schema_version:{owner}"


def schema_version(db: Database, owner: str = CORE) -> int:
    """The version of ``owner``'s tables in ``db`` (0: none yet)."""
    if not _has_meta(db):
        return 0
    rows = db.query("SELECT value FROM meta WHERE key = ?", (version_key(owner),))
    return int(rows[0]["value"]) if rows else 0


def _has_meta(db: Database) -> bool:
    if db.dialect == "sqlite":
        return bool(db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"))
    return bool(db.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'meta' "
                         "AND table_schema = current_schema()"))


def pending(db: Database, migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations ``db`` still needs, in order. Raises ConfigError when the database was
    made by a newer emrcomm (a version this code does not know)."""
    out: list[Migration] = []
    for owner in dict.fromkeys(m.owner for m in migrations):
        steps = sorted((m for m in migrations if m.owner == owner), key=lambda m: m.version)
        have, latest = schema_version(db, owner), steps[-1].version
        if have > latest:
            what = "emrcomm" if owner == CORE else f"plugin {owner!r}"
            raise ConfigError(
                f"{db.where}: the database's {what} tables are at schema version {have}, newer than this "
                f"installation knows ({latest}): it was upgraded by a newer emrcomm; upgrade this one too")
        out += [m for m in steps if m.version > have]
    return out


# SQLSTATE insufficient_privilege: the server refused this role what the statement asked.
_NOT_PERMITTED = "42501"


def server_refuses(exc: BaseException) -> bool:
    """A statement the database server refuses (SQLSTATE class 42: a privilege the role lacks, a
    table or column not there): the config or the grants, not the moment; trying again cannot help."""
    return str(getattr(exc, "sqlstate", None) or "").startswith("42")


@contextlib.contextmanager
def schema_change(where: str) -> Iterator[None]:
    """A change of the schema or a whole copy into ``where``: the database refusing this role
    what it asks (the runtime role running ``db upgrade`` or ``db copy``) is a ConfigError that
    says which role to use; any other error goes on as it is."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != _NOT_PERMITTED:
            raise
        said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{where}: this role cannot change the schema ({said}); nothing was changed: run "
                          "`emrcomm db upgrade` and `emrcomm db copy` as the role that owns the tables, with a "
                          "config whose store.url names it (docs/operations.md, Roles and least privilege)") from None


def upgrade(db: Database, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply what ``db`` still needs, each owner's steps in order, all in one transaction (one
    commit: a new database is made in one, and an upgrade that fails half-way leaves the database
    as it was); return them."""
    steps = pending(db, migrations)
    if not steps:
        return []
    done = []
    with schema_change(db.where), db.transaction():
        for step in steps:
            if schema_version(db, step.owner) >= step.version:  # another process got there first
                continue
            step.apply(db)
            db.execute("DELETE FROM meta WHERE key = ?", (version_key(step.owner),))
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (version_key(step.owner), str(step.version)))
            done.append(step)
    return done
