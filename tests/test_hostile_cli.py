"""Hostile files given to the ``emrcomm`` command: each is a clear error and exit 2, never a
traceback and exit 1, and nothing is sent or filed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from emrcomm import Channel, hookimpl
from emrcomm.cli import main
from emrcomm.host import Host
from support import fhir_request, write_config

APPOINTMENT = ("valueDateTime", "2026-11-24T10:30:00-05:00")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def nothing_sent(config: Path) -> bool:
    sink = config.parent / "out" / "sms.jsonl"
    return not sink.exists() or sink.read_text(encoding="utf-8") == ""


def reminder_with(variables: dict[str, tuple[str, str]], **extra: object) -> dict[str, object]:
    return fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder",
                        variables={"appointment": APPOINTMENT, **variables}, **extra)


@pytest.mark.parametrize("value", ["1980", "1980-04"])
def test_a_partial_date_in_a_variable_is_a_clear_error(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    path = tmp_path / "req.json"
    path.write_text(json.dumps(reminder_with({"birthday": ("valueDate", value)})), encoding="utf-8")
    code, _, err = run(capsys, "send", str(path), "--config", str(config))
    assert code == 2 and "variable 'birthday'" in err and "partial date" in err
    assert nothing_sent(config)


def test_a_request_file_that_is_not_utf8_is_a_clear_error(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "req.json"
    path.write_bytes(json.dumps(reminder_with({})).encode("utf-8").replace(b"Patient/on-en", b"Patient/\xff\xfe"))
    code, _, err = run(capsys, "send", str(path), "--config", str(config))
    assert code == 2 and "not UTF-8" in err and str(path) in err
    assert nothing_sent(config)


def test_a_config_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "emrcomm.toml"
    path.write_bytes(b'[clinic]\nname = "Clinique \xe9t\xe9"\n')  # Latin-1, as an old editor saves it
    code, _, err = run(capsys, "check-config", "--config", str(path))
    assert code == 2 and "not UTF-8" in err and str(path) in err


def test_a_config_file_nested_too_deeply_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "emrcomm.toml"
    path.write_text('[clinic]\nname = "x"\n[plugins.sms]\nx = ' + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    code, _, err = run(capsys, "check-config", "--config", str(path))
    assert code == 2 and "nested too deeply" in err


@pytest.mark.parametrize("name", ["req.json", "reqs.jsonl"])
def test_json_nested_100000_deep_is_a_clear_error(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = tmp_path / name
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    code, _, err = run(capsys, "send", str(path), "--config", str(config))
    assert code == 2 and "nested too deeply" in err
    assert nothing_sent(config)


@pytest.mark.parametrize("name", ["req.json", "reqs.jsonl"])
def test_a_number_of_more_than_4300_digits_is_a_clear_error(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(reminder_with({}))[:-1] + ', "n": ' + "9" * 5000 + "}\n", encoding="utf-8")
    code, _, err = run(capsys, "send", str(path), "--config", str(config))
    assert code == 2 and "more than 4,300 digits" in err and "Traceback" not in err
    assert nothing_sent(config)


def test_a_request_past_the_size_limit_is_refused_before_it_is_read(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "req.json"
    path.write_text(json.dumps(reminder_with({"note": ("valueString", "x" * 2_000_000)})), encoding="utf-8")
    code, _, err = run(capsys, "send", str(path), "--config", str(config))
    assert code == 2 and "request_bytes" in err
    assert nothing_sent(config)


@pytest.mark.parametrize(("line", "expected"), [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"text": "hi", "category": "birthday-wishes"}', "unknown category"),
    ('{"text": "hi", "channel": ["sms"]}', '"channel" must be a string'),
    ('{"text": "hi", "lang": "de"}', "unknown language 'de'"),
    ('{"text": "hi \\u0000 there"}', "control character U+0000"),
    ('{"text": "hi", "n": ' + "9" * 5000 + "}", "more than 4,300 digits"),
])
def test_check_jsonl_reports_a_bad_line_clearly(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                line: str, expected: str) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text('{"text": "Riverside Family Health: see you soon. Reply STOP to opt out"}\n' + line + "\n",
                    encoding="utf-8")
    code, out, err = run(capsys, "check", "--channel", "sms", "--jsonl", str(path), "--config", str(config))
    assert code == 2 and expected in err and "Traceback" not in err
    good, bad = (json.loads(line) for line in out.splitlines())  # every line answered, in order
    assert good["line"] == 1 and good["blocked"] is False
    assert bad["line"] == 2 and expected in bad["error"] and f"{path}:2:" in bad["error"]


def test_check_jsonl_reports_a_line_that_is_not_utf8(config: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_bytes(b'{"text": "caf\xe9"}\n')
    code, _, err = run(capsys, "check", "--channel", "sms", "--jsonl", str(path), "--config", str(config))
    assert code == 2 and "line 1 is not UTF-8" in err


def test_check_patient_with_an_unknown_category_lists_the_valid_ones(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "--patient", "Patient/on-en", "--category", "bogus", "--text", "hi",
                         "--config", str(config))
    assert code == 2 and out == "" and "Traceback" not in err
    assert "unknown category 'bogus'" in err and "appointment-reminder" in err and "results-available" in err


def test_audit_export_to_a_folder_that_does_not_exist_names_the_path_and_the_reason(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.jsonl"
    code, _, err = run(capsys, "audit", "export", "-o", str(target), "--config", str(config))
    assert code == 2 and "Traceback" not in err
    assert str(target) in err and "No such file or directory" in err
    assert not target.parent.exists()


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("store", "reason"), [("/proc/nope/x.sqlite", "No such file or directory (/proc/nope)"),
                                               ("a-file/x.sqlite", "a-file is a file, not a folder"),
                                               ("a-folder", "is a folder, not a database file")])
def test_a_store_path_whose_folder_cannot_be_made_is_a_clear_error(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str, reason: str) -> None:
    (tmp_path / "a-file").write_text("a file, not a folder", encoding="utf-8")
    (tmp_path / "a-folder").mkdir()
    config.write_text(config.read_text(encoding="utf-8").replace('path = "emrcomm.sqlite"', f'path = "{store}"'),
                      encoding="utf-8")
    path = tmp_path / "req.json"
    path.write_text(json.dumps(reminder_with({})), encoding="utf-8")
    code, _, err = run(capsys, "send", str(path), "--config", str(config))
    assert code == 2 and "Traceback" not in err
    assert "store.path" in err and reason in err
    assert nothing_sent(config)


class _BrokenChannels:
    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        raise RuntimeError("the fax modem is unplugged")


def test_a_register_channels_hook_that_raises_is_a_clear_error_naming_the_plugin(
        make_host: Callable[..., Host], monkeypatch: pytest.MonkeyPatch, config: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from emrcomm.plugin import manager as loader

    real = loader.discover

    def with_fax() -> dict[str, object]:
        found: dict[str, object] = dict(real())
        found["fax"] = _EntryPoint()
        return found

    monkeypatch.setattr(loader, "discover", with_fax)
    config.write_text(config.read_text(encoding="utf-8") + "\n[plugins.fax]\n", encoding="utf-8")
    code, _, err = run(capsys, "check-config", "--config", str(config))
    assert code == 2 and "'fax'" in err and "emrcomm_register_channels" in err and "RuntimeError" in err


class _EntryPoint:
    """An installed third-party plugin, as importlib.metadata describes it."""

    name = "fax"
    value = "fax_plugin:Plugin"
    dist = None

    def load(self) -> object:
        return _BrokenChannels()
