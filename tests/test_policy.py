"""The policy validators: verdicts per channel from the inspector's facts, SMS form, timing,
language and address checks. Facts come from the real content inspector unless a test needs
one on its own."""

from __future__ import annotations

import datetime as dt
import re

import attrs
import pytest

from emrcomm import ConfigError
from emrcomm.model import Channel, ConsentGrant, ContactPoint, Message, Purpose, Request, Route, Severity
from emrcomm.rules import finding
from emrcomm.testing import TEST_CLINIC, TEST_NOW, make_context, make_recipient
from emrcomm_content import Plugin as Content
from emrcomm_directory import recipient_from_fhir
from emrcomm_policy import Plugin as Policy

SMS = Channel("sms", secure=False, medium="SMSWRIT", transport=object(), address_system="sms", form="sms")
EMAIL = Channel("email", secure=False, medium="EMAILWRIT", transport=object(), address_system="email", form="email")
PORTAL = Channel("portal", secure=True, medium="WRITTEN", transport=object(), address_system=None)
MOBILE = "+16135550123"
EMAIL_ADDRESS = "pat@example.org"
ROUTES = {"sms": Route("sms", MOBILE), "email": Route("email", EMAIL_ADDRESS), "portal": Route("portal", "")}

SIGNED = "Riverside Family Health: {} Reply STOP to opt out."
GOOD_SMS = SIGNED.format("see you tomorrow at 10:30.")
TORONTO = dt.timezone(dt.timedelta(hours=-5))  # EST: November 2026 is standard time


@pytest.fixture
def policy(tmp_path):
    return Policy(make_context("policy", {}, tmp_path))


@pytest.fixture
def content(tmp_path):
    return Content(make_context("content", {}, tmp_path))


def make_message(text, category="appointment-reminder", subject=None, language="en", template=None, **request):
    return Message(Request("Patient/test-1", category, **request), text, language=language, subject=subject,
                   template=template)


def judge(policy, content, message, channel=SMS, recipient=None, now=TEST_NOW, route=None):
    facts = tuple(content.emrcomm_inspect(message))
    return policy.emrcomm_validate(
        message=message,
        recipient=recipient or make_recipient(),
        channel=channel,
        route=route or ROUTES[channel.name],
        findings=facts,
        now=now,
    )


def verdicts(*args, **kw):
    """{code: severity} of the findings."""
    return {f.code: f.severity for f in judge(*args, **kw)}


def blocks(*args, **kw):
    return sorted({f.code for f in judge(*args, **kw) if f.severity is Severity.BLOCK})


# --- a clean message ------------------------------------------------------------------------


def test_well_formed_reminder_passes_on_sms(policy, content):
    assert judge(policy, content, make_message(GOOD_SMS)) == []


def test_well_formed_reminder_passes_on_email(policy, content):
    assert judge(policy, content, make_message("See you tomorrow at 10:30."), channel=EMAIL) == []


def test_well_formed_reminder_passes_on_portal(policy, content):
    assert judge(policy, content, make_message("See you tomorrow at 10:30."), channel=PORTAL) == []


# --- content on insecure channels -------------------------------------------------------------

ENGLISH_CLINICAL = SIGNED.format("your A1C was 8.1, we will adjust your metformin.")
FRENCH_CLINICAL = "Riverside Family Health : résultat anormal de votre prise de sang. Répondez ARRET pour arrêter."


def test_english_clinical_text_is_blocked_on_sms(policy, content):
    assert blocks(policy, content, make_message(ENGLISH_CLINICAL, "clinical")) == ["CLINICAL_CONTENT"]


def test_french_clinical_text_is_blocked_on_sms(policy, content):
    message = make_message(FRENCH_CLINICAL, "clinical", language="fr")
    assert blocks(policy, content, message) == ["CLINICAL_CONTENT"]


def test_english_clinical_text_is_allowed_on_the_portal(policy, content):
    assert blocks(policy, content, make_message(ENGLISH_CLINICAL, "clinical"), channel=PORTAL) == []


def test_french_clinical_text_is_allowed_on_the_portal(policy, content):
    message = make_message(FRENCH_CLINICAL, "clinical", language="fr")
    assert blocks(policy, content, message, channel=PORTAL) == []


