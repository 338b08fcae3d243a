"""Title, abstract and arXiv keys, and gold resolution (bot/normalize.py)."""

from __future__ import annotations

import pytest

from bot.normalize import GoldIndex, bare_arxiv_id, drop_reference_marks, normalize_abstract, normalize_title
from bot.schema import Paper


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("DPM-Solver: A Fast ODE Solver", "dpm solver a fast ode solver"),
        ("Schr\u00f6dinger  Bridges", "schrdinger bridges"),
        ("\uff21\uff22 full-width", "AB full width"),
    ],
)
def test_titles_that_name_one_paper_share_a_key(a, b):
    assert normalize_title(a) == normalize_title(b)


def test_abstract_key_ignores_latex_commands():
    assert normalize_abstract(r"We \emph{propose} X.") == normalize_abstract("We propose X")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2301.01234", "2301.01234"),
        ("arXiv:2301.01234v2", "2301.01234"),
        ("ARXIV:2301.12345", "2301.12345"),
        ("A title 2301.01234", None),
        ("cs/0601001", None),
    ],
)
def test_bare_arxiv_id(text, expected):
    assert bare_arxiv_id(text) == expected


def test_reference_marks_go_but_intervals_stay():
    assert drop_reference_marks("Hypothesis [27] holds on L^2([0,1]^d).") == "Hypothesis holds on L^2([0,1]^d)."


def test_gold_index_resolves_titles_and_ids_and_reports_the_rest():
    papers = [
        Paper("p:1", "Deep Sets", "abstract"),
        Paper("arxiv:2301.01234", "An inferred title", "abstract", arxiv_id="2301.01234v3"),
    ]
    index = GoldIndex(papers)

    found, missing = index.resolve_all(["deep  sets", "arXiv:2301.01234", "Deep Sets", "No such paper"])

    assert found == ["p:1", "arxiv:2301.01234"] and missing == ["No such paper"]
