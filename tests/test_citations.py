"""The [n] marker rule, table by table (bot/citations.py)."""

from __future__ import annotations

import pytest

from bot.citations import keep_resolvable, map_markers, markers_in, renumber, strip_markers, tidy, with_marker


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("A claim [2].", [2]),
        ("Two papers [1, 3].", [1, 3]),
        ("Semicolons [1; 3].", [1, 3]),
        ("A range [1-3].", [1, 2, 3]),
        ("An en-dash range [2\u20134].", [2, 3, 4]),
        ("Maths on L^2([0,1]^d) is not a citation.", []),
        ("Subscripts x[1]_t are not either.", []),
        ("A link [1](http://example.org) is not.", []),
        ("A year [2022] has four digits.", []),
        ("No markers at all.", []),
    ],
)
def test_markers_in(text, numbers):
    assert markers_in(text) == numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A [1] and B [2].", "A and B."),
        ("Only maths [0,1]^d stays.", "Only maths [0,1]^d stays."),
        ("Range [1-2] goes.", "Range goes."),
    ],
)
def test_strip_markers(text, expected):
    assert strip_markers(text) == expected


def test_map_markers_rewrites_in_comma_form_and_drops_empty_groups():
    assert map_markers("X [1; 2]. Y [3].", lambda ns: [n * 10 for n in ns if n != 3]) == "X [10, 20]. Y."


def test_keep_resolvable_counts_what_it_drops():
    assert keep_resolvable("X [1, 4]. Y [5].", {1, 2}) == ("X [1]. Y.", 2)


@pytest.mark.parametrize(
    ("text", "n_sources", "new_text", "order", "dangling"),
    [
        ("B [3]. A [1]. B again [3].", 3, "B [1]. A [2]. B again [1].", [3, 1], 0),
        ("Real [2]. Invented [7].", 2, "Real [1]. Invented.", [2], 1),
        ("On L^2([0,1]^d) it holds [2].", 2, "On L^2([0,1]^d) it holds [1].", [2], 0),
        ("Nothing cited.", 3, "Nothing cited.", [], 0),
    ],
)
def test_renumber(text, n_sources, new_text, order, dangling):
    assert renumber(text, n_sources) == (new_text, order, dangling)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1] First claim. [2] Second claim.", "First claim [1]. Second claim [2]."),
        ("A claim.\n[1]\nAnother.", "A claim. [1]\nAnother."),
        ("A claim [1].\n\nReferences:\n[1] Some title", "A claim [1]."),
    ],
)
def test_tidy_puts_markers_after_claims_and_drops_reference_lists(text, expected):
    assert tidy(text) == expected


@pytest.mark.parametrize(
    ("sentence", "expected"), [("A claim.", "A claim [2]."), ("A claim", "A claim [2]"), ("Why? ", "Why [2]?")]
)
def test_with_marker(sentence, expected):
    assert with_marker(sentence, 2) == expected
