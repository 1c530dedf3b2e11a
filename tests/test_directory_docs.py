"""docs/directory.md, taken at its word: its patient file loads through the directory plugin and
gives the consents the page describes, and the sends it promises go where it says."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from emrcomm.host import Host
from emrcomm.model import ConsentGrant, Purpose, Request, Status
from support import REPO, write_config

PAGE = (REPO / "docs" / "directory.md").read_text(encoding="utf-8")
TORONTO = dt.timezone(dt.timedelta(hours=-5))
NOTE = "Your HbA1c is 8.1%. Please increase metformin to 1000 mg twice a day."


def page_bundle() -> dict[str, Any]:
    [block] = re.findall(r"^```json title=patients.json\n(.*?)^```", PAGE, re.S | re.M)
    bundle: dict[str, Any] = json.loads(block)
    return bundle


def host_for(tmp_path: Path, bundle: dict[str, Any]) -> Host:
    return Host.from_config(write_config(tmp_path, bundle=bundle))


def reminder(rid: str) -> Request:
    return Request("Patient/alex", "appointment-reminder", id=rid, template="appointment-reminder",
                   variables={"appointment": dt.datetime(2026, 11, 24, 10, 30, tzinfo=TORONTO)})


def test_the_page_patient_gives_the_consents_the_page_describes(tmp_path: Path) -> None:
    with host_for(tmp_path, page_bundle()) as host:
        recipient = host.plugins.find_recipient(reminder("r"))
    assert recipient is not None and recipient.birth_date == dt.date(1980, 4, 12)
    assert [(c.system, c.value) for c in recipient.contact_points] == [
        ("sms", "+16135550123"), ("email", "alex.martin@example.org"), ("phone", "+16135550188")]
    assert recipient.jurisdiction == "CA-ON" and recipient.time_zone == "America/Toronto"
    by_channel = {(g.channel, g.purpose): g for g in recipient.consents}
    assert set(by_channel) == {("sms", Purpose.CLINICAL), ("email", Purpose.CLINICAL), ("portal", Purpose.CLINICAL),
                               ("sms", Purpose.BILLING)}
    sms = by_channel["sms", Purpose.CLINICAL]
    assert (sms.address, sms.source, sms.revoked) == ("+16135550123", "front desk", None)
    email: ConsentGrant = by_channel["email", Purpose.CLINICAL]
    assert email.address == "alex.martin@example.org" and email.accepts_unencrypted_email is False
    assert by_channel["portal", Purpose.CLINICAL].address is None
    billing = by_channel["sms", Purpose.BILLING]
    assert billing.revoked == dt.datetime(2026, 3, 1, 14, 0, tzinfo=dt.UTC) and billing.source == "phone call"


def test_the_sends_the_page_promises(tmp_path: Path) -> None:
    with host_for(tmp_path, page_bundle()) as host:
        sent = host.send(reminder("appt"))
        note = host.send(Request("Patient/alex", "clinical", id="note", text=NOTE))
        bill = host.send(Request("Patient/alex", "invoice", id="bill", template="invoice",
                                 variables={"amount": "45.00"}))
    assert (sent.status, sent.channels) == (Status.SENT, ("sms",))
    assert (note.status, note.channels) == (Status.SENT, ("portal", "sms"))
    assert bill.status is Status.BLOCKED
    assert {(f.code, f.channel) for f in bill.findings} >= {
        ("CONSENT_REVOKED", "sms"), ("CONSENT_MISSING", "email"), ("CONSENT_MISSING", "portal")}


@pytest.mark.parametrize(("drop", "status", "code"), [
    ("alex-portal", Status.BLOCKED, ("CONSENT_MISSING", "portal")),
    ("birthDate", Status.BLOCKED, ("RECIPIENT_INVALID", "portal")),
])
def test_the_portal_needs_its_own_consent_and_a_birth_date(drop: str, status: Status, code: tuple[str, str],
                                                           tmp_path: Path) -> None:
    bundle = copy.deepcopy(page_bundle())
    if drop == "birthDate":
        del bundle["entry"][0]["resource"]["birthDate"]
    else:
        bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["id"] != drop]
    with host_for(tmp_path, bundle) as host:
        note = host.send(Request("Patient/alex", "clinical", id="note", text=NOTE))
    assert note.status is status
    assert code in {(f.code, f.channel) for f in note.findings}


def test_a_portal_message_with_no_channel_for_its_notice_is_kept_but_the_patient_is_not_told(tmp_path: Path) -> None:
    bundle = copy.deepcopy(page_bundle())
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["id"] not in ("alex-sms", "alex-email")]
    with host_for(tmp_path, bundle) as host:
        note = host.send(Request("Patient/alex", "clinical", id="note", text=NOTE))
    assert note.status is Status.STORED and note.channels == ("portal",)
    assert "PATIENT_NOT_TOLD" in {f.code for f in note.findings}


def test_the_purpose_table_says_which_purpose_each_category_needs() -> None:
    from emrcomm.model import Category

    rows = re.findall(r"^  \| `(clinical|billing|commercial)` \| (.*) \|$", PAGE, re.M)
    listed = {category: Purpose(purpose) for purpose, cells in rows for category in re.findall(r"`([a-z-]+)`", cells)}
    requested = {"appointment-reminder", "results-available", "prescription-pickup", "prescription-refill", "invoice",
                 "questionnaire", "education", "clinical", "marketing"}  # what an EMR's request may name
    assert requested <= {c.value for c in Category} and requested <= set(listed)
    assert {name: Category(name).purpose for name in listed} == listed
