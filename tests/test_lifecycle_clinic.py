"""A clinic day through the message lifecycle, run as a clinic runs it: real Kannel (bearerbox,
smsbox, and fakesmsc standing for the handsets; concatenation on, a message store), aiosmtpd
with STARTTLS, ``emrcomm serve`` taking Kannel's delivery reports, and two ``emrcomm worker``
processes delivering a queued batch, each its own process on 127.0.0.1. bearerbox is killed
(SIGKILL) once mid-batch and started again.

Then every record is checked against what the handsets and the mail server received (each
message exactly once, delivered, ``sent`` set, nothing left in progress), every Communication is
validated, every delivery report Kannel made during the run is sent again to a restarted
``serve`` (no record changes), and the logs of ``serve`` and the workers are searched for what
only the chart may say. The counts are printed; no duration is asserted.

Kannel takes no idempotency key, so a crash can deliver a message it had in flight twice
(docs/transports.md). Where the kill falls is not chosen, so the test allows a second copy only
with the evidence of one of those two windows (:func:`check_sms`), and prints how many there were;
likewise the first segments of a long message left alone on a handset by the kill.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import email
import email.policy
import http.client
import json
import re
import signal
import sys
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from attrs import frozen

from emrcomm import fhir
from emrcomm.config import load_config
from emrcomm.host import Host
from emrcomm.lifecycle.states import LegState
from emrcomm.model import Category, Record, Request, Status
from emrcomm.pipeline.records import LINK_WITHHELD
from emrcomm.segments import count_segments, to_gsm7
from emrcomm.testing import TEST_NOW
from emrcomm_portal.storage import PortalStore
from mailservers import USERNAME, CertificateAuthority, SmtpServer, through_relay
from servers import FakeSmscMessage, Kannel, Process, free_port, healthy, start_retrying, wait_until
from support import consent, patient

pytestmark = [pytest.mark.kannel, pytest.mark.slow]

EMRCOMM = Path(sys.executable).with_name("emrcomm")
KANNEL_PASSWORD = "kannel-clinic-pw-4e1b"
CALLBACK_SECRET = "callback-secret-clinic-77a0"
SMTP_PASSWORD = "smtp-clinic-pw-2c9d"
CLINIC_NUMBER = "+16135550100"
PORTAL = "https://portal.riverside.example"

# The day's batch, one request per patient: reminders short and long (a location makes two
# GSM-7 segments in either language: 'Côte', not GSM-7, leaves as 'Cote'), clinicians'
# notes (kept in the portal, announced by an SMS notice) and email reminders. The long reminders
# alone are a third of the SMS, however long the notices are.
MIX = {"reminder-en": 100, "reminder-en-long": 80, "reminder-fr": 60, "reminder-fr-long": 40,
       "note-en": 20, "note-fr": 20, "reminder-email": 20}
LOCATION_EN = ("Riverside Family Health, 1200 Riverside Drive, third floor, suite 310 "
               "(east entrance, by the pharmacy)")
LOCATION_FR = "Pavillon Côte-des-Neiges, 2e étage"
NOTES = {
    "en": ["Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily and repeat the test in 3 months.",
           "Your thyroid test (TSH 6.2) is slightly high. Start levothyroxine 25 mcg each morning.",
           "Your cholesterol is high (LDL 4.6). Start atorvastatin 20 mg at bedtime and recheck in 8 weeks."],
    "fr": ["Votre HbA1c est à 8,1 %. Augmentez la metformine à 1000 mg deux fois par jour et refaites le test "
           "dans 3 mois.",
           "Votre bilan thyroïdien (TSH 6,2) est un peu élevé. Commencez la lévothyroxine 25 mcg chaque matin."],
}
APPOINTMENT = TEST_NOW + dt.timedelta(days=1, minutes=30)
GIVEN = {"en": ["Alex", "Sam", "Jordan", "Taylor", "Morgan", "Riley", "Casey", "Jamie"],
         "fr": ["Chloé", "Étienne", "Mathis", "Léa", "Noémie", "Olivier", "Gabrielle", "Félix"]}
FAMILY = {"en": ["Martin", "Brown", "Wilson", "Taylor", "Campbell"], "fr": ["Gagnon", "Roy", "Côté", "Bouchard"]}

DELIVERY = """
[delivery]
mode = "queue"
concurrency = 4
lease_seconds = 30
poll_seconds = 0.2
# bearerbox is down for a few seconds: attempts every second or two until it is back, and
# enough of them that a slow restart on a busy machine does not turn into dead letters.
backoff_base = 0.25
backoff_cap = 2
max_attempts = 100
"""


@frozen
class Planned:
    kind: str
    request: Request
    language: str


def clinic(folder: Path) -> list[Planned]:
    """Write the patients (a FHIR Bundle) and return the day's requests."""
    resources: list[dict[str, Any]] = []
    planned: list[Planned] = []
    n = 0
    for kind, count in MIX.items():
        for i in range(count):
            n += 1
            pid = f"p{n:03d}"
            language = "fr" if kind.endswith(("fr", "fr-long")) else "en"
            mobile = f"+1{'514' if language == 'fr' else '613'}555{1000 + n:04d}"
            mail = f"patient{n:03d}@example.org"
            resources.append(patient(
                pid, given=GIVEN[language][n % len(GIVEN[language])], family=FAMILY[language][n % len(FAMILY[language])],
                mobile=mobile, email=mail, state="QC" if language == "fr" else "ON", language=language,
                prefer=("email",) if kind == "reminder-email" else ()))
            resources += [consent(f"{pid}-sms", pid, "sms", address=mobile), consent(f"{pid}-portal", pid, "portal"),
                          consent(f"{pid}-email", pid, "email", address=mail)]
            rid = f"{kind}-{i:03d}"
            if kind.startswith("note"):
                request = Request(f"Patient/{pid}", Category.RESULTS_AVAILABLE, id=rid,
                                  text=NOTES[language][i % len(NOTES[language])])
            else:
                variables: dict[str, Any] = {"appointment": APPOINTMENT}
                if kind.endswith("long"):
                    variables["location"] = LOCATION_FR if language == "fr" else LOCATION_EN
                request = Request(f"Patient/{pid}", Category.APPOINTMENT_REMINDER, id=rid,
                                  template="appointment-reminder", variables=variables, appointment=APPOINTMENT)
            planned.append(Planned(kind, request, language))
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in resources]}
    (folder / "patients.json").write_text(json.dumps(bundle), encoding="utf-8")
    return planned


