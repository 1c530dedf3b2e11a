"""The secure portal path without a browser: routing a note to the portal, the content-free notice,
magic links stored as digests, encryption at rest and key rotation, recall, expiry, staff
follow-ups, an EMR's own portal, and the commands that drive them."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

import emrcomm_routing
from emrcomm import cli
from emrcomm.config import load_config
from emrcomm.errors import ConfigError
from emrcomm.host import Host
from emrcomm.model import Attachment, Category, Message, Request, Sensitivity, Status
from emrcomm.plugin.manager import discover
from emrcomm.storage import open_sqlite
from emrcomm.testing import make_context
from emrcomm_portal import triage
from emrcomm_portal.storage import MIGRATIONS as PORTAL_MIGRATIONS
from emrcomm_portal.storage import PortalStore
from portal_kit import (
    BIRTH_DATE,
    LINK,
    NOTE,
    NOTE_WORDS,
    PORTAL_URL,
    WRONG_DATE,
    EmrPortal,
    database_bytes,
    messages,
    notice_for,
    send_note,
    sms_lines,
    token_in,
)
from support import REPO, communication, consent, patient, small_clinic, write_config
from test_worker_unreadable import corrupt_record, newer_category

PDF = b"%PDF-1.4\n% lipid panel: LDL 4.9 mmol/L\n%%EOF\n"


def service(host: Host):  # type: ignore[no-untyped-def]
    return host.plugins.get("portal").service


def run_cli(host: Host, *args: str) -> int:
    return cli.main([*args, "--config", str(host.config.base_dir / "emrcomm.toml")])


# routing a note to the portal ------------------------------------------------------------------------
def test_a_result_note_is_refused_on_sms_and_email_and_goes_to_the_portal_with_an_sms_notice(host: Host) -> None:
    outcome = send_note(host)
    assert outcome.status is Status.SENT and outcome.channels == ("portal", "sms")
    lines = {line.split(":")[0]: line for line in outcome.explanation}
    assert "rejected" in lines["sms"] and "CLINICAL_CONTENT" in lines["sms"]
    assert "rejected" in lines["email"] and "RESULTS_IN_BODY" in lines["email"]
    assert lines["portal + sms notice"].startswith("portal + sms notice: chosen")


def test_the_notice_carries_only_the_clinic_name_and_the_link(host: Host) -> None:
    outcome = send_note(host)
    notice = notice_for(host, outcome)["text"]
    assert all(word not in notice for word in NOTE_WORDS)
    facts = host.plugins.inspect(Message(Request("Patient/on-en", "results-available", text=notice), notice))
    assert not [f for f in facts if f.code in ("CLINICAL_CONTENT", "HEALTH_IDENTIFIER")]
    assert not [f for f in host.check(notice, channel="sms") if f.blocks]
    assert "Riverside Family Health" in notice and notice.count("https://") == 1


def test_the_notice_link_opens_the_message_it_announces(host: Host) -> None:
    outcome = send_note(host)
    token = token_in(notice_for(host, outcome)["text"])
    visit = service(host).visit(token)
    assert visit.state == "ready" and visit.message_id == outcome.record_ids[0]


def test_a_restricted_clinical_note_never_tries_sms_or_email_and_says_why(host: Host) -> None:
    outcome = send_note(host, category=Category.CLINICAL, sensitivity=Sensitivity.RESTRICTED)
    assert outcome.channels == ("portal", "sms")
    assert any(line.startswith("sms: not proposed (a clinician's note never travels by sms") for line in outcome.explanation)


def test_check_with_a_patient_explains_every_channel(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(host, "check", "--patient", "Patient/on-en", "--category", "results-available", "--text", NOTE)
    out = capsys.readouterr().out
    assert code == 0
    assert "sms: rejected (CLINICAL_CONTENT" in out and "email: rejected (CLINICAL_CONTENT" in out
    assert "portal + sms notice: would be chosen" in out
    assert "portal + email notice: would pass, as a fallback" in out
    assert sms_lines(host) == [] and host.records()["total"] == 0  # a dry run: nothing sent or filed


# links: 256 bits, stored as a digest, withheld from the chart and the outbox ------------------------------
def test_the_link_token_is_256_bits_and_only_its_digest_is_stored(host: Host) -> None:
    outcome = send_note(host)
    token = token_in(notice_for(host, outcome)["text"])
    raw = base64.b32decode(token[1:].upper() + "====")
    assert len(raw) * 8 == 256
    row = messages(host).get(outcome.record_ids[0])
    assert row["link_digest"] == hashlib.sha256(token.encode()).hexdigest()
    assert token.encode() not in database_bytes(host)


def test_the_chart_and_the_outbox_withhold_the_link_and_delivery_derives_it_again(
        make_host: Callable[..., Host]) -> None:
    from emrcomm.outbox.worker import Worker
    from emrcomm.pipeline.deliver import message_for

    host = make_host('\n[delivery]\nmode = "queue"\n')
    outcome = send_note(host)
    notice = outcome.record_ids[1]
    item, facts = host.storage.outbox.get(notice), host.storage.records.facts(notice)
    assert item is not None and facts is not None
    derived = message_for(facts, item, host.channels).text
    assert LINK.search(derived) and LINK.search(derived).group(0) not in database_bytes(host).decode("latin-1")
    Worker(host).run(once=True)
    sent = notice_for(host, outcome)["text"]
    assert derived == sent and token_in(sent).encode() not in database_bytes(host)
    assert "[secure link]" in communication(host, notice)["payload"][0]["contentString"]


# encryption at rest -----------------------------------------------------------------------------------
def test_the_database_holds_no_plaintext_of_any_portal_message(host: Host) -> None:
    subject = "Lipid panel and HbA1c follow-up"
    outcome = send_note(host, subject=subject, attachments=(Attachment("application/pdf", PDF, "lipid-panel.pdf"),))
    token = token_in(notice_for(host, outcome)["text"])
    opened = service(host).verify(token, BIRTH_DATE).opened
    reply = "I stopped taking atorvastatin last week because of muscle cramps."
    assert service(host).reply(opened.session, reply) == "sent"
    database = database_bytes(host)
    assert database  # the file and its log are there to search
    for plain in (NOTE, *NOTE_WORDS, subject, reply, "atorvastatin", "muscle cramps", "lipid panel", "LDL 4.9",
                  "1980-04-12", token, opened.session):
        assert plain.encode() not in database, plain
    # ...and the portal still gives every word back to whoever holds the key
    assert service(host).view(opened.session).text == NOTE


def host_for(tmp_path: Path, clock, bundle: dict) -> Host:  # type: ignore[no-untyped-def, type-arg]
    return Host(load_config(write_config(tmp_path, bundle=bundle)), clock=clock)


def test_the_identity_check_fails_closed_without_a_date_of_birth(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    bundle = small_clinic()
    del bundle["entry"][0]["resource"]["birthDate"]
    with host_for(tmp_path, clock, bundle) as host:
        check_no_birth_date(host)


def check_no_birth_date(host: Host) -> None:
    outcome = send_note(host)
    assert outcome.status is Status.BLOCKED
    assert any(f.code == "RECIPIENT_INVALID" and f.channel == "portal" for f in outcome.findings)
    [item] = host.storage.inbox.items()
    assert item["kind"] == "follow-up" and "RECIPIENT_INVALID" in item["reason"]


def test_key_rotation_reencrypts_every_message_and_old_messages_still_open(host: Host, make_host: Callable[..., Host],
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    first, second = send_note(host, "note-1"), send_note(host, "note-2")
    old_key = messages(host).get(first.record_ids[0])["key_id"]
    # `emrcomm keys rotate` runs as another process would: its own host on the same files
    assert run_cli(host, "keys", "rotate") == 0
    assert "2 message(s) re-encrypted" in capsys.readouterr().out
    rows = [messages(host).get(o.record_ids[0]) for o in (first, second)]
    new_keys = {r["key_id"] for r in rows}
    assert len(new_keys) == 1 and old_key not in new_keys
    # this host loaded the ring before the rotation: it finds the new key and opens both messages
    for outcome in (first, second):
        token = token_in(notice_for(host, outcome)["text"])
        assert service(host).verify(token, BIRTH_DATE).opened.text == NOTE
    # new messages from the old process still open after a second rotation that retires keys
    third = send_note(host, "note-3")
    assert run_cli(host, "keys", "rotate", "--retire") == 0
    assert service(make_host()).transport.read(third.record_ids[0])["text"] == NOTE


def test_a_process_started_before_a_rotation_that_retires_keys_stores_its_next_message_under_the_new_key(
        host: Host, make_host: Callable[..., Host]) -> None:
    send_note(host, "note-1")
    # `keys rotate --retire` re-encrypts note-1 and drops the key this host still holds as current
    assert run_cli(host, "keys", "rotate", "--retire") == 0
    second = send_note(host, "note-2")
    # any other process (a restarted `serve`, the patient's link) must open it
    assert service(make_host()).transport.read(second.record_ids[0])["text"] == NOTE


def test_retire_keeps_a_key_a_process_was_still_storing_a_message_under_and_drops_it_a_later_time(
        host: Host, make_host: Callable[..., Host], clock, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
        capsys: pytest.CaptureFixture[str]) -> None:
    from emrcomm_portal.keyring import RETIRE_AFTER

    send_note(host, "note-1")
    old_key = messages(host).get(send_note(host, "note-0").record_ids[0])["key_id"]
    rotating = service(make_host())  # `emrcomm keys rotate --retire`: another process, the same files
    counted = rotating.messages.key_use
    late: list[str] = []

    def key_use_then_a_late_commit() -> dict[str, int]:
        # The keys in use are counted; then `host`, which read the ring file just before the
        # rotation saved it, commits a message it sealed under the key that was current then.
        use = counted()
        if not late:
            monkeypatch.setattr(service(host).transport.ring, "_follow", lambda: None)
            late.extend(send_note(host, "note-late").record_ids)
            monkeypatch.undo()
        return use

    monkeypatch.setattr(rotating.messages, "key_use", key_use_then_a_late_commit)
    done = rotating.rotate_keys(retire=True)
    monkeypatch.undo()
    assert messages(host).get(late[0])["key_id"] == old_key  # the race happened
    assert old_key in done.kept and old_key not in done.retired
    # Every other process (a restarted serve, the worker) opens the late message.
    assert service(make_host()).transport.read(late[0])["text"] == NOTE
    # A later --retire, once the key has been superseded long enough, re-encrypts it and drops the key.
    clock.now += RETIRE_AFTER
    again = service(make_host()).rotate_keys(retire=True)
    assert old_key in again.retired and again.resealed == 3
    fresh = make_host()
    assert old_key not in service(fresh).transport.ring.keys
    assert service(fresh).transport.read(late[0])["text"] == NOTE


def test_keys_rotate_retire_says_which_keys_it_kept_and_why(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    send_note(host)
    assert run_cli(host, "keys", "rotate", "--retire", "--json") == 0
    first = json.loads(capsys.readouterr().out)
    # the encryption key just superseded (the link key still signs the stored message's link)
    assert first["retired"] == [] and len(first["kept"]) == 1
    assert run_cli(host, "keys", "list", "--json") == 0
    listed = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed[first["key"]]["superseded"] is None and listed[first["kept"][0]]["superseded"] is not None
    assert run_cli(host, "keys", "rotate", "--retire") == 0
    assert "minutes ago: a process may still be storing a message under it" in capsys.readouterr().out


@pytest.mark.parametrize("superseded", [{"k": "yesterday"}, {"k": "2026-12-01T10:00:00"}, ["k"], {"k": 5}])
def test_a_key_ring_file_with_a_bad_superseded_time_is_refused_by_name(tmp_path: Path, superseded: object) -> None:
    import os

    from emrcomm_portal.keyring import KeyRing

    path = tmp_path / "keyring.json"
    KeyRing.generate().save(path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "superseded": superseded}))
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match=r"keyring.json: not a valid key ring"):
        KeyRing.load(path)


def test_a_database_restored_without_its_key_ring_stops_start_up_instead_of_making_a_new_ring(
        host: Host, make_host: Callable[..., Host], capsys: pytest.CaptureFixture[str]) -> None:
    outcome = send_note(host)
    key_id = messages(host).get(outcome.record_ids[0])["key_id"]
    ring = service(host).transport.ring.path
    host.close()
    ring.unlink()  # the database came back from a backup; the key ring did not
    with pytest.raises(ConfigError, match=rf"keyring.json is missing, but the store holds 1 portal message.*{key_id}"):
        make_host()
    assert not ring.exists()  # no new ring that would open none of them
    assert run_cli(host, "keys", "list") == 2
    assert "is missing, but the store holds 1 portal message" in capsys.readouterr().err


def test_a_key_ring_older_than_the_database_stops_start_up(host: Host, make_host: Callable[..., Host]) -> None:
    send_note(host)
    ring = service(host).transport.ring.path
    before = ring.read_bytes()
    assert run_cli(host, "keys", "rotate", "--retire") == 0
    ring.write_bytes(before)  # last week's backup of the ring, this morning's database
    with pytest.raises(ConfigError, match=r"keyring.json lacks the key\(s\) .* of 1 portal message"):
        make_host()


def test_keys_list_shows_the_current_key_and_what_it_holds(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    send_note(host)
    assert run_cli(host, "keys", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    current = [r for r in rows if r["current"] and r["kind"] == "encryption"]
    assert len(current) == 1 and current[0]["messages"] == 1


def test_a_tampered_ciphertext_does_not_open(host: Host) -> None:
    outcome = send_note(host)
    ident = outcome.record_ids[0]
    row = messages(host).get(ident)
    flipped = bytes([row["ciphertext"][0] ^ 1]) + row["ciphertext"][1:]
    host.storage.db.execute("UPDATE portal_messages SET ciphertext = ? WHERE id = ?", (flipped, ident))
    from cryptography.exceptions import InvalidTag

    transport = host.channels["portal"].transport
    with pytest.raises(InvalidTag):
        transport.unseal(messages(host).get(ident))
    with pytest.raises(KeyError):  # what staff read through it goes on without it
        transport.read(ident)


# attachments ----------------------------------------------------------------------------------------
def test_attachments_travel_only_through_the_portal(host: Host) -> None:
    request = dict(text="Your lipid panel is attached.", attachments=(Attachment("application/pdf", PDF, "lipid.pdf"),))
    outcome = send_note(host, **request)
    assert outcome.channels == ("portal", "sms")
    assert any(line.startswith("sms: not proposed (it has attachments") for line in outcome.explanation)
    opened = service(host).verify(token_in(notice_for(host, outcome)["text"]), BIRTH_DATE).opened
    assert opened.attachments == (("lipid.pdf", "application/pdf"),)
    assert service(host).attachment(opened.session, 0) == ("lipid.pdf", "application/pdf", PDF)
    assert service(host).attachment(opened.session, 1) is None
    assert service(host).attachment("not-a-session", 0) is None


# recall and expiry ------------------------------------------------------------------------------------
def test_recall_from_the_command_line_stops_the_record(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = send_note(host)
    assert run_cli(host, "portal", "recall", "note-1", "--reason", "sent to the wrong patient") == 0
    resource = communication(host, outcome.record_ids[0])
    assert resource["status"] == "stopped"
    assert resource["statusReason"]["coding"][0]["code"] == "RECALLED"
    assert any("sent to the wrong patient" in n["text"] for n in resource["note"])
    from emrcomm.fhir import validate_resource

    validate_resource(resource)  # a valid R4 Communication (status "stopped" with a reason)
    assert run_cli(host, "portal", "recall", "note-1") == 2  # once is enough
    assert "already recalled" in capsys.readouterr().out


def test_a_read_message_cannot_be_recalled(host: Host) -> None:
    outcome = send_note(host)
    service(host).verify(token_in(notice_for(host, outcome)["text"]), BIRTH_DATE)
    assert service(host).recall(outcome.record_ids[0]) == "read"
    assert communication(host, outcome.record_ids[0])["status"] == "completed"


def test_recalling_a_held_message_cancels_its_notice(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = dt.datetime(2026, 11, 23, 22, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    outcome = send_note(host)
    assert outcome.status is Status.HELD
    assert service(host).recall("note-1") == "recalled"
    assert host.storage.outbox.for_request("note-1") == []  # the notice will not go
    assert [host.storage.records.get(r).state for r in outcome.record_ids] == ["recalled", "cancelled"]  # type: ignore[union-attr]


def test_a_notice_requeued_at_the_instant_its_message_is_recalled_reads_cancelled(  # type: ignore[no-untyped-def]
        host: Host, clock) -> None:
    """Requeued by staff and cancelled by the recall at one clock reading: the cancel came after,
    and the notice reads cancelled (it read queued, with no outbox row left to send it)."""
    clock.now = dt.datetime(2026, 11, 23, 22, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    outcome = send_note(host)
    notice = outcome.record_ids[1]
    host.storage.outbox.bury(notice, owner=None, now=clock.now, error="a dead letter, for the test")
    assert host.requeue(notice) == 1
    assert service(host).recall("note-1") == "recalled"
    assert host.storage.outbox.for_request("note-1") == []
    assert [host.storage.records.get(r).state for r in outcome.record_ids] == ["recalled", "cancelled"]  # type: ignore[union-attr]


def test_expire_sweeps_unread_messages_and_asks_staff_to_check(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    unread, read = send_note(host, "note-1"), send_note(host, "note-2")
    service(host).verify(token_in(notice_for(host, read)["text"]), BIRTH_DATE)
    clock.now += dt.timedelta(days=6)
    assert service(host).expire_due() == []
    clock.now += dt.timedelta(days=2)
    assert service(host).expire_due() == [unread.record_ids[0]]
    assert messages(host).get(read.record_ids[0])["state"] == "read"
    assert [i["kind"] for i in host.storage.inbox.items()] == ["expired-unread"]


def test_the_expire_command_reports_what_it_expired(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(host, "portal", "expire", "--json") == 0  # (on the real clock; the sweep is tested above)
    assert json.loads(capsys.readouterr().out) == {"expired": []}


def test_a_request_expiry_shortens_the_link(host: Host, clock) -> None:  # type: ignore[no-untyped-def]
    outcome = send_note(host, expires=clock.now + dt.timedelta(days=2))
    clock.now += dt.timedelta(days=2, seconds=1)
    assert service(host).visit(token_in(notice_for(host, outcome)["text"])).state == "expired"


def test_a_wrong_token_is_unknown(host: Host) -> None:
    send_note(host)
    assert service(host).visit("1" + "a" * 52).state == "unknown"
    assert service(host).verify("../../etc", WRONG_DATE).state == "unknown"


# never a silent drop --------------------------------------------------------------------------------
def test_no_consented_channel_files_not_done_and_raises_a_staff_follow_up(host: Host) -> None:
    from fhir.resources.R4B.task import Task

    outcome = send_note(host, patient="Patient/none")
    assert outcome.status is Status.BLOCKED
    [record] = host.records(patient="Patient/none")["entry"]
    assert record["resource"]["status"] == "not-done"
    [item] = host.storage.inbox.items()
    assert item["kind"] == "follow-up" and item["request_id"] == "note-1" and "CONSENT_MISSING" in item["reason"]
    assert item["task"]["focus"]["reference"] == f"Communication/{record['resource']['id']}"
    Task.model_validate(item["task"])


def test_blocked_marketing_needs_no_follow_up(host: Host) -> None:
    host.send(Request("Patient/on-en", Category.MARKETING, id="m-1", text="Riverside Family Health: spa day!"))
    assert host.storage.inbox.items() == []


def test_a_portal_message_nobody_announced_asks_staff_to_tell_the_patient(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    bundle = small_clinic()
    bundle["entry"] += [{"resource": patient("portal-only", given="Kim", family="Ng", mobile="+16135550188")},
                        {"resource": consent("c20", "portal-only", "portal")}]
    with host_for(tmp_path, clock, bundle) as host:
        check_unannounced(host)


def check_unannounced(host: Host) -> None:
    outcome = send_note(host, patient="Patient/portal-only")
    # Kept in the portal, but nobody told the patient: not "sent", and the chart says so.
    assert outcome.status is Status.STORED and outcome.channels == ("portal",)
    assert "PATIENT_NOT_TOLD" in {f.code for f in outcome.findings}
    [item] = host.storage.inbox.items()
    assert item["kind"] == "unannounced" and item["message_id"] == outcome.record_ids[0]
    resource = communication(host, outcome.record_ids[0])
    assert resource["status"] == "in-progress" and resource["statusReason"]["coding"][0]["code"] == "PATIENT_NOT_TOLD"


def test_the_inbox_command_lists_replies_and_shows_their_words_on_request(
        host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = send_note(host)
    opened = service(host).verify(token_in(notice_for(host, outcome)["text"]), BIRTH_DATE).opened
    service(host).reply(opened.session, "Can I book an appointment next week?")
    capsys.readouterr()
    assert run_cli(host, "inbox") == 0
    listing = capsys.readouterr().out
    assert "reply" in listing and "appointment" in listing and "book an appointment" not in listing
    assert run_cli(host, "inbox", "--text") == 0
    assert "Can I book an appointment next week?" in capsys.readouterr().out
    [item] = host.storage.inbox.items()
    assert run_cli(host, "inbox", "done", item["id"]) == 0
    assert host.storage.inbox.items() == [] and host.storage.inbox.items(state="done")[0]["task"]["status"] == "completed"


@pytest.mark.parametrize(("text", "expected"), [
    ("Can you renew my prescription?", ("medication", "question")),
    ("Je voudrais annuler mon rendez-vous.", ("appointment",)),
    ("I have chest pain since this morning", ("urgent",)),
    ("Merci beaucoup", ()),
])
def test_reply_triage_keywords(text: str, expected: tuple[str, ...]) -> None:
    assert triage.keywords(text) == expected


# an EMR's own portal ------------------------------------------------------------------------------------
def test_an_emr_can_use_its_own_portal_by_registering_the_portal_channel(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    extra = '\n[plugins]\ndisable = ["portal"]\n[plugins.emrportal]\n'
    eps = {**discover(), "emrportal": metadata.EntryPoint(name="emrportal", value="portal_kit:EmrPortal",
                                                          group="emrcomm")}
    config = write_config(tmp_path, extra)
    config.write_text(config.read_text().replace('[plugins.portal]\nkeyring = "keyring.json"\n', "") , encoding="utf-8")
    with Host(load_config(config), clock=clock, entry_points=eps) as host:
        outcome = send_note(host)
        assert outcome.channels == ("portal", "sms")
        notice = notice_for(host, outcome)["text"]
        assert f"{PORTAL_URL}/emr/inbox/{outcome.record_ids[0]}" in notice
        assert EmrPortal.transport.messages[outcome.record_ids[0]].text == NOTE
        from emrcomm.model import DeliveryUpdate

        host.delivery_update(DeliveryUpdate(kind="read", at=clock.now, channel="portal",
                                            record_id=outcome.record_ids[0]))
        assert communication(host, outcome.record_ids[0])["received"]
        from emrcomm.web import create_app

        paths = [getattr(r, "path", "") for r in create_app(host).routes]
        assert "/m" not in paths  # the EMR serves its own pages


# routing settings ----------------------------------------------------------------------------------------
def test_a_clinic_can_send_a_category_only_through_the_portal(tmp_path: Path) -> None:
    from emrcomm.testing import make_recipient
    from test_routing import CHANNELS

    plugin = emrcomm_routing.Plugin(make_context("routing", {"categories": {"appointment-reminder": []}}, tmp_path))
    request = Request("Patient/test-1", "appointment-reminder", text="x")
    plan = plugin.emrcomm_plan(Message(request, "x"), make_recipient(), CHANNELS, ())
    assert all(c.routes[0].channel == "portal" for c in plan.candidates)
    assert ("sms", "appointment-reminder is not sent by sms (routing categories)") in plan.rejected


def test_an_unknown_category_in_the_routing_settings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown category"):
        emrcomm_routing.Plugin(make_context("routing", {"categories": {"gossip": []}}, tmp_path))


# the documentation ---------------------------------------------------------------------------------------
PORTAL_DOC = (REPO / "docs" / "portal.md").read_text(encoding="utf-8")


def test_the_emr_portal_example_in_the_docs_registers_a_linking_portal(tmp_path: Path) -> None:
    import pluggy

    from emrcomm.plugin import NAME, spec

    section = PORTAL_DOC.split("## An EMR's own portal", 1)[1]
    namespace: dict[str, object] = {}
    exec(compile(re.findall(r"```python\n(.*?)```", section, re.S)[0], "docs/portal.md", "exec"), namespace)
    plugin = namespace["EmrPortal"](make_context("emrportal", {}, tmp_path))  # type: ignore[operator]
    pm = pluggy.PluginManager(NAME)
    pm.add_hookspecs(spec)
    pm.register(plugin, name="emrportal")
    [[channel]] = pm.hook.emrcomm_register_channels()
    assert channel.name == "portal" and channel.holds_content and channel.secure
    assert channel.transport.link_for("abc123").endswith("/abc123")


def test_every_screenshot_the_portal_doc_shows_exists() -> None:
    images = re.findall(r"\]\((images/[^)]+)\)", PORTAL_DOC)
    assert len(images) >= 6
    assert all((REPO / "docs" / image).is_file() for image in images)


@pytest.mark.sqlite_only  # the 0.1 release ran on SQLite only
def test_a_database_from_before_the_portal_links_gains_their_columns(tmp_path: Path) -> None:
    import sqlite3


    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("""CREATE TABLE portal_messages (id TEXT PRIMARY KEY, record_id TEXT NOT NULL, patient TEXT NOT NULL,
                      key_id TEXT NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL, created TEXT NOT NULL,
                      state TEXT NOT NULL DEFAULT 'unread')""")
        db.execute("INSERT INTO portal_messages VALUES ('m1', 'm1', 'Patient/1', 'k', x'00', x'00', '2026', 'unread')")
    storage = open_sqlite(path, migrations=PORTAL_MIGRATIONS)
    try:
        row = PortalStore(storage.db).get("m1")
        assert row is not None and row["attempts"] == 0 and row["kind"] == "message" and row["link_digest"] is None
    finally:
        storage.close()


# the identity check under concurrent answers ------------------------------------------------------
class _Comparisons:
    """Stands in for ``hmac`` in the portal service: counts the wrong answers it compares and
    may run ``during`` (once) in the middle of comparing the right one."""

    def __init__(self) -> None:
        self.wrong = 0
        self.during: Callable[[], None] | None = None
        self._guard = threading.Lock()

    def compare_digest(self, a: bytes, b: bytes) -> bool:
        import hmac

        same = hmac.compare_digest(a, b)
        with self._guard:
            if not same:
                self.wrong += 1
            hook, self.during = (self.during, None) if same else (None, self.during)
        if hook is not None:
            hook()
        return same


def test_concurrent_wrong_answers_get_no_more_tries_than_the_limit(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    import emrcomm_portal.service as portal_service

    outcome = send_note(host)
    token = token_in(notice_for(host, outcome)["text"])
    svc = service(host)
    comparisons = _Comparisons()
    monkeypatch.setattr(portal_service, "hmac", comparisons)
    guesses = 12
    barrier = threading.Barrier(guesses)
    unseal = svc.transport.unseal

    def unseal_together(row):  # type: ignore[no-untyped-def]
        barrier.wait(timeout=10)  # every guess has passed the link's standing before any is compared
        return unseal(row)

    monkeypatch.setattr(svc.transport, "unseal", unseal_together)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(svc.verify(token, WRONG_DATE).state))
               for _ in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(results) == guesses
    assert comparisons.wrong == svc.attempts == 5
    assert sorted(results) == ["locked"] * (guesses - 4) + ["wrong"] * 4
    monkeypatch.setattr(svc.transport, "unseal", unseal)
    assert svc.verify(token, BIRTH_DATE).state == "locked"
    row = messages(host).get(outcome.record_ids[0])
    assert row["locked"] and row["attempts"] == 5 and row["state"] == "unread"


@pytest.mark.parametrize(("wrong_before", "where"), [(4, "unseal"), (3, "compare")])
def test_a_link_locked_while_the_right_answer_is_checked_does_not_open(
    host: Host, monkeypatch: pytest.MonkeyPatch, wrong_before: int, where: str
) -> None:
    """The last wrong answer locks the link between the right answer's checks: the link stays shut."""
    import emrcomm_portal.service as portal_service

    outcome = send_note(host)
    token = token_in(notice_for(host, outcome)["text"])
    svc = service(host)
    for _ in range(wrong_before):
        assert svc.verify(token, WRONG_DATE).state == "wrong"
    comparisons = _Comparisons()
    monkeypatch.setattr(portal_service, "hmac", comparisons)
    other: list[str] = []

    def last_wrong_answer() -> None:
        other.append(svc.verify(token, WRONG_DATE).state)

    if where == "compare":
        comparisons.during = last_wrong_answer
    else:
        unseal = svc.transport.unseal
        calls = iter([last_wrong_answer])

        def unseal_after_a_wrong_answer(row):  # type: ignore[no-untyped-def]
            hook = next(calls, None)
            if hook is not None:
                hook()
            return unseal(row)

        monkeypatch.setattr(svc.transport, "unseal", unseal_after_a_wrong_answer)
    visit = svc.verify(token, BIRTH_DATE)
    assert other == ["locked"]
    row = messages(host).get(outcome.record_ids[0])
    assert row["locked"] is not None and row["state"] == "unread"
    assert visit.state == "locked" and visit.opened is None
    assert comparisons.wrong <= svc.attempts - wrong_before


