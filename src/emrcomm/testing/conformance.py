"""The conformance kit: tests that certify a channel plugin against the plugin contract.

Subclass :class:`ChannelConformance` in a test module of the plugin's (the class name must start
with ``Test``), say what the plugin is and give a ``provider`` fixture; pytest runs every check::

    from emrcomm.testing.conformance import ChannelConformance

    class TestAppChannel(ChannelConformance):
        plugin = "emrcomm_app:Plugin"     # the entry point's value
        name = "app"                      # [plugins.app] in a clinic's config
        channel = "app"                   # the channel it registers
        address = "u-5512"                # an address the provider accepts
        secrets = ("api_token",)          # settings that hold secrets

        @pytest.fixture
        def provider(self, monkeypatch):  # the provider, or a stand-in that behaves like it
            with AppProvider() as server:
                monkeypatch.setenv("APP_TOKEN", server.token)
                yield server

        def settings(self, provider):     # settings that reach it
            return {"url": provider.url, "api_token": {"env": "APP_TOKEN"}}

A provider is a :class:`Provider`: what it received under a key, failing on demand, and the
HTTP calls it makes back (delivery receipts, patients' replies). A check that needs something
the provider cannot do (an SMTP server sends no receipts) is skipped, saying why.

The checks: the plugin registers and loads (only when the config names it); its settings schema
is enforced; secrets are taken only by reference; a repeated key is not a second message; errors
map to the contract's (a refusal is permanent, an unavailable provider transient, a timeout
transient and "may have been sent"); a transport that raises fails closed (nothing is reported
sent, the message waits to be retried); ``close()`` is called once when the host closes; receipts
and replies reach the host through the plugin's routes under ``emrcomm serve``, and
unauthenticated ones are refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest
from attrs import field, frozen

from emrcomm.config import load_config
from emrcomm.delivery import PermanentDeliveryError, TransientDeliveryError
from emrcomm.errors import ConfigError
from emrcomm.host import Host
from emrcomm.model import Category, Message, Request, Status
from emrcomm.pipeline.records import record_id
from emrcomm.plugin.contract import Closable, Delivery
from emrcomm.plugin.manager import BUILTIN_ORDER, discover
from emrcomm.testing import TEST_NOW

BASE = "http://emrcomm.org/fhir"
PATIENT = "Patient/conformance-1"
TEXT = "Riverside Family Health: your appointment is on Tuesday at 10:30. Reply STOP to opt out."


@frozen
class WebCall:
    """An HTTP call a provider makes to ``emrcomm serve``: ``path`` under the server's base."""

    method: str
    path: str
    params: Mapping[str, str] = field(factory=dict)
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(factory=dict)


class Provider(Protocol):
    """What the kit asks of the ``provider`` fixture."""

    def received(self, key: str) -> list[str]:
        """The identity of each message the provider took under ``key`` (its id, a Message-ID)."""
        ...

    def failing(self, how: str) -> contextlib.AbstractContextManager[None]:
        """While the context lasts, the provider fails ``how``: ``refuse`` (it refuses the
        message: 4xx, 5xx SMTP), ``unavailable`` (it is away: 503, connection refused),
        ``timeout`` (it takes the message and never answers)."""
        ...

    def receipt(self, base: str, record_id: str, *, delivered: bool, authentic: bool) -> WebCall | None:
        """The call the provider makes when a message is delivered (or failed); ``authentic``
        False: the same call from someone without the provider's secret. None: it sends none."""
        ...

    def reply(self, base: str, address: str, text: str, *, authentic: bool) -> WebCall | None:
        """The call the provider makes when a patient answers from ``address``; None: none."""
        ...


