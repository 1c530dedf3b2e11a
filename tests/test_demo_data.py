"""The synthetic clinic: deterministic, in proportion, valid FHIR, and readable by the directory."""

from __future__ import annotations

import collections
import datetime as dt
import json
import re
from typing import Any

import phonenumbers
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.patient import Patient

from emrcomm import Purpose, Request
from emrcomm.demo_data import DEMO_TODAY, SCENARIO_SYSTEM, generate_clinic, main, write_bundle
from emrcomm.testing import TEST_NOW, make_context
from emrcomm_directory import Plugin, explain_consent, recipient_from_fhir

N = 200


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return generate_clinic(N, 7)


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def tags(p: dict[str, Any]) -> set[str]:
    return {t["code"] for t in p["meta"]["tag"] if t["system"] == SCENARIO_SYSTEM}


def tagged(bundle: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    return [p for p in resources(bundle, "Patient") if tag in tags(p)]


def consents_of(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for c in resources(bundle, "Consent"):
        out[c["patient"]["reference"]].append(c)
    return out


@pytest.fixture(scope="module")
def recipients(bundle):
    by_patient = consents_of(bundle)
    return {
        p["id"]: recipient_from_fhir(p, by_patient[f"Patient/{p['id']}"], now=TEST_NOW)
        for p in resources(bundle, "Patient")
    }


def share(count: int) -> float:
    return count / N


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_json():
    assert json.dumps(generate_clinic(60, 7)) == json.dumps(generate_clinic(60, 7))


def test_different_seed_gives_a_different_clinic():
    assert json.dumps(generate_clinic(60, 7)) != json.dumps(generate_clinic(60, 8))


def test_times_follow_the_reference_date_not_the_clock():
    later = generate_clinic(20, 7, today=DEMO_TODAY + dt.timedelta(days=365))
    assert later["timestamp"].startswith("2027-11-23")
    assert json.dumps(later) != json.dumps(generate_clinic(20, 7))


# ---------------------------------------------------------------- shape and proportions


def test_bundle_is_a_collection_of_n_patients_with_unique_ids(bundle):
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    patients = resources(bundle, "Patient")
    assert len(patients) == N
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert len(ids) == len(set(ids))


def test_regions_are_in_proportion(bundle, recipients):
    regions = collections.Counter((r.jurisdiction or "none")[:5] for r in recipients.values())
    assert 0.40 <= share(regions["CA-ON"]) <= 0.50
    assert 0.30 <= share(regions["CA-QC"]) <= 0.40
    us = sum(v for k, v in regions.items() if k.startswith("US-"))
    assert 0.15 <= share(us) <= 0.25
    assert {k for k in regions if k.startswith("US-")} == {"US-NY", "US-FL", "US-CA", "US-WA"}


def test_languages_follow_the_region(recipients):
    french: dict[str, list[bool]] = collections.defaultdict(list)
    for r in recipients.values():
        region = r.jurisdiction if r.jurisdiction in ("CA-ON", "CA-QC") else (r.jurisdiction or "none")[:2]
        french[region].append(r.language == "fr")
    assert sum(french["CA-QC"]) / len(french["CA-QC"]) > 0.6
    assert 0 < sum(french["CA-ON"]) / len(french["CA-ON"]) < 0.35
    assert not any(french["US"])


@pytest.mark.parametrize(
    ("tag", "low", "high"),
    [
        ("email-only", 0.10, 0.20),
        ("no-sms", 0.06, 0.14),
        ("sms-revoked", 0.05, 0.11),
        ("portal-only", 0.03, 0.08),
        ("no-consent", 0.01, 0.05),
        ("billing-email", 0.55, 0.65),
        ("billing-sms", 0.03, 0.08),
        ("landline-only", 0.02, 0.08),
        ("invalid-phone", 0.005, 0.04),
    ],
)
def test_scenario_proportions(bundle, tag, low, high):
    assert low <= share(len(tagged(bundle, tag))) <= high


def test_most_patients_consent_to_sms_email_and_portal(recipients):
    full = [r for r in recipients.values()
            if {g.channel for g in r.consents if g.purpose is Purpose.CLINICAL and g.revoked is None}
            >= {"sms", "email", "portal"}]
    assert share(len(full)) > 0.5


# ---------------------------------------------------------------- scenarios are what they say


def test_stop_reply_revokes_sms_consent_with_time_and_source(bundle, recipients):
    for p in tagged(bundle, "sms-revoked"):
        (sms,) = [g for g in recipients[p["id"]].consents if g.channel == "sms"]
        assert sms.source == "STOP reply"
        assert sms.granted < sms.revoked < TEST_NOW


def test_portal_only_patients_restrict_to_portal(bundle, recipients):
    for p in tagged(bundle, "portal-only"):
        r = recipients[p["id"]]
        assert (r.preferred_channels, r.restrict_to_preferred) == (("portal",), True)


def test_email_only_patients_consent_to_email_alone(bundle, recipients):
    for p in tagged(bundle, "email-only"):
        assert {g.channel for g in recipients[p["id"]].consents} == {"email"}


def test_no_consent_patients_have_none(bundle, recipients):
    for p in tagged(bundle, "no-consent"):
        assert recipients[p["id"]].consents == ()


def test_landline_only_patients_have_no_sms_address(bundle, recipients):
    for p in tagged(bundle, "landline-only"):
        r = recipients[p["id"]]
        assert r.addresses("sms") == () and len(r.addresses("phone")) == 1


def test_sms_consents_name_the_patients_mobile(recipients):
    for r in recipients.values():
        mobiles = {cp.value for cp in r.addresses("sms")}
        for g in r.consents:
            if g.channel == "sms":
                assert g.address in mobiles


def test_billing_consents_exist_on_both_channels(recipients):
    billing = collections.Counter(g.channel for r in recipients.values() for g in r.consents
                                  if g.purpose is Purpose.BILLING)
    assert billing["email"] > 0 and billing["sms"] > 0


def test_patients_without_address_get_a_zone_from_their_mobile(bundle, recipients):
    assert tagged(bundle, "no-address")
    for p in tagged(bundle, "no-address"):
        r = recipients[p["id"]]
        assert r.jurisdiction is None and r.time_zone is not None


# ---------------------------------------------------------------- mapping and validity


def test_every_patient_maps_to_a_recipient_with_all_its_consents(bundle, recipients):
    by_patient = consents_of(bundle)
    for pid, r in recipients.items():
        n_consents = len(by_patient[f"Patient/{pid}"])
        assert len(r.consents) == n_consents
        assert r.given_name and r.family_name and r.birth_date


def test_every_consent_follows_the_profile(bundle):
    reasons = {c["id"]: explain_consent(c) for c in resources(bundle, "Consent")}
    assert reasons and set(reasons.values()) == {None}


def test_every_consent_references_a_patient_in_the_bundle(bundle):
    ids = {f"Patient/{p['id']}" for p in resources(bundle, "Patient")}
    assert {c["patient"]["reference"] for c in resources(bundle, "Consent")} <= ids


def test_phone_numbers_meant_to_be_valid_are_valid_and_fictional(bundle):
    checked = 0
    for p in resources(bundle, "Patient"):
        for t in p["telecom"]:
            if t["system"] != "phone" or ("invalid-phone" in tags(p) and t.get("use") == "mobile"):
                continue
            number = phonenumbers.parse(t["value"], "US" if p.get("address", [{}])[0].get("country") == "US" else "CA")
            assert phonenumbers.is_valid_number(number), t["value"]
            assert 5550100 <= number.national_number % 10_000_000 <= 5550199, t["value"]
            checked += 1
    assert checked >= N


def test_invalid_phone_numbers_are_invalid(bundle):
    for p in tagged(bundle, "invalid-phone"):
        (mobile,) = [t["value"] for t in p["telecom"] if t.get("use") == "mobile"]
        assert not phonenumbers.is_valid_number(phonenumbers.parse(mobile, "CA"))


def test_emails_use_example_domains_only(bundle):
    emails = [t["value"] for p in resources(bundle, "Patient") for t in p["telecom"] if t["system"] == "email"]
    assert len(emails) == N == len(set(emails))
    assert all(re.fullmatch(r"[a-z0-9.\-]+@example\.(org|com|net)", e) for e in emails)


def test_ages_are_between_1_and_95(recipients):
    ages = [(DEMO_TODAY - r.birth_date).days / 365.25 for r in recipients.values()]
    assert min(ages) >= 1 and max(ages) < 96.1


def test_date_times_carry_a_time_zone(bundle):
    dated = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})")
    for c in resources(bundle, "Consent"):
        assert dated.fullmatch(c["dateTime"])
        for v in c["provision"].get("period", {}).values():
            assert dated.fullmatch(v)


