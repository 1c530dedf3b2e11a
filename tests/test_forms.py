"""An email carries no SMS keyword instructions (emrcomm.forms): "Reply STOP" means nothing in an
email, whose opt-out is its one-click unsubscribe link."""

from __future__ import annotations

import pytest

from emrcomm.forms import for_email, is_sms_instruction
from emrcomm.testing import TEST_CLINIC, make_context, make_recipient
from emrcomm_templates import Plugin


@pytest.mark.parametrize("sentence", [
    "Reply STOP to opt out.", "Répondez ARRET pour vous désabonner.", "ARRET pour annuler",
    "To stop these messages, reply STOP.", "Reply STOP to opt out. Reply HELP for help.",
    "Répondez ARRET pour vous désabonner, AIDE pour de l'aide.",
])
def test_keyword_instructions_are_recognised(sentence: str) -> None:
    assert is_sms_instruction(sentence)
    assert for_email(f"Riverside: see you Tuesday.\n{sentence}") == "Riverside: see you Tuesday."


@pytest.mark.parametrize("text", [
    "Please stop by the front desk.", "STOP taking it before the test, as discussed.",
    "Reply to this email with questions.", "Arrêt de travail : formulaire à remplir.",
])
def test_other_words_stay(text: str) -> None:
    assert for_email(text) == text


def test_an_instruction_inside_a_line_goes_and_the_rest_of_the_line_stays() -> None:
    assert for_email("Riverside: your form is ready. Reply STOP to opt out.") == "Riverside: your form is ready."


@pytest.mark.parametrize(("text", "left"), [
    ("Riverside: see you Tuesday. Reply STOP to stop messages from Dr. Smith's oncology clinic.",
     "Riverside: see you Tuesday."),
    ("Riverside: see you Tuesday. Reply STOP to opt out, or visit https://portal.riverside.example/help.",
     "Riverside: see you Tuesday."),
    ("Riverside: see you Tuesday. Reply STOP to opt out, or visit https://portal.riverside.example/help. Thank you.",
     "Riverside: see you Tuesday. Thank you."),
    ("Riverside: see you Tuesday. Reply STOP to stop the 2.5 p.m. reminders from Dr. Roy. Call us to book.",
     "Riverside: see you Tuesday. Call us to book."),
    ("Riverside : à mardi. Répondez ARRET pour ne plus recevoir les messages de M. Tremblay. Merci.",
     "Riverside : à mardi. Merci."),
    ("Riverside : à mardi. Répondez ARRET pour ne plus recevoir les rappels du Dr Roy, 12 av. du Parc. Merci.",
     "Riverside : à mardi. Merci."),
])
def test_an_instruction_goes_to_the_end_of_its_sentence_not_to_its_first_dot(text: str, left: str) -> None:
    assert for_email(text) == left


@pytest.mark.parametrize(("text", "left"), [
    ("Riverside: to stop these messages, reply STOP. Your appointment is Tuesday at 10:30.",
     "Riverside: Your appointment is Tuesday at 10:30."),
    ("Riverside: text STOP. See you Tuesday at 10:30.", "Riverside: See you Tuesday at 10:30."),
    ("Riverside : pour ne plus recevoir ces messages, répondez ARRET. À mardi, 10 h 30.",
     "Riverside : À mardi, 10 h 30."),
])
def test_a_keyword_that_ends_its_sentence_takes_only_that_sentence(text: str, left: str) -> None:
    # The dot right after the keyword ends the instruction: the next sentence is the message.
    assert for_email(text) == left


