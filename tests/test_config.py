"""The config file: every error names the file, the path, the value and what was expected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emrcomm.config import EMBEDDED, load_config, parse_config
from emrcomm.errors import ConfigError
from emrcomm.model import Severity
from emrcomm.plugin.context import PluginContext
from emrcomm.storage import open_sqlite

CLINIC = '[clinic]\nname = "Riverside"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "emrcomm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    return str(err.value)


def test_embedded_defaults_load_when_there_is_no_file(tmp_path: Path) -> None:
    config = load_config(None, base_dir=tmp_path)
    assert config.source == EMBEDDED
    assert config.store_path == tmp_path / "emrcomm.sqlite"


def test_embedded_defaults_keep_their_data_in_the_user_data_folder_not_the_current_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMRCOMM_DATA_DIR", str(tmp_path / "data"))
    assert load_config(None).store_path == tmp_path / "data" / "emrcomm.sqlite"
    monkeypatch.delenv("EMRCOMM_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert load_config(None).store_path == tmp_path / "xdg" / "emrcomm" / "emrcomm.sqlite"


def test_relative_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CLINIC + '[store]\npath = "db/x.sqlite"\n'))
    assert config.store_path == tmp_path / "db" / "x.sqlite"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file"):
        load_config(tmp_path / "nope.toml")


def test_not_toml_is_refused_with_the_file_name(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[clinic\nname=")
    assert "emrcomm.toml" in message and "not valid TOML" in message


def test_missing_clinic_name_names_the_key(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[clinic]\nphone = '1'\n")
    assert "clinic" in message and "'name' is a required property" in message


def test_wrong_type_names_path_value_and_expectation(tmp_path: Path) -> None:
    message = error_for(tmp_path, CLINIC + "link_domains = 'portal.example'\n")
    assert "clinic.link_domains" in message
    assert "'portal.example'" in message
    assert "host names links may point to" in message


def test_unknown_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    message = error_for(tmp_path, CLINIC + "nmae = 'x'\n")
    assert "nmae" in message and "allowed keys" in message and "portal_url" in message


def test_unknown_top_level_table_is_refused(tmp_path: Path) -> None:
    assert "delivry" in error_for(tmp_path, CLINIC + "[delivry]\nmode = 'inline'\n")


def test_bad_enum_value_is_refused(tmp_path: Path) -> None:
    message = error_for(tmp_path, CLINIC + "[delivery]\nmode = 'later'\n")
    assert "delivery.mode" in message and "'later'" in message


def test_time_zone_must_exist(tmp_path: Path) -> None:
    message = error_for(tmp_path, CLINIC.replace('"Riverside"', '"R"\ntime_zones = ["America/Ottawa"]'))
    assert "clinic.time_zones[0]" in message and "America/Ottawa" in message


def test_portal_url_must_be_https(tmp_path: Path) -> None:
    message = error_for(tmp_path, CLINIC + "portal_url = 'http://portal.example'\n")
    assert "clinic.portal_url" in message and "https" in message


def test_raising_a_rule_severity_is_free(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CLINIC + "[rules.severity]\nPROMOTIONAL_LANGUAGE = 'block'\n"))
    assert config.rules.apply("PROMOTIONAL_LANGUAGE", Severity.WARN) == (Severity.BLOCK, None)


def test_lowering_a_block_without_override_is_refused(tmp_path: Path) -> None:
    message = error_for(tmp_path, CLINIC + "[rules.severity]\nSMS_NO_SENDER_ID = 'warn'\n")
    assert "rules.severity.SMS_NO_SENDER_ID" in message and "rules.override.SMS_NO_SENDER_ID" in message


def test_lowering_with_an_override_keeps_the_reason(tmp_path: Path) -> None:
    text = CLINIC + "[rules.override.SMS_NO_SENDER_ID]\nseverity = 'warn'\nreason = 'signed by the physician, approved 2026-11'\n"
    config = load_config(write(tmp_path, text))
    assert config.rules.apply("SMS_NO_SENDER_ID", Severity.BLOCK) == (
        Severity.WARN, "signed by the physician, approved 2026-11")


def test_unknown_rule_code_lists_known_codes(tmp_path: Path) -> None:
    message = error_for(tmp_path, CLINIC + "[rules.severity]\nSMS_TOO_SHORT = 'block'\n")
    assert "SMS_TOO_SHORT" in message and "SMS_TOO_LONG" in message


@pytest.mark.parametrize("key", ["password", "api_key", "auth_token", "client_secret"])
def test_literal_secret_in_plugin_settings_is_refused(key: str) -> None:
    text = CLINIC + f"[plugins.sms]\n{key} = 'hunter2hunter2'\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="clinic.toml", base_dir=Path("."))
    assert f"plugins.sms.{key}" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_secret_reference_to_environment_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMRCOMM_TEST_TOKEN", "t0k3n")
    ctx = _context(tmp_path, {"api_token": {"env": "EMRCOMM_TEST_TOKEN"}})
    assert ctx.secret("api_token") == "t0k3n"


def test_secret_reference_to_a_missing_variable_names_it(tmp_path: Path) -> None:
    os.environ.pop("EMRCOMM_TEST_ABSENT", None)
    ctx = _context(tmp_path, {"api_token": {"env": "EMRCOMM_TEST_ABSENT"}})
    with pytest.raises(ConfigError, match="EMRCOMM_TEST_ABSENT is not set"):
        ctx.secret("api_token")


def test_secret_reference_to_a_file_resolves(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n", encoding="utf-8")
    assert _context(tmp_path, {"api_token": {"file": "token"}}).secret("api_token") == "from-file"


def _context(tmp_path: Path, settings: dict[str, object]) -> PluginContext:
    from emrcomm.testing import TEST_CLINIC

    return PluginContext(name="gamma", settings=settings, clinic=TEST_CLINIC,
                         storage=open_sqlite(tmp_path / "s.sqlite"), base_dir=tmp_path)
