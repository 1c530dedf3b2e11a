"""OperationOutcome: how the API says what went wrong, or what it found. Every finding becomes an
issue (its rule code, the staff sentence, the remedy, the channel); every refusal is an
:class:`ApiError` carrying the HTTP status and the issue, answered as ``application/fhir+json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

from emrcomm.fhir import EXT, RULE_SYSTEM
from emrcomm.model import Finding, Severity

FHIR_JSON = "application/fhir+json"
REMEDY = EXT + "issue-remedy"
CHANNEL = EXT + "issue-channel"
SEVERITY = {Severity.BLOCK: "error", Severity.WARN: "warning", Severity.INFO: "information"}


# What staff read (``details.text``) of a refusal, by its status: a sentence a receptionist
# understands, saying whether anything was sent and whom to ask; ``diagnostics`` keeps what the
# EMR's developer needs. A refusal that knows better says its own (ApiError's ``text``).
STAFF_TEXT = {
    400: "The EMR sent a request emrcomm could not read, so nothing was sent. Ask the EMR's support to fix it "
         "(the details are in this answer).",
    401: "The EMR is not signed in to emrcomm, so nothing was done. Ask the clinic's administrator to check its "
         "registration.",
    403: "The EMR is not allowed to do this in emrcomm, so nothing was done. Ask the clinic's administrator.",
    404: "emrcomm has no such thing, so nothing was done. Check the number or ask the EMR's support.",
    405: "emrcomm does not do this, so nothing was done. Ask the EMR's support.",
    406: "emrcomm cannot answer in the form the EMR asked for, so nothing was done. Ask the EMR's support.",
    409: "The EMR gave this message the same number as an earlier, different message, so it was not sent. Ask the "
         "EMR's support to fix it; the patient has not been sent this message.",
    412: "More than one earlier message has this number, so nothing was sent. Ask the EMR's support.",
    413: "The request is too large for emrcomm, so nothing was sent. Send fewer messages at once, or ask the EMR's "
         "support.",
    415: "The EMR sent a request in a form emrcomm does not read, so nothing was sent. Ask the EMR's support.",
    422: "emrcomm could not act on this, so nothing was done. The reason is in this answer.",
    500: "Something went wrong in emrcomm; it may or may not have been done. Check before trying again, or ask the "
         "clinic's administrator.",
    503: "emrcomm cannot do this right now. Try again in a few minutes; a message is never sent twice.",
}
RENDER_TEXT = ("The message could not be written from its template (an unknown template, or a detail it needs is "
               "missing), so nothing was sent. Ask the EMR's support to fix the request.")
SUBJECT_TEXT = ("The request names the patient twice (by the chart's link and by an identifier, such as a health "
                "number), and the clinic's directory does not find the same patient by both, so nothing was sent. "
                "Check which patient is meant, and correct their record or the request.")


def staff_text(status: int) -> str:
    """The sentence staff read of a refusal answered ``status``."""
    return STAFF_TEXT.get(status) or STAFF_TEXT[500 if status >= 500 else 400]


class ApiError(Exception):
    """A request the API refuses: ``status`` (4xx, or 5xx for what is not the client's fault),
    an issue ``code`` from FHIR's IssueType (invalid, security, not-found, …) and a sentence
    saying what was wrong, where, and what to do."""

    def __init__(self, status: int, code: str, diagnostics: str, *, expression: str | None = None,
                 headers: Mapping[str, str] | None = None, text: str | None = None) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression
        self.headers = dict(headers or {})
        self.text = text or staff_text(status)

    def outcome(self) -> dict[str, Any]:
        return operation_outcome([error_issue(self.status, self.code, self.diagnostics, self.expression, self.text)])

    def response(self) -> Response:
        return fhir_response(self.outcome(), self.status, headers=self.headers)


def error_issue(status: int, code: str, diagnostics: str, expression: str | None = None,
                text: str | None = None) -> dict[str, Any]:
    """The issue of a refusal: the sentence staff read, what was wrong for the developer, the field."""
    issue: dict[str, Any] = {"severity": "error" if status < 500 else "fatal", "code": code,
                             "details": {"text": text or staff_text(status)}, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return issue


def finding_issue(f: Finding) -> dict[str, Any]:
    """One finding as an issue: the rule code in ``details.coding``, the sentence staff read in
    ``details.text``, the remedy and the channel as extensions."""
    extensions = []
    if f.remedy:
        extensions.append({"url": REMEDY, "valueString": f.remedy})
    if f.channel:
        extensions.append({"url": CHANNEL, "valueCode": f.channel})
    issue: dict[str, Any] = {
        "severity": SEVERITY[f.severity],
        "code": "business-rule" if f.blocks else "informational",
        "details": {"coding": [{"system": RULE_SYSTEM, "code": f.code}], "text": f.message},
    }
    if extensions:
        issue = {"extension": extensions, **issue}
    if f.plugin:
        issue["diagnostics"] = f"found by {f.plugin}" + (f"; lowered by override: {f.override}" if f.override else "")
    return issue


def operation_outcome(issues: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An OperationOutcome; FHIR requires at least one issue, so none becomes 'all is well'."""
    return {"resourceType": "OperationOutcome",
            "issue": list(issues) or [{"severity": "information", "code": "informational",
                                       "details": {"text": "Nothing to report."}, "diagnostics": "no findings"}]}


def note(text: str) -> dict[str, Any]:
    """An informational issue: a sentence about what was done."""
    return {"severity": "information", "code": "informational", "details": {"text": text}, "diagnostics": text}


def findings_outcome(findings: Iterable[Finding], notes: Iterable[str] = ()) -> dict[str, Any]:
    return operation_outcome([*(finding_issue(f) for f in findings), *(note(n) for n in notes)])


def dumps(resource: Any) -> bytes:
    return orjson.dumps(resource)


def fhir_response(resource: Any, status: int = 200, *, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(resource), status_code=status, media_type=FHIR_JSON, headers=dict(headers or {}))
