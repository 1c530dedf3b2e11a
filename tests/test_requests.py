"""The FHIR edge going in: a CommunicationRequest becomes a Request, or a clear error."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from emrcomm.cli import main
from emrcomm.errors import RequestError
from emrcomm.fhir import parse_request, request_to_fhir
from emrcomm.host import Host
from emrcomm.model import Category, Request, Sensitivity, Status
from support import DATA, fhir_request


def test_template_request_with_variables_is_read() -> None:
    data = fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder",
                        variables={"appointment": ("valueDateTime", "2026-11-24T10:30:00-05:00")})
    req = parse_request(json.dumps(data))
    assert req.patient_ref == "Patient/on-en"
    assert req.category is Category.APPOINTMENT_REMINDER
    assert req.template == "appointment-reminder"
    assert req.appointment == dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC)
    assert req.based_on == "CommunicationRequest/req-1"


def test_free_text_request_is_read() -> None:
    req = parse_request(fhir_request("Patient/x", "clinical", text="Please call us."))
    assert req.text == "Please call us." and req.template is None


def test_restricted_confidentiality_marks_the_request_sensitive() -> None:
    data = fhir_request("Patient/x", "clinical", text="t", meta={"security": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]})
    assert parse_request(data).sensitivity is Sensitivity.RESTRICTED


def test_requested_medium_becomes_the_requested_channel() -> None:
    data = fhir_request("Patient/x", "appointment-reminder", text="t", medium=[{"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "EMAILWRIT"}]}])
    assert parse_request(data).channel == "email"


def test_round_trip_through_fhir_keeps_the_request() -> None:
    data = fhir_request("Patient/x", "invoice", template="invoice",
                        variables={"amount": ("valueDecimal", 40.5), "invoice_number": ("valueString", "A-1")})
    req = parse_request(data)
    again = parse_request(request_to_fhir(req))
    assert (again.category, again.template, dict(again.variables)) == (req.category, req.template, dict(req.variables))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("{not json", "request is not JSON"),
        ('["a list"]', "must be a JSON object"),
        (json.dumps({"resourceType": "Patient", "id": "x"}), "resourceType is 'Patient'; expected 'CommunicationRequest'"),
        (json.dumps({"resourceType": "CommunicationRequest", "status": "active"}), "subject is missing"),
        (json.dumps(fhir_request("Group/1", "invoice", text="t")), "is not a Patient reference"),
        (json.dumps({**fhir_request("Patient/x", "invoice", text="t"), "subject": {"identifier": {"value": "123"}}}),
         "subject.identifier has no system"),
        (json.dumps({**fhir_request("Patient/x", "invoice", text="t"),
                     "subject": {"reference": "Patient/x", "identifier": {"system": "urn:emr:mrn", "value": "123"}}}),
         "no directory to check that they name one patient"),
        (json.dumps(fhir_request("Patient/x", "birthday", text="t")), "category 'birthday' is unknown"),
        (json.dumps(fhir_request("Patient/x", "help-reply", text="t")), "an EMR does not request it"),
        (json.dumps({**fhir_request("Patient/x", "invoice", text="t"), "category": []}), "category is missing"),
        (json.dumps(fhir_request("Patient/x", "invoice")), "neither text nor template"),
        (json.dumps({**fhir_request("Patient/x", "invoice", text="t"), "status": "completed"}), "only an 'active'"),
        (json.dumps({**fhir_request("Patient/x", "invoice", text="t"), "subject": "Patient/x"}),
         "not a valid FHIR R4 CommunicationRequest: subject"),
    ],
    ids=["not-json", "not-object", "wrong-type", "no-subject", "not-patient", "identifier-without-system",
         "reference-and-identifier-unchecked", "unknown-category", "an-answer",
         "no-category", "no-text-no-template", "not-active", "invalid-fhir"],
)
def test_bad_request_is_refused_with_a_clear_reason(data: str, expected: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_request(data)
    assert expected in str(err.value)


@pytest.mark.parametrize(("system", "value", "search"), [
    ("https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn", "1234567890",
     "Patient?identifier=https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn|1234567890"),
    ("urn:emr:mrn", "A&B+1%", "Patient?identifier=urn:emr:mrn|A%26B%2B1%25"),  # read by the directory as sent
])
def test_a_subject_named_by_identifier_is_the_search_the_python_api_takes(system: str, value: str, search: str) -> None:
    data = {**fhir_request("Patient/x", "invoice", text="t"), "subject": {"identifier": {"system": system, "value": value}}}
    assert parse_request(data).patient_ref == search


def test_naive_appointment_time_is_refused() -> None:
    data = fhir_request("Patient/x", "appointment-reminder", template="appointment-reminder",
                        variables={"appointment": ("valueDateTime", "2026-11-24T10:30:00")})
    # FHIR itself requires a zone on a dateTime with a time; the error points at the field.
    with pytest.raises(RequestError, match=r"extension\.1\.extension\.1\.valueDateTime"):
        parse_request(data)


@pytest.mark.parametrize("when", ["2026-11-24T10:30:00", "2026-11-24T10:30-05:00"], ids=["no-zone", "no-seconds"])
@pytest.mark.parametrize("where", ["variable", "occurrenceDateTime"])
def test_a_time_without_its_zone_or_seconds_is_refused_saying_what_fhir_asks_for(when: str, where: str) -> None:
    # The FHIR model's own words ("does not match spec regex") left an EMR guessing what was wrong.
    data = (fhir_request("Patient/x", "appointment-reminder", template="appointment-reminder",
                         variables={"appointment": ("valueDateTime", when)}) if where == "variable" else
            {**fhir_request("Patient/x", "appointment-reminder", text="t"), "occurrenceDateTime": when})
    with pytest.raises(RequestError) as err:
        parse_request(data)
    assert f"{when!r} is not a FHIR dateTime" in str(err.value)
    assert "with seconds and a time zone (2026-11-25T14:30:00-05:00" in str(err.value)
    assert "regex" not in str(err.value)


def test_an_appointment_given_as_a_day_without_a_time_is_refused() -> None:
    # Read as midnight UTC, it was sent as the evening before in America/Toronto.
    data = fhir_request("Patient/x", "appointment-reminder", template="appointment-reminder",
                        variables={"appointment": ("valueDateTime", "2026-11-24")})
    with pytest.raises(RequestError, match="variable 'appointment' must be a valueDateTime with a time and a time zone"):
        parse_request(data)


def test_a_variable_given_as_a_datetime_without_a_time_is_read_as_that_day() -> None:
    data = fhir_request("Patient/x", "invoice", template="invoice", variables={"due": ("valueDateTime", "2026-11-24")})
    assert parse_request(data).variables["due"] == dt.date(2026, 11, 24)


def test_official_communication_request_examples_are_refused_for_a_stated_reason() -> None:
    folder = DATA / "fhir-r4-examples"
    reasons = {}
    for path in sorted(folder.glob("CommunicationRequest-*.json")):
        with pytest.raises(RequestError) as err:
            parse_request(path.read_text(encoding="utf-8"))
        reasons[path.name] = str(err.value)
    # 'example' names a patient but says nothing of why or what; 'fm-solicit' is a payer asking
    # a provider organisation for an accident report: no patient to message.
    assert "category is missing" in reasons["CommunicationRequest-example.json"]
    assert "subject is missing" in reasons["CommunicationRequest-fm-solicit.json"]


# -- when the appointment is: one way to say it, whichever door the request comes in by -----------

PASSED = dt.datetime(2026, 11, 20, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # before TEST_NOW


def test_the_appointment_variable_of_a_python_request_says_when_the_appointment_is() -> None:
    req = Request("Patient/on-en", "appointment-reminder", template="appointment-reminder",
                  variables={"appointment": PASSED})
    assert req.appointment == PASSED


def test_an_appointment_given_twice_must_be_the_same_time() -> None:
    assert Request("Patient/x", "appointment-reminder", template="appointment-reminder", appointment=PASSED,
                   variables={"appointment": PASSED.astimezone(dt.UTC)}).appointment == PASSED
    with pytest.raises(RequestError, match="give the appointment's time once"):
        Request("Patient/x", "appointment-reminder", template="appointment-reminder", appointment=PASSED,
                variables={"appointment": PASSED + dt.timedelta(days=7)})


@pytest.mark.parametrize("door", ["python", "fhir", "cli"])
def test_a_reminder_for_an_appointment_that_has_passed_is_not_sent_whichever_door(
    door: str, make_host: Callable[..., Host], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's example, with an appointment before now: the expiry rule stops it."""
    host = make_host()
    fhir = fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder", rid="passed-1",
                        variables={"appointment": ("valueDateTime", PASSED.isoformat())})
    if door == "cli":
        host.close()
        (tmp_path / "req.json").write_text(json.dumps(fhir), encoding="utf-8")
        assert main(["send", str(tmp_path / "req.json"), "--config", str(tmp_path / "emrcomm.toml")]) == 3
        assert "MESSAGE_EXPIRED" in capsys.readouterr().out
        return
    request = fhir if door == "fhir" else Request("Patient/on-en", "appointment-reminder", id="passed-1",
                                                  template="appointment-reminder", variables={"appointment": PASSED})
    outcome = host.send(request)
    assert outcome.status is Status.BLOCKED
    assert "MESSAGE_EXPIRED" in {f.code for f in outcome.findings}


@pytest.mark.parametrize(("zone", "start", "end"), [
    ("America/Toronto", "2026-12-08T05:00:00+00:00", "2026-12-09T05:00:00+00:00"),
    ("America/Vancouver", "2026-12-08T08:00:00+00:00", "2026-12-09T08:00:00+00:00"),
])
def test_an_occurrence_given_as_a_day_is_that_whole_day_in_the_clinics_zone(zone: str, start: str, end: str) -> None:
    # Not midnight UTC: that was 7 p.m. the evening before in Toronto.
    from zoneinfo import ZoneInfo

    on_the_day = fhir_request("Patient/x", "clinical", text="Hi.", occurrenceDateTime="2026-12-08")
    assert parse_request(on_the_day, zone=ZoneInfo(zone)).not_before == dt.datetime.fromisoformat(start)
    period = fhir_request("Patient/x", "clinical", text="Hi.", occurrencePeriod={"start": "2026-12-08", "end": "2026-12-08"})
    read = parse_request(period, zone=ZoneInfo(zone))
    assert (read.not_before, read.expires) == (dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))
