"""What the patient and the clinic do with a portal message: open its link, prove who they are,
read, reply, download an attachment; recall, expire, rotate keys.

The patient pages (``pages.py``) and the ``emrcomm portal`` / ``emrcomm keys`` commands
(``commands.py``) call this; it never renders HTML. What the chart must know (a read, a recall,
an expiry, a reply) is reported to the host through the plugin's context, so every plugin
hears of it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import re
import secrets
import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import evolve, frozen

from emrcomm import DeliveryUpdate, PluginContext, record_id
from emrcomm.storage import RecordUnreadable
from emrcomm_portal import triage
from emrcomm_portal.storage import PortalStore
from emrcomm_portal.transport import PortalTransport, digest

_TOKEN = re.compile(r"1[a-z2-7]{52}")
MAX_REPLY = 5000


@frozen
class Opened:
    """A message the patient has proved they may read, and the session that lets them reply."""

    message_id: str
    language: str
    subject: str | None
    text: str
    attachments: tuple[tuple[str, str], ...]  # (title, content type), by index
    session: str
    replied: bool = False
    sender: str | None = None  # who wrote it ("Dr. Amara Osei"), when the request said
    sent: dt.datetime | None = None  # when the clinic sent it
    time_zone: str | None = None  # the patient's, when the directory had it
    reply: str | None = None  # what the patient answered in this reading session

    def sent_on(self, fallback_zone: str) -> dt.date | None:
        """The day it was sent, in the patient's time zone (else ``fallback_zone``)."""
        if self.sent is None:
            return None
        try:
            zone = ZoneInfo(self.time_zone or fallback_zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo(fallback_zone)
        return self.sent.astimezone(zone).date()


@frozen
class Visit:
    """Where a magic link stands. ``state``: ready (ask who they are), wrong (not them; tries
    left), opened, unknown, used, recalled, expired, locked, unverifiable (no identity on file)."""

    state: str
    language: str = "en"
    message_id: str | None = None
    attempts_left: int = 0
    opened: Opened | None = None


@frozen
class Rotation:
    key_id: str
    link_key_id: str
    resealed: int
    retired: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # old keys no message uses, superseded too recently to drop


class PortalService:
    def __init__(self, context: PluginContext, transport: PortalTransport, *, attempts: int = 5,
                 session_minutes: int = 30, rate_limit_per_minute: int = 30) -> None:
        self.context = context
        self.transport = transport
        self.attempts = attempts
        self.session_lifetime = dt.timedelta(minutes=session_minutes)
        self.rate_limit_per_minute = rate_limit_per_minute  # for the pages

    @property
    def clinic(self) -> Any:
        return self.context.clinic

    @property
    def messages(self) -> PortalStore:
        return self.transport.messages

    # the patient -------------------------------------------------------------------------------
    def visit(self, token: str) -> Visit:
        """Where the link stands, without using it up (mail scanners open links too)."""
        row = self._row(token)
        if row is None:
            return Visit("unknown")
        return self._standing(row) or Visit("ready", row["language"], row["id"], self._left(row))

    def verify(self, token: str, birth_date: dt.date) -> Visit:
        """Check the date of birth; on success the link is used up and the message is read."""
        row = self._row(token)
        if row is None:
            return Visit("unknown")
        standing = self._standing(row)
        if standing is not None:
            return standing
        body = self.transport.unseal(row)
        expected = body.get("birth_date")
        if not expected:
            return Visit("unverifiable", row["language"], row["id"])
        now = self.context.clock()
        # Take a try before comparing: concurrent answers each need one of the ``attempts``
        # tries, so no more than that many are ever compared, whatever the timing.
        count = self.messages.reserve_attempt(row["id"], limit=self.attempts)
        if count is None:
            return self._standing(self._fresh(row)) or Visit("locked", row["language"], row["id"])
        if not hmac.compare_digest(expected.encode(), birth_date.isoformat().encode()):
            self.context.log.info("portal message %s: wrong date of birth (%d of %d)", row["id"], count, self.attempts)
            if count >= self.attempts:
                # No try left to count: this only sets the lock.
                self.messages.count_attempt(row["id"], limit=self.attempts, now=now)
                self._locked(row, now)
                return Visit("locked", row["language"], row["id"])
            return Visit("wrong", row["language"], row["id"], self.attempts - count)
        # Right: the try it took is not given back (the link is used up, or it no longer opens).
        if not self.messages.open(row["id"], now=now):  # read, recalled, expired or locked meanwhile
            return self._standing(self._fresh(row)) or Visit("used", row["language"], row["id"])
        self.context.report(DeliveryUpdate(kind="read", at=now, channel="portal", record_id=row["record_id"],
                                           provider_id=row["id"], key=f"{row['record_id']}:read", source="portal"))
        self.context.log.info("portal message %s read", row["id"])
        session = secrets.token_urlsafe(32)
        self.messages.session_put(digest(session), message_id=row["id"], expires=now + self.session_lifetime)
        return Visit("opened", row["language"], row["id"], opened=self._opened(row, body, session))

    def view(self, session: str) -> Opened | None:
        """The message again, within its reading session: after a reply that needs correcting, in
        the other language, and after replying (with the reply: a patient re-reads the dose they
        asked about and what they asked)."""
        found = self._session(session)
        if found is None:
            return None
        row, sess = found
        opened = self._opened(row, self.transport.unseal(row), session, replied=bool(sess["replied"]))
        if opened.replied and (answer := self.messages.reply_to(row["id"])) is not None:
            opened = evolve(opened, reply=self.transport.unseal(answer).get("text"))
        return opened

    def attachment(self, session: str, index: int) -> tuple[str, str, bytes] | None:
        """(title, content type, bytes) of one attachment, within the reading session."""
        found = self._session(session)
        if found is None:
            return None
        items = self.transport.unseal(found[0]).get("attachments") or []
        if not 0 <= index < len(items):
            return None
        item = items[index]
        return item["title"] or f"attachment-{index + 1}", item["content_type"], base64.b64decode(item["data"])

    def reply(self, session: str, text: str) -> str:
        """File the patient's reply: ``sent``, or ``expired`` (no session), ``already``, ``empty``,
        ``too-long``, ``failed`` (the chart refused it; nothing kept)."""
        found = self._session(session)
        if found is None:
            return "expired"
        row, sess = found
        # A browser posts a textarea's line breaks as CR LF but counts each as one character
        # against its maxlength: counted here as the patient's reply box counted them.
        text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
        if not text:
            return "empty"
        if len(text) > MAX_REPLY:
            return "too-long"
        if sess["replied"]:
            return "already"
        now = self.context.clock()
        reply_id = uuid.uuid4().hex
        found_words = triage.keywords(text)
        meta = self._record_meta(row["record_id"])
        # The host files the reply as a Communication (inResponseTo the message's record) when it
        # hears of it; the portal keeps the words, encrypted, and the chart points at them.
        reply_record = record_id(meta.get("request_id") or row["id"], "portal", f"reply:{reply_id}")
        # A message whose record this release cannot read: the host cannot file the reply, so the
        # staff item names the message it answers (on file), never a reply record that is not.
        unreadable = meta.get("unreadable", False)
        described = "Reply from the portal" + (f" ({', '.join(found_words)})" if found_words else "")
        if unreadable:
            described += (f", to a message (record {row['record_id']}) that this version of emrcomm cannot read: "
                          "the reply is kept in the portal")
        key_id, nonce, ciphertext = self.transport.seal(reply_id, {"text": text, "language": row["language"]})
        try:
            with self.context.transaction():
                if not self.messages.session_use(digest(session)):
                    return "already"
                self.messages.put_reply(
                    id=reply_id, record_id=reply_record, patient=row["patient"], in_response_to=row["id"],
                    language=row["language"], key_id=key_id, nonce=nonce, ciphertext=ciphertext, created=now,
                )
                self.context.raise_item(
                    kind="reply", key=reply_id, patient=row["patient"], now=now,
                    request_id=meta.get("request_id"), record_id=row["record_id"] if unreadable else reply_record,
                    message_id=reply_id, priority=triage.priority(found_words), keywords=found_words,
                    description=described,
                )
                self.context.report(DeliveryUpdate(kind="reply", at=now, channel="portal",
                                                   record_id=row["record_id"], provider_id=reply_id,
                                                   detail=row["patient"], source="portal"))
        except Exception as exc:  # the chart refused it: the patient is told, nothing is half-kept
            self.context.log.error("portal reply to %s not filed: %s", row["id"], type(exc).__name__)
            return "failed"
        self.context.log.info("portal reply %s to message %s filed", reply_id, row["id"])
        return "sent"

    # the clinic --------------------------------------------------------------------------------
    def find(self, ident: str) -> dict[str, Any] | None:
        """A stored message by its id (= its record id) or by the request id that sent it."""
        row = self.messages.get(ident)
        if row is None:
            row = self.messages.by_record(record_id(ident, "portal", "primary"))
        return dict(row) if row is not None else None

    def recall(self, ident: str, reason: str = "") -> str:
        """Withdraw an unread message: ``recalled``, or ``unknown``, ``read``, ``recalled-before``,
        ``expired``. Its link dies, notices not yet sent are cancelled, the record is updated."""
        row = self.find(ident)
        if row is None or row["kind"] != "message":
            return "unknown"
        now = self.context.clock()
        if not self.messages.transition(row["id"], from_states=("unread",), to="recalled", now=now):
            current = self.messages.get(row["id"])["state"]
            return {"read": "read", "recalled": "recalled-before"}.get(current, current)
        # The host cancels the notices of its request not yet sent, and files the recall.
        self.context.report(DeliveryUpdate(kind="recalled", at=now, channel="portal", record_id=row["record_id"],
                                           provider_id=row["id"], detail=reason, key=f"{row['record_id']}:recalled",
                                           source="staff"))
        self.context.log.info("portal message %s recalled", row["id"])
        return "recalled"

    def expire_due(self) -> list[str]:
        """Expire every unread message whose link has run out; return their ids."""
        now = self.context.clock()
        done = []
        for message_id in self.messages.due_to_expire(now):
            row = self.messages.get(message_id)
            if row is not None and self._expire(row, now):
                done.append(message_id)
        self.messages.sessions_purge(now)
        return done

    def rotate_keys(self, *, retire: bool = False) -> Rotation:
        """A new current key and link key; every stored message re-encrypted under the new key.

        The ring file is saved first: a crash half-way leaves messages under keys the ring still
        holds, and ``reseal()`` finishes the job.
        """
        ring = self.transport.ring
        now = self.context.clock()
        key_id, link_key_id = ring.rotate(now)
        ring.save()
        count = self.reseal()
        retired: list[str] = []
        kept: list[str] = []
        if retire:
            retired, kept = ring.retire(set(self.messages.key_use()), now)
            ring.save()
        self.context.log.info("key ring rotated to %s; %d messages re-encrypted", key_id, count)
        return Rotation(key_id, link_key_id, count, tuple(retired), tuple(kept))

    def missing_keys(self) -> str | None:
        """Why the key ring cannot open every stored message (the keys it lacks), or None."""
        ring = self.transport.ring
        use = self.messages.key_use()
        lacking = sorted(k for k in use if k not in ring.keys and k not in ring.link_keys)
        if not lacking:
            return None
        held = max(use[k] for k in lacking)
        if ring.path is not None and not ring.path.exists():
            return (f"plugins.portal.keyring: {ring.path} is missing, but the store holds {held} portal message(s) "
                    f"encrypted or linked under key(s) {', '.join(lacking)}: restore the key ring from its backup "
                    "(a new one would open none of them)")
        return (f"plugins.portal.keyring: {ring.path} lacks the key(s) {', '.join(lacking)} of {held} portal "
                "message(s) in the store (a ring older than the database?): restore the ring that holds them")

    def reseal(self, batch: int = 200) -> int:
        """Re-encrypt every message not under the current key (in batches, one commit each)."""
        ring = self.transport.ring
        rows = self.messages.sealed(not_key=ring.current)
        count = 0
        for start in range(0, len(rows), batch):
            with self.context.transaction():
                for row in rows[start:start + batch]:
                    plain = self.transport.unseal(row)
                    key_id, nonce, ciphertext = self.transport.seal(row["id"], plain)
                    count += self.messages.reseal(row["id"], key_id=key_id, nonce=nonce, ciphertext=ciphertext,
                                                      old_key_id=row["key_id"])
        return count

    # inner workings ----------------------------------------------------------------------------
    def _row(self, token: str) -> dict[str, Any] | None:
        token = token.strip().lower()
        if not _TOKEN.fullmatch(token):
            return None
        row = self.messages.by_link(digest(token))
        return dict(row) if row is not None and row["kind"] == "message" else None

    def _fresh(self, row: dict[str, Any]) -> dict[str, Any]:
        again = self.messages.get(row["id"])
        return dict(again) if again is not None else row

    def _left(self, row: dict[str, Any]) -> int:
        return max(self.attempts - int(row["attempts"]), 0)

    def _standing(self, row: dict[str, Any]) -> Visit | None:
        """The link's state when it can no longer open the message, else None."""
        now = self.context.clock()
        language, ident = row["language"], row["id"]
        state = row["state"]
        if state == "recalled":
            return Visit("recalled", language, ident)
        if state == "read":
            return Visit("used", language, ident)
        if state == "expired" or (row["expires"] and dt.datetime.fromisoformat(row["expires"]) <= now):
            self._expire(row, now)
            return Visit("expired", language, ident)
        if row["locked"] or int(row["attempts"]) >= self.attempts:
            return Visit("locked", language, ident)
        return None

    def _expire(self, row: dict[str, Any], now: dt.datetime) -> bool:
        if not self.messages.transition(row["id"], from_states=("unread",), to="expired", now=now):
            return False
        self.context.report(DeliveryUpdate(kind="expired", at=now, channel="portal", record_id=row["record_id"],
                                           provider_id=row["id"], key=f"{row['record_id']}:link-expired",
                                           source="portal"))
        meta = self._record_meta(row["record_id"])
        self.context.raise_item(kind="expired-unread", key=row["id"], patient=row["patient"], now=now,
                   request_id=meta.get("request_id"), record_id=row["record_id"], message_id=row["id"],
                   description="The portal message expired unread: check whether the patient still needs it.")
        self.context.log.info("portal message %s expired unread", row["id"])
        return True

    def _locked(self, row: dict[str, Any], now: dt.datetime) -> None:
        meta = self._record_meta(row["record_id"])
        self.context.raise_item(kind="link-locked", key=row["id"], patient=row["patient"], now=now,
                   request_id=meta.get("request_id"), record_id=row["record_id"], message_id=row["id"],
                   priority="urgent",
                   description=f"{self.attempts} wrong dates of birth locked the portal link: check with the "
                               "patient (by phone) before sending it again.")
        self.context.log.warning("portal message %s: link locked after %d wrong answers", row["id"], self.attempts)

    def _record_meta(self, record_id: str) -> dict[str, Any]:
        """The request and patient of a portal message's record; none when this release cannot
        read it, only ``unreadable`` (the staff item names the record; the sweep goes on to the
        other messages)."""
        try:
            facts = self.context.records.facts(record_id)
        except RecordUnreadable:
            self.context.log.warning("portal: record %s cannot be read by this release", record_id)
            return {"unreadable": True}
        return {} if facts is None else {"request_id": facts.request.id, "patient": facts.request.patient_ref}

    def _session(self, session: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if not session or len(session) > 100:
            return None
        sess = self.messages.session_get(digest(session), self.context.clock())
        if sess is None:
            return None
        row = self.messages.get(sess["message_id"])
        if row is None or row["state"] != "read":
            return None
        return dict(row), sess

    @staticmethod
    def _opened(row: dict[str, Any], body: dict[str, Any], session: str, replied: bool = False) -> Opened:
        sent = dt.datetime.fromisoformat(row["created"]) if row.get("created") else None
        return Opened(
            message_id=row["id"], language=body.get("language") or row["language"], subject=body.get("subject"),
            text=body.get("text") or "",
            attachments=tuple((a["title"], a["content_type"]) for a in body.get("attachments") or ()),
            session=session, replied=replied, sender=body.get("sender"),
            sent=sent if sent is None or sent.tzinfo else sent.replace(tzinfo=dt.UTC), time_zone=body.get("time_zone"),
        )
