"""FHIR R4 Patient and Consent -> :class:`emrcomm.Recipient`.

Patient
=======
* ``telecom``: ``phone`` with ``use=mobile`` and ``sms`` -> ContactPoint ``sms``; ``email`` ->
  ``email``; any other ``phone`` (home, work, unspecified: landlines) -> ``phone``, which no
  channel texts. Other systems (fax, pager, url) are ignored. ``rank`` and ``use`` are kept.
  Entries with ``use=old``, without a value, or whose ``period.end`` has passed are skipped.
  Phone numbers that ``phonenumbers`` accepts as valid are written in E.164; the region for
  numbers without a country code is the address country, else the default region (CA). A number
  that is not valid is kept exactly as given, so the RECIPIENT_INVALID rule reports it.
  Extension ``contact-verified`` (valueBoolean) on a telecom -> ``verified``.
* ``communication``: the ``preferred`` one, else the first -> ``language`` (``fr-CA`` -> ``fr``).
  Only ``en`` and ``fr`` are supported (the languages templates exist in); anything else, or
  nothing, is ``fr`` for a patient whose address is in Quebec (the Charter of the French
  language) and ``en`` for everyone else.
* ``address``: the current (``period.end`` not passed, ``use`` not ``old``) ``home`` address,
  else the first current one. ``state`` + ``country`` -> ``jurisdiction`` (ISO 3166-2) and
  ``time_zone`` (IANA); without a ``state``, a Canadian ``postalCode`` gives the province (when
  the country is Canada or not given); see :mod:`emrcomm.fhir.regions` for the zone of each
  province and state. Elsewhere a country with one zone gives it (``FR``: Europe/Paris).
  Patient extension ``time-zone`` (valueCode, an IANA name) overrides the zone. Without a
  current address, the zone of the best-ranked SMS number is used when phonenumbers gives
  exactly one zone for it.
* ``birthDate`` -> ``birth_date``; the ``official`` name (else the first) -> ``given_name``
  (first given) and ``family_name``.
* Patient extension ``contact-preference`` with sub-extensions ``channel`` (valueCode, repeated,
  best first) and ``restrict`` (valueBoolean: a confidential-communication request, only those
  channels) -> ``preferred_channels`` and ``restrict_to_preferred``.
* A Patient without an id, or recorded as deceased (``deceasedBoolean`` true or any
  ``deceasedDateTime``), is refused with :class:`emrcomm.RecipientRefused` (a directory raises it
  from its hook: the host blocks the request, RECIPIENT_REFUSED, with the reason): nobody is messaged on its
  behalf. So is one marked ``active: false`` (the EMR no longer uses that chart).
* ``link`` with ``type = replaced-by`` (a chart merged into another): the Patient must no longer
  be used, and :func:`follow_replaced_by` reads the one it names instead, and that one's
  replaced-by in turn, at most :data:`MAX_REPLACED_BY` links; the Recipient is the last one,
  its ``replaces`` the charts followed (``Patient/<id>``, the one asked first). A cycle, a longer
  chain, two replaced-by links naming different patients, or one naming something the directory
  does not have, is refused. :func:`recipient_from_fhir` refuses a Patient that still has a
  replaced-by link (it was not followed). ``replaces`` names a chart merged into this one (below);
  ``refer`` and ``seealso`` change nothing.
  A search by identifier that matches a chart merged away (it kept its identifiers) and the chart
  in use names that chart in use (:func:`one_chart_in_use`); matches leading to two charts in use
  name nobody. The charts merged into the one in use (:func:`merged_charts`: those followed, and
  those its own ``replaces`` links name ``Patient/<id>``) are the Recipient's ``merged``: their
  Consents count as the kept chart's (a patient who refused SMS under the old chart stays refused),
  and their records are that patient's.

Consent profile (communication consent)
=======================================
A Consent is a communication consent when it has:

* ``category``: a coding in ``http://emrcomm.org/fhir/CodeSystem/purpose`` with code
  ``clinical``, ``billing`` or ``commercial`` (docs/rule-catalogue.md A);
* ``provision.code``: the channel, as ``SMSWRIT`` (sms), ``EMAILWRIT`` (email) or ``ONLINEWRIT``
  (portal, the medium the records use) in ``http://terminology.hl7.org/CodeSystem/v3-ParticipationMode``,
  or as a code in ``http://emrcomm.org/fhir/CodeSystem/channel`` (``sms``, ``email``, ``portal``,
  or the name of any other registered channel);
* ``patient``: a reference to the Patient;
* ``status``: ``active`` (in force) or ``inactive`` (revoked).

Several purposes or channels in one Consent give one grant per (channel, purpose).
Optional parts:

* extension ``consent-address`` (valueString): the address the consent is for, an E.164 phone
  number or an email address; absent means any address of that channel (phone numbers are
  normalised like the telecom ones; a portal consent has no address);
* extension ``accepts-unencrypted-email`` (valueBoolean): the patient was told the risk of plain
  email and still chose it;
* extension ``consent-source`` (valueString): how it was given or withdrawn (``front desk``,
  ``STOP reply``); default ``directory``;
* ``dateTime``: when it was granted (else ``provision.period.start``; a later
  ``provision.period.start`` delays it);
* revocation: ``status = inactive`` or ``provision.type = deny``. The revocation time is
  ``provision.period.end``, else ``meta.lastUpdated``, else ``dateTime``; with none of them the
  time is unknown and taken as 1970-01-01T00:00Z, so it is revoked whenever asked.
  An active consent whose ``provision.period.end`` is set is revoked at that time (it expires).

Extension URLs are ``http://emrcomm.org/fhir/StructureDefinition/<name>``. Dates without a time
are taken at 00:00 UTC. Anything else (privacy, research, treatment consents such as the HL7
examples) is not a communication consent: it is skipped, one DEBUG line names its id and the
reason, and :func:`explain_consent` returns that reason.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import phonenumbers
from phonenumbers import timezone as phone_timezone

from emrcomm.errors import RecipientRefused
from emrcomm.fhir.regions import DEFAULT_REGION, country_code, jurisdiction_and_zone, subdivision
from emrcomm.model import ConsentGrant, ContactPoint, Purpose, Recipient

log = logging.getLogger(__name__)

BASE = "http://emrcomm.org/fhir"
EXT = f"{BASE}/StructureDefinition/"
PURPOSE_SYSTEM = f"{BASE}/CodeSystem/purpose"
CHANNEL_SYSTEM = f"{BASE}/CodeSystem/channel"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"

EXT_CONTACT_VERIFIED = EXT + "contact-verified"
EXT_TIME_ZONE = EXT + "time-zone"
EXT_CONTACT_PREFERENCE = EXT + "contact-preference"
EXT_CONSENT_ADDRESS = EXT + "consent-address"
EXT_ACCEPTS_UNENCRYPTED_EMAIL = EXT + "accepts-unencrypted-email"
EXT_CONSENT_SOURCE = EXT + "consent-source"
# On a telecom: the kind of address it is, for a channel with addresses of its own kind (an app's
# user id, a fax number): valueCode = the channel's address_system.
EXT_ADDRESS_KIND = EXT + "address-kind"
_ADDRESS_KIND = re.compile(r"[a-z][a-z0-9-]{0,31}")

MODE_TO_CHANNEL = {"SMSWRIT": "sms", "EMAILWRIT": "email", "ONLINEWRIT": "portal"}
SUPPORTED_LANGUAGES = ("en", "fr")
DEFAULT_SOURCE = "directory"
UNKNOWN_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # a revocation whose time nobody recorded

_PATIENT_REF = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")

# How many replaced-by links are followed from the patient a request names: a chart merged into
# one itself merged later is two; a longer chain is more likely a loop or an error than a clinic's.
MAX_REPLACED_BY = 5
# How many Patients an identifier search may match and still name one patient (the chart in use
# and charts merged into it that kept the identifier): more is read as ambiguous.
MAX_MATCHES = MAX_REPLACED_BY + 1


# ---------------------------------------------------------------- small FHIR helpers


def extension(resource: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    """The first extension with this url, or None."""
    for ext in resource.get("extension") or ():
        if isinstance(ext, Mapping) and ext.get("url") == url:
            return ext
    return None


def extensions(resource: Mapping[str, Any], url: str) -> list[Mapping[str, Any]]:
    return [e for e in resource.get("extension") or () if isinstance(e, Mapping) and e.get("url") == url]


_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def parse_instant(value: str) -> dt.datetime:
    """A FHIR date or dateTime as an aware datetime; partial dates at their first instant (UTC).

    Raises ValueError for anything else.
    """
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a FHIR date or dateTime")
    m = _PARTIAL.match(value)
    if m:
        year, month, day = int(m[1]), int(m[2] or 1), int(m[3] or 1)
        return dt.datetime(year, month, day, tzinfo=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a FHIR date or dateTime") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def period_ended(period: Mapping[str, Any] | None, now: dt.datetime) -> bool:
    """Whether ``period.end`` has passed. A partial end ("2014", "2014-05") lasts to its end."""
    if not isinstance(period, Mapping) or not period.get("end"):
        return False
    end = period["end"]
    try:
        start = parse_instant(end)
    except ValueError:
        return False
    m = _PARTIAL.match(end)
    if m is None:
        return start <= now
    if m[3]:
        after = start + dt.timedelta(days=1)
    elif m[2]:
        after = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    else:
        after = start.replace(year=start.year + 1)
    return after <= now


def _codings(concepts: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(concepts, Mapping):
        concepts = [concepts]
    for concept in concepts or ():
        if isinstance(concept, Mapping):
            for coding in concept.get("coding") or ():
                if isinstance(coding, Mapping):
                    yield coding


# ---------------------------------------------------------------- phone numbers


@functools.lru_cache(maxsize=65536)  # phonenumbers costs ~150 µs a number; a directory repeats them
def normalise_phone(value: str, region: str = DEFAULT_REGION) -> str:
    """E.164 when phonenumbers accepts the number as valid, else the value exactly as given."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(number):
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def single_zone_for_number(value: str) -> str | None:
    """The IANA zone of an E.164 number when phonenumbers knows exactly one, else None."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    zones = phone_timezone.time_zones_for_number(number)
    if len(zones) != 1 or zones[0] == phone_timezone.UNKNOWN_TIMEZONE:
        return None
    return zones[0]


# ---------------------------------------------------------------- Patient


def _is_deceased(patient: Mapping[str, Any]) -> bool:
    return patient.get("deceasedBoolean") is True or bool(patient.get("deceasedDateTime"))


def _replaced_by(patient: Mapping[str, Any]) -> list[Any]:
    """The ``other`` of each ``replaced-by`` link (FHIR R4 Patient.link)."""
    return [link.get("other") for link in patient.get("link") or ()
            if isinstance(link, Mapping) and link.get("type") == "replaced-by"]


def follow_replaced_by(
    patient: Mapping[str, Any], read: Callable[[str], Mapping[str, Any] | None], *, limit: int = MAX_REPLACED_BY
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """The Patient in use for ``patient``, and the charts followed to it (``Patient/<id>`` each,
    ``patient`` first; empty when it has no replaced-by link).

    ``read(reference)`` is the directory's: the Patient a ``link.other.reference`` names, or None.

    :raises RecipientRefused: a cycle, more than ``limit`` links, two replaced-by links naming
        different patients, one naming no Patient by reference, or one the directory lacks.
    """
    followed: list[str] = []
    current = patient
    while True:
        pid = _id(current)
        others = _replaced_by(current)
        if not others:
            return current, tuple(followed)
        refs = {o["reference"] if isinstance(o, Mapping) and isinstance(o.get("reference"), str) else None
                for o in others}
        if len(refs) > 1:
            raise RecipientRefused(f"Patient/{pid} is replaced by more than one patient: the EMR must say which "
                                   "chart is in use")
        [ref] = refs
        if not isinstance(ref, str) or not ref:
            raise RecipientRefused(f"Patient/{pid} is replaced by a chart its link does not name by reference")
        followed.append(f"Patient/{pid}")
        if len(followed) > limit:
            raise RecipientRefused(f"{followed[0]} leads through more than {limit} replaced-by links: "
                                   "the chart in use is not found")
        found = read(ref)
        if not isinstance(found, Mapping) or found.get("resourceType") != "Patient":
            m = _PATIENT_REF.search(ref)
            named = f"Patient/{m[1]}" if m else "a chart"
            raise RecipientRefused(f"Patient/{pid} is replaced by {named}, which the directory does not have")
        if f"Patient/{_id(found)}" in followed:
            raise RecipientRefused(f"the replaced-by links of {', '.join(followed)} lead back to "
                                   f"Patient/{_id(found)}: a cycle, no chart in use")
        current = found


def one_chart_in_use(
    matches: Sequence[Mapping[str, Any]], read: Callable[[str], Mapping[str, Any] | None], *,
    limit: int = MAX_REPLACED_BY,
) -> tuple[Mapping[str, Any], tuple[str, ...]] | None:
    """The chart in use the Patients an identifier search matched name, and the merged charts
    followed to it (``Patient/<id>`` each, in the order matched); None when they name nobody or
    more than one patient.

    A chart merged away usually keeps the identifiers (a health number) it had, so a search
    matches it beside the chart in use. Several matches name one patient when each is that chart
    or leads to it by its replaced-by links (:func:`follow_replaced_by`). Matches that lead to two
    charts in use, one whose links lead to none, or more than :data:`MAX_MATCHES` of them, are
    ambiguous: None, as for two patients sharing the identifier (fail closed).

    :raises RecipientRefused: one match whose links lead to no chart in use, as
        :func:`follow_replaced_by` raises it.
    """
    if not matches:
        return None
    if len(matches) == 1:
        return follow_replaced_by(matches[0], read, limit=limit)
    if len(matches) > MAX_MATCHES:
        return None
    try:
        found = [follow_replaced_by(match, read, limit=limit) for match in matches]
    except RecipientRefused:
        return None  # a chart whose links lead nowhere cannot be said to be the same patient
    kept = found[0][0]
    if any(_id(chart) != _id(kept) for chart, _chain in found):
        return None
    return kept, tuple(dict.fromkeys(ref for _chart, chain in found for ref in chain))


def merged_charts(patient: Mapping[str, Any], replaces: Sequence[str] = ()) -> tuple[str, ...]:
    """Every chart (``Patient/<id>``) merged into ``patient``, the chart in use: ``replaces``, the
    charts :func:`follow_replaced_by` followed to it, then those its own ``replaces`` links name by
    ``Patient/<id>`` (the EMR's merge writes both directions), at most :data:`MAX_MATCHES` of them.
    A request naming the chart in use never followed a link, so its ``replaces`` links are what
    say which charts were merged into it."""
    pid = _id(patient)
    found = dict.fromkeys(replaces)
    for link in patient.get("link") or ():
        if not isinstance(link, Mapping) or link.get("type") != "replaces":
            continue
        ref = (link.get("other") or {}).get("reference") if isinstance(link.get("other"), Mapping) else None
        m = _PATIENT_REF.search(ref) if isinstance(ref, str) else None
        if m and m[1] != pid:
            found.setdefault(f"Patient/{m[1]}")
    return tuple(found)[:MAX_MATCHES]


def current_address(patient: Mapping[str, Any], now: dt.datetime) -> Mapping[str, Any] | None:
    """The home address in force, else the first address in force (old and ended ones skipped)."""
    current = [
        a
        for a in patient.get("address") or ()
        if isinstance(a, Mapping) and a.get("use") != "old" and not period_ended(a.get("period"), now)
    ]
    for address in current:
        if address.get("use") == "home":
            return address
    return current[0] if current else None


def contact_points(patient: Mapping[str, Any], region: str, now: dt.datetime) -> tuple[ContactPoint, ...]:
    points: list[ContactPoint] = []
    for telecom in patient.get("telecom") or ():
        if not isinstance(telecom, Mapping):
            continue
        value = telecom.get("value")
        system = telecom.get("system")
        use = telecom.get("use")
        if not isinstance(value, str) or not value.strip() or use == "old":
            continue
        if period_ended(telecom.get("period"), now):
            continue
        declared = extension(telecom, EXT_ADDRESS_KIND)
        code = declared.get("valueCode") if declared else None
        if isinstance(code, str) and _ADDRESS_KIND.fullmatch(code):
            kind = code  # a channel's own kind of address (docs/writing-a-plugin.md)
        elif system == "email":
            kind = "email"
        elif system == "sms" or (system == "phone" and use == "mobile"):
            kind = "sms"
        elif system in ("phone", "fax", "pager"):
            kind = str(system)
        else:
            continue
        value = value.strip()
        if kind in ("sms", "phone", "fax", "pager"):
            value = normalise_phone(value, region)
        verified = extension(telecom, EXT_CONTACT_VERIFIED)
        rank = telecom.get("rank")
        points.append(
            ContactPoint(
                system=kind,
                value=value,
                use=use,
                rank=rank if isinstance(rank, int) else None,
                verified=bool(verified and verified.get("valueBoolean") is True),
            )
        )
    return tuple(points)


def language(patient: Mapping[str, Any], default: str = "en") -> str:
    """``en`` or ``fr`` from the preferred (else first) communication language; ``default`` when
    none is recorded or the one recorded has no templates."""
    comms = [c for c in patient.get("communication") or () if isinstance(c, Mapping)]
    chosen = next((c for c in comms if c.get("preferred") is True), comms[0] if comms else None)
    if chosen is None:
        return default
    concept = chosen.get("language") or {}
    for coding in _codings(concept):
        code = coding.get("code")
        if isinstance(code, str) and code:
            primary = code.replace("_", "-").split("-")[0].lower()
            return primary if primary in SUPPORTED_LANGUAGES else default
    return default


def _name(patient: Mapping[str, Any]) -> tuple[str, str]:
    names = [n for n in patient.get("name") or () if isinstance(n, Mapping)]
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if chosen is None:
        return "", ""
    given = chosen.get("given") or []
    return (given[0] if given else ""), (chosen.get("family") or "")


def _preferences(patient: Mapping[str, Any]) -> tuple[tuple[str, ...], bool]:
    pref = extension(patient, EXT_CONTACT_PREFERENCE)
    if pref is None:
        return (), False
    channels: list[str] = []
    restrict = False
    for sub in pref.get("extension") or ():
        if not isinstance(sub, Mapping):
            continue
        if sub.get("url") == "channel" and isinstance(sub.get("valueCode"), str):
            if sub["valueCode"] not in channels:
                channels.append(sub["valueCode"])
        elif sub.get("url") == "restrict":
            restrict = sub.get("valueBoolean") is True
    return tuple(channels), restrict


def _time_zone_override(patient: Mapping[str, Any]) -> str | None:
    ext = extension(patient, EXT_TIME_ZONE)
    if ext is None:
        return None
    zone = ext.get("valueCode")
    if not isinstance(zone, str):
        return None
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        log.warning("Patient/%s: time-zone extension %r is not an IANA zone; ignored", patient.get("id"), zone)
        return None
    return zone


def _birth_date(patient: Mapping[str, Any]) -> dt.date | None:
    value = patient.get("birthDate")
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None  # partial birth dates (1974, 1974-12) are not a date the identity check can use


def _postal_code(address: Mapping[str, Any]) -> str | None:
    value = address.get("postalCode")
    return value if isinstance(value, str) else None


def patient_region(address: Mapping[str, Any] | None, default_region: str = DEFAULT_REGION) -> str:
    """The region phone numbers without a country code are read in."""
    if address is not None:
        cc, _code = subdivision(address.get("state"), address.get("country"), _postal_code(address))
        cc = cc or country_code(address.get("country"))
        if cc:
            return cc
    return default_region


def recipient_from_fhir(
    patient: Mapping[str, Any],
    consents: Sequence[Mapping[str, Any]] = (),
    *,
    now: dt.datetime | None = None,
    default_region: str = DEFAULT_REGION,
    replaces: Sequence[str] = (),
) -> Recipient:
    """A Recipient from a FHIR R4 Patient and the Consents about that patient.

    Consents that are not communication consents (see the module docstring) are skipped with a
    DEBUG line; so are those that reference another Patient. ``now`` decides which telecoms and
    addresses have ended (default: the system clock; the plugin passes the host's clock).

    ``replaces``: the charts :func:`follow_replaced_by` followed to ``patient`` (the Recipient's
    ``replaces``). The Recipient's ``merged`` is :func:`merged_charts`; Consents about any of
    those charts count as ``patient``'s (the directory reads theirs too).

    :raises RecipientRefused: not a Patient, no id, deceased, marked inactive, or replaced by
        another (a replaced-by link not followed).
    """
    if not isinstance(patient, Mapping) or patient.get("resourceType") != "Patient":
        kind = patient.get("resourceType") if isinstance(patient, Mapping) else type(patient).__name__
        raise RecipientRefused(f"not a Patient resource (resourceType {kind!r})")
    pid = patient.get("id")
    if not isinstance(pid, str) or not pid:
        raise RecipientRefused("the Patient has no id, so nothing can be filed against it")
    if _is_deceased(patient):
        raise RecipientRefused(f"Patient/{pid} is recorded as deceased")
    if _replaced_by(patient):
        raise RecipientRefused(f"Patient/{pid} is replaced by another chart (Patient.link replaced-by), "
                               "which was not followed")
    if patient.get("active") is False:
        raise RecipientRefused(f"Patient/{pid} is marked inactive (active: false): the EMR no longer uses "
                               "this chart")
    now = now or dt.datetime.now(dt.UTC)

    address = current_address(patient, now)
    region = patient_region(address, default_region)
    points = contact_points(patient, region, now)
    jurisdiction, zone = (None, None)
    if address is not None:
        jurisdiction, zone = jurisdiction_and_zone(address.get("state"), address.get("country"), _postal_code(address))
    override = _time_zone_override(patient)
    if override is not None:
        zone = override
    elif address is None:
        mobiles = [p for p in points if p.system == "sms"]
        if mobiles:
            best = min(mobiles, key=lambda p: p.rank if p.rank is not None else 1_000_000)
            zone = single_zone_for_number(best.value)

    merged = merged_charts(patient, replaces)
    ours = {pid, *(ref[len("Patient/"):] for ref in merged)}
    grants: list[ConsentGrant] = []
    for consent in consents:
        parts = _consent_parts(consent)  # once per consent: it is the costly part of a lookup
        if isinstance(parts, str) or (other := _other_patient(consent, pid, ours)) is not None:
            log.debug("Consent/%s skipped: %s", _id(consent), parts if isinstance(parts, str) else other)
            continue
        grants.extend(_grants(consent, parts, region))

    given, family = _name(patient)
    channels, restrict = _preferences(patient)
    return Recipient(
        patient_ref=f"Patient/{pid}",
        given_name=given,
        family_name=family,
        contact_points=points,
        consents=tuple(grants),
        preferred_channels=channels,
        restrict_to_preferred=restrict,
        language=language(patient, "fr" if jurisdiction == "CA-QC" else "en"),
        time_zone=zone,
        jurisdiction=jurisdiction,
        birth_date=_birth_date(patient),
        replaces=tuple(replaces),
        merged=merged,
    )


def _id(resource: Mapping[str, Any]) -> str:
    return str(resource.get("id") or "(no id)") if isinstance(resource, Mapping) else "(not a resource)"


def _other_patient(consent: Mapping[str, Any], pid: str, ours: set[str]) -> str | None:
    ref = (consent.get("patient") or {}).get("reference", "")
    m = _PATIENT_REF.search(ref) if isinstance(ref, str) else None
    if m and m[1] not in ours:
        return f"it is about Patient/{m[1]}, not Patient/{pid}"
    return None


# ---------------------------------------------------------------- Consent


def _consent_parts(consent: Mapping[str, Any]) -> tuple[list[Purpose], list[str], str] | str:
    """(purposes, channels, status) of a communication consent, or the reason it is not one."""
    if not isinstance(consent, Mapping) or consent.get("resourceType") != "Consent":
        return "not a Consent resource"
    purposes: list[Purpose] = []
    for coding in _codings(consent.get("category")):
        if coding.get("system") == PURPOSE_SYSTEM:
            try:
                purposes.append(Purpose(str(coding.get("code"))))
            except ValueError:
                return (
                    f"unknown purpose code {coding.get('code')!r} in {PURPOSE_SYSTEM} "
                    "(expected clinical, billing or commercial)"
                )
    if not purposes:
        return f"no purpose category in {PURPOSE_SYSTEM}"
    provision = consent.get("provision") or {}
    channels: list[str] = []
    for coding in _codings(provision.get("code")):
        code = coding.get("code")
        if coding.get("system") == PARTICIPATION_MODE and code in MODE_TO_CHANNEL:
            channel = MODE_TO_CHANNEL[code]
        elif coding.get("system") == CHANNEL_SYSTEM and isinstance(code, str) and code:
            channel = code
        else:
            continue
        if channel not in channels:
            channels.append(channel)
    if not channels:
        return (
            f"no channel in provision.code (SMSWRIT, EMAILWRIT or ONLINEWRIT in {PARTICIPATION_MODE}, "
            f"or a channel name in {CHANNEL_SYSTEM})"
        )
    ref = (consent.get("patient") or {}).get("reference")
    if not isinstance(ref, str) or not ref:
        return "no patient reference"
    status = consent.get("status")
    if status not in ("active", "inactive"):
        return f"status {status!r} is neither active (in force) nor inactive (revoked)"
    for where, value in (
        ("dateTime", consent.get("dateTime")),
        ("provision.period.start", (provision.get("period") or {}).get("start")),
        ("provision.period.end", (provision.get("period") or {}).get("end")),
        ("meta.lastUpdated", (consent.get("meta") or {}).get("lastUpdated")),
    ):
        if value is not None:
            try:
                parse_instant(value)
            except ValueError:
                return f"{where} {value!r} is not a FHIR dateTime"
    return purposes, channels, status


def explain_consent(consent: Mapping[str, Any]) -> str | None:
    """None when ``consent`` follows the communication-consent profile, else why it does not."""
    parts = _consent_parts(consent)
    return parts if isinstance(parts, str) else None


def _instant(value: Any) -> dt.datetime | None:
    return parse_instant(value) if value is not None else None


def consent_grants(consent: Mapping[str, Any], *, region: str = DEFAULT_REGION) -> tuple[ConsentGrant, ...]:
    """The grants a communication consent makes, one per (channel, purpose).

    :raises ValueError: the Consent does not follow the profile (the message is the reason).
    """
    parts = _consent_parts(consent)
    if isinstance(parts, str):
        raise ValueError(f"Consent/{_id(consent)}: {parts}")
    return _grants(consent, parts, region)


def _grants(
    consent: Mapping[str, Any], parts: tuple[list[Purpose], list[str], str], region: str
) -> tuple[ConsentGrant, ...]:
    purposes, channels, status = parts
    provision = consent.get("provision") or {}
    period = provision.get("period") or {}

    granted = _instant(consent.get("dateTime"))
    start = _instant(period.get("start"))
    if start is not None and (granted is None or start > granted):
        granted = start

    revoked: dt.datetime | None = None
    if status == "inactive" or provision.get("type") == "deny":
        revoked = (
            _instant(period.get("end"))
            or _instant((consent.get("meta") or {}).get("lastUpdated"))
            or _instant(consent.get("dateTime"))
            or UNKNOWN_TIME
        )
    elif period.get("end"):
        revoked = _instant(period["end"])

    address_ext = extension(consent, EXT_CONSENT_ADDRESS)
    raw_address = address_ext.get("valueString") if address_ext else None
    source_ext = extension(consent, EXT_CONSENT_SOURCE)
    source = source_ext.get("valueString") if source_ext else None
    unencrypted = extension(consent, EXT_ACCEPTS_UNENCRYPTED_EMAIL)

    grants = []
    for channel in channels:
        address: str | None = None
        if isinstance(raw_address, str) and raw_address.strip() and channel != "portal":
            address = raw_address.strip()
            if channel == "sms":
                address = normalise_phone(address, region)
        for purpose in purposes:
            grants.append(
                ConsentGrant(
                    channel=channel,
                    purpose=purpose,
                    address=address,
                    granted=granted,
                    revoked=revoked,
                    source=source or DEFAULT_SOURCE,
                    accepts_unencrypted_email=bool(unencrypted and unencrypted.get("valueBoolean") is True),
                )
            )
    return tuple(grants)
