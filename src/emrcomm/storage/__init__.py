"""Storage with seams: a :class:`~emrcomm.storage.database.Database` (connections,
transactions, versioned migrations) and one repository per concern, each a protocol a second
backend can implement. Nothing outside storage (and a plugin's own tables) writes SQL.

``Storage`` is what the host opens: the database and every repository over it. A plugin with
tables of its own uses this module only: ``Migration`` (its versioned steps), ``statements`` and
``add_columns`` (dialect-aware DDL), ``Database`` (what ``context.db`` is) and ``iso`` (how
times are stored).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import define, field

from emrcomm.errors import ConfigError
from emrcomm.storage.audit import AuditStore, SqlAuditStore
from emrcomm.storage.consent import ConsentEvent, ConsentLedger, SqlConsentLedger
from emrcomm.storage.database import (
    CORE,
    Database,
    Migration,
    StoreClosed,
    StoreNotOpened,
    StoreNotReached,
    StoreUnavailable,
    pending,
    schema_version,
    upgrade,
)
from emrcomm.storage.inbox import Inbox, SqlInbox
from emrcomm.storage.meta import Meta, SqlMeta
from emrcomm.storage.outbox import Outbox, SqlOutbox
from emrcomm.storage.rates import Rates, SqlRates
from emrcomm.storage.records import Records, RecordUnreadable, SqlRecords, Unreadable
from emrcomm.storage.schema import MIGRATIONS, add_columns, statements
from emrcomm.storage.sqlite import SQLiteDatabase
from emrcomm.storage.times import iso

if TYPE_CHECKING:
    from emrcomm.config import Config

__all__ = [
    "CORE",
    "AuditStore",
    "ConsentEvent",
    "ConsentLedger",
    "Database",
    "Inbox",
    "Meta",
    "Migration",
    "Outbox",
    "Rates",
    "RecordUnreadable",
    "Records",
    "SQLiteDatabase",
    "Storage",
    "StoreClosed",
    "StoreNotOpened",
    "StoreNotReached",
    "StoreUnavailable",
    "Unreadable",
    "add_columns",
    "iso",
    "open_sqlite",
    "open_storage",
    "statements",
]


@define
class Storage:
    """The database and its repositories. ``transaction()`` groups writes across repositories."""

    db: Database
    records: Records = field()
    outbox: Outbox = field()
    consent: ConsentLedger = field()
    audit: AuditStore = field()
    inbox: Inbox = field()
    meta: Meta = field()
    rates: Rates = field()

    @classmethod
    def over(cls, db: Database) -> Storage:
        return cls(db=db, records=SqlRecords(db), outbox=SqlOutbox(db), consent=SqlConsentLedger(db),
                   audit=SqlAuditStore(db), inbox=SqlInbox(db), meta=SqlMeta(db), rates=SqlRates(db))

    def before_commit(self, callback: Callable[[], None]) -> None:
        self.db.before_commit(callback)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self.db.transaction()

    def savepoint(self) -> contextlib.AbstractContextManager[None]:
        return self.db.savepoint()

    def group_commit(self) -> contextlib.AbstractContextManager[None]:
        return self.db.group_commit()

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        return self.db.snapshot()

    def migrate(self, extra: Sequence[Migration] = (), *, upgrade_it: bool | None = None) -> None:
        """Bring the core's tables and ``extra`` (the plugins' own) up to date.

        SQLite upgrades itself in place (``upgrade_it`` None: the embedded default has one
        owner). PostgreSQL is upgraded only when asked (``emrcomm db upgrade``, usually by the
        database's owner role): otherwise a schema older than the code is refused, naming the
        steps, so that many processes never race to change a shared schema. A schema newer than
        the code is refused on both.
        """
        if self.db.read_only and not getattr(self.db, "in_memory", False):
            return  # asking writes nothing: an old schema is read as it is
        steps = [*MIGRATIONS, *extra]
        if upgrade_it is None:
            upgrade_it = self.db.dialect == "sqlite"
        if not upgrade_it:
            todo = pending(self.db, steps)
            if todo:
                names = ", ".join(f"{'emrcomm' if m.owner == CORE else m.owner} {m.version}" for m in todo)
                raise ConfigError(
                    f"{self.db.where}: the database's schema is older than this emrcomm (steps not applied: "
                    f"{names}): run `emrcomm db upgrade` (as the role that owns the tables), then start again")
            return
        upgrade(self.db, steps)

    def close(self) -> None:
        self.db.close()


def open_sqlite(path: str | Path, *, synchronous: str = "full", read_only: bool = False,
                migrations: Sequence[Migration] = ()) -> Storage:
    """The embedded store at ``path``, its schema brought up to date (core and ``migrations``)."""
    storage = Storage.over(SQLiteDatabase(path, synchronous=synchronous, read_only=read_only))
    try:
        storage.migrate(migrations)
    except BaseException:
        storage.close()
        raise
    return storage


def open_postgres(url: str, *, password: str | None = None, read_only: bool = False, pool_size: int = 10,
                  migrations: Sequence[Migration] = (), upgrade_it: bool = False,
                  lock_timeout: float = 30.0) -> Storage:
    """A PostgreSQL store; its core schema must be current (or ``upgrade_it``)."""
    from emrcomm.storage.postgres import PostgresDatabase

    storage = Storage.over(PostgresDatabase(url, password=password, read_only=read_only, pool_max=pool_size,
                                            lock_timeout=lock_timeout))
    try:
        storage.migrate(migrations, upgrade_it=upgrade_it)
    except BaseException:
        storage.close()
        raise
    return storage


def open_storage(config: Config, *, read_only: bool = False, upgrade_it: bool | None = None) -> Storage:
    """The store ``config`` names: ``[store] url`` (PostgreSQL), else ``[store] path`` (SQLite)."""
    if config.store_url:
        try:
            password = config.store_password()
        except ConfigError as exc:  # its variable not set, its file unreadable: the store cannot be opened
            raise StoreNotOpened(str(exc)) from None
        return open_postgres(config.store_url, password=password, read_only=read_only,
                             pool_size=config.store_pool_size, upgrade_it=bool(upgrade_it),
                             lock_timeout=config.store_lock_timeout)
    storage = Storage.over(SQLiteDatabase(config.store_path, synchronous=config.store_synchronous,
                                          read_only=read_only))
    try:
        storage.migrate(upgrade_it=upgrade_it)
    except BaseException:
        storage.close()
        raise
    return storage


__all__ += ["open_postgres", "pending", "schema_version"]
