"""Whose health a sentence is about: the sentences about someone else (a staff member's own leave
or illness, a charity, a public event, another clinic in the building) or about everyone.

:func:`others` gives the folded spans where no term, no pattern and no word of the uncertainty
score counts. A sentence is about someone else when it has a marker of :data:`MARKERS`; within
it, a clause that addresses the patient ("you", "your", « votre », "patients on warfarin") still
counts: "Dr. Kim is on leave, so Dr. Lee will give you your biopsy results" is clinical, "Dr. Kim
is on leave after her own surgery" is not. The lexicon finds *what* a sentence speaks of; this
layer says *whose* it is, so a disease named for a charity run or a colleague's leave is not the
patient's.
"""

from __future__ import annotations

import functools
import re

from attrs import frozen

from emrcomm_content.phrasing import Deferred, gate_keys


@frozen
class Marker:
    """One kind of wording that says a sentence is about someone else or about everyone."""

    name: str
    gate: frozenset[str]  # gate keys one of which every match contains (the marker runs only then)
    pattern: Deferred | re.Pattern[str]
    # False for wording written to everyone at once (a newsletter, a heat warning): its "your" is
    # everyone's ("how to set up your desk"), so a clause that addresses the patient is quiet too
    address_counts: bool = True
    # What addresses the patient in a clause of this marker, when "you" there is everyone's: a
    # campaign's "if you are 65 or older" is every reader's; "because of your diabetes" is the patient's
    address: re.Pattern[str] | None = None
    # True for wording that frames its whole sentence (a campaign, a notice at the door): every clause of
    # the sentence is read with it, not only the clause the marker's words are in
    sentence: bool = False
    # eleventh round: for wording written to everyone, quiet only the clauses its words are in ("All good with
    # your refund, but the biopsy showed melanoma" keeps its second clause)
    clause: bool = False


def _marker(name: str, gate: str, pattern: str, *, address_counts: bool = True,
            address: re.Pattern[str] | None = None, sentence: bool = False, clause: bool = False) -> Marker:
    """``gate``: words separated by spaces, ``word*`` for every word that starts so (phrasing.gate_keys)."""
    return Marker(name, gate_keys("|".join(gate.split())), Deferred(pattern), address_counts, address, sentence,
                  clause)


# The patient singled out, where "you" is every reader's (a campaign, a notice at the door): a
# reason that is the patient's ("because of your diabetes", « vu votre diabète », "since you had"),
# or "your" on something other than the logistics every reader shares ("your spot", « votre place »).
_SINGLED_OUT = re.compile(
    r"\b(?:because|since|as|given that|now that) (?:of )?(?:you|your)\b|\b(?:due to|given|with|after|from) your\b"
    r"(?! (?:hikes?|walks?|trips?|travels?|vacation|holidays?|outings?|activities|shopping|day|visits?|appointments?)\b)"
    r"|\b(?:your|ur) (?!(?:spot|place|turn|appointment|appt|visit|next|health card|card|family|household|children|kids|"
    r"vaccines|vaccinations|immuni[sz]ations|records?|"
    r"loved ones|friends|neighbours|neighbors|coworkers|colleagues|flu shot|shot|vaccine|vaccination|dose|booster|free|own|convenience|area|neighbourhood|neighborhood|"
    r"pharmacy|pharmacist|doctor|nurse|provider|care team|team|local|nearest|closest|phone|call|cooperation|"
    r"understanding|patience|health|booking|reservation|name|arm|sleeve|hands|mask|masks)\b)[a-z]+"
    r"|\b(?:vu|avec|depuis|apres|pour|en raison de|a cause de|etant donne|suite a) (?:votre|vos|ton|ta|tes)\b"
    r"(?! (?:randonnees?|marches?|sorties?|vacances|voyages?|activites|promenades?|achats|courses|journees?|"
    r"visites?|rendez)\b)"
    # eleventh round: "as one of our dialysis patients", « comme une de nos patientes greffées »
    r"|\bas (?:one of )?our (?:\w+ )?patients\b|\bcomme (?:un|une|l'un|l'une) de nos (?:\w+ )?patient(?:e|es|s)?\b"
    r"|\b(?:parce que|puisque|comme) (?:vous|tu)\b|\byours\b|\b(?:le|la|les) votres?\b|\b(?:like|such as) (?:you|yourself)\b"
    r"|\b(?:after|since|following|apres|depuis|suite a) (?:the|your|la|le|l'|votre|vos|ta|ton) ?(?:procedure|surgery|operation|"
    r"scope|biopsy|injection|treatment|infusion|delivery|birth|intervention|chirurgie|biopsie|traitement|accouchement|"
    r"perfusion|examen|exam|test)s?\b"
    r"|\b(?:votre|vos|ton|ta|tes) (?!(?:place|tour|rendez|rdv|visite|prochaine?|carte|famille|enfants|proches|vaccins?|"
    r"carnet|dossier|"
    r"doses?|rappels?|pharmacie|pharmacien(?:ne)?|medecin|infirmiere?|equipe|quartier|region|collaboration|"
    r"comprehension|patience|sante|reservation|nom|bras|manche|appel|telephone|mains|masque)\b)[a-z]+"
)
# A vaccine or a screening offered to a group: "the pneumococcal vaccine for people with diabetes or
# heart disease", "screening kits for anyone 50 to 74", « le vaccin contre le zona pour les 65 ans
# et plus ». The group is named by what every reader can check, not by the patient's chart.
_CAMPAIGN = (r"(?:vaccin\w*|shots?|boosters?|immuni[sz]\w*|screening|depistage|campa(?:ign|gne)s?|kits?|trousses?|flu|"
             r"grippe|covid|influenza)")
# Free or offered to a group named by age or by who they are ("free for everyone 65 and older", « gratuit
# pour les 75 ans et plus »), but not "eligible for free insulin", which is the patient's.
_FREE = r"(?:free|gratuite?s?|offerte?s?)"
# Eighth round: an age range or a school grade (« entre 50 et 74 ans », "between 50 and 74", "grade 7
# students", « élèves de 4e année »), in both of the patterns below.
_RANGE_OR_GRADE = (r"|entre \d+ et \d+ ans|between (?:the ages of )?\d+ and \d+|grade \d+ (?:students|kids|children)"
                   r"|(?:students|kids|children) in grade \d+|eleves de (?:\d+e|secondaire \d)")
