"""The templates plugin: what every built-in template says, in which language and time zone,
and how it refuses variables that do not fit."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from emrcomm import ConfigError, Message, RenderError, Request
from emrcomm.config import validate
from emrcomm.forms import for_sms
from emrcomm.host import Host
from emrcomm.segments import count_segments
from emrcomm.testing import TEST_CLINIC, make_context, make_recipient
from emrcomm_policy.sms import has_optout_hint
from emrcomm_templates import Plugin

SHIPPED = (
    "appointment-reminder",
    "help-reply",
    "invoice",
    "optin-confirmation",
    "optout-confirmation",
    "portal-notice",
    "prescription-pickup",
    "prescription-refill",
    "questionnaire",
    "reply-auto-answer",
    "results-available",
)
# Texts that may go by SMS end with the opt-out hint; these have their own wording (the notice and
# the automatic answer a short one, to fit one segment: tests/test_notices.py and below).
OWN_WORDING = {"optout-confirmation", "optin-confirmation", "help-reply", "portal-notice", "reply-auto-answer"}
SMS_CAPABLE = tuple(n for n in SHIPPED if n not in OWN_WORDING)
STOP_EN = "Reply STOP to opt out."
STOP_FR = "Répondez ARRET pour vous désabonner."

# 15:30 UTC on Monday 23 November 2026: 10:30 in Toronto (EST, UTC-5).
APPOINTMENT = dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC)
REALISTIC: dict[str, dict[str, object]] = {
    "appointment-reminder": {"appointment": APPOINTMENT, "location": "1200 Bank St"},
    "prescription-pickup": {"ready": APPOINTMENT, "pharmacy": "Riverside Pharmacy"},
    "invoice": {"amount": Decimal("85.00"), "invoice_number": "F-1042", "due": dt.date(2026, 12, 7)},
    "questionnaire": {"appointment": APPOINTMENT},
    "reply-auto-answer": {},
}
REQUIRED_ONLY: dict[str, dict[str, object]] = {
    "appointment-reminder": {"appointment": APPOINTMENT},
    "invoice": {"amount": "85.00"},
}
FRENCH_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
FRENCH_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                 "octobre", "novembre", "décembre")
# 3GPP TS 23.038 default alphabet and its extension table (extension characters cost 2).
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def gsm7_length(text: str) -> int | None:
    """Septets the text needs in GSM-7, or None when it must go as UCS-2."""
    if not set(text) <= GSM7_BASIC | GSM7_EXTENSION:
        return None
    return sum(2 if c in GSM7_EXTENSION else 1 for c in text)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Plugin:
    """The built-ins alone; rendering changes nothing in the plugin, so tests share one."""
    return Plugin(make_context("templates", {}, tmp_path_factory.mktemp("templates")))


def with_folder(tmp_path: Path, files: dict[str, str], **settings: object) -> Plugin:
    """A plugin whose clinic folder ``overrides/`` holds ``files`` (path -> text)."""
    root = tmp_path / "overrides"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    root.mkdir(exist_ok=True)
    return Plugin(make_context("templates", {"directory": "overrides", **settings}, tmp_path))


def render(plugin: Plugin, template: str | None, variables: dict[str, object] | None = None,
           *, language: str = "en", **fields: object) -> Message:
    """Render for a patient from make_recipient; ``time_zone``, ``given_name``, ``family_name`` and
    ``jurisdiction`` go to the recipient, other keywords to the Request."""
    recipient_fields = {k: fields.pop(k) for k in ("time_zone", "given_name", "family_name", "jurisdiction")
                        if k in fields}
    recipient = make_recipient(language=language, **recipient_fields)
    request = Request("Patient/test-1", "appointment-reminder", template=template,
                      variables=variables or {}, **fields)
    message = plugin.emrcomm_render(request=request, recipient=recipient)
    assert message is not None
    return message


# -- what ships --------------------------------------------------------------------------------


def test_ships_the_ten_templates_in_english_and_french(plugin: Plugin) -> None:
    assert plugin.template_names() == sorted(SHIPPED)
    assert all(plugin.languages(name) == ["en", "fr"] for name in SHIPPED)


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("name", SHIPPED)
def test_every_template_renders_with_realistic_values_and_names_the_clinic(
    plugin: Plugin, name: str, language: str
) -> None:
    message = render(plugin, name, REALISTIC.get(name, {}), language=language)
    assert message.template == name
    assert message.language == language
    assert TEST_CLINIC.name in message.text
    assert message.subject and TEST_CLINIC.name in message.subject
    assert "None" not in message.text


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("name", SHIPPED)
def test_every_template_reads_cleanly_with_only_its_required_values(
    plugin: Plugin, name: str, language: str
) -> None:
    text = render(plugin, name, REQUIRED_ONLY.get(name, {}), language=language, given_name="").text
    assert "None" not in text
    assert " ." not in text and " ," not in text and "  " not in text
    assert text == text.strip() and "\n" not in text  # one SMS paragraph


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("name", SHIPPED)
def test_a_time_ending_a_sentence_does_not_double_the_period(plugin: Plugin, name: str, language: str) -> None:
    # 16:00 in Toronto: "4:00 p.m." in English, whose period also ends the sentence.
    four_pm = dt.datetime(2026, 11, 23, 21, 0, tzinfo=dt.UTC)
    variables = {k: four_pm if isinstance(v, dt.datetime) else v for k, v in REALISTIC.get(name, {}).items()}
    variables.pop("location", None)
    text = render(plugin, name, variables, language=language).text
    assert ".." not in text


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("name", SHIPPED)
def test_no_template_shows_the_family_name(plugin: Plugin, name: str, language: str) -> None:
    message = render(plugin, name, REALISTIC.get(name, {}), language=language,
                     given_name="Alex", family_name="Zyxwvut")
    assert "Zyxwvut" not in message.text
    assert "Zyxwvut" not in (message.subject or "")


@pytest.mark.parametrize("name", SMS_CAPABLE)
def test_sms_capable_english_templates_end_with_the_stop_hint(plugin: Plugin, name: str) -> None:
    assert render(plugin, name, REALISTIC.get(name, {})).text.endswith(STOP_EN)


@pytest.mark.parametrize("name", SMS_CAPABLE)
def test_sms_capable_french_templates_end_with_the_arret_hint(plugin: Plugin, name: str) -> None:
    assert render(plugin, name, REALISTIC.get(name, {}), language="fr").text.endswith(STOP_FR)


@pytest.mark.parametrize(("language", "hint"), [("en", "Reply STOP to opt out"), ("fr", "ARRET pour annuler")])
def test_the_portal_notice_is_gsm7_and_ends_with_a_short_hint(plugin: Plugin, language: str, hint: str) -> None:
    text = render(plugin, "portal-notice", {"link": "https://portal.riverside.example/m/8f3a"}, language=language).text
    assert text.endswith(hint) and set(text) <= GSM7_BASIC


@pytest.mark.parametrize(("name", "folded"), [
    ("Clinique de l’Île-Perrot", "Clinique de l'Ile-Perrot"),  # î and the curly apostrophe are not GSM-7
    ("Hôpital Côte-des-Neiges Montréal", "Hopital Cote-des-Neiges Montréal"),  # é is
    ("Centre Cœur «Santé» – Nord", 'Centre Coeur "Santé" - Nord'),
    ("Clinique Élan, Ça va", "Clinique Élan, Ça va"),  # É and Ç are GSM-7: unchanged
])
def test_the_gsm7_filter_writes_a_name_in_the_sms_alphabet(tmp_path: Path, name: str, folded: str) -> None:
    # For a clinic's own template that wants a part spelled so on every channel.
    (tmp_path / "own" / "en").mkdir(parents=True)
    (tmp_path / "own" / "en" / "signed.j2").write_text("{{ clinic.name|gsm7 }}: see you soon.", encoding="utf-8")
    (tmp_path / "own" / "en" / "catalog.toml").write_text("[signed]\n", encoding="utf-8")
    plugin = Plugin(make_context("templates", {"directory": "own"}, tmp_path,
                                 clinic=attrs.evolve(TEST_CLINIC, name=name)))
    text = render(plugin, "signed").text
    assert text == f"{folded}: see you soon." and set(text) <= GSM7_BASIC


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("name", ["portal-notice", "reply-auto-answer"])
def test_the_notice_and_the_automatic_answer_write_the_clinics_name_as_given(
        tmp_path: Path, name: str, language: str) -> None:
    # A notice may go by email, an answer to wherever the patient wrote from: only an SMS spells
    # the name in GSM-7, as it leaves.
    clinic = attrs.evolve(TEST_CLINIC, name="Clinique de l’Île-Perrot")
    text = render(Plugin(make_context("templates", {}, tmp_path, clinic=clinic)), name,
                  {"link": "https://portal.riverside.example/m/8f3a"} if name == "portal-notice" else {},
                  language=language).text
    assert text.startswith("Clinique de l’Île-Perrot"), text
    assert count_segments(for_sms(text)) == ("GSM-7", 1), text


@pytest.mark.parametrize("language", ["en", "fr"])
def test_help_reply_gives_clinic_phone_and_how_to_stop(plugin: Plugin, language: str) -> None:
    text = render(plugin, "help-reply", language=language).text
    assert TEST_CLINIC.name in text
    assert TEST_CLINIC.phone in text
    assert ("STOP" if language == "en" else "ARRET") in text


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("name", ["results-available", "portal-notice"])
def test_notices_say_only_that_a_message_waits_and_give_the_link(
    plugin: Plugin, name: str, language: str
) -> None:
    message = render(plugin, name, {"link": "https://portal.riverside.example/m/8f3a"}, language=language)
    assert "https://portal.riverside.example/m/8f3a" in message.text
    words = (message.text + " " + (message.subject or "")).lower()
    for forbidden in ("result", "résultat", "test", "lab", "analyse", "normal"):
        assert forbidden not in words


@pytest.mark.parametrize("language", ["en", "fr"])
def test_notice_link_defaults_to_the_clinic_portal(plugin: Plugin, language: str) -> None:
    assert TEST_CLINIC.portal_url in render(plugin, "results-available", language=language).text


@pytest.mark.parametrize("language", ["en", "fr"])
def test_reply_auto_answer_gives_turnaround_a_number_for_private_matters_and_emergency(
    plugin: Plugin, language: str
) -> None:
    text = render(plugin, "reply-auto-answer", language=language).text
    # No portal link: the portal has no page to write from, and its messages open only from their own links.
    assert TEST_CLINIC.portal_url not in text and "portal" not in text.lower()
    assert ("Private matters: call +1 613 555 0100" if language == "en" else "Sujet privé : appelez le +1 613 555 0100") in text
    assert "911" in text
    assert (TEST_CLINIC.turnaround if language == "en" else TEST_CLINIC.turnaround_fr) in text


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("turnaround", [True, False])
def test_reply_auto_answer_is_one_gsm7_segment_with_the_longest_clinic_name(
    tmp_path: Path, language: str, turnaround: bool
) -> None:
    clinic = attrs.evolve(TEST_CLINIC, name="Clinique médicale Sainte-Thérèse", **(
        {} if turnaround else {"turnaround": "", "turnaround_fr": ""}))
    assert len(clinic.name) == 32  # the longest the config allows
    text = render(Plugin(make_context("templates", {}, tmp_path, clinic=clinic)), "reply-auto-answer",
                  language=language).text
    assert count_segments(text) == ("GSM-7", 1), text
    assert "Sainte-Thérèse" in text and has_optout_hint(text)
    assert text.endswith(STOP_EN if language == "en" else "ARRET pour annuler")


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("name", [TEST_CLINIC.name, "Clinique médicale Sainte-Thérèse"])
def test_help_reply_is_one_gsm7_segment_in_either_language(tmp_path: Path, language: str, name: str) -> None:
    # The answer to HELP / AIDE goes by SMS or not at all: a gateway that sends one part whole
    # (Kannel's defaults) makes a second segment SMS_TOO_LONG, and the patient who asked gets nothing.
    # The French answer took 168 characters with a 23-character name, where the English took 136.
    clinic = attrs.evolve(TEST_CLINIC, name=name)
    text = render(Plugin(make_context("templates", {}, tmp_path, clinic=clinic)), "help-reply",
                  language=language).text
    assert count_segments(text) == ("GSM-7", 1), text
    assert all(part in text for part in (name, clinic.phone, clinic.email, "STOP" if language == "en" else "ARRET"))


def test_reply_auto_answer_takes_the_turnaround_in_the_patients_language(plugin: Plugin) -> None:
    text = render(plugin, "reply-auto-answer", {"turnaround": "sous deux jours"}, language="fr").text
    assert "sous deux jours" in text
    assert TEST_CLINIC.turnaround not in text


def test_reply_auto_answer_in_french_says_the_clinics_french_turnaround(plugin: Plugin) -> None:
    text = render(plugin, "reply-auto-answer", language="fr").text
    assert f"réponse en {TEST_CLINIC.turnaround_fr}." in text
    assert TEST_CLINIC.turnaround not in text


def test_a_turnaround_given_in_english_only_is_promised_in_neither_language(tmp_path: Path) -> None:
    english_only = attrs.evolve(TEST_CLINIC, turnaround_fr="")
    plugin = Plugin(make_context("templates", {}, tmp_path, clinic=english_only))
    english = render(plugin, "reply-auto-answer").text
    french = render(plugin, "reply-auto-answer", language="fr").text
    assert "two business days" not in english + french
    assert "we answer within" not in english and "réponse en" not in french


# -- SMS length --------------------------------------------------------------------------------


def test_english_appointment_reminder_fits_one_gsm7_sms(plugin: Plugin) -> None:
    # Long month and weekday abbreviations, a two-digit day and hour, and a street address.
    appointment = dt.datetime(2026, 9, 30, 10, 45, tzinfo=zoneinfo.ZoneInfo("America/Toronto"))
    text = render(plugin, "appointment-reminder", {"appointment": appointment, "location": "1200 Bank St"},
                  given_name="Alex").text
    septets = gsm7_length(text)
    assert septets is not None, "the English reminder must stay in the GSM-7 alphabet"
    assert septets <= 160


AUGUST = dt.datetime(2026, 8, 26, 10, 45, tzinfo=zoneinfo.ZoneInfo("America/Toronto"))


@pytest.mark.parametrize(("name", "variables"), [
    ("appointment-reminder", {"appointment": AUGUST, "location": "1200, rue Bank"}),
    ("prescription-pickup", {"ready": AUGUST}),
    ("questionnaire", {"appointment": AUGUST}),
])
def test_a_french_text_in_august_is_spelled_in_full_and_its_sms_stays_gsm7(
        plugin: Plugin, name: str, variables: dict[str, object]) -> None:
    # "août" has û, which GSM-7 lacks: it sent the whole SMS as UCS-2, the reminder in three
    # segments where every other month takes one. The template writes "août" for every channel;
    # the SMS spells it "aout" (the 1990 rectified spelling the OQLF accepts) as it leaves.
    text = render(plugin, name, variables, language="fr").text
    assert "mercredi 26 août" in text
    assert "mercredi 26 aout" in for_sms(text)
    assert count_segments(for_sms(text))[0] == "GSM-7", text


def test_a_french_appointment_reminder_in_august_is_one_sms_segment(plugin: Plugin) -> None:
    text = render(plugin, "appointment-reminder", {"appointment": AUGUST, "location": "1200, rue Bank"},
                  language="fr").text
    assert count_segments(for_sms(text)) == ("GSM-7", 1), text


def test_french_appointment_reminder_stays_gsm7_when_the_month_allows(plugin: Plugin) -> None:
    text = render(plugin, "appointment-reminder", {"appointment": APPOINTMENT}, language="fr").text
    septets = gsm7_length(text)
    assert septets is not None and septets <= 160


# -- dates, times, amounts --------------------------------------------------------------------


def test_french_date_and_time_are_in_the_patients_time_zone(plugin: Plugin) -> None:
    zone = "America/Vancouver"
    local = APPOINTMENT.astimezone(zoneinfo.ZoneInfo(zone))
    toronto = APPOINTMENT.astimezone(zoneinfo.ZoneInfo("America/Toronto"))
    text = render(plugin, "appointment-reminder", {"appointment": APPOINTMENT}, language="fr",
                  time_zone=zone).text
    day = f"{FRENCH_DAYS[local.weekday()]} {local.day} {FRENCH_MONTHS[local.month - 1]}"
    assert f"le {day} à {local.hour} h {local.minute:02d}" in text
    assert f"{toronto.hour} h" not in text


@pytest.mark.parametrize(("language", "says"), [("en", "at 3:30 a.m."), ("fr", "à 3 h 30")])
def test_a_clock_time_the_spring_forward_skips_is_written_as_the_instant_it_is(
        plugin: Plugin, language: str, says: str) -> None:
    # 02:30 does not exist in Toronto on 2027-03-14; Python reads it as 07:30 UTC, which the
    # clocks there show as 03:30 (and the store and the timeline say so): the patient must too.
    skipped = dt.datetime(2027, 3, 14, 2, 30, tzinfo=zoneinfo.ZoneInfo("America/Toronto"))
    text = render(plugin, "appointment-reminder", {"appointment": skipped}, language=language,
                  time_zone="America/Toronto").text
    assert says in text and "2:30" not in text and "2 h 30" not in text


def test_french_time_on_the_hour_is_written_without_minutes(plugin: Plugin) -> None:
    nine = dt.datetime(2026, 11, 23, 9, 0, tzinfo=zoneinfo.ZoneInfo("America/Toronto"))
    text = render(plugin, "appointment-reminder", {"appointment": nine}, language="fr").text
    assert "à 9 h." in text


def test_french_first_of_the_month_is_written_1er(plugin: Plugin) -> None:
    # OQLF: « le 1er mars », never « le 1 mars »; the 2nd and after are plain numbers.
    first = dt.datetime(2026, 3, 1, 14, 30, tzinfo=zoneinfo.ZoneInfo("America/Toronto"))
    reminder = render(plugin, "appointment-reminder", {"appointment": first}, language="fr").text
    assert "le dimanche 1er mars à 14 h 30" in reminder
    invoice = render(plugin, "invoice", {"amount": "85.00", "due": dt.date(2026, 4, 1)}, language="fr").text
    assert "d'ici le 1er avril 2026" in invoice
    second = render(plugin, "appointment-reminder", {"appointment": first + dt.timedelta(days=1)},
                    language="fr").text
    assert "le lundi 2 mars" in second


def test_first_of_the_month_stays_a_number_in_english_and_in_numeric_french_dates(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {
        "fr/when.j2": "{{ day|date('short') }} / {{ day|date('dd/MM') }}",
        "en/when.j2": "{{ day|date('long') }}",
        "en/catalog.toml": '[when]\nrequired = { day = "date" }\n',
    })
    assert render(plugin, "when", {"day": dt.date(2026, 4, 1)}, language="fr").text == "2026-04-01 / 01/04"
    assert render(plugin, "when", {"day": dt.date(2026, 4, 1)}).text == "April 1, 2026"


def test_patient_without_time_zone_gets_the_clinics_first_zone(tmp_path: Path) -> None:
    clinic = attrs.evolve(TEST_CLINIC, time_zones=("America/Halifax", "America/Toronto"))
    plugin = Plugin(make_context("templates", {}, tmp_path, clinic=clinic))
    local = APPOINTMENT.astimezone(zoneinfo.ZoneInfo("America/Halifax"))
    text = render(plugin, "appointment-reminder", {"appointment": APPOINTMENT}, language="fr",
                  time_zone=None).text
    assert f"à {local.hour} h {local.minute:02d}" in text


def test_datetime_filter_writes_the_quebec_long_form(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {
        "fr/when.j2": "{{ appointment|datetime }}",
        "fr/catalog.toml": '[when]\nrequired = { appointment = "datetime" }\n',
    })
    local = APPOINTMENT.astimezone(zoneinfo.ZoneInfo("America/Toronto"))
    expected = (f"{FRENCH_DAYS[local.weekday()]} {local.day} {FRENCH_MONTHS[local.month - 1]} {local.year}"
                f" à {local.hour} h {local.minute:02d}")
    assert render(plugin, "when", {"appointment": APPOINTMENT}, language="fr").text == expected


# -- a patient in another time zone -------------------------------------------------------------

# 9:00 in Toronto, the test clinic's zone, on Monday 9 March 2026 (EDT): 6:00 in Vancouver, 14:00 in Paris.
NINE_AT_THE_CLINIC = dt.datetime(2026, 3, 9, 9, 0, tzinfo=zoneinfo.ZoneInfo("America/Toronto"))


@pytest.mark.parametrize(("language", "zone", "expected"), [
    ("en", "America/Vancouver", "Mon, Mar 9 at 6:00 a.m. Vancouver time."),
    ("en", "Europe/Paris", "Mon, Mar 9 at 2:00 p.m. Paris time."),
    ("fr", "America/Vancouver", "le lundi 9 mars à 6 h (heure de Vancouver)."),
    ("fr", "Europe/Paris", "le lundi 9 mars à 14 h (heure de Paris)."),
])
def test_a_time_in_the_patients_zone_names_it_when_it_is_not_the_clinics(
    plugin: Plugin, language: str, zone: str, expected: str
) -> None:
    # Without it the patient cannot tell whether 6:00 is their clock or the clinic's.
    text = render(plugin, "appointment-reminder", {"appointment": NINE_AT_THE_CLINIC}, language=language,
                  time_zone=zone).text
    assert expected in text


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("zone", ["America/Toronto", "America/Montreal", None])
def test_a_time_on_the_clinics_clock_names_no_zone(plugin: Plugin, language: str, zone: str | None) -> None:
    # America/Montreal is another name for Toronto's clock: the same time, so nothing to say.
    text = render(plugin, "appointment-reminder", {"appointment": NINE_AT_THE_CLINIC}, language=language,
                  time_zone=zone).text
    assert ("at 9:00 a.m." if language == "en" else "à 9 h.") in text
    assert " time" not in text and "heure" not in text


def test_a_zone_is_named_only_when_its_clock_differs_from_the_clinics_that_day(tmp_path: Path) -> None:
    # Phoenix keeps standard time: the same clock as Denver in winter, an hour behind in summer.
    clinic = attrs.evolve(TEST_CLINIC, time_zones=("America/Denver",))
    plugin = Plugin(make_context("templates", {}, tmp_path, clinic=clinic))
    denver = zoneinfo.ZoneInfo("America/Denver")
    winter = render(plugin, "appointment-reminder", {"appointment": dt.datetime(2026, 1, 12, 9, 0, tzinfo=denver)},
                    time_zone="America/Phoenix").text
    summer = render(plugin, "appointment-reminder", {"appointment": dt.datetime(2026, 7, 13, 9, 0, tzinfo=denver)},
                    time_zone="America/Phoenix").text
    assert "at 9:00 a.m." in winter and "Phoenix" not in winter
    assert "at 8:00 a.m. Phoenix time" in summer


@pytest.mark.parametrize(("language", "expected"), [("en", "at 9:00 a.m. Montréal time"),
                                                    ("fr", "à 9 h (heure de Montréal)")])
def test_a_quebec_patient_of_a_clinic_elsewhere_reads_montreal_time_not_toronto(
    tmp_path: Path, language: str, expected: str
) -> None:
    # Quebec's zone is America/Toronto, whose city would puzzle a patient in Montréal.
    clinic = attrs.evolve(TEST_CLINIC, time_zones=("America/Vancouver",))
    plugin = Plugin(make_context("templates", {}, tmp_path, clinic=clinic))
    text = render(plugin, "appointment-reminder", {"appointment": NINE_AT_THE_CLINIC}, language=language,
                  time_zone="America/Toronto", jurisdiction="CA-QC").text
    assert expected in text and "Toronto" not in text


@pytest.mark.parametrize(("zone", "expected"), [("America/Edmonton", "à 7 h (heure d'Edmonton)"),
                                                ("America/Halifax", "à 10 h (heure d'Halifax)"),
                                                ("America/Regina", "à 7 h (heure de Regina)")])
def test_french_elides_de_before_a_city_that_starts_with_a_vowel_sound(
    plugin: Plugin, zone: str, expected: str
) -> None:
    text = render(plugin, "appointment-reminder", {"appointment": NINE_AT_THE_CLINIC}, language="fr",
                  time_zone=zone).text
    assert expected in text


def test_english_names_st_johns_as_newfoundland_writes_it(plugin: Plugin) -> None:
    # CLDR's English says "Saint John’s", a name New Brunswick's Saint John is easily read as.
    text = render(plugin, "appointment-reminder", {"appointment": NINE_AT_THE_CLINIC},
                  time_zone="America/St_Johns").text
    assert "at 10:30 a.m. St. John's time" in text


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("zone", ["Atlantic/Azores", "America/Bogota", "Asia/Ho_Chi_Minh", "America/St_Johns"])
def test_the_zones_name_never_takes_a_gsm7_sms_reminder_out_of_gsm7(plugin: Plugin, language: str, zone: str) -> None:
    # CLDR writes Açores, Bogotá, Hô-Chi-Minh-Ville, St. John’s: one such letter would make the SMS UCS-2.
    text = for_sms(render(plugin, "appointment-reminder", {"appointment": NINE_AT_THE_CLINIC}, language=language,
                          time_zone=zone).text)
    assert gsm7_length(text) is not None, text
    assert "time" in text if language == "en" else "heure" in text


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("location", [None, "1200 Bank St"])
@pytest.mark.parametrize("zone", ["America/Vancouver", "America/St_Johns", "Europe/Paris"])
def test_naming_the_zone_costs_a_reminder_at_most_one_more_gsm7_segment(
    plugin: Plugin, language: str, location: str | None, zone: str
) -> None:
    # The name is 15 to 21 characters: the longest stock reminders (a long weekday and month, a
    # street address) already near 160 take a second segment, never a third, never UCS-2.
    when = dt.datetime(2026, 9, 30, 10, 45, tzinfo=zoneinfo.ZoneInfo("America/Toronto"))
    variables = {"appointment": when, "location": location}
    home = for_sms(render(plugin, "appointment-reminder", variables, language=language, time_zone="America/Toronto").text)
    away = for_sms(render(plugin, "appointment-reminder", variables, language=language, time_zone=zone).text)
    assert away != home
    encoding, segments = count_segments(away)
    assert encoding == "GSM-7" and segments <= count_segments(home)[1] + 1, away


def test_english_reminder_naming_the_zone_without_a_place_fits_one_sms(plugin: Plugin) -> None:
    when = dt.datetime(2026, 9, 30, 10, 45, tzinfo=zoneinfo.ZoneInfo("America/Toronto"))
    text = render(plugin, "appointment-reminder", {"appointment": when}, time_zone="America/St_Johns").text
    assert count_segments(text) == ("GSM-7", 1), text


def test_french_sms_reminder_naming_the_zone_in_august_stays_gsm7_in_two_segments(plugin: Plugin) -> None:
    text = for_sms(render(plugin, "appointment-reminder", {"appointment": AUGUST, "location": "1200, rue Bank"},
                          language="fr", time_zone="America/Vancouver").text)
    assert "aout" in text and "(heure de Vancouver)" in text
    assert count_segments(text) == ("GSM-7", 2), text


@pytest.mark.parametrize(("language", "zone", "city"), [
    ("fr", "America/Bogota", "(heure de Bogotá)"), ("fr", "Atlantic/Azores", "(heure d'Açores)"),
    ("fr", "Pacific/Easter", "(heure d'île de Pâques)"),  # elided before î as before i
    ("en", "America/Bogota", "Bogotá time"),
])
def test_the_zones_city_is_spelled_as_cldr_writes_it_and_its_sms_in_gsm7(
        plugin: Plugin, language: str, zone: str, city: str) -> None:
    # An email or portal message says Bogotá; only the SMS drops the accent GSM-7 lacks.
    text = render(plugin, "appointment-reminder", {"appointment": NINE_AT_THE_CLINIC}, language=language,
                  time_zone=zone).text
    assert city in text, text
    assert for_sms(city) in for_sms(text) and city not in for_sms(text)


def test_the_datetime_filter_and_a_time_pattern_name_the_zone_and_a_date_alone_does_not(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {
        "en/when.j2": "{{ at|datetime('long') }} / {{ at|time('HH:mm') }} / {{ at|time('HH:mm zzzz') }} / "
                      "{{ at|date('long') }}",
        "en/catalog.toml": '[when]\nrequired = { at = "datetime" }\n',
    })
    text = render(plugin, "when", {"at": NINE_AT_THE_CLINIC}, time_zone="America/Vancouver").text
    # A pattern that writes its own zone keeps it, without a second.
    assert text == ("March 9, 2026 at 6:00 a.m. Vancouver time / 06:00 Vancouver time / 06:00 Pacific Daylight Time"
                    " / March 9, 2026")


def test_a_clinics_own_language_names_the_zone_in_cldrs_words(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {
        "es/when.j2": "{{ at|time('H:mm') }}",
        "es/catalog.toml": '[when]\nrequired = { at = "datetime" }\n',
    })
    text = render(plugin, "when", {"at": NINE_AT_THE_CLINIC}, language="es", time_zone="America/Vancouver").text
    assert text == "6:00 (hora de Vancouver)"


def test_prescription_pickup_names_the_zone_of_its_time(plugin: Plugin) -> None:
    text = render(plugin, "prescription-pickup", {"ready": NINE_AT_THE_CLINIC}, language="fr",
                  time_zone="America/Vancouver").text
    assert "à partir du lundi 9 mars, 6 h (heure de Vancouver)." in text


def test_english_times_use_plain_spaces_so_the_sms_stays_gsm7(plugin: Plugin) -> None:
    text = render(plugin, "appointment-reminder", {"appointment": APPOINTMENT}).text
    assert "\u202f" not in text and "\u00a0" not in text
    assert "10:30 a.m." in text


@pytest.mark.parametrize(("language", "expected"), [("en", "$85.50"), ("fr", "85,50 $")])
def test_amounts_are_written_in_the_patients_locale(plugin: Plugin, language: str, expected: str) -> None:
    assert expected in render(plugin, "invoice", {"amount": Decimal("85.5")}, language=language).text


def test_currency_setting_changes_the_amounts_currency(tmp_path: Path) -> None:
    plugin = Plugin(make_context("templates", {"currency": "USD"}, tmp_path))
    assert "US$85.50" in render(plugin, "invoice", {"amount": "85.50"}).text


def test_request_appointment_field_fills_the_appointment_variable(plugin: Plugin) -> None:
    text = render(plugin, "appointment-reminder", appointment=APPOINTMENT).text
    assert "Mon, Nov 23 at 10:30 a.m." in text


def test_iso_8601_string_with_offset_is_accepted(plugin: Plugin) -> None:
    text = render(plugin, "appointment-reminder", {"appointment": "2026-11-23T14:15:00-05:00"}).text
    assert "2:15 p.m." in text


def test_invoice_to_an_english_speaking_quebec_patient_is_bilingual_french_first(plugin: Plugin) -> None:
    recipient = make_recipient(language="en", jurisdiction="CA-QC")
    request = Request("Patient/test-1", "invoice", template="invoice", variables={"amount": "85.00"})
    message = plugin.emrcomm_render(request=request, recipient=recipient)
    assert message is not None and message.language == "fr"
    french, english = message.text.split("\n\n")
    assert "85,00 $" in french and french.endswith(STOP_FR)
    assert "$85.00" in english and english.endswith(STOP_EN)


def test_bilingual_invoice_fits_three_gsm7_segments(plugin: Plugin) -> None:
    recipient = make_recipient(language="en", jurisdiction="CA-QC")
    variables = {"amount": "1250.00", "invoice_number": "INV-00017", "due": "2026-12-23"}
    request = Request("Patient/test-1", "invoice", template="invoice", variables=variables)
    message = plugin.emrcomm_render(request=request, recipient=recipient)
    assert message is not None
    septets = gsm7_length(message.text)
    assert septets is not None and septets <= 3 * 153


def test_invoice_to_an_ontario_patient_stays_in_their_language(plugin: Plugin) -> None:
    recipient = make_recipient(language="en", jurisdiction="CA-ON")
    request = Request("Patient/test-1", "invoice", template="invoice", variables={"amount": "85.00"})
    message = plugin.emrcomm_render(request=request, recipient=recipient)
    assert message is not None and message.language == "en"
    assert "\n" not in message.text and "85,00 $" not in message.text


def test_appointment_reminder_to_an_english_speaking_quebec_patient_stays_english(plugin: Plugin) -> None:
    recipient = make_recipient(language="en", jurisdiction="CA-QC")
    request = Request("Patient/test-1", "appointment-reminder", template="appointment-reminder",
                      variables={"appointment": APPOINTMENT})
    message = plugin.emrcomm_render(request=request, recipient=recipient)
    assert message is not None and message.language == "en"


# -- variables that do not fit ----------------------------------------------------------------


def test_missing_required_variable_names_template_and_variable(plugin: Plugin) -> None:
    with pytest.raises(RenderError, match=r"'appointment-reminder'.*'appointment'"):
        render(plugin, "appointment-reminder", {"location": "1200 Bank St"})


def test_undeclared_variable_is_refused_and_named(plugin: Plugin) -> None:
    with pytest.raises(RenderError, match=r"'appointement'.*did you mean 'appointment'"):
        render(plugin, "appointment-reminder", {"appointment": APPOINTMENT, "appointement": APPOINTMENT})


@pytest.mark.parametrize(
    ("template", "variable", "value"),
    [
        ("appointment-reminder", "appointment", "tomorrow at ten"),
        ("appointment-reminder", "appointment", dt.date(2026, 11, 23)),
        ("appointment-reminder", "location", 1200),
        ("invoice", "amount", "eighty-five dollars"),
        ("invoice", "amount", True),
        ("invoice", "due", "next week"),
    ],
)
def test_wrong_type_is_refused_and_named(plugin: Plugin, template: str, variable: str, value: object) -> None:
    variables = {**REQUIRED_ONLY.get(template, {}), variable: value}
    with pytest.raises(RenderError, match=f"'{variable}'"):
        render(plugin, template, variables)


@pytest.mark.parametrize("value", [dt.datetime(2026, 11, 23, 10, 30), "2026-11-23T10:30:00"])
def test_naive_datetime_is_refused_as_ambiguous(plugin: Plugin, value: object) -> None:
    with pytest.raises(RenderError, match=r"'appointment'.*time zone"):
        render(plugin, "appointment-reminder", {"appointment": value})


def test_unknown_template_is_left_to_other_plugins_and_the_host_lists_the_ones_that_exist(
        plugin: Plugin, make_host: Callable[..., Host]) -> None:
    request = Request("Patient/test-1", "appointment-reminder", template="appointment-remindr")
    assert plugin.emrcomm_render(request=request, recipient=make_recipient()) is None  # another plugin's, perhaps
    host = make_host()
    request = Request("Patient/on-en", "appointment-reminder", template="appointment-remindr")
    with pytest.raises(RenderError, match=r"no plugin renders template 'appointment-remindr'; choose one of: "
                                          r"appointment-reminder, help-reply"):
        host.plugins.render(request, make_recipient())


def test_unknown_patient_time_zone_is_a_render_error(plugin: Plugin) -> None:
    with pytest.raises(RenderError, match="Mars/Olympus_Mons"):
        render(plugin, "appointment-reminder", {"appointment": APPOINTMENT}, time_zone="Mars/Olympus_Mons")


def test_template_with_a_link_needs_a_link_when_the_clinic_has_no_portal(tmp_path: Path) -> None:
    clinic = attrs.evolve(TEST_CLINIC, portal_url="")
    plugin = Plugin(make_context("templates", {}, tmp_path, clinic=clinic))
    with pytest.raises(RenderError, match="link"):
        render(plugin, "portal-notice")


# -- free text ---------------------------------------------------------------------------------


def test_free_text_passes_through_unchanged(plugin: Plugin) -> None:
    note = "  Please bring your list of questions.\n\nSee you Monday,  Dr. Roy  "
    message = render(plugin, None, text=note)
    assert message.text == note
    assert message.template is None
    assert message.subject == f"Message from {TEST_CLINIC.name}"


def test_free_text_gets_a_french_neutral_subject_for_a_french_patient(plugin: Plugin) -> None:
    message = render(plugin, None, text="Bonjour", language="fr")
    assert message.subject == f"Message de {TEST_CLINIC.name}"
    assert message.language == "fr"


def test_free_text_keeps_the_requests_subject(plugin: Plugin) -> None:
    assert render(plugin, None, text="Hello", subject="About your visit").subject == "About your visit"


def test_request_with_neither_template_nor_text_is_refused(plugin: Plugin) -> None:
    with pytest.raises(RenderError, match="neither a template nor a text"):
        render(plugin, None)


def test_language_tag_with_region_picks_the_french_template(plugin: Plugin) -> None:
    assert render(plugin, "help-reply", language="fr-CA").language == "fr"


# -- the clinic's folder -----------------------------------------------------------------------


def test_english_is_used_when_a_template_has_no_french_version(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {"en/parking.j2": "{{ clinic.name }}: the lot is closed today."})
    message = render(plugin, "parking", language="fr")
    assert message.language == "en"
    assert message.text == f"{TEST_CLINIC.name}: the lot is closed today."


def test_clinic_template_replaces_a_builtin_and_keeps_its_variables(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {
        "en/appointment-reminder.j2": "{{ clinic.name }}: see you {{ appointment|date('EEEE') }}.",
    })
    assert render(plugin, "appointment-reminder", {"appointment": APPOINTMENT}).text == (
        f"{TEST_CLINIC.name}: see you Monday."
    )
    with pytest.raises(RenderError, match="'appointment'"):
        render(plugin, "appointment-reminder", {})
    # The French built-in is untouched.
    assert render(plugin, "appointment-reminder", {"appointment": APPOINTMENT}, language="fr").text.endswith(STOP_FR)


def test_clinic_catalog_can_redeclare_a_builtins_variables(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {
        "en/appointment-reminder.j2": "{{ clinic.name }}: see you in room {{ room }}.",
        "fr/appointment-reminder.j2": "{{ clinic.name }} : salle {{ room }}.",
        "en/catalog.toml": '[appointment-reminder]\nrequired = { room = "string" }\n',
    })
    assert render(plugin, "appointment-reminder", {"room": "4"}).text == f"{TEST_CLINIC.name}: see you in room 4."
    with pytest.raises(RenderError, match="'appointment'"):
        render(plugin, "appointment-reminder", {"room": "4", "appointment": APPOINTMENT})


def test_redeclaring_a_builtin_without_replacing_every_language_is_a_config_error(tmp_path: Path) -> None:
    # The built-in French reminder still reads 'appointment', which the clinic no longer declares.
    with pytest.raises(ConfigError, match=r"fr/appointment-reminder\.j2.*'appointment'"):
        with_folder(tmp_path, {
            "en/appointment-reminder.j2": "{{ clinic.name }}: see you in room {{ room }}.",
            "en/catalog.toml": '[appointment-reminder]\nrequired = { room = "string" }\n',
        })


def test_clinic_catalog_subject_replaces_the_builtin_subject(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {"en/catalog.toml": '[invoice]\nsubject = "Your statement"\n'})
    assert render(plugin, "invoice", {"amount": "10"}).subject == "Your statement"


def test_clinic_template_in_a_new_language_is_used(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {"es/help-reply.j2": "{{ clinic.name }}: llame al {{ clinic.phone }}."})
    message = render(plugin, "help-reply", language="es")
    assert message.language == "es"
    assert message.text == f"{TEST_CLINIC.name}: llame al {TEST_CLINIC.phone}."


def test_template_lines_join_and_blank_lines_make_paragraphs(tmp_path: Path) -> None:
    plugin = with_folder(tmp_path, {
        "en/letter.j2": "Hello\n   {% if patient.given_name %}{{ patient.given_name }}{% endif %}\n"
                        "and welcome.   \n\n\nSee you soon.\n",
    })
    assert render(plugin, "letter", given_name="Alex").text == "Hello Alex and welcome.\n\nSee you soon."


def test_broken_clinic_template_is_a_config_error_naming_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"overrides/en/broken\.j2, line 2"):
        with_folder(tmp_path, {"en/broken.j2": "Hello from {{ clinic.name }}.\nSee you {{ clinic.name | }}\n"})


def test_clinic_template_using_an_undeclared_variable_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"overrides/en/room\.j2.*'room'"):
        with_folder(tmp_path, {"en/room.j2": "Room {{ room }}"})


def test_clinic_catalog_naming_no_template_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="appointment-remindr"):
        with_folder(tmp_path, {"en/catalog.toml": '[appointment-remindr]\nsubject = "Reminder"\n'})


def test_clinic_catalog_with_an_unknown_type_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"catalog\.toml.*'timestamp'"):
        with_folder(tmp_path, {
            "en/x.j2": "{{ when }}",
            "en/catalog.toml": '[x]\nrequired = { when = "timestamp" }\n',
        })


# -- compiled once a process, checked by every plugin ----------------------------------------------


def test_a_templates_text_is_compiled_once_and_each_plugin_checks_it_against_its_own_catalog(
        tmp_path: Path) -> None:
    room = "Riverside Family Health: room {{ room }}. Reply STOP to opt out."
    first = with_folder(tmp_path, {"en/room.j2": room, "en/catalog.toml": '[room]\nrequired = { room = "string" }\n'})
    again = with_folder(tmp_path, {})
    assert again._templates["room"]["en"].compiled.body is first._templates["room"]["en"].compiled.body  # the same text, once
    assert render(again, "room", {"room": "4B"}).text == "Riverside Family Health: room 4B. Reply STOP to opt out."
    (tmp_path / "overrides" / "en" / "catalog.toml").unlink()  # the same text, no longer declared
    with pytest.raises(ConfigError, match=r"overrides/en/room\.j2.*'room'"):
        with_folder(tmp_path, {})


def test_a_clinic_template_edited_between_two_hosts_is_compiled_again(tmp_path: Path) -> None:
    before = with_folder(tmp_path, {"en/hello.j2": "Hello from {{ clinic.name }}."})
    after = with_folder(tmp_path, {"en/hello.j2": "Good morning from {{ clinic.name }}."})
    assert render(before, "hello").text == f"Hello from {TEST_CLINIC.name}."
    assert render(after, "hello").text == f"Good morning from {TEST_CLINIC.name}."


def test_a_broken_template_is_reported_by_every_plugin_that_loads_it(tmp_path: Path) -> None:
    files = {"en/broken.j2": "Hello from {{ clinic.name }}.\nSee you {{ clinic.name | }}\n"}
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"overrides/en/broken\.j2, line 2"):
            with_folder(tmp_path, files)


def test_a_template_compiled_once_keeps_each_plugins_render_bounds(tmp_path: Path) -> None:
    files = {"en/count.j2": "{% for i in range(2000) %}{{ i % 10 }}{% endfor %}"}
    tight = with_folder(tmp_path, files, render_steps=1000)
    roomy = with_folder(tmp_path, files)
    assert tight._templates["count"]["en"].compiled.body is roomy._templates["count"]["en"].compiled.body
    assert render(roomy, "count").text == "0123456789" * 200
    with pytest.raises(RenderError, match="render_steps"):
        render(tight, "count")
    assert render(roomy, "count").text == "0123456789" * 200


def test_a_built_in_template_is_compiled_when_first_rendered_not_as_the_plugin_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a folder of the clinic's own, nothing in the config can break a built-in: a command
    that renders nothing (`emrcomm --help`, `records`) compiles none of them."""
    import emrcomm_templates.plugin as module

    compiled: list[tuple[str, str]] = []
    kept = module._compiled

    def counted(text: str, name: str, origin: str) -> object:
        compiled.append((name, origin.split("/")[2]))  # emrcomm_templates/templates/<lang>/...
        return kept(text, name, origin)

    monkeypatch.setattr(module, "_compiled", counted)
    plugin = Plugin(make_context("templates", {}, tmp_path))
    assert compiled == [] and "appointment-reminder" in plugin.template_names()
    assert plugin.describe("invoice")["languages"] == ["en", "fr"]  # listed without compiling
    assert compiled == []
    render(plugin, "portal-notice")
    assert compiled == [("portal-notice", "en")] * 2  # its text, then its subject
    render(plugin, "portal-notice")
    assert len(compiled) == 2


