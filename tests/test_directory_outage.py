"""When the directory cannot answer: the real FHIR server (tests/fhir_server) that ``fhir-directory``
reads patients from is stopped by its PID, frozen past the plugin's timeout, or made to answer
badly. Whatever the door (Host.send, send_many, preview, the FHIR API, ``emrcomm send``), the
message does not go, nothing is filed, the patient is not called unknown, and the same request
goes once the server is back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api_kit import ApiClient
from conftest import Clock
from emrcomm import PluginUnavailable
from emrcomm.cli import main
from emrcomm.host import Host
from emrcomm.model import Request, Status
from emrcomm.web import create_app
from fhir_server.server import ShimServer, shared_server
from support import BASE_CONFIG, merged_pair, write_config
from test_api import NO_NOTIFY, batch_of, body, consent
from test_api import reminder as fhir_reminder
from test_fhir_server import MRN, directory_table, load_clinic
from test_pipeline import reminder, sms_sink
from test_worker import QUEUE, as_payload_v2, outbox_row, status_of, toronto, worker

pytestmark = pytest.mark.node

TIMEOUT = 0.5  # the plugin's timeout: a frozen server is given up on after it


@pytest.fixture
def fhir() -> Iterator[ShimServer]:
    yield from running_clinic()


def running_clinic() -> Iterator[ShimServer]:
    """The session's FHIR server, running, holding the small clinic; left running and awake."""
    server = shared_server()
    server.reset()
    load_clinic(server)
    yield server
    if server.running:
        server.resume()
        server.control("fail", status=503, count=0)
    server.ensure_running()


