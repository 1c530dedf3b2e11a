"""How the uncertainty score's design was chosen: each alternative cross-validated on the development
parts only, leaving one part out, exactly as the trainer chooses its cut.

    python benchmarks/score_design.py [--json]

For each alternative (the shipped design, then one change at a time), the trainer's procedure
(emrcomm_content.training): every development part scored by a model trained on the others, the
lowest cut at which the reroute adds at most 0.015 false blocks in each language, and at that
cut, per language: recall with the reroute, the clinical rows that no term or pattern stops and
the score reroutes, the rows only a pattern stops that the score would reroute without it (what
the score does when a pattern misses), and the false reroutes. Alternatives are made by removing
or adding features to the shipped ones, so they share everything else. Held-out parts are never
read. Takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
DEV = tuple(ROOT / "benchmarks" / "data" / "clinic-messages" / f"{n}.tsv" for n in ("dev", "dev-2", "dev-3", "dev-4", "dev-5"))


def _letters(names: tuple[str, ...]) -> tuple[str, ...]:
    """Letter 4-grams of every word instead of the five-letter stems."""
    out = [n for n in names if not n.startswith("s:")]
    for n in names:
        if n.startswith("w:") and not n[2:].startswith("<"):
            padded = f"<{n[2:]}>"
            out += [f"g:{padded[k:k + 4]}" for k in range(max(1, len(padded) - 3))]
    return tuple(dict.fromkeys(out))


def _second_round(names: tuple[str, ...]) -> tuple[str, ...]:
    """The second round's score: words and the detector's evidence only."""
    return tuple(n for n in names if n.startswith(("w:", "kind:", "weak:", "phrase:")))


def _second_round_eligible(names: Iterable[str]) -> bool:
    names = tuple(names)
    kinds = {n for n in names if n.startswith("kind:")}
    return any(n.startswith(("weak:", "phrase:")) for n in names) or len(kinds) >= 2


def _classes_choose_only(names: tuple[str, ...]) -> tuple[str, ...]:
    """No class or pair features; a marker keeps the texts the classes choose for scoring."""
    from emrcomm_content import classifier

    kept = tuple(n for n in names if not n.startswith(("c:", "p:")))
    return (*kept, "e:scored") if classifier.eligible(names) else kept


def _marked(names: Iterable[str]) -> bool:
    return "e:scored" in tuple(names)


def _without(*prefixes: str) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    return lambda names: tuple(n for n in names if not n.startswith(prefixes))


def _scored_by(classes: set[str]) -> Callable[[Iterable[str]], bool]:
    def eligible(names: Iterable[str]) -> bool:
        names = tuple(names)
        kinds = {n for n in names if n.startswith("kind:")}
        return (any(n.startswith(("weak:", "phrase:")) or (n.startswith("c:") and n[2:] in classes) for n in names)
                or len(kinds) >= 2)
    return eligible


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from emrcomm_content import cache, classifier, training, wordclasses
    from emrcomm_content.clinical import ClinicalDetector

    compiled = cache.compiled(("core", "drugs", "icd10cm"))
    rows = training.read_rows(DEV, ClinicalDetector(matchers=(compiled.matcher,), fuzzy=compiled.fuzzy))
    health = {"body", "symptom", "wound", "medication", "dosing", "finding", "mind", "function", "fluid", "unit", "decimal"}
    everything = {c.name for c in (*wordclasses.CLASSES, *wordclasses.NUMBER_CLASSES)}
    same: Callable[[tuple[str, ...]], tuple[str, ...]] = lambda names: names  # noqa: E731
    alternatives: list[tuple[str, Callable[[tuple[str, ...]], tuple[str, ...]], Callable[[Iterable[str]], bool],
                             float]] = [
        ("shipped: words, stems, classes, pairs, evidence", same, classifier.eligible, training.L2),
        ("second round: words and evidence, scored with evidence only", _second_round, _second_round_eligible,
         training.L2),
        ("letter 4-grams instead of stems", _letters, classifier.eligible, training.L2),
        ("no stems", _without("s:"), classifier.eligible, training.L2),
        ("no pairs of classes", _without("p:"), classifier.eligible, training.L2),
        ("classes choose the texts scored, but are not features", _classes_choose_only, _marked, training.L2),
        ("no classes, no pairs (texts scored on evidence only)", _without("c:", "p:"), classifier.eligible,
         training.L2),
        ("no words, no stems", _without("w:", "s:"), classifier.eligible, training.L2),
        ("scored only with a health class (no measure, verdict, vague, care, instruction)", same,
         _scored_by(health), training.L2),
        ("scored with any class", same, _scored_by(everything), training.L2),
        ("L2 0.03", same, classifier.eligible, 0.03),
        ("L2 0.3", same, classifier.eligible, 0.3),
    ]
    results: list[dict[str, Any]] = []
    for label, change, scored, l2 in alternatives:
        variant = [attrs.evolve(r, names=change(r.names)) for r in rows]
        scores = training.out_of_fold(variant, training.by_part, scored=scored, l2=l2)
        cut = training.choose_cut(variant, scores)
        results.append({"design": label, "cut": cut, "figures": training.figures(variant, scores, cut)})
        if not args.json:
            print(training.report(f"{label}: cut {cut}", results[-1]["figures"]), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
