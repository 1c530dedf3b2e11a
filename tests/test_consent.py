"""The essential consent and opt-out plugins (docs/rule-catalogue.md A and the suppression side of B)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import emrcomm_consent
import emrcomm_optout
from emrcomm.lifecycle.events import Event, Source
from emrcomm.lifecycle.projection import RecordFacts
from emrcomm.lifecycle.states import LegState
from emrcomm.model import Channel, ConsentGrant, DeliveryUpdate, Message, Purpose, Request, Route
from emrcomm.storage import open_sqlite
from emrcomm.testing import TEST_NOW, make_context, make_recipient
from emrcomm_optout import handled

SMS = Channel("sms", secure=False, medium="SMSWRIT", transport=object(), address_system="sms", form="sms")
MOBILE = "+16135550123"
DAY = dt.timedelta(days=1)


def message(category: str = "appointment-reminder", template: str | None = None,
            in_response_to: str | None = None) -> Message:
    return Message(Request("Patient/test-1", category, text="x", in_response_to=in_response_to), "x", template=template)


def confirmation() -> Message:
    """The STOP confirmation as the optout plugin asks for it: in response to the patient's STOP."""
    return message("optout-confirmation", template="optout-confirmation", in_response_to="stop-reply")


@pytest.fixture
def consent(tmp_path: Path) -> emrcomm_consent.Plugin:
    return emrcomm_consent.Plugin(make_context("consent", {}, tmp_path))


def codes(plugin: emrcomm_consent.Plugin, recipient, category: str = "appointment-reminder",  # type: ignore[no-untyped-def]
          address: str = MOBILE) -> list[str]:
    found = plugin.emrcomm_validate(message(category), recipient, SMS, Route("sms", address), TEST_NOW)
    return [f.code for f in found]


def test_consented_address_passes(consent: emrcomm_consent.Plugin) -> None:
    assert codes(consent, make_recipient()) == []


def test_no_consent_is_consent_missing(consent: emrcomm_consent.Plugin) -> None:
    assert codes(consent, make_recipient(consents=())) == ["CONSENT_MISSING"]


def test_consent_for_another_address_does_not_count(consent: emrcomm_consent.Plugin) -> None:
    assert codes(consent, make_recipient(), address="+16135550199") == ["CONSENT_MISSING"]


def test_clinical_consent_does_not_cover_billing(consent: emrcomm_consent.Plugin) -> None:
    assert codes(consent, make_recipient(), category="invoice") == ["CONSENT_MISSING"]
    assert codes(consent, make_recipient(purposes=(Purpose.BILLING,)), category="invoice") == []


def test_consent_granted_in_the_future_does_not_count_yet(consent: emrcomm_consent.Plugin) -> None:
    grant = ConsentGrant("sms", Purpose.CLINICAL, address=MOBILE, granted=TEST_NOW + DAY)
    assert codes(consent, make_recipient(consents=(grant,))) == ["CONSENT_MISSING"]


def test_revoked_consent_names_its_source(consent: emrcomm_consent.Plugin) -> None:
    grant = ConsentGrant("sms", Purpose.CLINICAL, address=MOBILE, granted=TEST_NOW - 30 * DAY,
                         revoked=TEST_NOW - DAY, source="STOP reply")
    [f] = consent.emrcomm_validate(message(), make_recipient(consents=(grant,)), SMS, Route("sms", MOBILE), TEST_NOW)
    assert f.code == "CONSENT_REVOKED" and "STOP reply" in f.message and f.blocks


def test_a_later_revocation_wins_over_an_earlier_grant(consent: emrcomm_consent.Plugin) -> None:
    permit = ConsentGrant("sms", Purpose.CLINICAL, address=MOBILE, granted=TEST_NOW - 30 * DAY)
    deny = ConsentGrant("sms", Purpose.CLINICAL, address=MOBILE, granted=TEST_NOW - 30 * DAY,
                        revoked=TEST_NOW - DAY, source="front desk")
    assert codes(consent, make_recipient(consents=(permit, deny))) == ["CONSENT_REVOKED"]


