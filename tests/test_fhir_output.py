"""The FHIR edge going out: every filed Communication is valid R4, by the official JSON Schema
and by the fhir.resources R4B model, for every kind of outcome."""

from __future__ import annotations

import datetime as dt

import pytest

from emrcomm.fhir import communication, searchset, validate_resource
from emrcomm.host import Host
from emrcomm.model import Category, Request, Sensitivity
from fhir_schema import schema_errors
from test_pipeline import TORONTO, reminder


def all_filed(host: Host) -> list[dict]:  # type: ignore[type-arg]
    return [entry["resource"] for entry in host.records()["entry"]]


def test_schema_catches_an_invalid_communication() -> None:
    # The check itself must be able to fail.
    assert schema_errors({"resourceType": "Communication", "status": "sent-ish", "payload": "x"})


def test_every_kind_of_outcome_files_valid_r4(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    host.send(reminder(rid="sent"))                                                     # completed
    host.send(reminder("Patient/none", rid="blocked"))                                  # not-done
    host.send(Request("Patient/on-en", Category.CLINICAL, id="portal", text="Your biopsy was benign.",
                      sensitivity=Sensitivity.RESTRICTED))                              # portal + notice
    clock.now = dt.datetime(2026, 11, 23, 22, 0, tzinfo=TORONTO)
    host.send(reminder(rid="held"))                                                     # on-hold
    resources = all_filed(host)
    statuses = sorted(r["status"] for r in resources)
    assert statuses == ["completed", "completed", "completed", "not-done", "on-hold"]
    for resource in resources:
        assert schema_errors(resource) == [], resource["id"]
        validate_resource(resource)


def test_blocked_record_carries_rule_codes_in_status_reason(host: Host) -> None:
    host.send(reminder("Patient/none", rid="blocked"))
    [resource] = all_filed(host)
    coding = resource["statusReason"]["coding"]
    assert {"system": "http://emrcomm.org/fhir/CodeSystem/rule", "code": "CONSENT_MISSING"}.items() <= coding[0].items()


def test_record_links_back_to_the_request(host: Host) -> None:
    host.send(reminder(rid="abc"))
    [resource] = all_filed(host)
    assert resource["basedOn"] == [{"identifier": {"system": "http://emrcomm.org/fhir/NamingSystem/request-id",
                                                   "value": "abc"}}]
    assert resource["subject"] == {"reference": "Patient/on-en"}


def test_searchset_bundle_is_valid(host: Host) -> None:
    host.send(reminder(rid="one"))
    host.send(reminder("Patient/qc-fr", rid="two"))
    bundle = host.records()
    assert bundle["total"] == 2 and bundle["type"] == "searchset"
    assert schema_errors(bundle) == []
    validate_resource(bundle)


@pytest.mark.parametrize("status", ["in-progress", "completed", "not-done", "on-hold"])
def test_communication_builder_output_is_valid_for_each_status(status: str) -> None:
    from emrcomm.model import Record
    from emrcomm.rules import finding

    blocks = (finding("CONSENT_MISSING", plugin="consent", channel="sms", purpose="clinical"),)
    record = Record(id="0" * 32, request=reminder(), status=status, channel="sms", medium="SMSWRIT",
                    address="+16135550123", text="hi", findings=blocks if status == "not-done" else (),
                    reasons=("CONSENT_MISSING",) if status == "not-done" else (),
                    sent=dt.datetime(2026, 11, 23, 15, tzinfo=dt.UTC) if status == "completed" else None)
    resource = communication(record)
    assert schema_errors(resource) == []
    validate_resource(resource)
    assert searchset([resource])["entry"][0]["fullUrl"] == "urn:uuid:00000000-0000-0000-0000-000000000000"
