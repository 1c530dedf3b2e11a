"""``emrcomm demo``: one clinic day on a synthetic clinic, with nothing else installed.

Creates a folder with a ready emrcomm.toml, the patients as a FHIR Bundle, the SQLite store and
the file sinks, sends the day's messages through the real pipeline and prints what happened.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import sys
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from attrs import define, field

from emrcomm.errors import ConfigError
from emrcomm.model import Category, Request, Sensitivity

MARKER = "# emrcomm demo clinic: this folder is recreated by `emrcomm demo`"
CLINIC_ZONE = zoneinfo.ZoneInfo("America/Toronto")

CONFIG = MARKER + """
[clinic]
name = "Riverside Family Health"
phone = "+1 613 555 0100"
email = "info@riverside.example"
signature = "Riverside Family Health team"
address = "120 Riverside Dr, Ottawa ON"
jurisdiction = "CA-ON"
time_zones = ["America/Toronto"]
link_domains = ["portal.riverside.example", "riverside.example"]
portal_url = "https://portal.riverside.example"
turnaround = "two business days"
turnaround_fr = "deux jours ouvrables"

[store]
path = "emrcomm.sqlite"

[delivery]
mode = "inline"

[plugins.directory]
bundle = "patients.json"

[plugins.sms]
transport = "file"
path = "out/sms.jsonl"

[plugins.email]
transport = "file"
directory = "out/email"
from = "Riverside Family Health <noreply@riverside.example>"
unsubscribe_key = "email-unsubscribe.key"

[plugins.portal]
keyring = "portal-keyring.json"
"""

CLINICAL_NOTES = (
    ("en", "Your HbA1c came back at 8.1%, up from 7.2%. Please increase metformin to 1000 mg twice "
           "daily and book a follow-up in 3 months."),
    ("fr", "Votre résultat d'HbA1c est de 8,1 %, en hausse. Veuillez augmenter la metformine à "
           "1000 mg deux fois par jour."),
)
MISPLACED_RESULT = "Riverside Family Health: your strep test was positive. Reply STOP to opt out."
MARKETING = ("Riverside Family Health: book now and save 20% on our new skin care line! "
             "Reply STOP to opt out.")
SHORT_LINK = "Riverside Family Health: please fill in our form at https://bit.ly/3xYz. Reply STOP to opt out."


class SimClock:
    """The demo's clock: the host reads it, the demo moves it through the day."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


@define
class DemoSummary:
    folder: Path
    patients: int
    counts: Counter[tuple[str, str, str]] = field(factory=Counter)

    def add(self, category: str, status: str, channels: tuple[str, ...]) -> None:
        self.counts[(category, status, "+".join(channels) or "-")] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "patients": self.patients,
            "requests": sum(self.counts.values()),
            "by_status": dict(self._by(1)),
            "rows": [{"category": c, "status": s, "channels": ch, "count": n}
                     for (c, s, ch), n in sorted(self.counts.items())],
        }

    def _by(self, index: int) -> Counter[str]:
        out: Counter[str] = Counter()
        for key, n in self.counts.items():
            out[key[index]] += n
        return out

    def table(self) -> str:
        rows = sorted(self.counts.items())
        widths = (max([len("category")] + [len(k[0]) for k, _ in rows]),
                  max([len("outcome")] + [len(k[1]) for k, _ in rows]),
                  max([len("channel")] + [len(k[2]) for k, _ in rows]))
        head = f"{'category':<{widths[0]}}  {'outcome':<{widths[1]}}  {'channel':<{widths[2]}}  count"
        lines = [head, "-" * len(head)]
        lines += [f"{c:<{widths[0]}}  {s:<{widths[1]}}  {ch:<{widths[2]}}  {n:>5}" for (c, s, ch), n in rows]
        totals = ", ".join(f"{s} {n}" for s, n in sorted(self._by(1).items()))
        lines += ["", f"{sum(self.counts.values())} requests for {self.patients} patients: {totals}",
                  f"Folder: {self.folder}",
                  f"Records: {emrcomm_command()} records --config {self.folder / 'emrcomm.toml'}",
                  f"Staff follow-ups: {emrcomm_command()} inbox --config {self.folder / 'emrcomm.toml'}",
                  f"SMS sink: {self.folder / 'out' / 'sms.jsonl'}; email: {self.folder / 'out' / 'email'}"]
        return "\n".join(lines)


def emrcomm_command() -> str:
    """How to run this emrcomm from the shell that ran it: ``emrcomm`` when that name finds this
    installation, else its own script (``.venv/bin/emrcomm``: the README's virtualenv need not
    be activated), else ``python -m emrcomm`` with this interpreter."""
    script = Path(sys.executable).with_name("emrcomm")
    if not script.is_file():
        return f"{_shown(Path(sys.executable))} -m emrcomm"
    found = shutil.which("emrcomm")
    if found is not None and os.path.samefile(found, script):
        return "emrcomm"
    return _shown(script)


def _shown(path: Path) -> str:
    """``path`` as typed in a shell here: relative below the current folder (with a slash, so
    the shell does not search PATH for it), else absolute."""
    absolute = path.absolute()
    try:
        inside = absolute.relative_to(Path.cwd())
    except ValueError:
        return str(absolute)
    return str(inside) if len(inside.parts) > 1 else f"./{inside}"


def prepare_folder(folder: Path) -> None:
    """Create the folder, or recreate one an earlier demo made; never touch anything else."""
    config = folder / "emrcomm.toml"
    if folder.exists() and any(folder.iterdir()):
        if not config.is_file() or not config.read_text(encoding="utf-8").startswith(MARKER):
            raise ConfigError(f"{folder}: folder is not empty and was not made by `emrcomm demo`; choose another --data")
        for name in ("out", "emrcomm.sqlite", "emrcomm.sqlite-wal", "emrcomm.sqlite-shm", "patients.json",
                     "portal-keyring.json"):
            target = folder / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG, encoding="utf-8")