def test_clinical_verdict_carries_span_term_channel_and_plugin(policy, content):
    message = make_message(ENGLISH_CLINICAL, "clinical")
    found = [f for f in judge(policy, content, message) if f.code == "CLINICAL_CONTENT"]
    assert [message.text[f.span[0] : f.span[1]] for f in found] == ["A1C was 8.1", "metformin"]
    assert all(f.channel == "sms" and f.plugin == "policy" for f in found)
    assert '"m********"' in found[1].message and "sms" in found[1].message
    assert "metformin" not in found[1].message + found[1].message_fr


def test_health_identifier_is_blocked_on_sms_with_its_kind(policy, content):
    message = make_message(SIGNED.format("bring card TREM 8503 1512."))
    (verdict,) = [f for f in judge(policy, content, message) if f.code == "HEALTH_IDENTIFIER"]
    assert verdict.severity is Severity.BLOCK
    assert "Quebec health insurance number" in verdict.message


def test_health_identifier_is_allowed_on_the_portal(policy, content):
    message = make_message("Card TREM 8503 1512 on file.")
    assert blocks(policy, content, message, channel=PORTAL) == []


def test_clinical_term_in_email_subject_is_phi_in_subject(policy, content):
    grant = ConsentGrant("email", Purpose.CLINICAL, accepts_unencrypted_email=True)
    recipient = make_recipient(consents=(grant,))
    message = make_message("Please log in to read your message.", "clinical", subject="Your HIV test")
    assert blocks(policy, content, message, channel=EMAIL, recipient=recipient) == ["PHI_IN_SUBJECT"]


def test_clinical_email_body_without_acceptance_is_blocked(policy, content):
    message = make_message("Your biopsy is booked for Monday.", "clinical")
    assert blocks(policy, content, message, channel=EMAIL) == ["CLINICAL_CONTENT", "UNENCRYPTED_EMAIL_NOT_ACCEPTED"]


def test_clinical_email_body_passes_when_the_patient_accepts_plain_email(policy, content):
    grant = ConsentGrant("email", Purpose.CLINICAL, address=EMAIL_ADDRESS, accepts_unencrypted_email=True)
    message = make_message("Your biopsy is booked for Monday.", "clinical")
    assert blocks(policy, content, message, channel=EMAIL, recipient=make_recipient(consents=(grant,))) == []


def test_acceptance_for_another_address_does_not_count(policy, content):
    grant = ConsentGrant("email", Purpose.CLINICAL, address="other@example.org", accepts_unencrypted_email=True)
    message = make_message("Your biopsy is booked for Monday.", "clinical")
    found = blocks(policy, content, message, channel=EMAIL, recipient=make_recipient(consents=(grant,)))
    assert "UNENCRYPTED_EMAIL_NOT_ACCEPTED" in found


def test_revoked_acceptance_does_not_count(policy, content):
    grant = ConsentGrant("email", Purpose.CLINICAL, accepts_unencrypted_email=True, revoked=TEST_NOW - dt.timedelta(days=1))
    message = make_message("Your biopsy is booked for Monday.", "clinical")
    found = blocks(policy, content, message, channel=EMAIL, recipient=make_recipient(consents=(grant,)))
    assert "UNENCRYPTED_EMAIL_NOT_ACCEPTED" in found


def test_result_in_a_results_email_is_results_in_body(policy, content):
    grant = ConsentGrant("email", Purpose.CLINICAL, accepts_unencrypted_email=True)
    message = make_message("Your mammogram came back normal.", "results-available")
    assert blocks(policy, content, message, channel=EMAIL, recipient=make_recipient(consents=(grant,))) == [
        "RESULTS_IN_BODY"
    ]


def test_named_test_said_to_be_low_is_results_in_body(policy, content):
    grant = ConsentGrant("email", Purpose.CLINICAL, accepts_unencrypted_email=True)
    message = make_message("Your TSH is low.", "results-available")
    assert blocks(policy, content, message, channel=EMAIL, recipient=make_recipient(consents=(grant,))) == [
        "RESULTS_IN_BODY"
    ]


