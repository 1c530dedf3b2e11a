"""``POST /fhir/Consent``: the EMR or the front desk records a consent, or an opt-out, given in
person. It becomes an ``optin`` / ``optout`` delivery update, so it reaches the consent ledger
the way a STOP reply does (through the opt-out plugin), with its source.

The Consent follows the communication-consent profile the directory reads (docs/api.md):
``patient``, ``provision.code`` naming the channel, ``status`` active (granted) or inactive /
``provision.type`` deny (withdrawn), optional ``category`` naming one purpose (clinical,
billing, commercial; none: every purpose), optional extensions ``consent-address`` and
``consent-source``. ``emrcomm consent grant|revoke`` (the front desk) builds the same resource
(:func:`front_desk`) and takes the same path.

A Consent with an identifier (its own, or the one its ``If-None-Exist`` names) is decided once
for it (:func:`record_once`), as a CommunicationRequest is (emrcomm.pipeline.digest): sent again,
it is answered as first recorded, and one saying something else under it is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
import phonenumbers
from attrs import frozen
from email_validator import EmailNotValidError, validate_email

from emrcomm.api.outcome import ApiError
from emrcomm.errors import PluginError, RecipientRefused, RequestError
from emrcomm.fhir import EXT, MEDIUM_TO_CHANNEL, PARTICIPATION_MODE, fhir_datetime, is_patient_link
from emrcomm.limits import MAX_IDENTIFIERS, check_identifier, check_text, escape_controls
from emrcomm.model import DeliveryUpdate, Identifier, Purpose, Request
from emrcomm.storage.consent import ConsentKey, mailbox
from emrcomm.storage.records import identifier_key

if TYPE_CHECKING:
    from emrcomm.host import Host

log = logging.getLogger(__name__)

CHANNEL_SYSTEM = "http://emrcomm.org/fhir/CodeSystem/channel"
PURPOSE_SYSTEM = "http://emrcomm.org/fhir/CodeSystem/purpose"
ADDRESS = EXT + "consent-address"
SOURCE = EXT + "consent-source"
MAX_SOURCE = 120
# Unicode categories no address holds: controls, format characters (bidi marks), unassigned and
# private-use code points, surrogates, line and paragraph separators.
_UNSEEN = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"})


@frozen
class Entry:
    """One ledger entry a Consent makes."""

    patient: str
    channel: str
    address: str
    action: str  # grant or revoke
    source: str
    purpose: str | None = None  # None: every purpose


@frozen
class Said:
    """What a Consent says, read without the directory: the patient, given or withdrawn, the
    channels, the purpose, the source, and the address it names for each channel
    (``addresses``: consent-address as the ledger writes it; None: every one on file, which the
    directory gives, :func:`addressed`)."""

    patient: str
    action: str  # grant or revoke
    channels: tuple[str, ...]
    source: str
    purpose: str | None = None  # None: every purpose
    addresses: tuple[tuple[str, str], ...] | None = None  # (channel, address)


def read(host: Host, consent: Mapping[str, Any], *, client: str) -> Said:
    """What ``consent`` says (:class:`Said`), without asking the directory; ApiError (4xx) saying
    what is wrong with it."""
    if consent.get("resourceType") != "Consent":
        raise ApiError(400, "invalid", f"resourceType is {str(consent.get('resourceType'))[:40]!r}; expected "
                       "'Consent'", expression="Consent.resourceType")
    _check_r4(consent)
    patient = _reference(consent)
    status = consent.get("status")
    provision: Mapping[str, Any] = consent["provision"] if isinstance(consent.get("provision"), Mapping) else {}
    if status not in ("active", "inactive", "rejected"):
        raise ApiError(422, "value", f"status {str(status)[:40]!r}: use 'active' (consent given) or 'inactive' "
                       "(withdrawn)", expression="Consent.status")
    if provision.get("type", "permit") not in ("permit", "deny"):
        raise ApiError(422, "value", f"provision.type {str(provision.get('type'))[:40]!r}: use 'deny' (withdrawn) or "
                       "'permit' (given), or leave it out", expression="Consent.provision.type")
    denied = provision.get("type") == "deny"
    action = "revoke" if status != "active" or denied else "grant"
    channels = _channels(host, provision)
    purpose = _purpose(consent)
    source = _extension(consent, SOURCE) or f"front desk (API client {client})"
    if not isinstance(source, str) or not source.strip():
        raise ApiError(422, "value", "extension consent-source must be a valueString", expression="Consent.extension")
    source = source.strip()[:MAX_SOURCE]
    try:
        check_text(source, "consent-source")
    except Exception as exc:
        raise ApiError(422, "value", str(exc), expression="Consent.extension") from None
    given = _extension(consent, ADDRESS)
    addresses = (None if given is None else
                 tuple((channel, _given(host, channel, given)) for channel in channels))
    return Said(patient=patient, action=action, channels=tuple(channels), source=source, purpose=purpose,
                addresses=addresses)


def addressed(host: Host, said: Said) -> list[Entry]:
    """The ledger entries ``said`` makes: one per channel and address, the addresses it names or,
    when it names none, every one on file for the channel (asking the directory:
    PluginUnavailable while it cannot answer; ApiError 422 when it knows no such patient)."""
    out: list[Entry] = []
    for channel in said.channels:
        addresses = ([a for ch, a in said.addresses if ch == channel] if said.addresses is not None
                     else _on_file_or_refused(host, said.patient, channel))
        out += [Entry(patient=said.patient, channel=channel, address=a, action=said.action, source=said.source,
                      purpose=said.purpose) for a in addresses]
    return out


def entries(host: Host, consent: Mapping[str, Any], *, client: str) -> list[Entry]:
    """The ledger entries ``consent`` makes (:func:`read`, then :func:`addressed`)."""
    return addressed(host, read(host, consent, client=client))


@frozen
class Recorded:
    """What a Consent came to: its id (the ledger number of its first entry) and when it was
    recorded; ``seqs``, the entries written now (``entries``, in order), empty when it repeats
    Consent ``id``, whose ``resource`` (as first recorded, without id and meta) answers it."""

    id: int
    at: dt.datetime
    seqs: tuple[int, ...] = ()
    entries: tuple[Entry, ...] = ()
    resource: dict[str, Any] | None = None  # a repeat's: the Consent as first recorded (None: before schema 11)

    @property
    def repeat(self) -> bool:
        return not self.seqs


class _Taken(Exception):
    """Another Consent holds an identifier this one claimed: its transaction is undone."""


def identifiers(consent: Mapping[str, Any], condition: Identifier | None) -> dict[Identifier, str]:
    """The identifiers ``consent`` is decided once for, each with where it came from: its own
    (``Consent.identifier``, those with a value) and the one its ``If-None-Exist`` names
    (``condition``). ApiError 400 for one outside the host's limits."""
    found: dict[Identifier, str] = {}
    given = consent.get("identifier")
    for n, ident in enumerate(given if isinstance(given, list) else ()):
        if not isinstance(ident, Mapping) or not ident.get("value"):
            continue
        try:
            check_identifier(ident.get("system"), ident["value"], f"identifier[{n}]")
        except RequestError as exc:
            raise ApiError(400, "value", str(exc), expression="Consent.identifier") from None
        found.setdefault(Identifier(ident.get("system"), ident["value"]), "Consent.identifier")
    if len(found) > MAX_IDENTIFIERS:
        raise ApiError(400, "value", f"the Consent has {len(found)} identifiers; the most one may carry is "
                       f"{MAX_IDENTIFIERS}: send the EMR's own id for it", expression="Consent.identifier")
    if condition is not None:
        found.setdefault(condition, "If-None-Exist")
    return found


