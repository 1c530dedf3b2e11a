"""Clinical talk without a clinical name: the context patterns of the content detector.

Each :data:`FAMILIES` entry is one way clinic staff write about a patient's health without a
term the lexicons know ("the lump we discussed", "your numbers are 6.9", « la ligne de crise »),
in English and Quebec French (folded: lower case, no accents, hyphens read as spaces), as a few
:class:`Rule` objects. A pattern never crosses a sentence end (. ! ? ; or a line break) and
anchors on words that point at *this* patient ("your", "the ... we discussed", « votre », a part
of the body) or on wording no administrative message uses; the hard negatives it must leave alone
are in tests/test_phrasing.py.

Speed: a rule runs only on a text that has one of its *gate* words (a word every match of the
rule contains), looked up in one dictionary per text, so most texts run a handful of the rules.
tests/test_phrasing.py checks on every text the project has that the gates change nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator

from attrs import frozen

# A word of the folded text (a number may carry its decimals, a ratio or a percent sign), and
# what may stand between two words of one sentence.
_TOKEN = r"(?:\d+(?:[.,:/]\d+)*%?|[a-z0-9]+(?:'[a-z0-9]+)?'?)"
_SEP = r"[ ,:'\"()/&]+"


def _gap(most: int) -> str:
    """Up to ``most`` words between two parts of a pattern, in the same sentence."""
    return rf"(?:{_SEP}{_TOKEN}){{0,{most}}}?{_SEP}"


def _words(text: str) -> str:
    """An alternation of the ``|``-separated phrases, each on word boundaries, longest first."""
    phrases = sorted({p.strip() for p in text.split("|") if p.strip()}, key=len, reverse=True)
    broken = [p for p in phrases if p.count("(") != p.count(")")]
    if broken:  # a "|" inside a group would have split it
        raise ValueError(f"phrase with unbalanced parentheses (a '|' inside a group?): {broken[0]!r}")
    return r"(?:\b(?:" + "|".join(phrases) + r")\b)"


def _near(a: str, b: str, most: int, *, both: bool = False) -> str:
    """``a`` then ``b`` at most ``most`` words apart (either order when ``both``)."""
    forward = rf"{a}{_gap(most)}{b}"
    return rf"(?:{forward}|{b}{_gap(most)}{a})" if both else forward


# --- rules and their gates -------------------------------------------------------------------
_GATE_WORD = re.compile(r"[a-z0-9]+")
PREFIX = 4  # a gate word written "allerg*" stands for every word that starts with "alle"
NUMBER = "#"  # the gate word for "any number"


def gate_keys(gate: str) -> frozenset[str]:
    """The dictionary keys of a gate: for each ``|``-separated phrase, its longest word (every
    match of the phrase contains it); ``word*`` is a prefix, ``#`` any number."""
    keys = set()
    for entry in (e.strip() for e in gate.split("|")):
        if not entry:
            continue
        if entry == NUMBER:
            keys.add(NUMBER)
        elif entry.endswith("*"):
            if len(entry) - 1 < PREFIX:
                raise ValueError(f"gate prefix {entry!r} is shorter than {PREFIX} letters")
            keys.add(entry[:PREFIX] + "*")
        else:
            keys.add(max(_GATE_WORD.findall(entry), key=len))
    return frozenset(keys)


def text_keys(folded_text: str) -> set[str]:
    """The gate keys a text has: its words, their prefixes, and ``#`` when it has a number."""
    words = set(_GATE_WORD.findall(folded_text))
    keys = words | {w[:PREFIX] + "*" for w in words if len(w) >= PREFIX}
    if any(w[0].isdigit() for w in words):
        keys.add(NUMBER)
    return keys


