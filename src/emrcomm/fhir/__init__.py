"""The FHIR edges: CommunicationRequest in, Communication and Bundle out (R4 wire format).

The core never passes FHIR objects around. Input is checked with the fhir.resources R4B model
before it is read; output is built as plain JSON and checked by the tests against both the R4B
model and the official R4 JSON Schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from emrcomm.errors import RequestError, SubjectMismatch
from emrcomm.limits import DEFAULT as DEFAULT_LIMITS
from emrcomm.limits import (
    FHIR_ID,
    Limits,
    check_depth,
    check_identifier,
    check_identifiers,
    check_time,
    loads_json,
)
from emrcomm.model import Category, Identifier, Record, Request, Sensitivity

BASE = "http://emrcomm.org/fhir"
EXT = f"{BASE}/StructureDefinition/"
CATEGORY_SYSTEM = f"{BASE}/CodeSystem/category"
RULE_SYSTEM = f"{BASE}/CodeSystem/rule"
RECORD_ID_SYSTEM = f"{BASE}/NamingSystem/record-id"
REQUEST_ID_SYSTEM = f"{BASE}/NamingSystem/request-id"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

MEDIUM_TO_CHANNEL = {"SMSWRIT": "sms", "EMAILWRIT": "email", "ONLINEWRIT": "portal"}
URGENT = {"urgent", "asap", "stat"}


CR = "CommunicationRequest"
_PLAIN_REF = re.compile(r"^Patient/[A-Za-z0-9\-.]{1,64}$")


def is_literal_ref(ref: str) -> bool:
    """Whether ``ref`` names a patient by link (``Patient/<id>``), which a record, a log line and
    an audit entry may carry as it is; a search (``Patient?identifier=system|value``) may not."""
    return bool(_PLAIN_REF.match(ref))


# What a search or an identifier carries (Patient?identifier=system|value): never in a link.
_SEARCH_MARKS = re.compile(r"[?|=&#\s]")


def is_patient_link(ref: str) -> bool:
    """Whether ``ref`` links to a patient (``Patient/<id>``) rather than searching for one: what
    a directory must answer and a record may name. Looser than :func:`is_literal_ref`: an EMR's
    own ids outside FHIR's (``Patient/12345_A``) still name a patient; the audit log keys them. A
    path (``Patient/1/_history/2``, ``Patient/..``) is not one patient's link."""
    id_ = ref[8:] if ref.startswith("Patient/") else ""
    return bool(id_) and id_ not in (".", "..") and "/" not in id_ and not _SEARCH_MARKS.search(id_)


def described_ref(ref: str) -> str:
    """``ref`` as a finding shows it: ``Patient/<id>`` as it is; an identifier by its system only
    (``identifier urn:oid:…|…``): its value may be a health number, and the finding is filed."""
    if is_literal_ref(ref):
        return ref
    token = ref.removeprefix("Patient?identifier=") if ref.startswith("Patient?") else ref
    system, bar, _value = token.partition("|")
    if bar and system and "&" not in system and "?" not in system:
        return f"identifier {system}|…"
    return "an identifier or reference not shown here"


def safe_ref(ref: str, secret: bytes | None = None) -> str:
    """A patient reference fit for logs and the audit log: ``Patient/<id>`` as it is; anything
    else (``Patient?identifier=system|value`` carries an MRN or a health number) as a digest,
    keyed with ``secret`` when there is one: a bare SHA-256 of a ten-digit health number is found
    again by hashing every number, in minutes (the host keys it with a secret of its audit key)."""
    if is_literal_ref(ref):
        return ref
    text = ref.encode("utf-8")
    digest = hmac.new(secret, text, hashlib.sha256) if secret is not None else hashlib.sha256(text)
    return "Patient#" + digest.hexdigest()[:16]