def content_digest(said: Said, named: Callable[[str], str]) -> bytes:
    """The first 16 bytes of the SHA-256 of what a Consent says (``said``): the patient, given or
    withdrawn, the channels, the purpose and the source, and the addresses when it names them
    (consent-address, as the ledger writes them); not those the directory has on file, which may
    change between a Consent and its retry, and are not needed to tell a retry: one is found a
    repeat by its identifier and this digest before the directory is asked (while it cannot
    answer, too). A patient named other than by a ``Patient/<id>`` link is in it as ``named``
    gives it (the host's keyed digest, ``Audit.patient``), as in a request's
    (emrcomm.pipeline.digest). The same bytes as schema 10 kept: rows recorded before stay valid."""
    content = {"patient": said.patient if is_patient_link(said.patient) else named(said.patient),
               "action": said.action, "purpose": said.purpose, "source": said.source,
               "channels": sorted(set(said.channels)),
               "addresses": (sorted([channel, mailbox(channel, address)] for channel, address in said.addresses)
                             if said.addresses is not None else None)}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()[:16]


def audited(host: Host, said: Said, *, client: str, staff: str | None = None) -> Callable[[Sequence[int]], None]:
    """The ``then`` of :func:`record_once` that writes ``consent.recorded`` (the client, and the
    member of staff when one is named; the patient keyed, the channels, never an address) in the
    transaction of its ledger entries, or not at all."""

    def write(seqs: Sequence[int]) -> None:
        extra = {"staff": staff} if staff is not None else {}
        host.audit.record("consent.recorded", client=client, **extra, patient=host.audit.patient(said.patient),
                          channels=sorted(set(said.channels)), status="revoked" if said.action == "revoke" else "granted")

    return write


