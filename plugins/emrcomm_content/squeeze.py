"""A second reading of a text: the words it writes apart, read as one ("H.I.V." reads "HIV").

Folding (folding.py) reads every character where it stands. A writer can still keep a clinical
word out of the lexicon's sight with characters that a person reads through:

* an acronym written letter by letter: "H.I.V.", "H-I-V", "H I V", "H|I|V", "V.I.H.", "S.T.I.", "c.-à-d.",
  in enclosed letters too ("🇭 🇮 🇻", "⒣ ⒤ ⒱", "Ⓗ Ⓘ Ⓥ": folding.letters_of);
* an emoji (or another pictograph) between letters: "H🙂IV", "bi🙂opsy";
* a line break inside a word, with or without a hyphen: "HI⏎V", "biop-⏎sy", "in⏎sulin";
* a word written in syllables joined by hyphens: "sy-phi-lis", "in-su-lin", "bi-op-sy";
* digits standing for letters inside a word or at its start: "b1opsy", "p0sitive", "H1V", "1nsulin";
* signs standing for letters inside a word or at its start: "b!opsy", "b|opsy", "a$thma",
  "$yphilis", "@sthma", "|nsulin", "!nsulin", "¡nsulin"; with digits for letters in the same word: "b!0psy".

None of these can be undone in the folding itself: dropping every emoji would glue "biopsy✅done"
into one word, a line break ends a sentence for the context patterns, and reading 0 and 1 as
letters would break real codes (A1C, B12, CD4), "!" ends sentences and "@" writes addresses. So :func:`readings` rewrites the text once more
(the squeezed form, with a map to the original) and the detector reads it *in addition to* the
text as written (clinical.py): a finding of the squeezed form counts only where a rewrite
touched it, so this reading can add findings and never takes one away.

What is rewritten, exactly:

* a run of single letters, each standing alone (not part of a longer word), separated by a dot
  (with or without a space or hyphen after it), a hyphen, an underscore, an asterisk, a middle
  dot or a bullet: two letters or more ("T.B.", "H-I-V"); separated by spaces only, by a slash,
  a bar or a dot with a space before it: three or more ("H I V", "H/I/V", "H|I|V", "H . I . V";
  two, such as "y a" in French, "1 I V Street", "N/A", "c/o" or "Y|N", are left as written). The separators, and
  the dot after the last letter of a dotted run, are dropped;
* a run of three pieces or more of one to four letters joined by hyphens, at least one of two
  letters or more ("sy-phi-lis", "in-su-lin", « gros-ses-se »): the hyphens are dropped. Two
  pieces ("follow-up", "x-ray", "Saint-Jean"), a piece of five letters or more
  ("Ste-Anne-de-Bellevue", "mother-in-law") and a French question (« y a-t-il ») are left as
  written; "face-to-face" is read "facetoface", which names nothing;
* one or two digits glued before an acronym of three or four capitals ("2HIV", "1STI"), not after
  a word, a number, a sum or a code: dropped;
* a "(" that starts a word of three letters or more, with no ")" after it on its line ("(ancer",
  "(hlamydia"): read as c; "(see below)", "parking (lot B)" and "(c)" are parentheses;
* a trade or service mark written out in capitals glued after a word of three letters or more
  ending in a small letter ("OzempicTM", "CareSM", « LantusMD », « LantusMC »): dropped;
* a run of pictographs (Unicode symbols So and Sk, with their joiners and variation selectors)
  with a letter on each side: dropped;
* a line break with a letter on each side (an optional hyphen before it, spaces around it):
  dropped;
* except that a line break without a hyphen, or a pictograph, next to a short everyday word
  (:data:`_FUNCTION_WORDS`: "us", "is", "our", « vous »…) is left: "call⏎us" and "visit🙂is"
  are two words (glued, they would read "callus" and "visitis", an "-itis"), and so are a small
  letter and a capital ("Starting⏎April");
* a word with signs or digits for letters glued by a "!" to a word of three letters or more
  before it ("great!b!opsy") is read whole ("greatibiopsy", which names nothing), and
  :func:`glued` gives the detector the part after the "!" to look up alone ("biopsy");
* but a word cut by a line break after a short everyday word, before a piece of three small
  letters or more that is no short everyday word ("in⏎sulin"), is not squeezed: :func:`cuts`
  gives the detector the glued word to look up alone, and it counts only when the piece is no
  word of its own (wordfreq, Zipf under 2 in English and French: "sulin" is none, while
  "a⏎septic tank", "in⏎fusion style" and "the⏎rapist" stay two words);
* nor two words parted by one space, hyphen or dot ("chlamy dia", "syph-ilis", "HI V"): :func:`splits`
  gives the detector each pair glued, which it looks up alone where the lexicons have it as a term
  of one word, and which counts unless both pieces are words of their own ("a septic tank");
* a digit 0, 1, 3, 4, 5 or 7 with a letter on each side, in a word of at least three characters
  that starts with a letter, every digit of which is one of those and which has at least twice as
  many letters as digits: read as o, i, e, a, s, t (1 is read as i, and in a second squeezed
  form as l: "c1inic", "H1V"). A code such as A1C, B12, T2DM, CD4, H1N1, a postal code (K1A 0B1,
  and the first half of one before its second, "M5V 2T6"), a time (10h30) or a unit (4B) is left
  as written;
* such a digit that starts a word, before four letters or more and nothing else ("1nsulin",
  "0besity", "3czema"), not after a word, a number, a sum or a code ("$1month", "A-1bcde"): "1st",
  "3pm", "10am", "4x", "1B", « 1er », a count ("5days", « 4ième ») and a capitalised name
  ("1Password") are left as written;
* a "!" or a "|" (read as i, and in a second form as l: "b!opsy", "c|inic"), an "@" (a), a "$"
  (s) or a "€" (e: "di@b€tes"; not in a price, "5€50") with a letter on each side, in a word of at least three characters with at least twice as
  many letters as signs ("a$thma", "H!V"), unless the word is part of an address ("ana@clinic.ca",
  "a.b@c") or, for "!" and "|", a short everyday word or a capital after a small letter is next to
  the sign ("Thanks!See you", "Home|About", "great!so"): then it parts two words;
* a "$", an "@", a "|", a "!" or a "¡" that starts such a word, before two letters or more
  ("$yphilis", "$TI", "@sthma", "|nsulin", "!nsulin", "¡nsulin"; "|", "!" and "¡" read as i, and
  in a second form as l: "|upus"), after a space or a sign that is no part of a word, an address,
  a sum or a run of "!" ("!!!Reminder"), and before no capitalised word ("!Important", "¡Hola")
  and, for "!" and "¡", no short everyday word (« Bravo !vous »); a "+" (t) before four small
  letters or more and nothing else ("+estosterone"; not "+1 613", "+Info", "C++", "A+B"); A sum ("$40", "$ 10"), an "@" before a time
  ("@ 10:30") and a "|" parting words ("A | B", "Home |About": a capitalised word after it) are
  left as written. A handle ("@clinic", "@RiversideClinic") is read with its "@" as an a
  ("aclinic"), which names nothing: only a handle that spells a clinical word so ("@nemia") adds
  a finding, as it should;
* in such a word, two signs in a row ("gr0$$esse") and the digits of the rule above next to a sign
  ("b!0psy", "di@bet3s", "$yph1lis"): the word ends with a letter, every digit is one of 0 1 3 4 5
  7, and it has at least twice as many letters as signs and digits together ("B3|B4", "x$1a",
  "WOW!!!GREAT" are left as written). A text is read in two forms (every "1", "!" and "|" as i,
  then every one as l), however many signs and digits it has; where one word writes two of them
  ("c|in!c", "!nsu|in"), in every mix of the three, each read as i or as l throughout: eight
  forms at most. A sign next to a lone letter that is no word ("c|in"), or to letters with
  another sign of the word beyond them ("!nsu|in"), or touching a digit of the word ("syph1|is"), is
  inside a word, whatever the other side.

Also left as written: two dotted capitals before a capitalised word, a person's initials ("signed
by T.B. Jones", « Dre M.-S. Roy »: "T.B." before a small letter is still read "TB"), the everyday abbreviations of :data:`_EVERYDAY` (a.m., p.m., e.g., c.-à-d.:
no term, and a reminder "at 10 a.m." is then read once) and the "t" of « y a-t-il ».

A text with none of these (nearly every one) costs seven regular-expression scans, each of which
skips to the characters it starts with, and a look for "(" (about 6.5 µs a text on the parts and
the corpus, 5.7 µs before the glued marks, numbers and "(" were read):
:func:`readings` and :func:`cuts` return nothing and the detector reads the text once; and its
words glued two by two are looked up in a set for :func:`splits` (about 7 µs). A text
wrapped at 40 columns, most of whose lines end with a short everyday word, costs the detector
5-6 % more for :func:`cuts` (a glued word looked up alone, about 25 µs each).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence

from attrs import frozen

from emrcomm_content.folding import fold_text, letters_of
from emrcomm_content.fuzzy import WORD_ZIPF

_L = r"[^\W\d_]"  # a letter
_BREAKS = "\n\r\v\f\u2028\u2029\x85"
# A separator between the single letters of an acronym: a dot (and a space or a hyphen after
# it: "H. I. V.", "c.-à-d."; a space before it, "H . I . V"), a hyphen, a slash, a bar or another joining
# mark, or spaces.
_SEP = r"(?:[ \t]*\.[ \t]*-?[ \t]*|[ \t]*[-‐‑_*·•/|][ \t]*|[ \t]+)"
_SPACED_DOT = re.compile(r"[ \t]\.")
_ALONE = r"(?![\w'’])"  # a letter standing alone (not "l'" or the start of a word)
_LETTERS = re.compile(rf"(?<![\w@/|]){_L}{_ALONE}(?:{_SEP}{_L}{_ALONE})+")
_JOINING = frozenset("-‐‑_*·•")
# Runs that are everyday abbreviations and no term (a.m., p.m., e.g., i.e., P.S., N.B., c.-à-d.,
# C.P.): not rewritten, so that a reminder "at 10 a.m." is read once.
_EVERYDAY = frozenset({"am", "pm", "eg", "ie", "ps", "nb", "cad", "càd", "cp"})
# A word written in syllables: three pieces or more of one to four letters joined by hyphens
# ("sy-phi-lis", "in-su-lin"), the whole hyphenated run; "follow-up", "Saint-Jean", "x-ray",
# "Ste-Anne-de-Bellevue" (a piece of five letters or more) are no syllables.
_SYLLABLES = re.compile(rf"(?<![\w‐‑-]){_L}{{1,4}}(?:[‐‑-]{_L}{{1,4}}){{2,}}(?![\w‐‑-])")
_INVERSION = re.compile(r"[‐‑-]t[‐‑-](?:il|ils|elle|elles|on)$", re.IGNORECASE)
_SYLLABLES_QUICK = re.compile(rf"[‐‑-](?<={_L}[‐‑-])(?={_L}{{1,4}}[‐‑-]{_L})")
_BREAK = re.compile(rf"(?<={_L})[-‐‑]?[ \t]*(?:\r\n|[{_BREAKS}])[ \t]*(?={_L})")
# Each quick test starts with a set of characters, which the regular-expression engine skips to.
_BREAK_QUICK = re.compile(rf"[{_BREAKS}](?:(?<={_L}[{_BREAKS}])|(?<={_L}[-‐‑ \t][{_BREAKS}])|(?<=[-‐‑ \t][ \t][{_BREAKS}]))")
_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"}
# A digit that starts a word before four letters ("1nsulin", "0besity"), not after a word, a
# number, a sum or a code ("$1month", "#1stop", "A-1bcde"): "1st", "3pm", "10am", "4x" are shorter.
# What a number before a word counts ("5days", "4ième"): the digit is a number.
_COUNTED = frozenset({
    "days", "week", "weeks", "month", "months", "year", "years", "times", "hour", "hours", "mins",
    "tabs", "pills", "doses", "units", "jours", "semaines", "heures", "fois", "ième", "ieme",
})
_NOT_BEFORE_DIGIT = r"\w.,:/$€£+#@\-"
_DIGIT_QUICK = re.compile(
    rf"[0134578](?:(?<={_L}[0134578])(?={_L})|(?<![{_NOT_BEFORE_DIGIT}][013457])(?<=[013457])(?={_L}{{4}}))")
# The second half of a Canadian postal code ("M5V 2T6", "H1V-2T6"): the first half is a letter,
# a digit and a letter, like "H1V" written for "HIV", and is left as written before it.
_POSTAL_REST = re.compile(r"[ \t\u00a0-]?\d[^\W\d_]\d(?!\w)")
_TOKEN = re.compile(r"[^\W_]+")
# A "(" for a c at the start of a word of letters ("(ancer", "(hlamydia"), not after a word or a sign.
_OPEN_PAREN = re.compile(r"(?<![\w(\[{<])\((?=[^\W\d_]{3})[^\W\d_]+(?![\w'’])")
# Characters glued to a word that are no part of it, read in one scan (about 0.7 µs a text): one or two
# digits before an acronym of three or four capitals ("2HIV", "1STI"; not after a word, a number, a
# sum or a code, _BEFORE_DIGIT: "A2HIV", "$5HST"), and a trade or service mark written out in capitals
# after a word in small letters ("OzempicTM", "CareSM", « LantusMD », « LantusMC »; ™ and ℠
# themselves are read as spaces by folding.py).
_GLUED_OFF = re.compile(r"[0-9MST](?:(?<=[0-9])[0-9]?(?=[A-Z]{3,4}(?![\w'’]))"
                        r"|(?<=[^\W\d_]{2}[a-z][MST])[CDM](?<=TM|SM|MD|MC)(?![\w'’]))")
_BEFORE_DIGIT = re.compile(rf"[{_NOT_BEFORE_DIGIT}]")
# Signs drawn like a letter: "b!opsy", "b|opsy" (read as i, and in a second form as l), "@" as a,
# "$" as s, inside a word that is not part of an address ("x@y.ca", "a.b@c"), with digits for
# letters or not ("b!0psy"); "$", "@", "|", "!" and "¡" also at its start ("$yphilis", "|nsulin", "!nsulin").
_SIGNS = {"!": "i", "¡": "i", "|": "i", "@": "a", "$": "s", "€": "e", "+": "t"}  # "€" inside a word, "+" at its start
_I_OR_L = frozenset("1!¡|")  # read as i, and in a second squeezed form as l
_I_OR_L_KIND = {"1": "1", "!": "!", "¡": "!", "|": "|"}  # a word may write i with one, l with another
_NOT_BEFORE = r"\w.@+\-$|"  # before a word of signs: a word, an address or a sum goes on
# a sign that starts a word: not after another ("!!!Reminder" is a shout, not "iiireminder")
_NOT_BEFORE_START = _NOT_BEFORE + "!¡"
_SIGN_QUICK = re.compile(
    rf"[!¡|@$€+](?:(?<={_L}[!¡|@$€])(?=[!¡|@$€]?[^\W_])|(?<=[0134578][!¡|@$€])(?=[!¡|@$€]?{_L})"
    rf"|(?<![{_NOT_BEFORE_START}][@$|!¡+])(?<=[@$|!¡+])(?={_L}{{2}}))")
_SIGN_WORD = re.compile(
    rf"(?:(?<![{_NOT_BEFORE_START}])[@$|!¡+][^\W_]+(?:[!¡|@$€]{{1,2}}[^\W_]+)*"
    rf"|(?<![{_NOT_BEFORE}])[^\W_]+(?:[!¡|@$€]{{1,2}}[^\W_]+)+)(?![\w@]|\.\w)")
# Characters other than ASCII, word characters and spaces between two letters (checked to be
# pictographs by _pictographs).
# A "!" after three letters, before a letter and, further in the word, a sign or a digit.
_GLUED_QUICK = re.compile(rf"!(?<={_L}{{3}}!)(?={_L}[^\W_]*[!¡|@$0134578])")
_BETWEEN = re.compile(rf"(?<={_L})[^\w\s\x00-\x7f]+(?={_L})")
_BETWEEN_QUICK = re.compile(rf"[^\w\s\x00-\x7f](?<={_L}[^\w\s\x00-\x7f])")
_APOSTROPHES = frozenset("’‘ʼ`´")
# A line break or an emoji between two whole words glues them ("call⏎us" reads "callus", "visit🙂is"
# reads "visitis"); where one side is one of these short everyday words, the two sides are words
# and not the pieces of one, and nothing is joined.
_FUNCTION_WORDS = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "from", "with", "and", "or", "but", "is",
    "are", "was", "be", "it", "its", "as", "if", "so", "no", "not", "this", "that", "you", "your", "we",
    "us", "our", "me", "my", "i", "he", "she", "his", "her", "they", "them", "their", "do", "can", "will",
    "à", "au", "aux", "de", "du", "des", "le", "la", "les", "l", "un", "une", "et", "ou", "en", "est",
    "sont", "sur", "par", "pour", "avec", "vous", "votre", "vos", "nous", "notre", "nos", "je", "tu", "il",
    "elle", "ce", "cet", "cette", "ces", "se", "sa", "son", "ses", "mon", "ma", "mes", "ton", "ta",
    "tes", "leur", "leurs", "y", "dans", "ne", "pas", "qui", "que",
})
# Two dotted capitals then a capitalised word are initials before a surname, not an acronym.
_SURNAME = re.compile(r"\.?[ \t]+[A-Z\u00c0-\u00de][a-z\u00df-\u00ff'’-]")
_WORD_BEFORE = re.compile(r"[^\W\d_]+$")
_WORD_AFTER = re.compile(r"[^\W\d_]+")


@frozen
class Squeezed:
    """One squeezed form of a text: ``text``, with ``index[i]`` the position in the original of
    its character ``i``, and ``touched``: the original spans of the words a rewrite made."""

    text: str
    index: Sequence[int]
    touched: tuple[tuple[int, int], ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of ``text[start:end]``."""
        return self.index[start], self.index[end - 1] + 1

    def touches(self, span: tuple[int, int]) -> bool:
        """Whether the original ``span`` overlaps a word that a rewrite made."""
        return self._touched.overlap(span)

    @functools.cached_property
    def _touched(self) -> Spans:
        return Spans(self.touched)


