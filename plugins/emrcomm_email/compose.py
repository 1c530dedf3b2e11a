"""The MIME message for one email, the same whichever transport carries it."""

from __future__ import annotations

import datetime as dt
import html
import re
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, parseaddr

from emrcomm import Message

FOOTER = {
    "en": "If you received this message in error, please tell {clinic} at {phone} and delete it.",
    "fr": "Si vous avez reçu ce message par erreur, veuillez en aviser {clinic} au {phone} et le supprimer.",
}
# How an email says to stop emails (the SMS keywords are left out of its words: emrcomm.forms).
UNSUBSCRIBE = {
    "en": "To stop emails from {clinic}: {url}",
    "fr": "Pour ne plus recevoir de courriels de {clinic} : {url}",
}

# When the clinic names no address it reads (clinic.email), replies to an email reach no one: it says so.
NOT_READ = {
    "en": "Replies to this email are not read. To reach {clinic}, call {phone}.",
    "fr": "Les réponses à ce courriel ne sont pas lues. Pour joindre {clinic}, appelez au {phone}.",
}
NOT_READ_NO_PHONE = {
    "en": "Replies to this email are not read.",
    "fr": "Les réponses à ce courriel ne sont pas lues.",
}


# Headers written as they are, however long: one URL in angle brackets, which the folder would
# otherwise cut into encoded-words that no mail client reads as a link (RFC 5322 allows 998).
VERBATIM = frozenset({"list-unsubscribe"})


class _WirePolicy(EmailPolicy):
    """Folds headers at 78 characters, so that a non-ASCII subject or name becomes encoded-words
    of at most 75 characters each (RFC 2047 section 2); the VERBATIM headers are left whole."""

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in VERBATIM:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


def wire(mail: EmailMessage, linesep: str = "\n") -> bytes:
    """The message's bytes, lines ending in ``linesep`` (SMTP: CRLF), its headers folded at 78
    characters (``List-Unsubscribe`` excepted: see VERBATIM)."""
    return mail.as_bytes(policy=_WirePolicy(linesep=linesep, max_line_length=78))


def ascii_address(address: str) -> str:
    """``address`` as an envelope and a header carry it without SMTPUTF8: an accented domain by its
    IDNA name (``camille@café.ca`` is ``camille@xn--caf-dma.ca``, the same mailbox). Unchanged when
    the local part itself is not ASCII: only SMTPUTF8 carries that."""
    # Imported here, not at the top: ~40 ms of every start, of use only once an address is checked.
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address, check_deliverability=False).ascii_email or address
    except EmailNotValidError:
        return address


def sender_domain(sender: str) -> str:
    return sender.rsplit("@", 1)[-1].rstrip(">").strip() if "@" in sender else "emrcomm.invalid"


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def html_with_footer(page: str, lines: list[str], link: str | None) -> str:
    """``page`` with the footer's lines (escaped; the unsubscribe address a link) before its
    ``</body>``, or after it when it has none."""
    if not lines:
        return page
    shown = []
    for line in lines:
        text = html.escape(line)
        if link:
            url = html.escape(link)
            text = text.replace(url, f'<a href="{url}">{url}</a>')
        shown.append(f"<p>{text}</p>")
    block = '<hr>\n<div class="emrcomm-footer">' + "".join(shown) + "</div>\n"
    ends = list(_BODY_END.finditer(page))
    if not ends:
        return page + "\n" + block
    at = ends[-1].start()
    return page[:at] + block + page[at:]


def build_email(message: Message, address: str, sender: str, clinic: str, phone: str, key: str, at: dt.datetime,
                unsubscribe_url: str | None = None, footer: bool = True, cte: str | None = None,
                reply_to: str | None = None) -> EmailMessage:
    """The MIME message for one email: plain text with the misdirection footer, optional HTML and
    attachments, Date, Message-ID, and, when ``unsubscribe_url`` is given, the RFC 8058 one-click
    unsubscribe headers and the same link in the footer.

    ``reply_to`` is the address the clinic reads (``clinic.email``): a ``Reply-To`` when the sender
    is another address (a noreply). Without one, the footer says replies are not read and how to
    reach the clinic.

    The Message-ID is ``<key@sender's domain>``: the same record always carries the same id, so a
    second copy after a retry is recognisable as the same message. ``cte`` forces a transfer
    encoding for the text parts (SMTP uses quoted-printable: 7-bit clean on any server).
    """
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ascii_address(address)
    mail["Subject"] = message.subject or clinic
    mail["Date"] = format_datetime(at)
    mail["Message-ID"] = f"<{key}@{sender_domain(sender)}>"
    if reply_to and parseaddr(reply_to)[1].lower() != parseaddr(sender)[1].lower():
        mail["Reply-To"] = reply_to
    if unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    body = message.text
    lines = []
    if not reply_to:
        words = NOT_READ if phone else NOT_READ_NO_PHONE
        lines.append(words.get(message.language, words["en"]).format(clinic=clinic, phone=phone))
    if unsubscribe_url:
        lines.append(UNSUBSCRIBE.get(message.language, UNSUBSCRIBE["en"]).format(clinic=clinic, url=unsubscribe_url))
    if footer:
        lines.append(FOOTER.get(message.language, FOOTER["en"]).format(clinic=clinic, phone=phone))
    if lines:
        body += "\n\n-- \n" + "\n".join(lines)
    mail.set_content(body + "\n", cte=cte)
    if message.html:
        # A mail client shows the HTML part alone: it carries the same footer lines.
        mail.add_alternative(html_with_footer(message.html, lines, unsubscribe_url), subtype="html", cte=cte)
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mail.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=attachment.title or "attachment")
    return mail
