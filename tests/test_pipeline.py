"""Host.send end to end on the built-in plugins: what goes, what is held, what is blocked, and
what is filed. Fail closed everywhere a check cannot run."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import pytest

from emrcomm.errors import PluginError, RequestConflict
from emrcomm.host import Host
from emrcomm.model import Category, DeliveryUpdate, Request, Sensitivity, Status
from emrcomm.plugin.manager import discover
from emrcomm.segments import count_segments
from emrcomm.testing import TEST_NOW
from support import communication

TORONTO = dt.timezone(dt.timedelta(hours=-5))  # November: EST
APPOINTMENT = dt.datetime(2026, 11, 24, 10, 30, tzinfo=TORONTO)
ALL = ('"directory", "templates", "content", "routing", "consent", "optout", "policy", "sms", "email", '
       '"portal"')


def reminder(patient: str = "Patient/on-en", rid: str = "r-1") -> Request:
    return Request(patient, Category.APPOINTMENT_REMINDER, id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT}, appointment=APPOINTMENT)


def sms_sink(host: Host) -> list[dict[str, str]]:
    path = host.config.base_dir / "out" / "sms.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def emails(host: Host) -> list[Path]:
    folder = host.config.base_dir / "out" / "email"
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def test_reminder_goes_by_sms_and_is_filed_completed(host: Host) -> None:
    outcome = host.send(reminder())
    assert outcome.status is Status.SENT and outcome.channels == ("sms",)
    [line] = sms_sink(host)
    assert line["to"] == "+16135550123" and "Riverside Family Health" in line["text"]
    [record] = host.records(patient="Patient/on-en")["entry"]
    resource = record["resource"]
    assert resource["status"] == "completed"
    assert resource["medium"][0]["coding"][0]["code"] == "SMSWRIT"
    assert resource["payload"][0]["contentString"] == line["text"]
    assert resource["id"] == outcome.record_ids[0]


def test_french_patient_gets_the_french_template(host: Host) -> None:
    host.send(reminder("Patient/qc-fr"))
    [line] = sms_sink(host)
    assert "rendez-vous" in line["text"].lower() and "ARRET" in line["text"]


def test_accents_the_emr_stored_decomposed_leave_composed_and_keep_the_sms_in_gsm7(host: Host) -> None:
    # An EMR on macOS (or a copy from a PDF) stores "é" as "e" + U+0301: not GSM-7, so the
    # whole text went as UCS-2, three segments where one does.
    place = unicodedata.normalize("NFD", "salle Hélène")
    request = Request("Patient/qc-fr", Category.APPOINTMENT_REMINDER, id="r-nfd", template="appointment-reminder",
                      variables={"appointment": APPOINTMENT, "location": place}, appointment=APPOINTMENT)
    assert host.send(request).status is Status.SENT
    [line] = sms_sink(host)
    assert ", salle Hélène." in line["text"]
    assert count_segments(line["text"]) == ("GSM-7", 1)


def test_check_counts_decomposed_accents_as_the_sms_will_carry_them(host: Host) -> None:
    # 250 characters: two GSM-7 segments once composed, four UCS-2 ones (over the limit of 3) as typed.
    text = ("Riverside Family Health : Hélène, votre rendez-vous est le mardi 24 novembre à 10 h 30. "
            "Présentez-vous à la réception du 2e étage dix minutes avant l'heure. ").ljust(210, ".")
    text += " Répondez ARRET pour vous désabonner."
    decomposed = unicodedata.normalize("NFD", text)
    assert count_segments(decomposed)[0] == "UCS-2" and count_segments(decomposed)[1] > 3
    assert [f.code for f in host.check(decomposed, channel="sms", language="fr")] == []


def test_clinical_note_goes_to_the_portal_with_a_content_free_sms_notice(host: Host) -> None:
    note = Request("Patient/on-en", Category.CLINICAL, id="note-1", sensitivity=Sensitivity.RESTRICTED,
                   text="Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily.")
    outcome = host.send(note)
    assert outcome.status is Status.SENT and outcome.channels == ("portal", "sms")
    [notice] = sms_sink(host)
    assert "HbA1c" not in notice["text"] and "metformin" not in notice["text"]
    assert "https://portal.riverside.example" in notice["text"]
    # Neither the portal table nor the filed records hold the note in clear: the portal record
    # points at the encrypted message instead.
    portal = communication(host, outcome.record_ids[0])
    assert "payload" in portal and "contentString" not in json.dumps(portal["payload"])
    assert portal["payload"][0]["contentReference"]["reference"].startswith("urn:uuid:")
    files = [host.config.store_path, host.config.store_path.with_name("emrcomm.sqlite-wal")]
    database = b"".join(p.read_bytes() for p in files if p.exists())
    assert b"metformin" not in database and b"HbA1c" not in database


def test_clinical_words_in_a_results_notice_fall_back_to_the_portal(host: Host) -> None:
    slip = Request("Patient/on-en", Category.RESULTS_AVAILABLE, id="slip-1",
                   text="Riverside Family Health: your strep test was positive. Reply STOP to opt out.")
    outcome = host.send(slip)
    assert outcome.channels[0] == "portal"
    assert any(line.startswith("sms") and "rejected" in line and "CLINICAL_CONTENT" in line
               for line in outcome.explanation)
    assert all("strep" not in line["text"] for line in sms_sink(host))


def test_stop_on_sms_moves_the_reminder_to_email(host: Host) -> None:
    outcome = host.send(reminder("Patient/stopped"))
    assert outcome.status is Status.SENT and outcome.channels == ("email",)
    assert any(f.code == "CONSENT_REVOKED" and f.channel == "sms" for f in outcome.findings)
    assert sms_sink(host) == [] and len(emails(host)) == 1


def test_no_consent_anywhere_is_blocked_and_filed_not_done(host: Host) -> None:
    outcome = host.send(reminder("Patient/none"))
    assert outcome.status is Status.BLOCKED
    [entry] = host.records(patient="Patient/none")["entry"]
    resource = entry["resource"]
    assert resource["status"] == "not-done"
    codes = {c["code"] for c in resource["statusReason"]["coding"]}
    assert "CONSENT_MISSING" in codes
    assert sms_sink(host) == [] and emails(host) == []


def test_marketing_is_blocked_with_its_code(host: Host) -> None:
    outcome = host.send(Request("Patient/on-en", Category.MARKETING, id="m-1",
                                text="Riverside Family Health: 20% off skin care this week! Reply STOP to opt out."))
    assert outcome.status is Status.BLOCKED
    assert "MARKETING_BLOCKED" in {f.code for f in outcome.findings}
    assert sms_sink(host) == [] and emails(host) == []


def test_unknown_patient_is_blocked_and_filed(host: Host) -> None:
    outcome = host.send(reminder("Patient/nobody"))
    assert outcome.status is Status.BLOCKED and outcome.findings[0].code == "RECIPIENT_UNKNOWN"
    assert host.records(patient="Patient/nobody")["total"] == 1


HEALTH_CARD = "urn:oid:2.16.840.1.113883.4.595"  # an Ontario health card number's system
HEALTH_NUMBER = "1234567890"


@pytest.fixture
def clinic_by_health_card(tmp_path: Path, clock) -> Iterator[Host]:  # type: ignore[no-untyped-def]
    """The small clinic, Alex Martin (Patient/on-en) carrying a health card number."""
    from emrcomm.config import load_config
    from support import small_clinic, write_config

    bundle = small_clinic()
    [alex] = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "on-en"]
    alex["identifier"] = [{"system": HEALTH_CARD, "value": HEALTH_NUMBER}]
    with Host(load_config(write_config(tmp_path, bundle=bundle)), clock=clock) as host:
        yield host


def test_a_patient_named_by_identifier_is_filed_as_the_patient_found(
        clinic_by_health_card: Host, caplog: pytest.LogCaptureFixture) -> None:
    from emrcomm.audit import entries
    from support import store_bytes

    host = clinic_by_health_card
    caplog.set_level("DEBUG")
    outcome = host.send(reminder(f"Patient?identifier={HEALTH_CARD}|{HEALTH_NUMBER}"))
    assert outcome.status is Status.SENT and outcome.patient_ref == "Patient/on-en"
    [entry] = host.records(patient="Patient/on-en")["entry"]
    resource = entry["resource"]
    assert resource["subject"] == {"reference": "Patient/on-en"}
    assert resource["recipient"] == [{"reference": "Patient/on-en"}]
    decided = [e for e in entries(host.storage) if e.get("request") == "r-1" and "patient" in e]
    assert decided and {e["patient"] for e in decided} == {"Patient/on-en"}
    again = host.send(reminder(f"Patient?identifier={HEALTH_CARD}|{HEALTH_NUMBER}"))
    assert again.patient_ref == "Patient/on-en" and again.record_ids == outcome.record_ids
    assert HEALTH_NUMBER not in json.dumps(resource) + caplog.text
    assert HEALTH_NUMBER.encode() not in store_bytes(host.config.store_path)


def test_a_request_by_identifier_keeps_the_digest_of_what_the_emr_asked_for(clinic_by_health_card: Host) -> None:
    # The request ledger's digest is what a retry is compared with (the API answers 409 to an
    # id used for another message): it is of the request as the EMR gave it, not as it was filed
    # once the directory named the patient, or the EMR's retry would differ from it.
    from emrcomm.pipeline.digest import content_digest

    host = clinic_by_health_card
    asked = reminder(f"Patient?identifier={HEALTH_CARD}|{HEALTH_NUMBER}")
    assert host.send(asked).status is Status.SENT
    row = host.storage.records.request("r-1")
    assert row is not None and row.patient == "Patient/on-en"
    assert row.digest == content_digest(host._parse(asked), host.audit.patient)
    unknown = reminder(f"Patient?identifier={HEALTH_CARD}|9876543210", rid="r-2")
    assert host.send(unknown).status is Status.BLOCKED
    blocked = host.storage.records.request("r-2")
    assert blocked is not None and blocked.digest == content_digest(host._parse(unknown), host.audit.patient)


def test_a_request_by_identifier_keeps_no_digest_a_health_number_can_be_found_again_by(
        clinic_by_health_card: Host) -> None:
    # Whoever reads the store and knows the rest of a reminder (its category, template and
    # variables are in its record) could hash every ten-digit number with it until one matched
    # an unkeyed digest: the patient's search is in the digest as the audit log keys it.
    from emrcomm.pipeline.digest import content_digest

    host = clinic_by_health_card
    asked = reminder(f"Patient?identifier={HEALTH_CARD}|{HEALTH_NUMBER}")
    assert host.send(asked).status is Status.SENT
    row = host.storage.records.request("r-1")
    assert row is not None and row.digest is not None
    assert row.digest != content_digest(host._parse(asked), lambda ref: ref)
    # Its retry is the same request; another patient's number under its id is not.
    assert host.send(asked).record_ids == host.send(asked).record_ids
    with pytest.raises(RequestConflict):
        host.send(reminder(f"Patient?identifier={HEALTH_CARD}|9876543210"))
    # A request entered before the search was keyed (its digest of the search as written) is
    # still its own retry.
    early = reminder(f"Patient?identifier={HEALTH_CARD}|{HEALTH_NUMBER}", rid="r-early")
    first = host.send(early)
    with host.storage.transaction():
        host.storage.db.execute("UPDATE requests SET digest = ? WHERE id = ?",
                                (content_digest(host._parse(early), lambda ref: ref), "r-early"))
    assert host.send(early).record_ids == first.record_ids


def test_the_request_digest_covers_the_fields_stored_digests_were_made_of() -> None:
    # Schema 8's rows keep a digest of these fields, and a retry is compared with it: a field
    # added to Request changes every digest (each retry of a stored request would read as a
    # conflict) unless it names the request (digest._NAMES) or comes with a migration.
    import hashlib

    import orjson

    from emrcomm.pipeline.digest import content_digest

    req = Request(patient_ref="Patient/p-1", category=Category.APPOINTMENT_REMINDER, id="r-9",
                  template="appointment-reminder", variables={"when": "Tuesday"})
    content = {"patient_ref": "Patient/p-1", "category": "appointment-reminder", "text": None,
               "template": "appointment-reminder", "variables": {"when": "Tuesday"}, "sensitivity": "normal",
               "subject": None, "priority": "routine", "appointment": None, "not_before": None, "expires": None,
               "sender": None, "channel": None, "sender_name": None, "attachments": []}
    expected = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()[:16]
    assert content_digest(req, lambda ref: pytest.fail(f"a link is in the digest as written, not {ref} keyed")) == expected


@pytest.mark.parametrize(("reference", "number", "sent"), [
    ("Patient/on-en", HEALTH_NUMBER, True),
    ("Patient/qc-fr", HEALTH_NUMBER, False),  # the number is Alex's
    ("Patient/on-en", "9876543210", False),   # nobody's
])
def test_a_communication_request_naming_its_patient_by_reference_and_identifier_goes_only_when_they_agree(
        clinic_by_health_card: Host, reference: str, number: str, sent: bool) -> None:
    from emrcomm import SubjectMismatch
    from support import fhir_request

    host = clinic_by_health_card
    data = {**fhir_request(reference, "invoice", text="Your invoice is ready.", rid="r-both"),
            "subject": {"reference": reference, "identifier": {"system": HEALTH_CARD, "value": number}}}
    if sent:
        assert host.send(data).patient_ref == reference
        return
    with pytest.raises(SubjectMismatch, match="does not find the same patient by both") as err:
        host.send(data)
    assert number not in str(err.value) and err.value.expression == "CommunicationRequest.subject"
    assert host.storage.records.request("r-both") is None and sms_sink(host) == []
    [refused] = host.send_many([data])  # a program tells it from a malformed request by its kind
    assert refused.status is Status.FAILED and refused.error == "business-rule"


def test_an_identifier_no_directory_finds_is_blocked_and_filed_without_it(
        clinic_by_health_card: Host, caplog: pytest.LogCaptureFixture) -> None:
    from emrcomm.audit import entries
    from support import store_bytes

    host = clinic_by_health_card
    caplog.set_level("DEBUG")
    unknown = f"Patient?identifier={HEALTH_CARD}|9876543210"
    outcome = host.send(reminder(unknown))
    assert outcome.status is Status.BLOCKED and [f.code for f in outcome.findings] == ["RECIPIENT_UNKNOWN"]
    assert outcome.findings[0].message == f"No directory knows this patient (identifier {HEALTH_CARD}|…)."
    assert outcome.patient_ref is None and sms_sink(host) == []
    resource = communication(host, outcome.record_ids[0])
    assert resource is not None and resource["status"] == "not-done"
    assert "subject" not in resource and "recipient" not in resource
    [blocked] = [e for e in entries(host.storage) if e["kind"] == "blocked"]
    assert blocked["patient"] == host.audit.patient(unknown) and blocked["patient"].startswith("Patient#")
    assert "9876543210" not in json.dumps(resource) + caplog.text
    assert b"9876543210" not in store_bytes(host.config.store_path)


def test_reminder_after_nine_pm_is_held_not_dropped(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = dt.datetime(2026, 11, 23, 21, 30, tzinfo=TORONTO)
    outcome = host.send(reminder())
    assert outcome.status is Status.HELD
    assert sms_sink(host) == []
    [entry] = host.records(patient="Patient/on-en")["entry"]
    assert entry["resource"]["status"] == "on-hold"
    assert host.storage.outbox.counts() == {"held": 1}
    hold = next(f for f in outcome.findings if f.code == "QUIET_HOURS").hold_until
    assert hold == dt.datetime(2026, 11, 24, 8, 0, tzinfo=TORONTO)


def test_florida_quiet_hours_start_at_eight_pm(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = dt.datetime(2026, 11, 23, 20, 30, tzinfo=TORONTO)  # Miami is on Eastern time too
    assert host.send(reminder("Patient/fl", rid="fl")).status is Status.HELD
    assert host.send(reminder("Patient/on-en", rid="on")).status is Status.SENT


def test_same_request_twice_is_sent_once(host: Host) -> None:
    first = host.send(reminder())
    second = host.send(reminder())
    assert first.status is Status.SENT and second.status is Status.SENT
    assert "already handled" in second.explanation[0]
    assert len(sms_sink(host)) == 1


def test_a_request_id_used_again_for_another_message_raises_request_conflict_and_sends_nothing(host: Host) -> None:
    # An EMR that reuses its ids would otherwise be told "already handled", and a patient never texted.
    from emrcomm import RequestConflict, RequestError

    host.send(reminder())
    with pytest.raises(RequestConflict, match=r"^id r-1 was already used for request r-1, .*nothing was sent") as err:
        host.send(reminder("Patient/qc-fr"))
    assert isinstance(err.value, RequestError) and err.value.earlier == "r-1"
    assert len(sms_sink(host)) == 1 and host.records(patient="Patient/qc-fr")["total"] == 0
    assert host.send(reminder()).explanation[0].startswith("already handled")  # a true retry still is one


@pytest.mark.parametrize("mode", ["inline", "queue"])
def test_send_many_answers_failed_for_an_id_used_again_for_another_message_and_the_others_go(
        make_host: Callable[..., Host], mode: str) -> None:
    host = make_host(f'\n[delivery]\nmode = "{mode}"\n')
    host.send(reminder())
    batch = [reminder(rid="r-2"), reminder("Patient/qc-fr"), reminder("Patient/qc-fr", rid="r-3"),
             reminder(rid="r-3"), reminder(rid="r-4")]  # r-3 twice in one batch: once a group's commit
    outcomes = list(host.send_many(batch))
    going = Status.SENT if mode == "inline" else Status.QUEUED
    assert [o.status for o in outcomes] == [going, Status.FAILED, going, Status.FAILED, going]
    assert "id r-1 was already used" in outcomes[1].explanation[0] and outcomes[1].record_ids == ()
    assert "id r-3 was already used" in outcomes[3].explanation[0]
    assert host.records(patient="Patient/qc-fr")["total"] == 1  # r-3 only
    assert {row.id for row in map(host.storage.records.request, ("r-1", "r-2", "r-3", "r-4")) if row} == \
        {"r-1", "r-2", "r-3", "r-4"}


@pytest.mark.parametrize("mode", ["inline", "queue"])
def test_send_many_marks_a_conflict_as_one_whatever_its_explanation_says(
        make_host: Callable[..., Host], mode: str) -> None:
    # The explanation is a sentence for staff: reworded or translated, a conflict is still one.
    from emrcomm.pipeline.digest import is_conflict

    host = make_host(f'\n[delivery]\nmode = "{mode}"\n')
    host.send(reminder())
    [conflict] = host.send_many([reminder("Patient/qc-fr")])
    assert conflict.status is Status.FAILED and conflict.error == "conflict"
    assert is_conflict(conflict)
    assert is_conflict(attrs.evolve(conflict, explanation=("Cet identifiant a déjà servi à un autre message.",)))
    assert conflict.to_dict()["error"] == "conflict" and "error" not in host.send(reminder()).to_dict()


def test_a_failure_worded_as_a_conflict_is_not_one(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    # A renderer's refusal whose words are a conflict's: an ordinary failure (the API's 422).
    from emrcomm.pipeline.digest import conflict_text, is_conflict

    with host_with_fake(tmp_path, clock, "worded", "fakes:ConflictWorded", 1) as host:
        [failed] = host.send_many([reminder()])
    assert failed.status is Status.FAILED and failed.explanation == (conflict_text(reminder(), "r-1"),)
    assert failed.error == "processing" and not is_conflict(failed)


def test_a_blocked_request_may_come_again_changed_and_is_decided_anew(host: Host) -> None:
    assert host.send(reminder("Patient/none")).status is Status.BLOCKED
    assert host.send(reminder()).status is Status.SENT and len(sms_sink(host)) == 1


def test_a_request_decided_anew_for_another_patient_is_answered_for_that_patient(host: Host) -> None:
    # Blocked for one patient, then sent for another under the same id: a retry of what was sent
    # names the patient it went to, not the one the blocked attempt named.
    assert host.send(reminder("Patient/none")).status is Status.BLOCKED
    assert host.send(reminder()).status is Status.SENT
    again = host.send(reminder())
    assert again.explanation[0].startswith("already handled") and again.patient_ref == "Patient/on-en"
    row = host.storage.records.request("r-1")
    assert row is not None and row.patient == "Patient/on-en"


def test_a_request_entered_before_its_content_was_kept_is_a_repeat_as_before(host: Host) -> None:
    host.send(reminder())
    with host.storage.transaction():
        host.storage.db.execute("UPDATE requests SET digest = NULL")
    assert host.send(reminder("Patient/qc-fr")).explanation[0].startswith("already handled")
    assert len(sms_sink(host)) == 1


def test_queue_mode_persists_without_delivering(make_host: Callable[..., Host]) -> None:
    host = make_host('\n[delivery]\nmode = "queue"\n')
    outcome = host.send(reminder())
    assert outcome.status is Status.QUEUED
    assert sms_sink(host) == [] and host.storage.outbox.counts() == {"pending": 1}


def test_opt_out_update_blocks_the_next_sms_at_once(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    host.delivery_update(DeliveryUpdate(kind="optout", at=clock.now, channel="sms", address="+16135550123",
                                        text="STOP reply", detail="Patient/on-en"))
    outcome = host.send(reminder())
    assert outcome.channels == ("email",)
    assert any(f.code == "CONSENT_REVOKED" and f.channel == "sms" for f in outcome.findings)


def test_start_after_stop_restores_sms(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    host.delivery_update(DeliveryUpdate(kind="optin", at=clock.now, channel="sms", address="+16135550142",
                                        detail="Patient/stopped"))
    assert host.send(reminder("Patient/stopped")).channels == ("sms",)


def test_read_update_sets_received_on_the_record(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    outcome = host.send(reminder())
    host.delivery_update(DeliveryUpdate(kind="read", at=clock.now, record_id=outcome.record_ids[0]))
    assert communication(host, outcome.record_ids[0])["received"].startswith("2026-11-23")


def test_send_many_streams_one_request_at_a_time(host: Host) -> None:
    pulled: list[int] = []

    def requests() -> Iterator[Request]:
        for n in range(5):
            pulled.append(n)
            yield reminder(rid=f"batch-{n}")

    outcomes = host.send_many(requests())
    first = next(outcomes)
    assert first.status is Status.SENT and pulled == [0]
    assert [o.status for o in outcomes] == [Status.SENT] * 4


def test_send_many_reports_a_bad_request_and_goes_on(host: Host) -> None:
    items = [reminder(rid="ok-1"), {"resourceType": "Patient", "id": "oops"}, reminder(rid="ok-2")]
    statuses = [o.status for o in host.send_many(items)]
    assert statuses == [Status.SENT, Status.FAILED, Status.SENT]


# Fail closed ----------------------------------------------------------------------------------
def host_with_fake(tmp_path: Path, clock, name: str, value: str, position: int) -> Host:  # type: ignore[no-untyped-def]
    from emrcomm.config import load_config
    from support import write_config

    order = [s.strip() for s in ALL.split(",")]
    order.insert(position, f'"{name}"')
    extra = f"\n[plugins]\norder = [{', '.join(order)}]\n"
    eps = {**discover(), name: metadata.EntryPoint(name=name, value=value, group="emrcomm")}
    return Host(load_config(write_config(tmp_path, extra)), clock=clock, entry_points=eps)


def test_a_validator_that_raises_blocks_and_is_named(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    with host_with_fake(tmp_path, clock, "exploding", "fakes:Exploding", 6) as host:
        outcome = host.send(reminder())
        assert outcome.status is Status.BLOCKED
        failed = [f for f in outcome.findings if f.code == "CHECK_FAILED"]
        assert failed and all(f.plugin == "exploding" for f in failed)
        assert sms_sink(host) == [] and emails(host) == []


def test_a_filer_that_fails_stops_the_send(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    with host_with_fake(tmp_path, clock, "brokenfiler", "fakes:BrokenFiler", 11) as host:
        outcome = host.send(reminder())
        assert outcome.status is Status.FAILED
        [f] = [f for f in outcome.findings if f.code == "RECORD_NOT_FILED"]
        assert f.plugin == "brokenfiler"
        assert sms_sink(host) == []
        assert host.storage.outbox.counts() == {}
        # the embedded chart still learns that nothing went
        [entry] = host.records(patient="Patient/on-en")["entry"]
        assert entry["resource"]["status"] == "not-done"


def test_a_filer_failing_after_the_send_never_causes_a_second_send(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    with host_with_fake(tmp_path, clock, "flaky", "fakes:FailsAfterSending", 11) as host:
        outcome = host.send(reminder())
        assert outcome.status is Status.SENT
        assert any(f.code == "RECORD_NOT_FILED" and f.plugin == "flaky" for f in outcome.findings)
        assert host.storage.outbox.counts() == {}  # sent: nothing left to deliver
        assert "already handled" in host.send(reminder()).explanation[0]
        assert len(sms_sink(host)) == 1



@pytest.mark.parametrize("answer", [None, {"id": "gw-1"}])
def test_a_transport_that_answers_no_receipt_is_not_reported_sent_and_is_named(
        host: Host, monkeypatch: pytest.MonkeyPatch, answer: object) -> None:
    monkeypatch.setattr(host.channels["sms"].transport, "send", lambda delivery: answer)
    outcome = host.send(reminder())
    assert outcome.status is Status.FAILED
    [failed] = [f for f in outcome.findings if f.code == "DELIVERY_FAILED"]
    assert "not emrcomm.Receipt" in failed.message and failed.plugin == "sms"
    [entry] = host.records(patient="Patient/on-en")["entry"]
    assert entry["resource"]["status"] != "completed"
    # a dead letter for staff, not retried: the plugin may have handed the message over
    [dead] = host.storage.outbox.dead()
    assert "not emrcomm.Receipt" in (dead.last_error or "")

# Severity configuration ---------------------------------------------------------------------------
def test_raised_severity_blocks_a_warning(make_host: Callable[..., Host]) -> None:
    host = make_host("\n[rules.severity]\nPROMOTIONAL_LANGUAGE = 'block'\n")
    promo = Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="p-1",
                    text="Riverside Family Health: book now and save on your next visit! Reply STOP to opt out.")
    outcome = host.send(promo)
    assert outcome.status is Status.BLOCKED
    assert any(f.code == "PROMOTIONAL_LANGUAGE" and f.blocks for f in outcome.findings)


def test_lowered_severity_is_filed_with_its_reason(make_host: Callable[..., Host]) -> None:
    reason = "signed by the physician's own name, approved by the privacy officer"
    host = make_host(f"\n[rules.override.SMS_NO_SENDER_ID]\nseverity = 'warn'\nreason = \"{reason}\"\n")
    outcome = host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="o-1",
                                text="Dr. Okafor: see you tomorrow at 10:30. Reply STOP to opt out."))
    assert outcome.status is Status.SENT and outcome.channels == ("sms",)
    resource = communication(host, outcome.record_ids[0])
    assert any(reason in note["text"] for note in resource["note"])


# The US healthcare exemption (docs/rule-catalogue.md F, EXEMPTION_FREQUENCY) ------------------------------------
def exempt_host(make_host: Callable[..., Host]) -> Host:
    from support import BASE_CONFIG

    return make_host(extra="", config_text=BASE_CONFIG.replace(
        'turnaround = "two business days"', 'turnaround = "two business days"\nus_healthcare_exemption = true'))


def test_exemption_lets_one_sms_a_day_reach_a_us_patient_without_consent(make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    host = exempt_host(make_host)
    first = host.send(reminder("Patient/ny", rid="ny-1"))
    assert first.status is Status.SENT and first.channels == ("sms",)
    clock.now += dt.timedelta(hours=2)
    second = host.send(reminder("Patient/ny", rid="ny-2"))
    assert "EXEMPTION_FREQUENCY" in {f.code for f in second.findings}
    assert second.channels != ("sms",)
    clock.now += dt.timedelta(days=1)  # the appointment has passed; a results notice may go
    notice = Request("Patient/ny", Category.RESULTS_AVAILABLE, id="ny-3", template="results-available")
    assert host.send(notice).channels == ("sms",)


def test_the_exemption_counts_the_messages_filed_under_the_patient_the_emr_named(
        make_host: Callable[..., Host], clock, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # The EMR names a merged patient by link; the directory answers with the one kept. The records
    # are filed as the EMR named them: the day's one message must count all the same.
    host = exempt_host(make_host)
    directory = host.hooks.get("directory")
    resolve = directory.resolve
    monkeypatch.setattr(directory, "resolve", lambda ref: resolve("Patient/ny" if ref == "Patient/ny-merged" else ref))
    first = host.send(reminder("Patient/ny-merged", rid="ny-1"))
    assert first.channels == ("sms",) and first.patient_ref == "Patient/ny-merged", first.explanation
    clock.now += dt.timedelta(hours=2)
    again = host.send(reminder("Patient/ny-merged", rid="ny-2"))
    assert "EXEMPTION_FREQUENCY" in {f.code for f in again.findings} and again.channels != ("sms",)
    assert len(sms_sink(host)) == 1


def riley_charts(*, merged: bool) -> list[dict[str, Any]]:
    """Riley's two charts in New York, no consent recorded: ``riley-old`` and ``riley``, before or
    after the EMR merged the first into the second (FHIR R4 Patient.link both ways)."""
    from support import patient

    old = patient("riley-old", given="Riley", family="Park", mobile="+12125550145", state="NY", country="US")
    kept = patient("riley", given="Riley", family="Park", mobile="+12125550146", state="NY", country="US")
    if merged:
        old = {**old, "active": False, "link": [{"other": {"reference": "Patient/riley"}, "type": "replaced-by"}]}
        kept = {**kept, "link": [{"other": {"reference": "Patient/riley-old"}, "type": "replaces"}]}
    return [old, kept]


def exempt_clinic_host(make_host: Callable[..., Host], resources: list[dict[str, Any]]) -> Host:
    """:func:`clinic_host` of a clinic that relies on the US healthcare exemption."""
    from support import BASE_CONFIG

    host = clinic_host(make_host, resources)
    host.close()
    return make_host(config_text=BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "more.json"').replace(
        'turnaround = "two business days"', 'turnaround = "two business days"\nus_healthcare_exemption = true'))


def test_the_exemptions_daily_message_counts_those_filed_under_a_chart_merged_since(
        make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    # The count read the chart the message named: the EMR merged Riley's charts after the day's
    # one message under the old one, and a second went under the chart kept (the limit restarted).
    before = exempt_clinic_host(make_host, riley_charts(merged=False))
    first = before.send(reminder("Patient/riley-old", rid="riley-1"))
    assert first.channels == ("sms",) and first.patient_ref == "Patient/riley-old", first.explanation
    before.close()
    clock.now += dt.timedelta(hours=2)
    after = exempt_clinic_host(make_host, riley_charts(merged=True))
    again = after.send(reminder("Patient/riley", rid="riley-2"))
    assert "EXEMPTION_FREQUENCY" in {f.code for f in again.findings} and again.channels != ("sms",)
    assert sms_sink(after) == sms_sink(before)[:1]


def test_answering_the_patients_help_uses_up_none_of_the_exemption(make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    host = exempt_host(make_host)
    assert host.send(reminder("Patient/ny", rid="ny-1")).channels == ("sms",)
    clock.now += dt.timedelta(days=1, hours=1)
    host.delivery_update(DeliveryUpdate(kind="reply", at=clock.now, channel="sms", address="+12125550143",
                                        text="HELP", provider_id="mo-1"))
    assert "help" in sms_sink(host)[-1]["text"].lower()  # answered, without consent on file
    notice = Request("Patient/ny", Category.RESULTS_AVAILABLE, id="ny-3", template="results-available")
    outcome = host.send(notice)
    assert outcome.channels == ("sms",), outcome.explanation  # today's one message is still the clinic's to send


def test_exemption_never_covers_billing(make_host: Callable[..., Host]) -> None:
    host = exempt_host(make_host)
    invoice = Request("Patient/ny", Category.INVOICE, id="ny-inv", template="invoice", variables={"amount": 40})
    outcome = host.send(invoice)
    assert outcome.status is Status.BLOCKED
    assert sms_sink(host) == []


def test_without_the_exemption_the_same_patient_is_refused(host: Host) -> None:
    outcome = host.send(reminder("Patient/ny", rid="ny-1"))
    assert outcome.status is Status.BLOCKED and "CONSENT_MISSING" in {f.code for f in outcome.findings}


def test_exemption_does_not_override_a_stop(make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    host = exempt_host(make_host)
    host.delivery_update(DeliveryUpdate(kind="optout", at=clock.now, channel="sms", address="+12125550143",
                                        detail="Patient/ny"))
    assert host.send(reminder("Patient/ny", rid="ny-1")).status is Status.BLOCKED


class _EmptyPlanner:
    def __init__(self, context: object) -> None:
        pass

    @__import__("emrcomm").hookimpl
    def emrcomm_plan(self):  # type: ignore[no-untyped-def]
        from emrcomm.model import Candidate, Plan

        return Plan((Candidate(()),))


def test_a_candidate_with_no_route_is_refused_not_reported_sent(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    with host_with_fake(tmp_path, clock, "emptyplan", "test_pipeline:_EmptyPlanner", 3) as host:
        outcome = host.send(reminder())
        assert outcome.status is Status.BLOCKED
        assert any(f.code == "CHECK_FAILED" for f in outcome.findings)
        assert sms_sink(host) == []


class _Misanswering:
    """An inspector and a validator that answer something other than a list of findings."""

    answer: object = None

    def __init__(self, context: object) -> None:
        pass

    @__import__("emrcomm").hookimpl
    def emrcomm_inspect(self):  # type: ignore[no-untyped-def]
        return self.answer

    @__import__("emrcomm").hookimpl
    def emrcomm_validate(self):  # type: ignore[no-untyped-def]
        return self.answer


@pytest.mark.parametrize(("answer", "said"), [
    (__import__("emrcomm").Finding(code="CLINICAL_CONTENT", severity="info", message="a clinical term"),
     "returned Finding, not a list of emrcomm.Finding"),
    ("block", "returned str, not a list of emrcomm.Finding"),
    (["CLINICAL_CONTENT"], "returned str, not emrcomm.Finding"),
    (7, "returned int, not a list of emrcomm.Finding"),
])
def test_a_check_that_answers_something_else_than_findings_blocks_and_is_named(
        tmp_path: Path, clock, monkeypatch: pytest.MonkeyPatch, answer: object, said: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_Misanswering, "answer", answer)
    with host_with_fake(tmp_path, clock, "misanswering", "test_pipeline:_Misanswering", 6) as host:
        outcome = host.send(reminder())
        assert outcome.status is Status.BLOCKED
        failed = [f for f in outcome.findings if f.code == "CHECK_FAILED"]
        assert failed and all(f.plugin == "misanswering" and said in f.message for f in failed)
        assert sms_sink(host) == [] and emails(host) == []


class _AccentLexicon:
    """A clinic's own inspector whose lexicon is spelled with an accent GSM-7 lacks."""

    def __init__(self, context: object) -> None:
        pass

    @__import__("emrcomm").hookimpl
    def emrcomm_inspect(self, message):  # type: ignore[no-untyped-def]
        at = message.text.find("bûche")
        return [] if at < 0 else [__import__("emrcomm").Finding(
            code="CLINICAL_CONTENT", severity="info", message="a term of the clinic's lexicon", span=(at, at + 5))]