_AGE_GROUP = (
    r"(?:(?:people|persons|those|anyone|adults|seniors|women|men|children|kids|babies|infants|individuals|residents)"
    r"(?: \w+){0,2}? (?:aged|over|under|between|from \d|\d)"
    r"|\d+ (?:years |months |yrs )?(?:and|or) (?:older|over|up|above|more)|(?:aged|ages) \d+"
    r"|\d+ ?(?:to|-|and) ?\d+ (?:years|yrs|year olds)|\d+ ?\+"
    r"|(?:les |aux |des )?(?:personnes|gens|adultes|aines|femmes|hommes|enfants|bebes|residents)(?: \w+){0,2}? (?:de \d|"
    r"agee?s|entre)|\d+ (?:ans|mois) (?:et|ou) (?:plus|moins)|\d+ ans et \+|de \d+ a \d+ ans|\d+ ?(?:-|a| ) ?\d+ ans"
    + _RANGE_OR_GRADE + ")"
)
_GROUP = (
    r"(?:(?:people|persons|those|anyone|adults|seniors|women|men|children|kids|babies|infants|individuals|residents)"
    r"(?: \w+){0,2}? (?:with|who|aged|over|under|living|at (?:high|higher|increased) risk|between|from \d|\d)"
    r"|\d+ (?:years |months |yrs )?(?:and|or) (?:older|over|up|above|more)|(?:aged|ages) \d+"
    r"|\d+ ?(?:to|-|and) ?\d+ (?:years|yrs|year olds)|\d+ ?\+|eligible|free for|available (?:to|for) (?:all|everyone|"
    r"anyone|people|adults|seniors|those)"
    r"|(?:les |aux |des )?(?:personnes|gens|adultes|aines|femmes|hommes|enfants|bebes|residents)(?: \w+){0,2}? (?:de \d|"
    r"agee?s|atteintes?|ayant|avec|qui|vivant|a risque|entre)|\d+ (?:ans|mois) (?:et|ou) (?:plus|moins)|\d+ ans et \+"
    r"|de \d+ a \d+ ans|\d+ ?(?:-|a| ) ?\d+ ans|admissibles?|eligibles?|gratuite?s? pour|offerte?s? (?:a|aux) (?:tous|toutes|toute|la population|"
    r"les personnes)"
    # free wherever anyone goes: "free at every pharmacy", « gratuites dans toutes les pharmacies »
    r"|free (?:at|in|from) (?:all|every|any)\b|gratuite?s? (?:dans|a|chez) (?:toutes|tous|toute|n'importe)"
    r"|(?:you're|you are|aged|ages) \d+ ?(?:to|-) ?\d+\b"
    + _RANGE_OR_GRADE +
    # a school's: "all grade 7 students", « les élèves de 4e année », « vaccination scolaire »
    r"|(?:all|every) (?:grade \d+ |high school |school |secondary )?(?:students|pupils)|eleves|scolaires?)"
)
# A notice at the door: "if you have a cough or a fever, call before coming in", « si vous avez de la
# fièvre, appelez avant de venir »: it is written to whoever reads it.
_AT_THE_DOOR = (
    r"(?:call (?:us )?(?:before|ahead|first)|phone (?:us )?(?:before|ahead|first)|before (?:coming|you come|visiting|"
    r"your visit|entering)|wear (?:a|your) mask|masks? (?:are|is) (?:required|mandatory)|reschedul\w*|do not come|"
    r"don'?t come|please stay home|stay home and|in the waiting room|at the (?:front )?(?:door|entrance|desk)"
    r"|appel\w* (?:avant|d'abord|au prealable)|telephon\w* (?:avant|d'abord)|avant de (?:venir|vous presenter|passer|"
    r"entrer)|port\w* (?:un|le|votre) masque|masque (?:est )?obligatoire|report(?:ez|er|ons) (?:votre|vos|ton|ta|le|la|les)|ne (?:venez|vous presentez) pas|"
    r"(?:veuillez )?rest(?:ez|er) a la maison et|dans la salle d'attente|a l'accueil|a la porte|a l'entree|"
    r"mett\w* (?:un|le|votre) masque|instead of (?:walking|coming) in)"
)
_IF_YOU = (r"\b(?:if|si) (?:you|anyone|someone|vous|tu|quelqu'un|qqn) (?![^,.]*\b(?:still|encore|toujours|again|de nouveau)\b)"
           r"(?:[\w']+ ){0,2}?(?:have|has|are|is|develop|feel|"
           r"experienc\w*|had|were|show|notice|get|avez|as|a|etes|es|presentez|faites|ressentez|toussez|developpez|"
           r"avez eu)\b")


_NAME = r"[a-z][a-z'-]*"
_SAYS = (r"(?!(?:says|said|wants|wanted|asked|asks|thinks|thought|recommends|recommended|suggests|suggested|"
         r"reviewed|looked|checked|confirmed|mentioned|noted|advised|wrote|would|needs|agreed|ordered|sent|called|"
         r"left|feels|felt|saw|sees|explained|decided|prefers|let|told|tells)\b)")
