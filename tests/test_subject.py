"""Whose health a sentence is about (emrcomm_content.subject): a disease named in a sentence about
a staff member, a charity, a public event, another clinic in the building or a newsletter is not
the patient's, and a clause that addresses the patient still counts.

Every example here was written for these tests, not taken from benchmarks/data/clinic-messages.
"""

from __future__ import annotations

import re

import pytest

from emrcomm.testing import make_context
from emrcomm_content import Plugin, phrasing, subject
from emrcomm_content.clinical import ClinicalDetector
from emrcomm_content.folding import Folded
from test_phrasing import _project_texts


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> ClinicalDetector:
    return Plugin(make_context("content", {}, tmp_path_factory.mktemp("subject"))).clinical


SOMEONE_ELSE = {
    "staff": [
        "Dr. Bergeron is off for a month after her gallbladder surgery; Dr. Haddad covers her Friday clinic.",
        "Nurse Karim caught pneumonia and will be away until the 20th.",
        "Our secretary Linda is recovering from a stroke, so the fax line is answered by Paul.",
        "La Dre Bergeron est absente un mois, elle se remet d'une chirurgie à la vésicule.",
        "Notre secrétaire Linda a fait un AVC; c'est Paul qui répond au fax pour l'instant.",
    ],
    "staff-tenth": [
        "Our hygienist has the flu, so the Tuesday cleanings are moved.",
        "Le Dr Fortin suit présentement des traitements pour un lymphome; le Dr Roy prend ses patients.",
    ],
    "staff-eleventh": [
        "Our Tuesday receptionist, who is recovering from a heart attack, is back in May.",
        "Nous pensons à notre Ginette, qui combat un cancer du sein; l'accueil ouvre à 9 h.",
        "Sam from our billing team is doing radiation and answers emails slowly this month.",
        "C'est avec tristesse que nous annonçons le décès de notre collègue Luc, emporté par une leucémie.",
    ],
    "season-eleventh": [
        "Gastro season has arrived in town: wait times at the walk-in are longer this week.",
        "La grippe frappe fort cette semaine : l'attente est plus longue au sans rendez-vous.",
        "Grade 8 school vaccines (hep B, HPV) are given in class next month.",
    ],
    "season-tenth": [
        "We're now accepting new patients at our diabetes clinic. Tell a friend!",
        "Nous acceptons maintenant de nouveaux patients à notre clinique du diabète.",
    ],
    "charity": [
        "The staff are walking in the Parkinson walk on Sunday; donations welcome at reception.",
        "We raised $900 for leukemia research at the chili lunch, thank you!",
        "L'équipe marche dimanche pour la recherche sur la leucémie; les dons sont bienvenus à l'accueil.",
    ],
    "public": [
        "A free talk on menopause for the community is on Thursday at the town hall.",
        "Anyone with diarrhea or vomiting should not visit the residents this week.",
        "Conférence gratuite sur la ménopause ouverte à tous jeudi à l'hôtel de ville.",
        "Toute personne qui a la diarrhée ou qui vomit ne doit pas visiter les résidents cette semaine.",
    ],
    "place": [
        "The dermatology clinic on the third floor has a new phone number.",
        "La clinique de dermatologie au 3e étage a un nouveau numéro.",
    ],
    "staff-more": [
        "Dr. Haddad's mother had a stroke; she is away this week and back on Monday.",
        "Just so you know, our audiologist is off for her own hip surgery until May.",
        "Sarah, one of our kinesiologists, had her knee replaced last week and is recovering well.",
        "Notre hygiéniste a testé positif à la COVID, on déplace tous ses rendez-vous cette semaine.",
        "Pour votre info, notre audiologiste est en arrêt pour sa propre opération à la hanche.",
    ],
    "campaign": [
        "This fall the pneumococcal vaccine is offered to people with asthma, diabetes or heart disease.",
        "Bowel cancer screening kits are free for adults 50 to 74: ask at the front desk.",
        "Cet automne, le vaccin contre le pneumocoque est offert aux personnes atteintes d'asthme ou de diabète.",
        "Les trousses de dépistage du cancer colorectal sont gratuites pour les 50 à 74 ans.",
    ],
    "door": [
        "Please wash your hands at the entrance and wear a mask if you have a sore throat or a fever.",
        "All patients with a cough or a fever must wear a mask in the waiting room.",
        "If you have a sore throat or a fever, please phone ahead before coming to the clinic.",
        "Si vous avez mal à la gorge ou de la fièvre, téléphonez avant de vous présenter à la clinique.",
    ],
    "directions": [
        "The chemotherapy day unit parking is closed Monday; use the visitor lot.",
        "Le stationnement de l'unité de dialyse est fermé lundi; utilisez celui des visiteurs.",
    ],
    "broadcast": [
        "Tick season is here: check yourself after a hike. Lyme disease facts at the front desk. (message sent to all patients)",
        "Semaine de la prévention du suicide : des ressources à l'accueil. La ligne 1 866 APPELLE répond jour et nuit.",
    ],
    "clinic": [
        "We're back to normal hours after the flu season: 8 to 6 on weekdays.",
        "Retour à l'horaire normal après la saison de la grippe : 8 h à 18 h en semaine.",
    ],
    # sixth round: a colleague's illness said in other ways, the clinic lodged in another's building,
    # school campaigns and prevention days, pledges and drives, verdicts on the building's things
    "staff-sixth": [
        "Sorry for the short notice, your doctor tested positive for COVID and has to stay home until Monday.",
        "Votre médecin est en isolement (COVID), on a décalé votre rdv au lundi 20 même heure.",
        "The pharmacist is out with a back injury this week; prescription pickups are still open as usual.",
        "Our physio Tom is having knee surgery, he'll be back in May.",
        "Notre physio Tom se fait opérer au genou, il revient en mai.",
        "Kevin at reception has strep throat, so we're short-staffed today.",
        "dr Roy fait une migraine, on a a peu pres 1h de retard cet aprem, desole!!",
        "Dr. Fraser is getting his gallbladder out next week; Dr. Ali covers until the 20th.",
        "We're short two nurses with COVID this week, please expect delays.",
        "Il nous manque deux infirmières avec la COVID cette semaine, prévoyez des délais.",
        "Notre technicienne de labo est chez elle avec une migraine, les prises de sang reprennent à midi.",
        "Dr. Okafor is back from her cancer treatment and thanks you all for your kind wishes.",
        "La Dre Okafor est de retour après ses traitements contre le cancer et vous remercie pour vos bons mots.",
    ],
    # seventh round: the staff member is the subject of the health word, however the sentence names them
    "staff-seventh": [
        "The doctor has shingles and won't be in until Monday. We'll call to rebook.",
        "Dr. Haddad's chemo went well and she sends her thanks for all the messages.",
        "Kim from billing is having her thyroid removed next week, call the main line for invoices.",
        "The nurse who usually calls you is off with a migraine today; someone else will call this afternoon.",
        "Notre réceptionniste a attrapé la COVID, les lignes seront plus lentes aujourd'hui.",
        "Le Dr Lefebvre revient de ses traitements de chimio lundi prochain, il a hâte de vous revoir.",
        "La Dre est en congé de maladie jusqu'à nouvel ordre, on vous rappelle pour votre rdv.",
        "L'infirmière qui vous suit d'habitude a une gastro, une collègue vous appellera.",
        "L'adjointe de la Dre Nguyen s'est cassé la jambe, merci de votre patience.",
        "Our hygienist told the team that she is being treated for lymphoma and will be away until spring.",
        "La Dre Roy reçoit des traitements de chimio cet automne et réduit ses heures.",
        "Le pharmacien est cloué au lit avec une grippe, la pharmacie ouvre à midi.",
        "Apologies! nurse has strep, we'll call to move your visit.",
        "Le technicien du labo s'est fait une entorse, pas de prélèvements avant 9 h.",
        "Le Dr Poirier traverse une dépression et prend une pause de quelques mois.",
        "Reception news: Marco twisted his knee playing soccer, so the phones are slower this week.",
        "L'accueil : Nadia s'est tordu la cheville, merci de votre patience au téléphone.",
        "The audiologist is recovering from pneumonia and returns on the 12th.",
        "Dr. Blais is going through a family illness and will be away until Friday.",
        "Bonne nouvelle, le Dr Landry a terminé sa radiothérapie et revient en mars.",
        "Notre inhalothérapeute est en retrait préventif (elle est enceinte), ses rendez-vous passent à Marc.",
        "Our weekend pharmacist's migraine is acting up again, so the counter opens at noon.",
        "Kevin, our RPN, has bronchitis - the flu shot clinic moves to Friday.",
        "Le doc fait de la fièvre, on annule les rdv de cet après-midi.",
    ],
    "place-seventh": [
        "The sleep clinic has vacated the second floor; our new exam rooms open in June.",
        "La clinique de la douleur a quitté le 3e étage, on s'agrandit!",
    ],
    "public-seventh": [
        "Mental health matters to all of us: a free talk at the library on Tuesday night.",
        "Parlons de santé mentale : causerie gratuite à la bibliothèque mardi soir.",
    ],
    "charity-seventh": [
        "Ride for Parkinson's is on Saturday, come cheer at the finish line.",
    ],
    "paperwork-seventh": [
        "We checked your contact information, all good, nothing to change.",
        "Rien d'anormal avec votre formulaire d'inscription, il manquait seulement la date.",
    ],
    "lodged": [
        "Your 10:15 tomorrow is at the Psychiatry building entrance - our family clinic shares that lobby now.",
        "Votre rdv de 10h15 : entrée du pavillon de psychiatrie, notre GMF partage ce hall depuis les rénos.",
        "You'll find us in the Kidney Care Pavilion, main floor, beside the pharmacy.",
        "On est maintenant au 55 chemin de l'Hôpital, juste en face de l'aile d'oncologie pédiatrique.",
    ],
    "charity-sixth": [
        "Our clinic's team raised $2,000 for Suicide Action Montréal, thank you.",
        "The clinic is collecting pledges for the Heart & Stroke Big Bike ride. Thank you for your support!",
        "Our staff will be shaving their heads for childhood cancer on Friday, come cheer!",
        "La collecte de nourriture pour la maison d'hébergement VIH/sida finit cette semaine, denrées à l'avant.",
    ],
    "campaign-sixth": [
        "Ask us about free HPV shots for all grade 7 students this fall.",
        "Vaccination scolaire gratuite contre le VPH pour tous les élèves de 4e année cet automne.",
        "Naloxone kits are free at every pharmacy in Quebec, no prescription needed.",
        "Les trousses de naloxone sont gratuites dans toutes les pharmacies du Québec, sans ordonnance.",
    ],
    "broadcast-sixth": [
        "Suicide Prevention Day is Sept 10. The crisis line 988 is available to all Canadians 24/7.",
        "Défi 28 jours sans alcool en février : toute l'équipe embarque, joignez-vous à nous!",
        "Avis aux parents : la rougeole circule, vérifiez le carnet de vaccination de vos enfants.",
    ],
    "directions-sixth": [
        "Dialysis patients' reserved spots are in row A; everyone else please use rows B to F.",
        "Les places réservées aux patients de dialyse sont dans la rangée A; les autres, utilisez les rangées B à F.",
    ],
    "paperwork": [
        "La vérification de la température du frigo à vaccins est revenue correcte après la panne.",
        "The Wi-Fi results are normal again after the outage.",
        "Les résultats du Wi-Fi sont normaux après la panne.",
        "Résultat positif : votre inscription au GMF est acceptée!",
        "Your background check results are negative, you're all set to volunteer!",
    ],
    "notice": [
        "Our newsletter this month: what to know about your cholesterol, and our summer hours.",
        "Dans notre infolettre : ce qu'il faut savoir sur votre cholestérol, et nos heures d'été.",
    ],
}


