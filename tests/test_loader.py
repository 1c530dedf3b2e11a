"""Plugin loading: config order is call order, essentials stay on, bad plugins are named."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import fakes
from emrcomm.config import load_config
from emrcomm.errors import ConfigError, PluginError
from emrcomm.host import Host
from emrcomm.model import Message, Request, Route
from emrcomm.plugin.manager import BUILTIN_ORDER, ESSENTIAL, discover
from emrcomm.testing import make_recipient
from support import write_config


def ep(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=value, group="emrcomm")


FAKES = {"alpha": ep("alpha", "fakes:Alpha"), "beta": ep("beta", "fakes:Beta"), "gamma": ep("gamma", "fakes:Gamma")}
ESSENTIAL_ORDER = '"content", "consent", "optout", "policy"'


def host_with(tmp_path: Path, extra: str, entry_points: dict[str, metadata.EntryPoint] | None = None) -> Host:
    eps = {**discover(), **FAKES, **(entry_points or {})}
    tmp_path.mkdir(parents=True, exist_ok=True)
    return Host(load_config(write_config(tmp_path, extra)), entry_points=eps)


def validate_once(host: Host) -> list[str]:
    fakes.CALLS.clear()
    request = Request("Patient/on-en", "appointment-reminder", text="hello")
    channel = next(iter(host.channels.values())) if host.channels else None
    from emrcomm.model import Channel

    channel = channel or Channel("sms", secure=False, medium="SMSWRIT", transport=object(), address_system="sms", form="sms")
    host.plugins.validate(Message(request, "hello"), make_recipient(), channel, Route("sms", "+16135550123"), (),
                  host.clock())
    return list(fakes.CALLS)


@pytest.mark.parametrize("order", [["alpha", "beta", "gamma"], ["gamma", "alpha", "beta"], ["beta", "gamma", "alpha"]])
def test_call_order_is_config_order(tmp_path: Path, order: list[str]) -> None:
    names = ", ".join(f'"{n}"' for n in order)
    with host_with(tmp_path, f"\n[plugins]\norder = [{names}, {ESSENTIAL_ORDER}]\n") as host:
        assert validate_once(host) == order
        assert [p.name for p in host.plugins] == [*order, *ESSENTIAL]


def test_without_an_order_an_installed_plugin_runs_only_once_the_config_names_it(tmp_path: Path) -> None:
    with host_with(tmp_path, "") as host:
        assert [p.name for p in host.plugins] == list(BUILTIN_ORDER)
    with host_with(tmp_path / "named", "\n[plugins.gamma]\n[plugins.alpha]\n") as host:
        # named ones follow the built-ins, by name
        assert [p.name for p in host.plugins] == [*BUILTIN_ORDER, "alpha", "gamma"]


def test_disabled_plugin_is_not_called(tmp_path: Path) -> None:
    extra = f'\n[plugins]\norder = ["alpha", "beta", {ESSENTIAL_ORDER}]\ndisable = ["alpha"]\n'
    with host_with(tmp_path, extra) as host:
        assert validate_once(host) == ["beta"]
        assert "alpha" not in [p.name for p in host.plugins]


@pytest.mark.parametrize("name", ESSENTIAL)
def test_essential_plugin_cannot_be_disabled(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as err:
        host_with(tmp_path, f'\n[plugins]\ndisable = ["{name}"]\n')
    assert f"'{name}' cannot be disabled" in str(err.value)
    assert "plugins.disable" in str(err.value)


def test_records_is_no_longer_a_plugin_and_a_config_naming_it_is_told_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plugin 'records' is no longer a plugin: the embedded chart is now kept by "
                                          "the host itself"):
        host_with(tmp_path, f'\n[plugins]\norder = ["alpha", {ESSENTIAL_ORDER}, "records"]\n')


def test_order_that_leaves_out_an_essential_plugin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        host_with(tmp_path, '\n[plugins]\norder = ["alpha", "consent"]\n')
    assert "optout" in str(err.value) and "essential" in str(err.value)


def test_unknown_plugin_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        host_with(tmp_path, f'\n[plugins]\norder = ["alpah", {ESSENTIAL_ORDER}]\n')
    message = str(err.value)
    assert "unknown plugin 'alpah'" in message
    assert "plugins.order" in message
    for known in ("alpha", "beta", "consent", "sms"):
        assert known in message


def test_settings_for_an_unknown_plugin_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"plugins\.smss: unknown plugin 'smss'"):
        host_with(tmp_path, "\n[plugins.smss]\npath = 'x'\n")


def test_configured_plugin_that_fails_to_import_stops_start_up(tmp_path: Path) -> None:
    broken = {"broken": ep("broken", "no_such_module_xyz:Plugin")}
    with pytest.raises(PluginError) as err:
        host_with(tmp_path, f'\n[plugins]\norder = ["broken", {ESSENTIAL_ORDER}]\n', broken)
    assert "'broken'" in str(err.value)
    assert "ModuleNotFoundError" in str(err.value) and "no_such_module_xyz" in str(err.value)


def test_an_installed_plugin_the_config_does_not_name_is_never_imported(tmp_path: Path) -> None:
    broken = {"zbroken": ep("zbroken", "no_such_module_xyz:Plugin")}
    with host_with(tmp_path, "\n[plugins.alpha]\n", broken) as host:
        names = [p.name for p in host.plugins]
    assert "zbroken" not in names and "alpha" in names
    with pytest.raises(PluginError, match=r"'zbroken'.*no_such_module_xyz"):
        host_with(tmp_path / "named", "\n[plugins.zbroken]\n", broken)


def test_hook_with_a_misspelled_name_stops_start_up(tmp_path: Path) -> None:
    bad = {"typo": ep("typo", "fakes:Misspelled")}
    with pytest.raises(PluginError, match="emrcomm_valdate"):
        host_with(tmp_path, f'\n[plugins]\norder = ["typo", {ESSENTIAL_ORDER}]\n', bad)


def test_plugin_settings_are_checked_against_its_schema(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        host_with(tmp_path, "\n[plugins.gamma]\nthreshold = 'three'\n")
    message = str(err.value)
    assert "emrcomm.toml" in message
    assert "plugins.gamma.threshold" in message
    assert "'three'" in message and "a whole number" in message


def test_a_literal_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        host_with(tmp_path, "\n[plugins.gamma]\napi_token = 'sk_live_51Hx9'\n")
    assert "plugins.gamma.api_token" in str(err.value)
    assert "sk_live_51Hx9" not in str(err.value)
    assert "env" in str(err.value)


def test_each_host_owns_its_plugin_manager(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with host_with(tmp_path / "a", f'\n[plugins]\norder = ["alpha", {ESSENTIAL_ORDER}]\n') as one, \
            host_with(tmp_path / "b", f'\n[plugins]\norder = ["beta", {ESSENTIAL_ORDER}]\n') as two:
        assert validate_once(one) == ["alpha"]
        assert validate_once(two) == ["beta"]


# A real third-party distribution, built and installed into a throwaway folder --------------------
THIRD_PARTY = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "emrcomm-acme-fax"
        version = "1.2.0"
        [project.entry-points.emrcomm]
        acme-fax = "emrcomm_acme_fax:Plugin"
        [tool.setuptools]
        py-modules = ["emrcomm_acme_fax"]
    """,
    "emrcomm_acme_fax.py": """
        from emrcomm import hookimpl
        CALLS = []

        class Plugin:
            settings_schema = {"type": "object", "additionalProperties": False,
                               "properties": {"tag": {"type": "string"}}}

            def __init__(self, context):
                self.tag = context.settings.get("tag", "acme")

            @hookimpl
            def emrcomm_validate(self, channel):
                CALLS.append(self.tag)
                return []
    """,
}


