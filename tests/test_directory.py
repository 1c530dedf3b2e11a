"""The built-in FHIR directory: Patient and Consent -> Recipient, and the Bundle plugin."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import logging
import re
import zoneinfo
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import emrcomm
from emrcomm import ConfigError, ConsentGrant, ContactPoint, Purpose, Request
from emrcomm.fhir.patients import EXT, EXT_ADDRESS_KIND, MAX_MATCHES, PURPOSE_SYSTEM
from emrcomm.fhir.regions import SINGLE_ZONE_COUNTRIES
from emrcomm.testing import TEST_NOW, make_context
from emrcomm_directory import Plugin, RecipientRefused, explain_consent, recipient_from_fhir

EXAMPLES = Path(__file__).parent / "data" / "fhir-r4-examples"
MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
CHANNEL = "http://emrcomm.org/fhir/CodeSystem/channel"


def patient(pid: str = "p1", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"use": "official", "family": "Tremblay", "given": ["Marie", "Ève"]}],
        "address": [{"use": "home", "city": "Ottawa", "state": "ON", "country": "CA"}],
    }
    base.update(fields)
    return base


def consent(cid: str = "c1", *, channel: tuple[str, str] = (MODE, "SMSWRIT"), purpose: str = "clinical",
            address: str | None = "+16132345678", status: str = "active", pid: str = "p1",
            **fields: Any) -> dict[str, Any]:
    ext = [{"url": EXT + "consent-address", "valueString": address}] if address else []
    base: dict[str, Any] = {
        "resourceType": "Consent",
        "id": cid,
        "extension": ext,
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": PURPOSE_SYSTEM, "code": purpose}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "dateTime": "2025-03-14T10:23:00-04:00",
        "provision": {"type": "permit", "code": [{"coding": [{"system": channel[0], "code": channel[1]}]}]},
    }
    base.update(fields)
    return base


def read(p: dict[str, Any], consents: list[dict[str, Any]] | None = None) -> emrcomm.Recipient:
    return recipient_from_fhir(p, consents or [], now=TEST_NOW)


def only(points: tuple[ContactPoint, ...]) -> ContactPoint:
    assert len(points) == 1, points
    return points[0]


# ---------------------------------------------------------------- telecom


def test_mobile_phone_becomes_an_sms_contact_point_in_e164():
    r = read(patient(telecom=[{"system": "phone", "value": "(613) 234-5678", "use": "mobile"}]))
    assert only(r.contact_points) == ContactPoint("sms", "+16132345678", use="mobile")


def test_home_and_work_phones_are_landlines_not_sms():
    r = read(patient(telecom=[
        {"system": "phone", "value": "613-234-5678", "use": "home"},
        {"system": "phone", "value": "613-234-5679", "use": "work"},
        {"system": "phone", "value": "613-234-5670"},
    ]))
    assert [cp.system for cp in r.contact_points] == ["phone", "phone", "phone"]
    assert r.addresses("sms") == ()


def test_email_becomes_an_email_contact_point():
    r = read(patient(telecom=[{"system": "email", "value": " marie@example.org ", "use": "home"}]))
    assert only(r.contact_points) == ContactPoint("email", "marie@example.org", use="home")


def test_sms_system_is_sms_whatever_its_use():
    r = read(patient(telecom=[{"system": "sms", "value": "+15142345678", "use": "home"}]))
    assert only(r.addresses("sms")).value == "+15142345678"


def test_fax_and_pager_are_kinds_of_their_own_and_valueless_telecoms_are_ignored():
    r = read(patient(telecom=[
        {"system": "fax", "value": "613 234 5678"},
        {"system": "pager", "value": "+16132345679"},
        {"system": "url", "value": "https://example.org/me"},  # no kind a channel could name
        {"use": "home"},
    ]))
    assert [(p.system, p.value) for p in r.contact_points] == [("fax", "+16132345678"), ("pager", "+16132345679")]
    assert r.addresses("sms") == () and r.addresses("email") == ()


def test_a_telecom_names_its_channels_own_kind_of_address():
    r = read(patient(telecom=[
        {"system": "other", "value": "u-5512", "extension": [{"url": EXT_ADDRESS_KIND, "valueCode": "app"}]},
        {"system": "other", "value": "x", "extension": [{"url": EXT_ADDRESS_KIND, "valueCode": "Not A Kind!"}]},
    ]))
    assert [(p.system, p.value) for p in r.contact_points] == [("app", "u-5512")]


def test_phone_number_is_read_in_the_address_country():
    r = read(patient(
        address=[{"use": "home", "city": "Paris", "country": "FR"}],
        telecom=[{"system": "phone", "value": "06 12 34 56 78", "use": "mobile"}],
    ))
    assert only(r.contact_points).value == "+33612345678"


def test_invalid_phone_number_is_kept_as_given():
    r = read(patient(telecom=[{"system": "phone", "value": "613-234-567", "use": "mobile"}]))
    assert only(r.addresses("sms")).value == "613-234-567"


def test_addresses_are_ordered_by_rank_with_unranked_last():
    r = read(patient(telecom=[
        {"system": "phone", "value": "+16132345601", "use": "mobile"},
        {"system": "phone", "value": "+16132345602", "use": "mobile", "rank": 2},
        {"system": "phone", "value": "+16132345603", "use": "mobile", "rank": 1},
    ]))
    assert [cp.value for cp in r.addresses("sms")] == ["+16132345603", "+16132345602", "+16132345601"]
    assert [cp.rank for cp in r.addresses("sms")] == [1, 2, None]


def test_telecom_whose_period_ended_is_skipped():
    r = read(patient(telecom=[
        {"system": "phone", "value": "+16132345601", "use": "mobile", "period": {"end": "2026-11-01"}},
        {"system": "phone", "value": "+16132345602", "use": "mobile", "period": {"end": "2027-01-01"}},
    ]))
    assert [cp.value for cp in r.contact_points] == ["+16132345602"]


def test_telecom_ending_today_is_still_used():
    end = TEST_NOW.date().isoformat()
    r = read(patient(telecom=[{"system": "email", "value": "a@example.org", "period": {"end": end}}]))
    assert len(r.contact_points) == 1


def test_telecom_with_use_old_is_skipped():
    r = read(patient(telecom=[{"system": "phone", "value": "+16132345601", "use": "old"}]))
    assert r.contact_points == ()


def test_verified_extension_marks_the_contact_point_verified():
    r = read(patient(telecom=[
        {"system": "email", "value": "a@example.org",
         "extension": [{"url": EXT + "contact-verified", "valueBoolean": True}]},
        {"system": "email", "value": "b@example.org"},
    ]))
    assert [cp.verified for cp in r.contact_points] == [True, False]


# ---------------------------------------------------------------- language, name, birth date


def lang(code: str, preferred: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": code}]}}
    if preferred is not None:
        out["preferred"] = preferred
    return out


@pytest.mark.parametrize(
    ("communication", "expected"),
    [
        ([lang("fr-CA")], "fr"),
        ([lang("fr")], "fr"),
        ([lang("en-US")], "en"),
        ([lang("en-CA"), lang("fr-CA", preferred=True)], "fr"),
        ([lang("fr-CA"), lang("en")], "fr"),
        ([], "en"),
        ([lang("nl", preferred=True)], "en"),
    ],
    ids=["fr-CA", "fr", "en-US", "preferred-wins", "first-when-none-preferred", "none", "unsupported"],
)
def test_language_from_preferred_communication(communication, expected):
    assert read(patient(communication=communication)).language == expected


@pytest.mark.parametrize(
    ("communication", "expected"),
    [([], "fr"), ([lang("es", preferred=True)], "fr"), ([lang("en-CA", preferred=True)], "en")],
    ids=["none", "unsupported", "english-on-file"],
)
def test_a_quebec_patient_without_english_or_french_on_file_reads_french(communication, expected):
    # French is the language a Quebec patient is written to unless they chose English (Charter
    # of the French language; docs/rule-catalogue.md I counts the QC address as a Quebec patient).
    quebec = [{"use": "home", "city": "Montréal", "state": "QC", "country": "CA"}]
    assert read(patient(address=quebec, communication=communication)).language == expected


def test_official_name_and_first_given_name():
    r = read(patient(name=[{"use": "usual", "given": ["Jim"]},
                           {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}]))
    assert (r.given_name, r.family_name) == ("Peter", "Chalmers")


def test_birth_date():
    assert read(patient(birthDate="1974-12-25")).birth_date == dt.date(1974, 12, 25)


# ---------------------------------------------------------------- where the patient lives


@pytest.mark.parametrize(
    ("state", "country", "jurisdiction", "zone"),
    [
        ("ON", "CA", "CA-ON", "America/Toronto"),
        ("Ontario", "Canada", "CA-ON", "America/Toronto"),
        ("QC", "CA", "CA-QC", "America/Toronto"),
        ("Québec", "CA", "CA-QC", "America/Toronto"),
        ("Quebec", None, "CA-QC", "America/Toronto"),
        ("FL", "US", "US-FL", "America/New_York"),
        ("Florida", "USA", "US-FL", "America/New_York"),
        ("CA", "US", "US-CA", "America/Los_Angeles"),
        ("NY", "US", "US-NY", "America/New_York"),
        ("BC", "CA", "CA-BC", "America/Vancouver"),
        ("Vic", None, None, None),
        ("Atlantis", "CA", None, None),
    ],
)
def test_jurisdiction_and_time_zone_from_address(state, country, jurisdiction, zone):
    address = {"use": "home", "state": state, "country": country}
    r = read(patient(address=[{k: v for k, v in address.items() if v is not None}]))
    assert (r.jurisdiction, r.time_zone) == (jurisdiction, zone)


@pytest.mark.parametrize(
    ("country", "zone"),
    [
        ("FR", "Europe/Paris"),
        ("France", "Europe/Paris"),
        ("NLD", "Europe/Amsterdam"),
        ("GB", "Europe/London"),
        ("Haïti", "America/Port-au-Prince"),
        ("MA", "Africa/Casablanca"),
        ("MX", None),  # several zones, and no region emrcomm knows
        ("AU", None),
        ("DE", None),  # Europe/Berlin and Europe/Busingen
        ("Atlantis", None),
    ],
)
def test_outside_canada_and_the_us_a_country_with_one_time_zone_gives_it(country, zone):
    r = read(patient(address=[{"use": "home", "city": "…", "state": "Région", "country": country}]))
    assert (r.jurisdiction, r.time_zone) == (None, zone)


def test_a_country_with_one_time_zone_is_every_country_the_tz_database_gives_one():
    zone_tab = _installed_zone_tab()
    assert zone_tab is not None, "no zone.tab in the tzdata package or the system's tz database"
    zones: dict[str, list[str]] = {}
    for line in zone_tab.splitlines():
        if line.strip() and not line.startswith("#"):
            country, _coordinates, zone = line.split("\t")[:3]
            zones.setdefault(country, []).append(zone)
    assert {c: z[0] for c, z in zones.items() if len(z) == 1} == SINGLE_ZONE_COUNTRIES


def _installed_zone_tab() -> str | None:
    try:
        return importlib.resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / "zone.tab"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


@pytest.mark.parametrize(
    ("postal_code", "country", "jurisdiction"),
    [
        ("H2X 1Y4", "CA", "CA-QC"),  # Montréal
        ("G1R 4P5", None, "CA-QC"),  # Québec City, no country either
        ("j8y 6t3", "Canada", "CA-QC"),  # Gatineau, typed in lower case
        ("K1A0B1", "CA", "CA-ON"),
        ("M5V-3L9", None, "CA-ON"),
        ("P3E 2C6", "CA", "CA-ON"),
        ("A1C 5M2", "CA", "CA-NL"),
        ("B3H 4R2", "CA", "CA-NS"),
        ("C1A 4P3", "CA", "CA-PE"),
        ("E1C 4M3", "CA", "CA-NB"),
        ("R3C 4T3", "CA", "CA-MB"),
        ("S4P 3Y2", "CA", "CA-SK"),
        ("T2P 2M5", "CA", "CA-AB"),
        ("V6B 1A1", "CA", "CA-BC"),
        ("Y1A 2C6", "CA", "CA-YT"),
        ("X0A 0H0", "CA", "CA-NU"),  # Iqaluit
        ("X0C 0A0", "CA", "CA-NU"),
        ("X1A 2L9", "CA", "CA-NT"),  # Yellowknife
        ("X0E 0T0", "CA", "CA-NT"),
        ("X0Z 0A0", "CA", None),  # no such X area: Nunavut or the NWT, not guessed
        ("H2X 1Y4", "US", None),  # a country other than Canada: not a Canadian postal code
        ("E1W 1AA", None, None),  # a London postcode, not a New Brunswick one
        ("H2X", "CA", None),  # part of a code
    ],
)
def test_without_a_state_a_canadian_postal_code_gives_the_province(postal_code, country, jurisdiction):
    address = {"use": "home", "city": "…", "postalCode": postal_code, "country": country}
    r = read(patient(address=[{k: v for k, v in address.items() if v is not None}]))
    assert r.jurisdiction == jurisdiction


def test_a_state_on_file_wins_over_the_postal_code():
    r = read(patient(address=[{"use": "home", "state": "ON", "postalCode": "J8Y 6T3", "country": "CA"}]))
    assert r.jurisdiction == "CA-ON"


def test_a_montreal_patient_with_only_a_postal_code_is_a_quebec_patient():
    r = read(patient(address=[{"use": "home", "city": "Montréal", "postalCode": "H2X 1Y4", "country": "CA"}]))
    assert (r.jurisdiction, r.time_zone, r.language) == ("CA-QC", "America/Toronto", "fr")


def test_home_address_preferred_and_ended_address_skipped():
    r = read(patient(address=[
        {"use": "work", "state": "NY", "country": "US"},
        {"use": "home", "state": "QC", "country": "CA", "period": {"end": "2020-06-30"}},
        {"use": "home", "state": "FL", "country": "US"},
    ]))
    assert r.jurisdiction == "US-FL"


def test_time_zone_extension_overrides_the_address():
    r = read(patient(extension=[{"url": EXT + "time-zone", "valueCode": "America/Halifax"}]))
    assert (r.jurisdiction, r.time_zone) == ("CA-ON", "America/Halifax")


def test_time_zone_extension_that_is_not_iana_is_ignored():
    r = read(patient(extension=[{"url": EXT + "time-zone", "valueCode": "Eastern"}]))
    assert r.time_zone == "America/Toronto"


def test_without_address_the_mobile_number_gives_the_zone():
    r = read(patient(address=[], telecom=[{"system": "phone", "value": "+12065550100", "use": "mobile"}]))
    assert (r.jurisdiction, r.time_zone) == (None, "America/Los_Angeles")


def test_mobile_number_with_several_zones_gives_no_zone():
    r = read(patient(address=[], telecom=[{"system": "phone", "value": "+61412345678", "use": "mobile"}]))
    assert r.time_zone is None


def test_address_without_known_region_does_not_fall_back_to_the_phone():
    r = read(patient(address=[{"use": "home", "state": "Vic"}],
                     telecom=[{"system": "phone", "value": "+12065550100", "use": "mobile"}]))
    assert r.time_zone is None


# ---------------------------------------------------------------- preferences


def test_contact_preference_gives_channel_order_and_restriction():
    pref = {"url": EXT + "contact-preference", "extension": [
        {"url": "channel", "valueCode": "portal"},
        {"url": "channel", "valueCode": "email"},
        {"url": "restrict", "valueBoolean": True},
    ]}
    r = read(patient(extension=[pref]))
    assert (r.preferred_channels, r.restrict_to_preferred) == (("portal", "email"), True)


def test_no_preference_means_no_order_and_no_restriction():
    r = read(patient())
    assert (r.preferred_channels, r.restrict_to_preferred) == ((), False)


# ---------------------------------------------------------------- consents


def test_active_consent_becomes_a_grant():
    c = consent(extension=[
        {"url": EXT + "consent-address", "valueString": "(613) 234-5678"},
        {"url": EXT + "consent-source", "valueString": "front desk"},
    ])
    (grant,) = read(patient(), [c]).consents
    assert grant == ConsentGrant(
        channel="sms", purpose=Purpose.CLINICAL, address="+16132345678",
        granted=dt.datetime(2025, 3, 14, 14, 23, tzinfo=dt.UTC), revoked=None, source="front desk",
    )


def test_consent_without_address_covers_any_address_and_source_defaults_to_directory():
    (grant,) = read(patient(), [consent(address=None)]).consents
    assert (grant.address, grant.source) == (None, "directory")


def test_email_consent_carries_the_unencrypted_email_flag():
    c = consent(channel=(MODE, "EMAILWRIT"), address="a@example.org")
    c["extension"].append({"url": EXT + "accepts-unencrypted-email", "valueBoolean": True})
    (grant,) = read(patient(), [c]).consents
    assert (grant.channel, grant.address, grant.accepts_unencrypted_email) == ("email", "a@example.org", True)


@pytest.mark.parametrize(
    ("coding", "channel"),
    [((CHANNEL, "portal"), "portal"), ((CHANNEL, "sms"), "sms"), ((CHANNEL, "email"), "email"),
     ((MODE, "ONLINEWRIT"), "portal")],
)
def test_channel_codes(coding, channel):
    (grant,) = read(patient(), [consent(channel=coding)]).consents
    assert grant.channel == channel


def test_portal_consent_has_no_address():
    (grant,) = read(patient(), [consent(channel=(CHANNEL, "portal"), address="+16132345678")]).consents
    assert grant.address is None


def test_consent_revoked_by_stop_reply_has_time_and_source():
    c = consent(status="inactive")
    c["provision"]["period"] = {"start": "2025-03-14T10:23:00-04:00", "end": "2026-10-02T21:05:00-04:00"}
    c["meta"] = {"lastUpdated": "2026-10-03T01:05:00Z"}
    c["extension"].append({"url": EXT + "consent-source", "valueString": "STOP reply"})
    (grant,) = read(patient(), [c]).consents
    assert grant.revoked == dt.datetime(2026, 10, 3, 1, 5, tzinfo=dt.UTC)
    assert grant.source == "STOP reply"
    assert grant.granted == dt.datetime(2025, 3, 14, 14, 23, tzinfo=dt.UTC)


def test_deny_provision_is_a_revocation():
    c = consent()
    c["provision"]["type"] = "deny"
    c["provision"]["period"] = {"end": "2026-01-05T09:00:00-05:00"}
    (grant,) = read(patient(), [c]).consents
    assert grant.revoked == dt.datetime(2026, 1, 5, 14, 0, tzinfo=dt.UTC)


def test_revocation_time_falls_back_to_last_updated_then_date_time():
    c = consent(status="inactive", meta={"lastUpdated": "2026-02-01T12:00:00Z"})
    assert read(patient(), [c]).consents[0].revoked == dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
    c = consent(status="inactive")
    assert read(patient(), [c]).consents[0].revoked == dt.datetime(2025, 3, 14, 14, 23, tzinfo=dt.UTC)


def test_revocation_without_any_time_is_still_a_revocation():
    c = consent(status="inactive")
    del c["dateTime"]
    assert read(patient(), [c]).consents[0].revoked == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def test_one_grant_per_channel_and_purpose():
    c = consent(address=None)
    c["category"][0]["coding"].append({"system": PURPOSE_SYSTEM, "code": "billing"})
    c["provision"]["code"].append({"coding": [{"system": MODE, "code": "EMAILWRIT"}]})
    grants = read(patient(), [c]).consents
    assert {(g.channel, g.purpose) for g in grants} == {
        ("sms", Purpose.CLINICAL), ("sms", Purpose.BILLING), ("email", Purpose.CLINICAL), ("email", Purpose.BILLING)}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c.update(category=[{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}]),
         f"no purpose category in {PURPOSE_SYSTEM}"),
        (lambda c: c["category"][0]["coding"][0].update(code="research"), "unknown purpose code 'research'"),
        (lambda c: c["provision"].pop("code"), "no channel in provision.code"),
        (lambda c: c.update(status="draft"), "status 'draft' is neither active"),
        (lambda c: c.update(status="entered-in-error"), "status 'entered-in-error'"),
        (lambda c: c.pop("patient"), "no patient reference"),
        (lambda c: c.update(dateTime="yesterday"), "dateTime 'yesterday' is not a FHIR dateTime"),
        (lambda c: c.update(resourceType="Patient"), "not a Consent resource"),
    ],
    ids=["no-purpose", "unknown-purpose", "no-channel", "draft", "entered-in-error", "no-patient",
         "bad-date", "not-consent"],
)
def test_consent_outside_the_profile_is_explained(change, reason):
    c = consent()
    assert explain_consent(c) is None
    change(c)
    assert reason in explain_consent(c)


def test_consent_outside_the_profile_is_skipped_and_logged_at_debug(caplog):
    c = consent("privacy-1", category=[{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}])
    with caplog.at_level(logging.DEBUG):
        r = read(patient(), [c, consent("c2")])
    assert len(r.consents) == 1
    lines = [rec.getMessage() for rec in caplog.records if "privacy-1" in rec.getMessage()]
    assert lines == [f"Consent/privacy-1 skipped: no purpose category in {PURPOSE_SYSTEM}"]
    assert all(rec.levelno == logging.DEBUG for rec in caplog.records if "privacy-1" in rec.getMessage())


def test_consent_about_another_patient_is_skipped():
    assert read(patient("p1"), [consent(pid="p2")]).consents == ()


# ---------------------------------------------------------------- refusals


def test_deceased_patient_is_refused():
    with pytest.raises(RecipientRefused, match="deceased"):
        read(patient(deceasedDateTime="2026-01-02"))


def test_patient_without_id_is_refused():
    with pytest.raises(RecipientRefused, match="no id"):
        read(patient(id=""))


def test_other_resource_is_refused():
    with pytest.raises(RecipientRefused, match="not a Patient"):
        read(consent())


# ---------------------------------------------------------------- the official HL7 examples


OFFICIAL_PATIENTS: dict[str, Any] = {
    # Australian patient, no country: numbers in (03) national form are not valid in the default
    # region and are kept as given; the old number is skipped; "Vic" is not a known region.
    "Patient-example.json": {
        "patient_ref": "Patient/example", "given_name": "Peter", "family_name": "Chalmers",
        "contact_points": (ContactPoint("phone", "(03) 5555 6473", use="work", rank=1),
                           ContactPoint("sms", "(03) 3410 5613", use="mobile", rank=2)),
        "language": "en", "jurisdiction": None, "time_zone": None, "birth_date": dt.date(1974, 12, 25),
    },
    # Dutch patient: the mobile is read in the Netherlands; Dutch is not a supported language;
    # the address has a country but no province, so no jurisdiction; the Netherlands has one zone.
    "Patient-f001.json": {
        "patient_ref": "Patient/f001", "given_name": "Pieter", "family_name": "van de Heuvel",
        "contact_points": (ContactPoint("sms", "+31648352638", use="mobile"),
                           ContactPoint("email", "p.heuvel@gmail.com", use="home")),
        "language": "en", "jurisdiction": None, "time_zone": "Europe/Amsterdam", "birth_date": dt.date(1944, 11, 17),
    },
    # No telecom and no address: a recipient nobody can reach except through the portal.
    "Patient-pat1.json": {
        "patient_ref": "Patient/pat1", "given_name": "Duck", "family_name": "Donald",
        "contact_points": (), "language": "en", "jurisdiction": None, "time_zone": None, "birth_date": None,
    },
}


def test_every_official_patient_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("Patient-*.json")) == sorted(OFFICIAL_PATIENTS)


@pytest.mark.parametrize("name", sorted(OFFICIAL_PATIENTS))
def test_official_patient_example(name):
    data = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    expected = OFFICIAL_PATIENTS[name]
    if isinstance(expected, str):
        with pytest.raises(RecipientRefused, match=expected):
            read(data)
        return
    r = read(data)
    assert {k: getattr(r, k) for k in expected} == expected
    assert r.consents == ()


def test_official_patient_example_marked_deceased_is_refused():
    data = json.loads((EXAMPLES / "Patient-example.json").read_text(encoding="utf-8"))
    data["deceasedBoolean"] = True
    with pytest.raises(RecipientRefused, match="Patient/example is recorded as deceased"):
        read(data)


OFFICIAL_CONSENTS = sorted(p.name for p in EXAMPLES.glob("Consent-*.json"))


def test_official_consent_examples_are_present():
    assert len(OFFICIAL_CONSENTS) == 12


@pytest.mark.parametrize("name", OFFICIAL_CONSENTS)
def test_official_consent_example_is_not_a_communication_consent(name):
    data = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    assert explain_consent(data) == f"no purpose category in {PURPOSE_SYSTEM}"


# ---------------------------------------------------------------- the plugin


def write(tmp_path: Path, resources: list[dict[str, Any]], name: str = "patients.json") -> Path:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i:012d}", "resource": r}
                        for i, r in enumerate(resources)]}
    path = tmp_path / name
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


def plugin(tmp_path: Path, resources: list[dict[str, Any]] | None = None, **ctx: Any) -> Plugin:
    if resources is not None:
        write(tmp_path, resources)
    return Plugin(make_context("directory", {"bundle": "patients.json"}, tmp_path, **ctx))


def find(p: Plugin, ref: str) -> emrcomm.Recipient | None:
    return p.emrcomm_find_recipient(patient_ref=ref, request=Request(ref, "appointment-reminder"))


IDENT = {"system": "http://clinic.example/fhir/sid/mrn", "value": "MRN100"}


def test_finds_patient_by_reference_with_its_consents(tmp_path):
    p = plugin(tmp_path, [patient("p1"), consent("c1", pid="p1"), patient("p2")])
    r = find(p, "Patient/p1")
    assert r is not None and r.patient_ref == "Patient/p1"
    assert [g.channel for g in r.consents] == ["sms"]
    assert find(p, "Patient/p2").consents == ()


def test_unknown_patient_is_none(tmp_path):
    assert find(plugin(tmp_path, [patient("p1")]), "Patient/nobody") is None


def test_lookup_by_identifier(tmp_path):
    p = plugin(tmp_path, [patient("p1", identifier=[IDENT]), patient("p2")])
    assert find(p, "Patient?identifier=http://clinic.example/fhir/sid/mrn|MRN100").patient_ref == "Patient/p1"
    assert find(p, "Patient?identifier=http%3A%2F%2Fclinic.example%2Ffhir%2Fsid%2Fmrn%7CMRN100") is not None
    assert find(p, "http://clinic.example/fhir/sid/mrn|MRN100").patient_ref == "Patient/p1"
    assert find(p, "Patient?identifier=MRN100").patient_ref == "Patient/p1"
    assert find(p, "Patient?identifier=http://other.example|MRN100") is None


def test_identifier_shared_by_two_patients_finds_nobody(tmp_path):
    p = plugin(tmp_path, [patient("p1", identifier=[IDENT]), patient("p2", identifier=[IDENT])])
    assert find(p, "Patient?identifier=http://clinic.example/fhir/sid/mrn|MRN100") is None


def test_consent_referencing_the_full_url_is_attached(tmp_path):
    c = consent("c1")
    c["patient"] = {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}
    assert len(find(plugin(tmp_path, [patient("p1"), c]), "Patient/p1").consents) == 1


def test_a_deceased_patient_is_refused_not_unknown(tmp_path):
    # It answered None, so the host said nobody knew the patient.
    p = plugin(tmp_path, [patient("p1", deceasedBoolean=True)])
    with pytest.raises(emrcomm.RecipientRefused, match=r"^Patient/p1 is recorded as deceased$"):
        find(p, "Patient/p1")


def replaced_by(pid: str, other: str, **fields: Any) -> dict[str, Any]:
    return patient(pid, **{"active": False, "link": [{"other": {"reference": f"Patient/{other}"},
                                                       "type": "replaced-by"}], **fields})


def test_a_chart_merged_into_another_is_found_as_the_one_kept_with_the_consents_of_both(tmp_path):
    # Only the kept chart's Consents were read: what the patient said under the old one was lost.
    old_phone = [{"system": "phone", "value": "+16132345678", "use": "mobile"}]
    new_phone = [{"system": "phone", "value": "+15142345678", "use": "mobile"}]
    p = plugin(tmp_path, [
        replaced_by("old", "new", telecom=old_phone), consent("c-old", pid="old", address="+16132345678"),
        patient("new", telecom=new_phone, communication=[{"language": {"coding": [{"code": "fr-CA"}]}}],
                link=[{"other": {"reference": "Patient/old"}, "type": "replaces"}]),
        consent("c-new", pid="new", address="+15142345678", channel=(MODE, "EMAILWRIT"))])
    r = find(p, "Patient/old")
    assert r is not None and r.patient_ref == "Patient/new" and r.replaces == ("Patient/old",)
    assert [c.value for c in r.contact_points] == ["+15142345678"] and r.language == "fr"
    assert sorted((g.channel, g.address) for g in r.consents) == [("email", "+15142345678"), ("sms", "+16132345678")]
    assert r.merged == ("Patient/old",)
    # Named directly, the kept chart says which chart it replaces: the same consents, no merge followed.
    kept = find(p, "Patient/new")
    assert kept.replaces == () and kept.merged == ("Patient/old",) and kept.consents == r.consents


def test_a_chain_of_merges_is_followed_to_the_chart_in_use(tmp_path):
    p = plugin(tmp_path, [replaced_by("a", "b"), replaced_by("b", "c"), patient("c")])
    r = find(p, "Patient/a")
    assert r.patient_ref == "Patient/c" and r.replaces == ("Patient/a", "Patient/b")


def test_a_merge_link_by_full_url_is_followed(tmp_path):
    old = patient("old", active=False, link=[{"other": {"reference": "urn:uuid:00000000-0000-0000-0000-000000000001"},
                                              "type": "replaced-by"}])
    assert find(plugin(tmp_path, [old, patient("new")]), "Patient/old").patient_ref == "Patient/new"


HCN = {"system": "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn", "value": "1234567890"}
BY_HCN = f"Patient?identifier={HCN['system']}|{HCN['value']}"


@pytest.mark.parametrize("ref", [BY_HCN, f"{HCN['system']}|{HCN['value']}", f"Patient?identifier={HCN['value']}"])
def test_a_search_matching_a_merged_chart_and_the_one_kept_finds_the_one_kept(tmp_path, ref):
    # A merge leaves the chart merged away with its health number: the search matched both charts
    # and found nobody (RECIPIENT_UNKNOWN), though the EMR had said which one is in use.
    p = plugin(tmp_path, [replaced_by("old", "new", identifier=[HCN]),
                          patient("new", identifier=[HCN], link=[{"other": {"reference": "Patient/old"},
                                                                  "type": "replaces"}])])
    r = find(p, ref)
    assert r is not None and r.patient_ref == "Patient/new" and r.replaces == ("Patient/old",)


def test_a_search_matching_charts_merged_along_a_chain_finds_the_one_kept(tmp_path):
    p = plugin(tmp_path, [patient("c", identifier=[HCN]), replaced_by("b", "c", identifier=[HCN]),
                          replaced_by("a", "b", identifier=[HCN])])
    r = find(p, BY_HCN)
    assert r is not None and r.patient_ref == "Patient/c" and r.replaces == ("Patient/b", "Patient/a")


@pytest.mark.parametrize("resources", [
    [replaced_by("old", "kept", identifier=[HCN]), patient("kept"), patient("other", identifier=[HCN])],
    [replaced_by("old", "kept", identifier=[HCN]), patient("kept"), replaced_by("older", "other", identifier=[HCN]),
     patient("other")],
    [replaced_by("old", "gone", identifier=[HCN]), patient("kept", identifier=[HCN])],
    [replaced_by("old", "old", identifier=[HCN]), patient("kept", identifier=[HCN])],
    [*(replaced_by(f"old{i}", "kept", identifier=[HCN]) for i in range(MAX_MATCHES)), patient("kept", identifier=[HCN])],
])
def test_a_search_whose_matches_are_not_one_patient_finds_nobody(tmp_path, resources, caplog):
    # Two charts in use, a merge leading to none, or more matches than one patient's merges make.
    p = plugin(tmp_path, resources)
    with caplog.at_level(logging.WARNING):
        assert find(p, BY_HCN) is None
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "matches more than one patient" in said and HCN["value"] not in said


@pytest.mark.parametrize(("resources", "reason"), [
    ([replaced_by("a", "b"), replaced_by("b", "a")],
     "the replaced-by links of Patient/a, Patient/b lead back to Patient/a: a cycle"),
    ([replaced_by("a", "a")], "the replaced-by links of Patient/a lead back to Patient/a: a cycle"),
    ([replaced_by("a", "gone")], "Patient/a is replaced by Patient/gone, which the directory does not have"),
    ([replaced_by(f"p{i}", f"p{i + 1}") for i in range(6)] + [patient("p6")],
     "Patient/p0 leads through more than 5 replaced-by links"),
    ([patient("a", link=[{"other": {"reference": "Patient/b"}, "type": "replaced-by"},
                         {"other": {"reference": "Patient/c"}, "type": "replaced-by"}]), patient("b"), patient("c")],
     "Patient/a is replaced by more than one patient"),
    ([replaced_by("a", "b"), patient("b", deceasedBoolean=True)], "Patient/b is recorded as deceased"),
])
def test_a_merge_that_leads_to_no_chart_in_use_is_refused(tmp_path, resources, reason):
    p = plugin(tmp_path, resources)
    with pytest.raises(emrcomm.RecipientRefused, match=re.escape(reason)):
        find(p, "Patient/a" if resources[0]["id"] == "a" else "Patient/p0")


def test_a_chart_marked_inactive_and_replaced_by_nobody_is_refused(tmp_path):
    with pytest.raises(RecipientRefused, match=r"Patient/p1 is marked inactive \(active: false\)"):
        read(patient(active=False))
    p = plugin(tmp_path, [patient("p1", active=False)])
    with pytest.raises(emrcomm.RecipientRefused, match=r"^Patient/p1 is marked inactive \(active: false\)"):
        find(p, "Patient/p1")


def test_a_chart_still_replaced_by_another_is_refused_when_the_link_was_not_followed():
    with pytest.raises(RecipientRefused, match="replaced by another chart"):
        read(replaced_by("p1", "p2", active=True))


@pytest.mark.parametrize("kind", ["replaces", "seealso", "refer"])
def test_other_links_change_nothing(tmp_path, kind):
    p = plugin(tmp_path, [patient("p1", active=True, link=[{"other": {"reference": "Patient/p2"}, "type": kind}]),
                          patient("p2")])
    r = find(p, "Patient/p1")
    assert r.patient_ref == "Patient/p1" and r.replaces == ()


def test_expiry_uses_the_host_clock(tmp_path):
    resources = [patient("p1", telecom=[
        {"system": "email", "value": "a@example.org", "period": {"end": "2030-01-01T00:00:00Z"}}])]
    later = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    assert len(find(plugin(tmp_path, resources), "Patient/p1").contact_points) == 1
    assert find(plugin(tmp_path, clock=lambda: later), "Patient/p1").contact_points == ()


def test_a_remembered_recipient_still_follows_the_clock(tmp_path):
    """The plugin keeps each converted patient; a telecom or address that ends later is still
    dropped when the clock passes its end, in the same plugin, and a deceased one stays refused."""
    now = [TEST_NOW]
    resources = [patient("p1", telecom=[
        {"system": "email", "value": "a@example.org", "period": {"end": "2030-01-01T00:00:00Z"}},
        {"system": "email", "value": "b@example.org"}]), patient("p2", deceasedBoolean=True)]
    p = plugin(tmp_path, resources, clock=lambda: now[0])
    first = find(p, "Patient/p1")
    assert [c.value for c in first.contact_points] == ["a@example.org", "b@example.org"]
    assert find(p, "Patient/p1") is first  # converted once
    now[0] = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    assert [c.value for c in find(p, "Patient/p1").contact_points] == ["b@example.org"]
    now[0] = TEST_NOW  # a clock set back finds the ended telecom in force again
    assert [c.value for c in find(p, "Patient/p1").contact_points] == ["a@example.org", "b@example.org"]
    for _ in range(2):  # a refusal remembered is a refusal still
        with pytest.raises(emrcomm.RecipientRefused, match="deceased"):
            find(p, "Patient/p2")


def test_default_phone_region_is_the_clinic_country(tmp_path):
    clinic = emrcomm.Clinic(name="Sunshine Clinic", jurisdiction="US-FL", time_zones=("America/New_York",))
    resources = [patient("p1", address=[], telecom=[{"system": "phone", "value": "305-234-5678", "use": "mobile"}])]
    assert find(plugin(tmp_path, resources, clinic=clinic), "Patient/p1").contact_points[0].value == "+13052345678"


def test_missing_bundle_file_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\.directory\.bundle: .*absent\.json: no such file"):
        Plugin(make_context("directory", {"bundle": "absent.json"}, tmp_path))


def test_bundle_path_is_relative_to_the_config_folder(tmp_path):
    (tmp_path / "data").mkdir()
    write(tmp_path / "data", [patient("p1")])
    p = Plugin(make_context("directory", {"bundle": "data/patients.json"}, tmp_path))
    assert find(p, "Patient/p1") is not None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON: .* at line 1, column 2"),
        (json.dumps({"resourceType": "Patient", "id": "x"}), "expected a FHIR Bundle .*found 'Patient'"),
        (json.dumps([1, 2]), "expected a FHIR Bundle .*found 'list'"),
        (json.dumps({"resourceType": "Bundle", "entry": {}}), "Bundle.entry must be a list"),
        (json.dumps({"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}), r"entry\[0\] has no resource"),
        (json.dumps({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]}),
         r"entry\[0\]: Patient has no id"),
        (json.dumps({"resourceType": "Bundle", "entry": [{"resource": patient("a")}, {"resource": patient("a")}]}),
         r"entry\[1\]: Patient/a appears twice"),
    ],
    ids=["not-json", "not-bundle", "list", "entry-not-list", "entry-without-resource", "patient-without-id",
         "duplicate-id"],
)
def test_invalid_bundle_is_a_config_error_naming_file_and_problem(tmp_path, text, problem):
    (tmp_path / "patients.json").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"patients\.json: {problem}"):
        plugin(tmp_path)


def test_without_bundle_setting_nobody_is_known(tmp_path):
    p = Plugin(make_context("directory", {}, tmp_path))
    assert find(p, "Patient/p1") is None


def test_settings_schema_is_strict_and_documented():
    schema = Plugin.settings_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert all(prop.get("description") for prop in schema["properties"].values())
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"bundle": "patients.json"})
    assert validator.is_valid({})
    assert not validator.is_valid({"bundel": "patients.json"})
