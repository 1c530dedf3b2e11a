"""Delivering one outbox row, the same way inline and in the worker: check it may still go,
hand it to the channel's transport, and append what happened to its record in one commit with
the outbox change (accepted and the row gone; a retry with backoff; a dead letter; expired;
cancelled because the patient opted out meanwhile). A leg after it waits while it is there.
A row leaving long after its decision asks the directory again first (``asked_again``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from attrs import frozen

from emrcomm.audit import Trail
from emrcomm.delivery import DeliveryError, PermanentDeliveryError, TransientDeliveryError, described
from emrcomm.errors import PluginError, PluginUnavailable, RecipientRefused
from emrcomm.inbox import raise_item, settle_follow_up
from emrcomm.lifecycle.events import Event, Note, Source
from emrcomm.lifecycle.projection import RecordFacts, after_requeues
from emrcomm.lifecycle.states import LegState
from emrcomm.model import Category, Channel, Message, Receipt, Recipient, Record, Route, SendingWindow
from emrcomm.outbox import window as windows
from emrcomm.pipeline.records import LINK_SLOT, LINK_WITHHELD
from emrcomm.plugin.contract import Delivery
from emrcomm.storage.database import StoreUnavailable, server_refuses
from emrcomm.storage.outbox import Item
from emrcomm.storage.records import RecordUnreadable
from emrcomm.storage.times import iso

if TYPE_CHECKING:
    from emrcomm.host import Host
    from emrcomm.pipeline.late import LateRecords

log = logging.getLogger("emrcomm.delivery")

# The longest a provider's Retry-After puts the next try off, when the policy's backoff_cap is
# shorter: a provider asking for decades (or a date past 9999) gets the row back within the hour.
RETRY_AFTER_CEILING = 3600.0
# A row written before rows kept their sending window, whose patient cannot be found again: the
# narrowest built-in window (Florida's), in every clinic zone.
FALLBACK_WINDOW = (dt.time(8, 0), dt.time(20, 0))
# ``[delivery] recheck_after`` (seconds): a row leaving this long or longer after its request was
# decided (held for quiet hours, queued behind a rate limit or an outage) asks the directory for
# the patient again, and the consent validators judge its leg again, before it goes.
RECHECK_AFTER = 300.0
# What the validators find that means the patient's consent or preference no longer lets the
# leg go (docs/rule-catalogue.md A): the findings a recheck acts on. Others (content, form, the
# hour) were judged when the request was decided and the row keeps what they said.
CONSENT_CODES = frozenset({"CONSENT_MISSING", "CONSENT_REVOKED", "PREFERENCE_IGNORED",
                           "UNENCRYPTED_EMAIL_NOT_ACCEPTED"})
RECORD_ATTEMPTS = 3  # tries at least to record that a message left; more while its lease holds
RECORD_RETRY_PAUSE = 0.5  # the longest pause between those tries (seconds)
# How long a caller waiting for ``send`` keeps trying to record a message that left while the
# database cannot be reached (a restart, a failover: seconds), within the row's lease: a record
# not written leaves the row leased, and a worker sends the message again when the lease runs out.
OUTAGE_RECORD_WAIT = 10.0
Commit = Callable[[Callable[[], Any]], Any]


@frozen
class RetryPolicy:
    """``[delivery]``: how often to try, and how long to wait between tries."""

    max_attempts: int = 8
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0

    def wait(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds after failed attempt ``attempt`` (1-based): ``base * 2**(attempt-1)`` capped at
        ``cap``, jittered down to 50-100 % so that retries of one outage spread out."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempt - 1))
        return ceiling * (0.5 + rand() / 2)


@frozen
class Delivered:
    """How one delivery ended: ``accepted`` (with the receipt), ``retry``, ``undeliverable``,
    ``expired``, ``cancelled``, ``held`` (its sending window closed: back in the outbox until it opens),
    ``newer`` (written by a newer release: given back unsent), ``unchecked`` (the directory could
    not be asked again: given back unsent, to try later); ``kept`` is False when the lease had passed to another process
    (the message left all the same, and is recorded)."""

    result: str
    receipt: Receipt | None = None
    error: BaseException | None = None
    kept: bool = True
    window: float | None = None  # seconds between the provider's answer and the commit that records it
    not_filed: str | None = None  # a filer that could not file the outcome (the message left all the same)
    # The database refused to record that it left (SQLSTATE class 42: a privilege the role lacks):
    # the error's class and SQLSTATE. The row was removed alone; the record stays in progress.
    not_recorded: str | None = None


def file_event(host: Host, event: Event, trail: Trail | None = None) -> tuple[Record | None, str | None]:
    """Append ``event`` and give the filers the record projected anew (a failing filer is logged
    and audited; the event stands). Returns the record (None when nothing changed: a repeat, an
    unknown record) and the first filer that failed."""
    record = host.storage.records.append(event)
    if record is None:
        return None, None
    failed = host.file_each(record)
    if failed is not None and trail is not None:
        trail.add("record.not_filed", record=record.id, plugin=failed.plugin, reasons=["RECORD_NOT_FILED"])
    return record, failed.plugin if failed is not None else None


def message_for(facts: RecordFacts, item: Item, channels: dict[str, Channel]) -> Message:
    """The words an outbox row delivers, a notice's link derived again from the message id."""
    text, html = facts.text or "", item.payload.html
    if item.payload.link_from is not None:
        link = link_for(channels, item.payload.link_from)
        text = text.replace(LINK_WITHHELD, link)
        html = html.replace(LINK_SLOT, link) if html else html
    request = facts.request if item.expires is None else _with_expiry(facts, item.expires)
    return Message(request=request, text=text, language=facts.language, subject=facts.subject, html=html,
                   template=item.payload.template)


