"""One HTTP exchange with an SMS provider, done carefully: a pooled session, connect and read
timeouts, the sender's rate limit, 429 + Retry-After honoured up to a bound, and every answer
turned into success or a TransientDeliveryError / PermanentDeliveryError.

Logs carry the record id, the provider and the HTTP status; never the number or the text.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from emrcomm.delivery import PermanentDeliveryError, TransientDeliveryError, redact

from .ratelimit import SenderLimits

# Status codes after which the provider may have taken the message although it says it failed
# (a proxy or gateway in front of it gave up waiting).
MAYBE_TAKEN = frozenset({500, 502, 504})


def retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def first_line(response: requests.Response) -> str:
    """The first line of a plain-text answer (decoded as UTF-8: no charset guessing)."""
    text = response.content.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else ""


def _refused(exc: requests.ConnectionError) -> bool:
    """Whether the connection itself failed (nothing was sent), as opposed to breaking mid-way."""
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.NameResolutionError)


class ProviderClient:
    """A ``requests.Session`` bound to one provider, shared by every thread that sends with it.

    ``describe(response)`` turns an error answer into a short detail for the exception (it is
    redacted before use); ``refused_credentials(response)`` tells an authentication failure
    from another refusal (default: HTTP 401 or 403). ``base_url`` is where requests go: the
    proxy environment is read for it once. ``max_wait`` is the longest Retry-After waited
    in-process and ``attempts`` the most tries a 429 gets; past either the caller gets a
    TransientDeliveryError with ``retry_after`` set, to reschedule rather than hold a worker.
    """

    def __init__(
        self,
        provider: str,
        *,
        limits: SenderLimits,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        max_wait: float = 5.0,
        attempts: int = 3,
        pool_size: int = 10,
        auth: tuple[str, str] | None = None,
        base_url: str | None = None,
        describe: Callable[[requests.Response], str] | None = None,
        refused_credentials: Callable[[requests.Response], bool] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.provider = provider
        self.limits = limits
        self.timeouts = (connect_timeout, read_timeout)
        self.max_wait = max_wait
        self.attempts = attempts
        self.describe = describe or first_line
        self.refused_credentials = refused_credentials or (lambda response: response.status_code in (401, 403))
        self.log = log or logging.getLogger(f"emrcomm.sms.{provider}")
        self.session = requests.Session()
        self.session.auth = auth
        if base_url is not None:
            # Read the proxy and CA-bundle environment once, not on every request (requests does
            # that when trust_env is on, and it costs more than the rest of a local request);
            # trust_env off also keeps ~/.netrc from adding credentials of its own.
            self.session.proxies = requests.utils.get_environ_proxies(base_url)
            self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            self.session.trust_env = False
        # A transport's own retries are explicit below; urllib3's would resend behind our back.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, url: str, *, key: str, sender: str,
                headers: Mapping[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """Send one request for record ``key`` from ``sender``; return the 2xx response or raise.

        The request is prepared (body encoded, headers and credentials merged) before the rate
        limiter is asked for a slot, so that once the slot comes only the exchange itself
        remains: the message reaches the provider on the limiter's schedule, not a variable
        while later (other threads hold the GIL meanwhile), which would bunch messages up at
        the provider and draw 429s at a rate just under its limit.
        """
        prepared = self.session.prepare_request(
            requests.Request(method.upper(), url, headers=headers, **{"data": {}, "params": {}, **kwargs}))
        send_kwargs: dict[str, Any] = {"timeout": self.timeouts, "allow_redirects": True}
        send_kwargs.update(self.session.merge_environment_settings(prepared.url, {}, None, None, None))
        for attempt in range(1, self.attempts + 1):
            self.limits.acquire(sender)
            try:
                response = self.session.send(prepared.copy(), **send_kwargs)
            except requests.ConnectTimeout:
                self.log.warning("%s: record %s: connect timeout", self.provider, key)
                raise TransientDeliveryError(f"{self.provider}: no connection within {self.timeouts[0]} s",
                                             provider=self.provider, reason="timeout") from None
            except requests.ReadTimeout:
                self.log.warning("%s: record %s: no answer within %s s", self.provider, key, self.timeouts[1])
                raise TransientDeliveryError(
                    f"{self.provider}: sent, but no answer within {self.timeouts[1]} s (it may have been taken)",
                    provider=self.provider, reason="timeout", ambiguous=True) from None
            except requests.ConnectionError as exc:
                refused = _refused(exc)
                self.log.warning("%s: record %s: %s", self.provider, key,
                                 "cannot connect" if refused else "connection broken")
                raise TransientDeliveryError(
                    f"{self.provider}: cannot connect" if refused
                    else f"{self.provider}: connection broken before the answer (it may have been taken)",
                    provider=self.provider, reason="unreachable", ambiguous=not refused) from None
            status = response.status_code
            self.log.info("%s: record %s: HTTP %s", self.provider, key, status)
            if status < 300:
                return response
            if status == 429:
                wait = retry_after(response.headers.get("Retry-After"))
                self.limits.pause(sender, wait if wait is not None else 1.0)
                if attempt < self.attempts and (wait is None or wait <= self.max_wait):
                    continue  # the paused bucket makes the next acquire() wait
                raise TransientDeliveryError(
                    f"{self.provider}: rate limited (HTTP 429) after {attempt} attempt(s)"
                    + (f"; retry after {wait:g} s" if wait is not None else ""),
                    provider=self.provider, reason="rate-limited", status=429, retry_after=wait)
            detail = redact(self.describe(response))
            suffix = f": {detail}" if detail else ""
            if status >= 500 or status == 408:
                raise TransientDeliveryError(
                    f"{self.provider}: HTTP {status}{suffix}", provider=self.provider,
                    reason="server-error" if status >= 500 else "timeout", status=status,
                    retry_after=retry_after(response.headers.get("Retry-After")), ambiguous=status in MAYBE_TAKEN)
            if self.refused_credentials(response):
                raise PermanentDeliveryError(
                    f"{self.provider}: credentials refused (HTTP {status}){suffix}; check the configured "
                    "user and secret, then requeue", provider=self.provider, reason="unauthorized", status=status)
            raise PermanentDeliveryError(f"{self.provider}: request rejected (HTTP {status}){suffix}",
                                         provider=self.provider, reason="rejected", status=status)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
