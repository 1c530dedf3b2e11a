"""Packaged lexicons (drug names, ICD-10-CM conditions), their everyday-word filter, the on-disk
cache of the compiled lexicons, and tolerance for misspelled drug names."""

from __future__ import annotations

from pathlib import Path

import pytest

from emrcomm import Host
from emrcomm.cli import main
from emrcomm.model import Message, Request, Status
from emrcomm.testing import make_context
from emrcomm_content import Plugin, cache, fuzzy, sources, terms
from emrcomm_content.folding import Folded, fold_text
from support import write_config

ALL = ("core", "drugs", "icd10cm")


@pytest.fixture(scope="module")
def full() -> cache.Compiled:
    """The default lexicons, from the user's cache (built there once per machine)."""
    return cache.compiled(ALL)


@pytest.fixture(scope="module")
def packaged_terms(full: cache.Compiled) -> dict[str, set[str]]:
    """Folded term -> the lexicons it comes from."""
    return {key: {lexicon for _, lexicon in entries} for key, entries in full.matcher.terms().items()}


def found(plugin: Plugin, text: str) -> list[str]:
    facts = plugin.emrcomm_inspect(Message(Request("Patient/1", "appointment-reminder"), text))
    return [text[f.span[0] : f.span[1]] for f in facts if f.code == "CLINICAL_CONTENT"]


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> Plugin:
    return Plugin(make_context("content", {}, tmp_path_factory.mktemp("content")))


# --- the cache ------------------------------------------------------------------------------


def test_cache_is_written_then_loaded_instead_of_rebuilt(tmp_path: Path) -> None:
    first = cache.load(("core",), tmp_path)
    assert first.origin == "built"
    assert first.path is not None and first.path.is_file()
    assert first.path.parent == tmp_path
    second = cache.load(("core",), tmp_path)
    assert second.origin == "cache"
    assert second.key == first.key
    assert second.matcher.terms() == first.matcher.terms()
    assert second.fuzzy.names == first.fuzzy.names
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]  # written through a renamed temp file


def test_build_does_not_happen_when_the_cache_is_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache.load(("core",), tmp_path)

    def no_build(names: tuple[str, ...]) -> None:
        raise AssertionError("rebuilt although the cache is current")

    monkeypatch.setattr(cache, "build", no_build)
    assert cache.load(("core",), tmp_path).origin == "cache"


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"",  # empty
        lambda raw: raw[: len(raw) // 2],  # truncated
        lambda raw: b"not a cache at all" * 10,  # something else
        lambda raw: raw[:-100] + bytes(b ^ 0xFF for b in raw[-100:]),  # payload bytes flipped
        lambda raw: raw.replace(b"emrcomm-lexicons", b"emrcomm-lexiconz", 1),  # wrong magic
    ],
    ids=["empty", "truncated", "garbage", "flipped", "magic"],
)
def test_damaged_cache_is_rebuilt_and_detects_as_before(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    good = cache.load(("core",), tmp_path)
    assert good.path is not None
    good.path.write_bytes(damage(good.path.read_bytes()))
    rebuilt = cache.load(("core",), tmp_path)
    assert rebuilt.origin == "built"
    assert rebuilt.matcher.terms() == good.matcher.terms()
    assert cache.load(("core",), tmp_path).origin == "cache"  # and the file is good again


def test_cache_written_under_another_key_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache.load(("core",), tmp_path).origin == "built"
    monkeypatch.setattr(cache, "BUILD_VERSION", "another build")
    assert cache.load(("core",), tmp_path).origin == "built"


def test_change_to_the_project_lists_changes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cache.cache_key(("core",))
    monkeypatch.setattr(terms, "NOT_CLINICAL_TERMS", [*terms.NOT_CLINICAL_TERMS, "somethingelse"])
    assert cache.cache_key(("core",)) != before


def test_change_of_a_source_package_version_changes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cache.cache_key(ALL)
    versions = {**sources.source_versions(), "simple-icd-10-cm": "0.0.0-test"}
    monkeypatch.setattr(sources, "source_versions", lambda: versions)
    assert cache.cache_key(ALL) != before


def test_each_set_of_lexicons_has_its_own_key() -> None:
    assert cache.cache_key(("core",)) != cache.cache_key(("core", "drugs"))


def test_cache_folder_that_cannot_be_written_compiles_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    compiled = cache.load(("core",), blocker / "cache")
    assert compiled.origin == "memory"
    assert "metformin" in compiled.matcher


def test_cache_folder_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMRCOMM_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("EMRCOMM_CACHE_DIR")
    assert cache.cache_dir() == tmp_path / "xdg" / "emrcomm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "emrcomm"


def test_plugin_uses_the_cache_folder_of_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMRCOMM_CACHE_DIR", str(tmp_path / "c"))
    plugin = Plugin(make_context("content", {"lexicons": ["core"]}, tmp_path))
    assert found(plugin, "Take your metformin") == ["metformin"]
    assert (tmp_path / "c" / "lexicons-core.pickle").is_file()



# --- the cache, as commands meet it -----------------------------------------------------------


CORE_ONLY = '[plugins.content]\nlexicons = ["core"]\n'


def _content_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "emrcomm.content"]


