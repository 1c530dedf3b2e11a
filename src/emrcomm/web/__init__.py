"""The ASGI app ``emrcomm serve`` runs: the FHIR API (``/fhir``, emrcomm.api), the staff pages
(``/staff``, emrcomm.web.staff) and the routes every plugin contributes (``emrcomm_web_routes``:
the sms plugin's delivery callbacks, the portal's patient pages, a third party's own), behind one
set of security headers, a body limit, a same-origin check and an access log that withholds tokens.

What a plugin's routes may use is exported here: :class:`WebContext` (pages in the app's
layout, in English and French) and :class:`RateLimit` (a per-client limit for a ``Mount``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from attrs import evolve, field, frozen
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

from emrcomm import api
from emrcomm.errors import EmrcommError
from emrcomm.web import i18n, staff
from emrcomm.web.security import (
    AccessLog,
    BodyLimit,
    ErrorShield,
    RateLimit,
    SameOrigin,
    SecureHeaders,
    UntrustedProxy,
)

if TYPE_CHECKING:
    from emrcomm.host import Host
    from emrcomm.plugin.context import Clinic

__all__ = ["RateLimit", "WebContext", "create_app", "serve"]

log = logging.getLogger("emrcomm.web")


def _environment(*packages: str) -> Environment:
    env = Environment(
        loader=ChoiceLoader([PackageLoader(p, "templates") for p in (*packages, "emrcomm.web")]),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # What every page may use: dates and phone numbers as each language writes them, and
    # sentences with a link in them (the words escaped, the link kept).
    env.globals.update(long_date=i18n.long_date, phone_display=i18n.phone_display, phone_link=_phone_link,
                       words=_words)
    env.filters["directions_shown"] = directions_shown
    return env


# The characters that embed, override or isolate a direction of writing (U+202A–U+202E,
# U+2066–U+2069): in someone else's words they can make a text read in another order than it
# was written ("U+202E" turns what follows around).
_DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def directions_shown(text: str) -> str:
    """``text`` (a patient's words) with its direction controls shown as ``[U+202E]`` rather than
    obeyed: staff read the words in the order they were written."""
    return _DIRECTION_CONTROLS.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def _words(sentence: str, **values: Any) -> Markup:
    """``sentence`` (one of the strings) with ``values`` filled in: text is escaped, Markup
    (a link from :func:`_phone_link`) is kept."""
    return Markup(escape(sentence)).format(**values)


def _phone_link(number: str, language: str) -> Markup:
    """A phone number a patient can tap to call: ``<a href="tel:+16135550100">613-555-0100</a>``."""
    shown = i18n.phone_display(number, language)
    href = i18n.phone_href(number)
    if href is None:
        return Markup(escape(shown))
    return Markup('<a class="tel" href="{}">{}</a>').format(href, shown)


@frozen
class WebContext:
    """What a plugin's routes get: pages in the app's layout (autoescaped Jinja2, en and fr).

    ``with_templates(package, strings)`` gives a context whose pages come from
    ``<package>/templates/<name>.html`` first (they may ``{% extends "base.html" %}``), with the
    plugin's own words added to the layout's (``strings[language][key]``, in both languages).
    """

    clinic: Clinic
    pages: Environment = field(factory=_environment, repr=False)
    strings: Mapping[str, Mapping[str, str]] = field(factory=lambda: i18n.STRINGS, repr=False)

    def with_templates(self, package: str, strings: Mapping[str, Mapping[str, str]] | None = None) -> WebContext:
        words = {lang: {**self.strings[lang], **(strings or {}).get(lang, {})} for lang in i18n.LANGUAGES}
        return evolve(self, pages=_environment(package), strings=words)

    def page(self, request: Request, name: str, language: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        """Render ``templates/<name>.html`` in ``language`` (en or fr)."""
        language = i18n.language(language)
        other = i18n.other(language)
        if "switch_href" not in values:
            # The language switch: the same address in the other language, for pages a GET shows.
            values["switch_href"] = f"{_local(request.url.path)}?lang={other}" if request.method == "GET" else None
        html = self.pages.get_template(f"{name}.html").render(
            t=self.strings[language], lang=language, other=other, other_name=self.strings[other]["language_name"],
            clinic=self.clinic, **values,
        )
        return HTMLResponse(html, status_code=status_code)


def _local(path: str) -> str:
    """A request's path as a link that stays on this site: percent-encoded, with one leading
    slash. As it came (on a page not found, anything), ``//evil.example`` or ``/%09/evil.example``
    is read by browsers as another site's address."""
    return "/" + quote(path, safe="/").lstrip("/")


def create_app(host: Host) -> Starlette:
    """The ASGI app for ``host``. The host stays open for the app's life; the caller closes it."""
    web = WebContext(clinic=host.config.clinic)
    routes: list[BaseRoute] = [
        Route("/healthz", _health, methods=["GET"]),
        Mount("/static", app=StaticFiles(packages=[("emrcomm.web", "static")]), name="static"),
        *api.routes(host),
        *staff.routes(host, web),
        *host.plugins.web_routes(web),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        language = i18n.language(request.query_params.get("lang", ""))
        return web.page(request, "problem", language, status_code=status, problem="not-found" if status == 404
                        else "error")

    def error_page(scope: Scope) -> Response:
        return web.page(Request(scope), "problem", "en", status_code=500, problem="error", switch_href=None)

    # The portal's own addresses: its pages post to themselves whatever Host the proxy passes on.
    link_base = host.config.plugin_settings.get("portal", {}).get("link_base", "")
    origins = _origins(host.config.clinic.portal_url, str(link_base))
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLog),
            Middleware(SecureHeaders),
            Middleware(ErrorShield, error_page=error_page),
            # The FHIR API reads batches: it limits each operation itself (emrcomm.api.handlers).
            Middleware(BodyLimit, limit=host.config.limits.http_body_bytes, own=("/fhir",)),
            Middleware(SameOrigin, own=("/fhir",), origins=origins),
        ],
        exception_handlers={404: not_found, 405: not_found, 500: not_found},
    )
    # Rate limits shared by every `serve` process on the store (emrcomm.web.security.RateLimit).
    app.state.rates = None if host.read_only else host.storage.rates
    return app


