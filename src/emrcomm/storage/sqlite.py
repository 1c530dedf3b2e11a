"""The embedded database: one SQLite file (WAL) in the clinic's data folder, one connection
guarded by a lock, so readers never block the writer and several processes share the file.

Durability is deliberate: ``synchronous=FULL`` by default (every commit reaches the disk before
it returns). ``synchronous="normal"`` (``[store] synchronous``) skips the fsync per commit: in
WAL a commit then survives a crash of the process but not a power loss or an OS crash
(docs/performance.md). :meth:`SQLiteDatabase.relaxed` does the same for one transaction whose
loss a later step repairs (an inline send's "accepted", which a worker would otherwise redo).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from emrcomm.errors import ConfigError
from emrcomm.storage.database import Row

log = logging.getLogger("emrcomm.storage")

# [store] synchronous -> the SQLite pragma (https://sqlite.org/pragma.html#pragma_synchronous).
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}
BUSY_TIMEOUT = 30.0  # seconds a write waits for another connection's write lock before it fails


class SQLiteDatabase:
    """An SQLite file opened for the host (see the module docstring).

    ``read_only`` opens an existing database for reading only, and an absent one as an empty
    database in memory: nothing is created or written on disk (``emrcomm check``).
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, synchronous: str = "full", read_only: bool = False) -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
        self.path = Path(path)
        self.where = str(self.path)
        self.read_only = read_only
        self.synchronous = SYNCHRONOUS[synchronous]
        self._lock = threading.RLock()
        self._depth = 0
        self._grouped = False  # inside group_commit(): transactions are savepoints
        # The connection's synchronous level as last set, and whether the transaction about to
        # begin is a relaxed() one: the level is set as a transaction begins, only when it differs
        # (an inline send's two relaxed commits in a row share one switch, and the next durable
        # transaction switches back before its BEGIN).
        self._applied = self.synchronous
        self._relaxing = False
        # Savepoints entered whose SAVEPOINT has not been run yet: it runs before the first
        # statement inside it (a filer that writes nothing needs none to undo).
        self._pending: list[str] = []
        self._before_commit: list[Callable[[], None]] = []
        if self.path.is_dir():
            raise ConfigError(f"store.path: {self.path} is a folder, not a database file; name the file, "
                              f"e.g. {self.path / 'emrcomm.sqlite'}")
        self.in_memory = read_only and not self.path.exists()
        if read_only and not self.in_memory:
            # A database another process has open (its -wal is there) is read through its WAL
            # like any reader does. One that is closed would get a -wal and -shm from a reader:
            # it is read as immutable instead, so that asking leaves no file behind.
            closed = not self.path.with_name(self.path.name + "-wal").exists()
            uri = f"{self.path.resolve().as_uri()}?{'immutable=1' if closed else 'mode=ro'}"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None,
                                       timeout=BUSY_TIMEOUT)
        elif self.in_memory:
            self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Chart notes carry phone numbers and addresses: the file is the owner's alone.
                if not self.path.exists():
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                # mkdir(exist_ok=True) says "File exists" when a file stands where a folder must be.
                reason = (f"{exc.filename} is a file, not a folder" if isinstance(exc, FileExistsError)
                          else f"{exc.strerror} ({exc.filename})" if exc.filename else str(exc.strerror or exc))
                raise ConfigError(f"store.path: {self.path}: cannot create the database there: {reason}; "
                                  "choose a [store] path in a folder this user may create and write") from None
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                       timeout=BUSY_TIMEOUT)
        self._db.row_factory = sqlite3.Row
        if read_only and not self.in_memory:
            return
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={self.synchronous}")
        self._db.execute("PRAGMA foreign_keys=ON")

    # transactions ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; nested calls join the outer transaction (one commit, one fsync).

        Inside :meth:`group_commit` an outermost transaction is a savepoint instead: just as
        atomic (undone whole when it raises), but durable only when the group commits.
        """
        with self._lock:
            outer = self._depth == 0
            begin, commit, rollback = (
                ("SAVEPOINT grp", "RELEASE grp", "ROLLBACK TO grp; RELEASE grp") if self._grouped
                else ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
            )
            if outer:
                if self._grouped:
                    self._still_open()  # else a savepoint begun now would commit on its own
                    self._db.execute(begin)
                else:
                    self._begin()
            self._depth += 1
            try:
                yield
                if outer and not self._grouped:
                    self._still_open()
                    self._finish()
            except BaseException:
                self._depth -= 1
                if outer and self._db.in_transaction:  # (not if SQLite has rolled back already)
                    for statement in rollback.split("; "):
                        self._db.execute(statement)
                raise
            else:
                self._depth -= 1
                if outer:
                    self._db.execute(commit)

    @contextlib.contextmanager
    def group_commit(self) -> Iterator[None]:
        """Many transactions, one commit (one fsync): each ``transaction()`` inside stays atomic,
        and all become durable together when the block ends, or none when it raises.

        The caller must report nothing done before the block has ended. The lock is held
        throughout, so keep groups short (a few hundred sends).
        """
        with self._lock:
            if self._depth or self._grouped:
                raise RuntimeError("group_commit() cannot run inside a transaction or another group")
            self._begin()
            self._grouped = True
            try:
                yield
                self._still_open()
                self._finish()
            except BaseException:
                self._grouped = False
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            else:
                self._grouped = False
                self._db.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that see the file as it was at the first of them: one read transaction (in WAL
        mode other connections go on writing; the WAL is not checkpointed past it until it ends)."""
        with self._lock:
            if self._depth or self._grouped:
                yield
                return
            self._db.execute("BEGIN")
            self._depth = 1  # a transaction() inside joins it (and cannot write past its snapshot)
            try:
                yield
            finally:
                self._depth = 0
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")

    @contextlib.contextmanager
    def relaxed(self) -> Iterator[None]:
        """A transaction committed without waiting for the disk (``synchronous=NORMAL`` for it
        alone): it survives the process dying, not a power loss. For a write whose loss a later
        step repairs; everything else stays as durable as the store is configured."""
        with self._lock:
            if self._depth or self._grouped or self.synchronous == "NORMAL":
                with self.transaction():
                    yield
                return
            self._relaxing = True  # _begin sets NORMAL; the next durable transaction sets it back
            try:
                with self.transaction():
                    yield
            finally:
                self._relaxing = False

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting for another process's write lock in steps of a fraction of a
        millisecond, for up to BUSY_TIMEOUT. (SQLite's own wait sleeps 1, 2, 5, 10, 15, 20, 25 ms
        in turn: a lock held 25 ms by a group commit in another process cost ~33 ms.)

        The connection's synchronous level is set first, when it is not the one this transaction
        commits under (see relaxed()): no commit is made at any other level than its own."""
        level = "NORMAL" if self._relaxing else self.synchronous
        if self._applied != level:
            self._db.execute(f"PRAGMA synchronous={level}")
            self._applied = level
        self._db.execute("PRAGMA busy_timeout = 0")
        try:
            delay, deadline = 0.0001, time.monotonic() + BUSY_TIMEOUT
            while True:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; else the message
                    busy = code & 0xFF == sqlite3.SQLITE_BUSY if code is not None else "locked" in str(exc)
                    if not busy or time.monotonic() > deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 0.001)
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")

    def _still_open(self) -> None:
        """Raise if SQLite has rolled the open transaction back by itself (it does on some
        errors: disk full, I/O): what follows would run outside any transaction."""
        if not self._db.in_transaction:
            raise sqlite3.OperationalError("the transaction was rolled back by SQLite (disk full or I/O "
                                           "error): nothing of it was written")

    def before_commit(self, callback: Callable[[], None]) -> None:
        self._before_commit.append(callback)

    def _finish(self) -> None:
        for callback in self._before_commit:
            callback()

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the current transaction that can fail alone: its writes are undone, the
        rest of the transaction stands (e.g. "accepted" survives a filer that fails).

        The SAVEPOINT itself runs before the first statement inside it: one that runs none
        (a filer with nothing to file) has nothing to undo, and costs no statement."""
        with self.transaction():
            name = f"sp{self._depth}"
            self._pending.append(name)
            try:
                yield
            except BaseException:
                if self._pending and self._pending[-1] == name:
                    self._pending.pop()  # never begun: nothing of it to undo
                elif self._db.in_transaction:
                    self._db.execute(f"ROLLBACK TO {name}")
                    self._db.execute(f"RELEASE {name}")
                raise
            else:
                if self._pending and self._pending[-1] == name:
                    self._pending.pop()
                else:
                    self._db.execute(f"RELEASE {name}")

    def _open_savepoints(self) -> None:
        """Begin the savepoints entered but not begun yet, outermost first (before a statement).
        One that fails to begin stays pending: its block then has nothing to roll back to."""
        while self._pending:
            self._db.execute(f"SAVEPOINT {self._pending[0]}")
            self._pending.pop(0)

    # statements --------------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            # Inside a transaction (ours: the lock is held for a transaction's whole length) a
            # statement joins it as it is; transaction() would only count the depth up and down.
            if self._depth:
                if self._pending:
                    self._open_savepoints()
                return self._db.execute(sql, params).rowcount
            with self.transaction():
                return self._db.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            if self._depth:
                if self._pending:
                    self._open_savepoints()
                self._db.executemany(sql, rows)
                return
            with self.transaction():
                self._db.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            if self._pending:
                self._open_savepoints()
            return [dict(r) for r in self._db.execute(sql, params).fetchall()]

    def query_each(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        with self.transaction():
            return [self.query(sql, params) for sql, params in statements]

    def close(self) -> None:
        with self._lock:
            self._db.close()
