"""How the clinical-content detector does on the project's own clinic messages
(benchmarks/data/clinic-messages), measured through the pipeline that decides whether a text may
leave by SMS: ``Host.check(text, channel="sms")``. A clinical row is caught when a block finding is
CLINICAL_CONTENT, HEALTH_IDENTIFIER or CLINICAL_UNCERTAIN (rerouted to the portal); an
administrative row so stopped is a false block.

The parts (see the data README): ``heldout-3.tsv``, written blind by someone who never read or
ran the detector and scored once when the third round was done, the first clean one (the later blind
parts, ``heldout-4.tsv`` to ``heldout-22.tsv``, by nineteen more writers, below); ``heldout-2.tsv``, written before the second round changed
anything and scored once when it was done; ``heldout.tsv``, the first round's held-out part,
scored several times and read; neither is clean any more (the third round's development parts
were written after reading the list of ``heldout-2.tsv``'s misses). ``dev.tsv`` to ``dev-3.tsv``
were tuned on; ``dev-4.tsv`` and ``dev-5.tsv`` (third round) trained the uncertainty score and
chose its cut by cross-validation, and no term or pattern was tuned on them; ``dev-6.tsv``,
``dev-7.tsv`` and ``dev-8.tsv`` (fourth round) were each scored once, then tuned on and trained on;
``dev-9.tsv`` and ``dev-10.tsv`` (fifth round), written by two independent writers who never read the
project, likewise; ``dev-11.tsv`` (sixth round), by a third independent writer, likewise; ``dev-12.tsv``
(seventh round), by a fourth, likewise; ``dev-13.tsv`` (eighth round), by a fifth, likewise;
``dev-14.tsv`` to ``dev-16.tsv`` (ninth round), by three more, likewise.

What is asserted is the figures reached, as floors (no expected failures), and the issue's
false-block limit (0.03) where it holds. The third round's cross-validated figures are in
tests/test_classifier.py; docs/rules.md has them all.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from emrcomm.config import load_config
from emrcomm.host import Host
from emrcomm.model import Severity
from emrcomm.testing import TEST_NOW
from support import REPO, write_config

# Scoring every part takes minutes and reads no clock but the host's fixed one: one clock-guard job runs it.
pytestmark = pytest.mark.clockless

DATA = REPO / "benchmarks" / "data" / "clinic-messages"
STOPPING = frozenset({"CLINICAL_CONTENT", "HEALTH_IDENTIFIER", "CLINICAL_UNCERTAIN"})
FIRST_ROUND = ("dev", "heldout")
DEVELOPMENT = ("dev", "dev-2", "dev-3")
# The id of a later row names its part: h (held-out 2), d (development 2), p to t (the five rounds
# of probe sentences, development 3), u (development 4), v (development 5), w (held-out 3), x
# (development 6), y (development 7), z (development 8), e (development 9), f (development 10), b
# (held-out 4), c (held-out 5), g (held-out 6), j (held-out 7), l (held-out 8), m (held-out 9), i (development 11), k
# (development 12), n (development 13), o (held-out 10), a (held-out 11), ab, ac and ad (development 14
# to 16), ae, af and ag (held-out 12 to 14), ah, ai and aj (development 17 to 19), ak to an (held-out 15 to 18), ao to ar (held-out 19 to 22), as and at
# (development 20 and 21).
LATER_IDS = {"heldout-22": r"(en|fr)-ar\d{4}", "heldout-21": r"(en|fr)-aq\d{4}", "heldout-20": r"(en|fr)-ap\d{4}",
             "heldout-19": r"(en|fr)-ao\d{4}", "dev-20": r"(en|fr)-as\d{4}", "dev-21": r"(en|fr)-at\d{4}",
             "heldout-18": r"(en|fr)-an\d{4}", "heldout-17": r"(en|fr)-am\d{4}", "heldout-16": r"(en|fr)-al\d{4}",
             "heldout-15": r"(en|fr)-ak\d{4}", "heldout-14": r"(en|fr)-ag\d{4}", "heldout-13": r"(en|fr)-af\d{4}", "heldout-12": r"(en|fr)-ae\d{4}", "heldout-11": r"(en|fr)-a\d{4}", "heldout-10": r"(en|fr)-o\d{4}", "heldout-9": r"(en|fr)-m\d{4}", "heldout-8": r"(en|fr)-l\d{4}", "heldout-7": r"(en|fr)-j\d{4}",
              "heldout-6": r"(en|fr)-g\d{4}", "heldout-5": r"(en|fr)-c\d{4}", "heldout-4": r"(en|fr)-b\d{4}",
             "heldout-3": r"(en|fr)-w\d{4}", "heldout-2": r"(en|fr)-h\d{4}", "dev-2": r"(en|fr)-d\d{4}",
             "dev-3": r"(en|fr)-[p-t]\d{4}",
             "dev-4": r"(en|fr)-u\d{4}", "dev-5": r"(en|fr)-v\d{4}", "dev-6": r"(en|fr)-x\d{4}",
             "dev-7": r"(en|fr)-y\d{4}", "dev-8": r"(en|fr)-z\d{4}", "dev-9": r"(en|fr)-e\d{4}",
             "dev-10": r"(en|fr)-f\d{4}", "dev-11": r"(en|fr)-i\d{4}", "dev-12": r"(en|fr)-k\d{4}",
             "dev-13": r"(en|fr)-n\d{4}", "dev-14": r"(en|fr)-ab\d{4}", "dev-15": r"(en|fr)-ac\d{4}",
             "dev-16": r"(en|fr)-ad\d{4}", "dev-17": r"(en|fr)-ah\d{4}", "dev-18": r"(en|fr)-ai\d{4}",
             "dev-19": r"(en|fr)-aj\d{4}"}


@attrs.frozen
class Figures:
    recall: float
    false_block: float
    misses: tuple[str, ...]
    false_blocks: tuple[str, ...]


def read(part: str) -> list[dict[str, str]]:
    with (DATA / f"{part}.tsv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def stopped(host: Host, row: dict[str, str]) -> bool:
    found = host.check(row["text"], channel="sms", category="appointment-reminder", language=row["lang"])
    return any(f.code in STOPPING and f.severity is Severity.BLOCK for f in found)


def measure(host: Host, rows: list[dict[str, str]]) -> Figures:
    clinical = [r for r in rows if r["label"] == "clinical"]
    admin = [r for r in rows if r["label"] == "administrative"]
    misses = tuple(r["text"] for r in clinical if not stopped(host, r))
    false = tuple(r["text"] for r in admin if stopped(host, r))
    return Figures(1 - len(misses) / len(clinical), len(false) / len(admin), misses, false)


def by_scope(host: Host, part: str) -> dict[str, Figures]:
    rows = read(part)
    return {"all": measure(host, rows), **{lang: measure(host, [r for r in rows if r["lang"] == lang])
                                           for lang in ("en", "fr")}}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    with Host(load_config(write_config(tmp_path_factory.mktemp("quality"))), clock=lambda: TEST_NOW) as h:
        yield h


@pytest.fixture(scope="module")
def heldout_2(host: Host) -> dict[str, Figures]:
    return by_scope(host, "heldout-2")


@pytest.fixture(scope="module")
def heldout_1(host: Host) -> dict[str, Figures]:
    return by_scope(host, "heldout")


# --- the data -------------------------------------------------------------------------------------
def test_the_first_round_set_is_big_enough_and_half_french() -> None:
    rows = read("dev") + read("heldout")
    assert len(rows) >= 1500
    assert abs(sum(r["lang"] == "fr" for r in rows) / len(rows) - 0.5) < 0.02
    for lang in ("en", "fr"):
        mine = [r for r in rows if r["lang"] == lang]
        assert {r["label"] for r in mine} == {"clinical", "administrative"}
        assert sum(r["label"] == "clinical" for r in mine) / len(mine) == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize(("part", "size"), [("heldout-22", 1000), ("heldout-21", 1000), ("heldout-20", 1000), ("heldout-19", 1000), ("dev-20", 600), ("dev-21", 600), ("heldout-18", 1000), ("heldout-17", 1000), ("heldout-16", 1000), ("heldout-15", 1000), ("heldout-14", 1000), ("heldout-13", 1000), ("heldout-12", 1000), ("heldout-11", 1000), ("heldout-10", 1000), ("heldout-9", 1000), ("heldout-8", 1000), ("heldout-7", 1200), ("heldout-6", 1200), ("heldout-5", 1500), ("heldout-4", 1380), ("heldout-3", 1100), ("heldout-2", 600), ("dev-2", 600), ("dev-4", 800),
                                            ("dev-5", 300), ("dev-6", 340),
                                            ("dev-7", 120), ("dev-8", 80), ("dev-9", 450), ("dev-10", 450),
                                            ("dev-11", 500), ("dev-12", 600), ("dev-13", 600),
                                            ("dev-14", 600), ("dev-15", 600), ("dev-16", 600),
                                            ("dev-17", 600), ("dev-18", 600), ("dev-19", 600)])
def test_the_later_parts_are_big_enough_and_half_french(part: str, size: int) -> None:
    rows = read(part)
    assert len(rows) >= size
    assert abs(sum(r["lang"] == "fr" for r in rows) / len(rows) - 0.5) < 0.02
    for lang in ("en", "fr"):
        mine = [r for r in rows if r["lang"] == lang]
        assert 0.4 <= sum(r["label"] == "clinical" for r in mine) / len(mine) <= 0.6


@pytest.mark.parametrize("part", FIRST_ROUND)
def test_the_first_round_split_is_the_documented_hash_of_the_id(part: str) -> None:
    for row in read(part):
        odd = hashlib.sha256(f"clinic-messages:{row['id']}".encode()).digest()[0] & 1
        assert ("heldout" if odd else "dev") == part, row["id"]


@pytest.mark.parametrize(("part", "pattern"), LATER_IDS.items())
def test_a_later_id_names_its_part(part: str, pattern: str) -> None:
    assert all(re.fullmatch(pattern, row["id"]) for row in read(part))


def test_no_row_is_in_two_parts() -> None:
    ids = [row["id"] for part in (*FIRST_ROUND, *LATER_IDS) for row in read(part)]
    assert len(ids) == len(set(ids))


def test_every_row_has_a_known_label_and_language() -> None:
    for part in (*FIRST_ROUND, *LATER_IDS):
        assert all(r["label"] in ("clinical", "administrative") and r["lang"] in ("en", "fr") for r in read(part))


# --- the blind held-out parts ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def blind(host: Host) -> Callable[[str], dict[str, Figures]]:
    """A blind part's figures, measured once for the module."""
    return functools.cache(lambda part: by_scope(host, part))


