"""The rule catalogue: every finding code, its default severity, and the sentences staff read.

Plugins build findings with :func:`finding` so that the wording, the French version and the
remedy come from one place; docs/rules.md is the human version of this table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from emrcomm.model import Finding, Severity


@frozen
class Rule:
    code: str
    severity: Severity
    message: str
    message_fr: str
    remedy: str
    source: str


def _r(code: str, sev: str, message: str, message_fr: str, remedy: str, source: str) -> Rule:
    return Rule(code, Severity(sev), message, message_fr, remedy, source)


RULES: Mapping[str, Rule] = {
    r.code: r
    for r in (
        # A. consent and preferences
        _r("CONSENT_MISSING", "block",
           "The patient has not agreed to receive {purpose} messages by {channel} at this address.",
           "Le patient n'a pas consenti à recevoir des messages ({purpose}) par {channel} à cette adresse.",
           "Record the patient's consent for this channel and purpose, or use another channel.",
           "CASL s.6; PHIPA; TCPA 47 CFR 64.1200"),
        _r("CONSENT_REVOKED", "block",
           "The patient withdrew consent for {channel} ({source}).",
           "Le patient a retiré son consentement pour {channel} ({source}).",
           "Do not use this channel; ask the patient in person if they wish to opt back in.",
           "CASL s.11(3); FCC 24-24 (revocation by any reasonable means)"),
        _r("PREFERENCE_IGNORED", "block",
           "The patient asked to be contacted another way ({preferred}).",
           "Le patient a demandé à être joint autrement ({preferred}).",
           "Use the channel and address the patient asked for.",
           "HIPAA 45 CFR 164.522(b) confidential communications"),
        _r("UNENCRYPTED_EMAIL_NOT_ACCEPTED", "block",
           "Clinical content by plain email needs the patient's informed choice, which is not on file.",
           "Un contenu clinique par courriel non chiffré exige le choix éclairé du patient, absent du dossier.",
           "Send through the portal, or record that the patient accepts unencrypted email.",
           "IPC Ontario, Communicating PHI by email (2016)"),
        # C. content on insecure channels
        _r("CLINICAL_CONTENT", "block",
           "The text contains clinical information (\"{term}\": {trigger}) that must not travel by {channel}.",
           "Le texte contient de l'information clinique (« {term} » : {trigger_fr}) interdite par {channel}.",
           "Send the details through the portal and keep this message to a notice.",
           "OntarioMD and Omnimed secure-messaging guidance; IPC Ontario"),
        _r("CLINICAL_UNCERTAIN", "block",
           "This free text may be clinical (\"{term}\": {why}; score {score} above the clinic's limit {limit}); "
           "free text the detector is unsure about does not travel by {channel}.",
           "Ce texte libre est peut-être clinique (« {term} » : {why_fr}; score {score} au-dessus de la limite "
           "{limit} de la clinique); un texte libre incertain ne part pas par {channel}.",
           "Nothing to do: it goes through the portal with a notice. If it is only about an appointment or a "
           "bill, send it with that template instead.",
           "clinic policy: a false alarm costs a portal notice, a miss is a privacy breach (docs/rules.md)"),
        _r("HEALTH_IDENTIFIER", "block",
           "The text contains a health identifier ({kind}) that must not travel by {channel}.",
           "Le texte contient un identifiant de santé ({kind}) interdit par {channel}.",
           "Remove the number or date of birth from the message.",
           "PHIPA s.34 (health numbers); HIPAA identifiers"),
        _r("RESULTS_IN_BODY", "block",
           "A result appears in the body or subject of an email.",
           "Un résultat figure dans le corps ou l'objet d'un courriel.",
           "Send the result as a secure attachment or through the portal.",
           "OntarioMD results-notification guidance"),
        _r("PHI_IN_SUBJECT", "block",
           "The email subject carries clinical information.",
           "L'objet du courriel contient de l'information clinique.",
           "Use a neutral subject such as \"Message from your clinic\".",
           "IPC Ontario email fact sheet"),
        # D. marketing and commercial
        _r("MARKETING_BLOCKED", "block",
           "Marketing messages are not sent through the medical record.",
           "Les messages publicitaires ne sont pas envoyés par le dossier médical.",
           "Use a marketing tool with express consent, sender identification and unsubscribe.",
           "CASL s.6, s.11"),
        _r("PROMOTIONAL_LANGUAGE", "warn",
           "The text reads as promotional (\"{term}\").",
           "Le texte a un ton promotionnel (« {term} »).",
           "Keep clinic messages factual; remove offers, discounts and greetings.",
           "CASL; CTIA Messaging Principles 5.1"),
        _r("PROHIBITED_SMS_CONTENT", "block",
           "Carriers forbid this content by SMS (\"{term}\").",
           "Les opérateurs interdisent ce contenu par texto (« {term} »).",
           "Remove it; this topic cannot be texted.",
           "CTIA Messaging Principles (SHAFT), carrier codes of conduct"),
        _r("BILLING_BY_SMS", "block",
           "Invoices by SMS need the patient's billing consent, which is not on file.",
           "Les factures par texto exigent un consentement de facturation, absent du dossier.",
           "Send the invoice by email or portal, or record billing consent for SMS.",
           "TCPA healthcare exemption excludes billing (FCC 15-72)"),
        # E. links
        _r("LINK_NOT_HTTPS", "block",
           "A link is not https ({term}).",
           "Un lien n'est pas en https ({term}).",
           "Use an https address.",
           "OntarioMD secure messaging; carrier filtering"),
        _r("LINK_SHORTENER", "block",
           "A public link shortener is used ({term}); carriers filter them.",
           "Un raccourcisseur de liens public est utilisé ({term}); les opérateurs les filtrent.",
           "Use the full address on the clinic's own domain.",
           "CTIA Messaging Principles; carrier codes of conduct"),
        _r("LINK_DOMAIN_NOT_ALLOWED", "block",
           "A link points outside the clinic's allowed domains ({term}).",
           "Un lien pointe hors des domaines autorisés de la clinique ({term}).",
           "Link to the portal or add the domain to clinic.link_domains.",
           "clinic policy"),
        _r("SURVEY_LINK_SMS", "warn",
           "Survey links by SMS get clinic numbers flagged by carriers.",
           "Les liens de sondage par texto font signaler le numéro de la clinique.",
           "Send questionnaires by email or through the portal.",
           "carrier codes of conduct"),
        # F. SMS form
        _r("SMS_TOO_LONG", "block",
           "The SMS needs {segments} segments; the limit is {limit}.",
           "Le texto exige {segments} segments; la limite est {limit}.",
           "Shorten the text, or avoid characters outside GSM-7 (accents such as ê, curly quotes, emoji).",
           "3GPP TS 23.038; carrier practice"),
        _r("NOTICE_TOO_LONG", "block",
           "The notice that a portal message waits needs {segments} SMS segments with its link; a notice must "
           "fit one, so that no gateway can cut its link.",
           "L'avis qu'un message attend dans le portail exige {segments} segments de texto avec son lien; un avis "
           "doit tenir en un seul, pour qu'aucune passerelle ne coupe son lien.",
           "Nothing to do for this message: it goes by the next channel. For the next ones, shorten clinic.name or "
           "the portal's address (clinic.portal_url, plugins.portal.link_base): the two together under 64 "
           "characters fit.",
           "3GPP TS 23.038; Kannel sendsms defaults (max-messages 1) cut longer messages"),
        _r("TEXT_TOO_LONG", "block",
           "The text is {length} characters; {channel} takes at most {limit}.",
           "Le texte compte {length} caractères; {channel} en accepte au plus {limit}.",
           "Shorten the text, send it through the portal, or raise [limits.channel_text_chars] in the config.",
           "emrcomm limits (docs/security.md)"),
        _r("SMS_NO_SENDER_ID", "block",
           "The SMS does not name the clinic.",
           "Le texto ne nomme pas la clinique.",
           "Include the clinic's name.",
           "CTIA Messaging Principles; CASL s.6(2)"),
        _r("SMS_NO_OPTOUT_HINT", "warn",
           "The SMS does not say how to stop messages.",
           "Le texto n'indique pas comment arrêter les messages.",
           "Add \"Reply STOP to opt out\" / « Répondez ARRET pour vous désabonner ».",
           "CTIA Messaging Principles"),
        _r("EXEMPTION_FREQUENCY", "block",
           "The healthcare exemption allows at most 1 message a day and 3 a week.",
           "L'exemption santé permet au plus 1 message par jour et 3 par semaine.",
           "Wait, or obtain the patient's consent.",
           "FCC 15-72 healthcare exemption"),
        # G. timing
        _r("QUIET_HOURS", "block",
           "It is outside {start}–{end} in the patient's time zone; the message is held until {until}.",
           "Hors de la plage {start}–{end} dans le fuseau du patient; le message attend jusqu'à {until}.",
           "Nothing to do: the message is sent when the window opens.",
           "TCPA 47 CFR 64.1200(c)(1); Florida Telephone Solicitation Act"),
        _r("MESSAGE_EXPIRED", "block",
           "The message is no longer relevant (its appointment or expiry has passed).",
           "Le message n'est plus pertinent (rendez-vous ou échéance passé).",
           "Nothing to send; check the appointment date.",
           "clinic practice"),
        # H. email form
        _r("EMAIL_NO_UNSUBSCRIBE", "block",
           "Subscription email needs a one-click unsubscribe header.",
           "Un courriel d'abonnement exige un en-tête de désabonnement en un clic.",
           "Configure the unsubscribe URL.",
           "RFC 8058; Gmail and Yahoo bulk-sender rules"),
        _r("EMAIL_MISDIRECTION_NOTICE", "warn",
           "The email has no notice for a reader who received it in error.",
           "Le courriel n'a pas d'avis pour un destinataire qui l'aurait reçu par erreur.",
           "Add the misdirection footer.",
           "IPC Ontario email fact sheet"),
        # I. language
        _r("FRENCH_REQUIRED", "warn",
           "This Quebec patient should receive this message in French.",
           "Ce patient du Québec devrait recevoir ce message en français.",
           "Use the French template.",
           "Charter of the French language, s.55 and s.51"),
        # J. recipient
        _r("RECIPIENT_INVALID", "block",
           "The {channel} address on file is not valid ({detail}).",
           "L'adresse {channel} au dossier n'est pas valide ({detail}).",
           "Correct the patient's contact information.",
           "carrier practice; RFC 5321"),
        _r("RECIPIENT_UNVERIFIED", "warn",
           "The patient never confirmed this address.",
           "Le patient n'a jamais confirmé cette adresse.",
           "Send a confirmation message or confirm at the front desk.",
           "clinic practice"),
        # host-level outcomes
        _r("CHECK_FAILED", "block",
           "A safety check could not run ({detail}); the message was not sent.",
           "Une vérification n'a pas pu s'exécuter ({detail}); le message n'a pas été envoyé.",
           "Tell your emrcomm administrator; the plugin is named in this finding.",
           "fail closed (docs/architecture.md)"),
        _r("RECIPIENT_UNKNOWN", "block",
           "No directory knows this patient ({detail}).",
           "Aucun répertoire ne connaît ce patient ({detail}).",
           "Check the patient reference, or the directory plugin's settings.",
           "docs/architecture.md"),
        _r("RECIPIENT_REFUSED", "block",
           "The chart says this patient must not be messaged: {detail}.",
           "Le dossier indique qu'il ne faut pas écrire à ce patient : {detail}.",
           "If the chart is wrong, correct it in the EMR (deceased, inactive, merged into another chart) and send "
           "again; otherwise do not message this patient.",
           "docs/directory.md"),
        _r("PATIENT_MERGED", "warn",
           "{merged} was merged into {survivor}; sent to and filed under {survivor}.",
           "{merged} a été fusionné avec {survivor}; envoyé à {survivor} et consigné à son dossier.",
           "Nothing to do for this message. Use the chart in use for the next ones: the EMR still named the chart "
           "merged away.",
           "docs/directory.md"),
        _r("NO_ROUTE", "block",
           "No channel can carry this message to the patient.",
           "Aucun canal ne peut transmettre ce message au patient.",
           "Record a consented channel for the patient, or follow up by phone.",
           "docs/architecture.md"),
        _r("RECORD_NOT_FILED", "block",
           "The record could not be filed in the chart ({detail}); the message was not sent.",
           "Le message n'a pas pu être consigné au dossier ({detail}); il n'a pas été envoyé.",
           "Check the record filer named in this finding; nothing leaves without a record.",
           "docs/rule-catalogue.md K"),
        _r("DELIVERY_FAILED", "block",
           "The provider did not accept the message ({detail}).",
           "Le fournisseur n'a pas accepté le message ({detail}).",
           "A provider down for a while is tried again by the outbox worker; a refusal for good or the last "
           "attempt ends it: fix the cause it names, then `emrcomm outbox requeue <record id>`.",
           "docs/architecture.md"),
        _r("RECALLED", "warn",
           "The clinic recalled this message before the patient read it ({detail}).",
           "La clinique a retiré ce message avant que le patient le lise ({detail}).",
           "If the patient still needs to know something, send a corrected message.",
           "docs/portal.md"),
        _r("PATIENT_NOT_TOLD", "warn",
           "The message waits in the portal, but no notice could tell the patient.",
           "Le message attend dans le portail, mais aucun avis n'a pu prévenir le patient.",
           "Tell the patient it is waiting (a task is in the practice inbox), or give them the link in person.",
           "docs/records.md"),
    )
}


# What made the content detector report clinical content, as staff read it: the layer that found
# it ("lexicon": a listed term; "context": the wording; "uncertain": the uncertainty score), and the
# words in English and French. Keys are the detector's kinds (a lexicon kind or a context family).
CLINICAL_TRIGGERS: Mapping[str, tuple[str, str, str]] = {
    "medication": ("lexicon", "a medication name", "un nom de médicament"),
    "condition": ("lexicon", "a condition or a symptom", "une maladie ou un symptôme"),
    "test": ("lexicon", "a test or an exam", "un test ou un examen"),
    "procedure": ("lexicon", "a procedure or a treatment", "une intervention ou un traitement"),
    "specialty": ("lexicon", "a specialty, clinic or service that reveals a condition",
                  "une spécialité, une clinique ou un service qui révèle un problème de santé"),
    "clinic": ("lexicon", "one of this clinic's own clinical terms", "un terme clinique propre à la clinique"),
    "result": ("lexicon", "a test with its result or value", "un examen avec son résultat ou sa valeur"),
    "dose": ("lexicon", "a dose", "une dose"),
    "finding": ("context", "a finding or a result referred to without its name",
                "un résultat ou une anomalie évoqués sans être nommés"),
    "value": ("context", "a measured value without the test's name", "une valeur mesurée sans le nom du test"),
    "care": ("context", "a program, service or crisis line that reveals a condition",
             "un programme, un service ou une ligne de crise qui révèle un problème de santé"),
    "allergy": ("context", "allergy testing or a reaction", "des tests d'allergie ou une réaction"),
    "infection": ("context", "infection care or prescription shorthand",
                  "des soins d'infection ou une abréviation d'ordonnance"),
    "wound": ("context", "wound or incision care", "des soins de plaie ou d'incision"),
    "pre-op": ("context", "instructions before a procedure", "des consignes avant une intervention"),
    "pregnancy": ("context", "a pregnancy told by hormone values or weeks",
                  "une grossesse révélée par des valeurs d'hormone ou des semaines"),
    "vaccine": ("context", "a vaccine given because of a condition or an exposure",
                "un vaccin donné à cause d'un problème de santé ou d'une exposition"),
    "sleep": ("context", "a sleep study or sleep apnea treatment", "une étude du sommeil ou un traitement de l'apnée"),
    "symptom": ("context", "a question or instruction about a symptom", "une question ou une consigne sur un symptôme"),
    "medication-use": ("context", "how to take a medication", "la façon de prendre un médicament"),
}


def clinical_trigger(kind: str) -> dict[str, str]:
    """The ``trigger`` and ``trigger_fr`` details of a CLINICAL_CONTENT finding for a detector kind."""
    _layer, english, french = CLINICAL_TRIGGERS.get(kind, CLINICAL_TRIGGERS["condition"])
    return {"trigger": english, "trigger_fr": french}


def trigger_kind(f: Finding) -> str | None:
    """The detector kind behind a CLINICAL_CONTENT finding (None for another code)."""
    said = detail(f, "trigger") if f.code == "CLINICAL_CONTENT" else None
    return next((k for k, (_, english, _) in CLINICAL_TRIGGERS.items() if english == said), None)


def clinical_layer(f: Finding) -> str | None:
    """Which layer of the content detector a finding comes from: ``"lexicon"``, ``"context"``,
    ``"uncertain"``; None when it is not a clinical-content finding."""
    if f.code == "CLINICAL_UNCERTAIN":
        return "uncertain"
    kind = trigger_kind(f)
    return CLINICAL_TRIGGERS[kind][0] if kind else None


def detail(fact: Finding, name: str, *, french: bool = False) -> str | None:
    """The value filled into ``{name}`` of the catalogue sentence of ``fact`` (None if absent);
    with ``french``, of its French sentence (a detail only the French sentence holds, ``why_fr``).

    Findings carry no details of their own; the catalogue wording is the one place they live.
    """
    rule = RULES.get(fact.code)
    template = (rule.message_fr if french else rule.message) if rule else ""
    written = (fact.message_fr if french else fact.message) or ""
    pattern, pos, found = "", 0, False
    for m in re.finditer(r"\{(\w+)\}", template):
        pattern += re.escape(template[pos : m.start()])
        if m.group(1) == name and not found:
            pattern += f"(?P<{name}>.*?)"
            found = True
        else:
            pattern += ".*?"
        pos = m.end()
    pattern += re.escape(template[pos:])
    match = re.fullmatch(pattern, written, re.DOTALL) if found else None
    return match.group(name) if match else None


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def finding(
    code: str,
    *,
    plugin: str,
    severity: Severity | str | None = None,
    span: tuple[int, int] | None = None,
    channel: str | None = None,
    **details: Any,
) -> Finding:
    """A Finding for ``code`` with the catalogue's wording, ``details`` filled into it."""
    rule = RULES[code]
    values = _Blank(details)
    if channel is not None:
        values.setdefault("channel", channel)
    return Finding(
        code=code,
        severity=Severity(severity) if severity is not None else rule.severity,
        message=rule.message.format_map(values),
        message_fr=rule.message_fr.format_map(values),
        remedy=rule.remedy,
        plugin=plugin,
        span=span,
        channel=channel,
        hold_until=details.get("hold_until"),
    )