def parse_request(data: str | bytes | Mapping[str, Any], *, validate: bool = True,
                  limits: Limits = DEFAULT_LIMITS, zone: dt.tzinfo = dt.UTC,
                  same_patient: Callable[[Request, str], bool] | None = None) -> Request:
    """A Request from a FHIR R4 CommunicationRequest (JSON text or a decoded dict).

    Raises RequestError naming the field and what to do; nothing has been sent or filed.
    ``validate=False`` skips the check against the FHIR models (~1 ms a request): only for
    a request this host wrote itself (``request_to_fhir``: the outbox's copy), never for
    input; every field this function reads is still checked. ``limits`` bound the document's
    size and depth and the request's text (emrcomm.limits). ``zone`` is the clinic's (its first
    ``clinic.time_zones``): an ``occurrence`` given as a day, without a time, is that day there,
    from its start (``occurrenceDateTime``, ``occurrencePeriod.start``) to its end (``.end``).

    A ``subject`` named by identifier (``{"identifier": {"system": …, "value": …}}``) is read as
    the search the Python API takes (``Patient?identifier=system|value``): the host resolves it
    through the directory as any other. One named by reference and identifier both is for the
    reference's patient once ``same_patient(request, search)`` (the host's directory) says the
    identifier names that patient too; SubjectMismatch when it does not, RequestError without it.
    """
    if isinstance(data, (str, bytes)):
        data = loads_json(data, what="request", limits=limits)
    elif isinstance(data, Mapping):
        check_depth(data, what="request", limits=limits)
    if not isinstance(data, Mapping):
        raise RequestError(f"request must be a JSON object (a CommunicationRequest), not {type(data).__name__}")
    kind = data.get("resourceType")
    if kind == "Communication":
        raise RequestError(
            "resourceType is 'Communication'; expected 'CommunicationRequest': a Communication records a "
            "message that was already sent; to ask for one to be sent, post a CommunicationRequest",
            expression=f"{CR}.resourceType")
    if kind != "CommunicationRequest":
        raise RequestError(f"resourceType is {kind!r}; expected 'CommunicationRequest'", expression=f"{CR}.resourceType")
    _check_no_nulls(data)
    if validate:
        _check_r4(data)
    if data.get("status") != "active":
        raise RequestError(f"status is {data.get('status')!r}: only an 'active' CommunicationRequest is sent",
                           expression=f"{CR}.status")
    _check_modifiers(data)

    subject, search = _subject(data)

    category = _category(data)
    text = "\n".join(p["contentString"] for p in data.get("payload", ()) if p.get("contentString")) or None
    extensions = data.get("extension", ())
    template = _extension_value(extensions, "template")
    if not text and not template:
        raise RequestError(
            "neither text nor template: give payload[0].contentString, "
            f"or name a template with the extension {EXT}template", expression=f"{CR}.payload", missing=True)
    variables, where = _variables(extensions)
    appointment = variables.get("appointment")
    if appointment is not None and not isinstance(appointment, dt.datetime):
        raise RequestError("variable 'appointment' must be a valueDateTime with a time and a time zone",
                           expression=where["appointment"])

    not_before = expires = None
    if "occurrenceDateTime" in data:
        not_before = _datetime(data["occurrenceDateTime"], "occurrenceDateTime", f"{CR}.occurrenceDateTime",
                               zone=zone)
    if "occurrencePeriod" in data:
        period = data["occurrencePeriod"]
        not_before = (_datetime(period["start"], "occurrencePeriod.start", f"{CR}.occurrencePeriod.start",
                                zone=zone) if "start" in period else None)
        expires = (_datetime(period["end"], "occurrencePeriod.end", f"{CR}.occurrencePeriod.end", zone=zone,
                             day_ends=True) if "end" in period else None)

    restricted = any(
        c.get("system") == CONFIDENTIALITY and c.get("code") in ("R", "V")
        for c in (data.get("meta") or {}).get("security", ())
    )
    channel = None
    for medium in data.get("medium", ()):
        for coding in medium.get("coding", ()):
            if coding.get("system") == PARTICIPATION_MODE and coding.get("code") in MEDIUM_TO_CHANNEL:
                channel = MEDIUM_TO_CHANNEL[coding["code"]]
    request_id, based_on = _identity(data)
    identifiers = _identifiers(data)
    who = data.get("requester") or data.get("sender") or {}
    sender, sender_name = who.get("reference"), who.get("display")
    request = Request(
        patient_ref=subject,
        category=category,
        id=request_id,
        text=text,
        template=template,
        variables=variables,
        sensitivity=Sensitivity.RESTRICTED if restricted else Sensitivity.NORMAL,
        priority="urgent" if data.get("priority") in URGENT else "routine",
        appointment=appointment,
        not_before=not_before,
        expires=expires,
        sender=sender,
        based_on=based_on,
        channel=channel,
        sender_name=(sender_name.strip()[:200] or None) if isinstance(sender_name, str) else None,
        identifier=identifiers[0] if identifiers else None,
        other_identifiers=identifiers[1:],
    )
    if search is not None:
        # Named twice: sent to the patient the reference names, once the directory finds that
        # one by the identifier too; which one the EMR meant cannot be told otherwise.
        if same_patient is None:
            raise RequestError("subject gives both a reference and an identifier, and here there is no directory to "
                               "check that they name one patient: give the reference alone",
                               expression=f"{CR}.subject")
        if not same_patient(request, search):
            raise SubjectMismatch(
                f"subject names {described_ref(subject)} and {described_ref(search)}, and the clinic's directory "
                "does not find the same patient by both: nothing was sent; give the reference or the identifier "
                "alone, or correct the one that is wrong")
    return request


