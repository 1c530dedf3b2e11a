"""The practice inbox: patients' replies and staff follow-ups, each one a FHIR R4 Task for staff.

Nothing a patient wrote is kept here in clear: a reply's words stay encrypted in the portal, and
an item carries ids, rule codes and triage keywords from a fixed vocabulary.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from emrcomm.fhir import BASE, RULE_SYSTEM, fhir_datetime
from emrcomm.storage import Storage as Store

TASK_SYSTEM = f"{BASE}/CodeSystem/staff-task"
_NS = uuid.UUID("0d6c1f9e-2f38-4c8e-9a55-3f0f7b1c2e44")

# What each kind of item asks of staff (Task.code.text).
KINDS: dict[str, str] = {
    "reply": "Answer the patient's reply",
    "follow-up": "The message did not reach the patient: contact them another way",
    "unannounced": "Tell the patient a secure message waits in the portal",
    "link-locked": "The portal link was locked after wrong dates of birth: call the patient",
    "expired-unread": "The patient did not read the portal message before it expired",
}


def item_id(kind: str, key: str) -> str:
    """The same kind of item about the same thing is one item, however often it is raised."""
    return uuid.uuid5(_NS, f"{kind}|{key}").hex


def task(
    *,
    id: str,
    kind: str,
    patient: str,
    created: dt.datetime,
    description: str,
    focus: str | None = None,
    priority: str = "routine",
    reasons: Iterable[str] = (),
    keywords: Iterable[str] = (),
    status: str = "requested",
) -> dict[str, Any]:
    """The FHIR R4 Task staff see for an inbox item."""
    res: dict[str, Any] = {
        "resourceType": "Task",
        "id": id,
        "status": status,
        "intent": "order",
        "priority": priority,
        "code": {"coding": [{"system": TASK_SYSTEM, "code": kind}], "text": KINDS[kind]},
        "description": description,
        "for": {"reference": patient},
        "authoredOn": fhir_datetime(created),
    }
    if focus:
        res["focus"] = {"reference": focus}
    codes = list(reasons)
    if codes:
        res["reasonCode"] = {"coding": [{"system": RULE_SYSTEM, "code": c} for c in codes]}
    words = list(keywords)
    if words:
        res["input"] = [{"type": {"text": "triage keyword"}, "valueString": w} for w in words]
    return res


def raise_item(
    store: Store,
    *,
    kind: str,
    key: str,
    patient: str,
    now: dt.datetime,
    description: str,
    request_id: str | None = None,
    record_id: str | None = None,
    message_id: str | None = None,
    priority: str = "routine",
    reasons: Iterable[str] = (),
    keywords: Iterable[str] = (),
) -> str:
    """Put an item in the inbox (once per kind and key) and return its id."""
    ident = item_id(kind, key)
    reasons, keywords = tuple(reasons), tuple(keywords)
    store.inbox.add(
        id=ident, kind=kind, patient=patient, created=now, request_id=request_id, record_id=record_id,
        message_id=message_id, priority=priority, keywords=keywords, reason=", ".join(reasons),
        task=task(id=ident, kind=kind, patient=patient, created=now, description=description,
                  focus=f"Communication/{record_id}" if record_id else None, priority=priority,
                  reasons=reasons, keywords=keywords),
    )
    return ident


def close_item(store: Store, ident: str, now: dt.datetime, *, note: str | None = None) -> bool:
    """Mark an open item done; its Task becomes completed (with ``note``, when given)."""
    item = store.inbox.get(ident)
    if item is None or item["state"] != "open":
        return False
    done = dict(item["task"], status="completed", lastModified=fhir_datetime(now))
    if note:
        done["note"] = [*done.get("note", ()), {"text": note}]
    return store.inbox.close(ident, task=done)


def settle_follow_up(store: Store, *, request_id: str, record_id: str, now: dt.datetime) -> bool:
    """The leg a follow-up was raised for went after all (staff put it back in the outbox): the
    follow-up is done, and its Task says why. Another leg's follow-up stays open."""
    ident = item_id("follow-up", request_id)
    item = store.inbox.get(ident)
    if item is None or item["record_id"] != record_id:
        return False
    return close_item(store, ident, now, note="The message was sent after all: nothing left to do.")
