"""The staff pages' tables, as migrations owned by ``staff`` (portable SQL, like the API's)."""

from __future__ import annotations

from emrcomm.storage import Migration

OWNER = "staff"

_V1 = (
    # An account: its Argon2id hash (never the password), whether it is disabled, and the run of
    # wrong passwords that locks it for a while.
    """CREATE TABLE staff_accounts (
        name TEXT PRIMARY KEY,
        full_name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created TEXT NOT NULL,
        password_changed TEXT NOT NULL,
        disabled TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT
    )""",
    # A signed-in browser, by the SHA-256 of its session id: the id itself is only in the cookie.
    """CREATE TABLE staff_sessions (
        digest TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created TEXT NOT NULL,
        seen TEXT NOT NULL
    )""",
    "CREATE INDEX staff_sessions_name ON staff_sessions (name)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(OWNER, 1, "staff pages: accounts (Argon2id hashes) and sessions", statements={"*": _V1}),
)