@pytest.mark.parametrize(("text", "left"), [
    ("Riverside: see you Tuesday. To opt out, reply STOP.", "Riverside: see you Tuesday."),
    ("Riverside: see you Tuesday. If you no longer want these texts, reply STOP. Thank you.",
     "Riverside: see you Tuesday. Thank you."),
    ("Riverside: to opt out, reply STOP. See you Tuesday.", "Riverside: See you Tuesday."),
    ("Riverside : à mardi. Pour vous désabonner, répondez ARRET. Merci.", "Riverside : à mardi. Merci."),
    ("Riverside : à mardi. Si vous ne voulez plus de messages, répondez ARRET.", "Riverside : à mardi."),
])
def test_a_clause_that_leads_into_an_instruction_goes_with_it(text: str, left: str) -> None:
    # "To opt out," starts the instruction's sentence (after a sentence's end or the sender's
    # colon): left alone, it would read as half a sentence.
    assert for_email(text) == left


@pytest.mark.parametrize(("text", "left"), [
    ("See you Tuesday at 10:30.\nRiverside Family Health: to opt out, reply STOP.", "See you Tuesday at 10:30."),
    ("See you Tuesday at 10:30.\nSt. Mary's Clinic: reply STOP to opt out.", "See you Tuesday at 10:30."),
    ("À mardi, 10 h 30.\nClinique de l'Île-Perrot : pour vous désabonner, répondez ARRET.", "À mardi, 10 h 30."),
])
def test_a_line_left_only_its_sender_goes(text: str, left: str) -> None:
    # "Riverside Family Health:" alone introduces nothing; the email names its sender anyway.
    assert for_email(text) == left


@pytest.mark.parametrize(("text", "left"), [
    ("Riverside: see you Tuesday.\nYour results are in: reply STOP to opt out.",
     "Riverside: see you Tuesday.\nYour results are in:"),
    ("Riverside Family Health:\nSee you Tuesday. Reply STOP to opt out.", "Riverside Family Health:\nSee you Tuesday."),
])
def test_a_line_ending_in_a_colon_stays_unless_an_instruction_left_it_only_a_name(text: str, left: str) -> None:
    # "Your results are in" says something (a sender is a name's capitalised words), and a
    # sender's own line, which no instruction shared, is the message's as written.
    assert for_email(text) == left


@pytest.mark.parametrize("text", [
    "Riverside: see you Tuesday, reply STOP to cancel.",
    "Riverside: see you at 10 a.m. to opt out, reply STOP.",
    "If you are coming, bring your card, and to opt out, reply STOP.",
    "Riverside: do not reply STOP if you want reminders. Your visit is Tuesday.",
    "Riverside: see you Tuesday. Don't reply STOP, or we cannot remind you.",
    "Riverside : à mardi. Ne répondez pas ARRET pour annuler vos rappels.",
    "Riverside: see you Tuesday. Please do not\nreply STOP to these messages.",
    "Riverside: see you Tuesday. Please do not\nReply STOP to these messages.",
])
def test_an_instruction_after_words_that_may_say_something_stays_as_written(text: str) -> None:
    # Not a clause starting the sentence ("see you Tuesday", a clause after a comma), after a dot
    # that may not end one ("a.m."), or a negation ("Do not", « Ne … pas »): taken out alone, the
    # instruction would leave half a sentence or turn it round; left in, it is only a nuisance.
    assert for_email(text) == text


@pytest.mark.parametrize("text", [
    "Riverside: see you Tuesday. Reply STOP to cancel your appointment tomorrow at 9.",
    "Riverside: see you Tuesday. To cancel your appointment tomorrow at 9, reply STOP. Thank you.",
    "Riverside: see you Tuesday. Reply STOP to cancel your appointment and stop messages.",
    "Riverside: see you Tuesday. If you want reminders reply STOP. Thank you.",
    "Riverside : à mardi. ARRET pour annuler votre rendez-vous de demain à 9 h.",
    "Riverside : à mardi. Pour annuler votre rendez-vous, répondez ARRET. Merci.",
])
def test_an_instruction_for_something_else_than_the_messages_stays_as_written(text: str) -> None:
    # A keyword instruction is taken out when it is for the keywords' own business (stopping the
    # messages, help, starting them again); "to cancel your appointment tomorrow at 9" is for the
    # appointment, whose time would go with it.
    assert for_email(text) == text


