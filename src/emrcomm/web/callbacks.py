"""The delivery callbacks section of the app: Kannel delivery reports and MO messages, Twilio
status callbacks and inbound messages, each authenticated before anything is read.

- Kannel delivery reports carry ``record`` and ``sig`` (HMAC-SHA256 of the record id under
  ``plugins.sms.callback_secret``); MO messages carry ``token``, the HMAC of ``kannel-mo`` under
  the same secret (:func:`emrcomm_sms.callbacks.kannel_mo_url` builds the get-url).
- Twilio requests carry ``X-Twilio-Signature``: base64 HMAC-SHA1, keyed with the auth token, of
  the full URL Twilio called followed by every POST parameter (name + value) sorted by name.

Anything unauthenticated, or any callback whose secret is not configured, is refused with 403.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from emrcomm.context import PluginContext
from emrcomm.inbound import handle_inbound
from emrcomm.model import DeliveryUpdate
from emrcomm.web.security import RateLimit

if TYPE_CHECKING:
    from emrcomm.host import Host
    from emrcomm.web import WebContext

log = logging.getLogger("emrcomm.web.callbacks")

PREFIX = "/callbacks"  # plugins.sms.callback_url must name this path, e.g. https://host/callbacks
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
_REMEMBERED = 10_000  # records whose segment reports are kept in memory for combining
# Requests a minute from one provider address ([plugins.sms] callback_rate_limit_per_minute): a
# provider reports each segment, up to twice, at the sending rate (10 a second by default).
CALLBACK_RATE_PER_MINUTE = 6000


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """What Twilio puts in X-Twilio-Signature for a POST of ``params`` to ``url``."""
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    # surrogatepass: a form field of any characters gets a signature (a wrong one), not an error
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8", "surrogatepass"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class Callbacks:
    """The handlers, with the secrets they check and the segment reports seen so far."""

    def __init__(self, host: Host, *, kannel_secret: str | None, twilio_token: str | None,
                 base_url: str | None) -> None:
        self.host = host
        self._kannel_secret = kannel_secret
        self._twilio_token = twilio_token
        self.base_url = base_url.rstrip("/") if base_url else None
        self._reports: collections.OrderedDict[str, list[Any]] = collections.OrderedDict()
        self._finished: set[str] = set()
        self._lock = threading.Lock()

    # Kannel --------------------------------------------------------------------------------------
    async def kannel_dlr(self, request: Request) -> Response:
        from emrcomm_sms.callbacks import valid_signature
        from emrcomm_sms.reports import SegmentReport, kannel_state

        q = request.query_params
        record, sig = q.get("record", ""), q.get("sig", "")
        if not self._kannel_secret or not record or not valid_signature(self._kannel_secret, record, sig):
            log.warning("kannel delivery report refused: not authenticated")
            return PlainTextResponse("forbidden", status_code=403)
        try:
            state = kannel_state(int(q.get("type", "")))
        except ValueError:
            return PlainTextResponse("bad report type", status_code=400)
        report = SegmentReport(state, part=q.get("smsc_id") or None, detail=f"kannel type {q.get('type')}")
        await run_in_threadpool(self._report, record, report, None)
        return PlainTextResponse("ok")

    async def kannel_mo(self, request: Request) -> Response:
        from emrcomm_sms.callbacks import mo_token, same_secret

        q = request.query_params
        token = q.get("token", "")
        if not self._kannel_secret or not same_secret(mo_token(self._kannel_secret), token):
            log.warning("kannel MO refused: not authenticated")
            return PlainTextResponse("forbidden", status_code=403)
        sender, text = q.get("from", ""), q.get("text", "")
        if not sender:
            return PlainTextResponse("no sender", status_code=400)
        await run_in_threadpool(self._inbound, sender, text, q.get("id") or None)
        return Response(status_code=200)  # an empty body: Kannel sends nothing back

    # Twilio --------------------------------------------------------------------------------------
    async def _twilio_form(self, request: Request) -> dict[str, str] | None:
        from emrcomm_sms.callbacks import same_secret

        # Twilio posts about twenty fields and never a file.
        form = {k: str(v) for k, v in (await request.form(max_files=0, max_fields=100)).items()}
        url = str(request.url)
        if self.base_url:  # behind a proxy: the URL Twilio called is the configured one
            rest = request.url.path[len(PREFIX):] if request.url.path.startswith(PREFIX) else request.url.path
            url = self.base_url + rest + (f"?{request.url.query}" if request.url.query else "")
        given = request.headers.get("x-twilio-signature", "")
        if not self._twilio_token or not given or not same_secret(
                twilio_signature(self._twilio_token, url, form), given):
            log.warning("twilio callback refused: bad or missing X-Twilio-Signature")
            return None
        return form

    async def twilio_status(self, request: Request) -> Response:
        from emrcomm_sms.reports import SegmentReport, twilio_state

        form = await self._twilio_form(request)
        if form is None:
            return PlainTextResponse("forbidden", status_code=403)
        record = request.query_params.get("record", "")
        try:
            state = twilio_state(form.get("MessageStatus", ""))
        except ValueError:
            return PlainTextResponse("unknown status", status_code=400)
        detail = f"twilio {form.get('MessageStatus')}" + (f" {form['ErrorCode']}" if form.get("ErrorCode") else "")
        if record:
            await run_in_threadpool(self._report, record, SegmentReport(state, detail=detail), form.get("MessageSid"))
        return Response(status_code=200)

    async def twilio_inbound(self, request: Request) -> Response:
        form = await self._twilio_form(request)
        if form is None:
            return PlainTextResponse("forbidden", status_code=403)
        if not form.get("From"):
            return PlainTextResponse("no sender", status_code=400)
        await run_in_threadpool(self._inbound, form["From"], form.get("Body", ""), form.get("MessageSid"))
        return Response(EMPTY_TWIML, media_type="text/xml")

    # shared --------------------------------------------------------------------------------------
    def _report(self, record: str, report: Any, provider_id: str | None) -> None:
        """Combine this report with the record's earlier ones; tell the host when the message as
        a whole is delivered or failed (once)."""
        from emrcomm.host import payload_text
        from emrcomm_policy.segments import count_segments
        from emrcomm_sms.reports import ReportState, combine

        segments = 1
        row = self.host.store.outbox_get(record) if provider_id is None else None
        if row is not None:  # Kannel reports per segment (Twilio, with a Message SID, per message)
            text = payload_text(row["payload"], self.host.channels) or ""
            segments = max(1, count_segments(text)[1]) if text else 1
        if self._settled(record):
            log.info("record %s: report ignored, the record already has its final report", record)
            return
        with self._lock:
            if record in self._finished:
                return
            seen = self._reports.setdefault(record, [])
            seen.append(report)
            self._reports.move_to_end(record)
            while len(self._reports) > _REMEMBERED:
                self._reports.popitem(last=False)
            combined = combine(seen, segments)
            if combined.state not in (ReportState.DELIVERED, ReportState.FAILED):
                return
            self._finished.add(record)
            self._reports.pop(record, None)
        kind = "delivered" if combined.state is ReportState.DELIVERED else "failed"
        self.host.delivery_update(DeliveryUpdate(kind=kind, at=self.host.clock(), channel="sms", record_id=record,
                                                 provider_id=provider_id, detail=combined.detail))
        log.info("record %s: %s (%d segment(s))", record, kind, segments)

    def _settled(self, record: str) -> bool:
        """Whether the chart already holds the provider's final word on ``record`` (delivered, or
        failed by the provider): a report replayed later, even after a restart, changes nothing."""
        resource = self.host.store.get_record(record) or {}
        delivered = any(str(n.get("text", "")).startswith("delivered ") for n in resource.get("note", ()))
        failed = any(c.get("code") == "DELIVERY_FAILED" for c in (resource.get("statusReason") or {}).get("coding", ()))
        return delivered or (failed and "provider reported" in (resource.get("statusReason") or {}).get("text", ""))

    def _inbound(self, sender: str, text: str, provider_id: str | None) -> None:
        handled = handle_inbound(self.host, channel="sms", address=sender, text=text, at=self.host.clock(),
                                 provider_id=provider_id)
        log.info("inbound sms handled as %s", handled.value)


def callbacks_for(host: Host) -> Callbacks | None:
    """The handlers for ``host``'s SMS channel, with its secrets resolved; None without SMS."""
    if "sms" not in host.channels:
        return None
    settings = host.config.plugin_settings.get("sms", {})
    context = PluginContext(name="sms", settings=settings, clinic=host.config.clinic, store=host.store,
                            base_dir=host.config.base_dir, clock=host.clock)
    token = None
    if settings.get("transport") == "twilio":
        twilio = PluginContext(name="sms.twilio", settings=settings["twilio"], clinic=host.config.clinic,
                               store=host.store, base_dir=host.config.base_dir, clock=host.clock)
        token = twilio.secret("auth_token")
    return Callbacks(host, kannel_secret=context.secret("callback_secret"), twilio_token=token,
                     base_url=settings.get("callback_url"))


def routes(web: WebContext) -> Sequence[BaseRoute]:
    handlers = callbacks_for(web.host)
    if handlers is None:
        return []
    per_minute = web.host.config.plugin_settings.get("sms", {}).get("callback_rate_limit_per_minute",
                                                                    CALLBACK_RATE_PER_MINUTE)
    return [Mount(PREFIX, routes=[
        Route("/kannel/dlr", handlers.kannel_dlr, methods=["GET", "POST"]),
        Route("/kannel/mo", handlers.kannel_mo, methods=["GET", "POST"]),
        Route("/twilio/status", handlers.twilio_status, methods=["POST"]),
        Route("/twilio/inbound", handlers.twilio_inbound, methods=["POST"]),
    ], middleware=[Middleware(RateLimit, per_minute=per_minute)])]
