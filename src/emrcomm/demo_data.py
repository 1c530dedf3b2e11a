"""A synthetic clinic: a FHIR R4 Bundle of Patients and their communication Consents.

Deterministic for a given ``(n, seed, today)``: one ``random.Random(seed)``, no clock. Every
person is invented, and so is every phone number: they are in the 555-0100 to 555-0199 range that
North American numbering reserves for fiction, which phonenumbers still accepts as valid, so
validation is exercised as in production without ever texting a real person. Email addresses
use the reserved example.org/.com/.net domains.

The mix (shares of ``n``, rounded):

* where: 45% Ontario (Ottawa, Toronto; 15% of them French-speaking), 35% Quebec (Montréal,
  Québec, Gatineau; 20% English-speaking), 20% United States (NY, FL, CA, WA; English).
* consent scenario, one per patient (``meta.tag`` in :data:`SCENARIO_SYSTEM` names it):
  ``full`` (clinical SMS + email + portal, the rest, ~59%), ``email-only`` 15%, ``no-sms``
  10% (half of them have only a landline), ``sms-revoked`` 8% (SMS consent withdrawn by a STOP
  reply; email and portal stay), ``portal-only`` 5% (all consents, but a confidential-communication
  request restricts them to the portal), ``no-consent`` 3%.
* overlays, also tagged: ``billing-email`` 60%, ``billing-sms`` 5%, ``invalid-phone`` 2% (a
  mobile number one digit short, consented as written), ``no-address`` 2% (time zone only from
  the phone number), ``home-phone`` 15% (a landline besides the mobile), ``old-mobile`` 4% (an
  ended number that must not be used), ``unverified`` about 15% of contact points.

The Consents follow the profile in :mod:`emrcomm.fhir.patients`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import unicodedata
import zoneinfo
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEMO_TODAY = dt.date(2026, 11, 23)
"""The reference date of the demo clinic (the day of ``emrcomm.testing.TEST_NOW``)."""

BASE = "http://emrcomm.org/fhir"
EXT = f"{BASE}/StructureDefinition/"
PURPOSE_SYSTEM = f"{BASE}/CodeSystem/purpose"
CHANNEL_SYSTEM = f"{BASE}/CodeSystem/channel"
SCENARIO_SYSTEM = f"{BASE}/CodeSystem/demo-scenario"
MRN_SYSTEM = "http://clinic.example/fhir/sid/mrn"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
BCP47 = "urn:ietf:bcp:47"
FULL_URL = "http://clinic.example/fhir"

EMAIL_DOMAINS = ("example.org", "example.com", "example.net")

ENGLISH_GIVEN = {
    "male": ["James", "John", "Robert", "Michael", "William", "David", "Daniel", "Matthew", "Andrew",
             "Christopher", "Ryan", "Kevin", "Brian", "Thomas", "Jason", "Mark", "Steven", "Paul",
             "Adam", "Ethan", "Liam", "Noah"],
    "female": ["Mary", "Jennifer", "Linda", "Sarah", "Emily", "Jessica", "Ashley", "Emma", "Olivia",
               "Hannah", "Megan", "Rachel", "Laura", "Karen", "Susan", "Nicole", "Amanda", "Chloe",
               "Grace", "Abigail"],
}
ENGLISH_FAMILY = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Campbell", "Mitchell",
    "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker", "Collins", "Edwards", "Stewart",
    "Murphy", "MacDonald", "Fraser", "O'Brien", "Kelly",
]
FRENCH_GIVEN = {
    "male": ["Jean", "Pierre", "Louis", "Jacques", "François", "Michel", "André", "Luc", "Mathieu",
             "Étienne", "Benoît", "Guillaume", "Olivier", "Philippe", "Sébastien", "Alexandre",
             "Gabriel", "Félix", "Antoine", "Jérôme", "Éric", "Raphaël"],
    "female": ["Marie", "Sophie", "Isabelle", "Nathalie", "Julie", "Catherine", "Geneviève", "Chantal",
               "Mélanie", "Émilie", "Valérie", "Stéphanie", "Josée", "Hélène", "Véronique", "Camille",
               "Léa", "Chloé", "Béatrice", "Marie-Ève", "Anne-Sophie"],
}
FRENCH_FAMILY = [
    "Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin", "Gagné",
    "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc", "Paquette", "Girard",
    "Simard", "Boucher", "Caron", "Beaulieu", "Cloutier", "Dubé", "Poirier", "Fournier", "Lapointe",
    "Leclerc", "Lefebvre", "Poulin", "Thibault", "St-Pierre", "Nadeau", "Martel", "Gilbert", "Hébert",
    "Desjardins", "Lachance", "Racine", "Vaillancourt", "Mercier",
]


class _City:
    def __init__(
        self,
        name: str,
        state: str,
        country: str,
        zone: str,
        area_codes: Sequence[str],
        streets: Sequence[str],
        postal: Sequence[str],
    ) -> None:
        self.name, self.state, self.country, self.zone = name, state, country, zone
        self.area_codes, self.streets, self.postal = tuple(area_codes), tuple(streets), tuple(postal)


CITIES: dict[str, _City] = {
    c.name: c
    for c in (
        _City("Ottawa", "ON", "CA", "America/Toronto", ["613", "343"],
              ["Bank Street", "Elgin Street", "Rideau Street", "Carling Avenue", "Somerset Street West",
               "Bronson Avenue"], ["K1P", "K1R", "K1S", "K2P", "K1Y"]),
        _City("Toronto", "ON", "CA", "America/Toronto", ["416", "647", "437"],
              ["Queen Street West", "Yonge Street", "Bloor Street West", "Dundas Street East",
               "Spadina Avenue", "College Street"], ["M5V", "M6J", "M4Y", "M5A", "M6G"]),
        _City("Montréal", "QC", "CA", "America/Toronto", ["514", "438"],
              ["rue Saint-Denis", "boulevard Saint-Laurent", "rue Sherbrooke Est",
               "avenue du Mont-Royal Est", "rue Ontario Est", "rue Wellington"],
              ["H2X", "H2J", "H2T", "H3H", "H4A"]),
        _City("Québec", "QC", "CA", "America/Toronto", ["418", "581"],
              ["rue Saint-Jean", "boulevard René-Lévesque Ouest", "chemin Sainte-Foy", "avenue Cartier"],
              ["G1R", "G1K", "G1S"]),
        _City("Gatineau", "QC", "CA", "America/Toronto", ["819", "873"],
              ["boulevard Saint-Joseph", "rue Laurier", "boulevard Maloney Ouest", "rue Montcalm"],
              ["J8X", "J8Y", "J9H"]),
        _City("New York", "NY", "US", "America/New_York", ["212", "917", "646"],
              ["Broadway", "West 86th Street", "Amsterdam Avenue", "Lexington Avenue"],
              ["10023", "10024", "10025", "10011"]),
        _City("Miami", "FL", "US", "America/New_York", ["305", "786"],
              ["Biscayne Boulevard", "Collins Avenue", "SW 8th Street", "Coral Way"],
              ["33130", "33131", "33133", "33135"]),
        _City("San Francisco", "CA", "US", "America/Los_Angeles", ["415", "628"],
              ["Valencia Street", "Mission Street", "Geary Boulevard", "Divisadero Street"],
              ["94110", "94114", "94117", "94103"]),
        _City("Seattle", "WA", "US", "America/Los_Angeles", ["206"],
              ["Pike Street", "Rainier Avenue South", "NE 45th Street", "Fremont Avenue North"],
              ["98101", "98103", "98105", "98118"]),
    )
}

# (city, share of n)
CITY_SHARES: tuple[tuple[str, float], ...] = (
    ("Ottawa", 0.23), ("Toronto", 0.22),
    ("Montréal", 0.21), ("Québec", 0.09), ("Gatineau", 0.05),
    ("New York", 0.06), ("Miami", 0.05), ("San Francisco", 0.05), ("Seattle", 0.04),
)
SCENARIO_SHARES: tuple[tuple[str, float], ...] = (
    ("email-only", 0.15), ("no-sms", 0.10), ("sms-revoked", 0.08), ("portal-only", 0.05), ("no-consent", 0.03),
)
CONSENT_SOURCES = ("front desk", "intake form", "portal sign-up", "phone call")
_POSTAL_LETTERS = "ABCEGHJKLMNPRSTVWXYZ"


def _quota(rng: random.Random, n: int, shares: Sequence[tuple[str, float]], rest: str) -> list[str]:
    """n labels, round(n * share) of each and ``rest`` for the others, in random order."""
    labels: list[str] = []
    for label, share in shares:
        labels += [label] * round(n * share)
    labels = labels[:n] + [rest] * max(0, n - len(labels))
    rng.shuffle(labels)
    return labels


def _pick(rng: random.Random, candidates: Sequence[int], share: float, n: int) -> set[int]:
    k = min(len(candidates), round(n * share))
    return set(rng.sample(list(candidates), k))


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return "".join(c for c in plain if c.isalnum() or c == "-")


def _instant(day: dt.date, hour: int, minute: int, zone: str) -> str:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zoneinfo.ZoneInfo(zone)).isoformat()


def _phone(rng: random.Random, area_codes: Sequence[str], used: set[str]) -> str:
    """A fictional NANP number (555-01XX) in E.164, new while the city's range lasts.

    Each area code has only 100 fictional lines; a very large demo clinic reuses them (a
    household sharing a phone), which is realistic and harmless.
    """
    e164 = ""
    for _ in range(50):
        e164 = f"+1{rng.choice(area_codes)}5550{rng.randint(100, 199)}"
        if e164 not in used:
            break
    used.add(e164)
    return e164


def _national(e164: str) -> str:
    return f"({e164[2:5]}) {e164[5:8]}-{e164[8:]}"


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _bool_ext(name: str, value: bool) -> dict[str, Any]:
    return {"url": EXT + name, "valueBoolean": value}


def generate_clinic(n: int = 200, seed: int = 7, today: dt.date = DEMO_TODAY) -> dict[str, Any]:
    """A FHIR R4 Bundle (type ``collection``) of ``n`` Patients and their Consents."""
    if n < 0:
        raise ValueError("n must be zero or more")
    rng = random.Random(seed)
    cities = _quota(rng, n, CITY_SHARES[1:], CITY_SHARES[0][0])
    scenarios = _quota(rng, n, SCENARIO_SHARES, "full")
    by_scenario: dict[str, list[int]] = {}
    for i, s in enumerate(scenarios):
        by_scenario.setdefault(s, []).append(i)

    no_sms = by_scenario.get("no-sms", [])
    landline_only = set(no_sms[: len(no_sms) // 2])
    full = by_scenario.get("full", [])
    invalid_phone = _pick(rng, full, 0.02, n)
    no_address = _pick(rng, [i for i in full if i not in invalid_phone], 0.02, n)
    with_email_consent = [i for i, s in enumerate(scenarios) if s != "no-consent"]
    billing_email = _pick(rng, with_email_consent, 0.60, n)
    with_sms_consent = [i for i, s in enumerate(scenarios) if s in ("full", "portal-only") and i not in invalid_phone]
    billing_sms = _pick(rng, with_sms_consent, 0.05, n)
    with_mobile = [i for i in range(n) if i not in landline_only]
    home_phone = _pick(rng, with_mobile, 0.15, n)
    old_mobile = _pick(rng, with_mobile, 0.04, n)

    used_phones: set[str] = set()
    used_emails: set[str] = set()
    entries: list[dict[str, Any]] = []
    for i in range(n):
        city = CITIES[cities[i]]
        pid = f"demo-{i + 1:04d}"
        if city.state == "ON":
            french = rng.random() < 0.15
        elif city.state == "QC":
            french = rng.random() >= 0.20
        else:
            french = False
        gender = rng.choice(("female", "male"))
        given = rng.choice((FRENCH_GIVEN if french else ENGLISH_GIVEN)[gender])
        family = rng.choice(FRENCH_FAMILY if french else ENGLISH_FAMILY)
        age = rng.randint(1, 95)
        latest = dt.date(today.year - age, today.month, min(today.day, 28))
        birth = latest - dt.timedelta(days=rng.randint(0, 364))

        tags = [scenarios[i]]
        telecom: list[dict[str, Any]] = []
        mobile: str | None = None
        mobile_as_written: str | None = None
        if i not in landline_only:
            mobile = _phone(rng, city.area_codes, used_phones)
            mobile_as_written = mobile if rng.random() < 0.8 else _national(mobile)
            if i in invalid_phone:
                mobile_as_written = f"{mobile[2:5]}-{mobile[5:8]}-{mobile[8:11]}"  # one digit short
                tags.append("invalid-phone")
            telecom.append({
                "extension": [_bool_ext("contact-verified", rng.random() < 0.85)],
                "system": "phone", "value": mobile_as_written, "use": "mobile",
                "rank": 2 if scenarios[i] == "email-only" else 1,
            })
        while True:
            local = f"{_ascii(given)}.{_ascii(family)}{rng.randint(1, 99)}"
            email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
            if email not in used_emails:
                used_emails.add(email)
                break
        telecom.append({
            "extension": [_bool_ext("contact-verified", rng.random() < 0.85)],
            "system": "email", "value": email, "use": "home",
            "rank": 1 if scenarios[i] == "email-only" else 2,
        })
        if i in landline_only or i in home_phone:
            landline = _phone(rng, city.area_codes, used_phones)
            telecom.append({"system": "phone", "value": landline, "use": "home", "rank": 3})
            tags.append("landline-only" if i in landline_only else "home-phone")
        if i in old_mobile:
            ended = today - dt.timedelta(days=rng.randint(60, 900))
            telecom.append({
                "system": "phone", "value": _phone(rng, city.area_codes, used_phones), "use": "old",
                "period": {"end": ended.isoformat()},
            })
            tags.append("old-mobile")

        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": pid,
            "meta": {},
            "identifier": [{"system": MRN_SYSTEM, "value": f"MRN{100000 + i}"}],
            "active": True,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": telecom,
            "gender": gender,
            "birthDate": birth.isoformat(),
        }
        if i in no_address:
            tags.append("no-address")
        else:
            state = city.state
            country = city.country
            if state == "QC" and rng.random() < 0.15:
                state = rng.choice(("Québec", "Quebec"))
            elif state == "ON" and rng.random() < 0.10:
                state = "Ontario"
            if country == "CA" and rng.random() < 0.10:
                country = "Canada"
            if city.country == "CA":
                letters = _POSTAL_LETTERS
                postal = (f"{rng.choice(city.postal)} {rng.randint(0, 9)}{rng.choice(letters)}"
                          f"{rng.randint(0, 9)}")
            else:
                postal = rng.choice(city.postal)
            patient["address"] = [{
                "use": "home", "type": "both",
                "line": [f"{rng.randint(1, 2999)} {rng.choice(city.streets)}"],
                "city": city.name, "state": state, "postalCode": postal, "country": country,
            }]
        lang = ("fr-CA" if rng.random() < 0.9 else "fr") if french else ("en-US" if city.country == "US" else "en-CA")
        patient["communication"] = [{"language": _coding(BCP47, lang), "preferred": True}]

        if scenarios[i] == "portal-only":
            patient["extension"] = [{"url": EXT + "contact-preference", "extension": [
                {"url": "channel", "valueCode": "portal"}, {"url": "restrict", "valueBoolean": True}]}]
        elif scenarios[i] == "email-only":
            patient["extension"] = [{"url": EXT + "contact-preference", "extension": [
                {"url": "channel", "valueCode": "email"}]}]
        elif mobile is not None and rng.random() < 0.25:
            order = ["sms", "email"] if rng.random() < 0.6 else ["email", "sms"]
            patient["extension"] = [{"url": EXT + "contact-preference", "extension": [
                {"url": "channel", "valueCode": c} for c in order]}]

        # the consent names the number in E.164, except the mistyped one, consented as written
        consented_mobile = mobile_as_written if i in invalid_phone else mobile
        consents = _consents(rng, pid, scenarios[i], city.zone, today, consented_mobile, email,
                             billing_email=i in billing_email, billing_sms=i in billing_sms)
        if i in billing_email:
            tags.append("billing-email")
        if i in billing_sms:
            tags.append("billing-sms")
        patient["meta"] = {"tag": [{"system": SCENARIO_SYSTEM, "code": t} for t in tags]}
        head: dict[str, Any] = {k: patient.pop(k) for k in ("resourceType", "id", "meta", "extension") if k in patient}
        patient = {**head, **patient}
        entries.append({"fullUrl": f"{FULL_URL}/Patient/{pid}", "resource": patient})
        entries += [{"fullUrl": f"{FULL_URL}/Consent/{c['id']}", "resource": c} for c in consents]

    return {
        "resourceType": "Bundle",
        "id": f"demo-clinic-{seed}-{n}",
        "meta": {"tag": [{"system": SCENARIO_SYSTEM, "code": "synthetic"}]},
        "type": "collection",
        "timestamp": dt.datetime(today.year, today.month, today.day, 12, tzinfo=dt.UTC).isoformat(),
        "entry": entries,
    }


def _consents(
    rng: random.Random,
    pid: str,
    scenario: str,
    zone: str,
    today: dt.date,
    mobile: str | None,
    email: str,
    *,
    billing_email: bool,
    billing_sms: bool,
) -> list[dict[str, Any]]:
    def granted() -> tuple[dt.date, str]:
        day = today - dt.timedelta(days=rng.randint(30, 1100))
        return day, _instant(day, rng.randint(8, 17), rng.randint(0, 59), zone)

    def consent(channel: str, purpose: str, address: str | None, *, stop: bool = False) -> dict[str, Any]:
        day, when = granted()
        extension: list[dict[str, Any]] = []
        if address is not None:
            extension.append({"url": EXT + "consent-address", "valueString": address})
        if channel == "email" and purpose == "clinical":
            extension.append(_bool_ext("accepts-unencrypted-email", rng.random() < 0.6))
        if channel == "sms":
            code = _coding(PARTICIPATION_MODE, "SMSWRIT")
        elif channel == "email":
            code = _coding(PARTICIPATION_MODE, "EMAILWRIT")
        else:
            code = _coding(CHANNEL_SYSTEM, "portal")
        resource: dict[str, Any] = {
            "resourceType": "Consent",
            "id": f"{pid}-{channel}-{purpose}",
            "extension": extension,
            "status": "active",
            "scope": _coding(CONSENT_SCOPE, "patient-privacy"),
            "category": [_coding(PURPOSE_SYSTEM, purpose)],
            "patient": {"reference": f"Patient/{pid}"},
            "dateTime": when,
            "policyRule": _coding(ACT_CODE, "OPTIN"),
            "provision": {"type": "permit", "code": [code]},
        }
        if stop:
            span = (today - day).days - 1
            revoked_day = today - dt.timedelta(days=rng.randint(1, min(300, span)))
            revoked = _instant(revoked_day, rng.randint(7, 22), rng.randint(0, 59), zone)
            resource["status"] = "inactive"
            resource["meta"] = {"lastUpdated": revoked}
            resource["provision"]["period"] = {"start": when, "end": revoked}
            extension.append({"url": EXT + "consent-source", "valueString": "STOP reply"})
        else:
            extension.append({"url": EXT + "consent-source", "valueString": rng.choice(CONSENT_SOURCES)})
        return resource

    out: list[dict[str, Any]] = []
    if scenario in ("full", "portal-only", "sms-revoked") and mobile is not None:
        out.append(consent("sms", "clinical", mobile, stop=scenario == "sms-revoked"))
    if scenario != "no-consent":
        out.append(consent("email", "clinical", email))
    if scenario not in ("no-consent", "email-only"):
        out.append(consent("portal", "clinical", None))
    if billing_email:
        out.append(consent("email", "billing", email))
    if billing_sms and mobile is not None:
        out.append(consent("sms", "billing", mobile))
    return out


def write_bundle(bundle: dict[str, Any], path: str | Path) -> Path:
    """Write ``bundle`` as UTF-8 JSON (parents created); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(bundle, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m emrcomm.demo_data OUT.json [--n 200] [--seed 7]``"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m emrcomm.demo_data", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="where to write the Bundle (JSON)")
    parser.add_argument("--n", type=int, default=200, help="number of patients (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    path = write_bundle(generate_clinic(args.n, args.seed), args.out)
    print(f"{args.n} patients written to {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
