"""What a channel's form changes in a message's words: an email carries no SMS keyword
instructions ("Reply STOP to opt out", « Répondez ARRET ») — nobody reads replies to an email,
and its opt-out is the one-click unsubscribe the email channel adds (docs/transports.md); an SMS
is spelled in GSM-7 where a phone shows the same words ("août" as "aout", "Île" as "Ile"), so
that one letter does not send it as UCS-2 at 70 characters a segment (docs/templates.md)."""

from __future__ import annotations

import bisect
import re

from emrcomm.segments import to_gsm7

# "Reply STOP to opt out.", "To stop these messages, reply STOP.", « Répondez ARRET pour vous
# désabonner. », "ARRET pour annuler": a verb that says to text back, then a keyword in capitals (as
# texts write it for a handset); the sentence it starts runs to its end (_sentence_end).
_INSTRUCTION = re.compile(
    r"(?:(?i:to stop these messages|pour ne plus recevoir ces messages),\s*)?"
    r"(?:(?P<reply>(?i:reply|r[ée]pondez|text)\s+(?:STOP|ARRET|ARRÊT|START|HELP|AIDE)\b)"
    r"|(?:STOP|ARRET|ARRÊT)(?=\s+pour\s+annuler\b))",
)
# What an instruction is for, read after its keyword ("to opt out", "for help", « pour vous
# désabonner », « pour annuler ») or in the clause that leads into it ("To opt out,", "If you no
# longer want these texts,"): the keywords' own business — stopping messages, help, starting
# them again. "Reply STOP to cancel your appointment tomorrow at 9" is for something else, and
# taken out it would lose the appointment: it stays as written.
_WHAT = r"(?:messages?|texts?|text\s+messages|textos?|sms|reminders?|rappels?|notifications?|alerts?|alertes?|emails?|courriels?|envois?)"
# A bare "to cancel" (« pour annuler ») ends its sentence; else the messages it stops are named
# within a few words ("to stop the 2.5 p.m. reminders"), not after an "and" that starts another
# purpose.
_BARE = r"(?=[.!?]|[ \t]*(?:\n|\Z))"
_NAMED = (r"(?=(?:\s+(?!(?:and|or|but|et|ou|mais)\b)(?:[ap]\.m\.|[^\s.!?,;]+(?:\.[^\s.!?,;]+)*)){0,4}?"
          r"\s+" + _WHAT + r"\b)")