@pytest.mark.parametrize(("text", "left"), [
    ("Riverside: see you Tuesday. Reply STOP to cancel. Thank you.", "Riverside: see you Tuesday. Thank you."),
    ("Riverside: see you Tuesday. Reply START to receive them again.", "Riverside: see you Tuesday."),
    ("Riverside : à mardi. Répondez ARRET pour annuler les rappels. Merci.", "Riverside : à mardi. Merci."),
    ("Riverside : à mardi.\nARRET pour annuler", "Riverside : à mardi."),
])
def test_an_instruction_for_the_messages_goes(text: str, left: str) -> None:
    assert for_email(text) == left


@pytest.mark.parametrize("text", [
    "Riverside: see you Tuesday.\nReply STOP to stop messages from our Main St. Clinic today\nThank you.",
    "Riverside: see you Tuesday. Reply STOP to opt out of reminders for Tuesday at 10:30 at 123 Main St. "
    "Bring your card.",
    "Riverside: see you Tuesday. Reply STOP to stop the 2.5 p.m. reminders from St. Mary's. Call us to book.",
    "Riverside: see you Tuesday. Reply STOP to stop messages from J. Smith. Bring your card.",
])
def test_an_instruction_whose_end_is_not_sure_stays_as_written(text: str) -> None:
    # "St." may end the sentence or a street's name, and a single letter an initial or a
    # sentence: taken out to the end of the line, the words after it ("Bring your card.") would
    # go too. Left in, the instruction is only a nuisance; nothing it hides could be clinical,
    # since an email is judged in the words it sends.
    assert for_email(text) == text


@pytest.mark.parametrize(("text", "left"), [
    ("Riverside: see you Tuesday.\nReply STOP to stop messages from our\noncology clinic. Thank you.",
     "Riverside: see you Tuesday.\nThank you."),
    ("Riverside: see you Tuesday.\nReply STOP to stop messages from\nDr. Smith's oncology clinic.\nThank you.",
     "Riverside: see you Tuesday.\nThank you."),
    ("Riverside: see you Tuesday.\nReply STOP to opt out of these\nreminders\nfrom the oncology clinic.\nThank you.",
     "Riverside: see you Tuesday.\nThank you."),
    ("Riverside : à mardi.\nRépondez ARRET pour ne plus recevoir les rappels de\nla clinique d'oncologie. Merci.",
     "Riverside : à mardi.\nMerci."),
])
def test_an_instruction_whose_sentence_wraps_goes_with_the_lines_it_wraps_onto(text: str, left: str) -> None:
    # A line ending on "from" or "de", or followed by one starting in lower case, goes on.
    assert for_email(text) == left


@pytest.mark.parametrize(("text", "left"), [
    ("Riverside: see you Tuesday.\nReply STOP to opt out\nportal.riverside.example/help",
     "Riverside: see you Tuesday.\nportal.riverside.example/help"),
    ("Riverside: see you Tuesday.\nReply STOP to opt out of\n\noncology reminders.",
     "Riverside: see you Tuesday.\noncology reminders."),
    ("Riverside: see you Tuesday.\nReply STOP to opt out\nThank you.", "Riverside: see you Tuesday.\nThank you."),
])
def test_a_line_that_does_not_go_on_with_the_instruction_stays(text: str, left: str) -> None:
    # A link's dot is not a word's end, a blank line ends a paragraph, and a capital may start
    # a sentence: the instruction goes to the end of its own line only.
    assert for_email(text) == left


