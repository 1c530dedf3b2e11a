"""``emrcomm consent revoke|grant``: the front desk records an opt-out or a consent given in
person, in the consent ledger with who recorded it, through the code path of POST /fhir/Consent;
bad input exits 2 and records nothing. The command runs as a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emrcomm.audit import entries as audit_entries
from emrcomm.audit import verify as audit_verify
from emrcomm.host import Host
from emrcomm.model import Request, Status
from emrcomm.testing import TEST_NOW
from fhir_server.server import ShimServer
from test_directory_outage import mended, running_clinic, server_host
from test_worker import APPOINTMENT

EMRCOMM = Path(sys.executable).with_name("emrcomm")
MOBILE = "+16135550123"  # Patient/on-en
EMAIL = "alex.martin@example.org"


def consent(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EMRCOMM), "consent", *args, "--config", str(tmp_path / "emrcomm.toml")],
                          capture_output=True, text=True, timeout=120, check=False)


def reminder(rid: str, channel: str = "sms") -> Request:
    return Request("Patient/on-en", "appointment-reminder", id=rid, template="appointment-reminder",
                   variables={"appointment": APPOINTMENT}, channel=channel)


@pytest.fixture
def host(make_host: Callable[..., Host]) -> Host:
    return make_host()


def test_a_front_desk_opt_out_is_in_the_ledger_with_who_recorded_it_and_stops_the_next_text(
    host: Host, tmp_path: Path
) -> None:
    done = consent(tmp_path, "revoke", "--patient", "Patient/on-en", "--channel", "sms", "--by", "J. Tremblay",
                   "--how", "by phone")
    assert done.returncode == 0, done.stderr
    assert "consent withdrawn" in done.stdout and "J. Tremblay" in done.stdout
    [event] = host.storage.consent.events(channel="sms", address=MOBILE)
    assert (event.action, event.patient, event.purpose) == ("revoke", "Patient/on-en", None)
    assert event.source == "front desk, by phone, recorded by J. Tremblay"
    outcome = host.send(reminder("fd-1"))
    assert "sms" not in outcome.channels
    assert any(f.code == "CONSENT_REVOKED" and "J. Tremblay" in f.message for f in outcome.findings)
    # and the patient comes back: a grant restores it
    back = consent(tmp_path, "grant", "--patient", "Patient/on-en", "--channel", "sms", "--by", "J. Tremblay",
                   "--json")
    assert back.returncode == 0, back.stderr
    [row] = json.loads(back.stdout)
    assert (row["action"], row["address"], row["source"]) == ("grant", MOBILE,
                                                              "front desk, in person, recorded by J. Tremblay")
    assert host.send(reminder("fd-2")).channels == ("sms",)


def test_an_opt_out_of_one_purpose_leaves_the_others(host: Host, tmp_path: Path) -> None:
    done = consent(tmp_path, "revoke", "--patient", "Patient/on-en", "--channel", "email", "--purpose", "commercial",
                   "--by", "J. Tremblay")
    assert done.returncode == 0, done.stderr
    [event] = host.storage.consent.events(channel="email", address=EMAIL)
    assert (event.action, event.purpose) == ("revoke", "commercial")
    outcome = host.send(reminder("fd-3", channel="email"))
    assert outcome.status is Status.SENT and outcome.channels == ("email",)  # clinical email still goes


def test_an_email_opt_out_typed_with_other_capitals_stops_the_address_on_file(host: Host, tmp_path: Path) -> None:
    # The patient spells it "Alex.Martin@Example.org"; the chart has alex.martin@example.org: one
    # mailbox. The withdrawal was filed under the typed spelling, said "consent withdrawn", and
    # the next email went.
    done = consent(tmp_path, "revoke", "--patient", "Patient/on-en", "--channel", "email",
                   "--address", "Alex.Martin@Example.org", "--by", "J. Tremblay")
    assert done.returncode == 0, done.stderr
    [event] = host.storage.consent.events(channel="email", address=EMAIL)
    assert event.action == "revoke"
    outcome = host.send(reminder("fd-4", channel="email"))
    assert "email" not in outcome.channels
    assert any(f.code == "CONSENT_REVOKED" for f in outcome.findings)


def test_an_email_opt_out_filed_under_any_capitals_stops_the_mailbox(host: Host) -> None:
    # Filed under another spelling than the chart's (an unsubscribe from an address the chart wrote
    # otherwise then, an EMR's own ledger entry): the same mailbox, so no email goes.
    host.storage.consent.add(patient="Patient/on-en", channel="email", address=EMAIL.upper(), purpose=None,
                             action="revoke", at=TEST_NOW, source="unsubscribe link")
    outcome = host.send(reminder("fd-5", channel="email"))
    assert "email" not in outcome.channels
    assert any(f.code == "CONSENT_REVOKED" for f in outcome.findings)


@pytest.mark.parametrize(("args", "says"), [
    (("--patient", "on-en", "--channel", "sms", "--by", "JT"), "give it as Patient/<id>"),
    (("--patient", "Patient/on-en", "--channel", "fax", "--by", "JT"), "channel 'fax' is not one of"),
    (("--patient", "Patient/on-en", "--channel", "portal", "--by", "JT"), "has no address to opt out of"),
    (("--patient", "Patient/nobody", "--channel", "sms", "--by", "JT"), "no directory knows Patient/nobody"),
    (("--patient", "Patient/on-en", "--channel", "sms", "--by", "JT", "--address", "call me"), "is not a phone number"),
    (("--patient", "Patient/on-en", "--channel", "sms", "--by", "  "), "--by is empty"),
    (("--patient", "Patient/on-en", "--channel", "sms", "--by", "JT", "--purpose", "fun"), "invalid choice"),
    (("--patient", "Patient/on-en", "--channel", "sms"), "--by"),
])
def test_bad_input_exits_2_says_what_to_do_and_records_nothing(host: Host, tmp_path: Path, args: tuple[str, ...],
                                                               says: str) -> None:
    done = consent(tmp_path, "revoke", *args)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert host.storage.consent.events(channel="sms", address=MOBILE) == []


FORM = "urn:emr:consent-forms|F-7"


def test_a_word_recorded_with_an_identifier_is_recorded_once_and_run_again_prints_it(
        host: Host, tmp_path: Path) -> None:
    """Run twice (the front desk unsure the first went through): one ledger entry, and the second
    run prints the first's entry, saying nothing was recorded again; a STOP the patient sent in
    between stands."""
    from emrcomm.model import DeliveryUpdate

    grant = ("grant", "--patient", "Patient/on-en", "--channel", "sms", "--by", "J. Tremblay", "--identifier", FORM)
    first = consent(tmp_path, *grant, "--json")
    assert first.returncode == 0, first.stderr
    [made] = json.loads(first.stdout)
    host.delivery_update(DeliveryUpdate(kind="optout", at=host.clock(), channel="sms", address=MOBILE,
                                        text="STOP reply", detail="Patient/on-en"))
    again = consent(tmp_path, *grant)
    assert again.returncode == 0, again.stderr
    assert f"already recorded as Consent/{made['consent']}" in again.stdout and "nothing recorded again" in again.stdout
    assert f"#{made['ledger']}  Patient/on-en  sms {MOBILE}: consent given" in again.stdout
    [as_json] = json.loads(consent(tmp_path, *grant, "--json").stdout)
    assert as_json == {**made, "repeat": True}
    assert [(e.action, e.source) for e in host.storage.consent.events(channel="sms", address=MOBILE)] == [
        ("grant", "front desk, in person, recorded by J. Tremblay"), ("revoke", "STOP reply")]


def test_an_identifier_used_again_for_another_word_exits_2_naming_it_and_records_nothing(
        host: Host, tmp_path: Path) -> None:
    common = ("--patient", "Patient/on-en", "--channel", "sms", "--by", "J. Tremblay", "--identifier", FORM)
    assert consent(tmp_path, "grant", *common).returncode == 0
    other = consent(tmp_path, "revoke", *common)
    assert other.returncode == 2, other.stderr
    [line] = other.stderr.splitlines()
    assert line.startswith("emrcomm: error: consent revoke: identifier urn:emr:consent-forms|F-7 was already used "
                           "for Consent/"), line
    assert [e.action for e in host.storage.consent.events(channel="sms", address=MOBILE)] == ["grant"]


@pytest.mark.parametrize("given", ["F-7", "a|b|c", "urn:x|"])
def test_an_identifier_that_is_not_system_bar_value_exits_2_and_records_nothing(
        host: Host, tmp_path: Path, given: str) -> None:
    done = consent(tmp_path, "grant", "--patient", "Patient/on-en", "--channel", "sms", "--by", "JT",
                   "--identifier", given)
    assert done.returncode == 2 and "--identifier" in done.stderr and "SYSTEM|VALUE" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert host.storage.consent.events(channel="sms", address=MOBILE) == []



@pytest.fixture
def fhir() -> Iterator[ShimServer]:
    yield from running_clinic()


@pytest.mark.node
def test_a_word_without_its_address_exits_4_while_the_directory_is_stopped_and_is_recorded_once_it_is_back(
        fhir: ShimServer, make_host: Callable[..., Host], tmp_path: Path) -> None:
    """Without --address the entries are the addresses on file, so the directory (the real FHIR
    server, stopped by its PID) must be asked: not done for now, exit 4 (as ``emrcomm send``), not
    the 2 of bad input, one line naming the directory; nothing recorded. Run again once it is back,
    it is recorded."""
    host = server_host(make_host, fhir, tmp_path)
    revoke = ("revoke", "--patient", "Patient/on-en", "--channel", "sms", "--by", "J. Tremblay")
    fhir.stop()
    down = consent(tmp_path, *revoke)
    assert down.returncode == 4, down.stderr
    [line] = down.stderr.splitlines()
    assert line.startswith("emrcomm: error: ") and "fhir-directory" in line and "unavailable" in line, line
    assert MOBILE not in down.stderr + down.stdout and down.stdout == ""
    assert host.storage.consent.events(channel="sms", address=MOBILE) == []
    mended(fhir)
    back = consent(tmp_path, *revoke)
    assert back.returncode == 0, back.stderr
    assert [e.action for e in host.storage.consent.events(channel="sms", address=MOBILE)] == ["revoke"]

LOSE_CLAIMS = {
    "sqlite": ["CREATE TRIGGER lose_claims BEFORE INSERT ON consent_identifiers BEGIN SELECT RAISE(IGNORE); END"],
    "postgresql": ["CREATE FUNCTION lose_claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
                   "CREATE TRIGGER lose_claims BEFORE INSERT ON consent_identifiers FOR EACH ROW "
                   "EXECUTE FUNCTION lose_claim()"],
}


def test_a_word_the_ledger_could_not_settle_for_now_exits_4_try_again_not_2(host: Host, tmp_path: Path,
                                                                            backend: str) -> None:
    """The API's 503 (``transient``: another Consent with this identifier was being recorded and
    is not there to repeat) is not bad input: exit 4, as ``emrcomm send`` exits when it is not
    done for now, with the API's words; nothing recorded. The store is made to lose every claim
    of an identifier (a trigger that drops the row), so the claim fails and nothing is found."""
    for statement in LOSE_CLAIMS[backend]:
        host.storage.db.execute(statement)
    done = consent(tmp_path, "grant", "--patient", "Patient/on-en", "--channel", "sms", "--by", "J. Tremblay",
                   "--identifier", FORM)
    assert done.returncode == 4, done.stderr
    [line] = done.stderr.splitlines()
    assert line == ("emrcomm: error: consent grant: another Consent with this identifier was being recorded: "
                    "send this one again"), line
    assert host.storage.consent.events(channel="sms", address=MOBILE) == []


def test_a_front_desk_word_is_in_the_audit_log_with_who_recorded_it_and_no_address(
        host: Host, tmp_path: Path) -> None:
    """As the API's: one ``consent.recorded`` entry for the word, client ``cli`` and the --by name,
    never the address; run again under its identifier (nothing recorded), no second entry."""
    grant = ("grant", "--patient", "Patient/on-en", "--channel", "sms", "--by", "J. Tremblay", "--identifier", FORM)
    assert consent(tmp_path, *grant).returncode == 0
    assert consent(tmp_path, *grant).returncode == 0  # a repeat: nothing recorded, nothing audited
    recorded = [e for e in audit_entries(host.storage) if e["kind"] == "consent.recorded"]
    assert [{k: e[k] for k in ("client", "staff", "patient", "channels", "status")} for e in recorded] == [
        {"client": "cli", "staff": "J. Tremblay", "patient": "Patient/on-en", "channels": ["sms"],
         "status": "granted"}]
    assert MOBILE not in json.dumps(recorded)
    assert audit_verify(host.storage, [host.audit.key.public]).ok
