"""Clinical talk without a clinical name: the context patterns of the content detector.

Each :data:`FAMILIES` entry is one way clinic staff write about a patient's health without a
term the lexicons know ("the lump we discussed", "your numbers are 6.9", « la ligne de crise »),
in English and Quebec French, and is one regular expression over the folded text (lower case,
no accents, hyphens read as spaces). A pattern never crosses a sentence end (. ! ? ; or a line
break) and always anchors on words that point at *this* patient ("your", "the ... we discussed",
« votre ») or on wording no administrative message uses; the hard negatives it must leave alone
are in tests/test_phrasing.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from attrs import frozen

# A word of the folded text (a number may carry its decimals, a ratio or a percent sign), and
# what may stand between two words of one sentence.
_TOKEN = r"(?:\d+(?:[.,:/]\d+)*%?|[a-z0-9]+(?:'[a-z0-9]+)?'?)"
_SEP = r"[ ,:'\"()/]+"


def _gap(most: int) -> str:
    """Up to ``most`` words between two parts of a pattern, in the same sentence."""
    return rf"(?:{_SEP}{_TOKEN}){{0,{most}}}?{_SEP}"


def _words(text: str) -> str:
    """An alternation of the ``|``-separated phrases, each on word boundaries, longest first."""
    phrases = sorted({p.strip() for p in text.split("|") if p.strip()}, key=len, reverse=True)
    return r"(?:\b(?:" + "|".join(phrases) + r")\b)"


def _near(a: str, b: str, most: int, *, both: bool = False) -> str:
    """``a`` then ``b`` at most ``most`` words apart (either order when ``both``)."""
    forward = rf"{a}{_gap(most)}{b}"
    return rf"(?:{forward}|{b}{_gap(most)}{a})" if both else forward


# Determiners that point at one patient's thing, in both languages.
_THE = r"(?:the|that|this|those|these|your|his|her|their)"
_LE = r"(?:(?:la|le|les|ce|cette|ces|votre|vos|ton|ta|tes|du|des|de la) |l')"
_POSS = r"(?:your|his|her|their|votre|vos|ton|ta|tes|sa|ses)"

# Parts of the body and organs (a finding "on your lung", a report "sur votre rein").
_BODY = _words(
    "head|neck|back|lower back|chest|stomach|belly|abdomen|leg|legs|knee|knees|hip|hips|shoulder|arm|"
    "elbow|wrist|hand|foot|feet|ankle|heel|toe|finger|joint|muscle|bone|bones|rib|spine|jaw|tooth|"
    "teeth|gum|ear|ears|eye|eyes|throat|nose|sinus|sinuses|skin|breast|breasts|nipple|groin|pelvis|"
    "testicle|bladder|kidney|kidneys|liver|bowel|colon|rectum|heart|lung|lungs|thyroid|cheek|scalp|"
    "armpit|lip|tongue|mouth|face|forehead|brain|spleen|pancreas|gallbladder|prostate|uterus|ovary|"
    "ovaries|cervix|artery|arteries|vein|veins|lymph node|gland|glands|"
    "tete|cou|dos|bas du dos|poitrine|thorax|ventre|estomac|jambe|jambes|genou|genoux|hanche|epaule|"
    "coude|poignet|main|mains|pied|pieds|cheville|talon|orteil|doigt|articulation|muscle|os|cote|"
    "cotes|colonne|machoire|dent|dents|gencive|oreille|oreilles|oeil|yeux|gorge|nez|sinus|peau|sein|"
    "seins|mamelon|aine|bassin|testicule|vessie|rein|reins|foie|intestin|intestins|colon|rectum|"
    "coeur|poumon|poumons|thyroide|joue|joues|cuir chevelu|aisselle|levre|langue|bouche|visage|"
    "front|cerveau|rate|pancreas|vesicule|prostate|uterus|ovaire|ovaires|col|artere|arteres|veine|"
    "veines|ganglion|ganglions|glande|glandes"
)

# --- a finding, referred to without its name ---------------------------------------------------
# Things that are findings whatever is said of them ("the lump", « la bosse »), and things that
# are findings only once something is said of them ("the spot we froze", not "your spot in line").
_FINDING_STRONG = _words(
    "lump|lumps|bump|bumps|mole|moles|shadow|shadows|lesion|lesions|nodule|nodules|cyst|cysts|"
    "swelling|blockage|narrowing|freckle|discoloration|discolouration|scarring|"
    "bosse|bosses|boule|boules|grain de beaute|grains de beaute|ombre|ombres|lesion|lesions|nodule|"
    "nodules|kyste|kystes|enflure|gonflement|excroissance|retrecissement"
)
_FINDING_THING = _words(
    "lump|lumps|bump|bumps|spot|spots|mole|moles|growth|growths|shadow|shadows|mass|masses|patch|"
    "patches|lesion|lesions|nodule|nodules|cyst|cysts|swelling|tissue|sample|samples|cells|piece|"
    "fluid|blockage|narrowing|tear|freckle|discoloration|discolouration|scarring|marks|markings|"
    "bosse|bosses|boule|boules|tache|taches|grain de beaute|grains de beaute|ombre|ombres|masse|"
    "masses|lesion|lesions|nodule|nodules|kyste|kystes|enflure|gonflement|morceau|cellules|"
    "liquide|prelevement|echantillon|excroissance|blocage|retrecissement|dechirure|cicatrices"
)
_FINDING_VAGUE = _words(
    "area|areas|region|thing|things|issue|issues|concern|concerns|problem|problems|change|changes|"
    "count|level|levels|numbers|zone|zones|chose|choses|probleme|problemes|changement|changements|"
    "inquietude|decompte"
)
_REPORT = _words(
    "report|reports|results|result|images|image|imaging|picture|pictures|scan|scans|biopsy|x ray|"
    "xray|ultrasound|scope|tracing|mammogram|camera test|"
    "rapport|rapports|resultats|resultat|imagerie|radio|radiographie|echo|echographie|examen|"
    "biopsie|trace|compte rendu|camera"
)
# What staff say someone did with a finding: verbs of examining (the thing is surely a finding)
# and verbs of talking (it may be a bill: "the issue you mentioned").
_EXAMINED_EN = (
    "looked at|looked into|watching|watched|following|followed|felt|removed|took out|took off|froze|"
    "biopsied|sampled|examined|saw on|saw in|monitoring|keeping an eye on"
)
_TALKED_EN = (
    "discussed|mentioned|talked about|spoke about|raised|brought up|found|noticed|sent|pointed out|"
    "showed|worried about|concerned about|checked|saw"
)
_WHO_EN = r"(?:we|you|she|he|they|i|the doctor|the specialist|the surgeon|dr \w+)(?: \w+)? "
_SAW_EN = _WHO_EN + _words(_EXAMINED_EN + "|" + _TALKED_EN)
_SAW_EN_EXAMINED = _WHO_EN + _words(_EXAMINED_EN)
_QU = r"qu'(?:on|il|elle|ils|elles|nous|vous) (?:vous |nous |te |lui )?(?:a |avait |ont |avons |avez |ai )?"
_EXAMINED_FR = "surveille|surveillait|suit|suivait|voyait|voit|vu|enleve|retire|preleve|brule|gele|senti|sentait|" \
               "regarde|examine"
_SAW_FR = (
    r"(?:dont (?:on|vous|nous|je|elle|il) (?:a|avez|avons|ai|avait|aviez|m'avez|nous avez) "
    r"(?:parle|discute|jase)"
    r"|" + _QU + _words(_EXAMINED_FR + "|trouve|soupconnait|craignait|montre")
    + r"|que vous (?:avez|nous avez) " + _words("mentionne|souleve|montre|signale|parle") + ")"
)
_SAW_FR_EXAMINED = _QU + _words(_EXAMINED_FR)
# A finding named by what was done to it: "the fluid drained from your knee", « le morceau prélevé ».
_TAKEN = _words(
    "taken|removed|drained|sent|tested|frozen|biopsied|excised|cut out|preleve|prelevee|preleves|"
    "prelevees|retire|retiree|enleve|enlevee|analyse|analysee|envoye|envoyee|brule|brulee|gele|gelee"
)
_WHAT = (
    r"(?:\bwhat (?:we|they|she|he|you|the doctor|the specialist|the lab|dr \w+) "
    + _words("found|saw|suspected|felt|removed|took out|took off|were worried about|was worried about|see")
    + r"|\bwhat (?:showed|shows|came) up"
    + r"|\bce qu'(?:on|il|elle|ils|elles|nous|vous) (?:vous |nous |te )?(?:a |avait |ont |avons |avez )?"
    + _words("trouve|vu|voyait|voit|enleve|retire|preleve|senti|soupconnait|craignait|montre")
    + ")"
)
_STATUS = _words(
    "benign|harmless|cancerous|precancerous|malignant|nothing serious|nothing bad|nothing worrying|"
    "nothing concerning|nothing of concern|nothing to worry about|nothing to be worried about|"
    "no sign|no signs|not serious|not dangerous|not cancer|not worrying|not what we|stable|unchanged|"
    "not changed|has not changed|hasn't changed|has not grown|hasn't grown|gotten bigger|grown|"
    "is gone|has gone|went away|"
    "got bigger|bigger|smaller|not clear enough|came back clear|was clear|were clear|is clear|"
    "all normal|normal|abnormal|"
    "benin|benigne|benins|benignes|sans danger|cancereux|cancereuse|precancereux|precancereuse|"
    "maligne|rien de grave|rien de mauvais|rien d'inquietant|rien d'anormal|rien a signaler|"
    "pas grave|pas dangereux|pas dangereuse|pas ce qu'on craignait|aucun signe|stable|stables|"
    "pas change|n'a pas change|n'a pas grossi|a grossi|grossi|diminue|disparu|disparue|est parti|"
    "est partie|"
    "pas assez claire|pas assez clair|normale|normales|normaux|anormal|anormale"
)
_CAME_BACK = _words(
    "came back clear|came back normal|came back fine|came back good|came back ok|came back okay|"
    "came back negative|came back positive|came back abnormal|came back high|came back low|"
    "came back elevated|came back borderline|"
    "revenu correct|revenue correcte|revenus corrects|revenu normal|revenue normale|revenus normaux|"
    "revenu beau|revenue belle|revenu bon|revenue bonne|revenu clair|revenu negatif|revenue negative|"
    "revenu positif|revenue positive|est revenu correct|tout est revenu"
)
_REPORT_EN = _words(
    "report|reports|results|result|images|image|imaging|picture|pictures|scan|scans|biopsy|x ray|"
    "xray|ultrasound|scope|tracing|mammogram|camera test|swab|culture|sample|test|tests"
)
_REPORT_FR = _words(
    "rapport|rapports|resultats|resultat|imagerie|radio|radiographie|echo|echographie|examen|"
    "biopsie|trace|compte rendu|image|images|prelevement|culture|test|tests|scan"
)
_NOT_SHOWN = r"(?! up\b| in (?:the|your) portal| online| dans le portail| en ligne)"
_SHOWS = (
    rf"(?:(?<!survey )(?<!poll ){_REPORT_EN} (?:\w+ ){{0,4}}" + _words("shows|show|showed|showing|confirms|confirm|confirmed|"
                                                              "revealed|found")
    + rf"|(?<!sondage ){_REPORT_FR} (?:\w+ ){{0,4}}" + _words("montre|montrent|montrait|confirme|confirment|revele")
    + rf"){_NOT_SHOWN}"
)
# A test and its verdict in everyday words: "the test from your last visit was fine", « tout était
# normal lors de votre dernier contrôle ».
_CHECKED = _words(
    "test|tests|results|result|check|checkup|check up|exam|report|scan|scans|bloodwork|blood work|"
    "biopsy|pictures|images|x ray|mammogram|swab|culture|sample|"
    "examen|examens|controle|bilan|rapport|resultats|resultat|prelevement|echantillon|radio|image|"
    "images|biopsie|echo|prise de sang"
)
_FINE = _words(
    "fine|good|ok|okay|normal|clear|great|perfect|reassuring|unremarkable|as expected|within normal|"
    "correct|corrects|correcte|correctes|beau|beaux|belle|belles|bon|bons|bonne|bonnes|normal|"
    "normale|normales|normaux|parfait|parfaits|rassurant|rassurants|comme prevu"
)
_EVALUATED = _words(
    "was|were|is|are|looked|looks|look|came back|come back|came out|all|"
    "est|etait|sont|etaient|semble|semblait|revenu|revenue|revenus|revenues|tous|toutes"
)
EVALUATION = "|".join([
    rf"(?<!survey )(?<!sondage )(?<!poll ){_CHECKED}{_gap(5)}{_EVALUATED}{_gap(2)}{_FINE}",
    rf"\b(?:everything|all|tout)\b {_EVALUATED}{_gap(2)}{_FINE}{_gap(6)}{_CHECKED}",
    rf"{_CHECKED}{_gap(6)}\b(?:everything|all|tout)\b {_EVALUATED}{_gap(2)}{_FINE}",
])
FINDING = "|".join([
    EVALUATION,
    r"\b(?:the|your|these|those|les|vos|ces) (?:findings|trouvailles)\b(?! of (?:the|our) (?:survey|review|audit))",
    _near(r"\b(?:found|trouve|trouvé|noticed|saw|vu|remarque)\b (?:a |an |some |une |un |des )?(?:little |small |tiny |"
          r"petite |petit )?(?:something|quelque chose|anomaly|anomalie|abnormality|irregularity|spot|change|"
          r"changement|tache)\b",
          r"\b(?:sample|test|scan|x ray|blood|urine|image|images|report|exam|echantillon|prelevement|examen|rapport|"
          r"sang|radio|echo)\b", 6, both=True),
    r"\b(?:no sign|no signs|aucun signe|pas de signe)\b" + _gap(5) + r"(?:coming back|returning|come back|"
    r"revient|reviendrait|reapparait|recidive|de retour|recurrence)\b",
    rf"\b{_THE} (?:\w+ )?{_FINDING_STRONG}",
    rf"\b{_THE} (?:\w+ )?{_FINDING_THING}{_gap(4)}(?:{_SAW_EN}|(?:that|which) (?:was|were|is|are) "
    + _words("frozen|removed|biopsied|treated|burned|burnt|excised|cut out|sent|tested|drained|seen|found") + ")",
    rf"{_LE}(?:\w+ )?{_FINDING_STRONG}",
    rf"{_LE}(?:\w+ )?{_FINDING_THING}{_gap(4)}{_SAW_FR}",
    rf"\b{_THE} (?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_EN_EXAMINED}",
    rf"{_LE}(?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_FR_EXAMINED}",
    # "the issue you mentioned ... turned out to be nothing serious": something talked about, and its verdict
    rf"\b{_THE} (?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_EN}{_gap(8)}{_STATUS}",
    rf"{_LE}(?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_FR}{_gap(8)}{_STATUS}",
    rf"(?:{_FINDING_THING}|{_FINDING_VAGUE}) (?:(?:of|de|from|du) (?:\w+ )?)?{_TAKEN}",
    r"\b(?:looked at|seen|examined|checked) by a specialist\b|\bvoir par un specialiste\b",
    _WHAT,
    _CAME_BACK,
    _near(rf"(?:{_FINDING_THING}|{_REPORT})", _STATUS, 6, both=True),
    rf"{_REPORT} (?:from|of|on|de|du|sur) (?:your|the|votre|la|le|l') ?(?:scan|x ray|ultrasound|mri|ct|"
    r"biopsy|mammogram|echo|imaging|radio|echographie|biopsie|irm|scope|coloscopie|colonoscopy)\b",
    _SHOWS,
    rf"{_REPORT} (?:on|of|from|about|for|sur|de|du|des|de la|pour)(?: (?:your|the|votre|vos|la|le|les))?"
    rf"(?: {_BODY}| l'{_BODY}| d'{_BODY})",
    rf"\b(?:your|the|votre|vos) {_BODY} (?:picture|pictures|tracing|images|report|scan|x ray|"
    r"ultrasound|numbers|levels|values|function|test)\b",
    r"\b(?:the|your) findings? (?:from|of|on|in) (?:your|the) (?:\w+ )?(?:test|tests|scan|exam|biopsy|"
    r"scope|x ray|ultrasound|imaging|report|mri|ct|visit|procedure)\b",
    r"\b(?:unexpected|incidental) findings?\b|\bdecouvertes? (?:inattendue|fortuite)s?\b",
    r"\b(?:second opinion|deuxieme avis|2e avis|area of concern|zone a surveiller|zone d'interet)\b",
    r"\b(?:would like|wants?|veut|voudrait|aimerait) (?:a |un )?(?:second|another|deuxieme|autre) "
    r"(?:look|opinion|avis|regard)\b",
    r"\b(?:repeat|redo|refaire|reprendre|recommencer) (?:it|the|your|l'|la|le|votre)? ?(?:\w+ )?"
    r"(?:scan|image|imaging|picture|ultrasound|x ray|echo|echographie|radio|examen|biopsy|biopsie|mammogram)\b",
    r"\b(?:with dye|with contrast|avec (?:du )?contraste)\b",
    r"\b(?:booked|scheduled) (?:you )?for a repeat\b",
])
# "The issue you mentioned", « le problème dont on a parlé »: often a finding, sometimes a bill.
FINDING_WEAK = "|".join([
    rf"\b{_THE} (?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_EN}",
    rf"{_LE}(?:\w+ ){{0,2}}{_FINDING_VAGUE}{_gap(4)}{_SAW_FR}",
    _near(_FINDING_VAGUE, _STATUS, 6),
])

# --- a value without the test's name -----------------------------------------------------------
_VALUE_NOUN = _words(
    "numbers|levels|level|values|value|counts|count|readings|reading|average|sugars|sugar|score|"
    "oxygen|saturation|sats|weight|pressure|bp|stores|result|hemo|hb|hgb|"
    "chiffres|chiffre|niveaux|niveau|valeurs|valeur|taux|decompte|lectures|lecture|moyenne|sucres|"
    "sucre|glycemies|glycemie|score|saturation|oxygene|poids|pression|reserves|resultat|hemo"
)
# Words between "your" and the value noun that make it an address, an account or a ticket.
_NOT_VALUE = r"(?!phone|fax|cell|card|account|invoice|telephone|cellulaire|carte|compte|facture|dossier|" \
             r"confirmation|reference|member|membership|ticket|file|room|case|booking|waiting)"
_NUMBER = (
    r"(?<![\d$#])(?<!\ble )(?<!\bthe )(?<!\bau )-?\d+(?:[.,]\d+)*(?:\s?(?:%|kg|lbs?|mmol(?:/l)?|g/l|units?|unites?|ui|iu|mg|mcg|pmol|umol))?"
    r"(?:\s?(?:over|sur|/)\s?\d+)?"
    r"(?![\d:])"
    r"(?!\s?(?:\$|h\b|h\d|am\b|pm\b|a\.m|p\.m|min\b|minutes?|hours?|heures?|days?|jours?|jrs?|weeks?|wks?|"
    r"semaines?|sem\b|months?|mois|years?|ans?\b|ieme|e\b|er\b|st\b|nd\b|rd\b|th\b|business|ouvrables?|"
    r"pages?|questions?|times|fois|\d{3}\b))"
)
_TREND = _words(
    "normal|in range|within range|target|cible|norme|normes|high|low|better|worse|good|great|fine|"
    "bons|beaux|belles|mieux|pire|stable|stables|improved|improving|ameliore|ameliores|going down|"
    "going up|went down|went up|coming down|rising|dropping|falling|baissent|baisse|montent|monte|"
    "where we want|ou on les veut|hors norme|off|look good|looks good|dans les normes"
)
_ANALYTE = _words(
    "kidney|liver|thyroid|iron|sugar|blood sugar|hemo|drug|vitamin|b12|cholesterol|hormone|hormonal|"
    "salt|sodium|potassium|protein|urine"
)
VALUE = "|".join([
    rf"\b{_POSS}\s(?:{_NOT_VALUE}[a-z0-9']+\s){{0,2}}{_VALUE_NOUN}{_gap(8)}{_NUMBER}",
    rf"\b(?:numbers|levels|values|readings|counts|chiffres|valeurs|niveaux|lectures)\b{_gap(4)}{_NUMBER}",
    _near(_VALUE_NOUN, r"\b(?:from|de) \d+(?:[.,]\d+)? (?:to|a) \d+(?:[.,]\d+)?\b(?! ?(?:\$|h\b|am|pm|minutes|jours|days))", 6),
    rf"{_ANALYTE} (?:numbers|number|levels?|values?|count|stores|readings?)\b",
    r"\b(?:chiffres?|valeurs?|niveaux?|taux|reserves|fonction|lectures?) (?:du |de la |des |de |d')?"
    r"(?:rein|reins|foie|thyroide|fer|sucre|cholesterol|medicament|hormones?|vitamine|sang|sel|"
    r"protéines|proteines)\b",
    _near(r"\b(?:your|the|vos|les|tes|votre|ton)\s(?:[a-z]+\s)?(?:numbers|levels|values|chiffres|niveaux|"
          r"valeurs|taux|sugars|sucres|glycemies|readings|lectures|count|decompte)\b", _TREND, 6),
    r"\b(?:you|vous) (?:scored|avez (?:obtenu|eu) un (?:score|resultat))\b|\b(?:moderate|severe|mild|modere|"
    r"leger) (?:range|zone)\b|\b(?:un |votre )?resultat (?:modere|severe|eleve|leger) (?:au|a l'|du)\b",
])

# --- services and programs that reveal a condition; crisis lines ------------------------------
_TOPIC = _words(
    "anxiety|mood|depression|depressive|grief|bereavement|trauma|ptsd|burnout|eating disorder|"
    "eating disorders|alcohol|drinking|drugs|drug use|drug treatment|drug addiction|drug rehab|"
    "substance|substance use|addiction|addictions|gambling|withdrawal|detox|quit smoking|"
    "stop smoking|smoking cessation|tobacco cessation|crisis|distress|suicide|suicidal|mental health|"
    "memory|pain|falls prevention|sleep|allergy|allergies|wound|wounds|bariatric|breast|lipid|"
    "pulmonary|cardiac|stroke|speech|hearing|fertility|ocd|psychosis|postpartum|post partum|"
    "mindfulness|harm reduction|opioid|opioids|methadone|recovery|sobriety|weight management|"
    "obesity|incontinence|pelvic floor|prenatal|pregnancy|hiv|gender|sexual health|sti|"
    "anxiete|humeur|deuil|epuisement|troubles alimentaires|trouble alimentaire|"
    "alcool|drogues|drogue|dependance|dependances|toxicomanie|jeu pathologique|jeu compulsif|"
    "sevrage|desintox|cesser de fumer|arreter de fumer|arret tabagique|tabagisme|crise|detresse|"
    "suicide|sante mentale|memoire|douleur|prevention des chutes|sommeil|plaies|bariatrique|sein|"
    "lipides|pulmonaire|cardiaque|avc|langage|audition|fertilite|toc|psychose|pleine conscience|"
    "reduction des mefaits|opioides|retablissement|obesite|plancher pelvien|grossesse|prenatal|"
    "prenatale|vih|sante sexuelle|itss|stress post traumatique"
)
_SERVICE = _words(
    "program|programs|programme|group|groups|clinic|centre|center|service|services|team|counselling|"
    "counseling|counsellor|counselor|therapy|therapist|treatment|intake|assessment|support|session|"
    "sessions|nurse|worker|line|meeting|meetings|rehab|unit|workshop|class|classes|specialist|consult|"
    "referral|doctor|intervention|"
    "programmes|groupe|groupes|clinique|equipe|therapie|therapeute|traitement|intervenant|"
    "intervenante|infirmiere|ligne|suivi|evaluation|soutien|psychologue|accueil|rencontre|rencontres|"
    "atelier|ateliers|cours|unite|guichet|consultation|reference|psychiatre|medecin"
)
CARE = "|".join([
    _near(_TOPIC, _SERVICE, 4, both=True),
    # "healthy eating" and « saine alimentation » are for everyone; « troubles de l'alimentation » is not.
    r"\btroubles? (?:de l'|d'|des )?alimentation\b",
    r"\b988\b|\b1 ?866 ?appelle\b|\b1 866 277 3553\b|\b811,? (?:option|choix) 2\b|\bjeunesse,? j'ecoute\b",
    r"\b(?:crisis|distress|suicide|help) (?:line|centre|center|team|phone)\b|\bligne (?:de crise|d'ecoute|d'aide)\b",
    r"\bthoughts of (?:hurting|harming|killing|ending)\b|\b(?:hurt|harm|kill)(?:ing)? yourself\b"
    r"|\b(?:vous|te) faire du mal\b|\bmettre fin a (?:vos|tes) jours\b|\b(?:feel|feeling|you are|you're) unsafe\b",
    r"\b(?:how are|how have) (?:your|you been with your) (?:thoughts|mood|spirits)\b|\b(?:your|votre|ton) "
    r"(?:mood|humeur|moral)\b|\ble moral\b|\bhow you(?:'re| are) coping\b|\bsince (?:your|the) diagnosis\b"
    r"|\bdepuis (?:l'annonce du|le) diagnostic\b|\bcomment (?:tu files|vous allez depuis)\b",
    r"\b\d+ (?:days|weeks|months|jours|semaines|mois) (?:sober|clean|sobre|sans (?:consommer|boire|alcool))\b"
    r"|\bsans consommer\b",
    r"\b(?:cut down|cutting down|cut back|stopped|quit|quitting|stopping) (?:on )?(?:the )?(?:drinking|alcohol|"
    r"using|smoking|vaping|cigarettes|weed|cannabis)\b|\b(?:off|sans) (?:cigarettes|alcohol|alcool|drugs|drogues)\b"
    r"|\b(?:arrete|cesse|diminue|reduit|arreter|cesser|diminuer|reduire) (?:de |la |l')?(?:boire|alcool|consommer|"
    r"fumer|consommation|votre consommation)\b"
    r"|\bwithout (?:alcohol|drinking|drugs|cigarettes|smoking|using)\b",
    _near(r"\b(?:counsell?or|conseill\w+|therapist|therapeute|psy|psychologue|intervenante?|travailleuse sociale|"
          r"travailleur social|social worker)\b",
          r"\b(?:session|sessions|seance|seances|rencontres? de suivi|therapy|therapie)\b", 8, both=True),
])

# --- allergy testing and reactions --------------------------------------------------------------
ALLERGY = "|".join([
    _near(r"\ballerg\w*", _words(
        "test|tests|testing|result|results|reaction|reactions|shot|shots|injection|injections|clinic|"
        "panel|report|tested|rapport|resultats|resultat|reaction|reactions|clinique|piqures|cutanes|"
        "cutane|injection|injections|liste|list"), 3, both=True),
    r"\b(?:reacted|reaction|reactions|react|reagi) (?:to|au|a la|aux|a l')\b|\b(?:your|votre|a|une) "
    r"(?:allergic )?(?:reaction|reaction allergique)\b",
    r"\b(?:antihistamin\w*|epi ?pens?|auto ?inject\w*|milk ladder|echelle du lait)\b",
    r"\b(?:reintroduc\w*|reintrodui\w*|introduce (?:baked|peanut|egg))\b",
])

# --- infections: instructions, antibiotics' abbreviations, contagion ---------------------------
INFECTION = "|".join([
    r"\bx ?\d+ ?(?:d|days|j|jrs|jours|wks|weeks|sem|semaines)\b",
    r"\b(?:finish|complete|continue|keep taking|stay on|take all of|keep using|finir|finissez|terminer|"
    r"terminez|continuez|continuer|poursuivez|poursuivre) (?:the |your |all |la |le |les |vos |votre |l')?"
    r"(?:full |whole |entire )?(?:treatment|traitement|antibiotics?|pills|tablets|drops|gouttes|"
    r"cream|creme|capsules|medication|medicament|boite|antibio|atb|abx)\b",
    r"\b(?:full|whole|entire) course\b|\bcourse of (?:antibiotics|treatment|abx|pills|the medication)\b",
    r"\beven if (?:you|he|she|they) (?:feel|feels|are feeling|is feeling) better\b"
    r"|\bmeme si (?:vous|il|elle|tu) (?:vous sentez|allez|va|se sent|te sens|vas) mieux\b",
    r"\b(?:finish|finir|finissez|terminez|terminer) (?:it|le|la|les)? ?(?:all|au complet|tout)\b"
    r"|\b(?:prendre|prenez) (?:le|la|les) au complet\b",
    r"\b(?:self )?isolat\w*|\bisolez\b|\bisole(?:r|z)? vous\b",
    r"\bstay (?:off|home from) (?:work|school|daycare)\b",
    r"\b(?:keep|gardez|garder) (?:him|her|them|your (?:child|son|daughter|kid|kids|baby)|le|la|votre enfant|"
    r"votre fils|votre fille|votre garcon|les enfants)? ?(?:at )?(?:home|a la maison)\b"
    + _gap(4) + r"(?:until|jusqu'a|pour \d|for \d|\d+ ?h)",
    r"\b(?:back|return|retour|retourner|revenir) (?:to|a) (?:daycare|school|work|la garderie|l'ecole|"
    r"le travail)\b" + _gap(6) + r"(?:after|until|apres|jusqu'a|when|quand)",
    r"\b(?:don't|do not|ne) (?:share|partagez) (?:pas )?(?:your |vos )?(?:towels|cups|utensils|serviettes)\b",
    r"\b(?:wash your hands|lavez vous les mains) (?:after|apres)\b",
    r"\b(?:contact tracing|recherche des contacts|public health nurse|public health unit|sante publique)\b",
    r"\b(?:your |votre )?(?:partner|partners|partenaire|partenaires) (?:should|must|needs to|need to|doit|doivent)"
    r" (?:also |aussi )?(?:be |etre )?(?:treated|tested|checked|traitee?s?|testee?s?|depistee?s?)\b",
    r"\b(?:mask|masque) (?:around|near|autour des|pres des) (?:others|autres)\b",
    r"\b(?:you're|you are|vous etes) (?:still )?(?:contagious|contagieux|contagieuse)\b",
    r"\b(?:the )?bacteri(?:a|um|e|es)\b|\bresist(?:ant|e) (?:to|a)\b",
    r"\b(?:culture|swab|prelevement|sample|echantillon) (?:grew|shows|showed|montre|est positif|is positive)\b",
    r"\b(?:keep|gardez) (?:the |your |l')?(?:ear|oreille)\b" + _gap(2) + r"(?:dry|seche)",
    r"\b(?:eye|ear) drops\b|\bgouttes (?:pour les yeux|dans l'oreille|ophtalmiques)\b",
    r"\b(?:throw away|jetez) (?:your |votre )?(?:eye )?(?:makeup|maquillage)\b",
    r"\b(?:refaites le traitement|repeat the treatment)\b",
])
# Prescription shorthand, matched in the original text (capitals: "BID", never the word "bid").
INFECTION_CASED = r"\b(?:BID|TID|QID|QHS|QAM|QPM|PRN|q\d{1,2}h|tid|qid|qhs)\b"

# --- wound care ---------------------------------------------------------------------------------
_WOUND_THING = _words(
    "stitches|staples|sutures|points|agrafes|steri strips|drain|drains|packing|meche|dressing|"
    "dressings|pansement|pansements|bandage|bandages|diachylons|diachylon|glue|colle|cast|platre|"
    "attelle|splint"
)
WOUND = "|".join([
    rf"\b(?:your|the|vos|les|votre|ton|tes|le|la) {_WOUND_THING}{_gap(4)}"
    + _words("removed|remove|come out|comes out|taken out|changed|change|changing|fall off|falls off|"
             "peel off|peels off|retires|retire|retirees|retirer|enleves|enlever|enlevees|"
             "s'enlevent|s'enleve|changer|change|tomberont|tombent|tomber|partir|partira|va partir"),
    r"\b(?:change|changes|changed|changing|changer|changera|changez|changement|refaire) (?:de |du |le |la |les |"
    r"your |the |vos |votre )?(?:dressing|dressings|pansement|pansements|packing|meche|bandage|vac)\b",
    r"\b(?:keep|gardez|garder) (?:the |your |la |le |votre |l')?(?:incision|wound|plaie|dressing|pansement|"
    r"bandage|cut|coupure|cast|platre)\b",
    r"\b(?:photo|picture|pic|image) (?:of|de) (?:the |your |la |votre |l')?(?:wound|incision|rash|cut|scar|"
    r"burn|lesion|mole|site|plaie|eruption|coupure|cicatrice|brulure|lesion|peau)\b",
    r"\b(?:surgical|biopsy|incision|operation|injection) site\b|\bsite (?:de l'operation|de la biopsie|"
    r"operatoire|de l'injection|de la chirurgie)\b",
    r"\b(?:your|the|la|votre|vos|les) (?:c section |cesarienne )?(?:scar|cicatrice|burn|brulure|cut|"
    r"coupure)\b" + _gap(4) + r"(?:heal\w*|gueri\w*|looks|covered|couvert\w*|infect\w*|clean|propre)",
    r"\b(?:pression negative|negative pressure|wound vac)\b",
    r"\b(?:is|are|looks|look|est|sont|semble) (?:healing|healed|gueri|guerie|gueris|cicatrise\w*)\b|\bheal(?:s|ing)? "
    r"(?:well|nicely|up)\b|\bguerit bien\b|\bbien gueri\w*\b|\bse cicatrise\w*\b",
    r"\b(?:covered and dry|dry and covered|couverte? et au sec|au sec et couverte?)\b",
    r"\b(?:faire|changer|refaire|change) (?:la |votre )?meche\b|\bla meche (?:doit|sera|est)\b",
    r"\b(?:redness|rougeur|rougeurs|swelling|enflure|warmth|chaleur)\b" + _gap(3) + r"(?:around|autour)\b",
    r"\b(?:lift|lifting|soulever) (?:more than |over |anything heavier than |plus de )?\d+ ?(?:pounds|lbs|kg|livres)\b",
    r"\bsaline\b|\bsalin\b|\bnon (?:stick|adherent\w*) (?:pad|compresse)\b|\bcompresse\b",
])

# --- before a procedure ---------------------------------------------------------------------------
_DIET = _words(
    "nothing to eat|nothing by mouth|no food|no solid food|no solids|no food or milk|no food or drink|"
    "fast from|fasting from|fast after|fasting after|clear fluids|clear liquids|clear juice|"
    "liquid diet|low fibre diet|low fiber diet|low residue diet|sips of water|sip of water|"
    "carbohydrate drink|light breakfast|"
    "rien a manger|rien manger|pas de nourriture|a jeun|liquides clairs|diete liquide|"
    "diete faible en fibres|diete sans residus|boisson de glucides|gorgee d'eau|jus clair|"
    "dejeuner leger|pas de gomme"
)
_WHEN = _words(
    "before|after midnight|from midnight|until|the day before|the night before|the evening before|"
    "the morning of|hours before|avant|apres minuit|a partir de minuit|depuis minuit|des minuit|"
    "jusqu'a|la veille|le matin de|h avant|heures avant"
)
_OPERATION = _words(
    "surgery|operation|procedure|scope|colonoscopy|anesthetic|anaesthetic|sedation|chirurgie|"
    "intervention|sedation|coloscopie|gastroscopie|amygdales|examen"
)
PRE_OP = "|".join([
    _near(_DIET, rf"(?:{_WHEN}|{_OPERATION})", 6, both=True),
    r"\b(?:your|his|her|their|son's|daughter's) operation\b(?! hours)",
    r"\b(?:votre|son|sa|ton|ta) operation\b|(?<!heures )\bd'operation\b|\bl'operation\b",
    r"\b(?:shower|wash|douchez vous|lavez vous) (?:with|avec) (?:the |le )?(?:antiseptic|chlorhexidine|special|"
    r"savon)\b|\bsavon (?:antiseptique|special|a la chlorhexidine)\b",
    r"\b(?:remove|enlevez|retirez) (?:all |tout )?(?:nail polish|vernis)\b",
    r"\b(?:drive|take) you home after\b|\b(?:vous )?reconduire (?:a la maison )?apres\b",
    r"\bthe morning of (?:your|the) (?:procedure|surgery|operation|scope|test)\b|\ble matin de "
    r"(?:l'intervention|la chirurgie|l'operation|l'examen)\b",
    r"\b(?:stop|hold|arretez|cessez) (?:your |votre |le |la |l')?(?:\w+ ){0,2}\d+ (?:days|jours) "
    r"(?:before|avant)\b",
])

# --- pregnancy by hormone values and weeks -----------------------------------------------------
_GESTATION = r"(?:[6-9]|[1-4]\d) ?(?:weeks?|wks?|semaines?|sem\b)"
_PREGNANCY_NOUN = _words(
    "scan|ultrasound|echo|echographie|sonogram|dating|anatomy|morphologique|nuchal|clarte|growth|"
    "croissance|heartbeat|battement|baby|bebe|sac|glucose|strep|gbs|swab|prelevement|rh|winrho|"
    "rhogam|vaccine|vaccin|rsv|vrs|pregnant|pregnancy|enceinte|grossesse|trimester|trimestre|"
    "obstetrician|obstetricienne|midwife|midwives|sage femme|prenatal|prenatale"
)
PREGNANCY = "|".join([
    r"\b(?:beta|bhcg|hcg)(?: hcg)?\b" + _gap(4) + r"\d",
    r"\b(?:second|2nd|next|prochain|prochaine|deuxieme|2e) (?:beta|hcg)\b",
    r"\b(?:hormone|hormonal|quantitative|quantitatif)(?: \w+)? (?:level|levels|value|taux|niveau)\b"
    r"|\btaux (?:d'hormones?|quantitatif)\b",
    _near(rf"(?:\b(?:at|a|de|of|by|until|to|jusqu'a|vers) {_GESTATION}|\b{_GESTATION}|\b(?:between|entre) "
          rf"(?:[6-9]|[1-4]\d) (?:and|et) {_GESTATION})", _PREGNANCY_NOUN, 6, both=True),
    r"\b(?:try(?:ing)? to|essayer de|avant de) (?:conceive|get pregnant|concevoir|tomber enceinte)\b",
    r"\b(?:confirms? the loss|confirme la perte)\b",
    r"\b(?:baby's heartbeat|heartbeat|battement|coeur du bebe|sac gestationnel|one sac|un sac)\b",
    r"\b(?:your|vos|tes) (?:period|periods|regles|menstruations?)\b(?! of)",
    r"\bwhen your period\b|\bquand vos regles\b",
])

# --- a vaccine given because of a condition, a treatment or an exposure -------------------------
_VACCINE = _words(
    "vaccine|vaccines|vaccination|vaccinations|vaccinated|vaccinate|immunization|immunizations|"
    "immunisation|shot|shots|booster|boosters|vaccin|vaccins|vacciner|vaccinee|vaccine|"
    "rappel du|rappel de|rappel d'|rappel contre|shingrix|pneumovax|prevnar|pneu c 20|pneumococcal|"
    "pneumocoque|meningococcal|meningocoque|hib|rabies|rage|tetanus|tetanos|rsv|vrs|antigrippal"
)
_AFTER_EVENT = (
    "exposure|cut|bite|scratch|injury|wound|needle|needlestick|poke|surgery|transplant|splenectomy|"
    "operation|diagnosis|treatment|chemo|contact|coupure|morsure|blessure|piqure|greffe|chirurgie|"
    "diagnostic|traitement|exposition|accident|egratignure"
)
_BECAUSE = (
    r"(?:\bbecause of (?:your|his|her|their)\b|\bbecause (?:you're|you are|you have|he is|she is)\b"
    r"|\bdue to (?:your|his|her)\b|\bgiven (?:your|his|her)\b"
    r"|\bsince (?:you're|you are|you have|you've)\b(?! (?:asked|requested|booked|called|moved))"
    r"|\bsince your (?!last|previous|most recent|next|appointment|visit|request|booking|call)\w+"
    r"|\bas you(?:'re| are| have)\b(?! (?:asked|requested|booked))"
    r"|\bbefore starting\b|\b(?:your|votre) (?:\w+ )?condition\b"
    r"|\b(?:after|following) (?:your|the|a|his|her) (?:\w+ )?(?:" + _AFTER_EVENT + r")\b"
    r"|\bvu (?:votre|vos|ta|tes)\b|\ba cause de (?:votre|vos|ta|tes)\b|\bcomme (?:votre|vos|vous etes|"
    r"vous prenez|vous avez (?!demande))\b|\bpuisque vous\b(?! (?:avez demande|l'avez demande))"
    r"|\ben raison de (?:votre|vos)\b|\bavant de commencer\b"
    r"|\b(?:apres|suite a) (?:votre|vos|la|le|l'|une|un) ?(?:\w+ )?(?:" + _AFTER_EVENT + r")\b)"
)
VACCINE = _near(_VACCINE, _BECAUSE, 10, both=True)

# --- sleep studies and sleep apnea treatment ---------------------------------------------------
SLEEP = "|".join([
    _near(r"\b(?:your|the|votre|l'|le|la|ton|ta) ?(?:machine|appareil|mask|masque|device)\b",
          _words("every night|each night|all night|chaque nuit|toutes les nuits|naps|siestes|download|"
                 "telechargement|hours a night|h par nuit|heures par nuit|titration|titrage"), 6),
    r"\b(?:sleep|sommeil) (?:study|test|lab|clinic|apnea|doctor|specialist|results)\b"
    r"|\b(?:etude|test|laboratoire|labo|clinique) du sommeil\b",
    r"\bstop breathing\b|\b(?:arretez|cessez|arrete|cesse) de respirer\b|\b(?:times|fois) (?:an|per|par) "
    r"(?:hour|heure)\b",
])

# --- a question or an instruction about the patient's symptom ----------------------------------
_SYMPTOM = _words(
    "rash|cough|coughing|fever|swelling|bleeding|headache|headaches|migraine|migraines|dizziness|"
    "dizzy spells|vomiting|nausea|numbness|tingling|pain|burning|breathing|shortness of breath|"
    "fainting|fainting episodes|confusion|flare|flare up|cravings|diarrhea|diarrhoea|itch|itching|"
    "discharge|cramps|cramping|wheeze|wheezing|heartburn|palpitations|redness|red area|infection|"
    "spells|episodes|attacks|seizures|"
    "eruption|toux|fievre|enflure|gonflement|saignement|saignements|maux de tete|mal de tete|"
    "migraine|etourdissements|vomissements|nausees|engourdissement|engourdissements|fourmillements|"
    "douleur|douleurs|brulure|brulures|respiration|essoufflement|pertes de conscience|"
    "evanouissements|confusion|poussee|envies|diarrhee|demangeaisons|ecoulement|ecoulements|crampes|"
    "palpitations|rougeur|rougeurs|infection|crises"
)
# Symptoms whose change over time staff ask about; "pain" alone is everyday talk ("the pain came
# back, so I'm back in bed"), so it counts only in a question or next to a part of the body.
_SYMPTOM_CHANGING = _words(
    "rash|cough|coughing|fever|swelling|bleeding|headache|headaches|migraine|migraines|dizziness|"
    "dizzy spells|vomiting|nausea|numbness|tingling|burning|shortness of breath|fainting|confusion|"
    "diarrhea|diarrhoea|itching|discharge|cramping|wheezing|heartburn|palpitations|redness|red area|"
    "infection|eruption|toux|fievre|enflure|gonflement|saignement|saignements|maux de tete|"
    "etourdissements|vomissements|nausees|engourdissement|engourdissements|fourmillements|"
    "brulure|brulures|essoufflement|confusion|diarrhee|demangeaisons|ecoulement|ecoulements|"
    "palpitations|rougeur|rougeurs|infection"
)
_EVOLVES = _words(
    "better|worse|improved|improving|gone|go away|goes away|go down|goes down|settle|settled|spread|"
    "spreads|spreading|return|returns|come back|comes back|came back|persist|persists|still there|"
    "keeps spreading|keeps coming|getting worse|has improved|hasn't improved|is worse|should be gone|"
    "should go|should settle|clear up|clears up|past the line|"
    "mieux|pire|ameliore|ameliorer|s'ameliore|s'ameliorent|partie|parti|partir|passe|passee|"
    "disparait|disparaitre|diminue|diminuer|diminuent|augmente|augmentent|s'etend|s'etendent|"
    "revient|reviennent|revenir|empire|persiste|persistent|depasse|encore la|toujours la"
)
_ASK = (
    r"\b(?:how(?:'s| is| are| has| have| was| were)?|any (?:more|other|further)|still (?:having|getting|any)"
    r"|checking (?:in )?on|follow(?:ing)? up on|after the|comment (?:va|vont|allait|se porte|se portent)|"
    r"est ce que|encore|toujours|d'autres|plus de|des nouvelles de|suite a)"
)
_ASK_IS = r"\b(?:is|are) (?:the|your|that|his|her|their|those)"
_DET = r"(?:the |your |that |his |her |their |those |le |la |les |l'|votre |vos |ton |ta |tes |du |de la |des |de l')?"
SYMPTOM = "|".join([
    rf"{_ASK} {_DET}(?:\w+ )?{_SYMPTOM}",
    rf"{_ASK_IS} (?:\w+ )?{_SYMPTOM}",
    rf"\b(?:how(?:'s| is| are| has| have)|comment (?:va|vont)) {_DET}(?:\w+ )?{_BODY}",
    rf"\bhow (?:the |your )(?:\w+ )?{_BODY} (?:has|have|is|are|feels|feel)\b",
    rf"\b(?:the|your|his|her|le|la|les|l'|votre|vos|ton|ta|tes) ?(?:\w+ )?{_SYMPTOM_CHANGING}{_gap(4)}{_EVOLVES}",
    r"\b(?:vision|eyesight|vue)\b" + _gap(2) + r"(?:blurry|blurred|embrouillee|floue|double)\b"
    r"|\b(?:see|voyez) (?:des )?(?:flashes|eclairs)\b",
    r"\b(?:still|encore) (?:vomiting|coughing|bleeding|throwing up)\b|\bvomit encore\b|\bvomissent encore\b",
    r"\b(?:blood in (?:your |the )?(?:urine|stool|pee)|sang dans (?:l'urine|les selles|vos selles|votre urine))\b",
    r"\bwhen you (?:pee|urinate)\b|\bquand vous urinez\b|\b(?:ca|it) (?:brule|burns)\b",
    r"\bthe line (?:we|I) drew\b|\bla ligne (?:qu'on a|que nous avons) tracee\b",
])

# --- how to take a medication ----------------------------------------------------------------------
_MED = _words(
    "pill|pills|tablet|tablets|capsule|capsules|medication|medications|medicine|medicines|meds|drops|"
    "cream|ointment|puffer|puffers|inhaler|inhalers|pilule|pilules|comprime|comprimes|medicament|"
    "medicaments|gouttes|creme|onguent|pompe|pompes"
)
MEDICATION = "|".join([
    _MED + r" (?:for|pour|contre) (?:the |your |la |le |les |l'|votre |vos |ton |ta |tes )?"
    r"(?!review|reconciliation|trip|week|weekend|holidays|renewal|refill|pickup|pick up|revision|"
    r"renouvellement|rendez|visit|visite|appointment|rdv|first|next|premiere|prochaine)[a-z']+",
    r"\b(?:blood pressure|bp|cholesterol|thyroid|diabetes|sugar|water|heart|anxiety|pain|allergy|seizure|"
    r"iron|sleeping|nerve|mood|acid|stomach) (?:pill|pills|tablet|tablets|medication|medicine|meds)\b",
    r"\b(?:your|the|votre|la|ta|sa) (?:usual |current |new |same |next |regular |daily |morning |evening |"
    r"nouvelle |meme |prochaine )?(?:dose|doses|dosage|posologie)\b"
    r"(?! (?:of the|of your|de rappel|du vaccin|de vaccin|of vaccine)\b)",
    r"\b(?:increase|increasing|increased|lower|lowered|lowering|raise|raising|raised|reduce|reduced|reducing|"
    r"adjust|adjusted|double|doubled|halve|augment\w*|baiss\w*|diminu\w*|ajust\w*|doubl\w*) (?:the |your |la |"
    r"votre |ta |le )?(?:dose|dosage|posologie)\b",
    r"\b(?:same|meme|full|half|demi) ?dose\b|\bdose (?:is|was|goes|drops|passe|baisse|augmente)\b",
    r"\b(?:\d+|one|two|three|half|un|une|deux|trois|demi) (?:puffs?|inhalations?|drops?|gouttes?|tablets?|"
    r"comprimes?|pills?|pilules?|capsules?|caps|sprays?|vaporisations?)\b",
    _near(_words("once a day|twice a day|three times a day|four times a day|once daily|twice daily|"
                 "times a day|fois par jour|au coucher|at bedtime|with food|on an empty stomach|"
                 "a day with|par jour avec"),
          _words("take|taking|apply|use|prenez|prendre|appliquez|appliquer|utilisez|mettez|mg|drops|"
                 "gouttes|cream|creme|puffs|inhalations|dose|tablet|tablets|comprime|comprimes|pill|"
                 "pills|pilule|pilules|iron|fer|supplement|supplements"), 6, both=True),
    r"\b(?:cut|coupez|couper) (?:the |les )?(?:tablets?|pills?|comprimes?|pilules?) (?:in half|en deux)\b",
    rf"\b(?:stop|hold|arretez|cessez|n'arretez pas|don't stop|do not stop|restart|reprendre|reprenez|resume|"
    rf"start|commencez|commencer|switch to|changez pour) (?:taking )?(?:the |your |la |le |l'|les |votre |vos |"
    rf"un |une |one )?(?:\w+ ){{0,2}}(?:{_MED}|\bdose\b|\binjections?\b|\bpatch(?:es)?\b|\btimbres?\b)",
    r"\b(?:your|votre|vos|la|les|nouvelle|new|ta|tes) (?:puffers?|pompes?)\b",
    r"\b(?:log|logging|notez|noter) (?:your |vos )?(?:readings|sugars|lectures|glycemies|blood pressure|pression)\b",
    r"\b(?:glucometer|glucometre|lecteur de glycemie)\b",
])


# Weaker wording: evidence for the uncertainty score (classifier.py), never a block on its own.
VALUE_WEAK = r"\b(?:your|vos|votre|tes|ton) (?:\w+ )?(?:numbers|levels|values|chiffres|niveaux|valeurs|taux|readings|lectures)\b"
CARE_WEAK = (
    r"\b(?:therapist|therapeute|support group|groupe de soutien)\b"
    r"|\bhow (?:are you|have you been) (?:doing|feeling|holding up|coping)\b|\bhow have you been\b"
    r"|\bchecking in on you\b|\bprendre de (?:vos|tes) nouvelles\b|\bcomment (?:allez vous|vas tu|ca va)\b"
    r"|\bsince our (?:conversation|talk|discussion)\b|\bdepuis notre (?:discussion|conversation)\b"
)
SYMPTOM_WEAK = _words(
    "fever|cough|rash|pain|vomiting|bleeding|headache|headaches|swelling|nausea|diarrhea|"
    "fievre|toux|eruption|douleur|douleurs|vomissements|saignements|mal de tete|nausees|diarrhee"
)
PRE_OP_WEAK = (
    r"\b(?:before|after|for) (?:your|the) (?:procedure|surgery|scope|exam)\b"
    r"|\b(?:avant|apres|pour) (?:l'intervention|votre intervention|l'examen|votre examen|la procedure)\b"
)


@frozen
class Family:
    """One family of context patterns: its name (the kind its findings report; the words staff
    read are in emrcomm.rules.CLINICAL_TRIGGERS) and its expressions. A match of ``strong``
    blocks (CLINICAL_CONTENT); a match of ``weak`` is only evidence for the uncertainty score.
    """

    name: str
    strong: re.Pattern[str]
    weak: re.Pattern[str] | None = None


FAMILIES: tuple[Family, ...] = tuple(
    Family(name, re.compile(strong), re.compile(weak) if weak else None)
    for name, strong, weak in (
        ("finding", FINDING, FINDING_WEAK),
        ("value", VALUE, VALUE_WEAK),
        ("care", CARE, CARE_WEAK),
        ("allergy", ALLERGY, None),
        ("infection", INFECTION, None),
        ("wound", WOUND, None),
        ("pre-op", PRE_OP, PRE_OP_WEAK),
        ("pregnancy", PREGNANCY, None),
        ("vaccine", VACCINE, None),
        ("sleep", SLEEP, None),
        ("symptom", SYMPTOM, SYMPTOM_WEAK),
        ("medication-use", MEDICATION, None),
    )
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


def find(folded_text: str, original: str) -> Iterator[Phrase]:
    """Every strong and weak match in the text."""
    for family in FAMILIES:
        for m in family.strong.finditer(folded_text):
            if m.end() > m.start():
                yield Phrase(m.span(), family.name, True)
        if family.weak is not None:
            for m in family.weak.finditer(folded_text):
                if m.end() > m.start():
                    yield Phrase(m.span(), family.name, False)
    for m in _CASED.finditer(original):
        yield Phrase(m.span(), "infection", True, True)
