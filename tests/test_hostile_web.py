"""Hostile requests to ``emrcomm serve`` (uvicorn on 127.0.0.1): each gets a plain 4xx, never a
500, a traceback or a value in the log; replays, cross-site posts and floods change nothing."""

from __future__ import annotations

import contextlib
import html
import http.client
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from api_kit import FHIR, ApiClient
from emrcomm.host import Host
from emrcomm.web import create_app
from emrcomm_portal.storage import PortalStore
from emrcomm_sms.callbacks import record_signature
from hostile_kit import NUMBER, SECRET, InProcess, kannel_config, server_log, twilio_config
from portal_kit import BIRTH_DATE, notice_for, running_server, send_note, token_in
from servers import wait_until
from support import communication, fhir_request
from test_worker import reminder


@pytest.fixture
def host(make_host: Callable[..., Host], tmp_path: Path) -> Host:
    return make_host(config_text=kannel_config(tmp_path))


@pytest.fixture
def base(host: Host) -> Iterator[str]:
    with running_server(host) as url:
        yield url


def dlr(base: str, record: str, kind: int, sig: str | None = None) -> requests.Response:
    return requests.get(f"{base}/callbacks/kannel/dlr", timeout=10, params={
        "record": record, "sig": record_signature(SECRET, record) if sig is None else sig, "type": str(kind)})


def opened_token(host: Host) -> str:
    return sent_note(host)[0]


def sent_note(host: Host) -> tuple[str, str]:
    """(token, record id of the portal message) for a result note sent now."""
    outcome = send_note(host)
    return token_in(notice_for(host, outcome)["text"]), outcome.record_ids[0]


def assert_clean(caplog: pytest.LogCaptureFixture, *never: str) -> None:
    logged = server_log(caplog.records)
    assert "Traceback" not in logged and " 500 " not in logged, logged
    for value in never:
        assert value not in logged, value


# 1. callback secrets of any characters ------------------------------------------------------------
@pytest.mark.parametrize(("path", "params"), [
    ("/callbacks/kannel/dlr", {"record": "x", "sig": "é", "type": "1"}),
    ("/callbacks/kannel/dlr", {"record": "é", "sig": "\u2603" * 64, "type": "1"}),
    ("/callbacks/kannel/mo", {"token": "é", "from": NUMBER, "text": "STOP"}),
])
def test_a_kannel_callback_signed_with_non_ascii_characters_is_refused_with_403(
        host: Host, base: str, path: str, params: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="emrcomm")
    assert requests.get(base + path, params=params, timeout=10).status_code == 403
    assert host.storage.consent.events(channel="sms", address=NUMBER) == []
    assert_clean(caplog)


def test_a_twilio_callback_signed_with_non_ascii_characters_is_refused_with_403(
        make_host: Callable[..., Host], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="emrcomm")
    host = make_host(config_text=twilio_config(tmp_path))
    with running_server(host) as url:
        answer = requests.post(f"{url}/callbacks/twilio/inbound", data={"From": NUMBER, "Body": "STOP"},
                               headers={"X-Twilio-Signature": "é" * 28}, timeout=10)
    assert answer.status_code == 403
    assert host.storage.consent.events(channel="sms", address=NUMBER) == []
    assert_clean(caplog)


# 2. date-of-birth fields and attachment indexes -------------------------------------------------
@pytest.mark.parametrize("day", ["²", "1" * 60_000, "١٢", "１２", "12.0", "-12", " 12\x00"])
def test_a_day_that_is_not_ascii_digits_is_an_invalid_date_not_an_error_and_not_a_try(
        host: Host, base: str, day: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="emrcomm")
    token, record = sent_note(host)
    page = requests.post(f"{base}/m/{token}/open", timeout=10,
                         data={"day": day, "month": str(BIRTH_DATE.month), "year": str(BIRTH_DATE.year)})
    assert page.status_code == 400 and "HbA1c" not in page.text
    assert PortalStore(host.storage.db).get(record)["attempts"] == 0
    assert_clean(caplog, "1980", *([day] if not day.isascii() or len(day) > 10 else []))


