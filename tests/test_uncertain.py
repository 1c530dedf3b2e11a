"""The cost model: free text the detector is unsure about goes the secure way (portal + a notice
without clinical words), says why, and a clinic can see and tune it. Templates are never scored."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from emrcomm import ConfigError
from emrcomm.host import Host
from emrcomm.model import Message, Request, Severity, Status
from emrcomm.testing import make_context
from emrcomm_content import Plugin, classifier
from support import communication

# No listed term, no strong pattern, but a vague reference to something discussed at a visit.
UNSURE = ("Riverside Family Health: about the concern you raised on Monday, the doctor would like to "
          "examine it this week. Reply STOP to opt out.")
PLAIN = "Riverside Family Health: see you Tuesday at 10:40. Reply STOP to opt out."


def codes(outcome) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.code for f in outcome.findings}


def test_uncertain_free_text_goes_to_the_portal_with_a_notice(host: Host) -> None:
    outcome = host.send(Request("Patient/on-en", "appointment-reminder", id="u-1", text=UNSURE))
    assert outcome.status is Status.SENT
    assert outcome.channels == ("portal", "sms")
    assert "sms: rejected (CLINICAL_UNCERTAIN)" in outcome.explanation
    assert any(line.startswith("portal + sms notice: chosen") for line in outcome.explanation)
    [why] = [f for f in outcome.findings if f.code == "CLINICAL_UNCERTAIN" and f.channel == "sms"]
    assert why.severity is Severity.BLOCK and why.span is not None
    assert "score" in why.message and why.remedy and why.message_fr
    # The score and the limit as the finding states them: the score is read as at or above the limit.
    said = re.search(r"score (\d\.\d{3}) above the clinic's limit (\d\.\d{3})", why.message)
    assert said and float(said[1]) >= float(said[2]) == classifier.packaged().cut, why.message


def test_the_notice_carries_no_words_of_the_message(host: Host) -> None:
    outcome = host.send(Request("Patient/on-en", "appointment-reminder", id="u-2", text=UNSURE))
    record = communication(host, outcome.record_ids[-1])
    assert "concern" not in str(record) and "examine" not in str(record)


def test_plain_free_text_still_goes_by_sms(host: Host) -> None:
    outcome = host.send(Request("Patient/on-en", "appointment-reminder", id="u-3", text=PLAIN))
    assert outcome.channels == ("sms",) and "CLINICAL_UNCERTAIN" not in codes(outcome)


def test_a_clinic_raises_the_limit_and_the_same_text_goes_by_sms(make_host: Callable[..., Host]) -> None:
    host = make_host("\n[plugins.content.uncertain]\nabove = 0.999\n")
    outcome = host.send(Request("Patient/on-en", "appointment-reminder", id="u-4", text=UNSURE))
    assert outcome.channels == ("sms",)


def test_a_clinic_may_send_it_anyway_only_with_a_recorded_reason(make_host: Callable[..., Host]) -> None:
    host = make_host('\n[rules.override.CLINICAL_UNCERTAIN]\nseverity = "warn"\n'
                     'reason = "free text is reviewed by a nurse before sending"\n')
    outcome = host.send(Request("Patient/on-en", "appointment-reminder", id="u-5", text=UNSURE))
    assert outcome.channels == ("sms",)
    [warned] = [f for f in outcome.findings if f.code == "CLINICAL_UNCERTAIN"]
    assert warned.severity is Severity.WARN and warned.override == "free text is reviewed by a nurse before sending"


@pytest.mark.parametrize("above", ["2", "-0.1", '"high"'])
def test_the_limit_is_checked_by_the_schema(make_host: Callable[..., Host], above: str) -> None:
    with pytest.raises(ConfigError, match="uncertain"):
        make_host(f"\n[plugins.content.uncertain]\nabove = {above}\n")


def test_a_template_is_never_scored(tmp_path: Path) -> None:
    plugin = Plugin(make_context("content", {}, tmp_path))
    typed = Request("Patient/1", "appointment-reminder", template="appointment-reminder")
    free = Request("Patient/1", "appointment-reminder", text=UNSURE)
    assert "CLINICAL_UNCERTAIN" not in {f.code for f in plugin.emrcomm_inspect(Message(typed, UNSURE,
                                                                                         template="x"))}
    assert "CLINICAL_UNCERTAIN" in {f.code for f in plugin.emrcomm_inspect(Message(free, UNSURE))}


def test_a_definite_finding_is_not_also_uncertain(tmp_path: Path) -> None:
    plugin = Plugin(make_context("content", {}, tmp_path))
    text = "About the concern you raised: your metformin dose goes up."
    found = {f.code for f in plugin.emrcomm_inspect(Message(Request("Patient/1", "clinical", text=text), text))}
    assert "CLINICAL_CONTENT" in found and "CLINICAL_UNCERTAIN" not in found


def test_check_reports_the_layer_that_stopped_each_text(host: Host) -> None:
    from emrcomm.cli import content_verdict

    assert content_verdict(host.check("Your metformin is ready.", channel="sms")) == "lexicon"
    assert content_verdict(host.check("Your numbers came back at 6.9 this time.", channel="sms")) == "context"
    assert content_verdict(host.check(UNSURE, channel="sms")) == "uncertain"
    assert content_verdict(host.check(PLAIN, channel="sms")) is None


def test_the_finding_says_what_raised_the_score_in_english_and_french(tmp_path: Path) -> None:
    text = "Please don't go swimming until the skin has completely closed over."
    plugin = Plugin(make_context("content", {}, tmp_path))
    [why] = [f for f in plugin.emrcomm_inspect(Message(Request("Patient/1", "appointment-reminder", text=text), text))
             if f.code == "CLINICAL_UNCERTAIN"]
    assert why.span is not None and text[why.span[0]:why.span[1]] == "skin"
    assert '"s***": a part of the body' in why.message
    assert "« s*** » : une partie du corps" in why.message_fr


def test_the_block_on_the_channel_says_the_same_reasons(host: Host) -> None:
    """The policy's verdict on SMS repeats the content finding's reasons, in both languages, not a
    question mark: each block names what triggered it."""
    [block] = [f for f in host.check("Please don't go swimming until the skin has completely closed over.",
                                     channel="sms") if f.code == "CLINICAL_UNCERTAIN" and f.blocks]
    assert '"s***": a part of the body' in block.message
    assert "« s*** » : une partie du corps" in (block.message_fr or "")
