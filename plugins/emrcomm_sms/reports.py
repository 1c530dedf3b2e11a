"""Delivery reports: each provider's words mapped to four states, and the reports for the
segments of one long message combined into one status for its record.

A long SMS travels as several segments and the network may report on each: one can fail while
the others arrive. The message counts as delivered only when every segment was; one failed
segment makes it failed, whatever arrives afterwards.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from attrs import frozen


class ReportState(enum.StrEnum):
    """How far a message (or a segment) got, in order of progress; FAILED is final."""

    PENDING = "pending"  # queued or buffered on the way
    SENT = "sent"  # taken by the SMSC or carrier; no word from the handset yet
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {ReportState.PENDING: 0, ReportState.SENT: 1, ReportState.DELIVERED: 2, ReportState.FAILED: 3}

# Kannel's dlr-url %d: 1 delivered, 2 undeliverable, 4 buffered, 8 SMSC accepted, 16 SMSC rejected.
KANNEL_DELIVERED, KANNEL_UNDELIVERABLE, KANNEL_BUFFERED, KANNEL_SMSC_ACK, KANNEL_SMSC_REJECT = 1, 2, 4, 8, 16

# Twilio's message status values (api.v2010 message_enum_status).
TWILIO_STATES = {
    "accepted": ReportState.PENDING,
    "scheduled": ReportState.PENDING,
    "queued": ReportState.PENDING,
    "sending": ReportState.PENDING,
    "sent": ReportState.SENT,
    "delivered": ReportState.DELIVERED,
    "read": ReportState.DELIVERED,
    "failed": ReportState.FAILED,
    "undelivered": ReportState.FAILED,
    "canceled": ReportState.FAILED,
    "partially_delivered": ReportState.FAILED,
}


def kannel_state(dlr_type: int) -> ReportState:
    """The state of a Kannel delivery report type (``%d``); failure bits win over the others."""
    if dlr_type & (KANNEL_UNDELIVERABLE | KANNEL_SMSC_REJECT):
        return ReportState.FAILED
    if dlr_type & KANNEL_DELIVERED:
        return ReportState.DELIVERED
    if dlr_type & KANNEL_SMSC_ACK:
        return ReportState.SENT
    if dlr_type & KANNEL_BUFFERED:
        return ReportState.PENDING
    raise ValueError(f"unknown Kannel delivery report type {dlr_type}")


def twilio_state(status: str) -> ReportState:
    try:
        return TWILIO_STATES[status]
    except KeyError:
        raise ValueError(f"unknown Twilio message status {status!r}") from None


@frozen
class SegmentReport:
    """One report as it arrived. ``part`` is the provider's id for the segment it is about
    (Kannel's ``%F``, the SMSC message id) when the provider gives one."""

    state: ReportState
    part: str | None = None
    detail: str = ""


@frozen
class CombinedStatus:
    """One status for the whole message, with what it is made of."""

    state: ReportState
    segments: int
    delivered: int
    failed: int
    detail: str = ""


def combine(reports: Iterable[SegmentReport], segments: int = 1) -> CombinedStatus:
    """Combine the reports on a message sent as ``segments`` segments, in arrival order.

    - Any failed segment makes the message FAILED, and it stays failed whatever comes later;
      ``detail`` is the first failure's.
    - DELIVERED only once ``segments`` segments were reported delivered.
    - Otherwise SENT when some segment got at least that far, else PENDING.

    Reports that name their segment (``part``) are merged per segment, which never moves
    backwards (a late "accepted by the SMSC" does not undo "delivered"); a repeated report on
    the same segment counts once. Reports without a part each count as a segment of their own.
    """
    if segments < 1:
        raise ValueError("a message has at least one segment")
    named: dict[str, ReportState] = {}
    anonymous: list[ReportState] = []
    first_failure: SegmentReport | None = None
    for report in reports:
        if report.state is ReportState.FAILED and first_failure is None:
            first_failure = report
        if report.part:
            before = named.get(report.part)
            named[report.part] = report.state if before is None or report.state.rank > before.rank else before
        else:
            anonymous.append(report.state)
    states = [*named.values(), *anonymous]
    delivered = sum(1 for s in states if s is ReportState.DELIVERED)
    failed = sum(1 for s in states if s is ReportState.FAILED)
    if first_failure is not None:
        return CombinedStatus(ReportState.FAILED, segments, delivered, failed, first_failure.detail)
    if delivered >= segments:
        state = ReportState.DELIVERED
    elif any(s.rank >= ReportState.SENT.rank for s in states):
        state = ReportState.SENT
    else:
        state = ReportState.PENDING
    return CombinedStatus(state, segments, delivered, failed)