@pytest.mark.parametrize(("text", "language"), [
    ("Riverside Family Health: Reply STOP to opt out. Your biopsy results are ready.", "en"),
    ("Riverside Family Health : Répondez ARRET pour vous désabonner. Vos résultats de biopsie sont prêts.", "fr"),
])
def test_a_sentence_after_the_instruction_is_sent_and_judged(host, text: str, language: str) -> None:  # type: ignore[no-untyped-def]
    assert "biopsie" in for_email(text).lower() or "biopsy" in for_email(text).lower()
    assert "CLINICAL_CONTENT" in [f.code for f in host.check(text, channel="email", language=language)]


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("template", ["appointment-reminder", "results-available", "portal-notice",
                                      "reply-auto-answer", "prescription-pickup", "questionnaire"])
def test_no_shipped_template_keeps_a_keyword_in_an_email(tmp_path, template: str, language: str) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from emrcomm.model import Request

    plugin = Plugin(make_context("templates", {}, tmp_path))
    variables = {"appointment": dt.datetime(2026, 11, 24, 15, 30, tzinfo=dt.UTC), "link": TEST_CLINIC.portal_url}
    request = Request("Patient/test-1", "appointment-reminder", template=template,
                      variables={k: v for k, v in variables.items() if template in ("appointment-reminder",
                                                                                      "questionnaire") or k == "link"})
    text = plugin.emrcomm_render(request, make_recipient(language=language)).text
    words = for_email(text)
    for keyword in ("STOP", "ARRET", "ARRÊT"):
        assert keyword not in words
    assert words and all(line in text for line in words.splitlines())  # the message itself is untouched


@pytest.mark.parametrize(("text", "language"), [
    ("Riverside Family Health: your appointment is tomorrow at 10:30. "
     "Reply STOP to opt out of HIV clinic reminders.", "en"),
    ("Riverside Family Health : votre rendez-vous est demain à 10 h 30. "
     "Répondez ARRET pour ne plus recevoir de rappels de la clinique VIH.", "fr"),
    ("Riverside Family Health: your appointment is tomorrow at 10:30. "
     "Reply STOP to stop messages from Dr. Smith's oncology clinic.", "en"),
])
def test_check_judges_an_email_in_the_words_a_send_leaves_it(host, text: str, language: str) -> None:  # type: ignore[no-untyped-def]
    # The only clinical word is in the STOP sentence, which an email leaves out: `emrcomm check`
    # finds what a send on that channel finds, and the SMS, which keeps it, is still told.
    import datetime as dt

    from emrcomm.model import Category, Request

    assert [f.code for f in host.check(text, channel="email", language=language)] == []
    appointment = host.clock() + dt.timedelta(days=1)
    sent = host.preview(Request("Patient/on-en", Category.APPOINTMENT_REMINDER, id="r-stop", text=text,
                                channel="email", appointment=appointment))
    assert [f.code for f in sent.findings if f.code == "CLINICAL_CONTENT"] == [], sent.explanation
    assert "CLINICAL_CONTENT" in [f.code for f in host.check(text, channel="sms", language=language)]


def test_an_email_of_many_dots_after_an_instruction_loses_only_that_line() -> None:
    # Each dot after "Reply STOP" was judged by slicing the whole sentence before it: 40,000
    # "Dr." on one line took about 90 s a send (quadratic); read outward from each dot, about
    # 0.3 s. Speed is not asserted here (a test never times itself); this pins what is left.
    text = "Riverside: see you Tuesday.\nReply STOP to opt out of " + "Dr. " * 40_000 + "\nThank you."
    assert for_email(text) == "Riverside: see you Tuesday.\nThank you."


@pytest.mark.parametrize("text", [
    "Reply STOP to opt out.", "Riverside: reply STOP to opt out.", "Répondez ARRET pour vous désabonner.",
    "Riverside Family Health:\nTo stop these messages, reply STOP.",
])
def test_a_text_that_is_only_an_instruction_is_kept_as_written(text: str) -> None:
    # Left out, it would send an email of nothing but its footer: the instruction is a nuisance
    # on email, an empty message tells the patient nothing.
    assert for_email(text) == text
