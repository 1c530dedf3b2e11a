"""docs/api.md is what an integrator copies: every HTTP request in it is sent, in order, to a test
clinic through ``emrcomm serve``'s app, and must get the status line written after it."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from api_kit import ApiClient
from emrcomm.host import Host
from emrcomm.web import create_app
from support import REPO

DOC = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```http\n(.*?)```", DOC, re.S)


def exchanges() -> list[tuple[str, int]]:
    """(request text, expected status) for each request block and the response block after it."""
    out = []
    for block, after in zip(BLOCKS, [*BLOCKS[1:], ""]):
        if block.startswith("HTTP/1.1"):
            continue
        status = re.match(r"HTTP/1\.1 (\d{3}) ", after)
        assert status, f"docs/api.md: the request {block.splitlines()[0]!r} has no 'HTTP/1.1 NNN' block after it"
        out.append((block, int(status.group(1))))
    return out


def filler(values: dict[str, str]) -> Callable[[str], str]:
    """Puts the values a reader gets in step 2 where the doc writes {{token}} and the like."""
    return lambda text: re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)


def test_the_doc_has_a_request_for_each_use() -> None:
    firsts = [block.splitlines()[0] for block, _ in exchanges()]
    for use in ("POST /fhir/auth/token", "POST /fhir/CommunicationRequest ", "POST /fhir/CommunicationRequest/$check",
                "POST /fhir ", "POST /fhir/CommunicationRequest/$batch", "GET /fhir/Communication?",
                "GET /fhir/CommunicationRequest?identifier=",
                "POST /fhir/Consent", "POST /fhir/Subscription", "GET /fhir/metadata"):
        assert any(f.startswith(use) for f in firsts), use
    bodies = " ".join(block for block, _ in exchanges())
    for category in ("appointment-reminder", "results-available", "clinical"):
        assert f'"code": "{category}"' in bodies


def test_the_doc_says_whose_its_patients_are_and_which_to_write_against_the_demo_clinic() -> None:
    # An integrator who copied a request to the demo clinic got 'No directory knows Patient/on-en'.
    from emrcomm.demo_data import generate_clinic

    intro = DOC.split("\n## 1. ")[0]
    named = set(re.findall(r'"(Patient/[\w.-]+)"', " ".join(block for block, _ in exchanges())))
    assert named and all(f"`{patient}`" in intro for patient in named), named
    demo = {e["resource"]["id"] for e in generate_clinic()["entry"] if e["resource"]["resourceType"] == "Patient"}
    written = re.findall(r"`Patient/(demo-\d+)`", intro)
    assert "emrcomm demo" in intro and written and set(written) <= demo, written


def test_every_request_in_the_doc_gets_the_answer_the_doc_shows(make_host: Callable[..., Host]) -> None:
    host = make_host("\n[api]\nnotify = false\n")
    api = ApiClient(host, create_app(host))
    try:
        run_every_request(api, host)
    finally:
        api.close()


def run_every_request(api: ApiClient, host: Host) -> None:
    answers = []
    for block, expected in exchanges():
        head, _, body = block.partition("\n\n")
        lines = head.splitlines()
        method, target, _version = lines[0].split(" ")
        path, _, query = target.partition("?")
        fill = filler({"token": api.token, "client_id": api.client_id,
                       "assertion": quote(api.key.assertion(api.client_id, host.clock()))})
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(": ")
            headers.append((name.lower().encode(), fill(value).encode()))
        data = fill(body).encode()
        answer = api.http.request(method, path, query=query, body=data.rstrip(b"\n") if method == "POST" else b"",
                                  headers=headers)
        answers.append((lines[0], answer.status_code))
        assert answer.status_code == expected, (lines[0], answer.text[:1500])
    assert len(answers) >= 15


@pytest.mark.parametrize("word", ["sms: rejected (CONSENT_REVOKED)", "email: would be chosen"])
def test_what_the_doc_says_check_answers_is_what_it_answers(make_host: Callable[..., Host], word: str) -> None:
    host = make_host("\n[api]\nnotify = false\n")
    api = ApiClient(host, create_app(host))
    block = next(b for b, _ in exchanges() if b.startswith("POST /fhir/CommunicationRequest/$check"))
    answer = api.call("POST", "/fhir/CommunicationRequest/$check", raw=block.partition("\n\n")[2].encode(),
                      headers=[(b"content-type", b"application/fhir+json")])
    api.close()
    assert word in answer.text and word in DOC


def test_the_set_ups_conversion_makes_the_jwks_clients_add_takes_from_the_pem_it_refuses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Step 1 has the clinic make a PEM with openssl, convert it with the doc's command, and register
    the result; the PEM itself is refused with a pointer to that command."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from emrcomm.cli import main
    from support import write_config

    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    (tmp_path / "emr-public.pem").write_bytes(public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    convert = next(b for b in re.findall(r"```sh\n(.*?)```", DOC, re.S) if "to_jwk" in b)
    subprocess.run(["bash", "-c", convert.replace(".venv/bin/python", shlex.quote(sys.executable))],
                   cwd=tmp_path, check=True)
    config = str(write_config(tmp_path))
    scope = ["--scope", "system/Communication.read"]
    assert main(["clients", "add", "OSCAR", "--config", config, "--jwks", str(tmp_path / "emr-public.pem"), *scope]) == 2
    assert "a PEM key" in capsys.readouterr().err
    assert main(["clients", "add", "OSCAR", "--config", config, "--jwks", str(tmp_path / "emr-public.jwks"), *scope]) == 0
    assert "one of these kids in their header: emr-2026" in capsys.readouterr().out