def config_text(folder: Path, *, kannel: Kannel, smtp: SmtpServer, ca: CertificateAuthority, serve_port: int) -> str:
    for name, secret in (("kannel-pw", KANNEL_PASSWORD), ("callback-secret", CALLBACK_SECRET),
                         ("smtp-pw", SMTP_PASSWORD)):
        (folder / name).write_text(secret, encoding="utf-8")
    text = f"""
[clinic]
name = "Riverside Family Health"
phone = "+1 613 555 0100"
email = "info@riverside.example"
time_zones = ["America/Toronto"]
link_domains = ["portal.riverside.example"]
portal_url = "{PORTAL}"
turnaround = "two business days"

[store]
path = "emrcomm.sqlite"

[plugins.directory]
bundle = "patients.json"

[plugins.sms]
transport = "kannel"
from = "{CLINIC_NUMBER}"
# Two workers send from this number: 25 a second each.
rate_per_second = 25
callback_url = "http://127.0.0.1:{serve_port}/callbacks"
callback_secret = {{file = "{folder / 'callback-secret'}"}}

[plugins.sms.kannel]
url = "{kannel.sendsms_url}"
username = "{kannel.username}"
password = {{file = "{folder / 'kannel-pw'}"}}
# What the sendsms-user sends whole (tests/kannel/kannel.conf: a long text is not cut).
max_messages = 10
concatenation = true

[plugins.email]
directory = "out/email"

[plugins.portal]
keyring = "keyring.json"
{DELIVERY}"""
    return through_relay(text, smtp, ca, folder / "smtp-pw")


# -- the processes ----------------------------------------------------------------------------------

def start_serve(config: Path, log: Path, chosen: Callable[[int], None] = lambda port: None) -> tuple[Process, int]:
    """``emrcomm serve`` on a free port, told to ``chosen`` before it starts (again on another
    port if that one was taken meanwhile)."""
    tries: list[int] = []

    def start() -> tuple[Process, int]:
        port = free_port()
        tries.append(port)
        chosen(port)
        process = Process([EMRCOMM, "serve", "--config", config, "--port", str(port)],
                          log.with_name(f"{log.stem}-{len(tries)}{log.suffix}"))
        try:
            wait_until(lambda: healthy(port, process.pid) or not process.alive(), 60, "emrcomm serve")
            if not process.alive():
                raise RuntimeError(f"emrcomm serve exited at start; see {process.log}")
        except BaseException:
            process.stop()
            raise
        return process, port

    return start_retrying(start, "emrcomm serve")


