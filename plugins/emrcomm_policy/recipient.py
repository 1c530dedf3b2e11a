"""Is the address usable (docs/rule-catalogue.md J), and is the message in the patient's language (I)?"""

from __future__ import annotations

import functools

import phonenumbers

from emrcomm import Category, Channel, Clinic, Finding, Message, Recipient, Route
from emrcomm.rules import finding

MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


@functools.lru_cache(maxsize=65536)  # pure, and ~100-200 µs per call: checked once per address
def phone_problem(address: str, region: str) -> str | None:
    """Why ``address`` cannot receive SMS, or None when it is a valid mobile-capable number."""
    try:
        number = phonenumbers.parse(address, region)
    except phonenumbers.NumberParseException:
        return "not a phone number"
    if not phonenumbers.is_valid_number(number):
        return "not a valid phone number"
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.FIXED_LINE:
        return "landline"
    if kind not in MOBILE_TYPES:
        names = {v: k for k, v in vars(phonenumbers.PhoneNumberType).items() if k.isupper()}
        return f"not a mobile number ({names.get(kind, kind)!s})".lower()
    return None


@functools.lru_cache(maxsize=65536)  # pure, and ~100-200 µs per call: checked once per address
def email_problem(address: str) -> str | None:
    # Imported here, not at the top: ~40 ms of every start, of use only once an address is checked.
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return "not a valid email address"
    return None


def recipient_verdicts(
    recipient: Recipient, channel: Channel, route: Route, clinic: Clinic, plugin: str
) -> list[Finding]:
    system = channel.address_system
    if system == "sms":
        region = (recipient.jurisdiction or clinic.jurisdiction or "CA")[:2]
        problem = phone_problem(route.address, region)
    elif system == "email":
        problem = email_problem(route.address)
    else:
        return []
    if problem:
        return [finding("RECIPIENT_INVALID", plugin=plugin, channel=channel.name, detail=problem)]
    point = next((cp for cp in recipient.contact_points if cp.system == system and cp.value == route.address), None)
    if point is not None and not point.verified:
        return [finding("RECIPIENT_UNVERIFIED", plugin=plugin, channel=channel.name)]
    return []


def french_verdicts(message: Message, recipient: Recipient, channel: Channel, plugin: str) -> list[Finding]:
    """Invoices to Quebec patients in French (block); other messages in a French speaker's language (warn).

    A Quebec patient who prefers English gets other messages in English without a warning:
    docs/rule-catalogue.md I asks for the patient's language, which is English then.
    """
    if message.language.lower().startswith("fr"):
        return []
    quebec = recipient.jurisdiction == "CA-QC"
    wants_french = recipient.language.lower().startswith("fr")
    if message.category is Category.INVOICE and (quebec or wants_french):
        return [finding("FRENCH_REQUIRED", plugin=plugin, channel=channel.name, severity="block")]
    if wants_french:
        return [finding("FRENCH_REQUIRED", plugin=plugin, channel=channel.name)]
    return []
