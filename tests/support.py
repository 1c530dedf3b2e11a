"""Building blocks for tests: a small clinic as FHIR (the directory's consent profile), configs."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXT = "http://emrcomm.org/fhir/StructureDefinition/"
PURPOSE = "http://emrcomm.org/fhir/CodeSystem/purpose"
MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
CHANNEL = "http://emrcomm.org/fhir/CodeSystem/channel"
CATEGORY = "http://emrcomm.org/fhir/CodeSystem/category"
REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"  # material nobody on this project wrote (tests/data/README.md)


def patient(pid: str, *, given: str, family: str, mobile: str | None = None, email: str | None = None,
            landline: str | None = None, state: str = "ON", country: str = "CA", language: str = "en",
            prefer: tuple[str, ...] = (), restrict: bool = False) -> dict[str, Any]:
    telecom = []
    if mobile:
        telecom.append({"system": "phone", "value": mobile, "use": "mobile", "rank": 1,
                        "extension": [{"url": EXT + "contact-verified", "valueBoolean": True}]})
    if email:
        telecom.append({"system": "email", "value": email, "rank": 2,
                        "extension": [{"url": EXT + "contact-verified", "valueBoolean": True}]})
    if landline:
        telecom.append({"system": "phone", "value": landline, "use": "home", "rank": 3})
    res: dict[str, Any] = {
        "resourceType": "Patient", "id": pid,
        "name": [{"use": "official", "family": family, "given": [given]}],
        "telecom": telecom,
        "birthDate": "1980-04-12",
        "address": [{"use": "home", "city": "Ottawa", "state": state, "country": country}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": f"{language}-CA"}]},
                           "preferred": True}],
    }
    if prefer:
        res["extension"] = [{"url": EXT + "contact-preference", "extension":
                             [{"url": "channel", "valueCode": c} for c in prefer]
                             + [{"url": "restrict", "valueBoolean": restrict}]}]
    return res


def consent(cid: str, pid: str, channel: str, purpose: str = "clinical", *, address: str | None = None,
            revoked_at: str | None = None, source: str | None = None) -> dict[str, Any]:
    codes = {"sms": (MODE, "SMSWRIT"), "email": (MODE, "EMAILWRIT"), "portal": (CHANNEL, "portal")}
    system, code = codes.get(channel, (CHANNEL, channel))  # a plugin's channel: its name in emrcomm's system
    res: dict[str, Any] = {
        "resourceType": "Consent", "id": cid,
        "status": "inactive" if revoked_at else "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": PURPOSE, "code": purpose}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "dateTime": "2026-01-05T10:00:00-05:00",
        "provision": {"code": [{"coding": [{"system": system, "code": code}]}]},
    }
    ext = []
    if address:
        ext.append({"url": EXT + "consent-address", "valueString": address})
    if source:
        ext.append({"url": EXT + "consent-source", "valueString": source})
    if ext:
        res["extension"] = ext
    if revoked_at:
        res["provision"]["period"] = {"start": "2026-01-05T10:00:00-05:00", "end": revoked_at}
    return res


def small_clinic() -> dict[str, Any]:
    """Five patients, each there for a reason the tests name."""
    resources = [
        # Ontario, English, consents to everything clinical.
        patient("on-en", given="Alex", family="Martin", mobile="+16135550123", email="alex.martin@example.org"),
        consent("c1", "on-en", "sms", address="+16135550123"),
        consent("c2", "on-en", "email", address="alex.martin@example.org"),
        consent("c3", "on-en", "portal"),
        # Quebec, French, SMS and portal.
        patient("qc-fr", given="Chloé", family="Gagnon", mobile="+15145550199", email="chloe.gagnon@example.org",
                state="QC", language="fr"),
        consent("c4", "qc-fr", "sms", address="+15145550199"),
        consent("c5", "qc-fr", "email", address="chloe.gagnon@example.org"),
        consent("c6", "qc-fr", "portal"),
        consent("c7", "qc-fr", "email", "billing", address="chloe.gagnon@example.org"),
        # Said STOP to SMS; email still fine.
        patient("stopped", given="Sam", family="Lee", mobile="+16135550142", email="sam.lee@example.org"),
        consent("c8", "stopped", "sms", address="+16135550142", revoked_at="2026-10-01T09:00:00-04:00",
                source="STOP reply"),
        consent("c9", "stopped", "email", address="sam.lee@example.org"),
        # No consent at all.
        patient("none", given="Noa", family="Roy", mobile="+16135550177"),
        # Florida: quiet hours end at 20:00 there.
        patient("fl", given="Jordan", family="Diaz", mobile="+13055550142", state="FL", country="US"),
        consent("c10", "fl", "sms", address="+13055550142"),
        consent("c11", "fl", "portal"),
        # New York, no consent recorded: only the US healthcare exemption could reach them.
        patient("ny", given="Riley", family="Chen", mobile="+12125550143", state="NY", country="US"),
    ]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:x:{r['id']}", "resource": r} for r in resources]}


def merged_pair() -> list[dict[str, Any]]:
    """Blake's two charts, merged by the EMR: ``blake-old`` (Ontario, English, an old mobile it
    consented on) is inactive and replaced by ``blake`` (Quebec, French, another mobile, its own
    consent), which replaces it (FHIR R4 Patient.link)."""
    old = {**patient("blake-old", given="Blake", family="Roy", mobile="+16135550166"), "active": False,
           "link": [{"other": {"reference": "Patient/blake"}, "type": "replaced-by"}]}
    kept = {**patient("blake", given="Blake", family="Roy", mobile="+15145550167", state="QC", language="fr"),
            "active": True, "link": [{"other": {"reference": "Patient/blake-old"}, "type": "replaces"}]}
    return [old, consent("c-blake-old", "blake-old", "sms", address="+16135550166"),
            kept, consent("c-blake", "blake", "sms", address="+15145550167")]


def sms_refused(cid: str, pid: str) -> dict[str, Any]:
    """A ``deny`` Consent: the patient of chart ``pid`` refused clinical SMS to any number on
    2026-02-01, after the consents of :func:`merged_pair` (a date of its own: the server's
    ``meta.lastUpdated`` is not the test's clock)."""
    res = consent(cid, pid, "sms")
    res["dateTime"] = "2026-02-01T10:00:00-05:00"
    res["provision"] = {**res["provision"], "type": "deny", "period": {"end": "2026-02-01T10:00:00-05:00"}}
    res["extension"] = [{"url": EXT + "consent-source", "valueString": "front desk"}]
    return res


# The database the running test's configs name (tests/conftest.py `backend`): None for the
# SQLite file in the test's folder, else a PostgreSQL URL (a database of the test's own).
STORE_URL: str | None = None


def with_store(text: str, url: str | None = None) -> str:
    """``text`` (a config) pointed at the running test's database (or ``url``): on PostgreSQL
    its ``[store]`` table gains ``url`` (the SQLite ``path`` stays: the audit key is beside it)."""
    url = url or STORE_URL
    if url is None or "url = " in text.split("[store]", 1)[-1].split("\n[", 1)[0]:
        return text
    if "\n[store]\n" in "\n" + text:
        return ("\n" + text).replace("\n[store]\n", f'\n[store]\nurl = "{url}"\n', 1)[1:]
    return text + f'\n[store]\nurl = "{url}"\n'


def write_config(folder: Path, extra: str = "", *, bundle: dict[str, Any] | None = None) -> Path:
    """A complete config in ``folder`` using the small clinic; ``extra`` is appended TOML."""
    (folder / "patients.json").write_text(json.dumps(bundle or small_clinic()), encoding="utf-8")
    path = folder / "emrcomm.toml"
    path.write_text(with_store(BASE_CONFIG + extra), encoding="utf-8")
    return path


BASE_CONFIG = """
[clinic]
name = "Riverside Family Health"
phone = "+1 613 555 0100"
email = "info@riverside.example"
time_zones = ["America/Toronto"]
link_domains = ["portal.riverside.example"]
portal_url = "https://portal.riverside.example"
turnaround = "two business days"
turnaround_fr = "deux jours ouvrables"

[store]
path = "emrcomm.sqlite"

[plugins.directory]
bundle = "patients.json"

[plugins.sms]
path = "out/sms.jsonl"

[plugins.email]
directory = "out/email"

[plugins.portal]
keyring = "keyring.json"
"""


def kannel_sms(url: str, folder: Path, *, sender: str = "+16135550100") -> str:
    """A ``[plugins.sms]`` section sending through a Kannel at ``url`` (a scripted one), its
    password in a file in ``folder``: it replaces BASE_CONFIG's file sink."""
    password = folder / "kannel-pw"
    password.write_text("pw-1", encoding="utf-8")
    return (f'[plugins.sms]\ntransport = "kannel"\nfrom = "{sender}"\n[plugins.sms.kannel]\n'
            f'url = "{url}/cgi-bin/sendsms"\nusername = "emrcomm"\npassword = {{file = "{password}"}}\n')


def fhir_request(patient_ref: str, category: str, *, text: str | None = None, template: str | None = None,
                 rid: str = "req-1", variables: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "CommunicationRequest", "id": rid, "status": "active",
                           "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
                           "subject": {"reference": patient_ref}}
    if text:
        res["payload"] = [{"contentString": text}]
    ext = []
    if template:
        ext.append({"url": EXT + "template", "valueString": template})
    for name, (kind, value) in (variables or {}).items():
        ext.append({"url": EXT + "variable", "extension": [{"url": "name", "valueString": name},
                                                            {"url": "value", kind: value}]})
    if ext:
        res["extension"] = ext
    res.update(extra)
    return res


def communication(host: Any, record_id: str) -> dict[str, Any] | None:
    """The Communication the chart shows for a record now (None when there is no such record)."""
    from emrcomm.fhir import communication as to_fhir

    record = host.record(record_id)
    return to_fhir(record) if record is not None else None


class _PgRaw:
    """A psycopg connection that takes ``?`` placeholders, like sqlite3's (for tests that reach
    past the repositories to tamper with rows, as someone with write access could)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url)

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), tuple(params) or None)  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Any) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])  # type: ignore[arg-type]


@contextlib.contextmanager
def raw_store(path: Path) -> Iterator[Any]:
    """The running test's database as a DB-API connection, committed when the block ends: the
    SQLite file at ``path``, or the test's PostgreSQL database."""
    if STORE_URL is None:
        db = sqlite3.connect(path)
        try:
            with db:
                yield db
        finally:
            db.close()
        return
    raw = _PgRaw(STORE_URL)
    try:
        with raw.conn.transaction():
            yield raw
    finally:
        raw.conn.close()


def open_store(path: Path, **kwargs: Any) -> Any:
    """The running test's store through the repositories: ``open_sqlite(path)``, or the test's
    PostgreSQL database (upgraded as ``open_sqlite`` would)."""
    from emrcomm.storage import open_postgres, open_sqlite

    if STORE_URL is None:
        return open_sqlite(path, **kwargs)
    kwargs.pop("synchronous", None)
    return open_postgres(STORE_URL, upgrade_it=not kwargs.get("read_only", False), **kwargs)


def store_bytes(path: Path) -> bytes:
    """Everything the running test's store keeps, as bytes to search: the SQLite file, or every
    row of every table of the PostgreSQL database; then what is kept packed (record facts,
    audit entries: emrcomm.storage.packed), unpacked, so that a search sees their words too."""
    if STORE_URL is None:
        return path.read_bytes() + unpacked(path)
    import psycopg

    out = bytearray()
    with psycopg.connect(STORE_URL) as conn:
        names = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = current_schema()")]
        for name in names:
            for row in conn.execute(f"SELECT * FROM {name}"):  # type: ignore[arg-type]
                for value in row:
                    out += value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
    return bytes(out) + unpacked(path)


def unpacked(path: Path) -> bytes:
    """The packed values of the running test's store (record facts, audit entries), unpacked."""
    from emrcomm.storage.packed import unpack

    with raw_store(path) as db:
        values = [*db.execute("SELECT facts FROM records").fetchall(),
                  *db.execute("SELECT entry FROM audit_log").fetchall()]
    return b"".join(unpack(value) for (value,) in values)
