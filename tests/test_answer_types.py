"""Answer types and the detail sentence: which questions ask for what, and which sentence answers them."""

from __future__ import annotations

import numpy as np
import pytest

from bot.answer_types import (
    SPECIFIC_WHAT,
    answer_type,
    asked_unit,
    asks_exactly,
    asks_for_papers,
    asks_for_several,
    asks_specifically,
    detail_type,
    names_beyond,
    names_data_set,
    own_name,
    states,
    states_beside,
    states_unit,
    unnamed_terms,
    unused_coined_names,
)
from bot.answerers import ExtractiveAnswerer, focus_overlap, focus_words, names_title
from bot.config import Settings
from bot.schema import Hit, Paper
from bot.text import split_sentences, stem, tokens

MATCH = Settings().extractive.name_match
DATASET_QUESTION = "A paper on 3D reconstruction from one view: which real-world dataset did they evaluate on?"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many patients were in their test group?", "quantity"),
        ("Which two datasets did the authors train and validate their model on?", "dataset"),
        ("What benchmark did they report?", "dataset"),
        ("Which picture collections did they test it on?", "dataset"),
        ("Which environments were the experiments run in?", "dataset"),  # an RL paper's data sets
        # The collection or corpus the user searches is no data set asked for (styles20 s20_045).
        ("Which papers in this collection belong on my reading list?", None),
        ("What does the corpus contain about particle accelerators?", None),
        ("Which simple collection heuristics did the adaptive scheme beat?", None),  # not the phrase's head noun
        ("How does score distillation work for 3D generation?", None),
        ("Which paper introduced real-valued non-volume preserving transformations?", None),
    ],
)
def test_answer_type_names_the_kind_asked_for(question, kind):
    found = answer_type(question)
    assert (found.name if found else None) == kind


@pytest.mark.parametrize(
    ("question", "wide"),
    [
        # A metric or measure a few words after "what"; a search-box query that names a metric.
        ("What zero-shot LAMBADA perplexity does RADD report at GPT-2 scale?", True),
        ("What exact maximum learning rate did they recommend for a ResNet-56?", True),
        ("EQ-Net 4-bit ImageNet top-1 accuracy", True),
        ("k-sparse autoencoder MNIST error rate", True),
        ("ConDiff dataset number of instances", True),
        ("In the nested-sampling paper, what overall speed-up factor did they report?", True),  # a compound metric
        ("SA-Solver CIFAR-10 FID 20 NFEs", True),  # a metric followed by the setting it is asked at
        ("ImageNet accuracy 2024 survey", False),  # a year is no setting
        ("SCORE adversarial robustness benchmark attack", False),  # a name in capitals, no metric
        ("time series conformal prediction", False),  # "time" asks for a figure only after "what"
        ("What is score distillation?", False),  # the metric word is no head noun
        ("Which paper studies the time complexity of attention?", False),
        ("What is the exact stochastic oracle complexity of the new methods?", True),  # a complexity is a figure
        ("What sample complexity does the algorithm achieve?", True),
    ],
)
def test_the_wide_reading_takes_metrics_after_what_and_in_queries(question, wide):
    assert answer_type(question) is None
    found = answer_type(question, wide=True)
    assert (found.name if found else None) == ("quantity" if wide else None)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("quantized random Fourier features evaluation datasets", "dataset"),  # the query ends with what it asks
        ("probabilistic generating circuits benchmark results", "dataset"),
        ("benchmark datasets for diffusion evaluation", None),  # the data noun does not end it
        ("Is there a paper on image datasets", None),  # a question, not a search-box query
    ],
)
def test_a_query_ending_with_a_data_noun_asks_for_a_data_set(question, kind):
    found = answer_type(question, wide=True)
    assert (found.name if found else None) == kind


@pytest.mark.parametrize(
    ("sentence", "stated"),
    [
        ("Experiments on the challenging real-world CO3D dataset.", True),
        ("We validate it on CIFAR10 and FFHQ.", True),
        ("A large Benchmark of tasks.", True),
        ("We present a new method for sampling.", False),
        ("We evaluate its performance on the Atari suite.", True),  # a suite named by a capitalised word
        ("We introduce a suite of new particle-based methods.", False),
    ],
)
def test_a_data_set_is_stated_by_the_word_or_a_name_with_a_second_capital_or_digit(sentence, stated):
    assert states(answer_type(DATASET_QUESTION), sentence) is stated


@pytest.mark.parametrize(
    ("sentence", "named"),
    [
        ("Experiments on the challenging real-world CO3D dataset demonstrate it.", True),
        ("We evaluate on the fastMRI dataset.", True),  # a capital inside the word
        ("It reaches an FID of 2.1 on CIFAR-10 and FFHQ.", True),  # after "on", no data noun needed
        ("We test the agent on Atari games.", True),
        ("We validate the theory on natural images with CIFAR10 and FFHQ.", True),  # after "with"
        ("Results on the Waymo Open Motion Dataset are strong.", True),
        ("Experiments on multiple benchmarks show consistent gains.", False),
        ("We conduct extensive experiments on real-world datasets.", False),
        ("We perform experiments on toy, tabular and image data.", False),
        ("Our analysis based on NTK theory holds for wide networks.", False),  # a method after "based on"
        ("CIFAR-10 is hard.", False),  # a name, but neither beside a data noun nor after "on"
    ],
)
def test_names_data_set_needs_a_name_beside_a_data_noun_or_after_on(sentence, named):
    assert names_data_set(sentence, window=3) is named


