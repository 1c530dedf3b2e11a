"""The uncertainty score: how likely a text that no term and no pattern marked is still clinical.

A logistic regression over four kinds of features of the folded text (lower case, no accents):

* ``c:<class>``: the word classes of wordclasses.py (a part of the body, a word of wound care, a
  medication word, a verdict, a number with a unit, logistics...), and ``p:<class>+<class>``, two
  classes in one sentence ("the dressing on your heel": ``p:body+wound``). They carry what the
  score knows beyond its training rows: a weight learned for a class holds for all its words.
* ``w:<word>``: the words (numbers read as ``<n>`` or, with decimals, ``<d>``);
* ``s:<5 letters>``: the first five letters of a longer word, so that the forms of a word and its
  French and English cousins share weight (``cicatrice``, ``cicatrisé``, ``cicatrisation``;
  ``infected``, ``infection``);
* the detector's weak evidence (a result word with no test, "the issue you mentioned":
  ``kind:...``, ``weak:...``, ``phrase:...``).

The weights were learned from the development parts of benchmarks/data/clinic-messages
(training.py, which also chose the default cut by cross-validation) and ship in classifier.json;
nothing is learned or fetched at run time. Scoring a message is a dictionary look-up per feature.

Every free text that no term and no pattern marked is scored, whatever words it has: the weights,
not a list of words, say that "someone will call you tonight" is administrative. (Until the ninth
round only a text with a word of :data:`wordclasses.SCORED` or some evidence was scored; most of
what new writers' parts let through had no such word: docs/rules.md.) A score explains itself:
:attr:`Score.reasons` are the features that raised it most, classes and evidence before words, each with the span of the original text, and :func:`describe` says each
in English and French.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import math
import re
from collections.abc import Container, Iterable, Mapping

from attrs import frozen

from emrcomm_content import wordclasses
from emrcomm_content.folding import Folded

WEIGHTS_FILE = "classifier.json"
STEM = 5  # letters of a word's stem feature (letter 4-grams of whole words did no better: docs/rules.md)
# A word, or a number (with its decimals). A French elided article or pronoun (l', d', qu'...) is
# not part of the word after it: « l'infirmière » is « infirmière ».
_WORD = re.compile(
    r"\d+(?:[.,]\d+)+|\d+|(?:(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu)')?([a-z]+(?:'[a-z]+)*)"
)
_SENTENCE_END = re.compile(r"[.!?;:\n]")
# What every SMS carries and says nothing about content: the opt-out hint, a link, rates.
_BOILERPLATE = re.compile(
    r"\b(?:reply|text|send|repondez|textez|envoyez) (?:stop|arret|aide|help)\b[^.!?\n]*"
    r"|\b(?:stop|arret) (?:to|pour)\b[^.!?\n]*"
    r"|https?://\S+|\bwww\.\S+|\bmsg (?:&|and) data rates[^.!?\n]*"
)
EVIDENCE = ("kind:", "weak:", "phrase:")
# Classes a finding names as its reasons: those that say what the text is about (never "your" or
# logistics, which only weigh with them).
_NAMED = wordclasses.SCORED | {"kin", "care-team"}


def _token(word: str) -> str:
    if word[0].isdigit():
        return "<d>" if ("." in word or "," in word) else "<n>"
    return word


def features(
    folded: Folded,
    evidence: Iterable[tuple[tuple[int, int], str]] = (),
    *,
    known: Container[str] = (),
    others: Iterable[tuple[int, int]] = (),
) -> dict[str, tuple[int, int]]:
    """Each feature of the text with the original span it comes from (its first occurrence):
    classes and pairs, the evidence, then words and stems.

    A word written with a capital is a name (a person, a clinic, a pharmacy, a day: "Sacred Heart
    Clinic") and is not a feature, unless it starts a sentence (then its class counts, and the word
    itself if it is ``known``, a word the model has seen written in lower case: "Keep the dressing
    dry") or is written in capitals (an abbreviation: "ATB", "CLSC"); boilerplate (the opt-out
    hint, links) is left out: the score must not learn one clinic's names or one writer's habits.
    So are ``others``, the folded spans of clauses about someone else or everyone (subject.py).
    """
    out: dict[str, tuple[int, int]] = {}
    text, original = folded.text, folded.original
    skip = [m.span() for m in _BOILERPLATE.finditer(text)] if ("stop" in text or "arret" in text or "http" in text
                                                                 or "www" in text or "rates" in text) else []
    skip += others
    ends = [m.start() for m in _SENTENCE_END.finditer(text)]
    words: list[str] = []  # the words whose classes count ("" for a name)
    spans: list[tuple[int, int]] = []
    sentences: list[int] = []
    features_of: list[str] = []  # the words that are features themselves ("" for a name)
    sentence, previous = 0, -1
    for m in _WORD.finditer(text):
        start = m.start(1) if m.group(1) else m.start()
        if skip and any(lo <= start < hi for lo, hi in skip):
            continue
        while sentence < len(ends) and ends[sentence] < start:
            sentence += 1
        word = m.group(1) or m.group()
        span = folded.span(start, m.end())
        first = sentence != previous
        previous = sentence
        named = original[span[0]].isupper() and not (span[1] - span[0] > 1 and original[span[0] : span[1]].isupper())
        words.append("" if named and not first else word)
        features_of.append("" if named and not (first and word in known) else word)
        spans.append(span)
        sentences.append(sentence)
    by_sentence: dict[int, dict[str, tuple[int, int]]] = {}
    for lo, hi, name in wordclasses.find(words):
        span = (spans[lo][0], spans[hi - 1][1])
        out.setdefault(f"c:{name}", span)
        by_sentence.setdefault(sentences[lo], {}).setdefault(name, span)
    for (start, end), name in wordclasses.numbers(text):
        span = folded.span(start, end)
        out.setdefault(f"c:{name}", span)
        by_sentence.setdefault(bisect.bisect_left(ends, start), {}).setdefault(name, span)
    for found in by_sentence.values():
        for a, b in itertools.combinations(sorted(found), 2):
            (a0, a1), (b0, b1) = found[a], found[b]
            out.setdefault(f"p:{a}+{b}", (min(a0, b0), max(a1, b1)))
    for span, name in evidence:
        out.setdefault(name, span)
    for word, span in zip(features_of, spans):
        if word:
            out.setdefault(f"w:{_token(word)}", span)
            if len(word) > STEM and not word[0].isdigit():
                out.setdefault(f"s:{word[:STEM]}", span)
    return out


_EVIDENCE_WORDS = {
    "kind:result": ("a result word", "un mot de résultat"),
    "kind:result_weak": ("a word such as high or low", "un mot comme haut ou bas"),
    "kind:test_generic": ("a word for a test", "un mot qui désigne un test"),
    "kind:body": ("a part of the body", "une partie du corps"),
    "kind:symptom": ("a symptom", "un symptôme"),
    "kind:symptom_after": ("a symptom", "un symptôme"),
}


def describe(name: str) -> tuple[str, str]:
    """What a feature means, in English and French, for the sentence staff read."""
    kind, _, rest = name.partition(":")
    if kind == "c" and rest in wordclasses.BY_NAME:
        c = wordclasses.BY_NAME[rest]
        return c.english, c.french
    if kind == "p":
        a, b = (wordclasses.BY_NAME[n] for n in rest.split("+"))
        return f"{a.english} with {b.english}", f"{a.french} avec {b.french}"
    if kind in ("weak", "phrase"):
        from emrcomm.rules import CLINICAL_TRIGGERS

        _, english, french = CLINICAL_TRIGGERS.get(rest, ("", "clinical wording", "une formulation clinique"))
        return f"wording close to {english}", f"une formulation proche de : {french}"
    if name in _EVIDENCE_WORDS:
        return _EVIDENCE_WORDS[name]
    if kind in ("w", "s"):
        return "a word more frequent in clinical messages", "un mot plus fréquent dans les messages cliniques"
    return "the wording", "la formulation"


def _readable(name: str) -> bool:
    """Whether staff can read the feature as a reason (the others are "the wording")."""
    if name.startswith(EVIDENCE):
        return True
    if name.startswith(("c:", "p:")):
        return all(c in _NAMED for c in name[2:].split("+"))
    return False


@frozen
class Score:
    """The probability that the text is clinical, and the features that raised it most."""

    probability: float
    reasons: tuple[tuple[tuple[int, int], str], ...]


class Classifier:
    """Immutable weights; safe to share between threads."""

    def __init__(self, weights: Mapping[str, float], bias: float, *, cut: float = 0.5, trained_on: str = "",
                 cross_validation: Mapping[str, object] | None = None) -> None:
        self.weights = dict(weights)
        self.bias = bias
        self.cut = cut  # the limit chosen by cross-validation (training.py), the default setting
        self.trained_on = trained_on
        self.cross_validation = dict(cross_validation or {})
        # Words the model knows in lower case: a known word may start a sentence with a capital.
        self.known = frozenset(n[2:] for n in self.weights if n.startswith("w:"))

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Classifier:
        weights = data["weights"]
        if not isinstance(weights, dict):
            raise ValueError("classifier weights: expected an object of feature: weight")
        cv = data.get("cross_validation", {})
        return cls(
            {str(k): float(v) for k, v in weights.items()},
            float(data["bias"]),  # type: ignore[arg-type]
            cut=float(data.get("cut", 0.5)),  # type: ignore[arg-type]
            trained_on=str(data.get("trained_on", "")),
            cross_validation=cv if isinstance(cv, dict) else {},
        )

    def to_json(self) -> dict[str, object]:
        return {"trained_on": self.trained_on, "cut": self.cut, "cross_validation": self.cross_validation,
                "bias": self.bias, "weights": dict(sorted(self.weights.items()))}

    def probability(self, names: Iterable[str]) -> float:
        z = self.bias + sum(self.weights.get(n, 0.0) for n in names)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def score(self, folded: Folded, evidence: Iterable[tuple[tuple[int, int], str]] = (), *, reasons: int = 2,
              others: Iterable[tuple[int, int]] = ()) -> Score:
        """The probability (0 for a text with no feature: only names and boilerplate) and the reasons: the
        features that raised it most, classes and evidence before words. ``others``: the folded
        spans of clauses about someone else or everyone (subject.py), whose words do not count."""
        found = features(folded, evidence, known=self.known, others=others)
        if not found:
            return Score(0.0, ())
        p = self.probability(found)
        up = sorted((not _readable(n), -self.weights[n], n) for n in found if self.weights.get(n, 0.0) > 0)
        chosen: list[tuple[tuple[int, int], str]] = []
        said: set[str] = set()  # the classes already named
        for _, _, n in up:
            if len(chosen) == reasons:
                break
            classes = set(n[2:].split("+")) if n.startswith(("c:", "p:")) else set()
            if classes & said or any(span == found[n] for span, _ in chosen):
                continue  # one reason per stretch of text, and a class is named once
            chosen.append((found[n], n))
            said |= classes
        return Score(p, tuple(chosen))


@functools.lru_cache(maxsize=1)
def packaged() -> Classifier:
    """The classifier shipped with the package (classifier.json), loaded once per process."""
    from importlib import resources

    text = resources.files("emrcomm_content").joinpath(WEIGHTS_FILE).read_text(encoding="utf-8")
    return Classifier.from_json(json.loads(text))
