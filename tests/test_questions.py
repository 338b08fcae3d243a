"""Example questions (``*.questions.jsonl``): parsed, attached to their papers, encoded, and counted by the coverage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.answer import Engine
from bot.corpus import load_corpus, read_questions, source_files
from bot.derived import paper_key
from bot.indexing import sync
from bot.schema import Paper
from bot.summarize.select import relevance
from tests.fast_corpus import FIXTURE, FRACTAL_TITLE, tiny_settings

# A question in everyday words about the fractal paper, with none of its abstract's terms.
LAY = "When you try many settings for how fast a program learns, is the edge between working and blowing up jagged?"
SHIPPED = Path(__file__).resolve().parent.parent / "index" / "sources" / "examples.questions.jsonl"


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_papers() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def test_read_questions_keys_and_bad_lines(tmp_path):
    path = write_lines(
        tmp_path / "x.questions.jsonl",
        [
            {"paper_id": "p:abc", "questions": ["one?", " two\u0007 ? "]},
            {"arxiv_id": "arXiv:2401.01234v2", "questions": ["three?"]},
            {"title": "A Title", "questions": ["four?", ""]},
            "not json",
            {"title": "No questions"},
            {"questions": ["orphan?"]},
        ],
    )

    found, problems = read_questions(path, "x.questions.jsonl")

    assert found == {"id:p:abc": ["one?", "two ?"], "x:2401.01234": ["three?"], "t:atitle": ["four?"]}
    assert [(p.line, p.reason.split(" (")[0].split(";")[0]) for p in problems] == [
        (4, "invalid JSON"),
        (5, '"questions" is not a list of strings'),
        (6, "names no paper"),
    ]


def test_question_files_are_not_sources_and_attach_by_title_id_or_arxiv(tmp_path):
    rows = tiny_papers()
    shutil.copy(FIXTURE, tmp_path / FIXTURE.name)
    write_lines(
        tmp_path / "mine.questions.jsonl",
        [
            {"title": rows[0]["title"].upper(), "questions": ["by title?"]},
            {"title": rows[1]["title"], "questions": ["first?"]},
            {"title": rows[1]["title"], "questions": ["first?", "second?"]},
            {"title": "A paper that is not in the library", "questions": ["nowhere?"]},
        ],
    )

    papers, report = load_corpus([tmp_path])

    assert [p.name for p in source_files([tmp_path])] == [FIXTURE.name]
    assert report.papers == len(rows) and FIXTURE.name in report.files
    by_title = {p.title: p for p in papers}
    assert by_title[rows[0]["title"]].questions == ["by title?"]
    assert by_title[rows[1]["title"]].questions == ["first?", "second?"]
    assert sum(bool(p.questions) for p in papers) == 2
    assert [str(p) for p in report.problems] == ["mine.questions.jsonl: 1 question record(s) name no paper"]
    assert report.read[(tmp_path / "mine.questions.jsonl").resolve()] == 3


def test_a_paper_without_questions_keeps_its_record_and_key():
    plain = Paper("p:1", "T", "An abstract.")
    asked = Paper("p:1", "T", "An abstract.", questions=["why?"])

    assert "questions" not in plain.to_dict() and Paper.from_dict(asked.to_dict()) == asked
    assert paper_key(plain) != paper_key(asked)
    assert paper_key(plain) == paper_key(Paper("p:2", "T", "An abstract.", year=2020))


def test_the_shipped_questions_name_every_shipped_paper():
    papers, report = load_corpus([SHIPPED.parent])

    # Four in examples.questions.jsonl and two in everyday.questions.jsonl (an area phrase and a question).
    assert all(len(p.questions) >= 6 for p in papers)
    assert not [p for p in report.problems if "question" in p.reason]


@pytest.fixture(scope="module")
def asked(tmp_path_factory, tiny):
    """The tiny library with one example question for the fractal paper, and the same library without."""
    settings = tiny_settings(tmp_path_factory.mktemp("asked"))
    write_lines(settings.sources_dir / "tiny.questions.jsonl", [{"title": FRACTAL_TITLE, "questions": [LAY]}])
    return Engine(settings), tiny


def test_example_questions_count_in_the_coverage_less_the_offset(asked):
    engine, bare = asked
    paper = next(p for p in (engine.retriever.paper(i) for i in engine.retriever.papers) if p.title == FRACTAL_TITLE)
    offset = engine.settings.question_coverage_offset

    assert paper.questions == [LAY]
    assert engine.retriever.coverage(LAY, [paper]) == pytest.approx(1.0 - offset, abs=1e-3)
    assert bare.retriever.coverage(LAY, [bare.retriever.paper(paper.paper_id)]) < 1.0 - offset - 0.1
    # The questions are matched, never quoted.
    sentences, _ = engine.retriever.sentence_vectors(paper)
    assert LAY not in sentences and LAY not in engine.ask(LAY, mode="extractive").answer


def test_the_question_vectors_are_stored_per_generation_and_scored(asked):
    engine, bare = asked
    retriever = engine.retriever
    scores = retriever.score_papers(LAY, retriever.embed_query(LAY))
    fractal = scores.paper_ids.index(next(p for p in retriever.papers if retriever.paper(p).title == FRACTAL_TITLE))

    assert scores.questions[fractal] == pytest.approx(1.0, abs=1e-4)  # the question itself
    assert np.isnan(np.delete(scores.questions, fractal)).all()  # the other papers have none
    plain = bare.retriever.score_papers(LAY, bare.retriever.embed_query(LAY))
    assert np.isnan(plain.questions).all()


def test_a_paper_without_questions_counts_as_average_in_the_relevance_rule(asked):
    engine, _ = asked
    retriever = engine.retriever
    scores = retriever.score_papers(LAY, retriever.embed_query(LAY))
    vectors = retriever.paper_vectors(scores.paper_ids)
    cfg = engine.settings.summary
    rule = cfg.question_rule.model_copy(update={"w_dense": 0.0, "w_bm25": 0.0, "w_seed": 0.0, "bias": 0.0})

    prob = relevance(scores, vectors, cfg, rule)

    asked_row = int(np.flatnonzero(~np.isnan(scores.questions))[0])
    assert prob[asked_row] == pytest.approx(0.5)  # the only asked paper is the average of itself
    assert np.allclose(np.delete(prob, asked_row), 0.5)


def test_a_new_generation_reuses_or_encodes_the_question_vectors(tmp_path):
    """A new paper changes the manifest: the next generation keeps the fractal paper's question vector,
    taken from the previous generation, or encoded again when that one stored none (format 2)."""
    from bot.derived import derived_root

    settings = tiny_settings(tmp_path)
    write_lines(settings.sources_dir / "tiny.questions.jsonl", [{"title": FRACTAL_TITLE, "questions": [LAY]}])
    sync(settings)
    rows = tiny_papers()

    def best_question(extra: int) -> np.ndarray:
        more = [dict(rows[i], title=f"Extra Paper {i}", abstract=rows[i]["abstract"] + " More.") for i in range(extra)]
        write_lines(settings.sources_dir / "more.jsonl", more)
        sync(settings)
        retriever = Engine(settings).retriever
        return retriever.score_papers(LAY, retriever.embed_query(LAY)).questions

    reused = best_question(1)
    assert np.nanmax(reused) == pytest.approx(1.0, abs=1e-4) and np.isfinite(reused).sum() == 1
    for path in derived_root(settings).glob("gen*/question_*.npy"):
        path.unlink()
    encoded = best_question(2)
    assert np.nanmax(encoded) == pytest.approx(1.0, abs=1e-4) and np.isfinite(encoded).sum() == 1


def test_the_question_leg_joins_the_fusion_only_when_every_paper_has_questions(tmp_path):
    """LAY is asked of another paper than the fractal one: only the question leg can lift that paper."""
    rows = tiny_papers()
    other = next(r["title"] for r in rows if r["title"] != FRACTAL_TITLE)
    settings = tiny_settings(tmp_path)
    questions = [{"title": r["title"], "questions": [f"What does the paper titled {r['title']!r} show?"]} for r in rows]
    questions.append({"title": other, "questions": [LAY]})
    some_only = [q for q in questions if q["title"] != FRACTAL_TITLE]  # the fractal paper has none
    write_lines(settings.sources_dir / "tiny.questions.jsonl", some_only)
    some = Engine(settings)
    rank_some = [h.paper.title for h in some.search(LAY, k=9)].index(other)
    write_lines(settings.sources_dir / "tiny.questions.jsonl", questions)
    sync(settings)
    every = Engine(settings)
    off = Engine(settings.model_copy(update={"question_weight": 0.0}), store=every.store)

    rank_every = [h.paper.title for h in every.search(LAY, k=9)].index(other)
    rank_off = [h.paper.title for h in off.search(LAY, k=9)].index(other)

    assert rank_every < rank_off and rank_every <= 1
    assert rank_some == rank_off
