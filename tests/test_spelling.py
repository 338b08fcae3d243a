"""Spelling correction of questions (bot/spelling.py): what is corrected, what is left alone, and the engine."""

from __future__ import annotations

import pytest

from bot.answer import Engine
from bot.config import SpellingSettings
from bot.spelling import SpellingCorrector, library_words
from tests.fast_corpus import FRACTAL_QUESTION, FRACTAL_TITLE

LIBRARY = [
    "The boundary of neural network trainability is fractal",
    "Minimum width of leaky-ReLU networks for universal approximation with a kernel trick",
    "Low-rank adaptation (LoRA) of GFlowNets with the Kalman filter and bfloat16 arithmetic",
    "Prompt tuning is able to adapt a quantized model and its embedding",
]


@pytest.fixture(scope="module")
def speller() -> SpellingCorrector:
    return SpellingCorrector(library_words(LIBRARY), SpellingSettings())


@pytest.mark.parametrize(
    ("typed", "corrected"),
    [
        ("minimum widht of a nueral netwrok", "minimum width of a neural network"),
        ("universal aproximation", "universal approximation"),  # a dropped letter
        ("the kernal trick", "the kernel trick"),  # the library's word before rarer English ones
        ("is trainabilty fractal?", "is trainability fractal?"),
        ("the embeding of a model", "the embedding of a model"),  # a known word + ending, but "embedding" is known
    ],
)
def test_typos_are_corrected(speller, typed, corrected):
    assert speller.correct(typed).text == corrected


@pytest.mark.parametrize(
    "text",
    [
        "Kalman filters and Paxos",  # capitalised words are mostly names
        "LoRA for GFlowNets in bfloat16",  # acronyms, mixed case, digits
        "a promptable model from a labmate's biobank",  # two library words run together; an apostrophe
        "rerank and retrains the quantizer",  # a known word with a prefix or an ending
    ],
)
def test_names_jargon_and_compounds_are_left_alone(speller, text):
    assert speller.correct(text).text == text
    assert not speller.correct(text).changes


def test_short_words_and_first_letters_are_left_alone(speller):
    assert speller.correct("wiht").text == "wiht"  # shorter than min_chars
    # "bnetwork" is one edit from "network" but starts with another letter
    assert speller.correct("bnetwork").text == "bnetwork"


def test_a_question_in_another_language_is_left_alone(speller):
    spanish = "¿Qué modelos de difusión generan imágenes realistas?"  # modelos -> models, generan -> general
    assert speller.correct(spanish).text == spanish
    assert speller.correct("kernal methods for neural netwroks").changes == [
        ("kernal", "kernel"),
        ("netwroks", "networks"),
    ]


def test_numbers_do_not_make_a_question_look_foreign(speller):
    assert speller.correct("nueral netwroks at 256 and 512 in 2023").text == "neural networks at 256 and 512 in 2023"


def test_changes_list_each_correction(speller):
    correction = speller.correct("nueral netwrok")
    assert correction.changes == [("nueral", "neural"), ("netwrok", "network")]


@pytest.mark.slow  # the English list with two-edit deletes takes about 6 s to build
def test_two_edits_only_when_allowed():
    words = library_words(LIBRARY)
    assert SpellingCorrector(words, SpellingSettings()).correct("aproximaton").text == "aproximaton"
    two = SpellingCorrector(words, SpellingSettings(max_edits=2))
    assert two.correct("aproximaton").text == "approximation"


def test_engine_searches_with_the_corrected_question_and_says_so(tiny):
    typed = FRACTAL_QUESTION.replace("between trainable", "between trainabel").replace("fractal", "fractl")

    answer = tiny.ask(typed, mode="extractive")

    assert not answer.refused and answer.citations[0].title == FRACTAL_TITLE
    assert answer.question == typed
    assert answer.standalone_question == FRACTAL_QUESTION
    assert "Spelling corrected for the search: trainabel -> trainable, fractl -> fractal." in answer.notes


def test_engine_without_correction_keeps_the_question(tiny):
    settings = tiny.settings.model_copy(update={"spelling": SpellingSettings(enabled=False)})
    engine = Engine(settings, store=tiny.store)
    typed = FRACTAL_QUESTION.replace("fractal", "fractl")

    answer = engine.ask(typed, mode="extractive")

    assert answer.standalone_question is None
    assert not any(note.startswith("Spelling") for note in answer.notes)


def test_summary_corrects_its_topic_and_keeps_it_as_typed(tiny):
    from bot.summarize import summarize

    summary = summarize(tiny, "nueral netwrok trainability", mode="extractive")

    assert summary.topic == "nueral netwrok trainability"
    assert summary.notes[0] == "Spelling corrected for the search: nueral -> neural, netwrok -> network."
