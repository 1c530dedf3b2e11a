"""Delivery reports: each provider's words mapped to four states. A report is about the whole
message: Kannel reports once for a long message however many segments it took (measured with
``concatenation`` on and off), Twilio once per Message SID."""

from __future__ import annotations

import enum


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