class Spans:
    """Spans asked whether they overlap another by a bisection, so that a text of thousands of
    rewritten words costs no more than their number (comparing each with each took seconds)."""

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        self._spans = sorted(spans)
        self._reach = list(itertools.accumulate((hi for _, hi in self._spans), max))  # furthest end so far

    def overlap(self, span: tuple[int, int]) -> bool:
        """Whether ``span`` overlaps one of the spans."""
        k = bisect.bisect_left(self._spans, (span[1],))  # the spans that start before it ends
        return k > 0 and self._reach[k - 1] > span[0]


@frozen
class Cut:
    """A word that may be cut by a line break after its first letters, which are a short everyday
    word ("in⏎sulin"): ``span`` in the original, the ``word`` glued, the ``piece`` after the break."""

    span: tuple[int, int]
    word: str
    piece: str


@functools.lru_cache(maxsize=1024)
def everyday(word: str) -> bool:
    """Whether ``word`` is a word of everyday English or French (wordfreq, loaded on the first
    question: only a cut word that names something clinical asks it)."""
    from emrcomm_content import sources

    return sources.zipf(fold_text(word)) >= WORD_ZIPF


def _pictographs(run: str) -> bool:
    """Whether ``run`` (the characters between two letters) is pictographs and what joins them."""
    seen = False
    for ch in run:
        if ch in _APOSTROPHES:
            return False
        category = unicodedata.category(ch)
        if category in ("So", "Sk"):
            seen = True
        elif category not in ("Cf", "Mn", "Me"):
            return False
    return seen


