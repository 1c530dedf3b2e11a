"""emrcomm built-in plugin ``content``: facts about a message's words (docs/rule-catalogue.md C, D, E).

Reports, with severity ``info`` and the span that triggered each: CLINICAL_CONTENT (with what
triggered it: a listed term or the wording, see emrcomm.rules.CLINICAL_TRIGGERS),
CLINICAL_UNCERTAIN (free text that nothing marked but the uncertainty score finds likely
clinical), HEALTH_IDENTIFIER, the link facts (LINK_NOT_HTTPS, LINK_SHORTENER,
LINK_DOMAIN_NOT_ALLOWED, SURVEY_LINK_SMS), PROMOTIONAL_LANGUAGE and PROHIBITED_SMS_CONTENT.
Validators (the ``policy`` plugin) decide what blocks on which channel.

A clinical term is quoted masked ("m********"): findings are stored in clear, the words must not be.
Spans index the *inspected document*: ``message.text``, then, when the message has a subject,
``"\\n"`` and ``message.subject`` (see :func:`document`). A span that starts after
``len(message.text)`` is in the subject; spans in the text are plain indices into ``message.text``.

Clinical terms come from the lexicons named in the ``lexicons`` setting (default: all of
"core", "drugs", "icd10cm"), compiled once and cached on disk (cache.py: first start takes
seconds, later starts a fraction of one), plus the clinic's own ``terms``; the context patterns
are in phrasing.py, the uncertainty score in classifier.py. The score runs on free text only: a
message rendered from a template (typed variables) is never scored.

The settings are checked when the plugin starts; the lexicons are loaded (a damaged or stale
cache found and rebuilt) and the detector built when the first message is inspected, or at
the host's ``plugins.prepare()`` (:meth:`Plugin.load_deferred`; ``send``, ``check``, ``serve``, ``demo``, ``check-config``, ``doctor``):
a command that inspects nothing (``--help``, ``records``, ``outbox``, ``worker``) does not pay
for them. A detector that cannot be built raises from the inspection, which blocks the message
(CHECK_FAILED): nothing is decided without it.

Inspection is a pure function of the words, the category and whether the text is free: the
findings of the last :data:`MEMO_SIZE` documents are kept by those three, so a reminder whose
words were inspected before is not read again (docs/performance.md, the throughput machinery).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from attrs import frozen

import emrcomm
from emrcomm import Category, Finding, Message, PluginContext, settings_schema
from emrcomm.rules import clinical_trigger, finding
from emrcomm_content import classifier
from emrcomm_content.folding import Folded
from emrcomm_content.lexicon import LEXICONS, Lexicon, Matcher

if TYPE_CHECKING:
    from emrcomm_content.clinical import ClinicalDetector

__all__ = ["Plugin", "document", "mask"]

DEFAULT_LEXICONS = tuple(LEXICONS)  # all: "core", "drugs", "icd10cm"
# The findings of the last documents inspected, by their exact words: a clinic's reminders repeat
# theirs (one slot, one language, one site) all day. Inspection is a pure function of the words,
# the category and whether they are free text, so a repeat gets the same findings without the
# work. Documents longer than an SMS of ten segments are not kept (they seldom repeat).
MEMO_SIZE = 4096
MEMO_CHARS = 1600
SUBJECT_SEPARATOR = "\n"

# "20% off", "30 % de rabais", "save $50", "économisez 20 $"
_PROMO_PATTERN = re.compile(
    r"\b\d+\s?%\s?(?:off|de rabais|de réduction|de reduction)\b|\bsave \$\s?\d+|\béconomisez \d+\s?\$",
    re.IGNORECASE,
)


def document(message: Message) -> str:
    """The text the spans of this plugin's findings index: the body, then the subject."""
    if message.subject:
        return message.text + SUBJECT_SEPARATOR + message.subject
    return message.text


def _compile_patterns(where: str, patterns: Iterable[Any]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError) as exc:
            raise emrcomm.ConfigError(
                f"{where}[{i}]: {pattern!r} is not a valid regular expression ({exc}); "
                "write a Python regular expression such as 'MRN[- ]?\\d{6,8}'"
            ) from None
    return tuple(compiled)


