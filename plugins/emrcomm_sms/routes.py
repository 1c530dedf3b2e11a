"""The sms plugin's part of ``emrcomm serve``: Kannel delivery reports and MO messages, Twilio
status callbacks and inbound messages, each authenticated before anything is read, then told to
the host through the plugin's context. Nothing is kept in this process: every report is an
event of its record, keyed so that a repeat (a retry, a replay, another ``serve``) changes nothing.

- Kannel delivery reports carry ``record`` and ``sig`` (HMAC-SHA256 of the record id under
  ``plugins.sms.callback_secret``); MO messages carry ``token``, the HMAC of ``kannel-mo`` under
  the same secret (:func:`emrcomm_sms.callbacks.kannel_mo_url` builds the get-url).
- Twilio requests carry ``X-Twilio-Signature``: base64 HMAC-SHA1, keyed with the auth token, of
  the full URL Twilio called followed by every POST parameter (name + value) sorted by name.

Anything unauthenticated, or any callback whose secret is not configured, is refused with 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from functools import partial
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from emrcomm import DeliveryUpdate, PluginContext
from emrcomm.fhir.patients import normalise_phone
from emrcomm.fhir.regions import DEFAULT_REGION, country_code
from emrcomm.web import RateLimit

from .callbacks import mo_token, same_secret, valid_signature
from .reports import ReportState, kannel_state, twilio_state

PREFIX = "/callbacks"  # plugins.sms.callback_url must name this path, e.g. https://host/callbacks
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# Requests a minute from one provider address ([plugins.sms] callback_rate_limit_per_minute): a
# provider reports each message, up to twice, at the sending rate (10 a second by default).
CALLBACK_RATE_PER_MINUTE = 6000
KINDS = {ReportState.DELIVERED: "delivered", ReportState.FAILED: "failed"}
KANNEL_TYPE = re.compile(r"[1-9]|[12][0-9]|3[01]")  # Kannel's %d: 1, 2, 4, 8, 16 (a sum of them at most)
KANNEL_TIME = re.compile(r"[0-9]{0,12}")  # Kannel's %T: Unix seconds (empty when Kannel has no time)
MAX_RECORD_ID = 128  # characters: a record id is 32 (emrcomm.pipeline.records)


# Kannel's %C, the charset of %a, and how to read it. A message with a character outside GSM-7
# ("ARRÊT", "Arrêtez", an emoji) is UCS-2 on the air, and Kannel passes its bytes as they came
# (UTF-16BE) unless smsbox has mo-recode; read as UTF-8 they are no longer ARRÊT.
KANNEL_CHARSETS = {"UTF-16BE": "utf-16-be", "UTF-16": "utf-16-be", "UCS-2": "utf-16-be", "WINDOWS-1252": "cp1252",
                   "ISO-8859-1": "latin-1", "UTF-8": "utf-8"}


def kannel_text(query: str) -> str:
    """The ``text`` of a Kannel MO get-url's ``query`` (as sent, percent-encoded), read in the
    charset ``charset`` names (UTF-8 when it names none or one not listed)."""
    fields = parse_qsl(query, keep_blank_values=True, encoding="latin-1")  # latin-1: each byte as it came
    raw = next((v for k, v in fields if k == "text"), "").encode("latin-1")
    charset = next((v for k, v in fields if k == "charset"), "").strip().upper()
    return raw.decode(KANNEL_CHARSETS.get(charset, "utf-8"), "replace")


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """What Twilio puts in X-Twilio-Signature for a POST of ``params`` to ``url``."""
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    # surrogatepass: a form field of any characters gets a signature (a wrong one), not an error
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8", "surrogatepass"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class Callbacks:
    """The handlers, with the secrets they check."""

    def __init__(self, context: PluginContext, *, kannel_secret: str | None, twilio_token: str | None,
                 base_url: str | None) -> None:
        self.context = context
        self._kannel_secret = kannel_secret
        self._twilio_token = twilio_token
        self.base_url = base_url.rstrip("/") if base_url else None
        self._warned_no_mo_id = False  # once per process: a get-url without id=%I is the clinic's config
        # The region a sender without a country code is read in, as the directory reads numbers.
        self.region = country_code((context.clinic.jurisdiction or "").split("-")[0]) or DEFAULT_REGION

    # Kannel --------------------------------------------------------------------------------------
    async def kannel_dlr(self, request: Request) -> Response:
        q = request.query_params
        record, sig = q.get("record", ""), q.get("sig", "")
        if len(record) > MAX_RECORD_ID:
            return PlainTextResponse("bad record", status_code=400)
        if not self._kannel_secret or not record or not valid_signature(self._kannel_secret, record, sig):
            self.context.log.warning("kannel delivery report refused: not authenticated")
            return PlainTextResponse("forbidden", status_code=403)
        # The signature covers the record, not the type (Kannel writes it in): a type is taken
        # only as Kannel writes one, so that "1", "01" and "+1" are not three reports to keep.
        kind = q.get("type", "")
        if not KANNEL_TYPE.fullmatch(kind):
            return PlainTextResponse("bad report type", status_code=400)
        try:
            state = kannel_state(int(kind))
        except ValueError:
            return PlainTextResponse("bad report type", status_code=400)
        await run_in_threadpool(partial(self._report, record, state, None, key=f"kannel:{record}:{kind}",
                                        detail=f"kannel type {kind}"))
        return PlainTextResponse("ok")

    async def kannel_mo(self, request: Request) -> Response:
        q = request.query_params
        token = q.get("token", "")
        if not self._kannel_secret or not same_secret(mo_token(self._kannel_secret), token):
            self.context.log.warning("kannel MO refused: not authenticated")
            return PlainTextResponse("forbidden", status_code=403)
        sender, text = q.get("from", ""), kannel_text(request.url.query)
        if not sender:
            return PlainTextResponse("no sender", status_code=400)
        received = q.get("time", "")
        if not KANNEL_TIME.fullmatch(received):
            return PlainTextResponse("bad time", status_code=400)
        message_id = q.get("id") or self._kannel_mo_id(sender, q.get("to", ""), received, text)
        await run_in_threadpool(self._inbound, sender, text, message_id)
        return Response(status_code=200)  # an empty body: Kannel sends nothing back

    def _kannel_mo_id(self, sender: str, receiver: str, received: str, text: str) -> str | None:
        """An id for an MO a get-url without ``id=%I`` (an earlier release's) brings: what smsbox
        sends the same on each retry of one message, the time Kannel received it (``%T``) with
        the sender, the receiver and the words; the same words sent again a second or more later
        are another message. Without ``time`` either, None (the host keys the message by when it
        arrived: a retry is filed twice, never a message lost), said once in the log. Keyed with
        the callback secret: the id reaches the audit log, and a bare SHA-256 of a number, a time
        the entry gives to the second and a "STOP" is undone by hashing every number."""
        if received:
            assert self._kannel_secret is not None  # the MO was authenticated with it
            digest = hmac.new(self._kannel_secret.encode("utf-8"),
                              "\x1f".join((sender, receiver, received, text)).encode("utf-8", "surrogatepass"),
                              hashlib.sha256)
            return f"kannel-mo-{digest.hexdigest()[:32]}"
        if not self._warned_no_mo_id:
            self._warned_no_mo_id = True
            self.context.log.warning(
                "kannel MO get-url has no id=%I (nor time=%T): smsbox's retries of one message will be "
                "filed as two; make the sms-service's get-url again with emrcomm_sms.callbacks.kannel_mo_url")
        return None

    # Twilio --------------------------------------------------------------------------------------
    async def _twilio_form(self, request: Request) -> dict[str, str] | None:
        # Twilio posts about twenty fields and never a file.
        form = {k: str(v) for k, v in (await request.form(max_files=0, max_fields=100)).items()}
        url = str(request.url)
        if self.base_url:  # behind a proxy: the URL Twilio called is the configured one
            rest = request.url.path[len(PREFIX):] if request.url.path.startswith(PREFIX) else request.url.path
            url = self.base_url + rest + (f"?{request.url.query}" if request.url.query else "")
        given = request.headers.get("x-twilio-signature", "")
        if not self._twilio_token or not given or not same_secret(
                twilio_signature(self._twilio_token, url, form), given):
            self.context.log.warning("twilio callback refused: bad or missing X-Twilio-Signature")
            return None
        return form

    async def twilio_status(self, request: Request) -> Response:
        form = await self._twilio_form(request)
        if form is None:
            return PlainTextResponse("forbidden", status_code=403)
        record = request.query_params.get("record", "")
        try:
            state = twilio_state(form.get("MessageStatus", ""))
        except ValueError:
            return PlainTextResponse("unknown status", status_code=400)
        detail = f"twilio {form.get('MessageStatus')}" + (f" {form['ErrorCode']}" if form.get("ErrorCode") else "")
        sid = form.get("MessageSid") or ""
        if record:
            await run_in_threadpool(partial(self._report, record, state, sid or None,
                                            key=f"twilio:{sid or record}:{form.get('MessageStatus')}", detail=detail))
        return Response(status_code=200)

    async def twilio_inbound(self, request: Request) -> Response:
        form = await self._twilio_form(request)
        if form is None:
            return PlainTextResponse("forbidden", status_code=403)
        if not form.get("From"):
            return PlainTextResponse("no sender", status_code=400)
        # With Advanced Opt-Out, OptOutType says which keyword Twilio matched (and blocks or
        # unblocks the number by): its reading, not only emrcomm's, of the words.
        await run_in_threadpool(self._inbound, form["From"], form.get("Body", ""), form.get("MessageSid"),
                                keyword=form.get("OptOutType") or None)
        return Response(EMPTY_TWIML, media_type="text/xml")

    # to the host ---------------------------------------------------------------------------------
    def _report(self, record: str, state: ReportState, provider_id: str | None, *, key: str, detail: str) -> None:
        """Delivered, failed, or progress that says nothing final. ``key`` makes a provider's
        retry or a replay change nothing, across restarts and ``serve`` processes; a report that
        says less than what is known (a failed after a delivered) moves nothing."""
        kind = KINDS.get(state, "progress")
        self.context.report(DeliveryUpdate(kind=kind, at=self.context.clock(), channel="sms", record_id=record,
                                           provider_id=provider_id, detail=detail, key=key))
        self.context.log.info("record %s: %s report", record, kind)

    def _inbound(self, sender: str, text: str, provider_id: str | None, *, keyword: str | None = None) -> None:
        """A patient's message: the host finds the message it answers by the number, files it,
        and the opt-out plugin acts on STOP, START and HELP. The sender is written in E.164, as the
        directory writes numbers: an SMSC may give it without its "+" ("16135550123") or in its
        national form, and the same number written otherwise would be another address, whose
        STOP would stop nothing."""
        self.context.report(DeliveryUpdate(kind="reply", at=self.context.clock(), channel="sms",
                                           address=normalise_phone(sender.strip(), self.region), text=text,
                                           provider_id=provider_id, keyword=keyword))
        self.context.log.info("inbound sms reported")


def routes(context: PluginContext, twilio_token: str | None) -> Sequence[BaseRoute]:
    """The callback routes under ``/callbacks``, rate limited per provider address."""
    settings = context.settings
    handlers = Callbacks(context, kannel_secret=context.secret("callback_secret"), twilio_token=twilio_token,
                         base_url=settings.get("callback_url"))
    per_minute = settings.get("callback_rate_limit_per_minute", CALLBACK_RATE_PER_MINUTE)
    return [Mount(PREFIX, routes=[
        Route("/kannel/dlr", handlers.kannel_dlr, methods=["GET", "POST"]),
        Route("/kannel/mo", handlers.kannel_mo, methods=["GET", "POST"]),
        Route("/twilio/status", handlers.twilio_status, methods=["POST"]),
        Route("/twilio/inbound", handlers.twilio_inbound, methods=["POST"]),
    ], middleware=[Middleware(RateLimit, per_minute=per_minute)])]