def _two_words(text: str, lo: int, hi: int) -> bool:
    """Whether the letters on either side of ``text[lo:hi]`` are two words, one of them a short
    everyday word ("call⏎us", "votre🙂dossier"), or the right one starts with a capital after a
    small letter ("Starting⏎April", which glued would end in the drug stem -pril)."""
    before = _WORD_BEFORE.search(text, max(0, lo - 12), lo)
    after = _WORD_AFTER.match(text, hi)
    if text[lo - 1].islower() and text[hi].isupper():
        return True  # "Starting⏎April": a capital starts a word
    return any(w is not None and w.group().lower() in _FUNCTION_WORDS for w in (before, after))


def _letter_runs(text: str, drop: set[int], touched: list[tuple[int, int]]) -> None:
    for found in _LETTERS.finditer(text):
        run = found.group()
        start, end = found.span()
        if len(run) > 2 and run[-1] in "tT" and run[-2] in "-‐‑" and text.startswith(("-il", "-elle", "-on"), end):
            run, end = run[:-2], end - 2  # the "t" of « y a-t-il » is no letter of an acronym
        letters = [i for i, ch in enumerate(run) if ch.isalpha()]
        dotted = "." in run
        # two letters joined by a slash are a short form ("N/A", "c/o", "w/o", "y/o"), and a dot
        # after a space may end a sentence: three letters or more, as with spaces alone
        loose = "/" in run or "|" in run or (dotted and _SPACED_DOT.search(run) is not None)
        if len(letters) < (2 if (dotted or not _JOINING.isdisjoint(run)) and not loose else 3):
            continue
        if "".join(run[i] for i in letters).lower() in _EVERYDAY:
            continue
        if dotted and len(letters) == 2 and run[letters[0]].isupper() and run[letters[1]].isupper() \
                and _SURNAME.match(text, end):
            continue  # a person's initials: "signed by T.B. Jones", "contact A.A. Singh", « Dre M.-S. Roy »
        kept = set(letters)  # a run may be the whole text ("H.I.V. H.I.V. …"): no list look-ups
        drop.update(start + i for i in range(len(run)) if i not in kept)
        if dotted and end < len(text) and text[end] == ".":
            drop.add(end)
        touched.append((start, end))


