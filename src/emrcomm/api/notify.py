"""Subscription notifications: the lifecycle's append-only ``events`` (and the consent ledger)
read after each Subscription's cursor, one notification row per match, each PUT to the EMR's
endpoint (R4 rest-hook: ``[endpoint]/Communication/[id]`` or ``[endpoint]/Consent/[seq]``),
signed, retried with backoff until it is taken or given up.

Rows are claimed with a lease (timed by the database server's clock on PostgreSQL, the host's on
SQLite), so several ``serve`` processes (or ``emrcomm notify``) share the work; a notification
goes at least once, and ``X-Emrcomm-Event-Id`` lets the EMR drop a repeat. A notifier starts a
send only while its lease (counted on its monotonic clock from before the claim) still covers
the send and the writing of its answer, and gives back the rest; what it writes afterwards
holds only while the lease is still its own.

Signature: ``X-Emrcomm-Signature: v1=<hex HMAC-SHA256>`` under the Subscription's secret, of
``<X-Emrcomm-Timestamp>.<X-Emrcomm-Event-Id>.<body>`` (docs/api.md shows the check in Java and PHP).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests

from emrcomm.api.outcome import dumps
from emrcomm.api.search import resource as communication_resource
from emrcomm.api.settings import ApiSettings
from emrcomm.api.subscriptions import Subscription, Subscriptions
from emrcomm.deadline import deadline_session, exchange
from emrcomm.fhir import fhir_datetime
from emrcomm.lifecycle.events import Note
from emrcomm.lifecycle.states import LegState
from emrcomm.storage.records import RecordUnreadable
from emrcomm.storage.times import iso, lease_now, lease_until, parse_iso

if TYPE_CHECKING:
    from emrcomm.host import Host

log = logging.getLogger("emrcomm.api.notify")

# Changes an EMR hears of, by the event kind the lifecycle appends; the header names them.
EVENT_NAMES = {
    LegState.ACCEPTED.value: "sent", LegState.DELIVERED.value: "delivered", LegState.FAILED.value: "failed",
    LegState.READ.value: "read", LegState.RECEIVED.value: "reply", LegState.RECALLED.value: "recalled",
    LegState.UNDELIVERABLE.value: "undeliverable", LegState.EXPIRED.value: "expired",
    LegState.CANCELLED.value: "cancelled", Note.NOT_TOLD.value: "not-told", Note.ANNOUNCED.value: "told",
}
BATCH = 200
LEASE = dt.timedelta(minutes=2)
# How long a notification of a record a newer release wrote waits before this release's notifiers
# claim it again (the Retry-After the API answers a read of that record): a notifier of that
# release, during an upgrade, sends it meanwhile; not claimed and given back at every poll.
NEWER_WAIT = dt.timedelta(seconds=60)
# A send starts only while this many notify_timeouts are left of its lease: one for the exchange
# (its deadline bounds it), one to write down its answer before another notifier may take it
# over. A lease is at least one more timeout than that, so that a claim always sends one.
RESERVE = 2


def lease_for(settings: ApiSettings) -> dt.timedelta:
    """How long a claim holds its notifications: LEASE, or longer for a long ``notify_timeout``."""
    return max(LEASE, dt.timedelta(seconds=(RESERVE + 1) * settings.notify_timeout))


def signature(secret: str, timestamp: str, event_id: str, body: bytes) -> str:
    """What ``X-Emrcomm-Signature`` carries for a notification."""
    message = f"{timestamp}.{event_id}.".encode("ascii") + body
    return "v1=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


class Notifier:
    """Fans events out to Subscriptions and delivers what is due (:meth:`run_once`); in
    ``emrcomm serve``, a thread does so every ``notify_poll_seconds`` (:meth:`start`)."""

    def __init__(self, host: Host, settings: ApiSettings, *, session: requests.Session | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.monotonic = monotonic  # what the notifier counts its leases by
        self.db = host.storage.db
        self.settings = settings
        self.subscriptions = Subscriptions(self.db, host.clock)
        self.session = session or deadline_session()
        self.owner = f"notify:{uuid.uuid4().hex}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # the thread --------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="emrcomm-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.settings.notify_timeout + 5)

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.notify_poll_seconds):
            if self.host.closed:
                return
            try:
                self.run_once()
            except Exception as exc:  # a closed store at shutdown, a locked database: try again later
                if self.host.closed:
                    return
                log.error("notifications: a round failed (%s); trying again", type(exc).__name__)

    # one round ---------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Fan new events out, then deliver what is due; returns how many notifications were taken.
        Those claimed that the lease no longer covers are given back unsent, for the next round."""
        for sub in self.subscriptions.active():
            self._fan_out(sub)
        claimed = self._claim()
        taken = 0
        for n, row in enumerate(claimed):
            if row["held_until"] - self.monotonic() < RESERVE * self.settings.notify_timeout:
                self._give_back(claimed[n:])
                break
            taken += self._attempt(row)
        return taken

    def _attempt(self, row: dict[str, Any]) -> int:
        """One claimed notification: whatever fails while it is sent (an endpoint urllib3 cannot
        parse raises ValueError, not a RequestException) is its failed attempt, never the round's:
        the other rows claimed with it are still sent, and none stays leased."""
        try:
            return self._deliver(row)
        except Exception as exc:
            self._retry(row, str(row["subscription_id"]), type(exc).__name__)
            return 0

    def _fan_out(self, sub: Subscription) -> None:
        now = self.host.clock()
        ordered = self.db.dialect == "postgresql"
        if sub.criteria.resource_type == "Communication":
            kinds = tuple(EVENT_NAMES)
            after, params = _after("e", ordered, sub.events_tx, sub.events_after)
            rows = self.db.query(
                f"SELECT e.seq, {_tx('e', ordered)}, r.patient, r.status, r.category "
                f"FROM events e JOIN records r ON r.id = e.record_id "
                f"WHERE {after} AND e.kind IN ({', '.join('?' for _ in kinds)}) ORDER BY {_order('e', ordered)} LIMIT ?",
                (*params, *kinds, BATCH))
            source, column = "events", "events"
            matched = [r["seq"] for r in rows
                       if sub.criteria.matches(patient=r["patient"], status=r["status"], category=r["category"])]
        else:
            after, params = _after("c", ordered, sub.consent_tx, sub.consent_after)
            rows = self.db.query(f"SELECT c.seq, {_tx('c', ordered)}, c.patient FROM consent_events c "
                                 f"WHERE {after} ORDER BY {_order('c', ordered)} LIMIT ?", (*params, BATCH))
            source, column = "consent", "consent"
            matched = [r["seq"] for r in rows if sub.criteria.matches(patient=r["patient"])]
        if not rows:
            return
        last = rows[-1]
        with self.db.transaction():
            for seq in matched:
                self.db.execute(
                    "INSERT INTO api_notifications (subscription_id, source, seq, state, attempts, next_at) "
                    "VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT (subscription_id, source, seq) DO NOTHING",
                    (sub.id, source, seq, iso(now)))
            # Another process may have moved the cursor further already: never move it back.
            if ordered:
                self.db.execute(
                    f"UPDATE api_subscriptions SET {column}_tx = ?, {column}_after = ? WHERE id = ? "
                    f"AND (CAST({column}_tx AS xid8), {column}_after) < (CAST(? AS xid8), ?)",
                    (last["tx"], last["seq"], sub.id, last["tx"], last["seq"]))
            else:
                self.db.execute(f"UPDATE api_subscriptions SET {column}_after = ? WHERE id = ? AND {column}_after < ?",
                                (last["seq"], sub.id, last["seq"]))

    def _claim(self) -> list[dict[str, Any]]:
        # When a notification is due (next_at) is the host's time; a lease is written and read by
        # the database server's clock on PostgreSQL, so that processes on machines whose clocks
        # differ never both hold one (emrcomm.storage.times).
        # The lease as this notifier counts it, from before the claim: it ends no later than the
        # store's (each row's lease_until is written after this).
        lease = lease_for(self.settings)
        held_until = self.monotonic() + lease.total_seconds()
        now = self.host.clock()
        free, free_params = lease_now(self.db.dialect, now)
        until, until_params = lease_until(self.db.dialect, now, lease)
        rows = self.db.query(
            "SELECT subscription_id, source, seq, attempts, last_error FROM api_notifications WHERE state = 'pending' "
            f"AND next_at <= ? AND (lease_until IS NULL OR lease_until < {free}) ORDER BY next_at, seq LIMIT ?",
            (iso(now), *free_params, BATCH))
        claimed = []
        for row in rows:
            with self.db.transaction():
                took = self.db.execute(
                    f"UPDATE api_notifications SET lease_owner = ?, lease_until = {until} WHERE subscription_id = ? "
                    f"AND source = ? AND seq = ? AND state = 'pending' AND (lease_until IS NULL OR lease_until < {free})",
                    (self.owner, *until_params, row["subscription_id"], row["source"], row["seq"], *free_params))
            if took == 1:
                claimed.append({**row, "held_until": held_until})
        return claimed

    def _give_back(self, rows: list[dict[str, Any]]) -> None:
        """Claimed notifications not tried: free for any notifier at once, no attempt counted."""
        with self.db.transaction():
            for row in rows:
                self.db.execute("UPDATE api_notifications SET lease_owner = NULL, lease_until = NULL "
                                "WHERE subscription_id = ? AND source = ? AND seq = ? AND lease_owner = ?",
                                (row["subscription_id"], row["source"], row["seq"], self.owner))
        log.info("notifications: %d claimed given back unsent, their lease too short to send them", len(rows))

    def _deliver(self, row: dict[str, Any]) -> int:
        sub = self.subscriptions.get(row["subscription_id"])
        if sub is None or sub.status != "active":
            self._finish(row, "dropped", None)
            return 0
        try:
            found = self._resource(row["source"], row["seq"])
        except RecordUnreadable as exc:
            self._unreadable(row, sub.id, exc)
            return 0
        if found is None:
            self._finish(row, "dropped", "the event is gone")
            return 0
        kind, resource = found
        event_id = f"{row['source']}-{row['seq']}"
        body = dumps(resource) if sub.payload else b""
        timestamp = str(int(self.host.clock().timestamp()))
        headers = {name: value for name, value in sub.headers}
        headers.update({
            "X-Emrcomm-Event": kind, "X-Emrcomm-Event-Id": event_id, "X-Emrcomm-Subscription": sub.id,
            "X-Emrcomm-Timestamp": timestamp, "X-Emrcomm-Signature": signature(sub.secret, timestamp, event_id, body),
        })
        if sub.payload:
            headers["Content-Type"] = sub.payload
            method, url = "PUT", f"{sub.endpoint}/{resource['resourceType']}/{resource['id']}"
        else:
            method, url = "POST", sub.endpoint
        try:
            # notify_timeout bounds the whole exchange, not each read: an endpoint that answers a
            # byte at a time fails this attempt instead of holding up every other Subscription
            # past the lease. The answer's body is never read: its status is all that counts.
            answer, _ = exchange(self.session, method, url, seconds=self.settings.notify_timeout, data=body,
                                 headers=headers, timeout=self.settings.notify_timeout, allow_redirects=False)
            ok, why = 200 <= answer.status_code < 300, f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            ok, why = False, type(exc).__name__
        if ok:
            self._finish(row, "done", None)
            log.info("subscription %s: notification %s (%s) taken", sub.id, event_id, kind)
            return 1
        self._retry(row, sub.id, why)
        return 0

    def _unreadable(self, row: dict[str, Any], sub_id: str, exc: RecordUnreadable) -> None:
        """A notification of a record this release cannot read, as the outbox settles a row of one
        (emrcomm.pipeline.deliver.unreadable_record). Written by a newer release: given back unsent
        for a notifier of that release, its attempt too (never given up for it), due again after
        NEWER_WAIT; logged the first time. Damaged: nothing will read it until it is restored from a
        backup, so it is given up at once, as one that failed every attempt is (the Subscription's
        error names it). By ids only, never the record's words."""
        event_id = f"{row['source']}-{row['seq']}"
        if exc.newer:
            said = f"record {exc.record}: {exc}; waits for a notifier of that release"
            with self.db.transaction():
                kept = self.db.execute(
                    "UPDATE api_notifications SET next_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL "
                    "WHERE subscription_id = ? AND source = ? AND seq = ? AND lease_owner = ?",
                    (iso(self.host.clock() + NEWER_WAIT), said, row["subscription_id"], row["source"], row["seq"],
                     self.owner)) == 1
            if not kept:
                _lost(row, "given back")
            elif row.get("last_error") != said:
                log.warning("subscription %s: notification %s is of record %s, which a newer release wrote; given "
                            "back for a notifier of that release", sub_id, event_id, exc.record)
            return
        why = f"its record {exc.record} is damaged ({exc})"
        self._give_up(row, sub_id, why,
                      f"notification {event_id} given up: {why}; the clinic's administrator can restore it from a backup")

    def _resource(self, source: str, seq: int) -> tuple[str, dict[str, Any]] | None:
        if source == "events":
            rows = self.db.query("SELECT record_id, kind FROM events WHERE seq = ?", (seq,))
            if not rows:
                return None
            record = self.host.storage.records.get(rows[0]["record_id"])
            if record is None:
                return None
            updated = self.db.query("SELECT updated FROM records WHERE id = ?", (record.id,))[0]["updated"]
            return EVENT_NAMES.get(rows[0]["kind"], str(rows[0]["kind"])), communication_resource(record, parse_iso(updated))
        entry = self.db.query("SELECT * FROM consent_events WHERE seq = ?", (seq,))
        if not entry:
            return None
        return ("optout" if entry[0]["action"] == "revoke" else "optin"), consent_entry(entry[0])

    def _finish(self, row: dict[str, Any], state: str, error: str | None) -> bool:
        """Settle a notification this notifier holds; False (nothing written) when its lease has
        passed to another notifier, whose state stands."""
        with self.db.transaction():
            kept = self.db.execute(
                "UPDATE api_notifications SET state = ?, attempts = attempts + 1, last_error = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE subscription_id = ? AND source = ? AND seq = ? "
                "AND lease_owner = ?", (state, error, row["subscription_id"], row["source"], row["seq"], self.owner)) == 1
        if not kept:
            _lost(row, state)
        return kept

    def _give_up(self, row: dict[str, Any], sub_id: str, why: str, error: str) -> None:
        """End a notification this notifier holds as dead (``why``), and name it in its
        Subscription's ``error`` (what staff and the EMR read), in one transaction."""
        with self.db.transaction():
            if not self._finish(row, "dead", why):
                return
            self.db.execute("UPDATE api_subscriptions SET error = ? WHERE id = ?", (error, sub_id))
        log.warning("subscription %s: %s", sub_id, error)

    def _retry(self, row: dict[str, Any], sub_id: str, why: str) -> None:
        attempts = int(row["attempts"]) + 1
        s = self.settings
        if attempts >= s.notify_max_attempts:
            self._give_up(row, sub_id, why,
                          f"notification {row['source']}-{row['seq']} given up after {attempts} attempts ({why})")
            return
        wait = min(s.notify_backoff_cap, s.notify_backoff_base * 2 ** (attempts - 1))
        with self.db.transaction():
            kept = self.db.execute(
                "UPDATE api_notifications SET attempts = ?, next_at = ?, last_error = ?, lease_owner = NULL, "
                "lease_until = NULL WHERE subscription_id = ? AND source = ? AND seq = ? AND lease_owner = ?",
                (attempts, iso(self.host.clock() + dt.timedelta(seconds=wait)), why,
                 row["subscription_id"], row["source"], row["seq"], self.owner)) == 1
        if not kept:
            _lost(row, "retried")
            return
        log.warning("subscription %s: notification %s-%s not taken (%s); attempt %d in %.0f s",
                    sub_id, row["source"], row["seq"], why, attempts + 1, wait)


