"""docs/python-api.md is what an EMR developer copies: its Python examples run, one after another,
in the demo clinic's folder, as the page tells a reader to run them, and print what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emrcomm.cli import main
from support import REPO

DOC = (REPO / "docs" / "python-api.md").read_text(encoding="utf-8")
README = (REPO / "README.md").read_text(encoding="utf-8")
DAY = "2026-11-23"


@pytest.fixture
def in_the_demo_clinic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Made by `emrcomm demo`, its folder the working one, its clock by day (nothing held for quiet hours)."""
    assert main(["demo", "--data", str(tmp_path / "demo-clinic"), "--date", DAY, "--json"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "demo-clinic")
    monkeypatch.setenv("EMRCOMM_CLOCK", f"{DAY}T12:00:00-05:00")  # by day: nothing held for quiet hours


@pytest.mark.usefixtures("in_the_demo_clinic")
def test_every_example_runs_in_the_demo_clinic_and_prints_what_the_page_says(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC, re.S)
    assert len(blocks) >= 4
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"docs/python-api.md, example {number}", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "sent ('sms',)"
    assert "sent ('portal', 'sms')" in printed
    assert "['CLINICAL_CONTENT', 'SMS_NO_SENDER_ID', 'SMS_NO_OPTOUT_HINT']" in printed
    assert [line.split()[0] for line in printed if line.startswith("results-")] == [f"results-{n}" for n in range(1, 6)]


@pytest.mark.usefixtures("in_the_demo_clinic")
def test_the_readmes_embedding_example_sends_in_the_demo_clinic(capsys: pytest.CaptureFixture[str]) -> None:
    [block] = re.findall(r"## Embedding.*?```python\n(.*?)```", README, re.S)
    exec(compile(block, "README.md, Embedding", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["sent ('sms',)"]  # no finding printed: nothing for staff to do
