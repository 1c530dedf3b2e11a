"""A small FHIR R4 REST client on requests: conditional create, update, transaction Bundles,
searches that follow paging, a bearer token, and retries with backoff for what may pass.

Errors are split by what the caller should do: :class:`ServerUnavailable` (connection refused,
timeout, 5xx, 429, an answer that cannot be read (:class:`BadAnswer`), a read or search answered
with something other than the resource or Bundle asked for: try again later, nothing is lost) and :class:`ServerRefused` (4xx: a setting or a resource is wrong; retrying will not help).

A redirect (3xx) is never followed: the client sends only to the server its settings name (a
Location may point anywhere, over plain http too), so a 3xx is a refusal that names the setting.
A search's ``next`` link is followed only when it is on that server too.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from attrs import frozen

from emrcomm import ConfigError, retry_after
from emrcomm.deadline import AnswerTooLarge, deadline_session, exchange

log = logging.getLogger("emrcomm.plugin.fhirserver")

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# The longest answer read (a search page of 100 Communications is well under 1 MB); a longer one
# is a failed request, like one that takes longer than ``timeout`` in all.
MAX_ANSWER = 8 * 1024 * 1024


class ServerUnavailable(Exception):
    """The server could not be reached or asked us to come back later; nothing was lost."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BadAnswer(ServerUnavailable):
    """The server answered something that is not what FHIR says it answers (a transaction-response
    of the wrong shape, a create without a Location or id): nothing is counted as filed."""


class ServerRefused(Exception):
    """The server answered with a 4xx (something we sent, or a setting, is wrong) or a redirect
    (3xx: the base URL is not the server's; never followed)."""

    def __init__(self, status: int, detail: str, outcome: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.outcome = outcome  # the server's OperationOutcome, if it sent one

    @property
    def about_settings(self) -> bool:
        """The settings are wrong (token refused, or the base URL redirects), not one resource."""
        return self.status in (401, 403) or 300 <= self.status < 400


@frozen
class Answer:
    """One response: status code, Location (``Type/id/_history/v``, when given), body, ETag and,
    for an entry of a transaction- or batch-response, the entry's OperationOutcome."""

    status: int
    location: str | None
    resource: dict[str, Any] | None
    etag: str | None = None
    outcome: dict[str, Any] | None = None

    @property
    def version(self) -> str | None:
        """The server's version id of the resource it holds now (ETag ``W/"v"``, else the
        Location's ``_history/v``, else the body's ``meta.versionId``), or None."""
        if self.etag:
            tag = self.etag.strip()
            tag = tag[2:] if tag.startswith("W/") else tag
            if tag.strip('"'):
                return tag.strip('"')
        if self.location and "/_history/" in self.location:
            version = self.location.split("/_history/", 1)[1].strip("/")
            if version:
                return version
        meta = (self.resource or {}).get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("versionId"), str) and meta["versionId"]:
            return str(meta["versionId"])
        return None

    @property
    def id(self) -> str | None:
        """The resource id the server gave (from Location, else the body)."""
        if self.location:
            parts = self.location.split("/_history/")[0].rstrip("/").split("/")
            if len(parts) >= 2:
                return parts[-1]
        if self.resource and isinstance(self.resource.get("id"), str):
            return self.resource["id"]
        return None


def check_base_url(value: str, where: str) -> str:
    """https, or http to this machine only: a bearer token never crosses a network in clear."""
    parts = urlsplit(value)
    if "@" in parts.netloc:  # never echoed: what is before the @ may be a password
        raise ConfigError(f"{where}: the URL carries a user name or password before '@', which would be written "
                          f"wherever the URL is (flush reports, logs): give the URL without it, and the server's "
                          f"token as {where.rsplit('.', 1)[0]}.token = {{env = \"...\"}} or {{file = \"...\"}}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {value!r} is not an http(s) URL (e.g. https://fhir.example.org/r4)")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ConfigError(f"{where}: {value!r}: plain http is allowed only for a server on this machine; "
                          "use https")
    return value.rstrip("/")


def outcome_text(body: Any) -> str:
    """The first issue of an OperationOutcome, in a line (ids and codes, as the server wrote them)."""
    if isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome":
        for issue in body.get("issue") or ():
            text = (issue.get("details") or {}).get("text") or issue.get("diagnostics") or issue.get("code")
            if text:
                return str(text)[:200]
    return "no OperationOutcome"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”|‘[^’]*’")
_NUMBER = re.compile(r"\+?\d[\d ().-]{5,}\d")


def issue_line(body: Any, withheld: Sequence[str] = ()) -> str | None:
    """The first error of an OperationOutcome as ``code: diagnostics`` (or its details' text),
    for an operator to act on, or None without one. A server may quote what it refused: quoted
    values, long numbers (a phone number) and any of ``withheld`` (the resource's own words) read
    ``[withheld]``, so no patient text is repeated."""
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return None
    issues = _dicts(body.get("issue"))
    issue = next((i for i in issues if i.get("severity") in ("error", "fatal")), issues[0] if issues else None)
    if issue is None:
        return None
    code = str(issue.get("code") or "unknown")
    text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
    if not isinstance(text, str) or not text:
        return code
    for words in sorted((w for w in withheld if len(w) >= 4), key=len, reverse=True):
        text = text.replace(words, "[withheld]")
    text = _NUMBER.sub("[withheld]", _QUOTED.sub("[withheld]", text))
    return f"{code}: {text[:200]}"


