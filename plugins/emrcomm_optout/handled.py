"""The patient messages whose STOP or START reached the consent ledger, each once: a provider
repeating a message (a retry landing late, a replay, another ``serve``) writes nothing more."""

from __future__ import annotations

from emrcomm.storage import Database, Migration, statements

OWNER = "optout"

_V1 = """
CREATE TABLE IF NOT EXISTS optout_handled (
    message TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
)
"""

MIGRATIONS = (
    Migration(OWNER, 1, "the patient messages written to the consent ledger", statements={
        "sqlite": statements(_V1),
        "postgresql": statements(_V1.replace("message TEXT", 'message TEXT COLLATE "C"').replace("INTEGER", "BIGINT"))}),
)


def seq_of(db: Database, message: str) -> int | None:
    """The ledger entry ``message`` wrote, if it wrote one."""
    rows = db.query("SELECT seq FROM optout_handled WHERE message = ?", (message,))
    return int(rows[0]["seq"]) if rows else None


def mark(db: Database, message: str, seq: int) -> None:
    """``message`` wrote ledger entry ``seq`` (in the transaction that wrote it)."""
    db.execute("INSERT INTO optout_handled (message, seq) VALUES (?, ?)", (message, seq))