_STOPPING = (
    r"opt[- ]?out\b|unsubscribe\b|be\s+removed\b|opt[- ]?in\b|resubscribe\b"
    r"|receive\s+(?:them|these|messages|texts|reminders)\s+again\b|start\s+receiving\b"
    r"|(?:stop|end|cancel|quit)\b(?:\s+receiving\b)?(?:" + _BARE + "|" + _NAMED + ")"
    r"|(?:vous\s+|se\s+)?d[ée]s(?:abonner|inscrire)\b|(?:vous\s+)?r[ée]abonner\b"
    r"|ne\s+plus\s+(?:les\s+)?recevoir\b|(?:les\s+)?recevoir\s+(?:de|à)\s+nouveau\b"
    r"|(?:annuler|arr[êe]ter|cesser)\b(?:\s+de\s+(?:les\s+)?recevoir\b)?(?:" + _BARE + "|" + _NAMED + ")"
)
_PURPOSE = re.compile(
    r"\s*(?:[.!?]|\n|\Z)"  # the keyword alone: "text STOP."
    r"|\s+(?i:(?:to|pour|afin\s+de|in\s+order\s+to)\s+(?:" + _STOPPING + r")"
    r"|for\s+(?:help|more\s+info(?:rmation)?|assistance)\b|pour\s+(?:obtenir\s+)?(?:de\s+)?l['’]aide\b)",
)
_LEAD_IN_PURPOSE = re.compile(
    r"(?i:(?:to|pour|afin\s+de|in\s+order\s+to)\s+(?:" + _STOPPING + r")"
    r"|if\s+you\s+(?:no\s+longer|do\s+not|don['’]t|would\s+rather\s+not)\s+(?:want|wish)\b" + _NAMED +
    r"|if\s+you\s+(?:want|wish|would\s+like)\s+to\s+(?:" + _STOPPING + r")"
    r"|si\s+vous\s+ne\s+(?:voulez|souhaitez|d[ée]sirez)\s+(?:plus|pas)\b" + _NAMED +
    r"|si\s+vous\s+(?:voulez|souhaitez|d[ée]sirez)\s+(?:" + _STOPPING + r"))",
)
# A clause that leads into an instruction ("To opt out, reply STOP", "If you no longer want these
# texts, reply STOP", « Pour vous désabonner, répondez ARRET », « Si vous ne voulez plus… »): one
# clause, with no comma or mark inside, so a clause before it keeps its words ("If you are
# coming, bring your card, and to opt out, reply STOP" keeps all but "reply STOP").
_LEAD_IN_LENGTH = 120
_LEAD_IN = re.compile(r"(?<!\S)(?i:to|if|pour|si|afin)\b[^.!?:;,\n]{0,100},?[ \t]*\Z")
# A line that names only its sender, as an SMS starts ("Riverside Family Health:", « Clinique de
# l'Île-Perrot : »): a name's words, each capitalised but for these, then a colon; "Your results
# are in:" says something.
_SENDER = re.compile(r"(?:[^\W\d_][\w'’.&-]*[ \t]+){0,7}[^\W\d_][\w'’.&-]*[ \t]?:")
_NAME_PARTICLES = frozenset({"of", "the", "and", "at", "on", "de", "du", "des", "la", "le", "les", "et", "sur"})
# A mark that may end a sentence: followed by a space or the end of the text. A URL's dots and a
# decimal's ("portal.riverside.example/help", "2.5 mg") are followed by more of the word.
_MARK = re.compile(r"[.!?]+(?=\s|$)")
# Titles, which a name follows ("Dr. Smith", « M. Tremblay », « Me Roy »): their dot does not end
# a sentence.
_TITLES = frozenset({"dr", "drs", "mr", "mrs", "ms", "mx", "prof", "mme", "mmes", "mlle", "dre", "pr", "me", "m"})
# Other words a dot may follow inside a sentence or at its end ("123 Main St. W", "…on Main St.
# Bring your card", « av. du Parc »); a single letter ("J. Smith") and a word with a dot inside
# ("p.m.", "e.g.", « c.-à-d. ») are read so too, but not a link ("portal.riverside.example/help.").
_ABBREVIATIONS = frozenset({
    "jr", "sr", "st", "ste", "mt", "ave", "av", "blvd", "bd", "boul", "rd", "apt", "app", "no", "nos", "vs",
    "etc", "approx", "env", "ext", "dept", "inc", "ltd", "co", "tel", "tél", "mm", "ex",
})
_LINK_WORD = re.compile(r"(?i:https?://|www\.)|[^/\s]+\.[^/\s]+/")
# Words a sentence cannot end on: a line ending with one goes on at the next.
_NOT_LAST = frozenset({
    "a", "an", "the", "of", "from", "to", "for", "at", "by", "with", "and", "or", "in", "on", "your", "our",
    "these", "this", "de", "du", "des", "la", "le", "les", "à", "au", "aux", "et", "ou", "pour", "par", "vos",
    "votre", "nos", "notre", "ces", "ce", "en", "sur", "avec",
})
# A link that ends the words before an instruction which starts with a capital, as a template
# whose lines are joined puts it: the link ends what it says, as a mark would.
_LINK_BEFORE = re.compile(r"(?<!\S)(?i:https?://|www\.)\S+\Z")
# Words that turn what follows round: a line ending with one goes on at the next.
_NEGATIONS = frozenset({"not", "don't", "don’t", "never", "no", "ne", "n'", "n’", "pas", "jamais", "plus"})
# A line's first word, followed by a space, a comma or a mark that ends it (not a link's dot).
_WORD_STARTING_A_LINE = re.compile(r"[ \t]*([^\W\d_]+)(?=[\s,;]|[.!?]+(?:\s|$)|$)")
_SPACES = re.compile(r"[ \t]{2,}")
_NON_SPACE = re.compile(r"\S")


def is_sms_instruction(text: str) -> bool:
    """Whether ``text`` tells the patient to text a keyword back."""
    return bool(_INSTRUCTION.search(text))


