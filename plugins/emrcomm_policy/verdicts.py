"""Content facts turned into verdicts for one channel (docs/rule-catalogue.md A, C, D, E).

Facts come from the inspectors with severity ``info``. Their spans index the inspected document:
``message.text``, then ``"\\n"`` and ``message.subject`` when there is one (the convention of the
``content`` plugin), so a span starting after ``len(message.text)`` lies in the subject.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable

from emrcomm import Category, Channel, Finding, Message, Recipient, Route
from emrcomm.rules import clinical_trigger, detail, finding, trigger_kind

EVERY_CHANNEL = frozenset({"LINK_NOT_HTTPS", "LINK_SHORTENER", "LINK_DOMAIN_NOT_ALLOWED"})
SMS_ONLY = frozenset({"SURVEY_LINK_SMS", "PROHIBITED_SMS_CONTENT"})
# A result, as opposed to the name of a test: RESULTS_IN_BODY looks for these in a clinical span.
RESULT_WORDS = frozenset({
    "positive", "negative", "abnormal", "abnormality", "abnormalities", "normal", "elevated",
    "borderline", "detected", "undetected", "undetectable", "reactive", "nonreactive",
    "inconclusive", "unremarkable", "benign", "malignant", "high", "low", "raised", "haut", "haute",
    "bas", "basse", "faible", "positif", "positifs",
    "positives", "negatif", "negatifs", "negatives", "anormal", "anormale", "anormaux",
    "anormales", "normale", "normaux", "normales", "eleve", "elevee", "eleves", "elevees",
    "detecte", "detectee", "indetectable", "reactif", "anomalie", "anomalies", "benin", "benigne",
    "maligne",
})
_DECIMAL = re.compile(r"\d+[.,]\d+")
_WORD = re.compile(r"\w+")


def mask(term: str) -> str:
    """A clinical term as verdicts quote it ("metformin" is "m********"): findings are stored in
    clear, and the words must not be; the span points at them."""
    words = term.split()
    return " ".join(w[:1] + re.sub(r"\w", "*", w[1:]) if i == 0 else re.sub(r"\w", "*", w) for i, w in enumerate(words))


def document(message: Message) -> str:
    return message.text + "\n" + message.subject if message.subject else message.text


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def is_result(term: str) -> bool:
    """The words carry a result (a result word or a measured value), not only a test's name."""
    return bool(_DECIMAL.search(term)) or any(w in RESULT_WORDS for w in _WORD.findall(_plain(term)))


def accepts_unencrypted(recipient: Recipient, channel: Channel, route: Route, now: dt.datetime) -> bool:
    """The patient, told the risk, chose clinical content by plain email at this address."""
    return any(
        g.channel == channel.name
        and g.accepts_unencrypted_email
        and (g.address is None or g.address == route.address)
        and (g.granted is None or g.granted <= now)
        and (g.revoked is None or g.revoked > now)
        for g in recipient.consents
    )


def content_verdicts(
    message: Message,
    recipient: Recipient,
    channel: Channel,
    route: Route,
    facts: Iterable[Finding],
    now: dt.datetime,
    plugin: str,
) -> list[Finding]:
    doc = document(message)
    body_end = len(message.text)
    is_sms = channel.form == "sms"
    is_email = channel.form == "email" and not channel.secure
    plain_ok = is_email and accepts_unencrypted(recipient, channel, route, now)
    category = message.category
    out: list[Finding] = []
    unaccepted_span: tuple[int, int] | None = None
    results_span: tuple[int, int] | None = None

    def verdict(code: str, span: tuple[int, int] | None, **details: object) -> None:
        out.append(finding(code, plugin=plugin, channel=channel.name, span=span, **details))

    for fact in facts:
        span = fact.span
        term = doc[span[0] : span[1]] if span else "?"
        in_subject = span is not None and message.subject is not None and span[0] > body_end
        code = fact.code
        if code == "CLINICAL_CONTENT" and not channel.secure:
            if is_email and category is Category.RESULTS_AVAILABLE and is_result(term) and results_span is None:
                results_span = span
            if is_email and in_subject:
                verdict("PHI_IN_SUBJECT", span)
            elif not plain_ok:
                verdict("CLINICAL_CONTENT", span, term=mask(term), **clinical_trigger(trigger_kind(fact) or "condition"))
                if is_email and unaccepted_span is None:
                    unaccepted_span = span
        elif code == "CLINICAL_UNCERTAIN" and not channel.secure and not plain_ok:
            # Free text the detector is unsure about: the portal carries it (docs/rule-catalogue.md C, cost model).
            verdict(code, span, term=mask(term), score=detail(fact, "score") or "?", limit=detail(fact, "limit") or "?",
                    why=detail(fact, "why") or "?", why_fr=detail(fact, "why_fr", french=True) or "?")
        elif code == "HEALTH_IDENTIFIER" and not channel.secure:
            verdict(code, span, kind=detail(fact, "kind") or "?")
        elif (
            code in EVERY_CHANNEL
            or (code in SMS_ONLY and is_sms)
            or (code == "PROMOTIONAL_LANGUAGE" and category is not Category.MARKETING)
        ):
            verdict(code, span, term=term)
    if results_span is not None:
        verdict("RESULTS_IN_BODY", results_span)
    if unaccepted_span is not None:
        verdict("UNENCRYPTED_EMAIL_NOT_ACCEPTED", unaccepted_span)
    if category is Category.MARKETING:
        verdict("MARKETING_BLOCKED", None)
    return out