def _with_expiry(facts: RecordFacts, expires: dt.datetime) -> Any:
    import attrs

    return attrs.evolve(facts.request, expires=expires)


def link_for(channels: dict[str, Channel], source: tuple[str, str]) -> str:
    channel = channels.get(source[0])
    linker = getattr(channel.transport, "link_for", None) if channel is not None else None
    if linker is None:
        raise PluginError(f"channel {source[0]!r} no longer gives links; the notice cannot be delivered")
    return str(linker(source[1]))


def deliver(host: Host, item: Item, facts: RecordFacts | None, *, owner: str, source: Source, policy: RetryPolicy,
            commit: Commit, rand: Callable[[], float] = random.random, recipient: Recipient | None = None,
            record_while_leased: bool = False, late: LateRecords | None = None) -> Delivered:
    """Deliver ``item`` (leased to ``owner``) and record what happened (see the module docstring).
    ``recipient``: the patient as decided, when the message leaves while the request is decided.
    ``record_while_leased``: a message that left is recorded again for as long as the row's lease
    holds (a worker), not only a few times (a caller waiting for ``send``). ``late``: where a
    message that left while the database could not be reached is handed, to be recorded for as
    long as the lease holds once the caller has stopped waiting."""
    now = host.clock()

    def new_trail() -> Trail:
        return host.audit.trail(request=item.request_id,
                                patient=host.audit.patient(facts.request.patient_ref) if facts else None)

    trail = new_trail()
    if facts is None:
        commit(lambda: _end(host, item, None, LegState.UNDELIVERABLE, "DELIVERY_FAILED", "its record is missing",
                            owner=owner, source=source, trail=trail))
        return Delivered("undeliverable")
    unreadable = item.payload.unreadable
    if unreadable is not None and unreadable.newer:
        return _newer(host, item, facts, unreadable.said, now=now, owner=owner, source=source, policy=policy,
                      commit=commit, trail=trail)
    if unreadable is not None:
        log.error("outbox %s: its row cannot be read by this release; kept as a dead letter, not sent", item.key)
        commit(lambda: _end(host, item, facts, LegState.UNDELIVERABLE, "DELIVERY_FAILED",
                            f"{unreadable.said}: not sent", owner=owner, source=source, trail=trail))
        return Delivered("undeliverable")
    if item.taken_over and item.attempts > policy.max_attempts:
        # Every claim counts an attempt, a takeover too: a row whose sends never return (a provider
        # that takes the connection and never answers) or whose workers keep dying would otherwise
        # be sent again every lease, for good, and may reach the patient each time.
        said = (f"taken over from a deliverer whose lease ran out, after {item.attempts - 1} tries: its sends did "
                "not return (a provider that hangs) or its deliverers died; it may have been sent: check with the "
                "provider before requeueing it")
        commit(lambda: _end(host, item, facts, LegState.UNDELIVERABLE, "DELIVERY_FAILED", said, owner=owner,
                            source=source, trail=trail))
        return Delivered("undeliverable")
    if item.taken_over:
        log.warning("outbox %s: taken over from a deliverer whose lease ran out; sending again", item.key)
    if item.expires is not None and item.expires <= now:
        commit(lambda: _end(host, item, facts, LegState.EXPIRED, "MESSAGE_EXPIRED", "expired before delivery",
                            owner=owner, source=source, trail=trail))
        return Delivered("expired")
    channel = host.channels.get(item.channel)
    if channel is None:
        commit(lambda: _end(host, item, facts, LegState.UNDELIVERABLE, "DELIVERY_FAILED",
                            f"channel {item.channel!r} is not registered", owner=owner, source=source, trail=trail))
        return Delivered("undeliverable")
    revoked = _revoked_by(host, channel, item, facts)
    if revoked is not None:
        commit(lambda: _end(host, item, facts, LegState.CANCELLED, "CONSENT_REVOKED", revoked, owner=owner,
                            source=source, trail=trail))
        return Delivered("cancelled")
    # QUIET_HOURS again, as it leaves: a retry, a requeued dead letter or a takeover at night is
    # held until the window opens (a few comparisons; the window travels in the row).
    opening = windows.closed_until(_window_of(host, item, facts, recipient), now, host.config.clinic.time_zones,
                                   key=item.key)
    if opening is not None:
        if item.expires is not None and item.expires <= opening:
            commit(lambda: _end(host, item, facts, LegState.EXPIRED, "MESSAGE_EXPIRED",
                                "its sending window opens after it expires", owner=owner, source=source, trail=trail))
            return Delivered("expired")
        commit(lambda: _hold(host, item, owner=owner, source=source, now=now, until=opening, trail=trail))
        return Delivered("held")
    if recipient is None and now - facts.recorded >= host.recheck_after:
        # Decided long ago: the clinic may have withdrawn consent in the EMR since (a Consent set
        # inactive, the patient recorded deceased). A fresh row (the worker's usual one) and an
        # inline send, decided just now, are not asked again.
        try:
            withdrawn = asked_again(host, channel, item, facts, now)
        except PluginUnavailable as exc:
            return _unchecked(host, item, exc, now=now, owner=owner, policy=policy, commit=commit)
        except Exception as exc:  # a directory or validator that fails: not sent (fail closed), retried
            failure = exc
            result = commit(lambda: _failed_attempt(host, item, facts, failure, owner=owner, source=source,
                                                    policy=policy, rand=rand, trail=trail))
            return Delivered(result, error=failure)
        else:
            if withdrawn is not None:
                code, said = withdrawn
                commit(lambda: _end(host, item, facts, LegState.CANCELLED, code, said, owner=owner, source=source,
                                    trail=trail))
                return Delivered("cancelled")
    error: Exception | None = None
    try:
        delivery = Delivery(message_for(facts, item, dict(host.channels)), item.address or "", item.key,
                            recipient=recipient, attempt=item.attempts)
        # Watched, not interrupted: a send past its bound is reported (emrcomm.pipeline.watch).
        sending = host.sends.begin(item.key, channel.name, channel.plugin or channel.name, item.held_until, owner)
        try:
            receipt = channel.transport.send(delivery)
        finally:
            host.sends.end(sending)
    except Exception as exc:
        error = exc
    else:
        if not isinstance(receipt, Receipt):
            error = _no_receipt(channel, receipt)
    if isinstance(error, PermanentDeliveryError):
        refused = described(error)
        commit(lambda: _end(host, item, facts, LegState.UNDELIVERABLE, "DELIVERY_FAILED", refused,
                            owner=owner, source=source, trail=trail))
        return Delivered("undeliverable", error=error)
    if error is not None:
        failure = error
        result = commit(lambda: _failed_attempt(host, item, facts, failure, owner=owner, source=source,
                                                policy=policy, rand=rand, trail=trail))
        return Delivered(result, error=error)
    answered = time.perf_counter()
    # From here the message has left: it must never be sent again. The record is written again
    # if writing it fails (a locked, busy or full database) for as long as the lease holds: until
    # then no other worker may take the row and send it again, and a store that could not be
    # written for a moment (a full disk freed) often can be again. Then, as a last resort, the row
    # is removed alone so that no worker sends it twice (the record then stays in progress); but
    # never while the database cannot be reached (below).
    # The lease as this process counts it (its monotonic clock, from before the claim), never
    # lease_until against the host's clock: on PostgreSQL the server's clock times the lease.
    held_until = item.held_until if record_while_leased and item.held_until is not None else -math.inf
    outage_until = min(time.monotonic() + OUTAGE_RECORD_WAIT,
                       item.held_until if item.held_until is not None else -math.inf)

    def record() -> Delivered:
        kept, not_filed = commit(lambda: _accepted(host, item, receipt, owner=owner, source=source,
                                                   trail=new_trail()))
        return Delivered("accepted", receipt, kept=kept, window=time.perf_counter() - answered, not_filed=not_filed)

    def removed_unrecorded(why: str, refusal: str | None = None) -> Delivered:
        """The last resort: the row removed alone, so that no worker sends the message again."""
        commit(lambda: host.storage.outbox.finish(item.key, owner=owner))
        log.error("outbox %s: sent; its record could not say so (%s) and stays in progress", item.key, why)
        return Delivered("accepted", receipt, kept=True, window=time.perf_counter() - answered, not_recorded=refusal)

    for attempt in itertools.count(1):
        try:
            return record()
        except Exception as exc:
            if server_refuses(exc):  # not tried again for the lease: the grants will not change meanwhile
                refusal = f"{type(exc).__name__}, SQLSTATE {getattr(exc, 'sqlstate', '')}"
                log.error("outbox %s: sent, but the database refuses to record it (%s: a privilege the role "
                          "lacks); not tried again", item.key, refusal)
                return removed_unrecorded(refusal, refusal)
            until = max(held_until, outage_until) if isinstance(exc, StoreUnavailable) else held_until
            left = until - time.monotonic()
            if attempt <= RECORD_ATTEMPTS or attempt % 20 == 0:
                log.error("outbox %s: sent, but recording it failed (%s), try %d; %.0f s of its lease left",
                          item.key, type(exc).__name__, attempt, max(left, 0.0))
            if attempt >= RECORD_ATTEMPTS and left <= 0:
                break
            pause = min(0.05 * attempt, RECORD_RETRY_PAUSE)
            time.sleep(pause if attempt < RECORD_ATTEMPTS else min(pause, left))
    # Once more, as the lease ends: a database back just now takes the record with the row's end
    # (while the row is still this deliverer's, or neither is written); else the row's end alone.
    try:
        return record()
    except StoreUnavailable:
        # Not the row's end alone: a database back between this try and that write would keep
        # the end without the record, 'queued' for good for a message the patient had. The row
        # stays leased; ``late`` keeps trying to record it while the lease holds; after that it
        # is taken over and sent again with the same key (the in-flight window), and recorded.
        # The caller is told the store is away.
        if late is not None and item.held_until is not None and item.held_until > time.monotonic():
            log.error("outbox %s: sent, but the database cannot be reached to record it; tried again while its "
                      "lease holds", item.key)
            late.keep_trying(item.key, record, item.held_until)
        else:
            log.error("outbox %s: sent, but the database cannot be reached to record it; left leased, to be "
                      "taken over when its lease runs out", item.key)
        raise
    except Exception as exc:
        return removed_unrecorded(type(exc).__name__)