@pytest.mark.parametrize(("marker", "text"), [(m.split("-")[0] if m.endswith(("-more", "-sixth", "-seventh", "-tenth", "-eleventh")) else m, t)
                                              for m, texts in SOMEONE_ELSE.items() for t in texts])
def test_a_disease_in_a_sentence_about_someone_else_is_not_the_patients(detector: ClinicalDetector, marker: str,
                                                                       text: str) -> None:
    folded = Folded.of(text).text
    assert marker in {name for _, _, name in subject.others(folded, phrasing.text_keys(folded))}
    assert detector.read(Folded.of(text)).hits == []


@pytest.mark.parametrize("text", [
    # the patient singled out in a campaign or a notice at the door
    "Because of your asthma, you are eligible for the pneumococcal vaccine this fall.",
    "Vu votre diabète, vous êtes admissible au vaccin contre le pneumocoque cet automne.",
    "If you have a fever after your gallbladder surgery, call before coming in.",
    "Park in the visitor lot for your chemotherapy on Monday.",
    # a colleague away, and the patient's own care in the next stretch of the sentence
    "Dr. Roy is on leave this week, your stitches come out on Friday with the nurse.",
    "The steri-strips will fall off on their own in about a week.",
    # a campaign or a notice at the door that singles the patient out, anywhere in the sentence
    "Because he has sickle cell disease, your son is eligible for the meningococcal vaccine this year.",
    "If you have a fever after the biopsy, call us before coming in.",
    "You're eligible for free insulin through the provincial program.",
    "If you have any pain or swelling in the calf, report it to the nurse right away.",
    "Emma has strep throat. She is off school until she has had 24 hours of antibiotics.",
    "She is off the blood thinner now, so no more INR checks.",
    "Si vous faites de la fièvre, restez à la maison jusqu'à 24 heures sans fièvre.",
    "People with COPD like you should get the pneumococcal vaccine this fall.",
    "Vous êtes admissible à l'insuline gratuite par le programme provincial.",
    "Si vous avez encore de la fièvre, reportez votre rendez-vous de vaccination.",
    "Dr. Bergeron is off this month, so Dr. Haddad will go over your biopsy with you.",
    "La Dre Bergeron est absente ce mois-ci, donc le Dr Haddad va revoir votre biopsie avec vous.",
    "All patients on warfarin: the anticoagulation clinic moves to the second floor.",
    "À tous les patients sous warfarine : la clinique d'anticoagulothérapie déménage au 2e étage.",
    "Everyone in the house should be treated for lice on the same day.",
    "Tout le monde dans la maison doit être traité pour les poux la même journée.",
    # sixth round: the patient's own clinician is no colleague's illness, and a booking beside a colleague's
    # state does not quiet the patient's care in another clause
    "Your doctor wants to go over the biopsy with you on Friday.",
    "Dr. Nguyen is off sick, so Dr. Patel will go over your MRI with you on Friday.",
    "La Dre Nguyen est malade, donc le Dr Patel va revoir votre IRM avec vous vendredi.",
    "Since your spleen was removed, you'll need the meningitis boosters.",
    "Your referral to the Kidney Care Pavilion has been sent; they will call you.",
    # seventh round: a role as the subject does not quiet the patient's own care
    "The doctor has concerns about the lump and wants to see you this week.",
    "La Dre a une inquiétude pour la bosse, elle veut vous voir cette semaine.",
    "Dr. Roy is away, the nurse who sees you Tuesday will take out the stitches.",
    "Tout est beau dans votre bilan annuel, on se revoit dans un an.",
    "She has strep throat again, keep her home from daycare until Monday.",
    # tenth round: "Dr says" names no one, and a staff marker quiets its own stretches and the one before, not
    # the patient's care further back in the sentence
    "Dr says the mole we took off came back benign, nothing more to do.",
    # eleventh round: a notice to everyone with a reason that is the patient's, paperwork about their care
    "Smog warning today: with your asthma, keep your puffer close and stay inside.",
    "Your claim for the insulin pump was approved by your insurer.",
    "Your midwife is away, so your 36-week check moves to Friday.",
    # the independent review of the eleventh round: wording about others or everyone must not quiet the
    # patient's own care beside it
    "Someone from our team will call about the abnormal Pap test.",
    "Your son, who is recovering from pneumonia, should finish the amoxicillin.",
    "Votre mère, qui se remet de sa chirurgie, doit prendre l'anticoagulant.",
    "Emma lost her voice and the strep swab came back positive, amoxicillin sent.",
    "Flu season has arrived. Influenza A test positive, start Tamiflu.",
    "CT shows a kidney stone; tamsulosin sent. Lakeside Clinic is now accepting new patients.",
    "Emma is due for her grade 7 shots. Her strep test was positive; start penicillin.",
    "We will run CBC and TSH next week.",
    "Crohn's Disease runs in families.",
    "Call or phone if she has a seizure.",
    "The system shows you had a heart attack in 2019.",
    "All good with your refund, but the biopsy showed melanoma.",
    "En bref : c'est une tendinite à l'épaule, on fait une infiltration de cortisone mardi, la physio ensuite, "
    "et on pense à la chirurgie si ça ne passe pas.",
])
def test_a_clause_that_addresses_the_patient_still_counts(detector: ClinicalDetector, text: str) -> None:
    """The layer never overrides a term or a pattern about the patient: "your", « votre », a group
    the patient is in by their health ("patients on warfarin") or their household."""
    assert detector.read(Folded.of(text)).hits