def _syllables(text: str, drop: set[int], touched: list[tuple[int, int]]) -> None:
    for found in _SYLLABLES.finditer(text):
        run, start = found.group(), found.start()
        if all(len(piece) == 1 for piece in re.split("[‐‑-]", run)):
            continue  # "H-I-V": a run of single letters, read (or left) by _letter_runs
        if _INVERSION.search(run):
            continue  # « y a-t-il », « va-t-on »: a French question
        drop.update(start + i for i, ch in enumerate(run) if not ch.isalpha())
        touched.append(found.span())


def _digit_words(text: str, replace: dict[int, str], touched: list[tuple[int, int]]) -> None:
    for found in _TOKEN.finditer(text):
        word = found.group()
        if len(word) < 3 or word.isalpha() or word.isdigit():
            continue
        if not word[0].isalpha():
            _first_digit(text, found, replace, touched)
            continue
        if len(word) == 3 and (word.lower() == "a1c" or _POSTAL_REST.match(text, found.end())):
            continue  # the commonest lab code (read as written), or "M5V 2T6": half a postal code
        digits = [i for i, ch in enumerate(word) if ch.isdigit()]
        if any(word[i] not in _DIGITS for i in digits) or 2 * len(digits) > len(word) - len(digits):
            continue
        if not all(0 < i < len(word) - 1 and word[i - 1].isalpha() and word[i + 1].isalpha() for i in digits):
            continue
        start = found.start()
        for i in digits:
            letter = _DIGITS[word[i]]
            replace[start + i] = letter.upper() if word[i - 1].isupper() and word[i + 1].isupper() else letter
        touched.append(found.span())


