"""Clinical content: lexicon terms, result words next to tests, doses, drug or disease word forms,
and the context patterns of phrasing.py (clinical talk without a clinical name).

A :class:`ClinicalDetector` is built once per plugin from its lexicons and allow-list; ``read``
returns the definite :class:`Hit` objects (spans in the original text, longest match first where
they overlap; each says whether the lexicon or the wording found it) and the weaker evidence
that the uncertainty score (classifier.py) weighs.
"""

from __future__ import annotations

import bisect
import functools
import operator
import re
from collections.abc import Iterable, Iterator

from attrs import evolve, frozen

from emrcomm_content import administrative, phrasing, squeeze, subject
from emrcomm_content.folding import Folded, fold_text
from emrcomm_content.fuzzy import FuzzyIndex
from emrcomm_content.lexicon import Lexicon, Match, Matcher, compile_lexicons, longest
from emrcomm_content.terms import (
    ADMINISTRATIVE_PHRASES,
    ROUTINE_VACCINE_DISEASES,
    SYMPTOM_LINKS,
    VACCINE_WORDS,
)

# Kinds that are clinical on their own; "result" and "test_generic" only count in context.
# Signs read as spaces before the words of a text are glued two by two (clinical.ClinicalDetector._splits).
_NO_PUNCTUATION = str.maketrans({c: " " for c in ".,;:!?()[]{}\"/«»"})
STANDALONE = frozenset({"medication", "condition", "test", "procedure", "specialty", "clinic"})
# What a result word may qualify: "A1C normal", "résultat anormal", "strep positive".
RESULT_OF = frozenset({"test", "test_generic", "condition"})
CONTEXT_GAP = 3  # at most this many words between a test and its result word or value
# A symptom word next to a part of the body: right after it ("leg pain", "rib cage pain") or up
# to three words before it ("pain in my lower back", "mal à la tête").
SYMPTOM_KINDS = frozenset({"symptom", "symptom_after"})
SYMPTOM_AFTER_GAP = 1
SYMPTOM_BEFORE_GAP = 3
_LINK = re.compile(" (?:{})".format("|".join(re.escape(w) + ("" if w.endswith("'") else r"\b") for w in SYMPTOM_LINKS)))

# Doses as written in the original text. A bare "g" needs a decimal or two digits, so that
# "4g" and "5G" (networks) are not doses.
DOSE = re.compile(
    # The first digit is matched before the look-behind so that the scan jumps from digit to digit.
    r"\d(?<![\w.,]\d)(?:\d*(?:[.,]\d+)?[\s-]?(?:mg|MG|mcg|MCG|µg|μg|ml|mL|ML|units?|unités|unites|IUs?|UI)"
    r"|(?:\d+|\d*[.,]\d+)\s?g|\d*\s+g)(?!\w)"
)
# A lab value: a decimal number, or a number with a lab unit (folded text).
VALUE = re.compile(
    r"(?<![\w.])\d+(?:[.,]\d+)?\s?(?:%|mmol/l|mg/dl|g/l|umol/l|μmol/l|µmol/l|ng/ml|miu/l|mu/l|iu/l|u/l|pmol/l)"
    r"|(?<![\w.])\d+[.,]\d+(?![\w.])"
)
ANY_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\w])")