def test_arabic_indic_digits_do_not_open_the_message(host: Host, base: str) -> None:
    token = opened_token(host)
    page = requests.post(f"{base}/m/{token}/open", timeout=10, data={"day": "١٢", "month": "٤", "year": "١٩٨٠"})
    assert page.status_code == 400 and "HbA1c" not in page.text


@pytest.mark.parametrize("index", ["²", "9" * 5000, "٠", "0x1"])
def test_an_attachment_index_that_is_not_ascii_digits_is_refused_plainly(
        base: str, index: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="emrcomm")
    answer = requests.post(f"{base}/m/-/attachment", data={"index": index, "session": "x"}, timeout=10)
    assert answer.status_code == 410
    assert_clean(caplog)


def test_a_content_length_that_is_not_ascii_digits_is_refused_with_413(host: Host) -> None:
    client = InProcess(create_app(host))
    try:
        answer = client.request("POST", "/m/-/reply", body=b"", headers=[(b"content-length", "²".encode("latin-1"))])
    finally:
        client.close()
    assert answer.status_code == 413


def test_a_number_of_more_than_4300_digits_in_an_api_body_is_refused_with_400(
        make_host: Callable[..., Host], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="emrcomm")
    host = make_host("\n[api]\nnotify = false\n")
    api = ApiClient(host, create_app(host))
    request = json.dumps(fhir_request("Patient/on-en", "appointment-reminder", text="Riverside Family Health: "
                                      "see you soon. Reply STOP to opt out.")).encode()
    huge = request[:-1] + b', "n": ' + b"9" * 5000 + b"}"
    try:
        single = api.call("POST", "/fhir/CommunicationRequest", raw=huge, headers=[FHIR])
        batch = api.call("POST", "/fhir", raw=b'{"resourceType": "Bundle", "type": "batch", "n": ' + b"9" * 5000
                         + b"}", headers=[FHIR])
        lines = api.call("POST", "/fhir/CommunicationRequest/$batch", raw=huge + b"\n",
                         headers=[(b"content-type", b"application/fhir+ndjson")])
    finally:
        api.close()
    assert (single.status_code, batch.status_code) == (400, 400)
    for answer in (single, batch):
        assert "4,300 digits" in json.loads(answer.content)["issue"][0]["diagnostics"]
    assert [e["response"]["status"] for e in json.loads(lines.content)["entry"]] == ["400 Bad Request"]
    assert host.records()["total"] == 0
    assert_clean(caplog)


# 7. the access log, and cross-site posts ---------------------------------------------------------
def test_the_access_log_escapes_line_breaks_and_control_characters(
        base: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="emrcomm.web")
    requests.get(f"{base}/m/a%0d%0aINFO%20GET/forged%20200%00%1b[31m", timeout=10)

    def forged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "emrcomm.web" and "forged" in r.getMessage()]

    # The server writes the line once the answer has left: the client may read the answer first.
    with contextlib.suppress(TimeoutError):
        wait_until(forged, 10, "the access log line")
    lines = forged()
    assert len(lines) == 1, ("emrcomm.web disabled" if logging.getLogger("emrcomm.web").disabled else lines)
    [line] = lines
    assert "\n" not in line and "\r" not in line and "\x00" not in line and "\x1b" not in line
    assert line.startswith("GET /m/a\\r\\nINFO") and line.endswith(" ms")