# heldout-3: scored once when the third round was done: recall 0.913 (en 0.917, fr 0.909), false
# blocks 0.076 (en 0.063, fr 0.089); once when the fourth was done: recall 0.930 (en 0.932, fr
# 0.928), false blocks 0.033 (en 0.024, fr 0.041). Nothing was chosen by it; docs/rules.md lists
# its misses and false blocks by kind. The fifth round, scored for figures only: recall 0.921 (en
# 0.920, fr 0.922), false blocks 0.029 (en 0.024, fr 0.033): six clinical rows fewer (by this
# round's whose-health changes and the score retrained on ten parts; its retrainings moved English
# by a row either way), two false blocks fewer; the floors follow the figures, as nothing may be
# chosen by this part.
# heldout-4: a second blind part, by a writer who never saw the project, scored by figures only:
# the third round's detector, recall 0.948 (en 0.939, fr 0.957), false blocks 0.059 (en 0.058, fr
# 0.060); the fourth round's, recall 0.948 (en 0.939, fr 0.957), false blocks 0.045 (en 0.049, fr
# 0.040); the fifth round's, recall 0.957 (en 0.948, fr 0.965), false blocks 0.032 (en 0.035, fr
# 0.029).
# heldout-5: a third blind part, by a third writer, committed before it was scored, by figures only:
# the fourth round's detector, recall 0.927 (en 0.944, fr 0.909), false blocks 0.056 (en 0.053, fr
# 0.059); the fifth round's, recall 0.925 (en 0.933, fr 0.917), false blocks 0.041 (en 0.040, fr
# 0.043). The sixth round was told the kinds this part's figures showed weakest (never its rows).
# The sixth round's detector: heldout-4 recall 0.957 (en 0.951, fr 0.962), false blocks 0.023 (en
# 0.023, fr 0.023); heldout-5 recall 0.939 (en 0.947, fr 0.931), false blocks 0.035 (en 0.029, fr
# 0.040).
# heldout-6: a fourth blind part, by a fourth writer (French written first, apart), committed before
# it was scored, by figures only, and nothing of it told to anyone tuning: the fifth round's
# detector, recall 0.968 (en 0.970, fr 0.967), false blocks 0.032 (en 0.020, fr 0.043); the
# sixth's, recall 0.975 (en 0.977, fr 0.973), false blocks 0.027 (en 0.020, fr 0.033).
# The seventh round's detector: heldout-3 recall 0.935 (en 0.944, fr 0.925), false blocks 0.023 (en
# 0.016, fr 0.030); heldout-4 0.959 (en 0.951, fr 0.968), 0.023 (0.023, 0.023); heldout-5 0.940 (en
# 0.952, fr 0.928), 0.028 (0.021, 0.035); heldout-6 0.973 (en 0.977, fr 0.970), 0.020 (0.020, 0.020).
# heldout-7 and heldout-8: a fifth and a sixth blind part, by two more writers, each committed before
# it was scored, by figures only: the sixth round's detector, heldout-7 recall 0.967 (en 0.957, fr
# 0.977), false blocks 0.030 (en 0.037, fr 0.023); heldout-8 0.964 (en 0.956, fr 0.972), 0.028 (en
# 0.036, fr 0.020); the seventh's, heldout-7 0.970 (en 0.957, fr 0.983), 0.025 (en 0.033, fr
# 0.017); heldout-8 0.960 (en 0.952, fr 0.968), 0.024 (en 0.028, fr 0.020).
# heldout-9: a seventh blind part, by a seventh writer (English written first), committed before it
# was scored, by figures only, nothing of it told to anyone tuning: the seventh round's detector,
# recall 0.942 (en 0.936, fr 0.948), false blocks 0.022 (en 0.032, fr 0.012). The eighth round was
# told heldout-7's and heldout-8's weakest kinds. The eighth round's detector: heldout-9 0.948 (en
# 0.944, fr 0.952), 0.020 (en 0.024, fr 0.016); heldout-8 0.962 (en 0.956, fr 0.968), 0.020 (en
# 0.024, fr 0.016); heldout-7 0.968 (en 0.957, fr 0.980), 0.022 (en 0.027, fr 0.017); heldout-6
# 0.973 (en 0.977, fr 0.970), 0.018 (en 0.020, fr 0.017); heldout-5 0.941 (en 0.952, fr 0.931),
# 0.029 (en 0.021, fr 0.037); heldout-4 0.959 (en 0.954, fr 0.965), 0.023 (0.023, 0.023);
# heldout-3 0.935 (en 0.944, fr 0.925), 0.021 (en 0.016, fr 0.026).
# The score's cut then went from 0.50 to 0.415 (the false-reroute budget, chosen on development parts
# only, decided before heldout-10 was written): heldout-9 0.950 (en 0.948, fr 0.952), 0.026 (en
# 0.032, fr 0.020); heldout-8 0.970 (en 0.968, fr 0.972), 0.026 (en 0.032, fr 0.020); heldout-7
# 0.972 (en 0.957, fr 0.987), 0.023 (en 0.030, fr 0.017); heldout-6 0.977 (en 0.980, fr 0.973),
# 0.020 (en 0.023, fr 0.017); heldout-5 0.941 (en 0.952, fr 0.931), 0.036 (en 0.032, fr 0.040);
# heldout-4 0.962 (en 0.954, fr 0.971), 0.033 (en 0.040, fr 0.026); heldout-3 0.945 (en 0.954, fr
# 0.935), 0.023 (en 0.020, fr 0.026). These were the floors and ceilings until the ninth round.
# heldout-10: an eighth blind part, by an eighth writer, written after the cut's change, committed
# before it was scored, by figures only, told to no one: recall 0.962 (en 0.956, fr 0.968), false
# blocks 0.028 (en 0.028, fr 0.028); at the cut of 0.50, 0.956 (en 0.948, fr 0.964), 0.024 (0.024,
# 0.024); the seventh round's detector, 0.958 (en 0.952, fr 0.964), 0.022 (en 0.020, fr 0.024).
# heldout-11: a ninth blind part, by a ninth writer, committed before the ninth round changed anything,
# by figures only, told to no one: the eighth round's detector, recall 0.966 (en 0.984, fr 0.948),
# false blocks 0.010 (en 0.004, fr 0.016).
# The ninth round (every free text scored, then rules for dev-14 to dev-16; docs/rules.md). The old
# blind parts' summed counts (never their rows) were looked at once when the score's gate was
# questioned, before the decision was taken on dev-14 to dev-16 on arrival; heldout-10 and heldout-11
# were scored only after it. With the score alone ungated: heldout-10 0.970 (en 0.964, fr 0.976), 0.022
# (en 0.024, fr 0.020); heldout-11 0.988 (en 0.992, fr 0.984), 0.012 (en 0.008, fr 0.016). The ninth
# round's detector gives the floors and ceilings below (recall en / fr, false blocks en / fr):
# heldout-11 0.992 / 0.984, 0.008 / 0.012; heldout-10 0.964 / 0.976, 0.016 / 0.020; heldout-9 0.960 /
# 0.992, 0.028 / 0.024; heldout-8 0.980 / 0.980, 0.028 / 0.012; heldout-7 0.980 / 0.990, 0.023 / 0.013;
# heldout-6 0.977 / 0.983, 0.030 / 0.020; heldout-5 0.963 / 0.955, 0.021 / 0.035; heldout-4 0.977 /
# 0.980, 0.023 / 0.026; heldout-3 0.957 / 0.964, 0.016 / 0.022.
# heldout-12 and heldout-13: a tenth and an eleventh blind part, by two more writers, written after the
# ninth round's changes, each committed alone before it was scored, by figures only, told to no one:
# heldout-12 0.956 / 0.952, 0.012 / 0.024 (the eighth round's detector: 0.944 / 0.924, 0.024 / 0.016);
# heldout-13 0.976 / 0.992, 0.020 / 0 (eighth: 0.956 / 0.976, 0.016 / 0.008).
# heldout-14: a twelfth, likewise: 0.996 / 0.980, 0.024 / 0.020 (eighth: 0.980 / 0.960, 0.024 / 0.028).
# The tenth round (dev-17 to dev-19 read and tuned on, the score retrained on nineteen parts, its cut 0.46 by
# the same false-reroute budget; docs/rules.md). The older parts, recall en / fr, false blocks en / fr:
# heldout-14 0.996 / 0.980, 0.020 / 0.024; heldout-13 0.976 / 0.992, 0.028 / 0.008; heldout-12 0.960 /
# 0.956, 0.012 / 0.024; heldout-11 0.992 / 0.988, 0.008 / 0.012; heldout-10 0.964 / 0.976, 0.024 / 0.024;
# heldout-9 0.956 / 0.992, 0.024 / 0.032; heldout-8 0.980 / 0.988, 0.032 / 0.012; heldout-7 0.983 /
# 0.990, 0.023 / 0.013; heldout-6 0.987 / 0.983, 0.030 / 0.023; heldout-5 0.965 / 0.957, 0.027 / 0.040;
# heldout-4 0.977 / 0.980, 0.023 / 0.026; heldout-3 0.963 / 0.964, 0.016 / 0.026 (more caught, and more
# false blocks: the lower cut).
# heldout-15 to heldout-18: four blind parts by four more writers, asked for before the round changed
# anything, each committed alone as it arrived, scored once by the round's detector, by figures only, told
# to no one: heldout-15 0.996 / 0.984, 0.032 / 0.020; heldout-16 0.988 / 0.988, 0.036 / 0.016; heldout-17
# 0.988 / 0.968, 0.016 / 0.008; heldout-18 0.996 / 0.980, 0.020 / 0.032.
# The eleventh round (dev-20 and dev-21 read and tuned on, the score retrained on twenty-one parts, cut 0.455;
# its design decided on heldout-15 to -18 by figures; docs/rules.md). heldout-19 to heldout-22: four blind
# parts by four more writers, asked for before the round changed anything, each committed alone as it
# arrived, scored once by the round's detector, by figures only: heldout-19 0.996 / 0.984, 0.016 / 0.012;
# heldout-20 0.972 / 0.984, 0.012 / 0.012; heldout-21 1.000 / 0.988, 0.004 / 0.028; heldout-22 0.992 /
# 0.992, 0.004 / 0.008 — the four meet the target, and the rule written before they existed is met.
# Then scored again after each of two fixes made without looking at any blind part (1a75a9f, the suite's own
# hard negatives; d0036a2, shipped, an independent review), both giving: heldout-19 1.000 / 0.984, 0.016 / 0.016; heldout-20 0.972 / 0.984, 0.016
# / 0.012; heldout-21 1.000 / 0.992, 0.004 / 0.028; heldout-22 as before. The floors and ceilings below are the
# shipped detector's figures for every part (floors a half point under, at most).
@pytest.mark.parametrize(("part", "scope", "floor", "ceiling"), [
    ("heldout-3", "all", 0.97, 0.027), ("heldout-3", "en", 0.97, 0.021), ("heldout-3", "fr", 0.97, 0.027),
    ("heldout-4", "all", 0.975, 0.027), ("heldout-4", "en", 0.975, 0.027), ("heldout-4", "fr", 0.975, 0.027),
    ("heldout-5", "all", 0.955, 0.036), ("heldout-5", "en", 0.965, 0.022), ("heldout-5", "fr", 0.955, 0.036),
    ("heldout-6", "all", 0.98, 0.031), ("heldout-6", "en", 0.985, 0.031), ("heldout-6", "fr", 0.98, 0.028),
    ("heldout-7", "all", 0.98, 0.031), ("heldout-7", "en", 0.98, 0.031), ("heldout-7", "fr", 0.995, 0.014),
    ("heldout-8", "all", 0.985, 0.021), ("heldout-8", "en", 0.985, 0.021), ("heldout-8", "fr", 0.985, 0.009),
    ("heldout-9", "all", 0.955, 0.025), ("heldout-9", "en", 0.955, 0.017), ("heldout-9", "fr", 0.99, 0.025),
    ("heldout-10", "all", 0.96, 0.021), ("heldout-10", "en", 0.96, 0.021), ("heldout-10", "fr", 0.975, 0.021),
    ("heldout-11", "all", 0.985, 0.017), ("heldout-11", "en", 0.99, 0.009), ("heldout-11", "fr", 0.985, 0.017),
    ("heldout-12", "all", 0.955, 0.025), ("heldout-12", "en", 0.955, 0.009), ("heldout-12", "fr", 0.96, 0.025),
    ("heldout-13", "all", 0.975, 0.009), ("heldout-13", "en", 0.975, 0.009), ("heldout-13", "fr", 0.99, 0.005),
    ("heldout-14", "all", 0.975, 0.025), ("heldout-14", "en", 0.995, 0.021), ("heldout-14", "fr", 0.975, 0.025),
    ("heldout-15", "all", 0.98, 0.025), ("heldout-15", "en", 0.995, 0.025), ("heldout-15", "fr", 0.98, 0.017),
    ("heldout-16", "all", 0.985, 0.029), ("heldout-16", "en", 0.985, 0.029), ("heldout-16", "fr", 0.985, 0.013),
    ("heldout-17", "all", 0.955, 0.013), ("heldout-17", "en", 0.985, 0.013), ("heldout-17", "fr", 0.955, 0.005),
    ("heldout-18", "all", 0.975, 0.045), ("heldout-18", "en", 0.995, 0.017), ("heldout-18", "fr", 0.975, 0.045),
    ("heldout-19", "all", 0.98, 0.017), ("heldout-19", "en", 0.995, 0.017), ("heldout-19", "fr", 0.98, 0.017),
    ("heldout-20", "all", 0.97, 0.017), ("heldout-20", "en", 0.97, 0.017), ("heldout-20", "fr", 0.98, 0.013),
    ("heldout-21", "all", 0.99, 0.029), ("heldout-21", "en", 0.995, 0.005), ("heldout-21", "fr", 0.99, 0.029),
    ("heldout-22", "all", 0.99, 0.009), ("heldout-22", "en", 0.99, 0.005), ("heldout-22", "fr", 0.99, 0.009),
])
def test_a_blind_part_does_not_do_worse_than_when_it_was_scored(blind: Callable[[str], dict[str, Figures]],
                                                                 part: str, scope: str, floor: float,
                                                                 ceiling: float) -> None:
    """Floors and ceilings at the figures reached, so that nothing gets worse; fourteen of the twenty
    blind parts by independent writers meet the issue's target (recall 0.97, false blocks 0.03, in
    each language): heldout-3, -4, -6, -7, -8, -11, -13 to -16, and the eleventh round's four,
    heldout-19 to -22 (docs/rules.md)."""
    f = blind(part)[scope]
    assert f.recall >= floor and f.false_block <= ceiling, (f.recall, f.false_block)


