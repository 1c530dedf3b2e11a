"""Term lists (a :class:`Lexicon` of ``(term, kind)`` pairs) compiled into one Aho-Corasick matcher.

A term matches case- and accent-insensitively on word boundaries, and may take a plural ``s``.
A term written with a capital letter (``ASA``, ``INR``, ``PrEP``) matches only in that exact case,
so that abbreviations do not fire inside ordinary words or on lower-case chat; an all-caps term
does not match in a text written mostly in capitals ("HI ITS KATE"), where case says nothing.
The lexicons a clinic can name are in :data:`LEXICONS`: the project's own lists ("core") and
those derived from packaged drug and diagnosis lists ("drugs", "icd10cm", see sources.py).
Matchers are immutable; the big one is compiled once and cached on disk (cache.py).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

import ahocorasick
from attrs import frozen

from emrcomm_content.folding import Folded, fold_text, plain

MIN_PLURAL_LENGTH = 4
SHOUTED = 0.6  # share of capitals above which a text is "shouted" and capitals mean nothing


def shouted(text: str) -> bool:
    """Mostly capitals ("HI ITS KATE"): an all-caps abbreviation there may be an ordinary word."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 12 and sum(c.isupper() for c in letters) >= SHOUTED * len(letters)


@frozen(cache_hash=True)
class Lexicon:
    """A named list of terms, each with the kind of thing it names (``medication``, ``condition``…)."""

    name: str
    entries: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, name: str, *groups: tuple[str, Iterable[str]]) -> Lexicon:
        """``Lexicon.of("core", ("medication", ["metformin", ...]), ...)``."""
        return cls(name, tuple((term, kind) for kind, terms in groups for term in terms))


@frozen
class Match:
    """One term found: its span in the folded text, in the original text, and what it is."""

    folded: tuple[int, int]
    span: tuple[int, int]
    term: str
    kind: str
    lexicon: str


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# An entry is a plain tuple (it pickles fast into the lexicon cache):
# (term, kind, lexicon, exact_case, plural), where exact_case is the accent-stripped original
# spelling when the term has a capital (it must match in that case), and plural says that a
# final "s" may follow.
_Entry = tuple[str, str, str, "str | None", bool]


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class Matcher:
    """An immutable matcher over one or more lexicons. Build with :func:`compile_lexicons`.

    Pickles compactly: the automaton stores integers, the entries are a list of tuples.
    """

    def __init__(self, lexicons: tuple[Lexicon, ...]) -> None:
        by_key: dict[str, list[_Entry]] = {}
        for lexicon in lexicons:
            for term, kind in lexicon.entries:
                key = fold_text(term).strip()
                if not key:
                    continue
                has_capital = any(c.isupper() for c in term)
                entry: _Entry = (
                    term,
                    kind,
                    lexicon.name,
                    _strip_accents(term) if has_capital else None,
                    not has_capital and len(key) >= MIN_PLURAL_LENGTH and key[-1].isalpha(),
                )
                by_key.setdefault(key, []).append(entry)
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        self._entries: list[tuple[int, tuple[_Entry, ...]]] = []
        for key, entries in by_key.items():
            self._automaton.add_word(key, len(self._entries))
            self._entries.append((len(key), tuple(entries)))
        self.size = len(by_key)
        if by_key:
            self._automaton.make_automaton()

    def __contains__(self, key: str) -> bool:
        """Whether ``key`` (folded) is one of the terms."""
        return self.size > 0 and self._automaton.exists(key)

    def words(self) -> frozenset[str]:
        """Every folded term of one word (a set: a look-up costs a tenth of the automaton's)."""
        return frozenset(key for key in self._automaton if " " not in key) if self.size else frozenset()

    def terms(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Every folded term with the ``(kind, lexicon)`` of each of its entries (for tests and tools)."""
        return {key: tuple((e[1], e[2]) for e in self._entries[i][1]) for key, i in self._automaton.items()}

    def find(self, folded: Folded) -> list[Match]:
        """Every match on word boundaries; where matches overlap, the longest wins."""
        if not self.size:
            return []
        text = folded.text
        entries_at = self._entries
        caps_mean_nothing: bool | None = None
        found: list[Match] = []
        for last, index in self._automaton.iter(text):
            length, entries = entries_at[index]
            start, end = last + 1 - length, last + 1
            if start > 0 and _is_word_char(text[start - 1]):
                continue
            kinds: set[str] = set()
            for term, kind, lexicon, exact_case, plural in entries:
                if kind in kinds:
                    continue
                stop = end
                if plural and stop < len(text) and text[stop] == "s":
                    stop += 1
                if stop < len(text) and _is_word_char(text[stop]):
                    continue
                span = folded.span(start, stop)
                if exact_case is not None:
                    if exact_case.isupper():
                        if caps_mean_nothing is None:
                            caps_mean_nothing = shouted(plain(folded.original))  # small capitals too
                        if caps_mean_nothing:
                            continue
                    written = _strip_accents(plain(folded.original[span[0] : span[1]]))
                    if " ".join(written.replace("-", " ").split()) != " ".join(exact_case.replace("-", " ").split()):
                        continue
                kinds.add(kind)
                found.append(Match((start, stop), span, term, kind, lexicon))
        return longest(found)


def longest(matches: list[Match]) -> list[Match]:
    """Drop every match that lies inside a longer one; keep text order.

    Matches of the same stretch of text with different kinds are all kept ("rectum" is a part
    of the body in one list and a condition in another).
    """
    ordered = sorted(matches, key=lambda m: (m.folded[0], -m.folded[1]))
    kept: list[Match] = []
    for m in ordered:
        if kept and m.folded[1] <= kept[-1].folded[1] and m.folded != kept[-1].folded:
            continue
        if kept and m.folded == kept[-1].folded and any(k.folded == m.folded and k.kind == m.kind for k in kept[-4:]):
            continue
        kept.append(m)
    return kept


@lru_cache(maxsize=16)
def compile_lexicons(lexicons: tuple[Lexicon, ...]) -> Matcher:
    """The matcher for these lexicons, built once per process (small lists: the clinic's terms)."""
    return Matcher(lexicons)


def _core() -> tuple[Lexicon, ...]:
    from emrcomm_content import terms

    return (terms.CLINICAL_EN, terms.CLINICAL_FR)


def _drugs() -> tuple[Lexicon, ...]:
    from emrcomm_content import sources

    return (sources.drug_lexicon(),)


def _icd10cm() -> tuple[Lexicon, ...]:
    from emrcomm_content import sources

    return (sources.icd_lexicon(),)


# Lexicons a clinic may name in the ``lexicons`` setting (all by default). A loader returns the
# lexicons to compile; the packaged ones are slow to derive (seconds), so the compiled result is
# cached on disk (see cache.py) and a loader runs only when that cache is missing or stale.
LEXICONS: Mapping[str, Callable[[], tuple[Lexicon, ...]]] = {
    "core": _core,
    "drugs": _drugs,
    "icd10cm": _icd10cm,
}


def load_lexicons(names: tuple[str, ...]) -> tuple[Lexicon, ...]:
    """The lexicons registered under ``names``, in that order (KeyError for an unknown name)."""
    out: list[Lexicon] = []
    for name in names:
        out.extend(LEXICONS[name]())
    return tuple(out)
