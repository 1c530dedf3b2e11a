"""The Host: a small facade over the plugins, the storage and the pipeline.

send = decide -> write -> deliver (inline), each one routine (emrcomm.pipeline); the worker
delivers what is queued with the same routine; every change to a message is an event
(emrcomm.lifecycle), and the chart is their projection. docs/architecture.md draws it.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from emrcomm import fhir
from emrcomm.api.schema import MIGRATIONS as API_MIGRATIONS
from emrcomm.audit import KINDS, AuditLog, SigningKey, Trail
from emrcomm.clock import default_clock
from emrcomm.config import Config, load_config
from emrcomm.delivery import described
from emrcomm.errors import EmrcommError, PluginError, PluginUnavailable, RequestError
from emrcomm.inbox import raise_item
from emrcomm.lifecycle.events import Event, Note, Source
from emrcomm.lifecycle.projection import after_requeues, request_status
from emrcomm.lifecycle.states import LegState
from emrcomm.limits import check_request, check_text, escape_controls
from emrcomm.model import (
    Category,
    ConsentGrant,
    ContactPoint,
    DeliveryUpdate,
    Finding,
    Message,
    Outcome,
    Purpose,
    Receipt,
    Recipient,
    Record,
    Request,
    Route,
    Severity,
    Status,
)
from emrcomm.model import Channel as Channel
from emrcomm.pipeline.decide import Decision, decide, in_words_sent, same_patient
from emrcomm.pipeline.deliver import RECHECK_AFTER, RetryPolicy, deliver, file_event, not_told
from emrcomm.pipeline.late import LateRecords
from emrcomm.pipeline.records import record_id, reply_facts
from emrcomm.pipeline.watch import Sending, SendWatch, send_timeout
from emrcomm.pipeline.write import Written, outcome, write
from emrcomm.plugin.context import PluginContext
from emrcomm.plugin.manager import FilingFailed, PluginManager, check_secret_references, installed
from emrcomm.rules import finding
from emrcomm.staff.schema import MIGRATIONS as STAFF_MIGRATIONS
from emrcomm.storage import Migration, Storage, StoreUnavailable, open_storage
from emrcomm.storage.records import RETRYABLE, RecordUnreadable, Unreadable

log = logging.getLogger("emrcomm.host")

# Codes that depend on the patient, not the words; `check` (text only) leaves them out.
RECIPIENT_CODES = frozenset({
    "CONSENT_MISSING", "CONSENT_REVOKED", "PREFERENCE_IGNORED", "RECIPIENT_INVALID",
    "RECIPIENT_UNVERIFIED", "QUIET_HOURS", "EXEMPTION_FREQUENCY", "MESSAGE_EXPIRED",
    "BILLING_BY_SMS", "UNENCRYPTED_EMAIL_NOT_ACCEPTED", "FRENCH_REQUIRED",
})

# What a delivery update (a provider's report, the portal, staff) appends to a record.
UPDATE_EVENTS: Mapping[str, LegState | Note] = {
    "delivered": LegState.DELIVERED, "failed": LegState.FAILED, "read": LegState.READ,
    "recalled": LegState.RECALLED, "expired": Note.LINK_EXPIRED, "progress": Note.PROGRESS,
    "announced": Note.ANNOUNCED,
}

# emrcomm's own answers to a patient's messages: never what a reply answers.
ANSWERS = tuple(c.value for c in Category if c.answers_patient)

Requestish = Request | Mapping[str, Any] | str | bytes


class Host:
    """The emrcomm host. Build it from a config; call :meth:`send`; :meth:`close` when done.

    ::

        with Host.from_config("emrcomm.toml") as host:
            outcome = host.send(Request("Patient/123", "appointment-reminder", template=...))
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        entry_points: Mapping[str, metadata.EntryPoint] | None = None,
        read_only: bool = False,
        upgrade: bool = False,
    ) -> None:
        """``read_only``: a host that only answers questions (:meth:`check`, :meth:`preview`,
        :meth:`records`): it opens the store for reading (an absent one as an empty one in
        memory), creates no key or file, and refuses to send. ``upgrade``: bring the schema up
        to date (``emrcomm db upgrade``); without it a PostgreSQL schema older than the code is
        refused (SQLite upgrades itself in place)."""
        self.config = config
        self.read_only = read_only
        # Every decision reads this one clock (emrcomm.clock): the system's unless told otherwise.
        self.clock = clock or default_clock()
        # Read once: the credential check and the plugin manager both need them.
        self._entry_points = installed(entry_points)
        self._closed = False
        # Messages sent inline while the database was away, recorded once it is back (pipeline.late).
        self.late_records = LateRecords()
        self._upgrade = True if upgrade else None
        if not read_only:
            # A credential not set stops the start before the store, the audit key and the key
            # ring are made (the plugins check each one again as they start).
            check_secret_references(config, self._entry_points)
        self.storage: Storage = open_storage(config, read_only=read_only, upgrade_it=self._upgrade)
        plugins: PluginManager | None = None
        delivery = config.raw.get("delivery", {})
        # Every transport's send in flight, watched by one thread (a send that never returns is reported).
        self.sends = SendWatch(send_timeout(delivery))
        self.retry_policy = RetryPolicy(max_attempts=int(delivery.get("max_attempts", 8)),
                                        backoff_base=float(delivery.get("backoff_base", 30.0)),
                                        backoff_cap=float(delivery.get("backoff_cap", 3600.0)))
        # A row leaving longer than this after its decision asks the directory again (pipeline.deliver).
        self.recheck_after = dt.timedelta(seconds=float(delivery.get("recheck_after", RECHECK_AFTER)))
        try:
            # Every decision is logged, signed (docs/audit.md); the key is checked before anything runs.
            self.audit = (AuditLog(self.storage, SigningKey.ephemeral(), self.clock) if read_only
                          else AuditLog.open(config, self.storage, self.clock))
            plugins = PluginManager(config, self._make_context, self._entry_points)
            self.plugins: PluginManager = plugins
            self.channels: Mapping[str, Channel] = plugins.channels
            # The FHIR API's and the staff pages' tables and the plugins' own, then the plugins that need them may start.
            self.storage.migrate([*API_MIGRATIONS, *STAFF_MIGRATIONS, *plugins.migrations()], upgrade_it=self._upgrade)
            plugins.start(self)
            if not read_only:
                self.sends.listen(self._audit_hung)
        except BaseException:
            if plugins is not None:
                plugins.close()
            self.storage.close()
            raise

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        *,
        base_dir: Path | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        read_only: bool = False,
        upgrade: bool = False,
    ) -> Host:
        """A Host for ``path`` (default ./emrcomm.toml, else the embedded defaults).

        ``base_dir`` places the embedded defaults' data folder somewhere other than the
        user's data folder.
        """
        return cls(load_config(path, base_dir=base_dir), clock=clock, read_only=read_only, upgrade=upgrade)

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run (a background thread beside the host stops then)."""
        return self._closed

    def _audit_hung(self, sending: Sending) -> None:
        """A send found hung is in the audit log too (from the watching thread): it may have left.
        Its row is marked in the same commit, so that `emrcomm outbox` lists it overdue from any
        machine (only this process knows when the send started; no send writes that down)."""
        if self._closed:
            return
        with self.storage.transaction():
            if sending.owner is not None:
                self.storage.outbox.found_hung(sending.key, owner=sending.owner, now=self.clock())
            self.audit.record("delivery.hung", record=sending.key, channel=sending.channel, plugin=sending.plugin)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.sends.close()
        self.late_records.close()
        self.hooks.close()
        if not self.read_only:
            self.audit.seal()  # so that nothing appended since the last seal can be cut off unseen
        self.storage.close()

    def migrations(self) -> list[Migration]:
        """Every migration this host's store needs: the core's, the FHIR API's, the staff pages',
        its plugins' own."""
        from emrcomm.storage.schema import MIGRATIONS

        assert self.plugins is not None
        return [*MIGRATIONS, *API_MIGRATIONS, *STAFF_MIGRATIONS, *self.plugins.migrations()]

    def _make_context(self, name: str, settings: Mapping[str, Any]) -> PluginContext:
        return PluginContext(
            name=name,
            settings=settings,
            clinic=self.config.clinic,
            storage=self.storage,
            base_dir=self.config.base_dir,
            clock=self.clock,
            read_only=self.read_only,
        )

    # what the pipeline asks of the plugins --------------------------------------------------------
    @property
    def hooks(self) -> PluginManager:
        """The plugins, through which every hook is called."""
        return self.plugins

    def file_each(self, record: Record) -> FilingFailed | None:
        """Give ``record`` to every filer, each in a savepoint of the current transaction (a
        failing one's writes are undone alone); return the first failure, or None."""
        return self.hooks.file_each(record, self.storage.savepoint)

    # the pipeline --------------------------------------------------------------------------------
    def send(self, request: Requestish) -> Outcome:
        """Run one request through the pipeline and return how it ended.

        Raises RequestError (nothing sent or filed) when the request itself is malformed.
        """
        self._writable()
        req = self._parse(request)
        trail = self._trail(req)
        decision = self.decide(req, trail)
        written = write(self, decision, trail)
        return self._deliver_inline(written) if written.items else written.outcome

    def decide(self, req: Request, trail: Trail | None = None, *, dry_run: bool = False) -> Decision:
        """What the host would do with ``req`` now (reads only; see emrcomm.pipeline.decide)."""
        now = self.clock()
        log.info("request %s received: %s for %s", req.id, req.category.value, self.audit.patient(req.patient_ref))
        row = self.storage.records.request(req.id) if not dry_run else None
        decision = decide(self.hooks, req, now, handled=row is not None and row.status not in RETRYABLE,
                          every_candidate=dry_run)
        if trail is not None and decision.recipient is not None and decision.request.patient_ref != req.patient_ref:
            # The audit entries name the patient found (Patient/<id>), as the records do; one
            # nobody found stays named by the keyed digest of what the EMR gave.
            trail.defaults["patient"] = self.audit.patient(decision.request.patient_ref)
        if trail is not None:
            # The request's category and every rule code found travel with the decision's entry.
            codes = {f.code for f in decision.facts} | {f.code for v in decision.verdicts for f in v.findings}
            trail.note(category=req.category.value, codes=sorted(codes))
        return decision

    def _deliver_inline(self, written: Written) -> Outcome:
        """Deliver the legs in order, from this process: a notice never leaves before the message
        it announces. A leg that fails stays in the outbox for a worker, and so do the legs after."""
        assert written.owner is not None
        receipts: list[Receipt] = list(written.outcome.receipts)
        facts = {f.id: f for f in written.facts}
        for index, item in enumerate(written.items):
            done = deliver(self, item, facts.get(item.key), owner=written.owner, source=Source.HOST,
                           policy=self.retry_policy, commit=self._commit_relaxed, recipient=written.recipient,
                           late=self.late_records)
            if done.result == "held":
                # Its sending window closed between the decision and the send (a decision on the
                # stroke of 21:00): the legs after it wait in the outbox, the request reads held.
                rest = [later.key for later in written.items[index + 1:]]
                if rest:
                    with self.storage.transaction():
                        self.storage.outbox.unlease(rest, owner=written.owner, now=self.clock())
                return attrs.evolve(written.outcome, status=self._standing(written.outcome), receipts=tuple(receipts))
            if done.result != "accepted":
                rest = [later.key for later in written.items[index + 1:]]
                if rest and done.result == "retry":
                    with self.storage.transaction():
                        self.storage.outbox.unlease(rest, owner=written.owner, now=self.clock())
                error = done.error
                detail = described(error) if error else done.result
                f = finding("DELIVERY_FAILED", plugin=self.channels[item.channel].plugin if item.channel in self.channels
                            else "host", channel=item.channel, severity=Severity.WARN, detail=detail)
                log.warning("request %s: %s delivery %s", written.outcome.request_id, item.channel, done.result)
                findings: tuple[Finding, ...] = (*written.outcome.findings, f)
                if item.payload.link_from is not None and done.result != "retry":
                    # The portal message left, its notice ended unsent: kept, the patient not told.
                    findings += (finding("PATIENT_NOT_TOLD", plugin="host", channel=item.payload.link_from[0]),)
                # How the request stands now, as a repeat and the FHIR API read it: queued while the
                # outbox retries a leg (the message is going; the failed try a warning), stored when
                # only a notice ended unsent, failed when the message did (a dead letter).
                return attrs.evolve(written.outcome, status=self._standing(written.outcome), findings=findings,
                                    receipts=tuple(receipts))
            if done.receipt is not None:
                receipts.append(done.receipt)
            if done.not_filed is not None:
                written = attrs.evolve(written, outcome=attrs.evolve(written.outcome, findings=(
                    *written.outcome.findings, finding("RECORD_NOT_FILED", plugin=done.not_filed, severity=Severity.WARN,
                                                       detail="the outcome, after sending"))))
        log.info("request %s %s on %s", written.outcome.request_id, written.outcome.status.value,
                 "+".join(written.outcome.channels))
        return attrs.evolve(written.outcome, receipts=tuple(receipts))

    def _standing(self, sent: Outcome) -> Status:
        """The status of the request of ``sent`` from its records as they stand."""
        return request_status(r for r in self.storage.records.for_request(sent.request_id) if r.id in sent.record_ids)

    def _commit_relaxed(self, write_it: Callable[[], Any]) -> Any:
        # After the send: a power loss could lose this commit; the row's lease then runs out and
        # a worker sends it again with the same key (docs/operations.md, crash windows).
        with self.storage.db.relaxed():  # type: ignore[attr-defined]
            return write_it()

    def send_many(self, requests: Iterable[Requestish], *, group: int = 100) -> Iterator[Outcome]:
        """Send a stream of requests, yielding one Outcome each, in order, in constant memory.

        A malformed request does not stop the batch: it yields a ``failed`` Outcome whose
        explanation is the error, and nothing is sent or filed for it. So does one a plugin could
        not decide for now (PluginUnavailable: the directory's server down, say), its ``error``
        ``transient``: send that one again later.

        In ``queue`` delivery mode up to ``group`` requests share one commit (group commit:
        one fsync for all), and their outcomes are yielded only once that commit is done. Each
        request is still atomic on its own (a savepoint); an unexpected error rolls back the
        commit it was part of, none of whose outcomes was reported, and propagates (the
        outcomes of commits already done were yielded before). A request for a patient, an
        address or a request id already in the group starts a new commit. Inline delivery
        commits each request before its message leaves, so it is not grouped.
        """
        self._writable()
        if self.config.delivery_mode != "queue" or group <= 1:
            for item in requests:
                yield self._send_or_fail(item)
            return
        chunk: list[Requestish] = []
        for item in requests:
            chunk.append(item)
            if len(chunk) >= group:
                yield from self._send_group(chunk)
                chunk = []
        if chunk:
            yield from self._send_group(chunk)

    def _send_group(self, items: list[Requestish]) -> Iterator[Outcome]:
        """Decide the requests (reads only, no lock held), then write them in one commit. A
        decision may read what an earlier request of the group would write (a per-patient cap,
        the same request id): a request that shares its patient, an address or its id with one
        already decided commits those first, and is decided again afterwards."""
        staged: list[tuple[Decision | Outcome, Trail | None, Requestish]] = []
        seen: set[str] = set()

        def commit() -> list[Outcome]:
            with self.storage.group_commit():
                done = [self._write_or_fail(d, t, i) for d, t, i in staged]
            staged.clear()
            seen.clear()
            return done

        for item in items:
            decided = self._decide_or_fail(item)
            if isinstance(decided[0], Decision) and decided[0].about & seen:
                yield from commit()
                decided = self._decide_or_fail(item)
            staged.append((*decided, item))
            if isinstance(decided[0], Decision):
                seen |= decided[0].about
        if staged:
            yield from commit()

    def _decide_or_fail(self, item: Requestish) -> tuple[Decision | Outcome, Trail | None]:
        try:
            req = self._parse(item)
            trail = self._trail(req)
            return self.decide(req, trail), trail
        except (RequestError, PluginUnavailable) as exc:
            return _failed(item, exc), None

    def _write_or_fail(self, decided: Decision | Outcome, trail: Trail | None, item: Requestish) -> Outcome:
        if isinstance(decided, Outcome):
            return decided
        assert trail is not None
        try:
            return write(self, decided, trail).outcome
        except RequestError as exc:
            return _failed(item, exc)

    def _send_or_fail(self, item: Requestish) -> Outcome:
        try:
            return self.send(item)
        except (RequestError, PluginUnavailable) as exc:
            # PluginUnavailable is raised while deciding (the directory, a renderer), before
            # anything is written: this request only is to be sent again.
            return _failed(item, exc)

    def _parse(self, request: Requestish) -> Request:
        """A Request from the Python API or a FHIR CommunicationRequest, within the configured
        limits (size, depth, id, text); RequestError names what is wrong."""
        limits = self.config.limits
        req = request if isinstance(request, Request) else fhir.parse_request(
            request, limits=limits, zone=self.config.clinic.zone, same_patient=partial(same_patient, self.hooks))
        check_request(req, limits)
        return req

    def _trail(self, req: Request) -> Trail:
        return self.audit.trail(request=req.id, patient=self.audit.patient(req.patient_ref))

    def _writable(self) -> None:
        if self.read_only:
            raise EmrcommError("this host was opened read-only (to check and preview): it sends nothing")

    def preview(self, request: Requestish) -> Outcome:
        """What :meth:`send` would decide for ``request``, with nothing filed, stored or sent.

        Unlike send, every candidate is judged, so the explanation says for each channel why it
        would be chosen, would serve as a fallback, or is rejected (``emrcomm check --patient``).
        """
        req = self._parse(request)
        decision = self.decide(req, dry_run=True)
        if decision.refusal is not None:
            raise decision.refusal
        chosen = decision.chosen
        if chosen is None:
            return outcome(decision, Status.BLOCKED, decision.findings, (), dry_run=True)
        before = decision.verdicts[:decision.verdicts.index(chosen)]
        findings = [*chosen.findings, *(f for v in before for f in v.blocks)]
        status = Status.HELD if chosen.blocks else Status.SENT
        return outcome(decision, status, findings, (), channels=tuple(leg.channel.name for leg in chosen.legs),
                       dry_run=True)

    # after the hand-off --------------------------------------------------------------------------
    def delivery_update(self, update: DeliveryUpdate) -> None:
        """Something happened after hand-off: a delivery report, a read, a recall, a reply, an
        opt-out. A report on a record is appended to it as an event (a repeat changes nothing);
        a reply is filed as a Communication of its own (``inResponseTo`` the record it answers);
        then every plugin hears of it (the opt-out plugin writes the consent ledger). The first
        plugin failure is raised after all have heard it. Inside a transaction of the caller's
        (a front-desk Consent's, one update per address), what it and the plugins write commits
        with that transaction, or not at all."""
        self._writable()
        record = update.record_id
        if record is None and update.provider_id and update.kind != "reply":
            record = self.storage.records.by_provider(update.provider_id)
        if update.kind == "reply" and record is None and update.channel and update.address:
            # A message from an address: it answers the last message the clinic sent there (not
            # emrcomm's own automatic answers: a HELP after a STOP answers the clinic's reminder).
            unreadable: list[Unreadable] = []
            last = self.storage.records.last_to(update.channel, update.address, exclude_categories=ANSWERS,
                                                unreadable=unreadable)
            if last is not None:
                record = last.id
                update = attrs.evolve(update, record_id=record, detail=update.detail or last.request.patient_ref)
            elif unreadable:  # it answers a message this release cannot read: for staff (_file_reply)
                record = unreadable[0].id
                update = attrs.evolve(update, record_id=record)
        with self.storage.transaction():
            trail = self.audit.trail()
            reply = self._file_reply(update, record, trail) if update.kind == "reply" else None
            if update.kind == "reply" and record is None:
                self._unmatched_reply(update)
            kind = UPDATE_EVENTS.get(update.kind)
            if kind is not None and record is not None:
                event = Event(
                    record_id=record, kind=kind, source=Source(update.source), at=update.at,
                    dedup=update.key or f"{record}:{update.kind}:{update.provider_id or ''}:{update.at.isoformat()}",
                    provider_id=update.provider_id, detail=update.detail[:200] if update.kind != "reply" else "",
                    reason="DELIVERY_FAILED" if update.kind == "failed" else None)
                try:
                    file_event(self, event, trail)
                except RecordUnreadable as unreadable:
                    # Answered as a report on an unknown record is (the provider stops retrying),
                    # but kept: a release that reads the record projects it with the rest.
                    self.storage.records.keep(event)
                    log.warning("record %s: its record cannot be read by this release%s; the %s report is kept, "
                                "not filed", record, " (a newer release wrote it)" if unreadable.newer else "", update.kind)
                    kind = None
                if kind is not None and update.kind == "recalled":
                    self._cancel_rest_of(record, update, trail)
                if kind is not None and update.kind == "failed":
                    self._notice_failed(record, update, trail)
            trail.flush()
        if reply is not None:
            update = attrs.evolve(update, reply_record_id=reply)
        failures = self.hooks.delivery_update(update)
        audit_kind = update.kind if update.kind in KINDS else "update"
        patient = self.audit.patient(update.detail) if update.detail.startswith("Patient") else None
        self.audit.record(audit_kind, record=reply or record, channel=update.channel,
                          records=[record] if reply and record else None,
                          provider_id=update.provider_id, patient=patient,
                          status=update.kind if audit_kind == "update" else None)
        if failures:
            plugin, exc = failures[0]
            away = next((e for _, e in failures if isinstance(e, StoreUnavailable)), None)
            if away is not None:  # the database went away under a plugin: the sender is to try again (503)
                raise away
            raise PluginError(f"plugin {plugin!r} failed on a {update.kind} update: {type(exc).__name__}") from exc

    def _unmatched_reply(self, update: DeliveryUpdate) -> None:
        """A message from an address no message of this clinic went to: never dropped, it goes
        to staff (once per message), with the channel and no words."""
        key = update.provider_id or f"{update.channel}|{update.address}|{update.at.isoformat()}"
        raise_item(self.storage, kind="reply", key=f"unmatched|{update.channel}|{key}", patient=update.detail or "unknown",
                   now=self.clock(), description=f"A message came by {update.channel} from an address no message of "
                   "the clinic went to: find who sent it before answering.", reasons=("REPLY_UNMATCHED",))
        log.warning("reply on %s from an address with no message: sent to staff", update.channel)

    def _reply_to_unreadable(self, update: DeliveryUpdate, original: str) -> None:
        """A message from the patient answering a record this release cannot read (its patient and
        request unknown here): never dropped, it goes to staff (once per message), naming that
        record, with the channel and no words, as an unmatched one does."""
        key = update.provider_id or f"{update.channel}|{update.address}|{update.at.isoformat()}"
        raise_item(self.storage, kind="reply", key=f"unreadable|{update.channel}|{key}",
                   patient=update.detail or "unknown", now=self.clock(), record_id=original,
                   description=f"A message came by {update.channel} in answer to a message (record {original}) that "
                   "this version of emrcomm cannot read: find who sent it before answering.",
                   reasons=("REPLY_UNMATCHED",))
        log.warning("reply on %s to record %s, which this release cannot read: sent to staff", update.channel,
                    original)

    def _notice_failed(self, record_id: str, update: DeliveryUpdate, trail: Trail) -> None:
        """A notice reported not delivered: the portal message it announced was not told."""
        notice = self.storage.records.get(record_id)
        if notice is None or notice.role != "notice":
            return
        message = next((r for r in self.storage.records.for_request(notice.request.id) if r.role == "primary"), None)
        if message is not None:
            not_told(self, message.id, notice=record_id, source=Source(update.source), now=update.at, trail=trail)

    def _cancel_rest_of(self, record: str, update: DeliveryUpdate, trail: Trail) -> None:
        """A recalled portal message: the notices of its request not yet sent are cancelled."""
        facts = self.storage.records.facts(record)
        if facts is None:
            return
        for item in self.storage.outbox.for_request(facts.request.id):
            if item.state != "sending" and self.storage.outbox.finish(item.key, owner=None):
                at = after_requeues(self.storage.records.events(item.key), update.at)  # not taken back by one
                file_event(self, Event(record_id=item.key, kind=LegState.CANCELLED, source=Source(update.source),
                                       at=at, dedup=f"{item.key}:cancelled:recalled", reason="RECALLED",
                                       detail="the message it announces was recalled"), trail)

    def _file_reply(self, update: DeliveryUpdate, original: str | None, trail: Trail) -> str | None:
        """File a patient's reply as a Communication from the patient, in response to the record
        it answers. Returns the reply's record id, or None when the update does not say which
        record it answers (or that one cannot be read by this release: the reply goes to staff)."""
        try:
            facts = self.storage.records.facts(original) if original else None
        except RecordUnreadable:
            assert original is not None
            self._reply_to_unreadable(update, original)
            return None
        if facts is None:
            return None
        channel = self.channels.get(update.channel or facts.channel or "")
        channel_name = channel.name if channel else (update.channel or facts.channel)
        key = update.provider_id or fhir.fhir_datetime(update.at)
        reference = None
        if channel is not None and channel.holds_content and update.provider_id:
            try:  # the channel keeps the reply itself (encrypted): the chart points at it
                import uuid

                reference = f"urn:uuid:{uuid.UUID(hex=update.provider_id)}"
            except ValueError:
                reference = None
        now = self.clock()
        reply = reply_facts(facts, channel=channel, channel_name=channel_name, key=key, text=update.text,
                            reference=reference, recorded=now, clinic=self.config.clinic.name, address=update.address)
        if self.storage.records.facts(reply.id) is not None:
            return reply.id  # delivered twice: filed once
        record = self.storage.records.add(reply, None, [Event(
            record_id=reply.id, kind=LegState.RECEIVED, source=Source(update.source), at=update.at,
            dedup=f"{reply.id}:received", provider_id=update.provider_id)])
        failed = self.file_each(record)
        if failed is not None:
            raise PluginError(f"the reply to record {original} could not be filed by plugin {failed.plugin!r} "
                              f"({type(failed.error).__name__}); nothing was lost: deliver the update again")
        trail.add("reply", record=record.id, records=[facts.id], channel=channel_name)
        return record.id

    # reading back --------------------------------------------------------------------------------
    def records(self, **filters: Any) -> dict[str, Any]:
        """Filed Communications as a FHIR searchset Bundle (filters: patient, status, channel,
        category, since, until). A record this release cannot read is not shown: an
        OperationOutcome entry (search.mode outcome) names it, after the others."""
        unreadable: list[Unreadable] = []
        return fhir.searchset((fhir.communication(r) for r in self.storage.records.find(**filters, unreadable=unreadable)),
                              lambda: [fhir.unreadable_entry(u.id, u.reason, newer=u.newer) for u in unreadable])

    def record(self, record_id: str) -> Record | None:
        """One record as the chart shows it now; None when there is none. Raises
        ``emrcomm.storage.RecordUnreadable`` (``newer``: a newer release wrote it) when its
        stored facts cannot be read by this release."""
        return self.storage.records.get(record_id)

    def check(
        self, text: str, *, channel: str, category: str = "appointment-reminder", language: str = "en"
    ) -> tuple[Finding, ...]:
        """Findings for a text on a channel, without a patient: what ``emrcomm check`` prints.
        The text is read with its accents composed (NFC), as a send carries it, and judged in the
        words the channel's form sends, as a send judges it (``emrcomm.forms.in_form``): an SMS
        spelled in GSM-7, an email without its "Reply STOP". Spans count in those words.

        Raises RequestError for an unknown channel, category or language.
        """
        if channel not in self.channels:
            raise RequestError(f"unknown channel {channel!r}; choose one of: {', '.join(sorted(self.channels))}")
        check_text(text, "the text", self.config.limits)
        if category not in {c.value for c in Category}:
            raise RequestError(f"unknown category {category!r}; choose one of: {', '.join(c.value for c in Category)}")
        if language not in CHECK_LANGUAGES:
            raise RequestError(f"unknown language {language!r}; choose one of: {', '.join(CHECK_LANGUAGES)}")
        text = unicodedata.normalize("NFC", text)
        req = Request("Patient/check", category, id="check", text=text)
        message = Message(request=req, text=text, language=language)
        recipient = _CHECK_RECIPIENT
        route = Route(channel=channel, address=_CHECK_ADDRESSES.get(channel, ""))
        # As pipeline.decide.judge does: the words that leave are inspected and validated.
        message, facts = in_words_sent(self.hooks, self.channels[channel].form, message, self.hooks.inspect(message))
        found = tuple(f for f in facts if f.code == "CHECK_FAILED")
        found += self.hooks.validate(message, recipient, self.channels[channel], route, facts, self.clock())
        return tuple(f for f in found if f.code not in RECIPIENT_CODES and f.severity is not Severity.INFO)

    def requeue(self, key: str | None = None) -> int:
        """Put one dead letter (by its record id, with the legs of its request that died with
        it), or every dead letter, back in the outbox; returns how many rows (:meth:`requeue_dead`
        says which, and which stayed dead)."""
        return len(self.requeue_dead(key).records)

    def requeue_dead(self, key: str | None = None) -> Requeued:
        """As :meth:`requeue`, saying which rows went back and which dead letters stayed dead
        because their record cannot be read by this release (corrupted, or written by a newer
        release): nothing could be sent from them, nor their requeue filed; the others go back all
        the same."""
        self._writable()
        now = self.clock()
        outbox = self.storage.outbox
        with self.storage.transaction():
            if key is None:
                dead = [item.key for item in outbox.dead(limit=None)]
            else:
                row = outbox.get(key)
                dead = [item.key for item in (outbox.for_request(row.request_id) if row else ())
                        if item.state == "dead"]
            keys: list[str] = []
            unreadable: dict[str, str] = {}
            for k in dead:
                try:
                    self.storage.records.facts(k)
                except RecordUnreadable as exc:
                    unreadable[k] = str(exc)
                    log.warning("outbox %s: its record cannot be read by this release; not requeued", k)
                    continue
                keys += outbox.requeue(now=now, key=k)
            trail = self.audit.trail()
            for k in keys:
                file_event(self, Event(record_id=k, kind=Note.REQUEUED, source=Source.STAFF, at=now,
                                       dedup=f"{k}:requeued:{now.isoformat()}"), trail)
            if keys:
                trail.add("requeued", records=keys)
            trail.flush()
        return Requeued(tuple(keys), unreadable)