# Word forms that name drugs (USAN/INN stems; French adds a final e) or diseases and procedures
# (Greek and Latin suffixes), minus the everyday words that share the ending.
DRUG_STEMS = (
    "statin", "sartan", "pril", "olol", "dipine", "prazole", "azole", "mycin", "cillin", "floxacin",
    "cycline", "tidine", "triptan", "azepam", "azolam", "oxetine", "gliptin", "gliflozin",
    "glutide", "parin", "semide", "thiazide", "lukast", "setron", "tegravir", "ciclovir",
    "cyclovir", "amivir", "previr", "buvir", "umab", "imab", "tinib", "afil", "profen", "coxib",
    "codone", "morphone", "barbital", "apine", "peridol", "xaban", "gatran", "grel", "fibrate",
    "dronate", "tropium", "terol", "pramine", "triptyline", "zosin", "olone", "isone", "asone",
    "vudine",
)
DISEASE_SUFFIXES = (
    "itis", "osis", "iasis", "emia", "aemia", "ectomy", "otomy", "ostomy", "oscopy", "plasty",
    "algia", "pathy", "penia", "plegia", "rrhea", "rrhoea", "uria", "ectomie", "oscopie", "emie",
    "pathie", "algie", "plegie", "ostomie", "otomie",
)
NOT_CLINICAL_WORDS = frozenset({
    "april", "academia", "bohemia", "empathy", "sympathy", "apathy", "antipathy", "telepathy",
    "nostalgia", "dichotomy", "osmosis", "symbiosis", "hypnosis", "metamorphosis", "apotheosis",
    "mitosis", "liguria", "academie", "sympathie", "empathie", "apathie", "antipathie",
    "telepathie", "nostalgie", "dichotomie", "senioritis",
})
# French "-ite" diseases collide with common words (petite, visite, suite): only these roots count.
FRENCH_ITE_ROOTS = frozenset({
    "hepat", "arthr", "bronch", "sinus", "ot", "gastroenter", "appendic", "pharyng", "laryng",
    "tendin", "burs", "cyst", "conjonctiv", "mening", "encephal", "col", "dermat", "vagin",
    "prostat", "pancreat", "diverticul", "uve", "rhin", "cellul",
})
_LETTERS = re.compile(r"\b[a-z]{4,}\b")
# Every ending word_form looks at, with the plural and French final e: one C-level test per word.
_ENDINGS = tuple(
    {stem + tail for stem in DRUG_STEMS for tail in ("", "s", "e", "es")}
    | {suffix + tail for suffix in DISEASE_SUFFIXES for tail in ("", "s")}
    | {"ite", "ites"}
)


@functools.lru_cache(maxsize=1 << 16)  # a pure function of the word; messages reuse their words
def word_form(word: str) -> str | None:
    """``medication`` or ``condition`` when the word's form names one, else None."""
    if not word.endswith(_ENDINGS) or word in NOT_CLINICAL_WORDS or set(word) <= {"l", "o"}:  # "lololol" is laughter, not a beta blocker
        return None
    bare = word[:-1] if word.endswith("s") else word
    for form in (bare, bare[:-1] if bare.endswith("e") else None):
        if form and form.endswith(DRUG_STEMS):
            stem = next(s for s in DRUG_STEMS if form.endswith(s))
            if len(form) - len(stem) >= 2 and form not in NOT_CLINICAL_WORDS:
                return "medication"
    for form in (word, bare):
        if form.endswith(DISEASE_SUFFIXES) and form not in NOT_CLINICAL_WORDS:
            suffix = next(s for s in DISEASE_SUFFIXES if form.endswith(s))
            if len(form) - len(suffix) >= 3:
                return "condition"
    if bare.endswith("ite") and bare[:-3] in FRENCH_ITE_ROOTS:
        return "condition"
    return None


# A drug product code after its label: a US National Drug Code ("NDC 0869-0871-43") or a
# Canadian Drug Identification Number ("DIN 02242963"). It names a medication as surely as its name.
DRUG_CODE = re.compile(
    r"\b(?:NDC|DIN)\b\s*(?:#|No\.?|no\.?|number|code)?\s*:?\s*"
    r"(?:\d{4,5}-\d{3,4}-\d{1,2}|\d{10,11}|(?<=DIN)\s*\d{8}|\d{8}(?!\d))(?!\w)"
)
# A capitalised word right after a title, or after a title and a given name, is a person's name:
# "Dr. Parkinson", "Dre Amelia Morin".
_TITLE_BEFORE = re.compile(
    r"\b(?:Dr|Dre|Drs|Doctor|Docteur|Docteure|Nurse|Infirmière|Infirmier|Mr|Mrs|Ms|Mme|Mlle|Prof|Pr)\.?\s+"
    r"(?:[A-ZÀ-Ý][\w'’-]*\s+)?$"
)
_DIGIT = re.compile(r"\d")
_SENTENCE_END = re.compile(r"[.!?;\n]")
_WORD = re.compile(r"\w+")


