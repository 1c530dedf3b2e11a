"""Plugins that exist only for tests: they record the order they are called in, or misbehave."""

from __future__ import annotations

from typing import Any, ClassVar

from emrcomm import Channel, Delivery, Finding, PluginContext, Receipt, hookimpl
from emrcomm.storage import StoreUnavailable

CALLS: list[str] = []


class _Recorder:
    settings_schema: dict[str, Any] | None = None

    def __init__(self, context: PluginContext) -> None:
        self.name = context.name

    @hookimpl
    def emrcomm_validate(self) -> list[Finding]:
        CALLS.append(self.name)
        return []

    @hookimpl
    def emrcomm_inspect(self) -> list[Finding]:
        CALLS.append(self.name)
        return []


class Alpha(_Recorder):
    pass


class Beta(_Recorder):
    pass


class Gamma(_Recorder):
    settings_schema: dict[str, Any] | None = {  # noqa: RUF012 - read-only by convention
        "type": "object", "additionalProperties": False,
        "properties": {
            "threshold": {"type": "integer", "minimum": 1, "description": "a whole number of messages"},
            "api_token": {"type": "object", "description": "a secret reference"},
        },
    }


class _Bare:
    def __init__(self, context: PluginContext) -> None:
        self.name = context.name


class Misspelled(_Bare):
    @hookimpl
    def emrcomm_valdate(self) -> list[Finding]:  # not a hook: must stop start-up
        return []


class Exploding(_Bare):
    """A validator and an inspector that raise: the message must not go."""

    @hookimpl
    def emrcomm_validate(self) -> list[Finding]:
        raise RuntimeError("lexicon file missing")

    @hookimpl
    def emrcomm_inspect(self) -> list[Finding]:
        raise RuntimeError("lexicon file missing")


class BrokenFiler(_Bare):
    @hookimpl
    def emrcomm_file_record(self, record: Any) -> None:
        raise OSError("chart unreachable")


class FailsAfterSending(_Bare):
    """A chart that takes the in-progress record and then goes away."""

    @hookimpl
    def emrcomm_file_record(self, record: Any) -> None:
        if record.status == "completed":
            raise OSError("chart went away")


class DeafAdapter(_Bare):
    """An EMR adapter whose delivery-update handler is broken."""

    @hookimpl
    def emrcomm_delivery_update(self, update: Any) -> None:
        raise RuntimeError("adapter down")


class AwayAdapter(_Bare):
    """An EMR adapter whose database goes away while it hears of an update."""

    FAIL = True

    @hookimpl
    def emrcomm_delivery_update(self, update: Any) -> None:
        if AwayAdapter.FAIL:
            raise StoreUnavailable("the database server cannot be reached")


class DeafToEmail(_Bare):
    """An EMR adapter that fails on what it hears of an email address (while FAIL): a front-desk
    Consent naming SMS, then email, fails at its second entry."""

    FAIL = True

    @hookimpl
    def emrcomm_delivery_update(self, update: Any) -> None:
        if DeafToEmail.FAIL and update.channel == "email":
            raise RuntimeError("adapter down")


class AppChannel:
    """A third party's insecure channel with addresses of its own kind ("app"): it declares the
    categories it may carry and that it carries portal notices; ``SENT`` keeps what it sent."""

    SENT: ClassVar[list[Delivery]] = []
    settings_schema: dict[str, Any] | None = {  # noqa: RUF012 - read-only by convention
        "type": "object", "additionalProperties": False, "properties": {"secure": {"type": "boolean"}}}

    def __init__(self, context: PluginContext) -> None:
        self.secure = bool(context.settings.get("secure", False))

    def send(self, delivery: Delivery) -> Receipt:
        AppChannel.SENT.append(delivery)
        return Receipt(channel="app", address=delivery.address, provider_id=f"app-{len(AppChannel.SENT)}")

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel("app", secure=self.secure, medium="ONLINEWRIT", transport=self, address_system="app",
                        categories=("appointment-reminder", "prescription-pickup"), notices=True)]


class ChartAway(_Bare):
    """A chart that refuses records while AWAY."""

    AWAY = True

    @hookimpl
    def emrcomm_file_record(self, record: Any) -> None:
        if ChartAway.AWAY:
            raise OSError("chart unreachable")