def mask(term: str) -> str:
    """A clinical term as findings quote it: "metformin" is "m********".

    Findings are filed with the record and kept in the store in clear; the words themselves
    must not be (the span still points at them for anyone who holds the message).
    """
    words = term.split()
    return " ".join(w[:1] + re.sub(r"\w", "*", w[1:]) if i == 0 else re.sub(r"\w", "*", w) for i, w in enumerate(words))


def _written(folded: Folded, span: tuple[int, int]) -> str:
    return folded.original[span[0] : span[1]]


def _free_text(message: Message) -> bool:
    """Typed by a person, not rendered from a template with typed variables."""
    return message.template is None and message.request.template is None


def _phone_digits(phone: str) -> tuple[str, ...]:
    digits = "".join(c for c in phone if c.isdigit())
    return (digits[-10:],) if len(digits) >= 10 else ()


@frozen
class _Detectors:
    """What inspection reads, built from the settings on first use (:meth:`Plugin.load_deferred`)."""

    clinical: ClinicalDetector
    promotional: Matcher
    prohibited: Matcher


def _build(names: tuple[str, ...], terms: tuple[str, ...], allow: Iterable[str], where: str) -> _Detectors:
    """The lexicons ``names`` (from the cache, or built) with the clinic's ``terms`` and ``allow``.
    Its modules are imported here: their patterns are compiled as they load."""
    from emrcomm_content import cache
    from emrcomm_content.clinical import ClinicalDetector
    from emrcomm_content.lexicon import compile_lexicons
    from emrcomm_content.terms import PROHIBITED, PROMOTIONAL

    compiled = cache.compiled(names) if names else None
    lexicons = (Lexicon(f"{where}.terms", tuple((term, "clinic") for term in terms)),) if terms else ()
    clinical = ClinicalDetector(
        lexicons,
        allow,
        matchers=(compiled.matcher,) if compiled else (),
        fuzzy=compiled.fuzzy if compiled else None,
    )
    return _Detectors(clinical, compile_lexicons((PROMOTIONAL,)), compile_lexicons((PROHIBITED,)))