# A member of the staff as the subject of a sentence: "Dr. Novak", "Nurse Paul", "our receptionist
# Marie", « la Dre Lavoie », « notre infirmière Julie », « le personnel ».
_STAFF_EN = (
    # (tenth round: "Dr says the spot we burned off came back benign" names no one: a verb of saying is no name)
    rf"(?:\bdr\.? {_SAYS}{_NAME}|\bdoctor {_SAYS}{_NAME}|\bnurse {_SAYS}{_NAME}|\b(?:our|one of our) (?:own |[a-z]+ time |long[ -]time |beloved |dear |wonderful |new |former |[a-z]+ )?(?:nurse practitioner|nurses?|lpns?|rpns?|rns?|"
    r"coordinators?|assistants?|clerks?|receptionists?|secretary|secretaries|pharmacists?|physio(?:therapist)?s?|dietitians?|nutritionists?|doctors?|"
    r"physicians?|staff|team|office manager|manager|np|psychologists?|social workers?|colleagues?|front desk|"
    r"medical secretary|lab tech(?:nician)?|[a-z]+ nurse|midwi(?:fe|ves)|volunteers?|[a-z]+(?:ists?|ians?))(?: " + _NAME + r")?"
    r"|\bstaff\b|\b[a-z]+ (?:at|from|on|in) (?:the |our )?(?:front desk|reception|switchboard|billing|records|scheduling)"
    r"|\b(?:front desk|reception|switchboard|billing|office) (?:update|news|note)\b"
    # seventh round: a role as the subject ("the doctor has shingles", "the nurse who usually calls you is off")
    r"|\bthe [a-z]{4,}(?:ist|ian)\b"
    r"|(?:\bthe |(?:^|[,:]) *)(?:pharmacist|nurse(?: practitioner)?|receptionist|doctor|doc|physician|physio(?:therapist)?|"
    r"dentist|hygienist|secretary|"
    r"midwife|np|resident|coordinator|dietitian|psychologist|social worker|optometrist|chiropractor|massage therapist|"
    r"lab tech(?:nician)?|office manager)(?: who (?:usually |normally |always |often )?[a-z]+s (?:you|your \w+))?"
    # sixth round: the patient's own clinician, whose illness is theirs ("your doctor tested positive")
    r"|\b(?:your|ur) (?:family )?(?:doctor|physician|nurse(?: practitioner)?|pharmacist|dentist|hygienist|np|midwife|"
    r"provider|dr\.? [a-z'-]+))"
)
_STAFF_FR = (
    rf"(?:\b(?:le |la )?(?:dre?|docteure?)\.? {_NAME}|\bl'infirmiere? {_NAME}|\b(?:notre|nos) (?:infirmieres?|"
    r"infirmiers?|coordonnatrices?|coordonnateurs?|coordinatrices?|adjointes?|commis|ips|receptionnistes?|secretaires?|pharmacien(?:ne)?s?|physio(?:therapeute)?s?|nutritionnistes?|"
    r"dieteticien(?:ne)?s?|medecins?|personnel|equipe|gestionnaire|psychologues?|travailleu(?:r|se)s? sociale?s?|"
    r"collegues?|adjointe?s?|technicien(?:ne)?s?|sages? femmes?|benevoles?|[a-z]+(?:istes?|iens?|iennes?|peutes?))"
    r"(?: " + _NAME + r")?|\b(?:une?|l'une?) de nos [a-z]+|\ble personnel\b|\b[a-z]+ (?:a|de) (?:l'accueil|la reception)"
    r"|\b(?:votre|ton|ta) (?:medecin(?: de famille)?|infirmiere?|ips|pharmacien(?:ne)?|dentiste|hygieniste|"
    r"sage femme|dre?\.? [a-z'-]+)"
    # seventh round: a role as the subject (« la Dre est en congé de maladie », « l'infirmière qui vous suit est malade »)
    r"|\b(?:le |la |l')(?:dre?|docteure?|doc|medecin|pharmacien(?:ne)?|infirmiere?|receptionniste|secretaire|physio|"
    r"dentiste|hygieniste|sage femme|ips|adjointe?|coordonnatrice|nutritionniste|psychologue|travailleuse sociale|"
    r"travailleur social|technicien(?:ne)?|inhalotherapeute|kinesiologue|ergotherapeute)\b(?! qui (?!vous|te|t'))"
    r"(?: (?:du|de la|de l') ?(?:labo|laboratoire|soir|jour|matin|comptoir|sans rendez vous|clinique|gmf|pharmacie))?"
    r"(?: qui (?:vous|te|t') ?[a-z]+(?: d'habitude| habituellement| toujours| normalement| souvent)?)?"
    # the assistant of a doctor: « l'adjointe de la Dre Nguyen »
    r"|\b(?:l'adjointe?|la secretaire|le secretaire|la reception(?:niste)?) (?:de la dre|du dr|de notre) [a-z'-]+"
    r"|\b(?:l'accueil|la reception|le secretariat) ?:)"
)
# What a staff member's own life is: leave, illness, an injury, a birth, a death in the family, a
# conference, a race. "has" and « a » count only before a word that is not a result or a booking.
_STATE_EN = (
    r"(?:away|off|absent|on (?:\w+ )?leave|sick|ill|unwell|home with|at home|recovering|diagnosed|broke|fractured|"
    r"tore|sprained|having (?:[\w-]+ ){0,2}?(?:chemo|surgery|operation|baby|treatments?|procedure)|in (?:the )?hospital|hospitali[sz]ed|"
    r"passed away|died|retir\w*|leaving|gave birth|had (?:a|her) baby|expecting|pregnant|at (?:a|an|the) (?:[\w-]+ ){0,3}"
    r"(?:conference|congress|meeting|training|course|seminar|symposium)|trained|training|out (?:sick|with)|off sick|tested (?:positive|negative)|(?:just )?finished (?:his|her|their) |"
    r"(?:to )?car(?:e|ing) for (?:his|her|their) |taking (?:a few|some|\w+) (?:weeks|days|months) off|"
    r"lost (?:his|her|their) (?:battle|fight)|battling|fighting|undergoing|running|walking|cycling|wearing|growing|doing surgeries|"
    r"operating|hurt|injured|pulled|twisted|riding|biking|swimming|skating|taking part|participating|"
    r"back from (?:his|her|their) |(?:getting|having) (?:his|her|their|a|an) (?:[\w-]+ ){0,2}?(?:out|removed|replaced|done|fixed|surgery|operation|procedure|repaired|operated)|"
    # seventh round: caught, came down with, went into labour; "'s chemo went well" is in _KIN
    r"caught|came down with|coming down with|went into labou?r|in labou?r|on (?:bed ?rest|crutches)|being treated|"
    r"dealing with|going through|struggling with|"
    r"receiving (?:\w+ )?(?:treatments?|chemo|chemotherapy|radiation|care)|doing (?:chemo|radiation|dialysis)|"
    r"(?:starts?|starting|begins?|beginning) (?:\w+ )?(?:chemo|radiation|treatments?|dialysis)|(?:off|away|on leave) for "
    r"(?:\w+ )?(?:burnout|surgery|an operation|treatment)|had (?:his|her|their) \w+ (?:replaced|removed|operated|fixed|done)|"
    # tenth round: "our audiologist has the flu" ("has the" is otherwise a booking's: "has the results")
    r"(?:has|had|got|caught) the (?:flu|cold|covid|stomach bug|stomach flu|virus|gastro|bug|shingles|measles|mumps|"
    r"chicken pox|chickenpox)\b|"
    r"(?:has|had|got|caught) (?!(?:the|your|you|some|an? (?:look|spot|opening|minute|cancellation|few|question|concern|"
    r"update|message|note|copy|form|call)|concerns?|questions?|information|info|new|more|something|nothing|"
    r"results?|news|reports?|availability|openings?|time|had an? (?:look|chance|minute|moment)|seen|read|been able)\b)"
    r"(?![a-z]+ed\b))"
)
_STATE_FR = (
    r"(?:absente?s?|en conge|en arret|malade|a la maison|reste a la maison|se remet|en convalescence|a recu un "
    r"diagnostic|diagnostiquee?|s'est (?:casse|fracture|blesse)e?|suit (?:actuellement |presentement |en ce moment )?des traitements|est decedee?|est a l'hopital|"
    r"hospitalisee?|chez (?:elle|lui|eux|soi)|de retour (?:apres|de) (?:ses|sa|son) |prend sa retraite|nous quitte|quitte|accouche|a eu (?:son|sa) bebe|enceinte|en formation|a un "
    r"(?:congres|colloque)|au congres|a subi|subit|combat|vient de (?:finir|terminer) (?:son|sa|ses) |s'occuper de (?:sa|son|ses) |"
    r"prend (?:quelques|\w+) (?:semaines|jours|mois)|a eu un test|attend (?:un|une|des) (?:bebe|jumeaux|enfant)|"
    r"est decedee? d'|court|marche|portera|porte|commence (?:ses|sa|son) |a teste positi\w*|a eu un resultat positif|"
    r"s'est fait (?:remplacer|operer|enlever|poser)|se fait (?:remplacer|operer|enlever|poser)|est hospitalisee?|"
    # seventh round: « a attrapé la COVID », « revient de ses traitements », « est tombée malade », « en arrêt de travail »
    r"a (?:attrape|contracte|pogne|poigne|chope|developpe)|revien\w* (?:de|d') ?(?:ses|sa|son|une?) |est de retour|"
    r"(?:est )?tombee? malade|en arret de travail|en conge de (?:maladie|maternite|paternite)|en couches?|"
    r"a accouche|a des (?:traitements|complications)|recoit (?:des|ses|sa|son|de la) (?:\w+ )?(?:traitements?|chimio\w*|"
    r"radio\w*|soins)|traverse (?:un|une)|(?:est )?clouee? au lit|revien\w* (?:\w+ )?(?:apres|de|d') ?(?:ses|sa|son|une?) |"
    r"s'est fait (?:une?|mal)|se fait (?:traiter|soigner)|s'est (?:foulee?|tordue?|demise?|luxee?)|"
    r"a (?:termine|fini|complete) (?:sa|son|ses) |en retrait preventif|"
    r"se laiss\w+ pousser|opere|fait une vente|en isolement|isolee?|"
    r"fait (?:une|un|de la|de l'|du|des) ?(?!demande|appel|suivi|erreur|changement|visite|pause|vente|rappel|reservation|"
    r"son|sa|ses|notre|nos|votre|vos)[a-z]+|"
    # (not « on pense à la chirurgie », « on passe à la physio »: « à » unaccented)
    r"(?<!pense )(?<!pensons )(?<!penser )(?<!songe )(?<!passe )(?<!passer )(?<!passons )(?<!aller )(?<!va )"
    r"a (?:le|la|l'|un|une|des)\b ?(?!rendez|rdv|resultats?|place|disponibilit|rapport|nouvelles?|plages?|inquietude|"
    r"question|doute|preoccupation|suivi|copie|formulaire|message|note|appel|demande)[a-z]+|"
    r"a (?:fait|eu) (?:un|une|des) (?!rendez|rdv|demande|appel|suivi|erreur|changement)[a-z]+)"
)
_PLACE_EN = (r"(?:clinic|centre|center|unit|department|office|lab|laboratory|service|program|programme|pharmacy|"
             r"outpatients?|inpatients?|ward|"
             r"practice|psychologist|dentist|optometrist|ophthalmologist|physiotherapist|physio|wing|suite|team|clsc|"
             r"entrance|desk|counter)")
_PLACE_FR = (r"(?:clinique|centre|unite|departement|bureau|laboratoire|labo|service|programme|pharmacie|"
             r"psychologue|dentiste|optometriste|ophtalmologiste|physiotherapeute|physio|aile|local|equipe|clsc|"
             r"entree|comptoir|guichet)")
# Things of the building and its equipment, whose "results" are no one's health.
_THINGS = (r"(?:wi ?fi|internet|network|server|router|routeur|computer|ordinateur|software|logiciel|phone system|phones?|phone lines?|elevators?|inspection|fridge|freezer|"
           r"refrigerator|air quality|heating|generator|fire alarm|alarm|sprinklers?|renovations?|construction|"
           r"website|printer|fax|building|roof|ventilation|air conditioning|reseau|serveur|systeme telephonique|"
           r"telephones?|lignes? telephoniques?|ascenseurs?|frigo|refrigerateur|congelateur|qualite de l'air|"
           r"chauffage|generatrice|alarme|gicleurs?|travaux|site web|imprimante|telecopieur|edifice|batiment|toit|"
           r"climatisation|water test|water quality|drinking water|test d'eau|eau potable|qualite de l'eau|fountains?|"
           r"abreuvoirs?|online booking|booking system|reservation en ligne|test de reservation|login|connexion|radon|"
           r"asbestos|amiante|mou?ld|moisissures?|legionell?a|legionellose)")
# Paperwork and the patient's particulars, whose verdicts are no one's health.
_PAPER = (r"(?:coordonnees|papiers?|formulaires?|adresse|address|contact (?:info|information|details)|forms?|paperwork|"
          r"claims?|reclamations?|remboursements?|reimbursements?|refunds?|demandes? de remboursement|"
          r"insurance|assurances?|factures?|invoices?|billing|carte|card|numero|paiements?|payments?|inscription|"
          r"registration|documents?|compte|account|courriel|email|phone number|numero de telephone)")
