"""Triage keywords for a patient's reply: a fixed, bilingual vocabulary, so that staff can sort
the practice inbox without the inbox keeping the patient's words in clear.
"""

from __future__ import annotations

import re
import unicodedata

# keyword -> stems that raise it (folded: lower case, no accents). A stem matches at the start
# of a word: "medic" finds "medication", "médicament".
VOCABULARY: dict[str, tuple[str, ...]] = {
    "urgent": ("urgent", "emergenc", "urgence", "chest pain", "douleur thoracique", "bleeding", "saignement",
               "suicid", "can't breathe", "cannot breathe", "short of breath", "essouffl", "overdose", "surdose",
               "allergic reaction", "reaction allergique"),
    "medication": ("medic", "prescri", "ordonnance", "refill", "renouvel", "dose", "pill", "pilule",
                   "comprime", "pharmac", "side effect", "effet secondaire", "effets secondaires"),
    "appointment": ("appointment", "rendez-vous", "rendez vous", "rdv", "reschedul", "cancel", "annul",
                    "book", "visit", "visite"),
    "results": ("result", "resultat", "test", "lab", "analyse", "bloodwork", "prise de sang", "report",
                "rapport", "biopsy", "biopsie", "scan", "x-ray", "radiograph"),
    "billing": ("invoice", "bill", "payment", "pay ", "facture", "paiement", "receipt", "recu", "insurance",
                "assurance"),
    "question": ("?",),
}
URGENT = "urgent"


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


_PATTERNS = {
    keyword: re.compile("|".join(re.escape(s) if s == "?" else r"(?<!\w)" + re.escape(s) for s in stems))
    for keyword, stems in VOCABULARY.items()
}


def keywords(text: str) -> tuple[str, ...]:
    """The vocabulary's keywords found in ``text``, in vocabulary order."""
    folded = fold(text)
    return tuple(k for k, pattern in _PATTERNS.items() if pattern.search(folded))


def priority(found: tuple[str, ...]) -> str:
    """FHIR Task.priority for an item with these keywords."""
    return "urgent" if URGENT in found else "routine"
