"""The API's own tables, as migrations owned by ``api`` (the host applies them beside the
core's): clients and their keys, used assertion ids, access tokens, Subscriptions and their
notifications, and the indexes Communication search needs on the core's ``records``.

Portable SQL (dialect ``*``): the same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from emrcomm.storage import Migration

OWNER = "api"

_V1 = (
    # A registered system (an EMR): its public keys (a JWKS) and the scopes it may be granted.
    """CREATE TABLE api_clients (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        jwks TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created TEXT NOT NULL,
        revoked TEXT
    )""",
    # Assertion ids (jti) already used, kept until the assertion would have expired anyway.
    """CREATE TABLE api_assertions (
        client_id TEXT NOT NULL,
        jti TEXT NOT NULL,
        expires TEXT NOT NULL,
        PRIMARY KEY (client_id, jti)
    )""",
    "CREATE INDEX api_assertions_expires ON api_assertions (expires)",
    # Access tokens, by the SHA-256 of the token: the token itself is never stored.
    """CREATE TABLE api_tokens (
        hash TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        scopes TEXT NOT NULL,
        expires TEXT NOT NULL
    )""",
    "CREATE INDEX api_tokens_expires ON api_tokens (expires)",
    # R4 rest-hook Subscriptions; the cursors say which events each has already been given.
    """CREATE TABLE api_subscriptions (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        status TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        criteria TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        headers TEXT NOT NULL,
        secret TEXT NOT NULL,
        events_after INTEGER NOT NULL,
        consent_after INTEGER NOT NULL,
        created TEXT NOT NULL,
        error TEXT,
        resource TEXT NOT NULL
    )""",
    # One row per (subscription, event) to notify: retried with backoff until delivered or dead.
    """CREATE TABLE api_notifications (
        subscription_id TEXT NOT NULL,
        source TEXT NOT NULL,
        seq INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at TEXT NOT NULL,
        lease_owner TEXT,
        lease_until TEXT,
        last_error TEXT,
        PRIMARY KEY (subscription_id, source, seq)
    )""",
    "CREATE INDEX api_notifications_due ON api_notifications (state, next_at)",
    # Communication search: pages in filing order, and _lastUpdated.
    "CREATE INDEX api_records_recorded ON records (recorded, id)",
    "CREATE INDEX api_records_updated ON records (updated, id)",
    "CREATE INDEX api_records_status ON records (status, recorded, id)",
)

# On PostgreSQL, sequence numbers are taken when a row is written, not when it commits: a
# transaction holding seq 10 may commit after another's seq 11, and a cursor on seq alone would
# step over 10. Each event and consent row keeps the id of the transaction that wrote it, and a
# Subscription's cursor is (transaction, seq), read only below the oldest transaction still
# running (pg_snapshot_xmin), where no row can appear any more. Rows already there, and the
# cursors already kept, take this step's transaction: the cursors continue where they were.
# (Adding the column rewrites both tables once, under their lock.) On SQLite one writer at a time
# commits in seq order: the cursor stays the seq, and the new columns stay empty.
_PG_V2 = (
    "ALTER TABLE events ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id()",
    "ALTER TABLE consent_events ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id()",
    "CREATE INDEX api_events_tx ON events (tx, seq)",
    "CREATE INDEX api_consent_events_tx ON consent_events (tx, seq)",
    "ALTER TABLE api_subscriptions ADD COLUMN events_tx TEXT",
    "ALTER TABLE api_subscriptions ADD COLUMN consent_tx TEXT",
    "UPDATE api_subscriptions SET events_tx = pg_current_xact_id()::text, consent_tx = pg_current_xact_id()::text",
)
_SQLITE_V2 = (
    "ALTER TABLE api_subscriptions ADD COLUMN events_tx TEXT",
    "ALTER TABLE api_subscriptions ADD COLUMN consent_tx TEXT",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(OWNER, 1, "the FHIR API: clients, assertions, tokens, subscriptions, notifications, search indexes",
              statements={"*": _V1}),
    Migration(OWNER, 2, "notification cursors in commit order: the writing transaction on each event (PostgreSQL)",
              statements={"postgresql": _PG_V2, "sqlite": _SQLITE_V2}),
)