def test_data_sets_only_mentioned_are_not_stated_whatever_the_reader_says():
    # The abstract runs experiments "on challenging real-world datasets" and names none of them.
    table = {
        "gsd": [*GSD[:3], ("Experiments on challenging real-world datasets demonstrate it.", [0.3, 1.0, 0.0, 0.0])]
    }

    def verdict(question: str, **update) -> str | None:
        settings = Settings()
        settings = settings.model_copy(update={"extractive": settings.extractive.model_copy(update=update)})
        hits = [Hit(Paper("gsd", "GSD", " ".join(s for s, _ in table["gsd"])), 1.0, 0.8, "")]
        answerer = ExtractiveAnswerer(settings, _Sentences(table))  # type: ignore[arg-type]
        qvec = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
        return answerer.answer(question, hits, qvec, reader=[0.9]).not_stated

    assert verdict(DATASET_QUESTION) == "the data set asked for"
    assert verdict(DATASET_QUESTION, check_data_names=False) is None
    # So does a search-box query that ends with a data noun.
    assert verdict("single-view 3D reconstruction evaluation datasets") == "the data set asked for"
    # A kind of data set asked for is answered in words ("real-world datasets").
    assert verdict("A paper on 3D reconstruction from one view: what kind of datasets did they evaluate on?") is None
    # A question for several papers wants the papers, not the names.
    assert verdict("Which papers evaluate 3D reconstruction on real-world datasets?") is None
    # The abstract that names CO3D states it.
    table["gsd"] = GSD
    assert verdict(DATASET_QUESTION) is None


def test_focus_words_start_at_the_asking_clause():
    kind = answer_type(DATASET_QUESTION)

    assert focus_words(DATASET_QUESTION, kind, limit=6) == {"real", "world", "datas", "evalu"}
    assert focus_words(DATASET_QUESTION, kind, limit=2) == {"real", "world"}


def test_focus_words_leave_out_the_words_that_only_ask():
    kind = answer_type("How many volumes were in its training set?")

    assert focus_words("How many volumes were in its training set?", kind, limit=6) == {"volum", "train", "set"}


def test_focus_overlap_counts_shared_stems():
    focus = frozenset({"real", "world", "datas", "evalu"})

    assert focus_overlap(focus, "Experiments on the challenging real-world CO3D dataset.") == 3
    assert focus_overlap(focus, "We present GSD, a diffusion model approach.") == 0


def test_stem_is_the_first_letters():
    assert [stem(w) for w in tokens("evaluate evaluation on")] == ["evalu", "evalu", "on"]


class _Sentences:
    """A retriever stand-in: each paper's sentences with fixed unit vectors."""

    def __init__(self, table: dict[str, list[tuple[str, list[float]]]]) -> None:
        self.table = table

    def sentence_vectors(self, paper: Paper) -> tuple[list[str], np.ndarray]:
        rows = self.table[paper.paper_id]
        vectors = np.array([v for _, v in rows], dtype=np.float32)
        return [s for s, _ in rows], vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


GSD = [
    (
        "We present GSD, a diffusion model approach for 3D object reconstruction from a single view.",
        [1.0, 0.0, 0.0, 0.0],
    ),
    (
        "With these strong generative 3D priors, the diffusion model is ready for view-guided reconstruction.",
        [0.8, 0.0, 0.6, 0.0],
    ),
    (
        "Gaussian splatting gives an explicit representation that a diffusion model can generate directly.",
        [0.8, 0.0, -0.6, 0.0],
    ),
    (
        "Experiments on the challenging real-world CO3D dataset demonstrate the superiority of our approach.",
        [0.3, 1.0, 0.0, 0.0],
    ),
]


def _answer(question: str, detail: bool, table=None, **update) -> list[str]:
    settings = Settings().model_copy(update=update)
    settings = settings.model_copy(
        update={"extractive": settings.extractive.model_copy(update={"detail_sentence": detail})}
    )
    table = table or {"gsd": GSD}
    hits = [Hit(Paper(pid, pid.upper(), " ".join(s for s, _ in rows)), 1.0, 0.8, "") for pid, rows in table.items()]
    answerer = ExtractiveAnswerer(settings, _Sentences(table))  # type: ignore[arg-type]
    choice = answerer.answer(question, hits, np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))
    return [s.text for s in choice.sentences]


def test_the_sentence_with_the_asked_for_dataset_follows_the_lead():
    plain = _answer(DATASET_QUESTION, detail=False)
    detailed = _answer(DATASET_QUESTION, detail=True)

    assert len(plain) == 2 and not any("CO3D" in s for s in plain)
    assert detailed[0] == plain[0] and "CO3D" in detailed[1]
    assert len(detailed) == len(plain)  # it takes the place of the paper's second sentence (max_per_paper)


def test_a_question_without_an_answer_type_keeps_its_sentences():
    question = "How does GSD reconstruct a 3D object from a single view?"

    assert _answer(question, detail=True) == _answer(question, detail=False)


def test_the_detail_sentence_never_drops_a_cited_paper():
    # Three papers quoted once each fill a three-sentence answer: nothing is swapped out.
    table = {
        "gsd": [(GSD[0][0], [1.0, 0.0, 0.5, 0.0]), GSD[3]],
        "other": [
            ("A second paper reconstructs 3D objects from one view with a diffusion prior.", [1.0, 0.0, -0.5, 0.0])
        ],
        "third": [("A third paper reconstructs 3D shapes from a single image with splats.", [1.0, 0.0, 0.0, 0.5])],
    }
    kept = _answer(DATASET_QUESTION, detail=False, table=table, answer_sentences=3)

    assert len(kept) == 3
    assert _answer(DATASET_QUESTION, detail=True, table=table, answer_sentences=3) == kept


