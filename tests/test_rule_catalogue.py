"""Meta-tests: docs/rule-catalogue.md, the catalogue in code, docs/rules.md and the tests stay in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emrcomm.model import Severity
from emrcomm.rules import RULES, finding
from support import REPO

SPEC = (REPO / "docs" / "rule-catalogue.md").read_text(encoding="utf-8")
SPEC_CODES = sorted(set(re.findall(r"^\| ([A-Z][A-Z0-9_]+) \|", SPEC, re.M)))
DOC = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
# The severity cell of each rule; "block for invoices, else warn" is a rule with two severities.
SPEC_SEVERITY = {code: cell.strip() for code, cell in re.findall(r"^\| ([A-Z][A-Z0-9_]+) \|.*\| ((?:block|warn)[^|]*)\|",
                                                                SPEC, re.M)}


def test_the_spec_lists_rules() -> None:
    assert len(SPEC_CODES) >= 25  # guards the parsing below


@pytest.mark.parametrize("code", SPEC_CODES)
def test_every_rule_in_the_spec_is_in_the_catalogue(code: str) -> None:
    assert code in RULES


@pytest.mark.parametrize("code", SPEC_CODES)
def test_default_severity_follows_the_spec(code: str) -> None:
    cell = SPEC_SEVERITY.get(code, "")
    if "else" in cell:  # FRENCH_REQUIRED: warn by default, the policy blocks invoices
        assert RULES[code].severity is Severity.WARN
    elif cell:
        assert RULES[code].severity is Severity(cell.split()[0])


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_code_is_documented(code: str) -> None:
    assert f"`{code}`" in DOC


@pytest.mark.parametrize("code", SPEC_CODES)
def test_every_rule_is_exercised_by_a_test(code: str) -> None:
    here = Path(__file__).resolve()
    users = [p.name for p in here.parent.glob("test_*.py") if p != here and code in p.read_text(encoding="utf-8")]
    assert users, f"no test names {code}"


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_rule_speaks_english_and_french_with_a_remedy(code: str) -> None:
    f = finding(code, plugin="t", channel="sms", term="x", kind="x", detail="x", source="x", purpose="clinical",
                preferred="portal", segments=4, limit=3, start="08:00", end="21:00", until="tomorrow")
    assert f.message and f.message_fr and f.remedy
    assert "{" not in f.message and "{" not in f.message_fr
