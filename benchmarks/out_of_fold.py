"""What a new writer's part meets: each development part scored by terms and patterns (tuned on every
part) and by an uncertainty score trained on the *other* parts, at the cut the trainer chooses by
leaving one part out; the clinical rows let through and the administrative rows stopped are listed.

    python benchmarks/out_of_fold.py [dev-14 dev-15 ...] [--no-rows]

The list a detector round works from (docs/rules.md, the method of the ninth round). Only the
development parts the shipped score was trained on are read (classifier.json names them; a part
that has arrived since waits for its round, and a held-out part never is); a minute or so.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "clinic-messages"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", help="development parts to report, by name (default: all)")
    parser.add_argument("--no-rows", action="store_true", help="figures only")
    args = parser.parse_args(argv)

    from emrcomm_content import cache, classifier, training
    from emrcomm_content.clinical import ClinicalDetector

    root = DATA.parents[2]
    files = [root / name for name in classifier.packaged().trained_on.split(", ")]
    assert not any(training.HELD_OUT.search(p.name) for p in files)
    unknown = set(args.parts) - {p.stem for p in files}
    if unknown:
        parser.error(f"not a development part the score was trained on: {', '.join(sorted(unknown))}")
    compiled = cache.compiled(("core", "drugs", "icd10cm"))
    rows = training.read_rows(files, ClinicalDetector(matchers=(compiled.matcher,), fuzzy=compiled.fuzzy))
    scores = training.out_of_fold(rows, training.by_part)
    cut = training.choose_cut(rows, scores)
    texts: dict[str, tuple[str, str]] = {}
    for path in files:
        with path.open(encoding="utf-8", newline="") as f:
            texts.update((r["id"], (r.get("kind") or "", r["text"]))
                         for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    print(f"cut {cut}, chosen by leaving one part out")
    for part in args.parts or sorted({r.part for r in rows}):
        mine = [(r, s) for r, s in zip(rows, scores) if r.part == part]
        for lang in ("en", "fr"):
            clinical = [r.blocked or s >= cut for r, s in mine if r.lang == lang and r.clinical]
            admin = [r.blocked or s >= cut for r, s in mine if r.lang == lang and not r.clinical]
            print(f"{part} {lang}: recall {sum(clinical) / len(clinical):.3f}, "
                  f"false blocks {sum(admin) / len(admin):.3f}")
        if args.no_rows:
            continue
        for r, s in mine:
            if r.clinical and not r.blocked and s < cut:
                print(f"  let through  {r.id} {texts[r.id][0]} (score {s:.2f}): {texts[r.id][1]}")
            elif not r.clinical and (r.blocked or s >= cut):
                how = "term or pattern" if r.blocked else f"score {s:.2f}"
                print(f"  stopped      {r.id} {texts[r.id][0]} ({how}): {texts[r.id][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
