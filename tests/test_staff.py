"""The staff pages under `emrcomm serve` and their accounts: `emrcomm staff add` keeps an Argon2id
hash, never the password; nothing of a patient is shown before signing in; the timeline after it,
audited with the account and the patient; wrong passwords slow the address that sends them, and
guesses from many addresses the account's strangers, never its own staff elsewhere; forms need
their token; sessions end at sign-out, when idle, and when the account is disabled."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
import requests
from requests.adapters import HTTPAdapter

from emrcomm.cli import main
from emrcomm.host import Host
from emrcomm.model import DeliveryUpdate, Request, Status
from emrcomm.staff.accounts import PER_ADDRESS, PER_NAME, PER_NAME_AND_ADDRESS
from emrcomm.staff.tries import EVERY
from emrcomm.web.staff import DEVICE_COOKIE, PASSWORD_CHECKS, SESSION_COOKIE
from portal_kit import BIRTH_DATE, database_bytes, notice_for, running_server, send_note, token_in

PASSWORD = "correct horse battery staple"
APPOINTMENT = dt.datetime(2026, 11, 26, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


class _From(HTTPAdapter):
    """Connections from one address of the loopback network (127.0.0.0/8): another client."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **{**kw, "source_address": (self.address, 0)})


class Browser:
    """A browser without the browser. The server is plain http on 127.0.0.1, where browsers keep
    and send Secure cookies (loopback is a secure context); requests would not, so this sends them.
    ``address`` is the client's own (127.0.0.1 unless given)."""

    def __init__(self, base: str, address: str | None = None) -> None:
        self.base = base
        self.http = requests.Session()
        if address is not None:
            self.http.mount("http://", _From(address))

    def _cookies(self, kw: dict[str, Any]) -> dict[str, Any]:
        jar = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        return {**kw, "headers": {**kw.get("headers", {}), **({"Cookie": jar} if jar else {})}}

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.base + path, timeout=30, allow_redirects=False, **self._cookies(kw))

    def post(self, path: str, data: dict[str, str], **kw: Any) -> requests.Response:
        return self.http.post(self.base + path, data=data, timeout=30, allow_redirects=False, **self._cookies(kw))

    def sign_in(self, name: str = "jroy", password: str = PASSWORD, next_path: str = "") -> requests.Response:
        form = self.get("/staff/login" + (f"?next={next_path}" if next_path else ""))
        token = re.search(r'name="token" value="([^"]+)"', form.text)
        assert token, form.text
        return self.post("/staff/login", {"token": token.group(1), "name": name, "password": password,
                                          "next": next_path})

    def sign_out(self) -> None:
        assert self.post("/staff/logout", {"token": self.form_token()}).status_code == 303

    def form_token(self) -> str:
        page = self.get("/staff/")
        match = re.search(r'name="token" value="([^"]+)"', page.text)
        assert match, page.text
        return match.group(1)