# --- the second round's held-out part --------------------------------------------------------------
@pytest.mark.parametrize("scope", ["all", "en", "fr"])
def test_heldout_2_false_blocks_at_most_3_percent(heldout_2: dict[str, Figures], scope: str) -> None:
    f = heldout_2[scope]
    assert f.false_block <= 0.03, f"{scope}: {f.false_block:.3f}\n" + "\n".join(f.false_blocks)


@pytest.mark.parametrize(("scope", "floor"), [("all", 0.99), ("en", 0.985), ("fr", 1.0)])
def test_heldout_2_recall_does_not_fall_below_what_was_reached(heldout_2: dict[str, Figures], scope: str,
                                                               floor: float) -> None:
    """The figures the third round reached (0.993, en 0.985, fr 1.000; the second round's, scored
    once when the part was clean: 0.944, en 0.917, fr 0.971). The part is not clean any more: the
    third round's development data was written after reading its list of misses."""
    f = heldout_2[scope]
    assert f.recall >= floor, f"{scope}: {f.recall:.3f}; missed:\n" + "\n".join(f.misses)


# --- the first round's held-out part, partly seen --------------------------------------------------
@pytest.mark.parametrize("scope", ["all", "en", "fr"])
def test_heldout_1_false_blocks_at_most_3_percent(heldout_1: dict[str, Figures], scope: str) -> None:
    f = heldout_1[scope]
    assert f.false_block <= 0.03, f"{scope}: {f.false_block:.3f}\n" + "\n".join(f.false_blocks)