def asked_again(host: Host, channel: Channel, item: Item, facts: RecordFacts,
                now: dt.datetime) -> tuple[str, str] | None:
    """Whether ``item``'s leg may still go as the directory gives the patient now and the
    validators judge it now, as when its request was decided (``emrcomm_find_recipient``, then
    ``emrcomm_validate`` for its channel, address and purpose). None: it may; else the rule code
    and the words its record files (the patient no longer given: ``RECIPIENT_UNKNOWN``; a
    consent or preference finding: its code; a patient the chart refuses now: ``RECIPIENT_REFUSED``
    and its reason). Raises PluginUnavailable when the directory or a validator cannot
    answer now, and PluginError when it or a validator fails."""
    request = facts.request
    if request.category.answers_patient:
        # An answer to the patient's own message goes where that came from, whatever consent is
        # on file; what stops it after an opt-out is the ledger (_revoked_by).
        return None
    try:
        found = host.hooks.find_recipient(request)
    except RecipientRefused as exc:  # recorded deceased or inactive since, say: its reason (ids only)
        log.warning("outbox %s: plugin %s refuses its patient now (RECIPIENT_REFUSED); not sent", item.key, exc.plugin)
        return ("RECIPIENT_REFUSED", f"refused by the chart after the message was decided: {exc.reason}"[:300])
    if found is None:
        log.warning("outbox %s: the directory no longer gives its patient; not sent", item.key)
        return ("RECIPIENT_UNKNOWN", "no longer given by the directory: removed or merged away after the message "
                                     "was decided")
    route = Route(channel.name, item.address or "", role=facts.role, template=item.payload.template)
    message = message_for(facts, item, dict(host.channels))
    findings = host.hooks.validate(message, found, channel, route, facts.findings, now)
    failed = next((f for f in findings if f.code == "CHECK_FAILED"), None)
    if failed is not None:
        raise PluginError(f"plugin {failed.plugin!r}: its check could not run again before the message left")
    withdrawn = next((f for f in findings if f.blocks and f.code in CONSENT_CODES), None)
    if withdrawn is None:
        return None
    log.warning("outbox %s: %s found again before it left (plugin %s); not sent", item.key, withdrawn.code,
                withdrawn.plugin)
    said = {"CONSENT_REVOKED": "withdrawn in the chart after the message was decided"}.get(
        withdrawn.code, "found in the chart after the message was decided")
    return withdrawn.code, said


