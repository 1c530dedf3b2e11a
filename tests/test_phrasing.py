"""Context patterns (emrcomm_content.phrasing): clinical talk without a clinical name is blocked, in
English and Quebec French, and the administrative messages that look like it are not.

Every example here was written for these tests, not taken from benchmarks/data/clinic-messages.
A positive must be found by the named family as a *context* hit (the wording, not a listed term);
a hard negative must give no clinical finding at all.
"""

from __future__ import annotations

import csv

import pytest

from emrcomm.model import Message, Request
from emrcomm.testing import make_context
from emrcomm_content import Plugin
from emrcomm_content.clinical import CONTEXT, ClinicalDetector
from emrcomm_content.folding import Folded
from support import DATA, REPO


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> ClinicalDetector:
    plugin = Plugin(make_context("content", {}, tmp_path_factory.mktemp("phrasing")))
    return plugin.clinical


def context_kinds(detector: ClinicalDetector, text: str) -> set[str]:
    return {h.kind for h in detector.read(Folded.of(text)).hits if h.layer == CONTEXT}


POSITIVES = {
    "finding": [
        # ninth round: a care episode closed by the specialist
        ("en", "The specialist gave you a clean bill of health and is sending you back to us."),
        ("fr", "Le spécialiste vous donne votre congé et vous retourne à nous."),
        ("fr", "Le truc qu'on a gelé sur votre pied a l'air parti, envoyez-nous une photo."),
        ("en", "Good news: the bump behind your ear is a harmless cyst-like growth, nothing more."),
        ("en", "The thing we took off your shoulder came back clear."),
        ("en", "Your scan shows a small change that the doctor wants a radiologist to look at again."),
        ("en", "Dr. Moss looked at the area we were watching on your back and it is smaller."),
        ("fr", "La bosse sur votre bras est sans danger selon le rapport."),
        ("fr", "Ce qu'on a vu à l'examen de mardi n'a pas changé depuis l'an passé."),
        ("fr", "Le rapport sur votre poumon est arrivé, la Dre Roy veut vous en parler."),
        ("fr", "Votre image montre une petite zone que le radiologiste veut revoir."),
        ("en", "Good news! The check from your last visit was fine."),
        ("fr", "Bonne nouvelle! Le contrôle de votre dernière visite était correct."),
        ("en", "The lab noticed a small irregularity on your sample; we need to redo it."),
        # results read, then the patient asked in soon: the hurry is the verdict
        ("en", "Dr. Haddad went over your bloodwork and would like to see you as soon as possible."),
        ("fr", "La Dre Haddad a revu vos analyses et aimerait vous voir le plus tôt possible."),
        ("fr", "Le labo a remarqué une petite anomalie sur votre échantillon, on doit le refaire."),
        ("en", "The margins were clear on what the surgeon took out."),
        ("fr", "Les marges sont libres, aucun autre traitement."),
        ("en", "Your left knee looked much better on Tuesday."),
        ("fr", "La tache dans votre dos n'a pas grossi."),
        # eighth round: a verdict on "yours", the patient's own tests unnamed
        ("en", "Nothing to worry about on yours, see you in the spring."),
        ("fr", "Rien d'inquiétant dans les vôtres, on se revoit au printemps."),
        ("en", "Dr. Li looked at yours, nothing to worry about."),
        ("en", "Your bloods are the same as last time, no changes."),
        ("fr", "Vos prises de sang ressemblent à celles de l'automne, on touche à rien."),
        ("en", "The doctor went through what came back and there's nothing new."),
        ("fr", "La Dre veut vous voir pour parler de la suite après les résultats."),
    ],
    "value": [
        # ninth round: a value said by where it went, one decimal
        ("en", "Up to 7.4 this time, we need to talk."),
        ("fr", "Descendu à 5,8, bravo!"),
        ("en", "Bring your home blood pressure log and the cuff on Friday."),
        ("fr", "Apportez votre carnet de pression et votre brassard vendredi."),
        ("en", "Your numbers from last week: 5.2 and 1.4. No changes needed."),
        ("en", "Your level is at 31 now, so you can stop the extra tablets."),
        ("en", "Your kidney numbers look stable."),
        ("fr", "Votre taux est remonté à 120, c'est encourageant."),
        ("fr", "Vos chiffres sont dans les normes cette fois-ci."),
        ("fr", "Votre poids est passé de 88 à 83 kg depuis janvier."),
        ("en", "Your number is 3.4, a bit high, so skip tonight's pills."),
        ("fr", "Votre chiffre est à 3,4, un peu haut, sautez les pilules ce soir."),
    ],
    "care": [
        # ninth round: the patient's visit to the emergency room; a questionnaire on attention
        ("en", "We got the notes from your ER visit last night; the doctor wants to see you Thursday."),
        ("fr", "Nous avons reçu le résumé de votre passage à l'urgence, la Dre veut vous voir."),
        ("en", "The school sent back the attention questionnaire, the doctor will look at it before your visit."),
        ("fr", "Merci de remplir le questionnaire sur le comportement avant jeudi."),
        # eighth round: a referral in everyday words
        ("en", "The specialist's office will call you to book your first visit."),
        ("en", "The physio you were referred to has an opening next week."),
        ("fr", "Le bureau du spécialiste va vous appeler pour fixer votre première visite."),
        ("fr", "L'intervenante du programme va vous appeler cette semaine pour votre première rencontre."),
        ("en", "We've booked you with the dietitian to work on your eating plan."),
        ("fr", "Rappel : l'atelier « Gérer son stress » où la Dre vous a inscrit, mercredi 19h, salle 2."),
        ("en", "Reminder: the group the nurse signed you up for starts Wednesday at 7."),
        ("en", "The team for mood and worry has a spot on Thursdays at 4."),
        ("en", "If you are thinking about ending your life, call or text 988 right away."),
        ("en", "The alcohol program called to set up your intake."),
        ("fr", "Le groupe pour l'humeur commence le 3 mars, vous êtes inscrit."),
        ("fr", "En cas de détresse, appelez le 1 866 APPELLE ou Info-Social au 811, option 2."),
        ("fr", "L'intervenante pour l'alcool vous attend mercredi pour votre première rencontre."),
        ("en", "The group for people living with anger meets on Tuesdays."),
        ("fr", "Le groupe pour les personnes qui vivent de la colère se rencontre le mardi."),
        # sixth round
        ("en", "Just checking in after our talk yesterday, are you feeling safe tonight?"),
        ("fr", "Suite à notre discussion d'hier, vous sentez-vous en sécurité ce soir?"),
        ("en", "Your sponsor can come with you to the group meeting if that helps."),
        ("fr", "Votre intervenante Josée au CLSC a déplacé votre rencontre à jeudi."),
        ("en", "Your session with Maya is moved to Wed 4pm, same room."),
        ("fr", "Votre séance avec Maya est déplacée mercredi 16 h, même local."),
        ("fr", "Rencontre jeudi pour faire le point sur ta conso de pot."),
        ("en", "How is your use of alcohol since we last met?"),
        ("en", "How many beers on a weekend night these days?"),
        ("fr", "Combien de bières le soir ces temps-ci?"),
        # seventh round: the gentle forms of a mental-health follow-up
        ("fr", "Comment vous arrivez à passer à travers ces temps-ci? On pense à vous."),
        ("fr", "Vous avez l'air plus épuisée dernièrement; la Dre aimerait en jaser avec vous."),
        ("en", "You've seemed a bit down the last few visits; Dr. Ng would like to talk about it."),
        ("en", "We miss you at group! Next one is Tuesday at 7."),
        ("fr", "On s'ennuie de vous au groupe! Le prochain est mardi à 19 h."),
        ("en", "Your worker can drive you to the Thursday group if getting there is the hard part."),
        ("en", "You told me you'd been feeling hopeless at night, so I booked you with the nurse Friday."),
        ("fr", "Tu m'avais dit te sentir dépassée, je t'ai réservé une rencontre avec l'intervenante."),
        ("en", "If this weekend gets rough, use the plan we put together and call the line."),
        ("fr", "Si la nuit devient trop lourde, suivez le plan qu'on a fait ensemble."),
        ("en", "Still having a hard time getting out of bed most days?"),
        ("fr", "Avez-vous toujours du mal à vous lever le matin?"),
    ],
    "allergy": [
        ("en", "Your allergy testing showed a reaction to ragweed."),
        ("en", "The allergy testing for your son is booked for May 4."),
        ("fr", "Les résultats des tests d'allergie sont arrivés : réaction aux chats."),
        ("fr", "Les tests pour les allergies de votre fils sont prévus le 4 mai."),
        # sixth round: what is tested names the allergy
        ("en", "The doctor wants to do testing for sesame and tree nuts."),
        ("en", "The milk challenge went well today, he can have yogurt now."),
        ("fr", "Les tests pour les arachides et le sésame sont prévus jeudi."),
        ("fr", "L'épreuve au lait s'est bien passée, il peut manger du yogourt."),
    ],
    "infection": [
        # seventh round: partners who "can get treated", « qu'ils se fassent traiter »
        ("en", "Let your partner(s) know so they can be tested as well."),
        ("fr", "Avisez vos partenaires des trois derniers mois pour qu'ils se fassent tester."),
        ("en", "Tell anyone you were with in the last two months that they need to get tested as well."),
        ("fr", "Avisez vos partenaires des deux derniers mois qu'ils doivent se faire tester aussi."),
        ("en", "Keep taking the amox until the bottle is empty, even if you feel better."),
        ("en", "Please keep your son home from school until 24 hours after the first dose."),
        ("fr", "Continuez l'antibio jusqu'au bout, même si vous allez mieux."),
        ("fr", "Votre partenaire doit aussi être traité avant de reprendre les relations."),
    ],
    "wound": [
        # tenth round: an activity held back until a set time
        ("en", "No jogging for two weeks, then we'll see how it feels."),
        ("fr", "Pas de natation avant la fin du mois, svp."),
        # ninth round: the care of a port or a line
        ("en", "The nurse will flush your port on Tuesday."),
        ("fr", "L'infirmière va rincer votre port mardi."),
        # eighth round: aftercare with no body or drug word
        ("en", "Come back if it gets red or hot or starts to leak."),
        ("fr", "Revenez si ça devient rouge ou chaud."),
        ("fr", "Mangez mou pour 48 heures et pas de paille."),
        ("fr", "Si ça se met à saigner à travers, appuyez 10 minutes et appelez-nous."),
        ("en", "Stick to soft foods for two days and no straws."),
        ("en", "Don't take a bath until the doctor has had a look at it."),
        ("en", "The nurse will change the dressing on your leg every second day."),
        ("en", "Your staples can be removed at the walk-in after the 14th."),
        ("fr", "L'infirmière changera votre pansement jeudi."),
        ("fr", "Vos points seront enlevés lundi par l'infirmière."),
        ("en", "The cut is healing nicely."),
        ("fr", "Gardez la région couverte et au sec jusqu'à vendredi."),
        ("en", "Keep the arm in the sling until Friday."),
        ("fr", "Gardez le bras dans l'écharpe jusqu'à vendredi."),
        ("en", "Keep the boot on when you walk for another 2 weeks."),
        ("fr", "Remettez la botte quand vous marchez dehors."),
    ],
    "pre-op": [
        # ninth round: eyes dilated, no driving after
        ("en", "Your eyes will be dilated, bring someone to drive you home."),
        ("fr", "Vos pupilles seront dilatées, ne conduisez pas après l'examen."),
        ("fr", "Pas de conduite automobile pendant 24 heures."),
        ("en", "No solid food after midnight before your operation on Friday."),
        ("en", "Clear fluids only the day before your scope."),
        ("fr", "Rien à manger après minuit la veille de l'intervention."),
        ("fr", "Liquides clairs seulement la veille de votre opération."),
    ],
    "pregnancy": [
        # ninth round: a beta said by how it moves
        ("en", "Your beta doubled, great news!"),
        ("fr", "Le bêta monte bien, félicitations!"),
        # seventh round: a beta said by its verdict
        ("en", "The beta came back negative this cycle, I'm so sorry."),
        # eighth round: the patient's own cycle as a visit's purpose
        ("en", "Your appointment with the nurse is to go over the plan for your next cycle."),
        ("fr", "Votre rendez-vous avec l'infirmière est pour revoir le plan pour votre prochain cycle."),
        ("fr", "Bêta positive ce matin, félicitations!"),
        ("en", "Congrats on the new baby! We'll call to book your check at six weeks."),
        ("fr", "Félicitations pour la naissance! On vous appelle pour la visite de 6 semaines."),
        ("en", "Your day 21 blood work can be done at any lab this week."),
        ("fr", "Les prises de sang du jour 3 sont lundi à 7 h."),
        ("en", "Your beta was 2,100 today, we will repeat it Monday."),
        ("en", "The scan at 12 weeks is booked for the 9th."),
        ("fr", "Votre bêta est à 2 100, on refait la prise de sang lundi."),
        ("fr", "Le scan de 20 semaines est prévu le 9 au CHUL."),
        # sixth round
        ("en", "Since you're past 41 weeks, the hospital will call you about the date."),
        ("en", "At 28 weeks you're due for your Tdap."),
        ("en", "We'd like to see you at 39 weeks to talk about the plan for birth."),
        ("en", "The clinic will call you on cycle day 1 to start the injections."),
        ("fr", "La clinique vous appellera au jour 1 du cycle pour commencer la stimulation."),
        ("en", "Your due date from the scan is June 14."),
        ("fr", "Puisque vous attendez bébé, on vous revoit dans deux semaines."),
    ],
    "vaccine": [
        ("en", "Because of your heart, the doctor recommends the high-dose flu shot this fall."),
        ("en", "After the dog bite, you will need a tetanus booster today."),
        ("fr", "À cause de votre rate, deux vaccins de plus sont recommandés cet automne."),
        ("fr", "Après la morsure du chien, il vous faut un rappel du tétanos."),
        ("en", "With the cochlear implant, your son needs the pneumococcal vaccine."),
        ("fr", "Avec l'implant cochléaire, votre fils a besoin du vaccin contre le pneumocoque."),
        ("en", "After the bat in your bedroom, you need the rabies shots starting today."),
    ],
    "sleep": [
        ("en", "The test showed you stop breathing about 15 times an hour at night."),
        ("en", "Please use your machine every night, including naps."),
        ("fr", "Le test montre que vous arrêtez de respirer environ 15 fois par heure."),
        ("fr", "Utilisez votre appareil toutes les nuits, même pour les siestes."),
    ],
    "symptom": [
        # eighth round: a symptom followed up without its name
        ("en", "Is it still bothering you?"),
        ("fr", "Est-ce que ça vous achale encore?"),
        ("fr", "Faites-vous encore des chaleurs la nuit?"),
        ("en", "Still waking up at night with it? Let the nurse know when you come in."),
        ("fr", "Vous réveillez-vous encore la nuit avec ça? Dites-le à l'infirmière."),
        ("en", "Is the ringing any quieter this week?"),
        ("en", "How is the cough since Monday?"),
        ("en", "If the swelling gets worse over the weekend, go to urgent care."),
        ("fr", "Comment va la toux depuis lundi?"),
        ("fr", "Si l'enflure augmente cette fin de semaine, allez au sans rendez-vous."),
        ("en", "How many times has she thrown up since lunch?"),
        ("fr", "Combien de fois a-t-elle vomi depuis le dîner?"),
    ],
    "medication-use": [
        # ninth round: a regimen without the drug's name
        ("en", "Take one instead of two from now on."),
        ("fr", "Prenez-en une au lieu de deux à partir de demain."),
        ("en", "The new strength is ready at the counter."),
        ("en", "Dose stays the same for now."),
        ("en", "The nurse will come at night to help with your bedtime meds."),
        ("fr", "L'infirmière passera le soir pour vos médicaments du coucher."),
        ("en", "Take one tablet twice a day with food."),
        ("en", "The doctor wants to lower your dose starting Monday."),
        ("fr", "Prenez un comprimé deux fois par jour avec de la nourriture."),
        ("fr", "La médecin veut baisser votre dose à partir de lundi."),
        ("en", "Please don't drink alcohol while you're on these tablets."),
        ("fr", "Pas d'alcool pendant que vous prenez ces comprimés."),
    ],
}

