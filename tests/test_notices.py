"""A portal notice by SMS arrives whole: one segment with its magic link and a STOP hint, in
English and in French, for the longest clinic name the config allows and the link as the portal
makes it; a notice that cannot fit is not sent by SMS (NOTICE_TOO_LONG)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from emrcomm.config import load_config
from emrcomm.errors import ConfigError
from emrcomm.host import Host
from emrcomm.model import Request
from emrcomm.segments import count_segments
from portal_kit import NOTE, link_in, notice_for, send_note
from support import BASE_CONFIG, write_config

# 32 characters, the most clinic.name takes: plain letters, and accents GSM-7 lacks (Ô, î: folded).
LONGEST = "Riverside Family Health Team Inc"
LONGEST_ACCENTED = "Hôpital Côte-des-Neiges Montréal"
FOLDED = {LONGEST: LONGEST, LONGEST_ACCENTED: "Hopital Cote-des-Neiges Montréal"}


def with_name(name: str, portal_url: str = "https://portal.riverside.example") -> Callable[[str], str]:
    def config(base: str) -> str:
        return base.replace('name = "Riverside Family Health"', f'name = "{name}"').replace(
            'portal_url = "https://portal.riverside.example"', f'portal_url = "{portal_url}"')
    return config


@pytest.mark.parametrize("name", [LONGEST, LONGEST_ACCENTED])
@pytest.mark.parametrize(("patient", "hint"), [("Patient/qc-fr", "ARRET"), ("Patient/on-en", "Reply STOP")],
                         ids=["fr", "en"])
def test_the_longest_clinic_name_fits_a_notice_and_its_real_link_in_one_sms_segment(
    make_host: Callable[..., Host], name: str, patient: str, hint: str
) -> None:
    assert len(name) == 32
    host = make_host(config_text=with_name(name)(BASE_CONFIG))
    outcome = send_note(host, patient=patient)
    assert outcome.channels == ("portal", "sms"), outcome.explanation
    text = notice_for(host, outcome)["text"]
    link = host.channels["portal"].transport.link_for(outcome.record_ids[0])
    assert len(link) == 88  # https://portal.riverside.example/m/ and the 256-bit token
    assert link_in(text) == link  # whole
    assert count_segments(text) == ("GSM-7", 1), (len(text), text)
    assert FOLDED[name] in text and hint in text


def test_a_clinic_name_longer_than_a_notice_can_carry_is_refused_by_the_config(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(with_name(LONGEST + "s")(BASE_CONFIG), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"clinic\.name: .* is too long"):
        load_config(path)


def test_a_notice_that_cannot_fit_one_segment_is_not_sent_by_sms(make_host: Callable[..., Host]) -> None:
    """A long portal address: the SMS notice would take two segments, so the email notice goes."""
    long_url = "https://patients.portal.riverside-family-health.example"
    host = make_host(config_text=with_name(LONGEST, long_url)(BASE_CONFIG).replace(
        'link_domains = ["portal.riverside.example"]', 'link_domains = ["patients.portal.riverside-family-health.example"]'))
    outcome = send_note(host)
    assert outcome.channels == ("portal", "email"), outcome.explanation
    [too_long] = [f for f in outcome.findings if f.code == "NOTICE_TOO_LONG"]
    assert too_long.channel == "sms" and "2 SMS segments" in too_long.message


def test_a_notice_is_only_the_name_the_link_and_the_hint(make_host: Callable[..., Host]) -> None:
    host = make_host()
    outcome = host.send(Request("Patient/qc-fr", "results-available", id="n-1", text=NOTE))
    text = notice_for(host, outcome)["text"]
    assert text == f"Riverside Family Health : message sécurisé {link_in(text)} ARRET pour annuler"


def test_a_notice_reported_not_delivered_leaves_its_portal_message_not_told(make_host: Callable[..., Host]) -> None:
    """The provider says the SMS notice did not arrive: the portal message is kept, but the chart
    no longer says it is complete, and staff are asked to tell the patient."""
    import datetime as dt
    import json

    from emrcomm.model import DeliveryUpdate
    from support import communication

    host = make_host()
    outcome = host.send(Request("Patient/on-en", "results-available", id="n-failed", text=NOTE))
    message_id, notice_id = outcome.record_ids
    assert (communication(host, message_id) or {})["status"] == "completed"
    at = host.clock() + dt.timedelta(minutes=2)
    report = DeliveryUpdate(kind="failed", at=at, record_id=notice_id, channel="sms", detail="absent subscriber")
    host.delivery_update(report)
    host.delivery_update(report)  # a repeated report changes nothing more
    message = communication(host, message_id)
    assert message is not None and message["status"] == "in-progress"
    assert "PATIENT_NOT_TOLD" in json.dumps(message["statusReason"])
    assert [i["kind"] for i in host.storage.inbox.items()].count("unannounced") == 1