def record_once(host: Host, said: Said, *, identifiers: Mapping[Identifier, str], digest: bytes,
                then: Callable[[Sequence[int]], None] | None = None,
                resource: Mapping[str, Any] | None = None) -> Recorded:
    """Record what ``said`` says (its entries, :func:`addressed`; :func:`record`) once for
    ``identifiers`` (:func:`identifiers`): a Consent recorded before under one of them is answered
    as it was (nothing recorded), or refused with ApiError 409 when it said something else
    (``digest``: :func:`content_digest`), both before the directory is asked for addresses, so
    that a retry is answered while it cannot answer. Two at once: one records it, the other waits
    for it and repeats it (the ledger's claim arbitrates). ``resource``, the Consent sent, is kept
    with its identifiers to answer its retries (:attr:`Recorded.resource`). ``then`` writes the
    caller's audit entry in the same transaction. In a transaction of its own (not the caller's). Without
    identifiers it records the entries as :func:`record` does."""
    keys = {identifier_key(i): i for i in identifiers}
    earlier = _earlier(host, keys, identifiers, digest)
    if earlier is not None:
        return earlier
    found = addressed(host, said)
    now = host.clock()
    try:
        with host.storage.transaction():
            # The identifiers first: a second POST of this Consent waits here for the first to end,
            # and writes nothing once it has.
            if keys and not host.storage.consent.claim(list(keys), digest=digest, at=now):
                raise _Taken
            host.storage.consent.lock_all((e.channel, e.address) for e in found)
            seqs = _write(host, found, now)
            host.storage.consent.settle(list(keys), consent=seqs[0],
                                        resource=None if resource is None else _kept(resource))
            if then is not None:
                then(seqs)
    except _Taken:
        earlier = _earlier(host, keys, identifiers, digest)
        if earlier is None:  # taken by a Consent that is no longer there: cannot be, but never a 500
            raise ApiError(503, "transient", "another Consent with this identifier was being recorded: send this "
                           "one again", headers={"retry-after": "1"}) from None
        return earlier
    return Recorded(id=seqs[0], at=now, seqs=tuple(seqs), entries=tuple(found))


