"""Generated hostile input for the FHIR API (the whole ``emrcomm serve`` app, in-process, with a
valid token unless the input says otherwise): FHIR-shaped JSON mutated field by field, raw
bytes, wrong content types, hostile headers and query strings, on every route.

Whatever comes in: no response of 500 or more, no traceback, a 4xx always an OperationOutcome
(the token endpoint: an OAuth error), and nothing sent, queued or filed for a request refused.

The budget is fixed for CI (derandomized: 1,000 generated inputs, ~1,700 requests, a search input
making five). ``EMRCOMM_FUZZ_EXAMPLES=N`` gives this file N inputs (fresh random draws) for a longer
hunt; docs/api.md records a run of more than 5,000 requests.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api_kit import ApiClient, token_form
from emrcomm.config import load_config
from emrcomm.host import Host
from emrcomm.testing import FixedClock
from emrcomm.web import create_app
from support import EXT, fhir_request, write_config
from test_hostile_fuzz import ErrorLog, json_values, texts

TOTAL = int(os.environ.get("EMRCOMM_FUZZ_EXAMPLES", "0")) or None
CI_BUDGET = 1000
SHARES = {"create": 0.3, "check": 0.1, "batch": 0.1, "consent": 0.1, "subscription": 0.08, "search": 0.17,
          "token": 0.08, "any": 0.07}
COUNTED: dict[str, int] = {}


def fuzz(surface: str) -> Callable[[Any], Any]:
    examples = max(10, round((TOTAL or CI_BUDGET) * SHARES[surface]))
    return settings(max_examples=examples, deadline=None, derandomize=TOTAL is None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    total = sum(COUNTED.values())
    print(f"\napi fuzz: {total} requests: " + ", ".join(f"{k} {v}" for k, v in sorted(COUNTED.items()))
          + f"; answers by status: {dict(sorted(STATUSES.items()))}")


STATUSES: dict[int, int] = {}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiClient]:
    tmp = tmp_path_factory.mktemp("api-fuzz")
    write_config(tmp, "\n[api]\nnotify = false\n")
    host = Host(load_config(tmp / "emrcomm.toml"), clock=FixedClock())
    client = ApiClient(host, create_app(host))
    yield client
    client.close()
    host.close()


@pytest.fixture(scope="module")
def errors() -> Iterator[ErrorLog]:
    import logging

    handler = ErrorLog()
    logging.getLogger().addHandler(handler)
    logging.getLogger("emrcomm.api").addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    logging.getLogger("emrcomm.api").removeHandler(handler)


def sends(host: Host) -> tuple[Any, ...]:
    """What would show that something went out or will: the sinks, the outbox, accepted legs."""
    base = host.config.base_dir / "out"
    sms = base / "sms.jsonl"
    accepted = host.storage.db.query("SELECT COUNT(*) AS n FROM events WHERE kind = 'accepted'")[0]["n"]
    return (sms.stat().st_size if sms.exists() else 0, len(list((base / "email").glob("*"))) if (base / "email").exists()
            else 0, tuple(sorted(host.storage.outbox.counts().items())), accepted)


def state(host: Host) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was (a blocked one files a not-done record)."""
    db = host.storage.db
    return (sends(host), db.query("SELECT COUNT(*) AS n FROM records")[0]["n"],
            db.query("SELECT COUNT(*) AS n FROM consent_events")[0]["n"],
            db.query("SELECT COUNT(*) AS n FROM api_subscriptions")[0]["n"])


