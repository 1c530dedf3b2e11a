"""The built-in routing plugin (emrcomm_plan): candidates per category, sensitivity and preference."""

from __future__ import annotations

from pathlib import Path

import pytest

import emrcomm_routing
from emrcomm.model import Category, Channel, Message, Request, Sensitivity
from emrcomm.testing import make_context, make_recipient

CHANNELS = {
    "sms": Channel("sms", secure=False, medium="SMSWRIT", transport=object(), address_system="sms", form="sms"),
    "email": Channel("email", secure=False, medium="EMAILWRIT", transport=object(), address_system="email", form="email"),
    "portal": Channel("portal", secure=True, medium="ONLINEWRIT", transport=object(), holds_content=True),
}


@pytest.fixture
def routing(tmp_path: Path) -> emrcomm_routing.Plugin:
    return emrcomm_routing.Plugin(make_context("routing", {}, tmp_path))


def plan(routing: emrcomm_routing.Plugin, category: str = "appointment-reminder", channels=CHANNELS,  # type: ignore[no-untyped-def]
         sensitivity: Sensitivity = Sensitivity.NORMAL, requested: str | None = None, **recipient):  # type: ignore[no-untyped-def]
    request = Request("Patient/test-1", category, text="x", sensitivity=sensitivity, channel=requested)
    return routing.emrcomm_plan(Message(request, "x"), make_recipient(**recipient), channels, ())


def shapes(p) -> list[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    return [tuple(f"{r.channel}{'~' if r.role == 'notice' else ''}" for r in c.routes) for c in p.candidates]


def test_reminder_tries_sms_then_email_then_the_portal_with_a_notice(routing: emrcomm_routing.Plugin) -> None:
    assert shapes(plan(routing)) == [("sms",), ("email",), ("portal", "sms~"), ("portal", "email~"), ("portal",)]


def test_notice_uses_the_portal_notice_template(routing: emrcomm_routing.Plugin) -> None:
    notice = plan(routing).candidates[2].routes[1]
    assert notice.role == "notice" and notice.template == "portal-notice" and notice.address == "+16135550123"


def test_patient_preference_comes_first(routing: emrcomm_routing.Plugin) -> None:
    assert shapes(plan(routing, preferred_channels=("email",)))[0] == ("email",)


def test_patient_who_prefers_the_portal_gets_it_first(routing: emrcomm_routing.Plugin) -> None:
    assert shapes(plan(routing, preferred_channels=("portal", "sms")))[0] == ("portal", "sms~")


def test_confidential_communication_request_limits_the_channels(routing: emrcomm_routing.Plugin) -> None:
    p = plan(routing, preferred_channels=("portal",), restrict_to_preferred=True)
    assert shapes(p) == [("portal",)]
    assert {name for name, _ in p.rejected} == {"sms", "email"}


def test_restricted_request_never_tries_an_insecure_channel_directly(routing: emrcomm_routing.Plugin) -> None:
    p = plan(routing, category="clinical", sensitivity=Sensitivity.RESTRICTED)
    assert all(c.routes[0].channel == "portal" for c in p.candidates)


def test_invoice_prefers_email(routing: emrcomm_routing.Plugin) -> None:
    assert shapes(plan(routing, category="invoice"))[:2] == [("email",), ("sms",)]


def test_marketing_gets_no_portal_fallback(routing: emrcomm_routing.Plugin) -> None:
    assert all("portal" not in c.channels for c in plan(routing, category=Category.MARKETING).candidates)


def test_requested_channel_is_tried_first(routing: emrcomm_routing.Plugin) -> None:
    assert shapes(plan(routing, requested="email"))[0] == ("email",)


def test_disabled_channel_is_explained(routing: emrcomm_routing.Plugin) -> None:
    p = plan(routing, channels={k: v for k, v in CHANNELS.items() if k != "sms"})
    assert ("sms", "channel not enabled") in p.rejected
    assert all("sms" not in c.channels for c in p.candidates)


def test_missing_address_is_explained(routing: emrcomm_routing.Plugin) -> None:
    p = plan(routing, mobile=None)
    assert ("sms", "no sms address on file") in p.rejected


@pytest.mark.parametrize(("extra", "says"), [
    ('[plugins.routing]\nnotice_channels = ["sms", "emial"]\n', "plugins.routing.notice_channels: no plugin "
     "registers channel 'emial', left out"),
    ('[plugins.routing.categories]\ninvoice = ["email", "SMS"]\n', "plugins.routing.categories.invoice: no plugin "
     "registers channel 'SMS', left out"),
])
def test_a_channel_name_no_plugin_registers_is_left_out_and_said(make_host, caplog, extra: str,  # type: ignore[no-untyped-def]
                                                                 says: str) -> None:
    # A typo, or a channel whose plugin is off for now: routing is only more cautious without it
    # (invoices not by that channel, portal messages not announced there), but the clinic is told.
    with caplog.at_level("WARNING"):
        make_host("\n" + extra)
    assert [r.getMessage() for r in caplog.records if says in r.getMessage()] == [
        f"{says}; the channels are: email, portal, sms"]