def _earlier(host: Host, keys: Mapping[str, Identifier], identifiers: Mapping[Identifier, str],
             digest: bytes) -> Recorded | None:
    """The Consent recorded before under one of ``keys``, if any; ApiError 409 when it said
    something else, 412 when they name several."""
    rows: list[ConsentKey] = host.storage.consent.identified(list(keys))
    if not rows:
        return None
    consents = sorted({r.consent for r in rows if r.consent is not None})
    if len(consents) > 1:
        raise ApiError(412, "multiple-matches", "the Consent's identifiers name several Consents recorded before "
                       f"({', '.join(f'Consent/{c}' for c in consents)}): nothing was recorded",
                       expression="Consent.identifier")
    for row in rows:
        if row.digest != digest:
            ident = keys[row.identifier]
            named = escape_controls(f"{ident.system or ''}|{ident.value}"[:300])
            raise ApiError(409, "conflict", f"identifier {named} was already used for Consent/{row.consent}, which "
                           "said something else (another patient, channel, address, purpose or source, or consent "
                           "given where it was withdrawn): this is not a retry of it, so nothing was recorded; give "
                           "each Consent its own identifier (a retry sends the same Consent again)",
                           expression=identifiers[ident])
    kept = next((r.resource for r in rows if r.resource is not None), None)
    return Recorded(id=int(rows[0].consent or 0), at=rows[0].recorded,
                    resource=None if kept is None else orjson.loads(kept))


def _kept(consent: Mapping[str, Any]) -> str:
    """The Consent as its identifiers keep it (what :func:`as_resource` answers, less id and meta)."""
    return orjson.dumps({k: v for k, v in consent.items() if k not in ("id", "meta")}).decode()


def record(host: Host, found: Sequence[Entry]) -> list[int]:
    """Write ``found`` to the consent ledger as opt-in / opt-out updates, in one transaction (the
    caller's, when open); their ledger numbers. All or none: a Consent whose store failed at its
    second address had its first recorded, and the EMR's retry of it recorded that one twice."""
    with host.storage.transaction():
        # Every address held before the first entry, in the ledger's one order: a Consent naming
        # SMS then email beside one naming email then SMS would each hold one and wait for the
        # other (PostgreSQL aborts one of them: a 500).
        host.storage.consent.lock_all((e.channel, e.address) for e in found)
        return _write(host, found, host.clock())


def _write(host: Host, found: Sequence[Entry], now: dt.datetime) -> list[int]:
    seqs = []
    for e in found:
        try:
            host.delivery_update(DeliveryUpdate(kind="optout" if e.action == "revoke" else "optin", at=now,
                                                channel=e.channel, address=e.address, text=e.source, detail=e.patient,
                                                source="staff", purpose=e.purpose))
        except PluginError as exc:
            # Another plugin that hears of updates failed (the EMR's adapter, down): what the
            # front desk recorded stands all the same, once the ledger has it (below); undone,
            # a withdrawal would leave the patient messaged until someone sent it again.
            log.error("consent %s entry: %s; the ledger's entry stands", e.channel, exc)
        # The entry this wrote, found by what it says, not as the address's last: a STOP from the
        # patient committed just after it is the last, and was taken for it (its number given as
        # the Consent's, or a 500 saying the ledger had not taken a grant it had).
        wrote = next((x for x in reversed(host.storage.consent.events(channel=e.channel, address=e.address))
                      if (x.patient, x.action, x.purpose, x.source, x.at) == (e.patient, e.action, e.purpose,
                                                                             e.source, now)), None)
        if wrote is None:
            raise ApiError(500, "exception", "the consent ledger did not take the entry (is the optout plugin "
                           "running?): nothing else was changed")
        seqs.append(wrote.seq)
    return seqs


def as_resource(consent: Mapping[str, Any], seq: int, when: dt.datetime) -> dict[str, Any]:
    """The Consent as filed: its id is the ledger number of its (first) entry."""
    rest = {k: v for k, v in consent.items() if k not in ("resourceType", "id", "meta")}
    return {"resourceType": "Consent", "id": str(seq), "meta": {"lastUpdated": fhir_datetime(when)}, **rest}


