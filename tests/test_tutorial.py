"""docs/writing-a-plugin.md, followed to the letter: its files (every fenced block with a
``title=``) are extracted from the Markdown, built into a distribution and pip-installed in a
fresh virtual environment; the clinic enables the plugin with the config the page shows; then
``emrcomm serve`` and ``emrcomm send`` run as processes of their own, and the plugin delivers a
reminder, is refused clinical text, files its records, receives a receipt and a reply through
``serve``; the page's conformance tests pass; ``emrcomm demo`` still runs with it installed. The
kit fails a plugin that breaks the contract (a copy of the tutorial's, made to misbehave)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from servers import free_port
from support import BASE_CONFIG, REPO, fhir_request, small_clinic

PAGE = (REPO / "docs" / "writing-a-plugin.md").read_text(encoding="utf-8")
FILES = dict(re.findall(r"^```\w+ title=(\S+)\n(.*?)^```", PAGE, re.S | re.M))
NOTE = "Your biopsy showed no cancer; Dr. Roy will call you about the next steps."

pytestmark = [pytest.mark.slow, pytest.mark.index]  # pip builds the plugin with setuptools from the index


def test_the_page_gives_every_file_of_the_plugin_and_the_clinic() -> None:
    assert set(FILES) >= {"acme-app/pyproject.toml", "acme-app/emrcomm_acme_app/__init__.py",
                          "acme-app/emrcomm_acme_app/schema.json", "acme-app/tests/test_conformance.py",
                          "clinic/emrcomm.toml", "clinic/patient.json"}


class Tutorial:
    """The page's files in ``root``, and a virtual environment with the plugin installed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for name, body in FILES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(body, encoding="utf-8")
        self.venv = root / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True, timeout=300)
        self.python = self.venv / "bin" / "python"
        # emrcomm and its dependencies come from this checkout's environment (installing them
        # again from an index is the fresh-virtualenv test's job); the plugin is pip-installed.
        site = Path(subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        (site / "emrcomm-checkout.pth").write_text(
            f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n", encoding="utf-8")
        done = self.run("-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
                        str(root / "acme-app"))
        assert done.returncode == 0, done.stdout + done.stderr

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), *args], capture_output=True, text=True, cwd=cwd,
                              env={**os.environ, **(env or {})}, timeout=timeout, check=False)

    def emrcomm(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("-m", "emrcomm", *args, **kw)


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Tutorial:
    return Tutorial(tmp_path_factory.mktemp("tutorial"))


def test_the_plugin_is_installed_as_a_distribution_of_its_own(tutorial: Tutorial) -> None:
    done = tutorial.run("-c", "from importlib import metadata; d = metadata.distribution('emrcomm-acme-app');"
                              "print([(e.name, e.value) for e in d.entry_points if e.group == 'emrcomm'])")
    assert done.returncode == 0 and done.stdout.strip() == "[('acme-app', 'emrcomm_acme_app:Plugin')]"
    assert "site-packages/emrcomm_acme_app" in tutorial.run("-c", "import emrcomm_acme_app;"
                                                                  "print(emrcomm_acme_app.__file__)").stdout


def test_the_pages_conformance_tests_pass(tutorial: Tutorial) -> None:
    done = tutorial.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=tutorial.root / "acme-app")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b1[0-9] passed\b", done.stdout), done.stdout[-1000:]  # every check ran, none skipped
    assert "skipped" not in done.stdout


