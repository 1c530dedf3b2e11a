"""What the API says about itself without a token: the CapabilityStatement (``/fhir/metadata``)
and the SMART configuration (``/fhir/.well-known/smart-configuration``). Both list only what
the routes really do; a test compares them with the routes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from emrcomm.api.scopes import ALL
from emrcomm.fhir import BASE, EXT, fhir_datetime

PROFILE = EXT + "emrcomm-communication-request"
SEARCH_PARAMS = (
    ("subject", "reference", "The patient the message is to (Patient/<id>)"),
    ("patient", "reference", "The same as subject"),
    ("status", "token", "Communication status: completed, not-done, in-progress, on-hold, stopped, preparation, "
                        "entered-in-error, unknown"),
    ("category", "token", "The request's category (http://emrcomm.org/fhir/CodeSystem/category)"),
    ("based-on", "reference", "The request: CommunicationRequest/<request id>"),
    ("_lastUpdated", "date", "When the message last changed (ge, gt, le, lt, eq)"),
    ("_summary", "token", "count: the number of matches alone (Bundle.total), as _count=0 also asks"),
    ("_total", "token", "accurate (or estimate): Bundle.total on every page; none: no total. Without it, a first "
                        "page that holds every match has its total"),
)
REQUEST_SEARCH_PARAMS = (
    ("identifier", "token", "An identifier the EMR sent the request with (any of them): <system>|<value> "
                            "(|<value> for one without a system)"),
)


def _resource(kind: str, interactions: tuple[str, ...], **more: Any) -> dict[str, Any]:
    return {"type": kind, "interaction": [{"code": i} for i in interactions], **more}


def capability_statement(base: str, version: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": fhir_datetime(now),
        "publisher": "emrcomm",
        "kind": "instance",
        "software": {"name": "emrcomm", "version": version},
        "implementation": {"description": "emrcomm: messages to patients (SMS, email, secure portal) with "
                                          "consent, content rules and records", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "docs/api.md: every request below, ready to copy.",
            "security": {
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                         "code": "SMART-on-FHIR"}]}],
                "description": "SMART Backend Services: client credentials with a signed JWT assertion (RS384 or "
                               "ES384); every call but this one and the SMART configuration needs a bearer token.",
                "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                               "extension": [{"url": "token", "valueUri": f"{base}/auth/token"}]}],
            },
            "resource": [
                _resource("CommunicationRequest", ("create", "read", "search-type"), supportedProfile=[PROFILE],
                          conditionalCreate=True,
                          searchParam=[{"name": n, "type": t, "documentation": d} for n, t, d in REQUEST_SEARCH_PARAMS],
                          operation=[{"name": "check", "definition": f"{BASE}/OperationDefinition/CommunicationRequest-check",
                                      "documentation": "A dry run: every channel, chosen or rejected and why; "
                                                       "nothing sent or filed"},
                                     {"name": "batch", "definition": f"{BASE}/OperationDefinition/CommunicationRequest-batch",
                                      "documentation": "Many requests as NDJSON (application/fhir+ndjson), "
                                                       "one result each"}]),
                _resource("Communication", ("read", "search-type"),
                          searchParam=[{"name": n, "type": t, "documentation": d} for n, t, d in SEARCH_PARAMS]),
                _resource("Consent", ("create",), conditionalCreate=True,
                          documentation="A consent or an opt-out given to the clinic; it reaches the consent "
                                        "ledger as a STOP reply does, with its source. One with an identifier "
                                        "(or If-None-Exist: identifier=…) is recorded once for it"),
                _resource("Subscription", ("create", "read", "delete"),
                          documentation="R4 rest-hook; criteria on Communication (patient, status, category) or "
                                        "Consent (patient)"),
                _resource("StructureDefinition", ("read", "search-type"),
                          searchParam=[{"name": "url", "type": "uri", "documentation": "The canonical URL"}]),
            ],
            "interaction": [{"code": "batch"}],
        }],
    }


def smart_configuration(base: str) -> dict[str, Any]:
    return {
        "token_endpoint": f"{base}/auth/token",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": list(ALL),
        "capabilities": ["client-confidential-asymmetric"],
    }
