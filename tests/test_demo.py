"""`emrcomm demo`: the main job, on embedded defaults, with nothing else installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emrcomm.cli import main
from emrcomm.demo import CLINICAL_NOTES, MISPLACED_RESULT
from emrcomm.fhir import validate_resource
from fhir_schema import schema_errors
from support import REPO

DAY = "2026-11-23"
# Words from the demo's own clinical messages: they may reach the portal, never SMS or email.
CLINICAL_WORDS = ("hba1c", "metformin", "metformine", "strep", "positive", "1000 mg")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    folder = tmp_path_factory.mktemp("demo") / "clinic"
    code = main(["demo", "--data", str(folder), "--patients", "80", "--date", DAY, "--json"])
    assert code == 0
    records = subprocess_free_records(folder)
    return folder, records


def subprocess_free_records(folder: Path) -> dict:  # type: ignore[type-arg]
    from emrcomm.host import Host

    with Host.from_config(folder / "emrcomm.toml") as host:
        return host.records()


def test_demo_files_every_request(demo: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[type-arg]
    _, records = demo
    assert records["total"] > 80 * 0.6  # most patients get something; notices add records
    statuses = {e["resource"]["status"] for e in records["entry"]}
    assert {"completed", "not-done", "on-hold"} <= statuses


def test_every_demo_communication_is_valid_r4(demo: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    _, records = demo
    assert schema_errors(records) == []
    for entry in records["entry"]:
        validate_resource(entry["resource"])


def test_no_sms_or_email_record_carries_clinical_content(demo: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    folder, records = demo
    insecure = [e["resource"] for e in records["entry"]
                if e["resource"].get("medium", [{}])[0].get("coding", [{}])[0].get("code") in ("SMSWRIT", "EMAILWRIT")
                and e["resource"]["status"] != "not-done"]
    assert insecure
    for resource in insecure:
        text = " ".join(p.get("contentString", "") for p in resource.get("payload", [])).lower()
        assert not any(word in text for word in CLINICAL_WORDS), resource["id"]
    sink = (folder / "out" / "sms.jsonl").read_text(encoding="utf-8").lower()
    mail = " ".join(p.read_text(encoding="utf-8").lower() for p in (folder / "out" / "email").glob("*.eml"))
    for word in CLINICAL_WORDS:
        assert word not in sink and word not in mail


def test_blocked_requests_are_not_done_with_rule_codes(demo: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    _, records = demo
    blocked = [e["resource"] for e in records["entry"] if e["resource"]["status"] == "not-done"]
    codes = {c["code"] for r in blocked for c in r["statusReason"]["coding"]}
    assert "MARKETING_BLOCKED" in codes
    assert all(r["statusReason"]["coding"] for r in blocked)


def test_clinical_notes_reach_the_portal(demo: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    _, records = demo
    portal = [e["resource"] for e in records["entry"]
              if e["resource"]["medium"][0]["coding"][0]["code"] == "ONLINEWRIT"]
    categories = {r["category"][0]["coding"][0]["code"] for r in portal}
    assert "clinical" in categories and "results-available" in categories
    assert CLINICAL_NOTES and MISPLACED_RESULT  # the demo really sends them


def test_demo_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for name in ("a", "b"):
        assert main(["demo", "--data", str(tmp_path / name), "--patients", "30", "--date", DAY, "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        outputs.append(data["rows"])
    assert outputs[0] == outputs[1]


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "precious.txt").write_text("keep me", encoding="utf-8")
    assert main(["demo", "--data", str(tmp_path), "--patients", "5"]) == 2
    assert "not made by `emrcomm demo`" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text(encoding="utf-8") == "keep me"


def test_demo_offers_no_config_and_refuses_one_rather_than_ignoring_it(tmp_path: Path) -> None:
    """The demo writes its own config in --data and runs on it: a --config would be ignored (a
    clinic's file, even one that does not exist), so it is neither offered nor taken."""
    emrcomm = str(Path(sys.executable).with_name("emrcomm"))
    clinic = tmp_path / "clinic.toml"
    run = lambda *argv: subprocess.run([emrcomm, *argv], capture_output=True, text=True, timeout=120)  # noqa: E731
    shown = run("demo", "--help")
    assert shown.returncode == 0 and "--data" in shown.stdout and "--config" not in shown.stdout
    for argv in (("demo", "--config", str(clinic)), ("--config", str(clinic), "demo")):
        done = run(*argv, "--data", str(tmp_path / "demo"), "--patients", "5", "--date", DAY)
        assert done.returncode == 2, done.stderr
        assert "--config" in done.stderr and "Traceback" not in done.stderr
        assert not (tmp_path / "demo").exists()


@pytest.mark.slow
@pytest.mark.index
@pytest.mark.sqlite_only  # what it tests is the installation, not the store
def test_fresh_virtualenv_pip_install_then_demo(tmp_path: Path) -> None:
    """The README's first command, for real: a new venv, `pip install .`, `emrcomm demo`."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                          "--disable-pip-version-check", str(REPO)], capture_output=True, text=True, env=env)
    assert pip.returncode == 0, pip.stderr[-2000:]
    emrcomm = str(venv / "bin" / "emrcomm")
    demo = subprocess.run([emrcomm, "demo", "--data", str(tmp_path / "clinic"), "--patients", "40"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "requests for 40 patients" in demo.stdout
    records = subprocess.run([emrcomm, "records", "--fhir", "--config", str(tmp_path / "clinic" / "emrcomm.toml")],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
    bundle = json.loads(records.stdout)
    assert bundle["total"] > 0 and schema_errors(bundle) == []


def test_the_demo_hint_is_a_command_that_works_without_an_activated_virtualenv(tmp_path: Path) -> None:
    """Run as the README says (`.venv/bin/emrcomm demo`, nothing activated), the hints' commands
    (records, the staff follow-ups) run as printed; with the virtualenv on PATH it is plain `emrcomm`."""
    emrcomm = Path(sys.executable).with_name("emrcomm")
    bare = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != emrcomm.parent]
    for path, expected in ((bare, str(emrcomm)), ([str(emrcomm.parent), *bare], "emrcomm")):
        env = {**os.environ, "PATH": os.pathsep.join(path), "EMRCOMM_CLOCK": f"{DAY}T12:00:00-05:00"}
        env.pop("VIRTUAL_ENV", None)
        folder = tmp_path / f"clinic-{len(path)}"
        done = subprocess.run([str(emrcomm), "demo", "--data", str(folder), "--patients", "5", "--date", DAY],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        [hint] = [line.removeprefix("Records: ") for line in done.stdout.splitlines() if line.startswith("Records: ")]
        assert hint == f"{expected} records --config {folder / 'emrcomm.toml'}"
        records = subprocess.run(hint, shell=True, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert records.returncode == 0, records.stderr[-2000:]
        assert records.stdout.startswith("Every patient: ") and "  Patient/demo-" in records.stdout  # the day
        [inbox] = [line.removeprefix("Staff follow-ups: ") for line in done.stdout.splitlines()
                   if line.startswith("Staff follow-ups: ")]
        assert inbox == f"{expected} inbox --config {folder / 'emrcomm.toml'}"
        follow_ups = subprocess.run(inbox, shell=True, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert follow_ups.returncode == 0, follow_ups.stderr[-2000:]


def test_the_hint_names_a_script_below_the_current_folder_as_a_relative_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from emrcomm.demo import emrcomm_command

    emrcomm = Path(sys.executable).with_name("emrcomm")
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                               if Path(p) != emrcomm.parent))
    monkeypatch.chdir(emrcomm.parents[2])  # the folder holding .venv
    assert emrcomm_command() == str(emrcomm.relative_to(emrcomm.parents[2]))  # .venv/bin/emrcomm


def test_the_demo_draws_no_progress_bar_into_a_log_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run by cron or with its output in a file, standard error is not a terminal: a bar of
    carriage returns there is noise in the log, as `emrcomm send` already knows."""
    assert main(["demo", "--data", str(tmp_path / "clinic"), "--patients", "60", "--date", DAY]) == 0
    out, err = capsys.readouterr()
    assert "requests for 60 patients" in out
    assert "clinic day" not in err and "\r" not in err
