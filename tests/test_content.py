"""The content inspector reports facts (severity info) with the span of text that triggered them."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from emrcomm import ConfigError
from emrcomm.model import Message, Request, Severity
from emrcomm.testing import TEST_CLINIC, make_context
from emrcomm_content import Plugin, document, mask


@pytest.fixture
def content(tmp_path):
    return Plugin(make_context("content", {}, tmp_path))


def make_plugin(tmp_path, settings=None, **kw):
    return Plugin(make_context("content", settings or {}, tmp_path, **kw))


def inspect(plugin, text, category="clinical", subject=None):
    return plugin.emrcomm_inspect(Message(Request("Patient/1", category), text, subject=subject))


def found(plugin, text, code="CLINICAL_CONTENT", **kw):
    """The text of every span reported with ``code``."""
    message_text = text if kw.get("subject") is None else text + "\n" + kw["subject"]
    return [message_text[f.span[0] : f.span[1]] for f in inspect(plugin, text, **kw) if f.code == code]


# --- clinical content: terms ---------------------------------------------------------------


def test_generic_medication_name_is_clinical(content):
    assert found(content, "Take your metformin with food.") == ["metformin"]


def test_brand_medication_name_is_clinical(content):
    assert found(content, "Your Ozempic pen is ready.") == ["Ozempic"]


def test_condition_is_clinical(content):
    assert found(content, "We need to talk about your chlamydia.") == ["chlamydia"]


def test_procedure_is_clinical(content):
    assert found(content, "Your colonoscopy is on Monday.") == ["colonoscopy"]


def test_specialty_that_reveals_a_condition_is_clinical(content):
    assert found(content, "Your referral to oncology was sent.") == ["oncology"]


def test_multi_word_clinic_name_is_clinical(content):
    assert found(content, "The methadone clinic called.") == ["methadone clinic"]


def test_french_condition_is_clinical(content):
    assert found(content, "Votre grossesse se déroule bien.") == ["grossesse"]


@pytest.mark.parametrize(("text", "term"), [
    ("Le physio en rééducation périnéale a une place jeudi.", "rééducation périnéale"),
    ("Votre enfant est admissible parce qu'elle est née prématurée.", "née prématurée"),
    ("Pelvic floor physio has an opening on Thursday.", "Pelvic floor physio"),
    ("The sweat test is booked for the 12th.", "sweat test"),
])
def test_fifth_round_services_and_conditions_are_clinical(content, text, term):
    assert term in found(content, text)


@pytest.mark.parametrize(("text", "term"), [
    ("Le bêta-bloquant est à prendre chaque jour.", "bêta-bloquant"),
    ("Le beta-bloquant est à prendre chaque jour.", "beta-bloquant"),
    ("Vos bêta-bloquants sont prêts.", "bêta-bloquants"),
    ("Your betablocker is ready.", "betablocker"),
    ("Votre anti-coagulant est prêt.", "anti-coagulant"),
    ("Votre anti-dépresseur est prêt.", "anti-dépresseur"),
    ("Your anti-depressant is ready.", "anti-depressant"),
    ("Your ACE inhibitor is ready.", "ACE inhibitor"),
    ("Your anticonvulsant is ready.", "anticonvulsant"),
    ("Votre anticonvulsivant est prêt.", "anticonvulsivant"),
    ("Votre antiépileptique est prêt.", "antiépileptique"),
    ("Votre neuroleptique est prêt.", "neuroleptique"),
    ("Votre antihypertenseur est prêt.", "antihypertenseur"),
    ("Your antihypertensive is ready.", "antihypertensive"),
    ("Your anxiolytic is ready.", "anxiolytic"),
    ("Your calcium channel blocker is ready.", "calcium channel blocker"),
    ("Votre antalgique est prêt.", "antalgique"),
    ("Votre IECA est prêt.", "IECA"),
    ("Votre ISRS est prêt.", "ISRS"),
])
def test_a_drug_class_is_clinical(content, text, term):
    assert term in found(content, text)


@pytest.mark.parametrize("text", [
    "Ace the form: our ace team answers the phone.", "Le vol est en classe bêta. Bloquant la porte, le camion est parti.",
])
def test_the_words_of_a_drug_class_alone_are_not_clinical(content, text):
    assert found(content, text) == []


def test_french_multi_word_term_is_clinical(content):
    assert found(content, "Votre analyse d'urine est prévue lundi.") == ["analyse d'urine"]


def test_french_term_matches_without_its_accents(content):
    assert found(content, "Suivi du diabete de type 2") == ["diabete de type 2"]


def test_accented_text_matches_an_unaccented_term(content):
    # "acetaminophene" is listed without accents; the text has them.
    assert found(content, "Prenez de l'acétaminophène.") == ["acétaminophène"]


def test_span_is_in_the_original_text_after_folded_characters(content):
    # "œ" folds to two characters and "ß" to two: the span must still point at the original.
    text = "Cœur, Straße: votre hépatite"
    assert found(content, text) == ["hépatite"]


@pytest.mark.parametrize(("text", "term"), [
    # invisible characters inside a word: zero-width space, zero-width joiner, word joiner,
    # soft hyphen, a byte-order mark, a direction mark
    ("Your H\u200bIV test is back, please call.", "H\u200bIV"),
    ("Your bio\u200dpsy results are in.", "bio\u200dpsy"),
    ("Refill: metfor\u2060min 500 mg", "metfor\u2060min"),
    ("Your bi\u00adopsy results are in.", "bi\u00adopsy"),
    ("Votre test de gros\ufeffsesse est prêt.", "gros\ufeffsesse"),
    ("Votre test V\u200eIH est revenu.", "V\u200eIH"),
    # Cyrillic and Greek look-alikes, in a lower-case word and in an exact-case abbreviation
    ("Your bi\u043epsy results are in.", "bi\u043epsy"),
    ("Your \u041dIV test is back.", "\u041dIV"),
    ("Your H\u0406V test is back.", "H\u0406V"),
    ("Votre test V\u0399H est revenu.", "V\u0399H"),
    ("Votre ITS est trait\u0435e.", "ITS"),
    ("Votre \u0440\u0430p test est pr\u00eat.", "\u0440\u0430p test"),
    # full-width letters (NFKD)
    ("Your \uff28\uff29\uff36 test is back.", "\uff28\uff29\uff36"),
    # a trade or service mark after a brand (NFKD spells it "TM", glued to the name: "ozempictm")
    ("Refill your Ozempic\u2122 pen.", "Ozempic"),
    ("Votre Lantus\u2122 est pr\u00eat.", "Lantus"),
    ("Your Ozempic\u2120pen is ready.", "Ozempic"),
    # the same mark in superscript letters ("ᵀᴹ", "ˢᴹ"), which NFKD spells "TM" glued to the name
    ("Refill your Ozempic\u1d40\u1d39 pen today.", "Ozempic"),
    ("Refill your Ozempic\u02e2\u1d39pen today.", "Ozempic"),
    # the mark written out in capitals, glued to the name
    ("Your OzempicTM refill is ready.", "Ozempic"),
    ("Votre LantusMD est pr\u00eate.", "Lantus"),
    # small capitals, which NFKD leaves as they are, in a word and in an exact-case abbreviation
    ("Refill your O\u1d22empic pen", "O\u1d22empic"),
    ("Your b\u026a\u1d0fpsy results are in.", "b\u026a\u1d0fpsy"),
    ("Your \u029c\u026a\u1d20 is back.", "\u029c\u026a\u1d20"),
    # superscript and bold capitals: NFKD spells them as capitals, which were not case-folded
    ("Your \u1d34\u1d35\u2c7d is back.", "\u1d34\u1d35\u2c7d"),
    ("Your \U0001d407\U0001d408\U0001d415 test is back.", "\U0001d407\U0001d408\U0001d415"),
    ("Your \U0001f137\U0001f138\U0001f145 test is back.", "\U0001f137\U0001f138\U0001f145"),
    # negative circled capitals, which NFKD leaves as they are
    ("Your \U0001f157\U0001f158\U0001f165 test is back.", "\U0001f157\U0001f158\U0001f165"),
    # parenthesised letters, which NFKD spells with their parentheses, and regional-indicator
    # letters, which it leaves; spaced apart as an acronym, like circled letters
    ("Your \u24a3\u24a4\u24b1 is back.", "\u24a3\u24a4\u24b1"),
    ("Your \u249d\u24a4\u24aa\u24ab\u24ae\u24b4 results are in.", "\u249d\u24a4\u24aa\u24ab\u24ae\u24b4"),
    ("Your \U0001f1ed\U0001f1ee\U0001f1fb is back.", "\U0001f1ed\U0001f1ee\U0001f1fb"),
    ("Your \U0001f1ed \U0001f1ee \U0001f1fb is back.", "\U0001f1ed \U0001f1ee \U0001f1fb"),
    ("Your \u24a3 \u24a4 \u24b1 is back.", "\u24a3 \u24a4 \u24b1"),
    ("Your \u24bd \u24be \u24cb is back.", "\u24bd \u24be \u24cb"),
    ("Your \U0001f137 \U0001f138 \U0001f145 is back.", "\U0001f137 \U0001f138 \U0001f145"),
])
def test_invisible_characters_and_look_alike_letters_do_not_hide_a_term(content, text, term):
    assert any(term in span for span in found(content, text)), found(content, text)


def test_a_look_alike_letter_does_not_make_an_ordinary_message_clinical(content):
    assert found(content, "Your \u0430ppointment is Tuesday at 10:30 \u2764\ufe0f") == []


def test_a_trade_mark_sign_does_not_make_an_ordinary_message_clinical(content):
    assert found(content, "Book on the Riverside Clinic\u2122 app, or call Care\u2122Line.") == []
    assert found(content, "Book on the RiversideTM app, or call CareSM Line; iTM and HTM desks.") == []


@pytest.mark.parametrize("text", [
    "Book on the Riverside\u1d40\u1d39 app, or call Care\u02e2\u1d39 Line; parking \U0001f17f\ufe0f at the back.",
    # a French ordinal and title in superscript letters, a whole message in small capitals
    "Rappel : rendez-vous le 1\u1d49\u02b3 mars, M\u1d50\u1d49 Tremblay, 2\u1d49 \u00e9tage, Clinique Saint-Jean.",
    "\u029c\u026a \u026a\u1d1b\ua731 \u1d0b\u1d00\u1d1b\u1d07 \ua730\u0280\u1d0f\u1d0d \u1d1b\u029c\u1d07 "
    "\u1d04\u029f\u026a\u0274\u026a\u1d04, \ua731\u1d07\u1d07 \u028f\u1d0f\u1d1c \u1d1b\u1d1c\u1d07\ua731\u1d05\u1d00\u028f",
    "Your \U0001d41a\U0001d429\U0001d429\U0001d428\U0001d422\U0001d427\U0001d42d\U0001d426\U0001d41e\U0001d427\U0001d42d is Tuesday.",
])
def test_superscript_small_capital_and_bold_letters_do_not_make_an_ordinary_message_clinical(content, text):
    assert found(content, text) == []


@pytest.mark.parametrize(("text", "term"), [
    # an acronym written letter by letter: dotted, hyphenated, spaced
    ("Your H.I.V. test is back, please call.", "H.I.V"),
    ("Your H-I-V test is back.", "H-I-V"),
    ("Your H I V test is back.", "H I V"),
    ("Your H. I. V. results are ready.", "H. I. V"),
    ("Your H/I/V test is back.", "H/I/V"),  # slashes
    ("Your H . I . V results are ready.", "H . I . V"),  # a space before each dot
    ("Votre test V / I / H est revenu.", "V / I / H"),
    ("Your H|I|V test is back.", "H|I|V"),  # bars
    ("Votre test V | I | H est revenu.", "V | I | H"),
    ("S.T.I. screening is booked for Monday.", "S.T.I"),
    ("Your P.A.P. test is booked for Monday.", "P.A.P"),
    ("Votre test V.I.H. est revenu.", "V.I.H"),
    ("Votre dépistage d'I.T.S. est prévu mardi.", "I.T.S"),
    ("Votre test P.A.P. est prêt.", "P.A.P"),
    ("Votre test de V-I-H est négatif.", "V-I-H"),
    ("Your T.B. test is back.", "T.B"),  # two dotted capitals before a small letter: still a term
    ("Votre test de T.B. est revenu.", "T.B"),
    # an emoji between letters
    ("Your H\U0001f642IV test is back.", "H\U0001f642IV"),
    ("Your bi\U0001f642opsy results are in.", "bi\U0001f642opsy"),
    ("Votre bio\U0001f648psie est lundi.", "bio\U0001f648psie"),
    # a line break inside a word, with or without a hyphen
    ("Your HI\nV test is back.", "HI\nV"),
    ("Your biop-\nsy results are in.", "biop-\nsy"),
    ("Your biop-\r\nsy results are in.", "biop-\r\nsy"),
    ("Votre test de gros-\nsesse est prêt.", "gros-\nsesse"),
    # a word written in syllables joined by hyphens
    ("Your sy-phi-lis test is back.", "sy-phi-lis"),
    ("Refill your in-su-lin before Friday.", "in-su-lin"),
    ("Your bi-op-sy results are in.", "bi-op-sy"),
    ("Votre test de gros-ses-se est pr\u00eat.", "gros-ses-se"),
    # a line break after a short everyday word, inside a word
    ("Refill your in\nsulin before Friday.", "in\nsulin"),
    ("Votre in\nsuline est prête.", "in\nsuline"),
    ("We spoke about your an\nxiety.", "an\nxiety"),
    # digits standing for letters inside a word
    ("Your b1opsy results are in.", "b1opsy"),
    ("Your pr3gnancy test is ready.", "pr3gnancy"),
    ("Your strep test came back p0sitive.", "p0sitive"),
    ("Votre test de gr0ssesse est prêt.", "gr0ssesse"),
    ("Refill your metf0rmin before Friday.", "metf0rmin"),
    ("The methadone c1inic called.", "c1inic"),
    ("Your H1V test is back.", "H1V"),  # three characters
    ("Votre test V1H est revenu.", "V1H"),
    # a "(" for c at the start of a word that no ")" closes on its line
    ("Your (ancer follow-up is Monday.", "(ancer"),
    ("Your (hlamydia test is back.", "(hlamydia"),
    # a word split in two by a space, a hyphen or a dot, one piece no word of its own
    ("Your chlamy dia test is back.", "chlamy dia"),
    ("Your syph-ilis test is back.", "syph-ilis"),
    ("Your HI V is back.", "HI V"),
    ("Refill your in sulin today.", "in sulin"),
    ("Your chlamy.dia test is back.", "chlamy.dia"),
    # a number glued before an acronym
    ("Your 2HIV test is back.", "HIV"),
    ("Your 1STI screening is Monday.", "STI"),
    # a digit for the first letter of a word of four letters or more after it
    ("Refill your 1nsulin before Friday.", "1nsulin"),
    ("Your 0besity clinic visit is Monday.", "0besity"),
    ("Your 3czema cream is ready.", "3czema"),
    ("Votre 1nsuline est pr\u00eate.", "1nsuline"),
    # signs standing for letters inside a word
    ("Your b!opsy results are in.", "b!opsy"),
    ("Your b|opsy results are in.", "b|opsy"),
    ("Your H!V test is back.", "H!V"),
    ("The methadone c|inic called.", "c|inic"),  # "|" read as l
    ("Refill your a$thma inhaler.", "a$thma"),
    ("Votre test de grossesse est po$itif.", "po$itif"),
    ("Your di@betes review is Monday.", "di@betes"),
    # a "$" (s), an "@" (a) or a "|" (i, or l) starting a word
    ("Your $yphilis test is back.", "$yphilis"),
    ("Your $TI test is back.", "$TI"),
    ("Your @sthma review is Monday.", "@sthma"),
    ("Your @nemia follow-up is Monday.", "@nemia"),
    ("Your |nsulin is ready.", "|nsulin"),
    ("Your |upus follow-up is Monday.", "|upus"),  # "|" read as l
    ("Votre |nsuline est pr\u00eate.", "|nsuline"),
    ("Refill your !nsulin before Friday.", "!nsulin"),  # "!" and "¡" read as i, or l
    ("Refill your \u00a1nsulin before Friday.", "\u00a1nsulin"),
    ("Your b\u00a1opsy results are in.", "b\u00a1opsy"),
    # digits and signs for letters in one word
    ("Your b!0psy results are in.", "b!0psy"),
    ("Your di@bet3s review is Monday.", "di@bet3s"),
    ("Votre test de gr0$$esse est pr\u00eat.", "gr0$$esse"),
    ("Your $yph1lis test is back.", "$yph1lis"),
    # "\u20ac" for e inside a word, "+" for t at its start
    ("Your di@b\u20actes review is Monday.", "di@b\u20actes"),
    ("Your +estosterone is ready.", "+estosterone"),
    ("Votre +estost\u00e9rone est pr\u00eate.", "+estost\u00e9rone"),
    # a disguised word glued by a "!" to the word before it
    ("That was great!b!opsy results, call us.", "b!opsy"),
    ("C'est fait!gr0$$esse confirm\u00e9e.", "gr0$$esse"),
    # i written with one sign and l with another in one word
    ("The methadone c|in!c called.", "c|in!c"),
    ("Refill your !nsu|in before Friday.", "!nsu|in"),
    ("The methadone c1in!c called.", "c1in!c"),
    # a digit for i beside a sign for l: the short word after the sign ("is") is a piece of the word
    ("Your syph1|is test is back.", "syph1|is"),
    ("Your syph1!is test is back.", "syph1!is"),
])
def test_a_word_written_apart_is_read_as_one(content, text, term):
    assert any(term in span for span in found(content, text)), found(content, text)


@pytest.mark.parametrize("text", [
    "Dr. H. I. Vance will see you on Monday.",
    "Please see J. R. R. Tolkien at the front desk.",
    "Suite 4 B, 1 I V Street, Ottawa.",
    "Your appointment is at 10:30 a.m. on Tuesday. Call 613-555-0123 if you need to change it.",
    "Clinic hours 8 A.M. to 4 P.M./Heures 8 h à 16 h.",
    "Rendez-vous le 4 mai à 10 h 30, c.-à-d. jeudi. Le stationnement est au niveau B.",
    "Y a-t-il encore de la place? Il y a une place à 9 h.",
    "ETA 10 min, park in lot B. St. John's Clinic, 12 St. John's Rd.",
    "Invoice INV-20394 / ref AB13CD: $45.00 paid. P.S. bring your card. N.B. no parking.",
    "Our new address: 1200 Bank St, Unit 4B, Ottawa ON K1A 0B1, C.P. 442.",
    "Your forms are at the desk, Dr. A. B. Singh signed them at 9 a.m.",
    # two dotted capitals before a capitalised word: a person's initials (AA, TB, CT are terms)
    "Please contact A.A. Singh at the front desk.", "Your form was signed by T.B. Jones.",
    "Dr. C.T. Lee will see you Tuesday.", "Appelez la Dre M.-S. \u00c9mond.",
    "Thanks\U0001f642see you Monday!",
    "Hi Ana\nYour appointment is confirmed.\nSee you soon",
    "Please bring your health card\nand a list of questions.",
    "Room 3B, Apt4B or Flat 5C; your code is x7Hk3pQ.",
    # a postal code's first half reads like "H1V" and is left as written; so are room numbers
    "Our new office: 200 King St W, Toronto ON M5V 2T6, room C12.", "Bureau au 5000 rue Sherbrooke, H1V 2T6.",
    "Send it to H1V-2T6 or T0C 1A0; your slip is the T4A.",
    # a digit before a short word, a count or a capitalised name is a number
    "Your 1st visit is on the 2nd at 3pm, or 10am; suite 1B, 3rd floor, H1V 3K2. Take 4x a day for 5days.",
    "Le 1er mai, 1\u00e8re visite au 3e \u00e9tage, 4i\u00e8me porte, 5h30. Use 1Password or 7Eleven.",
    "Book 4ALL, 2DAY or 4WARD; take 5HTP; call 1CPR, the 24HR desk or room A2HIV at 10AM.",
    "Park in the (lot B) lot, see (below) or the (Hours) page; (c) Riverside 2024.",
    # two words that glued would name something, each a word of its own, stay two words
    "The gym has a septic tank and was redone in fusion style; meet her pes at the desk.",
    # two letters with a slash are a short form; a sentence may end with a spaced dot
    "Parking: N/A. Mail it c/o the front desk, w/o the envelope. Plan A . B is the backup.",
    "See https://portal.riverside.example/a/b/c/forms or the M/F/X box on the form.",
    # "!" between sentences, "|" between menu items, "@" in addresses, "$" in prices
    "Thanks!See you Monday!so glad you came!Bye", "Home|About|Contact us|Hours",
    "Email ana.b@riverside.example or clinic@riverside.example.", "Invoice: CA$45 paid, US$20 due.",
    # "$" before a sum, "@" before a handle or a time, "|" between items or before a capitalised one
    "The fee is $40 today; parking $5.50, or $ 10 a day. Save $$$ with direct billing.",
    "Follow us @clinic or @RiversideClinic. Meet @ 10:30 at the desk, or @home by video.",
    "Hours | Parking | Contact us. Home |About |Contact",
    "Plan A | B. Answer Y|N, or Q|A for questions.",  # two letters and a bar are a short form
    # "\u20ac" in a price, "+" in a number, a sum or a code, or before a capital
    "Prix : 5\u20ac50, 10\u20ac/mois. Call +1 613 555 0123, +Info. C++ and A+B, +/- 2 days.",
    # hyphenated words and names are no syllables: a piece of five letters or more, or two pieces
    "Your follow-up is face-to-face, one-on-one, day-to-day; our e-mail is up-to-date.",
    "Y a-t-il une place? C'est-\u00e0-dire vis-\u00e0-vis du CLSC Saint-Jean, \u00e0 Ste-Anne-de-Bellevue.",
    "Jean-Guy-Marc will sign; pay-as-you-go, well-to-do, jack-in-the-box, mother-in-law suite.",
    # "!" and "¡" opening a shout, a capitalised word or an everyday word
    "!!!Reminder: your visit is Monday. !Important: bring your card. \u00a1Hola! Bravo !vous \u00eates inscrit.",
    # codes and sums with signs, and a run of exclamation marks, are no word
    "Invoice 1|2, room B3|B4, total $1|$2. WOW!!!GREAT news!!",
    "Merci! \u00c0 bient\u00f4t\U0001f44b",
    # words glued by a line break or an emoji are two words next to a short everyday word or a capital
    "We left you a voicemail. Please call\nus back.", "Your phone visit\U0001f642is at 11.",
    "Starting\nApril 1, our clinic moves.", "Votre rdv de cet\napr\u00e8s-midi se fera par t\u00e9l\u00e9phone.",
    # a short everyday word and a word of its own after a line break are two words, however they
    # read glued ("aseptic", "infusion")
    "The gym has a\nseptic tank.", "The lobby was redone in\nfusion style.", "Please come in\nperson to sign.",
])
def test_a_word_written_apart_reading_adds_nothing_to_ordinary_messages(content, text):
    assert found(content, text) == []


def test_a_word_glued_to_the_next_by_an_emoji_is_still_read_as_written(content):
    # dropping the emoji glues "biopsydone"; the text as written is read too, so "biopsy" counts
    assert found(content, "Your biopsy\u2705done, see you Monday") == ["biopsy"]


@pytest.mark.parametrize(("text", "squeezed"), [
    ("Your H.I.V. test", ["Your HIV test"]),
    ("H. I. V.", ["HIV"]),
    ("H/I/V, H|I|V and H . I . V", ["HIV, HIV and HIV"]),
    ("T.B. clinic", ["TB clinic"]),
    ("HI\r\nV", ["HIV"]),
    ("bi\U0001f642\u200d\U0001f642opsy", ["biopsy"]),
    ("sy-phi-lis", ["syphilis"]),
    ("b1opsy", ["biopsy", "blopsy"]),
    ("P0SITIVE", ["POSITIVE"]),
    ("b!opsy", ["biopsy", "blopsy"]),
    ("a$thma", ["asthma"]),
    ("$TI", ["STI"]),
    ("@sthma", ["asthma"]),
    ("|nsulin", ["insulin", "lnsulin"]),
    ("\u00a1nsulin", ["insulin", "lnsulin"]),
    ("1nsulin", ["insulin", "lnsulin"]),
    ("0BESITY", ["OBESITY"]),
    ("b!0psy", ["biopsy", "blopsy"]),
    ("di@bet3s", ["diabetes"]),
    ("+estosterone di@b\u20actes", ["testosterone diabetes"]),
    ("c|in!c", ["ciinic", "clinlc", "clinic", "ciinlc"]),  # each sign read as i or l throughout
])
def test_the_squeezed_form_of_a_text(text, squeezed):
    from emrcomm_content import squeeze

    forms = squeeze.readings(text)
    assert [f.text for f in forms] == squeezed
    for form in forms:  # every character of the squeezed form comes from the original
        assert all(text[i].lower() == c.lower() or text[i].isdigit() or text[i] in "!\u00a1|@$\u20ac+"
                   for i, c in zip(form.index, form.text))


def test_a_word_cut_after_a_short_everyday_word_is_looked_up_glued():
    from emrcomm_content import squeeze

    text = "Refill your in\nsulin, call\nus, see the\nClinic or come in\nperson"
    assert [(text[c.span[0] : c.span[1]], c.word, c.piece) for c in squeeze.cuts(text)] == [
        ("in\nsulin", "insulin", "sulin"), ("in\nperson", "inperson", "person")]


def test_spans_answer_an_overlap_as_comparing_each_with_each_does():
    from emrcomm_content.squeeze import Spans

    spans = [(12, 14), (0, 3), (2, 10), (20, 21)]
    for span in [(3, 4), (9, 10), (10, 12), (11, 13), (14, 20), (13, 22), (21, 30), (0, 1)]:
        assert Spans(spans).overlap(span) == any(lo < span[1] and span[0] < hi for lo, hi in spans), span


def test_a_disguised_word_glued_by_an_exclamation_mark_is_looked_up_alone():
    from emrcomm_content import squeeze

    text = "great!b!opsy, Hi!b!opsy, great!news, 10!b!opsy"  # a word of three letters or more before
    assert [(text[c.span[0] : c.span[1]], c.word) for c in squeeze.glued(text)] == [
        ("b!opsy", "biopsy"), ("b!opsy", "blopsy")]


@pytest.mark.parametrize("text", [
    "Your appointment is Tuesday at 10:30.", "Call 613-555-0123 or 1-800-555-0199.", "RDV à 10 h 30.",
    "at 9 a.m. or 3 p.m.", "y a-t-il", "N/A, c/o, w/o, a 12 y/o", "/a/b/c", "ana@riverside.example", "first.last@x.ca", "Hi!See you", "Menu|Contact", "c.-à-d.", "A1C B12 T2DM CD4 H1N1 HbA1 G6PD", "K1A 0B1", "M5V 2T6", "H1V-2T6", "10h30 4B 3e 1er Q12H",
    "biopsy\u2705 done", "Merci\u00a0!", "J'ai hâte\U0001f642",
    "$40", "$ 10", "$5.50", "CA$45", "@ 10:30", "A | B", "Home |About", "ana@b.ca",
    "B3|B4", "x$1a", "WOW!!!GREAT",
    "!!!Reminder", "!Important", "\u00a1Hola", "Bravo !vous",
    "Y|N", "Q | A", "great!so! Thanks!!so great",
    "5\u20ac50", "10\u20ac/mois", "+1 613", "+Info", "C++", "A+B", "+/-",
    "follow-up", "Saint-Jean", "Ste-Anne-de-Bellevue", "Notre-Dame-de-Gr\u00e2ce", "mother-in-law", "2024-05-01", "AB-12-CD",
    "1st 2nd 3pm 10am 4x 1B 3rd 1er 3e", "H1V 3K2", "5days 4weeks 1month 4i\u00e8me", "1Password 7Eleven", "$1month #1stop A-1bcde",
])
def test_a_text_with_nothing_written_apart_has_no_squeezed_form(text):
    from emrcomm_content import squeeze

    assert squeeze.readings(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("Your A1C, B12 and CD4 results are back.", "A1C"),
    ("T2DM review on Monday at 10.", "T2DM"),
])
def test_real_codes_with_digits_still_match(content, text, expected):
    assert any(expected in span for span in found(content, text))


@pytest.mark.parametrize("text", [
    "T2DM review on Monday at 10.", "Your T1D supplies are ready.", "DM2 follow-up booked.",
    "Suivi de votre DB2 mardi.", "Votre DT2 est bien contrôlé.",
])
def test_diabetes_abbreviations_are_clinical(content, text):
    assert found(content, text)


@pytest.mark.parametrize("text", ["Your psych eval is booked for Friday.", "The psych consult is moved to 3pm."])
def test_a_psychiatric_assessment_by_its_short_name_is_clinical(content, text):
    assert found(content, text)


def test_term_matches_whatever_its_case(content):
    assert found(content, "METFORMIN refill") == ["METFORMIN"]


def test_plural_of_a_term_matches(content):
    assert found(content, "Bring your inhalers.") == ["inhalers"]


def test_term_inside_a_longer_word_does_not_match(content):
    assert found(content, "insulinX is a code name") == []


def test_abbreviation_does_not_match_inside_a_word(content):
    assert found(content, "Lasagna tonight?") == []


def test_capitalised_abbreviation_matches_in_capitals(content):
    assert found(content, "Take one ASA daily.") == ["ASA"]


def test_capitalised_abbreviation_does_not_match_in_lower_case(content):
    assert found(content, "Ask Asa about it, asap.") == []


def test_abbreviation_does_not_match_in_shouted_text(content):
    assert found(content, "HI ITS KATE CAN U GIVE ME A RING") == []


def test_longest_term_wins_where_terms_overlap(content):
    assert found(content, "Breast cancer screening") == ["Breast cancer"]


def test_drug_stem_marks_an_unlisted_drug(content):
    assert found(content, "Continue the candesartan.") == ["candesartan"]  # listed: sanity
    assert found(content, "Start olmesartanil tomorrow") == []  # not a word form of a drug
    assert found(content, "Start fimasartan tomorrow") == ["fimasartan"]  # unlisted, -sartan


def test_disease_suffix_marks_an_unlisted_condition(content):
    assert found(content, "Signs of tendonitis") == ["tendonitis"]


def test_ordinary_words_sharing_a_suffix_are_not_clinical(content):
    assert found(content, "Thanks for your sympathy and empathy in April, lololol") == []


# --- clinical content: context rules ----------------------------------------------------


def test_result_word_alone_is_not_clinical(content):
    assert found(content, "Stay positive!") == []


def test_result_word_next_to_a_test_word_is_clinical(content):
    assert found(content, "Your results are abnormal.") == ["results are abnormal"]


def test_test_word_without_a_result_is_not_clinical(content):
    assert found(content, "Your results are ready to view in the portal.") == []


def test_result_word_far_from_a_test_word_is_not_clinical(content):
    assert found(content, "The test is at noon, and we hope you stay positive") == []


def test_result_word_in_another_sentence_is_not_joined(content):
    assert found(content, "Good luck on the test. Stay positive!") == []


def test_french_result_next_to_test_word_is_clinical(content):
    assert found(content, "Résultat anormal, rappelez-nous") == ["Résultat anormal"]


def test_high_or_low_joins_a_named_test(content):
    assert found(content, "Your TSH is low") == ["TSH is low"]


def test_high_or_low_does_not_make_a_generic_test_word_clinical(content):
    assert found(content, "Your test scores are low, and results were high") == []


def test_test_with_value_is_one_span(content):
    assert found(content, "Your A1C 8.1 last week") == ["A1C 8.1"]


def test_condition_with_result_word_is_one_span(content):
    assert found(content, "strep positive") == ["strep positive"]


def test_dose_is_clinical(content):
    assert found(content, "Take 2.5 mg at night") == ["2.5 mg"]


def test_dose_in_units_is_clinical(content):
    assert found(content, "Inject 10 units before supper") == ["10 units"]


def test_mobile_network_is_not_a_dose(content):
    assert found(content, "My 4g is slow, call me") == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I have leg pain at night", ["leg pain"]),
        ("Any pain in my lower back?", ["pain in my lower back"]),
        ("Trouble with swallowing problems lately", ["swallowing problems"]),
        ("Douleur au genou depuis lundi", ["Douleur au genou"]),
        ("J'ai mal à la tête", ["mal à la tête"]),
    ],
)
def test_symptom_next_to_a_part_of_the_body_is_clinical(content, text, expected):
    assert found(content, text) == expected


@pytest.mark.parametrize(
    "text",
    ["The pain came back, so I'm back in bed", "No problem, back at 5", "Back to school Monday",
     "Pas mal, on se voit au dos de la salle"],
)
def test_symptom_or_body_word_alone_is_not_clinical(content, text):
    assert found(content, text) == []


def test_lower_case_hiv_is_clinical(content):
    assert found(content, "am i at risk of hiv?") == ["hiv"]


@pytest.mark.parametrize("code", ["NDC 0869-0871-43", "NDC# 0115-0672-50", "DIN 02242963"])
def test_drug_product_code_is_clinical(content, code):
    assert found(content, f"About {code}, is it safe?") == [code]


def test_number_without_a_drug_code_label_is_not_clinical(content):
    assert found(content, "Call 0869-0871-43 or DIN at 5") == []


@pytest.mark.parametrize("text", ["Your appointment with Dr. Parkinson is Monday.", "Rendez-vous avec la Dre Amelia Morin.",
                                  "Dr Heather Camila will call"])
def test_name_after_a_title_is_not_clinical(content, text):
    assert found(content, text) == []


def test_title_does_not_hide_the_words_after_the_name(content):
    assert found(content, "Dr. Payne: your colonoscopy is booked") == ["colonoscopy"]


@pytest.mark.parametrize(
    "text",
    [
        "See you tomorrow at 10:30 at Riverside Family Health",
        "stay positive!",
        "Lasagna tonight?",
        "Your appointment with Dr. Payne is on Tuesday. Please arrive 10 minutes early.",
        "Reminder: follow-up visit at the clinic, 2nd floor.",
        "Votre rendez-vous est mardi à 10 h 30. Apportez votre carte d'assurance maladie.",
        "Your prescription is ready for pickup at the pharmacy.",
    ],
)
def test_ordinary_clinic_message_has_no_findings(content, text):
    assert inspect(content, text) == []


# --- settings -------------------------------------------------------------------------------


def test_allow_list_removes_matches_inside_the_phrase(tmp_path):
    text = "our office is at 12 parkinson avenue, come by anytime."
    assert found(make_plugin(tmp_path), text) == ["parkinson"]
    assert found(make_plugin(tmp_path, {"allow": ["Parkinson Avenue"]}), text) == []


def test_a_street_written_with_capitals_is_a_place_whatever_its_name(tmp_path):
    assert found(make_plugin(tmp_path), "Our office is at 12 Parkinson Avenue.") == []
    assert found(make_plugin(tmp_path), "Le bureau est au 45, boulevard de l'Hôpital-du-Cancer.") == []


def test_allow_list_ignores_case_and_accents(tmp_path):
    plugin = make_plugin(tmp_path, {"allow": ["PARKINSON AVENUE"]})
    assert found(plugin, "12 parkinson avénue") == []


def test_allow_list_keeps_matches_outside_the_phrase(tmp_path):
    plugin = make_plugin(tmp_path, {"allow": ["Parkinson Avenue"]})
    assert found(plugin, "Parkinson Avenue clinic: your parkinson review") == ["parkinson"]


def test_extra_terms_setting_adds_clinic_terms(tmp_path):
    plugin = make_plugin(tmp_path, {"terms": ["Bayview Recovery Program"]})
    assert found(plugin, "Your Bayview Recovery Program intake is Monday") == ["Bayview Recovery Program"]


def test_unknown_lexicon_is_a_config_error_naming_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\.content\.lexicons: unknown lexicon 'icd10'.*core"):
        make_plugin(tmp_path, {"lexicons": ["icd10"]})


def test_bad_mrn_pattern_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins\.content\.mrn_patterns\[1\]: 'MRN\(' is not a valid"):
        make_plugin(tmp_path, {"mrn_patterns": [r"X\d+", "MRN("]})


def test_settings_schema_forbids_unknown_keys():
    assert Plugin.settings_schema["additionalProperties"] is False
    assert all("description" in p for p in Plugin.settings_schema["properties"].values())


# --- health identifiers ---------------------------------------------------------------------

# Ontario: Luhn over the first nine digits. For 123456789 the doubled digits (1,3,5,7,9 ->
# 2,6,10,14,18) sum as 2+6+1+5+9 = 23, the others 2+4+6+8 = 20; 43 needs 7 to reach 50.
VALID_HCN = "1234567897"
INVALID_HCN = "1234567890"


@pytest.mark.parametrize("written", [VALID_HCN, "1234 567 897", "1234-567-897", "1234 567 897 AB", "1234567897AB"])
def test_ontario_health_number_with_a_valid_check_digit_is_an_identifier(content, written):
    assert found(content, f"Card: {written} thanks", code="HEALTH_IDENTIFIER") == [written]


def test_ontario_health_number_with_a_wrong_check_digit_is_not_reported(content):
    assert found(content, f"Card: {INVALID_HCN}", code="HEALTH_IDENTIFIER") == []


def test_identifier_finding_names_its_kind(content):
    (fact,) = [f for f in inspect(content, f"HCN {VALID_HCN}") if f.code == "HEALTH_IDENTIFIER"]
    assert "Ontario health number" in fact.message


def test_clinic_phone_number_is_not_a_health_number(tmp_path):
    # 613555010 -> doubled 6,3,5,0,0 give 3+6+1+0+0 = 10, the others 1+5+5+1 = 12; 22 needs 8.
    text = "Call us at 6135550108"
    other = attrs.evolve(TEST_CLINIC, phone="+1 416 555 0100")
    assert found(make_plugin(tmp_path, clinic=other), text, code="HEALTH_IDENTIFIER") == ["6135550108"]
    ours = attrs.evolve(TEST_CLINIC, phone="+1 613 555 0108")
    assert found(make_plugin(tmp_path, clinic=ours), text, code="HEALTH_IDENTIFIER") == []


@pytest.mark.parametrize("written", ["TREM 8503 1512", "TREM85031512", "TREM 8553 1512"])
def test_ramq_number_is_an_identifier(content, written):
    assert found(content, f"RAMQ {written}", code="HEALTH_IDENTIFIER") == [written]


@pytest.mark.parametrize("written", ["trem 8503 1512", "Trem 8503 1512", "trem85031512"])
def test_ramq_number_typed_in_lower_case_is_an_identifier(content, written):
    # The card prints capitals; a receptionist copying it into a note often does not.
    assert found(content, f"Votre carte {written} est expirée", code="HEALTH_IDENTIFIER") == [written]


def test_ramq_shape_with_an_impossible_month_is_not_reported(content):
    assert found(content, "TREM 8599 1512", code="HEALTH_IDENTIFIER") == []


def test_ssn_is_an_identifier(content):
    assert found(content, "SSN 123-45-6789", code="HEALTH_IDENTIFIER") == ["123-45-6789"]


@pytest.mark.parametrize("ssn", ["000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000"])
def test_numbers_the_ssa_never_issues_are_not_ssns(content, ssn):
    assert found(content, f"ref {ssn}", code="HEALTH_IDENTIFIER") == []


@pytest.mark.parametrize(
    "written",
    ["DOB: 1985-03-15", "date of birth 03/15/1985", "née le 15 mars 1985", "Date de naissance : 15/03/1985",
     "born on March 15, 1985"],
)
def test_date_after_a_birth_label_is_an_identifier(content, written):
    assert found(content, f"Patient {written}.", code="HEALTH_IDENTIFIER") == [written]


def test_date_without_a_birth_label_is_not_an_identifier(content):
    assert found(content, "Your appointment is on 2026-11-24.", code="HEALTH_IDENTIFIER") == []


def test_configured_mrn_pattern_is_an_identifier(tmp_path):
    plugin = make_plugin(tmp_path, {"mrn_patterns": [r"\bMRN[- ]?\d{6}\b"]})
    assert found(plugin, "Chart MRN-123456 updated", code="HEALTH_IDENTIFIER") == ["MRN-123456"]


# --- links ----------------------------------------------------------------------------------


def codes_for(plugin, text, **kw):
    return sorted(f.code for f in inspect(plugin, text, **kw))


def test_https_link_to_the_portal_is_clean(content):
    assert codes_for(content, "See https://portal.riverside.example/m/1") == []


def test_link_to_a_subdomain_of_an_allowed_domain_is_allowed(content):
    assert codes_for(content, "See https://eu.portal.riverside.example/m/1") == []


def test_http_link_is_not_https(content):
    assert found(content, "See http://portal.riverside.example/m/1.", code="LINK_NOT_HTTPS") == [
        "http://portal.riverside.example/m/1"
    ]


def test_link_outside_the_allowed_domains_is_reported(content):
    assert found(content, "See https://example.com/x", code="LINK_DOMAIN_NOT_ALLOWED") == ["https://example.com/x"]


def test_lookalike_domain_is_not_allowed(content):
    assert found(content, "See https://portal.riverside.example.evil.com/", code="LINK_DOMAIN_NOT_ALLOWED") == [
        "https://portal.riverside.example.evil.com/"
    ]


def test_shortener_is_reported(content):
    assert found(content, "Book at https://bit.ly/3abc", code="LINK_SHORTENER") == ["https://bit.ly/3abc"]


def test_bare_shortener_link_is_a_link_and_not_https(content):
    assert codes_for(content, "Book at bit.ly/3abc") == ["LINK_DOMAIN_NOT_ALLOWED", "LINK_NOT_HTTPS", "LINK_SHORTENER"]


def test_bare_www_link_is_not_https(content):
    assert found(content, "Visit www.example.org today", code="LINK_NOT_HTTPS") == ["www.example.org"]


def test_email_address_is_not_a_link(content):
    assert codes_for(content, "Write to info@riverside.example or dr.smith@example.com") == []


def test_abbreviations_with_dots_are_not_links(content):
    assert codes_for(content, "Dr.Payne sees you at 10 a.m. e.g. tomorrow.See you") == []


def test_survey_word_in_the_url_is_a_survey_link(content):
    assert found(content, "https://portal.riverside.example/survey/12", code="SURVEY_LINK_SMS") == [
        "https://portal.riverside.example/survey/12"
    ]


def test_survey_word_near_the_link_is_a_survey_link(content):
    assert codes_for(content, "Répondez à notre sondage : https://portal.riverside.example/s/12") == ["SURVEY_LINK_SMS"]


def test_every_link_of_a_questionnaire_is_a_survey_link(content):
    assert codes_for(content, "https://portal.riverside.example/q/12", category="questionnaire") == ["SURVEY_LINK_SMS"]


# --- promotion and prohibited content -------------------------------------------------------


@pytest.mark.parametrize("phrase", ["20% off", "Book now and save", "newsletter", "Happy birthday", "Bonne fête",
                                    "30 % de rabais", "infolettre"])
def test_promotional_language_is_reported(content, phrase):
    assert found(content, f"Riverside: {phrase}!", code="PROMOTIONAL_LANGUAGE") == [phrase]


def test_french_balance_is_not_a_sale(content):
    assert found(content, "Votre solde est de 40 $.", code="PROMOTIONAL_LANGUAGE") == []


@pytest.mark.parametrize("phrase", ["cannabis", "beer", "vaping", "collection agency", "diet pills", "firearms"])
def test_prohibited_sms_content_is_reported(content, phrase):
    assert found(content, f"About the {phrase} today", code="PROHIBITED_SMS_CONTENT") == [phrase]


# --- subject, severity, plugin name --------------------------------------------------------


def test_subject_findings_are_spans_after_the_text(content):
    message = Message(Request("Patient/1", "clinical"), "Hello", subject="Your HIV test")
    (fact,) = content.emrcomm_inspect(message)
    assert fact.span[0] > len(message.text)
    assert document(message)[fact.span[0] : fact.span[1]] == "HIV test"


def test_text_spans_index_the_text_itself_when_there_is_a_subject(content):
    message = Message(Request("Patient/1", "clinical"), "Your biopsy", subject="Hello")
    (fact,) = content.emrcomm_inspect(message)
    assert message.text[fact.span[0] : fact.span[1]] == "biopsy"


def test_facts_are_info_and_name_the_plugin(tmp_path):
    plugin = Plugin(make_context("my-content", {}, tmp_path))
    facts = inspect(plugin, "metformin http://x.example.com TREM 8503 1512 cannabis 20% off")
    assert {f.code for f in facts} >= {"CLINICAL_CONTENT", "LINK_NOT_HTTPS", "HEALTH_IDENTIFIER",
                                      "PROHIBITED_SMS_CONTENT", "PROMOTIONAL_LANGUAGE"}
    assert {f.severity for f in facts} == {Severity.INFO}
    assert {f.plugin for f in facts} == {"my-content"}
    assert all(f.channel is None for f in facts)


def test_finding_message_quotes_the_clinical_term_masked(content):
    # Findings are stored in clear with the record: the word itself must not be.
    (fact,) = inspect(content, "Your Ozempic pen")
    assert '"O******"' in fact.message and "« O****** »" in fact.message_fr
    assert "Ozempic" not in fact.message + fact.message_fr


def test_masked_term_keeps_word_breaks_and_first_letter_only():
    assert mask("results are abnormal") == "r****** *** ********"
    assert mask("A1C 8.1") == "A** *.*"


def test_promotional_finding_quotes_the_term_in_clear(content):
    (fact,) = inspect(content, "Riverside newsletter")
    assert '"newsletter"' in fact.message


def test_a_misspelt_drug_after_a_french_elision_is_found(tmp_path: Path) -> None:
    """Tenth round: the one-edit drug names read a word after « d' », « l' », « qu' » too."""
    from emrcomm_content.folding import Folded

    detector = Plugin(make_context("content", {}, tmp_path)).clinical
    for text in ("Continuez l'amoxiciline jusqu'à la fin.", "Il vous reste une semaine d'isoniazide."):
        assert [h.kind for h in detector.read(Folded.of(text)).hits] == ["medication"], text


