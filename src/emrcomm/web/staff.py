"""The staff pages under ``emrcomm serve`` (``/staff/``): sign in with an account made by
``emrcomm staff add``, find a patient, read their timeline (emrcomm.timeline), sign out.

The session is a cookie (``__Host-`` prefixed: Secure, HttpOnly, SameSite=Strict, the whole site,
no domain); every form carries a token (derived from the session, or for the sign-in form a
nonce in a cookie of its own), on top of the app's same-origin check. Every timeline read is in
the audit log, with the account and the patient. English only.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from emrcomm import timeline
from emrcomm.staff.accounts import DEVICE_DAYS, Session, StaffAccounts
from emrcomm.web.security import RateLimit

if TYPE_CHECKING:
    from emrcomm.host import Host
    from emrcomm.web import WebContext

PREFIX = "/staff"
SESSION_COOKIE = "__Host-emrcomm-staff"
LOGIN_COOKIE = "__Host-emrcomm-login"
# The browser's id, given at each sign-in: a browser that signed in to an account before has a
# sign-in limit of its own, which guesses from elsewhere cannot use up (emrcomm.staff.accounts).
DEVICE_COOKIE = "__Host-emrcomm-device"
RATE_PER_MINUTE = 60
# Passwords checked at once: each Argon2id check takes 64 MiB, and one client's burst of sign-ins
# (RATE_PER_MINUTE) would otherwise hold one per worker thread (40): 2.5 GiB.
PASSWORD_CHECKS = 2
_PATIENT_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # a FHIR id
_NEXT = re.compile(r"/staff/[A-Za-z0-9/_\-.?=&%+]*")


def routes(host: Host, web: WebContext) -> Sequence[BaseRoute]:
    pages = _StaffPages(host, web)
    return [Mount(PREFIX, routes=[
        Route("/", pages.home, methods=["GET"]),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/patients", pages.patient, methods=["GET"]),
    ], middleware=[Middleware(RateLimit, per_minute=RATE_PER_MINUTE)])]


def _cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def _patient_ref(value: str) -> str | None:
    ident = value.strip()
    if ident[:8].lower() == "patient/":  # typed as it comes: "patient/123" is Patient/123
        ident = ident[8:]
    return f"Patient/{ident}" if _PATIENT_ID.fullmatch(ident) else None


class _StaffPages:
    def __init__(self, host: Host, web: WebContext) -> None:
        self.host = host
        self.web = web
        self.accounts = StaffAccounts(host.storage.db, host.clock, host.audit.key)
        self.checks = anyio.CapacityLimiter(PASSWORD_CHECKS)

    def _page(self, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        html = self.web.pages.get_template(f"staff_{name}.html").render(clinic=self.web.clinic, **values)
        return HTMLResponse(html, status_code=status_code)

    async def _audit(self, kind: str, **fields: Any) -> None:
        await run_in_threadpool(self.host.audit.record, kind, **fields)

    async def _session(self, request: Request) -> Session | None:
        return await run_in_threadpool(self.accounts.session, request.cookies.get(SESSION_COOKIE))

    def _to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/login?next={_quoted(target)}", status_code=303)

    # signing in and out --------------------------------------------------------------------------
    async def login_form(self, request: Request, error: str | None = None, status_code: int = 200,
                         next_path: str | None = None, wait: int = 0) -> Response:
        # Where to go after signing in: the link's (?next=), or, when a sign-in was refused, the
        # refused form's own, so that a mistyped password still leads to the patient it was for.
        if next_path is None:
            next_path = request.query_params.get("next", "")
        next_path = next_path if _NEXT.fullmatch(next_path) else ""
        if error is None and await self._session(request) is not None:
            return RedirectResponse(next_path or f"{PREFIX}/", status_code=303)
        nonce = secrets.token_urlsafe(24)
        response = self._page("login", status_code, token=nonce, error=error, next=next_path,
                              minutes=math.ceil(wait / 60))
        _cookie(response, LOGIN_COOKIE, nonce, max_age=3600)
        if wait:
            response.headers["retry-after"] = str(wait)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=5)
        token, expected = str(form.get("token", "")), request.cookies.get(LOGIN_COOKIE, "")
        next_path = str(form.get("next", ""))
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return await self.login_form(request, error="expired", status_code=400, next_path=next_path)
        name, password = str(form.get("name", "")).strip().lower(), str(form.get("password", ""))
        # The client's address as the app has it: behind a proxy, the one the proxy names only when
        # `serve --forwarded-allow-ips` trusts it (a client's own X-Forwarded-For is not read).
        address = request.client.host if request.client else "unknown"
        signed = await anyio.to_thread.run_sync(self.accounts.sign_in, name, password, address,
                                                request.cookies.get(DEVICE_COOKIE), limiter=self.checks)
        if signed.session is None or signed.device is None:
            known = await run_in_threadpool(self.accounts.known, name)
            # A name that is no account may be a password typed in the wrong field: never logged.
            # Its status says which: 429, slowed (the password was not checked), or 401, wrong.
            slowed = signed.wait > 0
            await self._audit("staff.refused", http_status=429 if slowed else 401,
                              **({"staff": name} if known else {}))
            if slowed:  # the same for any name: the limits count names, not accounts
                return await self.login_form(request, error="wait", status_code=429, next_path=next_path,
                                             wait=math.ceil(signed.wait))
            return await self.login_form(request, error="refused", status_code=401, next_path=next_path)
        await self._audit("staff.signed_in", staff=name)
        response = RedirectResponse(next_path if _NEXT.fullmatch(next_path) else f"{PREFIX}/", status_code=303)
        _cookie(response, SESSION_COOKIE, signed.session)
        _cookie(response, DEVICE_COOKIE, signed.device, max_age=int(DEVICE_DAYS.total_seconds()))
        response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    async def logout(self, request: Request) -> Response:
        session = await self._session(request)
        form = await request.form(max_files=0, max_fields=5)
        if session is None:
            return RedirectResponse(f"{PREFIX}/login", status_code=303)
        if not hmac.compare_digest(str(form.get("token", "")).encode(), session.form_token.encode()):
            return self._page("problem", 403, session=session, problem="This form has expired: go back, reload "
                              "the page and try again.")
        await run_in_threadpool(self.accounts.sign_out, request.cookies.get(SESSION_COOKIE, ""))
        await self._audit("staff.signed_out", staff=session.name)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    # reading -------------------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return self._to_login(request)
        return self._page("home", session=session, query="")

    async def patient(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return self._to_login(request)
        query = request.query_params.get("patient", "")
        ref = _patient_ref(query)
        if ref is None:
            return self._page("home", 400, session=session, query=query[:80],
                              error="Give the patient's id in the EMR, e.g. Patient/123 or 123.")
        chart = await run_in_threadpool(timeline.for_patient, self.host, ref)
        await self._audit("staff.viewed", staff=session.name, patient=ref)
        # The patient's portal replies in their words: what a clinician reading the chart needs.
        entries = await run_in_threadpool(timeline.with_kept_words, self.host, chart.entries)
        return self._page("timeline", session=session, query=ref, chart=chart, entries=entries,
                          local=lambda when: when.astimezone(chart.zone).strftime("%Y-%m-%d %H:%M"),
                          steps=lambda entry: timeline.steps_line(entry, chart.zone))


def _quoted(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