def test_a_term_an_inspector_finds_as_written_still_blocks_an_sms_spelled_without_its_accent(
        tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    # An SMS is inspected in GSM-7 ("buche"), where this inspector finds nothing: the finding in
    # the words as written must still keep the text off SMS (fail closed).
    text = "Riverside Family Health: your bûche visit is Tuesday at 10:30. Reply STOP to opt out."
    with host_with_fake(tmp_path, clock, "lexicon", "test_pipeline:_AccentLexicon", 6) as host:
        outcome = host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-bûche", text=text,
                                    appointment=APPOINTMENT))
        assert outcome.channels[0] == "portal", outcome.explanation  # its PHI-free notice may go by SMS
        assert not [line for line in sms_sink(host) if "buche" in line["text"] or "bûche" in line["text"]]
        assert "CLINICAL_CONTENT" in [f.code for f in host.check(text, channel="sms")]


class _FirstAnswers:
    """A directory, a renderer and a planner, placed first, that raise or answer the wrong type."""

    mode = ""

    def __init__(self, context: object) -> None:
        pass

    @__import__("emrcomm").hookimpl
    def emrcomm_find_recipient(self, patient_ref):  # type: ignore[no-untyped-def]
        if self.mode == "recipient-raises":
            raise ConnectionError(f"cannot look up {patient_ref}")
        return {"patient_ref": patient_ref} if self.mode == "recipient-dict" else None

    @__import__("emrcomm").hookimpl
    def emrcomm_render(self):  # type: ignore[no-untyped-def]
        return "Hello" if self.mode == "render-str" else None

    @__import__("emrcomm").hookimpl
    def emrcomm_plan(self):  # type: ignore[no-untyped-def]
        from emrcomm.model import Plan

        return {"list": ["sms"], "strings": Plan(("sms",))}.get(self.mode)


