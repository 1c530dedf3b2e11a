"""Every official HL7 FHIR R4 example of the four kinds emrcomm reads (Communication,
CommunicationRequest, Consent, Patient; tests/data/fhir-r4-examples) is read, or refused with
a stated reason that a test checks.

The request parser's refusals are in test_requests.py and the Bundle directory's readings in
test_directory.py; this file makes sure no example escapes those tables, checks the refusal of
the Communication examples, and reads the Patient and Consent examples back from a real FHIR
server through ``fhir-directory``.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import test_requests
from emrcomm.errors import RequestError
from emrcomm.fhir import parse_request
from emrcomm.model import Request
from emrcomm.testing import make_context
from emrcomm_directory import PURPOSE_SYSTEM
from emrcomm_fhirserver import DirectoryPlugin
from fhir_server.server import TOKEN_VARIABLE, ShimServer, shared_server
from support import DATA
from test_directory import OFFICIAL_CONSENTS, OFFICIAL_PATIENTS

pytestmark = pytest.mark.node

EXAMPLES = DATA / "fhir-r4-examples"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def named(kind: str) -> list[Path]:
    return sorted(EXAMPLES.glob(f"{kind}-*.json"))


def test_the_examples_are_the_four_kinds_emrcomm_reads() -> None:
    kinds = Counter(load(p)["resourceType"] for p in EXAMPLES.glob("*.json"))
    assert kinds == {"Communication": 3, "CommunicationRequest": 2, "Consent": 12, "Patient": 3}
    assert all(p.name.startswith(load(p)["resourceType"] + "-") for p in EXAMPLES.glob("*.json"))


def test_every_example_has_a_tested_fate() -> None:
    request_test = inspect.getsource(test_requests.test_official_communication_request_examples_are_refused_for_a_stated_reason)
    fates = {
        **{name: "refused by the request parser (below)" for name in COMMUNICATION_REFUSAL},
        **{p.name: "refused by the request parser (test_requests)" for p in named("CommunicationRequest")
           if p.name in request_test},
        **{name: "not a communication consent (test_directory)" for name in OFFICIAL_CONSENTS},
        **{name: "read by the directory (test_directory, and from the server below)" for name in OFFICIAL_PATIENTS},
    }
    assert sorted(fates) == sorted(p.name for p in EXAMPLES.glob("*.json"))


# A Communication says what was sent; the request parser takes only what should be sent.
COMMUNICATION_REFUSAL = {p.name: "resourceType is 'Communication'; expected 'CommunicationRequest': a Communication "
                                 "records a message that was already sent; to ask for one to be sent, post a "
                                 "CommunicationRequest" for p in named("Communication")}


@pytest.mark.parametrize("name", sorted(COMMUNICATION_REFUSAL))
def test_official_communication_example_is_refused_as_not_a_request(name: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_request((EXAMPLES / name).read_text(encoding="utf-8"))
    assert str(err.value) == COMMUNICATION_REFUSAL[name]


# ---------------------------------------------------------------- from a real FHIR server


@pytest.fixture
def examples_on_server() -> Iterator[ShimServer]:
    server = shared_server()
    server.reset()
    for path in [*named("Patient"), *named("Consent")]:
        server.put(load(path))
    yield server


@pytest.fixture
def directory(examples_on_server: ShimServer, tmp_path: Path) -> DirectoryPlugin:
    settings = {"base_url": examples_on_server.base_url, "token": {"env": TOKEN_VARIABLE}}
    return DirectoryPlugin(make_context("fhir-directory", settings, tmp_path))


def find(directory: DirectoryPlugin, ref: str) -> Any:
    return directory.emrcomm_find_recipient(patient_ref=ref, request=Request(ref, "appointment-reminder"))


@pytest.mark.parametrize("name", sorted(OFFICIAL_PATIENTS))
def test_official_patient_example_is_read_from_the_server(directory: DirectoryPlugin, name: str) -> None:
    expected = OFFICIAL_PATIENTS[name]
    recipient = find(directory, f"Patient/{load(EXAMPLES / name)['id']}")
    assert {k: getattr(recipient, k) for k in expected} == expected
    assert recipient.consents == ()  # the official Consents are about privacy, not messaging


def test_official_patient_example_is_found_by_its_identifier(directory: DirectoryPlugin) -> None:
    ident = load(EXAMPLES / "Patient-example.json")["identifier"][0]
    recipient = find(directory, f"Patient?identifier={ident['system']}|{ident['value']}")
    assert recipient is not None and recipient.patient_ref == "Patient/example"


def test_official_consent_examples_on_the_server_are_skipped_with_their_reason(
        directory: DirectoryPlugin, caplog: pytest.LogCaptureFixture) -> None:
    about_f001 = sorted(load(p)["id"] for p in named("Consent") if load(p)["patient"]["reference"] == "Patient/f001")
    with caplog.at_level(logging.DEBUG, logger="emrcomm.fhir.patients"):
        find(directory, "Patient/f001")
    skipped = sorted(r.args[0] for r in caplog.records if r.msg == "Consent/%s skipped: %s")  # type: ignore[index]
    assert skipped == about_f001 and len(about_f001) == 9
    assert {r.args[1] for r in caplog.records if r.msg == "Consent/%s skipped: %s"} == {  # type: ignore[index]
        f"no purpose category in {PURPOSE_SYSTEM}"}