def test_missing_clinic_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not-there"):
        Plugin(make_context("templates", {"directory": "not-there"}, tmp_path))


def test_unknown_currency_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="XYZ"):
        Plugin(make_context("templates", {"currency": "XYZ"}, tmp_path))


@pytest.mark.parametrize("settings", [{"dirctory": "templates"}, {"currency": "cad"}, {"currency": "CADX"}])
def test_settings_schema_refuses_bad_settings(settings: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        validate(settings, Plugin.settings_schema, "emrcomm.toml", "plugins.templates")


def test_settings_schema_accepts_good_settings() -> None:
    validate({"directory": "templates", "currency": "CAD"}, Plugin.settings_schema, "emrcomm.toml", "plugins.templates")


# -- the sandbox -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ clinic.__class__.__subclasses__() }}",
        "{{ lipsum.__globals__['os'] }}",
        "{% set x = [] %}{{ x.append(1) }}",
    ],
)
def test_sandbox_stops_a_template_reaching_python_internals(tmp_path: Path, source: str) -> None:
    plugin = with_folder(tmp_path, {"en/escape.j2": source})
    with pytest.raises(RenderError) as caught:
        render(plugin, "escape")
    assert isinstance(caught.value.__cause__, SecurityError)
    assert "<class" not in str(caught.value) and "object at 0x" not in str(caught.value)


def test_templates_are_compiled_once_not_per_render(plugin: Plugin, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled during a render")

    for name in SHIPPED:  # the first render of a built-in compiles it
        render(plugin, name, REALISTIC.get(name, {}))
    monkeypatch.setattr(ImmutableSandboxedEnvironment, "compile", refuse)
    monkeypatch.setattr(ImmutableSandboxedEnvironment, "parse", refuse)
    for name in SHIPPED:
        render(plugin, name, REALISTIC.get(name, {}))