def _lost(row: dict[str, Any], state: str) -> None:
    # Its lease ran out (the process stalled past it) and another notifier took it over: what
    # that one does with it stands.
    log.warning("notification %s-%s: not marked %s, its lease had passed to another notifier",
                row["source"], row["seq"], state)


def consent_entry(row: Any) -> dict[str, Any]:
    """A consent ledger entry as a FHIR Consent (its id is the entry's number)."""
    from emrcomm.api.consent import ADDRESS, CHANNEL_SYSTEM, SOURCE

    revoked = row["action"] == "revoke"
    at = parse_iso(row["at"])
    res: dict[str, Any] = {
        "resourceType": "Consent", "id": str(row["seq"]), "meta": {"lastUpdated": fhir_datetime(at)},
        "extension": [{"url": SOURCE, "valueString": row["source"]}],
        "status": "inactive" if revoked else "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": row["patient"]}, "dateTime": fhir_datetime(at),
        "provision": {"type": "deny" if revoked else "permit",
                      "code": [{"coding": [{"system": CHANNEL_SYSTEM, "code": row["channel"]}]}]},
    }
    if row["address"]:
        res["extension"].append({"url": ADDRESS, "valueString": row["address"]})
    return res


# The cursor (see emrcomm.api.schema): on PostgreSQL (writing transaction, seq), read only below
# the oldest transaction still running, in that order; on SQLite the seq, which is commit order.
def _after(alias: str, ordered: bool, tx: str | None, seq: int) -> tuple[str, tuple[Any, ...]]:
    if not ordered:
        return f"{alias}.seq > ?", (seq,)
    return (f"({alias}.tx, {alias}.seq) > (CAST(? AS xid8), ?) "
            f"AND {alias}.tx < pg_snapshot_xmin(pg_current_snapshot())", (tx or "0", seq))


def _tx(alias: str, ordered: bool) -> str:
    return f"{alias}.tx::text AS tx" if ordered else "NULL AS tx"


def _order(alias: str, ordered: bool) -> str:
    return f"{alias}.tx, {alias}.seq" if ordered else f"{alias}.seq"