def test_a_grant_after_a_revocation_restores_consent(consent: emrcomm_consent.Plugin) -> None:
    old = ConsentGrant("sms", Purpose.CLINICAL, address=MOBILE, granted=TEST_NOW - 30 * DAY,
                       revoked=TEST_NOW - 10 * DAY)
    new = ConsentGrant("sms", Purpose.CLINICAL, address=MOBILE, granted=TEST_NOW - DAY)
    assert codes(consent, make_recipient(consents=(old, new))) == []


def test_restricted_patient_refuses_other_channels(consent: emrcomm_consent.Plugin) -> None:
    recipient = make_recipient(preferred_channels=("portal",), restrict_to_preferred=True)
    assert "PREFERENCE_IGNORED" in codes(consent, recipient)


def test_opt_out_blocks_at_once_and_lets_one_confirmation_through(tmp_path: Path) -> None:
    ctx = make_context("optout", {}, tmp_path)
    optout = emrcomm_optout.Plugin(ctx)
    route = Route("sms", MOBILE)
    assert optout.emrcomm_validate(message(), SMS, route) == []
    optout.emrcomm_delivery_update(DeliveryUpdate(kind="optout", at=TEST_NOW, channel="sms", address=MOBILE,
                                                  text="STOP reply", detail="Patient/test-1"))
    [f] = optout.emrcomm_validate(message(), SMS, route)
    assert f.code == "CONSENT_REVOKED" and "STOP reply" in f.message
    assert optout.emrcomm_validate(confirmation(), SMS, route) == []
    assert optout.emrcomm_validate(message(), SMS, Route("sms", "+16135550199")) == []


def test_help_is_answered_after_an_opt_out_and_nothing_else_is(tmp_path: Path) -> None:
    optout = emrcomm_optout.Plugin(make_context("optout", {}, tmp_path))
    route = Route("sms", MOBILE)
    optout.emrcomm_delivery_update(DeliveryUpdate(kind="optout", at=TEST_NOW, channel="sms", address=MOBILE,
                                                  text="STOP reply", detail="Patient/test-1"))
    assert optout.emrcomm_validate(message("help-reply", in_response_to="help-reply-record"), SMS, route) == []
    for refused in (message("auto-answer", in_response_to="a-reply"), message("help-reply"),
                    message(template="optout-confirmation"), message("optout-confirmation")):
        assert [f.code for f in optout.emrcomm_validate(refused, SMS, route)] == ["CONSENT_REVOKED"]


def queue_confirmation(ctx, key: str, at: dt.datetime, state: str = "queued") -> None:  # type: ignore[no-untyped-def]
    """File a confirmation to MOBILE, as the host does, in lifecycle state ``state``."""
    request = Request("Patient/test-1", "optout-confirmation", id=key, template="optout-confirmation")
    facts = RecordFacts(id=key, request=request, role="primary", recorded=at, channel="sms", address=MOBILE, text="x")
    ctx.storage.records.add(facts, "optout-confirmation",
                            [Event(record_id=key, kind=LegState(state), source=Source.HOST, at=at, dedup=f"{key}:first")])


