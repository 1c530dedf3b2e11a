"""Inbound keywords (docs/rule-catalogue.md B): is a reply an opt-out, an opt-in, a request for help, or words?

A reply is a keyword only when the whole reply, trimmed, case-folded and with accents stripped,
equals one (so "Arrêt" counts and "stop by tomorrow" does not). Free text that reads like a
revocation ("please stop texting me", "Stop please") is not a keyword but must reach staff.
"""

from __future__ import annotations

import enum
import re
import unicodedata


class Keyword(enum.Enum):
    OPT_OUT = "optout"
    OPT_IN = "optin"
    HELP = "help"
    NONE = "none"


OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
                     "OPT-OUT", "OPT OUT", "REMOVE", "ARRET"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO", "AIDE"})

_EDGES = re.compile(r"^[\W_]+|[\W_]+$")  # spaces, punctuation, emoji around the word
_SPACES = re.compile(r"\s+")

# Free text that asks to stop, in English and French; routed to staff as a probable revocation.
# What the clinic sends, as patients name it: asking to stop these is asking to stop messages.
_SENT_EN = r"(text|texting|message|messaging|messages|contact|contacting|sms|email|e-mail|call|calling|reminders?|" \
           r"notifications?|alerts?)"
_SENT_FR = r"(texto|textos|message|messages|courriels?|contacter|[eé]crire|appeler|sms|rappels?|notifications?|" \
           r"alertes?|envoyer|envoi)"
_REVOCATION = re.compile(
    rf"\b(stop|quit|cease|don'?t|do not|no more|never)\b.{{0,30}}\b{_SENT_EN}"
    r"|\b(stop|quit|cease) (sending|send me)\b"
    r"|\b(unsubscribe|opt me out|remove me|take me off)\b"
    rf"|\b(arr[eê]te[rz]?|arr[eê]t|cesse[rz]?|ne (plus|pas))\b.{{0,30}}\b{_SENT_FR}"
    r"|\bne (m'|m’|me |nous |nous en )?(envoye[rz]|[eé]crive[rz]|textez|contacte[rz]|appele[rz]) plus\b"
    r"|\bplus de (textos?|messages|courriels|rappels|sms)\b"
    r"|\b(d[eé]sabonne[rz]?|d[eé]sinscri(re|vez))\b",
    re.I,
)


# An opt-out word with only courtesy or emphasis around it ("Stop please", "STOP NOW", "Arrêt svp")
# asks to stop as plainly as the keyword: not acted on (it is not the keyword), but sent to staff.
# CANCEL and END are left out: beside other words they are usually about the appointment.
_STOPPING = (OPT_OUT - {"CANCEL", "END"}) | {"ARRETE", "ARRETEZ", "ARRETER"}
_COURTESY = frozenset({"PLEASE", "PLS", "PLZ", "NOW", "IT", "ALL", "THANKS", "THANK", "YOU", "OK", "SVP", "STP",
                       "S'IL", "VOUS", "TE", "PLAIT", "MERCI", "MAINTENANT", "TOUT"})
_WORDS = re.compile(r"[\w'-]+")  # "’" (a phone's apostrophe) is read as "'"


def normalize(reply: str) -> str:
    """Trimmed (spaces, punctuation, symbols), accents stripped, upper case, single spaces."""
    text = reply
    for _ in range(4):  # upper-casing can decompose again ("ǰ" -> "J" + caron): run to a fixed point
        decomposed = unicodedata.normalize("NFKD", text)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
        if folded == text:
            break
        text = folded
    return _EDGES.sub("", _SPACES.sub(" ", text))


def as_written(reply: str) -> str:
    """The patient's word for the ledger and the staff pages: trimmed, upper case, single spaces,
    accents kept ("Arrêt !" -> "ARRÊT")."""
    return _EDGES.sub("", _SPACES.sub(" ", unicodedata.normalize("NFC", reply).upper()))


# What a provider that acts on keywords itself says it matched (Twilio's OptOutType).
PROVIDER_KEYWORDS = {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}


def classify(reply: str, provider: str | None = None) -> Keyword:
    """The keyword ``reply`` is, or NONE; ``provider``: the keyword the provider matched and
    acted on (its block list follows it, so the ledger does too, whatever the words)."""
    if provider is not None and provider.strip().upper() in PROVIDER_KEYWORDS:
        return PROVIDER_KEYWORDS[provider.strip().upper()]
    word = normalize(reply)
    if word in OPT_OUT:
        return Keyword.OPT_OUT
    if word in OPT_IN:
        return Keyword.OPT_IN
    if word in HELP:
        return Keyword.HELP
    return Keyword.NONE


def looks_like_revocation(text: str) -> bool:
    """Free text that probably withdraws consent: not acted on automatically, sent to staff."""
    return classify(text) is Keyword.NONE and (bool(_REVOCATION.search(text)) or _courteous_stop(text))


def _courteous_stop(text: str) -> bool:
    """An opt-out word, perhaps repeated, and nothing else but courtesy ("Stop please")."""
    rest = [w for w in _WORDS.findall(normalize(text).replace("’", "'")) if w not in _COURTESY]
    return bool(rest) and (" ".join(rest) in _STOPPING or all(w in _STOPPING for w in rest))
