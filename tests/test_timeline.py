"""`emrcomm records` for people: a patient's messages, replies, opt-outs and consents in time
order, in the patient's time zone, with each message's channel, its status in words and the
rule's staff sentence for why it was blocked or held; the FHIR Bundle on --fhir / --json; and
`emrcomm records | head` ends without a traceback."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emrcomm import timeline
from emrcomm.cli import EXIT_BROKEN_PIPE, main
from emrcomm.config import load_config
from emrcomm.host import Host
from emrcomm.model import DeliveryUpdate, Request, Status
from support import BASE_CONFIG, consent, merged_pair, patient, small_clinic, write_config

APPOINTMENT = dt.datetime(2026, 11, 26, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


def clinic_with_a_patient_out_west() -> dict[str, object]:
    bundle = small_clinic()
    for resource in (patient("bc-en", given="Robin", family="Hale", mobile="+16045550111", state="BC"),
                     consent("c-bc", "bc-en", "sms", address="+16045550111")):
        bundle["entry"].append({"fullUrl": f"urn:x:{resource['id']}", "resource": resource})  # type: ignore[attr-defined]
    return bundle


@pytest.fixture
def host(tmp_path: Path, clock) -> Iterator[Host]:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, bundle=clinic_with_a_patient_out_west())
    with Host(load_config(path), clock=clock) as opened:
        yield opened


def reminder(rid: str, patient_ref: str = "Patient/on-en") -> Request:
    return Request(patient_ref, "appointment-reminder", id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT})


def records_text(host: Host, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["records", "--config", str(host.config.source), *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_a_patients_day_reads_in_time_order_with_channel_status_reply_and_opt_out(
        host: Host, clock, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert host.send(reminder("appt-1")).status is Status.SENT
    clock.now += dt.timedelta(minutes=4)
    host.delivery_update(DeliveryUpdate(kind="reply", at=clock.now, channel="sms", address="+16135550123",
                                        text="Can I come at 11 instead?", provider_id="mo-1"))
    clock.now += dt.timedelta(minutes=6)
    host.delivery_update(DeliveryUpdate(kind="reply", at=clock.now, channel="sms", address="+16135550123",
                                        text="STOP", provider_id="mo-2"))
    clock.now += dt.timedelta(hours=1)
    again = host.send(reminder("appt-2"))
    assert again.status is Status.SENT and again.channels == ("email",)

    out = records_text(host, capsys, "--patient", "Patient/on-en")
    lines = out.splitlines()
    assert lines[0] == "Alex Martin (Patient/on-en): times in America/Toronto, the patient's time zone"
    # 15:00 UTC is 10:00 in Toronto; the phone number is written as people write it
    sent = lines.index("2026-11-23 10:00  Appointment reminder by SMS to 613-555-0123: sent")
    reply = next(i for i, line in enumerate(lines) if line.startswith("2026-11-23 10:04  Reply from the patient by SMS"))
    assert "to the appointment reminder of 2026-11-23 10:00" in lines[reply] and "“Can I come at 11 instead?”" in out
    stop = next(i for i, line in enumerate(lines) if line.startswith("2026-11-23 10:10  Reply from the patient"))
    opted_out = lines.index("2026-11-23 10:10  Opted out of SMS at 613-555-0123 by STOP reply")
    by_email = lines.index("2026-11-23 11:10  Appointment reminder by email to alex.martin@example.org: sent")
    assert sent < reply < stop < opted_out < by_email
    # what the directory has on file, dated, comes first
    assert lines[1] == "2026-01-05 10:00  Consented to clinical messages by SMS at 613-555-0123 (patient file)"


def test_automatic_answers_read_as_what_they_are_and_every_reply_answers_the_clinics_message(
        host: Host, clock, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert host.send(reminder("appt-1")).status is Status.SENT
    for minutes, text in ((4, "Can I come at 11 instead?"), (6, "STOP"), (7, "HELP"), (8, "START")):
        host.delivery_update(DeliveryUpdate(kind="reply", at=clock.now + dt.timedelta(minutes=minutes), channel="sms",
                                            address="+16135550123", text=text, provider_id=f"mo-{minutes}"))
    lines = records_text(host, capsys, "--patient", "Patient/on-en").splitlines()
    replies = [line for line in lines if "Reply from the patient by SMS" in line]
    assert len(replies) == 4 and all("to the appointment reminder of 2026-11-23 10:00" in r for r in replies)
    for name in ("Automatic answer to a reply", "Opt-out confirmation", "Answer to HELP", "Opt-in confirmation"):
        assert any(line.endswith(f"{name} by SMS to 613-555-0123: sent") for line in lines), (name, lines)



def test_the_hour_repeated_when_daylight_saving_ends_is_told_apart_by_its_offset(
        host: Host, clock, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """On 2026-11-01 Toronto's clocks showed 01:30 twice: the two replies say which, in order."""
    assert host.send(reminder("appt-1")).status is Status.SENT
    for hour, text in ((5, "first"), (6, "second")):  # 01:30 EDT, then 01:30 EST
        host.delivery_update(DeliveryUpdate(kind="reply", at=dt.datetime(2026, 11, 1, hour, 30, tzinfo=dt.UTC),
                                            channel="sms", address="+16135550123", text=text, provider_id=text))
    lines = records_text(host, capsys, "--patient", "Patient/on-en").splitlines()
    replies = [line for line in lines if "Reply from the patient" in line]
    assert [r[:30] for r in replies] == ["2026-11-01 01:30 (UTC-04:00)  ", "2026-11-01 01:30 (UTC-05:00)  "]
    assert any(line.startswith("2026-11-23 10:00  Appointment reminder") for line in lines)  # an hour said once