def _origins(*addresses: str) -> tuple[str, ...]:
    """The origins (``https://portal.example``) of the site's configured addresses: what a
    browser sends as Origin from their pages, whatever Host a proxy passes on."""
    found = []
    for address in addresses:
        parts = urlsplit(address.strip())
        try:
            port = parts.port
        except ValueError:
            continue
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        default = {"http": 80, "https": 443}[parts.scheme]  # a browser's Origin leaves it out
        where = parts.hostname if port in (None, default) else f"{parts.hostname}:{port}"
        found.append(f"{parts.scheme}://{where}")
    return tuple(found)


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


def serve(host: Host, *, bind: str = "127.0.0.1", port: int = 8000, forwarded_allow_ips: str | None = None) -> None:
    """Run the app with uvicorn until interrupted. uvicorn's own access log is off: it would
    write magic links into the log; :class:`AccessLog` writes paths with tokens withheld."""
    import uvicorn

    app: ASGIApp = create_app(host)
    if forwarded_allow_ips is None:
        app = UntrustedProxy(app)
    config = uvicorn.Config(
        app, host=bind, port=port, access_log=False, server_header=False,
        proxy_headers=forwarded_allow_ips is not None, forwarded_allow_ips=forwarded_allow_ips,
        log_config=None,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:
        # uvicorn exits 3 when it cannot listen, which emrcomm's exit codes read as "not sent".
        if server.started:
            raise
        raise EmrcommError(f"serve: cannot listen on {bind}:{port} (the reason is above: a port another process "
                           "holds, an address not on this machine): stop that process, or give another --port "
                           "or --bind") from None
