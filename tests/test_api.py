"""The FHIR API's behaviour, one rule per test, through the whole ``emrcomm serve`` app called
in-process (its middleware included): tokens, status codes, repeats and races, checks, batches,
search and paging, consents, subscriptions and their notifications, the audit log."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from api_kit import AUD, FHIR, ApiClient, ClientKey, register, token_form
from conftest import Clock
from emrcomm.api.capability import capability_statement
from emrcomm.api.handlers import build, definitions
from emrcomm.api.notify import Notifier, signature
from emrcomm.api.settings import ApiSettings
from emrcomm.audit import entries
from emrcomm.audit import verify as audit_verify
from emrcomm.fhir import validate_resource
from emrcomm.host import Host
from emrcomm.limits import MAX_IDENTIFIERS
from emrcomm.model import Category, Identifier, Request, Status
from emrcomm.plugin.manager import discover
from emrcomm.storage.times import iso
from emrcomm.web import create_app
from hostile_kit import InProcess
from servers import Reply, ScriptedHTTPServer, Seen, scripted
from support import BASE_CONFIG, fhir_request
from test_pipeline import ALL as ALL_PLUGINS
from test_pipeline import sent_while_deciding
from test_worker import worker

FORM = (b"content-type", b"application/x-www-form-urlencoded")
TEXT = "Riverside Family Health: your appointment is on Nov 25 at 2:30 PM. Reply STOP to opt out."
NO_NOTIFY = "\n[api]\nnotify = false\n"


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    """In-process clients to close (each has an event loop) when the test ends."""
    made: list[Any] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def api(make_host: Callable[..., Host], clients: list[Any]) -> ApiClient:
    host = make_host(NO_NOTIFY)
    client = ApiClient(host, create_app(host))
    clients.append(client)
    return client


def body(answer: Any) -> Any:
    return json.loads(answer.content)


def sms_sent(host: Host) -> list[dict[str, Any]]:
    path = host.config.base_dir / "out" / "sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def reminder(rid: str = "r-1", patient: str = "Patient/on-en", **extra: Any) -> dict[str, Any]:
    return fhir_request(patient, "appointment-reminder", text=TEXT, rid=rid,
                        medium=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                                             "code": "SMSWRIT"}]}], **extra)


# without a token -------------------------------------------------------------------------------------
def test_metadata_and_the_smart_configuration_answer_without_a_token(api: ApiClient) -> None:
    meta = api.http.request("GET", "/fhir/metadata")
    smart = api.http.request("GET", "/fhir/.well-known/smart-configuration")
    assert meta.status_code == 200 and body(meta)["resourceType"] == "CapabilityStatement"
    assert body(smart)["token_endpoint"] == AUD
    assert body(smart)["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/fhir/CommunicationRequest"), ("POST", "/fhir/CommunicationRequest/$check"), ("POST", "/fhir"),
    ("POST", "/fhir/CommunicationRequest/$batch"), ("GET", "/fhir/CommunicationRequest/x"),
    ("GET", "/fhir/CommunicationRequest"), ("GET", "/fhir/Communication"), ("GET", "/fhir/Communication/x"), ("POST", "/fhir/Consent"),
    ("POST", "/fhir/Subscription"), ("GET", "/fhir/Subscription/x"), ("DELETE", "/fhir/Subscription/x"),
    ("GET", "/fhir/StructureDefinition"), ("GET", "/fhir/StructureDefinition/template")])
def test_nothing_else_answers_without_a_valid_token(api: ApiClient, method: str, path: str) -> None:
    for headers in ([], [(b"authorization", b"Bearer not-a-token")], [(b"authorization", b"Basic eDp5")]):
        answer = api.http.request(method, path, body=json.dumps(reminder()).encode(), headers=[FHIR, *headers])
        assert answer.status_code == 401, (method, path, answer.text)
        assert body(answer)["resourceType"] == "OperationOutcome"
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_the_smart_configuration_advertises_exactly_the_scopes_the_operations_require(api: ApiClient) -> None:
    # Each advertised scope opens some operation, and each scope an operation needs is advertised:
    # system/Communication.write and system/Consent.read were offered, though nothing took them.
    _, handlers = build(api.host, ApiSettings())
    advertised = body(api.http.request("GET", "/fhir/.well-known/smart-configuration"))["scopes_supported"]
    assert len(advertised) == len(set(advertised))
    assert set(advertised) == handlers.required_scopes


@pytest.mark.parametrize("scope", ["system/Communication.write", "system/Consent.read", "system/Consent.rs"])
def test_a_client_is_not_registered_with_a_scope_no_operation_needs(api: ApiClient, scope: str) -> None:
    from emrcomm.api.scopes import parse_scopes
    from emrcomm.errors import RequestError

    with pytest.raises(RequestError, match="no operation needs it"):
        parse_scopes(scope, strict=True)
    assert parse_scopes("system/*.read", strict=True) == ["system/CommunicationRequest.read",
                                                           "system/Communication.read", "system/Subscription.read"]


def test_the_capability_statement_lists_exactly_the_routes_there_are(api: ApiClient) -> None:
    app, _ = build(api.host, ApiSettings())
    served = {(m, r.path) for r in app.routes for m in (r.methods or ()) - {"HEAD"}}  # type: ignore[attr-defined]
    rest = capability_statement("http://x/fhir", "0", api.host.clock())["rest"][0]
    said = {r["type"]: {i["code"] for i in r["interaction"]} for r in rest["resource"]}
    path_of = {"create": ("POST", "/{t}"), "read": ("GET", "/{t}/{{id}}"), "search-type": ("GET", "/{t}"),
               "delete": ("DELETE", "/{t}/{{id}}")}
    for kind, interactions in said.items():
        for i in interactions:
            method, path = path_of[i]
            assert (method, path.format(t=kind)) in served, (kind, i)
    operations = {o["name"] for r in rest["resource"] for o in r.get("operation", ())}
    assert {("POST", f"/CommunicationRequest/${o}") for o in operations} <= served
    assert ("POST", "/") in served and rest["interaction"] == [{"code": "batch"}]


SAMPLES = {"subject": "Patient/on-en", "patient": "on-en", "status": "completed", "category": "appointment-reminder",
           "based-on": "CommunicationRequest/r-1", "_lastUpdated": "ge2026-11-01", "_summary": "count", "_total": "accurate",
           "identifier": "urn:emr:appointments|A-1", "url": "http://emrcomm.org/fhir/StructureDefinition/template"}


def test_every_search_parameter_the_capability_statement_lists_is_taken(api: ApiClient) -> None:
    rest = body(api.http.request("GET", "/fhir/metadata"))["rest"][0]
    listed = [(r["type"], p["name"]) for r in rest["resource"] for p in r.get("searchParam", ())]
    assert {kind for kind, _ in listed} == {"Communication", "CommunicationRequest", "StructureDefinition"}
    for kind, name in listed:
        answer = api.call("GET", f"/fhir/{kind}", query=f"{name}={SAMPLES[name]}")
        assert answer.status_code == 200 and body(answer)["type"] == "searchset", (kind, name, answer.text)


@pytest.mark.parametrize("path", ["/fhir/Communication", "/fhir/CommunicationRequest", "/fhir/StructureDefinition"])
def test_a_search_parameter_the_capability_statement_does_not_list_is_a_400(api: ApiClient, path: str) -> None:
    # Not silently ignored: a client that filters on it would take every resource for a match.
    answer = api.call("GET", path, query="name=template")
    assert answer.status_code == 400 and body(answer)["issue"][0]["expression"] == ["name"], answer.text


# tokens ------------------------------------------------------------------------------------------------
def token(api: ApiClient, form: bytes) -> Any:
    return api.http.request("POST", "/fhir/auth/token", body=form, headers=[FORM])


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_signed_assertion_gets_a_short_lived_token_with_the_scopes_asked_for(api: ApiClient, alg: str) -> None:
    key = ClientKey(alg)
    cid = register(api.host, key, ["system/Communication.read", "system/Consent.write"])
    answer = token(api, token_form(cid, key.assertion(cid, api.host.clock()), "system/Communication.rs system/Consent.c"))
    assert answer.status_code == 200, answer.text
    assert body(answer)["scope"] == "system/Communication.read system/Consent.write"
    assert body(answer)["expires_in"] == 300 and body(answer)["token_type"] == "bearer"


def test_an_assertion_is_good_once(api: ApiClient) -> None:
    key = ClientKey()
    cid = register(api.host, key)
    assertion = key.assertion(cid, api.host.clock())
    assert token(api, token_form(cid, assertion, "system/Communication.read")).status_code == 200
    again = token(api, token_form(cid, assertion, "system/Communication.read"))
    # SMART Backend Services: any failure to authenticate the assertion, a replay too, is invalid_client
    # (docs/api.md: 401).
    assert again.status_code == 401 and body(again)["error"] == "invalid_client"
    assert "used before" in body(again)["error_description"]


@pytest.mark.parametrize("bad", ["aud", "expired", "far-future", "other-key", "sub", "hs256", "revoked", "unknown"])
def test_a_bad_assertion_gets_no_token(api: ApiClient, bad: str) -> None:
    key, other = ClientKey(), ClientKey(kid="same")
    cid = register(api.host, key)
    now = api.host.clock()
    assertion = {
        "aud": lambda: key.assertion(cid, now, aud="https://elsewhere.example/token"),
        "expired": lambda: key.assertion(cid, now - dt.timedelta(minutes=10)),
        "far-future": lambda: key.assertion(cid, now, life=dt.timedelta(hours=1)),
        "other-key": lambda: ClientKey(kid=key.kid).assertion(cid, now),
        "sub": lambda: key.assertion(cid, now, sub="someone-else"),
        "hs256": lambda: __import__("jwt").encode({"iss": cid, "sub": cid, "aud": AUD, "jti": "j", "exp": 2**40},
                                                  "s" * 32, algorithm="HS256", headers={"kid": key.kid}),
        "revoked": lambda: key.assertion(cid, now),
        "unknown": lambda: other.assertion("no-such-client", now),
    }[bad]()
    if bad == "revoked":
        from emrcomm.api.clients import ClientRegistry

        ClientRegistry(api.host.storage.db, api.host.clock).revoke(cid)
    answer = token(api, token_form(cid, assertion, "system/Communication.read"))
    assert answer.status_code == 401 and body(answer)["error"] == "invalid_client", (bad, answer.text)


@pytest.mark.parametrize("claim", ["jti", "exp", "sub", "aud"])
def test_an_assertion_without_a_claim_it_needs_is_refused_naming_the_claim(api: ApiClient, claim: str) -> None:
    # PyJWT's exception name ('MissingRequiredClaimError') told an EMR's developer nothing.
    key = ClientKey()
    cid = register(api.host, key)
    now = api.host.clock()
    claims = {"iss": cid, "sub": cid, "aud": AUD, "jti": "j-1", "exp": int((now + dt.timedelta(minutes=4)).timestamp())}
    del claims[claim]
    assertion = __import__("jwt").encode(claims, key.private, algorithm="ES384", headers={"kid": key.kid})
    answer = token(api, token_form(cid, assertion, "system/Communication.read"))
    assert answer.status_code == 401 and body(answer)["error"] == "invalid_client", answer.text
    assert f"the assertion has no '{claim}' claim" in body(answer)["error_description"]


def test_an_assertion_signed_with_another_key_than_its_kid_is_refused_saying_so(api: ApiClient) -> None:
    key = ClientKey()
    cid = register(api.host, key)
    answer = token(api, token_form(cid, ClientKey(kid=key.kid).assertion(cid, api.host.clock()),
                                   "system/Communication.read"))
    assert answer.status_code == 401 and body(answer)["error"] == "invalid_client", answer.text
    assert f"does not verify with the key registered as kid '{key.kid}'" in body(answer)["error_description"]


@pytest.mark.parametrize("content_type", [b"application/json", b"application", b""])
def test_a_token_request_that_is_not_a_form_is_an_oauth_invalid_request_400(api: ApiClient, content_type: bytes) -> None:
    # RFC 6749 5.2: an error of the request is 400 invalid_request, whatever was wrong with it.
    cid = register(api.host, api.key)
    fields = {"grant_type": "client_credentials", "scope": "system/Communication.read",
              "client_assertion": api.key.assertion(cid, api.host.clock())}
    answer = api.http.request("POST", "/fhir/auth/token", body=json.dumps(fields).encode(),
                              headers=[(b"content-type", content_type)])
    assert answer.status_code == 400 and body(answer)["error"] == "invalid_request", answer.text
    assert "application/x-www-form-urlencoded" in body(answer)["error_description"]


def test_a_token_without_the_scope_is_refused_with_403(make_host: Callable[..., Host], clients: list[Any]) -> None:
    host = make_host(NO_NOTIFY)
    reader = ApiClient(host, create_app(host), scopes=["system/Communication.read"])
    clients.append(reader)
    answer = reader.call("POST", "/fhir/CommunicationRequest", reminder())
    assert answer.status_code == 403 and body(answer)["issue"][0]["code"] == "forbidden"
    assert sms_sent(host) == []


def test_a_token_expires_and_a_revoked_clients_tokens_stop_at_once(make_host: Callable[..., Host], clock: Clock,
                                                                   clients: list[Any]) -> None:
    host = make_host(NO_NOTIFY)
    api = ApiClient(host, create_app(host))
    clients.append(api)
    assert api.call("GET", "/fhir/Communication").status_code == 200
    clock.now += dt.timedelta(seconds=301)
    assert api.call("GET", "/fhir/Communication").status_code == 401
    clock.now -= dt.timedelta(seconds=301)
    from emrcomm.api.clients import ClientRegistry

    ClientRegistry(host.storage.db, host.clock).revoke(api.client_id)
    assert api.call("GET", "/fhir/Communication").status_code == 401


# CommunicationRequest ---------------------------------------------------------------------------------------
def test_a_request_sent_answers_201_with_the_request_its_communications_and_an_outcome(api: ApiClient) -> None:
    answer = api.call("POST", "/fhir/CommunicationRequest", reminder("r-201"))
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == "http://portal.test/fhir/CommunicationRequest/r-201"
    kinds = [e["resource"]["resourceType"] for e in body(answer)["entry"]]
    assert kinds == ["CommunicationRequest", "Communication", "OperationOutcome"]
    request, comm, outcome = (e["resource"] for e in body(answer)["entry"])
    assert request["status"] == "completed" and comm["status"] == "completed"
    assert comm["basedOn"] == [{"reference": "CommunicationRequest/r-201"}]
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "sent"
    assert len(sms_sent(api.host)) == 1


@pytest.mark.parametrize(("prefer", "kind"), [("return=minimal", None), ("return=representation", "CommunicationRequest"),
                                               ("return=OperationOutcome", "OperationOutcome")])
def test_prefer_return_chooses_the_body(api: ApiClient, prefer: str, kind: str | None) -> None:
    answer = api.call("POST", "/fhir/CommunicationRequest", reminder(f"r-{kind}"), headers=[(b"prefer", prefer.encode())])
    assert answer.status_code == 201
    assert (body(answer)["resourceType"] if answer.content else None) == kind


VARIABLE = "http://emrcomm.org/fhir/StructureDefinition/variable"


def variables(*pairs: tuple[str, str, Any]) -> list[dict[str, Any]]:
    return [{"url": VARIABLE, "extension": [{"url": "name", "valueString": name}, {"url": "value", kind: value}]}
            for name, kind, value in pairs]


@pytest.mark.parametrize(("change", "expression"), [
    ({"subject": {"reference": "on-en"}}, "CommunicationRequest.subject"),
    ({"subject": {"identifier": {"value": "1234567890"}}}, "CommunicationRequest.subject.identifier.system"),
    ({"subject": {"identifier": {"system": "urn:emr:mrn"}}}, "CommunicationRequest.subject.identifier.value"),
    ({"subject": {"type": "Group", "identifier": {"system": "urn:emr:mrn", "value": "123"}}},
     "CommunicationRequest.subject.type"),
    ({"status": "draft"}, "CommunicationRequest.status"),
    ({"category": [{"coding": [{"system": "http://emrcomm.org/fhir/CodeSystem/category", "code": "gossip"}]}]},
     "CommunicationRequest.category"),
    ({"payload": [{"contentString": None}]}, "CommunicationRequest.payload[0].contentString"),
    ({"payload": [{"contentString": 5}]}, "CommunicationRequest.payload[0].contentString"),
    ({"payload": [{"contentString": "x", "modifierExtension": [{"url": "urn:x", "valueBoolean": True}]}]},
     "CommunicationRequest.payload[0].modifierExtension"),
    ({"doNotPerform": True}, "CommunicationRequest.doNotPerform"),
    ({"id": "not an id!"}, "CommunicationRequest.id"),
    ({"identifier": [{"system": "urn:emr:appointments"}]}, "CommunicationRequest.identifier"),
    ({"occurrenceDateTime": "2026-12-08T09:00:00"}, "CommunicationRequest.occurrenceDateTime"),
    ({"occurrencePeriod": {"end": "2026-12-08T09:00:00"}}, "CommunicationRequest.occurrencePeriod.end"),
    ({"extension": variables(("location", "valueString", "Riverside"), ("appointment", "valueString", "soon"))},
     f"CommunicationRequest.extension('{VARIABLE}')[1]"),
    ({"extension": variables(("when", "valueDate", "2026-12"))},
     f"CommunicationRequest.extension('{VARIABLE}')[0].extension('value').value"),
])
def test_an_input_error_names_the_field_as_the_issues_expression(api: ApiClient, change: dict[str, Any],
                                                                 expression: str) -> None:
    # docs/api.md promises `expression` for input errors; it was only in the diagnostics.
    sent = {k: v for k, v in {**reminder("r-expr"), **change}.items() if v is not None or k == "payload"}
    if "identifier" in change:
        sent.pop("id")
    answer = api.call("POST", "/fhir/CommunicationRequest", sent)
    assert answer.status_code == 400, answer.text
    assert body(answer)["issue"][0]["expression"] == [expression], answer.text
    entry = {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": sent}
    [answered] = body(api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [entry]}))["entry"]
    assert answered["response"]["outcome"]["issue"][0]["expression"] == [expression]
    assert sms_sent(api.host) == []


@pytest.mark.parametrize(("template", "given"), [
    ("no-such-template", {}),
    ("appointment-reminder", {}),  # its appointment is missing
])
def test_a_request_its_template_cannot_write_is_422_with_a_sentence_for_staff(
        api: ApiClient, template: str, given: dict[str, Any]) -> None:
    # docs/api.md tells clients to show staff details.text: these answers had none.
    sent = fhir_request("Patient/on-en", "appointment-reminder", template=template, rid="r-tpl", variables=given)
    answer = api.call("POST", "/fhir/CommunicationRequest", sent)
    assert answer.status_code == 422, answer.text
    issue = body(answer)["issue"][0]
    assert "could not be written from its template" in issue["details"]["text"] and issue["diagnostics"]
    entry = {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": {**sent, "id": "r-tpl-2"}}
    [answered] = body(api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [entry]}))["entry"]
    assert answered["response"]["status"].startswith("422")
    assert "could not be written from its template" in answered["response"]["outcome"]["issue"][0]["details"]["text"]


# A patient named by identifier, as EMRs send a health card number: the Python API's
# Patient?identifier=system|value, resolved by the directory in the same step.
HEALTH_CARD = "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn"
HEALTH_NUMBER = "1234567890"
UNKNOWN_NUMBER = "9876543210"


@pytest.fixture
def api_by_health_card(make_host: Callable[..., Host], tmp_path: Path, clients: list[Any]) -> ApiClient:
    """The API of the small clinic where Alex Martin (Patient/on-en) carries a health card number."""
    from support import small_clinic

    bundle = small_clinic()
    [alex] = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "on-en"]
    alex["identifier"] = [{"system": HEALTH_CARD, "value": HEALTH_NUMBER}]
    (tmp_path / "by-card.json").write_text(json.dumps(bundle), encoding="utf-8")
    host = make_host(NO_NOTIFY, config_text=BASE_CONFIG.replace('"patients.json"', '"by-card.json"'))
    client = ApiClient(host, create_app(host))
    clients.append(client)
    return client


def by_card(rid: str, number: str = HEALTH_NUMBER, **subject: Any) -> dict[str, Any]:
    return {**reminder(rid), "subject": {"identifier": {"system": HEALTH_CARD, "value": number}, **subject}}


@pytest.fixture
def api_deceased(make_host: Callable[..., Host], tmp_path: Path, clients: list[Any]) -> ApiClient:
    """The small clinic's API where the chart records Alex Martin (Patient/on-en, who carries a
    health card number) as deceased."""
    from support import small_clinic

    bundle = small_clinic()
    [alex] = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "on-en"]
    alex.update(deceasedBoolean=True, identifier=[{"system": HEALTH_CARD, "value": HEALTH_NUMBER}])
    (tmp_path / "deceased.json").write_text(json.dumps(bundle), encoding="utf-8")
    host = make_host(NO_NOTIFY, config_text=BASE_CONFIG.replace('"patients.json"', '"deceased.json"'))
    client = ApiClient(host, create_app(host))
    clients.append(client)
    return client


@pytest.mark.parametrize("given", ["reference", "identifier", "both"])
def test_a_request_for_a_patient_the_chart_refuses_is_answered_refused_with_the_reason(
        api_deceased: ApiClient, given: str) -> None:
    # It was RECIPIENT_UNKNOWN, "No directory knows this patient", for a patient the chart has.
    api = api_deceased
    resource = {"reference": reminder("r-gone"), "identifier": by_card("r-gone"),
                "both": by_card("r-gone", reference="Patient/on-en")}[given]
    answer = api.call("POST", "/fhir/CommunicationRequest", resource)
    assert answer.status_code == 422, answer.text
    codes = [c["code"] for i in body(answer)["issue"] for c in i.get("details", {}).get("coding", ())]
    assert "RECIPIENT_REFUSED" in codes and "RECIPIENT_UNKNOWN" not in codes, answer.text
    assert "Patient/on-en is recorded as deceased" in answer.text and HEALTH_NUMBER not in answer.text
    assert sms_sent(api.host) == []


def test_a_consent_for_a_patient_the_chart_refuses_says_so_not_unknown(api_deceased: ApiClient) -> None:
    answer = api_deceased.call("POST", "/fhir/Consent", consent())
    assert answer.status_code == 422, answer.text
    [issue] = body(answer)["issue"]
    assert issue["code"] == "business-rule" and issue["expression"] == ["Consent.patient"]
    assert issue["diagnostics"].startswith("the chart says Patient/on-en must not be messaged (Patient/on-en is "
                                           "recorded as deceased): give the address"), issue


def batch_of(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch",
            "entry": [{"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": r} for r in resources]}


@pytest.mark.parametrize("subject", [{}, {"type": "Patient"}], ids=["identifier", "identifier-and-type"])
def test_a_patient_named_by_identifier_is_sent_and_filed_as_the_patient_the_directory_found(
        api_by_health_card: ApiClient, subject: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    from support import store_bytes

    api = api_by_health_card
    caplog.set_level("DEBUG")
    answer = api.call("POST", "/fhir/CommunicationRequest", by_card("r-card", **subject))
    assert answer.status_code == 201, answer.text
    request, comm, _outcome = (e["resource"] for e in body(answer)["entry"])
    assert request["subject"] == {"reference": "Patient/on-en"}
    assert comm["subject"] == {"reference": "Patient/on-en"} and comm["recipient"] == [{"reference": "Patient/on-en"}]
    assert [m["to"] for m in sms_sent(api.host)] == ["+16135550123"]
    read = api.call("GET", "/fhir/CommunicationRequest/r-card")
    assert body(read)["subject"] == {"reference": "Patient/on-en"}
    found = body(api.call("GET", "/fhir/Communication", query="subject=Patient/on-en"))
    assert [e["resource"]["id"] for e in found["entry"]] == [comm["id"]]
    # The same request as the Python API takes it is a repeat of this one, not another message.
    again = api.host.send(Request(f"Patient?identifier={HEALTH_CARD}|{HEALTH_NUMBER}", "appointment-reminder",
                                  id="r-card", text=TEXT, channel="sms"))
    assert again.record_ids == (comm["id"],) and len(sms_sent(api.host)) == 1
    shown = answer.text + read.text + json.dumps(found) + caplog.text
    assert HEALTH_NUMBER not in shown
    assert HEALTH_NUMBER.encode() not in store_bytes(api.host.config.store_path)


def test_a_patient_named_by_identifier_is_checked_and_sent_in_a_batch(api_by_health_card: ApiClient) -> None:
    api = api_by_health_card
    checked = api.call("POST", "/fhir/CommunicationRequest/$check", by_card("r-check"))
    assert checked.status_code == 200, checked.text
    assert body(checked)["issue"][0]["details"]["coding"][0]["code"] == "sent"
    answer = api.call("POST", "/fhir", batch_of(by_card("r-b1"), by_card("r-b2", UNKNOWN_NUMBER)))
    sent, blocked = (e["response"] for e in body(answer)["entry"])
    assert sent["status"].startswith("201") and blocked["status"].startswith("422"), answer.text
    row = api.host.storage.records.request("r-b1")
    assert row is not None and row.patient == "Patient/on-en"
    assert len(sms_sent(api.host)) == 1 and UNKNOWN_NUMBER not in answer.text


@pytest.mark.parametrize("path", ["/fhir/CommunicationRequest", "/fhir/CommunicationRequest/$check"])
def test_an_identifier_nobody_has_is_blocked_as_the_python_api_blocks_it(
        api_by_health_card: ApiClient, path: str) -> None:
    api = api_by_health_card
    answer = api.call("POST", path, by_card("r-nobody", UNKNOWN_NUMBER))
    issues = body(answer)["issue"]
    codes = [c["code"] for i in issues for c in i.get("details", {}).get("coding", ())]
    assert "RECIPIENT_UNKNOWN" in codes, answer.text
    assert f"identifier {HEALTH_CARD}|…" in answer.text and UNKNOWN_NUMBER not in answer.text
    assert sms_sent(api.host) == []
    if path.endswith("$check"):
        assert answer.status_code == 200
        return
    assert answer.status_code == 422
    [record] = api.host.storage.records.for_request("r-nobody")
    comm = body(api.call("GET", f"/fhir/Communication/{record.id}"))
    assert comm["status"] == "not-done" and "subject" not in comm and "recipient" not in comm
    assert UNKNOWN_NUMBER not in json.dumps(comm)


@pytest.mark.parametrize(("reference", "number"), [
    ("Patient/qc-fr", HEALTH_NUMBER),    # the number is Alex's
    ("Patient/on-en", UNKNOWN_NUMBER),   # nobody's
    ("Patient/nobody", UNKNOWN_NUMBER),  # neither is known
], ids=["another-patient", "unknown-identifier", "both-unknown"])
def test_a_reference_and_an_identifier_that_disagree_are_422_naming_the_subject(
        api_by_health_card: ApiClient, reference: str, number: str) -> None:
    api = api_by_health_card
    sent = by_card("r-two", number, reference=reference)
    for path in ("/fhir/CommunicationRequest", "/fhir/CommunicationRequest/$check"):
        answer = api.call("POST", path, sent)
        assert answer.status_code == 422, answer.text
        [issue] = body(answer)["issue"]
        assert issue["code"] == "business-rule" and issue["expression"] == ["CommunicationRequest.subject"]
        assert "does not find the same patient" in issue["diagnostics"] and number not in answer.text
    [entry] = body(api.call("POST", "/fhir", batch_of(sent)))["entry"]
    assert entry["response"]["status"].startswith("422")
    assert entry["response"]["outcome"]["issue"][0]["expression"] == ["CommunicationRequest.subject"]
    assert sms_sent(api.host) == [] and api.host.storage.records.request("r-two") is None


def test_a_reference_and_an_identifier_of_one_patient_are_sent_to_the_reference(api_by_health_card: ApiClient) -> None:
    api = api_by_health_card
    answer = api.call("POST", "/fhir/CommunicationRequest", by_card("r-both", reference="Patient/on-en"),
                      headers=[(b"prefer", b"return=representation")])
    assert answer.status_code == 201, answer.text
    assert body(answer)["subject"] == {"reference": "Patient/on-en"} and HEALTH_NUMBER not in answer.text
    assert len(sms_sent(api.host)) == 1


@pytest.mark.parametrize(("method", "path", "sent", "status"), [
    ("POST", "/fhir/CommunicationRequest", {"resourceType": "CommunicationRequest"}, 400),
    ("POST", "/fhir/CommunicationRequest", "Patient/none", 422),  # blocked: its findings and notes
    ("GET", "/fhir/Communication/nope", None, 404),
    ("GET", "/fhir/Consent", None, 405),
    ("POST", "/fhir/Consent", {"resourceType": "Consent", "status": "active"}, 400),
    ("POST", "/fhir/Subscription", {"resourceType": "Subscription"}, 422),
])
def test_every_issue_of_a_refusal_has_a_sentence_for_staff(api: ApiClient, method: str, path: str, sent: Any,
                                                           status: int) -> None:
    if sent == "Patient/none":
        sent = reminder("r-none", "Patient/none")
    answer = api.call(method, path, sent)
    assert answer.status_code == status, answer.text
    assert all(i["details"]["text"] for i in body(answer)["issue"]), answer.text


def test_a_day_without_a_time_is_not_before_that_day_begins_at_the_clinic(
        make_host: Callable[..., Host], clients: list[Any], clock: Clock) -> None:
    # "Not before 2026-12-08" was midnight UTC: 7 p.m. on the 7th in Toronto, and the SMS left then.
    clock.now = dt.datetime(2026, 12, 8, 0, 30, tzinfo=dt.UTC)  # 19:30 on Monday the 7th in Toronto
    host = make_host(NO_NOTIFY)
    api = ApiClient(host, create_app(host))
    clients.append(api)
    answer = api.call("POST", "/fhir/CommunicationRequest", reminder("r-day", occurrenceDateTime="2026-12-08"),
                      headers=[(b"prefer", b"return=OperationOutcome")])
    assert answer.status_code == 201, answer.text
    assert body(answer)["issue"][0]["details"]["coding"][0]["code"] == "held" and sms_sent(api.host) == []


def test_the_same_request_id_again_answers_200_and_sends_nothing_more(api: ApiClient) -> None:
    first = api.call("POST", "/fhir/CommunicationRequest", reminder("r-twice"))
    second = api.call("POST", "/fhir/CommunicationRequest", reminder("r-twice"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert body(second)["entry"][1]["resource"]["id"] == body(first)["entry"][1]["resource"]["id"]
    assert len(sms_sent(api.host)) == 1


APPT = [{"system": "urn:emr:appointments", "value": "A-90"}]


def as_a90(rid: str = "r-1", patient: str = "Patient/on-en", **extra: Any) -> dict[str, Any]:
    """A reminder that names itself by identifier A-90 only (its id derived from it)."""
    return {k: v for k, v in reminder(rid, patient, identifier=APPT, **extra).items() if k != "id"}


@pytest.mark.parametrize("change", [{"patient": "Patient/qc-fr"}, {"text": "Another message entirely."},
                                    {"extension": [{"url": "http://emrcomm.org/fhir/StructureDefinition/template",
                                                    "valueString": "appointment-reminder"}]}])
def test_an_identifier_used_again_for_another_message_is_409_naming_it_and_sends_nothing(
        api: ApiClient, change: dict[str, Any]) -> None:
    # An EMR that reuses its ids would otherwise be told "already handled" and a patient never texted.
    first = api.call("POST", "/fhir/CommunicationRequest", as_a90())
    other = as_a90(patient=change.get("patient", "Patient/on-en"))
    if "text" in change:
        other["payload"] = [{"contentString": change["text"]}]
    if "extension" in change:
        other["extension"] = change["extension"]
    again = api.call("POST", "/fhir/CommunicationRequest", other)
    assert (first.status_code, again.status_code) == (201, 409), again.text
    issue = body(again)["issue"][0]
    assert issue["code"] == "conflict" and "urn:emr:appointments|A-90" in issue["diagnostics"]
    assert "nothing was sent" in issue["diagnostics"] and len(sms_sent(api.host)) == 1


def test_a_request_entered_before_its_content_was_kept_is_answered_as_a_repeat_as_before(api: ApiClient) -> None:
    # Schema 7 kept no digest: nothing to compare, so "already handled", as that release answered.
    api.call("POST", "/fhir/CommunicationRequest", as_a90())
    with api.host.storage.transaction():
        api.host.storage.db.execute("UPDATE requests SET digest = NULL")
    again = api.call("POST", "/fhir/CommunicationRequest", as_a90(patient="Patient/qc-fr"))
    assert again.status_code == 200 and len(sms_sent(api.host)) == 1


def test_a_retry_written_with_other_key_order_and_spacing_is_still_a_retry(api: ApiClient) -> None:
    first = api.call("POST", "/fhir/CommunicationRequest", as_a90())
    shuffled = dict(reversed(list(as_a90().items())))
    again = api.call("POST", "/fhir/CommunicationRequest", raw=json.dumps(shuffled, indent=3).encode(), headers=[FHIR])
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert len(sms_sent(api.host)) == 1


def test_if_none_exist_naming_a_request_that_asked_for_another_message_is_409(api: ApiClient) -> None:
    api.call("POST", "/fhir/CommunicationRequest", reminder("own-1", identifier=APPT))
    again = api.call("POST", "/fhir/CommunicationRequest", reminder("own-2", "Patient/qc-fr", identifier=APPT),
                     headers=[(b"if-none-exist", b"identifier=urn:emr:appointments|A-90")])
    assert again.status_code == 409 and body(again)["issue"][0]["code"] == "conflict", again.text
    assert len(sms_sent(api.host)) == 1


def test_a_batch_entry_reusing_an_identifier_for_another_message_is_409_and_the_others_go(api: ApiClient) -> None:
    api.call("POST", "/fhir/CommunicationRequest", as_a90())
    post = {"method": "POST", "url": "CommunicationRequest"}
    entries = [{"request": post, "resource": as_a90()},
               {"request": post, "resource": as_a90(patient="Patient/qc-fr")},
               {"request": {**post, "ifNoneExist": "identifier=urn:emr:appointments|A-90"},
                "resource": as_a90(patient="Patient/qc-fr")},
               {"request": post, "resource": reminder("r-fresh")}]
    answered = body(api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": entries}))["entry"]
    assert [e["response"]["status"] for e in answered] == ["200 OK", "409 Conflict", "409 Conflict", "201 Created"]
    assert answered[1]["response"]["outcome"]["issue"][0]["code"] == "conflict"
    assert len(sms_sent(api.host)) == 2


def test_a_batch_entry_refused_as_a_conflict_is_409_however_the_refusal_is_worded(
        api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # The batch reads send_many's outcome by its mark, not by its words (reworded, translated).
    from emrcomm import RequestConflict

    monkeypatch.setattr(RequestConflict, "__str__", lambda self: f"Cet identifiant a déjà servi ({self.earlier}).")
    api.call("POST", "/fhir/CommunicationRequest", as_a90())
    entries = [{"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": as_a90(patient="Patient/qc-fr")}]
    [answered] = body(api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": entries}))["entry"]
    assert answered["response"]["status"] == "409 Conflict", answered
    issue = answered["response"]["outcome"]["issue"][0]
    assert issue["code"] == "conflict" and issue["diagnostics"].startswith("Cet identifiant a déjà servi")
    assert len(sms_sent(api.host)) == 1


def test_a_batch_entry_outside_the_hosts_limits_is_answered_as_a_create_answers_it(api: ApiClient) -> None:
    # A control character in the words: a create answers 400 invalid; in a batch it was 422 and
    # "could not be written from its template", sending staff to the EMR's templates.
    bad = {**reminder("r-bell"), "payload": [{"contentString": TEXT + "\u0007"}]}
    single = api.call("POST", "/fhir/CommunicationRequest", bad)
    assert single.status_code == 400
    [entry] = body(api.call("POST", "/fhir", batch_of({**bad, "id": "r-bell-2"})))["entry"]
    issue = entry["response"]["outcome"]["issue"][0]
    assert entry["response"]["status"].startswith("400")
    assert issue["code"] == body(single)["issue"][0]["code"] == "invalid"
    assert "template" not in issue.get("details", {}).get("text", "")
    assert sms_sent(api.host) == []


def test_a_batch_entry_naming_an_earlier_entry_that_asked_for_another_message_is_409(api: ApiClient) -> None:
    post = {"method": "POST", "url": "CommunicationRequest"}
    entries = [{"request": post, "resource": as_a90()},
               {"request": {**post, "ifNoneExist": "identifier=urn:emr:appointments|A-90"},
                "resource": reminder("own-2", "Patient/qc-fr", identifier=APPT)}]
    answered = body(api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": entries}))["entry"]
    assert [e["response"]["status"] for e in answered] == ["201 Created", "409 Conflict"]
    assert len(sms_sent(api.host)) == 1


def test_an_identifier_without_a_value_is_refused_so_a_retry_cannot_send_twice(api: ApiClient) -> None:
    # Its request id would be random: the same request sent again would be a second message.
    request = {k: v for k, v in reminder(identifier=[{"system": "urn:emr:appointments"}]).items() if k != "id"}
    answers = [api.call("POST", "/fhir/CommunicationRequest", request) for _ in range(2)]
    assert [a.status_code for a in answers] == [400, 400]
    assert "identifier" in body(answers[0])["issue"][0]["diagnostics"] and sms_sent(api.host) == []


def test_if_none_exist_answers_the_existing_request_with_200(api: ApiClient) -> None:
    ident = [{"system": "urn:emr:appointments", "value": "A-77"}]
    first = api.call("POST", "/fhir/CommunicationRequest", {k: v for k, v in reminder(identifier=ident).items() if k != "id"})
    again = api.call("POST", "/fhir/CommunicationRequest", reminder("another-id", identifier=ident),
                     headers=[(b"if-none-exist", b"identifier=urn:emr:appointments|A-77")])
    assert (first.status_code, again.status_code) == (201, 200)
    assert len(sms_sent(api.host)) == 1


def test_if_none_exist_finds_a_request_with_an_id_of_its_own_by_its_identifier(api: ApiClient) -> None:
    # The EMR's retry made a new resource id: the identifier, not the id, says it is the same message.
    ident = [{"system": "urn:emr:appointments", "value": "A-70"}]
    assert api.call("POST", "/fhir/CommunicationRequest", reminder("own-1", identifier=ident)).status_code == 201
    again = api.call("POST", "/fhir/CommunicationRequest", reminder("own-2", identifier=ident),
                     headers=[(b"if-none-exist", b"identifier=urn:emr:appointments|A-70")])
    assert again.status_code == 200 and again.headers["location"].endswith("/CommunicationRequest/own-1")
    assert len(sms_sent(api.host)) == 1


@pytest.mark.parametrize("condition", [
    "CommunicationRequest?identifier=urn%3Aemr%3Aappointments%7CA-71",  # HAPI's BundleBuilder, Firely
    "http://portal.test/fhir/CommunicationRequest?identifier=urn%3Aemr%3Aappointments%7CA-71",  # HAPI's client
    "identifier=urn:emr:appointments|A-71"])
def test_if_none_exist_may_name_the_type_or_its_url_before_the_query(api: ApiClient, condition: str) -> None:
    ident = [{"system": "urn:emr:appointments", "value": "A-71"}]
    api.call("POST", "/fhir/CommunicationRequest", reminder("own-1", identifier=ident))
    again = api.call("POST", "/fhir/CommunicationRequest", reminder("own-2", identifier=ident),
                     headers=[(b"if-none-exist", condition.encode())])
    assert again.status_code == 200, again.text
    assert len(sms_sent(api.host)) == 1


def test_if_none_exist_reads_escapes_as_the_search_does(api: ApiClient) -> None:
    ident = [{"system": "urn:emr:appointments", "value": "A|72"}]
    api.call("POST", "/fhir/CommunicationRequest", reminder("own-1", identifier=ident))
    again = api.call("POST", "/fhir/CommunicationRequest", reminder("own-2", identifier=ident),
                     headers=[(b"if-none-exist", b"identifier=urn:emr:appointments|A\\|72")])
    assert again.status_code == 200 and len(sms_sent(api.host)) == 1


def test_if_none_exist_matching_several_requests_is_412_and_sends_nothing(api: ApiClient) -> None:
    ident = [{"system": "urn:emr:appointments", "value": "A-73"}]
    for rid in ("own-1", "own-2"):
        api.call("POST", "/fhir/CommunicationRequest", reminder(rid, identifier=ident))
    again = api.call("POST", "/fhir/CommunicationRequest", reminder("own-3", identifier=ident),
                     headers=[(b"if-none-exist", b"identifier=urn:emr:appointments|A-73")])
    assert again.status_code == 412 and body(again)["issue"][0]["code"] == "multiple-matches"
    assert len(sms_sent(api.host)) == 2


@pytest.mark.parametrize("condition", ["Patient?identifier=a|b", "identifier=a", "identifier=a|b&status=active",
                                       "name=x", "_id=not%20an%20id"])
def test_an_if_none_exist_that_cannot_be_read_is_a_400_and_nothing_is_sent(api: ApiClient, condition: str) -> None:
    answer = api.call("POST", "/fhir/CommunicationRequest", reminder("own-1"),
                      headers=[(b"if-none-exist", condition.encode())])
    assert answer.status_code == 400 and body(answer)["issue"][0]["expression"] == ["If-None-Exist"], answer.text
    assert sms_sent(api.host) == []


def test_a_batch_entrys_if_none_exist_finds_a_request_with_an_id_of_its_own(api: ApiClient) -> None:
    ident = [{"system": "urn:emr:appointments", "value": "A-74"}]
    api.call("POST", "/fhir/CommunicationRequest", reminder("own-1", identifier=ident))
    entry = {"request": {"method": "POST", "url": "CommunicationRequest",
                         "ifNoneExist": "CommunicationRequest?identifier=urn:emr:appointments|A-74"},
             "resource": reminder("own-2", identifier=ident)}
    [answer] = body(api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [entry]}))["entry"]
    assert answer["response"]["status"] == "200 OK"
    assert answer["response"]["location"] == "CommunicationRequest/own-1" and len(sms_sent(api.host)) == 1


@pytest.mark.parametrize("condition", ["identifier=urn:emr:appointments|A-75", "_id=own-1"])
def test_a_batch_entrys_if_none_exist_naming_an_earlier_entry_of_the_batch_sends_nothing_twice(
        api: ApiClient, condition: str) -> None:
    # As entries taken one by one would: the second finds the first, decided in the same batch.
    ident = [{"system": "urn:emr:appointments", "value": "A-75"}]
    entries = [{"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": reminder("own-1", identifier=ident)},
               {"request": {"method": "POST", "url": "CommunicationRequest", "ifNoneExist": condition},
                "resource": reminder("own-2", identifier=ident)}]
    first, second = body(api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": entries}))["entry"]
    assert (first["response"]["status"], second["response"]["status"]) == ("201 Created", "200 OK")
    assert second["response"]["location"] == "CommunicationRequest/own-1" and len(sms_sent(api.host)) == 1
    assert api.call("GET", "/fhir/CommunicationRequest/own-2").status_code == 404


def test_if_none_exist_never_decides_again_even_a_blocked_request(api: ApiClient) -> None:
    ident = [{"system": "urn:emr:appointments", "value": "A-78"}]
    blocked = {k: v for k, v in reminder("x", "Patient/none", identifier=ident).items() if k != "id"}
    assert api.call("POST", "/fhir/CommunicationRequest", blocked).status_code == 422
    sendable = {k: v for k, v in reminder("x", identifier=ident).items() if k != "id"}
    again = api.call("POST", "/fhir/CommunicationRequest", sendable,
                     headers=[(b"if-none-exist", b"identifier=urn:emr:appointments|A-78")])
    # Still blocked, so still a 4xx: a 2xx always means the message is going.
    assert again.status_code == 422 and sms_sent(api.host) == []
    assert "CONSENT_MISSING" in again.text and "without If-None-Exist" in again.text
    assert api.call("POST", "/fhir/CommunicationRequest", sendable).status_code == 201  # without it: decided anew


def test_a_batch_retried_with_if_none_exist_answers_a_blocked_entry_422_again(api: ApiClient) -> None:
    entry = {"request": {"method": "POST", "url": "CommunicationRequest",
                         "ifNoneExist": "identifier=urn:emr:appointments|A-79"},
             "resource": {k: v for k, v in reminder("x", "Patient/none", identifier=[
                 {"system": "urn:emr:appointments", "value": "A-79"}]).items() if k != "id"}}
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
    first, retried = (body(api.call("POST", "/fhir", batch))["entry"][0]["response"] for _ in range(2))
    assert first["status"] == retried["status"] == "422 Unprocessable Entity"
    assert "location" not in retried and "CONSENT_MISSING" in json.dumps(retried["outcome"])
    assert sms_sent(api.host) == []


def test_if_none_exist_answers_a_request_whose_record_could_not_be_filed_503_again(
        make_host: Callable[..., Host], clients: list[Any]) -> None:
    # Nothing was sent (the chart refused its record): a 2xx to the retry would say it is going.
    order = ALL_PLUGINS + ', "brokenfiler"'
    entry_points = {**discover(), "brokenfiler": metadata.EntryPoint(name="brokenfiler", value="fakes:BrokenFiler",
                                                                     group="emrcomm")}
    host = make_host(NO_NOTIFY + f"\n[plugins]\norder = [{order}]\n", entry_points=entry_points)
    api = ApiClient(host, create_app(host))
    clients.append(api)
    ident = [{"system": "urn:emr:appointments", "value": "A-80"}]
    request = {k: v for k, v in reminder("x", identifier=ident).items() if k != "id"}
    condition = "identifier=urn:emr:appointments|A-80"
    first = api.call("POST", "/fhir/CommunicationRequest", request)
    again = api.call("POST", "/fhir/CommunicationRequest", request, headers=[(b"if-none-exist", condition.encode())])
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "CommunicationRequest", "ifNoneExist": condition}, "resource": request}]}
    entry = body(api.call("POST", "/fhir", batch))["entry"][0]["response"]
    assert (first.status_code, again.status_code, entry["status"]) == (503, 503, "503 Service Unavailable")
    assert "RECORD_NOT_FILED" in again.text and "without If-None-Exist" in again.text
    assert "location" not in entry and "RECORD_NOT_FILED" in json.dumps(entry["outcome"])
    assert sms_sent(host) == []


def test_a_repeat_of_a_request_whose_message_ended_unsent_answers_422_as_it_stands(
        make_host: Callable[..., Host], clients: list[Any], tmp_path: Path) -> None:
    """The provider refused the SMS for good (a dead letter, not retried): the same identifier
    sent again, with or without If-None-Exist, alone or in a batch, sends nothing and is answered
    422 with how to send it again (staff requeue it); a 2xx would say it is going. Requeued and
    sent, it is answered 200."""
    kannel = ScriptedHTTPServer(Reply(202, b"0: Accepted for delivery"))
    password = tmp_path / "kannel-pw"
    password.write_text("pw-1", encoding="utf-8")
    sms = (f'[plugins.sms]\ntransport = "kannel"\nfrom = "+16135550100"\n[plugins.sms.kannel]\n'
           f'url = "{kannel.url}/cgi-bin/sendsms"\nusername = "emrcomm"\npassword = {{file = "{password}"}}\n')
    host = make_host(NO_NOTIFY + '\n[delivery]\nmode = "queue"\n',
                     config_text=BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', sms))
    api = ApiClient(host, create_app(host))
    clients.append(api)
    ident = [{"system": "urn:emr:appointments", "value": "A-81"}]
    request = {k: v for k, v in reminder("x", identifier=ident).items() if k != "id"}
    condition = [(b"if-none-exist", b"identifier=urn:emr:appointments|A-81")]
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": request}]}
    try:
        assert api.call("POST", "/fhir/CommunicationRequest", request).status_code == 201  # queued
        kannel.script(Reply(400, b"Invalid receiver"))
        assert worker(host).run(once=True).dead == 1
        again = api.call("POST", "/fhir/CommunicationRequest", request)
        conditional = api.call("POST", "/fhir/CommunicationRequest", request, headers=condition)
        entry = body(api.call("POST", "/fhir", batch))["entry"][0]["response"]
        assert (again.status_code, conditional.status_code, entry["status"]) == (422, 422, "422 Unprocessable Entity")
        for answer in (again.text, conditional.text, json.dumps(entry["outcome"])):
            said = [i.get("diagnostics", "") for i in json.loads(answer)["issue"]]  # each also its details.text
            assert sum("ended unsent" in d for d in said) == 1 and "emrcomm outbox requeue" in answer
            assert "(not-done)" in answer
        assert "location" not in again.headers and "location" not in entry
        assert len(kannel.seen) == 1  # nothing sent again
        assert host.requeue() == 1 and worker(host).run(once=True).sent == 1
        assert api.call("POST", "/fhir/CommunicationRequest", request).status_code == 200  # it went: as it stands
    finally:
        kannel.close()


def kannel_api(make_host: Callable[..., Host], clients: list[Any], tmp_path: Path, kannel: ScriptedHTTPServer) -> ApiClient:
    """The API of a host sending SMS inline through ``kannel`` (a scripted Kannel)."""
    password = tmp_path / "kannel-pw"
    password.write_text("pw-1", encoding="utf-8")
    sms = (f'[plugins.sms]\ntransport = "kannel"\nfrom = "+16135550100"\n[plugins.sms.kannel]\n'
           f'url = "{kannel.url}/cgi-bin/sendsms"\nusername = "emrcomm"\npassword = {{file = "{password}"}}\n')
    host = make_host(NO_NOTIFY, config_text=BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', sms))
    api = ApiClient(host, create_app(host))
    clients.append(api)
    return api


def first_and_repeats(api: ApiClient, value: str) -> list[tuple[int, dict[str, Any]]]:
    """A request with identifier ``value`` as a POST, then again as a POST, with If-None-Exist
    and as a batch entry, then a new one (``value``-b) as a batch entry: each answer's status
    and OperationOutcome."""
    def request(v: str) -> dict[str, Any]:
        return {k: x for k, x in reminder("x", identifier=[{"system": "urn:emr:appointments", "value": v}]).items()
                if k != "id"}

    prefer = [(b"prefer", b"return=OperationOutcome")]
    condition = [(b"if-none-exist", f"identifier=urn:emr:appointments|{value}".encode()), *prefer]
    posts = [api.call("POST", "/fhir/CommunicationRequest", request(value), headers=h) for h in (prefer, prefer, condition)]
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": request(v)} for v in (value, f"{value}-b")]}
    entries = [e["response"] for e in body(api.call("POST", "/fhir", batch))["entry"]]
    return [(a.status_code, body(a)) for a in posts] + [(int(e["status"][:3]), e["outcome"]) for e in entries]


def issue_codes(outcome: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["severity"], i["details"]["coding"][0]["code"]) for i in outcome["issue"] if "coding" in i.get("details", {})]


def test_a_request_whose_first_send_failed_for_now_is_going_and_answered_2xx_first_and_again(
        make_host: Callable[..., Host], clients: list[Any], tmp_path: Path, clock: Clock) -> None:
    """The SMS gateway answers 503 to the first try: the outbox retries it, so the message is
    going. The first answer is 201 with the request queued and the failed try as a warning, as a
    repeat (200), If-None-Exist (200) and a batch entry say; a worker then sends it."""
    kannel = ScriptedHTTPServer(Reply(202, b"0: Accepted for delivery"))
    try:
        api = kannel_api(make_host, clients, tmp_path, kannel)
        kannel.script(Reply(503, b"busy"), Reply(503, b"busy"))  # the first try of A-90, and of A-90-b
        answers = first_and_repeats(api, "A-90")
        assert [status for status, _ in answers] == [201, 200, 200, 200, 201]
        for _, outcome in (answers[0], answers[4]):  # tried just now: the failed try is said
            assert issue_codes(outcome) == [("information", "queued"), ("warning", "DELIVERY_FAILED")]
        assert all(issue_codes(outcome)[0] == ("information", "queued") for _, outcome in answers[1:4])
        clock.now += dt.timedelta(hours=2)  # past the retry's backoff
        assert worker(api.host).run(once=True).sent == 2
        assert len(kannel.seen) == 4
    finally:
        kannel.close()


def test_a_request_whose_first_send_was_refused_for_good_is_answered_422_first_and_again(
        make_host: Callable[..., Host], clients: list[Any], tmp_path: Path) -> None:
    """The SMS gateway refuses the first try for good (a dead letter, never retried): the first
    answer is 422 (processing) with the refusal and how staff requeue it, as a repeat, If-None-
    Exist and a batch entry say; a batch keeps the DELIVERY_FAILED finding."""
    kannel = ScriptedHTTPServer(Reply(400, b"Invalid receiver"))
    try:
        api = kannel_api(make_host, clients, tmp_path, kannel)
        answers = first_and_repeats(api, "A-92")
        sent = len(kannel.seen)
    finally:
        kannel.close()
    assert [status for status, _ in answers] == [422] * 5
    for _, outcome in answers:
        assert outcome["issue"][0]["severity"] == "error" and outcome["issue"][0]["code"] == "processing"
        assert "emrcomm outbox requeue" in json.dumps(outcome)
    assert issue_codes(answers[0][1])[0] == ("error", "failed")
    for _, outcome in (answers[0], answers[4]):  # tried just now: the refusal is said
        assert ("warning", "DELIVERY_FAILED") in issue_codes(outcome)
    assert sent == 2  # A-92 once, and the new batch entry


def test_the_same_request_id_raced_from_many_connections_sends_once(make_host: Callable[..., Host],
                                                                   clients: list[Any]) -> None:
    host = make_host(NO_NOTIFY)
    app = create_app(host)
    api = ApiClient(host, app)
    clients.append(api)
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def post() -> None:
        client = InProcess(app)  # an event loop of its own: a connection of its own
        start.wait()
        answer = client.request("POST", "/fhir/CommunicationRequest", body=json.dumps(reminder("raced")).encode(),
                                headers=[*api.auth(), FHIR])
        with lock:
            statuses.append(answer.status_code)
        client.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [200] * 7 + [201]
    assert len(sms_sent(host)) == 1


def test_a_request_decided_blocked_while_another_under_its_id_is_sent_is_409_not_500(api: ApiClient) -> None:
    # Another connection sends r-race between this request's decision (no such patient) and its write.
    twin = sent_while_deciding(api.host, reminder("r-race"))
    answer = api.call("POST", "/fhir/CommunicationRequest", reminder("r-race", "Patient/nobody-we-know"))
    assert answer.status_code == 409 and body(answer)["issue"][0]["code"] == "conflict", answer.text
    assert [o.status for o in twin] == [Status.SENT]  # type: ignore[attr-defined]
    assert len(sms_sent(api.host)) == 1


def test_a_blocked_request_answers_422_with_every_finding_and_files_a_not_done_record(api: ApiClient) -> None:
    answer = api.call("POST", "/fhir/CommunicationRequest", reminder("r-none", "Patient/none"))
    assert answer.status_code == 422
    outcome = body(answer)
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
    codes = {i["details"]["coding"][0]["code"] for i in outcome["issue"][1:] if "coding" in i.get("details", {})}
    assert "CONSENT_MISSING" in codes
    issue = next(i for i in outcome["issue"] if i.get("details", {}).get("coding", [{}])[0].get("code") == "CONSENT_MISSING")
    assert issue["details"]["text"] and issue["extension"][0]["valueString"]  # the staff sentence and the remedy
    found = api.call("GET", "/fhir/Communication", query="based-on=CommunicationRequest/r-none")
    assert [e["resource"]["status"] for e in body(found)["entry"]] == ["not-done"]
    assert sms_sent(api.host) == []


@pytest.mark.parametrize(("payload", "status"), [
    (b"{", 400), (b"[]", 400), (json.dumps({"resourceType": "Patient"}).encode(), 400),
    (json.dumps({**reminder(), "status": "draft"}).encode(), 400),
    (json.dumps({**reminder(), "subject": {"reference": "Group/1"}}).encode(), 400),
    (json.dumps(fhir_request("Patient/on-en", "appointment-reminder", template="no-such-template")).encode(), 422),
])
def test_a_malformed_request_gets_an_operation_outcome_and_nothing_is_sent(api: ApiClient, payload: bytes,
                                                                           status: int) -> None:
    answer = api.call("POST", "/fhir/CommunicationRequest", raw=payload, headers=[FHIR])
    assert answer.status_code == status, answer.text
    assert body(answer)["resourceType"] == "OperationOutcome" and body(answer)["issue"][0]["diagnostics"]
    assert sms_sent(api.host) == [] and api.host.storage.records.page.__self__  # nothing filed either
    assert api.call("GET", "/fhir/Communication").status_code == 200
    assert "entry" not in body(api.call("GET", "/fhir/Communication"))


@pytest.mark.parametrize(("change", "field"), [
    ({"doNotPerform": True}, "doNotPerform"),
    ({"modifierExtension": [{"url": "http://emr.example/fhir/hold", "valueBoolean": True}]}, "modifierExtension"),
    ({"payload": [{"contentString": TEXT, "modifierExtension": [{"url": "http://emr.example/fhir/draft",
                                                                 "valueBoolean": True}]}]},
     "payload[0].modifierExtension"),
])
def test_a_request_not_to_send_or_with_a_modifier_emrcomm_cannot_read_is_refused_and_nothing_is_sent(
        api: ApiClient, change: dict[str, Any], field: str) -> None:
    # Both change what the request means (FHIR: a modifier not understood SHALL NOT be acted on):
    # doNotPerform asks that the message NOT be sent.
    answer = api.call("POST", "/fhir/CommunicationRequest", {**reminder("r-modifier"), **change})
    assert answer.status_code == 400, answer.text
    assert body(answer)["issue"][0]["diagnostics"].startswith(field)
    assert sms_sent(api.host) == [] and api.host.storage.records.request("r-modifier") is None


def test_a_body_over_the_limit_or_of_another_type_is_refused_before_it_is_read(api: ApiClient) -> None:
    big = api.call("POST", "/fhir/CommunicationRequest", raw=b"{" + b" " * 1_100_000 + b"}", headers=[FHIR])
    wrong = api.call("POST", "/fhir/CommunicationRequest", raw=b"<x/>", headers=[(b"content-type", b"application/xml")])
    assert (big.status_code, wrong.status_code) == (413, 415)
    assert body(big)["resourceType"] == body(wrong)["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["/fhir/CommunicationRequest", "/fhir", "/fhir/CommunicationRequest/$batch"])
def test_a_body_that_starts_with_a_utf8_bom_is_read(api: ApiClient, path: str) -> None:
    # .NET and PHP clients write one; RFC 8259 8.1 lets a parser ignore it.
    request = reminder("r-bom")
    data, kind = {
        "/fhir/CommunicationRequest": (json.dumps(request), FHIR[1]),
        "/fhir": (json.dumps({"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": request}]}), FHIR[1]),
        "/fhir/CommunicationRequest/$batch": (json.dumps(request) + "\n", b"application/fhir+ndjson"),
    }[path]
    answer = api.call("POST", path, raw=b"\xef\xbb\xbf" + data.encode(), headers=[(b"content-type", kind)])
    assert answer.status_code in (200, 201), answer.text
    assert api.host.storage.records.request("r-bom") is not None and len(sms_sent(api.host)) == 1


@pytest.mark.parametrize("path", ["/fhir/CommunicationRequest", "/fhir/CommunicationRequest/$check", "/fhir",
                                  "/fhir/CommunicationRequest/$batch", "/fhir/Consent", "/fhir/Subscription"])
def test_a_content_type_without_a_slash_is_a_415_on_every_endpoint_that_reads_a_body(api: ApiClient, path: str) -> None:
    answer = api.call("POST", path, raw=json.dumps(reminder("r-type")).encode(), headers=[(b"content-type", b"application")])
    assert answer.status_code == 415 and body(answer)["resourceType"] == "OperationOutcome", answer.text
    assert "'application'" in body(answer)["issue"][0]["diagnostics"]


def test_check_judges_every_channel_and_writes_nothing(api: ApiClient) -> None:
    before = (api.host.storage.records.request("chk"), api.host.storage.outbox.counts())
    answer = api.call("POST", "/fhir/CommunicationRequest/$check", reminder("chk", "Patient/stopped"))
    assert answer.status_code == 200
    issues = body(answer)["issue"]
    assert issues[0]["details"]["coding"][0]["code"] == "sent"  # email would carry it
    assert any(i.get("details", {}).get("coding", [{}])[0].get("code") == "CONSENT_REVOKED" for i in issues)
    assert any("sms: rejected" in i.get("diagnostics", "") for i in issues)
    assert (api.host.storage.records.request("chk"), api.host.storage.outbox.counts()) == before
    assert sms_sent(api.host) == []


def test_a_batch_bundle_answers_each_entry(api: ApiClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": reminder("b-1")},
        {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": reminder("b-2", "Patient/none")},
        {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": {"resourceType": "Patient"}},
        {"request": {"method": "DELETE", "url": "Patient/1"}},
        {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": reminder("b-1")},
    ]}
    answer = api.call("POST", "/fhir", bundle)
    assert answer.status_code == 200 and body(answer)["type"] == "batch-response"
    assert [e["response"]["status"] for e in body(answer)["entry"]] == [
        "201 Created", "422 Unprocessable Entity", "400 Bad Request", "400 Bad Request", "200 OK"]
    assert len(sms_sent(api.host)) == 1


def test_a_batch_entrys_url_may_be_relative_or_absolute_on_this_base_but_only_a_communication_request(
        api: ApiClient) -> None:
    urls = ["/CommunicationRequest", "http://portal.test/fhir/CommunicationRequest",  # what FHIR clients write
            "https://elsewhere.example/fhir/CommunicationRequest", "/Patient", "http://portal.test/fhir/Patient",
            "CommunicationRequest/x", "//CommunicationRequest"]
    answer = api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": url}, "resource": reminder(f"u-{n}")} for n, url in enumerate(urls)]})
    statuses = [e["response"]["status"] for e in body(answer)["entry"]]
    assert statuses == ["201 Created"] * 2 + ["400 Bad Request"] * 5, answer.text
    assert len(sms_sent(api.host)) == 2 and api.host.storage.records.request("u-2") is None


def test_ndjson_sends_one_request_a_line(api: ApiClient) -> None:
    lines = b"\n".join(json.dumps(reminder(f"n-{i}", p)).encode() for i, p in enumerate(["Patient/on-en", "Patient/qc-fr"]))
    answer = api.call("POST", "/fhir/CommunicationRequest/$batch", raw=lines + b"\nnot json\n",
                      headers=[(b"content-type", b"application/fhir+ndjson")])
    assert [e["response"]["status"] for e in body(answer)["entry"]] == ["201 Created", "201 Created", "400 Bad Request"]


LATE = "9999-12-31T23:59:59-05:00"  # in UTC, the year 10000
TIMES_PAST_THE_CALENDAR = [
    ("occurrenceDateTime", {"occurrenceDateTime": LATE}),
    ("occurrencePeriod.end", {"occurrencePeriod": {"start": "2026-11-23T10:00:00-05:00", "end": LATE}}),
    ("occurrencePeriod.start", {"occurrencePeriod": {"start": "0001-01-01T00:00:00+05:00"}}),
]


@pytest.mark.parametrize(("field", "when"), TIMES_PAST_THE_CALENDAR)
def test_a_time_that_cannot_be_written_in_utc_is_a_400_naming_the_field(api: ApiClient, field: str,
                                                                       when: dict[str, Any]) -> None:
    answer = api.call("POST", "/fhir/CommunicationRequest", reminder("late", **when))
    assert answer.status_code == 400, answer.text
    assert field in body(answer)["issue"][0]["diagnostics"]
    assert sms_sent(api.host) == [] and api.host.storage.records.request("late") is None


@pytest.mark.parametrize("ndjson", [False, True])
def test_a_time_that_cannot_be_written_in_utc_is_its_batch_entrys_400_and_the_others_are_answered(
        api: ApiClient, ndjson: bool) -> None:
    resources = [reminder("t-1"), reminder("t-2", occurrenceDateTime=LATE), reminder("t-3", "Patient/qc-fr")]
    if ndjson:
        answer = api.call("POST", "/fhir/CommunicationRequest/$batch", raw=b"\n".join(
            json.dumps(r).encode() for r in resources), headers=[(b"content-type", b"application/fhir+ndjson")])
    else:
        answer = api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": r} for r in resources]})
    assert answer.status_code == 200, answer.text
    assert [e["response"]["status"] for e in body(answer)["entry"]] == ["201 Created", "400 Bad Request", "201 Created"]
    assert len(sms_sent(api.host)) == 2 and api.host.storage.records.request("t-2") is None


@pytest.mark.parametrize("mode", ["inline", "queue"])
def test_an_error_of_ours_in_one_batch_entry_is_answered_per_entry_not_as_a_500(
        make_host: Callable[..., Host], clients: list[Any], monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """The entries done before it are answered as they went; the first entry not answered is a 500
    to look up before sending it again, those after it 503s to send again (not tried), never a
    500 for the whole batch."""
    host = make_host(NO_NOTIFY + f"\n[delivery]\nmode = \"{mode}\"\n")
    api = ApiClient(host, create_app(host))
    clients.append(api)
    decide = host.decide

    def failing(req: Any, *args: Any, **kwargs: Any) -> Any:
        if req.id == "e-2":
            raise RuntimeError("the patient's number is +16135550123")
        return decide(req, *args, **kwargs)

    monkeypatch.setattr(host, "decide", failing)
    answer = api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": reminder(f"e-{n}")} for n in (1, 2, 3)]})
    assert answer.status_code == 200, answer.text
    entries = body(answer)["entry"]
    statuses = [e["response"]["status"] for e in entries]
    if mode == "inline":  # e-1 was sent before e-2 failed
        assert statuses == ["201 Created", "500 Internal Server Error", "503 Service Unavailable"]
        assert len(sms_sent(host)) == 1
        assert "CommunicationRequest/e-2" in entries[1]["response"]["outcome"]["issue"][0]["diagnostics"]
    else:  # e-1 shared e-2's commit, undone with it: the first entry not answered is the one to look up
        assert statuses == ["500 Internal Server Error", "503 Service Unavailable", "503 Service Unavailable"]
        assert host.storage.records.request("e-1") is None and sms_sent(host) == []
        assert "CommunicationRequest/e-1" in entries[0]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert "6135550123" not in answer.text and host.storage.records.request("e-3") is None


def test_a_request_reads_back_as_it_ended(api: ApiClient) -> None:
    api.call("POST", "/fhir/CommunicationRequest", reminder("r-read"))
    api.call("POST", "/fhir/CommunicationRequest", reminder("r-blocked", "Patient/none"))
    sent = body(api.call("GET", "/fhir/CommunicationRequest/r-read"))
    blocked = body(api.call("GET", "/fhir/CommunicationRequest/r-blocked"))
    assert (sent["status"], blocked["status"]) == ("completed", "revoked")
    assert blocked["statusReason"]["coding"][0]["code"] == "CONSENT_MISSING"
    assert api.call("GET", "/fhir/CommunicationRequest/nope").status_code == 404


APPOINTMENTS = "urn:emr:appointments"


def by_identifier(ident: list[dict[str, str]], rid: str = "x", patient: str = "Patient/on-en") -> dict[str, Any]:
    """A reminder that has no id of its own: its request id is derived from its identifier."""
    return {k: v for k, v in reminder(rid, patient, identifier=ident).items() if k != "id"}


def test_a_request_reads_back_last_updated_when_it_changed_not_when_it_was_read(api: ApiClient, clock: Clock) -> None:
    api.call("POST", "/fhir/CommunicationRequest", reminder("r-when", identifier=[{"value": "W-1"}]))
    clock.now += dt.timedelta(minutes=4)  # within the token's life
    read = api.call("GET", "/fhir/CommunicationRequest/r-when")
    [entry] = body(api.call("GET", "/fhir/CommunicationRequest", query="identifier=%7CW-1"))["entry"]
    assert body(read)["meta"]["lastUpdated"] == entry["resource"]["meta"]["lastUpdated"] == "2026-11-23T15:00:00Z"
    assert read.headers["last-modified"] == "Mon, 23 Nov 2026 15:00:00 GMT"


def test_a_request_reads_back_with_the_identifier_it_was_sent_with(api: ApiClient) -> None:
    sent = api.call("POST", "/fhir/CommunicationRequest", by_identifier([{"system": APPOINTMENTS, "value": "A-90"}]))
    rid = sent.headers["location"].rsplit("/", 1)[1]
    read = body(api.call("GET", f"/fhir/CommunicationRequest/{rid}"))
    assert read["identifier"] == [{"system": APPOINTMENTS, "value": "A-90"}]
    assert read["id"] == rid and read["status"] == "completed" and read["subject"] == {"reference": "Patient/on-en"}


def test_a_request_without_an_identifier_reads_back_without_one(api: ApiClient) -> None:
    assert api.call("POST", "/fhir/CommunicationRequest", reminder("r-no-ident")).status_code == 201
    api.host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-python", text=TEXT))
    for rid in ("r-no-ident", "r-python"):
        read = api.call("GET", f"/fhir/CommunicationRequest/{rid}")
        assert read.status_code == 200 and "identifier" not in body(read), rid
    assert api.host.storage.records.request("r-python").identifier is None  # type: ignore[union-attr]


def test_a_request_with_an_id_of_its_own_keeps_its_identifier_too(api: ApiClient) -> None:
    api.call("POST", "/fhir/CommunicationRequest", reminder("r-own", identifier=[{"value": "B-1"}]))
    assert body(api.call("GET", "/fhir/CommunicationRequest/r-own"))["identifier"] == [{"value": "B-1"}]
    found = body(api.call("GET", "/fhir/CommunicationRequest", query="identifier=%7CB-1"))
    assert [e["resource"]["id"] for e in found["entry"]] == ["r-own"]


# A request with several identifiers (an EMR's order, appointment and visit numbers): every one kept.
SEVERAL = [{"system": APPOINTMENTS, "value": "A-60"}, {"system": "urn:emr:orders", "value": "O-60"},
           {"value": "V-60"}]


def test_a_request_reads_back_with_every_identifier_it_was_sent_with_in_order(api: ApiClient) -> None:
    rid = api.call("POST", "/fhir/CommunicationRequest", by_identifier(SEVERAL)).headers["location"].rsplit("/", 1)[1]
    assert body(api.call("GET", f"/fhir/CommunicationRequest/{rid}"))["identifier"] == SEVERAL
    assert api.host.storage.records.request(rid).identifiers == tuple(  # type: ignore[union-attr]
        Identifier(i.get("system"), i["value"]) for i in SEVERAL)


@pytest.mark.parametrize("query", [f"identifier={APPOINTMENTS}|A-60", "identifier=urn:emr:orders|O-60",
                                   "identifier=%7CV-60"])
def test_a_search_finds_a_request_by_any_of_its_identifiers(api: ApiClient, query: str) -> None:
    api.call("POST", "/fhir/CommunicationRequest", by_identifier(SEVERAL))
    api.call("POST", "/fhir/CommunicationRequest", by_identifier([{"system": APPOINTMENTS, "value": "A-61"},
                                                                  {"system": "urn:emr:orders", "value": "O-61"}]))
    found = body(api.call("GET", "/fhir/CommunicationRequest", query=query))
    assert found["total"] == 1 and [e["resource"]["identifier"] for e in found["entry"]] == [SEVERAL]
    validate_resource(found)


def test_if_none_exist_naming_a_requests_second_identifier_sends_nothing_twice(api: ApiClient) -> None:
    # The EMR's retry names the identifier it files the request under, not necessarily the first.
    first = api.call("POST", "/fhir/CommunicationRequest", reminder("own-1", identifier=SEVERAL))
    again = api.call("POST", "/fhir/CommunicationRequest", reminder("own-2", identifier=SEVERAL),
                     headers=[(b"if-none-exist", b"identifier=urn:emr:orders|O-60")])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["location"].endswith("/CommunicationRequest/own-1") and len(sms_sent(api.host)) == 1


def test_if_none_exist_matching_two_requests_by_different_identifiers_is_412(api: ApiClient) -> None:
    api.call("POST", "/fhir/CommunicationRequest", reminder("own-1", identifier=SEVERAL))
    api.call("POST", "/fhir/CommunicationRequest", reminder("own-2", identifier=[{"value": "V-60"}]))
    again = api.call("POST", "/fhir/CommunicationRequest", reminder("own-3", identifier=SEVERAL),
                     headers=[(b"if-none-exist", b"identifier=%7CV-60")])
    assert again.status_code == 412 and body(again)["issue"][0]["code"] == "multiple-matches"
    assert len(sms_sent(api.host)) == 2


def test_a_batch_entrys_if_none_exist_naming_a_later_identifier_finds_the_request(api: ApiClient) -> None:
    api.call("POST", "/fhir/CommunicationRequest", reminder("own-1", identifier=SEVERAL))
    entry = {"request": {"method": "POST", "url": "CommunicationRequest", "ifNoneExist": "identifier=%7CV-60"},
             "resource": reminder("own-2", identifier=SEVERAL)}
    [answer] = body(api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [entry]}))["entry"]
    assert answer["response"]["status"] == "200 OK"
    assert answer["response"]["location"] == "CommunicationRequest/own-1" and len(sms_sent(api.host)) == 1


def test_a_batch_entrys_if_none_exist_naming_an_earlier_entrys_second_identifier_sends_nothing_twice(
        api: ApiClient) -> None:
    entries = [{"request": {"method": "POST", "url": "CommunicationRequest"}, "resource": reminder("own-1", identifier=SEVERAL)},
               {"request": {"method": "POST", "url": "CommunicationRequest",
                            "ifNoneExist": "identifier=urn:emr:orders|O-60"},
                "resource": reminder("own-2", identifier=SEVERAL)}]
    first, second = body(api.call("POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": entries}))["entry"]
    assert (first["response"]["status"], second["response"]["status"]) == ("201 Created", "200 OK")
    assert second["response"]["location"] == "CommunicationRequest/own-1" and len(sms_sent(api.host)) == 1


def test_a_request_with_more_identifiers_than_the_limit_is_a_400_naming_it(api: ApiClient) -> None:
    many = [{"system": APPOINTMENTS, "value": f"A-{n}"} for n in range(MAX_IDENTIFIERS + 1)]
    answer = api.call("POST", "/fhir/CommunicationRequest", by_identifier(many))
    assert answer.status_code == 400, answer.text
    assert f"the most one request may carry is {MAX_IDENTIFIERS}" in answer.text and "MAX_IDENTIFIERS" in answer.text
    assert sms_sent(api.host) == []
    assert api.call("POST", "/fhir/CommunicationRequest", by_identifier(many[:MAX_IDENTIFIERS])).status_code == 201


def test_if_none_exist_answers_with_the_identifier_the_request_was_sent_with(api: ApiClient) -> None:
    ident = [{"system": APPOINTMENTS, "value": "A-91"}]
    api.call("POST", "/fhir/CommunicationRequest", by_identifier(ident))
    again = api.call("POST", "/fhir/CommunicationRequest", reminder("another-id"),
                     headers=[(b"if-none-exist", f"identifier={APPOINTMENTS}|A-91".encode()),
                              (b"prefer", b"return=representation")])
    assert again.status_code == 200 and body(again)["identifier"] == ident


def test_a_search_by_identifier_finds_the_request_as_a_read_answers_it(api: ApiClient) -> None:
    ident = [{"system": APPOINTMENTS, "value": "A-92"}]
    rid = api.call("POST", "/fhir/CommunicationRequest", by_identifier(ident)).headers["location"].rsplit("/", 1)[1]
    api.call("POST", "/fhir/CommunicationRequest", by_identifier([{"system": APPOINTMENTS, "value": "A-93"}]))
    found = api.call("GET", "/fhir/CommunicationRequest", query=f"identifier={APPOINTMENTS}%7CA-92")
    assert found.status_code == 200
    assert body(found)["type"] == "searchset" and len(body(found)["entry"]) == 1 and body(found)["total"] == 1
    [entry] = body(found)["entry"]
    assert entry["resource"] == body(api.call("GET", f"/fhir/CommunicationRequest/{rid}"))
    assert entry["fullUrl"] == f"http://portal.test/fhir/CommunicationRequest/{rid}"
    assert entry["search"] == {"mode": "match"}
    validate_resource(body(found))  # R4 (the fhir.resources model)


def test_a_search_finds_a_blocked_request_with_why(api: ApiClient) -> None:
    api.call("POST", "/fhir/CommunicationRequest", by_identifier([{"system": APPOINTMENTS, "value": "A-94"}],
                                                                 patient="Patient/none"))
    [entry] = body(api.call("GET", "/fhir/CommunicationRequest", query=f"identifier={APPOINTMENTS}|A-94"))["entry"]
    assert entry["resource"]["status"] == "revoked"
    assert entry["resource"]["statusReason"]["coding"][0]["code"] == "CONSENT_MISSING"


@pytest.mark.parametrize("query", [f"identifier={APPOINTMENTS}|A-nope", "identifier=urn:other|A-95",
                                   "identifier=%7CA-95", f"identifier={APPOINTMENTS}|a-95"])
def test_a_search_for_an_identifier_no_request_was_sent_with_is_an_empty_bundle(api: ApiClient, query: str) -> None:
    api.call("POST", "/fhir/CommunicationRequest", by_identifier([{"system": APPOINTMENTS, "value": "A-95"}]))
    found = api.call("GET", "/fhir/CommunicationRequest", query=query)
    assert found.status_code == 200, found.text
    assert body(found)["type"] == "searchset" and "entry" not in body(found)
    assert body(found)["total"] == 0  # HAPI's getTotal() and Firely's Total read no total as 0 or null alike


def test_an_identifier_with_an_escaped_bar_or_comma_is_found(api: ApiClient) -> None:
    api.call("POST", "/fhir/CommunicationRequest", by_identifier([{"system": APPOINTMENTS, "value": "A|96,b"}]))
    found = body(api.call("GET", "/fhir/CommunicationRequest", query=f"identifier={APPOINTMENTS}|A%5C%7C96%5C,b"))
    assert [e["resource"]["identifier"] for e in found["entry"]] == [[{"system": APPOINTMENTS, "value": "A|96,b"}]]


@pytest.mark.parametrize(("query", "name"), [
    ("", "identifier"), ("identifier=A-97", "identifier"), (f"identifier={APPOINTMENTS}|", "identifier"),
    ("identifier=a|b|c", "identifier"), ("identifier=a|b,a|c", "identifier"),
    (f"identifier=a|{'x' * 257}", "identifier"), ("identifier=a|b%0Ac", "identifier"),
    ("identifier=a|b&identifier=a|c", "identifier"), ("patient=Patient/on-en", "patient"), ("_id=x", "_id"),
    ("identifier=a|b&_format=xml", "_format")])
def test_a_request_search_parameter_that_cannot_be_read_is_a_4xx_naming_it(api: ApiClient, query: str,
                                                                          name: str) -> None:
    answer = api.call("GET", "/fhir/CommunicationRequest", query=query)
    assert answer.status_code in (400, 406), answer.text
    assert body(answer)["resourceType"] == "OperationOutcome" and body(answer)["issue"][0]["expression"] == [name]


def test_a_request_search_needs_the_read_scope(make_host: Callable[..., Host], clients: list[Any]) -> None:
    host = make_host(NO_NOTIFY)
    writer = ApiClient(host, create_app(host), scopes=["system/CommunicationRequest.write"])
    clients.append(writer)
    answer = writer.call("GET", "/fhir/CommunicationRequest", query="identifier=a|b")
    assert answer.status_code == 403 and body(answer)["issue"][0]["code"] == "forbidden"


@pytest.mark.parametrize(("ident", "why"), [([{"system": APPOINTMENTS, "value": "x" * 257}], "257 characters"),
                                            ([{"system": "u" * 257, "value": "A-98"}], "257 characters"),
                                            ([{"system": APPOINTMENTS, "value": "A-\u000098"}], "U+0000")])
def test_an_identifier_too_long_or_with_a_control_character_is_refused_and_nothing_is_sent(
        api: ApiClient, ident: list[dict[str, str]], why: str) -> None:
    answer = api.call("POST", "/fhir/CommunicationRequest", by_identifier(ident))
    assert answer.status_code == 400 and why in body(answer)["issue"][0]["diagnostics"], answer.text
    assert sms_sent(api.host) == []


def test_a_communication_read_carries_its_version_as_a_weak_etag(api: ApiClient) -> None:
    # FHIR: a server SHOULD send ETag W/"<versionId>" on a read.
    api.call("POST", "/fhir/CommunicationRequest", reminder("r-etag"))
    [entry] = body(api.call("GET", "/fhir/Communication", query="based-on=CommunicationRequest/r-etag"))["entry"]
    read = api.call("GET", f"/fhir/Communication/{entry['resource']['id']}")
    assert read.headers["etag"] == f'W/"{body(read)["meta"]["versionId"]}"'
    assert read.headers["last-modified"] == "Mon, 23 Nov 2026 15:00:00 GMT"  # meta.lastUpdated, as HTTP says it


@pytest.mark.parametrize(("accept", "format_", "status"), [
    ("", "", 200), ("*/*", "", 200), ("application/fhir+json", "", 200), ("application/json; charset=utf-8", "", 200),
    ("application/fhir+json;q=1.0, application/fhir+xml;q=0.9", "", 200), ("", "json", 200),
    ("application/fhir+xml", "", 406), ("application/xml, text/xml", "", 406),
    ("application/fhir+json;q=0, application/fhir+xml", "", 406), ("", "xml", 406), ("", "application/fhir+xml", 406)])
def test_reads_answer_406_to_a_client_that_takes_no_json(api: ApiClient, accept: str, format_: str,
                                                         status: int) -> None:
    # A FHIR client that asked for XML must not be handed JSON with a 200: the search, the reads
    # and the CapabilityStatement answer alike.
    api.call("POST", "/fhir/CommunicationRequest", reminder("r-accept"))
    [entry] = body(api.call("GET", "/fhir/Communication", query="based-on=CommunicationRequest/r-accept"))["entry"]
    headers = [(b"accept", accept.encode())] if accept else []
    query = f"_format={format_}" if format_ else ""
    for path in (f"/fhir/Communication/{entry['resource']['id']}", "/fhir/CommunicationRequest/r-accept",
                 "/fhir/Communication", "/fhir/metadata"):
        answer = api.call("GET", path, query=query, headers=headers)
        assert answer.status_code == status, (path, accept, format_, answer.text)
        if status == 406:
            assert body(answer)["resourceType"] == "OperationOutcome"


# Communication search ---------------------------------------------------------------------------------------
def test_search_pages_through_every_match_once_by_next_links(api: ApiClient) -> None:
    for i in range(7):
        api.call("POST", "/fhir/CommunicationRequest", reminder(f"s-{i}"))
    api.call("POST", "/fhir/CommunicationRequest", reminder("s-other", "Patient/qc-fr"))
    seen: list[str] = []
    totals: list[int | None] = []
    query = "patient=Patient/on-en&status=completed&_count=3"
    while query is not None:
        page = body(api.call("GET", "/fhir/Communication", query=query))
        seen += [e["resource"]["id"] for e in page.get("entry", ())]
        totals.append(page.get("total"))
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        query = nxt[0].split("?", 1)[1] if nxt else None
    assert len(seen) == len(set(seen)) == 7
    assert totals == [None, None, None]  # not counted unless asked: the first page does not hold them all
    # _total=accurate counts every match on every page, the next links keeping it.
    query, totals = "patient=Patient/on-en&status=completed&_count=3&_total=accurate", []
    while query is not None:
        page = body(api.call("GET", "/fhir/Communication", query=query))
        totals.append(page["total"])
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        query = nxt[0].split("?", 1)[1] if nxt else None
    assert totals == [7, 7, 7]


@pytest.mark.parametrize(("query", "count"), [
    ("category=appointment-reminder", 3), ("category=http://emrcomm.org/fhir/CodeSystem/category|invoice", 0),
    ("status=not-done", 1), ("status=completed,not-done", 3), ("subject=Patient/qc-fr", 1),
    ("based-on=CommunicationRequest/f-1", 1), ("_lastUpdated=ge2026-11-23", 3), ("_lastUpdated=lt2026-11-23", 0),
    ("_lastUpdated=gt2026-11-23T14:00:00Z&_lastUpdated=le2026-11-23T16:00:00Z", 3),
    ("_lastUpdated=gt2026-11-23T15:00:00Z", 0)])
def test_search_filters(api: ApiClient, query: str, count: int) -> None:
    api.call("POST", "/fhir/CommunicationRequest", reminder("f-1"))
    api.call("POST", "/fhir/CommunicationRequest", reminder("f-2", "Patient/qc-fr"))
    api.call("POST", "/fhir/CommunicationRequest", reminder("f-3", "Patient/none"))
    found = body(api.call("GET", "/fhir/Communication", query=query))
    assert len(found.get("entry", ())) == count, query
    # A first page that holds every match says how many (a client reads "none" from total 0);
    # _total=none asks for no total.
    assert found["total"] == count, query
    assert "total" not in body(api.call("GET", "/fhir/Communication", query=f"{query}&_total=none"))
    # What FHIR clients add on their own changes nothing.
    for extra in ("_summary=false", "_pretty=true", "_format=json", "_total=accurate", "_total=estimate"):
        same = body(api.call("GET", "/fhir/Communication", query=f"{query}&{extra}"))
        assert (len(same.get("entry", ())), same["total"]) == (count, count), (query, extra)
    # The number of matches alone: the Bundle's total, no entry, however many there are.
    for alone in ("_summary=count", "_count=0"):
        counted = body(api.call("GET", "/fhir/Communication", query=f"{query}&{alone}"))
        assert (counted["type"], counted["total"], "entry" in counted) == ("searchset", count, False), (query, alone)


def test_a_search_time_whose_plus_was_not_url_encoded_says_to_write_it_as_2b(api: ApiClient) -> None:
    # 'ge2026-11-23T00:00:00+00:00' copied into a URL as it is: the '+' arrives as a space.
    answer = api.call("GET", "/fhir/Communication", query="_lastUpdated=ge2026-11-23T00:00:00+00:00")
    assert answer.status_code == 400 and "%2B" in body(answer)["issue"][0]["diagnostics"]
    encoded = api.call("GET", "/fhir/Communication", query="_lastUpdated=ge2026-11-23T00:00:00%2B00:00")
    assert encoded.status_code == 200


@pytest.mark.parametrize("query", ["name=x", "status=sent", "_count=-1", "_count=x", "_lastUpdated=yesterday",
                                   "_cursor=garbage", "category=nope", "patient=a/b/c", "status=completed&status=x",
                                   "_summary=true", "_summary=data", "_summary=count&_summary=count", "_pretty=yes",
                                   "_total=all", "_total=accurate&_total=none"])
def test_a_search_parameter_that_cannot_be_read_is_a_400_naming_it(api: ApiClient, query: str) -> None:
    answer = api.call("GET", "/fhir/Communication", query=query)
    assert answer.status_code == 400 and body(answer)["issue"][0]["diagnostics"]


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(("query", "name"), [
    ("_lastUpdated=ge0001-01-01T00:00:00%2B05:00", "_lastUpdated"),  # in UTC, the year 0
    ("_lastUpdated=lt9999-12-31T23:59:58-05:00", "_lastUpdated"),  # in UTC, the year 10000
    (f"_cursor={cursor(json.dumps(['0001-01-01T00:00:00+05:00', 'x']))}", "_cursor"),
    (f"_cursor={cursor('[' * 3000 + ']' * 3000)}", "_cursor"),
])
def test_a_search_time_or_cursor_past_the_calendar_or_nested_deep_is_a_400(api: ApiClient, query: str,
                                                                           name: str) -> None:
    answer = api.call("GET", "/fhir/Communication", query=query)
    assert answer.status_code == 400, answer.text
    assert body(answer)["issue"][0]["expression"] == [name]


# Consent -----------------------------------------------------------------------------------------------------
def consent(status: str = "inactive", **more: Any) -> dict[str, Any]:
    return {"resourceType": "Consent", "status": status, "patient": {"reference": "Patient/on-en"},
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://emrcomm.org/fhir/CodeSystem/purpose", "code": "clinical"}]}],
            "provision": {"code": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                                                "code": "SMSWRIT"}]}]}, **more}


def test_a_front_desk_opt_out_reaches_the_ledger_like_a_stop_and_the_next_sms_is_refused(api: ApiClient) -> None:
    answer = api.call("POST", "/fhir/Consent", consent(extension=[
        {"url": "http://emrcomm.org/fhir/StructureDefinition/consent-source", "valueString": "front desk"}]))
    assert answer.status_code == 201, answer.text
    last = api.host.storage.consent.last(channel="sms", address="+16135550123")
    assert last is not None and last.revokes and last.source == "front desk"
    check = body(api.call("POST", "/fhir/CommunicationRequest/$check", reminder("after")))
    assert "sms: rejected (CONSENT_REVOKED)" in " ".join(i.get("diagnostics", "") for i in check["issue"])


def test_an_opt_in_after_an_opt_out_restores_the_channel(api: ApiClient) -> None:
    api.call("POST", "/fhir/Consent", consent())
    assert api.call("POST", "/fhir/Consent", consent("active")).status_code == 201
    check = body(api.call("POST", "/fhir/CommunicationRequest/$check", reminder("back")))
    assert "sms: would be chosen" in " ".join(i.get("diagnostics", "") for i in check["issue"])


@pytest.mark.parametrize("change", [{"status": "proposed"},
                                    {"provision": {"code": [{"coding": [{"system": "x", "code": "y"}]}]}},
                                    {"provision": {"code": [{"coding": [{"system": "http://emrcomm.org/fhir/CodeSystem/channel",
                                                                         "code": "portal"}]}]}},
                                    {"extension": [{"url": "http://emrcomm.org/fhir/StructureDefinition/consent-address",
                                                    "valueString": "not a number"}]}])
def test_a_consent_that_cannot_be_read_is_refused_and_the_ledger_is_unchanged(api: ApiClient, change: dict[str, Any]) -> None:
    answer = api.call("POST", "/fhir/Consent", consent(**change))
    assert answer.status_code == 422 and body(answer)["resourceType"] == "OperationOutcome", answer.text
    assert api.host.storage.consent.last(channel="sms", address="+16135550123") is None


@pytest.mark.parametrize("ref", ["Group/1", "on-en", "Patient/", "Patient?identifier=urn:emr:mrn|123"])
def test_a_patient_reference_without_patient_is_a_400_on_a_consent_as_on_a_request(api: ApiClient, ref: str) -> None:
    # A field emrcomm cannot read (docs/api.md, "Status codes"): the same answer on both endpoints.
    request = api.call("POST", "/fhir/CommunicationRequest", {**reminder("r-ref"), "subject": {"reference": ref}})
    given = api.call("POST", "/fhir/Consent", consent(patient={"reference": ref}))
    assert (request.status_code, given.status_code) == (400, 400), given.text
    assert body(request)["issue"][0]["code"] == body(given)["issue"][0]["code"] == "invalid"
    assert "Patient/<id>" in body(given)["issue"][0]["diagnostics"] and ledger_size(api) == 0


@pytest.mark.parametrize(("path", "without", "where"), [
    ("/fhir/CommunicationRequest", "subject", "CommunicationRequest.subject"),
    ("/fhir/CommunicationRequest", "category", "CommunicationRequest.category"),
    ("/fhir/CommunicationRequest", "payload", "CommunicationRequest.payload"),  # nor a template: no words
    ("/fhir/CommunicationRequest", "status", "CommunicationRequest.status"),  # R4 requires it
    ("/fhir/Consent", "patient", "Consent.patient"),
    ("/fhir/Consent", "status", "Consent.status"),
])
def test_a_required_field_that_is_missing_is_a_400_required_on_every_resource(
        api: ApiClient, path: str, without: str, where: str) -> None:
    # docs/api.md section 9: a field that is missing is 'required', one emrcomm cannot read 'invalid'.
    given = reminder("r-missing") if path.endswith("CommunicationRequest") else consent()
    answer = api.call("POST", path, {k: v for k, v in given.items() if k != without})
    [issue] = body(answer)["issue"]
    assert (answer.status_code, issue["code"], issue["expression"]) == (400, "required", [where]), answer.text
    if path.endswith("CommunicationRequest"):  # a batch entry is answered the same
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "POST", "url": "CommunicationRequest"},
             "resource": {k: v for k, v in given.items() if k != without}}]}
        [entry] = body(api.call("POST", "/fhir", batch))["entry"]
        assert entry["response"]["outcome"]["issue"][0]["code"] == "required"
    assert sms_sent(api.host) == [] and ledger_size(api) == 0


def test_a_consent_for_a_patient_no_directory_knows_is_refused_saying_so(api: ApiClient) -> None:
    # It said 'Patient/nobody has no sms address on file', and the EMR looked for a missing number.
    answer = api.call("POST", "/fhir/Consent", consent(patient={"reference": "Patient/nobody"}))
    assert answer.status_code == 422, answer.text
    issue = body(answer)["issue"][0]
    assert issue["code"] == "not-found" and issue["expression"] == ["Consent.patient"]
    assert issue["diagnostics"].startswith("no directory knows Patient/nobody")
    assert api.host.storage.consent.last(channel="sms", address="+16135550123") is None


PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
ADDRESS = "http://emrcomm.org/fhir/StructureDefinition/consent-address"
EMAIL = {"code": [{"coding": [{"system": PARTICIPATION, "code": "EMAILWRIT"}]}]}


def ledger_size(api: ApiClient) -> int:
    return int(api.host.storage.db.query("SELECT COUNT(*) AS n FROM consent_events")[0]["n"])


@pytest.mark.parametrize(("change", "where"), [
    ({"category": [{"coding": 5}]}, "category"),
    ({"category": 5}, "category"),
    ({"category": "clinical"}, "category"),  # not a list of CodeableConcepts: it would mean every purpose
    ({"provision": {"code": [{"coding": [{"system": PARTICIPATION, "code": ["SMSWRIT"]}]}]}}, "provision"),
    ({"provision": {"type": "Deny", **EMAIL}}, "provision"),
    ({"extension": {"url": ADDRESS, "valueString": "+16135550123"}}, "extension"),
])
def test_a_consent_of_the_wrong_shape_is_a_4xx_naming_the_field_and_the_ledger_is_unchanged(
        api: ApiClient, change: dict[str, Any], where: str) -> None:
    answer = api.call("POST", "/fhir/Consent", consent(**change))
    assert answer.status_code in (400, 422), answer.text
    issue = body(answer)["issue"][0]
    assert where in " ".join(issue.get("expression", ())) + issue["diagnostics"]
    assert ledger_size(api) == 0


@pytest.mark.parametrize("address", ["evil\u2028addr\u0000", "anne@example.org\u2029", "anne@example.org\nBcc: x@y.z",
                                     "not an address", "+16135550123", "anne@@example.org", "\u202eanne@example.org"])
def test_an_email_consent_address_that_is_not_one_email_address_is_refused(api: ApiClient, address: str) -> None:
    answer = api.call("POST", "/fhir/Consent", consent(provision=EMAIL, extension=[{"url": ADDRESS,
                                                                                    "valueString": address}]))
    assert answer.status_code == 422, answer.text
    assert body(answer)["issue"][0]["expression"] == ["Consent.extension"]
    assert ledger_size(api) == 0


@pytest.mark.parametrize("address", ["+1 613 555 0123\u2028", "+1 613 555 0123\u0000", "\u200e+1 613 555 0123"])
def test_a_phone_consent_address_with_a_control_or_separator_character_is_refused(api: ApiClient, address: str) -> None:
    answer = api.call("POST", "/fhir/Consent", consent(extension=[{"url": ADDRESS, "valueString": address}]))
    assert answer.status_code == 422, answer.text
    assert ledger_size(api) == 0


def test_an_email_consent_address_is_taken_as_given(api: ApiClient) -> None:
    answer = api.call("POST", "/fhir/Consent", consent(provision=EMAIL, extension=[{"url": ADDRESS,
                                                                                    "valueString": " anne@example.org "}]))
    assert answer.status_code == 201, answer.text
    last = api.host.storage.consent.last(channel="email", address="anne@example.org")
    assert last is not None and last.revokes


SMS_AND_EMAIL = {"type": "deny", "code": [{"coding": [{"system": PARTICIPATION, "code": "SMSWRIT"}]},
                                           {"coding": [{"system": PARTICIPATION, "code": "EMAILWRIT"}]}]}


def consent_entries(host: Host) -> list[tuple[str, str | None, str]]:
    return [(e.channel, e.address, e.action) for e in host.storage.consent.history()]


def _store_gone_at_email(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The store goes away when the ledger takes an email entry (while the flag holds): a Consent
    naming SMS, then email, fails at its second entry. The real server stopped so is
    tests/test_postgres.py's; this puts the same fault on both stores."""
    from emrcomm.storage import StoreUnavailable
    from emrcomm.storage.consent import SqlConsentLedger

    failing = [True]
    add = SqlConsentLedger.add

    def add_or_fail(self: Any, **kw: Any) -> int:
        if failing[0] and kw["channel"] == "email":
            raise StoreUnavailable("the database server closed the connection")
        return add(self, **kw)

    monkeypatch.setattr(SqlConsentLedger, "add", add_or_fail)
    return failing


