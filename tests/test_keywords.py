"""Inbound keyword normalisation (docs/rule-catalogue.md B), with property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emrcomm_optout.keywords import HELP, OPT_IN, OPT_OUT, Keyword, classify, looks_like_revocation, normalize

WHITESPACE = st.text(alphabet=" \t\n", max_size=3)


def random_case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.lower() if flip else c.upper() for c, flip in zip(word, flips))


@st.composite
def spelled(draw: st.DrawFn, words: frozenset[str]) -> str:
    word = draw(st.sampled_from(sorted(words)))
    return draw(WHITESPACE) + random_case(draw, word) + draw(WHITESPACE)


@given(spelled(OPT_OUT))
def test_any_casing_and_spacing_of_an_opt_out_word_opts_out(reply: str) -> None:
    assert classify(reply) is Keyword.OPT_OUT


@given(spelled(OPT_IN))
def test_any_casing_of_an_opt_in_word_opts_in(reply: str) -> None:
    assert classify(reply) is Keyword.OPT_IN


@given(spelled(HELP))
def test_any_casing_of_a_help_word_asks_for_help(reply: str) -> None:
    assert classify(reply) is Keyword.HELP


@given(st.text(max_size=40))
def test_normalize_is_idempotent(reply: str) -> None:
    assert normalize(normalize(reply)) == normalize(reply)


@given(st.text(max_size=40))
def test_normalized_text_has_no_edges_or_lower_case(reply: str) -> None:
    out = normalize(reply)
    assert out == out.strip() and out == out.upper() and "  " not in out


@given(st.sampled_from(sorted(OPT_OUT)), st.text(alphabet="abcdefghij", min_size=1, max_size=8))
def test_a_keyword_inside_a_longer_reply_is_not_a_keyword(word: str, extra: str) -> None:
    assert classify(f"{word} {extra}") is not Keyword.OPT_OUT or f"{word} {extra}".upper() in OPT_OUT


@pytest.mark.parametrize("reply", ["Arrêt", "ARRÊT", "arret", " Arrêt. ", "Stop!", "opt out", "Opt-Out"])
def test_french_and_punctuated_opt_outs(reply: str) -> None:
    assert classify(reply) is Keyword.OPT_OUT


@pytest.mark.parametrize("reply", ["stop by tomorrow", "Yes please", "help me book", "ok", "", "STOPP"])
def test_words_that_are_not_keywords(reply: str) -> None:
    assert classify(reply) is Keyword.NONE


@pytest.mark.parametrize("text", ["please stop texting me", "Don't message me again",
                                  "Unsubscribe me from this", "Arrêtez de m'envoyer des textos",
                                  "je veux me désabonner"])
def test_free_text_revocations_go_to_staff(text: str) -> None:
    assert looks_like_revocation(text)


@pytest.mark.parametrize("text", ["Stop sending me reminders", "Please stop sending me these", "no more reminders",
                                  "Stop the reminders", "stop the notifications please", "STOP ALL", "Quit sending",
                                  "Arrêtez les rappels", "Ne m'envoyez plus de messages", "ne m’écrivez plus",
                                  "Plus de textos svp", "Arrête tout"])
def test_asking_to_stop_what_the_clinic_sends_goes_to_staff(text: str) -> None:
    """Named by what the clinic sends (reminders, "these") rather than "texts": a revocation all
    the same, to be confirmed by staff, never answered with the auto-reply of a question."""
    assert classify(text) is Keyword.NONE and looks_like_revocation(text)


@pytest.mark.parametrize("text", ["STOP", "See you at 10", "Can I stop my metformin?", "Merci, à lundi",
                                  "Don't send the prescription to the old pharmacy", "Thanks for the reminder",
                                  "Can you send me the form?", "J'ai plus de questions", "Is that all?"])
def test_ordinary_replies_are_not_revocations(text: str) -> None:
    assert not looks_like_revocation(text)


@pytest.mark.parametrize("text", ["Stop please", "please stop", "STOP NOW!!", "stop it", "Stop stop stop",
                                  "Arrêt svp", "Arrêtez s'il vous plaît", "Arrêtez s’il vous plaît", "arrête", "Opt out please, thanks"])
def test_an_opt_out_word_with_only_courtesy_around_it_goes_to_staff(text: str) -> None:
    """Not the keyword itself (no automatic opt-out), but no ordinary reply either: it must not
    get the auto-answer of a question."""
    assert classify(text) is Keyword.NONE and looks_like_revocation(text)


@pytest.mark.parametrize("text", ["Can I stop by at 3?", "stop by tomorrow", "Don't stop", "Please stop my refill",
                                  "Arrêt de bus Rideau?"])
def test_an_opt_out_word_among_other_words_is_not_a_revocation(text: str) -> None:
    assert not looks_like_revocation(text)