def test_help_leaves_a_damaged_cache_alone_and_check_finds_and_rebuilds_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Commands that inspect nothing do not load the lexicons; the first that inspects finds the
    damage before it decides anything, and rebuilds the file (as at every start before)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("EMRCOMM_CACHE_DIR", str(folder))
    path = cache.load(("core",), folder).path
    assert path is not None
    raw = path.read_bytes()
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))  # one bit flipped: the digest no longer matches
    damaged = path.read_bytes()
    config = write_config(tmp_path, CORE_ONLY)

    with pytest.raises(SystemExit) as done:
        main(["--config", str(config), "--help"])
    assert done.value.code == 0 and "COMMAND" in capsys.readouterr().out
    assert main(["records", "--config", str(config)]) == 0
    assert path.read_bytes() == damaged and _content_logs(caplog) == []

    code = main(["check", "--config", str(config), "--channel", "sms", "--text", "Take your metformin"])
    assert code == 3 and "CLINICAL_CONTENT" in capsys.readouterr().out
    assert any("is damaged: rebuilding it" in said for said in _content_logs(caplog))
    assert cache.load(("core",), folder).origin == "cache"  # the file is good again


@pytest.fixture
def lexicons_that_cannot_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No cache, and building the lexicons fails (a source package gone): the config that meets it."""
    def broken(names: tuple[str, ...]) -> None:
        raise RuntimeError("the drug dictionary is not installed")

    monkeypatch.setenv("EMRCOMM_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(cache, "build", broken)
    return write_config(tmp_path, CORE_ONLY)


@pytest.mark.parametrize("command", [
    ["check-config"], ["doctor"], ["check", "--channel", "sms", "--text", "See you Tuesday"],
])
def test_commands_that_inspect_or_check_everything_report_lexicons_that_cannot_build(
        lexicons_that_cannot_build: Path, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*command, "--config", str(lexicons_that_cannot_build)])
    err = capsys.readouterr().err
    assert code == 2
    assert "plugin 'content'" in err and "failed to start: RuntimeError: the drug dictionary is not installed" in err


def test_the_demo_stops_at_start_when_the_lexicons_cannot_build(
        lexicons_that_cannot_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As send does: not a clinic day of messages each blocked CHECK_FAILED."""
    code = main(["demo", "--data", str(tmp_path / "demo"), "--patients", "5", "--date", "2026-11-24"])
    err = capsys.readouterr().err
    assert code == 2 and "plugin 'content'" in err and "the drug dictionary is not installed" in err


def test_commands_that_inspect_nothing_run_while_the_lexicons_cannot_build(
        lexicons_that_cannot_build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["records"], ["outbox"], ["plugins"]):
        assert main([*command, "--config", str(lexicons_that_cannot_build)]) == 0, command
    assert "content" in capsys.readouterr().out  # `plugins` lists it: it is loaded, only not prepared