@pytest.mark.parametrize("headers", [{"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "https://attacker.example", "Sec-Fetch-Site": "same-origin"}])
def test_a_reply_posted_from_elsewhere_is_refused(host: Host, base: str, headers: dict[str, str]) -> None:
    token = opened_token(host)
    opened = requests.post(f"{base}/m/{token}/open", timeout=10, data={
        "day": str(BIRTH_DATE.day), "month": str(BIRTH_DATE.month), "year": str(BIRTH_DATE.year)})
    session = re.search(r'name="session" value="([^"]+)"', opened.text).group(1)  # type: ignore[union-attr]
    answer = requests.post(f"{base}/m/-/reply", data={"session": session, "text": "Yes please"},
                           headers=headers, timeout=10)
    assert answer.status_code == 403
    assert host.storage.inbox.items(state=None) == []
    same_site = requests.post(f"{base}/m/-/reply", data={"session": session, "text": "Yes please"},
                              headers={"Origin": base, "Sec-Fetch-Site": "same-origin"}, timeout=10)
    assert same_site.status_code == 200 and len(host.storage.inbox.items(state=None)) == 1


@pytest.mark.parametrize("path", ["//evil.example/phish", "/%2F%2Fevil.example/phish", "/%09/evil.example/phish",
                                  "/%5Cevil.example/phish", "/m/%2F%2Fevil.example"])
def test_the_language_switch_of_a_page_never_leads_to_another_site(base: str, path: str) -> None:
    """A link to the clinic's portal with a path that starts '//' (or becomes it once a browser
    drops a tab, or reads a backslash as a slash) must not make the page's language switch a link
    to another site: the page is the clinic's, and a patient would follow it."""
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
    conn.request("GET", path)  # as sent: requests would tidy the path
    answer = conn.getresponse()
    page = answer.read().decode()
    conn.close()
    assert answer.status == 404
    [href] = re.findall(r'<a href="([^"]*)" lang="fr"', page)
    # What a browser does with the link: tabs and line breaks dropped, backslashes read as
    # slashes, and any run of slashes at the start read as '//' (another site follows).
    target = re.sub(r"^/{2,}", "//", re.sub(r"[\t\r\n]", "", html.unescape(href)).replace("\\", "/"))
    assert urlsplit(urljoin("https://portal.riverside.example/x", target)).netloc == "portal.riverside.example"


# 3. replays after a restart ------------------------------------------------------------------------
def test_a_delivery_report_replayed_after_a_restart_changes_nothing(
        make_host: Callable[..., Host], tmp_path: Path) -> None:
    first = make_host(config_text=kannel_config(tmp_path))
    [record] = first.send(reminder()).record_ids
    with running_server(first) as url:
        assert dlr(url, record, 1).status_code == 200
    first.close()
    again = make_host(config_text=kannel_config(tmp_path))  # a new process: nothing in memory
    with running_server(again) as url:
        assert dlr(url, record, 1).status_code == 200
        assert dlr(url, record, 2).status_code == 200  # "undelivered", replayed with the record's signature
    resource = communication(again, record)
    assert resource is not None and resource["status"] == "completed"
    assert [n["text"][:9] for n in resource["note"] if n["text"].startswith("delivered")] == ["delivered"]


# 8. callbacks are rate limited per client ----------------------------------------------------------
def test_callbacks_are_rate_limited_per_client_address(make_host: Callable[..., Host], tmp_path: Path) -> None:
    host = make_host(config_text=kannel_config(tmp_path, "callback_rate_limit_per_minute = 60\n"))
    client = InProcess(create_app(host))
    try:
        started = time.monotonic()
        flood = [client.get("/callbacks/kannel/mo", {"token": "x", "from": NUMBER}, client="192.0.2.7")
                 for _ in range(100)]
        took = time.monotonic() - started
        other = client.get("/callbacks/kannel/mo", {"token": "x", "from": NUMBER}, client="192.0.2.8")
    finally:
        client.close()
    statuses = [a.status_code for a in flood]
    # A burst of 60 goes through to the authentication check (403), then one a second as the
    # bucket refills: at most one more for each second the flood took (on a busy machine, more
    # than one), and every other one is answered 429.
    assert statuses[:60] == [403] * 60 and set(statuses) == {403, 429}
    assert statuses.count(403) <= 60 + math.ceil(took), took
    assert all(int(a.headers["retry-after"]) >= 1 for a in flood if a.status_code == 429)
    assert other.status_code == 403  # another address is not held back


def test_the_default_callback_limit_lets_a_providers_reports_through(host: Host, base: str) -> None:
    records = [host.send(reminder(f"r-{n}")).record_ids[0] for n in range(3)]
    assert [dlr(base, record, kind).status_code for record in records for kind in (8, 1)] == [200] * 6
