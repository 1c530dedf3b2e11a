"""Wording that looks clinical and is not: the names of charities, campaigns and places, a staff
member's own leave, and exams named by their administrative purpose.

:func:`spans` gives the folded spans where no term and no context pattern counts (like the
``allow`` setting, see clinical.py). A name is recognised by its capitals: "the Diabetes Resource
Centre", « la Maison du diabète », "Mental Health Week". A charity or a campaign is never about
the patient; a centre, a clinic or a building is a place, and its name says nothing about the
patient only in a message that does not address the patient ("has moved", « a déménagé »): "your
appointment at the Breast Centre" still says something.
"""

from __future__ import annotations

import re
from bisect import bisect_left

from emrcomm_content.folding import Folded

_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’.-]*"
_CONNECT = r"(?:&|and|of|for|the|on|de|du|des|la|le|et|d'|l')"
# Two or more capitalised words, maybe joined by "&", "of", « de la »…
# A name starts a word, or follows an elision (« l'Hôpital »): started from each capital of a long
# word of capitals ("HIVHIV…", 50,000 characters), the scans took minutes.
_NAME_START = r"(?<![\w.-])"
_NAME_EN = re.compile(rf"{_NAME_START}{_CAP}(?:[ \t]+(?:{_CONNECT}[ \t]+)?{_CAP})+")
# A French name starts with its capitalised head and goes on in lower case: « Centre de santé
# mentale communautaire », « Semaine de la santé mentale ». It stops at a verb or a preposition
# that starts the rest of the sentence, or after five words.
_HEAD_FR = (
    r"Commission|Conseil|Agence|Ministère|Ministere|Département|Departement|Service|Unité|Unite|"
    r"Société|Societe|Fondation|Association|Alliance|Fédération|Federation|Semaine|Mois|Journée|Journee|Marche|"
    r"Centre|Clinique|Institut|Hôpital|Hopital|Maison|Pavillon|Édifice|Edifice|Réseau|Reseau|Programme|"
    r"Regroupement|Campus|Café|Cafe|Gala|Tournoi|Défi|Defi|Souper|Brunch"
)
_STOP_FR = (
    r"a|à|au|aux|est|sont|ont|sera|seront|fait|va|vont|ouvre|ouvrira|ferme|fermera|offre|offrent|vous|nous|"
    r"sur|dans|avec|qui|que|sa|son|ses|se|part|organise|tient|accueille|demande|invite|a|déménage|démenage|"
    r"déménagé|demenage|change|changé|passe|reste|sera|était|etait"
)
_NAME_FR = re.compile(
    rf"\b(?:{_HEAD_FR})(?:(?:[ \t]+|-|['’])(?!(?:{_STOP_FR})\b)[\w'’-]+){{1,5}}"
)
# seventh round: a place noun in lower case before a capitalised name is the head of that name
# (« le pavillon Santé mentale », « la clinique Santé-Femme », « au centre Espoir-Cancer », "the clinic
# Mind & Body"): the name goes on as a French name does.
_NAME_LOW = re.compile(
    r"\b(?:pavillon|centre|clinique|polyclinique|fondation|institut|maison|hôpital|hopital|édifice|edifice|campus|"
    r"aile|building|tower|pavilion)[ \t]+(?:(?:de|du|des|de la|d'|l')[ \t]*)?"
    r"(?!(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|April|May|June|July|"
    r"August|September|October|November|December|Dr|Dre|Mr|Mrs|Ms|Mme|M)\b)"
    rf"{_CAP}(?:(?:[ \t]+(?:{_CONNECT}[ \t]+)?|-){_CAP})*"
    # one adjective of the name in lower case: « pavillon Santé mentale »
    r"(?:[ \t]+[a-zà-ÿ]+(?:ale|ales|ique|iques|aire|aires|elle|elles|ienne|iennes|ive|ives|al|aux|eux|euse))?"
)
# Heads of names that are never about the patient, and heads of names of places.
_ALWAYS = frozenset({
    "society", "foundation", "association", "alliance", "federation", "week", "month", "day", "walk", "run", "ride",
    "fund", "network", "coalition", "commission", "council", "agency", "ministry", "canada", "quebec", "ontario",
    "societe", "fondation", "semaine", "mois", "journee", "marche", "reseau", "regroupement", "conseil", "agence",
    "ministere", "coffee", "gala", "golf", "tournament", "breakfast", "brunch", "luncheon", "cafe", "tournoi", "defi",
    "souper",
})
_PLACE = frozenset({
    "centre", "center", "clinic", "institute", "hospital", "building", "tower", "pavilion", "house", "campus",
    "program", "programme", "department", "wing", "unit", "clinique", "institut", "hopital", "maison", "pavillon",
    "edifice", "departement", "aile", "unite", "service", "medicine", "practice", "gmf",
})
# Names of premises: a building, a tower is where the clinic is, even in a message to the patient
# ("your appointment at the Toronto Heart Centre building", « à l'édifice Santé-Cœur, 2e étage »); a pavilion
# is as often the name of a service ("your referral to the Kidney Care Pavilion").
_PREMISES = frozenset({"building", "tower", "campus", "edifice", "tour", "complex", "plaza"})
_WORD = re.compile(r"[a-z0-9]+")
# tenth round: a name followed by the event it holds in lower case is a charity's: "the Heart & Stroke walk",
# "the Terry Fox run", « la Société canadienne du cancer marche »
# and an event named before the cause in capitals: "the walk for Heart & Stroke", « la marche de Cœur + AVC »
_EVENT_BEFORE = re.compile(
    r"\b(?:[Ww]alk|[Rr]un|[Rr]ide|[Mm]arche|[Cc]ourse|[Dd][ée]fi|[Gg]ala|[Ss]ouper|[Tt]ournoi|[Cc]ollecte|[Ff]undraiser)"
    r"[ \t]+(?:de la |du |de l'|des |de |d'|for the |for |pour la |pour le |pour les |pour |of the |in support of )"
    rf"{_CAP}(?:[ \t]*(?:&|\+|and|et|{_CONNECT})?[ \t]*{_CAP})*"
)
_EVENT_GATE = frozenset({"walk", "run", "ride", "marche", "course", "defi", "gala", "souper", "tournoi", "collecte",
                         "fundraiser"})
