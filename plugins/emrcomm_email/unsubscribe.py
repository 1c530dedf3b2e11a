"""One-click unsubscribe (RFC 8058) for email: the endpoint ``emrcomm serve`` answers the link
each email carries at (the link itself: emrcomm_email.links).

Each email's ``List-Unsubscribe`` names ``<unsubscribe_url>/<record id>.<signature>``: the
signature is an HMAC-SHA256 of the record id under a key of this plugin's own (a file created
with mode 0600 on first use), so a link cannot be made for another email. ``GET`` shows a page
that asks to confirm (a link checker or a prefetching mail client changes nothing); ``POST`` —
the mail provider's one-click ``List-Unsubscribe=One-Click``, or the page's button — withdraws
email consent for that address in the consent ledger, source "email unsubscribe link". No login:
the link is the proof, as RFC 8058 requires.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from emrcomm import DeliveryUpdate, PluginContext
from emrcomm.web import RateLimit, WebContext, i18n

from .links import PREFIX, Signer

SOURCE = "email unsubscribe link"
RATE_PER_MINUTE = 60

STRINGS = {
    "en": {
        "unsubscribe_title": "Stop emails from {clinic}",
        "unsubscribe_lead": "{clinic} will send no more email to this address once you confirm. Text "
                            "messages and the secure portal are not affected.",
        "unsubscribe_button": "Stop the emails",
        "unsubscribed_title": "You are unsubscribed",
        "unsubscribed_lead": "{clinic} will send no more email to this address. To receive emails again, "
                             "tell the clinic's front desk.",
        "unsubscribe_invalid_title": "This link is not valid",
        "unsubscribe_invalid": "Use the link in the most recent email from the clinic, or call the clinic.",
    },
    "fr": {
        "unsubscribe_title": "Ne plus recevoir de courriels de {clinic}",
        "unsubscribe_lead": "{clinic} n’enverra plus de courriel à cette adresse une fois que vous aurez "
                            "confirmé. Les textos et le portail sécurisé ne changent pas.",
        "unsubscribe_button": "Arrêter les courriels",
        "unsubscribed_title": "Votre désabonnement est fait",
        "unsubscribed_lead": "{clinic} n’enverra plus de courriel à cette adresse. Pour en recevoir de "
                             "nouveau, dites-le à l’accueil de la clinique.",
        "unsubscribe_invalid_title": "Ce lien n’est pas valide",
        "unsubscribe_invalid": "Utilisez le lien du courriel le plus récent de la clinique, ou appelez la clinique.",
    },
}


class Pages:
    def __init__(self, context: PluginContext, web: WebContext, signer: Signer) -> None:
        self.context = context
        self.web = web.with_templates("emrcomm_email", STRINGS)
        self.signer = signer

    def _find(self, token: str) -> tuple[str, str, str, str] | None:
        """(record id, address, patient, language) of the email the token was made for."""
        record_id = self.signer.record_of(token)
        facts = self.context.records.facts(record_id) if record_id else None
        if facts is None or facts.channel != "email" or not facts.address:
            return None
        return facts.id, facts.address, facts.request.patient_ref, facts.language

    async def ask(self, request: Request) -> Response:
        token = request.path_params["token"]
        found = await run_in_threadpool(self._find, token)
        lang = i18n.language(request.query_params.get("lang"), found[3] if found else "en")
        if found is None:
            return self.web.page(request, "unsubscribe-invalid", lang, status_code=404)
        return self.web.page(request, "unsubscribe", lang, action=f"{PREFIX}/{token}")

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await request.form(max_files=0, max_fields=5)
        found = await run_in_threadpool(self._find, token)
        lang = i18n.language(str(form.get("lang", "")), found[3] if found else "en")
        if found is None:
            return self.web.page(request, "unsubscribe-invalid", lang, status_code=404, switch_href=None)
        await run_in_threadpool(self._withdraw, *found[:3])
        return self.web.page(request, "unsubscribed", lang, switch_href=None)

    def _withdraw(self, record_id: str, address: str, patient: str) -> None:
        last = self.context.consent.last(channel="email", address=address)
        if last is not None and last.revokes and last.purpose is None:
            self.context.log.info("unsubscribe by the link of record %s: already unsubscribed", record_id)
            return  # a second click, the provider's retry: the ledger already says so
        self.context.report(DeliveryUpdate(kind="optout", at=self.context.clock(), channel="email", address=address,
                                           text=SOURCE, detail=patient, key=f"unsubscribe|{record_id}"))
        self.context.log.info("unsubscribe by the link of record %s: email consent withdrawn", record_id)


def routes(context: PluginContext, web: WebContext, signer: Signer) -> Sequence[BaseRoute]:
    pages = Pages(context, web, signer)
    return [Mount(PREFIX, routes=[
        Route("/{token}", pages.ask, methods=["GET"]),
        Route("/{token}", pages.unsubscribe, methods=["POST"]),
    ], middleware=[Middleware(RateLimit, per_minute=RATE_PER_MINUTE)])]
