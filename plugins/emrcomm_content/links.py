"""Links in a text: with a scheme, starting with ``www.``, or bare (``bit.ly/abc``, ``clinic.ca``).

A bare link counts as not https: phones open it as http, and a clinic's link must say https.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from attrs import frozen

SHORTENERS = (
    "bit.ly", "tinyurl.com", "goo.gl", "ow.ly", "t.co", "is.gd", "buff.ly", "rebrand.ly",
    "cutt.ly", "shorturl.at", "tiny.cc", "rb.gy",
)
SURVEY_HOSTS = (
    "forms.gle", "surveymonkey.com", "typeform.com", "jotform.com", "qualtrics.com",
    "surveygizmo.com", "alchemer.com", "forms.office.com", "questionpro.com",
)
SURVEY_WORDS = frozenset({
    "survey", "surveys", "questionnaire", "questionnaires", "sondage", "sondages", "form",
    "forms", "formulaire", "formulaires", "feedback",
})
# Bare host names without a path count as links only with a TLD people type as a link.
LINK_TLDS = frozenset({"com", "org", "net", "ca", "gov", "edu", "info", "health", "io", "app", "us", "quebec"})

_URL = re.compile(
    r"""(?ix)
    \bhttps?://[^\s<>"'«»]+
    | (?<![@\w./-])www\.[^\s<>"'«»]+
    | (?<![@\w./-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}(?::\d{2,5})?(?:/[^\s<>"'«»]*)?
    """
)
_TRAILING = ".,;:!?'\"»›]}"
_TOKEN = re.compile(r"[a-z0-9]+")
_WORD = re.compile(r"\w+")
SURROUNDING = 80  # characters either side of a link read for survey words


@frozen
class Link:
    span: tuple[int, int]
    url: str
    host: str
    https: bool


def _within(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def find_links(text: str, own_domains: Iterable[str] = ()) -> list[Link]:
    """Every link in ``text``. ``own_domains`` are the clinic's, recognised even with an unusual TLD."""
    own = tuple(own_domains)
    links = []
    for m in _URL.finditer(text):
        url = m.group()
        while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
            url = url[:-1]
        has_scheme = url.lower().startswith(("http://", "https://"))
        try:
            host = (urlsplit(url if has_scheme else "http://" + url).hostname or "").rstrip(".")
        except ValueError:  # a malformed port or bracket: still a link, with no usable host
            host = ""
        if not has_scheme and not url.lower().startswith("www."):
            has_path = "/" in url
            tld = host.rsplit(".", 1)[-1]
            if not (has_path or tld in LINK_TLDS or _within(host, SHORTENERS) or _within(host, own)):
                continue
        start = m.start()
        links.append(Link((start, start + len(url)), url, host, url.lower().startswith("https://")))
    return links


def is_shortener(host: str) -> bool:
    return _within(host, SHORTENERS)


def is_allowed(host: str, domains: Iterable[str]) -> bool:
    return bool(host) and _within(host, tuple(d.lower().rstrip(".") for d in domains if d))


def is_survey(link: Link, text: str) -> bool:
    """The URL or the words around it speak of a survey, questionnaire or form."""
    if _within(link.host, SURVEY_HOSTS) or "docs.google.com/forms" in link.url.lower():
        return True
    if any(t in SURVEY_WORDS or t.startswith("survey") for t in _TOKEN.findall(link.url.lower())):
        return True
    lo, hi = link.span
    around = text[max(0, lo - SURROUNDING) : lo] + " " + text[hi : hi + SURROUNDING]
    return any(w in SURVEY_WORDS for w in _WORD.findall(around.casefold()))
