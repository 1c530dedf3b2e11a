"""Word classes for the uncertainty score: what a word is about, in English and Quebec French.

A class is a small list of words that clinic staff use when they write about one patient's health
without a clinical name ("the dressing on your heel", « la pilule pour l'eau », "your reading of
148 over 92"), and the classes that logistics are made of (times, money, places in the building).
The score (classifier.py) weighs a class, and the pairs of classes that meet in one sentence, as
features of their own: a weight learned for "a part of the body with a word of wound care" holds
for every part of the body and every such word, including those the development parts never used.
That is how the score reaches wording that no rule and no training row has.

Words are folded (lower case, no accents: ``brulure``, ``pilule``); ``word*`` stands for every
word that starts with ``word`` (at least four letters: ``heal*`` is heal, heals, healed,
healing); a phrase of two or three words is matched as written. A word may be in more than one
class. The labels are what a finding says to staff when the class raised the score.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping

from attrs import frozen


@frozen
class WordClass:
    name: str
    english: str  # what staff read: "a part of the body"
    french: str
    words: tuple[str, ...]


def _split(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split("|") if w.strip())


CLASSES: tuple[WordClass, ...] = (
    # --- classes that speak of a body, a measure, a verdict or care (SCORED, below) ---
    WordClass("body", "a part of the body", "une partie du corps", _split(
        "head|neck|chest|stomach|belly|tummy|abdomen|leg|legs|knee*|hip|hips|shoulder*|arm|arms|"
        "forearm*|elbow*|wrist*|hand|hands|foot|feet|ankle*|heel|heels|toe|toes|toenail*|finger*|nail|"
        "nails|joint|joints|muscle*|bone|bones|rib|ribs|spine|jaw|tooth|teeth|gum|gums|ear|ears|eye|eyes|"
        "eyelid*|throat|nose|sinus*|skin|scalp|shin|shins|calf|thigh*|chin|cheek*|lip|lips|tongue|mouth|"
        "forehead|breast*|nipple*|groin|pelvi*|testic*|bladder|kidney*|liver|bowel*|colon|rectum|heart|"
        "lung|lungs|thyroid|brain|spleen|pancrea*|gallbladder|prostate|uterus|womb|ovar*|cervix|arter*|"
        "vein|veins|lymph node|lymph nodes|gland|glands|tendon*|ligament*|armpit*|lower back|upper back|"
        "tete|cou|dos|poitrine|thorax|ventre|bedaine|estomac|jambe*|genou*|hanche*|epaule*|coude*|"
        "poignet*|pied|pieds|cheville*|talon*|orteil*|doigt*|ongle*|articulation*|os|machoire|dent|dents|"
        "gencive*|oreille*|tympan*|oeil|yeux|paupiere*|gorge|nez|peau|cuir chevelu|tibia|mollet*|cuisse*|"
        "menton|joue|joues|levre*|langue|bouche|visage|sein|seins|mamelon*|aine|bassin|vessie|rein|reins|"
        "foie|intestin*|poumon*|thyroide|cerveau|vesicule|ovaire*|artere*|veine*|ganglion*|glande*|bras|"
        "avant bras|aisselle*|coeur|bas du dos|pupil|pupils|pupille*"
    )),
    WordClass("symptom", "a symptom", "un symptôme", _split(
        "pain|pains|painful|ache*|hurt*|sore|soreness|swell*|swollen|puffy|itch*|rash*|bleed*|ooz*|"
        "redness|numb*|tingl*|dizz*|lightheaded|light headed|nause*|vomit*|throw up|threw up|thrown up|"
        "diarrh*|constipat*|cough*|fever*|feverish|wheez*|short of breath|breathless*|cramp*|palpitation*|"
        "bruis*|blister*|headache*|migraine*|drowsy|insomnia|lump|lumps|pus|infection*|infected|"
        "spit up|spitting up|spits up|spat up|regurgit*|keep food down|keep anything down|"
        "douleur*|mal|maux|enfl*|gonfl*|demange*|rougeur*|saign*|ecoulement*|engourd*|picot*|fourmill*|"
        "etourd*|nausee*|vomi*|diarrhee*|constip*|toux|toussez|tousse*|fievre*|fievreu*|essouffl*|"
        "crampe*|palpitation*|ecchymose*|cloque*|migraine*|somnolen*|bosse|pus|brulure*|infection*|infecte*|"
        "garder la nourriture|garder la bouffe|garder ses boires"
    )),
    WordClass("wound", "a word of wound or injury care", "un mot de soin de plaie ou de blessure", _split(
        "dressing*|bandage*|band aid|band aids|bandaid*|gauze|stitch*|staple*|suture*|incision*|wound*|"
        "scar|scars|scarring|scab*|blister*|burn|burns|dog bite|cast|casts|sling|splint*|crutch*|"
        "steri strip|steri strips|graft*|healing|heal|heals|healed|"
        "pansement*|diachylon*|compresse*|points de suture|agrafe*|suture*|incision*|plaie*|cicatri*|"
        "croute*|coupure*|cloque*|brulure*|morsure*|platre*|echarpe|attelle*|orthese*|bequille*|greffe*|guer*"
    )),
    WordClass("medication", "a medication word", "un mot de médicament", _split(
        "pill|pills|tablet*|capsule*|caplet*|dose|doses|dosing|eye drops|ear drops|nose drops|patches|"
        "cream|creams|ointment*|puffer*|puffs|inhaler*|nasal spray|syrup*|injection*|medicine*|"
        "medication*|meds|antibiotic*|chewable*|lozenge*|suppositor*|vitamin*|supplement*|prescribed|injector*|"
        "pilule*|comprime*|capsule*|dose|doses|goutte*|timbre*|creme*|onguent*|pommade*|pompe*|"
        "inhalateur*|inhalation*|vaporisateur*|vaporisation*|sirop*|piqure*|injection*|medicament*|"
        "antibio*|atb|vitamine*|supplement*|prescrit|prescrite|injecteur*"
    )),
    WordClass("dosing", "how to take a medication", "la façon de prendre un médicament", _split(
        "wean*|taper*|swallow*|chew|crush|dissolve|bedtime|a day|per day|daily|twice|every other day|"
        "with food|with a meal|empty stomach|grapefruit|side effect|side effects|"
        "sevr*|avalez|avaler|croquez|ecrasez|dissoudre|au coucher|par jour|fois par jour|die|bid|tid|"
        "matin et soir|aux deux jours|aux 2 jours|a jeun|en mangeant|pamplemousse|effet secondaire|"
        "effets secondaires"
    )),
    WordClass("finding", "something found, said without its name", "quelque chose de trouvé, sans son nom",
              _split(
        "bump|bumps|irregular*|shadow|growth|nodule*|cyst*|mole|moles|discolo*|finding*|lesion*|"
        "blockage|narrowing|polyp*|inflammation|biopsy|"
        "excroissance*|nodule*|kyste*|grain de beaute|grains de beaute|lesion*|anomalie*|inflammation|"
        "polype*|retrecissement|blocage|ombre|boule|tache|taches"
    )),
    WordClass("mind", "the patient's mood or mind", "l'humeur ou le moral du patient", _split(
        "mood|moods|anxious|anxiety|panic|grief|grieving|coping|cravings|craving|sober|dark thoughts|"
        "humeur|moral|anxieu*|anxiete|panique|deuil|idees noires|envies|sobre"
    )),
    WordClass("function", "a function of the body", "une fonction du corps", _split(
        "pee|peeing|urinate|poop|bowel movement|bowel movements|appetite|breathing|kicks|diaper*|feeding|"
        "moves less|moving less|"
        "uriner|pipi|caca|appetit|respirer|respiration|mouvements du bebe|regles|menstruations|couche*|boires|"
        "tetee*|moins de mouvements|bouge moins"
    )),
    WordClass("fluid", "a body fluid", "un liquide du corps", _split(
        "blood|urine|stool|stools|mucus|phlegm|sputum|saliva|semen|sperm|spit|"
        "sang|urine|selles|mucus|glaires|flegme|expectoration*|salive|sperme|crachat*"
    )),
    WordClass("vague", "something said vaguely", "quelque chose dit sans le nommer", _split(
        "thing|something|area|spot|spots|change|changes|mark|marks|patch|fluid|issue|concern|"
        "chose|affaire|quelque chose|zone|marque*|changement*|liquide|probleme"
    )),
    WordClass("measure", "a result, a reading or a measure", "un résultat, une lecture ou une mesure", _split(
        "result|results|report|reports|reading|readings|value|values|level|levels|number|numbers|count|"
        "counts|score|average|picture|pictures|image|images|photo|photos|sample|samples|test|tests|"
        "scan|scans|x ray|xray|tracing|study|swab|culture|weight|weighed|weigh|percentile|range|target|"
        "measur*|heart rate|pulse|sugar|sugars|pressure|oxygen|"
        "resultat*|rapport*|lecture*|valeur*|niveau*|chiffre*|taux|compte|score|moyenne|image*|photo*|"
        "echantillon*|test|tests|examen*|radio|trace|etude|prelevement*|culture|poids|pese*|percentile|"
        "cible|normes|mesur*|pouls|sucre|sucres|glycemie|pression|oxygene"
    )),
    WordClass("verdict", "a verdict or a change", "un verdict ou une évolution", _split(
        "normal|fine|good|great|clear|clean|healthy|stable|unchanged|same|better|worse|reassur*|"
        "harmless|benign|concern*|worry|worrying|serious|mild|slightly|a bit|high|higher|low|lower|"
        "above|below|under|borderline|improv*|dropped|doubled|nothing to worry|on track|on target|"
        "in range|within|expected|typical|common|grown|grew|bigger|smaller|shrink*|gone|fade*|"
        "normal|normale|normaux|correct|correcte|beau|belle|bon|bonne|clair|propre|stable|pareil|"
        "pareille|mieux|pire|rassurant*|sans danger|inquiet*|grave|leger|legere|legerement|un peu|haut|"
        "haute|hauts|bas|basse|au dessus|sous|limite|ameliore*|amelioration|baisse*|monte*|remonte*|"
        "descendu*|double|grossi|diminue*|pali*|disparu*|frequent|courant"
    )),
    WordClass("course", "the course of something over time", "l'évolution de quelque chose", _split(
        "still|anymore|any more|again|since|come back|comes back|came back|went away|go away|goes away|"
        "getting|gets|so far|yet|how is|how's|how are|how many|how often|any better|"
        "encore|toujours|depuis|revient|revenu|revenue|reparti|comment va|comment vont|combien de fois|"
        "est ce que|ca va mieux"
    )),
    WordClass("care", "an instruction for the body", "une consigne pour le corps", _split(
        "rinse|soak|elevate|ice|apply|rub|massage|stretch*|rest|lift*|swim*|shower*|bath|bathe|shave|"
        "pick|scratch|squeeze|press|cover|dry|clean|wash|avoid|workout*|heavy lifting|contact sport|contact sports|"
        "rincez|rincer|trempez|tremper|surelevez|surelever|glace|appliquez|appliquer|frottez|massez|"
        "etirement*|reposez|repos|soulev*|baignade|piscine|douche*|bain|rasez|raser|grattez|gratter|"
        "pressez|appuyez|couvrez|couvrir|sechez|nettoyez|nettoyer|lavez|laver|evitez|eviter|entrainement*|"
        "charges lourdes|sport de contact|sports de contact"
    )),
    WordClass("instruction", "an instruction to take, use or keep something",
              "une consigne de prendre, d'utiliser ou de garder quelque chose", _split(
        "take|takes|taking|took|use|using|keep|put|leave|wear|finish|miss|skip|double|half|cut|"
        "stop|stopped|start|started|continue|restart|resume|increase*|decrease*|go back to|back on|"
        "prenez|prendre|utilisez|gardez|mettez|laissez|portez|finissez|oubliez|sautez|doublez|moitie|"
        "coupez|arretez|arreter|commencez|commencer|continuez|continuer|recommencez|reprenez|"
        "augmentez|diminuez|revenir au"
    )),
    # ninth round: the aids and equipment of care at home ("the walker", « la marchette », "a patient lift",
    # « les ustensiles adaptés »); no list of terms holds them all, and "wheelchair" alone is as often an entrance's
    WordClass("aid", "an aid or equipment for the body", "une aide technique ou un équipement pour le corps", _split(
        "walker|walkers|rollator*|wheelchair*|cane|canes|commode|concentrator*|hospital bed|grab bar|grab bars|"
        "bath bench|shower bench|shower chair|transfer bench|transfer board|transfers|patient lift|hoyer|reacher|"
        "adaptive|adapted|hearing aid|hearing aids|brace|braces|orthotic*|taping|kinesio|tape job|"
        "marchette*|deambulateur*|fauteuil roulant|fauteuils roulants|canne|cannes|chaise aisance|concentrateur*|"
        "lit hopital|barre appui|barres appui|banc de bain|banc de transfert|planche de transfert|leve personne|"
        "transferts|ustensiles adaptes|adapte|adaptes|adaptee|adaptees|appareil auditif|appareils auditifs|orthese*"
    )),
    # --- classes of who is addressed or spoken of, and of logistics (a finding names kin and the care
    # team among its reasons, never the others) ---
    WordClass("yours", "words addressed to the patient (your)", "des mots adressés au patient (votre)", _split(
        "your|ur|yours|you're|youre|votre|vos|ton|ta|tes"
    )),
    WordClass("kin", "a member of the patient's family", "un proche du patient", _split(
        "son|daughter|baby|babies|little one|child|kid|kids|boy|girl|partner|husband|wife|mom|dad|"
        "mother|father|"
        "fils|fille|bebe|petit|petite|enfant|enfants|garcon|conjoint|conjointe|partenaire|mari|femme|"
        "mere|pere"
    )),
    WordClass("care-team", "a member of the care team", "un membre de l'équipe de soins", _split(
        "nurse|specialist|physio|physiotherapist|counsellor|counselor|therapist|psychologist|"
        "social worker|midwife|surgeon|dietitian|home care|"
        "infirmiere|infirmier|specialiste|physio|physiotherapeute|conseillere|conseiller|therapeute|"
        "psychologue|travailleuse sociale|travailleur social|sage femme|chirurgien*|nutritionniste|"
        "dietetiste|soins a domicile|clsc"
    )),
    WordClass("everyone", "words addressed to everyone (a notice, not a message to one patient)",
              "des mots adressés à tous (un avis, pas un message à un patient)", _split(
        "everyone|everybody|anyone|all patients|patients|public|community|families|visitors|"
        "tout le monde|tous|toutes|les patients|public|communaute|familles|visiteurs|population"
    )),
    WordClass("staff", "the clinic's staff, spoken of", "le personnel de la clinique, dont on parle", _split(
        "staff|team|our nurse|our nurses|our doctors|our doctor|receptionist|colleague|colleagues|dr|dre|"
        "personnel|equipe|notre infirmiere|nos infirmieres|nos medecins|notre medecin|receptionniste|"
        "collegue|collegues"
    )),
    WordClass("logistics", "logistics (a time, a place, a bill, a form)",
              "de la logistique (une heure, un lieu, une facture, un formulaire)", _split(
        "appointment*|appt|booking|booked|book|reschedul*|cancel*|confirm*|reminder|slot|walk in|"
        "waiting room|reception|front desk|parking|floor|elevator|entrance|room|suite|address|"
        "portal|password|link|login|log in|form|forms|invoice|receipt|payment|fee|fees|balance|"
        "bill|billed|insurance|health card|card|fax|faxed|records|file|copy|copies|signature|signed|"
        "phone|call|text|email|closed|hours|open|holiday|survey|feedback|registration|register*|"
        "renewal*|pickup|pick up|ready|sent|mailed|"
        "rendez vous|rdv|reservation|reserve|annul*|confirm*|rappel|plage|sans rdv|salle attente|"
        "accueil|reception|stationnement|etage|ascenseur|entree|local|bureau|adresse|portail|"
        "mot de passe|lien|formulaire*|facture*|recu|paiement|frais|solde|assurance|carte|fax|faxe|"
        "dossier|copie*|signature|signe|telephone|appel*|texto|courriel|ferme|fermee|heures|ouvert|"
        "ouverte|conge|sondage|commentaires|inscription|inscri*|renouvellement*|ramasser|pret|prete|"
        "envoye|envoyee|poste"
    )),
)

# Numbers by what they measure, in the folded text: money, a time and a phone number are
# logistics; a number with a unit of measure ("71 kg", "132/84", "148 over 92", "60th
# percentile") and a number with decimals ("7,2") are values; a percentage is either ("20 % off",
# "above 90 %") and weighs only as what it is (it was not among the classes that let a text be scored
# until the ninth round).
NUMBER_CLASSES: tuple[WordClass, ...] = (
    WordClass("money", "an amount of money", "un montant", ()),
    WordClass("time", "a time of day", "une heure", ()),
    WordClass("phone", "a phone number", "un numéro de téléphone", ()),
    WordClass("percent", "a percentage", "un pourcentage", ()),
    WordClass("unit", "a number with a unit of measure", "un nombre avec une unité de mesure", ()),
    WordClass("decimal", "a number with decimals", "un nombre à décimales", ()),
)
NUMBERS = re.compile(
    r"(?P<money>\$\s?\d|\d\s?\$)"
    r"|(?P<time>\b\d{1,2}(?::\d{2}| ?h ?\d{0,2}\b| ?(?:am|pm)\b))"
    r"|(?P<phone>\b\d{3}[ -]\d{3}[ -]\d{4}\b|\b1 8\d\d\b)"
    r"|(?P<percent>\b\d+(?:[.,]\d+)?\s?(?:%|percent|pour cent)(?!\w))"
    r"|(?P<unit>\b\d+(?:[.,]\d+)?\s?(?:kg|kgs|kilos?|lbs?|pounds|mmol|mg|ml|cm|mm|bpm)(?!\w)"
    r"|\b\d{2,3} ?/ ?\d{2,3}\b|\b\d+ over \d+\b|\b\d+(?:st|nd|rd|th|e) percentile)"
    r"|(?P<decimal>\b\d+[.,]\d+\b)"
)
BY_NAME: Mapping[str, WordClass] = {c.name: c for c in (*CLASSES, *NUMBER_CLASSES)}
# The classes that say what a text is about: a body, a medication, a finding, a measure, a verdict,
# care or an instruction. A finding names them as its reasons (classifier.py); until the ninth
# round only a text with one of them was scored (benchmarks/score_design.py measures that gate).
SCORED = frozenset({
    "body", "symptom", "wound", "medication", "dosing", "finding", "mind", "function", "fluid", "vague", "measure",
    "verdict", "care", "instruction", "unit", "decimal", "aid",
})


def _index(classes: Iterable[WordClass]) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], int]:
    exact: dict[str, list[str]] = {}
    prefixes: dict[str, list[str]] = {}
    longest = 1
    for c in classes:
        for w in c.words:
            if w.endswith("*"):
                stem = w[:-1]
                if " " in stem:
                    raise ValueError(f"word class {c.name}: a phrase cannot be a prefix ({w!r})")
                if len(stem) < 3:
                    raise ValueError(f"word class {c.name}: prefix {w!r} is too short")
                prefixes.setdefault(stem, []).append(c.name)
            else:
                exact.setdefault(w, []).append(c.name)
                longest = max(longest, len(w.split()))
    return ({k: tuple(dict.fromkeys(v)) for k, v in exact.items()},
            {k: tuple(dict.fromkeys(v)) for k, v in prefixes.items()}, longest)


_EXACT, _PREFIXES, _LONGEST = _index(CLASSES)
_STEM_LENGTHS = tuple(sorted({len(s) for s in _PREFIXES}))
_PHRASE_STARTS = frozenset(p.split()[0] for p in _EXACT if " " in p)


@functools.lru_cache(maxsize=1 << 14)  # a pure function of the word; messages reuse their words
def of_word(word: str) -> tuple[str, ...]:
    """The classes of one folded word (exact words and prefixes)."""
    found = _EXACT.get(word, ())
    for n in _STEM_LENGTHS:
        if n > len(word):
            break
        more = _PREFIXES.get(word[:n])
        if more:
            found = (*found, *more)
    return found


def find(words: list[str]) -> list[tuple[int, int, str]]:
    """``(first word, last word + 1, class)`` for every class word or phrase in a list of folded
    words."""
    out = []
    for i, w in enumerate(words):
        if w in _PHRASE_STARTS:
            for n in range(_LONGEST, 1, -1):
                if i + n <= len(words):
                    for name in _EXACT.get(" ".join(words[i : i + n]), ()):
                        out.append((i, i + n, name))
        # a possessive is its word: "your weight's holding steady", "the baby's breathing"
        for name in of_word(w) or (of_word(w[:-2]) if w.endswith("'s") else ()):
            out.append((i, i + 1, name))
    return out


def numbers(folded_text: str) -> Iterator[tuple[tuple[int, int], str]]:
    """``(folded span, class)`` of each number of :data:`NUMBER_CLASSES` in a folded text."""
    for m in NUMBERS.finditer(folded_text):
        yield m.span(), str(m.lastgroup)
