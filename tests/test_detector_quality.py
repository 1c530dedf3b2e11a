"""How the clinical-content detector does on the project's own clinic messages
(benchmarks/data/clinic-messages), measured through the pipeline that decides whether a text may
leave by SMS: ``Host.check(text, channel="sms")``. A clinical row is caught when a block finding is
CLINICAL_CONTENT, HEALTH_IDENTIFIER or CLINICAL_UNCERTAIN (rerouted to the portal); an
administrative row so stopped is a false block.

The held-out part was never tuned on. Its figures are below the issue's target (recall 0.98 in each
language): the target is asserted as a strict expected failure, so that the day it is met the test
says so; the figures reached are asserted as a floor. docs/rules.md lists the remaining misses.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from emrcomm.config import load_config
from emrcomm.host import Host
from emrcomm.model import Severity
from emrcomm.testing import TEST_NOW
from support import REPO, write_config

DATA = REPO / "benchmarks" / "data" / "clinic-messages"
STOPPING = frozenset({"CLINICAL_CONTENT", "HEALTH_IDENTIFIER", "CLINICAL_UNCERTAIN"})


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


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    with Host(load_config(write_config(tmp_path_factory.mktemp("quality"))), clock=lambda: TEST_NOW) as h:
        yield h


@pytest.fixture(scope="module")
def heldout(host: Host) -> dict[str, Figures]:
    rows = read("heldout")
    return {"all": measure(host, rows), **{lang: measure(host, [r for r in rows if r["lang"] == lang])
                                           for lang in ("en", "fr")}}


@pytest.fixture(scope="module")
def dev(host: Host) -> dict[str, Figures]:
    rows = read("dev")
    return {"all": measure(host, rows), **{lang: measure(host, [r for r in rows if r["lang"] == lang])
                                           for lang in ("en", "fr")}}


def test_the_set_is_big_enough_and_half_french() -> None:
    rows = read("dev") + read("heldout")
    assert len(rows) >= 1500
    assert abs(sum(r["lang"] == "fr" for r in rows) / len(rows) - 0.5) < 0.02
    for lang in ("en", "fr"):
        mine = [r for r in rows if r["lang"] == lang]
        assert {r["label"] for r in mine} == {"clinical", "administrative"}
        assert sum(r["label"] == "clinical" for r in mine) / len(mine) == pytest.approx(0.5, abs=0.05)
    assert len({r["id"] for r in rows}) == len(rows)


@pytest.mark.parametrize("part", ["dev", "heldout"])
def test_the_split_is_the_documented_hash_of_the_id(part: str) -> None:
    for row in read(part):
        odd = hashlib.sha256(f"clinic-messages:{row['id']}".encode()).digest()[0] & 1
        assert ("heldout" if odd else "dev") == part, row["id"]


@pytest.mark.parametrize("scope", ["all", "en", "fr"])
def test_heldout_false_blocks_at_most_3_percent(heldout: dict[str, Figures], scope: str) -> None:
    f = heldout[scope]
    assert f.false_block <= 0.03, f"{scope}: {f.false_block:.3f}\n" + "\n".join(f.false_blocks)


@pytest.mark.parametrize(("scope", "floor"), [("all", 0.95), ("en", 0.955), ("fr", 0.935)])
def test_heldout_recall_does_not_fall_below_what_was_reached(heldout: dict[str, Figures], scope: str,
                                                             floor: float) -> None:
    f = heldout[scope]
    assert f.recall >= floor, f"{scope}: {f.recall:.3f}; missed:\n" + "\n".join(f.misses)


@pytest.mark.xfail(strict=True, reason="held-out recall is 0.950 (en 0.961, fr 0.939), below the issue's 0.98; "
                                       "see docs/rules.md, remaining misses")
@pytest.mark.parametrize("scope", ["all", "en", "fr"])
def test_heldout_meets_the_issue_target(heldout: dict[str, Figures], scope: str) -> None:
    f = heldout[scope]
    assert f.recall >= 0.98 and f.false_block <= 0.03


@pytest.mark.parametrize("scope", ["en", "fr"])
def test_dev_part_the_detector_was_tuned_on(dev: dict[str, Figures], scope: str) -> None:
    f = dev[scope]
    assert f.recall >= 0.99 and f.false_block <= 0.01, (f.misses, f.false_blocks)


def test_the_measure_can_fail_without_context_and_score(tmp_path: Path) -> None:
    """With the lexicons alone (no context patterns, no uncertainty reroute), recall is far lower:
    the figures above come from the new layers, not from an easy set."""
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