def test_a_locked_link_is_never_read_by_the_store(host: Host) -> None:
    outcome = send_note(host)
    [record] = outcome.record_ids[:1]
    for _ in range(5):
        assert messages(host).reserve_attempt(record, limit=5) is not None
    assert messages(host).reserve_attempt(record, limit=5) is None
    messages(host).count_attempt(record, limit=5, now=host.clock())
    assert not messages(host).open(record, now=host.clock())
    assert messages(host).get(record)["state"] == "unread"


@pytest.mark.parametrize("spoil", [corrupt_record, newer_category], ids=["damaged", "newer"])
def test_the_expiry_sweep_expires_every_message_past_one_whose_record_cannot_be_read(
    host: Host, clock, spoil  # type: ignore[no-untyped-def]
) -> None:
    """One message's record this release cannot read: it expires too, its staff item naming the
    record, and the sweep goes on to the others; it raised, and no message after it expired."""
    first, second = send_note(host, "note-1"), send_note(host, "note-2")
    bad = first.record_ids[0]
    spoil(host, bad)
    clock.now += dt.timedelta(days=8)
    assert sorted(service(host).expire_due()) == sorted([bad, second.record_ids[0]])
    items = {i["record_id"]: i for i in host.storage.inbox.items()}
    assert set(items) == {bad, second.record_ids[0]} and {i["kind"] for i in items.values()} == {"expired-unread"}
    assert [e.kind.value for e in host.storage.records.events(bad)][-1] == "link-expired"  # the report kept