def test_the_words_of_a_sentence_about_someone_else_do_not_weigh_in_the_score(tmp_path_factory:
                                                                              pytest.TempPathFactory) -> None:
    plugin = Plugin(make_context("content", {}, tmp_path_factory.mktemp("score")))
    text = "Our receptionist hurt her back lifting boxes and is off until Monday."
    folded = Folded.of(text)
    reading = plugin.clinical.read(folded)
    assert reading.others
    assert plugin.scorer.score(folded, reading.evidence, others=reading.others).probability == 0.0


def test_the_marker_gates_change_nothing() -> None:
    """A marker runs only on a text with one of its gate words; run every marker on every text the
    project has, and the spans are the same."""
    every = frozenset(w for m in subject.MARKERS for w in m.gate)
    differ = []
    for text in _project_texts():
        folded = Folded.of(text).text
        if subject.others(folded, phrasing.text_keys(folded)) != subject.others(folded, every):
            differ.append(text)
    assert differ == []


def test_the_kept_matches_are_of_the_markers_in_use(monkeypatch):
    # The matches by sentence are kept by a marker's position: markers put in place of the
    # packaged ones (as a test or a fork might) must not be answered with the old ones' matches.
    folded = Folded.of("Dr. Roy is on leave after her own surgery.").text
    keys = phrasing.text_keys(folded)
    assert "staff" in {name for _, _, name in subject.others(folded, keys)}
    # in the staff marker's place, one that every word of the text opens and nothing matches
    silent = subject.Marker("silent", frozenset(keys), re.compile(r"(?!)"))
    monkeypatch.setattr(subject, "MARKERS", (silent, *subject.MARKERS[1:]))
    after = subject.others(folded, keys)
    subject._matches.cache_clear()
    assert after == subject.others(folded, keys)
    assert {name for _, _, name in after}.isdisjoint({"staff", "silent"})


def test_a_long_sentence_is_matched_and_not_kept():
    sentence = "dr roy is on leave after her own surgery " + "and the parking lot is closed " * 15
    assert len(sentence) > subject.KEPT_SENTENCE
    subject._matches.cache_clear()
    found = subject.others(sentence, phrasing.text_keys(sentence))
    assert "staff" in {name for _, _, name in found}
    assert subject._matches.cache_info().currsize == 0