def _unchecked(host: Host, item: Item, exc: PluginUnavailable, *, now: dt.datetime, owner: str,
               policy: RetryPolicy, commit: Commit) -> Delivered:
    """The directory or a validator cannot say now whether ``item`` may still go (``exc`` names
    the plugin and its server): not sent (fail closed) and given back, its attempt too, due again
    after the server's Retry-After, else one backoff_base; never failed for that alone. Past its
    expiry it expires as any row does."""
    asked = exc.retry_after if isinstance(exc.retry_after, int | float) and exc.retry_after > 0 else None
    wait = min(asked, max(policy.backoff_cap, RETRY_AFTER_CEILING)) if asked is not None else policy.backoff_base
    later = now + dt.timedelta(seconds=wait)
    said = ("not sent: a check it needs (the directory, a validator) could not be asked again whether it may still "
            "go; tried again later")
    commit(lambda: host.storage.outbox.release(item.key, owner=owner, now=now, error=said, not_before=later))
    log.warning("outbox %s: a check it needs cannot answer now (%s); given back unsent, due again in %.0f s",
                item.key, exc, wait)
    return Delivered("unchecked")


def _newer(host: Host, item: Item, facts: RecordFacts | None, said: str, *, now: dt.datetime, owner: str,
           source: Source, policy: RetryPolicy, commit: Commit, trail: Trail) -> Delivered:
    """``item``, or its record (``facts`` None), written by a newer release (``said``: how)."""
    if item.expires is not None and item.expires <= now:
        # No worker of that release came before it expired (the fleet was rolled back): it
        # ends as any message that expires unsent, its expiry being a column of its row.
        commit(lambda: _end(host, item, facts, LegState.EXPIRED, "MESSAGE_EXPIRED",
                            "expired before delivery: written by a newer release, no worker of which took it",
                            owner=owner, source=source, trail=trail, readable=facts is not None))
        return Delivered("expired")
    # A fleet part-way through an upgrade: a worker of the release that wrote it delivers it.
    # Given back unsent, its attempt too, due again after one backoff_base (so that workers
    # of this release do not claim it at every poll); the record stays queued.
    later = now + dt.timedelta(seconds=policy.backoff_base)
    commit(lambda: host.storage.outbox.release(item.key, owner=owner, now=now, error=said, not_before=later))
    log.warning("outbox %s: written by a newer release; given back for a worker that reads it", item.key)
    return Delivered("newer")


