"""The uncertainty score (emrcomm_content.classifier): learned from the development parts only,
reproducibly; explains itself with spans; never makes text uncertain on words alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emrcomm_content import classifier, training
from emrcomm_content.folding import Folded
from support import REPO

DATA = REPO / "benchmarks" / "data" / "clinic-messages"
DEV = (DATA / "dev.tsv", DATA / "dev-2.tsv", DATA / "dev-3.tsv")
HELDOUT = (DATA / "heldout.tsv", DATA / "heldout-2.tsv")
SHIPPED = REPO / "plugins" / "emrcomm_content" / "classifier.json"


def test_shipped_weights_are_what_training_on_the_dev_parts_gives(tmp_path: Path) -> None:
    out = tmp_path / "classifier.json"
    assert training.main([*map(str, DEV), "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert json.loads(SHIPPED.read_text(encoding="utf-8"))["trained_on"] == ", ".join(
        f"benchmarks/data/clinic-messages/{p.name}" for p in DEV)


@pytest.mark.parametrize("heldout", HELDOUT, ids=lambda p: p.name)
def test_training_refuses_a_heldout_part(heldout: Path) -> None:
    with pytest.raises(SystemExit):
        training.main([str(DEV[0]), str(heldout)])


def test_the_package_loads_the_shipped_weights() -> None:
    model = classifier.packaged()
    assert model.weights and 0.5 <= model.cut < 1


def test_a_score_names_the_evidence_that_raised_it_with_its_span() -> None:
    model = classifier.packaged()
    text = "About the concern you raised on Monday, the doctor would like to examine it."
    folded = Folded.of(text)
    evidence = [((10, 17), "weak:finding")]
    score = model.score(folded, evidence)
    assert score.probability > 0
    span, name = score.reasons[0]
    assert name == "weak:finding" and text[span[0] : span[1]] == "concern"


def test_words_alone_never_make_a_text_uncertain() -> None:
    model = classifier.packaged()
    assert model.score(Folded.of("Someone from our office will call you tonight about the next step.")).probability == 0
    assert not classifier.eligible(["w:results", "kind:result"])  # one kind of evidence is everyday talk
    assert classifier.eligible(["kind:result", "kind:test_generic"])
    assert classifier.eligible(["phrase:finding"])
    assert classifier.eligible(["weak:care"])


def test_names_and_boilerplate_are_not_features() -> None:
    names = classifier.features(Folded.of("Riverside Family Health: your visit. Reply STOP to opt out. "
                                          "https://portal.riverside.example/x"))
    assert set(names) == {"w:your", "w:visit"}
