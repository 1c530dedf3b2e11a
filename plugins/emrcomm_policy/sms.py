"""The form of an SMS (docs/rule-catalogue.md F) and billing by SMS (D): length, sender, opt-out hint, consent."""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata

from emrcomm import Category, Channel, Clinic, Finding, Message, Purpose, Recipient, Route
from emrcomm.rules import finding
from emrcomm.segments import count_segments

DEFAULT_MAX_SEGMENTS = 3
# Replies to the patient's own keywords need no hint: they are the answer to STOP or HELP.
NO_HINT_TEMPLATES = frozenset({"optout-confirmation", "help-reply"})
# The keyword in capitals ("Reply STOP"), or after a verb in any case ("répondez arrêt").
_KEYWORD = re.compile(r"\b(?:STOP|ARRET|ARRÊT)\b")
_REPLY_KEYWORD = re.compile(
    r"\b(?:reply|text|send|r[ée]pondez|textez|envoyez)\s+(?:«\s*)?[\"'“]?(?:stop|arr[êe]t)\b", re.IGNORECASE
)


_DASHES = re.compile(r"[-‐‑–—]")
# What an SMS spelled in GSM-7 has instead (emrcomm.segments.to_gsm7): the name matches either way.
_TYPOGRAPHY = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "«": '"', "»": '"', "œ": "oe", "æ": "ae"})


@functools.lru_cache(maxsize=4096)
def _bare(ch: str) -> str:
    """A casefolded character without its accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))


def _plain(text: str) -> str:
    folded = text.casefold().translate(_TYPOGRAPHY)
    if not folded.isascii():  # accents off, character by character (each remembered)
        folded = "".join([_bare(c) for c in folded])
    return " ".join(_DASHES.sub(" ", folded).split())


_plain_name = functools.lru_cache(maxsize=16)(_plain)  # the clinic's name: folded once, not per message


def names_clinic(text: str, clinic: Clinic) -> bool:
    """The clinic's name appears in the text, whatever the case, accents and spacing."""
    return _plain_name(clinic.name) in _plain(text)


def has_optout_hint(text: str) -> bool:
    return bool(_KEYWORD.search(text) or _REPLY_KEYWORD.search(text))


def has_billing_consent(recipient: Recipient, channel: Channel, route: Route, now: dt.datetime) -> bool:
    return any(
        g.in_force(channel.name, route.address, Purpose.BILLING, now) for g in recipient.consents
    )


def sms_verdicts(
    message: Message,
    recipient: Recipient,
    channel: Channel,
    route: Route,
    now: dt.datetime,
    clinic: Clinic,
    plugin: str,
    max_segments: int | None,
) -> list[Finding]:
    out = []
    limit = max_segments if max_segments is not None else (channel.max_segments or DEFAULT_MAX_SEGMENTS)
    encoding, segments = count_segments(message.text)
    if route.role == "notice":
        # A notice carries a magic link: in one segment no gateway can cut it.
        if segments > 1:
            out.append(finding("NOTICE_TOO_LONG", plugin=plugin, channel=channel.name, segments=segments))
    elif segments > limit:
        out.append(
            finding("SMS_TOO_LONG", plugin=plugin, channel=channel.name, segments=segments, limit=limit, encoding=encoding)
        )
    if not names_clinic(message.text, clinic):
        out.append(finding("SMS_NO_SENDER_ID", plugin=plugin, channel=channel.name))
    if message.template not in NO_HINT_TEMPLATES and not has_optout_hint(message.text):
        out.append(finding("SMS_NO_OPTOUT_HINT", plugin=plugin, channel=channel.name))
    if message.category is Category.INVOICE and not has_billing_consent(recipient, channel, route, now):
        out.append(finding("BILLING_BY_SMS", plugin=plugin, channel=channel.name))
    return out
