"""Essential plugin: the opt-out ledger, and what a patient's message does (docs/rule-catalogue.md B).

After STOP (or an unsubscribe, or a front-desk note) nothing more goes to that address on that
channel, at once. A message from a patient reaches every plugin as a ``reply`` update, with the
record it answers and the patient when the host found them by address; this plugin acts on it:

- STOP (and its French and carrier forms) reaches the consent ledger first, then is confirmed
  exactly once; START re-subscribes and is confirmed; HELP gets the clinic's help reply, opted
  out or not. START undoes what texted keywords did, no more: a revocation recorded another way
  (the front desk, for one purpose or all) stays until it is lifted that way.
- Free text that reads like an opt-out ("please stop texting me") goes to staff to confirm.
- Any other reply ("Can I come at 10 instead?") goes to staff to answer, and gets the clinic's
  auto-reply, once a day (the clinic's, in its first time zone) per address.

Answers are ordinary requests sent through the host (``context.send``), each of its own category
(``optout-confirmation``, ``optin-confirmation``, ``help-reply``, ``auto-answer``) and in response
to the patient's message: routing sends them only where that message came from, at once, whatever
the hour; they leave through the outbox like any message; their ids make each one once.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from collections.abc import Mapping

from attrs import field, frozen

from emrcomm import (
    Category,
    Channel,
    DeliveryUpdate,
    Finding,
    Message,
    Migration,
    PluginContext,
    Purpose,
    Request,
    Route,
    finding,
    hookimpl,
)
from emrcomm.storage import ConsentEvent, RecordUnreadable
from emrcomm_optout import handled
from emrcomm_optout.keywords import Keyword, as_written, classify, looks_like_revocation

CONFIRMATION = Category.OPTOUT_CONFIRMATION


@frozen
class Reach:
    """What a START may do on an address, by purpose: ``held``, the purposes a revocation not
    made by a texted keyword holds (the front desk's, an unsubscribe), each with that entry: it
    leaves them to staff; ``lifts``, those out now and not so held; ``shadowed``, the held ones
    whose last word is a keyword's revocation (a STOP after the front desk's)."""

    held: Mapping[str, ConsentEvent] = field(factory=dict)
    lifts: frozenset[str] = frozenset()
    shadowed: frozenset[str] = frozenset()


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:24]


class Plugin:
    """Suppression: CONSENT_REVOKED when the ledger's last word is a revocation; keyword replies."""

    settings_schema = None

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.name = context.name
        # "Once a day" is the clinic's day: an evening's replies either side of midnight UTC are one.
        self.zone = zoneinfo.ZoneInfo(context.clinic.time_zones[0] if context.clinic.time_zones else "America/Toronto")

    @hookimpl
    def emrcomm_migrations(self) -> tuple[Migration, ...]:
        return handled.MIGRATIONS

    @hookimpl
    def emrcomm_validate(self, message: Message, channel: Channel, route: Route) -> list[Finding]:
        if not channel.address_system or not route.address:
            return []
        last = self.context.consent.last(channel=channel.name, address=route.address,
                                         purpose=message.request.purpose.value)
        if last is None or not last.revokes:
            return []
        answering = message.request.in_response_to is not None
        # HELP is answered, opted out or not (the carriers' rule): the patient just asked.
        if answering and message.category is Category.HELP_REPLY:
            return []
        # The one confirmation after an opt-out is the only other message that may still go:
        # only while no confirmation has been queued to that address on that channel since the
        # revocation (other messages cannot have been: this check blocks them). Counting only
        # confirmations keeps a message queued in the same instant as the STOP from blocking it.
        if answering and message.category is CONFIRMATION and not self.context.records.count_to(
            channel=channel.name, address=route.address, since=last.at, category=CONFIRMATION.value
        ):
            return []
        return [finding("CONSENT_REVOKED", plugin=self.name, channel=channel.name, source=last.source)]

    @hookimpl
    def emrcomm_delivery_update(self, update: DeliveryUpdate) -> None:
        """Opt-outs and opt-ins reach the ledger at once: as such, or as a keyword reply; a reply
        from an address then gets its answer."""
        if not update.channel or not update.address:
            return
        if update.kind in ("optout", "optin"):
            self._write(update, update.kind, update.text or ("STOP reply" if update.kind == "optout" else "START reply"))
        elif update.kind == "reply":
            self._reply(update)

    def _write(self, update: DeliveryUpdate, kind: str, source: str, purpose: str | None = None) -> int:
        assert update.channel and update.address
        seq = self.context.consent.add(
            patient=update.detail or "unknown", channel=update.channel, address=update.address,
            purpose=purpose or update.purpose, action="revoke" if kind == "optout" else "grant", at=update.at,
            source=source,
        )
        self.context.log.info("consent ledger: %s on %s", kind, update.channel)
        return seq

    def _reply(self, update: DeliveryUpdate) -> None:
        """What one message from ``update.address`` does. A provider retrying its callback
        changes nothing: the ledger, the staff item and the answers are keyed."""
        assert update.channel and update.address
        channel, address, text = update.channel, update.address, update.text or ""
        # Answers go only to a patient the host matched (by the clinic's last message to this
        # address), in response to the patient's message as the host filed it.
        try:
            facts = self.context.records.facts(update.record_id) if update.record_id else None
        except RecordUnreadable:  # it answers a message this release cannot read: as one unmatched
            facts = None
        patient = facts.request.patient_ref if facts is not None else ""
        answered = update.reply_record_id
        before = self.context.consent.last(channel=channel, address=address)
        already_out = before is not None and before.revokes
        message_key = update.provider_id or f"{address}|{update.at.isoformat()}"
        keyword = classify(text, update.keyword)
        reach = Reach()
        if keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
            # Once per message: a provider repeating it after the patient said the opposite (a
            # late retry, a replay) must not make an old STOP or START the ledger's last word again.
            with self.context.transaction():
                # The address's ledger is held until this commits, before anything is read from
                # it: no entry for it (a front-desk revocation, another STOP or START) can land
                # between the read and the write. On PostgreSQL a revocation committed there was
                # followed by the START's grant of every purpose (SQLite's write lock held already).
                self.context.consent.lock(channel=channel, address=address)
                if handled.seq_of(self.context.db, f"{channel}|{message_key}") is None:
                    reach = self._start_reach(channel, address) if keyword is Keyword.OPT_IN else Reach()
                    source = f"{as_written(text)} reply"
                    seq = (self._write(update, "optout", source) if keyword is Keyword.OPT_OUT
                           else self._opt_in(update, source, reach))
                    handled.mark(self.context.db, f"{channel}|{message_key}", seq)
        if keyword is Keyword.OPT_OUT:
            run = self._revoke_run(channel, address)
            if patient and answered and run is not None:
                # Exactly one confirmation per opt-out: the id names the run of revocations this
                # STOP belongs to, so a second STOP or the provider retrying this callback (perhaps
                # after the confirmation failed the first time) finds it handled or sends it now.
                self._answer(patient, Category.OPTOUT_CONFIRMATION, "optout-confirmation", answered,
                             f"optout-confirmation-{_digest(channel, address, run)}")
        elif keyword is Keyword.OPT_IN:
            if patient and answered and reach.lifts:
                # Confirmed once per START that ends an opt-out (a START while subscribed changes
                # nothing, nor does one while the front desk's revocation holds every purpose).
                self._answer(patient, Category.OPTIN_CONFIRMATION, "optin-confirmation", answered,
                             f"optin-confirmation-{_digest(channel, message_key)}")
        elif keyword is Keyword.HELP:
            if patient and answered:
                self._answer(patient, Category.HELP_REPLY, "help-reply", answered,
                             f"help-reply-{_digest(channel, message_key)}")
        elif looks_like_revocation(text):
            if patient:
                self.context.raise_item(
                    kind="reply", key=f"revocation|{message_key}", patient=patient, priority="urgent",
                    description="The patient's reply reads like a request to stop messages on this channel: "
                                "confirm with them and record it in the consent ledger.",
                    request_id=facts.request.id if facts is not None else None, record_id=answered or update.record_id,
                    reasons=("PROBABLE_REVOCATION",), keywords=("opt-out",))
            self.context.log.info("inbound on %s: probable opt-out sent to staff", channel)
        elif patient:
            # Words from the patient ("Can I come at 10 instead?"): no one watches the clinic's
            # number live, so staff get a task pointing at the reply in the chart, and the patient
            # the auto-reply saying when to expect an answer.
            self.context.raise_item(
                kind="reply", key=f"reply|{message_key}", patient=patient,
                description=f"The patient replied by {channel} to a message of the clinic: read the reply in the "
                            "chart and answer them.",
                request_id=facts.request.id if facts is not None else None, record_id=answered or update.record_id,
                reasons=("PATIENT_REPLY",))
            self.context.log.info("inbound on %s: reply sent to staff", channel)
            if answered and not already_out:
                day = update.at.astimezone(self.zone).date().isoformat()
                self._answer(patient, Category.AUTO_ANSWER, "reply-auto-answer", answered,
                             f"auto-answer-{_digest(channel, address, day)}")

    def _opt_in(self, update: DeliveryUpdate, source: str, reach: Reach) -> int:
        """A START: grants every purpose no revocation made another way holds (one entry for all
        of them when none does). A purpose so held whose last word was a STOP gets that
        revocation again, saying that the START left it: what staff read is who can lift it.
        Returns the first entry's seq, or ``handled.NOTHING``."""
        if not reach.held:
            return self._write(update, "optin", source)
        seqs = [self._write(update, "optin", source, purpose=p.value) for p in Purpose if p.value not in reach.held]
        by_entry: dict[int, list[str]] = {}
        for purpose in reach.shadowed:
            by_entry.setdefault(reach.held[purpose].seq, []).append(purpose)
        for purposes in by_entry.values():
            holding = reach.held[purposes[0]]
            again = f"{holding.source} (in force after the {source})"
            whole = holding.purpose is not None or len(purposes) == len(Purpose)
            for purpose in [holding.purpose] if whole else purposes:
                seqs.append(self._write(update, "optout", again, purpose=purpose))
        self.context.log.info("consent ledger: optin on %s left %d purpose(s) withdrawn otherwise",
                              update.channel, len(reach.held))
        return seqs[0] if seqs else handled.NOTHING

    def _start_reach(self, channel: str, address: str) -> Reach:
        """What a START on this address may do, by purpose (:class:`Reach`). A purpose is held
        when the last ledger entry covering it, keyword entries aside, is a revocation."""
        events = self.context.consent.events(channel=channel, address=address)
        keywords = handled.keyword_entries(self.context.db, [e.seq for e in events])
        held: dict[str, ConsentEvent] = {}
        lifts, shadowed = set(), set()
        for purpose in Purpose:
            covering = [e for e in events if e.purpose in (None, purpose.value)]
            otherwise = next((e for e in reversed(covering) if e.seq not in keywords), None)
            if otherwise is not None and otherwise.revokes:
                held[purpose.value] = otherwise
                if covering[-1] is not otherwise:
                    shadowed.add(purpose.value)
            elif covering and covering[-1].revokes:
                lifts.add(purpose.value)
        return Reach(held, frozenset(lifts), frozenset(shadowed))

    def _revoke_run(self, channel: str, address: str) -> str | None:
        """An id for the current opt-out: the ledger position (``seq``) of the first revocation of
        the trailing run of revocations; None when the ledger's last word is not a revocation."""
        start = None
        for event in reversed(self.context.consent.events(channel=channel, address=address)):
            if not event.revokes:
                break
            start = event
        return None if start is None else str(start.seq)

    def _answer(self, patient: str, category: Category, template: str, answered: str, request_id: str) -> None:
        """Send ``template`` to the patient as an ordinary request in response to their message
        ``answered`` (routing sends it where that came from; the id makes it once)."""
        outcome = self.context.send(Request(patient, category, id=request_id, template=template,
                                            in_response_to=answered))
        self.context.log.info("inbound answer %s: %s", request_id, outcome.status.value)
