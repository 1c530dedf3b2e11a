"""Train the uncertainty score (classifier.py) on the development parts of the clinic messages.

    python -m emrcomm_content.training benchmarks/data/clinic-messages/dev.tsv \\
        benchmarks/data/clinic-messages/dev-2.tsv benchmarks/data/clinic-messages/dev-3.tsv \\
        -o plugins/emrcomm_content/classifier.json

Deterministic (no random numbers; a fixed order of the rows), so the shipped weights can be
checked against a fresh run. Only development parts are read: a held-out part is never seen here.

The cut (the score above which free text is rerouted as uncertain) is chosen by five-fold
cross-validation *within* the development part: every row is scored by a model that did not
train on it, and the cut is the lowest one at which the rows that no term or pattern blocked
add at most :data:`FALSE_BLOCK_BUDGET` false blocks in each language.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from attrs import frozen

from emrcomm_content.classifier import Classifier, eligible, features
from emrcomm_content.clinical import ClinicalDetector
from emrcomm_content.folding import Folded

EPOCHS = 40
LEARNING_RATE = 0.2
L2 = 0.1  # chosen on the development part, out of fold (docs/rules.md: 0.003 to 0.3 tried)
MIN_ROWS = 2  # a feature must occur in at least this many training rows
FOLDS = 5
# Share of the administrative rows of one language that the uncertainty reroute may add (the
# issue's limit for all false blocks together is 0.03; this keeps room for wording not seen here).
FALSE_BLOCK_BUDGET = 0.015
# The cut never goes below this: "unsure" still means more likely clinical than not, so that
# wording the development part does not have is not rerouted on thin evidence.
LOWEST_CUT = 0.5


@frozen
class Row:
    id: str
    lang: str
    clinical: bool
    names: tuple[str, ...]
    blocked: bool  # a term or a pattern already blocks it


def read_rows(paths: Sequence[Path], detector: ClinicalDetector) -> list[Row]:
    rows = []
    for path in paths:
        with path.open(encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                reading = detector.read(Folded.of(r["text"]))
                names = tuple(features(Folded.of(r["text"]), reading.evidence))
                rows.append(Row(r["id"], r["lang"], r["label"] == "clinical", names, bool(reading.hits)))
    if len({r.id for r in rows}) != len(rows):
        raise ValueError("the same row id is in more than one development file")
    return rows


def train(rows: Sequence[Row]) -> Classifier:
    """L2-regularised logistic regression by stochastic gradient descent, rows in order."""
    seen = Counter(n for row in rows for n in set(row.names))
    kept = {n for n, c in seen.items() if c >= MIN_ROWS}
    weights: dict[str, float] = dict.fromkeys(sorted(kept), 0.0)
    bias = 0.0
    # A fixed order that mixes languages and labels (the files are grouped by both).
    ordered = sorted(rows, key=lambda r: hashlib.sha256(f"order:{r.id}".encode()).digest())
    for epoch in range(EPOCHS):
        rate = LEARNING_RATE / (1 + epoch / 10)
        for row in ordered:
            names = [n for n in row.names if n in weights]
            z = bias + sum(weights[n] for n in names)
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            g = p - (1.0 if row.clinical else 0.0)
            bias -= rate * g
            for n in names:
                # The detector's evidence is rare and meant to count: it is shrunk ten times less.
                decay = L2 if n.startswith("w:") else L2 / 10
                weights[n] -= rate * (g + decay * weights[n])
    small = {n: round(w, 4) for n, w in weights.items() if abs(w) >= 0.005}
    return Classifier(small, round(bias, 4))


def fold_of(row_id: str) -> int:
    return hashlib.sha256(f"folds:{row_id}".encode()).digest()[0] % FOLDS


def out_of_fold(rows: Sequence[Row]) -> list[float]:
    """Each row's score from a model trained on the other folds (0 for a row with no evidence)."""
    scores = [0.0] * len(rows)
    for k in range(FOLDS):
        model = train([r for r in rows if fold_of(r.id) != k])
        for i, r in enumerate(rows):
            if fold_of(r.id) == k and eligible(r.names):
                scores[i] = model.probability(r.names)
    return scores


def choose_cut(rows: Sequence[Row], scores: Sequence[float]) -> float:
    """The lowest cut at which the reroute adds at most the budget of false blocks per language."""
    candidates = sorted({round(s, 3) for s in scores if s >= LOWEST_CUT} | {LOWEST_CUT, 0.99})
    for cut in candidates:
        ok = True
        for lang in sorted({r.lang for r in rows}):
            admin = [(r, s) for r, s in zip(rows, scores) if r.lang == lang and not r.clinical]
            added = sum(1 for r, s in admin if not r.blocked and s >= cut)
            if added > FALSE_BLOCK_BUDGET * len(admin):
                ok = False
        if ok:
            return cut
    return 0.99


def report(rows: Sequence[Row], scores: Sequence[float], cut: float) -> str:
    lines = []
    for lang in sorted({r.lang for r in rows}):
        mine = [(r, s) for r, s in zip(rows, scores) if r.lang == lang]
        clinical = [(r, s) for r, s in mine if r.clinical]
        admin = [(r, s) for r, s in mine if not r.clinical]
        blocked = sum(r.blocked for r, _ in clinical)
        caught = sum(r.blocked or s >= cut for r, s in clinical)
        false = sum(r.blocked or s >= cut for r, s in admin)
        lines.append(f"{lang}: recall {blocked / len(clinical):.3f} by terms and patterns, "
                     f"{caught / len(clinical):.3f} with the reroute (out of fold); "
                     f"false blocks {false}/{len(admin)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dev", type=Path, nargs="+", help="the development parts (dev.tsv, dev-2.tsv, dev-3.tsv)")
    parser.add_argument("-o", "--output", type=Path, help="write the weights here (default: print a summary only)")
    args = parser.parse_args(argv)
    if any("heldout" in p.name for p in args.dev):
        parser.error("a held-out part is never used for training")
    from emrcomm_content import cache

    compiled = cache.compiled(("core", "drugs", "icd10cm"))
    detector = ClinicalDetector(matchers=(compiled.matcher,), fuzzy=compiled.fuzzy)
    rows = read_rows(args.dev, detector)
    scores = out_of_fold(rows)
    cut = choose_cut(rows, scores)
    model = train(rows)
    trained_on = ", ".join(_shown(p) for p in args.dev)
    model = Classifier(model.weights, model.bias, cut=cut, trained_on=trained_on)
    print(f"{len(rows)} rows, {len(model.weights)} weights, cut {cut}", file=sys.stderr)
    print(report(rows, scores, cut), file=sys.stderr)
    if args.output:
        args.output.write_text(json.dumps(model.to_json(), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return 0


def _shown(path: Path) -> str:
    parts = path.resolve().parts
    return "/".join(parts[parts.index("benchmarks"):]) if "benchmarks" in parts else path.name


if __name__ == "__main__":
    sys.exit(main())