@pytest.mark.parametrize(("category", "answered"), [("clinical", "clinical message"),
                                                    ("results-available", "results notice")])
def test_a_reply_names_the_message_it_answers_as_a_noun(
        host: Host, clock, capsys: pytest.CaptureFixture[str], category: str,  # type: ignore[no-untyped-def]
        answered: str) -> None:
    outcome = host.send(Request("Patient/on-en", category, id="note-1", text="Your HbA1c is 8.1%."))
    assert outcome.channels == ("portal", "sms")
    clock.now += dt.timedelta(minutes=4)
    host.delivery_update(DeliveryUpdate(kind="reply", at=clock.now, channel="sms", address="+16135550123",
                                        text="Thank you", provider_id="mo-1"))
    lines = records_text(host, capsys, "--patient", "Patient/on-en").splitlines()
    assert (f"2026-11-23 10:04  Reply from the patient by SMS, to the {answered} of 2026-11-23 10:00: received"
            in lines), lines

def test_a_held_message_says_until_when_and_why_in_the_patients_own_time_zone(
        host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    # 15:00 UTC is 07:00 in Vancouver: before the patient's quiet hours end at 08:00
    assert host.send(reminder("appt-bc", "Patient/bc-en")).status is Status.HELD
    out = records_text(host, capsys, "--patient", "Patient/bc-en")
    lines = out.splitlines()
    assert lines[0] == "Robin Hale (Patient/bc-en): times in America/Vancouver, the patient's time zone"
    held = lines.index("2026-11-23 07:00  Appointment reminder by SMS to 604-555-0111: held until 2026-11-23 08:00")
    assert lines[held + 1].strip().startswith("why: It is outside 08:00–21:00 in the patient's time zone")


def test_a_portal_message_says_whether_it_was_read_and_never_shows_its_words(
        host: Host, clock, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    note = "Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily."
    outcome = host.send(Request("Patient/on-en", "results-available", id="note-1", text=note))
    assert outcome.channels == ("portal", "sms")
    clock.now += dt.timedelta(hours=2)
    host.delivery_update(DeliveryUpdate(kind="read", at=clock.now, channel="portal", record_id=outcome.record_ids[0]))
    out = records_text(host, capsys, "--patient", "Patient/on-en")
    lines = out.splitlines()
    portal = lines.index("2026-11-23 10:00  Results available by the portal: read by the patient")
    assert lines[portal + 1].strip() == "stored in the portal at 10:00, read at 12:00"
    notice = lines.index("2026-11-23 10:00  Results available: notice of the portal message by SMS to 613-555-0123: sent")
    assert portal < notice and "metformin" not in out


def test_a_message_names_the_clinician_who_wrote_it(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    host.send(Request("Patient/on-en", "results-available", id="note-2", text="Your results are in.",
                      sender="Practitioner/dr-osei", sender_name="Dr. Amara Osei"))
    lines = records_text(host, capsys, "--patient", "Patient/on-en").splitlines()
    assert any(line.startswith("2026-11-23 10:00  Results available from Dr. Amara Osei by ") for line in lines), lines


def test_a_front_desk_opt_in_and_an_opt_out_from_an_address_not_yet_matched_both_show(
        host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    at = dt.datetime(2026, 11, 20, 14, 0, tzinfo=dt.UTC)
    host.storage.consent.add(patient="unknown", channel="sms", address="+16135550123", purpose=None,
                             action="revoke", at=at, source="STOP reply")
    host.storage.consent.add(patient="Patient/on-en", channel="sms", address="+16135550123", purpose="clinical",
                             action="grant", at=at + dt.timedelta(days=1), source="front desk (J. Roy)")
    host.storage.consent.add(patient="Patient/qc-fr", channel="sms", address="+15145550199", purpose=None,
                             action="revoke", at=at, source="ARRET reply")
    host.storage.consent.add(patient="Patient/on-en", channel="email", address="alex.martin@example.org",
                             purpose=None, action="revoke", at=at + dt.timedelta(days=2), source="")
    lines = records_text(host, capsys, "--patient", "Patient/on-en").splitlines()
    assert "2026-11-20 09:00  Opted out of SMS at 613-555-0123 by STOP reply" in lines
    assert "2026-11-22 09:00  Opted out of email at alex.martin@example.org" in lines  # no source given
    assert ("2026-11-21 09:00  Opted in to SMS at 613-555-0123 for clinical messages by front desk (J. Roy)"
            in lines)
    assert not any("514" in line for line in lines)


def test_the_clinic_log_lists_every_patient_in_the_clinics_time_zone(
        host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    host.send(reminder("appt-1"))
    host.send(reminder("appt-bc", "Patient/bc-en"))
    host.send(reminder("appt-none", "Patient/none"))
    lines = records_text(host, capsys).splitlines()
    assert lines[0] == "Every patient: times in America/Toronto, the clinic's time zone"
    assert "2026-11-23 10:00  Patient/bc-en  Appointment reminder by SMS to 604-555-0111: held until 2026-11-23 11:00" \
        in lines
    not_sent = lines.index("2026-11-23 10:00  Patient/none  Appointment reminder: not sent: no channel could carry it")
    assert "why: SMS: The patient has not agreed to receive clinical messages by sms" in lines[not_sent + 1]
    assert records_text(host, capsys, "--status", "completed").count("Patient/") == 1


def test_fhir_and_json_print_the_searchset_bundle(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    host.send(reminder("appt-1"))
    for flag in ("--fhir", "--json"):
        bundle = json.loads(records_text(host, capsys, "--patient", "Patient/on-en", flag))
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset" and bundle["total"] == 1


def test_a_patient_the_directory_does_not_know_still_has_a_timeline_in_the_clinics_zone(
        host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    host.send(reminder("ghost-1", "Patient/ghost"))
    lines = records_text(host, capsys, "--patient", "Patient/ghost").splitlines()
    assert lines[0] == "Patient/ghost: times in America/Toronto, the clinic's (the patient's is not on file) time zone"
    assert lines[1].startswith("2026-11-23 10:00  Appointment reminder: not sent")
    assert lines[2].strip() == "why: No directory knows this patient (Patient/ghost)."


def test_the_timeline_of_nobody_says_so(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    assert records_text(host, capsys, "--patient", "Patient/none").splitlines()[-1] == \
        "nothing filed for this patient"


def test_records_into_a_reader_that_went_away_ends_without_a_traceback(host: Host) -> None:
    """`emrcomm records | head`: the pipe's reader is gone before emrcomm writes."""
    host.send(reminder("appt-1"))
    read, write = os.pipe()
    os.close(read)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    for flags in ((), ("--patient", "Patient/on-en"), ("--fhir",)):
        done = subprocess.run([sys.executable, "-m", "emrcomm", "records", "--config", str(host.config.source),
                               *flags], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, env=env,
                              check=False)
        assert done.returncode == EXIT_BROKEN_PIPE and done.stderr == "", done.stderr
    os.close(write)


def test_the_ledger_history_of_a_patient_takes_their_addresses_too(host: Host) -> None:
    ledger = host.storage.consent
    at = dt.datetime(2026, 11, 20, 14, 0, tzinfo=dt.UTC)
    ledger.add(patient="unknown", channel="sms", address="+16135550123", purpose=None, action="revoke", at=at,
               source="STOP reply")
    ledger.add(patient="Patient/on-en", channel="email", address="alex.martin@example.org", purpose=None,
               action="revoke", at=at + dt.timedelta(hours=1), source="unsubscribe link")
    ledger.add(patient="Patient/qc-fr", channel="sms", address="+15145550199", purpose=None, action="revoke", at=at,
               source="ARRET reply")
    assert [e.source for e in ledger.history(patient="Patient/on-en")] == ["unsubscribe link"]
    assert [e.source for e in ledger.history(patient="Patient/on-en", addresses=[("sms", "+16135550123")])] == \
        ["STOP reply", "unsubscribe link"]
    assert len(ledger.history()) == 3
    assert [e.source for e in ledger.history(since=at + dt.timedelta(minutes=1))] == ["unsubscribe link"]


def test_entries_know_their_record_and_request(host: Host) -> None:
    outcome = host.send(reminder("appt-1"))
    [entry] = [e for e in timeline.for_patient(host, "Patient/on-en").entries if e.kind == "message"]
    assert (entry.record_id, entry.request_id, entry.tone) == (outcome.record_ids[0], "appt-1", "done")


def test_a_report_dated_before_the_send_it_reports_on_is_told_after_it(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    # A delivery report filed before the sender recorded "sent" (a worker on a loaded machine), or
    # dated by the provider's clock in whole seconds: the steps still read sent, then delivered.
    outcome = host.send(reminder("appt-1"))
    assert outcome.status is Status.SENT
    record = outcome.record_ids[0]
    host.delivery_update(DeliveryUpdate(kind="delivered", at=clock.now - dt.timedelta(seconds=1),
                                        record_id=record, provider_id="dlr-1"))
    [entry] = [e for e in timeline.for_patient(host, "Patient/on-en").entries if e.record_id == record]
    assert [step.what for step in entry.steps] == ["sent", "delivered"]
    assert entry.steps[1].at == clock.now - dt.timedelta(seconds=1)  # each with its own time


def host_of_clinic_with(make_host: Callable[..., Host], tmp_path: Path, name: str,
                        resources: list[dict[str, Any]]) -> Host:
    """A host (of the test's store) whose bundle directory is the small clinic and ``resources``."""
    bundle = small_clinic()
    bundle["entry"] += [{"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in resources]
    (tmp_path / name).write_text(json.dumps(bundle), encoding="utf-8")
    return make_host(config_text=BASE_CONFIG.replace('bundle = "patients.json"', f'bundle = "{name}"'))


def test_the_chart_kept_at_a_merge_shows_what_was_filed_under_the_chart_merged_away(
        make_host: Callable[..., Host], tmp_path: Path, clock,  # type: ignore[no-untyped-def]
        capsys: pytest.CaptureFixture[str]) -> None:
    # Only what was filed under Patient/blake showed: Blake's messages from before the EMR merged
    # his old chart into it were lost to staff reading his timeline.
    old, old_consent, _kept, _kept_consent = merged_pair()
    unmerged = {**{k: v for k, v in old.items() if k != "link"}, "active": True}
    before = host_of_clinic_with(make_host, tmp_path, "before.json", [unmerged, old_consent])
    assert before.send(reminder("before-merge", "Patient/blake-old")).status is Status.SENT
    before.close()
    clock.now += dt.timedelta(days=1)
    after = host_of_clinic_with(make_host, tmp_path, "after.json", merged_pair())
    assert after.send(reminder("after-merge", "Patient/blake")).status is Status.SENT
    for asked in ("Patient/blake", "Patient/blake-old"):  # the chart kept, or the one merged away
        lines = records_text(after, capsys, "--patient", asked).splitlines()
        assert lines[0].startswith(f"Blake Roy ({asked}): ")
        [others] = [line for line in lines if line.startswith("  merged charts: ")]
        assert ({"Patient/blake", "Patient/blake-old"} - {asked}).pop() in others
        # 15:00 UTC is 10:00 in Toronto (and Montreal); the old chart's number, 613-555-0166
        old_line = "2026-11-23 10:00  Patient/blake-old  Appointment reminder by SMS to 613-555-0166: sent"
        new_line = "Appointment reminder by SMS to 514-555-0167: sent"
        assert any(line.startswith("2026-11-24 10:00  ") and line.endswith(new_line) for line in lines)
        assert (old_line in lines) is (asked == "Patient/blake")
        assert asked == "Patient/blake" or any(line.startswith("2026-11-23 10:00  Appointment reminder by SMS "
                                                               "to 613-555-0166") for line in lines)
