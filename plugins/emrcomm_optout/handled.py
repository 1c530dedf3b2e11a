"""The patient messages whose STOP or START reached the consent ledger, each once: a provider
repeating a message (a retry landing late, a replay, another ``serve``) writes nothing more.
Their ledger entries are the keyword ones: what a later START may lift (a revocation made
another way, at the front desk, stays until it is lifted that way)."""

from __future__ import annotations

from collections.abc import Sequence

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
    # A START looks up which of an address's ledger entries were keywords (keyword_entries).
    Migration(OWNER, 2, "the keyword entries of the consent ledger, found by their seq", statements={
        "*": ["CREATE INDEX optout_handled_seq ON optout_handled (seq)"]}),
)


NOTHING = 0  # the seq of a message that wrote no entry: a START with nothing it may lift


def seq_of(db: Database, message: str) -> int | None:
    """The (first) ledger entry ``message`` wrote, :data:`NOTHING` when it wrote none; None
    when it has not been handled."""
    rows = db.query("SELECT seq FROM optout_handled WHERE message = ?", (message,))
    return int(rows[0]["seq"]) if rows else None


def mark(db: Database, message: str, seq: int) -> None:
    """``message`` wrote ledger entry ``seq`` (its first, or :data:`NOTHING`), in the transaction
    that wrote it."""
    db.execute("INSERT INTO optout_handled (message, seq) VALUES (?, ?)", (message, seq))


def keyword_entries(db: Database, seqs: Sequence[int]) -> set[int]:
    """Those of the ledger entries ``seqs`` that a patient's STOP or START wrote (the first of a
    START's entries, when it wrote several: the others are grants, which no START needs to tell
    from a front desk's)."""
    found: set[int] = set()
    for i in range(0, len(seqs), 500):  # a bound on the parameters of one statement
        chunk = seqs[i:i + 500]
        rows = db.query(f"SELECT seq FROM optout_handled WHERE seq IN ({', '.join('?' * len(chunk))})", tuple(chunk))
        found.update(int(r["seq"]) for r in rows)
    return found
