"""emrcomm built-in plugin ``policy``: may this message go on this channel, to this address, now?

Turns the inspectors' facts into verdicts per channel (verdicts.py), and checks the SMS form
(sms.py, segments.py), the sending window and expiry (timing.py), the address and the language
(recipient.py). Severities are the catalogue's; the host applies the clinic's configured ones.
Consent and opt-out (docs/rule-catalogue.md A, B) belong to the ``consent`` and ``optout`` plugins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

import emrcomm
from emrcomm import (
    Category,
    Channel,
    Finding,
    Message,
    PluginContext,
    Recipient,
    Route,
    SendingWindow,
    settings_schema,
)
from emrcomm.rules import finding
from emrcomm.segments import count_segments
from emrcomm_policy import timing
from emrcomm_policy.recipient import french_verdicts, recipient_verdicts
from emrcomm_policy.sms import sms_verdicts
from emrcomm_policy.verdicts import content_verdicts

__all__ = ["Plugin", "count_segments"]

URGENT_OVERRIDE = "urgent priority: sent outside the sending window"
EXEMPTION_PER_DAY, EXEMPTION_PER_WEEK = 1, 3
# The most segments a message may be allowed, as [plugins.sms] max_segments allows (its schema):
# a concatenated SMS is reassembled by the phone only up to what carriers and gateways pass (often
# 4-10 parts; Kannel's max-messages), and past it a patient gets pieces or nothing.
MAX_SEGMENTS = 10


class Plugin:
    """The built-in validators. Settings: see schema.json in this package."""

    settings_schema = settings_schema(__name__)

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        settings = context.settings
        where = f"plugins.{context.name}"
        self.max_segments: int | None = settings.get("max_segments")
        if self.max_segments is not None and (
            isinstance(self.max_segments, bool) or not isinstance(self.max_segments, int)
            or not 1 <= self.max_segments <= MAX_SEGMENTS
        ):
            raise emrcomm.ConfigError(f"{where}.max_segments: {self.max_segments!r} is not a whole number from 1 to "
                                      f"{MAX_SEGMENTS} (the most the sms channel allows, plugins.sms.max_segments)")
        self.window = timing.parse_window(settings.get("quiet_hours", timing.DEFAULT_WINDOW), f"{where}.quiet_hours")
        by_jurisdiction: dict[str, Any] = dict(timing.DEFAULT_BY_JURISDICTION)
        by_jurisdiction.update(settings.get("quiet_hours_by_jurisdiction", {}))
        self.windows: Mapping[str, timing.Window] = {
            code: timing.parse_window(value, f"{where}.quiet_hours_by_jurisdiction.{code}")
            for code, value in by_jurisdiction.items()
        }
        for code, narrower in self.windows.items():
            shared = self.window.narrowed(narrower)
            if shared.start >= shared.end:  # its patients' messages would be held again every day, for good
                raise emrcomm.ConfigError(
                    f"{where}.quiet_hours_by_jurisdiction.{code}: {narrower} shares no time with the clinic's window "
                    f"{self.window} ({where}.quiet_hours): a patient there could never be written to")
        self.quiet_channels = frozenset(settings.get("quiet_hours_channels", ("sms",)))
        self.clinic_zones = tuple(z for z in (timing.zone(n) for n in context.clinic.time_zones) if z) or (
            dt.UTC,
        )

    def start(self) -> None:
        # Once the channels are known: a name no plugin registers (a typo, "SMS") would leave the
        # channel it meant outside the window, its messages sent at night.
        named = self.context.settings.get("quiet_hours_channels", ())
        unknown = [name for name in named if name not in self.context.channels]
        if unknown:
            raise emrcomm.ConfigError(
                f"plugins.{self.context.name}.quiet_hours_channels: no plugin registers channel {unknown[0]!r}; "
                f"choose one of: {', '.join(sorted(self.context.channels))}")

    @emrcomm.hookimpl
    def emrcomm_validate(
        self,
        message: Message,
        recipient: Recipient,
        channel: Channel,
        route: Route,
        findings: tuple[Finding, ...],
        now: dt.datetime,
    ) -> list[Finding]:
        name = self.context.name
        clinic = self.context.clinic
        out = content_verdicts(message, recipient, channel, route, findings, now, name)
        if channel.form == "sms":  # the channel says the SMS form rules are its own
            out += sms_verdicts(message, recipient, channel, route, now, clinic, name, self.max_segments)
        out += self._exemption(message, recipient, channel, route, now)
        out += self._quiet_hours(message, recipient, channel, now)
        out += self._expired(message, channel, now)
        out += french_verdicts(message, recipient, channel, name)
        out += recipient_verdicts(recipient, channel, route, clinic, name)
        return out

    def window_for(self, recipient: Recipient) -> timing.Window:
        """The clinic's window, narrowed by the patient's jurisdiction (Florida: 08:00–20:00)."""
        narrower = self.windows.get(recipient.jurisdiction or "")
        return self.window.narrowed(narrower) if narrower else self.window

    @emrcomm.hookimpl
    def emrcomm_sending_window(self, message: Message, recipient: Recipient, channel: Channel) -> SendingWindow | None:
        """The window QUIET_HOURS holds this route to, checked again when its outbox row leaves;
        None where the rule does not apply (see _quiet_hours: the answers to the patient's own
        messages, urgent priority, channels without quiet hours)."""
        if (channel.name not in self.quiet_channels or message.category.answers_patient
                or message.request.priority == "urgent"):
            return None
        window = self.window_for(recipient)
        own = timing.zone(recipient.time_zone)
        zones = (own,) if own else self.clinic_zones
        return SendingWindow(window.start, window.end, tuple(timing.zone_name(z) for z in zones))

    def _quiet_hours(self, message: Message, recipient: Recipient, channel: Channel, now: dt.datetime) -> list[Finding]:
        # The answer to a message the patient just sent (a STOP confirmation, a HELP reply) goes
        # at once, whatever the hour: carriers expect it within minutes.
        if channel.name not in self.quiet_channels or message.category.answers_patient:
            return []
        window = self.window_for(recipient)
        own = timing.zone(recipient.time_zone)
        zones = (own,) if own else self.clinic_zones
        # The message goes at its own not_before when that is later: the window must be open
        # then, not only now (a not_before of 23:00 decided at 14:00 would go at night).
        at = now
        if message.request.not_before is not None:
            at = max(now, timing.aware(message.request.not_before, self.clinic_zones[0]))
        if timing.is_open(window, zones, at):
            return []
        until = timing.next_opening(window, zones, at)
        details = {
            "start": f"{window.start:%H:%M}",
            "end": f"{window.end:%H:%M}",
            "until": f"{until.astimezone(zones[0]):%Y-%m-%d %H:%M %Z}",
        }
        name, channel_name = self.context.name, channel.name
        if message.request.priority == "urgent":
            warn = finding("QUIET_HOURS", plugin=name, channel=channel_name, severity="warn", **details)
            return [attrs.evolve(warn, override=URGENT_OVERRIDE)]
        return [finding("QUIET_HOURS", plugin=name, channel=channel_name, hold_until=until, **details)]

    def _exemption(
        self, message: Message, recipient: Recipient, channel: Channel, route: Route, now: dt.datetime
    ) -> list[Finding]:
        """EXEMPTION_FREQUENCY: texting a US patient without consent under the healthcare
        exemption allows at most 1 message a day and 3 a week, and never billing."""
        clinic = self.context.clinic
        if not clinic.us_healthcare_exemption or channel.address_system != "sms" or message.category.answers_keyword:
            return []
        if not (recipient.jurisdiction or "").startswith("US"):
            return []
        purpose = message.request.purpose
        consented = any(g.in_force(channel.name, route.address, purpose, now) for g in recipient.consents)
        if consented:
            return []
        blocked = message.category is Category.INVOICE
        if not blocked:
            count = self.context.storage.records.count
            statuses = ("completed", "in-progress", "on-hold")
            # The answers to the patient's own messages are not the clinic's messages: they use up nothing.
            answers = tuple(c.value for c in Category if c.answers_patient)
            # The records are filed under the patient as the EMR named them by link, which may not
            # be the directory's (a merged patient's kept one), and those sent before a merge under
            # the charts merged into it: the messages under every one of them count (a limit per
            # patient does not start again at a merge).
            patients = dict.fromkeys(p for p in (*recipient.charts, message.request.patient_ref) if p)
            day = sum(count(patient=p, channel=channel.name, since=now - dt.timedelta(days=1),
                            statuses=statuses, exclude_categories=answers) for p in patients)
            week = sum(count(patient=p, channel=channel.name, since=now - dt.timedelta(days=7),
                             statuses=statuses, exclude_categories=answers) for p in patients)
            blocked = day >= EXEMPTION_PER_DAY or week >= EXEMPTION_PER_WEEK
        if blocked:
            return [finding("EXEMPTION_FREQUENCY", plugin=self.context.name, channel=channel.name)]
        return []

    def _expired(self, message: Message, channel: Channel, now: dt.datetime) -> list[Finding]:
        request = message.request
        zone = self.clinic_zones[0]
        expired = request.expires is not None and timing.aware(request.expires, zone) <= now
        if message.category is Category.APPOINTMENT_REMINDER and request.appointment is not None:
            expired = expired or timing.aware(request.appointment, zone) <= now
        if expired:
            return [finding("MESSAGE_EXPIRED", plugin=self.context.name, channel=channel.name)]
        return []