@pytest.mark.parametrize(
    ("sentence", "stated"),
    [
        ("It achieves a win rate of 76% against the best bot.", True),
        ("Open-domain 3D object synthesis lags behind 2D image synthesis.", False),  # dimensions, not figures
        ("SFD needs only 0.64 hours of fine-tuning.", True),
        ("It is orders of magnitude faster than molecular dynamics.", True),
        ("The client trains for only one epoch.", True),
        ("It facilitates a one-epoch training.", True),
        ("We compare eight loss functions.", True),
        # Digits inside names, links and list markers are no figures; "one" is mostly a pronoun.
        ("The FathomNet2023 competition dataset has new animals.", False),
        ("We introduce Safe DreamerV3 for safe learning.", False),
        ("E1 HEMP laboratory testing of the components is expensive.", False),
        ("Experiments on Cifar-10/100 and with GPT-4o.", False),
        ("See http://www.fast.ai/2018/04/30/dawnbench for the challenge.", False),
        ("LLMs replace (1) action sampling and (2) opponent modeling.", False),
        ("SA-Solver achieves: 1) improved performance; 2) SOTA FID scores.", False),
        ("One of the key elements is a large learning rate.", False),
    ],
)
def test_a_figure_is_a_number_that_is_no_part_of_a_name(sentence, stated):
    assert states(answer_type("How many images are in the collection?"), sentence) is stated


def test_when_asks_for_a_date_only_about_an_event():
    assert answer_type("When was the dataset released?").name == "year"
    assert answer_type("Which token is kept, and when is it guaranteed that one proposal is kept?") is None


NOISE = [
    ("However, the dimension of noise required in GAN is not well understood.", [1.0, 0.0, 0.0, 0.0]),
    ("We propose a divergence-entropy trade-off to study a GAN with limited noise.", [0.9, 0.0, 0.4, 0.0]),
]


def _not_stated(question: str, reader: list[float] | None = None, **update) -> str | None:
    settings = Settings()
    settings = settings.model_copy(update={"extractive": settings.extractive.model_copy(update=update)})
    hits = [Hit(Paper("gan", "Noise in GANs", " ".join(s for s, _ in NOISE)), 1.0, 0.8, "")]
    answerer = ExtractiveAnswerer(settings, _Sentences({"gan": NOISE}))  # type: ignore[arg-type]
    return answerer.answer(question, hits, np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32), reader=reader).not_stated


def test_a_figure_missing_from_the_whole_abstract_is_not_stated():
    assert _not_stated("How many photos were the GAN models trained on?") == "the figure asked for"
    assert _not_stated("How many photos were the GAN models trained on?", check_answer_type=False) is None


def test_an_abstract_that_names_the_asked_thing_discusses_it_in_words():
    # "noise" is the asking clause's first content word and the abstract's topic: answered in words.
    assert _not_stated("How many noise dimensions does a GAN need?") is None
    assert _not_stated("How many noise dimensions does a GAN need?", not_stated_head_words=0) == "the figure asked for"


def test_the_reader_rating_the_top_paper_an_answer_outweighs_the_missing_figure():
    question = "How many photos were the GAN models trained on?"
    cut = Settings().extractive.not_stated_max_yes

    assert _not_stated(question, reader=[cut + 0.1]) is None
    assert _not_stated(question, reader=[cut - 0.1]) == "the figure asked for"


@pytest.mark.parametrize(
    ("question", "exactly"),
    [
        ("What exact coating thickness did the researchers end up choosing?", True),
        ("Exactly how many times faster than molecular dynamics is it?", True),
        ("What coating thickness did they choose?", False),
        ("Is there an exact solver for it? How many steps does it take?", False),  # another clause is exact
    ],
)
def test_asks_exactly_reads_the_asking_clause(question, exactly):
    assert asks_exactly(question, answer_type(question, wide=True)) is exactly


def test_the_reader_does_not_outweigh_a_missing_figure_asked_for_exactly():
    question = "What exact noise size does a GAN need?"
    assert _not_stated(question, reader=[0.9]) == "the figure asked for"
    assert _not_stated(question, reader=[0.9], check_exact_figures=False) is None
    assert _not_stated("What noise size does a GAN need?", reader=[0.9]) is None


@pytest.mark.parametrize(
    ("question", "specific"),
    [
        ("Which specific chatbot came out on top in their results?", True),
        ("What actual physical system did they try it on?", True),
        ("which particular noise prior did the GAN use", True),
        ("Which specific papers study noise in GANs?", False),  # papers are asked for, not a detail
        ("Which noise prior did the GAN use?", False),
        ("What is the specific heat of the GAN?", False),  # "specific" not right after the asking word
    ],
)
def test_asks_specifically(question, specific):
    assert asks_specifically(question) is specific


def test_a_particular_thing_asked_for_is_not_stated_when_the_reader_doubts_the_top_paper():
    question = "Which specific noise prior did the GAN use?"  # no answer type reads it
    cut = Settings().extractive.not_stated_max_yes

    assert _not_stated(question, reader=[cut - 0.1]) == SPECIFIC_WHAT
    assert _not_stated(question, reader=[cut + 0.1]) is None
    assert _not_stated(question) is None  # no reader: no doubt to read
    assert _not_stated(question, reader=[cut - 0.1], check_specific=False) is None
    assert _not_stated("Which noise prior did the GAN use?", reader=[cut - 0.1]) is None


def test_a_name_the_abstract_never_uses_means_the_detail_is_not_stated():
    question = "How many noise dimensions does a GAN need on ImageNet?"  # the abstract never names ImageNet

    assert _not_stated(question, reader=[0.9], check_named_terms=True) == "the figure asked for"
    assert _not_stated(question, reader=[0.9], check_named_terms=False) is None
    # GAN is named in the abstract: nothing is missing, and the reader's yes stands.
    assert _not_stated("How many noise dimensions does a GAN need?", reader=[0.9], check_named_terms=True) is None


