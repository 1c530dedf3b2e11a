"""A new channel works from its own package plus documented clinic config: it declares its own
kind of address, its FHIR medium, whether it is secure, the categories it may carry and whether
it carries portal notices; the directory reads its addresses and consents; routing and the form
rules follow what it declares; a clinic can lower its trust, never raise it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import fakes
from emrcomm import Category, ConfigError, Request, Status
from emrcomm.config import load_config
from emrcomm.fhir.patients import EXT_ADDRESS_KIND
from emrcomm.host import Host
from emrcomm.plugin.manager import discover
from support import consent, patient, small_clinic, write_config

APP_USER = "u-5512-river"
APPOINTMENT = dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC)
NOTE = "Your biopsy showed no cancer. Dr. Roy will see you on Friday."


def clinic_with_app_users() -> dict[str, Any]:
    """The small clinic, plus a patient reachable by SMS and the app, and one by the app only."""
    bundle = small_clinic()
    both = patient("app-sms", given="Kim", family="Ng", mobile="+16135550188")
    only = patient("app-only", given="Lou", family="Roy")
    for who in (both, only):
        who["telecom"].append({"system": "other", "value": APP_USER if who is both else "u-77-lou",
                               "extension": [{"url": EXT_ADDRESS_KIND, "valueCode": "app"}]})
    resources = [both, consent("k1", "app-sms", "sms", address="+16135550188"),
                 consent("k2", "app-sms", "app", address=APP_USER), consent("k3", "app-sms", "portal"),
                 only, consent("k4", "app-only", "app", address="u-77-lou"), consent("k5", "app-only", "portal")]
    bundle["entry"] += [{"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in resources]
    return bundle


@pytest.fixture
def app_host(tmp_path: Path, clock: Any) -> Iterator[Any]:
    def make(extra: str = "") -> Host:
        fakes.AppChannel.SENT.clear()
        eps = {**discover(), "app": metadata.EntryPoint(name="app", value="fakes:AppChannel", group="emrcomm")}
        config = write_config(tmp_path, "\n[plugins.app]\n" + extra, bundle=clinic_with_app_users())
        host = Host(load_config(config), clock=clock, entry_points=eps)
        hosts.append(host)
        return host

    hosts: list[Host] = []
    yield make
    for host in hosts:
        host.close()


def reminder(patient_ref: str, channel: str | None = None, rid: str = "r-1") -> Request:
    return Request(patient_ref, Category.APPOINTMENT_REMINDER, id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT}, appointment=APPOINTMENT, channel=channel)


def test_the_directory_reads_an_address_of_the_channels_own_kind_and_its_consent(app_host: Any) -> None:
    host = app_host()
    recipient = host.plugins.find_recipient(reminder("Patient/app-sms"))
    assert [(p.system, p.value) for p in recipient.addresses("app")] == [("app", APP_USER)]
    assert any(g.channel == "app" and g.address == APP_USER for g in recipient.consents)


def test_a_declared_category_is_routed_to_the_channel_after_the_built_in_ones(app_host: Any) -> None:
    host = app_host()
    outcome = host.send(reminder("Patient/app-sms"))
    assert outcome.channels == ("sms",)  # the built-in row first
    asked = host.send(reminder("Patient/app-sms", channel="app", rid="r-2"))
    assert asked.status is Status.SENT and asked.channels == ("app",)
    [delivery] = fakes.AppChannel.SENT
    assert delivery.address == APP_USER and "Kim" in delivery.message.text
    only = host.send(reminder("Patient/app-only", rid="r-3"))
    assert only.channels == ("app",)  # the one channel this patient can be reached by


def test_a_category_the_channel_did_not_declare_is_not_routed_to_it(app_host: Any) -> None:
    host = app_host()
    preview = host.preview(Request("Patient/app-only", Category.INVOICE, id="i-1", text="Your invoice is ready."))
    assert "app" not in preview.channels
    assert any("invoice is not sent by app (routing categories)" in line for line in preview.explanation)


def test_the_clinics_routing_row_overrides_what_the_channel_declares(app_host: Any) -> None:
    host = app_host('\n[plugins.routing.categories]\nappointment-reminder = ["sms"]\n')
    outcome = host.send(reminder("Patient/app-only"))
    assert outcome.channels == ("portal", "app")  # the app may now only announce it
    [notice] = fakes.AppChannel.SENT
    assert notice.message.template == "portal-notice"


def test_a_channel_that_carries_notices_announces_a_portal_message(app_host: Any) -> None:
    host = app_host()
    outcome = host.send(Request("Patient/app-only", Category.CLINICAL, id="n-1", text=NOTE))
    assert outcome.channels == ("portal", "app")
    [notice] = fakes.AppChannel.SENT
    assert "biopsy" not in notice.message.text and notice.message.template == "portal-notice"


def test_no_sms_or_email_form_rules_for_a_channel_of_another_form(app_host: Any) -> None:
    host = app_host()
    text = "Riverside: your pickup is ready " + "x" * 400  # far past three SMS segments, no STOP hint
    outcome = host.send(Request("Patient/app-only", Category.PRESCRIPTION_PICKUP, id="p-1", text=text, channel="app"))
    assert outcome.status is Status.SENT and outcome.channels == ("app",)
    codes = {f.code for f in outcome.findings}
    assert not codes & {"SMS_TOO_LONG", "SMS_NO_OPTOUT", "EMAIL_NO_UNSUBSCRIBE"}, codes


def test_a_clinic_can_lower_a_channels_trust(app_host: Any) -> None:
    trusted = app_host("secure = true\n")
    assert trusted.channels["app"].secure
    note = trusted.send(Request("Patient/app-only", Category.CLINICAL, id="n-1", text=NOTE, channel="app"))
    assert note.channels[0] == "app"  # a secure channel may carry the note itself
    trusted.close()
    lowered = app_host("secure = true\n[channels.app]\nsecure = false\n")
    assert not lowered.channels["app"].secure
    note = lowered.send(Request("Patient/app-only", Category.CLINICAL, id="n-2", text=NOTE, channel="app"))
    assert note.channels == ("portal", "app")  # the clinic's word: only a notice by the app
    assert "biopsy" not in json.dumps([d.message.text for d in fakes.AppChannel.SENT])


def test_a_clinic_cannot_raise_a_channels_trust(app_host: Any) -> None:
    with pytest.raises(ConfigError, match=r"channels\.app\.secure: .*may only lower trust"):
        app_host("[channels.app]\nsecure = true\n")
    with pytest.raises(ConfigError, match=r"channels\.fax: no plugin registers channel 'fax'"):
        app_host("[channels.fax]\nsecure = false\n")
