"""A researcher's BibTeX library: what is read, merged and skipped; bad input; several collections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.corpus import read_source
from bot.latex import latex_to_text

LIBRARY = Path(__file__).parent / "data" / "library.bib"
# The same article as Mendeley exports it: another key, doubled braces, no abstract indentation.
MENDELEY = r"""@article{Muller2023,
author = {M{\"{u}}ller, J{\"{o}}rg and Garc{\'{i}}a, Mar{\'{i}}a and O'Brien, Se{\'{a}}n},
doi = {10.5555/SOURDOUGH.2023.017},
title = {{Microbial succession in sourdough starters under {\"{O}}stlund's feeding schedules}},
abstract = {We track the yeast-to-lactobacilli ratio of sourdough starters fed on {\"{O}}stlund's schedules for 60 days, with daily amplicon sequencing of 48 starters.},
year = {2023}
}
"""


def line_of(text: str, path: Path = LIBRARY) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


@pytest.fixture
def cli(tmp_path: Path, paperbot_main):
    """`paperbot ARGS` in this process on a private store, in a collection without the shipped corpus (fast)."""
    env = {"PAPERBOT_STORE_DIR": str(tmp_path / "store"), "PAPERBOT_COLLECTION": "thesis"}
    return lambda *args: paperbot_main(*args, env=env)


def test_latex_to_text():
    assert latex_to_text(r"Sch{\"o}dinger \emph{bridges} ``work'' for $O(n^{2})$ and $T^{1/3}$") == (
        "Schödinger bridges “work” for O(n^2) and T^(1/3)"
    )
    assert (
        latex_to_text(r"$\alpha$-stable, $\mathcal{O}(\log n)$, 50\% or 5% \cite{x}.")
        == "α-stable, 𝒪(log n), 50% or 5% ."
    )
    assert latex_to_text("plain  text, 3-4 days") == "plain text, 3-4 days"
    assert latex_to_text("{unbalanced") == "unbalanced"


def test_bibtex_read_with_file_and_line():
    entries, problems = read_source(LIBRARY)
    by_title = {e.title: e for e in entries}
    assert sorted(by_title) == [
        "Café “Crema” Stability: Foam Half-Life of Espresso as a Function of Roast Degree",
        "Microbial Succession in Sourdough Starters under Östlund's Feeding Schedules",
        "Self-Consuming Generative Models with Curated Data Provably Optimize Human Preferences",
        "Sourdough Microbiomes Across Continents",
    ]
    sourdough = by_title["Microbial Succession in Sourdough Starters under Östlund's Feeding Schedules"]
    assert sourdough.authors == ["Jörg Müller", "María García", "Seán O'Brien"]
    assert (sourdough.doi, sourdough.year, sourdough.line) == (
        "10.5555/sourdough.2023.017",
        2023,
        line_of("@article{mueller"),
    )
    assert "sourdough starters fed on Östlund's schedules" in sourdough.abstract
    assert "T^(1/2) days" in sourdough.abstract and "\\" not in sourdough.abstract and "{" not in sourdough.abstract
    espresso = next(e for e in entries if e.title.startswith("Café"))
    assert (espresso.arxiv_id, espresso.url) == ("2403.01234v2", "https://arxiv.org/abs/2403.01234")
    assert "from 38 s for light roasts" in espresso.abstract and "96% of the variance" in espresso.abstract
    curated = next(e for e in entries if e.title.startswith("Self-Consuming"))
    assert (curated.arxiv_id, curated.year) == ("2407.09499", 2024)
    thesis = next(e for e in entries if e.title.startswith("Sourdough Microbiomes"))
    assert thesis.url is None  # "www.example.org/thesis" has no scheme: dropped, the paper kept
    assert [(p.source, p.line) for p in problems] == [
        ("library.bib", line_of("@book{knuth1984texbook")),
        ("library.bib", line_of("@article{broken2022")),
    ]
    assert "@book{knuth1984texbook} has no abstract" in problems[0].reason
    assert problems[1].reason.startswith("@article{broken2022: Unexpected block start")


def test_index_bib_merges_across_files_and_reports_skips(tmp_path: Path, cli):
    mendeley = tmp_path / "mendeley.bib"
    mendeley.write_text(MENDELEY, encoding="utf-8")
    code, out, err = cli("index", str(LIBRARY), str(mendeley), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["files"] == {"library.bib": 4, "mendeley.bib": 1}
    # The Mendeley copy of the sourdough article has the same DOI (any case): one paper.
    assert (summary["entries"], summary["papers"], summary["merged"]) == (5, 4, 1)
    assert summary["skipped"] == [
        f"library.bib:{line_of('@book{knuth1984texbook')}: @book{{knuth1984texbook}} has no abstract; skipped",
        f"library.bib:{line_of('@article{broken2022')}: @article{{broken2022: Unexpected block start: `@phdthesis`. "
        "Was still looking for field-value closing `}`; skipped",
    ]
    code, out, _ = cli("search", "yeast to lactobacilli ratio of sourdough starters", "--json", "-k", "1")
    assert code == 0
    [hit] = json.loads(out)
    assert hit["title"] == "Microbial Succession in Sourdough Starters under Östlund's Feeding Schedules"
    assert hit["url"] == "https://doi.org/10.5555/sourdough.2023.017"


def stats(cli) -> dict:
    code, out, err = cli("stats", "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.bib", "", "empty.bib: empty file; nothing to read"),
        ("refs.bib", '{"title": "JSON, not BibTeX", "abstract": "x"}\n', "refs.bib: no BibTeX entries"),
        ("broken.bib", "@article{k,\n  title = {never closed,\n", "broken.bib:1: @article{k: "),
        ("paper.bib", "%PDF-1.4\n\x00\x01binary", "paper.bib:1: binary file, not text"),
    ],
)
def test_unreadable_bib_is_one_line_and_loses_nothing(tmp_path: Path, cli, name: str, content: str, message: str):
    assert cli("index", str(LIBRARY))[0] == 0
    before = stats(cli)
    bad = tmp_path / name
    bad.write_text(content, encoding="utf-8")
    code, out, err = cli("index", str(bad))
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith(f"paperbot: error: {message}") and line.endswith("(the index is unchanged)")
    assert stats(cli) == before
    # Not remembered: the next plain `index` is clean.
    code, out, err = cli("index", "--json")
    assert code == 0 and name not in json.loads(out)["files"]


def test_missing_path_is_one_line_and_loses_nothing(tmp_path: Path, cli):
    assert cli("index", str(LIBRARY))[0] == 0
    before = stats(cli)
    code, _, err = cli("index", str(tmp_path / "nowhere.bib"))
    assert (code, err.strip()) == (1, f"paperbot: error: {tmp_path / 'nowhere.bib'}: no such file or folder")
    assert stats(cli) == before


def test_removed_source_loses_its_papers_and_forget(tmp_path: Path, cli):
    mine = tmp_path / "mine.bib"
    mine.write_text(MENDELEY.replace("10.5555/SOURDOUGH.2023.017", "10.5555/other"), encoding="utf-8")
    other = tmp_path / "other.bib"
    other.write_text(LIBRARY.read_text(encoding="utf-8"), encoding="utf-8")
    assert cli("index", str(mine), str(other))[0] == 0
    assert stats(cli)["sources"] == {"mine.bib": 1, "other.bib": 4}
    mine.unlink()
    code, out, err = cli("index", "--rebuild", "--json")  # a gone path no longer blocks, --rebuild included
    assert code == 0, err
    assert json.loads(out)["skipped"][0] == f"{mine}: is gone: its papers were removed and the path forgotten"
    assert stats(cli)["sources"] == {"other.bib": 4}
    code, _, err = cli("index", "--forget", str(mine))
    assert code == 1 and "is not a remembered source of collection 'thesis'" in err
    code, out, err = cli("index", "--forget", str(other), str(LIBRARY), "--json")
    assert code == 0, err
    assert json.loads(out)["files"] == {"library.bib": 4}


def test_collections_side_by_side(tmp_path: Path, cli):
    assert cli("collections", "--json")[1].strip() == "[]"
    assert cli("index", str(LIBRARY))[0] == 0
    code, out, err = cli("index", "--collection", "espresso", str(tmp_path))
    assert code == 1 and "no .bib/.csv/.jsonl/.txt files" in err
    one = tmp_path / "one.bib"
    one.write_text(LIBRARY.read_text(encoding="utf-8").split("@book{", 1)[0], encoding="utf-8")
    assert cli("index", "--collection", "espresso", str(one))[0] == 0
    code, out, _ = cli("collections", "--json")
    listed = {c["name"]: (c["papers"], c["current"]) for c in json.loads(out)}
    assert listed == {"espresso": (3, False), "thesis": (4, True)}
    code, out, _ = cli("collections")
    assert "* thesis" in out and "  espresso" in out
    # Collections are apart: the other one's papers are not there, a new one is empty until indexed.
    code, out, _ = cli("search", "--collection", "espresso", "microbiome of bakeries on four continents", "--json")
    assert "Sourdough Microbiomes Across Continents" not in [h["title"] for h in json.loads(out)]
    code, _, err = cli("ask", "--collection", "empty-one", "What is crema?")
    assert code == 1
    assert err.strip() == (
        "paperbot: error: collection 'empty-one' holds no papers yet: "
        "add some with `paperbot index --collection empty-one FILE`"
    )
    assert [c["name"] for c in json.loads(cli("collections", "--json")[1])] == ["espresso", "thesis"]


@pytest.mark.parametrize(
    "text",
    [
        "A - B, it's x_1 and y^2 in O(n^2)",  # nothing pylatexenc changes: passed by
        "Allocation & Regularization for Life-long Learning",  # "&" dropped, as pylatexenc does
        "from A -- B with ``quotes'' and 50% less",
        r"KD^{3} with \emph{emphasis} and $\alpha$",
    ],
)
def test_the_fast_path_converts_as_pylatexenc_does(text):
    from bot import latex

    assert latex.latex_to_text(text) == latex.convert_markup(text)
