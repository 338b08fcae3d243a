"""The command line in-process (typer's CliRunner and ``main``) over the nine-paper fixture corpus."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app, main
from bot.config import get_settings
from tests.fast_corpus import FRACTAL_QUESTION, FRACTAL_TITLE, OFF_TOPIC


@pytest.fixture(scope="module")
def tiny_env(tiny):
    settings = tiny.settings
    return {
        "PAPERBOT_SOURCES_DIR": str(settings.sources_dir),
        "PAPERBOT_STORE_DIR": str(settings.store_dir),
        "PAPERBOT_COLLECTION": settings.collection,
    }


@pytest.fixture
def cli(tiny_env, monkeypatch):
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "PAPERBOT_MODE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in tiny_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_index_then_stats(cli):
    result = cli.invoke(app, ["index", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["papers"] == 9

    stats = json.loads(cli.invoke(app, ["stats", "--json"]).output)
    assert stats["papers"] == 9 and stats["chunks"] >= 9


def test_ask_prints_a_cited_answer_and_its_sources(cli):
    result = cli.invoke(app, ["ask", FRACTAL_QUESTION])

    assert result.exit_code == 0, result.output
    assert "[1]" in result.output and f"[1] {FRACTAL_TITLE}" in result.output


def test_ask_json_refusal_lists_closest_papers(cli):
    result = cli.invoke(app, ["ask", OFF_TOPIC, "--json"])

    data = json.loads(result.output)
    assert data["refused"] and data["closest"] and data["citations"] == []


def test_search_ranks_the_paper_first(cli):
    result = cli.invoke(app, ["search", FRACTAL_QUESTION, "--json"])

    assert json.loads(result.output)[0]["title"] == FRACTAL_TITLE


def test_search_corrects_spelling_and_says_so(cli):
    result = cli.invoke(app, ["search", FRACTAL_QUESTION.replace("fractal", "fractl")])

    assert result.exit_code == 0, result.output
    note, first = result.stdout.splitlines()[:2]
    assert note == "note: Spelling corrected for the search: fractl -> fractal."
    assert FRACTAL_TITLE in first


def test_search_json_keeps_the_spelling_note_off_stdout(cli):
    result = cli.invoke(app, ["search", FRACTAL_QUESTION.replace("fractal", "fractl"), "--json"])

    assert json.loads(result.stdout)[0]["title"] == FRACTAL_TITLE
    assert "fractl -> fractal" in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "   "], "the question is empty"),
        (["search", "\x00\x01\x02\x03"], "not readable text"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(cli, capsys, argv, message):
    status = main(argv)

    err = capsys.readouterr().err
    assert status == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_usage_error_exits_2(cli, capsys):
    assert main(["ask"]) == 2
    assert "Missing argument" in capsys.readouterr().err
    # A bad option value is a usage error too, found before the engine loads.
    assert main(["ask", FRACTAL_QUESTION, "--mode", "bogus"]) == 2
    assert "unknown mode 'bogus'" in capsys.readouterr().err


def test_indexing_only_a_question_file_warns_that_it_needs_papers(cli, monkeypatch, tmp_path):
    questions = tmp_path / "mine.questions.jsonl"
    questions.write_text(json.dumps({"title": "A paper", "questions": ["why?"]}) + "\n", encoding="utf-8")
    monkeypatch.setenv("PAPERBOT_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("PAPERBOT_COLLECTION", "questions-only")  # a new collection starts with no sources
    monkeypatch.delenv("PAPERBOT_SOURCES_DIR")
    get_settings.cache_clear()

    result = cli.invoke(app, ["index", str(questions)])

    assert result.exit_code == 0, result.output
    assert "no papers found in the given paths or the remembered paths" in result.stderr
    assert "question files only add example questions to papers indexed from other sources" in result.stderr