def mark_sent(ctx, key: str, at: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    ctx.storage.records.append(Event(record_id=key, kind=LegState.ACCEPTED, source=Source.WORKER, at=at,
                                     dedup=f"{key}:accepted"))


def test_only_one_confirmation_passes_after_an_opt_out(tmp_path: Path) -> None:
    ctx = make_context("optout", {}, tmp_path)
    optout = emrcomm_optout.Plugin(ctx)
    route = Route("sms", MOBILE)
    answer = confirmation()

    def stop(at: dt.datetime) -> None:
        optout.emrcomm_delivery_update(DeliveryUpdate(kind="optout", at=at, channel="sms", address=MOBILE,
                                                      text="STOP reply", detail="Patient/test-1"))

    queue_confirmation(ctx, "before-stop", TEST_NOW - DAY, state="accepted")  # from an earlier opt-out
    stop(TEST_NOW)
    assert optout.emrcomm_validate(answer, SMS, route) == []
    queue_confirmation(ctx, "first", TEST_NOW)  # the first confirmation is queued (same instant as the STOP)
    [f] = optout.emrcomm_validate(answer, SMS, route)
    assert f.code == "CONSENT_REVOKED" and f.blocks
    mark_sent(ctx, "first", TEST_NOW)  # ... and sent: still only one
    [f] = optout.emrcomm_validate(answer, SMS, route)
    assert f.code == "CONSENT_REVOKED"
    assert optout.emrcomm_validate(answer, SMS, Route("sms", "+16135550199")) == []  # another address
    stop(TEST_NOW + DAY)  # a later opt-out (after a START) earns its own confirmation
    assert optout.emrcomm_validate(answer, SMS, route) == []


def test_a_confirmation_that_never_went_does_not_use_up_the_one(tmp_path: Path) -> None:
    ctx = make_context("optout", {}, tmp_path)
    optout = emrcomm_optout.Plugin(ctx)
    optout.emrcomm_delivery_update(DeliveryUpdate(kind="optout", at=TEST_NOW, channel="sms", address=MOBILE,
                                                  text="STOP reply", detail="Patient/test-1"))
    queue_confirmation(ctx, "first", TEST_NOW, state="undeliverable")
    assert optout.emrcomm_validate(confirmation(), SMS, Route("sms", MOBILE)) == []


def test_start_in_the_ledger_restores_a_revoked_directory_consent(tmp_path: Path) -> None:
    ctx = make_context("consent", {}, tmp_path)
    plugin = emrcomm_consent.Plugin(ctx)
    revoked = ConsentGrant("sms", Purpose.CLINICAL, address=MOBILE, granted=TEST_NOW - 30 * DAY,
                           revoked=TEST_NOW - 10 * DAY, source="STOP reply")
    recipient = make_recipient(consents=(revoked,))
    assert codes(plugin, recipient) == ["CONSENT_REVOKED"]
    ctx.storage.consent.add(patient="Patient/test-1", channel="sms", address=MOBILE, purpose=None,
                                action="grant", at=TEST_NOW - DAY, source="START reply")
    assert codes(plugin, recipient) == []


@pytest.mark.parametrize(("reply", "blocked"), [("Arrêt", True), ("stop", True), ("stop by at 3?", False)])
def test_a_keyword_reply_updates_the_ledger_at_once(tmp_path: Path, reply: str, blocked: bool) -> None:
    store = open_sqlite(tmp_path / "emrcomm.sqlite", migrations=handled.MIGRATIONS)  # the plugin's own table
    optout = emrcomm_optout.Plugin(make_context("optout", {}, tmp_path, storage=store))
    optout.emrcomm_delivery_update(DeliveryUpdate(kind="reply", at=TEST_NOW, channel="sms", address=MOBILE,
                                                  text=reply, detail="Patient/test-1"))
    found = optout.emrcomm_validate(message(), SMS, Route("sms", MOBILE))
    assert bool(found) is blocked
    if blocked:
        assert f"{reply.upper()} reply" in found[0].message  # her word, accent and all


def test_a_second_confirmation_request_after_a_stop_is_refused(make_host) -> None:  # type: ignore[no-untyped-def]
    from emrcomm.model import Category

    host = make_host()
    appointment = dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC)
    first = host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", template="appointment-reminder",
                              variables={"appointment": appointment}, appointment=appointment, channel="sms"))
    assert first.channels == ("sms",)
    host.delivery_update(DeliveryUpdate(kind="reply", at=host.clock(), channel="sms", address=MOBILE, text="STOP",
                                        provider_id="mo-1"))
    assert host.storage.consent.last(channel="sms", address=MOBILE).revokes  # type: ignore[union-attr]
    sent = [e["resource"] for e in host.records(channel="sms", status="completed")["entry"]]
    assert sum(r["basedOn"][0]["identifier"]["value"].startswith("optout-confirmation") for r in sent
               if "identifier" in r["basedOn"][0]) == 1
    again = host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="confirm-again",
                              template="optout-confirmation", channel="sms"))
    assert "sms" not in again.channels
    assert any(f.code == "CONSENT_REVOKED" and f.channel == "sms" for f in again.findings)