# eleventh round: paperwork about the patient's care ("your claim for the CPAP machine was approved", "based on
# Dr. Lee's report about your depression", « la réclamation pour votre appareil auditif »)
_PAPER_ABOUT = re.compile(
    r"\b(?:for|about|regarding|concerning|pour|concernant|au sujet de|de) (?:your|the|votre|vos|ton|ta|tes|le|la|les|l'|"
    r"his|her|ses) ?(?:[a-z'-]+ ){0,2}(?:machine|device|appareils?|pump|tire lait|sensor|capteur|therapy|therapie|"
    r"psychotherapy|psychotherapie|treatments?|traitements?|surgery|chirurgie|procedure|medications?|"
    r"medicaments?|orthotics|ortheses?|braces?|counselling|counseling|physio|physiotherapie)\b"
    r"|\breport (?:about|on|regarding) (?:your|votre)\b|\brapport (?:sur|concernant) (?:votre|vos)\b"
)
# and a notice to everyone singles the patient out by a reason that is theirs ("with your kidney disease")
_REASON = re.compile(
    r"\b(?:because of|since|given|with|due to|now that) your\b|\b(?:vu|avec|en raison de|a cause de|etant donne) "
    r"(?:votre|vos|ton|ta|tes)\b"
)
_KIN = (r"(?:father|mother|dad|mom|husband|wife|partner|son|daughter|child|kids?|baby|family|back|knee|hip|"
        r"health|illness|surgery|chemo|chemotherapy|radiation|treatments?|recovery|diagnosis|cancer|operation|"
        r"procedure|injury|condition|pregnancy|leave|sick leave|own)")
_KIN_FR = r"(?:le pere|la mere|le mari|la femme|le conjoint|la conjointe|le fils|la fille|l'enfant|le bebe|le dos)"

# Words that address the patient, or a group the patient is in by their health ("patients on
# warfarin", « les patients sous warfarine »): a clause with one is about the patient.
_NOT_YOURS_EN = r"donations?|generosity|support|contributions?|kind (?:wishes|words|notes|messages)|wishes|cards|all\b|(?:family )?(?:doctor|physician|nurse|pharmacist|dentist|hygienist|np|midwife|provider|dr)\b"
_NOT_YOURS_FR = r"remerci|dons?\b|generosite|appui|soutien|contributions?|bons (?:mots|voeux|messages)|voeux|cartes|tous\b|medecin|infirmiere?\b|ips\b|pharmacien|dentiste|hygieniste|dre?\b"
# A colleague's state next to the patient's booking ("Dr. Pereira's hip replacement recovery is taking
# longer - your visit is moved to May"): the booking is everyone's logistics, not the patient's health.
_BOOKING_EN = r"|(?:next )?(?:visit|appointment|appt|booking|call|rdv)s?\b"
_BOOKING_FR = r"|(?:prochaine? )?(?:visite|rendez vous|rdv|appel|consultation)s?\b"


def _address(not_en: str, not_fr: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?<!thank )(?<!thanks )(?<!thanks to )\b(?:you|your|yours|yourself|u|ur)\b(?! (?:{not_en})\b)(?!'d like\b)"
        # eighth round: an invitation to everyone is no address (« joignez-vous à notre course »)
        rf"|(?<!grace a )(?<!rendez )(?<!joignez )(?<!inscrivez )(?<!amusez )\b(?:vous|votre|vos|tu|ton|ta|tes|te|toi)\b(?! (?:{not_fr}))"
        r"|\bt'"
        r"|\bpatients? (?:on|taking|with|who|using)\b|\bpatients? (?:sous|qui prennent|avec|atteints?)\b"
        # the patient's household: "everyone in the house should be treated", « tout le monde à la maison »
        r"|\b(?:everyone|everybody|anyone|all) (?:in|at|who lives in) (?:the|your) (?:house|home|household|family)\b"
        r"|\b(?:tout le monde|toute la famille|tous ceux) (?:dans|a|de) (?:la|votre) (?:maison|famille|foyer)\b"
    )


