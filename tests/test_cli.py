"""The emrcomm command: what it prints and its exit codes (0 ok, 2 bad input or config, 3 not sent:
blocked or failed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import emrcomm
from emrcomm.cli import main
from emrcomm.config import DATA_DIR_VARIABLE
from servers import Reply, scripted
from support import fhir_request, kannel_sms, write_config

APPOINTMENT = ("valueDateTime", "2026-11-24T10:30:00-05:00")
SINK = '[plugins.sms]\npath = "out/sms.jsonl"\n'


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def request_file(tmp_path: Path, data: object, name: str = "req.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_send_prints_outcome_and_communication(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = request_file(tmp_path, fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder",
                                              variables={"appointment": APPOINTMENT}))
    code, out, _ = run(capsys, "send", str(req), "--config", str(config), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["outcome"]["status"] == "sent" and data["outcome"]["channels"] == ["sms"]
    [comm] = data["communications"]
    assert comm["resourceType"] == "Communication" and comm["status"] == "completed"


def test_send_blocked_exits_3(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = request_file(tmp_path, fhir_request("Patient/none", "appointment-reminder", template="appointment-reminder",
                                              variables={"appointment": APPOINTMENT}))
    code, out, _ = run(capsys, "send", str(req), "--config", str(config))
    assert code == 3
    assert "BLOCKED" in out and "CONSENT_MISSING" in out


def test_send_refused_for_good_exits_3_as_the_docs_say(config: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The SMS gateway refuses the message for good (a dead letter): not sent, exit 3, FAILED."""
    import emrcomm.cli

    with scripted(Reply(400, b"Invalid receiver")) as kannel:
        config.write_text(config.read_text(encoding="utf-8").replace(SINK, kannel_sms(kannel.url, tmp_path)),
                          encoding="utf-8")
        req = request_file(tmp_path, fhir_request("Patient/on-en", "appointment-reminder",
                                                  template="appointment-reminder", variables={"appointment": APPOINTMENT}))
        code, out, _ = run(capsys, "send", str(req), "--config", str(config))
    assert code == 3 and "FAILED" in out and "DELIVERY_FAILED" in out
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for said in (readme, emrcomm.cli.__doc__ or ""):
        assert "3 not sent (blocked or failed)" in " ".join(said.split())