def test_test_name_without_a_result_is_not_results_in_body(policy, content):
    grant = ConsentGrant("email", Purpose.CLINICAL, accepts_unencrypted_email=True)
    message = make_message("Your mammogram report is ready in the portal.", "results-available")
    found = verdicts(policy, content, message, channel=EMAIL, recipient=make_recipient(consents=(grant,)))
    assert "RESULTS_IN_BODY" not in found


# --- marketing, promotion, prohibited, billing ----------------------------------------------


def test_marketing_is_blocked_even_on_the_portal(policy, content):
    assert blocks(policy, content, make_message("New hours!", "marketing"), channel=PORTAL) == ["MARKETING_BLOCKED"]


def test_promotional_language_is_a_warning(policy, content):
    found = verdicts(policy, content, make_message(SIGNED.format("book now and save 20% off!")))
    assert found == {"PROMOTIONAL_LANGUAGE": Severity.WARN}


def test_prohibited_content_is_blocked_on_sms(policy, content):
    message = make_message(SIGNED.format("no beer before your visit."))
    assert blocks(policy, content, message) == ["PROHIBITED_SMS_CONTENT"]


def test_prohibited_content_is_not_judged_on_email(policy, content):
    assert blocks(policy, content, make_message("No beer before your visit."), channel=EMAIL) == []


def test_invoice_by_sms_without_billing_consent_is_blocked(policy, content):
    message = make_message(SIGNED.format("your invoice is ready."), "invoice")
    assert blocks(policy, content, message) == ["BILLING_BY_SMS"]


def test_invoice_by_sms_with_billing_consent_passes(policy, content):
    message = make_message(SIGNED.format("your invoice is ready."), "invoice")
    recipient = make_recipient(purposes=(Purpose.CLINICAL, Purpose.BILLING))
    assert blocks(policy, content, message, recipient=recipient) == []


# --- links ----------------------------------------------------------------------------------


def test_http_link_is_blocked_even_on_the_portal(policy, content):
    message = make_message("Read it at http://portal.riverside.example/m/1")
    assert blocks(policy, content, message, channel=PORTAL) == ["LINK_NOT_HTTPS"]


def test_shortener_and_foreign_domain_are_blocked_on_email(policy, content):
    message = make_message("Book at https://bit.ly/3abc")
    assert blocks(policy, content, message, channel=EMAIL) == ["LINK_DOMAIN_NOT_ALLOWED", "LINK_SHORTENER"]


def test_survey_link_warns_on_sms(policy, content):
    message = make_message(SIGNED.format("please fill our survey https://portal.riverside.example/s/1"), "questionnaire")
    assert verdicts(policy, content, message) == {"SURVEY_LINK_SMS": Severity.WARN}


def test_survey_link_is_fine_on_email(policy, content):
    message = make_message("Please fill our survey https://portal.riverside.example/s/1", "questionnaire")
    assert verdicts(policy, content, message, channel=EMAIL) == {}


# --- SMS form ---------------------------------------------------------------------------------


def long_sms(segments):
    """A signed GSM-7 text of exactly ``segments`` concatenated segments (153 septets each)."""
    head = GOOD_SMS + " "
    return head + "x" * (153 * segments - len(head))


def test_sms_over_three_segments_is_too_long(policy, content):
    (verdict,) = judge(policy, content, make_message(long_sms(4)))
    assert (verdict.code, verdict.severity) == ("SMS_TOO_LONG", Severity.BLOCK)
    assert "4 segments" in verdict.message and "limit is 3" in verdict.message


def test_sms_of_three_segments_is_not_too_long(policy, content):
    assert judge(policy, content, make_message(long_sms(3))) == []


def test_max_segments_setting_raises_the_limit(tmp_path, content):
    policy = Policy(make_context("policy", {"max_segments": 4}, tmp_path))
    assert judge(policy, content, make_message(long_sms(4))) == []


