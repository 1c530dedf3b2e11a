"""The portal end to end in a real browser: Debian's Chromium, headless, driven by playwright,
against ``emrcomm serve``'s app on 127.0.0.1. A clinician's result note is refused on SMS and
goes to the portal; the patient opens the SMS notice's link, confirms, gives their date of birth,
reads, replies; the link then fails; a recalled message, an expired link and a locked link say
so. Every page, the landing page and the staff pages too, at a phone's width (375 px) and a
desktop's (1280 px): no sideways scroll, no text under 16 px, fields and buttons at least 44 px
high. Screenshots go to tests/artifacts/portal/ (set EMRCOMM_DOC_SCREENSHOTS=1 to refresh the
ones docs/portal.md shows).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emrcomm.host import Host
from emrcomm.model import Message, Request, Status
from emrcomm.web import i18n
from portal_kit import (
    BIRTH_DATE,
    NOTE,
    NOTE_WORDS,
    PORTAL_URL,
    WRONG_DATE,
    link_in,
    notice_for,
    running_server,
    send_note,
)
from servers import Process, free_port, serve_ready, start_retrying
from support import REPO, communication
from test_hostile_flood import EMRCOMM

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = REPO / "tests" / "artifacts" / "portal"
DOC_IMAGES = REPO / "docs" / "images" / "portal"
# The screenshots docs/portal.md shows.
FOR_DOCS = ("00-landing", "01-sms-notice-confirm", "02-date-of-birth", "03-message", "04-replied", "05-link-used",
            "06-recalled", "08-locked", "09-french")
EN, FR = i18n.STRINGS["en"], i18n.STRINGS["fr"]

from playwright import sync_api  # noqa: E402 - a test dependency (the chromium marker covers the browser)

pytestmark = pytest.mark.chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 820, "height": 900}, locale="en-CA")
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def site(host: Host) -> Iterator[str]:
    with running_server(host) as base:
        yield base


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    if os.environ.get("EMRCOMM_DOC_SCREENSHOTS") and name in FOR_DOCS:
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_IMAGES / path.name)


def local(link: str, base: str) -> str:
    """The notice's public link, served here: the reverse proxy's job in production."""
    assert link.startswith(PORTAL_URL + "/m/")
    return base + link.removeprefix(PORTAL_URL)


def give_birth_date(page: Any, date: dt.date, t: dict[str, str] = EN) -> None:  # type: ignore[assignment]
    page.get_by_label(t["day"], exact=True).fill(str(date.day))
    page.get_by_label(t["month"], exact=True).fill(str(date.month))
    page.get_by_label(t["year"], exact=True).fill(str(date.year))
    with page.expect_navigation():
        page.get_by_role("button", name=t["open"]).click()


def heading(page: Any) -> str:
    return str(page.get_by_role("heading", level=1).inner_text()).strip()


def contrast(page: Any, selector: str) -> float:
    """WCAG contrast ratio of an element's text against its background (computed styles)."""
    colours = page.eval_on_selector(selector, """el => {
        const bg = e => { const c = getComputedStyle(e).backgroundColor;
                          return (c === 'rgba(0, 0, 0, 0)' && e.parentElement) ? bg(e.parentElement) : c; };
        return [getComputedStyle(el).color, bg(el)]; }""")

    def luminance(css: str) -> float:
        r, g, b = (int(float(v)) / 255 for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(colours[0]), luminance(colours[1])), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_a_result_note_reaches_the_patient_through_the_portal(host: Host, site: str, page: Any) -> None:
    # the portal's own address, typed: how to open a message
    page.goto(site + "/")
    assert heading(page) == EN["home_title"].format(clinic="Riverside Family Health")
    shot(page, "00-landing")

    outcome = send_note(host, sender_name="Dr. Amara Osei")
    # refused on SMS (and email), carried by the portal with an SMS notice
    assert outcome.status is Status.SENT and outcome.channels == ("portal", "sms")
    assert any(line.startswith("sms: rejected") and "CLINICAL_CONTENT" in line for line in outcome.explanation)
    notice = notice_for(host, outcome)["text"]
    assert all(word not in notice for word in NOTE_WORDS)
    facts = host.plugins.inspect(Message(Request("Patient/on-en", "results-available", text=notice), notice))
    assert not [f for f in facts if f.code in ("CLINICAL_CONTENT", "HEALTH_IDENTIFIER")]
    link = local(link_in(notice), site)

    # the link: a confirm page, reached and passed with the keyboard alone
    page.goto(link)
    assert heading(page) == EN["confirm_title"]
    assert all(word not in page.content() for word in NOTE_WORDS)
    shot(page, "01-sms-notice-confirm")
    assert contrast(page, "main p") >= 7 and contrast(page, "button.button") >= 4.5
    continue_button = page.get_by_role("button", name=EN["continue"])
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == EN["continue"]:
            break
    # Each step is a form post: wait for the new page, or the old heading may still be read.
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert continue_button.count() == 0 and heading(page) == EN["identity_title"]

    # the date of birth, through labelled fields
    shot(page, "02-date-of-birth")
    give_birth_date(page, BIRTH_DATE)
    assert page.get_by_role("article").inner_text().strip() == NOTE
    assert page.get_by_text("From Dr. Amara Osei, Riverside Family Health").is_visible()
    assert communication(host, outcome.record_ids[0])["received"]
    shot(page, "03-message")

    # the reply
    page.get_by_label(EN["reply_label"]).fill("Thank you. Should I also stop my evening snack?")
    with page.expect_navigation():
        page.get_by_role("button", name=EN["send_reply"]).click()
    assert heading(page) == EN["replied_title"]
    assert page.get_by_role("article").inner_text().strip() == NOTE  # to read again
    shot(page, "04-replied")
    [item] = host.storage.inbox.items()
    reply = communication(host, item["record_id"])
    assert reply["inResponseTo"] == [{"reference": f"Communication/{outcome.record_ids[0]}"}]

    # the second use of the link fails
    page.goto(link)
    assert heading(page) == EN["problem_used_title"]
    assert "metformin" not in page.content()
    shot(page, "05-link-used")