def staff(host: Host, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
          password: str = PASSWORD) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    code = main(["staff", *args, "--config", str(host.config.source)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def site(host: Host, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    code, _, err = staff(host, capsys, monkeypatch, "add", "jroy", "--full-name", "Julie Roy", "--password-stdin")
    assert code == 0, err
    assert host.send(Request("Patient/on-en", "appointment-reminder", id="appt-1", template="appointment-reminder",
                             variables={"appointment": APPOINTMENT})).status is Status.SENT
    assert host.send(Request("Patient/none", "appointment-reminder", id="appt-2", template="appointment-reminder",
                             variables={"appointment": APPOINTMENT})).status is Status.BLOCKED
    with running_server(host) as base:
        yield base


def audit_entries(host: Host, kind: str) -> list[dict[str, Any]]:
    from emrcomm.audit import entries

    return [e for e in entries(host.storage) if e["kind"] == kind]


def test_an_account_keeps_an_argon2id_hash_and_a_weak_password_is_refused(
        host: Host, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = staff(host, capsys, monkeypatch, "add", "jroy", "--full-name", "Julie Roy", "--password-stdin")
    assert code == 0 and "jroy added" in out
    [row] = host.storage.db.query("SELECT password_hash FROM staff_accounts")
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD.encode() not in database_bytes(host)
    code, _, err = staff(host, capsys, monkeypatch, "add", "mlee", "--password-stdin", password="short")
    assert code == 2 and "at least 12 characters" in err
    code, _, err = staff(host, capsys, monkeypatch, "add", "jroy", "--password-stdin")
    assert code == 2 and "already an account 'jroy'" in err
    code, out, _ = staff(host, capsys, monkeypatch, "list")
    assert out.split() == ["jroy", "Julie", "Roy", "active"]
    assert [e["staff"] for e in audit_entries(host, "staff.added")] == ["jroy"]


def test_nothing_of_a_patient_is_shown_before_signing_in(site: str) -> None:
    browser = Browser(site)
    for path in ("/staff/", "/staff/patients?patient=Patient/on-en"):
        response = browser.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/staff/login?next=")
        assert "Alex" not in response.text and "613" not in response.text
    assert browser.get("/staff/login").status_code == 200


def test_a_signed_in_member_of_staff_reads_a_patients_timeline_and_it_is_audited(site: str, host: Host) -> None:
    browser = Browser(site)
    signed_in = browser.sign_in(next_path="/staff/patients?patient=Patient/none")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/staff/patients?patient=Patient/none"
    page = browser.get(signed_in.headers["location"])
    assert page.status_code == 200
    assert "Noa Roy" in page.text and "not sent: no channel could carry it" in page.text
    assert "The patient has not agreed to receive clinical messages by sms at this address." in page.text
    page = browser.get("/staff/patients?patient=on-en")
    assert "Alex Martin" in page.text and "Appointment reminder by SMS to 613-555-0123" in page.text
    assert "times in America/Toronto" in page.text.lower() or "Times in America/Toronto" in page.text
    assert [(e["staff"], e["patient"]) for e in audit_entries(host, "staff.viewed")] == \
        [("jroy", "Patient/none"), ("jroy", "Patient/on-en")]
    assert [e["staff"] for e in audit_entries(host, "staff.signed_in")] == ["jroy"]
    assert browser.get("/staff/patients?patient=%3Cscript%3E").status_code == 400


def test_the_staff_timeline_shows_a_reply_the_opt_out_it_made_and_the_next_message_by_email(
        site: str, host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now += dt.timedelta(minutes=4)
    host.delivery_update(DeliveryUpdate(kind="reply", at=clock.now, channel="sms", address="+16135550123",
                                        text="Can I come at 11 instead?", provider_id="mo-1"))
    clock.now += dt.timedelta(minutes=6)
    host.delivery_update(DeliveryUpdate(kind="reply", at=clock.now, channel="sms", address="+16135550123",
                                        text="STOP", provider_id="mo-2"))
    clock.now += dt.timedelta(hours=1)
    assert host.send(Request("Patient/on-en", "appointment-reminder", id="appt-3", template="appointment-reminder",
                             variables={"appointment": APPOINTMENT})).channels == ("email",)
    browser = Browser(site)
    browser.sign_in()
    page = browser.get("/staff/patients?patient=Patient/on-en")
    assert page.status_code == 200
    words = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))
    reply = words.index("10:04 Reply from the patient by SMS")
    assert "Can I come at 11 instead?" in words[reply:]
    opted_out = words.index("10:10 Opted out of SMS at 613-555-0123 by STOP reply")
    by_email = words.index("11:10 Appointment reminder by email to alex.martin@example.org: sent")
    assert words.index("10:00 Appointment reminder by SMS to 613-555-0123: sent") < reply < opted_out < by_email
    for typed in ("patient/on-en", " PATIENT/on-en ", "on-en"):  # as staff type it
        assert browser.get(f"/staff/patients?patient={typed}").text == page.text, typed


def reply_by_the_portal(host: Host, words: str) -> None:
    """The patient opens the clinician's note in the portal and replies ``words``."""
    outcome = send_note(host)
    service = host.plugins.get("portal").service
    visit = service.verify(token_in(notice_for(host, outcome)["text"]), BIRTH_DATE)
    assert visit.opened is not None
    assert service.reply(visit.opened.session, words) == "sent"


def test_a_patients_portal_reply_is_shown_to_staff_in_their_words(site: str, host: Host) -> None:
    reply_by_the_portal(host, "Should I take it with food?")
    browser = Browser(site)
    browser.sign_in()
    page = html.unescape(browser.get("/staff/patients?patient=Patient/on-en").text)
    assert "Reply from the patient by the portal" in page
    assert "Should I take it with food?" in page and "kept encrypted in the portal" in page
    assert "metformin" not in page  # the clinician's note stays in the portal


def test_a_direction_control_in_a_patients_words_is_shown_not_obeyed(site: str, host: Host) -> None:
    """U+202E would show "Take it today, not with food" as something else: staff read the words
    in the order they were written, the control named."""
    reply_by_the_portal(host, "Take it today, \u202edoof htiw ton")
    browser = Browser(site)
    browser.sign_in()
    page = html.unescape(browser.get("/staff/patients?patient=Patient/on-en").text)
    assert "Take it today, [U+202E]doof htiw ton" in page and "\u202e" not in page


def test_a_reply_whose_words_do_not_open_leaves_the_rest_of_the_timeline_readable(site: str, host: Host) -> None:
    """One reply the portal cannot decrypt (its row altered or damaged) is shown without its
    words; the patient's timeline is still there, not an error page."""
    outcome = send_note(host)
    service = host.plugins.get("portal").service
    visit = service.verify(token_in(notice_for(host, outcome)["text"]), BIRTH_DATE)
    assert visit.opened is not None
    assert service.reply(visit.opened.session, "Should I take it with food?") == "sent"
    reply = service.messages.reply_to(visit.opened.message_id)
    assert reply is not None
    flipped = bytes([reply["ciphertext"][0] ^ 1]) + reply["ciphertext"][1:]
    host.storage.db.execute("UPDATE portal_messages SET ciphertext = ? WHERE id = ?", (flipped, reply["id"]))
    browser = Browser(site)
    browser.sign_in()
    page = browser.get("/staff/patients?patient=Patient/on-en")
    assert page.status_code == 200
    words = html.unescape(page.text)
    assert "Reply from the patient by the portal" in words and "Should I take it with food?" not in words
    assert "Appointment reminder by SMS to 613-555-0123" in words


def test_a_mistyped_password_still_leads_to_the_patient_the_link_named(site: str) -> None:
    """A link from the EMR to a patient's timeline goes through the sign-in form; a wrong password
    on the way must not drop where it was going, nor must a sign-in page opened while signed in."""
    browser = Browser(site)
    target = "/staff/patients?patient=Patient%2Fon-en"
    to_login = browser.get(target)
    assert to_login.status_code == 303
    form = browser.get(to_login.headers["location"])
    token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    wrong = browser.post("/staff/login", {"token": token, "name": "jroy", "password": "not the password",
                                          "next": target})
    assert wrong.status_code == 401
    kept = re.search(r'name="next" value="([^"]*)"', wrong.text)
    assert kept and kept.group(1) == html.escape(target)
    token = re.search(r'name="token" value="([^"]+)"', wrong.text).group(1)  # type: ignore[union-attr]
    right = browser.post("/staff/login", {"token": token, "name": "jroy", "password": PASSWORD, "next": target})
    assert right.status_code == 303 and right.headers["location"] == target
    again = browser.get("/staff/login?next=" + quote(target, safe="/"))
    assert again.status_code == 303 and again.headers["location"] == target


def test_the_session_cookie_is_host_only_secure_httponly_and_strict(site: str, host: Host) -> None:
    response = Browser(site).sign_in()
    cookies = {c.split("=", 1)[0]: c for c in response.raw.headers.getlist("set-cookie")}
    cookie = cookies[SESSION_COOKIE]
    for attribute in ("HttpOnly", "Path=/", "SameSite=strict", "Secure"):
        assert attribute in cookie and attribute in cookies[DEVICE_COOKIE]
    assert "Domain" not in cookie and "Max-Age" not in cookie
    # The browser's id is kept 90 days: it marks a browser that has signed in to the account.
    assert "Domain" not in cookies[DEVICE_COOKIE] and "Max-Age=7776000" in cookies[DEVICE_COOKIE]
    for name in (SESSION_COOKIE, DEVICE_COOKIE):
        value = cookies[name].split("=", 1)[1].split(";", 1)[0]
        assert value.encode() not in database_bytes(host)  # only its digest is stored


WRONG = "not the password at all"


def test_wrong_passwords_slow_the_address_that_sends_them_and_an_unknown_name_is_never_logged(
        site: str, host: Host) -> None:
    browser = Browser(site)
    for _ in range(PER_NAME_AND_ADDRESS):
        refused = browser.sign_in(password=WRONG)
        assert refused.status_code == 401 and "The name or the password is wrong" in refused.text
    slowed = browser.sign_in()  # even the right password is not checked from here for now
    assert slowed.status_code == 429 and int(slowed.headers["retry-after"]) == EVERY
    assert "Too many wrong passwords: please try again in 3 minutes." in slowed.text
    assert browser.sign_in(name="correct horse battery staple").status_code == 401
    refusals = audit_entries(host, "staff.refused")
    # the log tells a wrong password (401) from a sign-in slowed before its password was read (429)
    assert [e.get("http_status") for e in refusals] == [401] * PER_NAME_AND_ADDRESS + [429, 401]
    assert [e.get("staff") for e in refusals][-1] is None  # a password typed as the name is not kept
    assert PASSWORD.encode() not in database_bytes(host)
    # nor its digest, which a copy of the database would let anyone test guesses against: the
    # sign-in limits key theirs with a secret kept outside the database (the audit key's)
    typed = hashlib.sha256(b"correct horse battery staple").hexdigest()
    assert typed.encode() not in database_bytes(host)


def test_wrong_passwords_from_one_address_do_not_keep_the_account_out_from_another(site: str) -> None:
    """The review's attack: a guessable name and a few wrong passwords kept its member of staff
    out for 15 minutes, over and over. The guesser's address is slowed; the clinic's is not."""
    attacker = Browser(site, "127.0.0.3")
    answers = [attacker.sign_in(password=WRONG).status_code for _ in range(3 * PER_NAME_AND_ADDRESS)]
    assert answers == [401] * PER_NAME_AND_ADDRESS + [429] * 2 * PER_NAME_AND_ADDRESS
    assert Browser(site, "127.0.0.2").sign_in().status_code == 303
    assert attacker.sign_in().status_code == 429


def test_one_address_guessing_many_names_is_slowed_for_every_name(site: str) -> None:
    guesser = Browser(site, "127.0.0.4")
    answers = [guesser.sign_in(name=f"staff{i}", password=WRONG).status_code for i in range(PER_ADDRESS + 2)]
    assert answers == [401] * PER_ADDRESS + [429] * 2
    assert Browser(site, "127.0.0.5").sign_in().status_code == 303


def test_guesses_from_many_addresses_are_limited_and_a_browser_that_signed_in_before_still_gets_in(
        site: str) -> None:
    """Guesses at one account from many addresses get no more password checks than PER_NAME
    (then one every three minutes, as the account lock allowed); the account's own staff, in a
    browser that has signed in to it before, get in at once, from any address."""
    own = Browser(site, "127.0.0.6")
    assert own.sign_in().status_code == 303 and own.http.cookies.get(DEVICE_COOKIE)
    own.sign_out()
    checked = 0
    for i in range(10, 10 + PER_NAME):
        answers = [Browser(site, f"127.0.0.{i}").sign_in(password=WRONG).status_code for _ in range(2)]
        checked += answers.count(401)
        assert set(answers) <= {401, 429}
    assert checked == PER_NAME
    assert Browser(site, "127.0.0.40").sign_in().status_code == 429  # a stranger's browser waits
    assert own.sign_in().status_code == 303
    elsewhere = Browser(site, "127.0.0.41")
    elsewhere.http.cookies.set(DEVICE_COOKIE, own.http.cookies[DEVICE_COOKIE])
    assert elsewhere.sign_in().status_code == 303


def test_a_known_name_and_an_unknown_one_are_answered_alike(site: str) -> None:
    """The limits count names, not accounts: the answers to guesses at an account and at a name
    that is none are the same, refusal for refusal, wait for wait."""
    def answers(name: str, address: str) -> list[tuple[int, str | None, str]]:
        browser = Browser(site, address)
        got = [browser.sign_in(name=name, password=WRONG) for _ in range(PER_NAME_AND_ADDRESS + 2)]
        return [(r.status_code, r.headers.get("retry-after"), re.sub(r'value="[^"]*"', "", r.text)) for r in got]

    assert answers("jroy", "127.0.0.7") == answers("jrooy", "127.0.0.8")


def test_a_slowed_address_gets_a_try_back_every_three_minutes(site: str, host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    browser = Browser(site)
    for _ in range(PER_NAME_AND_ADDRESS):
        browser.sign_in(password=WRONG)
    assert browser.sign_in().status_code == 429
    clock.now += dt.timedelta(seconds=EVERY - 1)
    assert browser.sign_in().status_code == 429
    clock.now += dt.timedelta(seconds=1)
    assert browser.sign_in().status_code == 303


def test_the_limits_hold_across_a_restart_and_for_every_serve_process(
        make_host, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """They are kept in the store: two `serve` processes on it count the same tries, and a
    restarted one remembers them."""
    first, second = make_host(), make_host()
    code, _, err = staff(first, capsys, monkeypatch, "add", "jroy", "--password-stdin")
    assert code == 0, err
    with running_server(first) as one, running_server(second) as two:
        answers = [Browser(base, "127.0.0.9").sign_in(password=WRONG).status_code
                   for base in (one, two) * PER_NAME_AND_ADDRESS]
        assert answers == [401] * PER_NAME_AND_ADDRESS + [429] * PER_NAME_AND_ADDRESS
    first.close()
    second.close()
    again = make_host()
    with running_server(again) as base:
        assert Browser(base, "127.0.0.9").sign_in().status_code == 429
        assert Browser(base, "127.0.0.2").sign_in().status_code == 303


def test_concurrent_wrong_passwords_get_no_more_checks_than_the_limit(
        site: str, host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrong passwords sent at once from one address (each one's hash check is slow) get five
    checks: each takes one of the tries before its password is checked."""
    import emrcomm.staff.accounts as accounts_module

    guesses = 3 * PER_NAME_AND_ADDRESS
    hasher = accounts_module._HASHER
    checks = []

    class Counted:
        """The real hasher, counting its checks, each made slow."""

        def __getattr__(self, name: str) -> Any:
            return getattr(hasher, name)

        def verify(self, stored: str, password: str) -> bool:
            checks.append(password)
            time.sleep(0.1)
            return hasher.verify(stored, password)

    monkeypatch.setattr(accounts_module, "_HASHER", Counted())
    accounts = accounts_module.StaffAccounts(host.storage.db, host.clock, host.audit.key)
    with ThreadPoolExecutor(guesses) as pool:
        results = list(pool.map(lambda _: accounts.sign_in("jroy", WRONG, "192.0.2.7"), range(guesses)))
    assert len(checks) == PER_NAME_AND_ADDRESS
    assert all(r.session is None for r in results)
    assert sum(r.wait > 0 for r in results) == guesses - PER_NAME_AND_ADDRESS
    monkeypatch.setattr(accounts_module, "_HASHER", hasher)
    assert accounts.sign_in("jroy", PASSWORD, "192.0.2.7").wait > 0  # not checked, even the right one
    assert Browser(site).sign_in().status_code == 303  # from another address


def test_sign_ins_sent_at_once_have_their_passwords_checked_a_few_at_a_time(
        site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each check of a password takes 64 MiB (Argon2id): a client's burst of sign-ins, even with
    names that are no account's, must not make the server hold one check per request at once."""
    import emrcomm.staff.accounts as accounts_module

    hasher = accounts_module._HASHER
    lock = threading.Lock()
    running, most = [0], [0]

    class Counted:
        """The real hasher, counting the checks that run at once (each one made slow)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(hasher, name)

        def verify(self, stored: str, password: str) -> bool:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            try:
                time.sleep(0.2)
                return hasher.verify(stored, password)
            finally:
                with lock:
                    running[0] -= 1

    monkeypatch.setattr(accounts_module, "_HASHER", Counted())
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda i: Browser(site).sign_in(name=f"nobody{i}").status_code, range(12)))
    assert codes == [401] * 12
    assert most[0] == PASSWORD_CHECKS


def test_sign_in_needs_the_forms_own_token_and_a_post_from_elsewhere_is_refused(site: str) -> None:
    browser = Browser(site)
    browser.get("/staff/login")
    forged = browser.post("/staff/login", {"token": "guessed", "name": "jroy", "password": PASSWORD})
    assert forged.status_code == 400 and SESSION_COOKIE not in forged.headers.get("set-cookie", "")
    elsewhere = Browser(site)
    form = elsewhere.get("/staff/login")
    token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    cross = elsewhere.post("/staff/login", {"token": token, "name": "jroy", "password": PASSWORD},
                           headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403


def test_signing_out_needs_the_pages_token_and_ends_the_session(site: str) -> None:
    browser = Browser(site)
    browser.sign_in()
    assert browser.post("/staff/logout", {"token": "guessed"}).status_code == 403
    assert browser.get("/staff/").status_code == 200
    out = browser.post("/staff/logout", {"token": browser.form_token()})
    assert out.status_code == 303 and out.headers["location"] == "/staff/login"
    assert browser.get("/staff/").status_code == 303


def test_a_session_ends_after_thirty_idle_minutes_and_when_the_account_is_disabled(
        site: str, host: Host, clock, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    browser = Browser(site)
    browser.sign_in()
    clock.now += dt.timedelta(minutes=29)
    assert browser.get("/staff/").status_code == 200  # used: it lasts 30 minutes more
    clock.now += dt.timedelta(minutes=31)
    assert browser.get("/staff/").status_code == 303
    browser.sign_in()
    assert browser.get("/staff/").status_code == 200
    code, _, _ = staff(host, capsys, monkeypatch, "disable", "jroy")
    assert code == 0
    assert browser.get("/staff/").status_code == 303
    assert browser.sign_in().status_code == 401
    staff(host, capsys, monkeypatch, "enable", "jroy")
    assert browser.sign_in().status_code == 303


def test_a_new_password_ends_every_session_of_the_account(
        site: str, host: Host, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    browser = Browser(site)
    browser.sign_in()
    code, _, _ = staff(host, capsys, monkeypatch, "password", "jroy", "--password-stdin",
                       password="a whole new passphrase")
    assert code == 0
    assert browser.get("/staff/").status_code == 303
    assert browser.sign_in(password="a whole new passphrase").status_code == 303

