"""The portal's patient pages over HTTP, served by uvicorn on 127.0.0.1 (``emrcomm serve``'s app):
the confirm step, the date-of-birth check and its lockout, single use, expiry, recall, replies,
the language switch, security headers, rate limits and logs without secrets."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser

import pytest
import requests

from emrcomm.host import Host
from emrcomm.web import i18n
from portal_kit import (
    BIRTH_DATE,
    NOTE,
    NOTE_WORDS,
    WRONG_DATE,
    messages,
    notice_for,
    running_server,
    send_note,
    token_in,
)
from support import communication

EN, FR = i18n.STRINGS["en"], i18n.STRINGS["fr"]


class Portal:
    """A patient's browser without the browser: a session against the running server."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kw: object) -> requests.Response:
        return self.http.get(self.base + path, timeout=10, **kw)  # type: ignore[arg-type]

    def post(self, path: str, data: dict[str, str], **kw: object) -> requests.Response:
        return self.http.post(self.base + path, data=data, timeout=10, **kw)  # type: ignore[arg-type]

    def answer(self, token: str, date: dt.date, lang: str = "") -> requests.Response:
        return self.post(f"/m/{token}/open", {"day": str(date.day), "month": str(date.month),
                                              "year": str(date.year), "lang": lang})


@pytest.fixture
def served(make_host: Callable[..., Host]) -> Iterator[Callable[..., tuple[Host, Portal]]]:
    servers = []

    def start(extra: str = "") -> tuple[Host, Portal]:
        host = make_host(extra)
        server = running_server(host)
        base = server.__enter__()
        servers.append(server)
        return host, Portal(base)

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def sent_token(host: Host, rid: str = "note-1", **kw: object) -> tuple[str, str]:
    """(token, record id of the portal message) for a note sent now."""
    outcome = send_note(host, rid, **kw)  # type: ignore[arg-type]
    assert outcome.channels[0] == "portal"
    return token_in(notice_for(host, outcome)["text"]), outcome.record_ids[0]


def title(response: requests.Response) -> str:
    match = re.search(r"<h1>(.*?)</h1>", response.text, re.S)
    assert match, response.text[:300]
    return match.group(1).strip().replace("&#39;", "'")


def session_of(response: requests.Response) -> str:
    return re.search(r'name="session" value="([^"]+)"', response.text).group(1)  # type: ignore[union-attr]


