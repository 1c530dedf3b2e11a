"""The practice inbox: patients' replies and staff follow-ups, each carrying its FHIR Task."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Protocol

from emrcomm.storage.database import Database, Row
from emrcomm.storage.times import iso


class Inbox(Protocol):
    def add(self, *, id: str, kind: str, patient: str, created: dt.datetime, task: dict[str, Any],
            request_id: str | None = None, record_id: str | None = None, message_id: str | None = None,
            priority: str = "routine", keywords: tuple[str, ...] = (), reason: str = "") -> bool:
        """Add an item; the same id twice is one item (False the second time)."""
        ...

    def items(self, *, state: str | None = "open", patient: str | None = None) -> list[dict[str, Any]]:
        """Items, urgent first, oldest first; ``keywords`` and ``task`` decoded."""
        ...

    def get(self, id: str) -> dict[str, Any] | None:
        """One item, open or done, decoded as by ``items``; None when there is none."""
        ...

    def close(self, id: str, *, task: dict[str, Any]) -> bool:
        """Mark an open item done with its completed Task; False when it is not open."""
        ...


class SqlInbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, *, id: str, kind: str, patient: str, created: dt.datetime, task: dict[str, Any],
            request_id: str | None = None, record_id: str | None = None, message_id: str | None = None,
            priority: str = "routine", keywords: tuple[str, ...] = (), reason: str = "") -> bool:
        return self.db.execute(
            """INSERT INTO inbox (id, kind, patient, request_id, record_id, message_id, created,
                                  priority, keywords, reason, task)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING""",
            (id, kind, patient, request_id, record_id, message_id, iso(created), priority,
             json.dumps(list(keywords)), reason, json.dumps(task))) == 1

    def items(self, *, state: str | None = "open", patient: str | None = None) -> list[dict[str, Any]]:
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(state)
        if patient is not None:
            where.append("patient = ?")
            params.append(patient)
        sql = "SELECT * FROM inbox" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY CASE priority WHEN 'urgent' THEN 0 ELSE 1 END, created, id"
        return [_item(row) for row in self.db.query(sql, tuple(params))]

    def get(self, id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM inbox WHERE id = ?", (id,))
        return _item(rows[0]) if rows else None

    def close(self, id: str, *, task: dict[str, Any]) -> bool:
        return self.db.execute("UPDATE inbox SET state = 'done', task = ? WHERE id = ? AND state = 'open'",
                               (json.dumps(task), id)) == 1


def _item(row: Row) -> dict[str, Any]:
    item = dict(row)
    item["keywords"] = json.loads(item["keywords"])
    item["task"] = json.loads(item["task"])
    return item