def test_a_message_is_blocked_when_the_lexicons_cannot_build(lexicons_that_cannot_build: Path) -> None:
    """An embedding EMR's host inspects on the first message: a detector that cannot be built
    blocks it, naming the plugin (fail closed), and nothing goes out."""
    with Host.from_config(lexicons_that_cannot_build) as host:
        outcome = host.send(Request("Patient/on-en", "appointment-reminder", text="See you Tuesday at 10."))
    assert outcome.status is Status.BLOCKED
    assert [(f.code, f.plugin) for f in outcome.findings if f.code == "CHECK_FAILED"] == [("CHECK_FAILED", "content")]
    assert not (lexicons_that_cannot_build.parent / "out" / "sms.jsonl").exists()


# --- the packaged lexicons ------------------------------------------------------------------


def test_default_is_every_lexicon(full: cache.Compiled) -> None:
    assert Plugin.settings_schema["properties"]["lexicons"]["default"] == list(ALL)
    assert full.names == ALL


@pytest.mark.parametrize("brand, generic", [("Rinvoq", "upadacitinib"), ("Otezla", "apremilast"),
                                            ("Nurtec", "rimegepant"), ("Zytiga", "abiraterone")])
def test_brand_and_generic_drug_names_come_from_the_package(content: Plugin, packaged_terms, brand, generic) -> None:  # type: ignore[no-untyped-def]
    assert found(content, f"Your {brand} is ready") == [brand]
    assert found(content, f"Start {generic} today") == [generic]
    assert "drugs" in packaged_terms[brand.lower()] and "drugs" in packaged_terms[generic]
    assert brand.lower() not in terms.MEDICATIONS_EN  # not typed by hand


@pytest.mark.parametrize("condition", ["hantavirus", "Schmorl's nodes", "tinea cruris", "oppositional defiant disorder",
                                       "rhabdomyolysis", "sarcoidosis", "hydrocephalus"])
def test_icd_conditions_come_from_the_package(content: Plugin, packaged_terms, condition) -> None:  # type: ignore[no-untyped-def]
    assert found(content, f"About your {condition} follow-up") == [condition]
    assert "icd10cm" in packaged_terms[fold_text(condition)]


@pytest.mark.parametrize(
    "word",
    # everyday words, first names and foods that the drug dictionary or ICD-10-CM also list
    ["question", "together", "water", "sugar", "coffee", "avocado", "blueberry", "catfish", "diamonds",
     "camila", "kendrick", "silverado", "pulsar", "morin", "talker", "odd", "tiredness", "cooing", "grapefruit"],
)
def test_everyday_words_are_not_packaged_terms(packaged_terms, word) -> None:  # type: ignore[no-untyped-def]
    assert not ({"drugs", "icd10cm"} & packaged_terms.get(word, set()))


def test_packaged_single_words_are_rare_words_unless_the_project_lists_them(packaged_terms) -> None:  # type: ignore[no-untyped-def]
    too_common = [
        term for term, lexicons in packaged_terms.items()
        if " " not in term and lexicons <= {"drugs", "icd10cm"} and sources.zipf(term.replace("'", "")) >= sources.MEDICINE_ZIPF
    ]
    assert too_common == []
    assert all(len(t) >= sources.MIN_WORD for t, lx in packaged_terms.items() if " " not in t and lx <= {"drugs", "icd10cm"})


def test_project_lists_win_over_the_everyday_word_rule(packaged_terms) -> None:  # type: ignore[no-untyped-def]
    # "cancer" and "pregnancy" are everyday words (Zipf > 4) and clinical: the curated list keeps them.
    assert sources.zipf("cancer") > sources.MEDICINE_ZIPF
    assert {"core-en", "core-fr"} & packaged_terms["cancer"]