def test_a_name_used_by_another_of_the_first_papers_is_not_missing():
    # The best sentence comes from the GAN paper, which never names DSNO; the second paper does.
    question = "What FID does DSNO get on CIFAR-10?"
    dsno = [("DSNO reaches an FID of 3.78 on CIFAR-10 with one model evaluation.", [0.0, 1.0, 0.0, 0.0])]
    settings = Settings()
    hits = [
        Hit(Paper("gan", "Noise in GANs", " ".join(s for s, _ in NOISE)), 1.0, 0.8, ""),
        Hit(Paper("dsno", "Fast sampling with neural operators", dsno[0][0]), 0.9, 0.7, ""),
    ]
    answerer = ExtractiveAnswerer(settings, _Sentences({"gan": NOISE, "dsno": dsno}))  # type: ignore[arg-type]
    qvec = np.array([1.0, 0.2, 0.0, 0.0], dtype=np.float32)

    assert answerer.answer(question, hits, qvec, reader=[0.9, 0.9]).not_stated is None
    assert answerer.answer(question, hits[:1], qvec, reader=[0.9]).not_stated == "the figure asked for"


@pytest.mark.parametrize(
    ("question", "text", "missing"),
    [
        (
            "What FID does DPM-Solver reach on ImageNet 256x256?",
            "DPM-Solver reaches FID 4.70 on CIFAR-10.",
            ["ImageNet"],
        ),
        ("What FID does DPM-Solver reach on CIFAR-10?", "DPM-Solver reaches FID 4.70 on CIFAR10.", []),
        ("How many GPUs does it need?", "Training takes a day on 8 A100 GPU nodes.", []),  # plural, case
        # Only the asking clause counts: the asker's own tools are not asked about.
        ("Our pipeline uses SciPy, so how many seconds does AutoKnots take?", "AutoKnots takes 3 seconds.", []),
        ("Which datasets did they use?", "We use three datasets.", []),  # no name asked about
        # An acronym is used by the words it stands for, small words skipped, hyphen parts counted.
        ("What FID at 20 NFE?", "We reach FID 3.4 with a number of function evaluations of 20.", []),
        ("How much does ICL improve accuracy?", "In-context learning improves accuracy by 4%.", []),
        ("How much does ICL improve accuracy?", "Instruction tuning improves accuracy by 4%.", ["ICL"]),
        # A short name with small letters between its capitals spells its words by the capitals.
        ("How much faster is it for NeRF?", "It is 5 times faster for neural radiance fields.", []),
        ("How much faster is it for NeRF?", "It is 5 times faster for meshes.", ["NeRF"]),
        # A search-box query is its own asking clause.
        ("EQ-Net ImageNet top-1 accuracy", "EQ-Net reaches 71% top-1 accuracy on CIFAR-100.", ["ImageNet"]),
        # A name is read from the start of a word: "methods as a solver" does not hold SA-Solver, nor does a
        # two-letter part alone name it ("sampling and" spells SA); a metric may be followed by its setting.
        ("SA-Solver CIFAR-10 FID 20 NFEs", "Methods as a solver reach FID 3 on CIFAR-10 in 20 NFEs.", ["SA-Solver"]),
        ("SA-Solver CIFAR-10 FID 20 NFEs", "SA-Solver reaches FID 3 on CIFAR-10 in 20 NFEs.", []),
        ("What FID on ImageNet?", "We reach FID 3 on ImageNet1K.", []),
    ],
)
def test_unnamed_terms_are_names_of_the_asking_clause_the_text_never_uses(question, text, missing):
    assert unnamed_terms(question, answer_type(question, wide=True), text, MATCH) == missing


@pytest.mark.parametrize(
    ("question", "several"),
    [
        ("Which papers study neural collapse under class imbalance?", True),
        ("one-step diffusion distillation", True),  # a bare query does not say one paper or several
        ("Are there segmentation losses that focus on getting the topology right?", True),
        ("How do people train energy-based models when the partition function is intractable?", True),
        ("How have researchers made chatbots stay in character?", True),
        ("What research is there on quantizing network weights to low bit-widths?", True),
        ("What explanations have been proposed for grokking?", True),
        ("What has been written about superconducting cavities in accelerators?", True),
        ("what metrics or losses exist for the topological accuracy of segmentations?", True),
        ("How to pick a small representative subset of training data?", True),
        ("What happens to image generators trained on their own outputs?", True),
        ("What is the best-known bound on the width of a deep narrow network?", False),
        ("How do you estimate mutual information between high-dimensional variables?", False),
        ("Is there a paper that proves the trainability boundary is fractal?", False),
        ("What does the fractal trainability paper find?", False),
        # One paper asked for, the plural word part of what it did.
        ("Which paper shows you can estimate many expectations using techniques from privacy?", False),
        ("In the study that compares ways of ranking examples, how many datasets were used?", False),
        ("Which paper and which follow-up works study grokking?", True),
        # Sentences before the first that asks say why the user asks.
        ("I'm comparing few-shot methods for a class project. What 5-way 1-shot accuracy did it get?", False),
        ("How do you judge whether a generator is any good? I'd like papers that point out flaws.", True),
        ("Which papers extend conformal prediction to sequential (e.g. Markovian) data?", True),
        # "Methods" and its kin ask for several only as what is asked for.
        ("What approaches let you train with SGD without hand-tuning the learning rate?", True),
        ("What are some ways to compress the KV cache?", True),
        ("Is there anything on methods that bias SGD toward flat basins?", True),
        ("How much did it raise the F1 score over the best competing methods?", False),
        ("What is the explicit oracle complexity of the accelerated stochastic methods?", False),
        ("Can three-layer networks learn hierarchical polynomials with fewer samples than kernel methods?", False),
    ],
)
def test_asks_for_several_reads_plural_wording(question, several):
    assert asks_for_several(question) is several