class Deferred:
    """A regular expression compiled the first time it is matched. The rules and markers are
    hundreds of patterns of up to 19 KB: compiled at import they took ~0.4 s of every command's
    start, `emrcomm --help` included, and a text runs only the few its gate words open."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:  # two threads may both compile it: the same pattern either way
            self._compiled = re.compile(self.source)
        return self._compiled

    def finditer(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(text, pos, endpos)


@frozen
class Rule:
    """One regular expression and its gate (see :func:`gate_keys`)."""

    gate: frozenset[str]
    pattern: Deferred | re.Pattern[str]


def rule(gate: str, *patterns: str) -> Rule:
    return Rule(gate_keys(gate), Deferred("|".join(patterns)))


# Determiners that point at one patient's thing, in both languages.
_THE = r"(?:the|that|this|those|these|your|ur|his|her|their)"
_LE = r"(?:(?:la|le|les|ce|cette|ces|votre|vos|ton|ta|tes|du|des|de la|sa|son|ses) |l')"
_POSS = r"(?:your|ur|his|her|their|votre|vos|ton|ta|tes|sa|ses)"
_KIN_EN = "son|daughter|child|kid|baby|boy|girl|mom|mother|dad|father|husband|wife|partner|spouse|grandmother|grandfather"
_KIN_FR = "fils|fille|garcon|enfant|bebe|mere|pere|mari|femme|conjoint|conjointe|grand mere|grand pere"
# "your", "your son's", "his"
_POSS_EN = rf"(?:(?:your|ur|his|her|their)(?: (?:{_KIN_EN})'s)?)"
_POSS_FR = r"(?:votre|vos|ton|ta|tes|sa|son|ses)"

# Parts of the body and organs (a finding "on your lung", a report "sur votre rein").
BODY_WORDS = (
    "head|neck|back|lower back|chest|stomach|belly|abdomen|leg|legs|knee|knees|hip|hips|shoulder|arm|"
    "elbow|wrist|hand|foot|feet|ankle|heel|toe|finger|joint|muscle|bone|bones|rib|spine|jaw|tooth|"
    "teeth|gum|ear|ears|eardrum|eye|eyes|eyelid|throat|nose|sinus|sinuses|skin|breast|breasts|nipple|"
    "groin|pelvis|testicle|bladder|kidney|kidneys|liver|bowel|colon|rectum|heart|lung|lungs|thyroid|"
    "cheek|scalp|armpit|lip|tongue|mouth|face|forehead|brain|spleen|pancreas|gallbladder|prostate|"
    "uterus|ovary|ovaries|cervix|artery|arteries|vein|veins|lymph node|gland|glands|calf|thigh|shin|"
    "tete|cou|dos|bas du dos|poitrine|thorax|ventre|estomac|jambe|jambes|genou|genoux|hanche|epaule|"
    "coude|poignet|main|mains|pied|pieds|cheville|talon|orteil|doigt|articulation|muscle|os|cote|"
    "cotes|colonne|machoire|dent|dents|gencive|oreille|oreilles|tympan|oeil|yeux|paupiere|gorge|nez|"
    "sinus|peau|sein|seins|mamelon|aine|bassin|testicule|vessie|rein|reins|foie|intestin|intestins|"
    "colon|rectum|coeur|poumon|poumons|thyroide|joue|joues|cuir chevelu|aisselle|levre|langue|bouche|"
    "visage|front|cerveau|rate|pancreas|vesicule|prostate|uterus|ovaire|ovaires|col|artere|arteres|"
    "veine|veines|ganglion|ganglions|glande|glandes|mollet|cuisse|tibia|bras|avant bras|forearm|upper arm|"
    "retina|retine|fond d'oeil|chin|menton|stomach lining|eardrum"
)
_BODY = _words(BODY_WORDS)
# Parts of the body that, with "your" or « votre », are the patient's and nothing else: no
# "your back" (we have your back), "your hands" (wash your hands), "your arm" (a flu shot),
# "your heart", "your eyes", "your feet", "your face".
ORGAN_EN_WORDS = (
    "breast|breasts|prostate|lung|lungs|kidney|kidneys|liver|thyroid|colon|bowel|bowels|bladder|uterus|"
    "womb|cervix|ovary|ovaries|testicle|testicles|knee|knees|hip|hips|shoulder|shoulders|ankle|ankles|"
    "wrist|wrists|elbow|elbows|spine|neck|skin|ear|ears|eardrum|eardrums|calf|calves|thigh|thighs|shin|"
    "toe|toes|toenail|toenails|belly|abdomen|chest|groin|scalp|eyelid|eyelids|jaw|gums|tonsils|sinuses|"
    "leg|legs|foot|pelvis|rectum|pancreas|gallbladder|spleen|heel|heels|armpit|tendon|ligament|forearm|stomach|"
    "retina|chin|"
    "lymph nodes|glands|nipple|nipples|testicles|lower back|upper back|tailbone|collarbone|ribs"
)
ORGAN_FR_WORDS = (
    "sein|seins|prostate|poumon|poumons|rein|reins|foie|thyroide|colon|intestin|intestins|vessie|"
    "uterus|col de l'uterus|ovaire|ovaires|testicule|testicules|genou|genoux|hanche|hanches|epaule|"
    "epaules|cheville|chevilles|poignet|poignets|coude|coudes|colonne|cou|peau|oreille|oreilles|"
    "tympan|tympans|mollet|mollets|cuisse|cuisses|tibia|orteil|orteils|ongle d'orteil|ventre|abdomen|"
    "poitrine|aine|cuir chevelu|paupiere|paupieres|machoire|gencives|amygdales|sinus|jambe|jambes|"
    "pied|pieds|bassin|rectum|pancreas|vesicule|rate|talon|talons|aisselle|tendon|ligament|ganglions|"
    "mamelon|mamelons|bas du dos|coccyx|clavicule|cotes|avant bras|retine|menton"
)
_ORGAN_EN = _words(ORGAN_EN_WORDS)
_ORGAN_FR = _words(ORGAN_FR_WORDS)
# After « au », « à la », « aux »: no « au sein de » (within), « au pied de », « au dos de ».
AT_ORGAN_FR_WORDS = (
    "genou|genoux|hanche|hanches|epaule|epaules|cheville|chevilles|poignet|poignets|coude|coudes|"
    "jambe|jambes|mollet|cuisse|ventre|poitrine|oreille|oreilles|gorge|foie|rein|reins|vessie|"
    "prostate|thyroide|poumon|poumons|seins|sein|peau|tympan|talon|orteil|orteils|aine|machoire|"
    "gencive|gencives|paupiere|nuque|cou|sinus|col de l'uterus|uterus|bas du dos|colon|intestin|intestins"
)

# --- a question or an instruction about the patient's symptom ----------------------------------
SYMPTOM_WORDS = (
    "rash|cough|coughing|fever|swelling|bleeding|headache|headaches|migraine|migraines|dizziness|"
    "dizzy spells|vomiting|nausea|numbness|tingling|pain|burning|breathing|shortness of breath|"
    "fainting|fainting episodes|confusion|flare|flare up|cravings|diarrhea|diarrhoea|itch|itching|"
    "discharge|cramps|cramping|wheeze|wheezing|heartburn|palpitations|redness|red area|infection|"
    "spells|episodes|attacks|seizures|vertigo|nosebleeds|nosebleed|spotting|sore throat|bloating|"
    "trouble swallowing|difficulty swallowing|bedwetting|wetting the bed|constipation|"
    "eruption|toux|fievre|enflure|gonflement|saignement|saignements|maux de tete|mal de tete|"
    "migraine|etourdissements|vomissements|nausees|engourdissement|engourdissements|fourmillements|"
    "douleur|douleurs|brulure|brulures|respiration|essoufflement|pertes de conscience|"
    "evanouissements|confusion|poussee|envies|diarrhee|demangeaisons|ecoulement|ecoulements|crampes|"
    "palpitations|rougeur|rougeurs|infection|crises|vertiges|boutons|saignements de nez|"
    "mal de gorge|malaises|ballonnements|difficulte a avaler|mal a avaler|pipi au lit|constipation|"
    # eighth round: ringing in the ears
    "ringing|ringing in your ears|buzzing in your ears|bourdonnement|bourdonnements|acouphenes|sifflement dans l'oreille"
)
_SYMPTOM = _words(SYMPTOM_WORDS)
# Symptoms whose change over time staff ask about; "pain" alone is everyday talk ("the pain came
# back, so I'm back in bed"), so it counts only in a question or next to a part of the body.
SYMPTOM_CHANGING_WORDS = (
    "rash|cough|coughing|fever|swelling|bleeding|headache|headaches|migraine|migraines|dizziness|"
    "dizzy spells|vomiting|nausea|numbness|tingling|burning|shortness of breath|fainting|confusion|"
    "diarrhea|diarrhoea|itching|discharge|cramping|wheezing|heartburn|palpitations|redness|red area|"
    "infection|vertigo|nosebleeds|spotting|bloating|constipation|"
    "eruption|toux|fievre|enflure|gonflement|saignement|saignements|maux de tete|"
    "etourdissements|vomissements|nausees|engourdissement|engourdissements|fourmillements|"
    "brulure|brulures|essoufflement|confusion|diarrhee|demangeaisons|ecoulement|ecoulements|"
    "palpitations|rougeur|rougeurs|infection|vertiges|boutons|saignements de nez|ballonnements|constipation|"
    "ringing|bourdonnement|bourdonnements|acouphenes"
)
_SYMPTOM_CHANGING = _words(SYMPTOM_CHANGING_WORDS)
# --- a finding, referred to without its name ---------------------------------------------------
# Things that are findings whatever is said of them ("the lump", « la bosse »), and things that
# are findings only once something is said of them ("the spot we froze", not "your spot in line").
FINDING_STRONG_WORDS = (
    "lump|lumps|bump|bumps|mole|moles|shadow|shadows|lesion|lesions|nodule|nodules|cyst|cysts|"
    "swelling|blockage|narrowing|freckle|discoloration|discolouration|scarring|sore|sores|ulcer|ulcers|"
    "wart|warts|polyp|polyps|calcification|calcifications|"
    "bosse|bosses|boule|boules|grain de beaute|grains de beaute|ombre|ombres|lesion|lesions|nodule|"
    "nodules|kyste|kystes|enflure|gonflement|excroissance|retrecissement|verrue|verrues|polype|"
    "polypes|ulcere|ulceres|calcification|calcifications|grosseur|grosseurs"
)
_FINDING_STRONG = _words(FINDING_STRONG_WORDS)
FINDING_THING_WORDS = (
    "lump|lumps|bump|bumps|spot|spots|mole|moles|growth|growths|shadow|shadows|mass|masses|patch|"
    "patches|lesion|lesions|nodule|nodules|cyst|cysts|swelling|tissue|sample|samples|cells|piece|"
    "fluid|blockage|narrowing|tear|freckle|discoloration|discolouration|scarring|marks|markings|"
    "sore|sores|rash|redness|wart|polyp|polyps|stone|stones|node|nodes|plaque|irritation|damage|"
    "bosse|bosses|boule|boules|tache|taches|grain de beaute|grains de beaute|ombre|ombres|masse|"
    "masses|lesion|lesions|nodule|nodules|kyste|kystes|enflure|gonflement|morceau|cellules|"
    "liquide|prelevement|echantillon|excroissance|blocage|retrecissement|dechirure|cicatrices|"
    "plaque|plaques|rougeur|rougeurs|plaie|verrue|polype|polypes|calcul|calculs|ganglion|marque|"
    "marques|grosseur|bouton|boutons|irritation|dommages"
)
_FINDING_THING = _words(FINDING_THING_WORDS)
FINDING_VAGUE_WORDS = (
    "area|areas|region|thing|things|issue|issues|concern|concerns|problem|problems|change|changes|"
    "count|level|levels|numbers|zone|zones|chose|choses|probleme|problemes|changement|changements|"
    "inquietude|decompte|region|regions|something|quelque chose|truc|trucs"
)
_FINDING_VAGUE = _words(FINDING_VAGUE_WORDS)
REPORT_WORDS = (
    "report|reports|results|result|images|image|imaging|picture|pictures|scan|scans|biopsy|x ray|"
    "xray|ultrasound|scope|tracing|mammogram|camera test|films|"
    "rapport|rapports|resultats|resultat|imagerie|radio|radiographie|echo|echographie|examen|"
    "biopsie|trace|compte rendu|camera|images"
)
_REPORT = _words(REPORT_WORDS)
# What staff say someone did with a finding: verbs of examining (the thing is surely a finding)
# and verbs of talking (it may be a bill: "the issue you mentioned").
_EXAMINED_EN = (
    "looked at|looked into|watching|watched|following|followed|felt|removed|took out|took off|froze|"
    "biopsied|sampled|examined|saw on|saw in|monitoring|keeping an eye on|drained|burned|treated"
)
_TALKED_EN = (
    "discussed|mentioned|talked about|spoke about|raised|brought up|found|noticed|sent|pointed out|"
    "showed|worried about|concerned about|checked|saw"
)
_WHO_EN = r"(?:we|you|she|he|they|i|the doctor|the specialist|the surgeon|the lab|dr\.? \w+)(?: \w+)? "
_SAW_EN = _WHO_EN + _words(_EXAMINED_EN + "|" + _TALKED_EN)
_SAW_EN_EXAMINED = _WHO_EN + _words(_EXAMINED_EN)
_QU = (r"(?:qu'(?:on|il|elle|ils|elles|nous|vous)|que (?:le|la) (?:dre?\.?|docteure?|medecin|infirmiere|specialiste|"
       r"chirurgien|chirurgienne|radiologiste|dermatologue)(?: \w+)?) (?:vous |nous |te |lui )?"
       r"(?:a |avait |ont |avons |avez |ai |avez deja )?")
# French past participles agree: « trouvé », « trouvée », « trouvés », « trouvées ».
_AGREE = "e?s?"
_EXAMINED_FR = "|".join(w + _AGREE for w in (
    "surveille", "surveillait", "suit", "suivait", "voyait", "voit", "vu", "enleve", "retire", "preleve",
    "brule", "gele", "senti", "sentait", "regarde", "examine", "draine", "traite", "biopsie"))
_TALKED_FR = "|".join(w + _AGREE for w in (
    "trouve", "soupconnait", "craignait", "montre", "remarque", "note", "mentionne", "discute"))
_SAW_FR = (
    r"(?:dont (?:on|vous|nous|je|elle|il) (?:a|avez|avons|ai|avait|aviez|m'avez|nous avez) "
    r"(?:parle|discute|jase)"
    r"|" + _QU + _words(_EXAMINED_FR + "|" + _TALKED_FR)
    + r"|que vous (?:avez|nous avez) " + _words("mentionne|souleve|montre|signale|parle") + ")"
)
_SAW_FR_EXAMINED = _QU + _words(_EXAMINED_FR)
# A finding named by what was done to it: "the fluid drained from your knee", « le morceau prélevé ».
_TAKEN = _words(
    "taken|removed|drained|sent|tested|frozen|biopsied|excised|cut out|"
    + "|".join(w + _AGREE for w in ("preleve", "retire", "enleve", "analyse", "envoye", "brule", "gele",
                                     "draine", "excise", "pris"))
)
_AGENT_EN = (
    r"(?:we|they|she|he|you|the doctor|the specialist|the lab|the pathologist|the radiologist|"
    r"the surgeon|the dermatologist|the nurse|dr\.? \w+)"
)
_AGENT_FR = (
    r"(?:le|la) (?:medecin|docteur|docteure|dr|dre|specialiste|labo|laboratoire|pathologiste|"
    r"radiologiste|radiologue|chirurgien|chirurgienne|dermatologue|dermato|infirmiere)(?: \w+)?"
)
_WHAT = (
    rf"(?:\bwhat {_AGENT_EN} "
    + _words("found|saw|suspected|felt|removed|took out|took off|were worried about|was worried about|see|"
             "noticed|spotted|sees")
    + r"|\bwhat (?:showed|shows|came|turned) up"
    + r"|\bce qu'(?:on|il|elle|ils|elles|nous|vous) (?:vous |nous |te )?(?:a |avait |ont |avons |avez )?"
    + _words(_EXAMINED_FR + "|" + _TALKED_FR)
    + rf"|\bce que {_AGENT_FR} (?:a |avait )?" + _words(_EXAMINED_FR + "|" + _TALKED_FR)
    + r"|\bce qui (?:est |a ete )?(?:ressorti|apparu|sorti|vu|trouve|enleve|retire|preleve|remarque|note|vue)"
    + r"|\bwhat (?:was|were) (?:seen|found|removed|taken out|spotted|noticed)"
    + r"|\bsomething (?:small |minor |little |new )?(?:showed|shows) up"
    + r"|\b(?:une (?:petite |autre )?chose|quelque chose)(?: de (?:petit|nouveau))? (?:est|a) (?:ressorti|apparu|sorti)e?"
    + ")"
)
STATUS_WORDS = (
    "benign|harmless|cancerous|precancerous|malignant|nothing serious|nothing bad|nothing worrying|"
    "nothing concerning|nothing of concern|nothing to worry about|nothing to be worried about|"
    "nothing suspicious|not suspicious|not a worry|not a concern|no concern|no concerns|"
    "no sign|no signs|not serious|not dangerous|not cancer|not worrying|not what we|stable|unchanged|"
    "not changed|has not changed|hasn't changed|has not grown|hasn't grown|gotten bigger|grown|"
    "is gone|has gone|went away|gone away|disappeared|same size|same as before|the same as last|"
    "got bigger|bigger|smaller|getting smaller|shrunk|shrinking|fading|not clear enough|"
    "came back clear|was clear|were clear|is clear|all clear|all normal|normal|abnormal|reassuring|"
    "nothing has changed|nothing changed|nothing's changed|rien n'a change|rien n'a bouge|"
    "benin|benigne|benins|benignes|sans danger|cancereux|cancereuse|precancereux|precancereuse|"
    "maligne|rien de grave|rien de mauvais|rien d'inquietant|rien d'anormal|rien a signaler|"
    "rien de suspect|pas suspect|pas suspecte|pas d'inquietude|pas inquietant|pas inquietante|"
    "pas grave|pas dangereux|pas dangereuse|pas ce qu'on craignait|aucun signe|stable|stables|"
    "pas change|n'a pas change|n'ont pas change|n'a pas bouge|n'a pas grossi|a grossi|grossi|"
    "diminue|diminuee|diminues|disparu|disparue|disparus|est parti|est partie|sont parties|"
    "sont partis|meme taille|plus petit|plus petite|plus petits|"
    "plus gros|plus grosse|rapetisse|pali|palit|pas assez claire|pas assez clair|normale|"
    "normales|normaux|anormal|anormale|rassurant|rassurante|rassurants"
)
_STATUS = (
    "(?:" + _words(STATUS_WORDS)
    # no change of what a report shows, not of an appointment
    + r"|\b(?:no|sees no|see no) changes?\b(?! (?:to|in) (?:your|the) (?:appointment|schedule|time|booking|hours|fees?))"
    + r"|\b(?:aucun|pas de) changement\b(?! (?:a|de|pour) (?:votre|l'|la|le) (?:rdv|rendez|horaire|heure)))"
)
# Verdicts no administrative message gives: they may stand further from the report they qualify.
_STATUS_STRONG = _words(
    "benign|harmless|cancerous|precancerous|malignant|not cancer|old and stable|stable|unchanged|"
    "benin|benigne|benins|benignes|cancereux|cancereuse|precancereux|precancereuse|maligne|inchange|"
    "inchangee|inchanges|ancien et stable|stables"
)
# Said of a thing on the body only (of a report they may be about anything: "better results").
_STATUS_BODY = (
    "(?:" + _words(STATUS_WORDS + "|healthy|healing|better|worse|same as before|"
                   "sain|saine|guerit|mieux|pire|pareil|pareille|comme avant")
    + r"|\b(?:needs?|doesn't need|does not need) (?:an operation|surgery|to be removed|removing|treatment)\b"
    + r"|\bbesoin d'etre (?:operee?s?|enlevee?s?|traitee?s?)\b)"
)
CAME_BACK_WORDS = (
    "came back clear|came back normal|came back fine|came back good|came back ok|came back okay|"
    "came back negative|came back positive|came back abnormal|came back high|came back low|"
    "came back elevated|came back borderline|"
    "revenu correct|revenue correcte|revenus corrects|revenu normal|revenue normale|revenus normaux|"
    "revenu beau|revenue belle|revenu bon|revenue bonne|revenu clair|revenu negatif|revenue negative|"
    "revenu positif|revenue positive|est revenu correct|tout est revenu|revenus beaux|revenues belles"
)
_CAME_BACK = _words(CAME_BACK_WORDS)
REPORT_EN_WORDS = (
    "report|reports|results|result|images|image|imaging|picture|pictures|scan|scans|biopsy|x ray|"
    "xray|ultrasound|scope|tracing|mammogram|camera test|swab|culture|sample|test(?! message)|tests|pap|films|"
    "recheck|screening|exam|exams|check|checkup|piece|tissue"
)
REPORT_FR_WORDS = (
    "rapport|rapports|resultats|resultat|imagerie|radio|radiographie|echo|echographie|examen|"
    "biopsie|trace|compte rendu|image|images|prelevement|culture|test|tests|scan|analyse|films|"
    "depistage|controle|morceau|echantillon"
)
_NOT_SHOWN = r"(?! up\b| in (?:the|your) portal| online| dans le portail| en ligne)"
_SHOWS = (
    rf"(?:(?<!survey )(?<!poll ){_words(REPORT_EN_WORDS)} (?:[a-z']+ ){{0,4}}"
    # (eleventh round: a booking confirmed is no test confirming: "Blood test appt confirmed", « Rdv au centre de
    # prélèvement confirmé »)
    + _words("shows|show|showed|showing|confirms|confirm|(?<!is )(?<!are )(?<!was )(?<!be )(?<!been )(?<!appt )"
             "(?<!appointment )(?<!booking )(?<!slot )(?<!time )(?<!visit )confirmed|"
             "revealed|found|suggests|suggested")
    + rf"|(?<!sondage )(?<!message )(?<!centre de )(?<!centres de )(?<!centre du ){_words(REPORT_FR_WORDS)} (?:[a-z']+ ){{0,4}}"
    + _words("montre|montrent|montrait|(?<!est )(?<!sont )(?<!ete )(?<!etre )confirme|confirment|revele|suggere|"
             "indique")
    + rf"){_NOT_SHOWN}"
)
# A test and its verdict in everyday words: "the test from your last visit was fine", « tout était
# normal lors de votre dernier contrôle ».
CHECKED_WORDS = (
    "test|tests|results|result|check|checkup|check up|recheck|re check|exam|report|scan|scans|bloodwork|"
    "blood work|biopsy|pictures|picture|images|imaging|x ray|mammogram|swab|culture|sample|screening|"
    "films|pap|scope|skin check|"
    "examen|examens|controle|bilan|rapport|resultats|resultat|prelevement|echantillon|radio|image|"
    "images|imagerie|biopsie|echo|prise de sang|depistage|analyse|analyses|compte rendu|films"
)
_CHECKED = _words(CHECKED_WORDS)
FINE_WORDS = (
    "fine|good|ok|okay|normal|clear|all clear|great|perfect|reassuring|unremarkable|as expected|"
    "within normal|healthy|negative|went well|looks good|looked good|nothing suspicious|"
    "not quite what we expected|not what we expected|not normal|abnormal|not quite normal|"
    "correct|corrects|correcte|correctes|beau|beaux|belle|belles|bon|bons|bonne|bonnes|normal|"
    "normale|normales|normaux|parfait|parfaits|rassurant|rassurante|rassurants|rassurantes|"
    "comme prevu|rien de suspect|pas normal|pas normaux|anormal|anormale|anormaux|"
    "pas tout a fait ce qu'on attendait|pas ce qu'on attendait|pas tout a fait normal|sain|saine"
)
_FINE = _words(FINE_WORDS)
_EVALUATED = _words(
    "was|were|is|are|looked|looks|look|came back|come back|came out|all|went|seems|seemed|"
    "est|etait|sont|etaient|semble|semblait|revenu|revenue|revenus|revenues|tous|toutes|s'est"
)
_NOT_SURVEY = r"(?<!survey )(?<!sondage )(?<!poll )(?<!a )(?<!an )(?<!un )(?<!une )"
EVALUATION = [
    rf"{_NOT_SURVEY}{_CHECKED}{_gap(5)}{_EVALUATED}{_gap(2)}{_FINE}",
    rf"\b(?:everything|all|tout)\b {_EVALUATED}{_gap(2)}{_FINE}{_gap(6)}{_CHECKED}",
    rf"{_CHECKED}{_gap(6)}\b(?:everything|all|tout)\b {_EVALUATED}{_gap(2)}{_FINE}",
    r"\b(?:nothing|rien) (?:suspicious|worrying|concerning|de suspect|d'inquietant|d'anormal)\b"
    r"(?: (?:was|is|were) (?:seen|found))?",
]
# The test nouns and verdict words above, as one gate.
_EVALUATION_GATE = CHECKED_WORDS + "|nothing|rien"

FINDING = [
    rule(_EVALUATION_GATE, *EVALUATION),
    rule("finding|findings|trouvaille|trouvailles",
         r"\b(?:is|was|are|were|il y a|y a) (?:a|an|one|some|une|des) (?:small |minor |new |incidental |petite )?"
         r"(?:findings?|trouvailles?)\b(?! (?:a|an|the|out|parking|time|date|spot|way|place))",
         r"\b(?:the|your|these|those|les|vos|ces) (?:findings|trouvailles)\b(?! of (?:the|our) (?:survey|review|audit))"),
    rule("found|trouve|noticed|saw|vu|remarque|spotted|note",
         _near(r"\b(?:found|trouve|trouvee|noticed|saw|vu|remarque|spotted|note)\b (?:a |an |some |une |un |des )?"
               r"(?:little |small |tiny |minor |petite |petit )?(?:something|quelque chose|anomaly|anomalie|"
               r"abnormality|irregularity|spot|change|changement|tache)\b",
               r"\b(?:sample|test|scan|x ray|blood|urine|image|images|report|exam|echantillon|prelevement|examen|"
               r"rapport|sang|radio|echo|side|cote|area|zone|region|skin|peau)\b", 6, both=True),
         # "the radiologist noticed something minor", « le radiologiste a remarqué quelque chose »
         rf"\b{_AGENT_EN} (?:\w+ )?(?:noticed|spotted|found|saw|picked up|noted) (?:something|a little something|"
         r"a small something|an? (?:small |little |minor |tiny )?(?:change|spot|area|irregularity|abnormality))\b",
         rf"\b{_AGENT_FR} (?:a |avait )?(?:remarque|vu|trouve|note|decele|detecte) (?:quelque chose|une? "
         r"(?:petite? )?(?:changement|tache|zone|anomalie|irregularite))\b"),
    rule("sign|signe|signs|signes|indique|nothing|rien",
         r"\b(?:no sign|no signs|aucun signe|pas de signe|nothing suggests|rien n'indique|rien ne montre|"
         r"rien ne suggere)\b" + _gap(5) + r"(?:coming back|returning|come back|came back|is back|it's back|"
         r"revient|reviendrait|reapparait|recidive|de retour|recurrence|revenu|revenue|est revenu)\b"),
    rule(FINDING_STRONG_WORDS,
         rf"\b{_THE} (?:\w+ )?{_FINDING_STRONG}",
         rf"{_LE}(?:\w+ )?{_FINDING_STRONG}"),
    rule(FINDING_THING_WORDS,
         rf"\b{_THE} (?:\w+ )?{_FINDING_THING}{_gap(4)}(?:{_SAW_EN}|(?:that|which) (?:was|were|is|are) "
         + _words("frozen|removed|biopsied|treated|burned|burnt|excised|cut out|sent|tested|drained|seen|found")
         + ")",
         rf"{_LE}(?:\w+ )?{_FINDING_THING}{_gap(4)}{_SAW_FR}",
         rf"(?:{_FINDING_THING}|{_FINDING_VAGUE}) (?:(?:of|de|from|du) (?:\w+ )?)?{_TAKEN}"),
    rule(FINDING_VAGUE_WORDS,
         rf"\b{_THE} (?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_EN_EXAMINED}",
         rf"{_LE}(?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_FR_EXAMINED}",
         # "the issue you mentioned ... turned out to be nothing serious": something talked about, and its verdict
         rf"\b{_THE} (?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_EN}{_gap(8)}{_STATUS}",
         rf"{_LE}(?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_FR}{_gap(8)}{_STATUS}"),
    rule("specialist|specialiste",
         r"\b(?:looked at|seen|examined|checked) by a specialist\b|\b(?:voir|vue?s?|examinee?s?) par un specialiste\b"),
    rule("what|ce|qui|something|chose|quelque", _WHAT),
    rule(CAME_BACK_WORDS, _CAME_BACK),
    rule(FINDING_THING_WORDS, _near(_FINDING_THING, _STATUS_BODY, 6, both=True)),
    rule(REPORT_WORDS, _near(_REPORT, _STATUS, 6, both=True), _near(_REPORT, _STATUS_STRONG, 12, both=True)),
    rule(REPORT_WORDS,
         rf"{_REPORT} (?:from|of|on|de|du|sur) (?:your|the|votre|la|le|l') ?(?:scan|x ray|ultrasound|mri|ct|"
         r"biopsy|mammogram|echo|imaging|radio|echographie|biopsie|irm|scope|coloscopie|colonoscopy)\b",
         rf"{_REPORT} (?:on|of|from|about|for|sur|de|du|des|de la|pour)(?: (?:your|the|votre|vos|la|le|les))?"
         rf"(?: {_BODY}| l'{_BODY}| d'{_BODY})"
         # ninth round: the front or the back of a thing is no body ("a picture of the front of the card")
         r"(?! (?:of|de|du|des) (?:the |your |a |this |that |la |le |l'|votre )?(?:card|cards|form|forms|page|sheet|paper|"
         r"document|id|licence|license|cheque|check|receipt|invoice|box|bottle|label|envelope|requisition|building|carte|"
         r"formulaire|feuille|papier|document|recu|facture|boite|bouteille|etiquette|enveloppe|requete|batisse|edifice)s?\b)"),
    rule(REPORT_EN_WORDS + "|" + REPORT_FR_WORDS, _SHOWS),
    rule(BODY_WORDS,
         rf"\b(?:your|the|votre|vos) {_BODY} (?:picture|pictures|tracing|images|report|scan|x ray|"
         r"ultrasound|numbers|levels|values|function|test|photos|photo|exam|check|checkup|controle|examen)\b"),
    rule("findings|finding|findings|decouverte|decouvertes",
         r"\b(?:the|your) findings? (?:from|of|on|in) (?:your|the) (?:\w+ )?(?:test|tests|scan|exam|biopsy|"
         r"scope|x ray|ultrasound|imaging|report|mri|ct|visit|procedure)\b",
         r"\b(?:unexpected|incidental) findings?\b|\bdecouvertes? (?:inattendue|fortuite)s?\b"),
    rule("opinion|avis|concern|surveiller|interet|look|regard|reexamine|examine|reexaminer|reexaminer|second|"
         "another|deuxieme|autre|revoir",
         r"\b(?:second opinion|deuxieme avis|2e avis|area of concern|zone a surveiller|zone d'interet)\b",
         r"\b(?:would like|wants?|veut|voudrait|aimerait) (?:a |un )?(?:second|another|deuxieme|autre) "
         r"(?:look|opinion|avis|regard)\b",
         r"\b(?:like|wants?|needs?|take|have|get|ordered|booked)(?: \w+)? (?:another|a second|a closer|one more|a better) "
         r"look\b(?! at (?:our|the) (?:website|schedule|portal|site|forms?|bill|invoice|hours))",
         r"\bre ?examine\b|\breexaminer\b|\bre examiner\b|\brevoir (?:la|le|cette) "
         r"(?:zone|region|tache|bosse|lesion|plaque)\b"),
    rule("repeat|redo|refaire|reprendre|recommencer|repeter|new|another|nouvel|nouveau|autre|fresh",
         r"\b(?:repeat|redo|refaire|reprendre|recommencer|repeter) (?:it|the|your|l'|la|le|les|votre|vos)? ?(?:\w+ )?"
         r"(?:scan|image|imaging|picture|ultrasound|x ray|echo|echographie|radio|examen|biopsy|biopsie|mammogram|"
         r"test|sample|swab|prelevement|echantillon|analyse|prise de sang|bloodwork|blood work|culture)\b",
         r"\b(?:new|another|fresh|second|repeat) (?:sample|swab|specimen)\b|\b(?:nouvel|nouveau|autre|deuxieme) "
         r"(?:echantillon|prelevement)\b"),
    rule("dye|contrast|contraste", r"\b(?:with dye|with contrast|avec (?:du )?contraste)\b"),
    rule("margins|margin|edges|marges|bords",
         r"\b(?:margins?|edges|marges|bords) (?:(?:are|were|was|is|sont|etaient|est|etait) )?(?:all )?(?:clear|free|"
         r"negative|clean|saines|libres|negatives|propres)\b|\bclear margins\b|\bmarges saines\b"),
    rule("second|another|deuxieme|autre|2nd|2e|repeat",
         r"\b(?:a second|another|one more|a repeat|un deuxieme|un autre|une autre|un 2e) (?:test|scan|sample|"
         r"examen|prelevement|analyse|biopsy|biopsie|x ray|radio)\b(?: \w+){0,3} (?:to be sure|to confirm|to make sure|"
         r"pour (?:etre sure?|confirmer|s'assurer|verifier))\b"),
    rule("repeat", r"\b(?:booked|scheduled) (?:you )?for a repeat\b"),
    rule("compare|compared|compare|comparing|comparer|compare|comparaison",
         r"\bcompar\w* (?:your|vos|the|les) (?:old |previous |anciens |anciennes )?(?:films|scans|images|x rays|"
         r"mammograms|radios|examens|pictures)\b",
         r"\bcompar\w* (?:it |them )?(?:with|to|avec|a) (?:your|the|votre|vos|les|l'|la|le) (?:old|previous|last|"
         r"earlier|anciens?|anciennes?|precedente?s?|derniere?s?) ?(?:\w+ )?(?:films|scan|scans|images|image|x ray|"
         r"pictures|mammogram|ultrasound|report|examen|examens|radio|echo|mri|irm)\b"),
    # A part of the patient's body: "your left knee", "your son's ear", « votre genou », « au genou »,
    # « l'oreille de votre garçon ».
    rule(ORGAN_EN_WORDS,
         rf"\b{_POSS_EN} (?:(?:left|right|lower|upper|inner|outer|little|big|sore) )?{_ORGAN_EN}",
         r"\b(?:in|on|of|for|to|around|behind|near|under|below|above) the (?:(?:left|right) )?"
         r"(?!foot of|back of|neck of|skin of)"
         + _words(ORGAN_EN_WORDS.replace("|foot|", "|").replace("|neck|", "|").replace("|skin|", "|"))),
    rule(ORGAN_FR_WORDS,
         rf"\b{_POSS_FR} (?:(?:petit|petite|gros|grosse) )?{_ORGAN_FR}(?! (?:d'attente|de service|de rendez))",
         rf"{_LE}{_ORGAN_FR}{_gap(1)}(?:de|d') ?(?:votre|ton|ta|sa) (?:{_KIN_FR})\b",
         rf"\b(?:au|aux|a la|a l') {_words(AT_ORGAN_FR_WORDS)}(?! (?:de|du|des|d'|de la)\b)",
         rf"\b(?:pour|sur|dans|derriere|sous) (?:le|la|les|l') ?{_words(AT_ORGAN_FR_WORDS)}(?! (?:de|du|des|d'|de la)\b)"),
    # No sign of a finding: "no sores", « pas de plaies ».
    rule("no|pas|aucun|aucune",
         r"\b(?:no|pas de|aucune?) (?:more )?(?:sores|ulcers|lumps|swelling|redness|rash|open wounds|signs? of infection|"
         r"plaies|ulceres|bosses|enflure|rougeur|rougeurs|signes? d'infection)\b"),
    # A part of the patient's body and its verdict: "your feet look good", « vos pieds sont beaux ».
    rule(BODY_WORDS,
         rf"\b(?:{_POSS_EN}|{_POSS_FR}) (?!face|hands?|heart|head|visage|mains?|coeur|tete){_BODY} (?:looks?|looked|is|are|"
         rf"was|were|sounded|sound|semble|semblent|est|sont|etait|etaient)(?: \w+)? (?:good|fine|great|healthy|normal|"
         rf"better|clear|healed|beau|beaux|belle|belles|bien|normal|normaux|mieux|sain|sains|guerie?s?|clairs?)\b"),
    # A thing on a part of the body: "the spot on your back", « la tache dans votre dos ».
    rule(FINDING_THING_WORDS,
         rf"{_FINDING_THING} (?:\w+ )?(?:on|in|under|behind|near|sur|dans|sous|derriere|au|aux|a la|a l'|de la|du) "
         rf"(?:(?:your|the|his|her|votre|vos|ton|ta|tes|le|la|les|l'|son|sa|ses) ?)?(?:(?:left|right|lower|upper) )?"
         rf"{_BODY}"),
    # Something of a relative's: "your son's rash", « les rougeurs de votre fille ».
    rule(FINDING_THING_WORDS + "|" + SYMPTOM_CHANGING_WORDS,
         rf"\b(?:your|ur|his|her|their) (?:{_KIN_EN})'s (?:\w+ )?(?:{_FINDING_THING}|{_SYMPTOM_CHANGING})",
         rf"(?:{_FINDING_THING}|{_SYMPTOM_CHANGING}) (?:de|du|d') ?(?:votre|ton|ta|sa|son) (?:{_KIN_FR})\b"),
]
# "The issue you mentioned", « le problème dont on a parlé »: often a finding, sometimes a bill.
# "The doctor wants to go over your report" is a notice unless something says it matters.
_DISCUSS = (
    r"\b(?:discuss|go over|talk about|review|explain|meet about|meet with you about|see you about|speak with you "
    r"about|discuter|parler|revoir|expliquer|rencontrer)\b"
)
_DISCUSSED = _words(
    "report|reports|results|result|exam|test|tests|findings|scan|imaging|biopsy|summary|discharge summary|it|"
    "rapport|resultats|resultat|examen|test|tests|compte rendu|imagerie|biopsie|resume|resume de l'hopital"
)
_URGENT = _words(
    "important|urgent|urgently|asap|as soon as possible|in person|right away|today|this week|"
    "en personne|des que possible|rapidement|aujourd'hui|cette semaine|au plus vite|c'est important"
)
# Reviewing alone is the doctor's own work ("Dr. Lee will review it this week"): with the patient it
# is a meeting ("review it with you today").
_DISCUSS_WITH = (
    r"\b(?:discuss|go over|talk about|explain|meet about|meet with you about|see you about|speak with you about|"
    r"review (?:\w+ ){0,3}with you|discuter|parler|revoir (?:\w+ ){0,3}avec vous|expliquer|rencontrer)\b"
)
FINDING_URGENT = [
    rule("discuss|over|talk|review|explain|meet|see|speak|discuter|parler|revoir|expliquer|rencontrer",
         _near(_near(_DISCUSS_WITH, _DISCUSSED, 5, both=True), _URGENT, 10, both=True),
         # "your scan was reviewed; there is something we need to explain in person"
         rf"{_DISCUSSED}(?:[ ,;:'\"()/&]+{_TOKEN}){{0,14}}?[ ,;:'\"()/&]+{_DISCUSS}(?: \w+){{0,3}} "
         r"(?:in person|en personne|face to face)\b"),
]
# Results read, then the patient asked in soon: the hurry is the verdict ("the doctor reviewed
# everything and wants to see you sooner rather than later", « la Dre a regardé vos résultats et
# veut vous voir sans tarder »). A booking with no hurry stays a notice.
_READ = (r"\b(?:reviewed|looked (?:at|over)|went over|read|got back|received|checked|a (?:revu|regarde|lu|recu|verifie)|"
         r"avons (?:revu|regarde|lu|recu)|est revenue?s?|sont revenue?s?|came back)"
         r"(?: (?:all|your|ur|the|his|her|tous|toutes|tout|vos|votre|les|le|la|l'|ses|sa|son)){0,2} ?"
         r"(?:results?|reports?|scans?|tests?|everything|blood ?work|x rays?|images?|biopsy|labs?|file|chart|"
         r"resultats?|rapports?|examens?|tout|analyses|prises? de sang|radios?|dossier|echo)\b")
_SEE_SOON = (r"\b(?:see you|speak (?:to|with) you|talk (?:to|with) you|you (?:to )?come in|meet with you|vous voir|vous "
             r"parler|que vous (?:veniez|passiez)|vous rencontrer)\b(?: \w+){0,6}? (?:sooner rather than later|as soon "
             r"as (?:possible|you can)|asap|right away|urgently|today|tomorrow|this week|without delay|please don'?t wait|"
             r"le plus tot possible|des que possible|sans tarder|rapidement|d'urgence|aujourd'hui|demain|cette semaine|"
             r"n'attendez pas)\b")
FINDING_URGENT.append(
    rule("reviewed|looked|went|read|got|received|checked|revu|regarde|lu|recu|verifie|revenu|revenue|revenus|"
         "revenues|came",
         _near(_READ, _SEE_SOON, 12)))
FINDING.extend(FINDING_URGENT)
# A verdict on results that names no finding: "it's not what we were hoping for", "nothing alarming,
# but the doctor wants to repeat it", "the doctor is happy with how things look", "about what came
# back", « ce n'est pas ce qu'on espérait », « le médecin est content de comment ça évolue ».
_CARE_TEAM = (r"(?:the doctor|the specialist|the surgeon|the nurse practitioner|dr\.? \w+|le medecin|la medecin|"
              r"le docteur|la docteure|le specialiste|la specialiste|le chirurgien|la chirurgienne|l'ips|"
              r"(?:la |le )?dre?\.? \w+)")
FINDING_VERDICT = [
    rule("hoping|hoped|hope|esperait|esperions|esperiez|espere",
         r"\bcame back (?:just )?(?:as|like|the way) (?:we|you|i)(?:'d| had| were)? (?:hoped|hoping|wanted)\b",
         r"\brevenue?s? (?:exactement )?comme (?:on|nous|vous) (?:l'|le )?(?:esperait|esperions|esperiez|voulait)\b",
         r"\bnot (?:quite |exactly )?(?:the (?:news|result|results) )?(?:what|the news|the result|the results) (?:we|i|"
         r"you) (?:were |had )?(?:hoping|hoped|hope) for\b",
         r"\bpas (?:tout a fait )?(?:ce (?:qu'on|que nous|que vous|que j') ?|les resultats (?:qu'on|que nous) ?|la "
         r"nouvelle (?:qu'on|que nous) ?)(?:esperait|esperions|esperiez|espere)\b"),
    rule("alarming|worrying|concerning|serious|alarmant|inquietant|grave",
         _near(r"\b(?:nothing|rien d')(?: too| very| trop| tres)? ?(?:alarming|worrying|concerning|serious|alarmant|"
               r"inquietant|grave)\b",
               r"\b(?:repeat|recheck|redo|re do|retest|repeat it|refaire|reprendre|reverifier|recontroler|revoir "
               r"dans)\b", 10, both=True)),
    rule("happy|pleased|satisfied|content|contente|satisfait|satisfaite",
         rf"\b{_CARE_TEAM} (?:is|was|est|etait|seems|semble) (?:very |really |quite |tres |bien |vraiment )?"
         r"(?:happy|pleased|satisfied|content|contente|satisfait|satisfaite) (?:with|de|du|des|avec) (?:how|the way|"
         r"comment|your|vos|votre|ton|ta|tes|the (?:results?|healing|progress|numbers|scan|x ray)|les resultats|la "
         r"guerison|l'evolution|vos progres|ce qu'(?:il|elle) voit|what (?:he|she) (?:sees|saw))\b"),
    rule("came|found|showed|revenu|ressorti|trouve",
         r"\b(?:about|regarding|discuss|go over|explain|talk about) what (?:came back|we found|they found|showed up|"
         r"the \w+ (?:found|showed))\b",
         r"\b(?:pour|au sujet de|parler de|discuter de|expliquer|a propos de) ce qui (?:est revenu|est ressorti|a ete "
         r"trouve)\b"),
    rule("sorry|desole|desolee|desoles",
         r"\bsorry (?:about|for|to hear about) the (?:difficult |hard |bad |tough |sad )?(?:news|diagnosis|results)"
         r"(?: (?:yesterday|today|this morning|this week|you (?:got|received)))\b",
         r"\bdesolee?s? (?:pour|de) la (?:mauvaise |difficile |triste )?nouvelle (?:d'hier|de ce matin|de cette "
         r"semaine|que vous avez recue)\b"),
]
FINDING_VERDICT += [
    # what was checked, without its name: "all clear on everything we checked"
    rule("checked|tested|looked|ordered|verifie|teste|regarde|analyse",
         r"\beverything (?:we|the doctor|dr\.? \w+|she|he|they) (?:checked|tested|looked at|ordered)\b",
         r"\btout ce qu(?:'on|'il|'elle|e (?:le|la) \w+|e nous) a (?:verifie|teste|regarde|analyse)\b"),
    # a visit for news given with someone beside the patient: « vous voir demain, accompagné »
    rule("someone|accompagne|accompagnee|accompagnes|accompagnees",
         r"\b(?:come in|see you|meet you|come)(?: \w+){0,3},? (?:with someone|with a family member|with a support "
         r"person)\b",
         r"\b(?:vous voir|venir|vous rencontrer)(?: \w+){0,3},? accompagnee?s?\b"),
]
FINDING.extend(FINDING_VERDICT)
FINDING_WEAK = [
    rule(FINDING_VAGUE_WORDS,
         rf"\b{_THE} (?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_EN}",
         rf"{_LE}(?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_FR}",
         _near(_FINDING_VAGUE, _STATUS, 6)),
    rule("discuss|over|talk|review|explain|meet|see|speak|discuter|parler|revoir|expliquer|rencontrer",
         _near(_DISCUSS, _words("report|reports|exam|findings|scan|imaging|biopsy|summary|discharge summary|"
                                "rapport|examen|compte rendu|imagerie|biopsie|resume"), 8, both=True)),
    rule("news|information|nouveau|nouvelles|informations",
         r"\b(?:new information|news|an update|du nouveau|des nouvelles|de nouvelles informations|une mise a jour) "
         r"(?:about|on|regarding|sur|concernant|au sujet de) (?:your|the|votre|vos|le|la|les|l') ?(?:\w+ )?"
         r"(?:test|tests|results?|report|exam|scan|biopsy|resultats?|rapport|examen|biopsie)\b"),
    rule("hospital|hopital|specialist|specialiste|report|rapport|lettre|letter",
         r"\b(?:report|letter|rapport|lettre|compte rendu) (?:from|of|de|du) (?:the|l'|la|le) ?(?:hospital|hopital|"
         r"specialist|specialiste|emergency|urgence|er)\b"),
    rule("something|quelque", r"\b(?:something|quelque chose) (?:on|in|sur|dans) (?:your|the|votre|la|le|l')\b"),
]

# --- a value without the test's name -----------------------------------------------------------
VALUE_NOUN_WORDS = (
    "numbers|levels|level|values|value|counts|count|readings|reading|average|sugars|sugar|score|"
    "oxygen|saturation|sats|weight|pressure|bp|stores|result|hemo|hb|hgb|measurement|measurements|"
    "waist|bmi|heart rate|pulse|ratio|function|percentage|uric acid|acid|filtration|filter rate|"
    "iron|calcium|potassium|sodium|thyroid|vitamin|b12|cholesterol|triglycerides|clotting time|"
    "chiffres|chiffre|niveaux|niveau|valeurs|valeur|taux|decompte|lectures|lecture|moyenne|sucres|"
    "sucre|glycemies|glycemie|score|saturation|oxygene|poids|pression|reserves|resultat|hemo|mesure|"
    "mesures|tour de taille|imc|pouls|frequence cardiaque|rythme cardiaque|ratio|fonction|pourcentage|"
    "acide urique|filtration|fer|thyroide|vitamine|cholesterol|triglycerides|temps de coagulation"
)
_VALUE_NOUN = _words(VALUE_NOUN_WORDS)
# Words between "your" and the value noun that make it an address, an account or a ticket.
_NOT_VALUE = r"(?!phone|fax|cell|card|account|invoice|telephone|cellulaire|carte|compte|facture|dossier|" \
             r"confirmation|reference|member|membership|ticket|file|room|case|booking|waiting|health card|" \
             r"insurance|assurance|verification|client|patient|order|commande|policy|police|group|groupe)"
_MONTHS = (
    "jan", "january", "feb", "february", "mar", "march", "apr", "april", "may", "jun", "june", "jul", "july", "aug",
    "august", "sep", "sept", "september", "oct", "october", "nov", "november", "dec", "december", "janvier",
    "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre", "novembre", "decembre",
)
_NUMBER = (
    r"(?<![\d$#])(?<!\ble )(?<!\bthe )(?<!\bau )"
    # ninth round: a number after a month is a day of the month ("forward until Dec 31", « jusqu'au 3 mars »)
    + "".join(rf"(?<!\b{m} )" for m in _MONTHS) +
    r"-?\d+(?:[.,]\d+)*(?:\s?(?:%|kg|lbs?|mmol(?:/l)?|g/l|units?|unites?|ui|iu|"
    r"mg|mcg|pmol|umol|cm|percent|pour cent|bpm))?"
    r"(?:\s?(?:over|sur|/)\s?\d+)?"
    r"(?![\d:])"
    r"(?!\s?(?:\$|h\b|h\d|am\b|pm\b|a\.m|p\.m|min\b|minutes?|hours?|heures?|days?|jours?|jrs?|weeks?|wks?|"
    r"semaines?|sem\b|months?|mois|years?|ans?\b|ieme|e\b|er\b|st\b|nd\b|rd\b|th\b|business|ouvrables?|"
    r"pages?|questions?|times|fois|\d{3}\b|patients?|people|personnes|places?|spots?))"
)
_TREND = _words(
    "normal|in range|within range|target|cible|norme|normes|high|low|better|worse|good|great|fine|"
    "bons|beaux|belles|mieux|pire|stable|stables|improved|improving|ameliore|ameliores|going down|"
    "going up|went down|went up|coming down|rising|dropping|falling|baissent|baisse|montent|monte|"
    "where we want|ou on les veut|hors norme|off|look good|looks good|dans les normes|pas encore dans|"
    "not yet at target|pas dans la cible|not in range|a bit high|a bit low|un peu haut|un peu bas|too high|too low|trop haut|trop bas|"
    "ont baisse|have dropped|dropped|remonte|remontes|descendu|descendus"
)
ANALYTE_WORDS = (
    "kidney|liver|thyroid|iron|sugar|blood sugar|hemo|drug|vitamin|b12|cholesterol|hormone|hormonal|"
    "salt|sodium|potassium|protein|urine|uric acid|urate|lipid|lipids|fasting|morning|evening|home"
)
# A blood pressure reading: "148/92", "148 over 92", « 152 sur 94 ».
_BP = r"(?<![\d/.,$#])(?:[89]\d|1\d\d|2[0-4]\d) ?(?:/|over|sur) ?(?:[4-9]\d|1[0-2]\d)(?![\d/%]|[.,]\d)"
VALUE = [
    rule("your|ur|his|her|their|votre|vos|ton|ta|tes|sa|ses",
         rf"\b(?:{_POSS_EN}|{_POSS_FR})\s(?:{_NOT_VALUE}[a-z0-9']+\s){{0,2}}{_VALUE_NOUN}{_gap(8)}{_NUMBER}"),
    rule(VALUE_NOUN_WORDS,
         rf"{_VALUE_NOUN} (?:(?:de|du|d'|of) ?[a-z]+ )?(?:(?:de|du|d') ?(?:votre|ton|ta|sa|son) (?:{_KIN_FR}) )?"
         rf"(?:is|est|was|etait|are|sont)(?: now| maintenant| rendu| rendue| still| encore)? (?:at |a |de |under |"
         rf"below |above |over |sous |au dessus de |moins de |plus de )?{_NUMBER}"),
    # "3.4, a bit high", « 98, un peu basse »: a number and its verdict
    rule("high|low|haut|haute|bas|basse|eleve|elevee|eleves|elevees|range|cible|normal|normale|target|limits|limites|"
         "normes",
         rf"{_NUMBER}(?:,| -| :)? (?:a bit|slightly|a little|too|quite|un peu|trop|legerement|tres) "
         r"(?:high|low|haut|haute|bas|basse|eleve|elevee|elevees|eleves)\b",
         rf"{_NUMBER},? (?:in|within|dans) (?:the )?(?:normal |la |les )?(?:range|target|cible|limits|limites|normes)\b"),
    rule("numbers|levels|values|readings|counts|chiffres|valeurs|niveaux|lectures",
         rf"\b(?:numbers|levels|values|readings|counts|chiffres|valeurs|niveaux|lectures)\b{_gap(4)}{_NUMBER}"),
    rule(VALUE_NOUN_WORDS,
         # (tenth round: not a survey's "reply with a number from 0 to 10", « répondez par un chiffre de 0 à 10 »)
         _near(_VALUE_NOUN, r"(?<!\bun chiffre )(?<!\ba number )\b(?:from|de) \d+(?:[.,]\d+)? (?:to|a) \d+(?:[.,]\d+)?\b(?! ?(?:\$|h\b|am|pm|minutes|"
                            r"jours|days))", 6),
         _near(_VALUE_NOUN, r"\b(?:up|down|back|remonte|descendu|monte|baisse|passe|passee)e?s? (?:to|a) "
                            r"\d+(?:[.,]\d+)?\b(?! ?(?:\$|h\b|am|pm|minutes|jours|days))", 4)),
    rule(ANALYTE_WORDS,
         rf"{_words(ANALYTE_WORDS)} (?:numbers|number|levels?|values?|count|stores|readings?|function|sugars?|"
         r"average)\b"),
    rule("chiffre|chiffres|valeur|valeurs|niveau|niveaux|taux|reserves|fonction|lecture|lectures|acide|moyenne",
         r"\b(?:chiffres?|valeurs?|niveaux?|taux|reserves|fonction|lectures?|moyenne) (?:du |de la |des |de |d')?"
         r"(?:rein|reins|renale|foie|hepatique|thyroide|fer|sucre|cholesterol|medicament|hormones?|vitamine|sang|"
         r"sel|proteines|pression|glycemie)\b",
         r"\bacide urique\b"),
    rule("your|ur|the|vos|les|tes|votre|ton|his|her|their|ta",
         _near(r"\b(?:your|ur|the|vos|les|tes|votre|ton|his|her|their)\s(?:[a-z]+\s)?(?:numbers|levels|values|"
               r"chiffres|niveaux|valeurs|taux|sugars|sucres|glycemies|readings|lectures|count|decompte)\b",
               _TREND, 6),
         # "your blood pressure diary", « votre journal de pression »
         r"\b(?:your|ur|votre|vos|ton|ta) (?:(?:home |daily |own )?(?:blood )?(?:pressure|sugar|glucose|bp|weight|peak "
         r"flow) (?:diary|log|journal|readings|record|chart|cuff|monitor)|(?:journal|carnet|releve|registre|brassard|"
         r"appareil) (?:a |de|des|du) ?(?:pression|sucres?|"
         r"glycemies?|poids|tension))\b"),
    rule("scored|score|resultat|range|zone|moderate|severe|mild|modere|leger",
         r"\b(?:you|vous) (?:scored|avez (?:obtenu|eu) un (?:score|resultat))\b|\b(?:moderate|severe|mild|modere|"
         r"leger) (?:range|zone)\b|\b(?:un |votre )?resultat (?:modere|severe|eleve|leger) (?:au|a l'|du)\b"),
    rule("#", _BP),
    # "your calcium is a bit high at 2.71", « le compte est revenu à 2,9 »: a decimal value said of something
    rule("#",
         r"\b(?:is|was|are|were|came back|comes back|est|etait|sont|etaient|revenu|revenue|revenus|reste|stays?)"
         r"(?: (?:a bit|slightly|still|now|un peu|encore|maintenant|rendu|high|low|haut|haute|bas|basse|eleve|elevee|"
         r"stable|normal|normale))* (?:at|a|de) \d+[.,]\d+(?!\d|[.,]\d|\s?(?:\$|h\b|am\b|pm\b|%? ?(?:de rabais|off)))"),
    # "you've gained 4 kg", « vous avez perdu 3 kilos »
    rule("gained|lost|put|pris|perdu|gagne|prise",
         r"\b(?:gained|lost|put on|pris|perdu|gagne)\s\d+(?:[.,]\d+)?\s?(?:kg|kilos?|lbs?|pounds|livres)\b"),
    # "your kidneys are working at about 60%", « vos reins fonctionnent à 60 % »
    rule("working|functioning|fonctionnent|fonctionne|function|fonction",
         rf"\b{_BODY} (?:are |is )?(?:working|functioning|fonctionnent|fonctionne|function|fonction)(?: \w+){{0,3}} "
         r"\d+ ?(?:%|percent|pour cent)"),
]
VALUE_WEAK = [
    rule("your|vos|votre|tes|ton|ur",
         r"\b(?:your|ur|vos|votre|tes|ton) (?:\w+ )?(?:numbers|levels|values|chiffres|niveaux|valeurs|taux|readings|"
         r"lectures)\b"),
]

# --- services and programs that reveal a condition; crisis lines ------------------------------
TOPIC_WORDS = (
    "anxiety|mood|depression|depressive|grief|bereavement|trauma|ptsd|burnout|eating disorder|"
    "eating disorders|alcohol|drinking|drugs|drug use|drug treatment|drug addiction|drug rehab|"
    "substance|substance use|addiction|addictions|gambling|withdrawal|detox|quit smoking|"
    "stop smoking|smoking cessation|tobacco cessation|crisis|distress|suicide|suicidal|mental health|"
    "memory|pain|falls prevention|sleep|allergy|allergies|wound|wounds|bariatric|breast|lipid|"
    "pulmonary|cardiac|stroke|speech|hearing|fertility|ocd|psychosis|postpartum|post partum|"
    "mindfulness|harm reduction|opioid|opioids|methadone|recovery|sobriety|weight management|anger|continence|"
    "weight loss clinic|obesity|incontinence|pelvic floor|prenatal|pregnancy|hiv|gender|sexual health|sti|"
    "menopause|diabetes|diabetic|foot care|memory loss|"
    "anxiete|humeur|deuil|epuisement|troubles alimentaires|trouble alimentaire|"
    "alcool|drogues|drogue|dependance|dependances|toxicomanie|jeu pathologique|jeu compulsif|jeu excessif|"
    "sevrage|desintox|cesser de fumer|arreter de fumer|arret tabagique|tabagisme|crise|detresse|"
    "suicide|sante mentale|memoire|douleur|prevention des chutes|sommeil|plaies|bariatrique|sein|"
    "lipides|pulmonaire|cardiaque|avc|langage|audition|fertilite|toc|psychose|pleine conscience|"
    "reduction des mefaits|opioides|retablissement|obesite|plancher pelvien|grossesse|prenatal|"
    "prenatale|vih|sante sexuelle|itss|stress post traumatique|gestion du poids|controle du poids|colere|continence|"
    "menopause|diabete|diabetique|soins des pieds|perte de memoire|post partum|postnatale"
)
_TOPIC = _words(TOPIC_WORDS)
SERVICE_WORDS = (
    "program|programs|programme|group|groups|clinic|centre|center|service|services|team|counselling|"
    "counseling|counsellor|counselor|therapy|therapist|treatment|intake|assessment|support|session|"
    "sessions|nurse|worker|line|meeting|meetings|rehab|unit|workshop|class|classes|specialist|consult|"
    "referral|doctor|intervention|questionnaire|questionnaires|scale|screening|score|specialists|"
    "surgeon|educator|education|coach|psychologist|psychiatrist|diary|journal|tracker|log|"
    "programmes|groupe|groupes|clinique|equipe|therapie|therapeute|traitement|intervenant|"
    "intervenante|infirmiere|ligne|suivi|evaluation|soutien|psychologue|accueil|rencontre|rencontres|"
    "atelier|ateliers|cours|unite|guichet|consultation|reference|psychiatre|medecin|questionnaire|"
    "echelle|depistage|specialiste|chirurgien|chirurgienne|conseiller|conseillere|educatrice|"
    "enseignement|demande"
)
_SERVICE = _words(SERVICE_WORDS)
# Health professionals who are not specialists of one condition, as a service to *this* patient:
# "your physio referral", « votre demande en physiothérapie », "the social worker ... about your".
ALLIED_WORDS = (
    "physio|physiotherapy|physiotherapist|physical therapy|physical therapist|occupational therapy|"
    "occupational therapist|ot|dietitian|dietician|nutritionist|kinesiologist|chiropractor|"
    "social worker|podiatrist|foot care nurse|respiratory therapist|"
    "physiotherapie|physiotherapeute|ergotherapie|ergotherapeute|ergo|dieteticienne|dieteticien|"
    "nutritionniste|kinesiologue|chiropraticien|chiropraticienne|travailleuse sociale|travailleur social|"
    "podiatre|inhalotherapeute"
)
_ALLIED = _words(ALLIED_WORDS)
CARE = [
    rule(TOPIC_WORDS, _near(_TOPIC, _SERVICE, 4, both=True),
         # "the group for men dealing with anger", « pour les personnes qui vivent de l'anxiété »
         rf"\bfor (?:people|men|women|teens|youth|parents|caregivers|seniors|adults|kids|children) (?:who|with|living "
         rf"with|dealing with|coping with|affected by)(?: \w+){{0,3}} {_TOPIC}",
         rf"\bpour (?:les )?(?:personnes|hommes|femmes|jeunes|gens|parents|proches aidants|aidants|aines|adultes|"
         rf"enfants|ados) (?:qui|vivant|ayant|touchees? par|aux prises avec|avec)(?: [a-z']+){{0,4}}? ?{_TOPIC}"),
    # "healthy eating" and « saine alimentation » are for everyone; « troubles de l'alimentation » is not.
    rule("troubles|trouble", r"\btroubles? (?:de l'|d'|des )?alimentation\b"),
    rule("988|866|3553|811|appelle|ecoute",
         r"\b988\b|\b1 ?866 ?appelle\b|\b1 866 277 3553\b|\b811,? (?:option|choix) 2\b|\bjeunesse,? j'ecoute\b"),
    rule("crisis|distress|suicide|help|ligne",
         r"\b(?:crisis|distress|suicide|help) (?:line|centre|center|team|phone|text line)\b|\bligne (?:de crise|d'ecoute|"
         r"d'aide|de prevention)\b"),
    rule("thoughts|hurt|harm|kill|hurting|harming|killing|mal|jours|unsafe|securite|wanting|want|vouloir|pensees|"
         "dead|finir|safe",
         # a safety check of the patient's own: "are you feeling safe tonight?", « vous sentez-vous en sécurité? »
         r"\b(?:are you|you are|you're|do you feel|are you feeling|you feel|you feeling) (?:feeling )?safe(?: (?:tonight|at home|"
         r"right now|today|now|these days))?\b(?! (?:to|for|in the|on the|with the)\b)"
         r"|\b(?:vous sentez vous|te sens tu|vous sentez vous toujours|etes vous|es tu) en securite\b"
         r"|\bthoughts of (?:hurting|harming|killing|ending)\b|\b(?:hurt|harm|kill)(?:ing)? yourself\b"
         r"|\b(?:vous|te) faire du mal\b|\bmettre fin a (?:vos|tes) jours\b|\b(?:feel|feeling|you are|you're) unsafe\b"
         r"|\b(?:vous ne vous sentez pas|tu ne te sens pas|vous sentez pas|te sens pas) en securite\b"
         r"|\b(?:not|don't|do not|no longer) (?:wanting|want) to (?:be here|be alive|live|wake up)\b"
         r"|\bne plus vouloir (?:etre la|vivre|vous reveiller)\b|\b(?:thoughts|pensees) (?:of|de) (?:death|dying|"
         r"mort|mourir)\b|\bbetter off dead\b|\ben finir\b"),
    rule("thoughts|mood|spirits|humeur|moral|coping|diagnosis|diagnostic|files|allez|holding|coup|face",
         r"\b(?:how are|how have) (?:your|you been with your) (?:thoughts|mood|spirits)\b|\b(?:your|votre|ton) "
         r"(?:mood|humeur|moral)\b|\ble moral\b|\bhow you(?:'re| are| have been)? (?:coping|holding up|managing)\b"
         r"|\bsince (?:your|the) diagnosis\b|\bdepuis (?:l'annonce du|le) diagnostic\b"
         r"|\bcomment (?:tu files|vous allez depuis|vous tenez le coup|tu tiens le coup|vous faites face)\b"
         r"|\b(?:tenez|tenir|tiens) le coup\b"),
    # seventh round: the gentle forms of a mental-health follow-up: how the patient is getting through
    # (« comment vous arrivez à passer à travers »), how they have seemed ("you've seemed down lately",
    # « vous avez l'air épuisée »), their group said as a place ("see you at group", « on s'ennuie de vous au
    # groupe ») and their own worker ("your worker can drive you")
    rule("travers|coup|face|air|seemed|looked|sounded|seem|seems|look|looks|sound|sembl*|group|groupe|worker|"
         "intervenant|intervenante|accompagnatrice|accompagnateur|feeling|felt|feel|sentir|plan|tonight|night|weekend|"
         "soir|nuit|semaine|bed|morning|lever",
         r"\b(?:vous arrivez|tu arrives|t'arrives|arrivez vous|arrives tu|reussissez vous|reussis tu|vous reussissez|"
         r"tu reussis) a (?:passer (?:a|au) travers|tenir le coup|faire face|garder la tete hors de l'eau)\b"
         r"|\byou(?:'ve| have)? (?:seemed|looked|sounded|seem|look|sound)(?: \w+){0,2}? (?:down|low|flat|exhausted|"
         r"withdrawn|on edge|overwhelmed|drained|worn out|discouraged|hopeless|anxious|teary)\b"
         r"|\b(?:vous avez|tu as|t'as|t'avais|vous aviez) l'air (?:\w+ ){0,2}?(?:epuisee?|triste|down|a bout|abattue?|"
         r"decouragee?|deprimee?|anxieu(?:x|se)|stressee?|cernee?)\b|\b(?:vous|tu) sembl\w+ (?:\w+ ){0,2}?(?:epuisee?|"
         r"triste|down|a bout|abattue?|decouragee?|deprimee?|anxieu(?:x|se))\b"
         # what the patient said they felt: "you mentioned feeling overwhelmed", « vous nous aviez dit vous sentir à bout »
         r"|\byou (?:mentioned|said|told (?:us|me|the \w+)|shared)(?: that)?(?: you(?:'d| had| were| have|'ve)?)?(?: been)? "
         r"(?:feeling|felt|feel) (?:\w+ )?(?:overwhelmed|down|low|anxious|stressed|hopeless|flat|on edge|panicky|"
         r"depressed|exhausted|burnt out|burned out|numb|empty|worthless)\b"
         r"|\b(?:vous|tu) (?:nous |m'|me )?(?:aviez|avez|avais|as) (?:dit|mentionne|confie) (?:vous sentir|te sentir|que "
         r"(?:vous vous sentiez|tu te sentais|vous etiez|tu etais)) (?:\w+ )?(?:a bout|depassee?|epuisee?|deprimee?|"
         r"anxieu(?:x|se)|stressee?|decouragee?|down|vide|submergee?|a plat)\b"
         # a safety plan made with the patient ("remember the plan we made together", « le plan qu'on a fait ensemble »),
         # a hard night ("if tonight gets hard", « si ce soir c'est difficile »), trouble getting up
         r"|\bthe (?:safety |crisis )?plan (?:we|you and i|you and me) (?:made|wrote|put together|came up with)\b"
         r"|\ble plan (?:de (?:securite|crise) )?(?:qu'on a|que nous avons|que vous avez) (?:fait|ecrit|prepare|bati)\b"
         r"|\bif (?:tonight|the night|this weekend) (?:gets|is|feels) (?:hard|rough|too much|dark|heavy)\b"
         r"|\bsi (?:ce soir|la nuit|cette fin de semaine) (?:c'est|est|devient) (?:difficile|dur|trop|lourd)\b"
         r"|\b(?:trouble|hard time|struggling|difficulty) getting (?:out of bed|up in the morning)\b"
         r"|\b(?:misere|difficulte|de la peine|du mal) a (?:vous|te|se|me) lever\b"
         r"|\b(?:at|to|in|after|before|skip|skipped|miss|missed|back to) group\b(?! (?:rates?|discounts?|bookings?|"
         r"photos?|chats?|texts?|emails?|plans?|insurance|benefits)\b)"
         r"|\b(?:on s'ennuie de (?:vous|toi)|vous nous manquez|tu nous manques|(?:we|we've) miss(?:ed)? you) "
         r"(?:\w+ ){0,2}?(?:au groupe|a la rencontre|at (?:the )?group|in group)\b"
         r"|\b(?:your|ur|ton|ta|votre) (?:outreach |support |youth |key |mental health |street |de milieu )?"
         r"(?:worker|intervenante?|accompagnat(?:rice|eur))\b(?! (?:de |d')?(?:l'assurance|la cnesst|la saaq|insurance|"
         r"compensation|wsib))"),
    rule("sober|clean|sobre|consommer|boire|alcool|fumer|smoke|drink|drinking|smoking|using|cigarette|cigarettes",
         r"\b(?:\d+|one|two|three|six|a|un|une|deux|trois|six) (?:full )?(?:days?|weeks?|months?|years?|jours?|"
         r"semaines?|mois|ans?|annees?)\b(?: \w+)? (?:sober|clean|smoke free|alcohol free|without (?:a drink|drinking|"
         r"smoking|using|a cigarette)|sobre|sans (?:consommer|boire|alcool|fumer|cigarette|consommation))\b",
         r"\bsans consommer\b|\b(?:smoke|alcohol|drug) free\b|\bsans (?:fumer|cigarette) depuis\b"
         r"|\b(?:votre|ton|your) (?:annee|mois|year|month|semaine|week) sans (?:fumer|boire|alcool|consommer)\b"),
    rule("drinking|alcohol|using|smoking|vaping|cigarettes|weed|cannabis|boire|alcool|consommer|fumer|consommation|"
         "drugs|drogues|pills|pilules|comprimes|opioids|opioides|street|rue",
         r"\b(?:cut down|cutting down|cut back|stopped|quit|quitting|stopping|reduce|reducing|cutting back) (?:on )?"
         r"(?:the |your )?(?:drinking|alcohol|using|smoking|vaping|cigarettes|weed|cannabis|pills|pain pills|"
         r"opioids|drugs)\b|\b(?:off|sans) "
         r"(?:cigarettes|alcohol|alcool|drugs|drogues)\b"
         r"|\b(?:arrete|cesse|diminue|reduit|arreter|cesser|diminuer|reduire|diminution) (?:de |la |l'|votre |vos )?"
         r"(?:boire|alcool|consommer|fumer|consommation|votre consommation|cigarette|les pilules|les comprimes|"
         r"les opioides|les drogues)\b"
         r"|\b(?:street|de rue|dans la rue|on the street|from the street)\b(?: \w+){0,3}? ?(?:drugs|pills|opioids|"
         r"drogues|pilules|opioides)\b|\b(?:drugs|pills|opioids|drogues|pilules|opioides)\b(?: \w+){0,6} "
         r"(?:dans la rue|on the street|from the street|de rue)\b"
         r"|\bwithout (?:alcohol|drinking|drugs|cigarettes|smoking|using)\b"),
    rule("counsellor|counselor|conseiller|conseillere|therapist|therapeute|psy|psychologue|intervenant|intervenante|"
         "travailleuse|travailleur|worker",
         _near(r"\b(?:counsell?or|conseill\w+|therapist|therapeute|psy|psychologue|intervenante?|travailleuse sociale|"
               r"travailleur social|social worker)\b",
               r"\b(?:session|sessions|seance|seances|rencontres? de suivi|therapy|therapie)\b", 8, both=True)),
    # Methadone and buprenorphine logistics: an observed dose, carries.
    rule("therapy|therapie|session|seance|sessions|seances",
         r"\b(?:therapy|counselling|counseling) (?:session|sessions|appointment|appointments)\b"
         r"|\b(?:seance|seances|rencontre|rencontres|rdv) de (?:therapie|psychotherapie|counseling)\b"),
    # sixth round: the patient's own session with someone ("your session with Maya", « votre séance avec Maya »)
    rule("session|sessions|seance|seances",
         r"\b(?:your|ur) (?:next )?sessions? (?:with|on|is|are|tomorrow|today|this|next)\b"
         r"|\b(?:votre|vos|ta|ton) (?:prochaine )?seances? (?:avec|est|sont|de demain|d'aujourd'hui|cette|de jeudi|de lundi|"
         r"de mardi|de mercredi|de vendredi)\b"),
    rule("observed|witnessed|observee|carry|carries|emporter|supervised|supervisee",
         r"\b(?:observed|witnessed|supervised) dos(?:e|es|ing)\b|\bdoses? (?:observee|supervisee)s?\b"
         r"|\b(?:your|the|next|vos|les|prochaine) carr(?:y|ies)\b|\bcarr(?:y|ies) (?:schedule|pickup|pick up|days?)\b"
         r"|\bdoses? a emporter\b|\bremise de doses\b"),
    # sixth round: the patient's own helper in psychosocial or addiction care ("your social worker Linda",
    # « votre intervenante Josée », « ton parrain »): a possessive on such a helper is this patient's care
    rule("social|counsellor|counselor|therapist|psychotherapist|caseworker|case|outreach|street|peer|support|"
         "addiction|sponsor|travailleur|travailleuse|travailleurs|travailleuses|intervenant|intervenante|"
         "intervenants|intervenantes|therapeute|psychotherapeute|psychoeducatrice|psychoeducateur|aidant|aidante|"
         "parrain|marraine",
         r"\b(?:your|ur) (?:social worker|counsell?or|therapist|psychotherapist|case ?worker|outreach worker|street "
         r"worker|peer (?:support )?worker|support worker|addiction worker|sponsor)\b"
         r"|\b(?:votre|ton|ta|tes|vos) (?:travailleu(?:r|se)s? soci(?:al|ale|aux|ales)|intervenante?s?|therapeute|"
         r"psychotherapeute|psychoeducat(?:rice|eur)|paire? aidante?|parrain|marraine|travailleu(?:r|se) de rue)\b"),
    # the patient's own use of a substance: « ta conso de pot », "your use of alcohol"
    rule("conso|consommation|use|usage|consumption",
         r"\b(?:ta|votre|ton|your|ur) (?:conso|consommation|use|usage|consumption) (?:de |d'|du |of )?(?:pot|cannabis|"
         r"weed|alcool|alcohol|drogues?|drugs|meth|speed|coke|cocaine|crack|opioides?|opioids|fentanyl|crystal|"
         r"substances?|boisson)\b|\bconso de (?:pot|cannabis|drogues?|coke|speed|crystal|meth)\b"),
    # sixth round: the patient's own count of what they use ("how many drinks a night", « combien de verres »)
    rule("drinks|beers|glasses|verres|bieres|consommations|cigarettes|joints|puffs",
         r"\b(?:how many|combien de) (?:drinks|beers|glasses of wine|verres|bieres|consommations|cigarettes|joints|puffs)\b"),
    rule("devant|front|pharmacist",
         r"\bdoses? devant (?:le|la) pharmacien(?:ne)?\b|\bdoses? in front of (?:the|your) pharmacist\b"),
    rule("jeu|gambling|jeux|betting|paris",
         r"\b(?:pour|sur) (?:le |les )?(?:jeu|jeux de hasard|paris sportifs)\b(?! (?:video|de societe|libre))"
         r"|\bjeu (?:excessif|compulsif|pathologique)\b|\bgambling\b"),
    rule("therapy|therapie|treatment|traitement|therapies",
         r"\b(?:since|after|depuis|apres) (?:starting |you started |the start of |le debut de |le debut du |"
         r"le debut des )?(?:the |your |la |votre |vos |les |le )?(?:therapy|therapie|therapies|treatment|"
         r"traitement)\b"),
    rule(ALLIED_WORDS,
         rf"\b(?:your|votre|vos|ton|ta) (?:\w+ )?{_ALLIED} (?:referral|appointment|session|sessions|assessment|"
         r"evaluation|rdv|rendez vous|seance|seances|plan|exercises|exercices)\b",
         rf"\b(?:referral|referred|refer|demande|reference|refere|referee) (?:\w+ ){{0,3}}(?:to |for |en |a |au |"
         rf"pour |vers )?(?:the |la |le |l'|un |une )?{_ALLIED}",
         rf"{_ALLIED} (?:for|pour) (?:the |your |votre |vos |la |le |les |l')?(?:\w+ )?{_BODY}",
         rf"\b(?:social worker|travailleuse sociale|travailleur social)\b{_gap(8)}(?:about|au sujet de|concernant|"
         r"pour) (?:your|votre|vos|ta|ton|tes) (?:situation|family|famille|home|housing|logement|child|enfant)"),
    # A specialist or clinic named by the part of the body it treats: "the kidney doctor",
    # « le spécialiste du cœur ».
    rule("specialist|doctor|clinic|surgeon|team|unit|nurse|specialiste|medecin|clinique|chirurgien|chirurgienne|"
         "equipe|unite|infirmiere",
         # (the English form never reads a French body word: "the main clinic" is not a hand clinic)
         rf"\b(?!(?:main|front|col|rate|cote|os|cou|nez|tete|dos|bras) )(?:{_BODY}|bone|skin|nerve) "
         r"(?:specialist|doctor|clinic|surgeon|team|unit)\b",
         rf"\b(?:specialiste|medecin|clinique|chirurgien|chirurgienne|equipe|unite|infirmiere) (?:du|de la|des|de l'|"
         rf"de|pour les|pour le|pour la) ?(?:{_BODY}|nerfs)\b(?! (?:de|du|des)\b)"),
]
CARE_WEAK = [
    rule("therapist|therapeute|support|soutien|how|checking|prendre|comment|since|depuis|days|journees|missed|right|fait|"
         "voir|see|"
         "manque|everything|tout|talk|parler|jaser|quelqu",
         r"\b(?:therapist|therapeute|support group|groupe de soutien)\b"
         r"|\bhow (?:are you|have you been) (?:doing|feeling|holding up|coping|sleeping)\b|\bhow have you been\b"
         r"|\bchecking in on you\b|\bprendre de (?:vos|tes) nouvelles\b|\bcomment (?:allez vous|vas tu|ca va|"
         r"dormez vous|dors tu|vous vous sentez|tu te sens|vous sentez vous|te sens tu)\b"
         r"|\bsince our (?:conversation|talk|discussion)\b|\bdepuis notre (?:discussion|conversation)\b"
         r"|\b(?:bad|hard|tough|low|dark|rough|heavy) days\b|\b(?:mauvaises|dures|sombres|lourdes) journees\b"
         r"|\b(?:missed|manque) (?:your |vos )?(?:\w+ ){0,3}(?:sessions|seances|rencontres)\b"
         r"|\bis everything (?:ok|okay|alright|all right)\b|\best ce que tout va bien\b"
         r"|\bif you (?:need|want) (?:to talk|someone to talk to)\b|\bsi vous avez besoin (?:de parler|de jaser)\b"
         r"|\bquelqu'un a qui parler\b"
         # seventh round: a call the patient made in distress ("you did the right thing calling us last night")
         r"|\byou did the right thing (?:calling|reaching out|texting|coming in)\b"
         r"|\b(?:to )?see how you(?:'re| are) (?:doing|feeling|holding up)\b|\bvoir comment (?:vous allez|tu vas|ca va)\b"
         r"|\b(?:vous avez|tu as|t'as) bien fait (?:de nous|de m'|d')(?:appeler|ecrire|texter|contacter)\b"
         r"|\bjournees (?:plus )?(?:difficiles|dures|sombres|lourdes)\b"),
    rule("referral|referred|refere|reference|demande",
         r"\b(?:your|votre) (?:referral|reference|demande de consultation)\b|\b(?:we|dr\.? \w+|the doctor) referred you\b"
         r"|\b(?:on|la dre?|le dr|le medecin) vous a refere"),
]

# --- allergy testing and reactions --------------------------------------------------------------
_ALLERGEN = (r"(?:peanuts?|tree nuts?|nuts|sesame|milk|eggs?|shellfish|lobster|shrimp|fish|wheat|soy|cats?|dogs?|"
             r"pollens?|grass|ragweed|dust mites?|mites|latex|penicillin|amoxicillin|bees?|wasps?|venom|molds?|moulds?)")
_ALLERGEN_FR = (r"(?:arachides?|noix|sesame|lait|oeufs?|fruits de mer|homard|crevettes?|poissons?|ble|soya|chats?|"
                r"chiens?|pollens?|graminees|herbe a poux|acariens|latex|penicilline|amoxicilline|abeilles?|guepes?|"
                r"venin|moisissures)")
ALLERGY = [
    rule("allerg*",
         _near(r"\ballerg\w*", _words(
             "test|tests|testing|result|results|reaction|reactions|shot|shots|injection|injections|clinic|"
             "panel|report|tested|rapport|resultats|resultat|reaction|reactions|clinique|piqures|cutanes|"
             "cutane|injection|injections|liste|list|pills|pilules|medication|medicaments|epreuve"), 3, both=True)),
    rule("reacted|reaction|reactions|react|reagi|reagit",
         r"\b(?:reacted|reaction|reactions|react|reagi|reagit) (?:to|au|a la|aux|a l')\b|\b(?:your|votre|a|une) "
         r"(?:allergic )?(?:reaction|reaction allergique)\b"),
    rule("antihistamin*|epi|epipen|epipens|auto*|pens",
         r"\b(?:antihistamin\w*|epi ?pens?|auto ?inject\w*|milk ladder|echelle du lait)\b"),
    # sixth round: a test or a food challenge named by what it tests ("testing for sesame and tree nuts",
    # "the milk challenge", « les IgE pour le homard », « test de provocation aux arachides »)
    rule("challenge|challenges|provocation|ige|testing|test|tests|tested|tester|epreuve",
         rf"\b(?:{_ALLERGEN}|food|nut|drug|baked milk|baked egg) challenges?\b"
         rf"|\b(?:testing|tests?|tested|skin test(?:ing)?) (?:for|to) (?:\w+ ){{0,2}}?(?:{_ALLERGEN})\b"
         rf"|\b(?:tests?|tester|epreuves?|provocation|ige) (?:pour|aux?|a la|a l'|au|du|de la|contre) (?:le |la |les |l')?"
         rf"(?:\w+ ){{0,2}}?(?:{_ALLERGEN_FR})\b|\bige\b(?! \w+ment)"),
    rule("reintroduc*|reintrodui*|introduce",
         r"\b(?:reintroduc\w*|reintrodui\w*|introduce (?:baked|peanut|egg))\b"),
]

# --- infections: instructions, antibiotics' abbreviations, contagion ---------------------------
INFECTION = [
    rule("#", r"\bx ?\d+ ?(?:d|days|j|jrs|jours|wks|weeks|sem|semaines)\b"),
    rule("finish|complete|continue|keep|stay|take|finir|finissez|terminer|terminez|continuez|continuer|poursuivez|"
         "poursuivre|using",
         r"\b(?:finish|complete|continue|keep taking|stay on|take all of|keep using|finir|finissez|terminer|"
         r"terminez|continuez|continuer|poursuivez|poursuivre) (?:the |your |all |la |le |les |vos |votre |l')?"
         r"(?:full |whole |entire )?(?:treatment|traitement|antibiotics?|pills|tablets|drops|gouttes|"
         r"cream|creme|capsules|medication|medicament|boite|antibio|atb|abx|antibios)\b"),
    rule("course", r"\b(?:full|whole|entire) course\b|\bcourse of (?:antibiotics|treatment|abx|pills|the medication)\b"),
    rule("better|mieux",
         r"\beven if (?:you|he|she|they) (?:feel|feels|are feeling|is feeling|get|gets) better\b"
         r"|\bmeme si (?:vous|il|elle|tu|ca) (?:vous sentez|allez|va|se sent|te sens|vas|sentez) mieux\b"),
    rule("finish|finir|finissez|terminez|terminer|prendre|prenez",
         r"\b(?:finish|finir|finissez|terminez|terminer) (?:it|le|la|les)? ?(?:all|au complet|tout)\b"
         r"|\b(?:prendre|prenez) (?:le|la|les) au complet\b"),
    rule("isolat*|isolez|isoler|isolez|isole", r"\b(?:self )?isolat\w*|\bisolez\b|\bisole(?:r|z)? vous\b"),
    rule("stay|restez|rester|reste",
         r"\bstay (?:off|home from) (?:work|school|daycare)\b",
         # "stay home until the fever is gone", « restez à la maison jusqu'à 24 h sans fièvre »
         r"\b(?:stay|restez|rester|reste) (?:at )?(?:home|a la maison)(?: [a-z']+){0,3} (?:until|jusqu'a|tant qu|"
         r"for \d|pendant \d|as long as)(?! (?:your (?:appointment|turn|visit|time)|we |it's your|it is your|"
         r"votre (?:rdv|tour|rendez|heure)|on vous|ce qu'on vous|qu'on vous|ce que nous))"),
    rule("keep|gardez|garder",
         r"\b(?:keep|gardez|garder) (?:him|her|them|your (?:child|son|daughter|kid|kids|baby)|le|la|votre enfant|"
         r"votre fils|votre fille|votre garcon|les enfants)? ?(?:at )?(?:home|a la maison)\b"
         + _gap(4) + r"(?:until|jusqu'a|pour \d|for \d|\d+ ?h|tant qu|as long as)"),
    rule("back|return|retour|retourner|revenir",
         r"\b(?:back|return|retour|retourner|revenir|go back|retourne) (?:to|a) (?:daycare|school|work|la garderie|l'ecole|"
         r"le travail|la maternelle|class)\b" + _gap(6) + r"(?:after|until|apres|jusqu'a|when|quand|if|si|once|"
         r"une fois|des qu|as soon as)"),
    rule("share|partagez",
         r"\b(?:don't|do not|ne) (?:share|partagez) (?:pas )?(?:your |vos )?(?:towels|cups|utensils|serviettes)\b"),
    rule("wash|lavez", r"\b(?:wash your hands|lavez vous les mains) (?:after|apres)\b"),
    rule("tracing|contacts|public|publique",
         r"\b(?:contact tracing|recherche des contacts|public health nurse|public health unit|sante publique)\b"),
    rule("partner|partners|partenaire|partenaires|anyone|contacts",
         r"\b(?:your |votre |ton |ta )?(?:partner|partners|partenaire|partenaires) (?:should|must|needs to|need to|doit|"
         r"doivent|will need to|devra|devrait) (?:also |aussi )?(?:be |etre |se faire |get )?(?:treated|tested|checked|"
         r"traitee?s?|testee?s?|depistee?s?|traiter|tester|depister)\b",
         r"\b(?:your |votre |ton |ta )?(?:partner|partners|partenaire|partenaires) (?:also |aussi )?(?:needs?|doit|"
         r"doivent|a besoin d'un) (?:a |an |un )?(?:treatment|traitement|test|depistage)\b",
         # "let any partners from the last 60 days know they should get tested too"
         r"\b(?:partner|partners|partenaire|partenaires|anyone you(?:'ve| have)? (?:were|been|slept) with|sexual contacts|"
         r"contacts sexuels)\b(?:\((?:s|e|es)\))?(?: \w+){0,8}?[ '](?:they|he|she|ils|elles|il|elle) (?:should|must|"
         r"need to|needs to|doivent|doit|devraient|devrait|can|could|may|peuvent|puissent|pourront|se fassent|se fasse) "
         r"(?:also |aussi )?(?:be |get |se faire |etre )?(?:tested|"
         r"treated|checked|testee?s?|traitee?s?|depistee?s?|tester|traiter|depister)\b"),
    rule("mask|masque", r"\b(?:mask|masque) (?:around|near|autour des|pres des) (?:others|autres)\b"),
    rule("everyone|everybody|family|household|monde|famille",
         r"\b(?:everyone|everybody|the whole family|all of you|tout le monde|toute la famille)(?: (?:in|at|dans|a) "
         r"(?:the|your|la|votre) (?:house|home|household|maison|famille))? (?:should|must|needs to|need to|has to|doit|"
         r"devrait|devra) (?:also |aussi )?(?:be |etre |get |se faire )?(?:treated|tested|traite|traitee|teste|testee|"
         r"traiter|tester)\b"),
    rule("partner|partenaire|conjoint|conjointe",
         r"\b(?:your|ur) partner's (?:results?|tests?|swab|treatment)\b|\b(?:resultats?|tests?|traitement) de "
         r"(?:votre|ton|ta) (?:partenaire|conjoint|conjointe)\b"),
    rule("contagious|contagieux|contagieuse",
         r"\b(?:you're|you are|vous etes|he's|she's|he is|she is|il est|elle est) (?:still )?(?:contagious|contagieux|"
         r"contagieuse)\b"),
    rule("bacteria|bacterium|bacterie|bacteries|resistant|resistante",
         r"\b(?:the )?bacteri(?:a|um|e|es)\b|\bresist(?:ant|e) (?:to|a)\b"),
    rule("culture|swab|prelevement|sample|echantillon",
         r"\b(?:culture|swab|prelevement|sample|echantillon) (?:grew|shows|showed|montre|est positif|is positive)\b"),
    rule("ear|oreille", r"\b(?:keep|gardez) (?:the |your |l')?(?:ear|oreille)\b" + _gap(2) + r"(?:dry|seche)"),
    rule("drops|gouttes", r"\b(?:eye|ear) drops\b|\bgouttes (?:pour les yeux|dans l'oreille|ophtalmiques|pour l'oreille)\b"),
    rule("throw|jetez", r"\b(?:throw away|jetez) (?:your |votre )?(?:eye )?(?:makeup|maquillage)\b"),
    rule("refaites|repeat", r"\b(?:refaites le traitement|repeat the treatment)\b"),
    rule("bedding|sheets|linens|literie|draps|towels|serviettes|clothes|vetements",
         r"\b(?:wash|lavez|laver)(?: \w+){0,2} (?:bedding|sheets|linens|literie|draps|towels|serviettes|clothes|"
         r"vetements)(?: \w+){0,3} (?:in hot water|hot|a l'eau chaude|eau chaude)\b"),
    rule("swimming|baignade|piscine|swim",
         r"\bno (?:swimming|swim)\b" + _gap(4) + r"(?:until|before|drops|ear)\b|\bpas de baignade\b"),
    rule("fever|fievre",
         r"\b(?:no|without|sans) (?:more )?(?:fever|fievre)\b" + _gap(4) + r"(?:for|pendant|depuis) ",
         r"\b(?:fait|fais|faites|a) plus de (?:fievre)\b|\b(?:has|have) no more fever\b"
         r"|\b(?:fever|fievre) (?:has been |is )?(?:gone|partie)\b"),
]
# Prescription shorthand, matched in the original text (capitals: "BID", never the word "bid").
INFECTION_CASED = r"\b(?:BID|TID|QID|QHS|QAM|QPM|PRN|q\d{1,2}h|tid|qid|qhs)\b"

# --- wound care ---------------------------------------------------------------------------------
WOUND_THING_WORDS = (
    "stitches|staples|sutures|points|agrafes|steri strips|strips|drain|drains|packing|meche|dressing|"
    "dressings|pansement|pansements|bandage|bandages|diachylons|diachylon|glue|colle|cast|platre|"
    "attelle|splint|gauze|gaze|bandelettes|clips|compression stocking|bas de compression|sling|"
    "scab|croute|boot|orthese"
)
_WOUND_THING = _words(WOUND_THING_WORDS)
# What staff tell a patient to do with them, without the words that are also loyalty points,
# strips of tickets, a sling bag or a drain in the bathroom.
WOUND_THING_STRICT_WORDS = (
    "stitches|staples|sutures|agrafes|steri strips|dressing|dressings|pansement|pansements|bandage|"
    "bandages|diachylons|diachylon|packing|meche|platre|attelle|splint|gauze|gaze|bandelettes|"
    "compression stocking|bas de compression|scab|croute|orthese"
)
_WOUND_THING_STRICT = _words(WOUND_THING_STRICT_WORDS)
_WOUND_VERB = _words(
    "removed|remove|come out|comes out|taken out|changed|change|changing|fall off|falls off|"
    "peel off|peels off|retires|retire|retirees|retirer|enleves|enlever|enlevees|enleve|enlevez|"
    "s'enlevent|s'enleve|changer|change|tomberont|tombent|tomber|partir|partira|va partir|get wet|"
    "wet|dry|mouille|mouiller|mouillez|sec|seche|leave on|stay on|on for|rester|laisser|laissez|"
    "checked|verifie|verifier|redone|refait|refaire|redo"
)
WOUND = [
    rule(WOUND_THING_WORDS,
         rf"\b(?:your|the|vos|les|votre|ton|tes|le|la|l') ?{_WOUND_THING}{_gap(8)}" + _words(
             "removed|remove|come out|comes out|taken out|fall off|falls off|peel off|peels off|retires|retire|"
             "retirees|retirer|enleves|enlever|enlevees|s'enlevent|s'enleve|tomberont|tombent|tomber|"
             "va partir|partira")),
    rule(WOUND_THING_STRICT_WORDS,
         rf"\b(?:your|the|vos|les|votre|ton|tes|le|la|l'|outer|du dessus) ?{_WOUND_THING_STRICT}{_gap(4)}{_WOUND_VERB}",
         rf"\b(?:leave|keep|remove|take off|change|wet|soak|laissez|laisser|gardez|garder|enlevez|enlever|retirez|"
         rf"retirer|changez|changer|mouillez|mouiller|mettez|refaire|redo|check|verifier|controle) (?:(?:on|off|pas|"
         rf"the|your|le|la|les|vos|votre|l'|outer|du|de) )*{_WOUND_THING_STRICT}"),
    rule("change|changes|changed|changing|changer|changera|changez|changement|refaire",
         r"\b(?:change|changes|changed|changing|changer|changera|changez|changement|refaire) (?:de |du |le |la |les |"
         r"your |the |vos |votre )?(?:dressing|dressings|pansement|pansements|packing|meche|bandage|vac|gauze|gaze)\b"),
    rule("keep|gardez|garder",
         r"\b(?:keep|gardez|garder) (?:the |your |la |le |votre |l')?(?:incision|wound|plaie|dressing|pansement|"
         r"bandage|cut|coupure|cast|platre|scar|cicatrice)\b"),
    rule("photo|picture|pic|image|photos|pictures",
         r"\b(?:photo|picture|pic|image)s? (?:of|de) (?:the |your |la |votre |l')?(?:wound|incision|rash|cut|scar|"
         r"burn|lesion|mole|site|plaie|eruption|coupure|cicatrice|brulure|lesion|peau|foot|pied|leg|jambe|eye|eyes|"
         r"oeil|yeux|retina|retine|fond d'oeil)\b"),
    rule("site",
         r"\b(?:surgical|biopsy|incision|operation|injection|drain|catheter|picc line|port) site\b|\bsite (?:de l'operation|"
         r"de la biopsie|operatoire|de l'injection|de la chirurgie|du drain|du catheter|de la picc)\b"),
    rule("scar|cicatrice|burn|brulure|cut|coupure|incision|wound|plaie",
         r"\b(?:your|the|la|votre|vos|les) (?:c section |cesarienne )?(?:scar|cicatrice|burn|brulure|cut|"
         r"coupure|incision|wound|plaie)\b" + _gap(4) + r"(?:heal\w*|gueri\w*|looks|covered|couvert\w*|infect\w*|clean|"
         r"propre|closed|ferme|fermee|cicatris\w*)",
         r"\b(?:on|to|sur|over) (?:the|your|la|votre|l') ?(?:scar|cicatrice|incision|wound|plaie|cut|coupure|burn|"
         r"brulure)s?\b"),
    rule("pression|negative|vac", r"\b(?:pression negative|negative pressure|wound vac)\b"),
    rule("fondants|resorbables|dissolvables|dissolvable|dissolving|absorbable",
         r"\b(?:points|fils|sutures|stitches) (?:\w+ )?(?:fondants|resorbables|dissolvables|dissolvable|dissolving|"
         r"absorbable)\b"),
    rule("cast|platre|boot|botte|brace|splint|attelle|sling|echarpe|orthese",
         r"\b(?:your|votre|ton|ta|the|le|la|l') ?(?:cast|platre|walking boot|botte de marche|brace|splint|attelle|sling|"
         r"echarpe|orthese) (?:will|sera|is|est|can|peut|must|doit|needs|should|devrait|has to|va|goes|comes)\b"),
    # sixth round: the patient told to wear or take off a device ("keep the boot on when you walk", « remettez la
    # botte »)
    rule("keep|leave|wear|put|take|gardez|remettez|portez|mettez|enlevez|garder|remettre|porter|enlever",
         r"\b(?:keep|leave|wear|put|take) (?:the|your) (?:walking )?(?:boot|brace|splint|sling|cast|collar) (?:on|off)\b"
         r"|\b(?:gardez|remettez|portez|mettez|enlevez|garder|remettre|porter|enlever) (?:la|votre|ta|le|l') ?(?:botte|"
         r"attelle|orthese|echarpe|collet)\b"),
    rule("sling|cast|brace|splint|boot|echarpe|platre|attelle|botte|orthese|collar|collet",
         r"\b(?:in|dans) (?:the|your|a|la|le|l'|votre|une) ?(?:sling|cast|brace|splint|walking boot|echarpe|platre|"
         r"attelle|orthese|soft collar|collet)\b"),
    rule("healing|healed|gueri|guerie|gueris|cicatrise*|heal|heals|guerit|cicatrisation|cicatris*",
         r"\b(?:is|are|looks|look|est|sont|semble|a bien|ont bien|has|have) (?:healing|healed|gueri|guerie|gueris|"
         r"cicatrise\w*|closed up|closing up)\b|\bheal(?:s|ing|ed)? (?:well|nicely|up)\b|\bguerit bien\b"
         r"|\bbien gueri\w*\b|\bse cicatrise\w*\b|\bbien cicatrise\w*\b|\bcicatrisation\b"),
    rule("covered|couverte|couvert", r"\b(?:covered and dry|dry and covered|couverte? et au sec|au sec et couverte?)\b"),
    rule("meche", r"\b(?:faire|changer|refaire|change) (?:la |votre )?meche\b|\bla meche (?:doit|sera|est)\b"),
    rule("redness|rougeur|rougeurs|swelling|enflure|warmth|chaleur",
         r"\b(?:redness|rougeur|rougeurs|swelling|enflure|warmth|chaleur)\b" + _gap(3) + r"(?:around|autour)\b"),
    rule("lift|lifting|soulever",
         r"\b(?:lift|lifting|soulever) (?:more than |over |anything heavier than |plus de )?\d+ ?(?:pounds|lbs|kg|livres)\b"),
    # tenth round: an activity held back until a set time is aftercare ("no running till your next visit",
    # « pas de sport pendant 2 semaines »)
    rule("no|pas|avoid|evitez|aucun|aucune",
         r"\b(?:no|avoid|avoid any|no more) (?:running|jogging|heavy lifting|lifting|contact sports?|sports?|swimming|"
         r"baths?|hot tubs?|gym|workouts?|exercise|impact|biking|cycling|golf|hockey|soccer|skiing|sex|intercourse)"
         r"(?: or \w+)? (?:till|until|for (?:\d+|two|three|four|six|a few|the next|another)|before (?:your|the) "
         r"(?:next|follow|check|recheck))\b"
         r"|\b(?:pas de|evitez (?:la|le|les)|aucune?) (?:course|jogging|sports?|natation|bains?|baignade|piscine|spa|gym|"
         r"entrainement|efforts?|velo|relations sexuelles|sport de contact)(?: ni \w+)? (?:avant|pendant|jusqu'?a|"
         r"d'ici)\b"),
    rule("saline|salin|stick|adherent*|compresse",
         r"\bsaline\b|\bsalin\b|\bnon (?:stick|adherent\w*) (?:pad|compresse)\b|\bcompresse\b"),
    # « vos fils » are stitches only with what is done to them (« votre fils » is a son).
    rule("fils",
         r"\b(?:enlever|retirer|enleve|retire|enlevez|retirez|retrait des|enlevement des) (?:vos |les |tes )?fils\b"
         r"|\bfils (?:seront|vont etre|peuvent etre|doivent etre) (?:enleves|retires)\b"),
]

# --- before a procedure ---------------------------------------------------------------------------
DIET_WORDS = (
    "nothing to eat|nothing by mouth|no food|no solid food|no solids|no food or milk|no food or drink|stop eating|"
    "arretez de manger|cessez de manger|ne mangez rien|ne mangez plus|"
    "fast from|fasting from|fast after|fasting after|clear fluids|clear liquids|clear juice|"
    "liquid diet|low fibre diet|low fiber diet|low residue diet|sips of water|sip of water|"
    "carbohydrate drink|light breakfast|arrive fasting|come fasting|"
    "rien a manger|rien manger|pas de nourriture|a jeun|liquides clairs|diete liquide|"
    "diete faible en fibres|diete sans residus|boisson de glucides|gorgee d'eau|jus clair|"
    "dejeuner leger|pas de gomme"
)
_DIET = _words(DIET_WORDS)
_WHEN = _words(
    "before|after midnight|from midnight|until|the day before|the night before|the evening before|"
    "the morning of|hours before|avant|apres minuit|a partir de minuit|depuis minuit|des minuit|"
    "jusqu'a|la veille|le matin de|h avant|heures avant"
)
_OPERATION = _words(
    "surgery|operation|procedure|scope|colonoscopy|anesthetic|anaesthetic|sedation|chirurgie|"
    "intervention|sedation|coloscopie|gastroscopie|amygdales|examen|endoscopy|endoscopie"
)
PRE_OP = [
    rule(DIET_WORDS, _near(_DIET, rf"(?:{_WHEN}|{_OPERATION})", 6, both=True)),
    rule("operation",
         r"\b(?:your|his|her|their|son's|daughter's) operation\b(?! hours)",
         r"\b(?:votre|son|sa|ton|ta) operation\b|(?<!heures )\bd'operation\b|\bl'operation\b"),
    rule("shower|wash|douchez|lavez|savon",
         r"\b(?:shower|wash|douchez vous|lavez vous) (?:with|avec) (?:the |le )?(?:antiseptic|chlorhexidine|special|"
         r"savon)\b|\bsavon (?:antiseptique|special|a la chlorhexidine)\b"),
    rule("remove|enlevez|retirez|polish|vernis|makeup|make|maquillage",
         r"\b(?:remove|enlevez|retirez) (?:all |tout )?(?:nail polish|vernis)\b"
         r"|\bno (?:make ?up|nail polish)\b|\bpas de (?:maquillage|vernis)\b"),
    rule("drive|take|reconduire|reconduise|raccompagner",
         r"\b(?:drive|take) you home after\b|\b(?:vous )?reconduire (?:a la maison )?apres\b"
         r"|\b(?:someone|quelqu'un) (?:must|needs to|has to|should|doit|devra) (?:drive|take|vous reconduire|"
         r"vous raccompagner)\b"),
    rule("morning|matin",
         r"\bthe morning of (?:your|the) (?:procedure|surgery|operation|scope|test|exam)\b|\ble matin de "
         r"(?:l'intervention|la chirurgie|l'operation|l'examen|votre intervention|votre chirurgie|votre operation)\b"),
    rule("stop|hold|arretez|cessez",
         r"\b(?:stop|hold|arretez|cessez) (?:your |votre |le |la |l')?(?:\w+ ){0,2}\d+ (?:days|jours) "
         r"(?:before|avant)\b"),
]
PRE_OP_WEAK = [
    rule("before|after|for|avant|apres|pour",
         r"\b(?:before|after|for) (?:your|the) (?:procedure|surgery|scope|exam)\b"
         r"|\b(?:avant|apres|pour) (?:l'intervention|votre intervention|l'examen|votre examen|la procedure)\b"
         r"(?! (?:de conduite|medical|de la saaq|pour l'assurance|d'embauche|pre embauche|annuel|periodique))"),
]

# --- pregnancy by hormone values and weeks -----------------------------------------------------
_GESTATION = r"(?:[6-9]|[1-4]\d) ?(?:weeks?|wks?|semaines?|sem\b)"
_PREGNANCY_NOUN = _words(
    "scan|ultrasound|echo|echographie|sonogram|dating|anatomy|morphologique|nuchal|clarte|growth|"
    "croissance|heartbeat|battement|baby|bebe|sac|glucose|strep|gbs|swab|prelevement|rh|winrho|"
    "rhogam|vaccine|vaccin|rsv|vrs|pregnant|pregnancy|enceinte|grossesse|trimester|trimestre|"
    "obstetrician|obstetricienne|midwife|midwives|sage femme|prenatal|prenatale|sugar|sucre|"
    "glucose test|test de sucre|rendue|birth|accouchement|labour|labor|delivery|induction|declenchement|naissance"
)
PREGNANCY = [
    rule("beta|bhcg|hcg", r"\b(?:beta|bhcg|hcg)(?: hcg)?\b" + _gap(4) + r"\d",
         # seventh round: a beta said by its verdict ("the beta was negative this cycle", « bêta négative »)
         r"\b(?:beta|bhcg|hcg)s? (?:(?:was|is|came back|est revenue?|etait|est) )?(?:negative?|positive?|negatifs?|"
         r"positifs?)\b",
         r"\b(?:second|2nd|next|prochain|prochaine|deuxieme|2e) (?:beta|hcg)\b"),
    rule("hormone|hormonal|quantitative|quantitatif|taux",
         r"\b(?:hormone|hormonal|quantitative|quantitatif)(?: \w+)? (?:level|levels|value|taux|niveau)\b"
         r"|\btaux (?:d'hormones?|quantitatif)\b"),
    rule("weeks|week|wks|wk|semaines|semaine|sem",
         _near(rf"(?:\b(?:at|a|de|of|by|until|to|jusqu'a|vers) {_GESTATION}|\b{_GESTATION}|\b(?:between|entre) "
               rf"(?:[6-9]|[1-4]\d) (?:and|et) {_GESTATION})", _PREGNANCY_NOUN, 6, both=True),
         # "you're 24 weeks", « vous êtes rendue à 24 semaines »
         rf"\b(?:you're|you are|vous etes|tu es|t'es|she's|she is|elle est) (?:now |maintenant )?(?:rendue? |about |"
         rf"environ |past |over |almost |nearly |passed |plus de |presque |passe |passee )?(?:a |at )?{_GESTATION}",
         # sixth round: "at 28 weeks you're due for", « à 36 semaines, vous »
         rf"\b(?:at|a) {_GESTATION},? (?:you|you're|you are|your|vous|tu|t'|votre|ta)\b"),
    # eleventh round: a visit by its week ("your 32-week visit", « votre visite de 32 semaines »)
    rule("week|wk|semaines|sem",
         r"\b(?:your|ur|the) (?:[6-9]|[1-4]\d) ?(?:week|wk) (?:visit|appointment|appt|check|checkup|ultrasound|scan|"
         r"bloodwork)\b|\b(?:visite|rdv|rendez vous|suivi|echo|echographie|prise de sang) (?:de|des) (?:[6-9]|[1-4]\d) "
         r"(?:semaines|sem)\b"),
    # sixth round: the patient is expecting ("since you're expecting", « puisque vous attendez bébé »)
    rule("expecting|attendez|attends",
         r"\b(?:you're|you are|since you're|now that you're) expecting\b(?! (?:a call|us|our|my|the|your|to|it|him|her|"
         r"them|results|news|an?))|\b(?:you're|you are) expecting (?:a baby|a little one|twins)\b"
         r"|\b(?:vous attendez|tu attends|t'attends) (?:un |votre |ton |le )?(?:bebe|enfant|jumeaux)\b"),
    rule("conceive|pregnant|concevoir|enceinte",
         r"\b(?:try(?:ing)? to|essayer de|avant de) (?:conceive|get pregnant|concevoir|tomber enceinte)\b"),
    rule("loss|perte", r"\b(?:confirms? the loss|confirme la perte)\b"),
    # sixth round: a due date beside the pregnancy's words ("your due date from the scan"), not a bill's
    rule("due", _near(r"\bdue date\b", _words("scan|ultrasound|dating|baby|pregnancy|pregnant|weeks|midwife|lmp|period|"
                                             "echo|trimester|ob"), 6, both=True)),
    # sixth round: a fertility cycle counted in days ("on cycle day 1", « au jour 1 du cycle »)
    rule("cycle|day|jour",
         r"\bcycle day \d+\b|\bday \d+ of (?:your|the|her) cycle\b|\bjour \d+ (?:du|de votre|de ton|de son) cycle\b"
         # seventh round: the tests of a cycle day ("your day 3 bloods", « les prises de sang du jour 3 »)
         r"|\bday (?:2|3|21) (?:bloods|blood ?work|blood tests?|labs|hormones?|ultrasound|scan)\b"
         r"|\b(?:prises? de sang|bilan sanguin|echo\w*|analyses?) (?:du|au) jour (?:2|3|21)\b"),
    # seventh round: a birth congratulated ("congratulations on your little one", « félicitations pour votre bébé »)
    rule("congratulations|congrats|felicitations",
         r"\b(?:congratulations|congrats) on (?:your|the) (?:new |beautiful |little )?(?:little one|baby|newborn|bundle of joy|"
         r"baby (?:boy|girl))\b(?!')"
         r"|\bfelicitations pour (?:votre|ton|le|la) (?:nouveau |beau |belle |petit |petite )?(?:bebe|poupon|nouveau ne|"
         r"naissance|accouchement)\b"),
    rule("hormones|hormone|hormonal",
         r"\b(?:your|vos|votre|the|les|le) (?:hormones?|hormone levels?|hormonal levels?|taux d'hormones?)"
         r"(?: (?:are|is|sont|est))? (?:rising|doubling|going up|climbing|montent|doublent|augmentent|monte|double|"
         r"augmente)\b"),
    rule("baby's|baby|bebe|babys",
         r"\b(?:the|your) baby'?s (?:growth|position|movements|heartbeat|heart rate|size|weight|measurements)\b"
         r"|\b(?:croissance|position|mouvements|battements|coeur|taille|poids|mesures) (?:du|de votre) bebe\b"
         r"(?! (?:a la naissance|de \d))"),
    rule("heartbeat|battement|coeur|sac|gestationnel",
         r"\b(?:baby's heartbeat|heartbeat|battement|coeur du bebe|sac gestationnel|one sac|un sac)\b"),
    rule("period|periods|regles|menstruation|menstruations",
         r"\b(?:your|vos|tes) (?:period|periods|regles|menstruations?)\b(?! of)",
         r"\bwhen your period\b|\bquand vos regles\b"),
]

# --- a vaccine given because of a condition, a treatment or an exposure -------------------------
VACCINE_WORDS = (
    "vaccine|vaccines|vaccination|vaccinations|vaccinated|vaccinate|immunization|immunizations|"
    "immunisation|shot|shots|booster|boosters|vaccin|vaccins|vacciner|vaccinee|vaccine|"
    "rappel du|rappel de|rappel d'|rappel contre|rappels contre|rappels du|rappels de|meningo|shingrix|pneumovax|prevnar|pneu c 20|pneumococcal|"
    "pneumocoque|meningococcal|meningocoque|hib|rabies|rage|tetanus|tetanos|rsv|vrs|antigrippal|"
    "vacciner|faites vous vacciner"
)
_VACCINE = _words(VACCINE_WORDS)
_AFTER_EVENT = (
    "exposure|cut|bite|scratch|injury|wound|needle|needlestick|poke|surgery|transplant|splenectomy|"
    "operation|diagnosis|treatment|chemo|contact|coupure|morsure|blessure|piqure|greffe|chirurgie|"
    "diagnostic|traitement|exposition|accident|egratignure|ablation|griffure|egratignures|griffures|morsures|"
    "bat|bats|souris|raccoon|raton|tick|tique"
)
_BECAUSE = (
    r"(?:\bbecause of (?:your|his|her|their)\b|\bbecause (?:you're|you are|you have|he is|she is|you'll be)\b"
    r"|\bdue to (?:your|his|her)\b|\bgiven (?:your|his|her)\b"
    r"|\bsince (?:you're|you are|you have|you've|you'll be)\b(?! (?:asked|requested|booked|called|moved))"
    r"|\bsince your (?!last|previous|most recent|next|appointment|visit|request|booking|call)\w+"
    r"|\bas you(?:'re| are| have)\b(?! (?:asked|requested|booked))"
    r"|\bbefore starting\b|\b(?:your|votre) (?:\w+ )?condition\b"
    # sixth round: "with the cochlear implant", « avec votre greffe »
    r"|\b(?:with|avec) (?:(?:your|his|her|the|votre|son|sa|le|la) |l')(?:new |nouvelle? )?(?:\w+ )?(?:implant|transplant|greffe|"
    r"diagnosis|diagnostic|spleen|rate|pump|pompe|shunt|valve|pacemaker|stimulateur|dialysis|dialyse|chemo|chimio|"
    r"treatment|traitement|pregnancy|grossesse|asthma|asthme|diabetes|diabete|hiv|vih|biologic|biologique)\b"
    r"|\b(?:after|following) (?:your|the|a|his|her) (?:\w+ )?(?:" + _AFTER_EVENT + r")\b"
    r"|\bvu (?:votre|vos|ta|tes)\b|\ba cause de (?:votre|vos|ta|tes)\b|\bcomme (?:votre|vos|vous etes|"
    r"vous prenez|vous avez (?!demande))\b|\bpuisque vous\b(?! (?:avez demande|l'avez demande))"
    r"|\bcomme on vous a (?:enleve|retire|opere|greffe|diagnostique)\w*"
    r"|\ben raison de (?:votre|vos)\b|\bavant de commencer\b|\bdepuis (?:l'|votre |la |le )(?:ablation|greffe|chirurgie|operation|diagnostic)\b"
    r"|\b(?:apres|suite a) (?:votre|vos|la|le|l'|une|un) ?(?:\w+ )?(?:" + _AFTER_EVENT + r")\b)"
)
VACCINE = [rule(VACCINE_WORDS, _near(_VACCINE, _BECAUSE, 10, both=True))]

# --- sleep studies and sleep apnea treatment ---------------------------------------------------
SLEEP = [
    rule("machine|appareil|device|cpap|ppc|donnees|data|telechargement|download",
         r"\b(?:machine|appareil|device|cpap|ppc|c pap) (?:data|download|report|readings)\b|\b(?:donnees|telechargement|"
         r"rapport|lectures) (?:de|du) (?:votre |ton |l')?(?:appareil|machine|cpap|ppc)\b"),
    rule("machine|appareil|mask|masque|device",
         _near(r"\b(?:your|the|votre|l'|le|la|ton|ta) ?(?:machine|appareil|mask|masque|device)\b",
               _words("every night|each night|all night|chaque nuit|toutes les nuits|naps|siestes|download|"
                      "telechargement|hours a night|h par nuit|heures par nuit|titration|titrage|par nuit|a night"),
               6)),
    rule("sleep|sommeil",
         r"\b(?:sleep|sommeil) (?:study|test|lab|clinic|apnea|doctor|specialist|results|diary)\b"
         r"|\b(?:etude|test|laboratoire|labo|clinique|journal) du sommeil\b|\btest de sommeil\b"),
    rule("breathing|respirer|times|fois",
         r"\bstop breathing\b|\b(?:arretez|cessez|arrete|cesse) de respirer\b|\b(?:times|fois) (?:an|per|par|a l') "
         r"(?:hour|heure)\b"),
]

_EVOLVES = _words(
    "better|worse|improved|improving|gone|go away|goes away|go down|goes down|settle|settled|spread|"
    "spreads|spreading|return|returns|come back|comes back|came back|persist|persists|still there|"
    "keeps spreading|keeps coming|getting worse|has improved|hasn't improved|is worse|should be gone|"
    "should go|should settle|clear up|clears up|past the line|break|breaks|slowed|slow down|stopped|"
    "mieux|pire|ameliore|ameliorer|s'ameliore|s'ameliorent|partie|parti|partir|passe|passee|"
    "disparait|disparaitre|diminue|diminuer|diminuent|augmente|augmentent|s'etend|s'etendent|"
    "revient|reviennent|revenir|empire|empirent|persiste|persistent|depasse|encore la|toujours la|"
    "tomber|tombe|calmee|calme|arrete|cesse|calmes|calmees|ameliores|ameliorees|partis|parties|disparus|"
    "disparues|diminues|diminuees|passes|passees"
)
_ASK = (
    r"\b(?:how(?:'s| is| are| has| have| was| were)?|any (?:more|other|further)|still (?:having|getting|any)"
    r"|checking (?:in )?on|follow(?:ing)? up on|after the|comment (?:va|vont|allait|se porte|se portent)|"
    r"est ce que|encore|toujours|d'autres|plus de|des nouvelles de|suite a|et (?:le|la|les|l'))"
)
_ASK_IS = r"\b(?:is|are|did|has|have) (?:the|your|that|his|her|their|those)"
_DET = r"(?:the |your |that |his |her |their |those |le |la |les |l'|votre |vos |ton |ta |tes |du |de la |des |de l')?"
# Verbs of a symptom, asked about or said of the patient: « toussez-vous encore », "still coughing".
_SYMPTOM_VERB = (
    r"\b(?:toussez|tousse|toussent|vomissez|vomit|vomissent|saignez|saigne|saignent)(?: vous| t il| t elle| il| elle)?"
    r" (?:encore|toujours|souvent|la nuit|beaucoup)\b"
    r"|\b(?:wetting the bed|wets the bed|mouille(?: t (?:il|elle))? (?:encore |toujours )?son lit|fait (?:encore )?"
    r"pipi au lit)\b"
    r"|\b(?:how many times|combien de fois|still|encore|has he|has she|did he|did she|a t il|a t elle|avez vous|"
    r"have you)(?: [a-z']+){0,4} (?:throw up|threw up|thrown up|thrown|vomited|vomit|vomi|vomissez|vomir|"
    r"had diarrhea|eu la diarrhee)\b"
    r"|\b(?:wet diapers|couches mouillees|couches humides)\b"
    r"|\b(?:are you|is he|is she|is your \w+) (?:still )?(?:coughing|vomiting|bleeding|wheezing|dizzy|feverish|"
    r"in pain|having (?:headaches|pain|fevers|chest pain))\b"
    r"|\b(?:avez vous|a t il|a t elle|as tu) (?:encore|toujours|refait|eu) (?:de la |des |du )?(?:fievre|douleurs?|"
    r"vertiges|etourdissements|saignements?|nausees|crises|malaises|pertes de connaissance)\b"
)
SYMPTOM = [
    rule(SYMPTOM_WORDS,
         rf"{_ASK} {_DET}(?:\w+ )?{_SYMPTOM}",
         rf"{_ASK_IS} (?:\w+ )?{_SYMPTOM}"),
    rule(BODY_WORDS,
         rf"\b(?:how(?:'s| is| are| has| have)|comment (?:va|vont)) {_DET}(?:\w+ )?{_BODY}",
         rf"\bhow (?:the |your )(?:\w+ )?{_BODY} (?:has|have|is|are|feels|feel)\b"),
    rule(SYMPTOM_CHANGING_WORDS,
         rf"\b(?:the|your|his|her|le|la|les|l'|votre|vos|ton|ta|tes) ?(?:\w+ )?{_SYMPTOM_CHANGING}{_gap(4)}{_EVOLVES}",
         rf"\b(?:your|ur|votre|vos|ton|ta|tes) (?:\w+ )?(?!confusion\b){_SYMPTOM_CHANGING}"),
    rule("vision|eyesight|vue|see|voyez|flashes|eclairs",
         r"\b(?:vision|eyesight|vue)\b" + _gap(2) + r"(?:blurry|blurred|embrouillee|floue|double|changes?|change)\b"
         r"|\b(?:see|voyez) (?:des )?(?:flashes|eclairs)\b|\b(?:vision|sight) changes\b"),
    rule("still|encore|vomit|vomissent",
         r"\b(?:still|encore) (?:vomiting|coughing|bleeding|throwing up)\b|\bvomit encore\b|\bvomissent encore\b"),
    rule("blood|sang",
         r"\b(?:blood in (?:your |the )?(?:urine|stool|pee|stools)|sang dans (?:l'urine|les selles|vos selles|votre urine|"
         r"l'urine))\b"),
    rule("pee|urinate|urinez|brule|burns|urinating",
         r"\bwhen you (?:pee|urinate)\b|\bquand vous urinez\b|\b(?:ca|it) (?:brule|burns)\b"),
    rule("line|ligne", r"\bthe line (?:we|I) drew\b|\bla ligne (?:qu'on a|que nous avons) tracee\b"),
    # a symptom followed up or a measure to take at home: "how's your sleep", "check his temperature"
    rule("sleep|sleeping|appetite|breathing|energy|sommeil|appetit|respiration|energie",
         r"\bhow(?:'s| is| has| was) (?:your|his|her|their|the baby's) (?:sleep|sleeping|appetite|breathing|energy)\b",
         r"\bcomment (?:est|va|etait|allait) (?:le|votre|son|sa|ton|l') ?(?:sommeil|appetit|respiration|energie)\b"),
    rule("temperature|temp|fever|temperatures|fievre",
         r"\b(?:check|take|monitor|watch|record) (?:his|her|their|your|the baby's|baby's) (?:temperature|temp|fever)\b",
         r"\b(?:prenez|verifiez|surveillez|notez|prends|verifie) (?:sa|votre|ta) (?:temperature|fievre)\b"),
    rule("toussez|tousse|toussent|vomissez|vomit|vomissent|saignez|saigne|saignent|coughing|vomiting|bleeding|"
         "wheezing|dizzy|feverish|pain|headaches|fievre|douleur|douleurs|vertiges|etourdissements|saignement|"
         "saignements|nausees|crises|malaises|connaissance|wetting|wets|mouille|pipi|times|fois|vomited|vomit|vomi|"
         "vomir|throw|threw|thrown|diarrhea|diarrhee|diapers|couches",
         _SYMPTOM_VERB),
]
SYMPTOM_WEAK = [rule(
    "fever|cough|rash|pain|vomiting|bleeding|headache|headaches|swelling|nausea|diarrhea|"
    "fievre|toux|eruption|douleur|douleurs|vomissements|saignements|mal de tete|nausees|diarrhee",
    _words("fever|cough|rash|pain|vomiting|bleeding|headache|headaches|swelling|nausea|diarrhea|"
           "fievre|toux|eruption|douleur|douleurs|vomissements|saignements|mal de tete|nausees|diarrhee"),
)]

# --- how to take a medication ----------------------------------------------------------------------
MED_WORDS = (
    "pill|pills|tablet|tablets|capsule|capsules|medication|medications|medicine|medicines|meds|drops|"
    "cream|ointment|puffer|puffers|inhaler|inhalers|pilule|pilules|comprime|comprimes|medicament|"
    "medicaments|gouttes|creme|onguent|pompe|pompes|patch|timbre|sirop|syrup|spray|vaporisateur|tab|tabs"
)
_MED = _words(MED_WORDS)
_FREQUENCY = _words(
    "once a day|twice a day|three times a day|four times a day|once daily|twice daily|"
    "times a day|fois par jour|au coucher|at bedtime|with food|on an empty stomach|"
    "a day with|par jour avec|once a week|twice a week|every week|weekly|every other day|every second day|"
    "every 2 days|every two days|every morning|every evening|every night|each morning|each night|"
    "une fois par semaine|deux fois par semaine|chaque semaine|aux 2 jours|aux deux jours|un jour sur deux|"
    "tous les matins|tous les soirs|chaque matin|chaque soir|a jeun|en mangeant|"
    "with meals|with your meal|with your biggest meal|avec le repas|avec votre repas|after meals|apres les repas"
)
_TAKE = _words(
    "take|taking|apply|prenez|prendre|appliquez|appliquer|mettez|mg|drops|"
    "gouttes|cream|creme|puffs|inhalations|dose|tablet|tablets|comprime|comprimes|pill|"
    "pills|pilule|pilules|iron|fer|supplement|supplements|vitamin|vitamine|capsule|capsules|"
    "injection|shot|piqure|patch|timbre|pompe|puffer|inhaler|spray|vaporisateur|tab|tabs|co|cp|half|demi"
)
MEDICATION = [
    # what a treatment does to the patient: "your hair may thin with this treatment"
    rule("hair|cheveux",
         r"\b(?:your|ur|his|her) hair (?:may|might|will|could|can|is going to) (?:thin|fall out|start to fall out)\b",
         r"\b(?:vos|tes|ses) cheveux (?:peuvent|pourraient|vont|risquent de) (?:s'amincir|tomber|commencer a tomber)\b"),
    # the patient's own adherence packs (a pharmacy offering them to everyone is not clinical)
    rule("blister|bubble|organizer|organiser|dosette|dosettes|dispill|dispills|pilulier|piluliers",
         r"\b(?:your|ur|his|her|votre|vos|ton|tes|ses) (?:\w+ )?(?:blister packs?|bubble packs?|pill organi[sz]ers?|"
         r"dosettes?|dispills?|piluliers?)\b"),
    # a contact traced by public health: "about your recent exposure"
    rule("exposure|exposition",
         r"\b(?:your|ur|his|her) (?:recent |possible |potential )?exposure\b(?! to (?:the )?(?:sun|noise|cold|heat))",
         r"\b(?:votre|ta|son|sa) (?:recente |possible |eventuelle )?exposition\b(?! (?:au soleil|au bruit|au froid))"),
    rule(MED_WORDS,
         _MED + r" (?:for|pour|contre) (?:the |your |la |le |les |l'|votre |vos |ton |ta |tes )?"
         r"(?!review|reconciliation|trip|week|weekend|holidays|renewal|refill|pickup|pick up|revision|"
         r"renouvellement|rendez|visit|visite|appointment|rdv|first|next|premiere|prochaine)[a-z']+"),
    rule("pill|pills|tablet|tablets|medication|medicine|meds|pilule|pilules|comprime|comprimes|medicament|"
         "medicaments",
         r"\b(?:blood pressure|bp|cholesterol|thyroid|diabetes|sugar|water|heart|anxiety|pain|allergy|seizure|"
         r"iron|sleeping|nerve|mood|acid|stomach) (?:pill|pills|tablet|tablets|medication|medicine|meds)\b",
         r"\b(?:pilules?|comprimes?|medicaments?) (?:pour|de|contre) (?:la |le |l'|les )?(?:pression|cholesterol|"
         r"thyroide|diabete|sucre|coeur|anxiete|douleur|allergies?|eau|dormir|estomac|fer|humeur|nerfs)\b"),
    rule("dose|doses|dosage|posologie",
         r"\b(?:your|the|votre|la|ta|sa) (?:usual |current |new |same |next |regular |daily |morning |evening |"
         r"nouvelle |meme |prochaine |full |pleine )?(?:dose|doses|dosage|posologie)\b"
         r"(?! (?:of the|of your|de rappel|du vaccin|de vaccin|of vaccine)\b)",
         r"\b(?:increase|increasing|increased|lower|lowered|lowering|raise|raising|raised|reduce|reduced|reducing|"
         r"adjust|adjusted|double|doubled|halve|augment\w*|baiss\w*|diminu\w*|ajust\w*|doubl\w*) (?:the |your |la |"
         r"votre |ta |le )?(?:dose|dosage|posologie)\b",
         r"\b(?:same|meme|full|half|demi|pleine) ?dose\b|\bdose (?:is|was|goes|drops|passe|baisse|augmente|"
         # ninth round: "dose stays at 80", « la dose reste à 60 »
         r"stays|remains|will stay|is staying|reste|restera|demeure)\b"),
    rule("puff|puffs|inhalation|inhalations|drop|drops|goutte|gouttes|tablet|tablets|comprime|comprimes|pill|pills|"
         "pilule|pilules|capsule|capsules|caps|spray|sprays|vaporisation|vaporisations|co|cp|tab|tabs|ces",
         r"\b(?:\d+|one|two|three|half|un|une|deux|trois|demi) (?:puffs?|inhalations?|drops?|gouttes?|tablets?|"
         r"comprimes?|pills?|pilules?|capsules?|caps|sprays?|vaporisations?)\b",
         r"\b\d+(?:[.,]\d+)? (?:co|cp|ces|tab|tabs|cap|caps|comp)\b(?! (?:de|of)\b)"),
    rule("once|twice|three|four|times|fois|coucher|bedtime|food|stomach|day|week|weekly|every|other|second|each|"
         "semaine|jours|jour|matins|soirs|matin|soir|jeun|mangeant|meals|meal|repas|deux",
         _near(_FREQUENCY, _TAKE, 6, both=True)),
    rule("cut|coupez|couper",
         r"\b(?:cut|coupez|couper) (?:the |les |le |la )?(?:tablets?|pills?|comprimes?|pilules?) (?:in half|en deux)\b"),
    rule(MED_WORDS + "|dose|injection|injections|patch|patches|timbre|timbres",
         rf"\b(?:stop|hold|arretez|cessez|n'arretez pas|don't stop|do not stop|restart|reprendre|reprenez|resume|"
         rf"start|commencez|commencer|switch to|changez pour|arreter) (?:taking )?(?:the |your |la |le |l'|les |"
         rf"votre |vos |un |une |one )?(?:\w+ ){{0,2}}(?:{_MED}|\bdose\b|\binjections?\b|\bpatch(?:es)?\b|"
         r"\btimbres?\b)"),
    rule("puffer|puffers|pompe|pompes",
         r"\b(?:your|votre|vos|la|les|nouvelle|new|ta|tes) (?:\w+ )?(?:puffers?|pompes?)\b"),
    rule("log|logging|notez|noter",
         r"\b(?:log|logging|notez|noter) (?:your |vos )?(?:readings|sugars|lectures|glycemies|blood pressure|pression)\b"),
    rule("glucometer|glucometre|lecteur", r"\b(?:glucometer|glucometre|lecteur de glycemie)\b"),
    rule("drink|drinking|alcohol|alcool|buvez|boire",
         r"\b(?:do not drink|don't drink|no alcohol|no drinking|avoid alcohol|avoid drinking|ne buvez pas(?: d'alcool)?|"
         r"pas d'alcool|evitez l'alcool|evitez de boire|ne pas boire(?: d'alcool)?)(?: \w+){0,2} (?:while|with|when|"
         r"pendant|avec|lorsque|quand) (?:[a-z']+ ){0,3}(?:taking|on|prenez|"
         r"prendre|medication|medicament|antibiotic|antibiotique|pills|pilules|treatment|traitement)"),
    rule("patch|timbre|cream|creme|ointment|onguent|gel|lotion",
         rf"\b(?:patch|timbre|cream|creme|ointment|onguent|gel|lotion)(?: \w+){{0,2}} (?:on|to|sur) (?:the|your|a|le|la|"
         rf"les|l'|votre|vos|un|une) ?(?:clean |dry |propre |seche )?{_BODY}"),
    rule("half|demi|quarter|quart",
         r"\b(?:half|a half|quarter) (?:a |of a )?(?:tab|tablet|pill|capsule)\b|\b(?:demi|quart de) ?(?:co|comprime|pilule)\b"),
    rule("doubled|double|increased|raised|lowered|reduced|cut|halved|augmente|baisse|diminue|reduit|doubler|augmenter|"
         "baisser|diminuer",
         r"\b(?:doubled|increased|raised|lowered|reduced|cut|halved|augmente|double|baisse|diminue|reduit|doubler|"
         r"augmenter|baisser|diminuer)(?: \w+){0,2}? (?:the |your |la |le |votre |vos |les )?(?:vitamin|vitamine|vitamins|"
         r"vitamines|iron|fer|insulin|insuline|supplement|supplements|pills?|pilules?|tablets?|comprimes?|"
         r"medication|medicament|puffs?|inhalations?|patch|timbre|spray|vaporisateur)\b"),
    rule("shot|shots|injection|injections|piqure|piqures|pill|dose|patch",
         r"\b(?:your|votre|ton|ta) (?:weekly|monthly|daily|hebdomadaire|mensuelle|quotidienne|prochaine|next) "
         r"(?:shot|injection|piqure|pill|dose|patch)\b"
         r"|\b(?:shot|injection|piqure) (?:hebdomadaire|mensuelle|quotidienne)\b"),
]


# --- eighth round: everyday wording of a verdict, a referral, aftercare and a visit's purpose ------
# A verdict on "yours" (the patient's own tests, not named): "nothing to worry about on yours",
# « rien d'inquiétant dans les vôtres ».
FINDING += [
    rule("yours|votres|tiens|tiennes|ressemblent|same|pareils|pareilles|semblables|identiques",
         r"\b(?:nothing (?:to worry about|alarming|concerning|wrong|unusual|abnormal)|all (?:good|normal|clear|fine)|"
         r"everything(?:'s| is| was| looks| looked| came back)? (?:good|fine|normal|clear|ok|okay)|(?:looks?|looked|came "
         r"back|were|was|are|is) (?:good|fine|normal|clear|ok|okay)|nothing (?:showed up|came up|turned up|was found|"
         r"stood out|jumped out)) (?:on|with|in|for|from) yours\b"
         r"|\b(?:looked at|looked over|reviewed|went over|checked|read) yours\W+(?:\w+ ){0,2}?(?:nothing|all|everything|"
         r"it's|its|it is|they're|they are|looks?|fine|normal|good)\b"
         r"|\b(?:rien d'(?:inquietant|anormal)|tout est (?:beau|correct|normal|ok)|c'est (?:beau|correct|normal)|"
         r"(?:sont|est|etaient) (?:beaux|normaux|corrects|bons)) (?:dans|pour|sur|avec|de) (?:les|le|la) "
         r"(?:votres|votre|tiens|tiennes|tien|tienne)\b"
         # a verdict by comparison: « vos prises de sang ressemblent à celles de l'automne », "your bloods are the
         # same as last time"
         r"|\b(?:your|vos|votre|tes|ton|ta) (?:\w+ ){0,2}?(?:results?|tests?|blood ?work|bloods|labs?|numbers|levels?|"
         r"prises de sang|resultats?|analyses|bilans?|chiffres|taux)\b(?: \w+){0,3}? (?:ressemblent? a (?:celles?|ceux)|"
         r"look (?:just )?like (?:those|the ones|last)|(?:are|were|look|looked) (?:the )?same as (?:last|before|the last)|"
         r"(?:sont|etaient) (?:pareils?|pareilles|semblables|identiques|comme) (?:a |qu'a |que |comme )?(?:celles?|ceux|la "
         r"derniere|l'an|avant))"),
]
# Aftercare with no body or drug word: what to watch for ("come back if it gets red", « revenez si ça
# devient rouge ») and what not to do yet ("no baths until", « pas de bain avant »).
WOUND += [
    rule("red|redder|hot|warm|swollen|puffy|leak|leaking|ooze|oozing|drain|draining|smell|smelly|rouge|chaud|chaude|"
         "enfle|enflee|couler|suinter|sentir",
         r"\b(?:come back|come in|call us|call|let us know|text us|see us|go to (?:the )?(?:er|emergency|walk in)|"
         r"revenez(?: nous voir)?|reviens(?: nous voir)?|appelez(?: nous)?|rappelez(?: nous)?|consultez|venez|ecrivez nous|avisez nous) (?:right away |tout de "
         r"suite |rapidement )?(?:if|si|when|quand|s') ?(?:it|the area|the spot|the site|that|ca|c'|cela|la zone|l'endroit|"
         r"le site|il|elle)(?: \w+){0,3}? (?:gets?|becomes?|turns?|starts? to|starts?|is|looks?|feels?|getting|devient|"
         r"deviennent|commence a|est|a l'air|semble|se met a)(?: \w+){0,2}? (?:red|redder|hot|warm|swollen|puffy|leak|"
         r"leaking|ooze|oozing|drain|draining|smell|smelly|rouge|chaud|chaude|enfle|enflee|couler|suinter|sentir)\b"),
    rule("bath|baths|bathtub|swimming|tub|tubs|soaking|bain|bains|baignade|piscine|spa",
         r"\b(?:no|don't take a|do not take a|don't take|avoid|skip the|no more) (?:baths?|bathtub|swimming|hot tubs?|"
         r"soaking)\b(?: \w+){0,6}? (?:until|for|till|after)\b"
         r"|\b(?:pas de|ne prenez pas de|evitez (?:les|le)) (?:bains?|baignade|piscine|spa)\b(?: \w+){0,6}? "
         r"(?:avant|pendant|tant que|jusqu|apres)\b"),
    rule("straw|straws|paille|mou|soft",
         r"\b(?:no|don't use a|do not use a|avoid|without a) straws?\b|\b(?:pas de|sans|evitez la) paille\b"
         r"|\b(?:eat|stick to|only) soft (?:foods?|diet)\b|\b(?:mangez|manger|mange) mou\b"),
]
# A referral said in everyday words: "the specialist's office will call you", "the physio you were
# referred to", « le bureau du spécialiste va vous appeler », « vous avez été référée en ».
CARE += [
    rule("specialist|specialists|specialiste|specialistes|referred|refere|referee|references|reference|dirige|dirigee",
         r"\b(?:the |your )?specialist(?:'s|s')?(?: office| clinic| team| secretary)? (?:will|is going to|should|'ll|may) "
         r"(?:call|contact|reach out to|get in touch with|phone|text|be in touch with) you\b"
         r"|\bspecialist'll (?:call|contact|text) you\b"
         r"|\byou(?:'ve| have| were|'re| are)? (?:been |now |already )?referred (?:to|for)\b"
         r"|\b(?:le |la |votre )?(?:bureau|secretaire|secretariat|clinique|equipe) (?:du|de la|de votre) specialiste "
         r"(?:va|devrait|vont|pourrait|doit) vous (?:appeler|contacter|rappeler|joindre|texter)\b"
         r"|\b(?:le|la|votre) specialiste (?:va|devrait|pourrait|doit) vous (?:appeler|contacter|rappeler|joindre)\b"
         r"|\bvous (?:avez ete|etes|serez) (?:refere|reference|dirige)e?s? (?:a|au|aux|en|vers|pour|chez)\b"),
    # a visit's purpose: the follow-up of the patient's procedure; an allied professional to work on the patient's
    # own something ("the dietitian to work on your eating plan")
    rule("procedure|procedures|intervention|operation",
         r"\b(?:follow up|followup|check up|checkup|suivi|post op) (?:on|for|after|of|from|de|du|apres|suite a) "
         r"(?:your|votre|ta|ton) (?:\w+ )?(?:procedure|intervention|operation)\b"),
    rule(ALLIED_WORDS,
         rf"{_ALLIED} (?:to|pour) (?:work on|go over|talk about|review|look at|help with|discuss|travailler|revoir|"
         r"regarder|parler de|discuter de) (?:your|votre|vos|ton|ta|tes)\b"),
    rule("counsellor|counselor|conseiller|conseillere|therapist|therapeute|psy|psychologue|intervenant|intervenante|"
         "travailleuse|travailleur|worker",
         _near(r"\b(?:counsell?or|conseill\w+|therapist|therapeute|psy|psychologue|intervenante?|travailleuse sociale|"
               r"travailleur social|social worker)\b",
               r"\b(?:premiere rencontre|first meeting|first visit with them|premier rendez vous)\b", 10, both=True)),
]
# A symptom followed up without its name: "is it still bothering you?", « est-ce que ça vous achale encore? »,
# « faites-vous encore des chaleurs la nuit? ».
SYMPTOM += [
    rule("bothering|bother|bugging|troubling|hurting|hurt|aching|itching|achale|derange|gosse|tracasse|empeche|fait|"
         "elance|demange|chaleurs|sueurs|etourdissements|vertiges|nausees|brulures|crampes|saignements|replace",
         r"\b(?:is|does|did) (?:it|that|this|the (?:area|spot|site|sore|cut|wound|scar|bump|rash|pain|cough|itch))"
         r"(?: \w+)? still (?:bother|bothering|bug|bugging|trouble|troubling|hurt|hurting|ache|aching|itch|itching)\b"
         r"|\b(?:it|that|this)(?:'s| is)? still (?:bothering|bugging|troubling|hurting) you\b"
         r"|\b(?:ca|cela) (?:vous|te|t') ?(?:achale|derange|gosse|tracasse|fait mal|fait souffrir|empeche|elance|"
         r"demange)\w*(?: \w+)? encore\b|\b(?:ca|cela) (?:vous|te|t') ?(?:achale|derange|gosse|tracasse|empeche|"
         r"elance|demange) encore\b"
         r"|\b(?:faites vous|avez vous|fais tu|as tu|vous faites|tu fais|vous avez) encore (?:des|de la|du) (?:chaleurs|"
         r"sueurs|etourdissements|vertiges|nausees|brulures|crampes|saignements)\b"),
]
# Written after a probe of the developer's own, after the tuning on dev-13: being woken by it, bleeding that
# starts, what came back with nothing new, the next steps after the results.
SYMPTOM += [
    rule("waking|awake|reveillez|reveilles|reveille",
         r"\bstill (?:waking up|up|awake|getting up)(?: \w+){0,3}? (?:with|from|because of) (?:it|that|the \w+)\b"
         r"|\b(?:vous reveillez vous|te reveilles tu|vous vous reveillez|tu te reveilles|ca vous reveille|ca te reveille) "
         r"encore\b"),
]
WOUND += [
    rule("saigner|saigne|bleed|bleeding|bleeds",
         r"\b(?:si|if|when|quand) (?:ca|it|cela|la plaie|le pansement|the dressing|the wound|the cut)(?: \w+){0,2}? "
         r"(?:se met a saigner|saigne|starts? (?:to bleed|bleeding)|bleeds|recommence a saigner)\b"),
]
FINDING += [
    rule("came|revenu|steps|suite|etapes",
         r"\b(?:what came back|ce qui est revenu)\b(?: [\w']+){0,6}? (?:nothing new|nothing (?:to worry|alarming)|all "
         r"(?:good|normal|fine)|rien de nouveau|rien d'inquietant|tout est (?:beau|normal|correct))\b"
         r"|\b(?:the next steps|la suite|les prochaines etapes)\b(?: \w+){0,2}? (?:after|following|with|apres|suite a|"
         r"avec) (?:the |your |vos |les |la |le )?(?:results?|resultats?|tests?|scan|biopsy|biopsie|examens?|analyses)\b"),
]
# Someone of the care team put the patient in a program or kept a place for them: « l'atelier où la Dre vous a
# inscrit », « la travailleuse sociale vous a gardé une place », "the nurse signed you up for the group";
# « ta TS » is the patient's social worker.
CARE += [
    rule("inscrit|inscrite|garde|reserve|signed|enrolled|put|ts",
         r"\b(?:dre?|docteure?|medecin|infirmiere|infirmier|ips|travailleuse sociale|travailleur social|intervenante?|"
         r"psychologue|therapeute|ts) (?:\w+ )?vous a (?:inscrite?|gardee? une place|reservee? une place)\b"
         r"|\b(?:the doctor|the nurse|dr\.? \w+|your doctor|the social worker|your worker|the counsell?or|the "
         r"therapist) (?:has )?(?:signed|enrolled|put) you (?:up )?(?:for|in|into|on)\b"
         r"|\b(?:ta|votre|ton) ts\b"),
]
# A fertility or menstrual cycle that is the patient's: "the plan for your next cycle", « votre prochain cycle ».
PREGNANCY += [
    rule("cycle|cycles",
         r"\b(?:your|ur|votre|ton|this|next|ce|ce prochain) (?:next |current |new |prochain |nouveau )?cycle\b"
         r"(?! (?:of|de|du|des|billing|de facturation))"),
]

# --- ninth round: what new writers' parts (dev-14 to dev-16) let through, as general cases -------
# A value said by where it went, with one decimal as a reading has (a price has two): "down to 6.1",
# « descendu à 5,8 ».
VALUE += [
    rule("down|up|dropped|rose|climbed|went|came|back|desc*|redesc*|bais*|mont*|remont*|rendu|rendue|tomb*",
         r"\b(?:down|up|back down|back up|dropped|rose|climbed|went down|went up|came down|came up) (?:to|at) "
         r"\d{1,3}[.,]\d\b(?![.,]?\d)(?! ?(?:\$|%|percent|pour cent))"
         r"|\b(?:redescendue?s?|descendue?s?|baissee?s?|montee?s?|remontee?s?|rendue?s?|tombee?s?) (?:a|jusqu'a) "
         r"\d{1,3}[.,]\d\b(?![.,]?\d)(?! ?(?:\$|%|percent|pour cent))"),
]
# A medication's regimen said without its name: the strength ("the new strength is ready", « la nouvelle
# force »), a count changed ("take one instead of two", « prenez-en un seul au lieu de deux »), the doses of
# a time of day ("your evening meds", « vos médicaments du soir »).
MEDICATION += [
    rule("strength|force|teneur|concentration",
         r"\b(?:your|the|votre|la|ta|sa) (?:new|next|lower|higher|stronger|weaker|nouvelle|prochaine) "
         r"(?:strength|force|teneur|concentration)\b"
         r"|\b(?:votre|la|ta|sa) (?:force|teneur|concentration) plus (?:forte|faible|basse|haute)\b"),
    rule("instead|lieu|plutot|rather",
         r"\b(?:take|takes|taking|give|prenez|prends|prendre|donnez|donne|donner)(?: en| lui)?(?: only| just| seulement)? "
         r"(?:one|two|three|half|a half|1|2|3|un|une|deux|trois|la moitie|une demie?|1/2)(?: seule?| only)? "
         r"(?:pill |tablet |capsule |comprime |pilule |capsule )?(?:instead of|rather than|au lieu de|au lieu d'|plutot que) "
         r"(?:one|two|three|four|1|2|3|4|un|une|deux|trois|quatre)\b"),
    rule("meds|medication|medications|medicine|medicines|pills|tablets|insulin|puffer|puffers|inhaler|inhalers|"
         "medicaments|medicament|pilules|comprimes|gouttes|pompes|insuline",
         r"\b(?:your|ur|his|her|their) (?:morning|evening|night|nighttime|night time|bedtime|noon|lunchtime|supper|"
         r"dinner|breakfast|daily|am|pm) (?:meds|medications?|medicines?|pills|tablets|insulin|puffers?|inhalers?|"
         r"eye drops)\b"
         r"|\b(?:vos|votre|ses|sa|tes|ta) (?:medicaments?|pilules|comprimes|gouttes|pompes|insuline) (?:du|de) "
         r"(?:matin|soir|midi|coucher|souper|diner|dejeuner|nuit)\b"),
]
# A hormone of early pregnancy said by how it moves: "beta is rising nicely", « le bêta monte bien ».
PREGNANCY += [
    rule("beta|bhcg|hcg",
         r"\b(?:beta|bhcg|hcg)s? (?:is |are |was |has |have |est |a |ont )?(?:rising|rose|risen|going up|went up|gone up|"
         r"doubled|doubling|climbing|dropping|dropped|falling|monte|montent|monte bien|double|augmente|baisse|descend)\b"),
]
# Where the patient was treated, as a health event of theirs: "the report of your ER visit", « votre passage
# à l'urgence », "your hospital stay"; a questionnaire on attention, behaviour or development filled for the
# patient (« le questionnaire pour l'attention »).
CARE += [
    rule("er|emerg|emergency|urgent|hospital|urgence|urgences|hopital|hospitalier",
         r"\b(?:your|ur|his|her|their) (?:recent |last )?(?:er|emerg|emergency|emergency room|emergency department|"
         r"urgent care) (?:visit|stay|trip|admission)s?\b"
         r"|\b(?:your|ur|his|her|their) (?:recent |last )?(?:visit|trip|stay|admission) (?:to|at|in) (?:the )?(?:er|emerg|"
         r"emergency|emergency room|emergency department|urgent care)\b"
         r"|\b(?:your|ur|his|her|their) (?:recent |last )?(?:hospital stay|stay in (?:the )?hospital|hospital admission|"
         r"admission to (?:the )?hospital)\b"
         r"|\b(?:votre|vos|sa|son|ta|ton) (?:visite|passage|sejour|consultation|admission)s? (?:recente? |dernier |"
         r"derniere )?(?:a l'urgence|aux urgences|a l'hopital)\b"
         r"|\b(?:votre|sa|son|ta|ton) sejour hospitalier\b"),
    rule("attention|adhd|tdah|behaviour|behavior|comportement|developmental|developpement|hyperactivity|"
         "hyperactivite|concentration",
         r"\b(?:attention|adhd|tdah|behaviou?r|developmental|hyperactivity)(?: \w+)? (?:questionnaires?|checklists?|"
         r"rating scales?|scales?|screening forms?|forms?|assessments?)\b"
         r"|\b(?:questionnaires?|grilles?|echelles?|formulaires?)(?: \w+)? (?:sur|pour|de|d'|du|des) (?:l'|le |la |les )?"
         r"(?:attention|tdah|hyperactivite|comportement|developpement|concentration)\b"),
]
# A care episode closed by the specialist: "a clean bill of health", "he's discharging you back to us",
# « il vous donne votre congé et vous retourne à nous ».
FINDING += [
    rule("clean|discharging|discharged|discharge|back|conge|retourne|renvoie|retournera|renverra",
         r"\bclean bill of health\b"
         r"|\bdischarg\w* you (?:back )?(?:to (?:us|our care|your (?:family )?(?:doctor|gp|physician))|back)\b"
         r"|\b(?:specialist|surgeon|cardiologist|dermatologist|oncologist|he|she|they|dr\.? \w+)(?:'s| is| has| will| have)? "
         r"(?:\w+ )?discharg\w+ you\b"
         r"|\b(?:sending|send|sent|referr\w*) you back to (?:us|our care|your (?:family )?(?:doctor|gp|physician))\b"
         r"|\bvous (?:donne|a donne|donnera|donner) (?:votre|son|ton) conge\b"
         r"|\bvous (?:retourne|renvoie|a retourne|a renvoye|retournera|renverra|refere) (?:a nous|vers nous|chez nous|"
         r"a votre medecin|vers votre medecin)\b"),
]
# The care of a line, a port or a drain that the patient has: "we'll flush your port", « rincer votre cathéter ».
WOUND += [
    rule("flush|flushed|flushing|flushes|rinc*",
         r"\bflush(?:ed|ing|es)? (?:your|ur|his|her|the) (?:port|picc|picc line|central line|iv line|iv|catheter|"
         r"port a cath|portacath|feeding tube|g tube|drain)\b"
         r"|\b(?:port|picc|picc line|central line|catheter|portacath) (?:flush|flushes|flushing)\b"
         r"|\brinc\w* (?:votre|le|la|son|sa|ta|ton) (?:port|picc|cathet\w*|tubulure|drain|sonde)\b"),
]
# Eyes dilated for an exam, and no driving after: "your pupils will be dilated", « pas d'auto avant demain ».
PRE_OP += [
    rule("dilated|dilate|dilating|dilation|dilatee|dilatees|dilater|dilatation|dilates",
         r"\b(?:pupils?|eyes?|pupilles?|yeux) (?:\w+ ){0,2}?(?:dilated|dilate|dilating|dilatee?s?|dilates?)\b"
         r"|\b(?:dilat\w*) (?:of )?(?:your|the|his|her|vos|les|ses|des) (?:pupils?|eyes?|pupilles|yeux)\b"
         r"|\bdrops? to dilate\b|\bgouttes pour dilater\b"),
    rule("drive|driving|auto|conduite|conduire|conduisez|char|voiture",
         r"\b(?:no driving|don't drive|do not drive|can't drive|cannot drive|shouldn't drive|should not drive|not to drive|"
         r"not drive|avoid driving)(?: \w+){0,2}? (?:for (?:the next )?(?:\d+|twenty four|a full) (?:hours?|h)|for (?:the )?rest "
         r"of the day|until (?:tomorrow|the next day|the following day|the drops|the sedation|the freezing)|today|tonight|"
         r"after (?:the|your) (?:procedure|scope|sedation|exam|drops|test))\b"
         r"|\b(?:pas d'auto|pas de char|pas de voiture|pas de conduite(?: automobile)?|ne conduisez pas|ne pas conduire|"
         r"conduisez pas|interdit de conduire|evitez de conduire)(?: \w+){0,2}? (?:avant|pendant|pour) (?:demain|le "
         r"lendemain|\d+ ?h\b|\d+ heures|le reste de la journee|la journee|24|48)"
         r"|\b(?:pas d'auto|pas de char|pas de conduite|ne conduisez pas|ne pas conduire|conduisez pas)(?: \w+){0,2}? "
         r"(?:aujourd'hui|ce soir|apres (?:l'examen|l'intervention|la procedure|votre examen|la sedation))\b"),
]

@frozen
class Family:
    """One family of context patterns: its name (the kind its findings report; the words staff
    read are in emrcomm.rules.CLINICAL_TRIGGERS) and its rules. A match of a ``strong`` rule
    blocks (CLINICAL_CONTENT); a match of a ``weak`` one is only evidence for the uncertainty score.
    """

    name: str
    strong: tuple[Rule, ...]
    weak: tuple[Rule, ...] = ()


FAMILIES: tuple[Family, ...] = (
    Family("finding", tuple(FINDING), tuple(FINDING_WEAK)),
    Family("value", tuple(VALUE), tuple(VALUE_WEAK)),
    Family("care", tuple(CARE), tuple(CARE_WEAK)),
    Family("allergy", tuple(ALLERGY)),
    Family("infection", tuple(INFECTION)),
    Family("wound", tuple(WOUND)),
    Family("pre-op", tuple(PRE_OP), tuple(PRE_OP_WEAK)),
    Family("pregnancy", tuple(PREGNANCY)),
    Family("vaccine", tuple(VACCINE)),
    Family("sleep", tuple(SLEEP)),
    Family("symptom", tuple(SYMPTOM), tuple(SYMPTOM_WEAK)),
    Family("medication-use", tuple(MEDICATION)),
)
BY_NAME = {f.name: f for f in FAMILIES}
_CASED = re.compile(INFECTION_CASED)


@frozen
class Phrase:
    """One context match: its span (in the folded text, or in the original when ``in_original``),
    its family, and whether it is strong (blocks) or weak (evidence only)."""

    span: tuple[int, int]
    family: str
    strong: bool
    in_original: bool = False


_Entry = tuple[int, str, bool, Rule]  # (order, family, strong, rule)


def _index(families: Iterable[Family]) -> dict[str, tuple[_Entry, ...]]:
    """Gate key -> the rules it opens."""
    out: dict[str, list[_Entry]] = {}
    order = 0
    for family in families:
        for strong, rules in ((True, family.strong), (False, family.weak)):
            for r in rules:
                for key in r.gate:
                    out.setdefault(key, []).append((order, family.name, strong, r))
                order += 1
    return {k: tuple(v) for k, v in out.items()}


_INDEX: tuple[tuple[Family, ...], dict[str, tuple[_Entry, ...]]] = (FAMILIES, _index(FAMILIES))


def _rules(folded_text: str, gated: bool, keys: set[str] | None) -> list[_Entry]:
    global _INDEX
    if _INDEX[0] is not FAMILIES:  # replaced (tests turn the patterns off): index the new tuple
        _INDEX = (FAMILIES, _index(FAMILIES))
    index = _INDEX[1]
    chosen: dict[int, _Entry] = {}
    for key in (keys if keys is not None else text_keys(folded_text)) if gated else index.keys():
        for entry in index.get(key, ()):
            chosen[entry[0]] = entry
    return [chosen[k] for k in sorted(chosen)]


def find(folded_text: str, original: str, *, gated: bool = True, keys: set[str] | None = None) -> Iterator[Phrase]:
    """Every strong and weak match in the text. ``keys``: the text's :func:`text_keys`, when the caller
    has them; ``gated=False`` runs every rule (to check the gates)."""
    for _, family, strong, r in _rules(folded_text, gated, keys):
        for m in r.pattern.finditer(folded_text):
            if m.end() > m.start():
                yield Phrase(m.span(), family, strong)
    if FAMILIES:
        for m in _CASED.finditer(original):
            yield Phrase(m.span(), "infection", True, True)
