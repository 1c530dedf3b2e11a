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

from attrs import define, field

from emrcomm.storage.audit import AuditStore, SqlAuditStore
from emrcomm.storage.consent import ConsentEvent, ConsentLedger, SqlConsentLedger
from emrcomm.storage.database import CORE, Database, Migration, pending, schema_version, upgrade
from emrcomm.storage.inbox import Inbox, SqlInbox
from emrcomm.storage.meta import Meta, SqlMeta
from emrcomm.storage.outbox import Outbox, SqlOutbox
from emrcomm.storage.records import Records, SqlRecords
from emrcomm.storage.schema import MIGRATIONS, add_columns, statements
from emrcomm.storage.sqlite import SQLiteDatabase
from emrcomm.storage.times import iso

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
    "Records",
    "SQLiteDatabase",
    "Storage",
    "add_columns",
    "iso",
    "open_sqlite",
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

    @classmethod
    def over(cls, db: Database) -> Storage:
        return cls(db=db, records=SqlRecords(db), outbox=SqlOutbox(db), consent=SqlConsentLedger(db),
                   audit=SqlAuditStore(db), inbox=SqlInbox(db), meta=SqlMeta(db))

    def before_commit(self, callback: Callable[[], None]) -> None:
        self.db.before_commit(callback)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self.db.transaction()

    def savepoint(self) -> contextlib.AbstractContextManager[None]:
        return self.db.savepoint()

    def group_commit(self) -> contextlib.AbstractContextManager[None]:
        return self.db.group_commit()

    def migrate(self, extra: Sequence[Migration] = ()) -> None:
        """Bring the core's tables and ``extra`` (the plugins' own) up to date."""
        if self.db.read_only and not getattr(self.db, "in_memory", False):
            return  # asking writes nothing: an old schema is read as it is
        upgrade(self.db, [*MIGRATIONS, *extra])

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


__all__ += ["pending", "schema_version"]
