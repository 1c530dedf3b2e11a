"""Misspelled names: one edit (a letter added, dropped, changed, or two swapped) from a name.

The names are drug names (the project's and the packaged consumer medicines) and the project's
own single-word clinical terms (tests, conditions, procedures: "ferritine" is "ferritin" with
the French final e).

A SymSpell-style deletion index: every name and every spelling of it with one letter deleted
points back to the name; a word of the text is looked up the same way (itself and its
one-letter deletions), and each candidate is confirmed by the optimal-string-alignment
distance. So "metformn", "amoxicilin" and "hydrocodene" find their drug, and the work per word
is a dozen dictionary look-ups.

The first letter must be right (people rarely misspell it, and most chance look-alikes
differ there: "ntimate" is not "stimate"). Only for long words and long, rare names (:data:`MIN_LENGTH` letters; names less common than
:data:`NAME_ZIPF`), so that short words never match. A word that is itself a real word
(wordfreq Zipf at least :data:`WORD_ZIPF` in English or French, such as "question" next to no
drug or "captain" next to "captan") is never read as a misspelling: the real words that lie one
edit from a name are found when the index is built and kept in :attr:`FuzzyIndex.real_words`,
so nothing is looked up in wordfreq at run time. The French spelling of a name (a final "e":
"aspirine", "ferritine") is always the name, real word or not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

MIN_LENGTH = 7
MEMO_SIZE = 1 << 16  # words remembered by find(): a clinic's messages reuse the same words
NAME_ZIPF = 3.0  # a name at least this common (en or fr) is an everyday word: no tolerance for it
WORD_ZIPF = 2.0  # a word of the text at least this common is a real word, not a misspelling
# (a word after a French elision counts: « d'isoniazide », « l'amoxiciline »; tenth round)
_LONG_WORD = re.compile(rf"(?:(?<=\b[dlj]')|(?<=\bqu')|(?<![\w']))[a-z]{{{MIN_LENGTH},}}(?![\w'])")


def deletions(word: str) -> Iterator[str]:
    """The word itself and each spelling of it with one letter left out."""
    yield word
    for i in range(len(word)):
        yield word[:i] + word[i + 1 :]


def one_edit(a: str, b: str) -> bool:
    """Whether two different words are one insertion, deletion, substitution or adjacent swap apart."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):  # one letter added
        return a[i:] == b[i + 1 :]
    if a[i + 1 :] == b[i + 1 :]:  # one letter changed
        return True
    return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]


class FuzzyIndex:
    """Names reachable by one edit. Immutable once built; pickled into the lexicon cache."""

    def __init__(self, names: Iterable[str] | Mapping[str, str], real_words: Iterable[str] = ()) -> None:
        """``names``: the names, or a mapping of each name to the kind of thing it names."""
        index: dict[str, list[str]] = {}
        kinds = dict(names) if isinstance(names, Mapping) else dict.fromkeys(names, "medication")
        self.kinds = {n: k for n, k in kinds.items() if len(n) >= MIN_LENGTH and n.isalpha()}
        self.names = frozenset(self.kinds)
        for name in sorted(self.names):
            for key in set(deletions(name)):
                index.setdefault(key, []).append(name)
        self._index = {k: tuple(v) for k, v in index.items()}
        # Real words one edit from a name: given, or found in wordfreq's lists at build time.
        self.real_words = frozenset(w for w in real_words if self.lookup(w, check_real=False))

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}  # the memo is not pickled

    @property
    def _lookup(self) -> Callable[[str], str | None]:
        """``lookup`` remembering its last MEMO_SIZE words (thread-safe, bounded)."""
        memo = self.__dict__.get("_memo")
        if memo is None:
            memo = self.__dict__["_memo"] = functools.lru_cache(maxsize=MEMO_SIZE)(self.lookup)
        return memo

    def lookup(self, word: str, *, check_real: bool = True) -> str | None:
        """The name one edit from ``word`` (None for a name itself, a real word, or no name)."""
        if len(word) < MIN_LENGTH or word in self.names:
            return None
        if word[-1] == "e" and word[:-1] in self.names:  # the French spelling: "aspirine", "ferritine"
            return word[:-1]
        if check_real and word in self.real_words:
            return None
        found = None
        for key in deletions(word):
            for name in self._index.get(key, ()):
                if name[0] == word[0] and one_edit(word, name) and (found is None or name < found):
                    found = name
        return found

    def find(self, text: str) -> list[tuple[tuple[int, int], str]]:
        """``(span, name)`` for each long word of the folded ``text`` that misspells a name."""
        out = []
        lookup = self._lookup
        for m in _LONG_WORD.finditer(text):
            name = lookup(m.group())
            if name:
                out.append((m.span(), name))
        return out


def real_words_near(names: Iterable[str], min_zipf: float = WORD_ZIPF) -> Iterator[str]:
    """Folded English and French words at least ``min_zipf`` common, of a length a name could be one edit from."""
    from emrcomm_content.sources import word_frequencies

    lengths = {len(n) for n in names}
    threshold = 10 ** (min_zipf - 9)
    for word, freq in word_frequencies().items():
        if freq >= threshold and word.isalpha() and (len(word) in lengths or len(word) + 1 in lengths
                                                     or len(word) - 1 in lengths):
            yield word