def _first_digit(text: str, found: re.Match[str], replace: dict[int, str], touched: list[tuple[int, int]]) -> None:
    """A digit for the first letter of a word of four letters or more after it ("1nsulin",
    "0besity", "3czema"), the rest letters only: "1st", "3pm", "4x", "1B", "10am", "3K2" are not."""
    word, start = found.group(), found.start()
    rest = word[1:]
    if word[0] not in _DIGITS or len(word) < 5 or not rest.isalpha() or rest.lower() in _COUNTED:
        return
    if rest[0].isupper() and rest[1].islower():
        return  # "1Password", "7Eleven": a capitalised name
    if start and re.match(rf"[{_NOT_BEFORE_DIGIT}]", text[start - 1]):
        return
    letter = _DIGITS[word[0]]
    replace[start] = letter.upper() if word[1:3].isupper() else letter
    touched.append(found.span())


def _sign_words(text: str, replace: dict[int, str], touched: list[tuple[int, int]]) -> None:
    for found in _SIGN_WORD.finditer(text):
        word, start = found.group(), found.start()
        marks = [i for i, ch in enumerate(word) if not ch.isalpha()]
        if len(word) < 3 or 2 * len(marks) > len(word) - len(marks) or not word[-1].isalpha():
            continue
        if not (word[0].isalpha() or (word[1].isalpha() and word[0] in _SIGNS)):
            continue  # "$5", "4u@x": a sum, a word that starts with a digit
        if any(word[i] not in _SIGNS and word[i] not in _DIGITS for i in marks):
            continue  # "B2|B4": a code
        if word[0] in "|!¡" and word[1].isupper() and word[2].islower():
            continue  # "Home |About", "!Important", "¡Hola": a sign before a capitalised word
        if word[0] == "+" and not (len(word) > 4 and word[1:].isalpha() and word[1:].islower()):
            continue  # "+1 613", "+Info", "+5": a "+" for a t starts a word of small letters
        if word[0] in "!¡" and word[1:].lower() in _FUNCTION_WORDS:
            continue  # « Bravo !vous êtes inscrit »: an exclamation mark before a word
        # "!" ends a sentence and "|" parts menu items written without a space ("Thanks!See you",
        # "Home|About"): next to a short everyday word or before a capital, two words
        if any(word[i] in "!¡|" and i > 0 and _parts_two_words(text, *_sign_run(text, start + i), found.span()) for i in marks):
            continue
        for i, letter in _as_letters(word):
            replace[start + i] = letter
        touched.append(found.span())