@pytest.mark.parametrize("value", [11, 255, 500])
def test_max_segments_above_what_the_sms_channel_allows_is_refused_naming_the_ceiling(tmp_path, value):
    """A concatenated SMS past what carriers and gateways pass arrives in pieces or not at all:
    the setting stops at 10, as ``plugins.sms.max_segments`` does."""
    with pytest.raises(ConfigError, match=rf"plugins\.policy\.max_segments: {value} is not a whole number from 1 to 10"):
        Policy(make_context("policy", {"max_segments": value}, tmp_path))


def test_max_segments_above_the_ceiling_stops_check_config_naming_the_setting(tmp_path, capsys):
    from emrcomm.cli import main
    from support import write_config

    config = write_config(tmp_path, "\n[plugins.policy]\nmax_segments = 500\n")
    assert main(["check-config", "--config", str(config)]) == 2
    said = capsys.readouterr().err
    assert "plugins.policy.max_segments: 500" in said and "maximum of 10" in said
    assert "Traceback" not in said


def test_channel_limit_replaces_the_default(policy, content):
    channel = attrs.evolve(SMS, max_segments=2)
    assert blocks(policy, content, make_message(long_sms(3)), channel=channel) == ["SMS_TOO_LONG"]


def test_setting_wins_over_the_channel_limit(tmp_path, content):
    policy = Policy(make_context("policy", {"max_segments": 3}, tmp_path))
    channel = attrs.evolve(SMS, max_segments=2)
    assert blocks(policy, content, make_message(long_sms(3)), channel=channel) == []


def test_sms_without_the_clinic_name_is_blocked(policy, content):
    assert blocks(policy, content, make_message("See you tomorrow at 10:30. Reply STOP to opt out.")) == [
        "SMS_NO_SENDER_ID"
    ]


def test_clinic_name_matches_whatever_the_case_and_spacing(policy, content):
    message = make_message("RIVERSIDE  family   HEALTH: see you tomorrow. Reply STOP to opt out.")
    assert judge(policy, content, message) == []


def test_clinic_name_matches_without_its_accents(tmp_path, content):
    clinic = attrs.evolve(TEST_CLINIC, name="Clinique Médicale Rivière")
    policy = Policy(make_context("policy", {}, tmp_path, clinic=clinic))
    message = make_message("Clinique medicale riviere : a demain. Repondez ARRET pour arreter.", language="fr")
    assert "SMS_NO_SENDER_ID" not in verdicts(policy, content, message)


def test_sms_without_a_stop_hint_warns(policy, content):
    found = verdicts(policy, content, make_message("Riverside Family Health: see you tomorrow."))
    assert found == {"SMS_NO_OPTOUT_HINT": Severity.WARN}


def test_french_stop_hint_with_accent_counts(policy, content):
    message = make_message("Riverside Family Health : à demain. Répondez ARRÊT pour arrêter.", language="fr")
    assert "SMS_NO_OPTOUT_HINT" not in verdicts(policy, content, message)


def test_stop_in_an_ordinary_sentence_is_not_a_hint(policy, content):
    message = make_message("Riverside Family Health: please stop by the front desk.")
    assert "SMS_NO_OPTOUT_HINT" in verdicts(policy, content, message)


@pytest.mark.parametrize("template", ["optout-confirmation", "help-reply"])
def test_replies_to_keywords_need_no_stop_hint(policy, content, template):
    message = make_message("Riverside Family Health: you will get no more messages.", template=template)
    assert judge(policy, content, message) == []


def test_sms_form_is_not_checked_on_email(policy, content):
    assert judge(policy, content, make_message("x" * 2000), channel=EMAIL) == []


# --- quiet hours ----------------------------------------------------------------------------

LATE_EVENING = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)  # 22:00 on the 23rd in Toronto


def test_sms_in_the_late_evening_is_held_until_eight(policy, content):
    (verdict,) = judge(policy, content, make_message(GOOD_SMS), now=LATE_EVENING)
    assert (verdict.code, verdict.severity) == ("QUIET_HOURS", Severity.BLOCK)
    assert verdict.hold_until == dt.datetime(2026, 11, 24, 8, 0, tzinfo=TORONTO)
    assert verdict.hold_until.tzinfo is not None


def test_sms_at_the_window_start_is_not_held(policy, content):
    eight = dt.datetime(2026, 11, 24, 8, 0, tzinfo=TORONTO)
    assert judge(policy, content, make_message(GOOD_SMS), now=eight) == []


