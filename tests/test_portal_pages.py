"""What a patient reads on the portal's pages (issue 18): a landing page at / and /m/ for a patient
without a link; the clinician's name and the date on the message; the message again after
replying; the clinic's phone number as people write it, to tap; French typography; the same
reply turnaround in both languages."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Callable, Iterator

import pytest
import requests

from emrcomm import fhir
from emrcomm.host import Host
from emrcomm.model import Category, Request
from emrcomm.web import i18n
from portal_kit import BIRTH_DATE, NOTE, notice_for, running_server, send_note, token_in
from support import fhir_request

EN, FR = i18n.STRINGS["en"], i18n.STRINGS["fr"]
NNBSP = "\u202f"


@pytest.fixture
def served(make_host: Callable[..., Host]) -> Iterator[Callable[..., tuple[Host, str]]]:
    servers = []

    def start(extra: str = "", **kw: object) -> tuple[Host, str]:
        host = make_host(extra, **kw)
        server = running_server(host)
        servers.append(server)
        return host, server.__enter__()

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def text_of(response: requests.Response) -> str:
    """The page's words, as a reader gets them (tags out, entities decoded)."""
    body = response.text.split("<body>", 1)[-1]
    return html.unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", body)))


def opened(base: str, host: Host, rid: str = "note-1", lang: str = "", **kw: object) -> requests.Response:
    outcome = send_note(host, rid, **kw)  # type: ignore[arg-type]
    token = token_in(notice_for(host, outcome)["text"])
    return requests.post(f"{base}/m/{token}/open", data={"day": str(BIRTH_DATE.day), "month": str(BIRTH_DATE.month),
                                                          "year": str(BIRTH_DATE.year), "lang": lang}, timeout=10)


def session_of(response: requests.Response) -> str:
    return re.search(r'name="session" value="([^"]+)"', response.text).group(1)  # type: ignore[union-attr]


# the landing page ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/m/"])
def test_a_patient_without_a_link_learns_how_to_open_a_message_and_whom_to_call(
        served: Callable[..., tuple[Host, str]], path: str) -> None:
    _, base = served()
    page = requests.get(base + path, timeout=10)
    assert page.status_code == 200
    words = text_of(page)
    assert EN["home_title"].format(clinic="Riverside Family Health") in words
    assert EN["home_step_link"] in words and EN["home_once"] in words
    assert '<a class="tel" href="tel:+16135550100">613-555-0100</a>' in page.text
    assert "within two business days" in words and "911" in words