def identifier_search(system: str, value: str) -> str:
    """The search for the patient with identifier ``system|value`` (``Patient?identifier=system|value``,
    the form the Python API takes and the directory reads), its parts escaped as a URL's query is:
    a value with ``&``, ``%`` or ``+`` in it reads as written."""
    return f"Patient?identifier={quote(system, safe=':/')}|{quote(value, safe='')}"


def _subject(data: Mapping[str, Any]) -> tuple[str, str | None]:
    """The patient a request is for, and the one its identifier names when it has a reference too:
    ``subject.reference`` (``Patient/<id>``), else the search ``subject.identifier`` makes
    (:func:`identifier_search`); with both, (reference, search)."""
    subject = data.get("subject") or {}
    if not isinstance(subject, Mapping):
        raise RequestError("subject must be a Reference: {\"reference\": \"Patient/<id>\"}", expression=f"{CR}.subject")
    kind = subject.get("type")
    if kind is not None and kind not in ("Patient", "http://hl7.org/fhir/StructureDefinition/Patient"):
        raise RequestError(f"subject.type is {str(kind)[:60]!r}: a message is to a patient ('Patient')",
                           expression=f"{CR}.subject.type")
    reference: str | None = subject.get("reference") or None
    identifier = subject.get("identifier")
    if reference is not None and (not isinstance(reference, str) or not reference.startswith("Patient/")
                                  or len(reference) <= len("Patient/")):
        raise RequestError(f"subject {str(reference)[:80]!r} is not a Patient reference: expected 'Patient/<id>'",
                           expression=f"{CR}.subject")
    if identifier is None:
        if reference is None:
            raise RequestError('subject is missing: name the patient as "subject": {"reference": "Patient/<id>"}, '
                               'or by one of their identifiers: "subject": {"identifier": {"system": "…", '
                               '"value": "…"}}', expression=f"{CR}.subject", missing=True)
        return reference, None
    where = f"{CR}.subject.identifier"
    if not isinstance(identifier, Mapping):
        raise RequestError("subject.identifier must be an Identifier (a system and a value)", expression=where)
    # Both are needed: a value alone may be any system's (an MRN of another clinic's, say).
    for part in ("system", "value"):
        if not isinstance(identifier.get(part), str) or not identifier[part]:
            raise RequestError(f"subject.identifier has no {part}: name the patient's identifier by its system and "
                               "its value", expression=f"{where}.{part}", missing=part not in identifier)
    system, value = identifier["system"], identifier["value"]
    try:
        check_identifier(system, value, "subject.identifier")
    except RequestError as exc:
        raise RequestError(str(exc), expression=where) from None
    if "|" in system:
        raise RequestError("subject.identifier: its system contains '|', which a search by identifier reads as "
                           "the end of the system", expression=f"{where}.system")
    search = identifier_search(system, value)
    return (reference, search) if reference is not None else (search, None)