def front_desk(*, patient: str, channel: str, action: str, staff: str, how: str, purpose: str | None = None,
               address: str | None = None, identifier: Identifier | None = None) -> dict[str, Any]:
    """The Consent a front desk records (``emrcomm consent grant|revoke``): the source names how
    the patient said it and who recorded it; ``identifier``, the id it is recorded once for."""
    resource: dict[str, Any] = {
        "resourceType": "Consent", "status": "active" if action == "grant" else "inactive",
        "patient": {"reference": patient},
        "provision": {"code": [{"coding": [{"system": CHANNEL_SYSTEM, "code": channel}]}]},
        "extension": [{"url": SOURCE, "valueString": f"front desk, {how}, recorded by {staff}"}],
    }
    if purpose is not None:
        resource["category"] = [{"coding": [{"system": PURPOSE_SYSTEM, "code": purpose}]}]
    if address is not None:
        resource["extension"].append({"url": ADDRESS, "valueString": address})
    if identifier is not None:
        resource["identifier"] = [{"value": identifier.value} if identifier.system is None
                                  else {"system": identifier.system, "value": identifier.value}]
    return resource


def _check_r4(consent: Mapping[str, Any]) -> None:
    """The Consent against the FHIR R4 model, so a field of the wrong type (``"category":
    "clinical"``, a list for a code) is refused, never read wrongly or skipped. The profile makes
    ``scope`` and ``category`` optional (none: every purpose), as the front desk's Consent has them."""
    from fhir.resources.R4B.consent import Consent
    from pydantic import ValidationError

    try:
        Consent.model_validate(dict(consent))
    except ValidationError as exc:
        problems = [e for e in exc.errors() if not (e["type"] == "missing" and e["loc"] in (("scope",), ("category",)))]
        if problems:
            where = "Consent" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problems[0]["loc"])
            # A field R4 requires and the Consent lacks (status) is 'required', as a missing patient is.
            code = "required" if str(problems[0]["type"]).rsplit(".", 1)[-1] == "missing" else "structure"
            raise ApiError(400, code, f"not a valid FHIR R4 Consent: {where}: {problems[0]['msg']}",
                           expression=where) from None


def _purpose(consent: Mapping[str, Any]) -> str | None:
    codes = [coding.get("code") for concept in consent.get("category") or () if isinstance(concept, Mapping)
             for coding in concept.get("coding") or () if isinstance(coding, Mapping)
             and coding.get("system") == PURPOSE_SYSTEM]
    if not codes:
        return None
    purposes = [p.value for p in Purpose]
    if len(codes) > 1 or codes[0] not in purposes:
        raise ApiError(422, "value", f"category names purpose {str(codes[0])[:40]!r}; give one of: "
                       f"{', '.join(purposes)} in {PURPOSE_SYSTEM} (or none: every purpose)",
                       expression="Consent.category")
    return str(codes[0])


def _reference(consent: Mapping[str, Any]) -> str:
    ref = (consent.get("patient") or {}).get("reference") if isinstance(consent.get("patient"), Mapping) else None
    # A field emrcomm cannot read is a 400, as a CommunicationRequest's subject is (docs/api.md,
    # "Status codes"); 422 is for a Consent read but not acted on.
    if not ref:
        raise ApiError(400, "required", 'patient is missing: name the patient as "patient": '
                       '{"reference": "Patient/<id>"}', expression="Consent.patient")
    if not isinstance(ref, str) or not ref.startswith("Patient/") or len(ref) <= len("Patient/") or len(ref) > 80:
        raise ApiError(400, "invalid", f"patient {str(ref)[:80]!r} is not a Patient reference: expected "
                       "'Patient/<id>', the id the clinic's directory knows", expression="Consent.patient")
    return ref


