"""The pages' words in English and (Quebec) French, and how each language writes a date and a
phone number. Every key exists in both languages; a test checks it, and that the French follows
French typography (a narrow no-break space before ? ! : ;)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import phonenumbers

LANGUAGES = ("en", "fr")

STRINGS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "language_name": "English",
        "switch_label": "Language",
        "skip": "Skip to the content",
        "portal": "Secure messages",
        "confirm_title": "You have a secure message",
        "confirm_lead": "{clinic} sent you a message. To protect your privacy, it is kept here rather than "
                        "sent by text or email.",
        "confirm_next": "On the next page we will ask for your date of birth. The link works once: after "
                        "you open the message, keep the page open to read it and reply.",
        "continue": "Continue",
        "identity_title": "Confirm who you are",
        "identity_lead": "Enter your date of birth to open the message from {clinic}.",
        "dob_legend": "What is your date of birth?",
        "dob_hint": "For example, 27 3 1980",
        "day": "Day",
        "month": "Month",
        "year": "Year",
        "open": "Open my message",
        "error_title": "There is a problem",
        "error_wrong": "The date of birth does not match our records. Tries left: {left}.",
        "error_invalid": "Enter a real date of birth, with the day, month and year as numbers.",
        "message_title": "Your message",
        "message_from": "From {clinic}",
        "message_from_person": "From {person}, {clinic}",
        "message_sent": "Sent on {date}",
        "home_title": "Secure messages from {clinic}",
        "home_lead": "{clinic} uses this site for messages that should not travel by text or email, such "
                     "as test results and notes from your care team.",
        "home_read_title": "To read a message",
        "home_step_link": "Open the link in the text message or email the clinic sent you.",
        "home_step_confirm": "Press Continue, then enter your date of birth.",
        "home_step_read": "Read the message. You can reply to the clinic from the same page.",
        "home_once": "Each link opens its message once. To read a message again, or if a link no longer "
                     "works, call the clinic and ask for it to be sent again.",
        "home_no_link_title": "No link?",
        "home_no_link": "For your privacy, messages are not listed on this site: each one opens only from "
                        "its own link. If you expected a message from {clinic}, call {phone}.",
        "home_no_link_plain": "For your privacy, messages are not listed on this site: each one opens only "
                              "from its own link. If you expected a message, call the clinic.",
        "home_replies_title": "Replies",
        "home_replies": "Staff read replies within {turnaround}.",
        "home_replies_plain": "Staff read replies during opening hours.",
        "attachments": "Attachments",
        "download": "Download {title}",
        "reply_title": "Reply to the clinic",
        "reply_label": "Your reply",
        "reply_hint": "Staff read replies within {turnaround}. Do not use this for an emergency.",
        "reply_hint_plain": "Staff read replies during opening hours. Do not use this for an emergency.",
        "send_reply": "Send my reply",
        "error_empty": "Write your reply before sending it.",
        "error_too_long": "Your reply is too long: keep it under 5,000 characters, or call the clinic.",
        "error_failed": "Your reply could not be sent. Please try again, or call the clinic.",
        "replied_title": "Your reply was sent",
        "replied_lead": "{clinic} received your reply. Staff read replies within {turnaround}.",
        "replied_lead_plain": "{clinic} received your reply. Staff read replies during opening hours.",
        "replied_already": "You already sent a reply to this message. To add something, call the clinic.",
        "replied_yours": "Your reply",
        "replied_message": "The message you replied to",
        "emergency": "In an emergency, call 911 or go to the nearest emergency department.",
        "call": "Questions? Call {clinic} at {phone}.",
        "once": "This link has now been used. For your privacy, it will not open the message again.",
        "problem_unknown_title": "This link is not valid",
        "problem_unknown": "Check that you copied the whole link from the message. If it still does not "
                           "work, call the clinic.",
        "problem_used_title": "This link has already been used",
        "problem_used": "For your privacy, each link opens its message only once. To read the message "
                        "again, ask the clinic to send it again.",
        "problem_recalled_title": "This message is no longer available",
        "problem_recalled": "The clinic withdrew this message. If you were expecting news from the clinic, "
                            "please call.",
        "problem_expired_title": "This link has expired",
        "problem_expired": "Links to secure messages work for a limited time. Call the clinic to have the "
                           "message sent again.",
        "problem_locked_title": "This link is locked",
        "problem_locked": "The date of birth was entered wrongly too many times, so the link is locked "
                          "for your protection. Call the clinic: staff will check who you are and send a "
                          "new link.",
        "problem_unverifiable_title": "This message cannot be opened online",
        "problem_unverifiable": "We cannot check who you are for this message. Please call the clinic.",
        "problem_session_title": "Your page has expired",
        "problem_session": "For your privacy, a message stays open for a limited time. Call the clinic if "
                           "you still need to reply.",
        "problem_attachment_title": "This attachment was not found",
        "problem_attachment": "Go back to your message and use its download button. If it still does not "
                              "work, call the clinic.",
        "problem_not-found_title": "Page not found",
        "problem_not-found": "Check the address, or use the link in the message from your clinic.",
        "problem_error_title": "Something went wrong",
        "problem_error": "Please try again in a few minutes, or call the clinic.",
    },
    "fr": {
        "language_name": "Français",
        "switch_label": "Langue",
        "skip": "Aller au contenu",
        "portal": "Messages sécurisés",
        "confirm_title": "Vous avez un message sécurisé",
        "confirm_lead": "{clinic} vous a envoyé un message. Pour protéger votre vie privée, il est conservé "
                        "ici plutôt qu'envoyé par texto ou par courriel.",
        "confirm_next": "À la page suivante, nous vous demanderons votre date de naissance. Le lien ne "
                        "fonctionne qu'une fois\u202f: après avoir ouvert le message, gardez la page ouverte "
                        "pour le lire et y répondre.",
        "continue": "Continuer",
        "identity_title": "Confirmez votre identité",
        "identity_lead": "Entrez votre date de naissance pour ouvrir le message de {clinic}.",
        "dob_legend": "Quelle est votre date de naissance\u202f?",
        "dob_hint": "Par exemple, 27 3 1980",
        "day": "Jour",
        "month": "Mois",
        "year": "Année",
        "open": "Ouvrir mon message",
        "error_title": "Il y a un problème",
        "error_wrong": "La date de naissance ne correspond pas à notre dossier. Essais restants\u202f: {left}.",
        "error_invalid": "Entrez une date de naissance réelle, avec le jour, le mois et l'année en chiffres.",
        "message_title": "Votre message",
        "message_from": "De {clinic}",
        "message_from_person": "De {person}, {clinic}",
        "message_sent": "Envoyé le {date}",
        "home_title": "Messages sécurisés de {clinic}",
        "home_lead": "{clinic} utilise ce site pour les messages qui ne doivent pas passer par texto ou par "
                     "courriel, comme les résultats d'examens et les notes de votre équipe soignante.",
        "home_read_title": "Pour lire un message",
        "home_step_link": "Ouvrez le lien du texto ou du courriel que la clinique vous a envoyé.",
        "home_step_confirm": "Appuyez sur Continuer, puis entrez votre date de naissance.",
        "home_step_read": "Lisez le message. Vous pouvez répondre à la clinique à partir de la même page.",
        "home_once": "Chaque lien n'ouvre son message qu'une fois. Pour relire un message, ou si un lien ne "
                     "fonctionne plus, appelez la clinique et demandez qu'on vous le renvoie.",
        "home_no_link_title": "Pas de lien\u202f?",
        "home_no_link": "Pour protéger votre vie privée, les messages ne sont pas affichés sur ce site\u202f: "
                        "chacun ne s'ouvre qu'à partir de son propre lien. Si vous attendiez un message de "
                        "{clinic}, appelez le {phone}.",
        "home_no_link_plain": "Pour protéger votre vie privée, les messages ne sont pas affichés sur ce "
                              "site\u202f: chacun ne s'ouvre qu'à partir de son propre lien. Si vous attendiez "
                              "un message, appelez la clinique.",
        "home_replies_title": "Réponses",
        "home_replies": "Le personnel lit les réponses dans un délai de {turnaround}.",
        "home_replies_plain": "Le personnel lit les réponses pendant les heures d'ouverture.",
        "attachments": "Pièces jointes",
        "download": "Télécharger {title}",
        "reply_title": "Répondre à la clinique",
        "reply_label": "Votre réponse",
        "reply_hint": "Le personnel lit les réponses dans un délai de {turnaround}. N'utilisez pas ce "
                      "formulaire en cas d'urgence.",
        "reply_hint_plain": "Le personnel lit les réponses pendant les heures d'ouverture. N'utilisez pas ce "
                            "formulaire en cas d'urgence.",
        "send_reply": "Envoyer ma réponse",
        "error_empty": "Écrivez votre réponse avant de l'envoyer.",
        "error_too_long": "Votre réponse est trop longue\u202f: limitez-la à 5\u202f000 caractères, ou appelez la "
                          "clinique.",
        "error_failed": "Votre réponse n'a pas pu être envoyée. Réessayez ou appelez la clinique.",
        "replied_title": "Votre réponse a été envoyée",
        "replied_lead": "{clinic} a reçu votre réponse. Le personnel lit les réponses dans un délai de "
                        "{turnaround}.",
        "replied_lead_plain": "{clinic} a reçu votre réponse. Le personnel lit les réponses pendant les "
                              "heures d'ouverture.",
        "replied_already": "Vous avez déjà répondu à ce message. Pour ajouter quelque chose, appelez la "
                           "clinique.",
        "replied_yours": "Votre réponse",
        "replied_message": "Le message auquel vous avez répondu",
        "emergency": "En cas d'urgence, composez le 911 ou rendez-vous à l'urgence la plus proche.",
        "call": "Des questions\u202f? Appelez {clinic} au {phone}.",
        "once": "Ce lien a maintenant été utilisé. Pour protéger votre vie privée, il n'ouvrira plus le "
                "message.",
        "problem_unknown_title": "Ce lien n'est pas valide",
        "problem_unknown": "Vérifiez que vous avez copié le lien au complet. S'il ne fonctionne toujours pas, "
                           "appelez la clinique.",
        "problem_used_title": "Ce lien a déjà été utilisé",
        "problem_used": "Pour protéger votre vie privée, chaque lien n'ouvre son message qu'une fois. Pour "
                        "relire le message, demandez à la clinique de vous le renvoyer.",
        "problem_recalled_title": "Ce message n'est plus disponible",
        "problem_recalled": "La clinique a retiré ce message. Si vous attendiez des nouvelles de la clinique, "
                            "veuillez appeler.",
        "problem_expired_title": "Ce lien a expiré",
        "problem_expired": "Les liens vers les messages sécurisés fonctionnent pendant un temps limité. "
                           "Appelez la clinique pour qu'elle vous renvoie le message.",
        "problem_locked_title": "Ce lien est verrouillé",
        "problem_locked": "La date de naissance a été mal entrée trop de fois\u202f; le lien est verrouillé pour "
                          "votre protection. Appelez la clinique\u202f: le personnel vérifiera votre identité et "
                          "vous enverra un nouveau lien.",
        "problem_unverifiable_title": "Ce message ne peut pas être ouvert en ligne",
        "problem_unverifiable": "Nous ne pouvons pas vérifier votre identité pour ce message. Veuillez "
                                "appeler la clinique.",
        "problem_session_title": "Votre page a expiré",
        "problem_session": "Pour protéger votre vie privée, un message reste ouvert pendant un temps limité. "
                           "Appelez la clinique si vous devez encore répondre.",
        "problem_attachment_title": "Cette pièce jointe est introuvable",
        "problem_attachment": "Revenez à votre message et utilisez son bouton de téléchargement. S'il ne "
                              "fonctionne toujours pas, appelez la clinique.",
        "problem_not-found_title": "Page introuvable",
        "problem_not-found": "Vérifiez l'adresse, ou utilisez le lien du message de votre clinique.",
        "problem_error_title": "Une erreur s'est produite",
        "problem_error": "Veuillez réessayer dans quelques minutes, ou appelez la clinique.",
    },
}


def language(value: str | None, default: str = "en") -> str:
    """``fr``, ``fr-CA`` and ``FR`` are French; anything else not English is ``default``."""
    code = (value or "").replace("_", "-").split("-", 1)[0].strip().lower()
    if code in LANGUAGES:
        return code
    fallback = (default or "en").split("-", 1)[0].lower()
    return fallback if fallback in LANGUAGES else "en"


def other(lang: str) -> str:
    """The language the switch offers."""
    return "fr" if lang == "en" else "en"


# Babel's locales: Canadian English and Quebec French.
LOCALES = {"en": "en_CA", "fr": "fr_CA"}


def long_date(value: dt.date, lang: str) -> str:
    """``November 23, 2026`` / ``23 novembre 2026``; French writes the first ``1er mars 2026``."""
    from babel.dates import format_date

    text = format_date(value, "long", locale=LOCALES[language(lang)])
    if value.day == 1 and language(lang) == "fr" and text.startswith("1 "):
        text = "1er" + text[1:]
    return text


def _parsed(value: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(value, None if value.strip().startswith("+") else "CA")
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def phone_display(value: str, lang: str = "en") -> str:
    """A phone number as people write it: ``613-555-0100`` in English, ``613 555-0100`` in French
    (the Office québécois de la langue française's style); a number outside North America in its
    international form. What cannot be read as a number is given back as it is."""
    number = _parsed(value)
    if number is None:
        return value
    if number.country_code != 1:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    digits = phonenumbers.national_significant_number(number)
    if len(digits) != 10:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    toll_free = area in ("800", "833", "844", "855", "866", "877", "888")
    if language(lang) == "fr":
        return ("1 " if toll_free else "") + f"{area} {exchange}-{line}"
    return ("1-" if toll_free else "") + f"{area}-{exchange}-{line}"


def phone_href(value: str) -> str | None:
    """``tel:+16135550100``: what a phone dials when the number is tapped; None when ``value``
    is not a phone number."""
    number = _parsed(value)
    if number is None:
        return None
    return "tel:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