def _open_parens(text: str, replace: dict[int, str], touched: list[tuple[int, int]]) -> None:
    """A "(" that starts a word of three letters or more and that no ")" closes on its line, read
    as c ("(ancer", "(hlamydia"); "(see below)" and "parking (lot B)" are parentheses."""
    close = line_end = -1  # the next ")" and line break, each searched once: linear in the text
    for found in _OPEN_PAREN.finditer(text):
        start, end = found.span()
        if close < end:
            close = text.find(")", end) % (len(text) + 1)  # none: the text's end
        if line_end < end:
            line_end = text.find("\n", end) % (len(text) + 1)
        if close < line_end:
            continue
        replace[start] = "C" if found.group()[1:3].isupper() else "c"
        touched.append((start, end))


def _parts_two_words(text: str, lo: int, hi: int, word: tuple[int, int]) -> bool:
    """Whether the signs ``text[lo:hi]`` part two words (:func:`_two_words`): not where a letter
    on one side stands alone and is no word, and two letters or more stand on the other ("c|in!c":
    "c" is a piece of a word; "Y|N" is two letters), nor where the letters on one side have
    another sign of the ``word`` beyond them ("!nsu|in": "nsu" and "in" are pieces of one word),
    nor where a digit of the ``word`` for a letter touches them ("syph1|is": "is" is no word there)."""
    if (lo > word[0] and text[lo - 1] in _DIGITS) or (hi < word[1] and text[hi] in _DIGITS):
        return False
    before = _WORD_BEFORE.search(text, max(0, lo - 12), lo)
    after = _WORD_AFTER.match(text, hi)
    if before is None or after is None or (text[lo - 1].islower() and text[hi].isupper()):
        return _two_words(text, lo, hi)
    for one, other in ((before.group(), after.group()), (after.group(), before.group())):
        if len(one) == 1 and one.lower() not in _FUNCTION_WORDS and len(other) > 1:
            return False
    if (before.start() > word[0] and text[before.start() - 1] in _SIGNS) or (after.end() < word[1] and text[after.end()] in _SIGNS):
        return False
    return _two_words(text, lo, hi)