def call(api: ApiClient, errors: ErrorLog, surface: str, method: str, path: str, *, body: bytes = b"",
         headers: list[tuple[bytes, bytes]] | None = None, query: str = "", token: bool = True) -> int:
    COUNTED[surface] = COUNTED.get(surface, 0) + 1
    before_state = state(api.host)
    before_errors = len(errors.seen)
    sent_headers = [*(api.auth() if token else []), *(headers or [])]
    answer = api.http.request(method, path, body=body, headers=sent_headers, query=query.encode("utf-8", "surrogatepass"),
                              timeout=30)
    STATUSES[answer.status_code] = STATUSES.get(answer.status_code, 0) + 1
    assert answer.status_code < 500, (answer.status_code, method, path, body[:300], answer.text[:500])
    assert "Traceback" not in answer.text
    assert errors.seen[before_errors:] == []
    if (method, path) == ("POST", "/fhir/auth/token"):  # OAuth's own error format (RFC 6749 5.2)
        assert answer.status_code == 200 or set(json.loads(answer.content)) == {"error", "error_description"}
    elif answer.status_code >= 400:
        data = json.loads(answer.content)
        assert data["resourceType"] == "OperationOutcome" and data["issue"]
    if path != "/fhir/auth/token" and answer.content[:1] == b"{":
        for issue in issues(json.loads(answer.content)):  # docs/api.md: staff are shown details.text
            assert issue.get("details", {}).get("text"), (answer.status_code, method, path, issue)
    if answer.status_code == 422 and path == "/fhir/CommunicationRequest":
        assert sends(api.host) == before_state[0]  # blocked: a not-done record, nothing sent
    elif answer.status_code >= 400:
        assert state(api.host) == before_state
    return answer.status_code


def issues(found: Any) -> list[dict[str, Any]]:
    """Every issue of every OperationOutcome in an answer (in a Bundle, a batch entry's outcome)."""
    if isinstance(found, list):
        return [i for item in found for i in issues(item)]
    if not isinstance(found, dict):
        return []
    if found.get("resourceType") == "OperationOutcome":
        return list(found.get("issue", ()))
    return [i for value in found.values() for i in issues(value)]


# Strategies --------------------------------------------------------------------------------------------------
FIELDS = ["resourceType", "id", "status", "category", "subject", "payload", "extension", "occurrenceDateTime",
          "occurrencePeriod", "medium", "meta", "priority", "identifier", "requester", "sender", "contained",
          "modifierExtension", "text", "basedOn", "reasonCode"]
PATIENTS = ["Patient/on-en", "Patient/qc-fr", "Patient/stopped", "Patient/none", "Patient/fl", "Patient/ny",
            "Patient/missing", "Patient/", "Group/1", "Patient/a b", "patient/on-en", "Patient/" + "x" * 70]
CATEGORIES = ["appointment-reminder", "results-available", "clinical", "invoice", "marketing", "nope", "", "CLINICAL"]
DATES = ["2026-11-24T10:30:00-05:00", "2026-11-24", "2026", "2026-13-45T99:00:00Z", "2026-11-24T10:30:00", "yesterday",
         "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-11-24T10:30:00+99:00"]
plausible = st.one_of(st.sampled_from(PATIENTS).map(lambda p: {"reference": p}),
                      st.sampled_from(CATEGORIES).map(lambda c: [{"coding": [{"system": EXT.replace("StructureDefinition/",
                                                                                                     "CodeSystem/category"),
                                                                              "code": c}]}]),
                      st.sampled_from(DATES), st.sampled_from(DATES).map(lambda d: {"start": d, "end": d}),
                      texts.map(lambda t: [{"contentString": t}]),
                      st.sampled_from(["SMSWRIT", "EMAILWRIT", "ONLINEWRIT", "FAXWRIT"]).map(
                          lambda m: [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                                                  "code": m}]}]),
                      st.sampled_from(["R", "V", "N", "X"]).map(
                          lambda s: {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                                   "code": s}]}),
                      json_values)


