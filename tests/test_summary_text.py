"""Summaries a researcher would keep: clean text, lines without boilerplate, references that import back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.latex import latex_to_text, search_text
from bot.summarize.claims import contribution_line
from bot.summarize.types import Reference, bib_escape, to_bibtex
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
# Leftover LaTeX: a command, a grouped script, inline math, TeX quotes, a braced accent.
LATEX_LEFT = re.compile(r"\\[a-zA-Z]+|[\^_]\{|\$[^$\s][^$]*\$|``|\{\\|\\cite")


def _field(pattern: str, field: str) -> list[str]:
    """``field`` of every row of every eval set matching ``pattern`` (new sets are picked up as they land)."""
    return [
        json.loads(line)[field]
        for path in sorted((ROOT / "evals").glob(pattern))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


# -- fast: the text rules ----------------------------------------------------------
@pytest.mark.parametrize(
    ("sentence", "line"),
    [
        ("In this paper, we propose DPM-Solver, a fast solver.", "DPM-Solver, a fast solver."),
        ("To solve this problem, we propose a framework called X.", "A framework called X."),
        ("Here we present KD3, a method.", "KD3, a method."),
        ("We show that diffusion models memorize.", "Shows that diffusion models memorize."),
        ("This paper introduces and analyzes a new loss.", "Introduces and analyzes a new loss."),
        ("We study the effect of depth.", "Studies the effect of depth."),
        ("Then we introduce key theories.", "Key theories."),
        ("We propose to use teachers.", "Proposes to use teachers."),
        ("We jointly train two models.", "Jointly trains two models."),
        ("We apply X to Y.", "Applies X to Y."),
        ("Knowledge distillation is popular.", "Knowledge distillation is popular."),
        ("We are the first to do X.", "We are the first to do X."),
    ],
)
def test_contribution_line_drops_the_boilerplate_opening(sentence, line):
    assert contribution_line(sentence) == line


def test_bibtex_escapes_read_back_as_the_same_text():
    import bibtexparser

    title = "50% of a_b & c#d {x} $5 – Schrödinger “quotes”"
    ref = Reference(1, "p:1", title, "2301.01234", "https://arxiv.org/abs/2301.01234", [], 2023, ["A. Author"], "Abs.")
    library = bibtexparser.parse_string(to_bibtex([ref, ref]))
    first, second = library.entries
    assert first.key != second.key  # keys stay unique
    fields = {k.lower(): v.value for k, v in first.fields_dict.items()}
    assert latex_to_text(fields["title"]) == title
    assert fields["eprint"] == "2301.01234" and fields["url"] == ref.url and fields["year"] == "2023"
    assert bib_escape("a\\b") == r"a\textbackslash{}b"


def test_search_text_converts_only_markup():
    assert search_text("KD^{3} method") == "KD^3 method"
    assert search_text(r"the \emph{Hyper} nets") == "the Hyper nets"
    for plain in ("What is the O(n^2) cost?", "costs $5 per run", "50% less -- really"):
        assert search_text(plain) == plain


def test_shipped_corpus_is_stored_without_latex():
    from bot.corpus import load_corpus

    papers, _ = load_corpus([ROOT / "index" / "sources"])
    left = [(p.paper_id, m.group(0)) for p in papers for t in (p.title, p.abstract) if (m := LATEX_LEFT.search(t))]
    assert left == []
    kd3 = [p for p in papers if "Knowledge Distillation between Different Distributions" in p.abstract]
    assert kd3 and "(KD^3)" in kd3[0].abstract and "“Knowledge Distillation" in kd3[0].abstract


# -- end to end on the real corpus ------------------------------------------------
def test_no_latex_in_any_summary_or_answer(engine):
    from bot.summarize import summarize

    for topic in _field("topics*.jsonl", "topic"):
        summary = summarize(engine, topic, mode="extractive")
        shown = [summary.to_markdown(bibtex=False)] + [r.title for r in summary.references]
        shown += [t.name + t.statement + " ".join(line.text for line in t.lines) for t in summary.themes]
        for text in shown:
            assert not LATEX_LEFT.search(text), (topic, LATEX_LEFT.search(text))
        for theme in summary.themes:
            assert not any(line.text.lower().startswith("we propose") for line in theme.lines), theme.lines
    questions = _field("questions.jsonl", "question")
    questions += ["What is knowledge distillation between different distributions (KD^3)?"]
    for question in questions:
        answer = engine.ask(question, mode="extractive")
        shown = answer.answer + " ".join(c.title + c.quote for c in answer.citations)
        assert not LATEX_LEFT.search(shown), (question, LATEX_LEFT.search(shown))


def test_search_finds_a_paper_by_either_form(engine):
    plain = engine.search("Knowledge Distillation between Different Distributions KD^3", k=3)
    marked = engine.search("Knowledge Distillation between Different Distributions KD^{3}", k=3)
    assert plain and marked and plain[0].paper.paper_id == marked[0].paper.paper_id
    assert "KD^3" in plain[0].paper.abstract


def test_bibtex_export_imports_back_with_paperbot_index(built, tmp_path):
    """`summarize --bib` then `paperbot index` of that file into an empty index: the same papers come back."""
    from bot import corpus

    bib = tmp_path / "refs.bib"
    out = run_cli(built, "summarize", "knowledge distillation", "--papers", "6", "--bib", str(bib), "--json")
    assert out.returncode == 0, out.stderr
    refs = json.loads(out.stdout)["references"]
    assert bib.read_text(encoding="utf-8").count("@misc{") == len(refs) >= 2
    for ref in refs:
        assert ref["link"].startswith(("https://arxiv.org/abs/", "https://arxiv.org/search/?query="))
    if ".bib" not in corpus.SUPPORTED_SUFFIXES:
        pytest.skip("bot.corpus cannot read .bib yet (BibTeX import lands with issue 16); the export was checked")
    empty = tmp_path / "sources"
    empty.mkdir()
    env = dict(
        built,
        PAPERBOT_SOURCES_DIR=str(empty),
        PAPERBOT_STORE_DIR=str(tmp_path / "store"),
        PAPERBOT_COLLECTION="bib_round_trip",
    )
    indexed = run_cli(env, "index", str(bib), "--json")
    assert indexed.returncode == 0, indexed.stderr
    stats = json.loads(run_cli(env, "stats", "--json").stdout)
    assert stats["papers"] == len(refs)
    hits = json.loads(run_cli(env, "search", refs[0]["title"], "-k", "1", "--json").stdout)
    assert hits[0]["title"] == refs[0]["title"] and hits[0]["arxiv_id"] == refs[0]["arxiv_id"]


def test_a_one_word_theme_name_gives_way_to_the_phrase_most_papers_use_around_it():
    from bot.config import SummarySettings
    from bot.summarize.themes import PhraseStats, theme_name

    def stats(learning_papers: set[int]) -> dict:
        return {
            ("feder",): PhraseStats("federated", 1, {0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}, 0.01),
            ("feder", "learn"): PhraseStats("federated learning", 2, learning_papers, learning_papers, 0.05),
        }

    cfg = SummarySettings()
    assert theme_name(stats({0, 1, 2}), 5, cfg)[0] == "Federated learning"
    assert theme_name(stats({0, 1}), 5, cfg)[0] == "Federated"
