"""When a pre-send check cannot answer for now: a third party's validator (tests/fakes.py
ConsentService) or inspector (ContentClassifier), registered through the config as any plugin
is, asks its own service, the real FHIR server of tests/fhir_server, which is stopped by its PID,
frozen past the check's timeout, or made to answer badly. The check could not run, so nothing goes (fail closed); but it is not a
block either: nothing is filed, and every door says "try again", as for a directory that cannot
answer (test_directory_outage). A check that fails otherwise still blocks, CHECK_FAILED."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest

from api_kit import ApiClient
from conftest import Clock
from emrcomm import PluginUnavailable
from emrcomm.cli import main
from emrcomm.host import Host
from emrcomm.model import Request, Status
from emrcomm.plugin import manager
from emrcomm.web import create_app
from fhir_server.server import TOKEN_VARIABLE, ShimServer
from support import write_config
from test_api import NO_NOTIFY, body
from test_api import reminder as fhir_reminder
from test_directory_outage import BREAKS, assert_try_again, mended, running_clinic
from test_worker import QUEUE, outbox_row, reminder, sink, status_of, toronto, worker

pytestmark = pytest.mark.node

CHECK = "consent-service"  # the validator
CHECKS = {CHECK: "fakes:ConsentService", "content-classifier": "fakes:ContentClassifier"}  # name: plugin


@pytest.fixture
def service() -> Iterator[ShimServer]:
    yield from running_clinic()


@pytest.fixture(params=CHECKS)
def check(request: pytest.FixtureRequest) -> str:
    """The name of the check that asks the service: each test taking it runs for both kinds."""
    name: str = request.param
    return name


def check_table(server: ShimServer, check: str = CHECK) -> str:
    return (f'\n[plugins.{check}]\nbase_url = "{server.base_url}"\ntoken = {{env = "{TOKEN_VARIABLE}"}}\n'
            "timeout = 0.5\n")


INSTALLED = manager.discover


def with_check(check: str = CHECK) -> dict[str, metadata.EntryPoint]:
    """Every installed plugin, and the check as a third party's entry point."""
    return {**INSTALLED(), check: metadata.EntryPoint(name=check, value=CHECKS[check], group="emrcomm")}


def checked_host(make_host: Callable[..., Host], server: ShimServer, extra: str = "", check: str = CHECK) -> Host:
    """The small clinic's Bundle directory (it always answers), and the check."""
    return make_host(check_table(server, check) + extra, entry_points=with_check(check))


@pytest.mark.parametrize("broken", BREAKS)
def test_send_and_preview_raise_unavailable_and_file_nothing_while_a_checks_server_cannot_answer(
        service: ShimServer, make_host: Callable[..., Host], broken: str, check: str) -> None:
    host = checked_host(make_host, service, check=check)
    BREAKS[broken](service)
    with pytest.raises(PluginUnavailable, match=rf"{check}.*{service.base_url} is unavailable"):
        host.send(reminder(rid="v-down"))
    with pytest.raises(PluginUnavailable):
        host.preview(reminder(rid="v-peek"))
    # Not a block: nothing filed as not-done, the request id not taken, nothing sent.
    assert host.records()["total"] == 0 and sink(host) == []
    assert host.storage.records.request("v-down") is None
    mended(service)
    assert host.send(reminder(rid="v-down")).status is Status.SENT  # the same request, once it is back


def test_a_check_whose_server_refuses_the_query_still_blocks_check_failed(
        service: ShimServer, make_host: Callable[..., Host], check: str) -> None:
    """A 400 is no outage (the check is set up wrong; trying again will not help): the check
    raised, so the message is blocked CHECK_FAILED naming it and filed not-done."""
    host = checked_host(make_host, service, check=check)
    service.control("fail", status=400, count=1000)
    outcome = host.send(reminder(rid="v-400"))
    assert outcome.status is Status.BLOCKED and sink(host) == []
    assert {f.plugin for f in outcome.findings if f.code == "CHECK_FAILED"} == {check}  # each channel tried
    [entry] = host.records()["entry"]
    assert entry["resource"]["status"] == "not-done"