class Plugin:
    """Inspect the rendered words of a message and report facts, never verdicts."""

    settings_schema = settings_schema(__name__)

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        settings = context.settings
        where = f"plugins.{context.name}"
        names = tuple(settings.get("lexicons", DEFAULT_LEXICONS))
        unknown = [n for n in names if n not in LEXICONS]
        if unknown:
            raise emrcomm.ConfigError(
                f"{where}.lexicons: unknown lexicon {unknown[0]!r}; choose from: {', '.join(sorted(LEXICONS))}"
            )
        order = list(LEXICONS)
        self._lexicons = tuple(sorted(set(names), key=order.index))
        self._terms = tuple(settings.get("terms", ()))
        self._allow = tuple(settings.get("allow", ()))
        self._where = where
        self._built: _Detectors | None = None
        self._building = threading.Lock()
        self.scorer = classifier.packaged()
        uncertain = settings.get("uncertain", {})
        self.uncertain_above: float = float(uncertain.get("above", self.scorer.cut))
        if self.uncertain_above > self.scorer.cut:
            context.log.info(
                "%s.uncertain.above is %s, less cautious than the measured default %s: more free text that "
                "may be clinical goes by SMS and plain email", where, self.uncertain_above, self.scorer.cut,
            )
        self.mrn_patterns = _compile_patterns(f"{where}.mrn_patterns", settings.get("mrn_patterns", ()))
        clinic = context.clinic
        portal_host = urlsplit(clinic.portal_url).hostname if clinic.portal_url else None
        self.link_domains = tuple(d.lower() for d in clinic.link_domains) + ((portal_host,) if portal_host else ())
        self.not_identifiers = _phone_digits(clinic.phone)
        self._memo = functools.lru_cache(maxsize=MEMO_SIZE)(self._findings)

    def load_deferred(self) -> None:
        """Load the lexicons and build the detector now (else the first inspection does): the
        cache is read, and rebuilt when damaged or stale. Raises what building raises."""
        self._detectors()

    def _detectors(self) -> _Detectors:
        built = self._built
        if built is None:
            with self._building:  # one build, however many threads inspect the first messages
                built = self._built
                if built is None:
                    built = self._built = _build(self._lexicons, self._terms, self._allow, self._where)
        return built

    @property
    def clinical(self) -> ClinicalDetector:
        """The clinical detector (built on first use)."""
        return self._detectors().clinical

    def close(self) -> None:
        """Forget the kept findings (the words of patients' messages) when the host closes."""
        self._memo.cache_clear()

    @emrcomm.hookimpl
    def emrcomm_inspect(self, message: Message) -> list[Finding]:
        doc = document(message)
        findings = self._memo if len(doc) <= MEMO_CHARS else self._findings
        return list(findings(doc, message.category, _free_text(message)))

    def _findings(self, doc: str, category: Category, free_text: bool) -> tuple[Finding, ...]:
        """What the words ``doc`` say (the module docstring): everything inspection reads."""
        from emrcomm_content.identifiers import find_identifiers

        folded = Folded.of(doc)
        name = self.context.name
        reading = self.clinical.read(folded)
        out = [
            finding("CLINICAL_CONTENT", plugin=name, severity="info", span=hit.span, term=mask(hit.term),
                    **clinical_trigger(hit.kind))
            for hit in reading.hits
        ]
        if not reading.hits and free_text:
            out += self._uncertain(folded, reading.evidence, reading.others)
        out += [
            finding("HEALTH_IDENTIFIER", plugin=name, severity="info", span=span, kind=kind)
            for span, kind in find_identifiers(doc, folded, self.mrn_patterns, self.not_identifiers)
        ]
        out += self._links(category, doc)
        out += self._promotion(folded, reading.allowed)
        return tuple(out)

    def _uncertain(self, folded: Folded, evidence: list[tuple[tuple[int, int], str]],
                   others: tuple[tuple[int, int], ...] = ()) -> list[Finding]:
        """CLINICAL_UNCERTAIN when the uncertainty score reaches the clinic's limit; the span is the
        word or phrase that raised the score most, and the finding says what the reasons are ("a
        part of the body with a word of wound care")."""
        score = self.scorer.score(folded, evidence, others=others)
        if score.probability < self.uncertain_above:
            return []
        span = score.reasons[0][0] if score.reasons else (0, len(folded.original))
        said = [classifier.describe(name) for _, name in score.reasons] or [("the wording", "la formulation")]
        # Three decimals: at two, a score just at a limit such as 0.415 would read as below it.
        return [finding("CLINICAL_UNCERTAIN", plugin=self.context.name, severity="info", span=span,
                        term=mask(_written(folded, span)), why=", ".join(dict.fromkeys(e for e, _ in said)),
                        why_fr=", ".join(dict.fromkeys(f for _, f in said)),
                        score=f"{score.probability:.3f}", limit=f"{self.uncertain_above:.3f}")]

    def _links(self, category: Category, doc: str) -> list[Finding]:
        from emrcomm_content import links

        name = self.context.name
        out = []
        for link in links.find_links(doc, self.link_domains):
            facts = []
            if not link.https:
                facts.append("LINK_NOT_HTTPS")
            if links.is_shortener(link.host):
                facts.append("LINK_SHORTENER")
            if not links.is_allowed(link.host, self.link_domains):
                facts.append("LINK_DOMAIN_NOT_ALLOWED")
            if category is Category.QUESTIONNAIRE or links.is_survey(link, doc):
                facts.append("SURVEY_LINK_SMS")
            out += [finding(code, plugin=name, severity="info", span=link.span, term=link.url) for code in facts]
        return out

    def _promotion(self, folded: Folded, allowed: tuple[tuple[int, int], ...]) -> list[Finding]:
        from emrcomm_content.clinical import Hit, merge_hits

        name = self.context.name
        detectors = self._detectors()

        def kept(span: tuple[int, int]) -> bool:
            return not any(lo <= span[0] and span[1] <= hi for lo, hi in allowed)

        promo = [Hit(m.span, _written(folded, m.span), m.kind) for m in detectors.promotional.find(folded) if kept(m.folded)]
        promo += [Hit(m.span(), m.group(), "promotional") for m in _PROMO_PATTERN.finditer(folded.original)]
        out = [
            finding("PROMOTIONAL_LANGUAGE", plugin=name, severity="info", span=hit.span, term=hit.term)
            for hit in merge_hits(promo)
        ]
        out += [
            finding("PROHIBITED_SMS_CONTENT", plugin=name, severity="info", span=m.span, term=_written(folded, m.span))
            for m in detectors.prohibited.find(folded)
            if kept(m.folded)
        ]
        return out