def test_a_recalled_message_says_it_is_no_longer_available(host: Host, site: str, page: Any) -> None:
    outcome = send_note(host, "note-recalled")
    link = local(link_in(notice_for(host, outcome)["text"]), site)
    assert host.plugins.get("portal").service.recall("note-recalled") == "recalled"
    page.goto(link)
    assert heading(page) == EN["problem_recalled_title"]
    assert page.get_by_text(EN["problem_recalled"]).is_visible()
    shot(page, "06-recalled")


def test_an_expired_link_is_refused(host: Host, site: str, page: Any, clock) -> None:  # type: ignore[no-untyped-def]
    outcome = send_note(host, "note-expired")
    link = local(link_in(notice_for(host, outcome)["text"]), site)
    clock.now += dt.timedelta(days=8)
    page.goto(link)
    assert heading(page) == EN["problem_expired_title"]
    shot(page, "07-expired")


def test_the_sixth_date_of_birth_is_refused_even_when_right(host: Host, site: str, page: Any) -> None:
    outcome = send_note(host, "note-locked")
    link = local(link_in(notice_for(host, outcome)["text"]), site)
    page.goto(link)
    with page.expect_navigation():
        page.get_by_role("button", name=EN["continue"]).click()
    for left in (4, 3, 2, 1):
        give_birth_date(page, WRONG_DATE)
        assert page.get_by_role("alert").inner_text().count(EN["error_wrong"].format(left=left)) == 1
    shot(page, "08a-wrong-date")
    give_birth_date(page, WRONG_DATE)  # the fifth wrong answer locks the link
    assert heading(page) == EN["problem_locked_title"]
    page.goto(link)
    assert heading(page) == EN["problem_locked_title"]  # no form to fill any more...
    response = page.request.post(f"{link}/open", form={"day": str(BIRTH_DATE.day), "month": str(BIRTH_DATE.month),
                                                      "year": str(BIRTH_DATE.year)})
    assert response.status == 403 and "metformin" not in response.text()  # ...and the right answer is refused
    shot(page, "08-locked")
    assert "received" not in communication(host, outcome.record_ids[0])