def server_host(make_host: Callable[..., Host], server: ShimServer, tmp_path: Path, extra: str = "") -> Host:
    """A host whose only directory is the FHIR server (the Bundle directory knows nobody)."""
    (tmp_path / "empty.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    text = BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "empty.json"')
    return make_host(config_text=text + directory_table(server, retries=0, timeout=TIMEOUT) + extra)


@pytest.fixture
def host(fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> Host:
    return server_host(make_host, fhir, tmp_path)


def stopped(server: ShimServer) -> None:
    server.stop()


def frozen(server: ShimServer) -> None:
    server.pause()


def answering_500(server: ShimServer) -> None:
    server.control("fail", status=500, count=1000)


def answering_html(server: ShimServer) -> None:
    server.control("fail", status=200, count=1000, body="html")  # a proxy's page, 200 OK


def answering_not_a_patient(server: ShimServer) -> None:
    server.control("fail", status=200, count=1000)  # an OperationOutcome, 200 OK


BREAKS = {"stopped": stopped, "frozen": frozen, "answering-500": answering_500, "answering-html": answering_html,
          "answering-not-a-patient": answering_not_a_patient}


def mended(server: ShimServer) -> None:
    if not server.running:
        server.start()
    server.resume()
    server.control("fail", status=503, count=0)


@pytest.mark.parametrize("broken", BREAKS)
def test_send_and_preview_raise_unavailable_and_send_nothing_while_the_directory_cannot_answer(
        fhir: ShimServer, host: Host, broken: str) -> None:
    BREAKS[broken](fhir)
    with pytest.raises(PluginUnavailable, match=rf"fhir-directory.*{fhir.base_url} is unavailable"):
        host.send(reminder(rid="r-down"))
    with pytest.raises(PluginUnavailable):
        host.preview(reminder(rid="r-peek"))
    assert host.records()["total"] == 0 and sms_sink(host) == []
    assert host.storage.records.request("r-down") is None
    mended(fhir)
    assert host.send(reminder(rid="r-down")).status is Status.SENT  # the same request, once it is back


def test_a_merged_patient_is_not_checked_while_the_consents_of_the_chart_merged_away_cannot_be_read(
        fhir: ShimServer, host: Host) -> None:
    # Fail closed: the old chart may hold the patient's refusal, so a check without its Consents
    # is no check. The server reads Patient/blake and its Consents, then answers nothing more.
    for resource in merged_pair():
        fhir.put(resource)
    fhir.control("fail", status=503, count=1000, skip=2)
    with pytest.raises(PluginUnavailable, match=rf"fhir-directory.*{fhir.base_url} is unavailable"):
        host.send(reminder("Patient/blake", rid="r-merged"))
    assert host.records()["total"] == 0 and sms_sink(host) == []
    mended(fhir)
    assert host.send(reminder("Patient/blake", rid="r-merged")).status is Status.SENT


@pytest.mark.parametrize("mode", ["inline", "queue"])
def test_send_many_fails_only_the_request_the_directory_could_not_answer_and_goes_on(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, mode: str) -> None:
    """The directory cannot answer for the second of three requests: it fails as 'try again'
    (error transient, no rule code: nobody said the patient is unknown), nothing of it filed;
    the first and third go. Inline, requests are taken one at a time: the server is stopped by
    its PID after the first and started after the second. Queued, a group is read before it is
    decided: the server answers 503 to the second's lookup (after the first's two requests)."""
    host = server_host(make_host, fhir, tmp_path, f'\n[delivery]\nmode = "{mode}"\n')

    def requests() -> Iterator[Request]:
        yield reminder(rid="m-1")
        if mode == "inline":
            fhir.stop()
        yield reminder(rid="m-2")
        if mode == "inline":
            fhir.start()
        yield reminder(rid="m-3")

    if mode == "queue":
        fhir.control("fail", status=503, count=1, skip=2)  # m-1's Patient and Consent reads pass
    outcomes = list(host.send_many(requests()))
    assert [o.request_id for o in outcomes] == ["m-1", "m-2", "m-3"]
    first, down, third = outcomes
    assert down.status is Status.FAILED and down.error == "transient" and down.findings == ()
    assert fhir.base_url in down.explanation[0] and "send the request again" in down.explanation[0]
    assert host.storage.records.request("m-2") is None and host.storage.records.for_request("m-2") == []
    assert {first.status, third.status} == {Status.SENT if mode == "inline" else Status.QUEUED}


@pytest.fixture
def api(fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> Iterator[ApiClient]:
    host = server_host(make_host, fhir, tmp_path, NO_NOTIFY)
    client = ApiClient(host, create_app(host))
    yield client
    client.close()


def both_ways(rid: str) -> dict[str, Any]:
    """A CommunicationRequest naming Alex by reference and by his MRN: the API asks the
    directory, while reading it, that both are one patient."""
    return {**fhir_reminder(rid), "subject": {"reference": "Patient/on-en",
                                              "identifier": {"system": MRN, "value": "MRN-on-en"}}}


def assert_try_again(answer: Any) -> None:
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) > 0
    [issue] = body(answer)["issue"]
    assert issue["code"] == "transient" and "send the same request again" in issue["diagnostics"]
    assert "RECIPIENT_UNKNOWN" not in answer.text and "MRN-on-en" not in answer.text


@pytest.mark.parametrize("named", ["by-reference", "by-reference-and-identifier"])
@pytest.mark.parametrize("path", ["/fhir/CommunicationRequest", "/fhir/CommunicationRequest/$check"])
def test_the_api_answers_503_with_retry_after_while_the_directory_is_stopped(
        fhir: ShimServer, api: ApiClient, path: str, named: str) -> None:
    sent = fhir_reminder("a-down") if named == "by-reference" else both_ways("a-down")
    fhir.stop()
    assert_try_again(api.call("POST", path, sent))
    assert api.host.storage.records.request("a-down") is None and sms_sent_by(api) == []
    fhir.start()
    again = api.call("POST", path, sent)
    assert again.status_code == (201 if path.endswith("CommunicationRequest") else 200), again.text


@pytest.mark.parametrize(("asked", "passed_on"), [(7, "7"), (10**9, "300")])  # a day's wait: five minutes
def test_the_api_passes_on_the_retry_after_the_directory_server_asked_for(
        fhir: ShimServer, api: ApiClient, asked: int, passed_on: str) -> None:
    fhir.control("fail", status=503, count=10, retry_after=asked)
    answer = api.call("POST", "/fhir/CommunicationRequest", fhir_reminder("a-busy"))
    assert_try_again(answer)
    assert answer.headers["retry-after"] == passed_on


def test_a_batch_entry_whose_subject_the_directory_could_not_check_is_503_and_the_others_go(
        fhir: ShimServer, api: ApiClient) -> None:
    """Read first: the second entry names Alex both ways, and the server answers 503 to the
    first lookup that checks it; the first entry, by reference, is decided after and goes."""
    fhir.control("fail", status=503, count=1)
    answer = api.call("POST", "/fhir", batch_of(fhir_reminder("b-1"), both_ways("b-2")))
    assert answer.status_code == 200, answer.text
    sent, down = (e["response"] for e in body(answer)["entry"])
    assert sent["status"].startswith("201") and down["status"].startswith("503"), answer.text
    assert down["outcome"]["issue"][0]["code"] == "transient"
    assert api.host.storage.records.request("b-2") is None and len(sms_sent_by(api)) == 1


def test_a_batch_entry_the_directory_could_not_find_for_now_is_503_and_the_others_go(
        fhir: ShimServer, api: ApiClient) -> None:
    """Three entries for Alex, decided in order: the server answers 503 to the second's lookup
    (after the first's Patient and Consent reads). It is 503 (send it again), not 500, and not
    the end of the batch: the third goes."""
    fhir.control("fail", status=503, count=1, skip=2)
    answer = api.call("POST", "/fhir", batch_of(fhir_reminder("c-1"), fhir_reminder("c-2"), fhir_reminder("c-3")))
    assert answer.status_code == 200, answer.text
    statuses = [e["response"]["status"].split()[0] for e in body(answer)["entry"]]
    assert statuses == ["201", "503", "201"], answer.text
    down = body(answer)["entry"][1]["response"]["outcome"]["issue"][0]
    assert down["code"] == "transient" and "send the same request again" in down["diagnostics"]
    assert api.host.storage.records.request("c-2") is None and len(sms_sent_by(api)) == 2


def sms_sent_by(api: ApiClient) -> list[dict[str, Any]]:
    return sms_sink(api.host)


def cli_config(server: ShimServer, tmp_path: Path) -> Path:
    return write_config(tmp_path, directory_table(server, retries=0, timeout=TIMEOUT),
                        bundle={"resourceType": "Bundle", "type": "collection"})


def request_files(tmp_path: Path, *rids: str) -> list[str]:
    paths = []
    for rid in rids:
        path = tmp_path / f"{rid}.json"
        path.write_text(json.dumps(fhir_reminder(rid)), encoding="utf-8")
        paths.append(str(path))
    return paths


def test_emrcomm_send_exits_4_try_again_while_the_directory_is_stopped(
        fhir: ShimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = cli_config(fhir, tmp_path)
    [one] = request_files(tmp_path, "s-down")
    fhir.stop()
    assert main(["send", one, "--config", str(config)]) == 4
    out, err = capsys.readouterr()
    assert out == "" and "is unavailable" in err and "send the request again" in err
    assert "Traceback" not in err and "RECIPIENT_UNKNOWN" not in out + err
    fhir.start()
    assert main(["send", one, "--config", str(config)]) == 0
    assert "request s-down: SENT on sms" in capsys.readouterr().out


def test_emrcomm_send_of_several_files_goes_on_past_one_the_directory_could_not_answer(
        fhir: ShimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = cli_config(fhir, tmp_path)
    files = request_files(tmp_path, "s-1", "s-2", "s-3")
    fhir.control("fail", status=503, count=1, skip=2)  # s-1's Patient and Consent reads pass
    assert main(["send", *files, "--config", str(config), "--json"]) == 4
    first, down, third = json.loads(capsys.readouterr().out)
    assert down["retry"] is True and "is unavailable" in down["error"]
    assert first["outcome"]["status"] == third["outcome"]["status"] == "sent"
    fhir.control("fail", status=503, count=1, skip=2)
    assert main(["send", *request_files(tmp_path, "t-1", "t-2", "t-3"), "--config", str(config)]) == 4
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "3 requests: 2 sent, 1 not sent now (try again)"
    assert "request 2 of 3" in err and "is unavailable" in err and "Traceback" not in err


def test_emrcomm_send_of_a_file_to_fix_beside_one_to_send_again_exits_2_not_4(
        fhir: ShimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One file meets the directory stopped (4 alone: send it again later), the other is not a
    request (2 alone: fix it). Together 2: a script that sends the same files again on 4 would
    send the file to fix for ever. Each file's line says which it was."""
    config = cli_config(fhir, tmp_path)
    [later] = request_files(tmp_path, "f-later")
    to_fix = tmp_path / "f-fix.json"
    to_fix.write_text(json.dumps({**fhir_reminder("f-fix"), "status": "sent-already"}), encoding="utf-8")
    fhir.stop()
    assert main(["send", later, str(to_fix), "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "2 requests: 1 not sent now (try again), 1 not read (error)"
    assert "request 1 of 2" in err and "is unavailable" in err and "request 2 of 2" in err
    assert main(["send", later, "--config", str(config)]) == 4  # alone, it is to be sent again
    capsys.readouterr()
    fhir.start()
    assert main(["send", later, str(to_fix), "--config", str(config), "--json"]) == 2
    sent, refused = json.loads(capsys.readouterr().out)
    assert sent["outcome"]["status"] == "sent" and refused["code"] == "invalid" and "retry" not in refused


def test_emrcomm_check_of_a_patient_exits_4_while_the_directory_is_stopped(
        fhir: ShimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = cli_config(fhir, tmp_path)
    argv = ["check", "--patient", "Patient/on-en", "--text", "See you Tuesday at 9.", "--config", str(config)]
    fhir.stop()
    assert main(argv) == 4
    out, err = capsys.readouterr()
    assert "is unavailable" in err and "Traceback" not in err and "RECIPIENT_UNKNOWN" not in out + err
    fhir.start()
    assert main(argv) == 0, capsys.readouterr()


def test_a_queued_message_leaves_without_the_directory_and_an_old_row_that_needs_it_is_held(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path, clock: Clock) -> None:
    """A worker does not ask the directory about a row decided just now: the row keeps its
    window, and a revocation is read from the consent ledger. A row queued by 0.2 (no window
    kept) asks for the patient's window again as it leaves; with the server stopped it keeps the
    narrowest window (08:00-20:00, fail closed): at 20:30 it is held, not sent and not failed. In
    the morning, decided the day before, it asks the directory again before it goes
    (``recheck_after``): given back unsent while the server is stopped, sent once it is back."""
    host = server_host(make_host, fhir, tmp_path, QUEUE)
    [kept] = host.send(reminder(rid="w-1")).record_ids
    fhir.stop()
    assert worker(host).run(once=True).sent == 1 and status_of(host, kept) == "completed"
    fhir.start()
    [old] = host.send(reminder(rid="w-2")).record_ids
    as_payload_v2(host)
    fhir.stop()
    clock.now = toronto(20, 30)  # inside the clinic's 08:00-21:00, outside 08:00-20:00
    assert worker(host).run(once=True).held == 1 and len(sms_sink(host)) == 1
    assert dt.datetime.fromisoformat(outbox_row(host)["not_before"]) == toronto(8, day=24)
    assert status_of(host, old) == "on-hold"
    clock.now = toronto(8, day=24)
    assert worker(host).run(once=True).unchecked == 1 and len(sms_sink(host)) == 1
    fhir.start()
    clock.now = toronto(8, 1, day=24)
    assert worker(host).run(once=True).sent == 1 and status_of(host, old) == "completed"


@pytest.mark.parametrize("reference", ["Patient/..", "Patient/%2e%2e"])
def test_a_reference_that_is_no_patients_id_on_the_server_is_unknown_not_a_500(
        fhir: ShimServer, api: ApiClient, reference: str) -> None:
    """Not asked as written: '..' (or its escape) would read another path of the server, which
    refuses it 400 (the API answered 500); each is a patient nobody has, blocked and said so."""
    answer = api.call("POST", "/fhir/CommunicationRequest", fhir_reminder("h-1", patient=reference))
    assert answer.status_code == 422, answer.text
    assert "RECIPIENT_UNKNOWN" in answer.text and sms_sent_by(api) == []


def test_a_front_desk_consent_is_503_while_the_directory_that_has_its_address_is_stopped(
        fhir: ShimServer, api: ApiClient) -> None:
    """A Consent without its address takes the patient's from the directory: stopped, it is 503
    (try again), not 500, and the ledger is unchanged."""
    fhir.stop()
    assert_try_again(api.call("POST", "/fhir/Consent", consent()))
    assert api.host.storage.consent.last(channel="sms", address="+16135550123") is None
    fhir.start()
    assert api.call("POST", "/fhir/Consent", consent()).status_code == 201
    assert api.host.storage.consent.last(channel="sms", address="+16135550123") is not None


FORM = {"system": "urn:emr:consent-forms", "value": "F-down"}


def test_a_front_desk_consent_sent_again_while_the_directory_is_stopped_is_answered_as_first_recorded(
        fhir: ShimServer, api: ApiClient) -> None:
    """The EMR's retry of a Consent without its address (the directory gave it), sent while the
    directory's server is stopped: its identifier finds it recorded, and it is answered 200 as
    first recorded, not 503 (the directory was asked before the repeat was found). The same
    identifier saying something else is still a 409; a new Consent still needs the directory."""
    first = api.call("POST", "/fhir/Consent", consent(identifier=[FORM]))
    assert first.status_code == 201, first.text
    fhir.stop()
    again = api.call("POST", "/fhir/Consent", consent(identifier=[FORM]))
    assert again.status_code == 200, again.text
    assert body(again)["id"] == body(first)["id"] and again.headers["location"] == first.headers["location"]
    other = api.call("POST", "/fhir/Consent", consent("active", identifier=[FORM]))
    assert other.status_code == 409, other.text
    assert_try_again(api.call("POST", "/fhir/Consent",
                              consent(identifier=[{**FORM, "value": "F-new"}])))
    assert [(e.channel, e.address, e.action) for e in api.host.storage.consent.history()] == [
        ("sms", "+16135550123", "revoke")]
