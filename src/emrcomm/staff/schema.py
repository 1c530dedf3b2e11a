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

# Version 2: sign-in limits per address, per account name and address, per account name, and per
# browser that signed in before (emrcomm.staff.tries): an account is no longer locked for
# everyone, so staff_accounts' failures and locked_until are left unused.
_V2 = (
    # A bucket of sign-in tries: due is when it is full again (seconds since the epoch, the host's
    # clock); key and name (the account name it is about, NULL for an address's) are SHA-256s.
    """CREATE TABLE staff_tries (
        key TEXT PRIMARY KEY,
        name TEXT,
        due DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX staff_tries_due ON staff_tries (due)",
    "CREATE INDEX staff_tries_name ON staff_tries (name)",
    # A browser that signed in to an account, by the SHA-256 of its device cookie's id.
    """CREATE TABLE staff_devices (
        digest TEXT NOT NULL,
        name TEXT NOT NULL,
        seen TEXT NOT NULL,
        PRIMARY KEY (digest, name)
    )""",
    "CREATE INDEX staff_devices_name ON staff_devices (name)",
)

# Version 3: the lock columns version 2 left unused are dropped; and every bucket is emptied, so
# that no name typed at the sign-in form stays kept as the bare SHA-256 version 2 stored (a name
# may be a password typed in the wrong field): buckets are keyed with a secret now (tries.py).
_V3 = (
    "ALTER TABLE staff_accounts DROP COLUMN failures",
    "ALTER TABLE staff_accounts DROP COLUMN locked_until",
    "DELETE FROM staff_tries",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(OWNER, 1, "staff pages: accounts (Argon2id hashes) and sessions", statements={"*": _V1}),
    Migration(OWNER, 2, "staff pages: sign-in limits per address and account, browsers that signed in",
              statements={"*": _V2}),
    Migration(OWNER, 3, "staff pages: the unused lock columns dropped, sign-in buckets keyed with a secret",
              statements={"*": _V3}),
)