def _check_no_nulls(data: Mapping[str, Any]) -> None:
    """FHIR JSON has no null values (R4 JSON representation): a field is there or left out. The
    R4B model lets ``"payload": null`` through, which nothing after it could read."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if value is None:
            raise RequestError(f"{where or 'the request'} is null; FHIR JSON has no nulls: leave the field out",
                               expression=_path(where))
        if isinstance(value, Mapping):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))


def _check_modifiers(data: Mapping[str, Any]) -> None:
    """A modifier changes what the request means, so one emrcomm does not act on is refused, never
    skipped (FHIR: a resource with a modifier not understood SHALL NOT be processed).
    ``doNotPerform: true`` asks that the message not be sent."""
    if data.get("doNotPerform") is True:
        raise RequestError("doNotPerform is true: the request asks that the message NOT be sent, so nothing is "
                           "sent; to send it, leave doNotPerform out", expression=f"{CR}.doNotPerform")
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, Mapping):
            found = value.get("modifierExtension")
            if found:
                url = next((e.get("url") for e in found if isinstance(e, Mapping)), None)
                raise RequestError(f"{where + '.' if where else ''}modifierExtension {str(url)[:120]!r} changes what "
                                   "the request means and emrcomm does not read it, so nothing is sent: leave it out",
                                   expression=_path(f"{where + '.' if where else ''}modifierExtension"))
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))


def _check_r4(data: Mapping[str, Any]) -> None:
    from fhir.resources.R4B.communicationrequest import CommunicationRequest
    from pydantic import ValidationError

    try:
        CommunicationRequest.model_validate(dict(data))
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(resource)'}: {_r4_problem(e)}" for e in errors[:3]
        )
        first = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in errors[0]["loc"]) if errors else ""
        # A field R4 requires and the request lacks (status) is reported as missing, as ours are.
        missing = bool(errors) and str(errors[0]["type"]).rsplit(".", 1)[-1] == "missing"
        raise RequestError(f"not a valid FHIR R4 CommunicationRequest: {problems}",
                           expression=_path(first.lstrip(".")), missing=missing) from None


# The model says only "DateTime value string does not match spec regex." of a time without its
# zone or its seconds, the mistakes an EMR makes: say what FHIR asks for instead.
_R4_FORMATS = {
    "DateTime value string does not match spec regex.":
        "is not a FHIR dateTime: write a date (2026-11-25) or a date and a time with seconds and a time "
        "zone (2026-11-25T14:30:00-05:00, or Z for UTC)",
    "Date value string does not match spec regex.": "is not a FHIR date: write YYYY-MM-DD (2026-11-25)",
    "Instant value string does not match spec regex.":
        "is not a FHIR instant: write a date and a time with seconds and a time zone (2026-11-25T14:30:00Z)",
}


def _r4_problem(error: Mapping[str, Any]) -> str:
    cause = (error.get("ctx") or {}).get("error")
    plain = _R4_FORMATS.get(str(cause)) if cause is not None else None
    if plain is None:
        return str(error["msg"])
    return f"{str(error.get('input'))[:40]!r} {plain}"


def _category(data: Mapping[str, Any]) -> Category:
    known = ", ".join(c.value for c in Category if not c.answers_patient)
    codes = [
        coding.get("code")
        for concept in data.get("category", ())
        for coding in concept.get("coding", ())
        if coding.get("system") == CATEGORY_SYSTEM
    ]
    if not codes:
        others = [
            f"{coding.get('system')}|{coding.get('code')}"
            for concept in data.get("category", ())
            for coding in concept.get("coding", ())
        ]
        if others:
            raise RequestError(
                f"category {', '.join(others)} is unknown: use a coding with system {CATEGORY_SYSTEM} "
                f"and one of: {known}", expression=f"{CR}.category"
            )
        raise RequestError(f"category is missing: add a coding with system {CATEGORY_SYSTEM} and one of: {known}",
                           expression=f"{CR}.category", missing=True)
    try:
        category = Category(codes[0])
    except ValueError:
        raise RequestError(f"category {codes[0]!r} is unknown; choose one of: {known}",
                           expression=f"{CR}.category") from None
    if category.answers_patient:
        raise RequestError(f"category {category.value!r} is emrcomm's own answer to a patient's message (STOP, START, "
                           f"HELP, a reply): an EMR does not request it; choose one of: {known}",
                           expression=f"{CR}.category")
    return category


def _extension_value(extensions: Iterable[Mapping[str, Any]], name: str) -> Any:
    for ext in extensions:
        if ext.get("url") == EXT + name:
            for key, value in ext.items():
                if key.startswith("value"):
                    return value
    return None


_VALUE_KEYS = ("valueString", "valueDateTime", "valueDate", "valueInteger", "valueDecimal", "valueBoolean", "valueCode")


def _variables(extensions: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The variables by name, and each one's FHIRPath (the n-th variable extension)."""
    out: dict[str, Any] = {}
    paths: dict[str, str] = {}
    variables = (ext for ext in extensions if ext.get("url") == EXT + "variable")
    for n, ext in enumerate(variables):
        path = f"{CR}.extension('{EXT}variable')[{n}]"
        parts = {e.get("url"): e for e in ext.get("extension", ())}
        name = (parts.get("name") or {}).get("valueString")
        value_ext = parts.get("value") or {}
        kinds = [k for k in _VALUE_KEYS if k in value_ext]
        if not name or not kinds:
            raise RequestError(
                f"extension {EXT}variable needs a 'name' (valueString) and a 'value' sub-extension "
                f"with one of {', '.join(_VALUE_KEYS)}", expression=path
            )
        kind = kinds[0]
        value = value_ext[kind]
        if kind == "valueDateTime" and isinstance(value, str) and "T" not in value:
            # A dateTime without a time is a day, not midnight in UTC: an appointment given so was
            # sent as "Tue, Dec 8 at 7:00 p.m." to a Toronto patient booked on the 9th.
            value = _date(value, f"variable {name!r}", f"{path}.extension('value').value")
        elif kind == "valueDateTime":
            value = _datetime(value, f"variable {name!r}", f"{path}.extension('value').value")
        elif kind == "valueDate":
            value = _date(value, f"variable {name!r}", f"{path}.extension('value').value")
        out[name] = value
        paths[name] = path
    return out, paths