def test_sms_at_the_window_end_is_held(policy, content):
    nine_pm = dt.datetime(2026, 11, 23, 21, 0, tzinfo=TORONTO)
    assert blocks(policy, content, make_message(GOOD_SMS), now=nine_pm) == ["QUIET_HOURS"]


def test_window_is_the_patients_own_time_zone(policy, content):
    # 22:00 in Toronto is 19:00 in Vancouver: inside the window there.
    recipient = make_recipient(time_zone="America/Vancouver", jurisdiction="CA-BC")
    assert judge(policy, content, make_message(GOOD_SMS), recipient=recipient, now=LATE_EVENING) == []


def test_florida_window_closes_at_eight_pm(policy, content):
    half_past_eight = dt.datetime(2026, 11, 23, 20, 30, tzinfo=TORONTO)  # New York = Toronto here
    florida = make_recipient(time_zone="America/New_York", jurisdiction="US-FL")
    ontario = make_recipient(time_zone="America/New_York", jurisdiction="CA-ON")
    assert blocks(policy, content, make_message(GOOD_SMS), recipient=florida, now=half_past_eight) == ["QUIET_HOURS"]
    assert blocks(policy, content, make_message(GOOD_SMS), recipient=ontario, now=half_past_eight) == []


def test_jurisdiction_window_setting_narrows_the_window(tmp_path, content):
    policy = Policy(make_context("policy", {"quiet_hours_by_jurisdiction": {"CA-ON": ["09:00", "21:00"]}}, tmp_path))
    half_past_eight = dt.datetime(2026, 11, 24, 8, 30, tzinfo=TORONTO)
    (verdict,) = judge(policy, content, make_message(GOOD_SMS), now=half_past_eight)
    assert verdict.hold_until == dt.datetime(2026, 11, 24, 9, 0, tzinfo=TORONTO)


def test_unknown_zone_uses_the_most_restrictive_clinic_zone(tmp_path, content):
    clinic = attrs.evolve(TEST_CLINIC, time_zones=("America/Toronto", "America/Vancouver"))
    policy = Policy(make_context("policy", {}, tmp_path, clinic=clinic))
    recipient = make_recipient(time_zone=None)
    # 08:30 in Toronto is 05:30 in Vancouver: held until 08:00 in Vancouver (16:00 UTC, PST).
    half_past_eight = dt.datetime(2026, 11, 24, 8, 30, tzinfo=TORONTO)
    (verdict,) = judge(policy, content, make_message(GOOD_SMS), recipient=recipient, now=half_past_eight)
    assert verdict.hold_until == dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)


def test_unknown_zone_holds_until_every_clinic_zone_is_open(tmp_path, content):
    clinic = attrs.evolve(TEST_CLINIC, time_zones=("America/Toronto", "America/Vancouver"))
    policy = Policy(make_context("policy", {}, tmp_path, clinic=clinic))
    # 20:30 in Vancouver is 23:30 in Toronto. Toronto opens at 08:00 (05:00 in Vancouver);
    # both are open first at 08:00 in Vancouver, 16:00 UTC the next day.
    late = dt.datetime(2026, 11, 24, 4, 30, tzinfo=dt.UTC)
    (verdict,) = judge(policy, content, make_message(GOOD_SMS), recipient=make_recipient(time_zone="Mars/Olympus"),
                       now=late)
    assert verdict.hold_until == dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)


def test_a_patient_in_france_is_held_until_eight_in_paris_not_in_the_clinics_zone(policy, content):
    # 20:45 in Montréal is 02:45 in Paris: the clinic's window was open, the patient's was not.
    paris = {"resourceType": "Patient", "id": "p-paris",
             "address": [{"use": "home", "city": "Paris", "postalCode": "75011", "country": "FR"}]}
    recipient = recipient_from_fhir(paris, now=TEST_NOW)
    quarter_to_nine = dt.datetime(2026, 11, 23, 20, 45, tzinfo=TORONTO)
    (verdict,) = judge(policy, content, make_message(GOOD_SMS), recipient=recipient, now=quarter_to_nine)
    assert (verdict.code, verdict.severity) == ("QUIET_HOURS", Severity.BLOCK)
    assert verdict.hold_until == dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)  # 08:00 CET