def start_worker(config: Path, log: Path) -> Process:
    return Process([EMRCOMM, "worker", "--config", config, "--json"], log)


def worker_stats(process: Process) -> dict[str, Any]:
    """What a worker printed when it stopped (its ``--json`` summary)."""
    text = process.log.read_text(encoding="utf-8", errors="replace")
    start = text.rfind('{\n  "worker"')
    assert start >= 0, f"{process.log}: no summary:\n{text[-2000:]}"
    result: dict[str, Any] = json.loads(text[start:])
    return result


# -- what the handsets and the mail server got -----------------------------------------------------

def handset_messages(kannel: Kannel) -> tuple[list[dict[str, list[bytes]]], dict[str, list[bytes]]]:
    """What each number received, as the handset shows it (a long message's segments joined),
    per bearerbox (one fakesmsc log each, oldest first), and the segments that belong to no
    complete message, by number (a bearerbox killed between a message's segments). Kannel numbers
    a long message's segments with a reference of its own, counted again by a restarted
    bearerbox: each log is assembled on its own."""
    generations: list[dict[str, list[bytes]]] = []
    stranded: dict[str, list[bytes]] = collections.defaultdict(list)
    for log in kannel.handset_logs:
        messages: dict[str, list[bytes]] = collections.defaultdict(list)
        parts: dict[tuple[str, int, int], dict[int, FakeSmscMessage]] = collections.defaultdict(dict)
        for m in Kannel.received_by(log):
            if not m.udh:
                messages[m.receiver].append(m.data)
                continue
            assert m.udh[:3] == b"\x05\x00\x03", f"unexpected UDH {m.udh.hex()}"
            ref, total, seq = m.udh[3], m.udh[4], m.udh[5]
            parts[(m.receiver, ref, total)][seq] = m
        for (receiver, _, total), got in parts.items():
            if set(got) == set(range(1, total + 1)):
                messages[receiver].append(b"".join(got[s].data for s in sorted(got)))
            else:
                stranded[receiver] += [got[s].data for s in sorted(got)]
        generations.append(messages)
    return generations, stranded


def readings(data: bytes) -> set[str]:
    """The texts some octets can be: Kannel hands fakesmsc UCS-2 as UTF-16BE and GSM-7 text in
    its own 8-bit form (Latin-1)."""
    out = {data.decode("latin-1")}
    with contextlib.suppress(UnicodeDecodeError):
        out.add(data.decode("utf-8"))
    if len(data) % 2 == 0:
        with contextlib.suppress(UnicodeDecodeError):
            out.add(data.decode("utf-16-be"))
    return out


def mail_by_record(smtp: SmtpServer) -> dict[str, int]:
    """How many messages the SMTP server took for each record (its Message-ID), all over TLS."""
    counts: collections.Counter[str] = collections.Counter()
    for received in smtp.handler.received:
        assert received.tls and received.authenticated_as == USERNAME
        message = email.message_from_bytes(received.content, policy=email.policy.default)
        counts[str(message["Message-ID"]).strip("<>").split("@")[0]] += 1
    return dict(counts)


# What the Kannel transport logs for each record (its WARNING and INFO lines name the record):
# an answer that never came (the request may have been taken: "ambiguous"), and a 202.
AMBIGUOUS = re.compile(r"kannel: record (\w+): (?:connection broken|no answer within|TLS error \(connection broken\)"
                       r"|HTTP 50[024]\b)")
TAKEN = re.compile(r"kannel: record (\w+): HTTP 202\b")


def worker_evidence(logs: Sequence[Path]) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Per record: how many sendsms requests Kannel took (202), and how many lost their answer."""
    text = "".join(log.read_text(encoding="utf-8", errors="replace") for log in logs)
    return collections.Counter(TAKEN.findall(text)), collections.Counter(AMBIGUOUS.findall(text))


# -- the delivery reports Kannel made ----------------------------------------------------------------

# smsbox logs every URL it fetches (log-level 0), the delivery reports' among them.
FETCHED = re.compile(r"Parsing URL `(http://127\.0\.0\.1:\d+/callbacks/kannel/dlr\?[^']*)'")
ANSWERED = re.compile(r"GET /callbacks/kannel/dlr (\d{3}) ")


def reports_made(kannel: Kannel) -> list[str]:
    """Every delivery-report URL smsbox fetched, in order, across its restarts (one log file)."""
    log = kannel.dir / "smsbox.log"
    return FETCHED.findall(log.read_text(encoding="utf-8", errors="replace")) if log.exists() else []


def reports_answered(serve_logs: Sequence[Path]) -> collections.Counter[str]:
    """The answers ``serve`` gave to delivery reports, by status (its access log)."""
    return collections.Counter(code for log in serve_logs
                               for code in ANSWERED.findall(log.read_text(encoding="utf-8", errors="replace")))


# -- the chart -------------------------------------------------------------------------------------

def chart(host: Host, record_ids: Sequence[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each record as the chart shows it (its Communication) and its events' keys."""
    out = {}
    for rid in record_ids:
        record = host.record(rid)
        assert record is not None, rid
        out[rid] = (json.dumps(fhir.communication(record), sort_keys=True),
                    tuple(sorted(e.dedup for e in host.storage.records.events(rid))))
    return out