def test_a_french_patient_reads_in_french_and_can_switch(host: Host, site: str, page: Any) -> None:
    outcome = send_note(host, "note-fr", patient="Patient/qc-fr", text="Votre glycémie à jeun est de 7,9 mmol/L.")
    link = local(link_in(notice_for(host, outcome)["text"]), site)
    page.goto(link)
    assert heading(page) == FR["confirm_title"] and page.locator("html").get_attribute("lang") == "fr"
    with page.expect_navigation():
        page.get_by_role("navigation").get_by_role("link", name="English").click()
    assert heading(page) == EN["confirm_title"]
    with page.expect_navigation():
        page.get_by_role("navigation").get_by_role("link", name="Français").click()
    with page.expect_navigation():
        page.get_by_role("button", name=FR["continue"]).click()
    give_birth_date(page, BIRTH_DATE, FR)
    assert "7,9 mmol/L" in page.get_by_role("article").inner_text()
    shot(page, "09-french")


def test_switching_language_on_the_date_of_birth_page_stays_on_it(host: Host, site: str, page: Any) -> None:
    # One click: the same step in the other language, not the confirm step again to pass once more.
    outcome = send_note(host, "note-switch", patient="Patient/qc-fr", text="Votre glycémie à jeun est de 7,9 mmol/L.")
    page.goto(local(link_in(notice_for(host, outcome)["text"]), site))
    with page.expect_navigation():
        page.get_by_role("button", name=FR["continue"]).click()
    assert heading(page) == FR["identity_title"]
    with page.expect_navigation():
        page.get_by_role("navigation").get_by_text("English", exact=True).click()
    assert heading(page) == EN["identity_title"] and page.locator("html").get_attribute("lang") == "en"
    give_birth_date(page, WRONG_DATE)  # a wrong answer, then the switch back: still this step
    with page.expect_navigation():
        page.get_by_role("navigation").get_by_text("Français", exact=True).click()
    assert heading(page) == FR["identity_title"]
    give_birth_date(page, BIRTH_DATE, FR)
    assert "7,9 mmol/L" in page.get_by_role("article").inner_text()
    assert page.locator("html").get_attribute("lang") == "fr"


# Layout at a phone's width and a desktop's: every page is kept in tests/artifacts/portal/phone and
# tests/artifacts/portal/desktop ----------------------------------------------------------------------
VIEWPORTS = {"phone": {"width": 375, "height": 812}, "desktop": {"width": 1280, "height": 900}}
STAFF_PASSWORD = "correct horse battery staple"

LAYOUT = """() => {
    const visible = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
                            return r.width > 0 && r.height > 0 && s.visibility !== 'hidden'
                                   && r.right > 0 && r.left < window.innerWidth; };
    const small = [];
    for (const el of document.querySelectorAll('body *')) {
        const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
        if (own && visible(el) && parseFloat(getComputedStyle(el).fontSize) < 16)
            small.push(el.tagName + ' ' + getComputedStyle(el).fontSize + ' ' + el.textContent.trim().slice(0, 30));
    }
    const targets = [...document.querySelectorAll('main button, main input:not([type=hidden]), main textarea')]
        .filter(visible).map(el => [el.tagName + ' ' + (el.textContent || el.name).trim().slice(0, 20),
                                    el.getBoundingClientRect().height]);
    return {scroll: document.documentElement.scrollWidth - window.innerWidth, small: small, targets: targets,
            body: parseFloat(getComputedStyle(document.body).fontSize)};
}"""