def _date(value: Any, where: str, path: str) -> dt.date:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}(-[0-9]{2}){0,2}", value):
        raise RequestError(f"{where}: {value!r} is not a FHIR date", expression=path)
    if len(value) < 10:  # FHIR allows "1980" and "1980-04"; a message needs the day
        raise RequestError(f"{where}: {value!r} is a partial date; give the whole date as YYYY-MM-DD", expression=path)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{where}: {value!r} is not a real date", expression=path) from None


def _datetime(value: Any, where: str, path: str, *, zone: dt.tzinfo = dt.UTC, day_ends: bool = False) -> dt.datetime:
    """A FHIR dateTime with a time and a zone; one that is only a day (2026-12-08) is the start of
    that day in ``zone`` (the clinic's: midnight UTC was 7 p.m. the evening before in Toronto), or
    with ``day_ends`` its end (the start of the next)."""
    if not isinstance(value, str):  # the R4B model takes a number as a time stamp; FHIR does not
        raise RequestError(f"{where}: {value!r} is not a FHIR dateTime (a string such as 2026-11-24T10:30:00-05:00)",
                           expression=path)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{where}: {value!r} is not a FHIR dateTime", expression=path) from None
    if parsed.tzinfo is None:
        if "T" in value:
            raise RequestError(f"{where}: {value!r} has a time but no time zone; add one (e.g. -05:00)",
                               expression=path)
        day = parsed.date() + dt.timedelta(days=1 if day_ends else 0)
        parsed = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    try:
        check_time(parsed, where)
    except RequestError as exc:
        raise RequestError(str(exc), expression=path) from None
    return parsed


def _identity(data: Mapping[str, Any]) -> tuple[str, str | None]:
    if data.get("id"):
        if not isinstance(data["id"], str) or not FHIR_ID.fullmatch(data["id"]):
            raise RequestError(f"id {str(data['id'])[:80]!r} is not a FHIR id: 1 to 64 letters, digits, '-' or '.'",
                               expression=f"{CR}.id")
        return data["id"], f"CommunicationRequest/{data['id']}"
    for ident in data.get("identifier", ()):
        if ident.get("value"):
            return derived_request_id(Identifier(ident.get("system"), ident["value"])), None
    if data.get("identifier"):
        # A random id would make the same request, sent again after a timeout, a second message.
        raise RequestError("identifier has no value: give the EMR's own id for the request as identifier[0].value "
                           "(or the request's id), so that sending it again sends nothing twice",
                           expression=f"{CR}.identifier")
    return uuid.uuid4().hex, None


