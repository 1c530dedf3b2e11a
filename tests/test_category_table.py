"""The category → channel table of docs/rule-catalogue.md is what the host does: for a patient who
agreed to every channel for every purpose, a category's message never goes by a channel its row
says "never" (or "avoid"), and goes by SMS first where its row says "yes"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from emrcomm.host import Host
from emrcomm.model import Request, Status
from emrcomm.testing import FixedClock
from support import REPO, consent, patient, write_config

PAGE = (REPO / "docs" / "rule-catalogue.md").read_text(encoding="utf-8")
TABLE = PAGE[PAGE.index("## Category → channel (defaults)"):]
ROWS = {cells[0].split(" ")[0]: dict(zip(("sms", "email", "portal"), cells[1:], strict=True))
        for cells in ([c.strip() for c in row.strip("|").split("|")]
                      for row in re.findall(r"^\|( *[a-z][^\n]*)\|$", TABLE, re.M))
        if cells[0] != "category"}
TEXT = "Riverside Family Health: a message for you. Call +1 613 555 0100."


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    folder: Path = tmp_path_factory.mktemp("categories")
    resources = [patient("all", given="Alex", family="Martin", mobile="+16135550123", email="alex@example.org")]
    resources += [consent(f"c-{channel}-{purpose}", "all", channel, purpose,
                          address={"sms": "+16135550123", "email": "alex@example.org"}.get(channel))
                  for channel in ("sms", "email", "portal") for purpose in ("clinical", "billing", "commercial")]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    # The suite's day at 10:00 in Toronto, whatever the hour the module starts: outside quiet hours.
    with Host.from_config(write_config(folder, bundle=bundle), read_only=True, clock=FixedClock()) as opened:
        yield opened


def test_the_table_has_every_category() -> None:
    assert set(ROWS) == {"appointment-reminder", "results-available", "prescription-pickup", "invoice",
                         "questionnaire", "education", "clinical", "marketing"}


@pytest.mark.parametrize("category", sorted(ROWS))
def test_a_category_goes_where_its_row_says(category: str, host: Host) -> None:
    row = ROWS[category]
    outcome = host.preview(Request("Patient/all", category, id=f"table-{category}", text=TEXT))
    never = {channel for channel, cell in row.items() if cell.startswith(("never", "avoid"))}
    if never == {"sms", "email", "portal"}:
        assert outcome.status is Status.BLOCKED
        return
    assert outcome.status is Status.SENT, outcome.explanation
    assert not never & set(outcome.channels[:1]), outcome.explanation  # the message itself never goes there
    if row["sms"].startswith("yes"):
        assert outcome.channels == ("sms",)
