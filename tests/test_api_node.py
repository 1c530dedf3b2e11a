"""A non-Python EMR against a real ``emrcomm serve`` process on 127.0.0.1: a node script with a
stock FHIR client (npm fhir-kit-client) and JOSE library (npm jose) authenticates with a signed
assertion, sends reminders and a clinician's note, checks, searches, records a front-desk
opt-out and receives the Subscription notification on its own HTTP listener."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from api_kit import ClientKey
from emrcomm.audit import entries
from emrcomm.config import load_config
from emrcomm.host import Host
from servers import free_port, serve_ready
from support import REPO, small_clinic, write_config
from test_hostile_flood import EMRCOMM

pytestmark = pytest.mark.node
SCRIPT = REPO / "tests" / "node" / "api_client.mjs"
HEALTH_CARD = "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """`emrcomm serve` as a process (its clock is the test's EMRCOMM_CLOCK), notifying every 0.2 s."""
    bundle = small_clinic()
    [alex] = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "on-en"]
    alex["identifier"] = [{"system": HEALTH_CARD, "value": "1234567890"}]  # the script names Alex by it too
    write_config(tmp_path, "\n[api]\nnotify_poll_seconds = 0.2\n", bundle=bundle)
    for _ in range(5):
        port = free_port()
        log = (tmp_path / "serve.log").open("wb")
        process = subprocess.Popen([str(EMRCOMM), "serve", "--config", str(tmp_path / "emrcomm.toml"), "--port",
                                    str(port)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            if serve_ready(port, process, 30):
                yield tmp_path, port
                return
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(20)
            log.close()
    pytest.fail("emrcomm serve did not start: " + (tmp_path / "serve.log").read_text(errors="replace")[-2000:])


def add_client(folder: Path, key: ClientKey) -> str:
    """Registered the way a clinic does it: `emrcomm clients add`."""
    (folder / "emr.jwks").write_text(json.dumps(key.jwks()), encoding="utf-8")
    done = subprocess.run([str(EMRCOMM), "--json", "clients", "add", "Node EMR", "--config", str(folder / "emrcomm.toml"),
                           "--jwks", str(folder / "emr.jwks"), "--scope", "system/*.read system/*.write"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["client_id"])


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_node_fhir_client_uses_the_api_end_to_end(serve: tuple[Path, int], alg: str) -> None:
    folder, port = serve
    key = ClientKey(alg)
    client_id = add_client(folder, key)
    pem = folder / "emr-key.pem"
    pem.write_bytes(key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "EMRCOMM_FHIR_BASE": f"http://127.0.0.1:{port}/fhir",
           "EMRCOMM_CLIENT_ID": client_id, "EMRCOMM_CLIENT_KEY": str(pem), "EMRCOMM_CLIENT_KID": key.kid,
           "EMRCOMM_CLIENT_ALG": alg, "EMRCOMM_CLOCK": os.environ["EMRCOMM_CLOCK"]}
    done = subprocess.run(["node", str(SCRIPT)], capture_output=True, text=True, timeout=180, env=env,
                          cwd=SCRIPT.parent, check=False)
    assert done.stdout.strip(), done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, (report, done.stderr[-3000:], (folder / "serve.log").read_text()[-3000:])
    print(json.dumps(report, indent=1))
    steps = report["steps"]

    assert steps["token"]["status"] == 200 and "system/CommunicationRequest.write" in steps["token"]["scope"]
    assert steps["replay"] == {"status": 401, "error": "invalid_client"}
    assert [r["status"] for r in steps["reminders"]] == [201, 201]
    assert all(c["medium"] == "SMSWRIT" and c["status"] == "completed"
               for r in steps["reminders"] for c in r["communications"])
    assert steps["repeat"] == {"status": 200}
    assert steps["by_identifier"] == {"status": 201, "subjects": ["Patient/on-en", "Patient/on-en"],
                                      "shows_number": False}  # the request as filed, its SMS
    assert steps["note"]["status"] == 201 and steps["note"]["media"][0] == "ONLINEWRIT"  # the portal, then a notice
    assert steps["check"]["resourceType"] == "OperationOutcome" and "CONSENT_REVOKED" in steps["check"]["codes"]
    assert steps["search"]["pages"] >= 2 and len(steps["search"]["ids"]) == len(set(steps["search"]["ids"])) >= 3
    assert steps["optout"]["status"] == 201
    assert "SMSWRIT" not in steps["after_optout"].get("media", ()), steps["after_optout"]
    note = steps["notification"]
    assert note["method"] == "PUT" and note["url"] == f"/emr/hooks/Consent/{steps['optout']['id']}"
    assert note["event"] == "optout" and note["verified"] and note["forged_rejected"]
    assert note["authorization"] == "Bearer emr-side-secret"  # the header the Subscription asked for
    assert (note["resource"], note["status"], note["source"]) == ("Consent", "inactive", "front desk, in person")
    assert all(n["verified"] for n in steps["message_notifications"])

    # What the server did, read from its store: one SMS per reminder, the opt-out in the ledger.
    with Host(load_config(folder / "emrcomm.toml"), read_only=True) as host:
        sent = [json.loads(line) for line in (folder / "out" / "sms.jsonl").read_text().splitlines()]
        assert len([m for m in sent if m.get("to") == "+16135550123"]) >= 1
        last = host.storage.consent.last(channel="sms", address="+16135550123")
        assert last is not None and last.revokes and last.source == "front desk, in person"
        calls = [e for e in entries(host.storage) if e["kind"] == "api.call"]
    assert calls and {e["client"] for e in calls} == {client_id}
    assert {"create CommunicationRequest", "search Communication", "create Consent"} <= {e["operation"] for e in calls}
    log = (folder / "serve.log").read_text(errors="replace")
    assert "Traceback" not in log and "+16135550123" not in log and "levothyroxine" not in log
    assert "1234567890" not in log
