"""How a decided request is answered in FHIR: the HTTP status for each way a request can end,
and the body: the CommunicationRequest as filed, its Communications and an OperationOutcome of
every finding (or only one of them, as ``Prefer: return=…`` asks).

Status codes (docs/api.md, "Status codes"):

======================  ======  =====================================================================
request ended           status  why
======================  ======  =====================================================================
sent, stored, queued,   201     created: the records are filed; held and queued ones go later (also
held                            one whose first send failed for now: the outbox retries it, queued)
a repeat of its id      200     nothing sent again: the records as they stand (also ``If-None-Exist``)
its id used again for   409     nothing sent: the earlier request asked for something else
another message                 (pipeline.digest.check_retry)
blocked                 422     no channel could carry it (a business rule): nothing sent; the chart
                                has a not-done Communication, and the same id may be sent again once
                                the cause is fixed
not filed               503     a filer (the EMR's FHIR server) refused the records: nothing sent;
                                send the same request again later
its message ended       422     nothing goes until staff requeue it (``emrcomm outbox requeue``):
unsent (at its first            sending the request again never does
send, or a repeat)
======================  ======  =====================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from emrcomm.api.outcome import error_issue, findings_outcome, note, operation_outcome
from emrcomm.api.search import resource as communication_resource
from emrcomm.fhir import BASE, CATEGORY_SYSTEM, RULE_SYSTEM, fhir_datetime, identifier_json
from emrcomm.model import Outcome, Record, Status
from emrcomm.pipeline.write import ENDED_UNSENT, is_repeat
from emrcomm.storage.records import PageQuery

if TYPE_CHECKING:
    from emrcomm.host import Host

OUTCOME_SYSTEM = f"{BASE}/CodeSystem/outcome"
HTTP_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 409: "Conflict",
                412: "Precondition Failed", 413: "Payload Too Large", 422: "Unprocessable Entity",
                500: "Internal Server Error", 503: "Service Unavailable"}
# CommunicationRequest.status for how a request ended.
REQUEST_STATUS = {Status.SENT: "completed", Status.STORED: "completed", Status.QUEUED: "active",
                  Status.HELD: "on-hold", Status.BLOCKED: "revoked", Status.FAILED: "revoked"}


GOING = frozenset({Status.SENT, Status.STORED, Status.QUEUED, Status.HELD})


def http_status(outcome: Outcome) -> int:
    # A blocked, not-filed or failed one answered as it stands (a repeat, If-None-Exist) too: a
    # 2xx always means the message is going.
    if outcome.status is Status.BLOCKED:
        return 422
    if _not_filed(outcome):
        return 503
    if outcome.status is Status.FAILED:
        # A message of it ended unsent (a dead letter, a refusal for good): nothing goes until
        # staff requeue it, and sending the request again never does. Without records: a
        # request that could not be read (send_many's).
        return 422 if is_repeat(outcome) or outcome.record_ids else 400
    return 200 if is_repeat(outcome) else 201


def _not_filed(outcome: Outcome) -> bool:
    return outcome.status is Status.FAILED and any(f.code == "RECORD_NOT_FILED" for f in outcome.findings)


def records_of(host: Host, outcome: Outcome) -> list[tuple[Record, Any]]:
    """The outcome's records as they stand, each with when it last changed, in leg order."""
    if not outcome.record_ids:
        return []
    # One page of the request's records (two queries), rather than a read per record.
    found = {r.id: (r, updated) for r, updated in host.storage.records.page(
        PageQuery(limit=1000, request_ids=(outcome.request_id,)))}
    return [found[i] for i in outcome.record_ids if i in found]


def last_changed(records: Sequence[tuple[Record, Any]], decided: Any) -> Any:
    """When a request last changed: its status follows its records, so when the last of them
    changed (``decided``, when it was decided, for one without records)."""
    return max((updated for _r, updated in records), default=decided)


def request_resource(outcome: Outcome, submitted: Mapping[str, Any] | None, updated: Any) -> dict[str, Any]:
    """The CommunicationRequest as filed: what was sent in (when it is at hand; else what the
    ledger keeps: the EMR's identifiers, category and subject), its id the request id, its status
    how the request ended, ``updated`` when that last changed (:func:`last_changed`)."""
    status = REQUEST_STATUS[outcome.status]
    res: dict[str, Any] = {"resourceType": "CommunicationRequest", "id": outcome.request_id,
                           "meta": {"lastUpdated": fhir_datetime(updated)}}
    if submitted:
        res.update({k: v for k, v in submitted.items() if k not in ("resourceType", "id", "meta", "status")})
        subject = submitted.get("subject")
        if isinstance(subject, Mapping) and "identifier" in subject:
            # Named by identifier (a health number, say): as filed, the patient found, as a read
            # of it answers; the identifier is kept nowhere.
            del res["subject"]
            if outcome.patient_ref:
                res["subject"] = {"reference": outcome.patient_ref}
    else:
        if outcome.identifiers:
            res["identifier"] = [identifier_json(i) for i in outcome.identifiers]
        if outcome.category is not None:
            res["category"] = [{"coding": [{"system": CATEGORY_SYSTEM, "code": outcome.category.value}]}]
        if outcome.patient_ref:
            res["subject"] = {"reference": outcome.patient_ref}
    res["status"] = status
    blocking = [f.code for f in outcome.findings if f.blocks]
    if status == "revoked" and blocking:
        res["statusReason"] = {"coding": [{"system": RULE_SYSTEM, "code": c} for c in dict.fromkeys(blocking)]}
    return res