def test_a_bare_query_asks_for_several_but_not_in_words_for_papers():
    assert asks_for_papers("Which papers study neural collapse under class imbalance?")
    assert asks_for_several("one-step diffusion distillation")
    assert not asks_for_papers("one-step diffusion distillation")


DSNO = [
    "Diffusion models sample slowly.",
    "We propose diffusion model sampling with neural operators (DSNO).",
    "Experiments are run on CIFAR-10.",
    "We reach an FID of 3.78 with one model evaluation.",
    "The method also transfers to ImageNet-64.",
]


@pytest.mark.parametrize(
    ("term", "own"),
    [
        ("DSNO", True),  # introduced by the authors
        ("CIFAR-10", False),  # first used in a sentence that does not speak of the authors' work
        ("Operators", True),  # in the title
    ],
)
def test_own_name_is_in_the_title_or_introduced_by_the_authors(term, own):
    assert own_name(term, "Fast Sampling via Operators", DSNO, MATCH) is own


@pytest.mark.parametrize(
    ("names", "window", "stated"),
    [
        (["FID"], 1, True),
        (["FID", "CIFAR-10"], 1, False),  # the figure's sentence does not name CIFAR-10 ...
        (["FID", "CIFAR-10"], 2, True),  # ... the one before it does
        (["FID", "ImageNet"], 2, False),  # ImageNet is named after the figure, with no figure of its own
        (["FID", "ImageNet"], 5, False),  # sentences after the figure never count
    ],
)
def test_states_beside_needs_the_figure_and_the_names_within_the_window(names, window, stated):
    assert states_beside(answer_type("What FID does it reach?"), DSNO, names, window, MATCH) is stated


def _answer_dsno(question: str, **update) -> str | None:
    settings = Settings()
    settings = settings.model_copy(update={"extractive": settings.extractive.model_copy(update=update)})
    rows = [(s, [1.0 - 0.1 * i, 0.1 * i, 0.0, 0.0]) for i, s in enumerate(DSNO)]
    hits = [Hit(Paper("dsno", "Fast Sampling via Operators", " ".join(DSNO)), 1.0, 0.8, "")]
    answerer = ExtractiveAnswerer(settings, _Sentences({"dsno": rows}))  # type: ignore[arg-type]
    qvec = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    return answerer.answer(question, hits, qvec, reader=[0.9]).not_stated


def test_a_figure_on_another_benchmark_than_the_one_asked_about_is_not_stated():
    # The reader's yes does not outweigh it: the abstract names ImageNet but states no figure on it.
    assert _answer_dsno("What FID does DSNO reach on ImageNet?") == "the figure asked for"
    assert _answer_dsno("What FID does DSNO reach on ImageNet?", check_terms_together=False) is None
    # On CIFAR-10 it is stated; DSNO, the paper's own name, need not stand beside the figure.
    assert _answer_dsno("What FID does DSNO reach on CIFAR-10?") is None
    # A clause naming only the paper's own method is left to the reader-gated type check.
    assert _answer_dsno("How many sampling steps does DSNO need?") is None


@pytest.mark.parametrize(
    ("question", "unit"),
    [
        ("How many seconds does the matching algorithm take?", "time"),
        ("Exactly how many times faster than molecular dynamics is it?", "ratio"),
        ("By how much does GNPE reduce inference time?", "ratio"),
        ("How many dollars does the surrogate save?", "money"),
        ("How many parameters did the largest model have?", "parameters"),
        ("How many views does the model generate per object?", "views"),
        ("How many different face-recognition systems did they fool?", "systems"),  # an adjective before it
        ("In the ReZero paper, how many layers deep were the Transformers?", "layers"),  # and one after it
        ("How many people played the game with it?", "people"),  # no verb within reach: the first word
        ("Against how many loss functions did they compare it?", "functions"),  # after a preposition
        ("What number of function calls n do the authors recommend?", "calls"),
        ("Do you know how many morphed images the set has?", "images"),
        ("How many of the reviewed papers were about zero-shot learning?", "papers"),
        ("What was the largest number of diverse hypotheses they tried?", "hypotheses"),
        ("RayFlow how many sampling steps", "steps"),  # a search-box query
        ("TopoMortar number of images", "images"),  # "number of" asks in a query too
        ("GraphSAGE number of inductive node classification benchmarks", "benchmarks"),  # the phrase's last word
        ("How much extra time does the crop selection add?", "time"),
        ("How much memory does the sampler need on top?", "memory"),
        # A question asking for a paper is a lookup, however it describes the paper.
        ("I want to know how much faster a student learns from logits. Is there a paper on it?", None),
        ("What FID does DSNO reach?", None),
        # "how many" that does not open its clause asks for no count.
        ("Is there an algorithm that decides how many nodes a spline needs?", None),
        ("I never know ahead of time how long I'll get to train. Are there schedules for that?", None),
        # Nor does asking what suffices, which papers answer with a bound or in words.
        ("How many noise dimensions does a GAN need?", None),
        ("How many samples are enough for near-optimal regret?", None),
    ],
)
def test_asked_unit_is_the_class_or_the_noun_counted(question, unit):
    asked = asked_unit(question, 4)
    assert (asked.name if asked else None) == unit