def test_a_consent_that_fails_at_its_second_address_records_nothing_and_its_retry_records_each_once(
        make_host: Callable[..., Host], clients: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """One Consent, one transaction: the SMS entry written before the email one failed is undone
    with it (and their audit entries), so the EMR's retry of the Consent it was told failed
    records each address once. Each entry committed on its own, the retry wrote the SMS
    entry twice."""
    host = make_host(NO_NOTIFY)
    api = ApiClient(host, create_app(host))
    clients.append(api)
    failing = _store_gone_at_email(monkeypatch)
    failed = api.call("POST", "/fhir/Consent", consent(provision=SMS_AND_EMAIL))
    assert failed.status_code == 503 and body(failed)["resourceType"] == "OperationOutcome", failed.text
    assert consent_entries(host) == []
    assert not [e for e in entries(host.storage) if e["kind"] in ("optout", "consent.recorded")]
    failing[0] = False
    again = api.call("POST", "/fhir/Consent", consent(provision=SMS_AND_EMAIL))
    assert again.status_code == 201, again.text
    assert consent_entries(host) == [("sms", "+16135550123", "revoke"), ("email", "alex.martin@example.org", "revoke")]
    assert [e["kind"] for e in entries(host.storage) if e["kind"] in ("optout", "consent.recorded")] == [
        "optout", "optout", "consent.recorded"]
    assert audit_verify(host.storage, [host.audit.key.public]).ok  # nothing of the undone ones left in the chain


def test_a_consent_stands_when_another_plugin_that_hears_of_it_fails(
        make_host: Callable[..., Host], clients: list[Any], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The EMR's adapter, which hears of every update, is down: the front desk's withdrawal of
    email is in the ledger all the same (undone with the adapter's failure, the patient was
    still emailed until someone sent the Consent again), and the log names the plugin."""
    from fakes import DeafToEmail

    monkeypatch.setattr(DeafToEmail, "FAIL", True)
    entry_points = {**discover(), "deaf": metadata.EntryPoint(name="deaf", value="fakes:DeafToEmail", group="emrcomm")}
    host = make_host(NO_NOTIFY + f'\n[plugins]\norder = [{ALL_PLUGINS}, "deaf"]\n', entry_points=entry_points)
    api = ApiClient(host, create_app(host))
    clients.append(api)
    answered = api.call("POST", "/fhir/Consent", consent(provision=SMS_AND_EMAIL))
    assert answered.status_code == 201, answered.text
    assert consent_entries(host) == [("sms", "+16135550123", "revoke"), ("email", "alex.martin@example.org", "revoke")]
    assert "plugin 'deaf' failed" in caplog.text and "alex.martin" not in caplog.text


def test_the_code_path_the_consent_command_shares_records_a_consent_whole_on_its_own(
        make_host: Callable[..., Host], monkeypatch: pytest.MonkeyPatch) -> None:
    # `emrcomm consent` calls read and record_once (without an identifier: none given) with no
    # transaction of its own around them; tests/test_callbacks.py's front desk, entries and record.
    from emrcomm.api.consent import content_digest, read, record, record_once
    from emrcomm.api.consent import entries as consent_entries_of
    from emrcomm.storage import StoreUnavailable

    host = make_host(NO_NOTIFY)
    said = read(host, consent(provision=SMS_AND_EMAIL), client="cli")
    found = consent_entries_of(host, consent(provision=SMS_AND_EMAIL), client="cli")
    _store_gone_at_email(monkeypatch)
    with pytest.raises(StoreUnavailable):
        record_once(host, said, identifiers={}, digest=content_digest(said, host.audit.patient))
    with pytest.raises(StoreUnavailable):
        record(host, found)
    assert consent_entries(host) == []


def test_two_consents_naming_the_same_addresses_in_opposite_orders_are_each_recorded_whole(
        make_host: Callable[..., Host], clients: list[Any]) -> None:
    """The front desk revokes SMS and email while another desk grants email and SMS back,
    again and again: each Consent is answered 201 and recorded whole, one after the other, so
    the ledger's last word for both addresses is the same Consent's. Written an entry at a time,
    the two interleaved (SMS granted, email revoked: what neither said); written whole but each
    taking its addresses in its own order, PostgreSQL found them deadlocked and aborted one (500)."""
    host = make_host(NO_NOTIFY)
    app = create_app(host)
    api = ApiClient(host, app)
    clients.append(api)
    opposite = {"code": list(reversed(SMS_AND_EMAIL["code"]))}
    given = {"revoke": consent(provision=SMS_AND_EMAIL), "grant": consent("active", provision=opposite)}
    rounds = 20
    statuses: dict[str, list[int]] = {"revoke": [], "grant": []}
    last_words: list[set[str]] = []

    def both_answered() -> None:
        last_words.append({last.action for channel, address in (("sms", "+16135550123"),
                                                                ("email", "alex.martin@example.org"))
                           if (last := host.storage.consent.last(channel=channel, address=address)) is not None})

    start, done = threading.Barrier(2), threading.Barrier(2, action=both_answered)

    def post(action: str) -> None:
        client = InProcess(app)  # an event loop of its own: a connection of its own
        try:
            for _ in range(rounds):
                start.wait(60)
                answer = client.request("POST", "/fhir/Consent", body=json.dumps(given[action]).encode(),
                                        headers=[*api.auth(), FHIR])
                statuses[action].append(answer.status_code)
                done.wait(60)
        finally:
            client.close()

    threads = [threading.Thread(target=post, args=(action,)) for action in given]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == {"revoke": [201] * rounds, "grant": [201] * rounds}
    assert [len(words) for words in last_words] == [1] * rounds, last_words
    ledger = consent_entries(host)
    assert len(ledger) == 4 * rounds
    assert all(ledger[i][2] == ledger[i + 1][2] for i in range(0, len(ledger), 2)), ledger  # each whole


CONSENT_ID = {"system": "urn:emr:consent-forms", "value": "F-2201"}
ID_CONDITION = (b"if-none-exist", b"identifier=urn:emr:consent-forms|F-2201")


def grant_form(**more: Any) -> dict[str, Any]:
    """The grant a front desk filled in, on form F-2201, for the number given."""
    return consent("active", extension=[{"url": ADDRESS, "valueString": "+1 613 555 0123"},
                                        {"url": "http://emrcomm.org/fhir/StructureDefinition/consent-source",
                                         "valueString": "signed form, front desk"}], **more)


@pytest.mark.parametrize("named", ["identifier", "If-None-Exist"])
def test_a_consent_sent_again_with_its_identifier_is_answered_as_first_recorded_and_recorded_once(
        api: ApiClient, named: str) -> None:
    given, headers = ((grant_form(identifier=[CONSENT_ID]), ()) if named == "identifier"
                      else (grant_form(), (ID_CONDITION,)))
    first = api.call("POST", "/fhir/Consent", given, headers=headers)
    assert first.status_code == 201, first.text
    again = api.call("POST", "/fhir/Consent", given, headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["location"] == first.headers["location"]
    assert body(again)["id"] == body(first)["id"]
    assert body(again)["meta"] == body(first)["meta"]
    assert consent_entries(api.host) == [("sms", "+16135550123", "grant")]
    assert [e["kind"] for e in entries(api.host.storage) if e["kind"] == "consent.recorded"] == ["consent.recorded"]


def test_a_consent_sent_again_with_other_dates_is_answered_with_the_dates_first_recorded(api: ApiClient) -> None:
    """The EMR rebuilds the Consent for its retry and stamps it anew (dateTime, provision.period):
    the retry is the same Consent (neither is in its digest) and is answered with the one first
    recorded, so that the EMR sees one Consent, not the retry's dates under the first's id."""
    def stamped(at: str, start: str) -> dict[str, Any]:
        return grant_form(identifier=[CONSENT_ID], dateTime=at, provision={
            "period": {"start": start}, "code": [{"coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "SMSWRIT"}]}]})

    first = api.call("POST", "/fhir/Consent", stamped("2026-11-20T10:00:00-05:00", "2026-11-20"))
    assert first.status_code == 201, first.text
    again = api.call("POST", "/fhir/Consent", stamped("2026-11-20T10:05:00-05:00", "2026-11-21"))
    assert again.status_code == 200, again.text
    assert body(again)["dateTime"] == "2026-11-20T10:00:00-05:00"
    assert body(again)["provision"]["period"] == {"start": "2026-11-20"}
    assert body(again) == body(first)
    assert consent_entries(api.host) == [("sms", "+16135550123", "grant")]


def test_a_stop_between_a_grant_and_its_retry_leaves_the_patient_opted_out(api: ApiClient) -> None:
    """The EMR posts the front desk's grant, loses the answer, the patient texts STOP, the EMR
    posts the grant again: the STOP stands (a form filled before it does not lift it)."""
    from emrcomm.model import DeliveryUpdate

    assert api.call("POST", "/fhir/Consent", grant_form(identifier=[CONSENT_ID])).status_code == 201
    api.host.delivery_update(DeliveryUpdate(kind="optout", at=api.host.clock(), channel="sms", address="+16135550123",
                                            text="STOP reply", detail="Patient/on-en"))
    retry = api.call("POST", "/fhir/Consent", grant_form(identifier=[CONSENT_ID]))
    assert retry.status_code == 200, retry.text
    last = api.host.storage.consent.last(channel="sms", address="+16135550123", purpose="clinical")
    assert last is not None and last.revokes and last.source == "STOP reply"
    check = body(api.call("POST", "/fhir/CommunicationRequest/$check", reminder("after-stop")))
    assert "sms: rejected (CONSENT_REVOKED)" in " ".join(i.get("diagnostics", "") for i in check["issue"])


@pytest.mark.parametrize("change", [
    {"patient": {"reference": "Patient/qc-fr"}},
    {"extension": [{"url": ADDRESS, "valueString": "+1 613 555 0199"},
                   {"url": "http://emrcomm.org/fhir/StructureDefinition/consent-source",
                    "valueString": "signed form, front desk"}]},
    {"status": "inactive"},
    {"category": [{"coding": [{"system": "http://emrcomm.org/fhir/CodeSystem/purpose", "code": "billing"}]}]},
])
@pytest.mark.parametrize("named", ["identifier", "If-None-Exist"])
def test_an_identifier_used_again_for_another_consent_is_a_409_naming_it_and_records_nothing(
        api: ApiClient, change: dict[str, Any], named: str) -> None:
    headers = (ID_CONDITION,) if named == "If-None-Exist" else ()
    mark = {"identifier": [CONSENT_ID]} if named == "identifier" else {}
    assert api.call("POST", "/fhir/Consent", grant_form(**mark), headers=headers).status_code == 201
    other = api.call("POST", "/fhir/Consent", {**grant_form(**mark), **change}, headers=headers)
    assert other.status_code == 409, other.text
    issue = body(other)["issue"][0]
    assert issue["code"] == "conflict" and "urn:emr:consent-forms|F-2201" in issue["diagnostics"]
    assert issue["expression"] == ["Consent.identifier" if named == "identifier" else "If-None-Exist"]
    assert consent_entries(api.host) == [("sms", "+16135550123", "grant")]


def schema_10_digest(patient: str, action: str, purpose: str | None, source: str, channels: list[str],
                     addresses: list[list[str]] | None) -> bytes:
    """The digest schema 10 kept of what a Consent said (docs/api.md, section 11): the first 16
    bytes of the SHA-256 of its content as JSON with sorted keys, no spaces."""
    import hashlib

    content = {"action": action, "addresses": addresses, "channels": channels, "patient": patient,
               "purpose": purpose, "source": source}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).digest()[:16]


@pytest.mark.parametrize("named", ["address", "on-file"])
def test_a_consent_identifier_schema_10_recorded_still_answers_its_retry(api: ApiClient, named: str) -> None:
    """A Consent recorded before this release kept the digest schema 10 made: its retry is
    answered 200 as that Consent, not 409 (the digest's bytes are the same, with and without
    a consent-address)."""
    given = grant_form(identifier=[CONSENT_ID]) if named == "address" else consent(identifier=[CONSENT_ID])
    said = (("grant", "signed form, front desk", [["sms", "+16135550123"]]) if named == "address"
            else ("revoke", f"front desk (API client {api.client_id})", None))
    store = api.host.storage
    with store.transaction():
        seq = store.consent.add(patient="Patient/on-en", channel="sms", address="+16135550123", purpose="clinical",
                                action=said[0], at=api.host.clock(), source=said[1])
        store.db.execute("INSERT INTO consent_identifiers (identifier, consent, digest, recorded) VALUES (?, ?, ?, ?)",
                         ('["urn:emr:consent-forms","F-2201"]', seq,
                          schema_10_digest("Patient/on-en", said[0], "clinical", said[1], ["sms"], said[2]),
                          iso(api.host.clock())))
    again = api.call("POST", "/fhir/Consent", given)
    assert again.status_code == 200, again.text
    assert body(again)["id"] == str(seq)
    assert ledger_size(api) == 1


def test_the_capability_statement_says_a_consent_is_created_once_per_identifier(api: ApiClient) -> None:
    rest = capability_statement("http://x/fhir", "0", api.host.clock())["rest"][0]
    [found] = [r for r in rest["resource"] if r["type"] == "Consent"]
    assert found.get("conditionalCreate") is True


@pytest.mark.parametrize("condition", ["_id=12", "CommunicationRequest?identifier=urn:emr:consent-forms|F-2201",
                                       "identifier=urn:emr:consent-forms", "identifier=a|b,c|d"])
def test_a_consent_if_none_exist_that_names_no_one_identifier_is_a_400_and_records_nothing(
        api: ApiClient, condition: str) -> None:
    answer = api.call("POST", "/fhir/Consent", grant_form(), headers=[(b"if-none-exist", condition.encode())])
    assert answer.status_code == 400, answer.text
    assert body(answer)["issue"][0]["expression"] == ["If-None-Exist"]
    assert ledger_size(api) == 0


def test_two_posts_of_one_consent_at_once_record_it_once(make_host: Callable[..., Host], clients: list[Any]) -> None:
    """The EMR's retry arrives while its first POST is still being recorded (on another serve
    process, say): the identifier's claim arbitrates, one is recorded (201), the other waits for
    it and is answered as it (200). Without the claim, both read "not recorded yet" and both wrote."""
    host = make_host(NO_NOTIFY)
    app = create_app(host)
    api = ApiClient(host, app)
    clients.append(api)
    rounds = 10
    statuses: list[list[int]] = [[] for _ in range(rounds)]
    ids: list[set[str]] = [set() for _ in range(rounds)]
    start = threading.Barrier(2)

    def post() -> None:
        client = InProcess(app)  # an event loop of its own: a connection of its own
        try:
            for n in range(rounds):
                given = grant_form(identifier=[{"system": "urn:emr:consent-forms", "value": f"F-{n}"}])
                start.wait(60)
                answer = client.request("POST", "/fhir/Consent", body=json.dumps(given).encode(),
                                        headers=[*api.auth(), FHIR])
                statuses[n].append(answer.status_code)
                ids[n].add(json.loads(answer.content)["id"])
        finally:
            client.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [sorted(s) for s in statuses] == [[200, 201]] * rounds
    assert [len(i) for i in ids] == [1] * rounds
    assert consent_entries(host) == [("sms", "+16135550123", "grant")] * rounds


# Subscriptions and notifications ----------------------------------------------------------------------------
def subscribe(api: ApiClient, endpoint: str, criteria: str = "Communication?patient=Patient/on-en") -> dict[str, Any]:
    answer = api.call("POST", "/fhir/Subscription", {
        "resourceType": "Subscription", "status": "requested", "reason": "EMR", "criteria": criteria,
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                    "header": ["Authorization: Bearer emr"]}})
    assert answer.status_code == 201, answer.text
    return dict(body(answer))


def test_a_subscription_hears_of_a_send_signed_and_with_its_headers(api: ApiClient) -> None:
    with scripted() as emr:
        sub = subscribe(api, emr.url + "/hooks")
        secret = sub["extension"][0]["valueString"]
        api.call("POST", "/fhir/CommunicationRequest", reminder("n-1"))
        api.call("POST", "/fhir/CommunicationRequest", reminder("n-2", "Patient/qc-fr"))  # another patient
        notifier = Notifier(api.host, ApiSettings())
        assert notifier.run_once() == 1
        (seen,) = emr.seen
    resource = json.loads(seen.body)
    assert seen.method == "PUT" and seen.path == f"/hooks/Communication/{resource['id']}"
    assert seen.headers["X-Emrcomm-Event"] == "sent" and seen.headers["Authorization"] == "Bearer emr"
    assert seen.headers["X-Emrcomm-Signature"] == signature(secret, seen.headers["X-Emrcomm-Timestamp"],
                                                            seen.headers["X-Emrcomm-Event-Id"], seen.body)
    assert notifier.run_once() == 0  # taken: not sent again
    read = body(api.call("GET", f"/fhir/Subscription/{sub['id']}"))
    assert "extension" not in read and read["channel"]["header"] == ["Authorization: ***"]


def test_deliveries_failures_replies_and_opt_outs_are_each_notified(api: ApiClient) -> None:
    from emrcomm.model import DeliveryUpdate

    with scripted() as emr:
        subscribe(api, emr.url, "Communication?patient=Patient/on-en")
        subscribe(api, emr.url, "Consent?patient=Patient/on-en")
        sent = body(api.call("POST", "/fhir/CommunicationRequest", reminder("d-1")))["entry"][1]["resource"]["id"]
        failing = body(api.call("POST", "/fhir/CommunicationRequest", reminder("d-2")))["entry"][1]["resource"]["id"]
        now = api.host.clock()
        api.host.delivery_update(DeliveryUpdate(kind="delivered", at=now, record_id=sent, channel="sms"))
        api.host.delivery_update(DeliveryUpdate(kind="failed", at=now, record_id=failing, channel="sms"))
        api.host.delivery_update(DeliveryUpdate(kind="reply", at=now, record_id=sent, channel="sms",
                                                address="+16135550123", text="Thank you, see you then"))
        api.host.delivery_update(DeliveryUpdate(kind="optout", at=now, channel="sms", address="+16135550123",
                                                text="STOP reply", detail="Patient/on-en"))
        Notifier(api.host, ApiSettings()).run_once()
        events = sorted(s.headers["X-Emrcomm-Event"] for s in emr.seen)
    # two reminders sent, and the clinic's auto-answer to the patient's reply (a message of its own)
    assert events == ["delivered", "failed", "optout", "reply", "sent", "sent", "sent"]


def test_a_portal_message_whose_patient_was_not_told_and_then_told_is_notified_each_time(api: ApiClient) -> None:
    """The Communication goes in-progress (PATIENT_NOT_TOLD) when its notice ends unsent, and
    completed again when the patient is told: the EMR hears of both."""
    from emrcomm.lifecycle.events import Event, Note, Source
    from emrcomm.model import DeliveryUpdate

    with scripted() as emr:
        subscribe(api, emr.url, "Communication?patient=Patient/on-en")
        message = body(api.call("POST", "/fhir/CommunicationRequest", reminder("t-1")))["entry"][1]["resource"]["id"]
        now = api.host.clock()
        with api.host.storage.transaction():
            api.host.storage.records.append(Event(record_id=message, kind=Note.NOT_TOLD, source=Source.WORKER, at=now,
                                                  dedup=f"{message}:not-told:test"))
        api.host.delivery_update(DeliveryUpdate(kind="announced", at=now, record_id=message, channel="sms"))
        Notifier(api.host, ApiSettings()).run_once()
        events = [s.headers["X-Emrcomm-Event"] for s in emr.seen]
    assert events == ["sent", "not-told", "told"]


def test_a_notification_not_taken_is_retried_with_backoff_then_given_up(api: ApiClient, clock: Clock) -> None:
    with scripted(Reply(status=503)) as emr:
        sub = subscribe(api, emr.url)
        api.call("POST", "/fhir/CommunicationRequest", reminder("n-3"))
        notifier = Notifier(api.host, ApiSettings(notify_max_attempts=3, notify_backoff_base=10))
        assert notifier.run_once() == 0 and len(emr.seen) == 1
        clock.now += dt.timedelta(seconds=9)
        notifier.run_once()
        assert len(emr.seen) == 1  # not before its backoff
        clock.now += dt.timedelta(seconds=2)
        notifier.run_once()
        assert len(emr.seen) == 2
        clock.now += dt.timedelta(seconds=21)
        notifier.run_once()
        clock.now += dt.timedelta(hours=1)
        notifier.run_once()
        assert len(emr.seen) == 3
    clock.now -= dt.timedelta(hours=1, seconds=32)  # the token's time again
    assert "given up after 3 attempts" in body(api.call("GET", f"/fhir/Subscription/{sub['id']}"))["error"]


class Monotonic:
    """A notifier's monotonic clock, which the test owns (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowEMR(ScriptedHTTPServer):
    """An EMR endpoint that takes each notification only after ``seconds`` have passed on the
    notifiers' monotonic clock: a send that takes all of ``notify_timeout``."""

    def __init__(self, clock: Monotonic, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def record(self, seen: Seen) -> Reply:
        reply = super().record(seen)
        self.clock.now += self.seconds
        return reply


def test_a_notifier_sends_nothing_its_lease_may_not_cover_and_gives_the_rest_back(api: ApiClient) -> None:
    """15 notifications claimed at once for the 2-minute lease, each taking the whole 10 s
    notify_timeout: a send starts only while 20 s of the lease are left (the send, then writing
    its answer), so 11 go; the other 4 are given back unsent, not leased, no attempt counted,
    and another notifier (another ``serve``) takes them at once. Each is notified once."""
    mono = Monotonic()
    settings = ApiSettings()
    emr = SlowEMR(mono, settings.notify_timeout)
    try:
        subscribe(api, emr.url)
        for n in range(15):
            api.call("POST", "/fhir/CommunicationRequest", reminder(f"l-{n}"))
        assert Notifier(api.host, settings, monotonic=mono).run_once() == 11
        rows = api.host.storage.db.query("SELECT state, attempts, lease_owner FROM api_notifications")
        assert sorted((r["state"], r["attempts"], r["lease_owner"]) for r in rows) == \
            [("done", 1, None)] * 11 + [("pending", 0, None)] * 4
        assert Notifier(api.host, settings, monotonic=mono).run_once() == 4
        ids = [seen.headers["X-Emrcomm-Event-Id"] for seen in emr.seen]
    finally:
        emr.close()
    assert len(ids) == len(set(ids)) == 15


class HoldingEMR(ScriptedHTTPServer):
    """An EMR endpoint that keeps its first two notifications waiting, each until its own
    ``release`` is set (at most 30 s), and answers the first 503; it takes every other at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = (threading.Event(), threading.Event())
        self.script(Reply(status=503))

    def record(self, seen: Seen) -> Reply:
        with self._lock:
            n = len(self.seen)
        reply = super().record(seen)
        if n < len(self.release):
            self.release[n].wait(30)
        return reply


def test_a_notifier_whose_lease_passed_to_another_writes_nothing_and_the_emr_takes_it_once(
        api: ApiClient, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    """The EMR keeps a notifier's notification waiting while its lease runs out (its process
    stalled past it, say); another notifier takes it over, and the EMR keeps that one's too. The
    first's answer, a 503, then changes nothing (it logs why): the notification stays the
    second's, so no third takes it after the first's backoff, and the EMR takes it once."""
    emr = HoldingEMR()
    try:
        subscribe(api, emr.url)
        api.call("POST", "/fhir/CommunicationRequest", reminder("s-1"))
        stalled, other = Notifier(api.host, ApiSettings()), Notifier(api.host, ApiSettings())
        taken: list[int] = []
        threads = [threading.Thread(target=lambda n=n: taken.append(n.run_once())) for n in (stalled, other)]
        db = api.host.storage.db
        try:
            threads[0].start()
            emr.wait_for(1, timeout=30)
            with db.transaction():  # its lease runs out, by the store's clock, while its PUT waits
                db.execute("UPDATE api_notifications SET lease_until = ? WHERE lease_owner = ?",
                           ("2000-01-01T00:00:00.000000+00:00", stalled.owner))
            threads[1].start()
            emr.wait_for(2, timeout=30)
            emr.release[0].set()  # the first's answer: 503
            threads[0].join(30)
            [row] = db.query("SELECT state, attempts, lease_owner FROM api_notifications")
            clock.now += dt.timedelta(seconds=6)  # past the backoff the first would have set
            third = Notifier(api.host, ApiSettings()).run_once()
            clock.now -= dt.timedelta(seconds=6)
        finally:
            for release in emr.release:
                release.set()
            for thread in threads:
                if thread.is_alive() or thread is threads[1]:
                    thread.join(30)
        answered = len(emr.seen)
    finally:
        emr.close()
    assert (row["state"], row["attempts"], row["lease_owner"]) == ("pending", 0, other.owner)
    assert (taken, third, answered) == ([0, 1], 0, 2)  # the first's (answered 503) and the second's
    assert "not marked retried, its lease had passed to another notifier" in caplog.text


@pytest.mark.parametrize(("where", "status", "state"), [
    ("headers", 200, ("pending", 1, None)),  # no complete answer within notify_timeout: retried later
    ("body", 503, ("pending", 1, None)),
    ("body", 200, ("done", 1, None)),  # the body is never read: its status is the answer
])
def test_an_endpoint_that_answers_a_byte_at_a_time_holds_up_nothing_past_notify_timeout(
        api: ApiClient, where: str, status: int, state: tuple[Any, ...]) -> None:
    """Each read is quick, so only the whole exchange's deadline (notify_timeout) ends it: the
    round goes on to the other Subscriptions, and an unfinished attempt is retried later."""
    with scripted(Reply(status, trickle=0.05, trickle_in=where)) as slow, scripted() as emr:
        stuck = subscribe(api, slow.url + "/hooks")
        subscribe(api, emr.url + "/hooks")
        api.call("POST", "/fhir/CommunicationRequest", reminder("t-1"))
        notifier = Notifier(api.host, ApiSettings(notify_timeout=1))
        taken: list[int] = []
        rounds = threading.Thread(target=lambda: taken.append(notifier.run_once()), daemon=True)
        rounds.start()
        rounds.join(30)  # far past notify_timeout; without the deadline it ran for the trickle's minute
        assert not rounds.is_alive() and len(emr.seen) == 1
        assert taken == [1 + (state[0] == "done")]
    rows = api.host.storage.db.query("SELECT state, attempts, lease_until FROM api_notifications "
                                     "WHERE subscription_id = ?", (stuck["id"],))
    assert [(r["state"], r["attempts"], r["lease_until"]) for r in rows] == [state]


def test_an_endpoint_the_notifier_cannot_reach_fails_its_own_notifications_not_the_round(api: ApiClient) -> None:
    """An endpoint an older release took ('https://a..b': urlsplit reads it, urllib3 cannot
    connect to it) is one failed attempt a notification, retried later; the others still go."""
    with scripted() as emr:
        bad = subscribe(api, "https://emr.example/hooks")
        with api.host.storage.db.transaction():
            api.host.storage.db.execute("UPDATE api_subscriptions SET endpoint = ? WHERE id = ?",
                                        ("https://a..b/hooks", bad["id"]))
        subscribe(api, emr.url + "/hooks")
        api.call("POST", "/fhir/CommunicationRequest", reminder("u-1"))
        api.call("POST", "/fhir/CommunicationRequest", reminder("u-2"))
        assert Notifier(api.host, ApiSettings()).run_once() == 2
        assert len(emr.seen) == 2
    rows = api.host.storage.db.query("SELECT state, attempts, lease_until, last_error, next_at FROM api_notifications "
                                     "WHERE subscription_id = ?", (bad["id"],))
    assert [(r["state"], r["attempts"], r["lease_until"], r["last_error"]) for r in rows] == [
        ("pending", 1, None, "LocationParseError")] * 2
    assert all(r["next_at"] > iso(api.host.clock()) for r in rows)  # retried after its backoff


def test_criteria_this_release_cannot_read_silence_that_subscription_alone_and_say_why(api: ApiClient) -> None:
    """Criteria another release stored (a category this one does not know): that Subscription
    hears of nothing and reads as status error; the others are notified as before."""
    with scripted() as emr:
        odd = subscribe(api, emr.url + "/odd")
        with api.host.storage.db.transaction():
            api.host.storage.db.execute("UPDATE api_subscriptions SET criteria = ? WHERE id = ?",
                                        ("Communication?category=flu-clinic-2031", odd["id"]))
        subscribe(api, emr.url + "/hooks")
        api.call("POST", "/fhir/CommunicationRequest", reminder("u-9"))
        assert Notifier(api.host, ApiSettings()).run_once() == 1
        assert [seen.path.split("/")[1] for seen in emr.seen] == ["hooks"]  # none to /odd
    shown = body(api.call("GET", f"/fhir/Subscription/{odd['id']}"))
    assert shown["status"] == "error" and "flu-clinic-2031" in shown["error"] and "subscribe again" in shown["error"]


def test_a_notification_that_fails_before_it_is_sent_is_retried_then_given_up(api: ApiClient, clock: Clock) -> None:
    sub = subscribe(api, "https://emr.example/hooks")
    api.call("POST", "/fhir/CommunicationRequest", reminder("u-3"))
    notifier = Notifier(api.host, ApiSettings(notify_max_attempts=2, notify_backoff_base=10))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the patient's number is +16135550123")

    notifier.session.request = broken  # type: ignore[method-assign]
    assert notifier.run_once() == 0
    clock.now += dt.timedelta(seconds=11)
    assert notifier.run_once() == 0
    clock.now -= dt.timedelta(seconds=11)  # the token's time again
    error = body(api.call("GET", f"/fhir/Subscription/{sub['id']}"))["error"]
    assert "given up after 2 attempts (RuntimeError)" in error and "6135550123" not in error


@pytest.mark.parametrize("endpoint", ["https://a..b/hooks", f"https://{'a' * 64}.example/hooks", "https://.emr.example/h"])
def test_an_endpoint_the_notifier_could_not_connect_to_is_refused_naming_the_field(api: ApiClient, endpoint: str) -> None:
    answer = api.call("POST", "/fhir/Subscription", {
        "resourceType": "Subscription", "status": "requested", "reason": "EMR", "criteria": "Communication",
        "channel": {"type": "rest-hook", "endpoint": endpoint}})
    assert answer.status_code == 422, answer.text
    assert body(answer)["issue"][0]["expression"] == ["Subscription.channel.endpoint"]
    assert api.host.storage.db.query("SELECT COUNT(*) AS n FROM api_subscriptions")[0]["n"] == 0


def test_a_subscription_is_its_clients_alone_and_can_be_deleted(make_host: Callable[..., Host],
                                                                clients: list[Any]) -> None:
    host = make_host(NO_NOTIFY)
    app = create_app(host)
    mine, theirs = ApiClient(host, app), ApiClient(host, app)
    clients += [mine, theirs]
    sub = subscribe(mine, "https://emr.example/hooks")
    assert theirs.call("GET", f"/fhir/Subscription/{sub['id']}").status_code == 404
    assert theirs.call("DELETE", f"/fhir/Subscription/{sub['id']}").status_code == 404
    assert mine.call("DELETE", f"/fhir/Subscription/{sub['id']}").status_code == 204
    assert mine.call("GET", f"/fhir/Subscription/{sub['id']}").status_code == 404


@pytest.mark.parametrize("change", [{"criteria": "Patient?name=x"}, {"criteria": "Communication?foo=1"},
                                    {"channel": {"type": "websocket"}},
                                    {"channel": {"type": "rest-hook", "endpoint": "http://emr.example/hook"}},
                                    {"channel": {"type": "rest-hook", "endpoint": "https://emr.example/h",
                                                 "header": ["Host: evil"]}},
                                    {"channel": {"type": "rest-hook", "endpoint": "https://emr.example/h",
                                                 "header": ["X: a\r\nY: b"]}}])
def test_a_subscription_that_cannot_be_served_is_refused(api: ApiClient, change: dict[str, Any]) -> None:
    sub = {"resourceType": "Subscription", "status": "requested", "reason": "x", "criteria": "Communication",
           "channel": {"type": "rest-hook", "endpoint": "https://emr.example/h"}, **change}
    answer = api.call("POST", "/fhir/Subscription", sub)
    assert answer.status_code == 422 and body(answer)["resourceType"] == "OperationOutcome", answer.text


# the profile, the audit log -------------------------------------------------------------------------------------
def test_the_structure_definitions_are_served_and_valid_r4(api: ApiClient) -> None:
    from fhir.resources.R4B.structuredefinition import StructureDefinition

    served = body(api.call("GET", "/fhir/StructureDefinition"))
    ids = {e["resource"]["id"] for e in served["entry"]}
    assert {"template", "variable", "consent-address", "consent-source", "emrcomm-communication-request"} <= ids
    for ident in ids:
        one = api.call("GET", f"/fhir/StructureDefinition/{ident}")
        StructureDefinition.model_validate(body(one))
    # the extensions emrcomm reads are those it publishes
    from emrcomm.fhir import EXT

    source = "".join(p.read_text() for p in Path(__file__).parents[1].glob("*/*/*.py") if "node_modules" not in str(p))
    read = set(__import__("re").findall(r'EXT \+ "([a-z-]+)"', source))
    assert read <= {d for d in definitions()}, read - set(definitions())
    assert all(d["url"] == EXT + d["id"] for d in definitions().values())


def test_every_call_is_in_the_audit_log_with_the_client(api: ApiClient) -> None:
    api.call("POST", "/fhir/CommunicationRequest", reminder("a-1"))
    api.call("GET", "/fhir/Communication")
    api.call("GET", "/fhir/Communication/nope")
    calls = [e for e in entries(api.host.storage) if e["kind"] in ("api.call", "api.token")]
    assert [(e["kind"], e.get("operation"), e.get("http_status")) for e in calls] == [
        ("api.token", None, None), ("api.call", "create CommunicationRequest", 201),
        ("api.call", "search Communication", 200), ("api.call", "read Communication", 404)]
    assert {e["client"] for e in calls} == {api.client_id}
    assert calls[1]["request"] == "a-1" and calls[1]["records"]


def test_the_api_can_be_switched_off(make_host: Callable[..., Host], clients: list[Any]) -> None:
    host = make_host("\n[api]\nenabled = false\n")
    clients.append(InProcess(create_app(host)))
    answer = clients[-1].request("GET", "/fhir/metadata")
    assert answer.status_code == 404 and "OperationOutcome" not in answer.text


def test_clients_are_added_listed_and_revoked_from_the_command_line(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from emrcomm.cli import main
    from support import write_config

    config = str(write_config(tmp_path, NO_NOTIFY))
    key = ClientKey("RS384")
    (tmp_path / "emr.jwks").write_text(json.dumps(key.jwks()), encoding="utf-8")
    assert main(["--json", "clients", "add", "OSCAR", "--config", config, "--jwks", str(tmp_path / "emr.jwks"),
                 "--scope", "system/Communication.read"]) == 0
    client_id = json.loads(capsys.readouterr().out)["client_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", client_id)  # never a leading "-", which `clients revoke` reads as an option
    private = {**key.public_jwk(), "d": "AAAA"}
    (tmp_path / "private.jwks").write_text(json.dumps({"keys": [private]}), encoding="utf-8")
    assert main(["clients", "add", "Leaky", "--config", config, "--jwks", str(tmp_path / "private.jwks"),
                 "--scope", "system/Communication.read"]) == 2
    assert "private key" in capsys.readouterr().err
    assert main(["clients", "list", "--config", config]) == 0
    listed = capsys.readouterr().out
    assert client_id in listed and "active" in listed and key.kid in listed
    assert main(["clients", "revoke", client_id, "--config", config]) == 0
    assert main(["clients", "list", "--config", config]) == 0
    assert "REVOKED" in capsys.readouterr().out
    assert main(["clients", "revoke", "no-such-client", "--config", config]) == 2