def for_email(text: str) -> str:
    """``text`` without its SMS keyword instructions, each from the start of its sentence when a
    clause only leads into it ("To opt out, reply STOP") to the end of its sentence, and without
    a line left empty by that or left only its sender ("Riverside:"); every other word as it was.
    A text that would be left no word at all but its sender's name ("Reply STOP to opt out."
    alone, "Riverside:\nReply STOP to opt out.") is kept as written: an email with nothing but
    its footer tells the patient nothing, and the instruction is only a nuisance on email."""
    if not is_sms_instruction(text):
        return text
    kept: list[str] = []
    cuts: list[int] = []  # where, in the words kept, an instruction was taken out
    at = length = 0
    for found in _INSTRUCTION.finditer(text):
        if found.start() < at:  # inside the sentence of an instruction already taken out
            continue
        first = _sentence_start(text, found.start())
        if first is None or not _for_stopping(text, found, first):
            continue
        end = _sentence_end(text, found.start(), found.end())
        if end is None:
            continue
        start = max(at, first)
        kept.append(text[at:start])
        length += start - at
        cuts.append(length)
        at = end
    kept.append(text[at:])
    lines: list[str] = []
    offset = 0
    for line in "".join(kept).split("\n"):
        cut = bisect.bisect_left(cuts, offset)
        cut_here = cut < len(cuts) and cuts[cut] <= offset + len(line)
        offset += len(line) + 1
        line = _SPACES.sub(" ", line).strip()
        if line and not (cut_here and _names_only_its_sender(line)):
            lines.append(line)
    if all(_names_only_its_sender(line) for line in lines):
        return text
    return "\n".join(lines)


def _for_stopping(text: str, found: re.Match[str], first: int) -> bool:
    """Whether the instruction ``found``, its sentence starting at ``first``, is for the
    keywords' own business (:data:`_PURPOSE`): after its keyword and, when a clause leads into
    it, in that clause too."""
    if not _PURPOSE.match(text, found.end()):
        return False
    return first == found.start() or bool(_LEAD_IN_PURPOSE.match(text, first, found.start()))


def _names_only_its_sender(line: str) -> bool:
    """Whether ``line`` is a sender's name and its colon, all an instruction's line leaves."""
    if not _SENDER.fullmatch(line):
        return False
    words = [re.sub(r"^[ldLD]['’]", "", word) for word in line.rstrip(":").split()]
    return all(word[:1].isupper() or word in _NAME_PARTICLES for word in words)


def _sentence_start(text: str, begin: int) -> int | None:
    """Where the sentence of the instruction at ``begin`` starts: at the instruction, or at the
    clause that leads into it, when that starts the sentence (after a line's start, a sender's
    "Riverside:" or a mark that surely ends the sentence before); else None. Other words before
    an instruction in its sentence may say something ("See you Tuesday, reply STOP to cancel"),
    turn it round ("Do not reply STOP", « Ne répondez pas ARRET ») or end in a dot that may not
    end a sentence ("at 10 a.m. to opt out"): taken out alone, the instruction would leave half
    a sentence or its opposite, and left in, it is only a nuisance on email."""
    line_start = text.rfind("\n", 0, begin) + 1
    window = max(line_start, begin - _LEAD_IN_LENGTH)
    lead = _LEAD_IN.search(text[window:begin])
    first = begin if lead is None else window + lead.start()
    end = first
    while end > line_start and text[end - 1].isspace():
        end -= 1
    if lead is not None and end == first and end > line_start:  # the window began inside a word
        return None
    if end == line_start:
        return first if not _goes_on(text, line_start) else None
    if text[end - 1] in ":!?":
        return first
    if text[end - 1] == "." and _closes(text, line_start, end - 1, end, len(text)):
        return first
    if _LINK_BEFORE.search(text, line_start, end) and text[first].isupper():
        return first  # "…in your portal: https://portal.riverside.example Reply STOP to opt out"
    return None


def _goes_on(text: str, line_start: int) -> bool:
    """Whether the sentence of the line before ``line_start`` may go on at it: the line ends
    with no mark and :func:`_wraps` says so, or on a word that turns what follows round
    ("Please do not\nreply STOP")."""
    if line_start == 0:
        return False
    before = text.rfind("\n", 0, line_start - 1) + 1
    line = text[before:line_start - 1].rstrip()
    if not line or line[-1] in ".!?:":
        return False
    return line.rsplit(None, 1)[-1].lower() in _NEGATIONS or _wraps(text, before, line_start - 1)