def _sign_run(text: str, i: int) -> tuple[int, int]:
    """The span of the run of signs around ``text[i]`` ("Thanks!!See")."""
    lo, hi = i, i + 1
    while lo > 0 and text[lo - 1] in _SIGNS:
        lo -= 1
    while hi < len(text) and text[hi] in _SIGNS:
        hi += 1
    return lo, hi


def _as_letters(word: str) -> Iterator[tuple[int, str]]:
    """Each sign or digit of ``word`` with the letter it stands for: a capital between capitals
    ("H!V", "B!0PSY"), or before two at the start of the word ("$TI"). One pass: a word of
    thousands of signs costs no more than its length."""
    letters = [i for i, ch in enumerate(word) if ch.isalpha()]
    after = 0  # letters[after] is the first letter after the character at hand
    for i, ch in enumerate(word):
        if ch.isalpha():
            after += 1
            continue
        near = letters[after - 1 : after + 1] if after else letters[:2]
        letter = _SIGNS.get(ch) or _DIGITS[ch]
        yield i, letter.upper() if all(word[j].isupper() for j in near) else letter


def _i_or_l_forms(text: str, replace: dict[int, str], touched: list[tuple[int, int]]) -> list[dict[int, str]]:
    """``replace`` with every 1, "!" and "|" read as i, then as l; and where one word writes two of
    them ("c|in!c"), every mix of the three (each read as i or as l throughout): at most eight."""
    at = sorted(i for i in replace if text[i] in _I_OR_L)
    kinds = sorted({_I_OR_L_KIND[text[i]] for i in at})
    if not kinds:
        return [replace]
    mixed = len(kinds) > 1 and any(
        len({_I_OR_L_KIND[text[i]] for i in at[bisect.bisect_left(at, lo) : bisect.bisect_left(at, hi)]}) > 1
        for lo, hi in touched)
    choices = [(False,) * len(kinds), (True,) * len(kinds)]
    if mixed:
        choices += [c for c in itertools.product((False, True), repeat=len(kinds)) if c not in choices]
    forms = []
    for choice in choices:
        as_l = {kind for kind, el in zip(kinds, choice) if el}
        forms.append({i: ("L" if c == "I" else "l") if text[i] in _I_OR_L and _I_OR_L_KIND[text[i]] in as_l else c
                      for i, c in replace.items()})
    return forms


def readings(text: str) -> list[Squeezed]:
    """The squeezed forms of ``text``: none when nothing in it is rewritten (nearly every text);
    two when a digit 1, a "!" or a "|" was read as a letter (once as i, once as l)."""
    text = letters_of(text)  # "🇭 🇮 🇻", "⒣.⒤.⒱": enclosed letters are letters, one for one
    drop: set[int] = set()
    touched: list[tuple[int, int]] = []
    _letter_runs(text, drop, touched)
    if _SYLLABLES_QUICK.search(text):
        _syllables(text, drop, touched)
    for found in _GLUED_OFF.finditer(text):  # "2HIV": a number glued to an acronym; "OzempicTM": a mark
        start, end = found.span()
        if found.group()[0].isdigit():
            if start and _BEFORE_DIGIT.match(text, start - 1):
                continue  # "A2HIV", "$5HST", "#1STI": a code or a sum
            touched.append((start, end + 1))
        else:
            touched.append((start, end))
        drop.update(range(start, end))
    joins: list[tuple[int, int]] = []
    if _BREAK_QUICK.search(text):
        joins += [m.span() for m in _BREAK.finditer(text) if m.group()[0] in "-‐‑" or not _two_words(text, *m.span())]
    if not text.isascii() and _BETWEEN_QUICK.search(text):
        joins += [m.span() for m in _BETWEEN.finditer(text) if _pictographs(m.group()) and not _two_words(text, *m.span())]
    for lo, hi in joins:
        drop.update(range(lo, hi))
        touched.append((lo - 1, hi + 1))
    replace: dict[int, str] = {}
    if _DIGIT_QUICK.search(text):
        _digit_words(text, replace, touched)
    if _SIGN_QUICK.search(text):
        _sign_words(text, replace, touched)
    if "(" in text:
        _open_parens(text, replace, touched)
    if not touched:
        return []
    touched = _widen(text, touched)
    out = []
    forms = _i_or_l_forms(text, replace, touched)
    for form in forms:
        chars: list[str] = []
        index: list[int] = []
        for i, ch in enumerate(text):
            if i in drop:
                continue
            chars.append(form.get(i, ch))
            index.append(i)
        out.append(Squeezed("".join(chars), tuple(index), tuple(touched)))
    return out


