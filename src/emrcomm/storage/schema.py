"""The core's tables, as versioned migrations (a plugin's own tables are its migrations).

Version 1 is the schema of the 0.1 release, written so that it also completes a database that
release made (``IF NOT EXISTS``, columns added where missing).
"""

from __future__ import annotations

from collections.abc import Sequence

from emrcomm.storage.database import CORE, Database, Migration

_V1_OPEN_STATES = "('pending', 'retry', 'held', 'waiting', 'sending')"  # the 0.1 claim's states

_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    patient TEXT NOT NULL,
    status TEXT NOT NULL,
    channel TEXT,
    category TEXT,
    recorded TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    resource TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_patient ON records (patient, recorded);
CREATE INDEX IF NOT EXISTS records_request ON records (request_id);
CREATE TABLE IF NOT EXISTS consent_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    patient TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT,
    purpose TEXT,
    action TEXT NOT NULL CHECK (action IN ('grant', 'revoke')),
    at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_events_address ON consent_events (channel, address);
CREATE INDEX IF NOT EXISTS consent_events_patient ON consent_events (patient);
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    not_before TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    provider_id TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, not_before);
CREATE INDEX IF NOT EXISTS outbox_request ON outbox (request_id);
CREATE TABLE IF NOT EXISTS audit_log (
    pos INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    entry TEXT NOT NULL,
    hash TEXT NOT NULL,
    sig TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_seq ON audit_log (seq);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    sig TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    patient TEXT NOT NULL,
    request_id TEXT,
    record_id TEXT,
    message_id TEXT,
    created TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    priority TEXT NOT NULL DEFAULT 'routine',
    keywords TEXT NOT NULL DEFAULT '[]',
    reason TEXT NOT NULL DEFAULT '',
    task TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_open ON inbox (state, created)
"""


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def add_columns(db: Database, table: str, columns: Sequence[tuple[str, str]]) -> None:
    """Add the columns ``table`` lacks (a table an older release created)."""
    if db.dialect == "sqlite":
        have = {row["name"] for row in db.query(f"PRAGMA table_info({table})")}
    else:
        have = {row["column_name"] for row in db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = current_schema()", (table,))}
    for name, declaration in columns:
        if name not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def _v1_completions(db: Database) -> None:
    if db.dialect != "sqlite":
        return  # no release before 0.2 ran on PostgreSQL: its version 1 is complete as written
    add_columns(db, "outbox", (("lease_owner", "TEXT"), ("lease_until", "TEXT")))
    # The claim's order, over open rows only: a claim reads the first due rows in order and stops
    # instead of sorting every due row (160 ms a claim with 100k rows queued).
    db.execute(f"CREATE INDEX IF NOT EXISTS outbox_claim_order ON outbox (COALESCE(not_before, created)) "
               f"WHERE state IN {_V1_OPEN_STATES}")


# Version 2: one message lifecycle. Records keep fixed facts and a projection of their events;
# the request ledger arbitrates request ids; the outbox keeps only what is left to deliver.
_V2 = """
DROP INDEX IF EXISTS records_patient;
DROP INDEX IF EXISTS records_request;
DROP INDEX IF EXISTS outbox_due;
DROP INDEX IF EXISTS outbox_request;
DROP INDEX IF EXISTS outbox_claim_order;
ALTER TABLE records RENAME TO records_v1;
ALTER TABLE outbox RENAME TO outbox_v1;
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    patient TEXT NOT NULL,
    category TEXT NOT NULL,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    record_ids TEXT NOT NULL
);
CREATE TABLE records (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    patient TEXT NOT NULL,
    channel TEXT,
    category TEXT,
    role TEXT NOT NULL,
    address TEXT,
    template TEXT,
    recorded TEXT NOT NULL,
    state TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated TEXT NOT NULL,
    facts TEXT NOT NULL
);
CREATE INDEX records_patient ON records (patient, recorded);
CREATE INDEX records_request ON records (request_id);
CREATE INDEX records_to ON records (channel, address, recorded);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    at TEXT NOT NULL,
    provider_id TEXT,
    reason TEXT,
    detail TEXT,
    until TEXT,
    dedup TEXT NOT NULL UNIQUE
);
CREATE INDEX events_record ON events (record_id, seq);
CREATE INDEX events_provider ON events (provider_id) WHERE provider_id IS NOT NULL;
CREATE TABLE outbox (
    key TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT,
    leg INTEGER NOT NULL,
    state TEXT NOT NULL,
    not_before TEXT,
    expires TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TEXT,
    last_error TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX outbox_request ON outbox (request_id, leg);
CREATE INDEX outbox_claim_order ON outbox (COALESCE(not_before, created)) WHERE state IN ('pending', 'held', 'retry', 'sending');
CREATE INDEX consent_events_last ON consent_events (channel, address, seq)
"""


def _v2_convert(db: Database) -> None:
    if db.dialect != "sqlite":
        return  # nothing of 0.1 to convert
    from emrcomm.storage.upgrade_v1 import convert

    convert(db)
    db.execute("DROP TABLE records_v1")
    db.execute("DROP TABLE outbox_v1")


# PostgreSQL: the same tables. Text compares byte by byte (COLLATE "C"), as SQLite's does, so
# that times written as ISO text and ids sort the same on both; sequences are identities.
_PG_V1 = """
CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE consent_events (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    patient TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    address TEXT COLLATE "C",
    purpose TEXT,
    action TEXT NOT NULL CHECK (action IN ('grant', 'revoke')),
    at TEXT COLLATE "C" NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX consent_events_address ON consent_events (channel, address);
CREATE INDEX consent_events_patient ON consent_events (patient);
CREATE TABLE audit_log (
    pos BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    seq BIGINT NOT NULL,
    entry TEXT NOT NULL,
    hash TEXT COLLATE "C" NOT NULL,
    sig TEXT NOT NULL
);
CREATE INDEX audit_log_seq ON audit_log (seq);
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT COLLATE "C" NOT NULL,
    sig TEXT NOT NULL
);
CREATE TABLE inbox (
    id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT NOT NULL,
    patient TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C",
    record_id TEXT COLLATE "C",
    message_id TEXT COLLATE "C",
    created TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL DEFAULT 'open',
    priority TEXT COLLATE "C" NOT NULL DEFAULT 'routine',
    keywords TEXT NOT NULL DEFAULT '[]',
    reason TEXT NOT NULL DEFAULT '',
    task TEXT NOT NULL
);
CREATE INDEX inbox_open ON inbox (state, created)
"""

_PG_V2 = """
CREATE TABLE requests (
    id TEXT COLLATE "C" PRIMARY KEY,
    patient TEXT COLLATE "C" NOT NULL,
    category TEXT COLLATE "C" NOT NULL,
    created TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    record_ids TEXT NOT NULL
);
CREATE TABLE records (
    id TEXT COLLATE "C" PRIMARY KEY,
    request_id TEXT COLLATE "C" NOT NULL,
    patient TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C",
    category TEXT COLLATE "C",
    role TEXT COLLATE "C" NOT NULL,
    address TEXT COLLATE "C",
    template TEXT COLLATE "C",
    recorded TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    version INTEGER NOT NULL,
    updated TEXT COLLATE "C" NOT NULL,
    facts TEXT NOT NULL
);
CREATE INDEX records_patient ON records (patient, recorded);
CREATE INDEX records_request ON records (request_id);
CREATE INDEX records_to ON records (channel, address, recorded);
CREATE TABLE events (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    record_id TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    provider_id TEXT COLLATE "C",
    reason TEXT,
    detail TEXT,
    until TEXT COLLATE "C",
    dedup TEXT COLLATE "C" NOT NULL UNIQUE
);
CREATE INDEX events_record ON events (record_id, seq);
CREATE INDEX events_provider ON events (provider_id) WHERE provider_id IS NOT NULL;
CREATE TABLE outbox (
    key TEXT COLLATE "C" PRIMARY KEY,
    request_id TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    address TEXT COLLATE "C",
    leg INTEGER NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    not_before TEXT COLLATE "C",
    expires TEXT COLLATE "C",
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT COLLATE "C",
    lease_until TEXT COLLATE "C",
    last_error TEXT,
    created TEXT COLLATE "C" NOT NULL,
    updated TEXT COLLATE "C" NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX outbox_request ON outbox (request_id, leg);
CREATE INDEX outbox_claim_order ON outbox ((COALESCE(not_before, created)), key) WHERE state IN ('pending', 'held', 'retry', 'sending');
CREATE INDEX consent_events_last ON consent_events (channel, address, seq)
"""

# Version 3: what many processes share. Token buckets (per-sender provider limits for every
# worker together, per-client limits for every ``serve``), and on PostgreSQL the staging table
# of the audit chain: a transaction's entries wait there, never committed, until its commit
# chains them under the database's audit lock (emrcomm.audit).
_V3 = """
CREATE TABLE rate_buckets (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    tokens REAL NOT NULL,
    stamp REAL NOT NULL,
    taken INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
)
"""
_PG_V3 = """
CREATE TABLE rate_buckets (
    scope TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    stamp DOUBLE PRECISION NOT NULL,
    taken INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
);
CREATE UNLOGGED TABLE audit_staged (
    n BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    fields TEXT NOT NULL,
    at TEXT NOT NULL
)
"""

# Version 4: fewer bytes per message (issue 13). The audit log keeps each entry's canonical JSON
# packed (emrcomm.storage.packed) and its signature as bytes; an entry's hash is no longer stored
# beside it (it is the SHA-256 of the entry, and the next entry's prev), nor its number (it is in
# the entry, and a new entry's position is its number: the key finds it, no index on seq). A
# record's facts are packed and leave out what the record's columns say. An event's dedup key is
# kept as a 16-byte digest. Rows written before are converted.
_V4 = """
CREATE TABLE audit_log_v4 (
    pos INTEGER PRIMARY KEY,
    entry BLOB NOT NULL,
    sig BLOB
)
"""
_PG_V4 = """
CREATE TABLE audit_log_v4 (
    pos BIGINT PRIMARY KEY,
    entry BYTEA NOT NULL,
    sig BYTEA
);
ALTER TABLE records ALTER COLUMN facts TYPE BYTEA USING convert_to(facts, 'UTF8');
ALTER TABLE events ALTER COLUMN dedup TYPE BYTEA USING convert_to(dedup, 'UTF8')
"""


def _v4_convert(db: Database) -> None:
    import base64

    from emrcomm.storage.packed import AUDIT, pack
    from emrcomm.storage.records import dedup_digest, pack_facts_row

    after = -1
    while rows := db.query("SELECT pos, entry, sig FROM audit_log WHERE pos > ? ORDER BY pos LIMIT 1000",
                           (after,)):
        db.executemany("INSERT INTO audit_log_v4 (pos, entry, sig) VALUES (?, ?, ?)",
                       [(r["pos"], pack(r["entry"].encode("utf-8"), AUDIT),
                         base64.b64decode(r["sig"]) if r["sig"] else None) for r in rows])
        after = rows[-1]["pos"]
    db.execute("DROP TABLE audit_log")
    db.execute("ALTER TABLE audit_log_v4 RENAME TO audit_log")
    # SQLite keeps the packed facts as a BLOB whatever the column's declared type.
    after_id = ""
    while rows := db.query("SELECT * FROM records WHERE id > ? ORDER BY id LIMIT 1000", (after_id,)):
        db.executemany("UPDATE records SET facts = ? WHERE id = ?", [(pack_facts_row(r), r["id"]) for r in rows])
        after_id = rows[-1]["id"]
    after = 0
    while rows := db.query("SELECT seq, dedup FROM events WHERE seq > ? ORDER BY seq LIMIT 1000", (after,)):
        db.executemany("UPDATE events SET dedup = ? WHERE seq = ?", [
            (dedup_digest(r["dedup"] if isinstance(r["dedup"], str) else bytes(r["dedup"]).decode("utf-8")), r["seq"])
            for r in rows])
        after = rows[-1]["seq"]


# One mailbox whatever its capitals: an unsubscribe filed as Alex.Martin@Example.org stops
# alex.martin@example.org. (lower() on SQLite folds ASCII letters only: the addresses' domains, and
# nearly every local part.)
_V5 = """
UPDATE consent_events SET address = lower(address) WHERE channel = 'email' AND address <> lower(address)
"""

# Version 6: the EMR's own id for a request (its FHIR identifier), so that the EMR can find the
# request by it: system and value in one column (records.identifier_key), NULL for a request
# without one (Host.send from Python). One nullable column costs such a row one byte on SQLite
# and none on PostgreSQL (two would cost 2 and 8: the null bitmap passes a word); the index,
# partial, holds only the requests that have one.
_V6 = """
ALTER TABLE requests ADD COLUMN identifier TEXT;
CREATE INDEX requests_identifier ON requests (identifier) WHERE identifier IS NOT NULL
"""
_PG_V6 = """
ALTER TABLE requests ADD COLUMN identifier TEXT COLLATE "C";
CREATE INDEX requests_identifier ON requests (identifier) WHERE identifier IS NOT NULL
"""

# Version 7: every identifier of a request, not its first alone (a retry's If-None-Exist naming
# its second identifier sent the message twice). A request with one identifier is kept as in
# version 6, at no cost more; one with several keeps them all, in order, in its identifier column
# (a JSON list: records.identifiers_text), and one request_identifiers row for each finds it. The
# index on the column leaves such lists out (they may pass PostgreSQL's ~2,700 bytes for one
# entry): the search names its condition (records.SINGLE_IDENTIFIER). Rows written before keep
# their one identifier: the others were never stored.
_V7 = """
CREATE TABLE request_identifiers (
    identifier TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (identifier, request_id)
) WITHOUT ROWID;
CREATE INDEX request_identifiers_request ON request_identifiers (request_id);
DROP INDEX requests_identifier;
CREATE INDEX requests_identifier ON requests (identifier) WHERE substr(identifier, 1, 2) <> '[['
"""
_PG_V7 = """
CREATE TABLE request_identifiers (
    identifier TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (identifier, request_id)
);
CREATE INDEX request_identifiers_request ON request_identifiers (request_id);
DROP INDEX requests_identifier;
CREATE INDEX requests_identifier ON requests (identifier) WHERE substr(identifier, 1, 2) <> '[['
"""

# Version 8: a digest of what a request asked for (emrcomm.pipeline.digest), so that the same id
# (or identifier) sent again with another patient, template or words is told from a retry and
# refused (409) rather than answered "already handled". 16 bytes, nullable: a request entered
# before has none and is answered as before.
_V8 = """
ALTER TABLE requests ADD COLUMN digest BLOB
"""
_PG_V8 = """
ALTER TABLE requests ADD COLUMN digest BYTEA
"""

# Version 9: when the send watch found a row's send hung (emrcomm.pipeline.watch), written by
# the process making the send, only then: `emrcomm outbox` lists the row overdue from it. A
# claim clears it. Rows claimed and not yet started have none, however long they wait in hand.
_V9 = """
ALTER TABLE outbox ADD COLUMN hung_at TEXT
"""

# Version 10: a front-desk Consent is decided once per identifier (its Consent.identifier, or
# the one its If-None-Exist names): the EMR's retry of one whose answer it lost is answered as
# first recorded, not recorded again after a STOP that came in between. Each row keeps a digest
# of what the Consent said (emrcomm.api.consent.content_digest) and its id, the ledger number of
# its first entry. A Consent without an identifier writes nothing here.
_V10 = """
CREATE TABLE consent_identifiers (
    identifier TEXT PRIMARY KEY,
    consent INTEGER,
    digest BLOB NOT NULL,
    recorded TEXT NOT NULL
)
"""
_PG_V10 = """
CREATE TABLE consent_identifiers (
    identifier TEXT COLLATE "C" PRIMARY KEY,
    consent BIGINT,
    digest BYTEA NOT NULL,
    recorded TEXT COLLATE "C" NOT NULL
)
"""

# Version 11: the Consent as first recorded (its JSON, without id and meta), kept with each of
# its identifiers, so that its retry is answered with what was recorded (its dateTime, period
# and the rest), not with the retry's own. Nullable: a Consent recorded at schema 10 has none,
# and its retry is answered with the retry's JSON, as then.
_V11 = """
ALTER TABLE consent_identifiers ADD COLUMN resource TEXT
"""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(CORE, 1, "the 0.1 schema", statements={"sqlite": statements(_V1), "postgresql": statements(_PG_V1)},
              run=_v1_completions),
    Migration(CORE, 2, "one message lifecycle: facts and events, the request ledger, a slim outbox",
              statements={"sqlite": statements(_V2), "postgresql": statements(_PG_V2)}, run=_v2_convert),
    Migration(CORE, 3, "shared token buckets; the audit chain's staging table (PostgreSQL)",
              statements={"sqlite": statements(_V3), "postgresql": statements(_PG_V3)}),
    Migration(CORE, 4, "fewer bytes per message: packed audit entries and record facts, no stored entry hash, "
                       "dedup keys as digests",
              statements={"sqlite": statements(_V4), "postgresql": statements(_PG_V4)}, run=_v4_convert),
    Migration(CORE, 5, "email addresses in the consent ledger in lower case (emrcomm.storage.consent.mailbox)",
              statements={"sqlite": statements(_V5), "postgresql": statements(_V5)}),
    Migration(CORE, 6, "the EMR's identifier of a request, kept with it and indexed (a search by identifier)",
              statements={"sqlite": statements(_V6), "postgresql": statements(_PG_V6)}),
    Migration(CORE, 7, "every identifier of a request: several kept in order, each found by the search "
                       "(request_identifiers)",
              statements={"sqlite": statements(_V7), "postgresql": statements(_PG_V7)}),
    Migration(CORE, 8, "a digest of what each request asked for: an id used again for another message is refused",
              statements={"sqlite": statements(_V8), "postgresql": statements(_PG_V8)}),
    Migration(CORE, 9, "when a row's send was found hung, so that `emrcomm outbox` lists it overdue",
              statements={"sqlite": statements(_V9), "postgresql": statements(_V9)}),
    Migration(CORE, 10, "a front-desk Consent's identifiers, so that its retry is answered as first recorded",
              statements={"sqlite": statements(_V10), "postgresql": statements(_PG_V10)}),
    Migration(CORE, 11, "a front-desk Consent as first recorded, so that its retry is answered with it",
              statements={"sqlite": statements(_V11), "postgresql": statements(_V11)}),
)
