"""What an operator does to a store as a whole: see its schema's versions and the steps not
applied yet (``emrcomm db status``), and copy every table of one store into another, empty one,
then check the counts and the audit chain (``emrcomm db copy``: SQLite to PostgreSQL, say).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from attrs import frozen

from emrcomm.errors import ConfigError
from emrcomm.storage.database import Database, Migration, pending, schema_change, schema_version

if TYPE_CHECKING:
    from emrcomm.host import Host

# Tables copied as they are, in this order; any other table both stores have (a plugin's) follows.
# Not copied: the schema versions (the target has its own, checked equal), token buckets
# (they start full) and the audit chain's staging table (always empty between transactions).
FIRST = ("meta", "requests", "records", "events", "outbox", "consent_events", "inbox", "audit_log", "audit_head")
SKIPPED = frozenset({"rate_buckets", "audit_staged", "sqlite_sequence"})
BATCH = 1000


@frozen
class Step:
    owner: str
    version: int
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {"owner": self.owner, "version": self.version, "description": self.description}


@frozen
class Status:
    where: str
    dialect: str
    versions: dict[str, tuple[int, int]]  # owner -> (in the database, this code's latest)
    pending: tuple[Step, ...]
    created: bool = True  # False: an SQLite file not there yet (made, at this code's schema, at the first send)

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "dialect": self.dialect, "created": self.created,
                "versions": {o: {"database": h if self.created else None, "code": c}
                             for o, (h, c) in self.versions.items()},
                "pending": [s.to_dict() for s in self.pending]}

    def text(self) -> str:
        if not self.created:
            return (f"{self.where} ({self.dialect}): not created yet: created at the first send, at this "
                    "emrcomm's schema (" + ", ".join(f"{o} {c}" for o, (_, c) in self.versions.items()) + ")")
        lines = [f"{self.where} ({self.dialect})"]
        for owner, (have, latest) in self.versions.items():
            state = "up to date" if have == latest else "NEWER than this emrcomm" if have > latest else "behind"
            lines.append(f"  {owner:<14} schema {have} of {latest}: {state}")
        if self.pending:
            lines.append("not applied yet (run `emrcomm db upgrade`):")
            lines += [f"  {s.owner} {s.version}: {s.description}" for s in self.pending]
        return "\n".join(lines)


def status(host: Host) -> Status:
    """The schema of ``host``'s store against the migrations of its code and plugins."""
    db = host.storage.db
    steps = host.migrations()
    owners = list(dict.fromkeys(m.owner for m in steps))
    versions = {o: (schema_version(db, o), max(m.version for m in steps if m.owner == o)) for o in owners}
    newer = [o for o, (have, latest) in versions.items() if have > latest]
    todo = () if newer else tuple(Step(m.owner, m.version, m.description) for m in pending(db, steps))
    # A read-only host opens an absent SQLite file as an empty database in memory, at the latest schema.
    created = not getattr(db, "in_memory", False)
    return Status(where=db.where, dialect=db.dialect, versions=versions, pending=todo, created=created)


# ---------------------------------------------------------------------------------------- copy


@frozen
class CopyReport:
    source: str
    target: str
    counts: dict[str, tuple[int, int]]  # table -> (source rows, target rows)
    audit_entries: int
    audit_ok: bool
    audit_problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.audit_ok and all(a == b for a, b in self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "source": self.source, "target": self.target,
                "tables": {t: {"source": a, "target": b} for t, (a, b) in self.counts.items()},
                "audit": {"entries": self.audit_entries, "ok": self.audit_ok, "problems": list(self.audit_problems)}}

    def text(self) -> str:
        width = max((len(t) for t in self.counts), default=5)
        lines = [f"copied {self.source} -> {self.target}"]
        lines += [f"  {t:<{width}}  {a:>8} -> {b:>8}  {'ok' if a == b else 'DIFFERENT'}"
                  for t, (a, b) in self.counts.items()]
        lines.append(f"  audit chain: {self.audit_entries} entries, "
                     + ("every signature, the chain and the head check out" if self.audit_ok
                        else "PROBLEMS: " + "; ".join(self.audit_problems)))
        return "\n".join(lines)


def tables(db: Database) -> list[str]:
    if db.dialect == "sqlite":
        rows = db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    else:
        rows = db.query("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = "
                        "current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name")
    return [r["name"] for r in rows]


def columns(db: Database, table: str) -> list[str]:
    if db.dialect == "sqlite":
        return [r["name"] for r in db.query(f"PRAGMA table_info({table})")]
    return [r["column_name"] for r in db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = current_schema() "
        "ORDER BY ordinal_position", (table,))]


def count(db: Database, table: str) -> int:
    """Rows of ``table`` (of meta: the values copied, not each store's own schema versions)."""
    where = " WHERE key NOT LIKE 'schema_version%'" if table == "meta" else ""
    return int(db.query(f"SELECT COUNT(*) AS n FROM {table}{where}")[0]["n"])