def derived_request_id(identifier: Identifier) -> str:
    """The request id of a request sent with ``identifier`` and no id of its own."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{identifier.system or ''}|{identifier.value}").hex


def _identifiers(data: Mapping[str, Any]) -> tuple[Identifier, ...]:
    """The EMR's own ids for the request: its identifiers with a value, in order (the first is
    the one its id is derived from when it has no id); at most ``MAX_IDENTIFIERS``."""
    found = tuple(Identifier(ident.get("system"), ident["value"])
                  for ident in data.get("identifier", ()) if ident.get("value"))
    try:
        check_identifiers(found)
    except RequestError as exc:
        raise RequestError(str(exc), expression=f"{CR}.identifier") from None
    return found


def _path(where: str) -> str:
    """A field's place as the checks write it (``payload[0].contentString``) as a FHIRPath."""
    return f"{CR}.{where}" if where else CR


def request_to_fhir(request: Request) -> dict[str, Any]:
    """A CommunicationRequest for a Request (the inverse of parse_request, for exports and tests)."""
    res: dict[str, Any] = {
        "resourceType": "CommunicationRequest",
        "id": request.id,
        "status": "active",
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": request.category.value}]}],
        "priority": request.priority,
        "subject": {"reference": request.patient_ref},
    }
    if request.identifiers:
        res["identifier"] = [identifier_json(i) for i in request.identifiers]
    if request.text:
        res["payload"] = [{"contentString": request.text}]
    if request.not_before or request.expires:  # the outbox worker honours the expiry it carries
        res["occurrencePeriod"] = {k: fhir_datetime(v) for k, v in (("start", request.not_before),
                                                                    ("end", request.expires)) if v}
    extensions: list[dict[str, Any]] = []
    if request.template:
        extensions.append({"url": EXT + "template", "valueString": request.template})
    for name, value in request.variables.items():
        extensions.append({"url": EXT + "variable", "extension": [
            {"url": "name", "valueString": name}, {"url": "value", **_typed_value(value)}]})
    if extensions:
        res["extension"] = extensions
    if request.sensitivity is Sensitivity.RESTRICTED:
        res["meta"] = {"security": [{"system": CONFIDENTIALITY, "code": "R"}]}
    return res


def identifier_json(identifier: Identifier) -> dict[str, str]:
    """A FHIR Identifier (``system`` left out when there is none)."""
    if identifier.system is None:
        return {"value": identifier.value}
    return {"system": identifier.system, "value": identifier.value}


def _typed_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    if isinstance(value, dt.datetime):
        return {"valueDateTime": fhir_datetime(value)}
    if isinstance(value, dt.date):
        return {"valueDate": value.isoformat()}
    return {"valueString": str(value)}