class ConflictWorded:
    """A renderer whose refusal is worded as a request-id conflict is: a failure, not a conflict."""

    def __init__(self, context: PluginContext) -> None:
        self.name = context.name

    @hookimpl
    def emrcomm_render(self, request: Any, recipient: Any) -> None:
        from emrcomm import RenderError
        from emrcomm.pipeline.digest import conflict_text

        raise RenderError(conflict_text(request, request.id))


class _ServiceCheck:
    """A third party's check that asks its own service, a FHIR server (tests/fhir_server): a
    server that cannot answer now (stopped, slower than ``timeout``, 5xx, a page that is not a
    Bundle) is PluginUnavailable naming the plugin and the server, with its Retry-After; one that
    refuses the query (4xx: the check is set up wrong) fails the check."""

    SERVICE = "service"
    settings_schema: dict[str, Any] | None = {  # noqa: RUF012 - read-only by convention
        "type": "object", "additionalProperties": False, "required": ["base_url"],
        "properties": {"base_url": {"type": "string"}, "token": {"type": "object"},
                       "timeout": {"type": "number", "exclusiveMinimum": 0}},
    }

    def __init__(self, context: PluginContext) -> None:
        self.name = context.name
        self.base_url = str(context.settings["base_url"]).rstrip("/")
        self.token = context.secret("token")
        self.timeout = float(context.settings.get("timeout", 0.5))

    def ask(self, resource_type: str, params: dict[str, str]) -> dict[str, Any]:
        """The service's Bundle for a search of ``resource_type``."""
        import requests

        from emrcomm import PluginUnavailable

        def unavailable(why: str, retry_after: float | None = None) -> PluginUnavailable:
            return PluginUnavailable(f"plugin {self.name!r}: the {self.SERVICE} {self.base_url} is unavailable "
                                     f"({why}): nothing was sent or filed; send the request again when it is back",
                                     retry_after=retry_after)

        try:
            answer = requests.get(f"{self.base_url}/{resource_type}", params=params,
                                  headers={"Authorization": f"Bearer {self.token}"}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise unavailable(type(exc).__name__) from None
        if answer.status_code >= 500:
            after = answer.headers.get("Retry-After", "")
            raise unavailable(f"HTTP {answer.status_code}", float(after) if after.isdigit() else None)
        answer.raise_for_status()  # 4xx: not an outage; trying again will not help
        try:
            bundle = answer.json()
        except ValueError:
            raise unavailable("an answer that is not JSON") from None
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise unavailable("an answer that is not a Bundle")
        return bundle


class ConsentService(_ServiceCheck):
    """A third party's pre-send check (``emrcomm_validate``): it asks a consent service for the
    patient's refusals before each route goes. A refusal on file blocks (CONSENT_REVOKED)."""

    SERVICE = "consent service"

    @hookimpl
    def emrcomm_validate(self, recipient: Any, channel: Any) -> list[Finding]:
        from emrcomm import finding

        bundle = self.ask("Consent", {"patient": recipient.patient_ref, "status": "rejected"})
        if bundle.get("entry"):
            return [finding("CONSENT_REVOKED", plugin=self.name, channel=channel.name, source="the consent service")]
        return []


class ContentClassifier(_ServiceCheck):
    """A third party's content inspector (``emrcomm_inspect``): it asks a classifier service
    before each text is judged. What it would flag does not matter here (it reports nothing):
    these tests need only whether the service could answer."""

    SERVICE = "classifier service"

    @hookimpl
    def emrcomm_inspect(self) -> list[Finding]:
        self.ask("Basic", {"code": "flagged-term"})
        return []


class OwnPrepare:
    """A validator written before plugins could put off their preparation, with a method of its
    own named ``prepare`` that takes an argument: the host never calls it."""

    def __init__(self, context: Any) -> None:
        self.prepared: list[Any] = []

    def prepare(self, message: Any) -> None:
        self.prepared.append(message)

    @hookimpl
    def emrcomm_validate(self, message: Any, recipient: Any, channel: Any, route: Any, findings: Any,
                         now: Any) -> list[Any]:
        return []
