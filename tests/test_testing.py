"""emrcomm.testing: what plugin authors get to test a plugin without an EMR."""

from __future__ import annotations

from pathlib import Path

from emrcomm.host import Host
from emrcomm.model import Category, Request, Status
from emrcomm.plugin.manager import BUILTIN_ORDER
from emrcomm.testing import TEST_NOW, emrcomm_host, make_context, make_recipient  # noqa: F401 - fixture


def test_host_fixture_runs_the_embedded_defaults_in_a_temporary_folder(emrcomm_host: Host, tmp_path: Path) -> None:  # noqa: F811
    assert [p.name for p in emrcomm_host.plugins] == list(BUILTIN_ORDER)
    assert emrcomm_host.config.store_path.is_relative_to(tmp_path)
    # the embedded defaults have no patients: a request is refused, and filed
    outcome = emrcomm_host.send(Request("Patient/1", Category.APPOINTMENT_REMINDER, text="hi"))
    assert outcome.status is Status.BLOCKED and outcome.findings[0].code == "RECIPIENT_UNKNOWN"
    assert emrcomm_host.records()["total"] == 1


def test_make_context_gives_a_fixed_clock_and_a_fresh_store(tmp_path: Path) -> None:
    ctx = make_context("mine", {"x": 1}, tmp_path)
    assert ctx.clock() == TEST_NOW and ctx.settings["x"] == 1
    assert list(ctx.storage.records.find()) == []
    assert ctx.path("a/b") == tmp_path / "a" / "b"


def test_make_recipient_consents_to_what_it_lists() -> None:
    recipient = make_recipient(email=None)
    assert {c.channel for c in recipient.consents} == {"sms", "portal"}
    assert recipient.addresses("sms")[0].value == "+16135550123"
