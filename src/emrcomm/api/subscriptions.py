"""FHIR R4 rest-hook Subscriptions: the EMR names what it wants to hear of (``criteria``) and
where (``channel.endpoint``); :mod:`emrcomm.api.notify` tells it.

Criteria: ``Communication`` with any of ``patient`` / ``subject``, ``status``, ``category``
(a change to a message: sent, delivered, failed, read, a reply, recalled, not sent after all),
or ``Consent`` with ``patient`` (an opt-out or opt-in reached the ledger: a STOP reply, the
front desk).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from attrs import frozen
from urllib3.util import parse_url

from emrcomm.api.outcome import ApiError
from emrcomm.api.search import STATUSES, _category, _patient
from emrcomm.fhir import EXT
from emrcomm.storage.database import Database, Row
from emrcomm.storage.times import iso, parse_iso

SECRET = EXT + "subscription-secret"
PAYLOADS = ("application/fhir+json", "application/json")
_HEADER = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}):[ \t]*([\x20-\x7e]{0,1000})")
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection"})
MAX_HEADERS = 10


@frozen
class Criteria:
    """What a Subscription listens to: a resource type and filters (any of each tuple)."""

    resource_type: str  # Communication or Consent
    patient: str | None = None
    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: Any) -> Criteria:
        if not isinstance(text, str) or not text or len(text) > 1000:
            raise ApiError(422, "required", "criteria is missing: e.g. 'Communication?status=completed,not-done' "
                           "or 'Consent'", expression="Subscription.criteria")
        kind, _, query = text.partition("?")
        if kind not in ("Communication", "Consent"):
            raise ApiError(422, "not-supported", f"criteria on {kind[:40]!r}: this server notifies of "
                           "Communication and Consent", expression="Subscription.criteria")
        allowed = ("patient", "subject", "status", "category") if kind == "Communication" else ("patient",)
        patient: str | None = None
        statuses: tuple[str, ...] = ()
        categories: tuple[str, ...] = ()
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name not in allowed:
                raise ApiError(422, "not-supported", f"criteria parameter {name[:40]!r}; for {kind} use: "
                               f"{', '.join(allowed)}", expression="Subscription.criteria")
            values = tuple(v.strip() for v in value.split(",") if v.strip())
            if not values:
                raise ApiError(422, "value", f"criteria parameter {name} has no value", expression="Subscription.criteria")
            if name in ("patient", "subject"):
                patient = _patient(values[0], name)
            elif name == "status":
                if any(s not in STATUSES for s in values):
                    raise ApiError(422, "value", f"criteria status: one of {', '.join(STATUSES)}",
                                   expression="Subscription.criteria")
                statuses = values
            else:
                categories = tuple(_category(c) for c in values)
        return cls(kind, patient, statuses, categories)

    def matches(self, *, patient: str, status: str | None = None, category: str | None = None) -> bool:
        return ((self.patient is None or self.patient == patient)
                and (not self.statuses or status in self.statuses)
                and (not self.categories or category in self.categories))


@frozen
class Subscription:
    id: str
    client_id: str
    status: str
    criteria: Criteria
    endpoint: str
    headers: tuple[tuple[str, str], ...]
    secret: str = ""
    payload: str | None = None
    events_after: int = 0
    consent_after: int = 0
    # PostgreSQL: the transaction of the row at the cursor (see emrcomm.api.schema); None on SQLite.
    events_tx: str | None = None
    consent_tx: str | None = None
    error: str | None = None
    resource: Mapping[str, Any] | None = None

    def as_fhir(self, *, with_secret: bool = False) -> dict[str, Any]:
        """The Subscription as this server holds it; header values are masked (they may carry
        the EMR's credentials), and the signing secret is shown only when it is created."""
        res = dict(self.resource or {})
        channel = dict(res.get("channel") or {})
        if self.headers:
            channel["header"] = [f"{name}: ***" for name, _ in self.headers]
        res.update({"resourceType": "Subscription", "id": self.id, "status": self.status, "channel": channel})
        if self.error:
            res["error"] = self.error
        if with_secret:
            res["extension"] = [*(e for e in res.get("extension", ()) if e.get("url") != SECRET),
                                {"url": SECRET, "valueString": self.secret}]
        return res


def check(resource: Mapping[str, Any], *, allow_http: bool) -> tuple[Criteria, str, tuple[tuple[str, str], ...], str | None]:
    """(criteria, endpoint, headers, payload) of a Subscription to create; ApiError otherwise."""
    if resource.get("resourceType") != "Subscription":
        raise ApiError(400, "invalid", "resourceType must be 'Subscription'", expression="Subscription.resourceType")
    if resource.get("status") not in ("requested", "active"):
        raise ApiError(422, "value", "status must be 'requested' (this server makes it active)",
                       expression="Subscription.status")
    criteria = Criteria.parse(resource.get("criteria"))
    channel = resource.get("channel")
    if not isinstance(channel, Mapping) or channel.get("type") != "rest-hook":
        raise ApiError(422, "not-supported", "channel.type must be 'rest-hook' (the only kind this server sends)",
                       expression="Subscription.channel.type")
    endpoint = channel.get("endpoint")
    payload = channel.get("payload")
    if payload is not None and payload not in PAYLOADS:
        raise ApiError(422, "not-supported", f"channel.payload: {' or '.join(PAYLOADS)}, or none for an empty "
                       "notification", expression="Subscription.channel.payload")
    return criteria, _endpoint(endpoint, allow_http), _headers(channel.get("header")), payload


def _endpoint(value: Any, allow_http: bool) -> str:
    if not isinstance(value, str) or len(value) > 2000:
        raise ApiError(422, "required", "channel.endpoint must be the EMR's URL (https://…)",
                       expression="Subscription.channel.endpoint")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        raise ApiError(422, "value", "channel.endpoint is not a URL", expression="Subscription.channel.endpoint") from None
    if parts.scheme not in ("http", "https") or not host or parts.fragment or any(c in value for c in " \r\n\t"):
        raise ApiError(422, "value", "channel.endpoint must be an http(s) URL without a fragment",
                       expression="Subscription.channel.endpoint")
    if not _connectable(value):
        raise ApiError(422, "value", "channel.endpoint names a host no connection can be made to (an empty label "
                       "as in 'a..b', a label of more than 63 characters): give the EMR's host name as DNS has it",
                       expression="Subscription.channel.endpoint")
    if parts.scheme == "http" and not allow_http and not _loopback(host):
        raise ApiError(422, "security", "channel.endpoint must use https (plain http only to this machine, or "
                       "with [api] allow_http_endpoints)", expression="Subscription.channel.endpoint")
    return value.rstrip("/")


def _connectable(url: str) -> bool:
    """Whether requests and urllib3 can send to ``url``: urlsplit takes hosts they refuse, and
    urllib3 refuses some only as it connects (the host's IDNA encoding), as the notifier sends."""
    try:
        prepared = requests.Request("POST", url).prepare()
        host = parse_url(prepared.url or "").host or ""
        host.strip("[]").encode("idna")
    except (requests.RequestException, ValueError):  # UnicodeError and LocationParseError are ValueErrors
        return False
    return True


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_HEADERS:
        raise ApiError(422, "value", f"channel.header: a list of at most {MAX_HEADERS} 'Name: value' strings",
                       expression="Subscription.channel.header")
    out = []
    for item in value:
        match = _HEADER.fullmatch(item) if isinstance(item, str) else None
        if match is None or match.group(1).lower() in FORBIDDEN_HEADERS or match.group(1).lower().startswith("x-emrcomm"):
            raise ApiError(422, "value", "channel.header: each one 'Name: value' (printable ASCII, one line; not "
                           "Host, Content-Type, Content-Length or X-Emrcomm-*)", expression="Subscription.channel.header")
        out.append((match.group(1), match.group(2).strip()))
    return tuple(out)


class Subscriptions:
    """The ``api_subscriptions`` table."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock

    def create(self, resource: Mapping[str, Any], *, client: str, allow_http: bool) -> Subscription:
        criteria, endpoint, headers, payload = check(resource, allow_http=allow_http)
        kept = {k: v for k, v in resource.items() if k not in ("id", "meta", "extension", "status", "error")}
        kept["channel"] = {k: v for k, v in dict(resource["channel"]).items() if k != "header"}
        sub = Subscription(id=secrets.token_hex(16), client_id=client, status="active", criteria=criteria,
                           endpoint=endpoint, headers=headers, secret=secrets.token_urlsafe(32), payload=payload,
                           resource=kept)
        with self.db.transaction():
            # Only what happens from now on is notified. On PostgreSQL: what the transactions
            # running now and later commit (the oldest one running, from its first row).
            if self.db.dialect == "postgresql":
                tx = self.db.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS tx")[0]["tx"]
                events, consent, events_tx, consent_tx = 0, 0, tx, tx
            else:
                events = self.db.query("SELECT MAX(seq) AS n FROM events")[0]["n"] or 0
                consent = self.db.query("SELECT MAX(seq) AS n FROM consent_events")[0]["n"] or 0
                events_tx = consent_tx = None
            self.db.execute(
                """INSERT INTO api_subscriptions (id, client_id, status, resource_type, criteria, endpoint, headers,
                       secret, events_after, consent_after, events_tx, consent_tx, created, resource)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (sub.id, client, sub.status, criteria.resource_type, resource["criteria"], endpoint,
                 json.dumps(headers), sub.secret, int(events), int(consent), events_tx, consent_tx,
                 iso(self.clock()), json.dumps({**kept, "_payload": payload})))
        return sub

    def get(self, sub_id: str) -> Subscription | None:
        rows = self.db.query("SELECT * FROM api_subscriptions WHERE id = ?", (sub_id,))
        return _subscription(rows[0]) if rows else None

    def active(self) -> list[Subscription]:
        subs = [_subscription(r) for r in self.db.query("SELECT * FROM api_subscriptions WHERE status = 'active' "
                                                        "ORDER BY created, id")]
        return [sub for sub in subs if sub.status == "active"]

    def delete(self, sub_id: str) -> bool:
        with self.db.transaction():
            self.db.execute("DELETE FROM api_notifications WHERE subscription_id = ?", (sub_id,))
            return self.db.execute("DELETE FROM api_subscriptions WHERE id = ?", (sub_id,)) == 1

    def created(self, sub_id: str) -> dt.datetime | None:
        rows = self.db.query("SELECT created FROM api_subscriptions WHERE id = ?", (sub_id,))
        return parse_iso(rows[0]["created"]) if rows else None


def _subscription(row: Row) -> Subscription:
    resource = json.loads(row["resource"])
    payload = resource.pop("_payload", None)
    status, error = row["status"], row["error"]
    try:
        criteria = Criteria.parse(row["criteria"])
    except ApiError as exc:
        # Criteria this release does not read (another release stored them): the Subscription
        # hears of nothing and says why; every other one is notified as before.
        criteria, status = Criteria(resource_type="none"), "error"
        error = f"its criteria can no longer be read ({exc.diagnostics}): delete it and subscribe again"
    return Subscription(
        id=row["id"], client_id=row["client_id"], status=status, criteria=criteria,
        endpoint=row["endpoint"], headers=tuple((n, v) for n, v in json.loads(row["headers"])), secret=row["secret"],
        payload=payload, events_after=int(row["events_after"]), consent_after=int(row["consent_after"]),
        events_tx=row["events_tx"], consent_tx=row["consent_tx"], error=error, resource=resource)