@pytest.mark.parametrize(("mode", "said"), [
    ("recipient-raises", "plugin 'first' failed in emrcomm_find_recipient: ConnectionError; nothing was sent"),
    ("recipient-dict", "emrcomm_find_recipient answered dict, not emrcomm.Recipient or None; one of the plugins "
                       "that implement it ('first', 'directory') breaks the contract"),
    ("render-str", "emrcomm_render answered str, not emrcomm.Message"),
    ("list", "emrcomm_plan answered list, not emrcomm.Plan"),
    ("strings", "emrcomm_plan answered a Plan holding str"),
])
def test_a_first_result_hook_that_fails_or_misanswers_sends_nothing_and_is_named(
        tmp_path: Path, clock, monkeypatch: pytest.MonkeyPatch, mode: str, said: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_FirstAnswers, "mode", mode)
    with host_with_fake(tmp_path, clock, "first", "test_pipeline:_FirstAnswers", 0) as host:
        with pytest.raises(PluginError) as raised:
            host.send(reminder())
        assert said in str(raised.value)
        assert "Patient/on-en" not in str(raised.value)  # the plugin's own words are not repeated
        assert sms_sink(host) == [] and not host.records(patient="Patient/on-en").get("entry")


class _EchoingDirectory:
    """A directory, placed first, that knows the patient but names them as the EMR's search."""

    def __init__(self, context: object) -> None:
        pass

    @__import__("emrcomm").hookimpl
    def emrcomm_find_recipient(self, patient_ref):  # type: ignore[no-untyped-def]
        from emrcomm.testing import make_recipient

        return make_recipient(patient_ref=patient_ref)