@pytest.fixture(scope="session")
def third_party_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("acme-src")
    for name, text in THIRD_PARTY.items():
        (src / name).write_text(textwrap.dedent(text), encoding="utf-8")
    site = tmp_path_factory.mktemp("acme-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(src)], check=True, capture_output=True)
    return site


def test_third_party_plugin_installed_from_a_package_is_loaded_in_config_order(
    tmp_path: Path, third_party_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(third_party_site))
    assert "acme-fax" in discover()
    extra = f'\n[plugins]\norder = ["beta", "acme-fax", "alpha", {ESSENTIAL_ORDER}]\n[plugins.acme-fax]\ntag = "fax"\n'
    with host_with(tmp_path, extra) as host:
        import emrcomm_acme_fax

        fakes.CALLS.clear()
        emrcomm_acme_fax.CALLS.clear()
        order: list[str] = []
        fakes.CALLS = order  # share one list so the interleaving is visible
        emrcomm_acme_fax.CALLS = order
        try:
            validate_once_keep = host.plugins.validate
            from emrcomm.model import Channel

            channel = Channel("sms", secure=False, medium="SMSWRIT", transport=object(), address_system="sms", form="sms")
            validate_once_keep(Message(Request("Patient/on-en", "appointment-reminder", text="x"), "x"),
                               make_recipient(), channel, Route("sms", "+16135550123"), (), host.clock())
        finally:
            fakes.CALLS = []
        assert order == ["beta", "fax", "alpha"]
        plugin = next(p for p in host.plugins if p.name == "acme-fax")
        assert plugin.distribution == "emrcomm-acme-fax" and not plugin.builtin


def test_a_misspelled_hook_is_named_with_the_plugin_that_has_it(tmp_path: Path) -> None:
    bad = {"typo": ep("typo", "fakes:Misspelled")}
    with pytest.raises(PluginError) as err:
        host_with(tmp_path, f'\n[plugins]\norder = ["typo", {ESSENTIAL_ORDER}]\n', bad)
    assert str(err.value).startswith("plugin 'typo' implements unknown hook 'emrcomm_valdate'")
    assert " object at 0x" not in str(err.value)
