"""The portal's patient pages under ``emrcomm serve``: a magic link's confirm step (a GET never
uses the link up: mail scanners open links too), the date-of-birth check, the message with its
attachments, and the reply form. No scripts, no cookies: after the check, a reading session
travels in the forms. The pages call the :class:`PortalService`; they never touch storage.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from emrcomm.web import RateLimit, WebContext, i18n

if TYPE_CHECKING:
    from emrcomm_portal.service import PortalService

PREFIX = "/m"
# What a browser may be handed as a download; anything else is offered as bytes.
DOWNLOAD_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "text/plain"})
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
# A name's letters and digits in any script, and . _ - and spaces; anything else (a path, a quote,
# a control or a direction mark) becomes "_".
_UNSAFE_UNICODE = re.compile(r"[^\w. -]+")
_DATE_PART = {"day": re.compile(r"[0-9]{1,2}"), "month": re.compile(r"[0-9]{1,2}"), "year": re.compile(r"[0-9]{4}")}
_INDEX = re.compile(r"[0-9]{1,4}")


def routes(web: WebContext, portal: PortalService) -> Sequence[BaseRoute]:
    """The landing page (``/``: where a notice's or an auto-reply's plain address leads) and the
    pages under ``/m``, rate limited per client address."""
    pages = _Pages(web.with_templates("emrcomm_portal"), portal)
    limit = [Middleware(RateLimit, per_minute=portal.rate_limit_per_minute)]
    return [Route("/", pages.home, methods=["GET"], middleware=limit), Mount(PREFIX, routes=[
        Route("/", pages.home, methods=["GET"]),
        Route("/-/view", pages.view, methods=["POST"]),
        Route("/-/reply", pages.reply, methods=["POST"]),
        Route("/-/attachment", pages.attachment, methods=["POST"]),
        Route("/{token}", pages.confirm, methods=["GET"]),
        Route("/{token}", pages.identity, methods=["POST"]),
        Route("/{token}/open", pages.open, methods=["POST"]),
    ], middleware=limit)]


class _Pages:
    def __init__(self, web: WebContext, portal: PortalService) -> None:
        self.web = web
        self.portal = portal

    # steps ---------------------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        """What a patient can do here without a link: how to open a message, whom to call."""
        lang = i18n.language(request.query_params.get("lang") or _browser_language(request))
        return self.web.page(request, "home", lang)

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        visit = await run_in_threadpool(self.portal.visit, token)
        lang = i18n.language(request.query_params.get("lang"), visit.language)
        if visit.state != "ready":
            return self._problem(request, visit.state, lang)
        return self.web.page(request, "confirm", lang, token=token)

    async def identity(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await request.form(max_files=0, max_fields=10)
        visit = await run_in_threadpool(self.portal.visit, token)
        lang = i18n.language(str(form.get("lang", "")), visit.language)
        if visit.state != "ready":
            return self._problem(request, visit.state, lang)
        return self.web.page(request, "identity", lang, token=token)

    async def open(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await request.form(max_files=0, max_fields=10)
        fields = {k: str(form.get(k, "")).strip() for k in ("day", "month", "year")}
        birth_date = _date(fields)
        if birth_date is None:
            visit = await run_in_threadpool(self.portal.visit, token)
            lang = i18n.language(str(form.get("lang", "")), visit.language)
            if visit.state != "ready":
                return self._problem(request, visit.state, lang)
            return self.web.page(request, "identity", lang, status_code=400, token=token, error="invalid",
                                 fields=fields)
        visit = await run_in_threadpool(self.portal.verify, token, birth_date)
        lang = i18n.language(str(form.get("lang", "")), visit.language)
        if visit.state == "wrong":
            return self.web.page(request, "identity", lang, status_code=400, token=token, error="wrong",
                                 left=visit.attempts_left, fields={})
        if visit.state != "opened":
            return self._problem(request, visit.state, lang)
        return self.web.page(request, "message", lang, opened=visit.opened, once=True)

    async def view(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        opened = await run_in_threadpool(self.portal.view, str(form.get("session", "")))
        lang = i18n.language(str(form.get("lang", "")), opened.language if opened else "en")
        if opened is None:
            return self._problem(request, "session", lang)
        page = "replied" if form.get("page") == "replied" else "message"
        return self.web.page(request, page, lang, opened=opened)

    async def reply(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        session, text = str(form.get("session", "")), str(form.get("text", ""))
        result = await run_in_threadpool(self.portal.reply, session, text)
        opened = await run_in_threadpool(self.portal.view, session)
        lang = i18n.language(str(form.get("lang", "")), opened.language if opened else "en")
        if opened is None:
            return self._problem(request, "session", lang)
        if result in ("sent", "already"):
            return self.web.page(request, "replied", lang, opened=opened, already=result == "already")
        return self.web.page(request, "message", lang, status_code=400, opened=opened, error=result,
                             reply_text=text)

    async def attachment(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        session, index = str(form.get("session", "")), str(form.get("index", ""))
        found = None
        if _INDEX.fullmatch(index):
            found = await run_in_threadpool(self.portal.attachment, session, int(index))
        if found is None:
            # Without its reading session the page has expired; within it, an index the message has
            # not (past its last, negative, not a number) is an attachment not found, said in the
            # patient's language.
            opened = await run_in_threadpool(self.portal.view, session)
            lang = i18n.language(str(form.get("lang", "")), opened.language if opened else "en")
            return self._problem(request, "attachment" if opened else "session", lang)
        title, content_type, data = found
        media = content_type if content_type in DOWNLOAD_TYPES else "application/octet-stream"
        return Response(data, media_type=media, headers={"content-disposition": _disposition(title, media)})

    def _problem(self, request: Request, state: str, lang: str) -> Response:
        status = {"unknown": 404, "used": 410, "recalled": 410, "expired": 410, "locked": 403,
                  "unverifiable": 403, "session": 410, "attachment": 404}.get(state, 400)
        token = request.path_params.get("token")
        switch = f"{PREFIX}/{token}?lang={i18n.other(lang)}" if token else None
        return self.web.page(request, "problem", lang, status_code=status, problem=state, switch_href=switch)


def _disposition(title: str, media: str) -> str:
    """The download's Content-Disposition: the title as the file's name (RFC 6266), with
    ``filename*`` keeping its accents ("Résultats.pdf") and ``filename`` an ASCII form of it for
    browsers that read only that; never a path, a quote or a control character."""
    kept = _UNSAFE_UNICODE.sub("_", unicodedata.normalize("NFC", title)).strip(" ._") or "attachment"
    folded = unicodedata.normalize("NFKD", kept).encode("ascii", "ignore").decode("ascii")
    plain = _UNSAFE_NAME.sub("_", folded).strip(" ._") or "attachment"
    if media == "application/pdf":
        kept, plain = (name if name.lower().endswith(".pdf") else name + ".pdf" for name in (kept, plain))
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(kept, safe='')}"


def _browser_language(request: Request) -> str:
    """The browser's most preferred language that the pages speak (Accept-Language, by its
    q-values; a language at q=0 is refused), else English."""
    ranked = []
    for order, part in enumerate(request.headers.get("accept-language", "").split(",")[:10]):
        code, _, params = part.partition(";")
        weight = 1.0
        if params.strip().lower().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if not 0 < weight <= 1:  # q=0: not this one; NaN and the rest: not a q-value
            continue
        ranked.append((-weight, order, code.strip().split("-", 1)[0].lower()))
    return next((code for _, _, code in sorted(ranked) if code in i18n.LANGUAGES), "en")


def _date(fields: dict[str, str]) -> dt.date | None:
    """The date in the form, or None when it is not a real date (not counted as a try). ASCII
    digits only: ``str.isdigit()`` also takes '²' (which ``int()`` refuses) and other scripts'
    digits, and a day of 60,000 digits is past what ``int()`` converts."""
    if not all(_DATE_PART[k].fullmatch(v) for k, v in fields.items()):
        return None
    day, month, year = int(fields["day"]), int(fields["month"]), int(fields["year"])
    if not 1880 <= year <= 2200:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None