def test_send_whose_first_try_failed_for_now_says_queued_with_the_failed_try_and_exits_0(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The SMS sink cannot be written for now (its folder is a file): the outbox tries again, so the
    message is going. The printed status, --json and a repeat say queued, the failed try a warning,
    and the exit code is 0, as the FHIR API answers 201."""
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    config.write_text(config.read_text(encoding="utf-8").replace('path = "out/sms.jsonl"', 'path = "a-file/sms.jsonl"'),
                      encoding="utf-8")
    files = [request_file(tmp_path, fhir_request("Patient/on-en", "appointment-reminder", rid=rid,
                                                 template="appointment-reminder", variables={"appointment": APPOINTMENT}),
                          f"{rid}.json") for rid in ("going-1", "going-2")]
    code, out, _ = run(capsys, "send", str(files[0]), "--config", str(config))
    assert code == 0 and "request going-1: QUEUED on sms" in out and "WARN  DELIVERY_FAILED [sms]" in out
    code, out, _ = run(capsys, "send", str(files[1]), "--config", str(config), "--json")
    outcome = json.loads(out)["outcome"]
    assert code == 0 and outcome["status"] == "queued"
    assert [(f["code"], f["severity"]) for f in outcome["findings"]] == [("DELIVERY_FAILED", "warn")]
    code, out, _ = run(capsys, "send", str(files[0]), "--config", str(config))
    assert code == 0 and "request going-1: QUEUED on sms" in out and "already handled" in out


def test_send_prints_a_short_outcome_per_request_each_finding_once_and_a_tally(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    requests = [fhir_request("Patient/none", "appointment-reminder", template="appointment-reminder", rid="r0",
                             variables={"appointment": APPOINTMENT}),
                fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder", rid="r1",
                             variables={"appointment": APPOINTMENT}),
                fhir_request("Patient/on-en", "results-available", rid="r2",
                             text="Riverside Family Health: your HbA1c came back at 8.1%.")]
    batch = request_file(tmp_path, "\n".join(json.dumps(r) for r in requests) + "\n{oops\n", "batch.jsonl")
    code, out, err = run(capsys, "send", str(batch), "--config", str(config))
    assert code == 2  # a line to fix comes before the one blocked (cli.SEND_PRECEDENCE)
    assert "{" not in out  # no JSON without --json
    lines = out.splitlines()
    assert lines[0] == "request r0: BLOCKED"
    # sms, then portal + sms notice: the same missing consent is one thing to fix, said once
    assert [line.split(":")[0] for line in lines if "CONSENT_MISSING" in line] == [
        "  BLOCK CONSENT_MISSING [sms]", "  BLOCK CONSENT_MISSING [portal]"]
    assert "request r1: SENT on sms" in lines
    # sent another way: what stopped the channels passed over is one line of codes
    r2 = lines[lines.index("request r2: SENT on portal + sms") + 1]
    assert r2.startswith("  not by sms: CLINICAL_CONTENT") and "not by email: CLINICAL_CONTENT" in r2
    assert lines[-1] == "4 requests: 1 blocked, 2 sent, 1 not read (error)"
    assert err.startswith("emrcomm: error: request 4 of 4: request is not JSON")


def test_send_json_of_a_batch_is_a_list_whatever_the_number_of_lines(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A nightly .jsonl that has one reminder tonight is read by the same script as one with two.
    def batch(rids: list[str]) -> Path:
        lines = [json.dumps(fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder",
                                         rid=rid, variables={"appointment": APPOINTMENT})) for rid in rids]
        return request_file(tmp_path, "\n".join(lines) + "\n", f"{rids[0]}.jsonl")

    for rids in (["b1"], ["b2", "b3"]):
        code, out, _ = run(capsys, "send", str(batch(rids)), "--config", str(config), "--json")
        assert code == 0
        shown = json.loads(out)
        assert isinstance(shown, list) and [r["outcome"]["request_id"] for r in shown] == rids
    req = request_file(tmp_path, fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder",
                                              rid="one", variables={"appointment": APPOINTMENT}))
    code, out, _ = run(capsys, "send", str(req), str(req), "--config", str(config), "--json")
    assert isinstance(json.loads(out), list)  # two files: a list, as for a batch


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("name", "content", "expected"), [
    ("missing.json", None, "cannot read: No such file or directory"),
    ("broken.json", "{oops", "is not JSON"),
])
def test_send_reads_the_request_before_it_creates_the_data_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        name: str, content: str | None, expected: str) -> None:
    data = tmp_path / "user-data"
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(data))
    monkeypatch.chdir(tmp_path)  # no emrcomm.toml here: the embedded defaults
    if content is not None:
        request_file(tmp_path, content, name)
    code, _, err = run(capsys, "send", name)
    assert code == 2 and expected in err and "Traceback" not in err
    assert not data.exists()  # no database, audit key or key ring for a send that could not start


@pytest.mark.sqlite_only
def test_send_with_a_credential_not_set_creates_no_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CLI_SMTP_PW", raising=False)
    config = write_config(tmp_path)
    config.write_text(config.read_text(encoding="utf-8").replace(
        '[plugins.email]\ndirectory = "out/email"\n',
        '[plugins.email]\ntransport = "smtp"\nfrom = "Riverside <noreply@riverside.example>"\n'
        '[plugins.email.smtp]\nhost = "localhost"\nusername = "clinic"\npassword = {env = "CLI_SMTP_PW"}\n'),
        encoding="utf-8")
    req = request_file(tmp_path, fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder",
                                              variables={"appointment": APPOINTMENT}))
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run(capsys, "send", str(req), "--config", str(config))
    assert code == 2 and "plugins.email.smtp.password: environment variable CLI_SMTP_PW is not set" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no database, no audit key, no key ring


def test_an_outcome_names_each_finding_once(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = request_file(tmp_path, fhir_request("Patient/none", "appointment-reminder", template="appointment-reminder",
                                              variables={"appointment": APPOINTMENT}))
    _, out, _ = run(capsys, "send", str(req), "--config", str(config), "--json")
    found = [(f["code"], f["channel"]) for f in json.loads(out)["outcome"]["findings"]]
    assert found == [("CONSENT_MISSING", "sms"), ("CONSENT_MISSING", "portal")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("{oops", "request is not JSON"),
        ({"resourceType": "Patient"}, "expected 'CommunicationRequest'"),
        ({"resourceType": "CommunicationRequest", "status": "active"}, "subject is missing"),
        (fhir_request("Patient/on-en", "birthday-wishes", text="hi"), "category 'birthday-wishes' is unknown"),
        (fhir_request("Patient/on-en", "invoice"), "neither text nor template"),
    ],
    ids=["not-json", "wrong-type", "no-subject", "unknown-category", "no-text"],
)
def test_bad_request_exits_2_and_sends_nothing(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               data: object, expected: str) -> None:
    code, out, err = run(capsys, "send", str(request_file(tmp_path, data)), "--config", str(config))
    assert code == 2
    assert expected in err and err.startswith("emrcomm: error:")
    assert not (tmp_path / "out" / "sms.jsonl").exists()
    code, out, _ = run(capsys, "records", "--config", str(config), "--fhir")
    assert json.loads(out)["total"] == 0


def test_send_of_an_id_used_before_for_another_message_exits_2_in_one_line_and_sends_nothing(
        config: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    def send(patient: str, name: str) -> subprocess.CompletedProcess[str]:
        req = request_file(tmp_path, fhir_request(patient, "appointment-reminder", template="appointment-reminder",
                                                  rid="appt-7", variables={"appointment": APPOINTMENT}), name)
        return subprocess.run([str(Path(sys.executable).with_name("emrcomm")), "send", str(req), "--config",
                               str(config)], cwd=tmp_path, capture_output=True, text=True, timeout=120)

    assert send("Patient/on-en", "first.json").returncode == 0
    again = send("Patient/qc-fr", "other.json")
    assert again.returncode == 2, again.stderr
    [line] = again.stderr.splitlines()
    assert line.startswith("emrcomm: error: id appt-7 was already used for request appt-7") and "nothing was sent" in line
    assert again.stdout == ""
    assert len((tmp_path / "out" / "sms.jsonl").read_text(encoding="utf-8").splitlines()) == 1
    retry = send("Patient/on-en", "retry.json")
    assert retry.returncode == 0 and "already handled" in retry.stdout


def test_send_of_a_batch_names_each_refused_line_by_its_kind_for_a_program(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A program reads the kind of refusal, not the sentence for staff (worded to change).
    def line(patient: str) -> str:
        return json.dumps(fhir_request(patient, "appointment-reminder", template="appointment-reminder",
                                       rid="appt-8", variables={"appointment": APPOINTMENT}))

    source = tmp_path / "tonight.jsonl"
    source.write_text("\n".join([line("Patient/on-en"), line("Patient/qc-fr"), "{}"]) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "send", str(source), "--config", str(config), "--json")
    sent, conflict, unread = json.loads(out)
    assert code == 2
    assert sent["outcome"]["status"] == "sent" and "error" not in sent["outcome"]
    assert conflict["code"] == "conflict" and "appt-8 was already used" in conflict["error"]
    assert unread["code"] != "conflict" and unread["code"] in ("invalid", "required", "structure", "value")


def test_unknown_template_exits_2(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = request_file(tmp_path, fhir_request("Patient/on-en", "appointment-reminder", template="no-such-template"))
    code, _, err = run(capsys, "send", str(req), "--config", str(config))
    assert code == 2 and "no-such-template" in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("\n[plugins]\ndisable = ['consent']\n", "'consent' cannot be disabled"),
        ("\n[plugins]\norder = ['smsx', 'consent', 'optout', 'records']\n", "unknown plugin 'smsx'; choose one of:"),
        ("\n[plugins.routing]\nnotice_template = 5\n", "plugins.routing.notice_template: 5 is not valid"),
        ("\n[delivery]\nmode = 'eventually'\n", "delivery.mode: 'eventually' is not valid"),
    ],
    ids=["essential", "unknown", "plugin-setting", "core-setting"],
)
def test_bad_config_exits_2_naming_file_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 extra: str, expected: str) -> None:
    config = write_config(tmp_path, extra)
    code, _, err = run(capsys, "check-config", "--config", str(config))
    assert code == 2
    assert str(config) in err and expected in err


def test_check_config_reports_plugins_and_channels(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check-config", "--config", str(config), "--json")
    data = json.loads(out)
    assert code == 0 and data["channels"] == ["email", "portal", "sms"]
    assert data["plugins"][-1] == "portal"


def test_plugins_lists_call_order_with_hooks(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plugins", "--config", str(config), "--json")
    data = json.loads(out)
    names = [p["name"] for p in data["plugins"]]
    assert code == 0 and names[:2] == ["directory", "templates"] and names[-1] == "portal"
    hooks = {p["name"]: p["hooks"] for p in data["plugins"]}
    assert hooks["consent"] == ["emrcomm_validate"]
    assert "emrcomm_register_channels" in hooks["portal"]


def test_plugins_text_output_is_numbered_in_order(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plugins", "--config", str(config))
    lines = [line for line in out.splitlines() if line[:3].strip().rstrip(".").isdigit()]
    assert code == 0 and lines[0].split()[1] == "directory" and lines[-1].split()[1] == "portal"


def test_records_filters_by_patient_and_status(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n, patient in enumerate(["Patient/on-en", "Patient/none", "Patient/qc-fr"]):
        req = request_file(tmp_path, fhir_request(patient, "appointment-reminder", template="appointment-reminder",
                                                  rid=f"r{n}", variables={"appointment": APPOINTMENT}), f"r{n}.json")
        run(capsys, "send", str(req), "--config", str(config))
    _, out, _ = run(capsys, "records", "--config", str(config), "--status", "not-done", "--json")
    bundle = json.loads(out)
    assert bundle["total"] == 1 and bundle["entry"][0]["resource"]["subject"]["reference"] == "Patient/none"
    _, out, _ = run(capsys, "records", "--config", str(config), "--patient", "Patient/qc-fr", "--fhir")
    assert json.loads(out)["total"] == 1


@pytest.mark.parametrize("patient", ["demo-0001", "Patient/"])
def test_records_for_a_patient_not_given_as_a_reference_is_a_clear_error(
        config: Path, capsys: pytest.CaptureFixture[str], patient: str) -> None:
    code, out, err = run(capsys, "records", "--config", str(config), "--patient", patient)
    assert code == 2 and out == "" and f"--patient {patient!r}: give it as Patient/<id>" in err


def test_records_with_an_unknown_status_lists_the_statuses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["records", "--config", str(config), "--status", "bogus"])
    _, err = capsys.readouterr()
    assert exit_.value.code == 2 and "invalid choice: 'bogus'" in err
    for status in ("completed", "not-done", "on-hold", "in-progress", "stopped"):
        assert status in err


def test_records_status_choices_are_every_status_a_record_can_have() -> None:
    from emrcomm.cli import RECORD_STATUSES
    from emrcomm.lifecycle.states import RULES

    assert set(RECORD_STATUSES) == {rule.status for rule in RULES.values()} | {"in-progress"}


@pytest.mark.sqlite_only
def test_db_status_of_a_database_not_created_yet_says_so(config: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "status", "--config", str(config))
    assert code == 0 and "not created yet: created at the first send" in out and "up to date" not in out
    assert not (tmp_path / "emrcomm.sqlite").exists()
    code, out, _ = run(capsys, "db", "status", "--config", str(config), "--json")
    report = json.loads(out)
    assert code == 0 and report["created"] is False and report["pending"] == []
    assert all(v["database"] is None for v in report["versions"].values())


@pytest.mark.sqlite_only
def test_db_copy_from_a_store_that_does_not_exist_refuses_and_creates_no_target(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A mistyped [store] path in the source config: there is nothing to copy, and an empty target
    # made and then reported "DIFFERENT" sends the admin looking in the wrong place.
    target = tmp_path / "target.toml"
    target.write_text(config.read_text(encoding="utf-8").replace('"emrcomm.sqlite"', '"target.sqlite"'),
                      encoding="utf-8")
    code, out, err = run(capsys, "db", "copy", "--from", str(config), "--config", str(target))
    assert code == 2 and out == ""
    assert "does not exist" in err and str(config) in err
    assert not (tmp_path / "target.sqlite").exists() and not (tmp_path / "emrcomm.sqlite").exists()


def test_serve_on_a_port_another_process_holds_exits_2_and_says_what_to_do(config: Path, tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    # uvicorn exits 3 when it cannot listen: for emrcomm, 3 means a message was not sent.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([str(Path(sys.executable).with_name("emrcomm")), "serve", "--config", str(config),
                               "--port", str(port)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"emrcomm: error: serve: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr.splitlines()[-1]


def test_check_text_exit_codes(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--config", str(config), "--channel", "sms", "--json", "--text",
                       "Riverside Family Health: your INR is 3.4, take less warfarin. Reply STOP to opt out.")
    data = json.loads(out)
    assert code == 3 and data["blocked"] is True
    assert "CLINICAL_CONTENT" in {f["code"] for f in data["findings"]}
    code, out, _ = run(capsys, "check", "--config", str(config), "--channel", "sms", "--text",
                       "Riverside Family Health: see you Tuesday at 10:30. Reply STOP to opt out.")
    assert code == 0


def test_check_jsonl_writes_one_line_per_input(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [{"text": "Riverside Family Health: see you Tuesday at 10:30. Reply STOP to opt out."},
             {"text": "Your biopsy shows cancer.", "channel": "sms"},
             {"text": "Your biopsy shows cancer.", "channel": "portal", "category": "clinical"}]
    source = tmp_path / "templates.jsonl"
    source.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "check", "--config", str(config), "--channel", "sms", "--jsonl", str(source))
    results = [json.loads(line) for line in out.splitlines()]
    assert code == 3
    assert [r["blocked"] for r in results] == [False, True, False]
    assert all(set(f) >= {"code", "severity", "message", "span"} for r in results for f in r["findings"])


def test_check_jsonl_reports_a_bad_line_by_number_and_prints_the_others(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = "Riverside Family Health: see you Tuesday at 10:30. Reply STOP to opt out."
    lines = [json.dumps({"text": good}),
             json.dumps({"text": good, "category": "general"}),
             json.dumps({"text": good, "channel": "fax"}),
             json.dumps({"text": good, "lang": "de"}),
             "not json",
             json.dumps({"text": "Your biopsy shows cancer."})]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "check", "--config", str(config), "--channel", "sms", "--jsonl", str(source))
    results = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5, 6]
    assert results[0]["blocked"] is False and results[5]["blocked"] is True
    errors = {r["line"]: r["error"] for r in results if "error" in r}
    assert "unknown category 'general'" in errors[2] and "appointment-reminder" in errors[2]
    assert "unknown channel 'fax'" in errors[3] and "unknown language 'de'" in errors[4]
    assert "not JSON" in errors[5]
    assert all(f"{source}:{n}:" in errors[n] for n in errors)
    assert "Traceback" not in err and f"{source}:2:" in err


def test_check_says_which_layer_stopped_the_text(config: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    texts = ["Riverside Family Health: your metformin is ready. Reply STOP to opt out.",
             "Riverside Family Health: your numbers came back at 6.9 this time. Reply STOP to opt out.",
             "Riverside Family Health: about the concern you raised on Monday, the doctor would like to "
             "examine it this week. Reply STOP to opt out.",
             "Riverside Family Health: see you Tuesday at 10:30. Reply STOP to opt out."]
    source = tmp_path / "layers.jsonl"
    source.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "check", "--config", str(config), "--channel", "sms", "--jsonl", str(source))
    assert code == 3
    assert [json.loads(line)["content"] for line in out.splitlines()] == ["lexicon", "context", "uncertain", None]
    code, out, _ = run(capsys, "check", "--config", str(config), "--channel", "sms", "--text", texts[2])
    assert code == 3 and "content: routed to the portal for uncertainty" in out
    code, out, _ = run(capsys, "check", "--config", str(config), "--channel", "sms", "--text", texts[1])
    assert "content: blocked by context" in out


def test_version_names_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"emrcomm {emrcomm.__version__}"


def test_emrcomm_alone_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: emrcomm" in err and "demo" in err and "records" in err and "worker" in err


def test_records_with_a_category_that_is_none_lists_the_categories(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["records", "--config", str(config), "--category", "apointment-reminder"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "invalid choice: 'apointment-reminder'" in err
    assert "appointment-reminder" in err.split("choose from", 1)[1]


def test_each_commands_help_opens_with_what_the_command_does(capsys: pytest.CaptureFixture[str]) -> None:
    """`emrcomm doctor --help` says what doctor does, in the words `emrcomm --help` lists it with."""
    for argv in (["doctor"], ["audit", "verify"]):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        usage = " ".join(capsys.readouterr().out.split())
        assert ("try everything the config names from here" in usage if argv == ["doctor"]
                else "check every entry, the chain, the order and the end" in usage)


def test_a_command_of_a_plugin_the_config_does_not_run_says_to_name_the_plugin(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/operations.md sends a reader to `emrcomm fhir-records queue`; on a config without the
    opt-in plugin, the error says how to get the command, not only "invalid choice"."""
    code, _, err = run(capsys, "fhir-records", "queue", "--config", str(config))
    assert code == 2
    assert "'fhir-records' is a command of the plugin 'fhir-records'" in err and "[plugins.fhir-records]" in err


def test_help_loads_the_plugins_without_their_web_pages_or_http_clients(tmp_path: Path) -> None:
    """``emrcomm --help`` starts every plugin to list their commands; the web stack (starlette,
    for ``serve``) and the HTTP client (requests, for a gateway) are imported where they are
    used, not by a plugin's import: on the embedded defaults (file sinks) it needs neither."""
    import os
    import subprocess
    import sys

    script = ("import sys\nfrom emrcomm.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('starlette', 'requests', 'emrcomm.web') if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, DATA_DIR_VARIABLE: str(tmp_path / "data")}, check=False)
    assert done.returncode == 0, done.stderr
    assert "worker" in done.stdout  # the help was printed
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
