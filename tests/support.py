"""Building blocks for tests: a small clinic as FHIR (the directory's consent profile), configs."""

from __future__ import annotations

import json
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


def write_config(folder: Path, extra: str = "", *, bundle: dict[str, Any] | None = None) -> Path:
    """A complete config in ``folder`` using the small clinic; ``extra`` is appended TOML."""
    (folder / "patients.json").write_text(json.dumps(bundle or small_clinic()), encoding="utf-8")
    path = folder / "emrcomm.toml"
    path.write_text(BASE_CONFIG + extra, encoding="utf-8")
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