HARD_NEGATIVES = [
    # clinic and place names, charities
    # eleventh round: a booking confirmed, the clinic's machines, a refund's verdict, a routine recall, a saint's heart
    "Blood test appointment confirmed for Monday 7:15, ground floor.",
    "Our server caught a virus overnight, so online booking is down.",
    "Résultat positif pour votre demande de remboursement : le chèque part vendredi.",
    "Time for your yearly eye exam, book online anytime.",
    "Join the walk for Heart & Stroke on Sunday, our team meets at the front door.",
    "La marche de Cœur + AVC est dimanche; notre équipe ramasse des dons à l'accueil.",
    # tenth round: a charity's event after its name in capitals, a survey's scale
    "Our team is walking in the Heart & Stroke walk on Saturday, come cheer us on!",
    "How likely are you to recommend us? Répondez par un chiffre de 0 à 10.",
    "Sacred Heart Family Clinic: see you Tuesday at 9:40. Reply STOP to opt out.",
    "Clinique médicale du Sacré-Cœur : rendez-vous mardi à 9 h 40. ARRET pour vous désabonner.",
    "The Heart and Stroke Foundation office next door has free parking on weekends.",
    "Héma-Québec tient une collecte de sang dans notre stationnement samedi.",
    # health card, billing, forms
    "Please bring your health card; we cannot book your visit without it.",
    "Votre carte d'assurance maladie est expirée, apportez la nouvelle svp.",
    "Your invoice of $45 for the form is ready. Your balance is $0 after payment.",
    "Votre formulaire de crédit d'impôt pour personnes handicapées est prêt à signer.",
    # pharmacy directions, renewals without a drug
    "Your prescription is ready at the pharmacy on Bank Street, second door on the left.",
    "Votre renouvellement a été envoyé à la pharmacie. Passez après 16 h.",
    # a doctor's leave
    "Dr. Lavoie is on maternity leave until June; Dr. Chen will see her patients.",
    "La Dre Ouellet est en congé de maternité jusqu'en juin.",
    # appointment logistics with numbers, weeks and doses of routine vaccines
    "Your spot in line tonight is number 14. We will text you when you are next.",
    "Results can take 2 to 3 weeks to reach us; we will call if the doctor needs to see you.",
    "Flu shots for the whole family: walk in Saturday 9 to 3. The COVID-19 vaccine is there too.",
    "Pneumococcal vaccines are offered to everyone 65 and over; book with the nurse.",
    "Le vaccin contre le pneumocoque est offert à tous les 65 ans et plus.",
    "Your results are ready. Please call the office to go over them with the doctor.",
    "Nous avons reçu le rapport d'imagerie. Le médecin vous appellera au besoin.",
    "Le vaccin contre la COVID-19 et celui contre la grippe sont offerts à tous samedi.",
    "Rappel : comme vous l'avez demandé, votre rendez-vous est déplacé à jeudi.",
    "Someone from our office will call you tonight about your booking.",
    "The issue you mentioned with the online booking is fixed.",
    "Please keep the waiting area clear of strollers.",
    "Our hours of operation change on Monday: 8 to 6.",
    "Les heures d'opération de la clinique changent lundi.",
    "Please do not bring food into the waiting room before your appointment.",
    "This is a test message from our new texting system.",
    "The positive thing is that the new phone line is finally working.",
    "Stay positive, and see you on the 12th!",
    "Our patient survey results are in: thank you for the great feedback.",
    "Vos résultats ne sont pas encore arrivés. On vous appellera.",
    "The dietitian's healthy eating group is open to everyone; sign up at the desk.",
    "Les ateliers sur la saine alimentation sont ouverts à tous nos patients.",
    "Our team includes a social worker and a pharmacist, free for all patients.",
    "We grew to 12 doctors this year. Welcome to Dr. Park!",
    "The clinic is closed Friday afternoon for a staff retreat.",
    # names of charities, campaigns and places; a staff member's own surgery or training; exams
    # named by their purpose; a department as a place (administrative.py)
    "The Alzheimer Society information evening is open to the public.",
    "La Société Alzheimer tient une soirée d'information ouverte à tous.",
    "The Community Mental Health Centre has moved to Jean-Talon Street.",
    "Le Centre de santé mentale communautaire a déménagé rue Jean-Talon.",
    "Dr. Okoye is on leave for surgery until May; Dr. Roy sees her patients.",
    "La Dre Okoye est en congé pour une chirurgie jusqu'en mai.",
    "Your driver's medical is booked for Monday at 9.",
    "Votre examen médical pour le permis de conduire est lundi à 9 h.",
    "Our nurses are at a training on diabetes care on Friday; the walk-in opens at noon.",
    "Nos infirmières sont en formation sur les soins du diabète vendredi.",
    "The X-ray clinic downstairs is closed on Saturday.",
    "La clinique de radiologie au sous-sol est fermée samedi.",
    # words that are also clinical words: a spot in line, parking levels, a lump sum, no pressure
    "Your spot in line is number 6; park on level P2.",
    "We offer a lump sum payment plan, no pressure.",
    "La croissance de la clinique nous permet d'accueillir trois médecins.",
    # streets, whatever their names say; "main" is not a hand in English
    "Your appointment is at 40 Cancer Centre Rd, not the main clinic.",
    "Votre rendez-vous est au 200, rue du Sanatorium, 2e étage.",
    # verdict words about paperwork
    "Your police check for the volunteer program came back clear, welcome aboard!",
    "Malheureusement la réponse de votre assureur est négative, ils ne couvrent pas les visites.",
    "Your form came back positive — approved! You can pick up the copy anytime.",
    # results read, and a booking with no hurry
    "The doctor reviewed your file and will see you at your appointment next month.",
    "Le médecin a reçu vos résultats et vous verra à votre rendez-vous du mois prochain.",
    # eighth round: a plain verdict on a payment or an audit, an invitation to everyone
    "Your payment came back fine, thanks!",
    "Everything came back fine with your insurance, no action needed.",
    "Great news: the audit came back clean and we passed!",
    "Joignez-vous à notre course de 5 km pour la recherche sur le rein!",
    "Votre paiement est passé, tout est beau!",
    "Your results are ready. Please call us at 514-555-0101.",
    "Vos résultats sont prêts, appelez-nous au 514-555-0101.",
    "Your prescription is ready for pickup at the pharmacy counter.",
    "Is the portal still bothering you? Call us and we'll reset your password.",
    "Your form came back the same as last time, so no need to resubmit.",
    "Public webinar: understanding menopause, Thursday 7pm. Link on our website.",
    "Webinaire public : comprendre la ménopause, jeudi 19h. Le lien est sur notre site.",
    "Hospice lottery tickets on sale in our waiting room until the 30th.",
    "Toonie Tuesday: all coins collected this month go to Epilepsy Ottawa.",
    "Thank you for supporting our Parkinson SuperWalk team!",
    "Notre réceptionniste Annie participe au Cyclo-défi contre le cancer.",
    "School vaccines: grade 7 students can get their HPV and Hep B shots here in September.",
    "Si vous avez entre 50 et 74 ans, demandez-nous le test de dépistage du cancer colorectal à faire à la maison.",
    "Le test de radon au sous-sol de la clinique est négatif, la salle d'attente du bas rouvre lundi.",
    "Pas d'inquiétude, le double prélèvement sur votre carte de crédit était une erreur de la banque.",
    # seventh round: a health word inside a name, whatever case its head is written in; a building's
    # name even in a message to the patient
    "Le CLSC du pavillon Santé mentale a changé ses heures d'ouverture.",
    "L'Association des troubles de l'humeur utilise notre salle jeudi soir.",
    "Your appointment on Tuesday is at the Lung Health Building, 3rd floor, with our family doctor.",
    "Nouvelle adresse : 88, chemin de l'Infirmerie, local 2 (en face de l'édifice d'oncologie).",
    "The Mood Disorders Association is using our meeting room Thursday evening.",
    # ninth round: a walk-in is no charity walk, a date no value, a card's front no forehead, a file check no
    # test, Quebec « pus » for « plus », an awareness campaign, the writer's own leave, the rooms of a building
    "Come by the walk-in in the morning, no appointment needed.",
    "Our old phone numbers will forward until Dec 31.",
    "Please send us a photo of the front of your health card.",
    "Your account check came back positive, all info up to date.",
    "J'ai pus de formulaires, je vous en imprime demain.",
    "L'équipe porte du mauve vendredi pour sensibiliser à l'épilepsie.",
    "Message du Dr Roy : je serai absent pour une opération jusqu'en mai.",
    "The cafeteria next to Oncology is closed for renovations until the 30th.",
    # ninth round: an entrance's wheelchair and a pass taken are no aid and no dose
    "Our entrance is wheelchair accessible and there is a ramp at the side door.",
    "Take one of our new parking passes instead of two tickets.",
]