def base_request(rid: str, patient: str = "Patient/on-en") -> dict[str, Any]:
    return fhir_request(patient, "appointment-reminder", template="appointment-reminder", rid=rid,
                        variables={"appointment": ("valueDateTime", "2026-11-24T10:30:00-05:00")})


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    request = base_request(draw(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)), draw(st.sampled_from(PATIENTS[:6])))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(FIELDS) | texts)
        if draw(st.booleans()) and key in request:
            del request[key]
        else:
            request[key] = draw(plausible)
    if draw(st.integers(0, 4)) == 0:  # a variable or the template itself
        ext = draw(st.sampled_from(["template", "variable", "nope"]))
        kept = request["extension"] if isinstance(request.get("extension"), list) else []
        request["extension"] = [*kept, {"url": EXT + ext, **draw(st.dictionaries(st.sampled_from(
                                    ["valueString", "valueDateTime", "valueInteger", "extension", "url"]),
                                    plausible, max_size=2))}]
    return request


def encoded(value: Any, draw_ascii: bool) -> bytes:
    return json.dumps(value, ensure_ascii=draw_ascii).encode("utf-8", "surrogatepass")


bodies = st.one_of(requests().map(lambda r: encoded(r, True)), requests().map(lambda r: encoded(r, False)),
                   st.binary(max_size=500), json_values.map(lambda v: encoded(v, True)))
content_types = st.sampled_from([b"application/fhir+json", b"application/fhir+json", b"application/json; charset=utf-8",
                                 b"text/plain", b"application/xml", b"", b"application/fhir+json\r\nX: y"])
extra_headers = st.lists(st.tuples(
    st.sampled_from([b"if-none-exist", b"prefer", b"accept", b"content-length", b"origin", b"transfer-encoding"]),
    st.one_of(st.sampled_from([b"identifier=a|b", b"_id=x", b"identifier=", b"name=x", b"return=minimal",
                               b"return=OperationOutcome", b"-1", b"99999999999", b"\xc3\xa9", b"chunked"]),
              st.binary(max_size=40))), max_size=2)


# 1. create -------------------------------------------------------------------------------------------------------
@fuzz("create")
@given(body=bodies, content_type=content_types, headers=extra_headers)
@example(body=b"[" * 50_000 + b"]" * 50_000, content_type=b"application/fhir+json", headers=[])
@example(body=encoded({**base_request("x"), "payload": None}, True), content_type=b"application/fhir+json", headers=[])
@example(body=encoded({**base_request("x"), "id": "a" * 65}, True), content_type=b"application/fhir+json", headers=[])
@example(body=encoded(base_request("cl"), True), content_type=b"application/fhir+json",
         headers=[(b"content-length", b"\xc2\xb2")])
@example(body=encoded({**base_request("s"), "payload": [{"contentString": "\ud800"}]}, False),
         content_type=b"application/fhir+json", headers=[])
@example(body=encoded({**base_request("y"), "occurrenceDateTime": "9999-12-31T23:59:59-05:00"}, True),
         content_type=b"application/fhir+json", headers=[])  # the year 10000 in UTC
@example(body=encoded(base_request("ct"), True), content_type=b"application", headers=[])  # a type without a slash
def test_create_answers_any_body_with_a_fhir_answer(api: ApiClient, errors: ErrorLog, body: bytes, content_type: bytes,
                                                   headers: list[tuple[bytes, bytes]]) -> None:
    call(api, errors, "create", "POST", "/fhir/CommunicationRequest", body=body,
         headers=[(b"content-type", content_type), *headers])


# 2. check ---------------------------------------------------------------------------------------------------------
@fuzz("check")
@given(body=bodies, content_type=content_types)
@example(body=encoded(base_request("ct"), True), content_type=b"application")  # a type without a slash
def test_check_answers_any_body_and_sends_nothing(api: ApiClient, errors: ErrorLog, body: bytes,
                                                  content_type: bytes) -> None:
    before = sends(api.host)
    call(api, errors, "check", "POST", "/fhir/CommunicationRequest/$check", body=body,
         headers=[(b"content-type", content_type)])
    assert sends(api.host) == before


