"""The uncertainty score (emrcomm_content.classifier): learned from the development parts only,
reproducibly, with its cut chosen by leaving one part out; word classes carry weight to words the
training never saw; it explains itself with spans and names; a text of logistics scores under the cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emrcomm_content import classifier, training
from emrcomm_content.folding import Folded
from support import REPO

DATA = REPO / "benchmarks" / "data" / "clinic-messages"
DEV = tuple(DATA / f"{name}.tsv" for name in ("dev", "dev-2", "dev-3", "dev-4", "dev-5", "dev-6",
                                                      "dev-7", "dev-8", "dev-9", "dev-10",
                                                      "dev-11", "dev-12", "dev-13", "dev-14", "dev-15", "dev-16",
                                                      "dev-17", "dev-18", "dev-19", "dev-20", "dev-21"))
HELDOUT = (DATA / "heldout.tsv", DATA / "heldout-2.tsv")
SHIPPED = REPO / "plugins" / "emrcomm_content" / "classifier.json"


@pytest.mark.clockless
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
    assert model.weights and training.LOWEST_CUT <= model.cut < 1


def test_a_score_names_the_evidence_that_raised_it_with_its_span() -> None:
    model = classifier.packaged()
    text = "About the concern you raised on Monday, the doctor would like to examine it."
    folded = Folded.of(text)
    evidence = [((10, 17), "weak:finding")]
    score = model.score(folded, evidence, reasons=3)
    assert score.probability > 0
    assert ((10, 17), "weak:finding") in score.reasons and text[10:17] == "concern"


def test_a_reason_is_said_in_english_and_french() -> None:
    assert classifier.describe("c:wound") == ("a word of wound or injury care", "un mot de soin de plaie ou de blessure")
    assert classifier.describe("p:body+wound") == ("a part of the body with a word of wound or injury care",
                                                   "une partie du corps avec un mot de soin de plaie ou de blessure")
    assert classifier.describe("w:dressing") == ("a word more frequent in clinical messages", "un mot plus fréquent dans les messages cliniques")


def test_a_class_carries_weight_to_words_the_training_never_saw() -> None:
    """A part of the body that no development row names still counts as one."""
    from emrcomm_content import wordclasses

    model = classifier.packaged()
    unseen = [w for w in wordclasses.BY_NAME["body"].words
              if "*" not in w and " " not in w and f"w:{w}" not in model.weights and len(w) > 3]
    assert unseen, "every part of the body is in the training rows"
    text = f"Keep the dressing on your {unseen[0]} dry until Friday."
    names = classifier.features(Folded.of(text), known=model.known)
    assert "c:body" in names and "p:body+wound" in names
    assert model.weights["c:body"] > 0


def test_logistics_score_under_the_cut_and_names_alone_are_not_scored() -> None:
    """Every free text is scored: the weights, not a list of words, keep logistics out."""
    model = classifier.packaged()
    for text in ("Someone from our office will call you tonight.",
                 "Your appointment is moved to Tuesday at 9:40, same place.",
                 "Quelqu'un du bureau va vous rappeler ce soir.",
                 "Votre rendez-vous est déplacé à mardi 9h40, même endroit."):
        assert 0 < model.score(Folded.of(text)).probability < model.cut, text
    assert model.score(Folded.of("Riverside Family Health. Reply STOP to opt out.")).probability == 0
    assert model.score(Folded.of("Keep the dressing on your heel dry until Friday.")).probability >= model.cut


def test_names_and_boilerplate_are_not_features() -> None:
    names = classifier.features(Folded.of("Riverside Family Health: your visit. Reply STOP to opt out. "
                                          "https://portal.riverside.example/x"))
    assert set(names) == {"w:your", "w:visit", "c:yours"}


def test_a_name_is_not_a_part_of_the_body() -> None:
    assert "c:body" not in classifier.features(Folded.of("Sacred Heart Family Clinic: see you Tuesday at 9:40."))
    assert "c:body" in classifier.features(Folded.of("Heart rate and heart sounds were fine."))


def test_a_sentence_may_start_with_a_known_word_and_capitals_are_an_abbreviation() -> None:
    names = classifier.features(Folded.of("Keep taking the ATB. Marie called."), known={"keep", "marie"})
    assert {"w:keep", "w:atb", "c:medication"} <= set(names)
    assert "w:marie" in names  # known and first in its sentence: the model has seen it in lower case
    assert "w:called" in names


def test_a_possessive_keeps_the_class_of_its_word() -> None:
    assert "c:measure" in classifier.features(Folded.of("Your weight's holding steady, just what we want."))


def test_a_french_article_is_not_part_of_the_word() -> None:
    names = classifier.features(Folded.of("Gardez l'écharpe, l'infirmière passera."))
    assert {"w:echarpe", "w:infirmiere", "c:wound"} <= set(names)


def test_the_shipped_cut_was_chosen_by_leaving_one_part_out() -> None:
    model = classifier.packaged()
    loo = model.cross_validation["leave_one_part_out"]
    assert isinstance(loo, dict) and set(loo) == {"en", "fr"}
    target = model.cross_validation["target_false_reroute"]
    assert all(f["false_reroute"] <= target for f in loo.values())
    assert set(loo["en"]["false_reroute_by_part"]) == {p.stem for p in DEV}


@pytest.mark.parametrize(("lang", "floor"), [("en", 0.993), ("fr", 0.99)])
def test_out_of_fold_recall_with_the_reroute_does_not_fall_below_what_was_reached(lang: str, floor: float) -> None:
    """Ninth round, sixteen parts, cut 0.485: terms and patterns 0.882 (en) and 0.877 (fr), with the
    reroute 0.9935 and 0.9908 (the floors; before the round's rules, 0.989 and 0.990 at 0.48).
    Seventh round, cut 0.50, leaving one development part out: terms and patterns catch 0.912 (en)
    and 0.896 (fr) of the clinical rows of the twelve parts, the reroute brings them to 0.989 and 0.991
    (seventh round; ten parts, fifth round: 0.895 and 0.890, then 0.987 and 0.989; eight parts, fourth
    round: 0.984 and 0.981; five parts, third round: 0.987 and 0.980; each part is scored by a model
    that did not see it)."""
    f = classifier.packaged().cross_validation["leave_one_part_out"][lang]  # type: ignore[index]
    assert f["recall_with_reroute"] >= floor


def test_the_out_of_fold_listing_refuses_a_held_out_part() -> None:
    import runpy

    tool = runpy.run_path(str(REPO / "benchmarks" / "out_of_fold.py"))
    with pytest.raises(SystemExit) as exit_:
        tool["main"](["heldout-3"])
    assert exit_.value.code == 2