class FhirClient:
    """One server, one pooled session (keep-alive). Not for concurrent use: each user (the
    filer's pusher, the directory) has its own."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | Callable[[], str | None] | None = None,
        renew: Callable[[], str | None] | None = None,
        token_source: str | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.25,
        max_wait: float = 30.0,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.session = deadline_session()
        self.session.verify = verify
        self.session.headers.update({"Accept": FHIR_JSON, "Content-Type": FHIR_JSON})
        # A token given as a function is resolved at the first request: a host that only reads
        # its own store (``emrcomm records``) never needs it.
        self._token = token if callable(token) else (lambda: token)
        # Read the token again after a 401 (a short-lived one renewed in its file or variable by
        # another program): the request goes once more if it changed.
        self._renew = renew
        # Where the token is read from, for a person to renew it ("the file /etc/emrcomm/fhir-token").
        self.token_source = token_source
        self._authorized = False

    def authorize(self) -> None:
        """Send the bearer token from now on (resolved now, once)."""
        if not self._authorized:
            token = self._token()
            if token:
                self.session.headers["Authorization"] = f"Bearer {token}"
            self._authorized = True

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ the wire
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; retry what may pass (connection errors, timeouts, 429, 5xx) with
        exponential backoff and jitter, honouring Retry-After (one longer than ``max_wait`` ends
        the attempts at once, its wait in the ServerUnavailable raised). Every request we send is
        idempotent (conditional create, update by id), so a retry never files twice."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"
        if not self.on_server(url):
            raise BadAnswer(f"a link to another server ({_where(url)}) was not followed")
        self.authorize()
        try:
            return self._send(method, url, body=body, params=params, headers=headers)
        except ServerRefused as exc:
            if exc.status == 401 and self.renewed():
                return self._send(method, url, body=body, params=params, headers=headers)
            raise

    def renewed(self) -> bool:
        """Read the token again (after a 401): True when it differs from the one sent, which it
        replaces from here on."""
        if self._renew is None:
            return False
        try:
            token = self._renew()
        except ConfigError:
            return False
        if not token or self.session.headers.get("Authorization") == f"Bearer {token}":
            return False
        self.session.headers["Authorization"] = f"Bearer {token}"
        return True

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: Any,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None,
        headers: Mapping[str, str] | None,
    ) -> Answer:
        last: ServerUnavailable | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self._wait(attempt, last))
            try:
                # ``timeout`` bounds each read and the whole exchange: a server answering a byte at
                # a time is a timeout too; an answer over MAX_ANSWER bytes is not read further.
                resp, content = exchange(self.session, method, url, seconds=self.timeout, body_limit=MAX_ANSWER,
                                         json=body, params=params, headers=headers, timeout=self.timeout,
                                         allow_redirects=False)
            except AnswerTooLarge as exc:
                raise BadAnswer(str(exc)) from None
            except requests.Timeout:
                last = ServerUnavailable(f"no complete answer within {self.timeout:g} s")
                continue
            except requests.ConnectionError as exc:
                last = ServerUnavailable(f"cannot connect ({_reason(exc)})")
                continue
            except requests.RequestException as exc:  # the answer broke off
                last = ServerUnavailable(f"the answer broke off ({type(exc).__name__})")
                continue
            if resp.status_code in RETRY_STATUSES:
                last = ServerUnavailable(f"HTTP {resp.status_code}", retry_after(resp.headers.get("Retry-After")))
                if last.retry_after is not None and last.retry_after > self.max_wait:
                    break  # asked to wait longer than a request may: the caller waits, not sooner
                continue
            if 300 <= resp.status_code < 400:
                raise ServerRefused(resp.status_code, f"a redirect to {_where(resp.headers.get('Location'))}, "
                                                      "which emrcomm never follows")
            data = _json(content)
            if resp.status_code >= 400:
                raise ServerRefused(resp.status_code, outcome_text(data), data if isinstance(data, dict) else None)
            return Answer(resp.status_code, resp.headers.get("Location") or resp.headers.get("Content-Location"),
                          data if isinstance(data, dict) else None, resp.headers.get("ETag"))
        assert last is not None
        raise last

    def on_server(self, url: str) -> bool:
        """``url`` is on the configured server, under its base (the only place requests go)."""
        return url == self.base_url or url.startswith((f"{self.base_url}/", f"{self.base_url}?"))

    def _wait(self, attempt: int, last: ServerUnavailable | None) -> float:
        if last is not None and last.retry_after is not None:
            return min(last.retry_after, self.max_wait)
        return min(self.backoff * 2 ** (attempt - 1), self.max_wait) * (0.5 + random.random() / 2)

    # ------------------------------------------------------------------ interactions
    def create(self, resource: Mapping[str, Any], *, if_none_exist: str) -> Answer:
        """Conditional create: 201 when created, 200 when a resource matching ``if_none_exist``
        (``identifier=system|value``) is already there."""
        return self.request("POST", str(resource["resourceType"]), body=resource,
                            headers={"If-None-Exist": if_none_exist})

    def update(self, resource: Mapping[str, Any], *, if_match: str | None = None) -> Answer:
        """Update by id; with ``if_match`` (a version id) only if the server still holds that
        version (412, or 409 on some servers, when it does not)."""
        headers = {"If-Match": f'W/"{if_match}"'} if if_match else None
        return self.request("PUT", f"{resource['resourceType']}/{resource['id']}", body=resource, headers=headers)

    def read(self, resource_type: str, id: str) -> dict[str, Any] | None:
        """The resource, or None when the server has no such one (404, 410). A success that is
        not a ``resource_type`` (a proxy's HTML page, an OperationOutcome) is a BadAnswer: not
        knowing is not "no such resource"."""
        try:
            answer = self.request("GET", f"{resource_type}/{id}")
        except ServerRefused as exc:
            if exc.status in (404, 410):
                return None
            raise
        return _of_type(answer, resource_type, f"a read of {resource_type}")

    def bundle(self, entries: Sequence[Mapping[str, Any]], kind: str = "transaction") -> list[Answer]:
        """POST a transaction (or batch) Bundle; the answers in the order of ``entries``."""
        answer = self.request("POST", "", body={"resourceType": "Bundle", "type": kind, "entry": list(entries)})
        data = answer.resource
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            raise BadAnswer(f"the {kind} was answered HTTP {answer.status} without a Bundle")
        got = data.get("entry", [])
        if not isinstance(got, list):
            raise BadAnswer(f"the {kind}-response's entry is not a list")
        if len(got) != len(entries):
            raise BadAnswer(f"the {kind}-response has {len(got)} entries for {len(entries)} sent")
        return [_entry_answer(item, kind) for item in got]

    def search(self, resource_type: str, params: Mapping[str, str] | Sequence[tuple[str, str]], *,
               page_size: int = 100, max_pages: int = 100) -> Iterator[dict[str, Any]]:
        """Every match, following the server's ``next`` links. ``params`` may repeat a name
        (``[("sent", "ge2026-01-01"), ("sent", "lt2026-02-01")]``)."""
        query = list(params.items()) if isinstance(params, Mapping) else list(params)
        answer = self.request("GET", resource_type, params=[*query, ("_count", str(page_size))])
        for page in range(1, max_pages + 1):
            # A page that is not a Bundle is not "no matches" (a proxy's page, an OperationOutcome).
            bundle = _of_type(answer, "Bundle", f"a search of {resource_type}")
            for entry in _dicts(bundle.get("entry")):
                resource = entry.get("resource")
                search = entry.get("search")
                mode = search.get("mode", "match") if isinstance(search, dict) else "match"
                if isinstance(resource, dict) and mode == "match":
                    yield resource
            following = next((link.get("url") for link in _dicts(bundle.get("link"))
                              if link.get("relation") == "next" and isinstance(link.get("url"), str)), None)
            if not following:
                return
            if page == max_pages:
                log.warning("search %s stopped after %d pages", resource_type, max_pages)
                return
            answer = self.request("GET", following)


def _entry_answer(item: Any, kind: str) -> Answer:
    """One entry of a transaction- or batch-response, or BadAnswer when it is not one."""
    response = item.get("response") if isinstance(item, dict) else None
    if not isinstance(response, dict):
        raise BadAnswer(f"an entry of the {kind}-response has no response")
    status = str(response.get("status")).split(" ")[0] if isinstance(response.get("status"), str | int) else ""
    if not (status.isdigit() and 100 <= int(status) <= 599):
        raise BadAnswer(f"an entry of the {kind}-response has no HTTP status")
    location = response.get("location")
    if location is not None and not isinstance(location, str):
        raise BadAnswer(f"an entry of the {kind}-response has a location that is not a string")
    resource = item.get("resource")
    etag = response.get("etag")
    outcome = response.get("outcome")
    return Answer(int(status), location, resource if isinstance(resource, dict) else None,
                  etag if isinstance(etag, str) else None, outcome if isinstance(outcome, dict) else None)


def _of_type(answer: Answer, resource_type: str, what: str) -> dict[str, Any]:
    """The answer's resource when it is a ``resource_type``; else BadAnswer (its type only)."""
    found = answer.resource
    if isinstance(found, dict) and found.get("resourceType") == resource_type:
        return found
    said = f"a {found['resourceType']}" if isinstance(found, dict) and isinstance(found.get("resourceType"), str) \
        else "no FHIR resource"
    raise BadAnswer(f"{what} was answered HTTP {answer.status} with {said[:80]}")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _where(url: str | None) -> str:
    """Where a URL points, as scheme://host:port only (never its path or query)."""
    try:
        parts = urlsplit(url or "")
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else "an unnamed address"
    except ValueError:
        return "an address that cannot be read"


def _json(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def _reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "Name or service not known", "Remote end closed",
                   "RemoteDisconnected", "BrokenPipe"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