def copy_store(source_config: str, target_config: str | None) -> CopyReport:
    """Copy every table of ``source_config``'s store into ``target_config``'s, which must be
    empty (its schema is brought up to date first); then compare the counts and verify the
    audit chain in the target with the source's key. The target's audit key file is the
    source's (copied there when it has none; a different key is refused)."""
    from emrcomm import audit
    from emrcomm.config import load_config
    from emrcomm.host import Host

    source_cfg, target_cfg = load_config(source_config), load_config(target_config)
    if source_cfg.store_where == target_cfg.store_where:
        raise ConfigError(f"db copy: the source and the target are the same store ({source_cfg.store_where})")
    if not source_cfg.store_url and not source_cfg.store_path.exists():
        # Read-only, a missing file opens as an empty store: the copy would make an empty target.
        raise ConfigError(f"db copy: the source store {source_cfg.store_where} does not exist; nothing was copied "
                          f"or created: check [store] path in {source_config}")
    source_key, target_key = audit.key_path(source_cfg), audit.key_path(target_cfg)
    if source_key.exists() and source_key.resolve() != target_key.resolve():
        if not target_key.exists():
            target_key.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_key, target_key)
            target_key.chmod(0o600)
        elif target_key.read_bytes() != source_key.read_bytes():
            raise ConfigError(f"db copy: the target's audit key file {target_key} holds another key than the "
                              f"source's ({source_key}): point [audit] key_file at the source's key, or remove it")
    with Host(source_cfg, read_only=True) as source:
        steps = source.migrations()
        behind = pending(source.storage.db, steps)
        if behind:
            raise ConfigError(f"db copy: the source store {source_cfg.store_where} is behind this emrcomm "
                              f"({', '.join(f'{m.owner} {m.version}' for m in behind)}): run `emrcomm db upgrade "
                              f"--config {source_config}` first")
        Host(target_cfg, upgrade=True).close()  # the target's schema, at this code's versions
        # One transaction: a copy refused (or failed) leaves nothing of it behind.
        with Host(target_cfg) as target, schema_change(target.storage.db.where):
            counts = _copy(source.storage.db, target.storage.db, steps)
        # Verified on a fresh read of the target, with the key the source was signed with.
        from emrcomm.storage import open_storage

        check = open_storage(target_cfg, read_only=True)
        try:
            keys = [audit.load_public_key(source_key)] if source_key.exists() else []
            if target_key.exists():
                keys.append(audit.load_public_key(target_key))
            report = audit.verify(check, keys)
            counts = {t: (a, count(check.db, t)) for t, (a, _) in counts.items()}
            source_head, target_head = source.storage.audit.head(), check.audit.head()
        finally:
            check.close()
    problems = [p.message for p in report.problems]
    if (source_head or {}).get("hash") != (target_head or {}).get("hash"):
        problems.append("the target's signed head is not the source's")
    return CopyReport(source=source_cfg.store_where, target=target_cfg.store_where, counts=counts,
                      audit_entries=report.entries, audit_ok=not problems, audit_problems=tuple(problems))


def _copy(source: Database, target: Database, steps: Sequence[Migration]) -> dict[str, tuple[int, int]]:
    have = set(tables(target))
    names = [t for t in FIRST if t in have] + sorted(set(tables(source)) - set(FIRST) - SKIPPED)
    names = [t for t in names if t in have and t in set(tables(source))]
    full = [t for t in names if t != "meta" and count(target, t)]
    if full:
        raise ConfigError(f"db copy: the target {target.where} is not empty ({', '.join(full)} have rows): copy "
                          "into a new database")
    versions = {m.owner for m in steps}
    for owner in versions:
        if schema_version(source, owner) != schema_version(target, owner):
            raise ConfigError(f"db copy: {owner} schema {schema_version(source, owner)} in the source, "
                              f"{schema_version(target, owner)} in the target")
    counts: dict[str, tuple[int, int]] = {}
    with target.transaction():
        for table in names:
            cols = [c for c in columns(source, table) if c in set(columns(target, table))]
            rows = source.query(f"SELECT {', '.join(cols)} FROM {table}")
            if table == "meta":
                rows = [r for r in rows if not str(r["key"]).startswith("schema_version")]
                target.executemany("DELETE FROM meta WHERE key = ?", [(r["key"],) for r in rows])
            if table == "audit_head":
                target.execute("DELETE FROM audit_head")
            marks = ", ".join("?" for _ in cols)
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})"
            for start in range(0, len(rows), BATCH):
                target.executemany(sql, [tuple(r[c] for c in cols) for r in rows[start:start + BATCH]])
            counts[table] = (count(source, table), 0)
            if target.dialect == "postgresql":
                _move_identities(target, table)
    return counts


def _move_identities(db: Database, table: str) -> None:
    """After rows were copied with their own numbers, the next number follows the largest."""
    for row in db.query("SELECT column_name FROM information_schema.columns WHERE table_name = ? AND "
                        "table_schema = current_schema() AND is_identity = 'YES'", (table,)):
        column = row["column_name"]
        db.query(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                 f"GREATEST(1, (SELECT COALESCE(MAX({column}), 0) FROM {table})), "
                 f"(SELECT COUNT(*) > 0 FROM {table}))")