def test_a_not_before_in_quiet_hours_holds_until_the_window_opens_after_it(policy, content):
    # Decided at 14:00, to go not before 23:00: at 23:00 the window is shut; it opens at 08:00.
    message = make_message(GOOD_SMS, not_before=dt.datetime(2026, 11, 23, 23, 0, tzinfo=TORONTO))
    two_pm = dt.datetime(2026, 11, 23, 14, 0, tzinfo=TORONTO)
    (verdict,) = judge(policy, content, message, now=two_pm)
    assert (verdict.code, verdict.severity) == ("QUIET_HOURS", Severity.BLOCK)
    assert verdict.hold_until == dt.datetime(2026, 11, 24, 8, 0, tzinfo=TORONTO)


def test_a_not_before_inside_the_window_needs_no_hold_of_the_policys(policy, content):
    message = make_message(GOOD_SMS, not_before=dt.datetime(2026, 11, 23, 18, 0, tzinfo=TORONTO))
    assert judge(policy, content, message, now=dt.datetime(2026, 11, 23, 14, 0, tzinfo=TORONTO)) == []


def test_urgent_priority_overrides_quiet_hours_with_a_warning(policy, content):
    message = make_message(GOOD_SMS, "clinical", priority="urgent")
    (verdict,) = judge(policy, content, message, now=LATE_EVENING)
    assert (verdict.code, verdict.severity, verdict.hold_until) == ("QUIET_HOURS", Severity.WARN, None)
    assert "urgent" in verdict.override


@pytest.mark.parametrize("category", ["optout-confirmation", "optin-confirmation", "help-reply", "auto-answer"])
def test_the_answer_to_a_patients_message_goes_at_once_whatever_the_hour(policy, content, category):
    message = make_message(GOOD_SMS, category, in_response_to="their-reply")
    assert "QUIET_HOURS" not in blocks(policy, content, message, now=LATE_EVENING)
    assert blocks(policy, content, make_message(GOOD_SMS), now=LATE_EVENING) == ["QUIET_HOURS"]


def test_quiet_hours_do_not_apply_to_email_by_default(policy, content):
    assert judge(policy, content, make_message("See you tomorrow."), channel=EMAIL, now=LATE_EVENING) == []


def test_quiet_hours_channels_setting_adds_email(tmp_path, content):
    policy = Policy(make_context("policy", {"quiet_hours_channels": ["sms", "email"]}, tmp_path))
    message = make_message("See you tomorrow.")
    assert blocks(policy, content, message, channel=EMAIL, now=LATE_EVENING) == ["QUIET_HOURS"]


# --- expiry ---------------------------------------------------------------------------------


def test_message_past_its_expiry_is_expired(policy, content):
    message = make_message(GOOD_SMS, expires=TEST_NOW - dt.timedelta(minutes=1))
    assert blocks(policy, content, message) == ["MESSAGE_EXPIRED"]


def test_reminder_for_a_past_appointment_is_expired(policy, content):
    message = make_message(GOOD_SMS, appointment=TEST_NOW - dt.timedelta(hours=1))
    assert blocks(policy, content, message) == ["MESSAGE_EXPIRED"]


def test_reminder_for_a_future_appointment_is_not_expired(policy, content):
    message = make_message(GOOD_SMS, appointment=TEST_NOW + dt.timedelta(days=1), expires=TEST_NOW + dt.timedelta(hours=1))
    assert judge(policy, content, message) == []


def test_past_appointment_does_not_expire_other_categories(policy, content):
    message = make_message(GOOD_SMS, "results-available", appointment=TEST_NOW - dt.timedelta(days=3))
    assert "MESSAGE_EXPIRED" not in verdicts(policy, content, message)


# --- language -------------------------------------------------------------------------------