def clinic_day(bundle: dict[str, Any], day: dt.date, seed: int) -> Iterator[tuple[dt.datetime, Request]]:
    """The day's requests in time order: reminders, results, pickups, invoices, a note, a mistake."""
    rng = random.Random(seed * 7919 + day.toordinal())
    patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    items: list[tuple[dt.datetime, Request]] = []

    def at(hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), CLINIC_ZONE).astimezone(dt.UTC)

    tomorrow = day + dt.timedelta(days=1)
    for n, patient in enumerate(patients):
        ref = f"Patient/{patient['id']}"
        rid = f"demo-{day.isoformat()}-{n:05d}"
        roll = rng.random()
        when = at(rng.randint(8, 17), rng.choice((0, 15, 30, 45)))
        if roll < 0.50:
            appointment = dt.datetime.combine(tomorrow, dt.time(rng.randint(8, 16), rng.choice((0, 20, 40))),
                                              CLINIC_ZONE)
            # The evening batch goes out at 21:10 Toronto time: held for eastern patients until
            # 08:00 their time, sent at once to Pacific ones (18:10 there).
            sent = at(21, 10) if rng.random() < 0.2 else when
            items.append((sent, Request(ref, Category.APPOINTMENT_REMINDER, id=rid + "-rem",
                                        template="appointment-reminder",
                                        variables={"appointment": appointment},
                                        appointment=appointment)))
        elif roll < 0.65:
            items.append((when, Request(ref, Category.RESULTS_AVAILABLE, id=rid + "-res",
                                        template="results-available")))
        elif roll < 0.75:
            items.append((when, Request(ref, Category.PRESCRIPTION_PICKUP, id=rid + "-rx",
                                        template="prescription-pickup",
                                        variables={"pharmacy": "Riverside Pharmacy",
                                                   "ready": dt.datetime.combine(day, dt.time(16, 0), CLINIC_ZONE)})))
        elif roll < 0.85:
            amount = rng.choice((25, 40, 60, 85, 120))
            items.append((when, Request(ref, Category.INVOICE, id=rid + "-inv", template="invoice",
                                        variables={"amount": amount, "invoice_number": f"INV-{n:05d}",
                                                   "due": day + dt.timedelta(days=30)})))
        elif roll < 0.88:
            items.append((when, Request(ref, Category.QUESTIONNAIRE, id=rid + "-q", template="questionnaire",
                                        variables={"link": "https://portal.riverside.example/forms/intake"})))
    # A few hand-written messages that show the rules at work.
    specials = [
        (at(11, 5), 0, lambda ref, i: Request(ref, Category.CLINICAL, id=f"demo-{day}-note-en", text=CLINICAL_NOTES[0][1],
                                              sensitivity=Sensitivity.RESTRICTED, sender="Practitioner/dr-okafor",
                                              sender_name="Dr. Ngozi Okafor")),
        (at(11, 10), 1, lambda ref, i: Request(ref, Category.CLINICAL, id=f"demo-{day}-note-fr", text=CLINICAL_NOTES[1][1],
                                               sensitivity=Sensitivity.RESTRICTED, sender="Practitioner/dr-gagnon",
                                               sender_name="Dre Isabelle Gagnon")),
        (at(13, 30), 2, lambda ref, i: Request(ref, Category.RESULTS_AVAILABLE, id=f"demo-{day}-slip",
                                               text=MISPLACED_RESULT)),
        (at(14, 0), 3, lambda ref, i: Request(ref, Category.MARKETING, id=f"demo-{day}-mkt", text=MARKETING)),
        (at(15, 0), 4, lambda ref, i: Request(ref, Category.QUESTIONNAIRE, id=f"demo-{day}-link", text=SHORT_LINK)),
    ]
    chosen = [p for p in patients if p.get("communication")] or patients
    for when, index, make in specials:
        patient = chosen[(index * 37) % len(chosen)]
        items.append((when, make(f"Patient/{patient['id']}", index)))
    items.sort(key=lambda pair: pair[0])
    yield from items


def run_demo(
    folder: Path,
    *,
    patients: int = 200,
    seed: int = 7,
    day: dt.date | None = None,
    progress: bool = True,
    out: TextIO | None = None,
) -> DemoSummary:
    """Build the demo clinic in ``folder`` and send one clinic day through the pipeline."""
    from emrcomm.clock import default_clock
    from emrcomm.demo_data import generate_clinic, write_bundle
    from emrcomm.host import Host

    if patients < 1:
        raise ConfigError(f"--patients must be at least 1 (got {patients})")
    day = day or default_clock()().astimezone(CLINIC_ZONE).date()
    folder = folder.resolve()
    prepare_folder(folder)
    bundle = generate_clinic(patients, seed, today=day)
    write_bundle(bundle, folder / "patients.json")
    requests = list(clinic_day(bundle, day, seed))
    clock = SimClock(requests[0][0] if requests else dt.datetime.combine(day, dt.time(8), CLINIC_ZONE))
    summary = DemoSummary(folder=folder, patients=patients)
    with Host.from_config(folder / "emrcomm.toml", clock=clock) as host:
        host.plugins.prepare()  # lexicons that cannot be built stop the demo naming the plugin, as send does
        bar = _progress(len(requests), progress, out)
        for when, request in requests:
            clock.now = when
            outcome = host.send(request)
            summary.add(request.category.value, outcome.status.value, outcome.channels)
            bar.update(1)
        bar.close()
    return summary


def _progress(total: int, enabled: bool, out: TextIO | None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="clinic day", unit="msg", disable=not enabled or total < 50, file=out,
                leave=False)