# the confirm step and the identity check -----------------------------------------------------------
def test_opening_the_link_shows_a_confirm_page_and_uses_nothing_up(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, record = sent_token(host)
    for _ in range(3):  # a mail scanner, a preview, the patient
        page = portal.get(f"/m/{token}")
        assert page.status_code == 200 and title(page) == EN["confirm_title"]
    assert all(word not in page.text for word in NOTE_WORDS)
    assert messages(host).get(record)["state"] == "unread"
    assert "received" not in communication(host, record)


def test_continue_asks_for_the_date_of_birth(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host)
    page = portal.post(f"/m/{token}", {"lang": "en"})
    assert page.status_code == 200 and title(page) == EN["identity_title"]
    for field in ("dob-day", "dob-month", "dob-year"):
        assert f'<label for="{field}">' in page.text and f'id="{field}"' in page.text
    assert all(word not in page.text for word in NOTE_WORDS)


def test_the_right_date_of_birth_opens_the_message_and_marks_it_received(
        served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, record = sent_token(host)
    page = portal.answer(token, BIRTH_DATE)
    assert page.status_code == 200
    assert "HbA1c is 8.1%" in page.text and "metformin" in page.text
    assert communication(host, record)["received"].startswith("2026-11-23")
    assert messages(host).get(record)["state"] == "read"


def test_the_second_use_of_a_link_fails(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host)
    assert portal.answer(token, BIRTH_DATE).status_code == 200
    again = portal.answer(token, BIRTH_DATE)
    assert again.status_code == 410 and title(again) == EN["problem_used_title"]
    assert "metformin" not in again.text
    assert title(portal.get(f"/m/{token}")) == EN["problem_used_title"]


def test_a_wrong_date_says_how_many_tries_are_left(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, record = sent_token(host)
    page = portal.answer(token, WRONG_DATE)
    assert page.status_code == 400 and EN["error_wrong"].format(left=4) in page.text
    assert "metformin" not in page.text and messages(host).get(record)["attempts"] == 1


def test_four_wrong_answers_then_the_right_one_opens(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host)
    for _ in range(4):
        assert portal.answer(token, WRONG_DATE).status_code == 400
    assert "metformin" in portal.answer(token, BIRTH_DATE).text


def test_the_sixth_answer_is_refused_even_when_right(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, record = sent_token(host)
    answers = [portal.answer(token, WRONG_DATE) for _ in range(5)]
    assert [a.status_code for a in answers] == [400, 400, 400, 400, 403]
    assert title(answers[-1]) == EN["problem_locked_title"]
    sixth = portal.answer(token, BIRTH_DATE)
    assert sixth.status_code == 403 and title(sixth) == EN["problem_locked_title"]
    assert "metformin" not in sixth.text and "received" not in communication(host, record)
    [item] = host.storage.inbox.items()
    assert item["kind"] == "link-locked" and item["priority"] == "urgent" and item["record_id"] == record


def test_a_date_that_is_not_a_date_is_not_counted(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, record = sent_token(host)
    page = portal.post(f"/m/{token}/open", {"day": "31", "month": "2", "year": "1980"})
    assert page.status_code == 400 and EN["error_invalid"] in page.text
    assert messages(host).get(record)["attempts"] == 0


# expiry and recall ---------------------------------------------------------------------------------
def test_an_expired_link_is_refused(served: Callable[..., tuple[Host, Portal]], clock) -> None:  # type: ignore[no-untyped-def]
    host, portal = served()
    token, record = sent_token(host)
    clock.now += dt.timedelta(days=7, seconds=1)
    page = portal.answer(token, BIRTH_DATE)
    assert page.status_code == 410 and title(page) == EN["problem_expired_title"]
    assert "metformin" not in page.text
    assert messages(host).get(record)["state"] == "expired"
    assert any("expired unread" in n["text"] for n in communication(host, record)["note"])
    assert [i["kind"] for i in host.storage.inbox.items()] == ["expired-unread"]


def test_a_link_still_opens_just_before_it_expires(served: Callable[..., tuple[Host, Portal]], clock) -> None:  # type: ignore[no-untyped-def]
    host, portal = served()
    token, _ = sent_token(host)
    clock.now += dt.timedelta(days=7, seconds=-1)
    assert "metformin" in portal.answer(token, BIRTH_DATE).text


def test_link_lifetime_is_configurable(served: Callable[..., tuple[Host, Portal]], clock) -> None:  # type: ignore[no-untyped-def]
    host, portal = served("link_days = 1\n")  # appended to [plugins.portal], the config's last table
    token, _ = sent_token(host)
    clock.now += dt.timedelta(days=1, seconds=1)
    assert title(portal.get(f"/m/{token}")) == EN["problem_expired_title"]


def test_a_recalled_message_is_no_longer_available(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, record = sent_token(host)
    assert host.plugins.get("portal").service.recall("note-1", "sent to the wrong patient") == "recalled"
    page = portal.get(f"/m/{token}")
    assert page.status_code == 410 and title(page) == EN["problem_recalled_title"]
    assert portal.answer(token, BIRTH_DATE).status_code == 410
    resource = communication(host, record)
    assert resource["status"] == "stopped" and resource["statusReason"]["coding"][0]["code"] == "RECALLED"


# replies -------------------------------------------------------------------------------------------
def test_a_reply_is_filed_in_response_to_the_message_and_reaches_the_inbox(
        served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, record = sent_token(host)
    session = session_of(portal.answer(token, BIRTH_DATE))
    text = "Thank you. Can the pharmacy refill my prescription before Friday?"
    page = portal.post("/m/-/reply", {"session": session, "text": text, "lang": "en"})
    assert page.status_code == 200 and title(page) == EN["replied_title"]
    [item] = host.storage.inbox.items()
    assert item["kind"] == "reply" and "medication" in item["keywords"] and item["priority"] == "routine"
    reply = communication(host, item["record_id"])
    assert reply["inResponseTo"] == [{"reference": f"Communication/{record}"}]
    assert reply["sender"] == {"reference": "Patient/on-en"}
    assert "contentString" not in str(reply["payload"])
    portal_reply = host.channels["portal"].transport.read(item["message_id"])
    assert portal_reply["text"] == text


def test_an_urgent_reply_is_triaged_first(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host)
    session = session_of(portal.answer(token, BIRTH_DATE))
    portal.post("/m/-/reply", {"session": session, "text": "J'ai une douleur thoracique depuis ce matin."})
    [item] = host.storage.inbox.items()
    assert item["priority"] == "urgent" and item["keywords"][0] == "urgent"


def test_one_reply_per_reading(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host)
    session = session_of(portal.answer(token, BIRTH_DATE))
    portal.post("/m/-/reply", {"session": session, "text": "First."})
    second = portal.post("/m/-/reply", {"session": session, "text": "Second."})
    assert EN["replied_already"] in second.text.replace("&#39;", "'")
    assert len(host.storage.inbox.items()) == 1


def test_an_empty_reply_shows_the_message_again_with_an_error(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host)
    session = session_of(portal.answer(token, BIRTH_DATE))
    page = portal.post("/m/-/reply", {"session": session, "text": "   "})
    assert page.status_code == 400 and EN["error_empty"] in page.text and "metformin" in page.text
    assert host.storage.inbox.items() == []


def test_a_reply_of_5000_characters_with_line_breaks_is_taken_as_the_form_counted_it(
        served: Callable[..., tuple[Host, Portal]]) -> None:
    """The reply box stops at maxlength=5000, counting a line break as one character, but the
    browser posts each line break as CR LF: the server must count as the box did."""
    host, portal = served()
    token, _ = sent_token(host)
    session = session_of(portal.answer(token, BIRTH_DATE))
    lines = ["Is the new dose taken with food?"] * 150
    text = "\n".join(lines)
    text += "x" * (5000 - len(text))
    posted = text.replace("\n", "\r\n")  # what a browser sends for that box
    assert len(text) == 5000 and len(posted) > 5000
    page = portal.post("/m/-/reply", {"session": session, "text": posted})
    assert page.status_code == 200 and title(page) == EN["replied_title"]
    [item] = host.storage.inbox.items()
    assert host.channels["portal"].transport.read(item["message_id"])["text"] == text


def test_a_reply_after_the_session_ends_is_refused(served: Callable[..., tuple[Host, Portal]], clock) -> None:  # type: ignore[no-untyped-def]
    host, portal = served()
    token, _ = sent_token(host)
    session = session_of(portal.answer(token, BIRTH_DATE))
    clock.now += dt.timedelta(minutes=31)
    page = portal.post("/m/-/reply", {"session": session, "text": "Late."})
    assert page.status_code == 410 and title(page) == EN["problem_session_title"]


# languages -----------------------------------------------------------------------------------------
def test_a_french_patient_gets_french_pages_and_can_switch(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host, "note-fr", patient="Patient/qc-fr", text="Votre glycémie est élevée.")
    page = portal.get(f"/m/{token}")
    assert '<html lang="fr">' in page.text and title(page) == FR["confirm_title"]
    switched = portal.get(f"/m/{token}?lang=en")
    assert '<html lang="en">' in switched.text and title(switched) == EN["confirm_title"]
    opened = portal.answer(token, BIRTH_DATE, lang="fr")
    assert '<html lang="fr">' in opened.text and "Votre glycémie est élevée." in opened.text
    english = portal.post("/m/-/view", {"session": session_of(opened), "lang": "en"})
    assert '<html lang="en">' in english.text and "Votre glycémie est élevée." in english.text


def test_every_page_string_exists_in_both_languages() -> None:
    assert set(EN) == set(FR)
    assert all(FR[k] and FR[k] != EN[k] for k in EN if k not in ("language_name",))


# security ------------------------------------------------------------------------------------------
SECURE = {
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}


def test_every_response_carries_the_security_headers(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host)
    responses = [portal.get(f"/m/{token}"), portal.post(f"/m/{token}", {}), portal.answer(token, WRONG_DATE),
                 portal.get("/m/1" + "a" * 52), portal.get("/nowhere"), portal.get("/static/portal.css")]
    for response in responses:
        for name, value in SECURE.items():
            assert response.headers.get(name) == value, (response.url, name)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "script-src" not in csp  # no scripts at all: default-src 'none' covers them
        assert "server" not in response.headers


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "action") and value:
                self.urls.append(value)
            if tag == "script":
                self.urls.append("<script>")


def test_pages_use_no_scripts_and_nothing_from_elsewhere(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host)
    pages = [portal.get(f"/m/{token}"), portal.post(f"/m/{token}", {}), portal.answer(token, BIRTH_DATE)]
    parser = _Assets()
    for page in pages:
        parser.feed(page.text)
    assert parser.urls and "<script>" not in parser.urls
    # Every address is this site's, or the clinic's phone number to tap (a call, not a fetch).
    assert all(u.startswith(("/", "#", "?")) or u == "tel:+16135550100" for u in parser.urls), parser.urls


def test_the_stylesheet_is_served_from_the_package(served: Callable[..., tuple[Host, Portal]]) -> None:
    _, portal = served()
    css = portal.get("/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "@import" not in css.text and "url(" not in css.text


def test_a_post_from_another_site_is_refused(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, record = sent_token(host)
    page = portal.post(f"/m/{token}/open", {"day": "12", "month": "4", "year": "1980"},
                       headers={"Origin": "https://attacker.example"})
    assert page.status_code == 403 and messages(host).get(record)["state"] == "unread"


def test_a_post_from_the_portals_own_address_opens_behind_a_proxy_that_rewrites_host(
        served: Callable[..., tuple[Host, Portal]]) -> None:
    """A reverse proxy left at its default (nginx's proxy_pass, Apache's ProxyPass) sends the
    upstream's address as Host, not the portal's: a patient's browser posting from the portal's
    own pages (clinic.portal_url) must still get in, and another site must still not."""
    host, portal = served()
    token, record = sent_token(host)
    upstream = {"Host": "127.0.0.1:8000", "X-Forwarded-Proto": "https"}
    elsewhere = portal.post(f"/m/{token}/open", {"day": "12", "month": "4", "year": "1980"},
                            headers={**upstream, "Origin": "https://attacker.example"})
    assert elsewhere.status_code == 403
    lookalike = portal.post(f"/m/{token}/open", {"day": "12", "month": "4", "year": "1980"},
                            headers={**upstream, "Origin": "http://portal.riverside.example"})
    assert lookalike.status_code == 403 and messages(host).get(record)["state"] == "unread"
    page = portal.post(f"/m/{token}/open", {"day": "12", "month": "4", "year": "1980"},
                       headers={**upstream, "Origin": "https://portal.riverside.example",
                                "Sec-Fetch-Site": "same-origin"})
    assert page.status_code == 200 and messages(host).get(record)["state"] == "read"


def test_an_oversized_body_is_refused(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served()
    token, _ = sent_token(host)
    assert portal.post(f"/m/{token}/open", {"day": "1" * 70_000}).status_code == 413


def test_too_many_requests_from_one_address_get_429(served: Callable[..., tuple[Host, Portal]]) -> None:
    host, portal = served("rate_limit_per_minute = 3\n")
    token, _ = sent_token(host)
    statuses = [portal.get(f"/m/{token}").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = portal.get(f"/m/{token}")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert portal.get("/healthz").status_code == 200  # the limit is the portal pages'


def test_logs_carry_ids_never_tokens_text_numbers_or_birth_dates(
        served: Callable[..., tuple[Host, Portal]], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    host, portal = served()
    token, record = sent_token(host)
    portal.get(f"/m/{token}")
    portal.answer(token, WRONG_DATE)
    session = session_of(portal.answer(token, BIRTH_DATE))
    portal.post("/m/-/reply", {"session": session, "text": "My pharmacy is closed on Sunday."})
    # What the server side logs (the test's own HTTP client logs its URLs, as a browser's history would).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("emrcomm", "uvicorn")))
    assert record in logged  # ids are logged
    for secret in (token, session, *NOTE_WORDS, NOTE, "pharmacy is closed", "+16135550123", "1980", "04-12"):
        assert secret not in logged, secret
