"""An SMS is spelled in GSM-7 as it leaves (emrcomm.forms.for_sms): "Île" as "Ile", so that one
letter does not send it as UCS-2 at 70 characters a segment; the record of the SMS holds what the
phone got, and email keeps every accent."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
from collections.abc import Callable

from emrcomm.host import Host
from emrcomm.model import Category, Request, Status
from emrcomm.segments import count_segments, to_gsm7
from support import BASE_CONFIG, communication

TORONTO = dt.timezone(dt.timedelta(hours=-5))  # November: EST
APPOINTMENT = dt.datetime(2026, 11, 24, 10, 30, tzinfo=TORONTO)
AUGUST = dt.datetime(2027, 8, 25, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=-4)))  # EDT
ILE_PERROT = "Clinique de l’Île-Perrot"  # î and the curly apostrophe are not GSM-7


def named(name: str) -> str:
    return BASE_CONFIG.replace('name = "Riverside Family Health"', f'name = "{name}"')


def reminder(rid: str, *, patient: str = "Patient/qc-fr", channel: str | None = None,
             location: str | None = None, at: dt.datetime = APPOINTMENT) -> Request:
    variables: dict[str, object] = {"appointment": at}
    if location:
        variables["location"] = location
    return Request(patient, Category.APPOINTMENT_REMINDER, id=rid, template="appointment-reminder",
                   variables=variables, appointment=at, channel=channel)


def sms_sink(host: Host) -> list[dict[str, str]]:
    path = host.config.base_dir / "out" / "sms.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def email_body(host: Host) -> str:
    [path] = sorted((host.config.base_dir / "out" / "email").glob("*.eml"))
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return str(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def test_a_clinic_with_an_accented_name_sends_its_reminder_in_one_gsm7_segment(
        make_host: Callable[..., Host]) -> None:
    host = make_host(config_text=named(ILE_PERROT))
    outcome = host.send(reminder("r-ile"))
    assert outcome.status is Status.SENT and outcome.channels == ("sms",), outcome.explanation
    [line] = sms_sink(host)
    assert line["text"].startswith("Rendez-vous à Clinique de l'Ile-Perrot le mardi 24 novembre à 10 h 30.")
    assert count_segments(line["text"]) == ("GSM-7", 1), line["text"]
    # The chart holds what the phone got.
    [record] = outcome.record_ids
    assert (communication(host, record) or {})["payload"][0]["contentString"] == line["text"]


def test_the_sms_segment_limit_counts_the_text_as_it_leaves(make_host: Callable[..., Host]) -> None:
    # 'Côte' in the location: as typed, the reminder is UCS-2 in 3 segments, over a limit of 2;
    # spelled for SMS it is GSM-7 in 2, and goes.
    host = make_host(config_text=named(ILE_PERROT) + "\n[plugins.policy]\nmax_segments = 2\n")
    outcome = host.send(reminder("r-cote", location="Pavillon Côte-des-Neiges, 2e étage"))
    assert outcome.status is Status.SENT and outcome.channels == ("sms",), outcome.explanation
    [line] = sms_sink(host)
    assert ", Pavillon Cote-des-Neiges, 2e étage." in line["text"]
    assert count_segments(line["text"]) == ("GSM-7", 2), line["text"]
    assert count_segments(line["text"].replace("Cote", "Côte").replace("l'Ile", "l’Île"))[1] == 3


def test_an_august_reminder_says_aout_by_sms_in_one_segment_and_aout_with_its_accent_by_email(
        make_host: Callable[..., Host]) -> None:
    host = make_host(config_text=named(ILE_PERROT))
    by_sms = host.send(reminder("r-aug-sms", at=AUGUST))
    by_email = host.send(reminder("r-aug-mail", at=AUGUST, channel="email"))
    assert by_sms.channels == ("sms",) and by_email.channels == ("email",), (by_sms.explanation, by_email.explanation)
    [line] = sms_sink(host)
    assert line["text"].startswith("Rendez-vous à Clinique de l'Ile-Perrot le mercredi 25 aout à 10 h 30.")
    assert count_segments(line["text"]) == ("GSM-7", 1), line["text"]
    [sms_record] = by_sms.record_ids
    assert (communication(host, sms_record) or {})["payload"][0]["contentString"] == line["text"]
    body = email_body(host)
    assert "Rendez-vous à Clinique de l’Île-Perrot le mercredi 25 août à 10 h 30." in body
    [email_record] = by_email.record_ids
    assert "le mercredi 25 août" in (communication(host, email_record) or {})["payload"][0]["contentString"]


def test_a_clinic_name_in_guillemets_still_names_the_sender_once_spelled_for_sms(
        make_host: Callable[..., Host]) -> None:
    # « » become plain quotes in GSM-7: the sender check must read the name either way.
    host = make_host(config_text=named("Centre «Santé» Nord"))
    outcome = host.send(reminder("r-quotes"))
    assert outcome.status is Status.SENT and outcome.channels == ("sms",), outcome.explanation
    assert not [f for f in outcome.findings if f.code == "SMS_NO_SENDER_ID"]
    [line] = sms_sink(host)
    assert line["text"].startswith('Rendez-vous à Centre "Santé" Nord le ')


def test_check_counts_an_sms_as_it_would_leave(host: Host) -> None:
    # 247 characters with 'Côte' and 'Hôtel-Dieu': four UCS-2 segments as typed (over the limit of 3),
    # two GSM-7 ones as sent.
    text = ("Riverside Family Health : votre rendez-vous est le mardi 24 novembre à 10 h 30 au "
            "pavillon Côte-des-Neiges, Hôtel-Dieu, 2e étage. ").ljust(210, ".")
    text += " Répondez ARRET pour vous désabonner."
    assert count_segments(text) == ("UCS-2", 4)
    assert [f.code for f in host.check(text, channel="sms", language="fr")] == []


def test_an_sms_keeps_a_character_that_has_no_gsm7_form(make_host: Callable[..., Host]) -> None:
    host = make_host()
    text = "Riverside Family Health: see you Tuesday \u2615 at the Côte clinic. Reply STOP to opt out."
    outcome = host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-cup", text=text,
                                appointment=APPOINTMENT))
    assert outcome.status is Status.SENT, outcome.explanation
    [line] = sms_sink(host)
    assert line["text"] == text.replace("Côte", "Cote")
    assert count_segments(line["text"])[0] == "UCS-2"


def test_a_trade_mark_after_a_drug_name_does_not_hide_it_once_spelled_for_sms(host: Host) -> None:
    # NFKD spells ™ and ℠ "TM" and "SM": glued to the brand ("OzempicTM"), the SMS leg's words
    # named no drug the content checks knew, and the refill reminder went by SMS.
    for text in ("Riverside Family Health: refill your Ozempic\u2122 pen at the front desk.",
                 "Riverside Family Health: your Ozempic\u2120pen is ready at the front desk."):
        assert "CLINICAL_CONTENT" in [f.code for f in host.check(text, channel="sms")], text
    assert to_gsm7("Refill your Ozempic\u2122 pen, Care\u2120Line.") == "Refill your Ozempic pen, Care Line."
