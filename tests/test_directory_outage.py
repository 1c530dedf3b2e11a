"""When the directory cannot answer: the real FHIR server (tests/fhir_server) that ``fhir-directory``
reads patients from is stopped by its PID, frozen past the plugin's timeout, or made to answer
badly. Whatever the door (Host.send, send_many, preview, the FHIR API, ``emrcomm send``), the
message does not go, nothing is filed, the patient is not called unknown, and the same request
goes once the server is back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emrcomm import PluginUnavailable
from emrcomm.host import Host
from emrcomm.model import Status
from fhir_server.server import ShimServer, shared_server
from support import BASE_CONFIG
from test_fhir_server import directory_table, load_clinic
from test_pipeline import reminder, sms_sink

pytestmark = pytest.mark.node

TIMEOUT = 0.5  # the plugin's timeout: a frozen server is given up on after it


@pytest.fixture
def fhir() -> Iterator[ShimServer]:
    """The session's FHIR server, running, holding the small clinic; left running and awake."""
    server = shared_server()
    server.reset()
    load_clinic(server)
    yield server
    if server.running:
        server.resume()
        server.control("fail", status=503, count=0)
    server.ensure_running()


@pytest.fixture
def host(fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> Host:
    """A host whose only directory is the FHIR server (the Bundle directory knows nobody)."""
    (tmp_path / "empty.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    text = BASE_CONFIG.replace('bundle = "patients.json"', 'bundle = "empty.json"')
    return make_host(config_text=text + directory_table(fhir, retries=0, timeout=TIMEOUT))


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