class ChannelConformance:
    plugin: ClassVar[str]
    name: ClassVar[str]
    channel: ClassVar[str]
    address: ClassVar[str]
    secrets: ClassVar[tuple[str, ...]] = ()
    failures: ClassVar[tuple[str, ...]] = ("refuse", "unavailable", "timeout")

    # what the plugin's tests give ---------------------------------------------------------------
    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        raise NotImplementedError("give a provider fixture (see emrcomm.testing.conformance)")

    def settings(self, provider: Provider) -> dict[str, Any]:
        raise NotImplementedError("give the plugin's settings for the provider")

    # the kit's own fixtures ---------------------------------------------------------------------
    @pytest.fixture
    def clinic(self, tmp_path: Path, provider: Provider) -> Iterator[ClinicFolder]:
        folder = ClinicFolder(tmp_path, self)
        yield folder
        folder.close()

    # the checks ---------------------------------------------------------------------------------
    def test_registers_and_loads_only_when_the_config_names_it(self, clinic: ClinicFolder, provider: Provider) -> None:
        host = clinic.host(self.settings(provider))
        channel = host.channels.get(self.channel)
        assert channel is not None, f"the plugin registers no channel {self.channel!r}"
        assert channel.plugin == self.name and channel.medium
        assert channel.address_system or channel.holds_content, "a channel that sends to addresses names their kind"
        assert callable(getattr(channel.transport, "send", None))
        if self.name not in BUILTIN_ORDER:  # a built-in runs unless disabled; any other once named
            unnamed = clinic.host(None)
            assert self.channel not in unnamed.channels, "an installed plugin the config does not name was loaded"

    def test_its_settings_schema_is_enforced(self, clinic: ClinicFolder, provider: Provider) -> None:
        with pytest.raises(ConfigError, match=rf"plugins\.{self.name}"):
            clinic.host({**self.settings(provider), "no_such_setting_xyz": 1})

    def test_secrets_are_taken_only_by_reference(self, clinic: ClinicFolder, provider: Provider) -> None:
        if not self.secrets:
            pytest.skip("the plugin declares no secret settings")
        for name in self.secrets:
            settings = self.settings(provider)
            _set(settings, name, "a-secret-written-in-the-config")
            with pytest.raises(ConfigError) as err:
                clinic.host(settings)
            assert "a-secret-written-in-the-config" not in str(err.value), "the error repeats the secret"
            _set(settings, name, {"env": "EMRCOMM_CONFORMANCE_UNSET"})
            with pytest.raises(ConfigError, match="EMRCOMM_CONFORMANCE_UNSET"):
                clinic.host(settings)

    def test_a_repeated_key_is_not_a_second_message(self, clinic: ClinicFolder, provider: Provider) -> None:
        host = clinic.host(self.settings(provider))
        transport = host.channels[self.channel].transport
        first = transport.send(clinic.delivery(host, "conformance-key-1"))
        again = transport.send(clinic.delivery(host, "conformance-key-1"))
        assert first.channel == again.channel == self.channel
        identities = provider.received(key("conformance-key-1", self.channel))
        assert identities and len(set(identities)) == 1, f"one key, two messages: {identities}"
        transport.send(clinic.delivery(host, "conformance-key-2"))
        assert set(provider.received(key("conformance-key-2", self.channel))).isdisjoint(identities)

    @pytest.mark.parametrize("how", ["refuse", "unavailable", "timeout"])
    def test_errors_map_to_the_contract(self, clinic: ClinicFolder, provider: Provider, how: str) -> None:
        if how not in self.failures:
            pytest.skip(f"the provider cannot be made to fail by {how}")
        host = clinic.host(self.settings(provider))
        transport = host.channels[self.channel].transport
        expected = {"refuse": PermanentDeliveryError, "unavailable": TransientDeliveryError,
                    "timeout": TransientDeliveryError}[how]
        with provider.failing(how), pytest.raises(expected) as err:
            transport.send(clinic.delivery(host, f"conformance-{how}"))
        if how == "timeout":
            assert err.value.ambiguous, "a timeout after the request went may have sent it: say so (ambiguous)"
        if how == "unavailable":
            assert not err.value.ambiguous, "nothing reached a provider that was away"
        assert self.address not in str(err.value), "errors carry no address"

    def test_a_transport_that_raises_fails_closed(self, clinic: ClinicFolder, provider: Provider,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        host = clinic.host(self.settings(provider))

        def broken(delivery: Delivery) -> Any:
            raise RuntimeError("the provider's library failed")

        monkeypatch.setattr(host.channels[self.channel].transport, "send", broken)
        outcome = host.send(clinic.request("conformance-raises"))
        assert outcome.status not in (Status.SENT, Status.STORED), f"{outcome.status}: a failed send reported done"
        for record in outcome.record_ids:
            communication = host.record(record)
            assert communication is None or communication.status != "completed"

    def test_close_is_called_once_when_the_host_closes(self, clinic: ClinicFolder, provider: Provider) -> None:
        host = clinic.host(self.settings(provider))
        plugin = host.plugins.get(self.name)
        if not isinstance(plugin, Closable):
            pytest.skip("the plugin holds nothing to release (no close())")
        calls: list[None] = []
        real = plugin.close

        def counted() -> None:
            calls.append(None)
            real()

        plugin.close = counted  # type: ignore[method-assign]
        host.close()
        assert len(calls) == 1
        host.close()  # closing twice is harmless and closes nothing twice
        assert len(calls) == 1

    def test_receipts_reach_the_host_through_its_routes(self, clinic: ClinicFolder, provider: Provider) -> None:
        host = clinic.host(self.settings(provider))
        with serving(host) as base:
            if provider.receipt(base, "0" * 32, delivered=True, authentic=True) is None:
                pytest.skip("the provider sends no delivery receipts")
            outcome = host.send(clinic.request("conformance-receipt"))
            assert outcome.status is Status.SENT, outcome
            record = outcome.record_ids[0]
            forged = provider.receipt(base, record, delivered=True, authentic=False)
            assert forged is not None
            before = len(host.storage.records.events(record))
            assert 400 <= call(base, forged).status_code < 500
            assert len(host.storage.records.events(record)) == before, "an unauthenticated receipt changed the record"
            real = provider.receipt(base, record, delivered=True, authentic=True)
            assert real is not None and call(base, real).status_code < 300
            assert host.storage.records.events(record)[-1].kind.value == "delivered"
            assert call(base, real).status_code < 300  # the provider calls twice
            assert len(host.storage.records.events(record)) == before + 1, "a repeated receipt is one report"

    def test_replies_reach_the_host_through_its_routes(self, clinic: ClinicFolder, provider: Provider) -> None:
        host = clinic.host(self.settings(provider))
        with serving(host) as base:
            if provider.reply(base, self.address, "Hello", authentic=True) is None:
                pytest.skip("the provider forwards no replies")
            outcome = host.send(clinic.request("conformance-reply"))
            assert outcome.status is Status.SENT, outcome
            forged = provider.reply(base, self.address, "STOP", authentic=False)
            assert forged is not None
            assert 400 <= call(base, forged).status_code < 500
            assert host.storage.consent.last(channel=self.channel, address=self.address) is None
            real = provider.reply(base, self.address, "See you Tuesday", authentic=True)
            assert real is not None and call(base, real).status_code < 300
            replies = [e["resource"] for e in host.records(patient=PATIENT)["entry"]  # the patient's, not the answer
                       if e["resource"].get("sender") == {"reference": PATIENT}]
            assert [r["inResponseTo"][0]["reference"] for r in replies] == [f"Communication/{outcome.record_ids[0]}"]
            stop = provider.reply(base, self.address, "STOP", authentic=True)
            assert stop is not None and call(base, stop).status_code < 300
            last = host.storage.consent.last(channel=self.channel, address=self.address)
            assert last is not None and last.revokes, "a STOP by this channel reached the consent ledger"


class ClinicFolder:
    """A clinic for the checks: one patient reachable on the channel at ``address`` who agreed
    to it, the plugin under test named in the config, the host's clock fixed."""

    def __init__(self, folder: Path, suite: ChannelConformance) -> None:
        self.folder = folder
        self.suite = suite
        self.hosts: list[Host] = []
        self.entry_points = {**discover(), suite.name: metadata.EntryPoint(name=suite.name, value=suite.plugin,
                                                                             group="emrcomm")}
        self.kind: str | None = None
        self.last: Host | None = None

    def host(self, settings: Mapping[str, Any] | None) -> Host:
        """A host whose config names the plugin with ``settings`` (None: does not name it)."""
        if settings is not None and self.kind is None:
            # The patient's address is of the channel's own kind: ask the channel which it is.
            probe = self._start(settings, _bundle(None, "", ""))
            channel = probe.channels.get(self.suite.channel)
            self.kind = channel.address_system if channel is not None else None
            probe.close()
        return self._start(settings, _bundle(self.kind, self.suite.address, self.suite.channel))

    def _start(self, settings: Mapping[str, Any] | None, bundle: dict[str, Any]) -> Host:
        (self.folder / "patients.json").write_text(json.dumps(bundle), encoding="utf-8")
        lines = [CONFIG] + ([PORTAL] if self.suite.name != "portal" else [])
        if self.kind is not None:  # the clinic lets the channel carry the reminder itself
            lines.append(f'[plugins.routing.categories]\nappointment-reminder = ["{self.suite.channel}"]\n')
        if settings is not None:
            lines.append(f"[plugins.{self.suite.name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in settings.items()))
        path = self.folder / "emrcomm.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        host = Host(load_config(path), clock=lambda: TEST_NOW, entry_points=self.entry_points)
        self.hosts.append(host)
        return host

    def request(self, rid: str) -> Request:
        return Request(PATIENT, Category.APPOINTMENT_REMINDER, id=rid, text=TEXT, channel=self.suite.channel)

    def delivery(self, host: Host, request_id: str) -> Delivery:
        """What the host would hand the transport for one message to the patient: its key is the
        record id of the request's leg on the channel."""
        request = self.request(request_id)
        recipient = host.plugins.find_recipient(request)
        return Delivery(Message(request, TEXT, subject="Your appointment"), self.suite.address,
                        key(request_id, self.suite.channel), recipient=recipient)

    def close(self) -> None:
        for host in self.hosts:
            host.close()


CONFIG = """
[clinic]
name = "Riverside Family Health"
phone = "+1 613 555 0100"
email = "info@riverside.example"
time_zones = ["America/Toronto"]
portal_url = "https://portal.riverside.example"
link_domains = ["portal.riverside.example"]

[store]
path = "emrcomm.sqlite"

[plugins.directory]
bundle = "patients.json"
"""
PORTAL = '[plugins.portal]\nkeyring = "keyring.json"\n'



def _bundle(kind: str | None, address: str, channel: str) -> dict[str, Any]:
    telecom = [{"system": "other", "value": address,
                "extension": [{"url": f"{BASE}/StructureDefinition/address-kind", "valueCode": kind},
                              {"url": f"{BASE}/StructureDefinition/contact-verified", "valueBoolean": True}]}
               ] if kind else []
    patient = {"resourceType": "Patient", "id": "conformance-1", "birthDate": "1980-04-12",
               "name": [{"family": "Tremblay", "given": ["Alex"]}], "telecom": telecom,
               "address": [{"use": "home", "city": "Ottawa", "state": "ON", "country": "CA"}]}

    def consent(cid: str, channel: str, with_address: bool) -> dict[str, Any]:
        res: dict[str, Any] = {
            "resourceType": "Consent", "id": cid, "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": f"{BASE}/CodeSystem/purpose", "code": "clinical"}]}],
            "patient": {"reference": PATIENT}, "dateTime": "2026-01-05T10:00:00-05:00",
            "provision": {"code": [{"coding": [{"system": f"{BASE}/CodeSystem/channel", "code": channel}]}]}}
        if with_address:
            res["extension"] = [{"url": f"{BASE}/StructureDefinition/consent-address", "valueString": address}]
        return res

    resources = [patient, consent("c-portal", "portal", False)]
    if kind:
        resources.append(consent("c-channel", channel, True))
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in resources]}


def key(request_id: str, channel: str) -> str:
    """The idempotency key the host gives a transport for ``request_id`` on ``channel``."""
    return record_id(request_id, channel, "primary")


def _set(settings: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    table = settings
    for part in path:
        table = table[part]
    table[last] = value


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


@contextlib.contextmanager
def serving(host: Host) -> Iterator[str]:
    """``emrcomm serve``'s app for ``host`` under uvicorn on 127.0.0.1, in a thread; its base URL."""
    import uvicorn

    from emrcomm.web import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(create_app(host), access_log=False, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    while not server.started:
        if dt.datetime.now(dt.UTC) > deadline or not thread.is_alive():
            raise RuntimeError("emrcomm serve did not start")
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def call(base: str, web: WebCall) -> Any:
    import requests

    return requests.request(web.method, base + web.path, params=dict(web.params), data=web.data,
                            headers=dict(web.headers), timeout=30, allow_redirects=False)