# the clinic -----------------------------------------------------------------------------------------
@pytest.fixture
def stand_in(tutorial: Tutorial, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The page's own stand-in for Acme's API, in this process."""
    monkeypatch.syspath_prepend(str(tutorial.root / "acme-app"))
    monkeypatch.syspath_prepend(str(tutorial.root / "acme-app" / "tests"))
    import acme_stand_in

    server = acme_stand_in.AcmeStandIn()
    yield server
    server.stop()
    for name in [m for m in sys.modules if m.startswith(("emrcomm_acme_app", "acme_stand_in"))]:
        del sys.modules[name]


@pytest.fixture
def clinic(tutorial: Tutorial, stand_in: Any, tmp_path: Path) -> Iterator[tuple[Path, str, dict[str, str]]]:
    """A clinic with the page's config and patient, and ``emrcomm serve`` running for it."""
    import acme_stand_in

    bundle = small_clinic()
    bundle["entry"] += [{"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in (e["resource"] for e in json.loads(FILES["clinic/patient.json"])["entry"])]
    (tmp_path / "patients.json").write_text(json.dumps(bundle), encoding="utf-8")
    # The page's table, pointed at the stand-in instead of api.acme.example: the one change.
    table = FILES["clinic/emrcomm.toml"].replace("https://api.acme.example/v1", stand_in.url)
    config = tmp_path / "emrcomm.toml"
    config.write_text(BASE_CONFIG + "\n" + table, encoding="utf-8")
    env = {"ACME_APP_TOKEN": acme_stand_in.TOKEN, "ACME_APP_WEBHOOK_SECRET": acme_stand_in.SECRET}
    log = (tmp_path / "serve.log").open("wb")
    for _ in range(5):
        port = free_port()
        process = subprocess.Popen([str(tutorial.python), "-m", "emrcomm", "serve", "--config", str(config),
                                    "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env={**os.environ, **env})
        base = f"http://127.0.0.1:{port}"
        try:
            if _up(base, process):
                yield config, base, env
                return
        finally:
            _stop(process)
    log.close()
    pytest.fail("emrcomm serve did not start: " + (tmp_path / "serve.log").read_text(errors="replace")[-2000:])


def _up(base: str, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return True
        except requests.ConnectionError:
            time.sleep(0.1)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)


def send(tutorial: Tutorial, config: Path, env: dict[str, str], request: dict[str, Any]) -> dict[str, Any]:
    path = config.parent / f"{request['id']}.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    done = tutorial.emrcomm("send", str(path), "--config", str(config), "--json", env=env)
    assert done.returncode in (0, 3), done.stderr
    outcome: dict[str, Any] = json.loads(done.stdout)["outcome"]
    return outcome


def chart(tutorial: Tutorial, config: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = tutorial.emrcomm("records", "--fhir", "--patient", "Patient/acme-1", "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    return [e["resource"] for e in json.loads(done.stdout).get("entry", [])]


def test_the_plugin_delivers_is_refused_clinical_text_files_and_receives_through_serve(
        tutorial: Tutorial, stand_in: Any, clinic: tuple[Path, str, dict[str, str]]) -> None:
    config, base, env = clinic
    # A reminder goes by the app: a category the channel declares, a consent coded with its name.
    reminder = send(tutorial, config, env, fhir_request(
        "Patient/acme-1", "appointment-reminder", rid="acme-r1",
        text="Riverside Family Health: your appointment is on Tuesday at 10:30."))
    assert reminder["status"] == "sent" and reminder["channels"] == ["app"], reminder
    [record] = reminder["record_ids"]
    assert [to for kept in stand_in.messages.values() for _id, to, _text in kept] == ["acme-user-4471"]
    # Clinical text never goes by the app: the portal keeps it, the app carries a notice.
    note = send(tutorial, config, env, fhir_request("Patient/acme-1", "clinical", rid="acme-n1", text=NOTE))
    assert note["channels"] == ["portal", "app"], note
    texts = [text for kept in stand_in.messages.values() for _id, _to, text in kept]
    assert len(texts) == 2 and not any("biopsy" in t or "cancer" in t for t in texts)
    # A reminder whose words are clinical is refused for the app by the content rules.
    refused = send(tutorial, config, env, fhir_request(
        "Patient/acme-1", "appointment-reminder", rid="acme-r2", text=f"Tuesday at 10:30. {NOTE}"))
    assert refused["channels"] == ["portal", "app"], refused
    assert "CLINICAL_CONTENT" in {f["code"] for f in refused["findings"]}
    texts = [text for kept in stand_in.messages.values() for _id, _to, text in kept]
    assert len(texts) == 3 and not any("biopsy" in t or "cancer" in t for t in texts)
    # Its records are in the chart, filed as any channel's.
    communications = {c["id"]: c for c in chart(tutorial, config, env)}
    assert communications[record]["status"] == "completed"
    assert communications[record]["medium"][0]["coding"][0]["code"] == "ONLINEWRIT"
    # Acme calls back through serve: a forged receipt is refused, the real one is kept once.
    call = stand_in.receipt(base, record, delivered=True, authentic=False)
    assert requests.post(base + call.path, data=call.data, headers=dict(call.headers), timeout=10).status_code == 403
    call = stand_in.receipt(base, record, delivered=True, authentic=True)
    for _ in range(2):  # Acme retries its callback
        assert requests.post(base + call.path, data=call.data, headers=dict(call.headers), timeout=10).status_code == 200
    notes = [n["text"] for n in chart_by_id(tutorial, config, env)[record].get("note", [])]
    assert sum(n.startswith("delivered ") for n in notes) == 1, notes
    # A patient's answer in the app is filed in response to the last message the app carried to them.
    call = stand_in.reply(base, "acme-user-4471", "Thank you, see you Tuesday", authentic=True)
    assert requests.post(base + call.path, data=call.data, headers=dict(call.headers), timeout=10).status_code == 200
    replies = [c for c in chart(tutorial, config, env)  # the patient's, not the clinic's automatic answer to it
               if c.get("inResponseTo") and c.get("sender", {}).get("reference", "").startswith("Patient/")]
    last_notice = refused["record_ids"][refused["channels"].index("app")]
    assert [r["inResponseTo"][0]["reference"] for r in replies] == [f"Communication/{last_notice}"]
    assert replies[0]["medium"][0]["coding"][0]["code"] == "ONLINEWRIT"


def chart_by_id(tutorial: Tutorial, config: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in chart(tutorial, config, env)}


def test_emrcomm_demo_still_runs_with_the_plugin_installed(tutorial: Tutorial, tmp_path: Path) -> None:
    done = tutorial.emrcomm("demo", "--data", str(tmp_path / "demo"), "--patients", "20", "--json", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["requests"] > 0


# the kit can fail ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "failing"), [
    (('headers={"Idempotency-Key": delivery.key}', 'headers={"Idempotency-Key": uuid.uuid4().hex}'),
     "test_a_repeated_key_is_not_a_second_message"),
    (('reason="timeout",\n                                         ambiguous=True)', 'reason="timeout")'),
     "test_errors_map_to_the_contract[timeout]"),
    (('if answer.status_code >= 500 or answer.status_code == 429:', 'if answer.status_code == 429:'),
     "test_errors_map_to_the_contract[unavailable]"),
    (('if not secret or not hmac.compare_digest(given.encode(), signature(secret, body).encode()):',
      'if False:'), "test_receipts_reach_the_host_through_its_routes"),
])
def test_the_kit_fails_a_plugin_that_breaks_the_contract(tutorial: Tutorial, tmp_path: Path,
                                                         change: tuple[str, str], failing: str) -> None:
    copy = tmp_path / "acme-app"
    shutil.copytree(tutorial.root / "acme-app", copy)
    old, new = change
    for source in (copy / "emrcomm_acme_app").glob("*.py"):
        text = source.read_text(encoding="utf-8")
        if old in text:
            source.write_text("import uuid\n" + text.replace(old, new), encoding="utf-8")
            break
    else:
        raise AssertionError(f"the page no longer has {old!r}")
    # This checkout's Python, with the broken copy first on the path (the tutorial's venv has the good one).
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", "-k",
                           failing.split("[")[0]], cwd=copy, env={**os.environ, "PYTHONPATH": str(copy)},
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1, done.stdout[-3000:]
    assert f"FAILED tests/test_conformance.py::TestAcmeApp::{failing}" in done.stdout, done.stdout[-3000:]