_EVENT_AFTER = re.compile(
    r"[ \t]+(?:walk|run|ride|gala|telethon|marathon|fundraiser|fun run|bike ride|golf tournament|lottery|raffle|"
    r"marche|course|defi|défi|souper|tournoi|loterie|collecte)\b"
)

# A staff member's own leave for surgery ("Dr. Novak will be on leave for surgery"), and exams
# named by what they are for (a driver's medical, « l'examen de conduite de la SAAQ »).
_NEVER = re.compile(
    r"\b(?:leave|conge|arret|absent|absente|away|off)(?: de maladie| medical| de maternite)? (?:for|pour) (?:a |an |une |un |"
    r"sa |son |his |her |some )?(?:surgery|chirurgie|operation|medical reasons|raisons medicales|health reasons|"
    r"raisons de sante|minor surgery|petite chirurgie)\b"
    r"|\b(?:examens?|exams?|visite|visit|bilan|evaluation)(?: medicale?)?(?: \w+){0,2}? (?:de conduite|pour (?:le|votre) "
    r"permis(?: de conduire)?|de la saaq|saaq|d'embauche|pre ?embauche|pour l'assurance|d'assurance|"
    r"d'immigration|pour l'immigration|pour (?:votre |le |un )?dossier d'immigration)\b"
    # (but a verdict on it is the patient's: « tout est correct dans ton bilan annuel », "all good in your annual exam")
    r"|(?<!dans ton )(?<!dans votre )(?<!dans ta )(?<!in your )(?<!on your )(?<!from your )\b(?:examens?|exams?|visite|bilan)"
    r"(?: medicale?)? (?:annuel|annuelle|periodique|de routine)\b"
    r"|\b(?:driver'?s?|driving|pre ?employment|insurance|immigration|saaq|school|camp|sports?|annual|yearly|periodic|"
    r"routine) (?:medicals?|physicals?|"
    r"exams?|examinations?|check ?ups?|health exams?|medical exams?)\b"
    # staff training: "our nurse is at a training on diabetes care", « en formation sur les soins du diabète »
    r"|\b(?:training|trainings|formation|conference|congres|colloque|seminar|symposium)(?: \w+)? (?:on|about|sur|en|in)"
    r"(?: \w+){1,5}"
    # a staff member's own recovery: "Dr. Roberts is recovering from surgery"
    r"|\b(?:dr\.?|dre|doctor|docteure?|nurse|infirmiere|infirmier|our \w+|notre \w+) [a-z'-]+ (?:is |will be |est |"
    r"sera )?(?:recovering|se remet|en convalescence|off|away|absent|absente)(?: \w+){0,2} (?:from|after|d'une|de sa|"
    r"de son|apres|suite a une?) (?:a |an |une |sa |son |his |her )?(?:surgery|chirurgie|operation|illness|maladie|"
    r"injury|blessure)\b"
    # eleventh round: the clinic's machines with a human illness ("our network is having a seizure", « notre serveur
    # a attrapé un virus », "the coffee machine is in critical condition")
    r"|\b(?:our|the|notre|le|la|cette|this) (?:new |old |nouveau |nouvelle |vieux |vieille )?(?:network|server|computer|"
    r"printer|internet|wi ?fi|website|coffee machine|reseau|serveur|ordinateur|imprimante|logiciel|site web|"
    r"machine a cafe|telecopieur) (?:is having|has|had|got|caught|is in|a|a eu|a attrape|fait|faisait|est en|est dans le) "
    r"(?:a |an |une |un |la |le )?(?:seizure|heart attack|meltdown|breakdown|virus|crise|fievre|critical condition|"
    r"etat critique|coma|the flu|la grippe|burn ?out)\b"
    # ninth round: Quebec French « pus » for « plus » (« y'a pus d'essence », « j'ai pus de formulaires »); the noun
    # comes after an article (« du pus », « pas de pus »)
    r"|(?<!\bdu )(?<!\bde )(?<!\ble )(?<!\bdes )(?<!\bd')(?<!\bsans )(?<!\bavec )\bpus (?:de|d'|rien|capable|"
    r"besoin|jamais|personne|le temps)\b"
)


