"""Middleware every page and callback goes through: security headers, a body size limit, a
same-origin check on form posts, a per-client rate limit, an access log without secrets, and a
last guard that turns any unexpected error into a plain 500 page and one log line without values.

Pure ASGI (no BaseHTTPMiddleware), so responses stream and nothing is buffered twice.
"""

from __future__ import annotations

import logging
import math
import re
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emrcomm.limits import escape_controls
from emrcomm.storage.database import StoreUnavailable

log = logging.getLogger("emrcomm.web")

# No scripts, no third-party anything; forms post only here; never framed.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "content-security-policy": CSP,
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with the
    # portal's own form posts, and "null" must be refused (a page elsewhere can send it too).
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "x-robots-tag": "noindex, nofollow",
}
HSTS = "max-age=31536000"


class SecureHeaders:
    """Adds :data:`HEADERS` to every response (and HSTS when served over https)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if https:
                    headers["strict-transport-security"] = HSTS
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes (413) before anything reads them.

    Paths under a prefix in ``own`` are left to their section, which enforces limits of its
    own and answers in its own format (the FHIR API: batches, and an OperationOutcome)."""

    def __init__(self, app: ASGIApp, limit: int, own: Sequence[str] = ()) -> None:
        self.app = app
        self.limit = limit
        self.own = tuple(own)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(scope["path"] == p or scope["path"].startswith(p + "/") for p in self.own):
            await self.app(scope, receive, send)
            return
        limit = self.limit
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not _DIGITS.fullmatch(length) or int(length) > limit):
            await PlainTextResponse("request too large", status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await PlainTextResponse("request too large", status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() takes '²', which int() refuses


class SameOrigin:
    """A form post whose Origin header names another site, or is ``null`` (a sandboxed frame, a
    page elsewhere that hides its origin), or that the browser marks ``Sec-Fetch-Site:
    cross-site``, is refused (403): a page elsewhere cannot make a patient's browser post here.
    A request without either header (a provider's callback, an old browser) goes on.

    The site is the request's Host, or one of ``origins`` (``https://portal.example``: the
    portal's configured address): a reverse proxy left at its default (nginx's ``proxy_pass``,
    Apache's ``ProxyPass``) sends its upstream's address as Host, and the portal's own pages
    must still post to themselves.

    Paths under a prefix in ``own`` are left alone: their section authenticates every call with
    a bearer token, never a cookie, so a page elsewhere has nothing to borrow (the FHIR API)."""

    def __init__(self, app: ASGIApp, own: Sequence[str] = (), origins: Sequence[str] = ()) -> None:
        self.app = app
        self.own = tuple(own)
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS") \
                and not any(scope["path"] == p or scope["path"].startswith(p + "/") for p in self.own):
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            cross = headers.get("sec-fetch-site") == "cross-site"
            if cross or (origin is not None and _host_of(origin) != headers.get("host", "").lower()
                         and origin.rstrip("/").lower() not in self.origins):
                await PlainTextResponse("cross-site request refused", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _host_of(origin: str) -> str:
    return origin.split("://", 1)[-1].rstrip("/").lower()


class RateLimit:
    """A token bucket per client address: ``per_minute`` requests a minute, in bursts of as
    many. Over it: 429 with Retry-After. Behind a proxy, run ``emrcomm serve`` with
    ``--forwarded-allow-ips`` so that the client address is the patient's, not the proxy's.

    Two buckets, both needed to pass: one in this process's memory (a flood is refused here,
    costing the database nothing), and one in the database that every ``serve`` process on the
    store shares (``emrcomm.storage.Rates``), so that two processes answering alternately
    allow what one would. The app names the shared store in ``app.state.rates``
    (emrcomm.web.create_app); each mount point has its own buckets.
    """

    def __init__(self, app: ASGIApp, per_minute: int, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 50_000) -> None:
        self.app = app
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.clock = clock
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.refusing: set[str] = set()  # clients refused since they last got through: logged once

    def take(self, client: str) -> float:
        """0 when the client may go on, else the seconds until it may."""
        now = self.clock()
        tokens, last = self.buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self.buckets[client] = (tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait

    async def take_shared(self, scope: Scope, client: str) -> float:
        """The shared bucket's answer (0: go on); 0 when the app has none or it cannot be reached
        (the local bucket still holds, and the request itself will find the database away)."""
        app = scope.get("app")
        rates = getattr(getattr(app, "state", None), "rates", None)
        if rates is None:
            return 0.0
        where = f"web:{scope.get('root_path', '')}"
        try:
            wait: float = await run_in_threadpool(rates.take, where, client, rate=self.rate, burst=self.capacity)
        except Exception as exc:
            log.warning("rate limit: the shared buckets could not be read (%s); this process's only",
                        type(exc).__name__)
            return 0.0
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.take(client)
        if wait <= 0:
            wait = await self.take_shared(scope, client)
        if wait > 0:
            if client not in self.refusing and len(self.refusing) < self.max_clients:
                self.refusing.add(client)  # a flood is one line, not one line a request
                log.warning("rate limit: a client is refused for %.0f s (and until it slows down)", wait)
            response: Response = PlainTextResponse(
                "Too many requests. Please wait a minute and try again. / Trop de demandes. "
                "Veuillez patienter une minute et réessayer.",
                status_code=429, headers={"retry-after": str(math.ceil(wait))},
            )
            await response(scope, receive, send)
            return
        self.refusing.discard(client)
        await self.app(scope, receive, send)


# A path segment that could be a secret (a magic link's token, a session): never logged.
_LONG_SEGMENT = re.compile(r"/[^/]{20,}")


def loggable_path(path: str) -> str:
    """The path with long segments withheld and control characters escaped (no forged lines)."""
    return escape_controls(_LONG_SEGMENT.sub("/…", path))


class UntrustedProxy:
    """``serve`` without ``--forwarded-allow-ips`` hearing an ``X-Forwarded-For``: it runs behind a
    proxy it was not told of, so every client has the proxy's address (the sign-in limits and the
    rate limits then count the whole clinic as one client). Said once, as a warning; the header
    is never read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.said = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.said and scope["type"] == "http" and any(
                name == b"x-forwarded-for" for name, _ in scope.get("headers", ())):
            self.said = True
            log.warning("serve: a request came through a proxy (X-Forwarded-For), but --forwarded-allow-ips was "
                        "not given: every client has the proxy's address, so one guesser slows every staff "
                        "sign-in; give the proxy's address to --forwarded-allow-ips (docs/security.md)")
        await self.app(scope, receive, send)


class AccessLog:
    """One line per request: method, path with tokens withheld, status, milliseconds. No query
    strings, no client addresses, no bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def noted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            log.info("%s %s %s %.0f ms", escape_controls(scope["method"]), loggable_path(scope["path"]),
                     status["code"], (time.perf_counter() - start) * 1000)


UNAVAILABLE = ("This service is briefly unavailable. Please try again in a minute. / Ce service est "
               "momentanément indisponible. Veuillez réessayer dans une minute.")


class ErrorShield:
    """Any exception a handler lets out becomes ``error_page`` (500) and one log line naming the
    exception's type and where it was raised: never its message, the form or a traceback's
    values, which could carry a patient's words or date of birth. The database away
    (StoreUnavailable: a restart, a failover) is a 503 with Retry-After instead, logged once by
    the store."""

    def __init__(self, app: ASGIApp, error_page: Callable[[Scope], Response]) -> None:
        self.app = app
        self.error_page = error_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except StoreUnavailable:  # the store logs it once, not once a request
            if not started:
                await PlainTextResponse(UNAVAILABLE, status_code=503, headers={"retry-after": "10"})(scope, receive, send)
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
            log.error("%s %s failed: %s at %s", escape_controls(scope["method"]), loggable_path(scope["path"]),
                      type(exc).__name__, where)
            if not started:
                await self.error_page(scope)(scope, receive, send)