def unreadable_record(host: Host, item: Item, error: RecordUnreadable, *, owner: str, source: Source,
                      policy: RetryPolicy, commit: Commit) -> Delivered:
    """Settle ``item`` (leased to ``owner``) whose record cannot be read (``error``): nothing says
    what to send, and nothing can be appended to the record. One written by a newer release is
    given back unsent for a worker of that release, as a row whose payload a newer release
    wrote (ended expired once the row's expiry has passed). A corrupted one is kept as a dead
    letter, as a row whose record is missing, the legs after it cancelled; never left leased, to
    be taken over and fail again every lease."""
    trail = host.audit.trail(request=item.request_id, patient=None)
    if error.newer:
        return _newer(host, item, None, str(error), now=host.clock(), owner=owner, source=source, policy=policy,
                      commit=commit, trail=trail)
    said = f"{error}: not sent"
    log.error("outbox %s: its record cannot be read by this release; kept as a dead letter, not sent",
              item.key)
    commit(lambda: _end(host, item, None, LegState.UNDELIVERABLE, "DELIVERY_FAILED", said, owner=owner,
                        source=source, trail=trail, readable=False))
    return Delivered("undeliverable")


def _no_receipt(channel: Channel, answer: object) -> PermanentDeliveryError:
    """A transport that returned something other than a Receipt broke the contract: it may have
    handed the message over, so it is not tried again on its own; it ends as a dead letter that
    names the plugin, for staff to requeue once the plugin is fixed."""
    plugin = channel.plugin or channel.name
    log.error("plugin %s: its transport answered %s, not emrcomm.Receipt", plugin, type(answer).__name__)
    return PermanentDeliveryError(
        f"plugin {plugin!r}: its transport answered {type(answer).__name__}, not emrcomm.Receipt (it may have sent "
        "the message): the plugin needs a fix",
        provider=plugin, reason="protocol", ambiguous=True)


