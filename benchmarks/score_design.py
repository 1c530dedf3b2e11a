"""How the uncertainty score's design was chosen: each alternative cross-validated on the development
parts only, leaving one part out, exactly as the trainer chooses its cut.

    python benchmarks/score_design.py [--json] [--first N] [--fresh PART ...]

For each alternative (the shipped design, then one change at a time), the trainer's procedure
(emrcomm_content.training): every development part scored by a model trained on the others, the
lowest cut at which the reroute adds at most 0.015 false blocks in each language, and at that
cut, per language: recall with the reroute, the clinical rows that no term or pattern stops and
the score reroutes, the rows only a pattern stops that the score would reroute without it (what
the score does when a pattern misses), and the false reroutes. Alternatives are made by removing
or adding features to the shipped ones, so they share everything else. Held-out parts are never
read. Takes a few minutes.

Leaving a part out measures a score on wording its model has not seen, but not on wording the
terms and patterns have not seen: they were tuned on every development part, so what they leave of
one is little and easy. ``--fresh`` gives parts no one has tuned on yet (a new writer's part on
arrival): each alternative is trained on the development parts, its cut chosen as above, and the
fresh parts are scored by it at that cut, the whole detector as a held-out part would be.
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
DATA = ROOT / "benchmarks" / "data" / "clinic-messages"


def trained_parts() -> tuple[Path, ...]:
    """The development parts the shipped score was trained on (classifier.json names them): a part
    that has arrived since waits for the next round and is read only when given to ``--fresh``."""
    from emrcomm_content import classifier

    return tuple(ROOT / name for name in classifier.packaged().trained_on.split(", "))


def part(name: str) -> Path:
    """A part by its path, or by its name in the data folder (``dev-14`` or ``dev-14.tsv``)."""
    path = Path(name)
    if path.exists():
        return path
    return DATA / (name if name.endswith(".tsv") else f"{name}.tsv")


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


def _gated(names: Iterable[str]) -> bool:
    """Until the ninth round: a text was scored only with a word of a class of wordclasses.SCORED,
    weak wording, or two kinds of evidence (a result word and a test word)."""
    from emrcomm_content import wordclasses

    kinds = set()
    for n in names:
        if n.startswith(("weak:", "phrase:")) or (n.startswith("c:") and n[2:] in wordclasses.SCORED):
            return True
        if n.startswith("kind:"):
            kinds.add(n)
    return len(kinds) >= 2


def _second_round_eligible(names: Iterable[str]) -> bool:
    names = tuple(names)
    kinds = {n for n in names if n.startswith("kind:")}
    return any(n.startswith(("weak:", "phrase:")) for n in names) or len(kinds) >= 2


def _classes_choose_only(names: tuple[str, ...]) -> tuple[str, ...]:
    """No class or pair features; a marker keeps the texts the classes choose for scoring."""
    kept = tuple(n for n in names if not n.startswith(("c:", "p:")))
    return (*kept, "e:scored") if _gated(names) else kept


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


def training_refuses(path: Path) -> bool:
    from emrcomm_content import training

    return bool(training.HELD_OUT.search(path.name))


def _fresh(rows: list[Any], scores: list[float], cut: float) -> dict[str, dict[str, Any]]:
    """Recall and false blocks of the whole detector (terms, patterns and the score at ``cut``)."""
    out = {}
    for lang in sorted({r.lang for r in rows}):
        clinical = [r.blocked or s >= cut for r, s in zip(rows, scores) if r.lang == lang and r.clinical]
        admin = [r.blocked or s >= cut for r, s in zip(rows, scores) if r.lang == lang and not r.clinical]
        out[lang] = {"recall": round(sum(clinical) / len(clinical), 4), "missed": len(clinical) - sum(clinical),
                     "false_blocks": round(sum(admin) / len(admin), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fresh", type=part, nargs="*", default=[],
                        help="parts no term or pattern was tuned on yet, by name (dev-14) or path")
    parser.add_argument("--first", type=int, help="only the first N alternatives (each takes a minute or two)")
    args = parser.parse_args(argv)
    if any(training_refuses(p) for p in args.fresh):
        parser.error("a held-out part is never read here")

    from emrcomm_content import cache, training, wordclasses
    from emrcomm_content.clinical import ClinicalDetector

    compiled = cache.compiled(("core", "drugs", "icd10cm"))
    fresh = {p.resolve() for p in args.fresh}
    missing = [str(p) for p in fresh if not p.exists()]
    if missing:
        parser.error(f"no such part: {', '.join(missing)}")
    dev = [p for p in trained_parts() if p.resolve() not in fresh]
    detector = ClinicalDetector(matchers=(compiled.matcher,), fuzzy=compiled.fuzzy)
    rows = training.read_rows(dev, detector)
    new = training.read_rows(sorted(fresh), detector) if fresh else []
    health = {"body", "symptom", "wound", "medication", "dosing", "finding", "mind", "function", "fluid", "unit", "decimal"}
    everything = {c.name for c in (*wordclasses.CLASSES, *wordclasses.NUMBER_CLASSES)}
    same: Callable[[tuple[str, ...]], tuple[str, ...]] = lambda names: names  # noqa: E731
    alternatives: list[tuple[str, Callable[[tuple[str, ...]], tuple[str, ...]], Callable[[Iterable[str]], bool],
                             float]] = [
        ("shipped: words, stems, classes, pairs, evidence; every free text scored", same, training.has_features,
         training.L2),
        ("scored only with a word of a SCORED class or evidence (until the ninth round)", same, _gated, training.L2),
        ("second round: words and evidence, scored with evidence only", _second_round, _second_round_eligible,
         training.L2),
        ("letter 4-grams instead of stems", _letters, training.has_features, training.L2),
        ("no stems", _without("s:"), training.has_features, training.L2),
        ("no pairs of classes", _without("p:"), training.has_features, training.L2),
        ("classes choose the texts scored, but are not features", _classes_choose_only, _marked, training.L2),
        ("no classes, no pairs", _without("c:", "p:"), training.has_features,
         training.L2),
        ("no words, no stems", _without("w:", "s:"), training.has_features, training.L2),
        ("scored only with a health class (no measure, verdict, vague, care, instruction)", same,
         _scored_by(health), training.L2),
        ("scored with any class", same, _scored_by(everything), training.L2),
        ("L2 0.03", same, training.has_features, 0.03),
        ("L2 0.3", same, training.has_features, 0.3),
    ]
    results: list[dict[str, Any]] = []
    for label, change, scored, l2 in alternatives[: args.first]:
        variant = [attrs.evolve(r, names=change(r.names)) for r in rows]
        scores = training.out_of_fold(variant, training.by_part, scored=scored, l2=l2)
        cut = training.choose_cut(variant, scores)
        results.append({"design": label, "cut": cut, "figures": training.figures(variant, scores, cut)})
        if new:
            model = training.train(variant, l2=l2)
            changed = [attrs.evolve(r, names=change(r.names)) for r in new]
            results[-1]["fresh"] = _fresh(changed, [model.probability(r.names) if scored(r.names) else 0.0
                                                    for r in changed], cut)
        if not args.json:
            print(training.report(f"{label}: cut {cut}", results[-1]["figures"]), flush=True)
            for lang, f in results[-1].get("fresh", {}).items():
                print(f"  fresh parts, {lang}: recall {f['recall']:.3f}, false blocks {f['false_blocks']:.3f} "
                      f"({f['missed']} clinical rows let through)", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
