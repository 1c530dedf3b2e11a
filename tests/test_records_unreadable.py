"""A chart with one record this release cannot read (its facts damaged, or written by a newer
release) among readable ones, on SQLite and PostgreSQL: every door that lists records lists the
others and says which one it could not show; a read of that one is a clear error; a delivery
report for it is kept and answered. Never the facts' words in an answer or a log.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from emrcomm.fhir import validate_resource
from emrcomm.host import Host
from emrcomm.model import Request, Status
from emrcomm.storage import RecordUnreadable
from fhir_schema import schema_errors
from test_staff import APPOINTMENT
from test_worker_unreadable import corrupt_record, facts_of, newer_category

Spoil = Callable[[Host, str], Any]
SPOILS = pytest.mark.parametrize("spoil", [corrupt_record, newer_category], ids=["damaged", "newer"])


def chart(host: Host, n: int = 3) -> tuple[list[str], str, str]:
    """``n`` reminders sent to Patient/on-en, each for another day (so that their words differ);
    their record ids, the middle one's and its words."""
    ids: list[str] = []
    for i in range(n):
        outcome = host.send(Request("Patient/on-en", "appointment-reminder", id=f"u-{i}",
                                    template="appointment-reminder", variables={"appointment": APPOINTMENT + dt.timedelta(days=i)}))
        assert outcome.status is Status.SENT, outcome
        ids += outcome.record_ids
    bad = ids[n // 2]
    return ids, bad, str(facts_of(host, bad)["text"])


@SPOILS
def test_the_python_api_lists_every_other_record_and_names_the_one_it_cannot_read(
    host: Host, spoil: Spoil
) -> None:
    ids, bad, words = chart(host)
    spoil(host, bad)
    bundle = host.records(patient="Patient/on-en")
    matches = [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert sorted(matches) == sorted(i for i in ids if i != bad)
    [left_out] = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert bundle["entry"][-1] is left_out and bundle["total"] == len(ids)
    [issue] = left_out["resource"]["issue"]
    assert (left_out["resource"]["resourceType"], issue["severity"], issue["code"]) == (
        "OperationOutcome", "warning", "incomplete")
    assert bad in issue["details"]["text"] and bad in issue["diagnostics"]
    assert ("newer release" in issue["details"]["text"]) is (spoil is newer_category)
    assert schema_errors(bundle) == []
    validate_resource(bundle)
    assert words not in json.dumps(bundle)
    # The record itself: a clear error, not None (it is on file), naming why.
    with pytest.raises(RecordUnreadable) as raised:
        host.record(bad)
    assert raised.value.newer is (spoil is newer_category) and words not in str(raised.value)
