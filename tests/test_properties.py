"""Property tests (hypothesis): the parsers, the question check, settings, citations and cleaning.

Whatever text comes in, the parsers return entries and file:line problems and
never raise; every entry is clean text; ``check_question`` either returns a
clean question or raises its one-line error; settings either validate or raise
a one-line :class:`SettingsError`; the citation helpers keep their contracts.

Profiles (tests/conftest.py): "ci" (CI=true) runs a bounded number of examples
with a fixed seed; "dev" (the default) the same bound, random; "long"
(HYPOTHESIS_PROFILE=long) twenty times as many, for local runs.
"""

from __future__ import annotations

import csv
import io
import json
import re
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.citations import map_markers, markers_in, renumber, strip_markers
from bot.config import SettingsError, load_settings
from bot.corpus import MIN_ABSTRACT_CHARS, parse_arxiv_list, parse_csv, parse_jsonl, parse_listing
from bot.safety import MASK, StreamCleaner, clean, strip_controls
from bot.text import BadQuestion, check_question, has_lone_surrogate

# Any code point, lone surrogates and control characters included: what argv, files and HTTP can carry.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
CONTROL = st.sampled_from(["\x1b[2J", "\x1b]0;t\x07", "\x00", "\r", "\x9b1m", "\x1b", "\u200b", "\udcff", "\x7f"])
WORDS = st.text(string.ascii_letters + " .,;:-'()[]0123456789", min_size=0, max_size=200)
MESSY = st.lists(st.one_of(WORDS, CONTROL, ANY_TEXT), max_size=6).map("".join)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | MESSY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
FIELDS = ("title", "abstract", "arxiv_id", "year", "url", "authors")
RECORD = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUE | WORDS.map(lambda w: w * 3), max_size=6)
CONTROLS_LEFT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def check_parsed(entries, problems, text: str) -> None:
    lines = max(text.count("\n") + 1, 1)
    for entry in entries:
        for value in (entry.title or "", entry.abstract, *(entry.authors or [])):
            assert isinstance(value, str) and not CONTROLS_LEFT.search(value) and not has_lone_surrogate(value)
        assert entry.abstract.strip() == entry.abstract and entry.abstract
        assert 1 <= entry.line <= lines
    for problem in problems:
        assert 1 <= problem.line <= lines and "\n" not in problem.reason


@given(st.lists(st.one_of(RECORD.map(json.dumps), MESSY, JSON_VALUE.map(json.dumps)), max_size=8))
def test_jsonl_parser_never_raises_and_keeps_only_clean_text(lines):
    text = "\n".join(line.replace("\n", " ") for line in lines)
    entries, problems = parse_jsonl(text, "x.jsonl")
    check_parsed(entries, problems, text)
    assert len(entries) + len(problems) <= len([ln for ln in text.splitlines() if ln.strip()])


@given(st.lists(st.lists(MESSY, max_size=5), max_size=6), st.permutations(["title", "abstract", "year"]))
def test_csv_parser_never_raises_and_rejects_ragged_rows(rows, header):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    entries, problems = parse_csv(text, "x.csv")
    check_parsed(entries, problems, text)
    # csv skips blank lines, so an empty row is no row.
    assert all(len(row) == len(header) for row in rows if row) or problems or not entries


@given(st.lists(st.one_of(WORDS, MESSY, WORDS.map(lambda w: (w + " ") * 8)), max_size=10))
def test_listing_parser_never_raises(lines):
    text = "\n".join(lines)
    entries, problems = parse_listing(text, "x.txt")
    check_parsed(entries, problems, text)
    assert all(len(e.abstract) >= MIN_ABSTRACT_CHARS for e in entries)


ARXIV_ID = st.from_regex(r"\A\d{4}\.\d{4,5}(v\d)?\Z")


@given(st.lists(st.tuples(st.one_of(MESSY, WORDS.map(lambda w: (w + " ") * 8)), ARXIV_ID), max_size=6), MESSY)
def test_arxiv_list_parser_never_raises(items, tail):
    text = "".join(f"{body}\narXiv:{arxiv_id}\n" for body, arxiv_id in items) + tail
    entries, problems = parse_arxiv_list(text, "x.txt")
    check_parsed(entries, problems, text)


@given(MESSY)
def test_check_question_returns_clean_text_or_one_line_error(question):
    try:
        cleaned = check_question(question)
    except BadQuestion as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert cleaned and cleaned == cleaned.strip() and len(cleaned) <= 2000
    assert not has_lone_surrogate(cleaned) and "\u200b" not in cleaned
    assert check_question(cleaned) == cleaned  # idempotent


@given(st.text(st.sampled_from("\u200b\u200c\u200d\u2060\ufeff"), max_size=20), st.integers(0, 40))
def test_zero_width_characters_never_change_the_verdict(invisible, at):
    question = "How can diffusion models be sampled in ten steps?"
    at = min(at, len(question))
    assert check_question(question[:at] + invisible + question[at:]) == question


@given(
    st.sampled_from(["top_k", "candidate_k", "chunk_size", "mode", "port", "llm_timeout", "max_abstract_chars"]),
    st.one_of(MESSY, st.integers(-10, 100_000).map(str)),
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_settings_validate_or_give_one_line(field, value):
    assume(not has_lone_surrogate(value))
    try:
        loaded = load_settings(**{field: value})
    except SettingsError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(f"PAPERBOT_{field.upper()}")
        return
    assert loaded.top_k >= 1 and loaded.candidate_k >= 1 and loaded.chunk_overlap < loaded.chunk_size


MARKED = st.lists(
    st.one_of(
        WORDS, st.lists(st.integers(0, 12), min_size=1, max_size=3).map(lambda ns: f" [{', '.join(map(str, ns))}]")
    ),
    max_size=10,
).map("".join)


@given(MARKED)
def test_strip_markers_leaves_no_marker(text):
    assert markers_in(strip_markers(text)) == []


@given(MARKED, st.integers(1, 8))
def test_renumbered_markers_are_in_range_and_in_first_use_order(text, sources):
    renumbered, order, dangling = renumber(text, sources)
    numbers = markers_in(renumbered)
    assert all(1 <= n <= len(order) for n in numbers)
    assert len(order) <= sources and all(1 <= n <= sources for n in order)
    assert list(dict.fromkeys(numbers)) == sorted(set(numbers))  # first use order: 1, 2, 3...
    assert dangling >= 0


@given(MARKED)
def test_map_markers_through_identity_keeps_the_numbers(text):
    assert sorted(set(markers_in(map_markers(text, lambda ns: ns)))) == sorted(set(markers_in(text)))


SECRET = "sk-Prop3rty-Secret"


@given(st.lists(st.one_of(MESSY, st.just(SECRET), CONTROL), max_size=8), st.data())
def test_cleaned_model_output_has_no_secret_or_control(pieces, data):
    text = "".join(pieces)
    shown = clean(text, [SECRET])
    assert SECRET not in shown and not CONTROLS_LEFT.search(shown)
    # Streamed in arbitrary pieces, nothing shown ever holds the secret either.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    stream = StreamCleaner([SECRET])
    out = "".join(stream.feed(text[a:b]) for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True))
    out += stream.finish()
    assert SECRET not in out and not CONTROLS_LEFT.search(out)
    if SECRET in strip_controls(text):
        assert MASK in shown


@pytest.mark.parametrize("profile", ["ci", "dev", "long"])
def test_profiles_are_registered(profile):
    settings.get_profile(profile)