def fhir_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def communication(record: Record) -> dict[str, Any]:
    """The FHIR R4 Communication filed for a record (plain JSON, R4 wire format)."""
    req = record.request
    res: dict[str, Any] = {
        "resourceType": "Communication",
        "id": record.id,
        "identifier": [{"system": RECORD_ID_SYSTEM, "value": record.id}],
    }
    if req.based_on:
        res["basedOn"] = [{"reference": req.based_on}]
    else:
        res["basedOn"] = [{"identifier": {"system": REQUEST_ID_SYSTEM, "value": req.id}}]
    if record.in_response_to:
        res["inResponseTo"] = [{"reference": record.in_response_to}]
    res["status"] = record.status
    if record.reasons:
        from emrcomm.rules import RULES

        res["statusReason"] = {
            "coding": [
                {"system": RULE_SYSTEM, "code": code, **({"display": RULES[code].remedy} if code in RULES else {})}
                for code in record.reasons
            ],
            # One sentence per distinct reason: candidates tried in turn often hit the same rule.
            "text": " ".join(dict.fromkeys(f.message for f in record.findings if f.code in record.reasons))
            or ", ".join(record.reasons),
        }
    res["category"] = [{"coding": [{"system": CATEGORY_SYSTEM, "code": req.category.value}]}]
    res["priority"] = "urgent" if req.priority == "urgent" else "routine"
    if record.medium:
        res["medium"] = [{"coding": [{"system": PARTICIPATION_MODE, "code": record.medium}]}]
    # A request for a patient nobody found names none (see pipeline.decide.unnamed).
    patient = [{"reference": req.patient_ref}] if req.patient_ref else []
    if patient:
        res["subject"] = patient[0]
    clinic: dict[str, str] | None = {"reference": req.sender} if req.sender else None
    if clinic is not None and req.sender_name:
        clinic["display"] = req.sender_name
    elif clinic is None and (req.sender_name or record.sender_display):
        clinic = {"display": req.sender_name or record.sender_display or ""}
    if record.role == "reply":
        # The patient wrote to the clinic: the direction turns around.
        if clinic:
            res["recipient"] = [clinic]
        if patient:
            res["sender"] = patient[0]
    else:
        if patient:
            res["recipient"] = patient
        if clinic:
            res["sender"] = clinic
    if record.sent:
        res["sent"] = fhir_datetime(record.sent)
    if record.received:
        res["received"] = fhir_datetime(record.received)
    payload: list[dict[str, Any]] = []
    if record.text:
        payload.append({"contentString": record.text})
    if record.payload_reference:
        payload.append({"contentReference": {"reference": record.payload_reference}})
    if payload:
        res["payload"] = payload
    notes = [f"{f.code} ({f.severity.value}): {f.message}" for f in record.findings if not f.blocks]
    notes += [f"{f.code} override: {f.override}" for f in record.findings if f.override]
    if record.hold_until:
        notes.append(f"held until {fhir_datetime(record.hold_until)}")
    if record.address and record.channel:
        notes.append(f"{record.role} by {record.channel} {'from' if record.role == 'reply' else 'to'} {record.address}")
    notes += record.notes
    if notes:
        res["note"] = [{"text": n} for n in notes]
    return res


def searchset(resources: Iterable[Mapping[str, Any]], outcomes: Callable[[], Iterable[Mapping[str, Any]]] = tuple,
              ) -> dict[str, Any]:
    """A FHIR searchset Bundle of the given resources, then the entries ``outcomes()`` gives once
    they are read (:func:`unreadable_entry`: what the search could not show); ``total`` counts
    both, as every one matched."""
    entries = []
    for res in resources:
        entry: dict[str, Any] = {"resource": dict(res), "search": {"mode": "match"}}
        with contextlib.suppress(ValueError):  # ids that are not UUIDs get no fullUrl
            entry = {"fullUrl": f"urn:uuid:{uuid.UUID(hex=str(res.get('id')))}", **entry}
        entries.append(entry)
    left_out = [dict(e) for e in outcomes()]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries) + len(left_out)}
    if entries or left_out:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries + left_out
    return bundle


def unreadable_entry(record_id: str, reason: str, *, newer: bool) -> dict[str, Any]:
    """The searchset entry (search.mode outcome: FHIR R4's place for a search's warnings) that says
    Communication ``record_id`` matched but was left out: its stored facts cannot be read by this
    release (``reason``: RecordUnreadable's words, never the facts' text). ``newer``: a newer
    release wrote it and shows it; else it is damaged."""
    why = ("a newer release of emrcomm wrote it; that release shows it" if newer else
           "its stored record is damaged; the clinic's administrator can restore it from a backup")
    return {"resource": {"resourceType": "OperationOutcome", "issue": [{
        "severity": "warning", "code": "incomplete",
        "details": {"text": f"Communication {record_id} matched but is not shown: {why}."},
        "diagnostics": f"Communication {record_id}: {reason}"}]}, "search": {"mode": "outcome"}}


def validate_resource(resource: Mapping[str, Any]) -> None:
    """Check a resource against its fhir.resources R4B model; raises pydantic's ValidationError."""
    import importlib

    kind = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    getattr(module, kind).model_validate(dict(resource))
