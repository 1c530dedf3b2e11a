"""Hostile requests given to ``Host.send``, and hostile files the host finds on disk: each is
refused with a clear RequestError (or RenderError) within a bound, and nothing is sent or filed."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emrcomm import ConfigError, RenderError, RequestError
from emrcomm.host import Host
from emrcomm.model import Attachment, Category, Request, Status
from support import fhir_request

NOTICE_OK = "Riverside Family Health: your appointment is confirmed. Reply STOP to opt out."


def sms_sink(host: Host) -> list[dict[str, Any]]:
    path = host.config.base_dir / "out" / "sms.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()] if path.exists() else []


def nothing_sent_or_filed(host: Host) -> bool:
    return sms_sink(host) == [] and host.records()["total"] == 0


def within(seconds: float, work: Callable[[], Any]) -> BaseException | None:
    """Runs ``work`` in a thread; the exception it raised, or AssertionError when it is still
    running after ``seconds`` (a hang: the bound is generous, it decides nothing else)."""
    result: list[BaseException | None] = []

    def run() -> None:
        try:
            work()
            result.append(None)
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"still running after {seconds} s"
    return result[0]


# 8. ids and characters ---------------------------------------------------------------------------
def test_a_request_id_of_65_characters_is_refused_from_either_door(host: Host) -> None:
    with pytest.raises(RequestError, match="64"):
        host.send(fhir_request("Patient/on-en", "appointment-reminder", text=NOTICE_OK, rid="a" * 65))
    with pytest.raises(RequestError, match="64"):
        host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="a" * 65, text=NOTICE_OK))
    assert host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="a" * 64,
                             text=NOTICE_OK)).status is Status.SENT


@pytest.mark.parametrize("bad", ["\x00", "\x1b[2J", "\ud800", "\x7f"])
def test_text_with_a_control_character_is_refused_and_nothing_is_sent(host: Host, bad: str) -> None:
    text = NOTICE_OK.replace("confirmed", f"confirmed{bad}")
    with pytest.raises(RequestError, match="control character"):
        host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", text=text))
    if bad != "\ud800":  # a lone surrogate cannot even be written as JSON text
        with pytest.raises(RequestError, match="control character"):
            host.send(json.dumps(fhir_request("Patient/on-en", "appointment-reminder", text=text, rid="r-2")))
    assert nothing_sent_or_filed(host)


def test_a_control_character_in_a_string_variable_is_refused(host: Host) -> None:
    with pytest.raises(RequestError, match="variable 'location'"):
        host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", template="appointment-reminder",
                          variables={"location": "Room 4\x00"},
                          appointment=dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC)))


def test_a_request_id_with_a_line_break_is_refused(host: Host) -> None:
    with pytest.raises(RequestError, match="control character"):
        host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1\nforged", text=NOTICE_OK))


@pytest.mark.parametrize("brk", ["\r\n", "\n", "\u2028", "\x85"])
def test_a_subject_with_a_line_break_is_refused_and_nothing_is_sent(host: Host, brk: str) -> None:
    # An email's Subject is one header line: "Hello\r\nBcc: …" was taken, then failed at the
    # transport as "The provider did not accept the message (ValueError)".
    with pytest.raises(RequestError, match="subject"):
        host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", text=NOTICE_OK, channel="email",
                          subject=f"Your appointment{brk}Bcc: someone@example.org"))
    assert host.records()["total"] == 0


LATE = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # UTC: the year 10000
EARLY = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))  # UTC: the year 0


@pytest.mark.parametrize("field", ["not_before", "expires", "appointment", "variables"])
@pytest.mark.parametrize("when", [LATE, EARLY], ids=["late", "early"])
def test_a_time_that_cannot_be_written_in_utc_is_a_request_error(host: Host, field: str, when: dt.datetime) -> None:
    given: dict[str, Any] = {"variables": {"appointment": when}} if field == "variables" else {field: when}
    with pytest.raises(RequestError, match=r"UTC"):
        host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", text=NOTICE_OK, **given))
    assert nothing_sent_or_filed(host)


@pytest.mark.parametrize("field", ["not_before", "expires", "appointment"])
def test_a_time_without_a_zone_is_a_request_error_naming_the_field(host: Host, field: str) -> None:
    # 15:00 where? The clinic's zone, the patient's and the server's differ; a not_before crashed
    # the comparison with the clock, an expiry was stored in the server's own zone.
    naive = dt.datetime(2026, 11, 23, 15, 0)
    with pytest.raises(RequestError, match=rf"{field}: 2026-11-23T15:00:00 has no time zone"):
        host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", text=NOTICE_OK, **{field: naive}))
    assert nothing_sent_or_filed(host)


def test_a_fhir_time_that_cannot_be_written_in_utc_is_a_request_error_naming_the_field(host: Host) -> None:
    with pytest.raises(RequestError, match="occurrenceDateTime"):
        host.send(fhir_request("Patient/on-en", "appointment-reminder", text=NOTICE_OK,
                               occurrenceDateTime="9999-12-31T23:59:59-05:00"))
    with pytest.raises(RequestError, match="variable 'appointment'"):
        host.send(fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder",
                               variables={"appointment": ("valueDateTime", "0001-01-01T00:00:00+05:00")}))
    assert nothing_sent_or_filed(host)


def test_a_number_of_more_than_4300_digits_is_a_request_error(host: Host) -> None:
    # Python refuses to read an int that long (ValueError): the request is what is wrong.
    text = json.dumps(fhir_request("Patient/on-en", "appointment-reminder", text=NOTICE_OK))[:-1] + ', "n": ' \
        + "9" * 5000 + "}"
    with pytest.raises(RequestError, match="digits"):
        host.send(text)
    assert nothing_sent_or_filed(host)


# 6. sizes ---------------------------------------------------------------------------------------------
def test_a_5_mb_content_string_is_refused_at_once(host: Host) -> None:
    request = fhir_request("Patient/on-en", "results-available", text="Your result is normal. " * 230_000)
    error = within(30, lambda: host.send(request))
    assert isinstance(error, RequestError) and "text_chars" in str(error) and "5,290,000" in str(error)
    assert nothing_sent_or_filed(host)


@pytest.mark.parametrize("unit", ["HbA1c high ", "TSH 4 low ", "pain in my knee "])
def test_checking_a_long_text_made_of_tests_and_results_takes_linear_time(host: Host, unit: str) -> None:
    # 50,000 characters of tests next to results: comparing every pair took minutes.
    text = (unit * 5000)[:50_000]
    found: list[Any] = []
    assert within(30, lambda: found.extend(host.check(text, channel="email"))) is None
    assert any(f.code == "CLINICAL_CONTENT" for f in found)


def test_a_text_longer_than_a_channel_takes_is_refused_there_and_goes_elsewhere(
        make_host: Callable[..., Host]) -> None:
    host = make_host("\n[limits.channel_text_chars]\nemail = 500\n")
    text = "Riverside Family Health: the clinic is moving to 12 Bank Street in January. " * 10  # 760 characters
    outcome = host.send(Request("Patient/on-en", Category.EDUCATION, id="move-1", text=text, channel="email"))
    codes = {f.code for f in outcome.findings}
    assert "TEXT_TOO_LONG" in codes and "email" not in outcome.channels
    assert any("TEXT_TOO_LONG" in line for line in outcome.explanation)
    [too_long] = [f for f in outcome.findings if f.code == "TEXT_TOO_LONG"]
    assert "760" in too_long.message and "500" in too_long.message and too_long.channel == "email"


def test_attachments_past_the_limit_are_refused(make_host: Callable[..., Host]) -> None:
    host = make_host("\n[limits]\nattachment_bytes = 1000\n")
    with pytest.raises(RequestError, match="attachment_bytes"):
        host.send(Request("Patient/on-en", Category.RESULTS_AVAILABLE, id="r-1", text="Your result is ready.",
                          attachments=(Attachment("application/pdf", b"%PDF" + b"0" * 2000, "result.pdf"),)))
    assert nothing_sent_or_filed(host)


def test_limits_are_checked_against_the_config_schema(make_host: Callable[..., Host]) -> None:
    with pytest.raises(ConfigError, match=r"limits\.text_chars"):
        make_host("\n[limits]\ntext_chars = 5\n")
    with pytest.raises(ConfigError, match="limits"):
        make_host("\n[limits]\ntext_char = 50000\n")


# 6. runaway templates -------------------------------------------------------------------------------
RUNAWAYS = {
    "nested-loops": "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    "loops-over-strings": "{% for a in 'x' * 90000 %}{% for b in 'y' * 90000 %}{% endfor %}{% endfor %}",
    "output": "{% for i in range(99999) %}Riverside Family Health{% endfor %}",
    "repetition": "{{ 'x' * 999999999 }}",
    "power": "{{ 10 ** 100000000 }}",
    "percent-width": "{{ '%0999999999d' % 1 }}",
    "format-width": "{{ '{:>999999999}'.format(1) }}",
    "filter-width": "{{ 'x'|center(999999999) }}",
    "format-filter": "{{ '%0999999999d'|format(1) }}",
    "recursion": "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}",
    "lipsum": "{{ lipsum(99999) }}",
}


@pytest.mark.parametrize("name", sorted(RUNAWAYS))
def test_a_runaway_clinic_template_is_stopped_and_reported(
        make_host: Callable[..., Host], tmp_path: Path, name: str) -> None:
    folder = tmp_path / "clinic-templates" / "en"
    folder.mkdir(parents=True)
    (folder / f"{name}.j2").write_text(RUNAWAYS[name] + "\nRiverside Family Health. Reply STOP to opt out.",
                                       encoding="utf-8")
    host = make_host('\n[plugins.templates]\ndirectory = "clinic-templates"\n')
    error = within(60, lambda: host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1",
                                                 template=name)))
    assert isinstance(error, RenderError), error
    assert f"template '{name}'" in str(error) and "stopped" in str(error)
    assert nothing_sent_or_filed(host)


def test_a_template_within_its_bounds_still_renders(make_host: Callable[..., Host], tmp_path: Path) -> None:
    folder = tmp_path / "clinic-templates" / "en"
    folder.mkdir(parents=True)
    (folder / "count.j2").write_text("Riverside Family Health: {% for i in range(3) %}{{ i }}{% endfor %} "
                                     "{{ '%05d' % 42 }} {{ 'ab' * 3 }}. Reply STOP to opt out.", encoding="utf-8")
    host = make_host('\n[plugins.templates]\ndirectory = "clinic-templates"\n')
    outcome = host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", template="count"))
    assert outcome.status is Status.SENT
    assert "012 00042 ababab." in sms_sink(host)[0]["text"]


# 5. a torn line in the SMS file sink ----------------------------------------------------------------
def test_a_torn_last_line_in_the_sms_sink_does_not_stop_the_host(make_host: Callable[..., Host]) -> None:
    first = make_host()
    first.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", text=NOTICE_OK))
    first.close()
    sink = first.config.base_dir / "out" / "sms.jsonl"
    with sink.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "torn", "to": "+1613')  # the process died in the middle of a write
    again = make_host()
    assert again.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", text=NOTICE_OK)).status \
        is Status.SENT  # already handled: not written again
    again.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-2", text=NOTICE_OK))
    lines = sink.read_text(encoding="utf-8").splitlines()
    assert lines[1] == '{"id": "torn", "to": "+1613'
    assert [json.loads(line)["text"] for line in (lines[0], lines[2])] == [NOTICE_OK, NOTICE_OK]
    assert len(lines) == 3


# 8. the database file -------------------------------------------------------------------------------
def test_the_database_is_created_readable_by_its_owner_only(make_host: Callable[..., Host]) -> None:
    old = os.umask(0o022)
    try:
        host = make_host()
    finally:
        os.umask(old)
    host.send(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-1", text=NOTICE_OK))
    path = host.config.store_path
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