@pytest.mark.parametrize(("scope", "floor"), [("all", 0.985), ("en", 0.995), ("fr", 0.975)])
def test_heldout_1_recall_does_not_fall_below_what_was_reached(heldout_1: dict[str, Figures], scope: str,
                                                               floor: float) -> None:
    f = heldout_1[scope]
    assert f.recall >= floor, f"{scope}: {f.recall:.3f}; missed:\n" + "\n".join(f.misses)


# --- the development parts, tuned on --------------------------------------------------------------
@pytest.mark.parametrize("part", DEVELOPMENT)
@pytest.mark.parametrize("scope", ["en", "fr"])
def test_development_parts_the_detector_was_tuned_on(host: Host, part: str, scope: str) -> None:
    f = by_scope(host, part)[scope]
    assert f.recall >= 0.99 and f.false_block <= 0.01, (f.misses, f.false_blocks)


@pytest.mark.parametrize(("part", "scope", "recall", "false_block"), [
    ("dev-4", "en", 0.99, 0.025), ("dev-4", "fr", 0.97, 0.02),
    ("dev-5", "en", 0.945, 0.0), ("dev-5", "fr", 0.93, 0.0),
])
def test_the_third_round_parts_the_score_was_trained_on(host: Host, part: str, scope: str, recall: float,
                                                        false_block: float) -> None:
    """The score learned from these parts, but no term or pattern was tuned on them, and a
    regularised score does not learn every row: what is reached, as floors and ceilings. The false
    blocks of dev-4 are terms and patterns on its hard negatives (a charity walk, a staff member's
    broken wrist, a blood test appointment), above the issue's 0.03 in English."""
    f = by_scope(host, part)[scope]
    assert f.recall >= recall and f.false_block <= false_block, (f.recall, f.false_block, f.misses, f.false_blocks)