@pytest.fixture
def serve(host: Host, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`emrcomm serve` as its own process on 127.0.0.1, on the store the test's host writes (its
    clock the test's EMRCOMM_CLOCK); yields its address and its log; stopped by its PID."""
    log = tmp_path / "serve.log"

    def start() -> tuple[Process, int]:
        port = free_port()
        process = Process([EMRCOMM, "serve", "--config", host.config.source, "--port", str(port)], log)
        if not serve_ready(port, process.popen, 30):
            process.stop()
            raise RuntimeError("emrcomm serve did not start: " + log.read_text(errors="replace")[-2000:])
        return process, port

    process, port = start_retrying(start, "emrcomm serve")
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.stop()


def fits(page: Any, name: str, viewport: str) -> None:
    """The page has no sideways scroll, no text under 16 px, and buttons and fields a finger can hit."""
    folder = ARTIFACTS / viewport
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    layout = page.evaluate(LAYOUT)
    assert layout["scroll"] <= 0, f"{name} at {viewport}: {layout['scroll']} px of sideways scroll"
    assert layout["small"] == [], f"{name} at {viewport}: text under 16 px: {layout['small']}"
    assert layout["body"] >= 18
    assert all(height >= 44 for _, height in layout["targets"]), f"{name} at {viewport}: {layout['targets']}"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_page_fits_a_phone_and_a_desktop(host: Host, serve: tuple[str, Path], browser: Any, viewport: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from emrcomm.cli import main

    site, log = serve
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="en-CA")
    page = context.new_page()
    try:
        # the landing page, in both languages: the clinic's number is a link to call
        page.goto(site + "/")
        assert heading(page) == EN["home_title"].format(clinic="Riverside Family Health")
        call = page.get_by_role("link", name="613-555-0100").first
        assert call.get_attribute("href") == "tel:+16135550100"
        fits(page, "10-landing", viewport)
        page.goto(site + "/?lang=fr")
        assert page.get_by_role("link", name="613 555-0100").first.get_attribute("href") == "tel:+16135550100"
        fits(page, "11-landing-fr", viewport)

        # a clinician's note: confirm, date of birth, the message with who wrote it and when, the reply
        outcome = send_note(host, f"note-{viewport}", sender_name="Dr. Amara Osei",
                            text=NOTE + "\n\nSee https://portal.riverside.example/guides/diabetes-and-metformin-dosing-"
                                        "schedules-for-adults for the full dosing schedule.")
        link = link_in(notice_for(host, outcome)["text"])
        page.goto(local(link, site))
        fits(page, "12-confirm", viewport)
        with page.expect_navigation():
            page.get_by_role("button", name=EN["continue"]).click()
        fits(page, "13-date-of-birth", viewport)
        give_birth_date(page, BIRTH_DATE)
        assert page.get_by_text("From Dr. Amara Osei, Riverside Family Health").is_visible()
        assert page.get_by_text("Sent on November 23, 2026").is_visible()
        fits(page, "14-message", viewport)
        page.get_by_label(EN["reply_label"]).fill("Should I take it with food?")
        with page.expect_navigation():
            page.get_by_role("button", name=EN["send_reply"]).click()
        assert heading(page) == EN["replied_title"]
        assert page.get_by_text("Should I take it with food?").is_visible()  # what they asked
        assert NOTE.split(".")[0] in page.get_by_role("article").inner_text()  # the message, to read again
        fits(page, "15-replied", viewport)

        # the staff pages: sign in, a patient's timeline
        monkeypatch.setattr("sys.stdin", io.StringIO(STAFF_PASSWORD + "\n"))
        assert main(["staff", "add", "jroy", "--full-name", "Julie Roy", "--password-stdin",
                     "--config", str(host.config.source)]) == 0
        page.goto(site + "/staff/patients?patient=Patient/on-en")
        assert heading(page) == "Sign in"
        fits(page, "20-staff-sign-in", viewport)
        page.get_by_label("Account name").fill("jroy")
        page.get_by_label("Password").fill(STAFF_PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        assert heading(page).startswith("Alex Martin")
        assert page.get_by_text("Results available from Dr. Amara Osei by the portal").first.is_visible()
        assert page.get_by_text("Should I take it with food?").first.is_visible()  # the reply, in its words
        fits(page, "21-staff-timeline", viewport)
    finally:
        context.close()
    # what serve wrote of all this: ids, never the words, the number, the reply or the password
    written = log.read_text(errors="replace")
    assert "GET /m/" in written or "POST /m/" in written, written[-2000:]
    for secret in ("HbA1c", "metformin", "take it with food", "6135550100", "555-0100", "1980-04-12",
                   STAFF_PASSWORD, "Amara Osei", link.rsplit("/", 1)[1]):
        assert secret not in written, secret