def test_resources_validate_as_fhir_r4b(bundle):
    for p in resources(bundle, "Patient"):
        Patient.model_validate(p)
    for c in resources(bundle, "Consent"):
        Consent.model_validate(c)
    Bundle.model_validate(bundle)


def test_small_clinics_work():
    assert generate_clinic(0, 1)["entry"] == []
    assert len(resources(generate_clinic(1, 1), "Patient")) == 1


# ---------------------------------------------------------------- writing and reading back


def test_written_bundle_is_read_by_the_directory_plugin(tmp_path, bundle):
    path = write_bundle(bundle, tmp_path / "demo" / "patients.json")
    assert json.loads(path.read_text(encoding="utf-8")) == bundle
    plugin = Plugin(make_context("directory", {"bundle": "demo/patients.json"}, tmp_path))
    for p in resources(bundle, "Patient")[:25]:
        ref = f"Patient/{p['id']}"
        r = plugin.emrcomm_find_recipient(patient_ref=ref, request=Request(ref, "appointment-reminder"))
        assert r is not None and r.patient_ref == ref


def test_main_writes_a_bundle(tmp_path, capsys):
    assert main([str(tmp_path / "out.json"), "--n", "5", "--seed", "3"]) == 0
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8")) == generate_clinic(5, 3)


def test_resources_validate_against_the_official_r4_json_schema(bundle):
    from fhir_schema import schema_errors

    errors = {e["resource"]["id"]: schema_errors(e["resource"]) for e in bundle["entry"]}
    assert {k: v for k, v in errors.items() if v} == {}