def test_the_landing_page_speaks_french_when_asked_or_when_the_browser_does(
        served: Callable[..., tuple[Host, str]]) -> None:
    _, base = served()
    for page in (requests.get(f"{base}/?lang=fr", timeout=10),
                 requests.get(f"{base}/", headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"}, timeout=10)):
        assert 'lang="fr"' in page.text
        words = text_of(page)
        assert FR["home_title"].format(clinic="Riverside Family Health") in words
        assert '<a class="tel" href="tel:+16135550100">613 555-0100</a>' in page.text
        assert "dans un délai de deux jours ouvrables" in words


@pytest.mark.parametrize(("accept", "lang"), [
    ("en;q=0.3, fr;q=0.9", "fr"),  # by q-value, not by the order written
    ("fr;q=0, en-CA", "en"),  # q=0: not French
    ("de, fr-CA;q=0.8, en;q=0.5", "fr"),  # the first the pages speak, by preference
    ("fr;q=nan, en;q=0.1", "en"), ("fr;q=x", "en"), ("", "en")])
def test_the_browsers_preferred_language_is_taken_by_its_q_values(
        served: Callable[..., tuple[Host, str]], accept: str, lang: str) -> None:
    _, base = served()
    page = requests.get(f"{base}/", headers={"Accept-Language": accept}, timeout=10)
    assert page.status_code == 200 and f'lang="{lang}"' in page.text


@pytest.mark.parametrize(("title", "plain", "named"), [
    ("Résultats d'analyse.pdf", "Resultats d_analyse.pdf", "R%C3%A9sultats%20d_analyse.pdf"),
    ("../../etc/passwd", "etc_passwd.pdf", "etc_passwd.pdf"),
    ("lab\u202ereport", "lab_report.pdf", "lab_report.pdf"),
    ("血液検査", "attachment.pdf", "%E8%A1%80%E6%B6%B2%E6%A4%9C%E6%9F%BB.pdf")])
def test_a_download_keeps_its_accented_name_and_never_a_path(
        served: Callable[..., tuple[Host, str]], title: str, plain: str, named: str) -> None:
    from emrcomm.model import Attachment

    host, base = served()
    page = opened(base, host, attachments=(Attachment("application/pdf", b"%PDF-1.4\n%%EOF\n", title),))
    answer = requests.post(f"{base}/m/-/attachment", data={"session": session_of(page), "index": "0"}, timeout=10)
    assert answer.status_code == 200 and answer.content == b"%PDF-1.4\n%%EOF\n"
    assert answer.headers["content-disposition"] == f"attachment; filename=\"{plain}\"; filename*=UTF-8''{named}"


@pytest.mark.parametrize("index", ["1", "-1", "one", "99999", ""])
@pytest.mark.parametrize(("lang", "t"), [("", EN), ("fr", FR)])
def test_an_attachment_that_is_not_in_the_message_is_not_found_in_the_patients_language(
        served: Callable[..., tuple[Host, str]], index: str, lang: str, t: dict[str, str]) -> None:
    # The reading session is good: the page has not expired, the attachment is not there.
    from emrcomm.model import Attachment

    host, base = served()
    page = opened(base, host, lang=lang, attachments=(Attachment("application/pdf", b"%PDF-1.4\n%%EOF\n", "lab.pdf"),))
    answer = requests.post(f"{base}/m/-/attachment", data={"session": session_of(page), "index": index, "lang": lang},
                           timeout=10)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert t["problem_attachment_title"] in text_of(answer) and EN["problem_session_title"] not in text_of(answer)
    assert f'<html lang="{lang or "en"}">' in answer.text and "%PDF" not in answer.text


def test_an_attachment_asked_for_without_a_language_is_not_found_in_the_messages_language(
        served: Callable[..., tuple[Host, str]]) -> None:
    from emrcomm.model import Attachment

    host, base = served()
    page = opened(base, host, patient="Patient/qc-fr", text="Votre glycémie à jeun est de 7,9 mmol/L.",
                  attachments=(Attachment("application/pdf", b"%PDF-1.4\n%%EOF\n", "labo.pdf"),))
    answer = requests.post(f"{base}/m/-/attachment", data={"session": session_of(page), "index": "2"}, timeout=10)
    assert answer.status_code == 404 and FR["problem_attachment_title"] in text_of(answer)


# the message -----------------------------------------------------------------------------------
def test_the_message_shows_the_clinicians_name_and_the_date(served: Callable[..., tuple[Host, str]]) -> None:
    host, base = served()
    page = opened(base, host, sender="Practitioner/dr-osei", sender_name="Dr. Amara Osei")
    words = text_of(page)
    assert "From Dr. Amara Osei, Riverside Family Health" in words
    assert "Sent on November 23, 2026" in words


def test_a_french_message_dates_itself_in_french_in_the_patients_time_zone(
        served: Callable[..., tuple[Host, str]], clock) -> None:  # type: ignore[no-untyped-def]
    host, base = served()
    clock.now = dt.datetime(2026, 11, 24, 0, 30, tzinfo=dt.UTC)  # 19:30 on the 23rd in Montreal
    page = opened(base, host, patient="Patient/qc-fr", text="Votre glycémie à jeun est de 7,9 mmol/L.",
                  sender_name="Dre Chloé Tremblay")
    words = text_of(page)
    assert "De Dre Chloé Tremblay, Riverside Family Health" in words
    assert "Envoyé le 23 novembre 2026" in words


def test_a_message_sent_on_the_first_of_the_month_is_dated_1er_in_french() -> None:
    assert i18n.long_date(dt.date(2026, 3, 1), "fr") == "1er mars 2026"
    assert i18n.long_date(dt.date(2026, 3, 11), "fr") == "11 mars 2026"
    assert i18n.long_date(dt.date(2026, 3, 1), "en") == "March 1, 2026"


def test_a_note_without_a_named_sender_is_from_the_clinic(served: Callable[..., tuple[Host, str]]) -> None:
    host, base = served()
    words = text_of(opened(base, host))
    assert "From Riverside Family Health Sent on November 23, 2026" in words


def test_the_requesters_name_travels_from_fhir_to_the_chart(host: Host) -> None:
    request = fhir_request("Patient/on-en", "results-available", text=NOTE, rid="note-fhir",
                           requester={"reference": "Practitioner/dr-osei", "display": "Dr. Amara Osei"})
    parsed = fhir.parse_request(json.dumps(request))
    assert (parsed.sender, parsed.sender_name) == ("Practitioner/dr-osei", "Dr. Amara Osei")
    outcome = host.send(parsed)
    record = host.record(outcome.record_ids[0])
    assert record is not None
    assert fhir.communication(record)["sender"] == {"reference": "Practitioner/dr-osei", "display": "Dr. Amara Osei"}


def test_a_message_the_worker_delivers_keeps_the_clinicians_name_and_date(make_host: Callable[..., Host]) -> None:
    from emrcomm.outbox.worker import Worker

    host = make_host('\n[delivery]\nmode = "queue"\n')
    outcome = send_note(host, sender_name="Dr. Amara Osei")
    Worker(host).run(once=True)
    visit = host.plugins.get("portal").service.verify(token_in(notice_for(host, outcome)["text"]), BIRTH_DATE)
    assert visit.opened is not None
    assert (visit.opened.sender, visit.opened.sent_on("America/Toronto")) == ("Dr. Amara Osei", dt.date(2026, 11, 23))


# after the reply -------------------------------------------------------------------------------
def test_after_replying_the_patient_reads_the_message_again(served: Callable[..., tuple[Host, str]]) -> None:
    host, base = served()
    page = opened(base, host, sender_name="Dr. Amara Osei")
    session = session_of(page)
    replied = requests.post(f"{base}/m/-/reply", data={"session": session, "text": "Should I take it with food?",
                                                       "lang": "en"}, timeout=10)
    words = text_of(replied)
    assert EN["replied_title"] in words and "Should I take it with food?" in words
    assert NOTE in words and "From Dr. Amara Osei, Riverside Family Health" in words
    # in the other language too, within the session
    again = text_of(requests.post(f"{base}/m/-/view", data={"session": session, "lang": "fr", "page": "replied"},
                                  timeout=10))
    assert NOTE in again and FR["replied_message"] in again
    assert FR["replied_yours"] + " Should I take it with food?" in again
    # and the message page itself keeps both, without a second reply form
    message = requests.post(f"{base}/m/-/view", data={"session": session, "lang": "en"}, timeout=10)
    assert NOTE in text_of(message) and 'action="/m/-/reply"' not in message.text


def test_the_message_is_not_shown_again_once_the_reading_session_is_over(
        served: Callable[..., tuple[Host, str]], clock) -> None:  # type: ignore[no-untyped-def]
    host, base = served()
    session = session_of(opened(base, host))
    requests.post(f"{base}/m/-/reply", data={"session": session, "text": "Thanks", "lang": "en"}, timeout=10)
    clock.now += dt.timedelta(minutes=31)
    again = requests.post(f"{base}/m/-/view", data={"session": session, "lang": "en", "page": "replied"}, timeout=10)
    assert again.status_code == 410 and NOTE not in again.text and "Thanks" not in again.text


# turnaround ------------------------------------------------------------------------------------
def test_both_languages_promise_the_same_turnaround(served: Callable[..., tuple[Host, str]]) -> None:
    host, base = served()
    en = text_of(opened(base, host, "note-en"))
    fr = text_of(opened(base, host, "note-fr", lang="fr"))
    assert EN["reply_hint"].format(turnaround="two business days") in en
    assert FR["reply_hint"].format(turnaround="deux jours ouvrables") in fr


def test_a_turnaround_given_in_one_language_only_is_promised_in_neither(
        served: Callable[..., tuple[Host, str]]) -> None:
    from support import BASE_CONFIG

    host, base = served(config_text=BASE_CONFIG.replace('turnaround_fr = "deux jours ouvrables"\n', ""))
    assert host.config.clinic.turnaround and not host.config.clinic.turnaround_fr
    en = text_of(opened(base, host, "note-en"))
    fr = text_of(opened(base, host, "note-fr", lang="fr"))
    assert EN["reply_hint_plain"] in en and FR["reply_hint_plain"] in fr
    assert "two business days" not in en + fr


# typography and phone numbers ----------------------------------------------------------------------
FRENCH_PUNCTUATION = re.compile(r"(.)([?!:;])")


def bad_french_spacing(text: str) -> list[str]:
    """Each ? ! : ; not preceded by a narrow no-break space (links and times aside)."""
    found = []
    for match in FRENCH_PUNCTUATION.finditer(text):
        before, mark = match.groups()
        after = text[match.end():match.end() + 2]
        if mark == ":" and (after.startswith("//") or before.isdigit()):
            continue  # https://, 10:30
        if before != NNBSP:
            found.append(text[max(0, match.start() - 20):match.end() + 5])
    return found


def test_every_french_string_puts_a_narrow_no_break_space_before_double_punctuation() -> None:
    assert {k: bad_french_spacing(v) for k, v in FR.items() if bad_french_spacing(v)} == {}
    assert "5\u202f000" in FR["error_too_long"]


def test_the_french_pages_keep_the_typography(served: Callable[..., tuple[Host, str]]) -> None:
    host, base = served()
    pages = [requests.get(f"{base}/?lang=fr", timeout=10),
             opened(base, host, patient="Patient/qc-fr", text="Votre glycémie à jeun est de 7,9 mmol/L.")]
    for page in pages:
        words = text_of(page).replace("Votre glycémie à jeun est de 7,9 mmol/L.", "")
        assert bad_french_spacing(words) == [], words


@pytest.mark.parametrize(("number", "en", "fr", "href"), [
    ("+1 613 555 0100", "613-555-0100", "613 555-0100", "tel:+16135550100"),
    ("(613) 555-0100", "613-555-0100", "613 555-0100", "tel:+16135550100"),
    ("+1 800 555 0199", "1-800-555-0199", "1 800 555-0199", "tel:+18005550199"),
    ("+33 1 42 68 53 00", "+33 1 42 68 53 00", "+33 1 42 68 53 00", "tel:+33142685300"),
    ("call the front desk", "call the front desk", "call the front desk", None),
])
def test_phone_numbers_are_written_as_people_write_them_and_dialled_in_full(
        number: str, en: str, fr: str, href: str | None) -> None:
    assert (i18n.phone_display(number, "en"), i18n.phone_display(number, "fr"), i18n.phone_href(number)) == \
        (en, fr, href)


def test_the_chart_keeps_the_clinicians_name_with_the_request(host: Host) -> None:
    outcome = host.send(Request("Patient/on-en", Category.RESULTS_AVAILABLE, id="n-1", text=NOTE,
                                sender_name="Dr. Amara Osei"))
    facts = host.storage.records.facts(outcome.record_ids[0])
    assert facts is not None and facts.request.sender_name == "Dr. Amara Osei"
