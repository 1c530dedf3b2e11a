"""What a channel's form changes in a message's words: an email carries no SMS keyword
instructions ("Reply STOP to opt out", « Répondez ARRET ») — nobody reads replies to an email,
and its opt-out is the one-click unsubscribe the email channel adds (docs/transports.md); an SMS
is spelled in GSM-7 where a phone shows the same words ("août" as "aout", "Île" as "Ile"), so
that one letter does not send it as UCS-2 at 70 characters a segment (docs/templates.md)."""

from __future__ import annotations

import re

from emrcomm.segments import to_gsm7

# "Reply STOP to opt out.", "To stop these messages, reply STOP.", « Répondez ARRET pour vous
# désabonner. », "ARRET pour annuler": a verb that says to text back, then a keyword in capitals (as
# texts write it for a handset), to the end of the sentence.
_INSTRUCTION = re.compile(
    r"(?:(?i:to stop these messages|pour ne plus recevoir ces messages),\s*)?"
    r"(?:(?i:reply|r[ée]pondez|text)\s+(?:STOP|ARRET|ARRÊT|START|HELP|AIDE)\b[^.\n]*(?:\.|$)"
    r"|(?:STOP|ARRET|ARRÊT)\s+pour\s+annuler\b\.?)",
    re.M,
)
_SPACES = re.compile(r"[ \t]{2,}")


def is_sms_instruction(text: str) -> bool:
    """Whether ``text`` tells the patient to text a keyword back."""
    return bool(_INSTRUCTION.search(text))


def for_email(text: str) -> str:
    """``text`` without its SMS keyword instructions (and a line left empty by that); every other
    word as it was."""
    if not is_sms_instruction(text):
        return text
    lines = [_SPACES.sub(" ", line).strip() for line in _INSTRUCTION.sub("", text).split("\n")]
    return "\n".join(line for line in lines if line)


def for_sms(text: str) -> str:
    """``text`` as an SMS carries it: :func:`emrcomm.segments.to_gsm7`."""
    return to_gsm7(text)


def in_form(form: str | None, text: str) -> str:
    """``text`` in the words a channel of ``form`` sends (``email``, ``sms``; any other form as it is)."""
    if form == "email":
        return for_email(text)
    if form == "sms":
        return for_sms(text)
    return text
