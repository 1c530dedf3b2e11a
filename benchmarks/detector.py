"""Benchmark of the clinical-content detector on the dev corpus texts.

    python benchmarks/detector.py [--json] [--corpus PATH] [--repeat N]

Measures, in one run:

* cold build: the default lexicons (core + drugs + ICD-10-CM) compiled from their packaged
  sources into an empty cache folder, in a fresh process;
* warm start: the same, loaded from that cache, in a fresh process (also with the import of
  the module, and the construction of the content plugin once the lexicons are loaded);
* the detector (``ClinicalDetector.find`` on the folded text: lexicons, context rules,
  misspellings, word forms, doses) over every text of the corpus: mean, p50 and p99 time per
  message and MB/s;
* the same without misspelling tolerance (its cost);
* two baselines over the same texts, to report ratios against (machines differ, ratios travel):
  ``lower_in`` a plain ``text.lower()`` then ``term in text`` for the project's 1,700 core terms
  (the naive detector one would write first), and ``automaton_iter`` the raw
  ``Automaton.iter`` of the full compiled automaton over the folded text, without word
  boundaries or context rules (the floor of any lexicon scan).

Nothing here is asserted; the figures are printed (or written as JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT / "tests" / "data" / "dev-corpus.tsv"
NAMES = ("core", "drugs", "icd10cm")

_START = """
import json, sys, time
t0 = time.perf_counter()
from emrcomm_content import cache
c = cache.compiled({names!r})
t1 = time.perf_counter()
from pathlib import Path
from emrcomm.testing import make_context
import emrcomm_content
import tempfile
with tempfile.TemporaryDirectory() as d:
    context = make_context("content", {{}}, Path(d))
    t2 = time.perf_counter()
    emrcomm_content.Plugin(context)
    t3 = time.perf_counter()
print(json.dumps({{"origin": c.origin, "load_s": c.seconds, "import_and_load_s": t1 - t0, "plugin_s": t3 - t2}}))
"""


def start(cache_dir: Path) -> dict[str, float | str]:
    """Load (or build) the lexicons in a fresh interpreter with ``cache_dir`` as the cache folder."""
    env = {**os.environ, "EMRCOMM_CACHE_DIR": str(cache_dir)}
    out = subprocess.run(
        [sys.executable, "-c", _START.format(names=NAMES)], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def texts_of(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def per_message(fn, texts: list[str], repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Best-of-``repeat`` time for each text (so one stall does not count), then summary figures."""
    best = [float("inf")] * len(texts)
    for _ in range(repeat):
        for i, text in enumerate(texts):
            t = time.perf_counter()
            fn(text)
            best[i] = min(best[i], time.perf_counter() - t)
    total = sum(best)
    ordered = sorted(best)
    size = sum(len(t.encode("utf-8")) for t in texts)
    return {
        "mean_us": total / len(texts) * 1e6,
        "p50_us": ordered[len(ordered) // 2] * 1e6,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
        "total_s": total,
        "mb_per_s": size / total / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        cold = start(Path(folder))
        warm = start(Path(folder))
        os.environ["EMRCOMM_CACHE_DIR"] = folder

        from emrcomm_content import cache, terms
        from emrcomm_content.clinical import ClinicalDetector
        from emrcomm_content.folding import Folded, fold_text

        compiled = cache.compiled(NAMES)
        detector = ClinicalDetector(matchers=(compiled.matcher,), fuzzy=compiled.fuzzy)
        texts = texts_of(args.corpus)
        core_terms = [fold_text(t).strip() for lex in (terms.CLINICAL_EN, terms.CLINICAL_FR) for t, _ in lex.entries]
        automaton = compiled.matcher._automaton

        def lower_in(text: str) -> list[str]:
            low = text.lower()
            return [t for t in core_terms if t in low]

        def automaton_iter(text: str) -> int:
            return sum(1 for _ in automaton.iter(Folded.of(text).text))

        def detect(text: str) -> int:
            return len(detector.find(Folded.of(text)))

        exact_only = ClinicalDetector(matchers=(compiled.matcher,))

        def detect_without_misspellings(text: str) -> int:
            return len(exact_only.find(Folded.of(text)))

        runs = {
            "detector": per_message(detect, texts, args.repeat),
            "detector_no_fuzzy": per_message(detect_without_misspellings, texts, args.repeat),
            "lower_in": per_message(lower_in, texts, args.repeat),
            "automaton_iter": per_message(automaton_iter, texts, args.repeat),
        }

    report = {
        "corpus": str(args.corpus),
        "messages": len(texts),
        "megabytes": sum(len(t.encode("utf-8")) for t in texts) / 1e6,
        "terms": compiled.matcher.size,
        "fuzzy_names": len(compiled.fuzzy),
        "cold_build_s": cold["load_s"],
        "cold_origin": cold["origin"],
        "warm_load_s": warm["load_s"],
        "warm_origin": warm["origin"],
        "warm_import_and_load_s": warm["import_and_load_s"],
        "warm_plugin_start_s": warm["plugin_s"],
        "cold_over_warm": cold["load_s"] / warm["load_s"],
        "runs": runs,
        "detector_over_lower_in": runs["detector"]["mean_us"] / runs["lower_in"]["mean_us"],
        "detector_over_automaton_iter": runs["detector"]["mean_us"] / runs["automaton_iter"]["mean_us"],
        "misspelling_cost": runs["detector"]["mean_us"] / runs["detector_no_fuzzy"]["mean_us"] - 1,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"corpus: {report['corpus']} ({report['messages']} messages, {report['megabytes']:.2f} MB)")
    print(f"lexicons: {report['terms']} terms, {report['fuzzy_names']} names with misspelling tolerance")
    print(f"cold build (fresh process, empty cache): {report['cold_build_s']:.2f} s [{report['cold_origin']}]")
    print(f"warm load (fresh process, from cache):   {report['warm_load_s']:.3f} s [{report['warm_origin']}]"
          f"; with the module imports {report['warm_import_and_load_s']:.3f} s; "
          f"then Plugin() {report['warm_plugin_start_s']:.3f} s")
    print(f"cold / warm: {report['cold_over_warm']:.0f}x")
    print(f"{'':16} {'mean µs':>9} {'p50 µs':>8} {'p99 µs':>8} {'MB/s':>7}")
    for name, r in runs.items():
        print(f"{name:16} {r['mean_us']:9.1f} {r['p50_us']:8.1f} {r['p99_us']:8.1f} {r['mb_per_s']:7.2f}")
    print(f"detector / lower_in: {report['detector_over_lower_in']:.2f}x the time; "
          f"detector / automaton_iter: {report['detector_over_automaton_iter']:.2f}x the time")
    print(f"misspelling tolerance adds {report['misspelling_cost']:.0%} to the detector's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
