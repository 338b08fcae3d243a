"""The index run's cache of parsed sources: the same papers and report with it as without it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot import corpus
from bot.corpus import SourceCache, load_corpus

from .conftest import SOURCES
from .fast_corpus import FIXTURE


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / "a.jsonl")
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    extra = [
        rows[0] | {"title": rows[0]["title"].upper()},  # the same paper again: merged
        {"title": "Too short", "abstract": "tiny"},  # a problem with its line
        {"title": "No abstract"},
        rows[1] | {"arxiv_id": "2401.00001"},
        rows[2] | {"arxiv_id": "2401.00001"},  # a different paper under that id: skipped, reported
    ]
    (folder / "b.jsonl").write_text("\n".join(json.dumps(r) for r in extra) + "\n")
    return folder


def _parses(monkeypatch) -> list[str]:
    seen: list[str] = []
    inner = corpus.read_source

    def counted(path, name=None):
        seen.append(path.name)
        return inner(path, name)

    monkeypatch.setattr(corpus, "read_source", counted)
    return seen


def test_cached_reading_gives_the_same_papers_and_report(sources: Path, tmp_path: Path, monkeypatch):
    plain = load_corpus([sources, SOURCES])
    cache = SourceCache(tmp_path / "cache")
    first = load_corpus([sources, SOURCES], cache=cache)
    parsed = _parses(monkeypatch)
    second = load_corpus([sources, SOURCES], cache=SourceCache(tmp_path / "cache"))
    assert parsed == []  # every file came from the cache
    for papers, report in (first, second):
        assert papers == plain[0]
        assert (report.files, report.entries, report.papers, report.merged) == (
            plain[1].files,
            plain[1].entries,
            plain[1].papers,
            plain[1].merged,
        )
        assert [str(p) for p in report.problems] == [str(p) for p in plain[1].problems]
    assert plain[1].merged >= 1 and any("2401.00001" in str(p) for p in plain[1].problems)


def test_a_changed_file_is_parsed_again_and_stale_entries_pruned(sources: Path, tmp_path: Path, monkeypatch):
    cache = SourceCache(tmp_path / "cache")
    load_corpus([sources], cache=cache)
    assert len(list((tmp_path / "cache").iterdir())) == 2
    with (sources / "b.jsonl").open("a") as f:
        f.write(json.dumps({"title": "A new paper on caches", "abstract": "Caching parsed files " * 10}) + "\n")
    parsed = _parses(monkeypatch)
    again = SourceCache(tmp_path / "cache")
    papers, _ = load_corpus([sources], cache=again)
    assert parsed == ["b.jsonl"]
    assert papers == load_corpus([sources])[0]
    again.prune()
    assert len(list((tmp_path / "cache").iterdir())) == 2  # a.jsonl's, and b.jsonl's new one


def test_an_unreadable_cache_file_is_parsed_again(sources: Path, tmp_path: Path, monkeypatch):
    load_corpus([sources], cache=SourceCache(tmp_path / "cache"))
    for path in (tmp_path / "cache").iterdir():
        path.write_bytes(b"{not json")
    parsed = _parses(monkeypatch)
    papers, _ = load_corpus([sources], cache=SourceCache(tmp_path / "cache"))
    assert sorted(parsed) == ["a.jsonl", "b.jsonl"] and papers == load_corpus([sources])[0]
