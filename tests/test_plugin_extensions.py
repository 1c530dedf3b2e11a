"""What a plugin adds to ``emrcomm serve`` (``emrcomm_web_routes``) and to the command line
(``emrcomm_cli_commands``), loaded the way the loader loads any plugin (the docs' own examples,
through entry points); and what the host does with a patient's message it receives by address."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
import requests

from docs_kit import example_plugin
from emrcomm import Category, DeliveryUpdate, PluginError, Request, Status, hookimpl
from emrcomm.cli import main
from emrcomm.config import load_config
from emrcomm.host import Host
from emrcomm.plugin import manager
from portal_kit import running_server
from support import communication, fhir_request, write_config

INSTALLED = manager.discover

APPOINTMENT = dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC)
TOKEN = "fax-gateway-shared-secret"


def reminder(rid: str = "r-1", patient: str = "Patient/on-en") -> Request:
    return Request(patient, Category.APPOINTMENT_REMINDER, id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT}, appointment=APPOINTMENT, channel="sms")


@pytest.fixture
def fax_host(tmp_path: Path, clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FAX_TOKEN", TOKEN)
    with example_plugin("emrcomm_web_routes", tmp_path / "code") as ep:
        config = write_config(tmp_path, '\n[plugins.example]\ncallback_token = {env = "FAX_TOKEN"}\n')
        with Host(load_config(config), clock=clock, entry_points={**manager.discover(), "example": ep}) as host:
            yield host


def test_a_plugins_route_is_served_and_what_it_reports_reaches_the_chart(fax_host: Host) -> None:
    outcome = fax_host.send(reminder())
    assert outcome.status is Status.SENT
    [record] = outcome.record_ids
    with running_server(fax_host) as base:
        post = lambda **form: requests.post(f"{base}/fax/receipt", data=form, timeout=10)  # noqa: E731
        assert post(record=record, status="ok", token="guess").status_code == 403
        assert communication(fax_host, record)["status"] == "completed"  # type: ignore[index]
        assert post(record=record, status="lost", token=TOKEN).status_code == 400
        before = fax_host.storage.records.events(record)
        answer = post(record=record, status="ok", token=TOKEN)
        assert answer.status_code == 200 and answer.text == "ok"
        assert answer.headers["x-content-type-options"] == "nosniff"  # behind the app's security headers
        after = fax_host.storage.records.events(record)
        assert len(after) == len(before) + 1 and after[-1].kind.value == "delivered"
        assert after[-1].source.value == "callback"
        assert post(record=record, status="ok", token=TOKEN).status_code == 200  # the gateway calls twice
        assert len(fax_host.storage.records.events(record)) == len(after)  # one report, kept once


def test_a_plugins_command_runs_with_its_own_plugin_and_is_listed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with example_plugin("emrcomm_cli_commands", tmp_path / "code") as ep:
        monkeypatch.setattr(manager, "discover", lambda: {**_installed(), "example": ep})
        config = str(write_config(tmp_path, "\n[plugins.example]\n"))
        assert main(["fax-queue", "--config", config, "--json", "--limit", "5"]) == 0
        assert json.loads(capsys.readouterr().out) == {"waiting": []}
        assert main(["fax-queue", "--config", config]) == 0
        assert capsys.readouterr().out.strip() == "0 fax(es) waiting"
        with pytest.raises(SystemExit):
            main(["fax-queue", "--config", config, "--help"])
        assert "--limit" in capsys.readouterr().out
        with pytest.raises(SystemExit, match="2"):
            main(["fax-queue", "--config", config, "--limit", "many"])
        assert "invalid int value" in capsys.readouterr().err


def test_a_plugins_command_needs_the_config_to_name_the_plugin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with example_plugin("emrcomm_cli_commands", tmp_path / "code") as ep:
        monkeypatch.setattr(manager, "discover", lambda: {**_installed(), "example": ep})
        with pytest.raises(SystemExit):
            main(["fax-queue", "--config", str(write_config(tmp_path))])
    assert "invalid choice: 'fax-queue'" in capsys.readouterr().err


class _Clashing:
    def __init__(self, context: object) -> None:
        pass

    @hookimpl
    def emrcomm_cli_commands(self) -> list[object]:
        from emrcomm import Command

        return [Command("send", "a second send", lambda args, plugin: 0)]


class _WrappedRoutes:
    def __init__(self, context: object) -> None:
        pass

    @hookimpl(wrapper=True)
    def emrcomm_web_routes(self) -> object:
        return (yield)


def _installed() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group="emrcomm")}


def test_a_plugin_command_named_like_one_of_emrcomms_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ep = metadata.EntryPoint(name="clash", value=f"{__name__}:_Clashing", group="emrcomm")
    monkeypatch.setattr(manager, "discover", lambda: {**_installed(), "clash": ep})
    config = str(write_config(tmp_path, "\n[plugins.clash]\n"))
    assert main(["plugin-only-command", "--config", config]) == 2
    assert "plugin 'clash' adds a command 'send', which is one of emrcomm's own" in capsys.readouterr().err


def test_a_wrapper_around_web_routes_is_refused_at_start_up(tmp_path: Path) -> None:
    ep = metadata.EntryPoint(name="wrapped", value=f"{__name__}:_WrappedRoutes", group="emrcomm")
    with pytest.raises(PluginError, match="emrcomm_web_routes cannot be a wrapper"):
        Host(load_config(write_config(tmp_path, "\n[plugins.wrapped]\n")),
             entry_points={**manager.discover(), "wrapped": ep})


# a patient's message, by address ------------------------------------------------------------------
def test_a_reply_by_address_is_filed_against_the_last_message_to_that_address(
        make_host: Callable[..., Host]) -> None:
    host = make_host()
    [record] = host.send(reminder()).record_ids
    host.delivery_update(DeliveryUpdate(kind="reply", at=host.clock(), channel="sms", address="+16135550123",
                                        text="See you then", provider_id="in-1"))
    replies = [e["resource"] for e in host.records(patient="Patient/on-en")["entry"]
               if e["resource"].get("sender") == {"reference": "Patient/on-en"}]
    assert [r["inResponseTo"][0]["reference"] for r in replies] == [f"Communication/{record}"]
    # matched: staff have the reply to answer, nothing to sort out about who sent it
    [item] = host.storage.inbox.items()
    assert "REPLY_UNMATCHED" not in json.dumps(item["task"]) and item["patient"] == "Patient/on-en"


def test_a_reply_from_an_address_never_written_to_goes_to_staff_once(make_host: Callable[..., Host]) -> None:
    host = make_host()
    host.send(reminder())
    stranger = DeliveryUpdate(kind="reply", at=host.clock(), channel="sms", address="+16135550999",
                              text="who is this?", provider_id="in-2")
    host.delivery_update(stranger)
    host.delivery_update(stranger)  # the provider retries its callback
    [item] = host.storage.inbox.items()
    assert item["kind"] == "reply" and "REPLY_UNMATCHED" in json.dumps(item["task"])
    assert "who is this" not in json.dumps(item) and "+16135550999" not in json.dumps(item)
    assert all(not e["resource"].get("inResponseTo") for e in host.records()["entry"])


def test_pluggys_monitoring_sees_the_hooks_called_one_by_one(make_host: Callable[..., Host]) -> None:
    host = make_host()
    seen: list[tuple[str, str]] = []
    undo = host.plugins.pluggy.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.extend((name, i.plugin_name) for i in impls), lambda *a: None)
    try:
        host.send(reminder())
        host.delivery_update(DeliveryUpdate(kind="delivered", at=host.clock(), channel="sms",
                                            record_id=host.storage.records.for_request("r-1")[0].id))
    finally:
        undo()
    assert ("emrcomm_validate", "consent") in seen and ("emrcomm_validate", "optout") in seen
    assert ("emrcomm_inspect", "content") in seen and ("emrcomm_delivery_update", "optout") in seen


def test_a_plugin_with_a_prepare_method_of_its_own_is_left_alone_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The host calls Preparable.load_deferred() on the plugins that put off their preparation;
    a plugin written before, with a method of its own named ``prepare``, still starts with
    ``send``, ``check`` and ``check-config`` (it was called with no argument, and stopped them)."""
    own = metadata.EntryPoint(name="own", value="fakes:OwnPrepare", group="emrcomm")
    monkeypatch.setattr(manager, "discover", lambda: {**INSTALLED(), "own": own})
    config = write_config(tmp_path, "\n[plugins.own]\n")
    request = tmp_path / "request.json"
    request.write_text(json.dumps(fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder",
                                               variables={"appointment": ("valueDateTime", APPOINTMENT.isoformat())})),
                       encoding="utf-8")
    assert main(["check-config", "--config", str(config)]) == 0
    assert main(["check", "--channel", "sms", "--text", "Riverside Family Health: see you Tuesday at 10. Reply STOP "
                 "to opt out", "--config", str(config)]) == 0
    assert main(["send", str(request), "--config", str(config)]) == 0, capsys.readouterr().err
    assert "failed to start" not in capsys.readouterr().err
