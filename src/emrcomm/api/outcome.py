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


class ApiError(Exception):
    """A request the API refuses: ``status`` (4xx, or 5xx for what is not the client's fault),
    an issue ``code`` from FHIR's IssueType (invalid, security, not-found, …) and a sentence
    saying what was wrong, where, and what to do."""

    def __init__(self, status: int, code: str, diagnostics: str, *, expression: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression
        self.headers = dict(headers or {})

    def outcome(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": "error" if self.status < 500 else "fatal", "code": self.code,
                                 "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
        return operation_outcome([issue])

    def response(self) -> Response:
        return fhir_response(self.outcome(), self.status, headers=self.headers)


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
                                       "diagnostics": "no findings"}]}


def note(text: str) -> dict[str, Any]:
    """An informational issue: a sentence about what was done."""
    return {"severity": "information", "code": "informational", "diagnostics": text}


def findings_outcome(findings: Iterable[Finding], notes: Iterable[str] = ()) -> dict[str, Any]:
    return operation_outcome([*(finding_issue(f) for f in findings), *(note(n) for n in notes)])


def dumps(resource: Any) -> bytes:
    return orjson.dumps(resource)


def fhir_response(resource: Any, status: int = 200, *, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(resource), status_code=status, media_type=FHIR_JSON, headers=dict(headers or {}))
