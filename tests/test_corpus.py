"""Parsing the real source pages, deduplication, and users' own files."""

from __future__ import annotations

import json
from pathlib import Path

from bot.citations import markers_in
from bot.corpus import load_corpus, merge_entries, parse_arxiv_list, read_source
from bot.normalize import normalize_abstract

from .conftest import SOURCES


def test_real_corpus_counts():
    papers, report = load_corpus([SOURCES])
    assert report.entries == 573
    assert report.papers == len(papers) == 529
    assert report.merged == 44
    assert report.problems == []
    assert report.files == {
        "000_d21d37d8c3330e84.txt": 10,
        "001_9233dda8a2e739e4.txt": 224,
        "002_ea351a10be756117.txt": 242,
        "003_75cb68a9151ad971.txt": 45,
        "004_7b1d219a627d0466.txt": 52,
    }
    assert len({p.paper_id for p in papers}) == 529


def test_headers_and_glued_subscribe_are_not_titles():
    papers, _ = load_corpus([SOURCES])
    titles = {p.title for p in papers}
    assert "Improved sampling via learned diffusions" in titles
    assert not any(t.startswith("Subscribe") or t.startswith("Get trending") for t in titles)
    assert not any(t in {"new", "Apr 23", "Mar 12", "byAK and the research community"} for t in titles)


def test_arxiv_list_ids_doi_and_comment_lines():
    entries, problems = read_source(next(SOURCES.glob("000_*.txt")))
    assert problems == []
    ids = [e.arxiv_id for e in entries]
    assert ids[0] == "2506.03719" and ids[-1] == "2206.12301" and len(set(ids)) == 10
    by_id = {e.arxiv_id: e for e in entries}
    # The DOI and journal reference glued to the next abstract are cut off.
    assert by_id["2310.00429"].abstract.startswith("Deep generative models have made tremendous progress")
    # Comment lines ("36 pages", "Oral at ...") are not part of the abstract.
    assert "36 pages" not in by_id["2211.14666"].abstract
    assert "Oral at the LatinX" not in by_id["2306.07905"].abstract
    assert by_id["2506.03719"].year == 2025


def test_duplicate_across_files_merges_sources_and_keeps_arxiv_id():
    papers, _ = load_corpus([SOURCES])
    paper = next(p for p in papers if p.arxiv_id == "2407.09499")
    assert len(paper.sources) == 3
    assert paper.title.startswith("Self-Consuming Generative Models with Curated Data")
    assert paper.url == "https://arxiv.org/abs/2407.09499"
    assert not paper.title_inferred


def test_latex_markup_does_not_split_a_paper():
    assert normalize_abstract(r"We show an \emph{implicit} bias.") == normalize_abstract("We show an implicit bias.")
    text = "x" * 120
    entries = parse_arxiv_list(f"A study of \\emph{{bias}} {text}.\narXiv:2101.00001", "a.txt")[0]
    entries += parse_arxiv_list(f"A study of bias {text}.\narXiv:2101.00002", "b.txt")[0]
    assert len(merge_entries(entries)) == 1


def test_user_jsonl_and_csv_with_bad_lines_reported(tmp_path: Path):
    abstract = "We study a made-up problem in enough words to count as an abstract. " * 3
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                json.dumps({"title": "Paper A", "abstract": abstract, "arxiv_id": "2401.00001", "year": 2024}),
                "{not json",
                json.dumps({"title": "No abstract"}),
                json.dumps({"title": "Bad year", "abstract": abstract, "year": "soon"}),
            ]
        )
    )
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text(
        f'title,abstract,authors\nPaper B,"Another {abstract}","Ada Lovelace; Alan Turing"\n,missing title,\n'
    )
    papers, report = load_corpus([tmp_path])
    assert sorted(p.title for p in papers) == ["Paper A", "Paper B"]
    reasons = [str(p) for p in report.problems]
    assert any(r.startswith("mine.jsonl:2: invalid JSON") for r in reasons)
    assert any(r.startswith("mine.jsonl:3: missing 'abstract'") for r in reasons)
    assert any(r.startswith("mine.jsonl:4: bad 'year'") for r in reasons)
    assert any(r.startswith("mine.csv:3: missing 'title'") for r in reasons)
    paper_b = next(p for p in papers if p.title == "Paper B")
    assert paper_b.authors == ["Ada Lovelace", "Alan Turing"]


def test_listing_title_without_abstract_is_reported(tmp_path: Path):
    page = tmp_path / "page.txt"
    abstract = "An abstract sentence that is long enough to be an abstract and not a title at all. " * 2
    page.write_text(f"Subscribe\nTitle One\n{abstract}\nTitle Two\nTitle Three\n{abstract}x\n")
    papers, report = load_corpus([page])
    assert [p.title for p in papers] == ["Title One", "Title Three"]
    assert [str(p) for p in report.problems] == ["page.txt:4: title without an abstract: 'Title Two'; skipped"]


def test_binary_file_is_reported_not_fatal(tmp_path: Path):
    (tmp_path / "junk.txt").write_bytes(b"\x00\x01\x02binary")
    papers, report = load_corpus([tmp_path])
    assert papers == []
    assert str(report.problems[0]) == "junk.txt:1: binary file, not text; skipped"


def test_abstracts_lose_their_own_reference_marks_but_keep_intervals():
    # "[27]" in an abstract would read as one of paperbot's [n] citations.
    papers, _ = load_corpus([SOURCES])
    by_title = {p.title: p.abstract for p in papers}
    riemann = next(a for t, a in by_title.items() if t.startswith("Analysis on Riemann Hypothesis"))
    assert "Riemann Hypothesis, which is composed" in riemann
    assert markers_in(riemann) == []
    moe = next(a for t, a in by_title.items() if t.startswith("Mixture of Experts Soften"))
    assert "L^2([0,1]^d)" in moe
    assert markers_in(f"{moe} [2]") == [2]  # the interval is not a citation either