@pytest.mark.parametrize(("part", "scope", "recall", "false_block"), [
    ("dev-6", "en", 0.97, 0.012), ("dev-6", "fr", 0.98, 0.012),
    ("dev-7", "en", 0.96, 0.032), ("dev-7", "fr", 0.96, 0.032),
    ("dev-8", "en", 0.95, 0.1), ("dev-8", "fr", 0.95, 0.1),
])
def test_the_fourth_round_parts_the_detector_was_tuned_on(host: Host, part: str, scope: str, recall: float,
                                                           false_block: float) -> None:
    """Written before (dev-6) and after (dev-7, then dev-8) the whose-health layer and the new
    terms and patterns were built, each scored once and then tuned on: dev-6 scored recall 0.826
    and false blocks 0.446 first, dev-7 0.917 and 0.297, dev-8 0.875 and 0.425 (docs/rules.md).
    Floors and ceilings a little beyond what tuning reached (recall dev-6 0.978 / 0.989, dev-7 and
    dev-8 1.000; false blocks 0 except dev-8, 0.05 in each language)."""
    f = by_scope(host, part)[scope]
    assert f.recall >= recall and f.false_block <= false_block, (f.recall, f.false_block, f.misses, f.false_blocks)


# The development parts by independent writers who never read the project, each scored once when it
# arrived by the detector as it then was (English / French), then tuned on and trained on:
# - dev-9 and dev-10 (fifth round): recall 0.991 / 0.982, false blocks 0.054 / 0.089; 0.938 / 0.956,
#   0.116 / 0.098. Tuning reached recall 1.000 in each, false blocks 0.018 (dev-9 English: an X-ray
#   requisition and school vaccines, the project's own labelling rule) and 0 elsewhere.
# - dev-11 (sixth round; mental health, substance use, pregnancy and fertility, allergy, vaccines
#   because of a condition; staff illness, clinic names, charity, verdicts about things, campaigns):
#   recall 0.944 / 0.880, false blocks 0.088 / 0.080.
# - dev-12 (seventh round; mental health and pregnancy in their gentle forms, fertility, sexual health;
#   a staff member's own health, place names with medical words, campaigns, verdicts about things): by
#   the sixth round's detector, recall 0.980 / 0.973, false blocks 0.040 / 0.060.
# - dev-13 (eighth round; referrals in everyday words, verdicts on the patient's tests with no finding
#   word, aftercare, symptom follow-ups, services named, appointment purposes, mental health, fertility;
#   results-ready and pharmacy notices, charity, verdicts about things, campaigns): by the seventh
#   round's detector, recall 0.960 / 0.887, false blocks 0.067 / 0.067. Three pharmacy notices of the
#   patient's own adherence packs stay blocked: an older part labels the same wording clinical.
# - dev-14 (specialists' offices, hospital outpatient clinics), dev-15 (primary care), dev-16 (mental
#   health, perinatal, allied health), ninth round, by the eighth round's detector: recall 0.953 /
#   0.960, 0.973 / 0.967, 0.940 / 0.860; false blocks 0.027 / 0.027, 0.053 / 0.047, 0.033 / 0.033.
#   Tuned on, the ninth round's detector reaches recall 1.000 in each, false blocks 0 / 0.007, 0.020 /
#   0.013, 0 / 0.007.
# - dev-20 (hard negatives and their clinical look-alikes) and dev-21 (everyday logistics), eleventh round, by
#   the detector of 4ce66a7 on arrival: recall 0.953 / 0.967 and 1.000 / 0.987, false blocks 0.073 / 0.073
#   and 0.067 / 0.053; then tuned and trained on.
@pytest.mark.parametrize(("part", "scope", "recall", "false_block"), [
    ("dev-9", "en", 0.99, 0.028), ("dev-9", "fr", 0.99, 0.01),
    ("dev-10", "en", 0.99, 0.01), ("dev-10", "fr", 0.99, 0.01),
    ("dev-11", "en", 0.99, 0.01), ("dev-11", "fr", 0.99, 0.01),
    ("dev-12", "en", 0.99, 0.01), ("dev-12", "fr", 0.99, 0.01),
    ("dev-13", "en", 0.99, 0.01), ("dev-13", "fr", 0.985, 0.014),
    ("dev-14", "en", 0.99, 0.01), ("dev-14", "fr", 0.99, 0.01),
    ("dev-15", "en", 0.99, 0.021), ("dev-15", "fr", 0.99, 0.014),
    ("dev-16", "en", 0.99, 0.01), ("dev-16", "fr", 0.99, 0.01),
    ("dev-17", "en", 0.99, 0.01), ("dev-17", "fr", 0.99, 0.01),
    ("dev-18", "en", 0.99, 0.01), ("dev-18", "fr", 0.99, 0.01),
    ("dev-19", "en", 0.99, 0.021), ("dev-19", "fr", 0.99, 0.01),
    ("dev-20", "en", 0.99, 0.028), ("dev-20", "fr", 0.985, 0.014),
    ("dev-21", "en", 0.99, 0.01), ("dev-21", "fr", 0.99, 0.01),
])
def test_a_part_by_an_independent_writer_keeps_what_its_round_reached(host: Host, part: str, scope: str,
                                                                      recall: float, false_block: float) -> None:
    f = by_scope(host, part)[scope]
    assert f.recall >= recall and f.false_block <= false_block, (f.recall, f.false_block, f.misses, f.false_blocks)


def test_the_measure_can_fail_without_context_and_score(tmp_path: Path) -> None:
    """With the lexicons alone (no context patterns, no uncertainty reroute), recall on the first
    round's held-out part is far lower: the figures above come from the context layers, not from
    an easy set."""
    from emrcomm_content import phrasing

    rows = [r for r in read("heldout") if r["label"] == "clinical"]
    families = phrasing.FAMILIES
    try:
        phrasing.FAMILIES = ()
        with Host(load_config(write_config(tmp_path, "\n[plugins.content.uncertain]\nabove = 1.0\n")),
                  clock=lambda: TEST_NOW) as bare:
            caught = sum(stopped(bare, r) for r in rows) / len(rows)
    finally:
        phrasing.FAMILIES = families
    assert caught < 0.85