@pytest.mark.parametrize(
    ("question", "sentence", "stated"),
    [
        ("How many seconds does it take?", "Matching two ResNet-50 models takes about 10 minutes.", True),
        ("How many seconds does it take?", "It reaches an FID of 3.1 with 10 steps.", False),
        ("How long does it take to train?", "It trains on a single GPU in less than a day.", True),
        ("How much faster is it?", "It converges 56% faster on enwiki8.", True),
        ("How much faster is it?", "It reduces inference times by three orders of magnitude.", True),
        ("How much faster is it?", "Experiments use 32 images of each class.", False),
        ("How many parameters does it train?", "Large models (sim2.6B parameters) are distilled.", True),
        ("How many parameters does the solver have?", "A solver with 80 learnable parameters.", True),
        (
            "How many methods did they compare?",
            "We test it against thirty state-of-the-art data pruning and data distillation methods.",
            True,
        ),
        ("How many samples does it draw?", "It draws a number of samples n = O(m log m).", True),
        ("How many views does it generate?", "The multi-view model is fast and produces sharp views.", False),
        ("How many nodes or agents were there?", "The network has 50 agents.", True),
        ("How many of the cold accelerator modules does it test?", "It tests eight cryomodules.", True),
        ("What fraction of the comparisons suffices?", "About one third of the comparisons suffices.", True),
        ("How many samples give quasi-optimality?", "It needs a number of samples n = O(m log m).", True),
        # "A few" and "several" count nothing; nor does a code's tail ("x2014", a scraped dash).
        ("How many glitches did they remove?", "We separate glitches using only a few glitch-free snippets.", False),
        ("How many glitches did they remove?", "We remove microtiltsx2014known as glitches.", False),
        ("How many glitches did they remove?", "We remove 120 glitches from the record.", True),
    ],
)
def test_states_unit_needs_a_figure_beside_the_unit(question, sentence, stated):
    assert states_unit(asked_unit(question, 4), sentence, 6, 2, 3) is stated


def test_a_count_in_a_unit_no_paper_states_is_not_stated_whatever_the_reader_says():
    # DSNO states an FID and one evaluation, but no time.
    assert _answer_dsno("How many seconds does DSNO take to sample?") == "the figure asked for"
    assert _answer_dsno("How many seconds does DSNO take to sample?", check_units=False) is None
    assert _answer_dsno("How many model evaluations does DSNO need?") is None
    # A noun the abstract never uses may be said in other words: the check says nothing.
    assert _answer_dsno("How many workers does DSNO use?") is None


def _on_and_off(
    question: str, table: dict, setting: str, off_value: object = False, **both: object
) -> tuple[list[str], list[str]]:
    """The detail answer's sentences with the extractive ``setting`` on (the default) and off (``off_value``), and
    the extractive settings ``both`` in either case."""
    on = Settings().extractive.model_copy(update={**both, "detail_sentence": True})
    off = on.model_copy(update={setting: off_value})
    return _answer(question, detail=True, table=table, extractive=on), _answer(
        question, detail=True, table=table, extractive=off
    )


def test_the_detail_sentence_states_the_figure_in_the_unit_asked_for():
    # The sentence sharing more words with the question states an FID; the one in the unit asked for, a time.
    table = {
        "fast3d": [
            ("Fast3D builds 3D objects from text with a picture generator.", [1.0, 0.0, 0.0, 0.0]),
            ("Fast3D builds 3D objects from text prompts and reaches an FID of 12.", [0.9, 0.0, 0.4, 0.0]),
            ("One asset takes about 20 seconds on a single GPU.", [0.3, 1.0, 0.0, 0.0]),
        ]
    }
    question = "How long does Fast3D take to build 3D objects from text?"

    on, off = _on_and_off(question, table, "check_units")
    assert any("20 seconds" in s for s in on)
    assert not any("20 seconds" in s for s in off)


def test_words_of_the_papers_title_do_not_pick_the_detail_sentence():
    # "contrastive energy prediction" names the paper; "benchmark suite" is what is asked.
    table = {
        "contrastive energy prediction": [
            ("We propose contrastive energy prediction (CEP) to learn the exact guidance.", [1.0, 0.0, 0.0, 0.0]),
            ("The method is applied to offline reinforcement learning.", [0.9, 0.0, 0.4, 0.0]),
            ("Experiments on D4RL benchmarks show that it outperforms prior algorithms.", [0.3, 1.0, 0.0, 0.0]),
        ]
    }
    on, off = _on_and_off(
        "Which benchmark suite was contrastive energy prediction evaluated on?", table, "detail_skip_title_words"
    )
    assert any("D4RL" in s for s in on)
    assert not any("D4RL" in s for s in off)


def test_the_checks_read_only_papers_the_answer_could_quote():
    # A paper the retrievers rank far below the top one states an FID on ImageNet; it answers another question.
    other = [("Another sampler reaches an FID of 2.1 on ImageNet.", [0.5, 0.5, 0.5, 0.5])]
    rows = {"dsno": [(s, [1.0 - 0.1 * i, 0.1 * i, 0.0, 0.0]) for i, s in enumerate(DSNO)], "other": other}
    question = "What FID does the operator sampler reach on ImageNet?"

    def not_stated(fused: float, **update) -> str | None:
        settings = Settings()
        settings = settings.model_copy(update={"extractive": settings.extractive.model_copy(update=update)})
        hits = [
            Hit(Paper("dsno", "Fast Sampling via Operators", " ".join(DSNO)), 1.0, 0.8, ""),
            Hit(Paper("other", "Another Sampler", other[0][0]), fused, 0.5, ""),
        ]
        answerer = ExtractiveAnswerer(settings, _Sentences(rows))  # type: ignore[arg-type]
        qvec = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
        return answerer.answer(question, hits, qvec, reader=[0.9, 0.9]).not_stated

    assert not_stated(0.1) == "the figure asked for"
    assert not_stated(0.1, check_quotable_only=False, check_lead=1e9) is None
    assert not_stated(0.9) is None  # a paper ranked close to the top one may state it
    # Quotable (over other_paper_min_fused) but led 1/0.6 = 1.67 times: the question is about the top paper.
    assert not_stated(0.6) == "the figure asked for"
    assert not_stated(0.6, check_lead=2.0) is None


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Which language models was the self-refine tree method tried with?", "name"),
        ("What limiting distribution does the connectivity threshold converge to?", "name"),
        ("What kinds of tasks did they show it working on?", "name"),
        ("graph homomorphism MCMC real network dataset", "dataset"),
        ("MusIK problem formalization", "name"),  # a search-box query: its words beyond the title are asked
        ("One paper gives each player two scores instead of one. What are the two scores called?", "name"),
        ("What's the name of their sampler?", "name"),
        ("Which sampling scheme lets them construct such a loss anyway?", "name"),
        ("Whose earlier proof does it build on?", "name"),
        ("In what measures is the approximation error quantified?", "name"),
        ("Does the name matter?", None),  # mentions a name, asks for none
        ("What FID does the sampler reach on ImageNet?", "quantity"),  # answer_type's kinds come first
        ("Which paper proposed a tree method for language models?", None),  # asks for a paper
        ("Why do diffusion models hallucinate?", None),
    ],
)
def test_detail_type_reads_names_asked_for(question, kind):
    found = detail_type(question)
    assert (found.name if found else None) == kind
    # The names never reach the not-stated checks, which read answer_type alone.
    if kind == "name":
        assert answer_type(question, wide=True) is None