def test_deny_list_removes_a_packaged_term() -> None:
    assert sources.keep_term("hydroxyzine") == "hydroxyzine"
    assert sources.keep_term("odd") is None  # on the project's deny-list
    assert sources.keep_term("tiredness", condition=True) is None  # an everyday state, not a named condition


def test_odd_in_a_sentence_is_not_clinical_but_the_abbreviation_is(content: Plugin) -> None:
    assert found(content, "That's odd, call me") == []
    assert found(content, "Follow-up for ODD and ADHD") == ["ODD", "ADHD"]


def test_lexicons_setting_switches_packaged_lexicons_off(tmp_path: Path, content: Plugin) -> None:
    core_only = Plugin(make_context("content", {"lexicons": ["core"]}, tmp_path))
    assert found(core_only, "Your Rinvoq is ready") == []
    assert found(content, "Your Rinvoq is ready") == ["Rinvoq"]
    assert found(core_only, "Your metformin is ready") == ["metformin"]


# --- misspellings ---------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["metformn", "atorvastatine", "amoxicilin", "hydrocodene", "gabapentine", "lisinoprl"])
def test_misspelled_drug_name_is_clinical(content: Plugin, word: str) -> None:
    assert found(content, f"Is {word} safe with wine?") == [word]


@pytest.mark.parametrize("word", ["question", "together", "important", "information", "referin", "ntimate",
                                  "captain", "advill"])
def test_word_one_edit_from_a_drug_is_not_a_misspelling(content: Plugin, word: str) -> None:
    assert found(content, f"A {word} for you") == []


def test_edit_distance_is_one_letter_added_dropped_changed_or_swapped() -> None:
    assert fuzzy.one_edit("metformin", "metformn")
    assert fuzzy.one_edit("metformin", "metfromin")  # swap
    assert fuzzy.one_edit("metformin", "metformine")
    assert fuzzy.one_edit("metformin", "metfirmin")
    assert not fuzzy.one_edit("metformin", "metformin")
    assert not fuzzy.one_edit("metformin", "metfromn")  # two edits


def test_index_ignores_short_names_and_real_words() -> None:
    index = fuzzy.FuzzyIndex(["lasix", "captopril", "warfarin"], real_words=["captopryl", "warfaring"])
    assert index.lookup("lasixx") is None  # names under 7 letters get no tolerance
    assert index.lookup("captoprl") == "captopril"
    assert index.lookup("captopryl") is None  # a real word (here: declared so)
    assert index.lookup("warfaring") is None
    assert index.lookup("warfarine") == "warfarin"  # the French spelling, real word or not
    assert index.lookup("xaptopril") is None  # the first letter must be right
    assert index.lookup("captopril") is None  # the name itself is an exact match, not a misspelling


# --- folding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Riverside Family Health: Thomas, your appointment is Tue, Nov 24 at 9:20 a.m.",
    "Take METFORMIN twice-daily\r\nwith food\tand water `as told`",
    "two  spaces, a tab\t\tand a dash - here", "", "-", "\n\n",
])
def test_ascii_text_folds_as_any_other_text(text: str) -> None:
    # A character outside ASCII at the end sends the text down the general path: the folded
    # text and the map back to the original must agree on everything before it.
    general = Folded.of(text + "\u00e9")
    ascii_ = Folded.of(text)
    assert ascii_.text == general.text[:-1]
    assert list(ascii_.index) == list(general.index)[:-1]
    assert all(ascii_.span(i, i + 1) == general.span(i, i + 1) for i in range(len(ascii_.text)))


def test_a_flag_is_not_read_as_two_letters() -> None:
    # two regional indicators in a row draw a flag (Montserrat's is no "MS"); one alone, or three,
    # are letters ("🇭🇮🇻")
    assert Folded.of("Closed \U0001f1f2\U0001f1f8 \U0001f1e8\U0001f1e6, back Monday").text == \
        "closed \U0001f1f2\U0001f1f8 \U0001f1e8\U0001f1e6, back monday"
    assert Folded.of("\U0001f1ed\U0001f1ee\U0001f1fb \U0001f1f2").text == "hiv m"