def settled(host: Host, sms: Sequence[str]) -> bool:
    """The outbox is empty and every SMS record has its delivery report (or has ended otherwise)."""
    if host.storage.outbox.counts():
        return False
    return all((r := host.record(rid)) is not None and r.state not in ("queued", "accepted", "held") for rid in sms)


def expected_text(host: Host, record: Record) -> str:
    """What the handset must show for an SMS record: its text, a notice's link put back."""
    text = record.text or ""
    if LINK_WITHHELD in text:
        [portal] = [r for r in host.storage.records.for_request(record.request.id) if r.channel == "portal"]
        link = host.channels["portal"].transport.link_for(uuid.UUID(hex=portal.id).hex)  # type: ignore[attr-defined]
        text = text.replace(LINK_WITHHELD, link)
    return text


# -- the logs -------------------------------------------------------------------------------------

def private_words(host: Host, record_ids: Sequence[str]) -> set[str]:
    """What no log may say: the batch's numbers (with or without '+'), email addresses, the
    clinicians' notes and the locations (as typed and as an SMS spells them), and the portal's links
    (magic-link tokens)."""
    words = {f"{PORTAL}/", LOCATION_EN, LOCATION_FR, to_gsm7(LOCATION_FR),
             *(note[:24] for notes in NOTES.values() for note in notes)}
    for rid in record_ids:
        record = host.record(rid)
        if record is not None and record.channel in ("sms", "email") and record.address:
            words.add(record.address.removeprefix("+"))
    return words