def test_a_name_asked_with_which_gets_its_detail_sentence():
    table = {
        "tree": [
            ("We propose a self-refine tree search for olympiad math with a Nash equilibrium.", [1.0, 0.0, 0.0, 0.0]),
            ("The tree search explores many candidate answers for each problem.", [0.9, 0.0, 0.4, 0.0]),
            ("We try the method with the language models GPT-4o and Phi-3-mini.", [0.3, 1.0, 0.0, 0.0]),
        ]
    }
    on, off = _on_and_off("Which language models was the tree method tried with?", table, "detail_names")
    assert any("GPT-4o" in s for s in on)
    assert not any("GPT-4o" in s for s in off)


def test_a_sentence_naming_something_new_answers_a_name_asked_for():
    # Both later sentences share the asking clause's words; only one names a sampler the question does not.
    table = {
        "ens": [
            ("Ensemble samplers move many particles together to approximate the drift.", [1.0, 0.0, 0.0, 0.0]),
            ("The ensemble is compared against a standard sampler on hard targets.", [0.6, 0.3, 0.0, 0.0]),
            ("The ensemble is compared against the Gibbs sampler on hard targets.", [0.1, 0.0, 0.0, 1.0]),
        ]
    }
    question = "Which sampler is the ensemble compared against?"
    # Without a further sentence as good: off, the one restating the question stays and no other joins it.
    on, off = _on_and_off(question, table, "detail_new_names", detail_extra_sentences=0)
    assert any("Gibbs" in s for s in on)
    assert not any("Gibbs" in s for s in off)
    assert names_beyond("We compare with the Gibbs sampler.", "Which sampler?")
    assert not names_beyond("The Ensemble sampler is compared.", "Which sampler is the ensemble compared against?")


def test_a_sentence_naming_the_data_set_beats_one_that_only_says_datasets():
    # Both share one word with the asking clause ("datasets" / "validate"); only the second names them.
    table = {
        "retrain": [
            ("We study retraining generative models on mixed datasets of real and synthetic data.", [1.0, 0, 0, 0]),
            ("We prove the stability of iterative retraining under mild conditions.", [0.9, 0.0, 0.4, 0.0]),
            ("We validate the theory on natural images with CIFAR10 and FFHQ.", [0.3, 1.0, 0.0, 0.0]),
        ]
    }
    # With no further sentence quoted, which would quote CIFAR10 as a tie when names count for nothing.
    on, off = _on_and_off("Which datasets was it validated on?", table, "detail_prefer_names", detail_extra_sentences=0)
    assert any("FFHQ" in s for s in on)
    assert not any("FFHQ" in s for s in off)


@pytest.mark.parametrize(
    ("question", "unused"),
    [
        ("How does FedProx stabilize local updates compared with DSNO?", ["FedProx"]),
        ("Git Re-Basin ImageNet zero-barrier results", []),  # ImageNet-64 names ImageNet
        ("Do CNNs and VAEs trained on GPUs need this?", []),  # all-capital acronyms are left out
        ("How does dsno sampling with NeuralOperators work?", []),  # "neural operators", run together
        ("Is PiecewiseFlow faster than DSNO?", ["PiecewiseFlow"]),
    ],
)
def test_coined_names_the_papers_never_use(question, unused):
    assert unused_coined_names(question, [" ".join(DSNO)], MATCH) == unused


@pytest.mark.parametrize(
    ("text", "used"),
    [
        ("We study residual networks with suitably scaled branches.", True),  # ResNet: word beginnings
        ("We study deep networks with skip connections.", False),
        ("Results on residual learning for networks.", False),  # the words must follow each other
    ],
)
def test_a_coined_name_made_of_word_beginnings_is_used_by_those_words(text, used):
    assert unused_coined_names("Do ResNets with scaled branches commute?", [text], 0.9) == ([] if used else ["ResNets"])


def test_a_question_naming_a_method_no_paper_names_is_told_the_abstracts_say_nothing_of_it():
    question = "How does FedProx compare with neural operator sampling?"
    assert _answer_dsno(question) == "anything about FedProx"
    assert _answer_dsno(question, check_coined_names=False) is None
    # An all-capital acronym is not a coined name; a paper's own name that it uses is no unknown.
    assert _answer_dsno("Why does DSNO use neural operators, unlike CNNs?") is None