# 3. batches ------------------------------------------------------------------------------------------------------
entries = st.lists(st.one_of(
    requests().map(lambda r: {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": r}),
    st.builds(lambda m, u, r: {"request": {"method": m, "url": u}, "resource": r},
              st.sampled_from(["POST", "GET", "DELETE", "PUT"]), st.sampled_from(["CommunicationRequest", "Patient", ""]),
              json_values),
    json_values), max_size=6)


@fuzz("batch")
@example(entries=[{"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": r} for r in
                  (base_request("ok"), {**base_request("y"), "occurrencePeriod": {"end": "9999-12-31T23:59:59-05:00"}})],
         kind="batch", ndjson=False, raw=b"")
@given(entries=entries, kind=st.sampled_from(["batch", "transaction", "collection"]), ndjson=st.booleans(),
       raw=st.binary(max_size=200))
def test_batches_answer_each_entry_without_an_error(api: ApiClient, errors: ErrorLog, entries: list[Any], kind: str,
                                                    ndjson: bool, raw: bytes) -> None:
    if ndjson:
        lines = b"\n".join(encoded(e.get("resource") if isinstance(e, dict) else e, True) for e in entries) + b"\n" + raw
        call(api, errors, "batch", "POST", "/fhir/CommunicationRequest/$batch", body=lines,
             headers=[(b"content-type", b"application/fhir+ndjson")])
    else:
        call(api, errors, "batch", "POST", "/fhir", body=encoded({"resourceType": "Bundle", "type": kind, "entry": entries},
                                                                   True), headers=[(b"content-type", b"application/fhir+json")])


# 4. Consent, Subscription -------------------------------------------------------------------------------------
@st.composite
def consents(draw: st.DrawFn) -> dict[str, Any]:
    consent: dict[str, Any] = {
        "resourceType": "Consent", "status": draw(st.sampled_from(["active", "inactive", "rejected", "draft", ""])),
        "patient": {"reference": draw(st.sampled_from(PATIENTS))},
        "provision": {"type": draw(st.sampled_from(["deny", "permit", "x"])), "code": [{"coding": [{
            "system": draw(st.sampled_from(["http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                                            "http://emrcomm.org/fhir/CodeSystem/channel", "x"])),
            "code": draw(st.sampled_from(["SMSWRIT", "EMAILWRIT", "ONLINEWRIT", "sms", "portal", "fax"]))}]}]},
        "extension": [{"url": EXT + draw(st.sampled_from(["consent-address", "consent-source", "x"])),
                       "valueString": draw(texts | st.sampled_from(["+16135550123", "+1 613 555 0199", "a@b.c"]))}],
    }
    for _ in range(draw(st.integers(0, 2))):
        consent[draw(st.sampled_from(["patient", "provision", "extension", "status", "resourceType"]))] = draw(json_values)
    return consent


@fuzz("consent")
@given(consent=consents())
@example(consent={"resourceType": "Consent", "status": "active", "patient": {"reference": "Patient/on-en"},
                  "category": [{"coding": 5}]})
@example(consent={"resourceType": "Consent", "status": "active", "patient": {"reference": "Patient/on-en"},
                  "provision": {"code": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                                                      "code": ["SMSWRIT"]}]}]}})
def test_consent_answers_anything_and_a_refused_one_leaves_the_ledger_alone(api: ApiClient, errors: ErrorLog,
                                                                            consent: dict[str, Any]) -> None:
    call(api, errors, "consent", "POST", "/fhir/Consent", body=encoded(consent, False),
         headers=[(b"content-type", b"application/fhir+json")])


@st.composite
def subscriptions(draw: st.DrawFn) -> dict[str, Any]:
    return {"resourceType": "Subscription", "status": draw(st.sampled_from(["requested", "active", "off", ""])),
            "reason": "x", "criteria": draw(st.sampled_from(["Communication", "Communication?status=completed", "Consent",
                                                             "Consent?patient=Patient/on-en", "Patient", "Communication?x=1"])
                                             | texts),
            "channel": draw(st.fixed_dictionaries({"type": st.sampled_from(["rest-hook", "email"]) | texts},
                                                  optional={"endpoint": st.sampled_from(
                                                      ["https://emr.example/h", "http://127.0.0.1:9/h", "http://emr.example/h",
                                                       "ftp://x", "https://a b", "https://[::1"]) | texts,
                                                      "payload": st.sampled_from(["application/fhir+json", "text/xml"]),
                                                      "header": st.lists(texts, max_size=3) | json_values}))}


@fuzz("subscription")
@given(subscription=subscriptions())
def test_subscription_answers_anything(api: ApiClient, errors: ErrorLog, subscription: dict[str, Any]) -> None:
    call(api, errors, "subscription", "POST", "/fhir/Subscription", body=encoded(subscription, False),
         headers=[(b"content-type", b"application/fhir+json")])


# 5. search, reads, the token endpoint, anything ------------------------------------------------------------
params = st.lists(st.tuples(st.sampled_from(["subject", "patient", "status", "category", "based-on", "_lastUpdated",
                                             "_count", "_cursor", "_format", "_sort"]) | texts,
                            st.sampled_from(["Patient/on-en", "completed,not-done", "ge2026-11-23", "lt2026",
                                             "eyJhIjoxfQ", "0", "1000000", "appointment-reminder", "|", ","]) | texts),
                  max_size=4)


@fuzz("search")
@given(query=params, ident=texts)
@example(query=[("_cursor", "WyIyMDI2LTExLTIzVDE1OjAwOjAwKzAwOjAwIiwgMV0")], ident="x")  # a cursor whose id is a number
@example(query=[("_lastUpdated", "ge0001-01-01T00:00:00+05:00")], ident="x")  # the year 0 in UTC
@example(query=[("_cursor", base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode())], ident="x")
def test_search_and_reads_answer_any_query(api: ApiClient, errors: ErrorLog, query: list[tuple[str, str]],
                                           ident: str) -> None:
    text = "&".join(f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}" for k, v in query)
    call(api, errors, "search", "GET", "/fhir/Communication", query=text)
    for kind in ("Communication", "CommunicationRequest", "Subscription", "StructureDefinition"):
        call(api, errors, "search", "GET", f"/fhir/{kind}/{ident}")


@fuzz("token")
@given(form=st.dictionaries(st.sampled_from(["grant_type", "client_assertion_type", "client_assertion", "scope"]) | texts,
                            texts | st.sampled_from(["client_credentials", "system/*.read", "a.b.c",
                                                     "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]),
                            max_size=5), signed=st.booleans())
def test_the_token_endpoint_answers_any_form_with_an_oauth_answer(api: ApiClient, errors: ErrorLog, form: dict[str, str],
                                                                  signed: bool) -> None:
    if signed:  # a real assertion, with whatever else the form says
        body = token_form(api.client_id, api.key.assertion(api.client_id, api.host.clock()), form.get("scope", ""))
    else:
        body = "&".join(f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}"
                        for k, v in form.items()).encode()
    call(api, errors, "token", "POST", "/fhir/auth/token", body=body,
         headers=[(b"content-type", b"application/x-www-form-urlencoded")], token=False)


@fuzz("any")
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
       path=st.sampled_from(["/fhir", "/fhir/", "/fhir/metadata", "/fhir/Patient", "/fhir/Communication/x/_history",
                             "/fhir/CommunicationRequest/$check/x", "/fhir/$batch"]) | texts.map(lambda t: "/fhir/" + t),
       body=st.binary(max_size=200), token=st.booleans())
def test_any_method_on_any_path_under_fhir_answers_fhir(api: ApiClient, errors: ErrorLog, method: str, path: str,
                                                       body: bytes, token: bool) -> None:
    status = call(api, errors, "any", method, path, body=body, headers=[(b"content-type", b"application/fhir+json")],
                  token=token)
    if status >= 400 and method != "HEAD":
        assert api.http.request(method, path, body=body).headers["content-type"].startswith(("application/fhir+json",
                                                                                              "application/json"))


def test_the_fixed_budget_is_what_ci_runs() -> None:
    assert TOTAL is not None or sum(max(10, round(CI_BUDGET * s)) for s in SHARES.values()) == CI_BUDGET
