"""The portal's own tables: messages and replies (encrypted), their magic links (digests only),
identity tries and reading sessions. Created by the plugin's migrations, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from emrcomm.storage import Database, Migration, add_columns, iso, statements

OWNER = "portal"

_V1 = """
CREATE TABLE IF NOT EXISTS portal_messages (
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    patient TEXT NOT NULL,
    key_id TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unread'
);
CREATE TABLE IF NOT EXISTS portal_sessions (
    digest TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    expires TEXT NOT NULL,
    replied INTEGER NOT NULL DEFAULT 0
)
"""


# PostgreSQL: the table with every column from the start (no 0.1 release ran on it).
_PG_V1 = """
CREATE TABLE portal_messages (
    id TEXT COLLATE "C" PRIMARY KEY,
    record_id TEXT COLLATE "C" NOT NULL,
    patient TEXT COLLATE "C" NOT NULL,
    key_id TEXT COLLATE "C" NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL DEFAULT 'unread',
    kind TEXT COLLATE "C" NOT NULL DEFAULT 'message',
    in_response_to TEXT COLLATE "C",
    language TEXT NOT NULL DEFAULT 'en',
    link_digest TEXT COLLATE "C",
    link_key_id TEXT COLLATE "C",
    expires TEXT COLLATE "C",
    attempts INTEGER NOT NULL DEFAULT 0,
    locked TEXT,
    read_at TEXT,
    recalled_at TEXT
);
CREATE TABLE portal_sessions (
    digest TEXT COLLATE "C" PRIMARY KEY,
    message_id TEXT COLLATE "C" NOT NULL,
    expires TEXT COLLATE "C" NOT NULL,
    replied INTEGER NOT NULL DEFAULT 0
)
"""


def _v1_completions(db: Database) -> None:
    # Columns the 0.1 release added to the table it first made.
    add_columns(db, "portal_messages", (
        ("kind", "TEXT NOT NULL DEFAULT 'message'"),  # message (to the patient) or reply (from them)
        ("in_response_to", "TEXT"),
        ("language", "TEXT NOT NULL DEFAULT 'en'"),
        ("link_digest", "TEXT"),  # SHA-256 of the magic link's token; the token itself is never stored
        ("link_key_id", "TEXT"),
        ("expires", "TEXT"),
        ("attempts", "INTEGER NOT NULL DEFAULT 0"),
        ("locked", "TEXT"),
        ("read_at", "TEXT"),
        ("recalled_at", "TEXT"),
    ))
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS portal_link ON portal_messages (link_digest)")
    db.execute("CREATE INDEX IF NOT EXISTS portal_record ON portal_messages (record_id)")


MIGRATIONS = (Migration(OWNER, 1, "portal messages and sessions", statements={"sqlite": statements(_V1), "postgresql": statements(_PG_V1)},
                        run=_v1_completions),)


class PortalStore:
    """The portal's tables. Every change is one statement (or one transaction), so two patients
    or two ``serve`` processes acting on one link at once see one outcome."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # portal ------------------------------------------------------------------------------------
    def put(
        self,
        *,
        id: str,
        record_id: str,
        patient: str,
        key_id: str,
        nonce: bytes,
        ciphertext: bytes,
        created: dt.datetime,
    ) -> None:
        self.db.execute(
            """INSERT INTO portal_messages (id, record_id, patient, key_id, nonce, ciphertext, created)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING""",
            (id, record_id, patient, key_id, nonce, ciphertext, iso(created)),
        )

    def get(self, id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM portal_messages WHERE id = ?", (id,))
        return dict(rows[0]) if rows else None

    def set_link(self, id: str, *, digest: str, key_id: str, expires: dt.datetime, language: str) -> None:
        """Attach the magic link (its digest, never the token) and its expiry to a stored message."""
        self.db.execute(
            "UPDATE portal_messages SET link_digest = ?, link_key_id = ?, expires = ?, language = ? WHERE id = ?",
            (digest, key_id, iso(expires), language, id),
        )

    def by_link(self, digest: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM portal_messages WHERE link_digest = ?", (digest,))
        return dict(rows[0]) if rows else None

    def by_record(self, record_id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM portal_messages WHERE record_id = ? AND kind = 'message'", (record_id,))
        return dict(rows[0]) if rows else None

    def put_reply(
        self,
        *,
        id: str,
        record_id: str,
        patient: str,
        in_response_to: str,
        language: str,
        key_id: str,
        nonce: bytes,
        ciphertext: bytes,
        created: dt.datetime,
    ) -> None:
        self.db.execute(
            """INSERT INTO portal_messages (id, record_id, patient, key_id, nonce, ciphertext, created, state,
                                            kind, in_response_to, language)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'received', 'reply', ?, ?)""",
            (id, record_id, patient, key_id, nonce, ciphertext, iso(created), in_response_to, language),
        )

    def reply_to(self, id: str) -> dict[str, Any] | None:
        """The patient's latest reply to message ``id`` (sealed like the message), if any."""
        rows = self.db.query("SELECT * FROM portal_messages WHERE in_response_to = ? AND kind = 'reply' "
                             "ORDER BY created DESC, id LIMIT 1", (id,))
        return dict(rows[0]) if rows else None

    def count_attempt(self, id: str, *, limit: int, now: dt.datetime) -> int:
        """Count one wrong identity answer; lock the link when it reaches ``limit``. Returns the count."""
        with self.db.transaction():
            self.db.query(
                "UPDATE portal_messages SET attempts = attempts + 1 WHERE id = ? AND attempts < ?", (id, limit)
            )
            self.db.query(
                "UPDATE portal_messages SET locked = ? WHERE id = ? AND attempts >= ? AND locked IS NULL",
                (iso(now), id, limit),
            )
            rows = self.db.query("SELECT attempts FROM portal_messages WHERE id = ?", (id,))
        return int(rows[0]["attempts"]) if rows else limit

    def transition(self, id: str, *, from_states: tuple[str, ...], to: str, now: dt.datetime) -> bool:
        """Move a message from one of ``from_states`` to ``to`` (read, recalled, expired).

        Atomic: of two concurrent readers of one link, exactly one gets True.
        """
        column = {"read": "read_at", "recalled": "recalled_at"}.get(to)
        marks = ", ".join("?" for _ in from_states)
        stamp = f", {column} = ?" if column else ""
        params: tuple[Any, ...] = (to, *((iso(now),) if column else ()), id, *from_states)
        cur = self.db.execute(f"UPDATE portal_messages SET state = ?{stamp} WHERE id = ? AND state IN ({marks})", params)
        return cur == 1

    def due_to_expire(self, now: dt.datetime) -> list[str]:
        rows = self.db.query(
            "SELECT id FROM portal_messages WHERE kind = 'message' AND state = 'unread' AND expires IS NOT NULL"
            " AND expires <= ? ORDER BY expires",
            (iso(now),),
        )
        return [r["id"] for r in rows]

    def sealed(self, *, not_key: str | None = None) -> list[dict[str, Any]]:
        """Every stored message and reply (id, key_id, nonce, ciphertext), optionally only those not
        under ``not_key``: what a key rotation re-encrypts."""
        sql = "SELECT id, key_id, nonce, ciphertext FROM portal_messages"
        params: tuple[Any, ...] = ()
        if not_key is not None:
            sql += " WHERE key_id != ?"
            params = (not_key,)
        return [dict(r) for r in self.db.query(sql + " ORDER BY created, id", params)]

    def reseal(self, id: str, *, key_id: str, nonce: bytes, ciphertext: bytes, old_key_id: str) -> bool:
        cur = self.db.execute(
            "UPDATE portal_messages SET key_id = ?, nonce = ?, ciphertext = ? WHERE id = ? AND key_id = ?",
            (key_id, nonce, ciphertext, id, old_key_id),
        )
        return cur == 1

    def key_use(self) -> dict[str, int]:
        """How many stored messages each key id encrypts or each link key id signs."""
        rows = self.db.query(
            "SELECT key_id AS k, COUNT(*) AS n FROM portal_messages GROUP BY key_id"
            " UNION ALL SELECT link_key_id AS k, COUNT(*) AS n FROM portal_messages"
            " WHERE link_key_id IS NOT NULL GROUP BY link_key_id"
        )
        out: dict[str, int] = {}
        for r in rows:
            out[r["k"]] = out.get(r["k"], 0) + int(r["n"])
        return out

    def session_put(self, digest: str, *, message_id: str, expires: dt.datetime) -> None:
        self.db.execute("INSERT INTO portal_sessions (digest, message_id, expires) VALUES (?, ?, ?)",
                    (digest, message_id, iso(expires)))

    def session_get(self, digest: str, now: dt.datetime) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM portal_sessions WHERE digest = ? AND expires > ?", (digest, iso(now)))
        return dict(rows[0]) if rows else None

    def session_use(self, digest: str) -> bool:
        """Mark a reading session as having replied; False when it already had."""
        cur = self.db.execute("UPDATE portal_sessions SET replied = 1 WHERE digest = ? AND replied = 0", (digest,))
        return cur == 1

    def sessions_purge(self, now: dt.datetime) -> int:
        return self.db.execute("DELETE FROM portal_sessions WHERE expires <= ?", (iso(now),))

    def reserve_attempt(self, id: str, *, limit: int) -> int | None:
        """Take one of a link's ``limit`` identity tries *before* the answer is compared, so
        concurrent answers cannot all slip under the limit. Returns the tries taken so far
        (this one included), or None when none is left or the link is locked."""
        with self.db.transaction():  # RETURNING rows are read before the commit
            rows = self.db.query(
                """UPDATE portal_messages SET attempts = attempts + 1
                   WHERE id = ? AND attempts < ? AND locked IS NULL RETURNING attempts""",
                (id, limit),
            )
        return int(rows[0]["attempts"]) if rows else None

    def open(self, id: str, *, now: dt.datetime) -> bool:
        """unread -> read, only while the link is not locked (atomic, like ``portal_transition``)."""
        cur = self.db.execute(
            "UPDATE portal_messages SET state = 'read', read_at = ? WHERE id = ? AND state = 'unread' AND locked IS NULL",
            (iso(now), id),
        )
        return cur == 1