def test_a_word_asked_for_counts_inside_a_compound_name():
    # "benchmark" and "attack" are parts of RobustBench and AutoAttack; "score" and "robust" are the paper's topic.
    table = {
        "score": [
            ("We name a self-consistent robust error SCORE and study its robust training.", [1.0, 0.0, 0.0, 0.0]),
            ("SCORE reconciles robust accuracy with clean accuracy.", [0.9, 0.0, 0.4, 0.0]),
            ("Our models rank first on RobustBench under AutoAttack.", [0.3, 1.0, 0.0, 0.0]),
        ]
    }
    question = "Which benchmark and which attack were used to evaluate robust models trained with SCORE?"
    on, off = _on_and_off(question, table, "detail_word_parts")
    assert any("AutoAttack" in s for s in on)
    assert not any("AutoAttack" in s for s in off)


def test_words_in_most_of_the_papers_sentences_do_not_pick_the_detail_sentence():
    # "graph" is in three sentences of four: the paper's topic. "beat" and "experiments" say what is asked.
    table = {
        "pool": [
            ("We study GraphSAGE experiments for graph classification.", [1.0, 0.0, 0.0, 0.0]),
            ("Pooling a graph loses much of its structure on large inputs.", [0.9, 0.0, 0.4, 0.0]),
            ("Graph models are compared with each other on many tasks.", [0.8, 0.0, 0.5, 0.0]),
            ("In experiments it beat DiffPool and SAGPool.", [0.3, 1.0, 0.0, 0.0]),
        ]
    }
    question = "Which graph models did it beat in the experiments?"
    on, off = _on_and_off(question, table, "detail_topic_share", 1.0, detail_extra_sentences=0)
    assert any("DiffPool" in s for s in on)
    assert not any("DiffPool" in s for s in off)


def test_a_second_sentence_as_good_is_quoted_beside_the_first():
    table = {
        "tree": [
            ("We propose a self-refine tree search for olympiad math.", [1.0, 0.0, 0.0, 0.0]),
            ("The language model GPT-4o was tried with the tree.", [0.3, 1.0, 0.0, 0.0]),
            ("Language models such as LLaMA-2 were tried as well.", [0.2, 1.0, 0.1, 0.0]),
        ]
    }
    on, off = _on_and_off("Which language models was the tree tried with?", table, "detail_extra_sentences", 0)
    assert any("GPT-4o" in s for s in on) and any("LLaMA-2" in s for s in on)
    assert sum(("GPT-4o" in s) + ("LLaMA-2" in s) for s in off) == 1


@pytest.mark.parametrize(
    ("question", "title", "named"),
    [
        ("functional diffusion processes CIFAR-10 FID", "Continuous-Time Functional Diffusion Processes", True),
        (
            "Did the paper on generative data augmentation try it?",
            "Toward Understanding Generative Data Augmentation",
            True,
        ),
        ("What FID do diffusion models reach on CIFAR-10?", "Diffusion Models Beat GANs on Image Synthesis", False),
        ("Which processes diffuse functional data?", "Continuous-Time Functional Diffusion Processes", False),
    ],
)
def test_a_question_names_a_paper_by_three_title_words_in_a_row(question, title, named):
    assert names_title(question, title, 3) is named


def test_a_figure_of_another_paper_does_not_answer_for_the_paper_named_by_its_title():
    # The paper asked about states no FID; a neighbour states one on CIFAR-10.
    rows = {
        "fdp": [("We generalize score-based diffusion models to infinite-dimensional function spaces.", [1, 0, 0, 0])],
        "integ": [("On CIFAR-10 our sampler reaches an FID of 2.11 in 100 evaluations.", [0.9, 0.4, 0, 0])],
    }
    hits = [
        Hit(Paper("fdp", "Continuous-Time Functional Diffusion Processes", rows["fdp"][0][0]), 1.0, 0.8, ""),
        Hit(Paper("integ", "Efficient Integrators for Diffusion Models", rows["integ"][0][0]), 0.9, 0.7, ""),
    ]

    def not_stated(words: int) -> str | None:
        settings = Settings()
        update = {"title_phrase_words": words, "check_quotable_only": False}
        settings = settings.model_copy(update={"extractive": settings.extractive.model_copy(update=update)})
        answerer = ExtractiveAnswerer(settings, _Sentences(rows))  # type: ignore[arg-type]
        qvec = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
        return answerer.answer("functional diffusion processes CIFAR-10 FID", hits, qvec).not_stated

    assert not_stated(3) == "the figure asked for"
    assert not_stated(0) is None


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("We use data, e.g. ImageNet here. Next one.", ["We use data, e.g. ImageNet here.", "Next one."]),
        ("As in Entezari et al. 2021. We add three.", ["As in Entezari et al. 2021.", "We add three."]),
        (
            "Fig. 3 shows it. Done, i.e. Markovian data? Yes.",
            ["Fig. 3 shows it.", "Done, i.e. Markovian data?", "Yes."],
        ),
    ],
)
def test_sentences_do_not_end_at_an_abbreviation(text, sentences):
    assert split_sentences(text) == sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "It is built on the frozen StableDiffusion model. project page: https://example.org/p",
            ["It is built on the frozen StableDiffusion model.", "project page: https://example.org/p"],
        ),
        (
            "We show it on large EOT tasks. https://github.com/a/b",
            ["We show it on large EOT tasks.", "https://github.com/a/b"],
        ),
        (
            "It helps in downstream tasks.Our code was released at https://github.com/a/b.",
            ["It helps in downstream tasks.", "Our code was released at https://github.com/a/b."],
        ),
        (
            "The accuracy is 3.5 on CIFAR-10. then lower case goes on.",
            ["The accuracy is 3.5 on CIFAR-10. then lower case goes on."],
        ),
        ("See arXiv.Org or the data.", ["See arXiv.Org or the data."]),
    ],
)
def test_a_link_after_a_sentence_is_a_sentence_of_its_own(text, sentences):
    # Else the sentence before it is dropped with the link as housekeeping (bot.answerers.BOILERPLATE).
    assert split_sentences(text) == sentences