def test_send_many_fails_only_the_request_a_check_could_not_check_and_goes_on(
        service: ShimServer, make_host: Callable[..., Host], check: str) -> None:
    """Inline: the consent service is stopped by its PID after the first request and started
    after the second. The second fails as 'try again' (error transient, no rule code), nothing
    of it filed; the first and third go."""
    host = checked_host(make_host, service, check=check)

    def requests() -> Iterator[Request]:
        yield reminder(rid="m-1")
        service.stop()
        yield reminder(rid="m-2")
        service.start()
        yield reminder(rid="m-3")

    first, down, third = host.send_many(requests())
    assert (first.status, third.status) == (Status.SENT, Status.SENT)
    assert down.status is Status.FAILED and down.error == "transient" and down.findings == ()
    assert check in down.explanation[0] and service.base_url in down.explanation[0]
    assert host.storage.records.for_request("m-2") == [] and len(sink(host)) == 2


@pytest.fixture
def api(service: ShimServer, make_host: Callable[..., Host], check: str) -> Iterator[ApiClient]:
    host = checked_host(make_host, service, NO_NOTIFY, check=check)
    client = ApiClient(host, create_app(host))
    yield client
    client.close()


@pytest.mark.parametrize("path", ["/fhir/CommunicationRequest", "/fhir/CommunicationRequest/$check"])
def test_the_api_answers_503_with_the_services_retry_after_while_a_check_cannot_answer(
        service: ShimServer, api: ApiClient, path: str) -> None:
    service.control("fail", status=503, count=1000, retry_after=7)
    answer = api.call("POST", path, fhir_reminder("a-down"))
    assert_try_again(answer)
    assert answer.headers["retry-after"] == "7"
    # The patient was found: the words do not blame the directory.
    assert "looked up" not in body(answer)["issue"][0]["diagnostics"]
    assert api.host.storage.records.request("a-down") is None and sink(api.host) == []
    service.control("fail", status=503, count=0)
    again = api.call("POST", path, fhir_reminder("a-down"))
    assert again.status_code == (201 if path.endswith("CommunicationRequest") else 200), again.text


def test_emrcomm_send_exits_4_try_again_while_a_checks_server_is_stopped(
        service: ShimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], check: str) -> None:
    monkeypatch.setattr(manager, "discover", lambda: with_check(check))
    config = str(write_config(tmp_path, check_table(service, check)))
    request = tmp_path / "s-down.json"
    request.write_text(json.dumps(fhir_reminder("s-down")), encoding="utf-8")
    service.stop()
    assert main(["send", str(request), "--config", config]) == 4
    out, err = capsys.readouterr()
    assert out == "" and f"plugin '{check}'" in err and "is unavailable" in err and "Traceback" not in err
    assert "CHECK_FAILED" not in out + err
    service.start()
    assert main(["send", str(request), "--config", config]) == 0
    assert "request s-down: SENT on sms" in capsys.readouterr().out


def test_a_late_message_whose_check_cannot_answer_is_given_back_unsent_and_goes_once_it_is_back(
        service: ShimServer, make_host: Callable[..., Host], clock: Clock) -> None:
    """Decided at 21:30 (held for quiet hours), it leaves at 08:05, past recheck_after, so the
    validators judge it again (its words are not inspected again: they have not changed): the consent service stopped, it is given back unsent, its attempt
    too (never a failed attempt towards a dead letter), and sent once the service is back."""
    host = checked_host(make_host, service, QUEUE)
    clock.now = toronto(21, 30)
    outcome = host.send(reminder(rid="n-1"))
    assert outcome.status is Status.HELD
    [record_id] = outcome.record_ids
    service.stop()  # by its PID
    clock.now = toronto(8, 5, day=24)
    stats = worker(host).run(once=True)
    assert (stats.sent, stats.unchecked, stats.dead, stats.retried) == (0, 1, 0, 0) and sink(host) == []
    row = outbox_row(host)
    assert row["state"] == "retry" and row["attempts"] == 0
    assert dt.datetime.fromisoformat(row["not_before"]) == toronto(8, 5, 10, day=24)  # one backoff_base
    assert status_of(host, record_id) != "not-done"
    service.start()
    clock.now = toronto(8, 5, 10, day=24)
    assert worker(host).run(once=True).sent == 1 and status_of(host, record_id) == "completed"