# A name before "parking", "Street"… starts a word and has eight capitalised words at most: many
# capitalised words ("H.I.V. H.I.V. …") were scanned from each to their end (50,000 characters: minutes).
# The logistics of a department named with capitals: "the Cancer Care parking lot", « le stationnement de
# l'Oncologie » (a place, when the message does not address the patient).
_LOGISTICS = re.compile(
    rf"{_NAME_START}{_CAP}(?:[ \t]+{_CAP}){{0,7}}[ \t]+(?:parking(?: lot)?|entrance|door|wing|office|building|elevators?|lot|desk|"
    r"cafeteria|waiting room|reception)\b"
    rf"|\b(?:stationnement|entrée|entree|porte|aile|bureau|édifice|edifice|ascenseur|cafétéria|cafeteria|accueil) "
    rf"(?:de l'|du |de la |des |d')(?:{_CAP})(?:[ \t]+{_CAP})*"
)
# A street is a place whatever its name says: "55 Cancer Centre Rd", "Hospital Street", « rue du
# Sanatorium », « boulevard de l'Hôpital ».
_STREET = re.compile(
    rf"{_NAME_START}{_CAP}(?:[ \t]+{_CAP}){{0,7}}[ \t]+(?:Road|Rd|Street|St|Avenue|Ave|Boulevard|Blvd|Drive|Lane|Way|Crescent|Court|"
    r"Parkway|Highway|Hwy)\b\.?"
    rf"|\b(?:rue|avenue|av\.|boulevard|boul\.|chemin|ch\.|route|rang|montée|montee|côte|cote|place)[ \t]+"
    rf"(?:du |de la |des |de l'|de l’|de |d'|d’)?{_CAP}(?:[ \t-]+(?:{_CONNECT}[ \t-]+)?{_CAP})*"
)
# A department named by what it does, as a place: "the X-ray clinic beside us", « la radiologie
# au sous-sol », in a message that does not address the patient.
_DEPARTMENT = re.compile(
    r"\b(?:x ray|xray|radiology|imaging|ultrasound|mammography|lab|blood collection|physio|physiotherapy|"
    r"radiologie|imagerie|echographie|mammographie|laboratoire|labo|prelevements|physiotherapie) "
    r"(?:clinic|department|centre|center|office|service|unit|place|clinique|departement|service|bureau)\b"
    r"|\b(?:clinique|departement|service|centre) (?:de |d')(?:radiologie|imagerie|echographie|mammographie|"
    r"prelevements|physiotherapie)\b"
)