def _accepted(host: Host, item: Item, receipt: Receipt, *, owner: str, source: Source,
              trail: Trail) -> tuple[bool, str | None]:
    now = host.clock()
    kept = host.storage.outbox.finish(item.key, owner=owner)
    mark = receipt.provider_id or f"attempt-{item.attempts}"
    _, not_filed = file_event(host, Event(record_id=item.key, kind=LegState.ACCEPTED, source=source,
                                          at=receipt.at or now, dedup=f"{item.key}:accepted:{mark}",
                                          provider_id=receipt.provider_id), trail)
    trail.add("sent", record=item.key, channel=item.channel, provider_id=receipt.provider_id)
    if item.last_error is not None:  # it failed before: staff may have been asked to reach the patient
        settle_follow_up(host.storage, request_id=item.request_id, record_id=item.key, now=now)
    if item.payload.link_from is not None:
        _told(host, item, source=source, at=receipt.at or now, trail=trail)
    trail.flush()
    if not kept:
        log.warning("outbox %s: sent, but its lease had passed to another deliverer", item.key)
    return kept, not_filed


def _window_of(host: Host, item: Item, facts: RecordFacts, recipient: Recipient | None) -> SendingWindow | None:
    """The window ``item`` must leave in: the one kept in its row; for a row written before rows
    kept it (payload version 2), the hook's answer now for the patient as found now. When the
    patient cannot be found (or finding them fails), fail closed: ``FALLBACK_WINDOW`` in every
    clinic zone, unless the message is one that goes whatever the hour (an answer to the
    patient's own message, urgent priority)."""
    if item.payload.window_known:
        return item.payload.window
    request = facts.request
    if request.category.answers_patient or request.priority == "urgent":
        return None
    channel = host.channels.get(item.channel)
    if channel is None:
        return None  # ends undeliverable below, unsent
    try:
        found = recipient or host.hooks.find_recipient(request)
        if found is not None:
            return host.hooks.sending_window(message_for(facts, item, dict(host.channels)), found, channel)
    except Exception as exc:
        log.warning("outbox %s: its sending window could not be asked again (%s); the clinic's default applies",
                    item.key, type(exc).__name__)
    start, end = FALLBACK_WINDOW
    return SendingWindow(start, end, tuple(host.config.clinic.time_zones))


def _hold(host: Host, item: Item, *, owner: str, source: Source, now: dt.datetime, until: dt.datetime,
          trail: Trail) -> None:
    if not host.storage.outbox.hold(item.key, owner=owner, now=now, not_before=until):
        log.warning("outbox %s: not held: its lease had passed to another deliverer", item.key)
        return
    file_event(host, Event(record_id=item.key, kind=LegState.HELD, source=source, at=now,
                           dedup=f"{item.key}:held:{iso(now)}", reason="QUIET_HOURS", until=until), trail)
    trail.add("held", record=item.key, channel=item.channel, reasons=["QUIET_HOURS"])
    trail.flush()
    log.info("outbox %s: held until %s (QUIET_HOURS)", item.key, iso(until))