def test_back_pain_is_the_back_of_the_body_and_come_back_is_not(tmp_path: Path) -> None:
    """Eleventh round: "back" is no evidence in its everyday sense, and still names the body beside a symptom."""
    from emrcomm_content.folding import Folded

    detector = Plugin(make_context("content", {}, tmp_path)).clinical
    assert [h.kind for h in detector.read(Folded.of("Back pain: take the naproxen twice a day.")).hits] == [
        "condition", "medication"]
    reading = detector.read(Folded.of("Power's back and we're running on time, come back anytime."))
    assert reading.hits == [] and not any(name == "kind:body" for _, name in reading.evidence)


# --- the last documents' findings, kept -----------------------------------------------------


def test_a_repeated_document_gets_the_findings_a_fresh_inspector_gives(content, tmp_path):
    words = "Karen, your appointment is Tue at 9:20 a.m. Take your metformin. Fill in https://forms.example.org/q"
    first = inspect(content, words, category="appointment-reminder")
    again = inspect(content, words, category="appointment-reminder")
    fresh = inspect(make_plugin(tmp_path / "fresh"), words, category="appointment-reminder")
    assert {f.code for f in first} >= {"CLINICAL_CONTENT", "LINK_DOMAIN_NOT_ALLOWED"}
    assert again == first == fresh
    assert content._memo.cache_info().hits == 1
    again.clear()  # a caller's list is its own: the kept findings are not touched
    assert inspect(content, words, category="appointment-reminder") == fresh
    content.close()  # the host closing: the words are forgotten
    assert content._memo.cache_info().currsize == 0


def test_the_same_words_in_another_category_or_typed_by_hand_are_read_again(content):
    words = "Directions to the clinic: https://maps.example.org/riverside"
    reminder = {f.code for f in inspect(content, words, category="appointment-reminder")}
    questionnaire = {f.code for f in inspect(content, words, category="questionnaire")}
    assert "SURVEY_LINK_SMS" not in reminder and "SURVEY_LINK_SMS" in questionnaire
    unsure = "Someone will call you tonight about the next step, the doctor reviewed everything."
    typed = Message(Request("Patient/1", "appointment-reminder"), unsure)
    rendered = Message(Request("Patient/1", "appointment-reminder", template="notice"), unsure, template="notice")
    assert "CLINICAL_UNCERTAIN" in {f.code for f in content.emrcomm_inspect(typed)}
    assert "CLINICAL_UNCERTAIN" not in {f.code for f in content.emrcomm_inspect(rendered)}


def test_a_long_document_is_inspected_each_time_and_not_kept(content):
    from emrcomm_content import MEMO_CHARS

    words = ("Your visit is confirmed. " * (MEMO_CHARS // 20))[: MEMO_CHARS + 50]
    assert inspect(content, words) == inspect(content, words)
    assert content._memo.cache_info().currsize == 0