# Words one of which each expression above needs: the expression runs only on a text that has one.
_NEVER_GATE = frozenset({
    "leave", "conge", "absent", "absente", "away", "off", "examen", "examens", "exam", "exams", "visite", "visit",
    "bilan", "evaluation", "medical", "medicals", "physical", "physicals", "checkup", "check", "training",
    "trainings", "formation", "conference", "congres", "colloque", "seminar", "symposium", "recovering", "remet",
    "convalescence", "arret", "pus", "network", "server", "computer", "printer", "internet", "wifi", "fi", "website",
    "machine", "reseau", "serveur", "ordinateur", "imprimante", "logiciel", "web", "telecopieur",
})
_DEPARTMENT_GATE = frozenset({
    "ray", "xray", "radiology", "imaging", "ultrasound", "mammography", "lab", "collection", "physio",
    "physiotherapy", "radiologie", "imagerie", "echographie", "mammographie", "laboratoire", "labo",
    "prelevements", "physiotherapie",
})
_YOU = frozenset({"you", "your", "yours", "vous", "votre", "vos", "tu", "ton", "ta", "tes", "te", "t"})


def spans(folded: Folded, words: frozenset[str] | set[str] | None = None) -> list[tuple[int, int]]:
    """Folded spans of names and administrative wording (see the module docstring). ``words``:
    the words of the folded text, when the caller has them already."""
    wording, names = read(folded, words)
    return wording + names


def read(folded: Folded, words: frozenset[str] | set[str] | None = None
         ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """:func:`spans` in two lists: the administrative wording (a leave, an exam named by its purpose),
    then the names (of charities, places, streets, departments), whose words the uncertainty score
    does not read either."""
    if words is None:
        words = set(_WORD.findall(folded.text))
    wording = [m.span() for m in _NEVER.finditer(folded.text)] if not _NEVER_GATE.isdisjoint(words) else []
    out: list[tuple[int, int]] = []
    addressed = not _YOU.isdisjoint(words)
    if not addressed and not _DEPARTMENT_GATE.isdisjoint(words):
        out += [m.span() for m in _DEPARTMENT.finditer(folded.text)]
    original = folded.original
    if not any(c.isupper() for c in original):
        return wording, out
    if not _EVENT_GATE.isdisjoint(words):
        out += [_folded_span(folded, m.span()) for m in _EVENT_BEFORE.finditer(original)]
    out += [_folded_span(folded, m.span()) for m in _STREET.finditer(original)]
    if not addressed:
        out += [_folded_span(folded, m.span()) for m in _LOGISTICS.finditer(original)]
    for m in (*_NAME_EN.finditer(original), *_NAME_FR.finditer(original), *_NAME_LOW.finditer(original)):
        name = set(_WORD.findall(Folded.of(m.group()).text))
        if name & (_ALWAYS | _PREMISES) or _EVENT_AFTER.match(original, m.end()):
            pass
        elif name & _PLACE:
            if addressed:
                continue
        else:
            continue
        out.append(_folded_span(folded, m.span()))
    return wording, out


def _folded_span(folded: Folded, span: tuple[int, int]) -> tuple[int, int]:
    """The folded span of an original span (the index never decreases)."""
    return bisect_left(folded.index, span[0]), bisect_left(folded.index, span[1])