_ADDRESS = _address(_NOT_YOURS_EN, _NOT_YOURS_FR)
_STAFF_ADDRESS = _address(_NOT_YOURS_EN + _BOOKING_EN, _NOT_YOURS_FR + _BOOKING_FR)
MARKERS: tuple[Marker, ...] = (
    _marker(
        "staff",
        "dr dre doctor docteur docteure nurse our notre nos une infirmier infirmiere staff personnel patients clinics the "
        "cliniques own propre propres leave off conge arret i'm im am i'll will je suis serai absent absente he she they il elle ils elles desk reception switchboard "
        "billing accueil short manque your votre ton ta pharmacist nurse receptionist physio dentist hygienist secretary midwife "
        "physician resident coordinator dietitian psychologist worker optometrist chiropractor therapist tech technician "
        "manager records scheduling medecin pharmacien* infirmier* receptionniste secretaire dentiste hygieniste sage ips "
        "adjoint* coordonnatrice nutritionniste psychologue travailleu* docteur* reception* techni* inhalo* kinesio* ergoth* "
        "doc lpn lpns rpn rpns rn rns",
        # (one staff member, then what follows it: read once, not once per alternative)
        rf"{_STAFF_EN}(?:[,:]?(?: \w+,?){{0,6}}? (?:is |was |will be |has been |is still |'s )?{_STATE_EN}\b"
        # seventh round: what a staff member told of themselves ("Dr. Wilson has shared with the team that he is
        # being treated for cancer")
        rf"|(?: \w+){{0,8}}? (?:that|because|as) (?:he|she|they)(?:'s| is| was| are| has been| will be)? {_STATE_EN}\b"
        rf"|'s (?:\w+ )?{_KIN}\b"
        # seventh round: their own something that acts up ("our evening receptionist's asthma is acting up")
        r"|'s (?:\w+ ){1,2}(?:is|are|was|were|has been) (?:acting up|flaring(?: up)?|worse|bad|bothering|playing up|"
        r"not cooperating))"
        r"|\bthe (?:pharmacist|nurse|receptionist|doctor|physio|dentist|hygienist|secretary|midwife|np)(?: is| was| will be| "
        r"has been)? (?:out|off|away|sick|ill|home sick|absent|recovering|on (?:\w+ )?leave|in (?:the )?hospital)\b"
        rf"|{_STAFF_FR},?(?: \w+,?){{0,6}}? (?:est |sera |etait |a ete |sont |seront |est encore )?{_STATE_FR}\b"
        # someone's own: "her own knee surgery", « sa propre opération »
        r"|\b(?:for|after|from|with|of) (?:his|her|their) own\b|\b(?:pour|de|apres|a) (?:sa|son|ses) propres?\b"
        # eleventh round: a relative clause on a colleague ("notre Réjean à l'entretien, qui se remet d'un infarctus",
        # "Dr. Giguère, who is finishing her radiation"), a colleague's death, a colleague's lost voice
        rf"|{_STAFF_EN},? who (?:is|was|has been) (?:recovering|undergoing|battling|finishing (?:his|her|their)|fighting|"
        r"on (?:\w+ )?leave|off sick)\b"
        rf"|(?:{_STAFF_FR}|\bnotre (?:cher |chere |belle |beau |grand |grande )?[a-z'-]+(?: (?:a|de) l'(?:entretien|accueil)|"
        r" (?:a|de) la (?:reception|facturation))?),? qui (?:se remet|combat|termine (?:ses|sa|son)|suit (?:des|ses)|est "
        r"(?:malade|en conge|en arret|hospitalisee?|atteinte?))\b"
        r"|\b(?:deces|depart) de (?:notre|nos) (?:\w+ )?[a-z'-]+|\b(?:passing|death|loss) of (?:our|one of our) (?:\w+ )?[a-z'-]+"
        rf"|{_STAFF_EN} (?:has |had )?lost (?:her|his|their) voice\b|{_STAFF_FR} a perdu (?:la|sa) voix\b"
        # anyone on leave or off sick: "Julie is on leave for burnout", « Julie est en arrêt »
        r"|\b(?:is|will be|has been) (?:on (?:\w+ )?leave|off (?:sick|work))\b|\b(?:est|sera) (?:en (?:conge|arret)|en conge de "
        r"maladie)\b"
        # ninth round: the writer's own leave, in the first person ("I'll be off for my own surgery", « je suis en arrêt »)
        r"|\b(?:i'm|im|i am|i will be|i'll be|i've been|i have been) (?:on (?:\w+ )?leave|off (?:sick|work|for|until)|away (?:for|until|on (?:\w+ )?leave)|"
        r"absent)\b|\bje (?:suis|serai|vais etre) (?:en (?:conge|arret)|absente?|partie? (?:pour|jusqu))"
        r"|\b(?:he|she|they)(?:'s| is| are| will be) (?:away|absent|off (?:sick|work|this|today|until|for))\b"
        r"|\b(?:il|elle)s? (?:est|sont|sera|seront) (?:absente?s?|partie?s? (?:pour|jusqu))"
        rf"|{_KIN_FR} (?:de (?:la dre|le dr|notre \w+)|du dr)\b"
        r"|\b(?:his|her|ses) (?:patients|clinics|cliniques)\b"
        # sixth round: the clinic short of its own people ("we're short two nurses with COVID", « il nous manque
        # deux infirmières »)
        r"|\b(?:we're|we are) short (?:\w+ ){0,2}(?:nurses?|doctors?|staff|people|hands|receptionists?)\b"
        r"|\bil nous manque (?:\w+ ){0,2}(?:infirmieres?|infirmiers?|medecins|employee?s|personnes|receptionnistes)\b",
        address=_STAFF_ADDRESS,
    ),
    _marker(
        "charity",
        "raise raised raising fund* donat* sponsor walk walks run runs ride rides marathon marathons relay relays "
        "tickets coins money change supporting challenge against billets defi contre "
        "sale sales lottery lotteries raffle raffles gala galas tournament tournaments race races research ribbon "
        "ribbons pink purple red blue green teal movember profit profits foundation cure amas* rama* dons don "
        "collecte marche course velo tournoi vente loterie tirage souper recherche fondation ruban rose mauve rouge "
        "bleu vert turquoise sensibiliser port* awareness collect collecting collects money matched argent pledge pledges big shaving shave shaves head heads drive "
        "rase rasent rasees raser tete tetes proceeds hike swim climb bike",
        r"\b(?:rais(?:e|ed|ing) (?:money|funds|(?:over |more than |nearly |almost |about )?\$ ?\d)|fundrais\w*|donations?|donat(?:e|ing)|sponsor (?:her|him|them|us|our)|"
        r"(?:our|the|annual|a charity|a fundraising) (?:\w+ ){0,2}(?:walk|run|ride|marathon|relay|bake sale|lottery|"
        r"raffle|gala|tournament|race)\b(?! (?:a|an|the|our|your|it|this|that|group|groups|session|sessions)\b)(?<!walk(?= in\b(?! (?:support|memory|honou?r|aid)\b)))|"
        # seventh round: a ride or a walk for a cause ("Ride Don't Hide for mental health is this Sunday")
        r"(?:walk|run|ride|relay|race|marathon|hike|swim|climb|bike)(?: [\w']+){0,2}? for (?:the )?(?:mental health|cancer|"
        r"diabetes|alzheimer'?s?|parkinson'?s?|kids|children|research|the cure|hope|life|awareness|heart|stroke|ms|als|"
        r"autism|dementia|leukemia|kidneys?|lungs?|suicide prevention)\b|(?:bake sale|lottery|raffle|gala)s?(?: \w+){0,3}? (?:for|to support|in "
        r"support)|(?:walk|run|ride|marathon|relay|race)s? (?:to support|to fight|to end|in support)|collect(?:ing|s)? (?:\w+ ){0,3}for (?:the )?(?:\w+ ){0,3}(?:camp|"
        r"research|hospital|foundation|society|families|kids|children|patients|shelter|home|residence|drive|ride|walk|run|race|relay|gala)|for (?:\w+ ){0,3}research|research (?:on|into)|ribbons?|wear(?:ing)? (?:pink|"
        r"purple|red|blue|green|teal)|movember|profits?|foundation|for the cure|(?:the )?money (?:goes|will go|raised)|"
        r"matched (?:your|the) donations|pledges?|(?:all )?proceeds|(?:lottery|raffle|50 ?50) tickets?|"
        # eighth round: what is collected goes to a cause; a team supported; a challenge against a disease
        r"(?:coins|money|funds|donations|change) (?:\w+ ){0,4}(?:go|goes|will go|going) to|supporting our (?:\w+ ){0,3}"
        r"(?:team|walk|run|ride|riders?|walkers?)|(?:walk|run|ride|challenge|race|relay)(?: \w+){0,2}? against|big bike|shav\w* (?:their|our|his|her|my) heads?|(?:food|toy|clothing|coat|"
        r"book|sock|blanket) drive)\b"
        r"|\b(?:amass\w*|ramass\w* (?:des )?\w+ pour|collecte de (?:fonds|sang|nourriture|denrees|jouets|vetements|manteaux|"
        r"livres|bas)|se ras\w* la tete|tetes rasees|(?:un|des|vos|nos|les|de|faire un|faire des) dons?(?!')|(?:marche|course|velo|"
        r"tournoi|vente|loterie|tirage|gala|souper) (?:pour|au profit|a la vie|de patisseries)|recherche sur|"
        r"billets (?:de|pour la) (?:loterie|tirage)|(?:defi|cyclo defi|marche|course|relais|velo)(?: \w+){0,2}? contre|"
        r"au profit|profits|fondation|ruban|l'argent (?:va|ira|amasse)|port(?:e|es|ent|ons|ez|er|erons|era|eront|erez)\w* du "
        r"(?:rose|mauve|rouge|bleu|vert|turquoise)|movember"
        # ninth round: awareness of a disease (« pour sensibiliser au cancer du sein », "to raise awareness of")
        r"|(?:pour )?sensibiliser (?:a|au|aux|a la|a l')|(?:to )?raise awareness (?:of|for|about))\b",
    ),
    _marker(
        "public",
        "talk* work* lect* semi* webi* sess* affi* post* conf* atel* soir* kios* booth* stud* caus* patients "
        "house welcome portes communaute cours matters matter counts parlons conversation compte importe "
        "all everyone anyone open public community neighbourhood neighborhood area region free talk workshop lecture "
        "seminar webinar session evening night forum booth kiosk register people women men adults seniors children kids families "
        "caregivers several some many other cases reported warning advisory alert awareness world mobile bus study "
        "studies posters tous tout toute toutes population ouvert ouverte public quartier conference atelier seance "
        "soiree kiosque causerie inscrire bienvenue personnes femmes hommes adultes aines enfants gens proches "
        "plusieurs certains autres cas region sante avis avertissement semaine journee mobile etude affiches "
        "sensibilisation clientele envoye message avis communaute mobile journee semaine sent screening "
        "vaccination available canadians quebecers canadiens quebecois joignez",
        r"\b(?:(?:message |notice )?sent to (?:all|everyone)|(?:screening|vaccination) day|awareness week|"
        r"all (?:of )?(?:our )?(?:patients|families|parents)(?! (?:on|taking|with|who|using)\b)|anyone (?:with|who)|"
        r"everyone|open to (?:all|everyone|the public|the community)|available (?:to|for) (?:all|everyone|anyone)|all canadians|all quebecers|(?:for|to|in) the (?:whole )?(?:public|community|"
        r"neighbourhood|neighborhood|area)(?! of)|the public|public (?:health|talk|lecture|event|session|library|webinar|forum)|free "
        r"(?:\w+ )?(?:talk|workshop|session|lecture|seminar|screening|class|information)|(?:a|an|the|our|this|public) "
        r"(?:\w+ ){0,2}(?:talk|workshop|lecture|seminar|webinar|information session|info session|information evening|"
        r"info night|booth|kiosk)s? (?:on|about|for)|booths?|kiosks?|no need to register|open house|(?:everyone|all) welcome|(?:people|women|men|adults|seniors|children|kids|families|caregivers|parents) "
        r"(?:aged|over \d|under \d|in the area)|(?:several|some|many|other|our other) (?:patients|staff|"
        r"employees)|cases (?:have been|were|are being) reported|in the (?:region|area|community)(?! of)|awareness|world \w+ day|mobile (?:\w+ )?(?:unit|clinic|bus|van)|"
        r"stud(?:y|ies) (?:on|about)|posters?"
        # seventh round: a cause spoken of to everyone ("mental health matters to all of us", « parlons de santé mentale »)
        r"|(?:matters?|counts?) (?:to|for) (?:all of us|everyone|us all|everybody)|let'?s talk about|every conversation counts)\b"
        r"|\b(?:portes ouvertes|pour la communaute|(?:avis|message) a (?:la communaute|tous|toutes|la population|(?:toute )?la "
        r"clientele)|(?:toute|a toute) (?:la|notre) clientele|(?:message )?envoye a tous|clinique mobile|journee de "
        r"(?:depistage|vaccination)|semaine (?:de la|nationale)|cours gratuits?|a tous(?: les patients)?(?! (?:les )?(?:patients )?(?:sous|qui prennent|avec|atteints|deux|trois)\b)|toute personne|"
        r"tout le monde|tous les (?:canadiens|quebecois)|joignez vous a nous|ouverte?s? (?:a (?:tous|toutes|la population|tout le monde)|au public)|pour (?:toute la famille|tout le quartier|"
        r"la population|le public)|la population|(?:conference|atelier|causerie|webinaire|kiosque|soiree "
        r"d'information)s? (?:\w+ ){0,2}(?:sur|pour|au|a la|a notre)|(?:conference|atelier|seance|soiree|seminaire|causerie|webinaire)s?(?: d'information)? (?:gratuite?s?|public\b|"
        r"publique?s?)|kiosques?|tous les patients(?! (?:sous|qui prennent|avec|atteints))|"
        r"pas besoin de s'inscrire|bienvenue a tous|les (?:personnes|femmes|hommes|adultes|aines|enfants|parents|"
        r"proches aidants|gens) (?:de \d|agee?s|du secteur|de la region)|"
        r"(?:plusieurs|certains|d'autres|nos autres) (?:patients|employes|membres)|des cas (?:de \w+ )?ont ete "
        r"(?:signales|rapportes)|dans la region|sante publique|journee mondiale|"
        r"unite mobile|etude sur|affiches?|sensibilisation|parlons (?:de|du|des)|chaque conversation compte|"
        r"(?:compte|importe) pour (?:nous tous|tout le monde))\b",
    ),
    _marker(
        "place",
        "next door across upstairs downstairs floor building moved moving entrance renovated renovation renovations "
        "us nous closed fermee ferme "
        "construction number rents service cote corridor haut bas rez sous etage edifice demenage entree travaux "
        "vacated leaving left libere quitte portes doors "
        "numero loue",
        # a place (a clinic, a unit, an office) and where it is or what happens to it: "the sleep clinic in our
        # building has moved", « l'unité de dialyse de l'édifice est en rénovation »
        rf"\b{_PLACE_EN}(?: [\w'-]+){{0,8}}? (?:next door|across the (?:hall|street|road)|upstairs|downstairs|on the "
        r"(?:ground|first|second|third|fourth|main|top|\d+(?:st|nd|rd|th)?) floor|in (?:our|the|this) building|of the "
        r"building|next to us|beside us|(?:will be |is )?closed for (?:repairs|renovations?|inventory)|"
        r"(?:has|have) moved|is moving|(?:has |have )?(?:vacated|moved out|left (?:the|our|its))|is leaving|closed its doors|(?:has|have) a (?:new|separate) (?:\w+ )?(?:entrance|door|number)|is "
        r"being renovated|(?:is|are) (?:under )?renovat\w*|(?:who|that) rents)\b"
        r"|\bthe building's\b|\b(?:who|that) rents\b"
        rf"|\b{_PLACE_FR}(?: [\w'-]+){{0,8}}? (?:d'a cote|de l'autre cote (?:du corridor|de la rue)|en (?:haut|bas)(?! "
        r"de)|au (?:rez de chaussee|sous sol|\d+e etage|\w+ etage)|(?:de|dans) (?:notre |l'|cet )?edifice|a cote de nous|"
        r"(?:sera |est )?fermee? pour (?:reparations|renovations?|travaux|inventaire)|a demenage|"
        r"demenage|a libere|libere (?:le|la|les|ses)|a quitte|quitte (?:le|la|l'|ses)|ferme ses portes|"
        r"a (?:maintenant )?une (?:nouvelle|autre) (?:entree|porte|adresse)|a (?:maintenant )?un nouveau numero|"
        r"a (?:maintenant )?une entree separee|est en renovation|qui loue)\b"
        r"|\bqui loue\b",
    ),
    _marker(
        "campaign",
        "vacc* shot shots booster boosters immu* screening depistage campa* kit kits trousse trousses flu grippe covid "
        "influenza free "
        "gratuit gratuite gratuits gratuites offert offerte offerts offertes",
        rf"\b{_CAMPAIGN}\b(?=.*\b{_GROUP})|\b{_GROUP}(?=.*\b{_CAMPAIGN}\b)"
        rf"|\b{_FREE}\b(?=.*\b{_AGE_GROUP})|\b{_AGE_GROUP}(?=.*\b{_FREE}\b)",
        address=_SINGLED_OUT,
        sentence=True,
    ),
    _marker(
        "door",
        "if si outbreak going eclosion circule circulent circulating mask masks masque tour short effectif",
        rf"{_IF_YOU}(?=.*\b{_AT_THE_DOOR})|\b{_AT_THE_DOOR}(?=.*{_IF_YOU})"
        # an outbreak, masks for everyone: « éclosion d'influenza », "masks are required in the waiting room"
        r"|\b(?:outbreak|going around|eclosion|qui circule|circulent?|(?:is|are) circulating|qui fait le tour|short staffed|effectif reduit|masks? (?:are|is) (?:required|mandatory|recommended)|"
        r"(?:must|should|need to|needs to|have to|please) wear a mask|doi(?:t|vent) porter (?:un|le) masque|"
        r"(?:le )?(?:port du )?masque (?:est )?(?:obligatoire|recommande|fortement recommande))\b",
        address=_SINGLED_OUT,
        sentence=True,
    ),
    _marker(
        "lodged",
        "shares share sharing moved where partage partagent demenage face cote across next beside find trouverez est walk "
        "offices office reception desk sans bureau accueil",
        r"\b(?:our|the) (?:\w+ ){0,2}(?:clinic|practice|office|doctors|gmf|team)(?: \w+){0,3}? (?:shares?|sharing|moved "
        r"into|(?:is|are) (?:now |temporarily )?(?:in|inside|located in) (?:the|that|this))\b|\bthat'?s where (?:our|we)\b"
        r"|\b(?:notre|nos) (?:gmf|clinique|bureau|medecins|equipe)(?: \w+){0,3}? (?:partagen?t?|a demenage|ont demenage|"
        r"(?:est|sont) (?:maintenant |temporairement )?(?:dans|au|a l'))\b"
        r"|\b(?:you'll find us|you will find us|find us (?:in|at|on)|vous nous trouverez|on est (?:maintenant |temporairement )?"
        r"(?:au|dans|a l'))\b"
        r"|\b(?:our|the) (?:walk in|walk in clinic|offices?|reception|front desk) (?:is|are) (?:now |temporarily )?(?:in|at|inside)"
        r" (?:the|that|this)\b|\b(?:notre|le) (?:sans rendez vous|bureau|accueil) (?:est|sont) (?:maintenant |temporairement )?"
        r"(?:au|dans|a l')"
        r"|\b(?:juste )?(?:en face de|a cote de|across from|next to|beside) (?:l'|la |le |the )?(?:aile|pavillon|unite|edifice|batiment|immeuble|tour|tower|"
        r"departement|wing|building|unit|department)\b",
        address=_SINGLED_OUT,
        sentence=True,
    ),
    _marker(
        "directions",
        "parking parkade lot lots garage entrance entrances elevator elevators shuttle park visitor "
        "visitors visiting door doors porte reserved reservees stationnement stationnements entree entrees ascenseur ascenseurs debarcadere navette "
        "stationner stationnez visiteur visiteurs visite garages pay waiting cafeteria food gift attente "
        "casse horodateur horodateurs bornes borne",
        # the way in, for whoever comes: "the dialysis unit parking lot is closed", « le stationnement de
        # l'oncologie est fermé »; "park in lot C for your chemotherapy" addresses the patient
        r"\b(?:parking|parkade|park(?:ing)? lots?|parking garage|entrances?|elevators?|shuttle|(?:side|main|front|back|rear) "
        r"doors?|porte (?:de cote|principale|arriere|avant)|reserved (?:spots|spaces|parking)|places reservees|park (?:in|at|on|"
        r"behind|near|across)|visitors?|visiting hours"
        # ninth round: the rooms and services of the building that whoever comes passes through
        r"|garages?|pay (?:machines?|stations?)|waiting (?:area|room)s?|cafeteria|food court|gift shop)\b"
        r"|\b(?:stationnements?|entrees?|ascenseurs?|debarcadere|navette|se stationner|stationnez|visiteurs?|heures de "
        r"visite|salles? d'attente|cafeteria|casse croute|horodateurs?|bornes? de paiement)\b",
    ),
    _marker(
        "notice",
        "newsletter website articles article blog tips podcast infolettre bulletin site web articles trucs conseils "
        "balado heat cold smog air warning advisory alert avis avertissement chaleur froid",
        r"\b(?:newsletter|our website|articles? (?:on|about)|blog|tips (?:for|on)|podcast|(?:heat|cold|smog|air quality|"
        r"extreme weather) (?:warning|advisory|alert)s?)\b"
        r"|\b(?:infolettre|bulletin|site (?:web|internet)|articles? sur|trucs pour|conseils pour|balado|avis de "
        r"(?:smog|chaleur|froid|qualite de l'air)|avertissement de (?:chaleur|froid|smog))\b",
        address_counts=False, address=_REASON,
    ),
    _marker(
        "paperwork",
        "request requests application applications claim claims payment payments transfer transfers reimbursement "
        "card demande demandes paiement paiements reclamation reclamations transfert remboursement carte results "
        "result resultats resultat survey surveys inspection inspections audit audits transaction transactions cheque cheques lottery draw vote sondage "
        "sondages form forms formulaire insurer assureur insurance assurance check "
        "antecedents balance solde account compte coverage couverture refund deposit depot positive positif positifs "
        "negative negatif negatifs registration inscription enrolment enrollment wi wifi internet network server phone phones line lines elevator elevators "
        "fridge freezer refrigerator heating generator alarm sprinkler sprinklers renovation renovations "
        "construction website printer fax building roof ventilation conditioning reseau serveur telephone lignes "
        "ascenseur ascenseurs frigo refrigerateur congelateur chauffage generatrice alarme gicleurs travaux "
        "imprimante telecopieur edifice batiment toit climatisation telephones air quality qualite site web systeme "
        "telephonique alarms fountain fountains abreuvoir abreuvoirs potable water drinking eau online booking login connexion "
        "file dossier coordonnees papiers documents document adresse address contact paperwork factures facture invoices invoice "
        "numero courriel email radon asbestos amiante mold mould moisissure moisissures legionella legionellose",
        # a result word whose subject is paperwork or the clinic's own business: "your request came back
        # positive", « les résultats de l'inspection »
        r"\b(?:request|application|demande|transfer|transfert)s? (?:[\w']+ ){0,3}(?:came back|is back|was|is|were|are|"
        r"est revenue?s?|a ete|est|sont) (?:positive?|negative?|positifs?|negatifs?)\b"
        r"|\b(?:claim|payment|reimbursement|card|paiement|reclamation|remboursement|carte|form|formulaire|insurer|assureur|"
        # ninth round: the patient's file or account checked ("your file check came back positive")
        r"file|file check|account check|dossier|verification du dossier|"
        r"insurance|assurance|(?:police|background|record) check|antecedents|balance|solde|account|compte|coverage|"
        r"couverture|refund|deposit|depot|registration|inscription|enrol?ment|audit|inspection|transaction|cheque)s?(?:'s)? (?:[\w']+ ){0,4}(?:came "
        r"back|is back|was|is|were|are|est revenue?s?|a ete|est|sont|est passee?|a passe) (?:all |both |entirely |tous |toutes )?(?:positive?|negative?|clear|approved|declined|accepted|"
        r"refused|rejected|approuvee?s?|refusee?s?|acceptee?s?|rejetee?s?|positifs?|negatifs?"
        # eighth round: a plain verdict on a payment or an audit ("your payment came back fine", "the audit came back clean")
        r"|fine|good|ok|okay|clean|normal|through|beau|correcte?|ok|the same|pareil|pareille|identique|la meme|le meme)\b"
        r"|\b(?:survey|inspection|audit|lottery|draw|vote|sondage)s? results?\b"
        # the verdict is an approval: "came back positive — approved!"
        r"|\b(?:positive?|negative?|positifs?|negatifs?|clear)\W+(?:approved|accepted|approuvee?s?|acceptee?s?)\b"
        r"|\b(?:results?|resultats?) (?:positive?|positifs?)\W+(?:\w+ ){0,6}(?:acceptee?s?|approuvee?s?|accepted|approved)\b"
        # eleventh round: « Résultat positif pour votre demande de remboursement »
        rf"|\b(?:results?|resultats?) (?:positive?|positifs?|negative?|negatifs?) (?:pour|for|on|sur|de) (?:votre|your|vos|la|the|"
        rf"le|l') ?(?:\w+ ){{0,2}}?{_PAPER}\b"
        r"|\b(?:negative?|negatifs?) (?:for|pour|quant aux) (?:errors?|erreurs?|mistakes)\b"
        r"|\b(?:results?|resultats?) (?:of|from|de|du|des) (?:the |our |la |l'|le |notre )?(?:inspection|survey|sondage|"
        r"agrement|accreditation|lottery|loterie|draw|tirage|vote|election|contest|concours|audit)\b"
        # seventh round: a verdict whose object is paperwork ("nothing to worry about with your insurance papers",
        # « on a vérifié vos coordonnées, tout est normal »)
        rf"|\b(?:nothing (?:to worry about|alarming|concerning|wrong|unusual)|all (?:good|normal|clear|fine|set)|"
        rf"(?:everything|it all|all|everything's) (?:came back|is|looks|was) (?:fine|good|ok|okay|clean|normal|clear)|tout est "
        rf"(?:revenu|passe) (?:beau|correct|ok|normal)|rien "
        rf"d'(?:inquietant|anormal)|tout est (?:beau|correct|normal|ok|en ordre))(?: \w+){{0,2}}? (?:with|for|on|in|avec|"
        rf"pour|dans|de|sur) (?:your|the|vos|votre|tes|ton|ta|les|le|la|l') ?(?:\w+ )?{_PAPER}\b"
        rf"|\b{_PAPER}(?: (?:are|is|sont|est))?, (?:tout est|all|everything(?:'s| is)) (?:beau|correct|normal|ok|okay|"
        r"fine|good|en ordre)\b"
        # a verdict on a thing of the building or its equipment: "the Wi-Fi results are normal again",
        # "the fridge inspection came back clean", « l'inspection de l'ascenseur est conforme »
        rf"|\b(?:results?|resultats?|tests?) (?:of|from|for|on|de|du|des|sur) (?:the |our |la |le |l'|les |notre |nos )?{_THINGS}\b"
        rf"|\b{_THINGS}(?:'s)? (?:[\w']+ ){{0,4}}?(?:results?|resultats?|came back|is back|are|is|was|were|passed|"
        r"est revenue?s?|sont revenue?s?|sont|est|a passe|ont passe|etait)\b(?: \w+){0,2}? (?:normal|normale?s?|normaux|clear|"
        r"clean|positive?|negative?|fine|good|ok|okay|correcte?s?|corrects|adequate|conformes?|bons?|bonne?s?|beaux?|belles?|approved|passed|reussie?s?)\b",
        address_counts=False, address=_PAPER_ABOUT, clause=True,
    ),
    _marker(
        "clinic",
        "accreditation clinic survey phone phones system hiring agrement clinique sondage systeme telephonique "
        "telephones embauche embauchons emploi hours schedule fire outage horaire heures alarme exercice panne",
        r"\b(?:accreditation|our clinic (?:got|received|obtained|passed|won)|(?:patient|our) survey|phone system|"
        r"(?:normal|regular|usual|summer|holiday) (?:hours|schedule|opening hours)|fire (?:alarm|drill)|power outage|"
        r"(?:we'?re|we are|now) hiring|hiring)\b"
        r"|\b(?:agrement|notre clinique a (?:obtenu|recu|reussi|gagne)|sondage|systeme telephonique|nos telephones|"
        r"horaire (?:normal|habituel|regulier|d'ete|des fetes)|heures (?:normales|habituelles)|alarme (?:de feu|incendie)|"
        r"exercice d'(?:evacuation|incendie)|panne de courant|"
        r"on embauche|nous embauchons|offre d'emploi)\b",
    ),
    # tenth and eleventh rounds: a sentence told to everyone — a clinic taking new patients, a public talk, an
    # illness's season as news, school vaccines by grade ("We're now accepting new patients at the hearing
    # clinic.", "Gastro season has hit our town.", "Grade 7 school vaccines …", « la gastro court ») — quiet
    # only itself, unless it singles the patient out
    _marker(
        "season",
        "accepting accepte acceptons accueille accueillons public publique session talk lecture conference workshop "
        "seance soiree atelier season gastro grippe covid flu cold rsv strep grade school vaccination vaccins vaccin",
        r"\b(?:(?:now )?accepting new patients|(?:accepte|acceptons|accueille|accueillons) (?:maintenant )?de nouveaux "
        r"patients|(?:free |open )?public (?:info(?:rmation)? )?(?:session|talk|lecture|conference|workshop)|"
        r"(?:seance|soiree|conference|atelier) (?:d'info(?:rmation)? )?publique"
        r"|(?:flu|gastro|cold|covid|rsv|strep) season (?:is|has)|la (?:gastro|grippe|covid) (?:court|circule|frappe)"
        r"|grade \d+ (?:school )?(?:vaccines?|vaccinations?|immuni[sz]ations?|shots)|school (?:vaccines|vaccination|"
        r"immuni[sz]ation) program|(?:vaccination|vaccins?) (?:en|de) (?:\d+e|secondaire \d) annee|vaccination (?:en|a l') ?"
        r"(?:milieu )?scolaire)\b",
        sentence=True, address=_SINGLED_OUT,
    ),
)