def test_english_invoice_to_a_quebec_patient_is_blocked(policy, content):
    recipient = make_recipient(jurisdiction="CA-QC", time_zone="America/Montreal", purposes=(Purpose.BILLING,))
    message = make_message("Your invoice is ready.", "invoice")
    found = verdicts(policy, content, message, channel=EMAIL, recipient=recipient)
    assert found == {"FRENCH_REQUIRED": Severity.BLOCK}


def test_french_invoice_to_a_quebec_patient_passes(policy, content):
    recipient = make_recipient(jurisdiction="CA-QC", time_zone="America/Montreal")
    message = make_message("Votre facture est prête.", "invoice", language="fr")
    assert judge(policy, content, message, channel=EMAIL, recipient=recipient) == []


def test_english_reminder_to_a_french_speaker_warns(policy, content):
    recipient = make_recipient(language="fr")
    found = verdicts(policy, content, make_message("See you tomorrow."), channel=EMAIL, recipient=recipient)
    assert found == {"FRENCH_REQUIRED": Severity.WARN}


def test_english_reminder_to_an_english_speaking_quebec_patient_passes(policy, content):
    # docs/rule-catalogue.md I: other messages in the patient's language, which is English here.
    recipient = make_recipient(jurisdiction="CA-QC", time_zone="America/Montreal", language="en")
    assert judge(policy, content, make_message("See you tomorrow."), channel=EMAIL, recipient=recipient) == []


# --- recipient ------------------------------------------------------------------------------


def test_landline_is_not_a_valid_sms_address(policy, content):
    landline = "+442079460018"  # London 020 7946: a fixed line
    recipient = make_recipient(mobile=landline)
    (verdict,) = judge(policy, content, make_message(GOOD_SMS), recipient=recipient, route=Route("sms", landline))
    assert (verdict.code, verdict.severity) == ("RECIPIENT_INVALID", Severity.BLOCK)
    assert "landline" in verdict.message


def test_short_number_is_not_a_valid_sms_address(policy, content):
    found = blocks(policy, content, make_message(GOOD_SMS), route=Route("sms", "+1613555"))
    assert found == ["RECIPIENT_INVALID"]


def test_national_number_is_read_in_the_patients_region(policy, content):
    assert judge(policy, content, make_message(GOOD_SMS), route=Route("sms", "613-555-0123")) == []


def test_malformed_email_is_not_a_valid_address(policy, content):
    found = blocks(policy, content, make_message("See you."), channel=EMAIL, route=Route("email", "pat@@example.org"))
    assert found == ["RECIPIENT_INVALID"]


def test_unverified_address_warns(policy, content):
    recipient = make_recipient(contact_points=(ContactPoint("sms", MOBILE, verified=False),))
    found = verdicts(policy, content, make_message(GOOD_SMS), recipient=recipient)
    assert found == {"RECIPIENT_UNVERIFIED": Severity.WARN}


# --- facts made by hand, settings -----------------------------------------------------------


def test_a_fact_from_another_inspector_is_judged_the_same(policy):
    message = make_message(GOOD_SMS)
    fact = finding("CLINICAL_CONTENT", plugin="third-party", severity="info", span=(0, 9), term="Riverside")
    (verdict,) = policy.emrcomm_validate(message, make_recipient(), SMS, ROUTES["sms"], (fact,), TEST_NOW)
    assert (verdict.code, verdict.severity, verdict.span, verdict.plugin) == (
        "CLINICAL_CONTENT", Severity.BLOCK, (0, 9), "policy"
    )


def test_window_ending_before_it_starts_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\.policy\.quiet_hours: the window"):
        Policy(make_context("policy", {"quiet_hours": ["21:00", "08:00"]}, tmp_path))


@pytest.mark.parametrize("jurisdiction", [["05:00", "07:00"], ["21:00", "23:00"]])
def test_a_jurisdiction_window_sharing_no_time_with_the_clinics_is_a_config_error(tmp_path, jurisdiction):
    """Its patients' messages would be held again every day, for good: refused at start-up."""
    with pytest.raises(ConfigError, match=r"plugins\.policy\.quiet_hours_by_jurisdiction\.CA-ON: .* shares no time "
                                          r"with the clinic's window 08:00–21:00"):
        Policy(make_context("policy", {"quiet_hours_by_jurisdiction": {"CA-ON": jurisdiction}}, tmp_path))
    Policy(make_context("policy", {"quiet_hours_by_jurisdiction": {"CA-ON": ["20:00", "23:00"]}}, tmp_path))


