"""What the 0.1 release filed, read into today's form: each Communication it kept becomes a
record's facts and the events that explain its status; each outbox row still to deliver becomes
a row of today's outbox. Used once, by the schema's version 2 migration.

The 0.1 outbox knew more than its records (a record could stay ``in-progress`` while its row
was ``sent``): where the row says the message left, an ``accepted`` event says so too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from emrcomm.fhir import CATEGORY_SYSTEM, RULE_SYSTEM
from emrcomm.lifecycle.events import Event, Note, Source
from emrcomm.lifecycle.projection import RecordFacts, project
from emrcomm.lifecycle.states import LegState
from emrcomm.model import Category, Finding, Request, Severity
from emrcomm.outbox.payload import Payload
from emrcomm.storage.database import Database
from emrcomm.storage.times import iso, parse_iso

MEDIUM_CHANNEL = {"SMSWRIT": "sms", "EMAILWRIT": "email", "ONLINEWRIT": "portal"}
_NOTE = re.compile(r"^([A-Z][A-Z0-9_]+) \((info|warn|block)\): (.+)$")
_ROUTE = re.compile(r"^(primary|notice) by (\S+) to (.+)$")
_HELD = re.compile(r"^held until (\S+)$")
_DELIVERED = re.compile(r"^delivered (\S+)$")
_RECALLED = re.compile(r"^recalled (\S+?)(?:: (.*))?$")
_EXPIRED_UNREAD = re.compile(r"^expired unread (\S+)$")


def _time(value: str) -> dt.datetime:
    return parse_iso(value.replace("Z", "+00:00"))


def facts_and_events(row: Mapping[str, Any], resource: Mapping[str, Any],
                     sent_row: Mapping[str, Any] | None) -> tuple[RecordFacts, list[Event]]:
    """A 0.1 record (its row and its Communication) as facts and events. ``sent_row`` is its
    outbox row when that row says the message left."""
    rid = row["id"]
    based = (resource.get("basedOn") or [{}])[0]
    ref = based.get("reference") or ""
    request = Request(
        resource["subject"]["reference"],
        Category(next(c["code"] for cat in resource.get("category", ()) for c in cat.get("coding", ())
                      if c.get("system") == CATEGORY_SYSTEM)),
        id=row["request_id"], priority=resource.get("priority", "routine"),
        based_on=ref if ref.startswith("CommunicationRequest/") else None,
        sender=(resource.get("sender") or {}).get("reference") if "inResponseTo" not in resource else None,
    )
    medium = next((c["code"] for m in resource.get("medium", ()) for c in m.get("coding", ())), None)
    notes = [n.get("text", "") for n in resource.get("note", ())]
    route = next((m for m in map(_ROUTE.match, notes) if m), None)
    role = "reply" if "inResponseTo" in resource else route.group(1) if route else (
        "blocked" if resource.get("status") == "not-done" and not resource.get("sent") else "primary")
    findings = tuple(Finding(code=m[1], severity=Severity(m[2]), message=m[3])
                     for m in map(_NOTE.match, notes) if m)
    reasons = tuple(c["code"] for c in (resource.get("statusReason") or {}).get("coding", ())
                    if c.get("system") == RULE_SYSTEM)
    payload = resource.get("payload", ())
    text = next((p["contentString"] for p in payload if "contentString" in p), None)
    reference = next((p["contentReference"]["reference"] for p in payload if "contentReference" in p), None)
    sender = resource.get("sender") or {}
    facts = RecordFacts(
        id=rid, request=request, role=role, recorded=parse_iso(row["recorded"]),
        channel=row["channel"] or MEDIUM_CHANNEL.get(medium or ""), medium=medium,
        address=route.group(3) if route else None, text=text, language="en", findings=findings,
        reasons=reasons if role == "blocked" else (), sender_display=sender.get("display"),
        payload_reference=reference,
        in_response_to=(resource.get("inResponseTo") or [{}])[0].get("reference"),
    )
    return facts, list(_events(rid, role, resource, notes, reasons, sent_row, facts.recorded))


def _events(rid: str, role: str, resource: Mapping[str, Any], notes: list[str], reasons: tuple[str, ...],
            sent_row: Mapping[str, Any] | None, recorded: dt.datetime) -> Iterable[Event]:
    def event(kind: Any, at: dt.datetime, tag: str, **more: Any) -> Event:
        return Event(record_id=rid, kind=kind, source=Source.MIGRATION, at=at, dedup=f"{rid}:v1:{tag}", **more)

    status = resource.get("status")
    sent = _time(resource["sent"]) if resource.get("sent") else None
    if sent is None and sent_row is not None:
        sent = parse_iso(sent_row["updated"])
    filed = _time(resource["sent"]) if role == "reply" and resource.get("sent") else None
    if role == "reply":
        yield event(LegState.RECEIVED, filed or recorded, "received")
        return
    if role == "blocked":
        yield event(LegState.BLOCKED, recorded, "blocked")
        return
    if sent is not None:
        yield event(LegState.ACCEPTED, sent, "accepted",
                    provider_id=sent_row["provider_id"] if sent_row is not None else None)
    for note in notes:
        if m := _HELD.match(note):
            yield event(LegState.HELD, recorded, "held", until=_time(m[1]),
                        reason="QUIET_HOURS" if "QUIET_HOURS" in reasons else None)
        elif m := _DELIVERED.match(note):
            yield event(LegState.DELIVERED, _time(m[1]), f"delivered:{m[1]}")
        elif m := _RECALLED.match(note):
            yield event(LegState.RECALLED, _time(m[1]), "recalled", detail=m[2] or "")
        elif m := _EXPIRED_UNREAD.match(note):
            yield event(Note.LINK_EXPIRED, _time(m[1]), "link-expired")
    if resource.get("received"):
        yield event(LegState.READ, _time(resource["received"]), "read")
    if status == "not-done":
        reason = reasons[0] if reasons else "DELIVERY_FAILED"
        kind = (LegState.FAILED if sent is not None else LegState.EXPIRED if reason == "MESSAGE_EXPIRED"
                else LegState.CANCELLED if reason == "CONSENT_REVOKED" else LegState.UNDELIVERABLE)
        yield event(kind, sent or recorded, "ended", reason=reason)
    elif status == "in-progress" and sent is None:
        yield event(LegState.QUEUED, recorded, "queued")


def convert(db: Database) -> None:
    """Fill today's records, events, requests and outbox from the 0.1 tables (renamed *_v1)."""
    outbox_rows = db.query("SELECT rowid AS pos, * FROM outbox_v1 ORDER BY request_id, rowid")
    by_record = {r["record_id"]: r for r in outbox_rows}
    legs: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in outbox_rows:
        legs[r["request_id"]].append(r)
    requests: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in db.query("SELECT * FROM records_v1 ORDER BY recorded, id"):
        resource = json.loads(row["resource"])
        out = by_record.get(row["id"])
        facts, events = facts_and_events(row, resource, out if out is not None and out["state"] == "sent" else None)
        payload = json.loads(out["payload"]) if out is not None else {}
        record = project(facts, events)
        db.execute(
            """INSERT INTO records (id, request_id, patient, channel, category, role, address, template, recorded,
                                    state, status, version, updated, facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (facts.id, facts.request.id, facts.request.patient_ref, facts.channel, facts.request.category.value,
             facts.role, facts.address, payload.get("template"), iso(facts.recorded), record.state, record.status,
             record.version, iso(facts.recorded), json.dumps(facts.to_json())))
        for e in events:
            db.execute("""INSERT INTO events (record_id, kind, source, at, provider_id, reason, detail, until, dedup)
                          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                       (e.record_id, e.kind.value, e.source.value, iso(e.at), e.provider_id, e.reason,
                        e.detail or None, iso(e.until), e.dedup))
        if facts.role != "reply":
            requests[facts.request.id].append((facts.id, record.state))
    for request_id, records in requests.items():
        first = db.query("SELECT patient, category, recorded FROM records_v1 WHERE request_id = ? ORDER BY recorded "
                         "LIMIT 1", (request_id,))[0]
        states = {s for _, s in records}
        status = ("blocked" if states == {"blocked"} else "held" if "held" in states
                  else "sent" if states <= {"accepted", "delivered", "read", "failed", "recalled"} else "queued")
        db.execute("INSERT INTO requests (id, patient, category, created, status, attempts, record_ids) "
                   "VALUES (?, ?, ?, ?, ?, 1, ?)",
                   (request_id, first["patient"], first["category"], first["recorded"], status,
                    json.dumps([rid for rid, _ in records])))
    for request_id, rows in legs.items():
        for leg, r in enumerate(rows):
            if r["state"] in ("sent", "expired", "cancelled"):
                continue
            payload = json.loads(r["payload"])
            period = (payload.get("request") or {}).get("occurrencePeriod") or {}
            link = payload.get("link_from")
            db.execute(
                """INSERT INTO outbox (key, request_id, channel, address, leg, state, not_before, expires, attempts,
                                       lease_owner, lease_until, last_error, created, updated, payload)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (r["key"], request_id, r["channel"], payload.get("address"), leg,
                 "pending" if r["state"] == "waiting" else r["state"], r["not_before"],
                 iso(_time(period["end"])) if period.get("end") else None, r["attempts"], r["lease_owner"],
                 r["lease_until"], r["last_error"], r["created"], r["updated"],
                 json.dumps(Payload(html=payload.get("html"), template=payload.get("template"),
                                    link_from=(link["channel"], link["id"]) if link else None).to_json())))