# A sentence ends at . ! ? ; or a line break (not after "Dr", not inside a number); a clause at
# ", so", ", but", "because", « donc », « mais », « car ».
_SENTENCE = re.compile(r"(?<!\bdr)(?<!\bdre)(?<!\bmr)(?<!\bmrs)(?<!\bms)(?<!\bst)[.!?](?!\d)|[;\n]")
_CLAUSE = re.compile(r",? (?:so|but|because|since|and since|donc|mais|car|parce qu'?|alors) ")
# Inside a clause, the stretches between commas: the patient is addressed in one of them only
# ("Just so you know, Dr. Singh is off for her own knee surgery"; "Hélène is off for surgery, Marc will
# handle your refills"), and the others stay quiet.
_COMMA = re.compile(r", |: ")
# A relative clause on a staff member says who they are, not that the clause is the patient's: "the
# nurse who usually calls you is off with a migraine", « l'infirmière qui vous suit est malade ».
_RELATIVE = re.compile(r"\bwho (?:usually |normally |always |often )?[a-z]+s (?:you|your \w+)\b|\bqui (?:vous|te|t') ?[a-z]+\b")



# A message sent to everyone says so somewhere: then it is about no one's health, in every sentence,
# unless one singles the patient out ("(message sent to all)", « avis à toute la clientèle », an
# awareness week, a public-health campaign).
_BROADCAST = re.compile(
    r"\b(?:(?:message |notice |text )?sent to (?:all|every)\w*|to all (?:of )?our patients(?! (?:on|taking|with|who|using)\b)|"
    r"awareness (?:week|month|day)|world [a-z]+ day|[a-z]+ (?:prevention|awareness) (?:week|month|day)|(?:public health|health canada)(?:'s)? (?:campaign|reminds|reminder)"
    r"|(?:message )?envoye a tous|avis a (?:tous|toutes|toute la clientele|la population|la communaute)|avis aux (?:parents|patients|familles)|"
    r"notice to (?:all )?(?:parents|patients|families)|a toute (?:la|notre) "
    r"clientele|a tous nos patients(?! (?:sous|qui|avec|atteints?|[a-z]+iques)\b)|semaine (?:de (?:la )?)?(?:prevention|"
    r"sensibilisation)|journee mondiale|mois (?:du coeur|de (?:la )?(?:prevention|sensibilisation))|"
    r"(?:defi|challenge) (?:\d+ (?:jours|days) )?(?:sans|without|free)|dry january|sober october|let'?s talk day|"
    r"cause pour la cause|(?:it'?s|it is|for|during|happy) (?:the )?(?:[a-z]+ )?health (?:week|month|day)|"
    r"(?:c'est la|pour la|pendant la|bonne) (?:semaine|journee) (?:\w+ ){0,3}sante (?:mentale|du coeur)|campagne (?:\w+ ){0,4}sante publique|sante publique rappelle)\b"
)
_BROADCAST_GATE = gate_keys("sent|patients|awareness|day|campaign|reminds|reminder|envoye|avis|clientele|semaine|"
                            "journee|campagne|rappelle|aux|notice|prevention|week|month|mois|defi|challenge|dry|sober|"
                            "talk|cause|health|sante")


