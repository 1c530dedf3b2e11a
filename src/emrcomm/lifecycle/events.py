"""Events: everything that happens to a leg, appended, never edited. Whoever observes a change
(the host deciding, a worker delivering, a provider's callback, the portal, staff) appends one;
its dedup key makes a repeat (a retried callback, a replay, two workers) change nothing.
"""

from __future__ import annotations

import datetime as dt
import enum

from attrs import frozen

from emrcomm.lifecycle.states import LegState


class Source(enum.StrEnum):
    """Who observed what an event says."""

    HOST = "host"  # deciding, or delivering inline
    WORKER = "worker"
    CALLBACK = "callback"  # a provider's delivery report or a patient's reply
    PORTAL = "portal"  # the patient in the portal, or its sweeps (links that run out)
    STAFF = "staff"  # a command: recall, requeue, "the patient was told"
    MIGRATION = "migration"  # derived from what an older release filed


class Note(enum.StrEnum):
    """Events that move no state: they are recorded, and some show as notes in the chart."""

    ATTEMPT_FAILED = "attempt-failed"  # a try that failed; the outbox tries again
    PROGRESS = "progress"  # a provider's report that says nothing final (taken by the SMSC, buffered)
    LINK_EXPIRED = "link-expired"  # a portal message's link ran out before it was read
    ANNOUNCED = "announced"  # staff told the patient about a portal message no notice announced
    REQUEUED = "requeued"  # staff put an undeliverable leg back in the outbox
    NOT_TOLD = "not-told"  # the notice of a portal message that left ended unsent: the patient was not told


Kind = LegState | Note

_KINDS: dict[str, Kind] = {**{s.value: s for s in LegState}, **{n.value: n for n in Note}}


def kind_of(value: str) -> Kind:
    try:
        return _KINDS[value]
    except KeyError:
        raise ValueError(f"unknown event kind {value!r}") from None


@frozen
class Event:
    """One thing that happened to one record.

    ``dedup`` is unique among all events: the same observation made twice is one event. The
    store keeps a 16-byte digest of it (an event read back carries the digest, in hex).
    ``reason`` is a rule code (why not sent, why failed), ``detail`` a few words for the chart
    (a provider's reason, never a number or the text), ``until`` when a hold ends.
    """

    record_id: str
    kind: Kind
    source: Source
    at: dt.datetime
    dedup: str
    provider_id: str | None = None
    reason: str | None = None
    detail: str = ""
    until: dt.datetime | None = None
    seq: int | None = None  # its place in storage, once appended