LEXICON, CONTEXT = "lexicon", "context"
_ROUTINE = frozenset(fold_text(t) for t in ROUTINE_VACCINE_DISEASES)
_VACCINE_NEAR = re.compile(
    r"\b(?:{})\b".format("|".join(re.escape(fold_text(w)) for w in VACCINE_WORDS))
)


@frozen
class Hit:
    """One clinical finding: where it is in the original text, what fired it (a lexicon kind
    such as ``medication``, or a context family such as ``value``) and which layer found it."""

    span: tuple[int, int]
    term: str
    kind: str
    layer: str = LEXICON


@frozen
class Reading:
    """What the detector read in a text: definite ``hits``, and ``evidence`` that is not clinical
    on its own (a result word with no test, a vague reference to "the issue you mentioned") as
    ``(original span, name)`` pairs, for the uncertainty score. Names are ``kind:<lexicon kind>``
    and ``phrase:<context family>``."""

    hits: list[Hit]
    evidence: list[tuple[tuple[int, int], str]]
    allowed: tuple[tuple[int, int], ...] = ()  # folded spans where nothing counts (allowed_spans)
    # folded spans of clauses about someone else or everyone (subject.py), and (seventh round) of
    # names and allowed phrases: no term, pattern or word of the score counts there
    others: tuple[tuple[int, int], ...] = ()


def _inside(span: tuple[int, int], blocks: Iterable[tuple[int, int]]) -> bool:
    return any(lo <= span[0] and span[1] <= hi for lo, hi in blocks)


def _overlaps(span: tuple[int, int], blocks: Iterable[tuple[int, int]]) -> bool:
    return any(lo < span[1] and span[0] < hi for lo, hi in blocks)


