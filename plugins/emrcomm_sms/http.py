"""One HTTP exchange with an SMS provider, done carefully: a connection pool, connect and read
timeouts, the sender's rate limit, 429 + Retry-After honoured up to a bound, and every answer
turned into success or a TransientDeliveryError / PermanentDeliveryError.

The exchange is made with urllib3 directly (the pool ``requests`` itself sits on): a provider
request is one form or text POST, and ``requests``' per-request machinery (hooks, cookies,
environment merging, its Response) cost as much CPU as the rest of the worker's bookkeeping for
a message (benchmarks: docs/performance.md).

Logs carry the record id, the provider and the HTTP status; never the number or the text.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import attrs
import certifi
import requests.utils
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from emrcomm import PermanentDeliveryError, TransientDeliveryError, __version__, redact, retry_after

from .ratelimit import FleetSenderLimits, SenderLimits

# Status codes after which the provider may have taken the message although it says it failed
# (a proxy or gateway in front of it gave up waiting).
MAYBE_TAKEN = frozenset({500, 502, 504})
USER_AGENT = f"emrcomm/{__version__}"
# The most of an answer read: a provider's answer to one message is a line or a small JSON
# object; past this the answer is not one (and is not read whole).
MAX_ANSWER = 64 * 1024


class Unfinished(Exception):
    """The answer began (``status``) but did not end as an answer should: ``slow`` (not whole by
    the exchange's deadline) or too large."""

    def __init__(self, status: int, *, slow: bool) -> None:
        super().__init__(status, slow)
        self.status = status
        self.slow = slow


@attrs.frozen
class Answer:
    """A provider's answer: status, headers (case-insensitive) and the whole body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.content)


@attrs.frozen
class Prepared:
    """A request ready to go: sending it again sends the same bytes."""

    method: str
    url: str
    target: str  # what the request line names: the path and query
    headers: Mapping[str, str]
    body: bytes | None


def first_line(response: Answer) -> str:
    """The first line of a plain-text answer (decoded as UTF-8: no charset guessing)."""
    text = response.content.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else ""


def _encode(data: Mapping[str, Any] | bytes | str | None) -> tuple[bytes | None, str | None]:
    """The body and its content type: a mapping is form-encoded, bytes and text go as they are."""
    if data is None:
        return None, None
    if isinstance(data, bytes):
        return data, None
    if isinstance(data, str):
        return data.encode("utf-8"), None
    return urlencode(list(data.items()), doseq=True).encode("ascii"), "application/x-www-form-urlencoded"


def _ca_bundle() -> str:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


class ProviderClient:
    """A connection pool bound to one provider, shared by every thread that sends with it.

    ``describe(answer)`` turns an error answer into a short detail for the exception (it is
    redacted before use); ``refused_credentials(answer)`` tells an authentication failure from
    another refusal (default: HTTP 401 or 403). ``base_url`` is where requests go: the proxy
    (``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``) and CA-bundle (``REQUESTS_CA_BUNDLE``)
    environment is read for it once, when the client is made. ``max_wait`` is the longest
    Retry-After waited in-process and ``attempts`` the most tries a 429 gets; past either the
    caller gets a TransientDeliveryError with ``retry_after`` set, to reschedule rather than
    hold a worker. Redirects are not followed (a redirected POST would lose its body): a 3xx
    is a refusal.
    """

    def __init__(
        self,
        provider: str,
        *,
        limits: SenderLimits | FleetSenderLimits,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        max_wait: float = 5.0,
        attempts: int = 3,
        pool_size: int = 10,
        auth: tuple[str, str] | None = None,
        base_url: str | None = None,
        describe: Callable[[Answer], str] | None = None,
        refused_credentials: Callable[[Answer], bool] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.provider = provider
        self.limits = limits
        self.timeouts = (connect_timeout, read_timeout)
        # The whole exchange (connect, send, the whole answer) has connect + read timeout: a read
        # timeout alone is per read, and a provider dripping a byte at a time never trips it.
        self.deadline = connect_timeout + read_timeout
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout, total=self.deadline)
        self.max_wait = max_wait
        self.attempts = attempts
        self.describe = describe or first_line
        self.refused_credentials = refused_credentials or (lambda response: response.status_code in (401, 403))
        self.log = log or logging.getLogger(f"emrcomm.sms.{provider}")
        self._pool_size = pool_size
        self._pools: dict[tuple[str, str], urllib3.PoolManager | urllib3.HTTPConnectionPool] = {}
        self._base: dict[str, str] = {"User-Agent": USER_AGENT, "Accept": "*/*"}
        self.auth = auth
        if base_url is not None:
            self._pool(base_url)

    @property
    def auth(self) -> tuple[str, str] | None:
        """HTTP basic credentials sent with every request (None: none)."""
        return self._auth

    @auth.setter
    def auth(self, value: tuple[str, str] | None) -> None:
        self._auth = value
        self._base.pop("Authorization", None)
        if value is not None:
            self._base["Authorization"] = urllib3.make_headers(basic_auth=f"{value[0]}:{value[1]}")["authorization"]

    def _pool(self, url: str) -> urllib3.PoolManager | urllib3.HTTPConnectionPool:
        """The connections to ``url``'s scheme and host: a pool of its own, or the environment's
        proxy for it (a ProxyManager, which is given whole URLs), chosen as ``requests`` chooses
        (``NO_PROXY``, then the scheme's proxy, then ``ALL_PROXY``; credentials in the proxy's
        URL are sent to the proxy)."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        pool = self._pools.get(origin)
        if pool is None:
            options: dict[str, Any] = {"maxsize": self._pool_size, "retries": False, "timeout": self._timeout}
            if parts.scheme == "https":
                bundle = _ca_bundle()
                options["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
            proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
            if proxy:
                if "://" not in proxy:
                    proxy = f"http://{proxy}"
                user, password = requests.utils.get_auth_from_url(proxy)
                if user or password:
                    basic = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}")["proxy-authorization"]
                    options["proxy_headers"] = {"Proxy-Authorization": basic}
                try:
                    made: urllib3.PoolManager | urllib3.HTTPConnectionPool = urllib3.ProxyManager(proxy, **options)
                except urllib3.exceptions.ProxySchemeUnknown:
                    raise ValueError(f"{self.provider}: the proxy the environment names for {parts.scheme} "
                                     "has a scheme urllib3 does not speak (use http://, https:// or socks5://)") from None
            else:
                made = urllib3.connection_from_url(url, **options)
            pool = self._pools.setdefault(origin, made)
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            if isinstance(pool, urllib3.PoolManager):
                pool.clear()
            else:
                pool.close()

    def prepare(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                data: Mapping[str, Any] | bytes | str | None = None) -> Prepared:
        body, content_type = _encode(data)
        merged = dict(self._base)
        if content_type:
            merged["Content-Type"] = content_type
        merged.update(headers or {})
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Prepared(method.upper(), url, target, merged, body)

    def exchange(self, prepared: Prepared) -> Answer:
        """Send ``prepared`` once and read the whole answer, within ``deadline`` seconds of the
        start and at most MAX_ANSWER bytes of it, else :class:`Unfinished` (urllib3's errors pass
        through)."""
        end = time.monotonic() + self.deadline
        pool = self._pool(prepared.url)
        response = pool.urlopen(
            prepared.method, prepared.url if isinstance(pool, urllib3.PoolManager) else prepared.target,
            body=prepared.body, headers=prepared.headers, redirect=False, retries=False, timeout=self._timeout,
            preload_content=False)
        whole = False
        try:
            length = response.headers.get("Content-Length", "").strip()
            if length.isdigit() and int(length) > MAX_ANSWER:
                raise Unfinished(response.status, slow=False)
            body = bytearray()
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    raise Unfinished(response.status, slow=True)
                sock = getattr(response.connection, "sock", None)
                if sock is not None:  # this read may take what is left of the deadline, no more
                    sock.settimeout(min(left, self.timeouts[1]))
                try:
                    chunk = response.read1(MAX_ANSWER + 1 - len(body))
                except ReadTimeoutError:
                    if time.monotonic() >= end - 0.05:
                        raise Unfinished(response.status, slow=True) from None
                    raise
                if not chunk:
                    break
                body += chunk
                if len(body) > MAX_ANSWER:
                    raise Unfinished(response.status, slow=False)
            whole = True
            return Answer(response.status, response.headers, bytes(body))
        finally:
            if not whole:  # the connection is mid-answer: it cannot carry another request
                response.close()
            response.release_conn()

    def request(self, method: str, url: str, *, key: str, sender: str,
                headers: Mapping[str, str] | None = None,
                data: Mapping[str, Any] | bytes | str | None = None) -> Answer:
        """Send one request for record ``key`` from ``sender``; return the 2xx answer or raise.

        The request is prepared (body encoded, headers and credentials merged) before the rate
        limiter is asked for a slot, so that once the slot comes only the exchange itself
        remains: the message reaches the provider on the limiter's schedule, not a variable
        while later (other threads hold the GIL meanwhile), which would bunch messages up at
        the provider and draw 429s at a rate just under its limit.
        """
        prepared = self.prepare(method, url, headers=headers, data=data)
        for attempt in range(1, self.attempts + 1):
            self.limits.acquire(sender)
            response = self._send(prepared, key)
            status = response.status_code
            self.log.info("%s: record %s: HTTP %s", self.provider, key, status)
            if status < 300:
                return response
            if status == 429:
                wait = retry_after(response.headers.get("Retry-After"))
                # The sender's bucket holds every thread sending from that number: it is paused
                # no longer than max_wait whatever the provider asks (a longer wait is the
                # caller's, to reschedule the message), so no worker is held past its lease.
                self.limits.pause(sender, min(wait if wait is not None else 1.0, self.max_wait))
                if attempt < self.attempts and (wait is None or wait <= self.max_wait):
                    continue  # the paused bucket makes the next acquire() wait
                raise TransientDeliveryError(
                    f"{self.provider}: rate limited (HTTP 429) after {attempt} attempt(s)"
                    + (f"; retry after {wait:g} s" if wait is not None else ""),
                    provider=self.provider, reason="rate-limited", status=429, retry_after=wait)
            detail = redact(self._masked(self.describe(response), prepared))
            suffix = f": {detail}" if detail else ""
            if status >= 500 or status == 408:
                raise TransientDeliveryError(
                    f"{self.provider}: HTTP {status}{suffix}", provider=self.provider,
                    reason="server-error" if status >= 500 else "timeout", status=status,
                    retry_after=retry_after(response.headers.get("Retry-After")), ambiguous=status in MAYBE_TAKEN)
            if status == 407:  # the proxy, not the provider: nothing went further
                raise PermanentDeliveryError(
                    f"{self.provider}: the proxy refused its credentials (HTTP 407); check the proxy "
                    "settings (HTTP_PROXY / HTTPS_PROXY), then requeue", provider=self.provider,
                    reason="unauthorized", status=status)
            if self.refused_credentials(response):
                raise PermanentDeliveryError(
                    f"{self.provider}: credentials refused (HTTP {status}){suffix}; check the configured "
                    "user and secret, then requeue", provider=self.provider, reason="unauthorized", status=status)
            # A redirect is not followed (a POST sent on would lose its body or go elsewhere); a 303
            # says the provider did take the request, so that dead letter may have been sent.
            raise PermanentDeliveryError(f"{self.provider}: request rejected (HTTP {status}){suffix}",
                                         provider=self.provider, reason="rejected", status=status,
                                         ambiguous=status == 303)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _masked(self, said: str, prepared: Prepared) -> str:
        """What the provider said with the request's secrets (the basic-auth secret, the
        Authorization header, any header naming a password, token or secret) shown as ***."""
        secrets = {value for name, value in prepared.headers.items()
                   if any(word in name.lower() for word in ("password", "secret", "authorization"))}
        if self._auth is not None:
            secrets.add(self._auth[1])
        for secret in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
            for form in {secret, quote(secret, safe=""), quote_plus(secret, safe="")}:
                said = said.replace(form, "***")
        return said

    def _send(self, prepared: Prepared, key: str) -> Answer:
        """One exchange, its failures turned into TransientDeliveryError: not ambiguous when no
        connection was made (nothing was sent), ambiguous once the request may have gone."""
        try:
            return self.exchange(prepared)
        except Unfinished as exc:
            self.log.warning("%s: record %s: HTTP %s, but the answer %s", self.provider, key, exc.status,
                             f"was not whole within {self.deadline:g} s" if exc.slow else
                             f"is larger than {MAX_ANSWER // 1024} KB")
            said = (f"{self.provider}: HTTP {exc.status}, but the whole answer did not come within {self.deadline:g} s"
                    if exc.slow else
                    f"{self.provider}: HTTP {exc.status}, but the answer is larger than {MAX_ANSWER // 1024} KB, "
                    "which no provider's answer is")
            reason = "timeout" if exc.slow else "protocol"
            if 200 <= exc.status < 300:
                # A success status with an answer that never ends: it most likely went, and sending it
                # again could send it twice (as any 2xx that is not the provider's own acceptance).
                raise PermanentDeliveryError(
                    f"{said}; the message may have gone: check with the provider, then requeue if it did not",
                    provider=self.provider, reason=reason, status=exc.status, ambiguous=True) from None
            raise TransientDeliveryError(f"{said} (it may have been taken)", provider=self.provider, reason=reason,
                                         status=exc.status, ambiguous=True) from None
        except (NewConnectionError, ProxyError) as exc:
            # Refused, unresolvable, or the proxy would not connect: nothing was sent.
            # (NewConnectionError is a ConnectTimeoutError subclass in urllib3 2: test it first.)
            self.log.warning("%s: record %s: cannot connect%s", self.provider, key,
                             " (proxy)" if isinstance(exc, ProxyError) else "")
            raise TransientDeliveryError(f"{self.provider}: cannot connect", provider=self.provider,
                                         reason="unreachable") from None
        except SSLError as exc:
            # The certificate refused (untrusted, or for another name) can only happen in the
            # handshake, before anything was sent; any other TLS error may come after the request
            # went (a broken record while the answer is read).
            cause = exc.args[0] if exc.args else None
            refused = isinstance(cause, ssl.SSLCertVerificationError | ssl.CertificateError)
            self.log.warning("%s: record %s: TLS error (%s)", self.provider, key,
                             "certificate refused" if refused else "connection broken")
            raise TransientDeliveryError(
                f"{self.provider}: cannot connect (TLS: the provider's certificate was refused)" if refused
                else f"{self.provider}: TLS error on the connection (it may have been taken)",
                provider=self.provider, reason="unreachable", ambiguous=not refused) from None
        except ConnectTimeoutError:
            self.log.warning("%s: record %s: connect timeout", self.provider, key)
            raise TransientDeliveryError(f"{self.provider}: no connection within {self.timeouts[0]} s",
                                         provider=self.provider, reason="timeout") from None
        except ReadTimeoutError:
            self.log.warning("%s: record %s: no answer within %s s", self.provider, key, self.timeouts[1])
            raise TransientDeliveryError(
                f"{self.provider}: sent, but no answer within {self.timeouts[1]} s (it may have been taken)",
                provider=self.provider, reason="timeout", ambiguous=True) from None
        except (HTTPError, OSError):
            self.log.warning("%s: record %s: connection broken", self.provider, key)
            raise TransientDeliveryError(
                f"{self.provider}: connection broken before the answer (it may have been taken)",
                provider=self.provider, reason="unreachable", ambiguous=True) from None