def _sentence_end(text: str, begin: int, start: int) -> int | None:
    """Where the sentence of the instruction at ``begin`` (its keyword ending at ``start``) ends:
    after its closing mark, or, when its line ends with no mark, at the end of its line (of the
    last line it goes on to: :func:`_wraps`); None when a dot on the way may end it or not
    ("…at 123 Main St. Bring your card."). Taking out too much of an email loses words it would
    have sent ("reply STOP. Your appointment is…"); too little leaves a fragment ("Smith's
    oncology clinic."); an instruction left in is only a nuisance, so an unsure end leaves it."""
    while True:
        line_end = text.find("\n", start)
        line_end = len(text) if line_end < 0 else line_end
        for mark in _MARK.finditer(text, start, line_end):
            if mark.group().startswith("."):
                reading = _reading(text, begin, mark.start(), mark.end(), line_end)
                if reading == "unsure":
                    return None
                if reading == "inside":
                    continue
            return mark.end()
        if not _wraps(text, start, line_end):
            return line_end
        start = line_end + 1


def _wraps(text: str, start: int, line_end: int) -> bool:
    """Whether the sentence on the line ending at ``line_end`` (read from ``start``) goes on at
    the next line: the line ends with no mark and either with a word a sentence cannot end on
    ("…messages from\nDr. Smith's clinic.") or the next line starts with a word in lower case
    ("…these\nreminders."), not a link's ("portal.riverside.example")."""
    line = text[start:line_end].rstrip()
    next_end = text.find("\n", line_end + 1)
    next_end = len(text) if next_end < 0 else next_end
    if not line or line[-1] in ".!?" or not _NON_SPACE.search(text, line_end + 1, next_end):
        return False  # a blank line ends a paragraph, and the text's end its last
    last = line.rsplit(None, 1)[-1].lower()
    following = _WORD_STARTING_A_LINE.match(text, line_end + 1)
    return last in _NOT_LAST or (following is not None and following.group(1)[0].islower())


def _closes(text: str, begin: int, dot: int, after: int, line_end: int) -> bool:
    """Whether the dot at ``dot`` surely ends its sentence (:func:`_reading`)."""
    return _reading(text, begin, dot, after, line_end) == "closes"


def _reading(text: str, begin: int, dot: int, after: int, line_end: int) -> str:
    """How the dot at ``dot`` reads: ``closes`` its sentence, or is ``inside`` it — after a title
    ("Dr. Smith", « M. Tremblay ») or followed by a word in lower case ("p.m. reminders", « av. du
    Parc ») — or is ``unsure``: after another abbreviation, an initial or a word with a dot of its
    own and followed by a capital or a digit ("Main St. Bring", "vitamin D. Call"). A dot that
    ends its line closes. The word before it is read from the instruction's ``begin``: the dot
    right after "reply STOP" follows the keyword."""
    # The word before the dot and the character after it, read outward from the dot alone: a
    # slice of the sentence at each of its dots cost an email of n dots n times its length.
    end = dot
    while end > begin and text[end - 1].isspace():
        end -= 1
    first = end
    while first > begin and not text[first - 1].isspace():
        first -= 1
    word = text[first:end].lstrip("([«“\"'")
    following = _NON_SPACE.search(text, after, line_end)
    if following is None:
        return "closes"
    if following.group().islower():
        return "inside"
    if word.lower() in _TITLES:
        return "inside"
    if (not word or ("." in word and not _LINK_WORD.match(word)) or (len(word) == 1 and word.isalpha())
            or word.lower() in _ABBREVIATIONS):
        return "unsure"
    return "closes"


def for_sms(text: str) -> str:
    """``text`` as an SMS carries it: :func:`emrcomm.segments.to_gsm7`."""
    return to_gsm7(text)


def in_form(form: str | None, text: str) -> str:
    """``text`` in the words a channel of ``form`` sends (``email``, ``sms``; any other form as it is)."""
    if form == "email":
        return for_email(text)
    if form == "sms":
        return for_sms(text)
    return text
