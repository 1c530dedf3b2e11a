"""The states of one message leg and their precedence: which events move the state, which are
only recorded, and what each state means in the chart.

A leg's state is the state of its highest-ranked event. Because the rank, not the order of
arrival, decides, the same set of events always gives the same state: a late "failed" after
"delivered", a report replayed after a restart, two workers' "accepted" for one message.
One exception, decided by the events' times and so just as independent of their order: a leg
held again as it left the outbox (QUIET_HOURS: a retry, a requeue, a takeover at night) after
it was queued, with nothing ranked higher since, is held (emrcomm.lifecycle.projection.state_of).
"""

from __future__ import annotations

import enum

from attrs import frozen


class LegState(enum.StrEnum):
    """Where one leg (a route of a request: the SMS, the portal message, its notice) stands."""

    HELD = "held"  # waiting for a time: quiet hours, the request's not-before
    QUEUED = "queued"  # in the outbox, due (or waiting for the leg before it, or retrying)
    CANCELLED = "cancelled"  # never sent: consent withdrawn, the leg before it failed, recalled
    EXPIRED = "expired"  # never sent: its time passed first
    UNDELIVERABLE = "undeliverable"  # never sent: refused for good, or attempts used up
    ACCEPTED = "accepted"  # a provider took it (the portal: stored)
    FAILED = "failed"  # a provider took it, then reported it did not arrive
    DELIVERED = "delivered"  # the provider reported it arrived
    RECALLED = "recalled"  # a portal message withdrawn before it was read
    READ = "read"  # a portal message opened by the patient
    BLOCKED = "blocked"  # the record of a request no channel could carry
    RECEIVED = "received"  # the record of a message from the patient


@frozen
class StateRule:
    rank: int
    status: str  # FHIR Communication.status
    meaning: str


# Higher rank wins. Every state a leg can reach after another is ranked above it, and a report
# that says less than what is known already (failed after delivered) is ranked below it.
RULES: dict[LegState, StateRule] = {
    LegState.HELD: StateRule(5, "on-hold", "waiting for its time; the note says until when"),
    LegState.QUEUED: StateRule(10, "in-progress", "in the outbox, not sent yet"),
    LegState.CANCELLED: StateRule(20, "not-done", "not sent; statusReason says why"),
    LegState.EXPIRED: StateRule(21, "not-done", "not sent before it expired (MESSAGE_EXPIRED)"),
    LegState.UNDELIVERABLE: StateRule(22, "not-done", "not sent: refused, or attempts used up (DELIVERY_FAILED)"),
    LegState.ACCEPTED: StateRule(30, "completed", "sent: `sent` is when the provider took it"),
    LegState.FAILED: StateRule(40, "not-done", "sent, then reported not delivered (DELIVERY_FAILED); `sent` stays"),
    LegState.DELIVERED: StateRule(50, "completed", "sent and reported delivered; a note says when"),
    LegState.RECALLED: StateRule(60, "stopped", "withdrawn from the portal before it was read (RECALLED)"),
    LegState.READ: StateRule(70, "completed", "read in the portal: `received` is when"),
    LegState.BLOCKED: StateRule(80, "not-done", "no channel could carry it; statusReason has every code"),
    LegState.RECEIVED: StateRule(80, "completed", "a message from the patient"),
}


def rank(state: LegState) -> int:
    return RULES[state].rank


def status(state: LegState) -> str:
    return RULES[state].status
