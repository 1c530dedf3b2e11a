"""The uncertainty score: how likely a text that no term and no pattern marked is still clinical.

A logistic regression over the text's words (folded: lower case, no accents;
numbers read as ``<n>`` or, with decimals, ``<d>``) and the detector's weak evidence (a result
word with no test, "the issue you mentioned": ``kind:...`` and ``phrase:...``). The weights were
learned from the development part of benchmarks/data/clinic-messages (training.py) and ship in
classifier.json; nothing is learned or fetched at run time. Scoring a message is a dictionary
look-up per word.

Only a text with some evidence is scored at all (:func:`eligible`): words alone never make free
text uncertain, so everyday wording ("someone will call you tonight") is left alone whatever a
small training set taught the weights. A score explains itself: :attr:`Score.reasons` are the
evidence, then the words, that pushed it up most, each with the span of the original text.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from importlib import resources

from attrs import frozen

from emrcomm_content.folding import Folded

WEIGHTS_FILE = "classifier.json"
# Evidence that makes a text worth scoring: a weak pattern, or two kinds of words that are clinical
# only in context (a result word and a test word, a symptom and a part of the body). One alone is
# everyday language: "stay positive!", "this is a test message", "I'll be back".
_WORD = re.compile(r"\d+(?:[.,]\d+)+|\d+|[a-z]+(?:'[a-z]+)*")
# What every SMS carries and says nothing about content: the opt-out hint, a link, rates.
_BOILERPLATE = re.compile(
    r"\b(?:reply|text|send|repondez|textez|envoyez) (?:stop|arret|aide|help)\b[^.!?\n]*"
    r"|\b(?:stop|arret) (?:to|pour)\b[^.!?\n]*"
    r"|https?://\S+|\bwww\.\S+|\bmsg (?:&|and) data rates[^.!?\n]*"
)


def _token(word: str) -> str:
    if word[0].isdigit():
        return "<d>" if ("." in word or "," in word) else "<n>"
    return word


def features(folded: Folded, evidence: Iterable[tuple[tuple[int, int], str]] = ()) -> dict[str, tuple[int, int]]:
    """Each feature of the text with the original span it comes from (its first occurrence).

    A word written with a capital is a name (a person, a clinic, a pharmacy, a day) or starts a
    sentence, and is left out, as is boilerplate (the opt-out hint, links): the score must not
    learn one clinic's names or one writer's habits.
    """
    out: dict[str, tuple[int, int]] = {}
    text, original = folded.text, folded.original
    skip = [m.span() for m in _BOILERPLATE.finditer(text)]
    for m in _WORD.finditer(text):
        if any(lo <= m.start() < hi for lo, hi in skip):
            continue
        span = folded.span(m.start(), m.end())
        if original[span[0]].isupper():
            continue
        name = f"w:{_token(m.group())}"
        if name not in out:
            out[name] = span
    for span, name in evidence:
        out.setdefault(name, span)
    return out


def eligible(names: Iterable[str]) -> bool:
    """Whether the text has the evidence it takes to be scored (see the module docstring)."""
    kinds = set()
    for n in names:
        if n.startswith(("phrase:", "weak:")):
            return True
        if n.startswith("kind:"):
            kinds.add(n)
    return len(kinds) >= 2


@frozen
class Score:
    """The probability that the text is clinical, and the features that raised it most."""

    probability: float
    reasons: tuple[tuple[tuple[int, int], str], ...]


class Classifier:
    """Immutable weights; safe to share between threads."""

    def __init__(self, weights: Mapping[str, float], bias: float, *, cut: float = 0.5, trained_on: str = "") -> None:
        self.weights = dict(weights)
        self.bias = bias
        self.cut = cut  # the limit chosen on the development part (training.py), the default setting
        self.trained_on = trained_on

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Classifier:
        weights = data["weights"]
        if not isinstance(weights, dict):
            raise ValueError("classifier weights: expected an object of feature: weight")
        return cls(
            {str(k): float(v) for k, v in weights.items()},
            float(data["bias"]),  # type: ignore[arg-type]
            cut=float(data.get("cut", 0.5)),  # type: ignore[arg-type]
            trained_on=str(data.get("trained_on", "")),
        )

    def to_json(self) -> dict[str, object]:
        return {"trained_on": self.trained_on, "cut": self.cut, "bias": self.bias,
                "weights": dict(sorted(self.weights.items()))}

    def probability(self, names: Iterable[str]) -> float:
        z = self.bias + sum(self.weights.get(n, 0.0) for n in names)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def score(self, folded: Folded, evidence: Iterable[tuple[tuple[int, int], str]] = (), *, reasons: int = 2) -> Score:
        """The probability (0 when the text has no evidence) and the reasons, evidence first."""
        evidence = list(evidence)
        if not eligible(name for _, name in evidence):  # words are never evidence: no need to read them
            return Score(0.0, ())
        found = features(folded, evidence)
        p = self.probability(found)
        up = sorted((n.startswith("w:"), -self.weights[n], n) for n in found if self.weights.get(n, 0.0) > 0)
        return Score(p, tuple((found[n], n) for _, _, n in up[:reasons]))


@functools.lru_cache(maxsize=1)
def packaged() -> Classifier:
    """The classifier shipped with the package (classifier.json), loaded once per process."""
    text = resources.files("emrcomm_content").joinpath(WEIGHTS_FILE).read_text(encoding="utf-8")
    return Classifier.from_json(json.loads(text))