@pytest.mark.parametrize(("family", "lang", "text"), [(f, lang, t) for f, rows in POSITIVES.items() for lang, t in rows])
def test_context_family_finds_clinical_talk_without_a_clinical_name(
    detector: ClinicalDetector, family: str, lang: str, text: str
) -> None:
    assert family in context_kinds(detector, text), (lang, text)


def test_every_family_has_examples_in_both_languages() -> None:
    from emrcomm_content.phrasing import FAMILIES

    assert {f.name for f in FAMILIES} == set(POSITIVES)
    assert all({lang for lang, _ in rows} == {"en", "fr"} for rows in POSITIVES.values())


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_administrative_message_that_looks_clinical_is_not(detector: ClinicalDetector, text: str) -> None:
    assert detector.read(Folded.of(text)).hits == []


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_administrative_message_is_not_uncertain_either(tmp_path, text: str) -> None:  # type: ignore[no-untyped-def]
    plugin = Plugin(make_context("content", {}, tmp_path))
    codes = {f.code for f in plugin.emrcomm_inspect(Message(Request("Patient/1", "appointment-reminder", text=text), text))}
    assert not codes & {"CLINICAL_CONTENT", "CLINICAL_UNCERTAIN"}


def test_a_listed_term_wins_over_the_wording(detector: ClinicalDetector) -> None:
    [hit] = detector.read(Folded.of("Take your metformin twice a day with food.")).hits
    assert (hit.term, hit.layer) == ("metformin", "lexicon")