class ClinicalDetector:
    """Finds clinical content in a text. Immutable once built; safe to share between threads.

    ``lexicons`` are compiled here (small lists: a clinic's own terms); ``matchers`` are already
    compiled (the cached packaged and core lexicons); ``fuzzy`` finds misspelled drug names.
    """

    def __init__(
        self,
        lexicons: tuple[Lexicon, ...] = (),
        allow: Iterable[str] = (),
        *,
        matchers: Iterable[Matcher] = (),
        fuzzy: FuzzyIndex | None = None,
    ) -> None:
        self.matchers = (*matchers, *((compile_lexicons(lexicons),) if lexicons else ()))
        self.fuzzy = fuzzy
        self.allow = tuple(p for p in (fold_text(a).strip() for a in (*ADMINISTRATIVE_PHRASES, *allow)) if p)

    def allowed_spans(self, folded: Folded, words: set[str] | None = None) -> list[tuple[int, int]]:
        """Folded spans of the allow-listed phrases (the clinic's and the built-in ones) and of the
        administrative wording of administrative.py (names of charities and places, a staff
        member's own leave, exams named by their purpose)."""
        return self._allowed(folded, words)[0]

    def _allowed(self, folded: Folded, words: set[str] | None = None
                 ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """:meth:`allowed_spans`, and apart the names and allowed phrases among them (the spans
        whose words the uncertainty score does not read)."""
        wording, names = administrative.read(folded, words)
        for phrase in self.allow:
            start = folded.text.find(phrase)
            while start != -1:
                names.append((start, start + len(phrase)))
                start = folded.text.find(phrase, start + 1)
        return wording + names, names

    def find(self, folded: Folded) -> list[Hit]:
        """The definite hits only (see :meth:`read`)."""
        return self.read(folded).hits

    def read(self, folded: Folded) -> Reading:
        """What the text says (:class:`Reading`): read as written, then, where it writes a word
        apart ("H.I.V.", "H/I/V", "bi🙂opsy", "biop-⏎sy", "b1opsy", "H1V", "b!opsy"), in its
        squeezed forms (squeeze.py), whose hits count where a rewrite made the word, and a word
        cut after a short everyday word ("in⏎sulin", squeeze.cuts) or glued by a "!" to the word
        before it ("great!b!opsy", squeeze.glued) looked up alone. The squeezed forms only add hits: the
        evidence for the uncertainty score is that of the text as written."""
        reading = self._read(folded)
        forms = squeeze.readings(folded.original)
        cuts = squeeze.cuts(folded.original)
        glued = squeeze.glued(folded.original)
        splits = self._splits(folded)
        if not forms and not cuts and not glued and not splits:
            return reading
        original = folded.original
        extra = []
        for form in forms:
            for hit in self._read(Folded.of(form.text)).hits:
                span = form.original_span(*hit.span)
                if form.touches(span):
                    extra.append(Hit(span, original[span[0] : span[1]], hit.kind, hit.layer))
        if cuts or glued or splits:  # "in⏎sulin": the glued word alone, outside the names and the clauses about others
            quiet = [folded.span(lo, hi) for lo, hi in reading.allowed + reading.others if hi > lo]
            quiet += [hit.span for hit in reading.hits]  # "the⏎lorazepam" is found as written
            blocks = squeeze.Spans(quiet)
            for cut in cuts:
                if blocks.overlap(cut.span):
                    continue
                kind = self._word_kind(cut.word)
                if kind and not squeeze.everyday(cut.piece):
                    extra.append(Hit(cut.span, original[cut.span[0] : cut.span[1]], kind))
            for split in splits:  # "chlamy dia", "can.cer": not where both pieces are words ("the rapist")
                if blocks.overlap(split.span) or all(map(_ordinary, split.pieces)):
                    continue
                if kind := self._word_kind(split.word):
                    extra.append(Hit(split.span, original[split.span[0] : split.span[1]], kind))
            found = squeeze.Spans(quiet + [hit.span for hit in extra])
            for cut in glued:  # "great!b!opsy": the word after the "!", read alone
                if not found.overlap(cut.span) and (kind := self._word_kind(cut.word)):
                    extra.append(Hit(cut.span, original[cut.span[0] : cut.span[1]], kind))
        return evolve(reading, hits=merge_hits(reading.hits + extra)) if extra else reading

    @functools.cached_property
    def _one_word_terms(self) -> frozenset[str]:
        """The lexicons' terms of one word, folded (built on the first text: about 40 ms)."""
        return frozenset().union(*(matcher.words() for matcher in self.matchers))

    def _splits(self, folded: Folded) -> list[squeeze.Split]:
        """The words of the text parted in two ("chlamy dia", "syph-ilis", "can.cer") whose pieces
        glued are a term: every two words glued and looked up at once in the set of the lexicons'
        one-word terms (about 6 µs a text), then, in the few texts where one is, where exactly (squeeze.splits)."""
        words = folded.text.translate(_NO_PUNCTUATION).split()
        glued = self._one_word_terms.intersection(map(operator.add, words, words[1:]))
        if not glued:
            return []
        return [split for split in squeeze.splits(folded.original) if fold_text(split.word) in glued]

    def _word_kind(self, word: str) -> str | None:
        """What one word names on its own: a lexicon term of a kind clinical alone, a drug or
        disease word form, or a misspelled drug name; None for anything else."""
        folded = Folded.of(word)
        for matcher in self.matchers:
            for m in matcher.find(folded):
                if m.folded == (0, len(folded.text)) and m.kind in STANDALONE:
                    return m.kind
        kind = word_form(folded.text)
        if kind is None and self.fuzzy is not None:
            kind = next((self.fuzzy.kinds[name] for _, name in self.fuzzy.find(folded.text)), None)
        return kind

    def _read(self, folded: Folded) -> Reading:
        """:meth:`read` of the text as written (or of one squeezed form)."""
        keys = phrasing.text_keys(folded.text)
        others = [(lo, hi) for lo, hi, _ in subject.others(folded.text, keys)]
        allowed, names = self._allowed(folded, keys)
        quiet = allowed + others  # where no term and no pattern counts
        found = [m for matcher in self.matchers for m in matcher.find(folded)]
        if len(self.matchers) > 1:
            found = longest(found)
        matches = [m for m in found if not _inside(m.folded, quiet) and not _routine_vaccine(folded.text, m)
                   and not _everyday_sense(folded.text, m)]
        hits: list[tuple[tuple[int, int], str]] = [(m.folded, m.kind) for m in matches if m.kind in STANDALONE]
        hits.extend(self._in_context(folded, matches))
        if self.fuzzy is not None:
            covered = [m.folded for m in found] + quiet
            hits.extend(
                (span, self.fuzzy.kinds[name])
                for span, name in self.fuzzy.find(folded.text)
                if not _inside(span, covered)
            )
        for found in _LETTERS.finditer(folded.text):
            kind = word_form(found.group())
            if kind and not _inside(found.span(), quiet):
                hits.append((found.span(), kind))
        result = []
        original = folded.original
        for fs, kind in hits:
            span = folded.span(*fs)
            if original[span[0]].isupper() and _TITLE_BEFORE.search(original, max(0, span[0] - 40), span[0]):
                continue  # a person's name: "Dr. Parkinson"
            result.append(Hit(span, original[span[0] : span[1]], kind))
        if _DIGIT.search(original):
            result += [Hit(found.span(), found.group(), "dose") for found in DOSE.finditer(original)]
            result += [Hit(found.span(), found.group(), "medication") for found in DRUG_CODE.finditer(original)]
        evidence = [(folded.span(*m.folded), f"kind:{m.kind}") for m in matches if m.kind not in STANDALONE]
        # The wording counts where no term does: a term names the clinical content more precisely.
        named = [h.span for h in result]
        for phrase in phrasing.find(folded.text, original, keys=keys):
            if phrase.in_original:
                span = phrase.span
            else:
                if _overlaps(phrase.span, quiet):  # a name's words are not wording about the patient
                    continue
                span = folded.span(*phrase.span)
            if not phrase.strong:
                evidence.append((span, f"weak:{phrase.family}"))
            elif not any(lo < span[1] and span[0] < hi for lo, hi in named):
                result.append(Hit(span, original[span[0] : span[1]], phrase.family, CONTEXT))
            else:
                evidence.append((span, f"phrase:{phrase.family}"))
        # seventh round: the words of a name or of allowed wording are not read by the score either
        # (« L'Association des troubles de l'humeur utilise notre salle »), as the clauses of subject.py are not
        return Reading(merge_hits(result), evidence, tuple(allowed), tuple(others + names))

    def _in_context(self, folded: Folded, matches: list[Match]) -> list[tuple[tuple[int, int], str]]:
        """Result words next to a test, tests next to a value, symptoms next to a part of the body.

        Each term looks for partners only within a few words of itself (bisect on word and
        sentence positions): linear in the text, where comparing every pair took minutes on a
        50,000-character text made of tests and results."""
        text = folded.text
        tests = [m for m in matches if m.kind in RESULT_OF]
        bodies = [m for m in matches if m.kind == "body"]
        if not tests and not bodies:
            return []
        words = [w.start() for w in _WORD.finditer(text)]
        breaks = [b.start() for b in _SENTENCE_END.finditer(text)]

        def word_at(pos: int) -> int:
            return bisect.bisect_left(words, pos)

        def near(a: tuple[int, int], b: tuple[int, int], most: int = CONTEXT_GAP) -> bool:
            first, second = sorted((a, b))
            i = bisect.bisect_left(breaks, first[1])
            if i < len(breaks) and breaks[i] < second[0]:
                return False
            gap = word_at(second[0]) - word_at(first[1])
            return gap <= most

        def char_of(word: int) -> int:
            """Where word number ``word`` starts (0 before the first, the end after the last)."""
            return 0 if word <= 0 else words[word] if word < len(words) else len(text)

        def around(span: tuple[int, int], most: int) -> tuple[int, int]:
            """The stretch of text in which a partner of ``span`` at most ``most`` words away can
            start (a partner before it may itself be up to _PARTNER_WORDS long)."""
            return char_of(word_at(span[0]) - most - _PARTNER_WORDS), char_of(word_at(span[1]) + most + 1)

        def starting_in(spans: list[tuple[int, int]], starts: list[int], lo: int, hi: int) -> list[tuple[int, int]]:
            return spans[bisect.bisect_left(starts, lo):bisect.bisect_right(starts, hi)]

        out = []
        symptoms = sorted((m for m in matches if m.kind in SYMPTOM_KINDS), key=lambda m: m.folded) if bodies else []
        symptom_starts = [m.folded[0] for m in symptoms]
        for body in bodies:
            lo, hi = around(body.folded, max(SYMPTOM_AFTER_GAP, SYMPTOM_BEFORE_GAP))
            for symptom in symptoms[bisect.bisect_left(symptom_starts, lo):bisect.bisect_right(symptom_starts, hi)]:
                if symptom.folded[0] >= body.folded[1]:  # "leg pain", "back problems"
                    ok = near(body.folded, symptom.folded, SYMPTOM_AFTER_GAP)
                else:  # "pain in my leg", "douleur au genou"
                    ok = (
                        symptom.kind == "symptom"
                        and near(symptom.folded, body.folded, SYMPTOM_BEFORE_GAP)
                        and _LINK.match(text, symptom.folded[1]) is not None
                    )
                if ok:
                    lo_, hi_ = min(body.folded[0], symptom.folded[0]), max(body.folded[1], symptom.folded[1])
                    out.append(((lo_, hi_), "condition"))
        results = sorted(m.folded for m in matches if m.kind == "result")
        # "high" and "low" qualify a named test or condition ("TSH is low"), never a generic
        # word: "test scores are low", "high test".
        strong_and_weak = sorted(results + [m.folded for m in matches if m.kind == "result_weak"])
        result_starts, both_starts = [r[0] for r in results], [r[0] for r in strong_and_weak]
        for test in tests:
            lo, hi = around(test.folded, CONTEXT_GAP)
            pool, starts = (results, result_starts) if test.kind == "test_generic" else (strong_and_weak, both_starts)
            partners = [r for r in starting_in(pool, starts, lo, hi) if near(test.folded, r)]
            if test.kind != "condition":
                start = test.folded[1]
                # A value starts at most CONTEXT_GAP words on; the slack lets a match that starts
                # in time end as it would in the whole text.
                end = char_of(word_at(start) + CONTEXT_GAP + 1) + _VALUE_SLACK
                partners += [v for v in _scan(VALUE, text, start, end) if near(test.folded, v)]
                if test.kind == "test":  # "PSA 4", "INR is 3": a bare number right after a named test
                    end = char_of(word_at(start) + 2) + _VALUE_SLACK
                    partners += [v for v in _scan(ANY_NUMBER, text, start, end) if near(test.folded, v, 1)]
            if partners:
                lo_ = min(test.folded[0], *(p[0] for p in partners))
                hi_ = max(test.folded[1], *(p[1] for p in partners))
                out.append(((lo_, hi_), "result"))
        return out


def _ordinary(piece: str) -> bool:
    """Whether ``piece`` of a split word is a word of its own: a word of everyday English or French
    of two letters or more ("can", "the"), or a one-letter word ("a", « y »)."""
    return squeeze.everyday(piece) if len(piece) > 1 else piece.lower() in ("a", "i", "y", "à")


def _routine_vaccine(text: str, match: Match) -> bool:
    """A disease that names a routine vaccine, next to a vaccine word: "COVID-19 vaccine",
    "tetanus-diphtheria booster", « rappel du tétanos »."""
    written = text[match.folded[0] : match.folded[1]]
    if match.kind != "condition" or (written not in _ROUTINE and written[:-1] not in _ROUTINE):
        return False
    start, end = match.folded
    before = text[max(0, start - 40) : start].split()[-3:]
    after = text[end : end + 40].split()[:3]
    return any(_VACCINE_NEAR.fullmatch(w.strip(".,:;!?()")) for w in (*before, *after))


# Eleventh round: three words of the body and of results in their everyday sense, the commonest cause of
# administrative text rerouted as uncertain on the development parts: "back" that is no back ("come back",
# "Power's back", "at the back", "back in stock"), « en haut » / « en bas » (upstairs, downstairs), and the
# hands everyone is asked to wash.
_BACK_BEFORE = re.compile(
    r"\b(?:your|ur|my|his|her|their|lower|upper|mid|middle|sore|bad|low|stiff|injured|hurt|the patient's) $"
)
_BACK_AFTER = re.compile(
    r" (?:pain|pains|ache|aches|spasms?|injury|injuries|problems?|x ray|xray|exercises?|brace|stiffness|surgery|"
    r"muscles?|strain|issues?)\b"
)
_UP_OR_DOWN = re.compile(r"\b(?:en|d'en|du|le|la) $")
_WASHED = re.compile(r"\b(?:wash|washing|clean|cleaning|sanitize|sanitise|sanitizing|lavez|laver|lavage|lavez vous|"
                     r"desinfectez|desinfecter)(?: (?:your|ur|the|vos|les|des|tes))? $")


def _everyday_sense(text: str, match: Match) -> bool:
    """``match`` is a word of the body or of results in its everyday sense (see above)."""
    start, end = match.folded
    written = text[start:end]
    before = text[max(0, start - 30) : start]
    if match.kind == "body" and written == "back":
        return not (_BACK_BEFORE.search(before) or _BACK_AFTER.match(text, end, end + 30))
    if match.kind == "result_weak" and written in ("haut", "bas"):
        return bool(_UP_OR_DOWN.search(before))
    if match.kind == "body" and written in ("hands", "hand", "mains"):
        return bool(_WASHED.search(before))
    return False


_PARTNER_WORDS = 16  # the longest partner (a result phrase, a symptom) looked for before a term
_VALUE_SLACK = 64  # characters past the last word a value may start in, for the value itself


def _scan(pattern: re.Pattern[str], text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The spans ``pattern.finditer(text, start)`` finds before ``end``, without scanning on to
    the end of the text. A match that reaches ``end`` is matched again on the whole text, so a
    long number cut by the window is found whole, as before."""
    for found in pattern.finditer(text, start, min(end, len(text))):
        if found.end() >= end and end < len(text):
            whole = pattern.search(text, found.start())
            if whole is not None and whole.start() == found.start():
                yield whole.span()
            return
        yield found.span()


def merge_hits(hits: list[Hit]) -> list[Hit]:
    """One hit per stretch of text: hits inside another vanish, overlapping hits are joined.
    The joined hit keeps the kind and layer of the one that starts first."""
    ordered = sorted(hits, key=lambda h: (h.span[0], -h.span[1], h.layer != LEXICON))
    kept: list[Hit] = []
    for h in ordered:
        if kept and h.span[0] < kept[-1].span[1]:
            last = kept[-1]
            if h.span[1] > last.span[1]:
                kept[-1] = Hit((last.span[0], h.span[1]), last.term + h.term[last.span[1] - h.span[0] :], last.kind,
                               last.layer)
            continue
        kept.append(h)
    return kept