def leaks(logs: Sequence[Path], words: set[str]) -> list[str]:
    """The log lines that say any of ``words``, as ``file:line``."""
    pattern = re.compile("|".join(map(re.escape, sorted(words, key=len, reverse=True))))
    return [f"{log.name}:{n}" for log in logs
            for n, line in enumerate(log.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if pattern.search(line)]


# -- the checks -----------------------------------------------------------------------------------

@frozen
class Received:
    """What reached the patients' side: the handsets' messages per bearerbox, the mail server's
    messages per record, and what the workers' logs say of each SMS request."""

    handsets: list[dict[str, list[bytes]]]
    stranded: dict[str, list[bytes]]
    mail: dict[str, int]
    taken: collections.Counter[str]
    ambiguous: collections.Counter[str]

    def copies(self, number: str, text: str) -> list[int]:
        """How many times each bearerbox delivered ``text`` to ``number``."""
        return [sum(text in readings(data) for data in generation.get(number, [])) for generation in self.handsets]


def check_sms(host: Host, record: Record, received: Received) -> tuple[list[str], int]:
    """Problems with an SMS record, and how many extra copies reached its handset.

    Exactly one copy, delivered, ``sent`` set no later than the report, one "delivered" note.
    Kannel takes no idempotency key, so a crash can leave two copies in two windows, each
    allowed only with its evidence: a request whose answer was lost (the worker's log says so)
    that Kannel had stored, sent again by the retry; and a message bearerbox had handed to the
    SMSC but not yet marked done in its store, sent again by the restarted bearerbox (one copy
    from each bearerbox). A bearerbox killed between a long message's segments leaves the first
    ones alone on the handset: each must be a part of the text (which then arrives whole).
    """
    problems = []
    number, text = record.address or "", expected_text(host, record)
    copies = received.copies(number, text)
    in_all = sum(len(generation.get(number, [])) for generation in received.handsets)
    resent_by_kannel = int(len(copies) > 1 and copies[0] >= 1 and copies[-1] >= 1)
    if not 1 <= sum(copies) <= 1 + received.ambiguous[record.id] + resent_by_kannel or in_all != sum(copies):
        problems.append(f"the handset shows it {copies} time(s) (per bearerbox), {in_all} message(s) in all; "
                        f"answers lost {received.ambiguous[record.id]}")
    stray = [f for f in received.stranded.get(number, []) if not any(r in text for r in readings(f))]
    if stray:
        problems.append(f"{len(stray)} segment(s) on the handset that are no part of its text")
    if received.taken[record.id] != 1:
        problems.append(f"Kannel took {received.taken[record.id]} sendsms request(s) for it")
    reported = [e.at for e in host.storage.records.events(record.id) if e.kind is LegState.DELIVERED]
    if (record.state, record.status) != ("delivered", "completed") or record.sent is None or len(reported) != 1 \
            or record.sent > reported[0] or sum(n.startswith("delivered ") for n in record.notes) != 1:
        problems.append(f"sent={record.sent} delivered={reported} notes={record.notes}")
    return problems, max(0, sum(copies) - 1)


def check_portal(host: Host, record: Record) -> list[str]:
    """Kept (encrypted) in the portal when the request was decided, and announced by its notice."""
    problems = []
    if (record.state, record.status) != ("accepted", "completed") or record.sent is None \
            or "PATIENT_NOT_TOLD" in record.reasons:
        problems.append(f"reasons={record.reasons}")
    if PortalStore(host.storage.db).get(uuid.UUID(hex=record.id).hex) is None:
        problems.append("the portal does not hold the message")
    return problems


def check_email(record: Record, received: Received) -> list[str]:
    problems = []
    if received.mail.get(record.id) != 1:
        problems.append(f"the mail server took it {received.mail.get(record.id, 0)} time(s)")
    if (record.state, record.status) != ("accepted", "completed") or record.sent is None:
        problems.append(f"sent={record.sent}")
    return problems


# -- the test --------------------------------------------------------------------------------------

@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


def test_a_clinic_batch_survives_a_bearerbox_crash_and_every_record_says_what_the_patient_got(
    tmp_path: Path, stack: contextlib.ExitStack, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    smtp = SmtpServer(ca, password=SMTP_PASSWORD)
    stack.callback(smtp.stop)
    kannel = Kannel(tmp_path / "kannel", password=KANNEL_PASSWORD)
    stack.callback(kannel.stop)
    planned = clinic(tmp_path)
    config = tmp_path / "emrcomm.toml"

    # serve first: the delivery-report URLs name its port.
    def configure(port: int) -> None:
        config.write_text(config_text(tmp_path, kannel=kannel, smtp=smtp, ca=ca, serve_port=port), encoding="utf-8")

    serve, _ = start_serve(config, tmp_path / "serve.log", configure)
    serve_logs = [serve.log]
    stack.callback(lambda: serve.stop(20))

    host = stack.enter_context(Host(load_config(config)))
    outcomes = list(host.send_many(p.request for p in planned))
    assert collections.Counter(o.status for o in outcomes) == {Status.QUEUED: len(planned)}
    records = {rid: p for p, o in zip(planned, outcomes) for rid in o.record_ids}
    channel_of = {rid: r.channel for rid in records if (r := host.record(rid)) is not None}
    sms = [rid for rid, channel in channel_of.items() if channel == "sms"]
    segments = {rid: count_segments(expected_text(host, r))[1] for rid in sms if (r := host.record(rid))}
    long_ones = sum(n >= 2 for n in segments.values())
    assert len(sms) >= 300 and long_ones * 3 >= len(sms)

    workers = [start_worker(config, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    for w in workers:
        stack.callback(w.stop, 60)

    # Mid-batch: once a third of the segments reached the handsets, bearerbox dies, and comes back.
    third = sum(segments.values()) // 3
    wait_until(lambda: len(kannel.received()) >= third, 120, "a third of the batch at the handsets", 0.02)
    kannel.crash()
    at_crash, left_at_crash = len(kannel.received()), sum(host.storage.outbox.counts().values())
    assert left_at_crash > 0, "the batch was sent before bearerbox was killed"  # sending is paced: it is not
    kannel.restart()

    wait_until(lambda: settled(host, sms), 150, "every SMS delivered and reported", 0.5)
    # The last reports may still be on their way to serve: wait until it answered each one made.
    def every_report_answered() -> bool:
        return sum(reports_answered(serve_logs).values()) >= len(reports_made(kannel))

    wait_until(every_report_answered, 30, "serve to answer every delivery report")
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        w.wait(60)
        assert w.popen.returncode == 0, w.log.read_text(encoding="utf-8", errors="replace")[-2000:]
    stats = [worker_stats(w)["worker"] for w in workers]
    assert host.storage.outbox.counts() == {}

    # Every record against what reached the patients ----------------------------------------------------
    handsets, stranded = handset_messages(kannel)
    received = Received(handsets, stranded, mail_by_record(smtp), *worker_evidence([w.log for w in workers]))
    problems: list[str] = []
    extra_copies = 0
    for rid, plan in records.items():
        record = host.record(rid)
        assert record is not None
        fhir.validate_resource(fhir.communication(record))  # fhir.resources' R4B model
        if record.channel == "sms":
            found, extra = check_sms(host, record, received)
            extra_copies += extra
        elif record.channel == "portal":
            found = check_portal(host, record)
        elif record.channel == "email":
            found = check_email(record, received)
        else:
            found = ["an unexpected channel"]
        problems += [f"{plan.request.id} ({record.channel}, {record.state}/{record.status}): {p}" for p in found]
    numbers = {r.address for rid in sms if (r := host.record(rid)) is not None}
    unexpected = ({n for generation in handsets for n in generation} | set(stranded)) - numbers
    assert not unexpected, f"messages to numbers the batch never wrote to: {sorted(unexpected)[:5]}"
    assert not problems, f"{len(problems)} record(s) disagree with what was received:\n  " + "\n  ".join(problems[:30])

    # Every report Kannel made, again, to a serve started anew: nothing changes -------------------------
    wait_until(every_report_answered, 30, "serve to answer every delivery report")  # a late one from the store
    made = reports_made(kannel)
    answered = reports_answered(serve_logs)
    assert answered == {"200": len(made)}, (answered, len(made))  # serve took every report Kannel made
    before = chart(host, list(records))
    serve.stop(20)
    serve, replay_port = start_serve(config, tmp_path / "serve-again.log")
    replies = replay(replay_port, made)
    after = chart(host, list(records))
    changed = [rid for rid in records if before[rid] != after[rid]]
    assert replies == {200: len(made)}, replies
    assert changed == [], f"replayed reports changed {len(changed)} record(s): {changed[:5]}"

    # The logs name records, never a number, an address, a text or a link -----------------------------
    logs = [*serve_logs, serve.log, *(w.log for w in workers)]
    leaked = leaks(logs, private_words(host, list(records)))
    assert not leaked, f"{len(leaked)} log line(s) say what only the chart may:\n  " + "\n  ".join(leaked[:10])

    kinds = collections.Counter(channel_of.values())
    types = collections.Counter(urllib.parse.parse_qs(urllib.parse.urlsplit(u).query)["type"][0] for u in made)
    with capsys.disabled():
        print(f"\n[lifecycle] {len(planned)} requests ({sum(p.language == 'fr' for p in planned)} in French), "
              f"{len(records)} records: {kinds['sms']} SMS ({long_ones} of 2+ segments, "
              f"{sum(segments.values())} segments), {kinds['portal']} portal, {kinds['email']} email")
        print(f"[lifecycle] bearerbox killed at {at_crash}/{sum(segments.values())} segments, "
              f"{left_at_crash} outbox rows left; workers: sent {sum(s['sent'] for s in stats)}, "
              f"retried {sum(s['retried'] for s in stats)}, dead {sum(s['dead'] for s in stats)}, "
              f"answers lost {sum(received.ambiguous.values())}")
        print(f"[lifecycle] handsets: {sum(len(v) for g in handsets for v in g.values())} messages, "
              f"extra copies {extra_copies}, stranded segments {sum(map(len, stranded.values()))}; "
              f"mail {sum(received.mail.values())}; records as received: {len(records)}/{len(records)}, "
              f"validated {len(records)}")
        print(f"[lifecycle] delivery reports: {len(made)} made by Kannel (by type {dict(sorted(types.items()))}), "
              f"replayed {sum(replies.values())}; changed records: {len(changed)}")
        print(f"[lifecycle] logs of serve and the workers: {len(logs)}; lines with a number, an address, "
              f"a text or a link: {len(leaked)}")


def replay(port: int, urls: Sequence[str]) -> collections.Counter[int]:
    """GET each URL's path and query from ``serve`` on ``port``; the answers by status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    replies: collections.Counter[int] = collections.Counter()
    try:
        for url in urls:
            parts = urllib.parse.urlsplit(url)
            connection.request("GET", f"{parts.path}?{parts.query}")
            response = connection.getresponse()
            response.read()
            replies[response.status] += 1
    finally:
        connection.close()
    return replies
