"""The ASGI app ``emrcomm serve`` runs: the portal's patient pages, and whatever other sections
(delivery callbacks) are listed in :data:`SECTIONS`, behind one set of security headers.

A section is a function ``routes(web: WebContext) -> Sequence[BaseRoute]`` named in
:data:`SECTIONS` as ``"module:function"``; it returns Starlette routes (a ``Mount`` with its own
middleware, such as a rate limit, when it needs one) and returns nothing when its part of the
host is not there. Adding a section is one line in that tuple.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from attrs import frozen
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from emrcomm.web import i18n
from emrcomm.web.security import AccessLog, BodyLimit, ErrorShield, SameOrigin, SecureHeaders

if TYPE_CHECKING:
    from emrcomm.host import Host

log = logging.getLogger("emrcomm.web")

# The parts of the app, in order. Delivery callbacks add theirs here.
SECTIONS: tuple[str, ...] = ("emrcomm.web.portal:routes", "emrcomm.web.callbacks:routes", "emrcomm.api:routes")


@frozen
class WebContext:
    """What a section gets: the host, and the page templates (autoescaped Jinja2, en and fr)."""

    host: Host
    pages: Environment

    def page(self, request: Request, name: str, language: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        """Render ``templates/<name>.html`` in ``language`` (en or fr)."""
        language = i18n.language(language)
        other = i18n.other(language)
        if "switch_href" not in values:
            # The language switch: the same address in the other language, for pages a GET shows.
            values["switch_href"] = f"{request.url.path}?lang={other}" if request.method == "GET" else None
        html = self.pages.get_template(f"{name}.html").render(
            t=i18n.STRINGS[language], lang=language, other=other, other_name=i18n.STRINGS[other]["language_name"],
            clinic=self.host.config.clinic, **values,
        )
        return HTMLResponse(html, status_code=status_code)


Section = Callable[[WebContext], Sequence[BaseRoute]]


def _section(spec: str) -> Section:
    module, _, name = spec.partition(":")
    function: Section = getattr(importlib.import_module(module), name)
    return function


def page_templates() -> Environment:
    return Environment(
        loader=PackageLoader("emrcomm.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def create_app(host: Host, *, sections: Sequence[str] = SECTIONS) -> Starlette:
    """The ASGI app for ``host``. The host stays open for the app's life; the caller closes it."""
    web = WebContext(host=host, pages=page_templates())
    routes: list[BaseRoute] = [
        Route("/healthz", _health, methods=["GET"]),
        Mount("/static", app=StaticFiles(packages=[("emrcomm.web", "static")]), name="static"),
    ]
    for spec in sections:
        routes.extend(_section(spec)(web))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        language = i18n.language(request.query_params.get("lang", ""))
        return web.page(request, "problem", language, status_code=status, problem="not-found" if status == 404
                        else "error")

    def error_page(scope: Scope) -> Response:
        return web.page(Request(scope), "problem", "en", status_code=500, problem="error", switch_href=None)

    return Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLog),
            Middleware(SecureHeaders),
            Middleware(ErrorShield, error_page=error_page),
            # The FHIR API reads batches: it limits each operation itself (emrcomm.api.handlers).
            Middleware(BodyLimit, limit=host.config.limits.http_body_bytes, own=("/fhir",)),
            Middleware(SameOrigin, own=("/fhir",)),
        ],
        exception_handlers={404: not_found, 405: not_found, 500: not_found},
    )


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


def serve(host: Host, *, bind: str = "127.0.0.1", port: int = 8000, forwarded_allow_ips: str | None = None) -> None:
    """Run the app with uvicorn until interrupted. uvicorn's own access log is off: it would
    write magic links into the log; :class:`AccessLog` writes paths with tokens withheld."""
    import uvicorn

    config = uvicorn.Config(
        create_app(host), host=bind, port=port, access_log=False, server_header=False,
        proxy_headers=forwarded_allow_ips is not None, forwarded_allow_ips=forwarded_allow_ips,
        log_config=None,
    )
    uvicorn.Server(config).run()