@attrs.frozen
class Requeued:
    """What a requeue did: ``records`` went back in the outbox; ``unreadable`` (record id: why)
    stayed dead, their record unreadable by this release."""

    records: tuple[str, ...]
    unreadable: Mapping[str, str] = attrs.field(factory=dict)


CHECK_LANGUAGES = ("en", "fr")
_CHECK_ADDRESSES = {"sms": "+15146712345", "email": "check@example.org", "portal": ""}
_CHECK_RECIPIENT = Recipient(
    patient_ref="Patient/check",
    contact_points=(ContactPoint("sms", _CHECK_ADDRESSES["sms"], verified=True),
                    ContactPoint("email", _CHECK_ADDRESSES["email"], verified=True)),
    consents=tuple(ConsentGrant(ch, p) for ch in ("sms", "email", "portal") for p in Purpose),
    time_zone="America/Toronto",
)


def _failed(item: Requestish, exc: RequestError | PluginUnavailable) -> Outcome:
    request_id = item.id if isinstance(item, Request) else "(unparsed)"
    if isinstance(item, Mapping) and item.get("id"):
        request_id = str(item["id"])
    if isinstance(exc, PluginUnavailable):
        log.warning("request %s not decided, to be sent again: %s", escape_controls(request_id[:64]), exc)
    return Outcome(request_id=request_id, status=Status.FAILED, explanation=(str(exc),), error=exc.issue_code)


__all__ = ["Host", "record_id"]