def _channels(host: Host, provision: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    codes = provision.get("code")
    for concept in codes if isinstance(codes, list) else ():
        codings = concept.get("coding") if isinstance(concept, Mapping) else None
        for coding in codings if isinstance(codings, list) else ():
            if not isinstance(coding, Mapping):
                continue
            code = coding.get("code")
            if coding.get("system") == PARTICIPATION_MODE and code in MEDIUM_TO_CHANNEL:
                found.append(MEDIUM_TO_CHANNEL[code])
            elif coding.get("system") == CHANNEL_SYSTEM and isinstance(code, str):
                found.append(code)
    if not found:
        raise ApiError(422, "required", f"provision.code names no channel: SMSWRIT or EMAILWRIT in {PARTICIPATION_MODE}, "
                       f"or a channel name in {CHANNEL_SYSTEM}", expression="Consent.provision.code")
    for channel in found:
        known = host.channels.get(channel)
        if known is None:
            raise ApiError(422, "value", f"channel {channel[:40]!r} is not one of: {', '.join(sorted(host.channels))}",
                           expression="Consent.provision.code")
        if known.address_system is None:
            raise ApiError(422, "not-supported", f"the {channel} channel has no address to opt out of: record a "
                           f"{channel} consent in the EMR's own directory", expression="Consent.provision.code")
    return list(dict.fromkeys(found))


def _extension(resource: Mapping[str, Any], url: str) -> Any:
    extensions = resource.get("extension")
    for ext in extensions if isinstance(extensions, list) else ():
        if isinstance(ext, Mapping) and ext.get("url") == url:
            return next((v for k, v in ext.items() if k.startswith("value")), None)
    return None


def _given(host: Host, channel: str, given: Any) -> str:
    """The address a Consent names (consent-address) for ``channel``, as the ledger takes it."""
    if not isinstance(given, str) or not given.strip() or len(given) > 254:
        raise ApiError(422, "value", "extension consent-address must be a phone number or an email address "
                       "(valueString)", expression="Consent.extension")
    # (An email address in any capitals: the ledger files every one in lower case.)
    return _normalised(host, host.channels[channel].address_system, given)


def _on_file_or_refused(host: Host, patient: str, channel: str) -> list[str]:
    addresses = _on_file(host, patient, host.channels[channel].address_system)
    if addresses is None:
        raise ApiError(422, "not-found", f"no directory knows {patient}: give the patient's id as the clinic's "
                       "directory has it (or the address, with the extension consent-address)",
                       expression="Consent.patient")
    if not addresses:
        raise ApiError(422, "not-found", f"{patient} has no {channel} address on file: give it with the extension "
                       "consent-address", expression="Consent.patient")
    return addresses


def _on_file(host: Host, patient: str, system: str | None) -> list[str] | None:
    """The patient's addresses for ``system``; None when no directory knows the patient."""
    try:
        recipient = host.hooks.find_recipient(Request(patient, "appointment-reminder", id="consent"))
    except RecipientRefused as exc:
        raise ApiError(422, "business-rule", f"the chart says {patient} must not be messaged ({exc.reason.rstrip('.')}): "
                       "give the address with the extension consent-address, or correct the chart in the EMR",
                       expression="Consent.patient") from None
    return [cp.value for cp in recipient.addresses(system or "")] if recipient is not None else None


def _normalised(host: Host, system: str | None, address: str) -> str:
    unseen = next((c for c in address if unicodedata.category(c) in _UNSEEN), None)
    if unseen is not None:
        raise ApiError(422, "value", f"consent-address contains the character U+{ord(unseen):04X} (a control, format "
                       "or line-separator character): give the number or the email address alone",
                       expression="Consent.extension")
    address = address.strip()
    if system == "email":
        try:  # as the policy plugin checks an address before sending to it
            validate_email(address, check_deliverability=False)
        except EmailNotValidError:
            raise ApiError(422, "value", "consent-address is not an email address: give it as anne@example.org",
                           expression="Consent.extension") from None
        return address
    if system != "sms":
        return address
    region = (host.config.clinic.jurisdiction or "CA").split("-")[0]
    try:
        number = phonenumbers.parse(address, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ApiError(422, "value", "consent-address is not a phone number: give it as +1 613 555 0123",
                       expression="Consent.extension")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