def _failed_attempt(host: Host, item: Item, facts: RecordFacts, exc: BaseException, *, owner: str, source: Source,
                    policy: RetryPolicy, rand: Callable[[], float], trail: Trail) -> str:
    reason = exc.reason if isinstance(exc, DeliveryError) else type(exc).__name__
    said = described(exc)  # the reason and what the provider said: what staff read in `emrcomm outbox`
    if item.attempts >= policy.max_attempts:
        _end(host, item, facts, LegState.UNDELIVERABLE, "DELIVERY_FAILED",
             f"{said}; gave up after {item.attempts} attempts", owner=owner, source=source, trail=trail)
        return "undeliverable"
    now = host.clock()
    wait = policy.wait(item.attempts, rand)
    asked = exc.retry_after if isinstance(exc, TransientDeliveryError) else None
    if isinstance(asked, int | float) and asked > 0:  # (NaN is not > 0)
        wait = max(wait, min(asked, max(policy.backoff_cap, RETRY_AFTER_CEILING)))
    due = now + dt.timedelta(seconds=wait)
    window = item.payload.window if item.payload.window_known else None  # an old row: checked when it leaves
    opening = windows.closed_until(window, due, host.config.clinic.time_zones, key=item.key)
    if opening is not None:  # not at night: when the window opens
        due, wait = opening, (opening - now).total_seconds()
    host.storage.outbox.retry(item.key, owner=owner, now=now, not_before=due, error=said)
    file_event(host, Event(record_id=item.key, kind=Note.ATTEMPT_FAILED, source=source, at=now,
                           dedup=f"{item.key}:attempt-failed:{item.attempts}:{iso(now)}", detail=said[:200]),
               trail)
    trail.add("delivery.failed", record=item.key, channel=item.channel, error=type(exc).__name__, status=reason)
    trail.flush()
    # The log says what failed, never the provider's words (they may echo the message): those
    # stay in the outbox's last_error, for staff.
    status = f", status {exc.status}" if isinstance(exc, DeliveryError) and exc.status is not None else ""
    log.info("outbox %s: attempt %d failed (%s: %s%s); next in %.1f s", item.key, item.attempts, reason,
             type(exc).__name__, status, wait)
    return "retry"


def _end(host: Host, item: Item, facts: RecordFacts | None, state: LegState, reason: str, detail: str, *,
         owner: str | None, source: Source, trail: Trail, readable: bool = True) -> None:
    """A leg that will not be sent, and the legs after it (a notice whose message did not go).
    A dead letter (undeliverable) stays in the outbox for ``emrcomm outbox requeue``; an expired
    or cancelled leg leaves it. ``readable`` False: ``item``'s record cannot be read, and is left
    as it is (the row's ``last_error`` says why)."""
    now = host.clock()
    later = host.storage.outbox.later_legs(item.key)
    kind = {LegState.EXPIRED: "expired", LegState.CANCELLED: "cancelled"}.get(state, "delivery.dead")
    for each, what, why in [(item, state, detail), *((x, LegState.CANCELLED, "the leg before it was not sent")
                                                      for x in later)]:
        if state is LegState.UNDELIVERABLE:
            host.storage.outbox.bury(each.key, owner=owner if each is item else None, now=now, error=why)
        else:
            host.storage.outbox.finish(each.key, owner=owner if each is item else None)
        if each is item and not readable:
            trail.add(kind, record=each.key, channel=each.channel, reasons=[reason])
            continue
        at = after_requeues(host.storage.records.events(each.key), now)
        try:
            file_event(host, Event(record_id=each.key, kind=what, source=source, at=at,
                                   dedup=f"{each.key}:{what.value}:{iso(at)}", reason=reason, detail=why[:200]), trail)
        except RecordUnreadable:  # a later leg's record unreadable too (a newer release wrote the request)
            log.warning("outbox %s: its record cannot be read by this release; its end is not filed", each.key)
        trail.add(kind, record=each.key, channel=each.channel, reasons=[reason])
    notices = ((each, _announced_by(host, each, facts if each is item else None,
                                    by_record=readable or each is not item)) for each in (item, *later))
    try:
        notice, message_id = next(((n, m) for n, m in notices if m is not None), (None, None))
        if notice is not None and message_id is not None:
            not_told(host, message_id, notice=notice.key, source=source, now=now, trail=trail)
    except RecordUnreadable:  # the portal message's record, or its notice's, unreadable: nothing to file
        log.warning("outbox %s: a record of its request cannot be read by this release; not told not filed",
                    item.key)
    trail.flush()
    log.warning("outbox %s: %s (%s)", item.key, state.value, reason)