def test_malformed_time_is_a_config_error_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\.policy\.quiet_hours_by_jurisdiction\.US-NY\[1\]: '8pm'"):
        Policy(make_context("policy", {"quiet_hours_by_jurisdiction": {"US-NY": ["08:00", "8pm"]}}, tmp_path))


def test_settings_schema_forbids_unknown_keys():
    assert Policy.settings_schema["additionalProperties"] is False
    assert all("description" in p for p in Policy.settings_schema["properties"].values())


def test_a_quiet_hours_channel_no_plugin_registers_stops_start_up(make_host):  # type: ignore[no-untyped-def]
    # "SMS" for "sms": the window would silently hold nothing, and texts would go at night.
    with pytest.raises(ConfigError, match=r"plugins\.policy\.quiet_hours_channels: no plugin registers channel "
                                          r"'SMS'; choose one of: email, portal, sms"):
        make_host('\n[plugins.policy]\nquiet_hours_channels = ["SMS"]\n')


@pytest.mark.parametrize(("window", "says"), [
    ('["21:00", "08:00"]', r"the window \['21:00', '08:00'\] ends before it starts; windows cannot span midnight"),
    ('["08:00", "08:00"]', r"the window \['08:00', '08:00'\] is empty: it ends when it starts"),
])
def test_a_window_that_holds_no_time_stops_start_up_naming_the_file(make_host, window, says):  # type: ignore[no-untyped-def]
    # The clinic is told which file, as for any other setting the schema refuses.
    with pytest.raises(ConfigError) as err:
        make_host(f"\n[plugins.policy]\nquiet_hours = {window}\n")
    assert re.fullmatch(rf".+\.toml: plugins\.policy\.quiet_hours: {says}", str(err.value))


def test_a_channel_no_plugin_registers_is_refused_naming_the_file(make_host):  # type: ignore[no-untyped-def]
    # Raised when the plugins start (the channels are known then), not when they are built.
    with pytest.raises(ConfigError, match=r"\.toml: plugins\.policy\.quiet_hours_channels: no plugin registers"):
        make_host('\n[plugins.policy]\nquiet_hours_channels = ["ap"]\n')


# emrcomm_sending_window: the window the outbox checks again as a row leaves ------------------------

def test_the_sending_window_is_the_patients_own_narrowed_by_their_jurisdiction(policy):
    from emrcomm import SendingWindow

    message = make_message(GOOD_SMS)
    window = policy.emrcomm_sending_window(message=message, recipient=make_recipient(), channel=SMS)
    assert window == SendingWindow(dt.time(8, 0), dt.time(21, 0), ("America/Toronto",))
    florida = attrs.evolve(make_recipient(), jurisdiction="US-FL", time_zone="America/New_York")
    assert policy.emrcomm_sending_window(message=message, recipient=florida, channel=SMS) == SendingWindow(
        dt.time(8, 0), dt.time(20, 0), ("America/New_York",))
    nowhere = attrs.evolve(make_recipient(), time_zone=None)
    assert policy.emrcomm_sending_window(message=message, recipient=nowhere, channel=SMS).zones == tuple(
        TEST_CLINIC.time_zones)


@pytest.mark.parametrize("category", ["optout-confirmation", "optin-confirmation", "help-reply", "auto-answer"])
def test_no_sending_window_for_an_answer_to_the_patient_urgent_priority_or_a_channel_without_quiet_hours(
        policy, category):
    recipient = make_recipient()
    answer = make_message(GOOD_SMS, category, in_response_to="their-reply")
    assert policy.emrcomm_sending_window(message=answer, recipient=recipient, channel=SMS) is None
    urgent = make_message(GOOD_SMS, priority="urgent")
    assert policy.emrcomm_sending_window(message=urgent, recipient=recipient, channel=SMS) is None
    assert policy.emrcomm_sending_window(message=make_message(GOOD_SMS), recipient=recipient, channel=EMAIL) is None