def cuts(text: str) -> list[Cut]:
    """The words of ``text`` that a line break may cut after a short everyday word ("in⏎sulin"):
    not squeezed (in a text wrapped at a width, most lines end with such a word, and reading the
    text again for each would cost a fifth more), but looked up one by one (clinical.py). The piece
    after the break starts with a small letter, has three letters or more and is no short everyday
    word itself."""
    if not _BREAK_QUICK.search(text):
        return []
    out = []
    for m in _BREAK.finditer(text):
        lo, hi = m.span()
        after = _WORD_AFTER.match(text, hi)
        if after is None or text[lo] in "-‐‑":
            continue  # a hyphen before the break: joined in the squeezed form
        piece = after.group()
        if len(piece) < 3 or not piece[0].islower() or piece in _FUNCTION_WORDS:
            continue
        before = _WORD_BEFORE.search(text, max(0, lo - 12), lo)
        if before is not None and before.group().lower() in _FUNCTION_WORDS:
            out.append(Cut((before.start(), after.end()), before.group() + piece, piece))
    return out


@frozen
class Split:
    """Two words parted by one space, hyphen or dot ("chlamy dia", "syph-ilis", "can.cer"): ``span``
    in the original, the ``word`` they make glued, and the two ``pieces``."""

    span: tuple[int, int]
    word: str
    pieces: tuple[str, str]


# The letters of a word, standing alone: no digit, sign or apostrophe glued to either side.
_PIECE = re.compile(r"(?<![\w'’@])[^\W\d_]+(?![\w'’@])")
_SPLIT_SEPARATORS = frozenset(" .-‐‑")


def splits(text: str) -> list[Split]:
    """Every two words of ``text`` parted by one space, hyphen or dot, glued ("chlamy dia" gives
    "chlamydia"): three letters or more, at least one piece of two letters or more. Not squeezed
    (every pair of words would be a rewrite): the detector looks each glued word up alone, first in
    the lexicons' keys (one look-up in a hash table each), and counts it only where its pieces are
    not both words of their own (clinical.py)."""
    out = []
    last: re.Match[str] | None = None
    for found in _PIECE.finditer(text):
        if last is not None and found.start() == last.end() + 1 and text[last.end()] in _SPLIT_SEPARATORS:
            one, two = last.group(), found.group()
            if len(one) + len(two) >= 3 and (len(one) > 1 or len(two) > 1):
                out.append(Split((last.start(), found.end()), one + two, (one, two)))
        last = found
    return out


def glued(text: str) -> list[Cut]:
    """The words of ``text`` written with signs or digits for letters and glued by a "!" to a word
    before them ("great!b!opsy"): the part after the "!" read alone, once with every 1, "!" and
    "|" as i and once as l (the whole is read "greatibiopsy", which names nothing). The word
    before has three letters or more, and the part after starts with a letter and has a sign or a
    digit of its own: "antib!ot!c" gives "otic", which names nothing either. One look-up a word."""
    if not _GLUED_QUICK.search(text):
        return []
    out = []
    for found in _SIGN_WORD.finditer(text):
        word, start = found.group(), found.start()
        cut = word.find("!")
        rest = word[cut + 1 :]
        if cut < 3 or not word[:cut].isalpha() or len(rest) < 3 or not rest[0].isalpha() or rest.isalpha():
            continue
        marks = [ch for ch in rest if not ch.isalpha()]
        if any(ch not in _SIGNS and ch not in _DIGITS for ch in marks) or 2 * len(marks) > len(rest) - len(marks):
            continue
        read = list(rest)
        for i, letter in _as_letters(rest):
            read[i] = letter
        span = (start + cut + 1, found.end())
        as_i = "".join(read)
        out.append(Cut(span, as_i, rest))
        as_l = "".join(("L" if c == "I" else "l") if rest[i] in _I_OR_L else c for i, c in enumerate(read))
        if as_l != as_i:
            out.append(Cut(span, as_l, rest))
    return out


def _widen(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each span widened to the whole words at its ends (the word a rewrite made)."""
    out = []
    for lo, hi in spans:
        lo, hi = max(lo, 0), min(hi, len(text))
        while lo > 0 and text[lo - 1].isalnum():
            lo -= 1
        while hi < len(text) and text[hi].isalnum():
            hi += 1
        out.append((lo, hi))
    return sorted(set(out))