def test_a_routine_vaccine_names_the_vaccine_not_a_condition(detector: ClinicalDetector) -> None:
    assert detector.read(Folded.of("The tetanus-diphtheria booster is due every 10 years.")).hits == []
    assert [h.kind for h in detector.read(Folded.of("Your covid test was positive.")).hits] == ["result"]


def test_prescription_shorthand_is_matched_in_capitals_only(detector: ClinicalDetector) -> None:
    assert "infection" in context_kinds(detector, "Keflex 500 QID for 7 days")
    assert detector.read(Folded.of("Place your bid before noon")).hits == []


def _project_texts() -> list[str]:
    """Every text of the development parts, the corpora and this file (never a held-out part)."""
    files = [REPO / "benchmarks" / "data" / "clinic-messages" / name
             for name in ("dev.tsv", "dev-2.tsv", "dev-3.tsv", "dev-4.tsv", "dev-5.tsv", "dev-6.tsv", "dev-7.tsv",
                          "dev-8.tsv", "dev-9.tsv", "dev-10.tsv", "dev-11.tsv", "dev-12.tsv",
                          "dev-13.tsv")]
    files += [DATA / "dev-corpus.tsv", REPO / "tests" / "data" / "clinic-style.tsv"]
    texts = [t for _, rows in POSITIVES.items() for _, t in rows] + HARD_NEGATIVES
    for path in files:
        with path.open(encoding="utf-8", newline="") as f:
            texts += [r["text"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return texts


@pytest.mark.clockless
def test_the_keyword_gates_change_nothing_that_the_patterns_find() -> None:
    """A rule runs only on a text with one of its gate words; run every rule on every text the
    project has, and the matches are the same."""
    from emrcomm_content import phrasing

    def matches(text: str, gated: bool) -> list[tuple[tuple[int, int], str, bool]]:
        folded = Folded.of(text).text
        return sorted((p.span, p.family, p.strong) for p in phrasing.find(folded, text, gated=gated))

    texts = _project_texts()
    assert len(texts) > 6000
    differ = [t for t in texts if matches(t, True) != matches(t, False)]
    assert differ == []


def test_a_gate_names_a_word_of_every_phrase_it_opens_for() -> None:
    from emrcomm_content.phrasing import gate_keys, text_keys

    assert gate_keys("grain de beaute|lump") == {"beaute", "lump"}
    assert gate_keys("allerg*|#") == {"alle*", "#"}
    assert {"beaute", "alle*", "#"} <= text_keys("le grain de beaute, allergies 2 fois")


@pytest.mark.parametrize("text", [
    "Your referral to the Community Mental Health Centre was accepted.",
    "Votre demande au Centre de santé mentale communautaire est acceptée.",
])
def test_a_place_named_in_a_message_to_the_patient_still_counts(detector: ClinicalDetector, text: str) -> None:
    """A centre's name says nothing about the patient in an announcement ("has moved"), and
    something when the message ties the patient to it."""
    assert detector.read(Folded.of(text)).hits