KEPT_SENTENCE = 400  # characters: a longer sentence is matched each time, not kept


def _find(marker: int, sentence: str) -> tuple[tuple[int, int], ...]:
    """The spans of the wording of ``MARKERS[marker]`` in ``sentence`` (folded). By position: a
    marker's own hash would hash its compiled patterns each time."""
    return tuple(match.span() for match in MARKERS[marker].pattern.finditer(sentence))


# a pure function; messages repeat their sentences ("Reply STOP to opt out.")
_matches = functools.lru_cache(maxsize=1 << 14)(_find)
_KEPT_FOR = MARKERS  # the markers whose matches _matches keeps


def _spans(marker: int, sentence: str) -> tuple[tuple[int, int], ...]:
    return _find(marker, sentence) if len(sentence) > KEPT_SENTENCE else _matches(marker, sentence)


def others(text: str, words: frozenset[str] | set[str]) -> list[tuple[int, int, str]]:
    """Folded spans of the clauses about someone else or about everyone (see the module
    docstring), with the marker's name. ``text`` is folded; ``words``: its words (gate keys)."""
    if not _BROADCAST_GATE.isdisjoint(words) and _BROADCAST.search(text):
        return _broadcast(text)
    global _KEPT_FOR
    if _KEPT_FOR is not MARKERS:  # replaced (a test's own markers): the kept matches are another's
        _matches.cache_clear()
        _KEPT_FOR = MARKERS
    ready = [(i, m) for i, m in enumerate(MARKERS) if not m.gate.isdisjoint(words)]
    if not ready:
        return []
    out = []
    start = 0
    for end in [m.end() for m in _SENTENCE.finditer(text)] + [len(text)]:
        if end <= start:
            continue
        sentence = text[start:end]
        found = [(m, span) for i, m in ready for span in _spans(i, sentence)]
        # wording written to everyone wins: its "your" is everyone's
        notice = next((m for m, _ in found if not m.address_counts), None)
        if notice is not None and notice.address and notice.address.search(sentence):
            pass  # (eleventh round) it singles the patient out: "Heat warning this week: with your kidney disease …"
        elif notice is not None:
            if notice.clause:
                spans = [span for m, span in found if m is notice]
                lo = 0
                for cut in [c.start() for c in _CLAUSE.finditer(sentence)] + [len(sentence)]:
                    if any(a < cut and lo < b for a, b in spans):
                        out.append((start + lo, start + cut, notice.name))
                    lo = cut
            else:
                out.append((start, end, notice.name))
        elif found:
            # the sentence as the address is read in: a relative clause inside a marker's own words
            # ("the nurse who usually calls you is off") blanked out
            heard = _blank_relatives(sentence, [span for _, span in found])
            # the clauses a marker is in, when they do not address the patient: "Dr. Roy is away, so the
            # nurse will take out the stitches" keeps its second clause
            lo = 0
            for cut in [c.start() for c in _CLAUSE.finditer(sentence)] + [len(sentence)]:
                marker = next((m for m, (a, b) in found if m.sentence or (a < cut and lo < b)), None)
                if marker is None:
                    pass
                elif marker.sentence:
                    # a sentence framed as a campaign or a notice counts whole when it singles the patient out
                    if not (marker.address or _ADDRESS).search(sentence):
                        out.append((start + lo, start + cut, marker.name))
                else:
                    # tenth round: of the stretches before the marker's words, only the one next to them is
                    # read with it ("Following her knee surgery, Dr. Kim is off"); one further back is the
                    # patient's (« pour résumer : c'est de l'arthrose au genou, on essaie …, la physio est … »)
                    address = marker.address or _ADDRESS
                    begins = min(a for m, (a, b) in found if m is marker and a < cut and lo < b)
                    stretches = _stretches(sentence, lo, cut)
                    first = max((i for i, (a, _) in enumerate(stretches) if a <= begins), default=0)
                    out += [(start + a, start + b, marker.name) for a, b in stretches[max(0, first - 1):]
                            if not address.search(heard, a, b)]
                lo = cut
        start = end
    return out


def _blank_relatives(sentence: str, spans: list[tuple[int, int]]) -> str:
    """``sentence`` with the relative clauses (:data:`_RELATIVE`) that lie inside a marker's own
    words blanked out, the same length."""
    def blank(m: re.Match[str]) -> str:
        inside = any(a <= m.start() and m.end() <= b for a, b in spans)
        return " " * len(m.group()) if inside else m.group()

    return _RELATIVE.sub(blank, sentence)


def _stretches(sentence: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The stretches of ``sentence[lo:hi]`` between commas."""
    cuts = [m.start() for m in _COMMA.finditer(sentence, lo, hi)]
    return list(zip([lo, *cuts], [*cuts, hi]))


def _broadcast(text: str) -> list[tuple[int, int, str]]:
    """Every sentence of a message sent to everyone, but those that single the patient out."""
    out = []
    start = 0
    for end in [m.end() for m in _SENTENCE.finditer(text)] + [len(text)]:
        if end > start and not _SINGLED_OUT.search(text, start, end):
            out.append((start, end, "broadcast"))
        start = end
    return out
