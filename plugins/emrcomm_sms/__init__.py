"""Built-in SMS channel. Transport ``file`` (the default) appends one JSON line per message to
a sink file; ``kannel`` sends through a Kannel gateway, ``twilio`` through Twilio's REST API.
docs/transports.md describes each transport and its settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from emrcomm import Channel, ConfigError, Delivery, PluginContext, Probe, Receipt, hookimpl, settings_schema

from .filesink import FileSink
from .ratelimit import FleetSenderLimits, SenderLimits

if TYPE_CHECKING:
    # The web routes (starlette) and the gateways' HTTP client (requests, in .kannel, .twilio,
    # .http) are imported where they are used: a file sink, or a command that asks only
    # (`emrcomm --help` loads every plugin), starts without them.
    from starlette.routing import BaseRoute

    from emrcomm.web import WebContext

    from .http import ProviderClient
    from .kannel import KannelTransport
    from .twilio import TwilioTransport

__all__ = ["FileSink", "KannelTransport", "Plugin", "TwilioTransport"]


def __getattr__(name: str) -> Any:
    # ``emrcomm_sms.KannelTransport`` and ``.TwilioTransport``, as this package gave them before
    # the gateways' clients moved to their modules: a plugin that imports one gets it, with
    # requests, when it asks.
    if name == "KannelTransport":
        from .kannel import KannelTransport

        return KannelTransport
    if name == "TwilioTransport":
        from .twilio import TwilioTransport

        return TwilioTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ClosableTransport(Protocol):
    def send(self, delivery: Delivery) -> Receipt: ...

    def close(self) -> None: ...


def _secret(context: PluginContext, table: str, key: str) -> str:
    """Resolve ``[plugins.NAME.table] key = {env|file = …}`` through the context, so errors name
    the full setting and never the value."""
    return _secret_later(context, table, key)()


def _secret_later(context: PluginContext, table: str, key: str) -> Callable[[], str]:
    """:func:`_secret` when first needed (a transport sends or is probed), then kept: a host that
    only reads starts without the credential."""
    sub = attrs.evolve(context, name=f"{context.name}.{table}", settings=context.settings[table])
    later = sub.secret_later(key)

    def value() -> str:
        found = later()
        if found is None:  # the schema requires it; a hand-made context may not
            raise ConfigError(f"plugins.{context.name}.{table}.{key}: required")
        return found

    return value


def _client(provider: str, context: PluginContext, settings: Any, base_url: str) -> ProviderClient:
    from .http import ProviderClient

    rate, burst = settings.get("rate_per_second", 10.0), settings.get("burst", 1)
    # "fleet" (the default): one bucket per sender in the database, shared by every worker.
    fleet = context.settings.get("rate_scope", "fleet") == "fleet" and not context.read_only
    limits: SenderLimits | FleetSenderLimits = (
        FleetSenderLimits(context.storage.rates, rate, burst, scope=f"{context.name}:{provider}") if fleet
        else SenderLimits(rate, burst))
    return ProviderClient(
        provider,
        limits=limits,
        connect_timeout=settings.get("connect_timeout", 3.05),
        read_timeout=settings.get("read_timeout", 10.0),
        max_wait=settings.get("retry_after_max", 5.0),
        attempts=settings.get("attempts_on_429", 3),
        base_url=base_url,
        log=context.log,
    )


def make_transport(context: PluginContext) -> _ClosableTransport:
    """The transport the settings ask for (``transport``, default ``file``)."""
    settings = context.settings
    kind = settings.get("transport", "file")
    callback_secret = context.secret_later("callback_secret")
    if kind == "kannel":
        from .kannel import KannelTransport

        kannel = settings["kannel"]
        return KannelTransport(
            url=kannel["url"], username=kannel["username"], password=_secret_later(context, "kannel", "password"),
            client=_client("kannel", context, settings, kannel["url"]), clock=context.clock, sender=settings.get("from"),
            smsc=kannel.get("smsc"), dlr_mask=kannel.get("dlr_mask", 31),
            callback_url=settings.get("callback_url"), callback_secret=callback_secret,
            max_messages=kannel.get("max_messages", 1), concatenation=kannel.get("concatenation", False),
        )
    if kind == "twilio":
        from .twilio import TwilioTransport

        twilio = settings["twilio"]
        base_url = twilio.get("base_url", "https://api.twilio.com")
        return TwilioTransport(
            account_sid=twilio["account_sid"], auth_token=_secret_later(context, "twilio", "auth_token"),
            client=_client("twilio", context, settings, base_url), clock=context.clock, base_url=base_url, sender=settings.get("from"),
            messaging_service_sid=twilio.get("messaging_service_sid"), callback_url=settings.get("callback_url"),
        )
    return FileSink(context.path(settings.get("path", "emrcomm-data/out/sms.jsonl")), "sms", context.clock)


class Plugin:
    """Registers the ``sms`` channel (insecure, v3 medium SMSWRIT) and, under ``emrcomm serve``,
    the routes its provider calls with delivery reports and patients' messages."""

    settings_schema = settings_schema(__name__)

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.transport = make_transport(context)
        # A gateway that cuts what it may not send whole (Kannel) lowers the channel's limit, so
        # that a message it would cut is refused when it is decided (SMS_TOO_LONG), not sent.
        self.max_segments = min(context.settings.get("max_segments", 3),
                                getattr(self.transport, "max_parts", None) or 255)

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel(name="sms", secure=False, medium="SMSWRIT", transport=self.transport,
                        address_system="sms", form="sms", max_segments=self.max_segments)]

    @hookimpl
    def emrcomm_web_routes(self, web: WebContext) -> Sequence[BaseRoute]:
        """``/callbacks/kannel/…`` and ``/callbacks/twilio/…``, each authenticated by its provider's
        secret; a callback whose secret is not configured answers 403."""
        from .routes import routes

        settings = self.context.settings
        token = _secret(self.context, "twilio", "auth_token") if settings.get("transport") == "twilio" else None
        return routes(self.context, token)

    @hookimpl
    def emrcomm_probe(self) -> list[Probe]:
        """``emrcomm doctor``: the gateway or provider, tried with the configured credentials (no
        message sent), or the sink's folder."""
        from . import probes

        found = probes.probe(self.transport, self.context.name)
        return [found] if found is not None else []

    def close(self) -> None:
        """Called by the Host on close: releases the provider's pooled connections."""
        self.transport.close()
