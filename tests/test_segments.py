"""SMS segment counting (docs/rule-catalogue.md F, 3GPP TS 23.038): the vectors of the rule, then properties."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from emrcomm.segments import GSM7_BASIC, GSM7_EXTENSION, count_segments

BASIC = "".join(sorted(GSM7_BASIC))
GRIN = "\U0001f600"  # outside the BMP: two UTF-16 code units


def test_160_gsm_characters_fit_one_segment():
    assert count_segments("a" * 160) == ("GSM-7", 1)


def test_161_gsm_characters_need_two_segments():
    assert count_segments("a" * 161) == ("GSM-7", 2)


def test_concatenated_gsm_segments_hold_153_characters():
    assert count_segments("a" * 306) == ("GSM-7", 2)
    assert count_segments("a" * 307) == ("GSM-7", 3)


def test_70_ucs2_characters_fit_one_segment():
    assert count_segments("ê" * 70) == ("UCS-2", 1)


def test_71_ucs2_characters_need_two_segments():
    assert count_segments("ê" * 71) == ("UCS-2", 2)


def test_concatenated_ucs2_segments_hold_67_units():
    assert count_segments("ê" * 134) == ("UCS-2", 2)
    assert count_segments("ê" * 135) == ("UCS-2", 3)


def test_vous_etes_attendu_is_ucs2():
    assert count_segments("Vous êtes attendu")[0] == "UCS-2"


def test_accents_of_the_gsm_alphabet_stay_gsm():
    assert count_segments("Café à 10 h, Ça va? Ñ ü")[0] == "GSM-7"


def test_lower_case_c_cedilla_is_not_gsm():
    # The default alphabet has capital Ç (0x09) only.
    assert count_segments("reçu")[0] == "UCS-2"


def test_euro_sign_costs_two_septets():
    assert count_segments("€" * 80) == ("GSM-7", 1)  # 160 septets
    assert count_segments("€" * 80 + "a") == ("GSM-7", 2)  # 161


def test_every_extension_character_costs_two_septets():
    for ch in "^{}\\[]~|€\f":
        assert count_segments(ch * 80) == ("GSM-7", 1), repr(ch)
        assert count_segments(ch * 81) == ("GSM-7", 2), repr(ch)


def test_extension_character_is_not_split_across_segments():
    # 152 + 2 would be 154 in the first part: the euro moves whole to the second part
    # (2 + 151 = 153), and the last "a" needs a third, where plain septet counting says 2.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == ("GSM-7", 3)


def test_emoji_counts_two_units():
    assert count_segments(GRIN * 35) == ("UCS-2", 1)  # 70 units
    assert count_segments(GRIN * 36) == ("UCS-2", 2)  # 72 units


def test_surrogate_pair_is_not_split_across_segments():
    # 66 units, then the emoji would straddle unit 67/68: it moves to part two (2 + 65 = 67),
    # and the last "a" needs a third part, where plain unit counting (134 / 67) says 2.
    text = "a" * 66 + GRIN + "a" * 66
    assert count_segments(text) == ("UCS-2", 3)


def test_empty_text_is_one_segment():
    assert count_segments("") == ("GSM-7", 1)


gsm_basic = st.text(alphabet=st.sampled_from(BASIC))
non_gsm = st.characters(codec="utf-8").filter(lambda c: c not in GSM7_BASIC and c not in GSM7_EXTENSION)


@given(gsm_basic.filter(lambda t: len(t) > 160))
def test_long_basic_gsm_text_uses_153_per_segment(text):
    assert count_segments(text) == ("GSM-7", math.ceil(len(text) / 153))


@given(gsm_basic.filter(lambda t: len(t) <= 160))
def test_short_basic_gsm_text_is_one_segment(text):
    assert count_segments(text) == ("GSM-7", 1)


@given(gsm_basic, non_gsm)
def test_one_character_outside_gsm_makes_the_whole_message_ucs2(text, extra):
    assert count_segments(text + extra)[0] == "UCS-2"
    assert count_segments(extra + text)[0] == "UCS-2"


@given(st.text(), st.characters(codec="utf-8"))
def test_appending_a_character_never_lowers_the_count(text, extra):
    assert count_segments(text + extra)[1] >= count_segments(text)[1]


@given(st.text(min_size=1))
def test_segments_cover_at_least_the_units_they_carry(text):
    encoding, segments = count_segments(text)
    if encoding == "UCS-2":
        units = len(text.encode("utf-16-le")) // 2
        assert segments >= math.ceil(units / 67) if units > 70 else segments == 1
    else:
        septets = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        assert segments >= math.ceil(septets / 153) if septets > 160 else segments == 1