def outcome_resource(outcome: Outcome, records: Sequence[tuple[Record, Any]] = (), *, dry_run: bool = False) -> dict[str, Any]:
    """An OperationOutcome: how it ended (a coded first issue), every finding, the explanation."""
    channels = ", ".join(outcome.channels) or "none"
    verdict = {"severity": "information", "code": "informational",
               "details": {"coding": [{"system": OUTCOME_SYSTEM, "code": outcome.status.value}],
                           "text": f"{'would be ' if dry_run else ''}{outcome.status.value} (channels: {channels})"}}
    filed = [f"filed as Communication/{r.id} ({r.status})" for r, _ in records]
    found = findings_outcome(outcome.findings, [*outcome.explanation, *filed])["issue"]
    if outcome.status in GOING:
        # It goes: a block on a channel not used only says why not that one (information); one
        # on the channel used holds it until a time (warning). An error would read as a failure.
        for issue, f in zip(found, outcome.findings):
            if f.blocks:
                issue["severity"] = "warning" if f.channel in outcome.channels else "information"
    if not outcome.findings and not outcome.explanation and not filed:
        found = []
    return operation_outcome([verdict, *found])


def body(outcome: Outcome, records: Sequence[tuple[Record, Any]], submitted: Mapping[str, Any] | None, when: Any,
         base: str, prefer: str) -> dict[str, Any] | None:
    """What a create answers, as ``Prefer: return=`` asks (default: a collection Bundle of all)."""
    if prefer == "minimal":
        return None
    if prefer == "OperationOutcome":
        return outcome_resource(outcome, records)
    request = request_resource(outcome, submitted, last_changed(records, when))
    if prefer == "representation":
        return request
    entries = [{"fullUrl": f"{base}/CommunicationRequest/{outcome.request_id}", "resource": request}]
    entries += [{"fullUrl": f"{base}/Communication/{r.id}", "resource": communication_resource(r, updated)}
                for r, updated in records]
    entries.append({"resource": outcome_resource(outcome, records)})
    return {"resourceType": "Bundle", "type": "collection", "timestamp": fhir_datetime(when), "entry": entries}


def refused(outcome: Outcome, records: Sequence[tuple[Record, Any]]) -> dict[str, Any]:
    """The OperationOutcome of a blocked, not-filed or failed request: why, and its not-done records."""
    res = outcome_resource(outcome, records)
    res["issue"][0]["severity"] = "error"
    res["issue"][0]["code"] = ("business-rule" if outcome.status is Status.BLOCKED
                               else "transient" if _not_filed(outcome) else "processing")
    if outcome.status is Status.BLOCKED and is_repeat(outcome):
        res["issue"].append(note("nothing was sent, nor decided again (If-None-Exist answers a request as it stands): "
                                 "send it without If-None-Exist once the cause is fixed"))
    elif is_repeat(outcome) and _not_filed(outcome):
        res["issue"].append(note("nothing was sent, nor tried again (If-None-Exist answers a request as it stands): "
                                 "send it again later without If-None-Exist"))
    elif is_repeat(outcome):
        # The repeat's explanation says how to send it again; If-None-Exist's standing one does not.
        how = "" if ENDED_UNSENT in outcome.explanation else f": {ENDED_UNSENT}"
        res["issue"].append(note(f"nothing was sent again (a repeat answers a request as it stands){how}"))
    elif outcome.status is Status.BLOCKED:
        res["issue"].append(note("nothing was sent; send the same request id again once the cause is fixed"))
    elif not _not_filed(outcome):
        res["issue"].append(note(f"nothing was sent; {ENDED_UNSENT}"))
    return res


def batch_entry(outcome: Outcome, records: Sequence[tuple[Record, Any]]) -> dict[str, Any]:
    """The batch-response entry of a decided (or standing) request."""
    status = http_status(outcome)
    if status >= 400:
        return entry_response(status, None, refused(outcome, records))
    return entry_response(status, f"CommunicationRequest/{outcome.request_id}", outcome_resource(outcome, records))


def entry_response(status: int, location: str | None, outcome: Mapping[str, Any]) -> dict[str, Any]:
    """One batch-response entry."""
    response: dict[str, Any] = {"status": f"{status} {HTTP_REASONS.get(status, '')}".strip()}
    if location:
        response["location"] = location
    response["outcome"] = outcome
    return {"response": response}


def error_entry(status: int, code: str, text: str, expression: str | None = None,
                staff: str | None = None) -> dict[str, Any]:
    """A refused batch entry: ``text`` what was wrong, ``staff`` the sentence staff read (by status)."""
    return entry_response(status, None, operation_outcome([error_issue(status, code, text, expression, staff)]))