def test_a_directory_that_names_the_patient_by_the_search_is_refused(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    with host_with_fake(tmp_path, clock, "echo", "test_pipeline:_EchoingDirectory", 0) as host:
        outcome = host.send(reminder("Patient?identifier=urn:oid:2.16.840.1.113883.4.595|1234567890"))
        assert outcome.status is Status.BLOCKED and [f.code for f in outcome.findings] == ["CHECK_FAILED"]
        assert "not named Patient/<id>" in outcome.findings[0].message
        assert sms_sink(host) == []
        resource = communication(host, outcome.record_ids[0])
        assert resource is not None and "1234567890" not in json.dumps(resource)


def test_a_directory_whose_ids_fhir_would_not_write_still_names_its_patients(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    # An EMR's own ids ("12345_A": FHIR ids take no "_") link to a patient all the same: only a
    # search (what a health number travels in) is refused from a directory.
    with host_with_fake(tmp_path, clock, "echo", "test_pipeline:_EchoingDirectory", 0) as host:
        outcome = host.send(reminder("Patient/12345_A"))
        assert outcome.status is Status.SENT, outcome.explanation
        assert outcome.patient_ref == "Patient/12345_A"
        [entry] = host.records(patient="Patient/12345_A")["entry"]
        assert entry["resource"]["subject"] == {"reference": "Patient/12345_A"}


@pytest.mark.parametrize("ref", ["Patient/1/_history/2", "Patient/..", "Patient/", "Patient/on-en?x=1"])
def test_a_directory_that_answers_a_path_or_a_search_is_refused(tmp_path: Path, clock, ref: str) -> None:  # type: ignore[no-untyped-def]
    with host_with_fake(tmp_path, clock, "echo", "test_pipeline:_EchoingDirectory", 0) as host:
        outcome = host.send(reminder(ref))
        assert outcome.status is Status.BLOCKED and [f.code for f in outcome.findings] == ["CHECK_FAILED"]
        assert sms_sink(host) == []


class _MergingDirectory:
    """A directory, placed first, that answers for a merged patient with the one kept."""

    def __init__(self, context: object) -> None:
        pass

    @__import__("emrcomm").hookimpl
    def emrcomm_find_recipient(self, patient_ref):  # type: ignore[no-untyped-def]
        from emrcomm.testing import make_recipient

        return make_recipient(patient_ref="Patient/kept") if patient_ref == "Patient/merged" else None


def test_a_patient_the_emr_names_by_link_is_filed_as_it_named_them(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    # The EMR looks for a message's records under the patient it sent: a directory that answers
    # with another link (the patient kept after a merge) does not move them.
    with host_with_fake(tmp_path, clock, "merging", "test_pipeline:_MergingDirectory", 0) as host:
        outcome = host.send(reminder("Patient/merged"))
        assert outcome.status is Status.SENT and outcome.patient_ref == "Patient/merged", outcome.explanation
        [entry] = host.records(patient="Patient/merged")["entry"]
        assert entry["resource"]["subject"] == {"reference": "Patient/merged"}


def clinic_host(make_host: Callable[..., Host], resources: list[dict[str, Any]]) -> Host:
    """A host whose bundle directory has the small clinic and ``resources``."""
    from support import BASE_CONFIG, small_clinic

    bundle = small_clinic()
    bundle["entry"] += [{"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in resources]
    host = make_host()  # writes the config's folder; the clinic is read from its own file
    (host.config.base_dir / "more.json").write_text(json.dumps(bundle), encoding="utf-8")
    return make_host(config_text=BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "more.json"'))


def merged_host(make_host: Callable[..., Host]) -> Host:
    from support import merged_pair

    return clinic_host(make_host, merged_pair())


def test_a_chart_merged_into_another_is_sent_and_filed_as_the_one_kept(
        make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    # The EMR still names the chart it merged away: the patient is the one it was merged into,
    # reached at that chart's number, in its language, under its consent, and filed there.
    host = merged_host(make_host)
    outcome = host.send(reminder("Patient/blake-old", rid="merged-1"))
    assert outcome.status is Status.SENT and outcome.patient_ref == "Patient/blake", outcome.explanation
    [sms] = sms_sink(host)
    assert sms["to"] == "+15145550167" and "rendez-vous" in sms["text"].lower()
    [entry] = host.records(patient="Patient/blake")["entry"]
    assert entry["resource"]["subject"] == {"reference": "Patient/blake"}
    assert entry["resource"]["basedOn"] == [{"identifier": {"system": "http://emrcomm.org/fhir/NamingSystem/request-id",
                                                            "value": "merged-1"}}]
    assert host.records(patient="Patient/blake-old")["total"] == 0
    assert host.send(reminder("Patient/blake-old", rid="merged-1")).record_ids == outcome.record_ids  # a retry


def test_the_opt_out_of_the_chart_kept_stops_a_request_for_the_one_merged_into_it(
        make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    host = merged_host(make_host)
    host.delivery_update(DeliveryUpdate(kind="optout", at=clock.now, channel="sms", address="+15145550167",
                                        text="STOP reply", detail="Patient/blake"))
    outcome = host.send(reminder("Patient/blake-old", rid="merged-2"))
    assert "sms" not in outcome.channels and sms_sink(host) == []
    assert any(f.code == "CONSENT_REVOKED" and f.channel == "sms" for f in outcome.findings), outcome.findings


@pytest.mark.parametrize("ref", ["Patient/blake-old", "Patient/blake"])
def test_sms_refused_under_the_chart_merged_away_stays_refused_under_the_one_kept(
        make_host: Callable[..., Host], clock, ref: str) -> None:  # type: ignore[no-untyped-def]
    # Only the kept chart's Consents were read: Blake's refusal, recorded under his old chart and
    # not moved at the merge, no longer counted, and he was texted at the kept chart's number.
    from support import merged_pair, sms_refused

    host = clinic_host(make_host, [*merged_pair(), sms_refused("c-blake-old-deny", "blake-old")])
    outcome = host.send(reminder(ref, rid="refused-" + ref.replace("/", "-")))
    assert "sms" not in outcome.channels and sms_sink(host) == []
    assert any(f.code == "CONSENT_REVOKED" and f.channel == "sms" for f in outcome.findings), outcome.findings


MERGED_NOTE = "Patient/blake-old was merged into Patient/blake; sent to and filed under Patient/blake"


def test_a_chart_merged_into_another_is_named_on_the_outcome_and_the_record(
        make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    # The EMR named blake-old and nothing in the record said so: staff could not tell why the
    # message went to blake, nor that the EMR still uses the chart merged away.
    host = merged_host(make_host)
    outcome = host.send(reminder("Patient/blake-old", rid="merged-3"))
    assert outcome.status is Status.SENT, outcome.explanation
    [merged] = [f for f in outcome.findings if f.code == "PATIENT_MERGED"]
    assert merged.severity.value == "warn" and merged.message == MERGED_NOTE + "."
    resource = communication(host, outcome.record_ids[0])
    assert resource is not None and "statusReason" not in resource
    assert {"text": f"PATIENT_MERGED (warn): {MERGED_NOTE}."} in resource["note"]
    # A request naming the chart in use says nothing of a merge.
    kept = host.send(reminder("Patient/blake", rid="merged-4"))
    assert kept.status is Status.SENT and "PATIENT_MERGED" not in [f.code for f in kept.findings]


def test_a_search_that_finds_a_merged_chart_names_the_chart_it_found(
        make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    from support import merged_pair

    resources = merged_pair()
    resources[0]["identifier"] = [{"system": "urn:mrn", "value": "MRN-OLD"}]  # blake-old's number
    outcome = clinic_host(make_host, resources).send(reminder("Patient?identifier=urn:mrn|MRN-OLD", rid="by-old"))
    assert outcome.status is Status.SENT and outcome.patient_ref == "Patient/blake", outcome.explanation
    assert [f.message for f in outcome.findings if f.code == "PATIENT_MERGED"] == [MERGED_NOTE + "."]


def test_a_blocked_request_for_a_merged_chart_names_the_merge_once(
        make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    # Every candidate tried (sms, then the portal with an SMS notice) is stopped by the opt-out:
    # the merge is one thing to tell staff, not one per candidate.
    host = merged_host(make_host)
    host.delivery_update(DeliveryUpdate(kind="optout", at=clock.now, channel="sms", address="+15145550167",
                                        text="STOP reply", detail="Patient/blake"))
    outcome = host.send(reminder("Patient/blake-old", rid="merged-5"))
    assert outcome.status is Status.BLOCKED, outcome.explanation
    assert sum("rejected" in line for line in outcome.explanation) > 1, outcome.explanation
    assert [f.code for f in outcome.findings].count("PATIENT_MERGED") == 1
    resource = communication(host, outcome.record_ids[0])
    assert resource is not None
    assert [n["text"] for n in resource["note"]].count(f"PATIENT_MERGED (warn): {MERGED_NOTE}.") == 1


def _refused_charts() -> list[dict[str, Any]]:
    from support import consent, patient

    def loop(pid: str, other: str) -> dict[str, Any]:
        return {**patient(pid, given="Lou", family="Roy", mobile="+16135550169"), "active": False,
                "link": [{"other": {"reference": f"Patient/{other}"}, "type": "replaced-by"}]}

    return [{**patient("gone", given="Ada", family="Roy", mobile="+16135550170"), "deceasedBoolean": True},
            consent("c-gone", "gone", "sms"),
            {**patient("closed", given="Kim", family="Roy", mobile="+16135550168"), "active": False},
            consent("c-closed", "closed", "sms"),
            loop("loop-a", "loop-b"), loop("loop-b", "loop-a"), consent("c-loop", "loop-a", "sms")]


@pytest.mark.parametrize(("ref", "reason"), [
    ("Patient/gone", "Patient/gone is recorded as deceased"),
    ("Patient/closed", "Patient/closed is marked inactive (active: false): the EMR no longer uses this chart"),
    ("Patient/loop-a", "the replaced-by links of Patient/loop-a, Patient/loop-b lead back to Patient/loop-a: "
                       "a cycle, no chart in use"),
])
def test_a_patient_the_chart_refuses_is_blocked_as_refused_with_the_reason_not_as_unknown(
        make_host: Callable[..., Host], clock, ref: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    # It was RECIPIENT_UNKNOWN, "No directory knows this patient": staff were told the patient
    # does not exist, and not what to do.
    host = clinic_host(make_host, _refused_charts())
    outcome = host.send(reminder(ref, rid=f"refused-{ref}"))
    assert outcome.status is Status.BLOCKED and [f.code for f in outcome.findings] == ["RECIPIENT_REFUSED"]
    [refused] = outcome.findings
    assert refused.plugin == "directory" and refused.severity.value == "block"
    assert refused.message == f"The chart says this patient must not be messaged: {reason}."
    assert sms_sink(host) == []
    resource = communication(host, outcome.record_ids[0])
    assert resource is not None and resource["status"] == "not-done" and resource["subject"] == {"reference": ref}
    assert [c["code"] for c in resource["statusReason"]["coding"]] == ["RECIPIENT_REFUSED"]
    assert reason in resource["statusReason"]["text"]
    assert "+1613555017" not in json.dumps(resource) and "Roy" not in json.dumps(resource)


def test_a_patient_nobody_has_is_still_unknown(make_host: Callable[..., Host], clock) -> None:  # type: ignore[no-untyped-def]
    outcome = clinic_host(make_host, _refused_charts()).send(reminder("Patient/nobody", rid="nobody"))
    assert [f.code for f in outcome.findings] == ["RECIPIENT_UNKNOWN"]


class _RefusingDirectory:
    """A third party's directory, placed first, that knows Patient/on-en and refuses them."""

    said = ""

    def __init__(self, context: object) -> None:
        pass

    @__import__("emrcomm").hookimpl
    def emrcomm_find_recipient(self, patient_ref):  # type: ignore[no-untyped-def]
        import emrcomm

        if patient_ref == "Patient/on-en":
            raise emrcomm.RecipientRefused(self.said)
        return None


@pytest.mark.parametrize(("said", "shown"), [
    ("Patient/on-en is on a legal hold", "Patient/on-en is on a legal hold"),
    ("Patient/on-en\n is on\x00 hold.", "Patient/on-en is on hold"),  # one line, its dot not doubled
    ("", "the directory gave no reason"),
    ("x" * 400, "x" * 299 + "…"),
])
def test_a_third_party_directory_refuses_a_patient_by_raising_recipient_refused(
        tmp_path: Path, clock, monkeypatch: pytest.MonkeyPatch, said: str, shown: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_RefusingDirectory, "said", said)
    with host_with_fake(tmp_path, clock, "refusing", "test_pipeline:_RefusingDirectory", 0) as host:
        outcome = host.send(reminder())
        assert outcome.status is Status.BLOCKED and [f.code for f in outcome.findings] == ["RECIPIENT_REFUSED"]
        assert outcome.findings[0].plugin == "refusing"
        assert outcome.findings[0].message == f"The chart says this patient must not be messaged: {shown}."
        assert sms_sink(host) == []
        # A dry run says the same, the directory after it (which has Patient/on-en) not asked.
        assert [f.code for f in host.preview(reminder(rid="r-2")).findings] == ["RECIPIENT_REFUSED"]


class _ChannelRaiser:
    """A planner that tries to make SMS secure for everyone by editing the channels it is shown."""

    def __init__(self, context: object) -> None:
        pass

    @__import__("emrcomm").hookimpl
    def emrcomm_plan(self, channels):  # type: ignore[no-untyped-def]
        import attrs

        channels["sms"] = attrs.evolve(channels["sms"], secure=True)


def test_a_planner_cannot_change_the_hosts_channels(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    with host_with_fake(tmp_path, clock, "raiser", "test_pipeline:_ChannelRaiser", 3) as host:
        with pytest.raises(PluginError, match="plugin 'raiser' failed in emrcomm_plan: TypeError"):
            host.send(reminder())
        assert host.channels["sms"].secure is False  # the clinic's trust, as configured
        assert sms_sink(host) == []


def test_the_same_request_racing_itself_is_sent_once(host: Host) -> None:
    import threading

    barrier = threading.Barrier(2)
    ledger = host.storage.records
    original = ledger.request
    outcomes = []
    early = []

    def late_check(request_id):  # type: ignore[no-untyped-def]
        result = original(request_id)
        early.append(request_id)
        if len(early) <= 2:
            barrier.wait(timeout=5)  # both calls pass the early check before either writes
        return result

    ledger.request = late_check  # type: ignore[method-assign]
    threads = [threading.Thread(target=lambda: outcomes.append(host.send(reminder()))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    ledger.request = original  # type: ignore[method-assign]
    assert len(outcomes) == 2 and len(sms_sink(host)) == 1
    assert sum("already handled" in " ".join(o.explanation) for o in outcomes) == 1


def test_an_id_racing_another_message_under_it_sends_one_and_refuses_the_other(host: Host) -> None:
    # Both pass the early check; the ledger arbitrates at the write, and the loser, which asked
    # for another patient, is refused as it would be had it come second.
    import threading

    from emrcomm import RequestConflict

    barrier = threading.Barrier(2)
    ledger = host.storage.records
    original = ledger.request
    results: list[object] = []
    calls = []

    def late_check(request_id):  # type: ignore[no-untyped-def]
        result = original(request_id)
        calls.append(request_id)
        if len(calls) <= 2:
            barrier.wait(timeout=5)
        return result

    def send(patient: str) -> None:
        try:
            results.append(host.send(reminder(patient)))
        except RequestConflict as exc:
            results.append(exc)

    ledger.request = late_check  # type: ignore[method-assign]
    threads = [threading.Thread(target=send, args=(p,)) for p in ("Patient/on-en", "Patient/qc-fr")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    ledger.request = original  # type: ignore[method-assign]
    assert sorted(type(r).__name__ for r in results) == ["Outcome", "RequestConflict"]
    assert len(sms_sink(host)) == 1


def test_an_inline_send_leases_its_row_so_a_worker_cannot_take_it(host: Host) -> None:
    seen = []
    transport = host.channels["sms"].transport
    original = transport.send

    def spy(delivery):  # type: ignore[no-untyped-def]
        seen.append(host.storage.outbox.claim(owner="worker-x", now=host.clock(),
                                              lease=dt.timedelta(minutes=2), limit=10))
        return original(delivery)

    transport.send = spy  # type: ignore[method-assign]
    try:
        assert host.send(reminder()).status is Status.SENT
    finally:
        transport.send = original  # type: ignore[method-assign]
    assert seen == [[]]  # while the inline send ran, a worker found nothing to claim
    assert host.storage.outbox.counts() == {}  # and once it was sent, nothing is left


def test_a_stop_reaches_the_ledger_even_when_a_plugin_before_optout_fails(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    from emrcomm.errors import PluginError

    with host_with_fake(tmp_path, clock, "deaf", "fakes:DeafAdapter", 0) as host:
        with pytest.raises(PluginError, match="'deaf'"):
            host.delivery_update(DeliveryUpdate(kind="optout", at=clock.now, channel="sms",
                                                address="+16135550123", detail="Patient/on-en"))
        outcome = host.send(reminder())
        assert "sms" not in outcome.channels
        assert any(f.code == "CONSENT_REVOKED" for f in outcome.findings)


def test_a_stop_that_met_the_database_away_is_answered_try_again_and_counts_once_when_sent_again(
        tmp_path: Path, clock, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # Not a plugin's failure (a 500, "fix the plugin") but the store's (serve's 503): Kannel and
    # Twilio send the STOP again, and the second time it is heard once.
    from emrcomm.storage import StoreUnavailable
    from fakes import AwayAdapter

    monkeypatch.setattr(AwayAdapter, "FAIL", True)
    stop = DeliveryUpdate(kind="reply", at=clock.now, channel="sms", address="+16135550123", text="STOP",
                          provider_id="SM-stop-1", detail="Patient/on-en")
    with host_with_fake(tmp_path, clock, "away", "fakes:AwayAdapter", 0) as host:
        host.send(reminder())
        with pytest.raises(StoreUnavailable):
            host.delivery_update(stop)
        monkeypatch.setattr(AwayAdapter, "FAIL", False)
        host.delivery_update(stop)
        outcome = host.send(reminder(rid="r-2"))
        assert "sms" not in outcome.channels
        assert [f.code for f in outcome.findings].count("CONSENT_REVOKED") == 1
        assert len(host.storage.consent.events(channel="sms", address="+16135550123")) == 1


def test_a_send_that_left_while_the_database_was_away_is_recorded_once_it_is_back(
        host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    # The message has left; the database then cannot be reached for a few tries (a restart): the
    # caller of send keeps trying to record it, instead of leaving the row leased for a worker to
    # send the message again when the lease runs out.
    from emrcomm.storage import StoreUnavailable

    finish = host.storage.outbox.finish
    away = iter(range(6))

    def finish_while_away(key: str, *, owner: str | None) -> bool:
        if next(away, None) is not None:
            raise StoreUnavailable("the database server cannot be reached")
        return finish(key, owner=owner)

    monkeypatch.setattr(host.storage.outbox, "finish", finish_while_away)
    outcome = host.send(reminder())
    assert outcome.status is Status.SENT
    assert len(sms_sink(host)) == 1
    assert host.storage.outbox.counts() == {}
    record = host.storage.records.get(outcome.record_ids[0])
    assert record is not None and record.status == "completed"


# A request id decided blocked or unfiled while another decision of it is written --------------
def sent_while_deciding(host: Host, twin: Request | dict[str, Any], at: dt.datetime | None = None) -> list[object]:
    """Make ``host``'s next decision read the ledger as it stood before ``twin`` (the same id) was
    sent in full, as a request decided at the same moment as it, in another process, does. With
    ``at``, the twin is sent at that time, and the clock then reads as it did."""
    ledger = host.storage.records
    original = ledger.request
    answers: list[object] = []

    def before_the_twin(request_id):  # type: ignore[no-untyped-def]
        found = original(request_id)
        ledger.request = original  # type: ignore[method-assign]
        clock = host.clock
        now = clock.now  # type: ignore[attr-defined]
        clock.now = at or now  # type: ignore[attr-defined]
        answers.append(host.send(twin))
        clock.now = now  # type: ignore[attr-defined]
        return found

    ledger.request = before_the_twin  # type: ignore[method-assign]
    return answers


def test_a_request_decided_blocked_while_its_twin_is_sent_answers_as_a_repeat_of_that_send(host: Host) -> None:
    # Decided expired, a minute after its twin was decided in time: the twin's send is the one.
    req = attrs.evolve(reminder(), expires=TEST_NOW + dt.timedelta(minutes=1))
    host.clock.now = TEST_NOW + dt.timedelta(minutes=2)  # type: ignore[attr-defined]
    twin = sent_while_deciding(host, req, at=TEST_NOW)
    outcome = host.send(req)
    assert [o.status for o in twin] == [Status.SENT]  # type: ignore[attr-defined]
    assert outcome.status is Status.SENT and outcome.explanation[0].startswith("already handled")
    assert outcome.record_ids == twin[0].record_ids  # type: ignore[attr-defined]
    assert all(r.role != "blocked" for r in host.storage.records.for_request("r-1"))
    assert len(sms_sink(host)) == 1


def test_a_request_decided_blocked_while_another_under_its_id_is_sent_is_refused_as_a_conflict(host: Host) -> None:
    from emrcomm import RequestConflict

    twin = sent_while_deciding(host, reminder())
    with pytest.raises(RequestConflict):
        host.send(reminder("Patient/nobody-we-know"))
    assert [o.status for o in twin] == [Status.SENT]  # type: ignore[attr-defined]
    assert all(r.role != "blocked" for r in host.storage.records.for_request("r-1"))
    assert len(sms_sink(host)) == 1


def test_a_request_not_filed_while_its_twin_is_sent_answers_as_a_repeat_of_that_send(
        tmp_path: Path, clock, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # Its filer refused it; before it could say so in the ledger, its twin (decided a moment
    # later, the chart back) was sent: it was told "failed, send it again" and filed a not-done record.
    import fakes
    from emrcomm.pipeline import write

    real = write.write_not_filed
    twin: list[Status] = []

    def the_twin_first(host, *args):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(fakes.ChartAway, "AWAY", False)
        twin.append(host.send(reminder()).status)
        monkeypatch.setattr(fakes.ChartAway, "AWAY", True)
        return real(host, *args)

    monkeypatch.setattr(write, "write_not_filed", the_twin_first)
    with host_with_fake(tmp_path, clock, "chartaway", "fakes:ChartAway", 11) as host:
        outcome = host.send(reminder())
        assert twin == [Status.SENT]
        assert outcome.status is Status.SENT and outcome.explanation[0].startswith("already handled")
        assert [r.role for r in host.storage.records.for_request("r-1")] == ["primary"]
        assert len(sms_sink(host)) == 1