def _announced_by(host: Host, leg: Item, facts: RecordFacts | None, *, by_record: bool = True) -> str | None:
    """The id of the portal message that ``leg`` is the notice of (None: it is not a notice).
    Its payload names it; a row whose payload cannot be read is known by its record (a notice's
    role), and the message it announces is its request's primary leg kept where it is held (a
    payload reference), as ``decide.announced`` chose it."""
    if leg.payload.link_from is not None:
        return leg.payload.link_from[1]
    if leg.payload.unreadable is None or not by_record:
        return None
    own = facts if facts is not None else host.storage.records.facts(leg.key)
    if own is None or own.role != "notice":
        return None
    return next((r.id for r in host.storage.records.for_request(leg.request_id)
                 if r.role == "primary" and r.payload_reference is not None), None)


def not_told(host: Host, message_id: str, *, notice: str, source: Source, now: dt.datetime, trail: Trail) -> None:
    """The notice ``notice`` of portal message ``message_id`` ended unsent (or was reported not
    delivered): if the message itself left, the patient was not told (``PATIENT_NOT_TOLD`` on its
    record, a task for staff), as when no notice could be chosen at all."""
    message = host.storage.records.get(message_id)
    if message is None or message.state not in (LegState.ACCEPTED, LegState.DELIVERED):
        return  # not sent (its notice was cancelled with it), or read: nothing to tell
    file_event(host, Event(record_id=message_id, kind=Note.NOT_TOLD, source=source, at=now,
                           dedup=f"{message_id}:not-told:{notice}"), trail)
    raise_item(host.storage, kind="unannounced", key=message_id, patient=message.request.patient_ref, now=now,
               request_id=message.request.id, record_id=message_id, message_id=message_id,
               description="The notice of this portal message did not reach the patient: tell them it is "
                           "waiting, or give them the link in person.")


def _told(host: Host, notice: Item, *, source: Source, at: dt.datetime, trail: Trail) -> None:
    """A notice sent after its message was marked not told (staff requeued it): now it is."""
    assert notice.payload.link_from is not None
    message_id = notice.payload.link_from[1]
    if any(e.kind is Note.NOT_TOLD for e in host.storage.records.events(message_id)):
        file_event(host, Event(record_id=message_id, kind=Note.ANNOUNCED, source=source, at=at,
                               dedup=f"{message_id}:announced:{notice.key}"), trail)


def _revoked_by(host: Host, channel: Channel, item: Item, facts: RecordFacts) -> str | None:
    """The source of the revocation when the consent ledger's last word for this address is one
    (STOP after the row was queued or held); None when the row may go. What still goes after an
    opt-out is what the optout plugin lets through when deciding (docs/rule-catalogue.md B): the
    answer to HELP, and the confirmation of the current opt-out, filed since its first STOP. A
    START's confirmation, or an earlier opt-out's, still queued when the patient stops (again)
    is cancelled: the last word the patient reads is that they are out."""
    if not channel.address_system or not item.address:
        return None
    purpose = facts.request.purpose.value
    last = host.storage.consent.last(channel=channel.name, address=item.address, purpose=purpose)
    if last is None or not last.revokes:
        return None
    category = facts.request.category
    if category is Category.HELP_REPLY:
        return None
    if category is Category.OPTOUT_CONFIRMATION and _answered_at(host, facts) >= _opted_out_since(
            host, channel, item, purpose):
        return None
    return last.source or "revoked"


def _answered_at(host: Host, facts: RecordFacts) -> dt.datetime:
    """When the patient's message that an answer responds to arrived (the time its ledger entry
    has too: both are the report's), else when the answer was filed."""
    answers = (facts.in_response_to or facts.request.in_response_to or "").removeprefix("Communication/")
    message = host.storage.records.get(answers) if answers else None
    return message.received if message is not None and message.received is not None else facts.recorded


def _opted_out_since(host: Host, channel: Channel, item: Item, purpose: str) -> dt.datetime:
    """When the current opt-out began: the first of the trailing run of revocations covering
    ``purpose`` in the ledger (a second STOP while out continues it)."""
    assert item.address is not None
    since = None
    for event in reversed(host.storage.consent.events(channel=channel.name, address=item.address)):
        if event.purpose is not None and event.purpose != purpose:
            continue
        if not event.revokes:
            break
        since = event.at
    assert since is not None  # the last word covering the purpose is a revocation
    return since
