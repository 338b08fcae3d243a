"""The eval harness on the real corpus: gold resolution, metrics against LlamaIndex's, reports, the gate, the judge.

The fast checks of the dataset loader and the metrics are in tests/test_eval_units.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from llama_index.core.evaluation import RetrieverEvaluator
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from bot.corpus import load_corpus
from bot.eval.baseline import Baseline, compare
from bot.eval.dataset import DatasetError, EvalQuestion, load_dataset, resolve_gold
from bot.eval.judge import parse_judgement
from bot.eval.run import run_command, run_eval

from .conftest import SOURCES

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "evals" / "questions.jsonl"


# These tests are about the harness, not the refusal rule: q002's coverage sits next to the
# refusal threshold (0.518 against 0.53), so which way it goes is left to the eval figures.
BORDERLINE = {"q002"}


def _subset(counts: dict[str, int]) -> list[dict]:
    """The first questions of each type from the shipped dev set."""
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["id"] not in BORDERLINE]
    picked: list[dict] = []
    for kind, n in counts.items():
        picked += [r for r in rows if r["type"] == kind][:n]
    return picked


def _question(qid: str, question: str, kind: str, gold: list[str], reference: str, line: int) -> EvalQuestion:
    return EvalQuestion(id=qid, question=question, type=kind, gold=gold, reference_answer=reference, line=line)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


GOOD = {"id": "a", "question": "What is grokking?", "type": "lookup", "gold": ["2506.03719"], "reference_answer": ""}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "b", "question": "x?", "type": "lookup", "gold": ["T"]', "not valid JSON"),
        ('["not", "an", "object"]', "expected a JSON object"),
        ('{"id": "b", "question": "Why?", "type": "lookup"}', "missing field(s) gold"),
        ('{"id": "b", "question": "Why?", "type": "lookup", "gold": "A title"}', "'gold' must be a list"),
        ('{"id": "b", "question": "Why?", "type": "unanswerable", "gold": ["A"]}', "empty 'gold'"),
        ('{"id": "b", "question": "Why?", "type": "multi", "gold": []}', "'gold' is empty"),
        ('{"id": "b", "question": "", "type": "lookup", "gold": ["A"]}', "'question' must be"),
        ('{"id": "a", "question": "Again?", "type": "lookup", "gold": ["A"]}', "already used on line 1"),
    ],
)
def test_malformed_line_is_reported_with_its_number(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert f"{path} line 3:" in str(info.value)
    assert message in str(info.value)


def test_cli_names_the_bad_line_and_exits_nonzero(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + '{"id": "b", "question": ' + "\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "eval", "--dataset", str(path), "--out", str(tmp_path / "run")],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"paperbot: error: {path} line 2: not valid JSON")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_gold_matching_titles_and_arxiv_ids(engine) -> None:
    papers = engine.manifest.papers
    titled = next(p for p in papers if not p.title_inferred)
    with_id = next(p for p in papers if p.arxiv_id)
    questions = [
        # Case, spacing and punctuation do not matter for titles; "arXiv:" and versions do not for ids.
        _question("t", "q?", "lookup", [f"  {titled.title.upper()}!"], "", 1),
        _question("i", "q?", "lookup", [f"arXiv:{with_id.arxiv_id}v2"], "", 2),
        _question("u", "q?", "unanswerable", [], "", 3),
    ]
    assert resolve_gold(questions, papers, "set.jsonl") == {"t": [titled.paper_id], "i": [with_id.paper_id], "u": []}
    questions.append(_question("x", "q?", "multi", [titled.title, "A Paper Nobody Wrote"], "", 7))
    with pytest.raises(DatasetError, match=r"set.jsonl line 7 \(x\): gold 'A Paper Nobody Wrote' matches no indexed"):
        resolve_gold(questions, papers, "set.jsonl")


class RankedPapers(BaseRetriever):
    """The engine's paper ranking as LlamaIndex nodes whose ids are paper ids."""

    def __init__(self, engine, k: int, kind: str) -> None:
        super().__init__()
        self.engine, self.k, self.kind = engine, k, kind

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.engine.search(query_bundle.query_str, k=self.k, kind=self.kind)
        return [NodeWithScore(node=TextNode(id_=h.paper.paper_id, text=h.chunk_text), score=h.score) for h in hits]


@pytest.mark.slow
def test_hit_rate_mrr_and_ndcg_equal_llamaindex_retriever_evaluator(engine) -> None:
    kind = "hybrid"
    rows = _subset({"multi": 4, "lookup": 2, "detail": 2})
    questions = [_question(r["id"], r["question"], r["type"], r["gold"], "", i) for i, r in enumerate(rows, 1)]
    gold = resolve_gold(questions, engine.manifest.papers, "subset")
    results = run_eval(engine, questions, gold, mode="extractive", retriever=kind, progress=False)
    evaluators = {
        k: RetrieverEvaluator.from_metric_names(["hit_rate", "mrr", "ndcg"], retriever=RankedPapers(engine, k, kind))
        for k in (1, 5, 10)
    }
    mrr_values = []
    for q, record in zip(questions, results.questions, strict=True):
        assert len(record.retrieved) == 10
        theirs = {
            k: ev.evaluate(query=q.question, expected_ids=gold[q.id]).metric_vals_dict for k, ev in evaluators.items()
        }
        ours = record.metrics
        assert ours["hit@1"] == theirs[1]["hit_rate"]
        assert ours["hit@5"] == theirs[5]["hit_rate"]
        assert ours["mrr@10"] == pytest.approx(theirs[10]["mrr"])
        assert ours["ndcg@10"] == pytest.approx(theirs[10]["ndcg"])
        mrr_values.append(ours["mrr@10"])
    # The group metric is the mean of the per-question values LlamaIndex agreed with.
    assert results.metrics["all"]["mrr@10"] == pytest.approx(sum(mrr_values) / len(mrr_values))
    # Not a trivial agreement on perfect rankings: multi questions have gold papers below rank 1.
    assert any(r.metrics["recall@5"] < 1 or r.metrics["mrr@10"] < 1 for r in results.questions)


@pytest.mark.slow
def test_gate_passes_on_itself_and_fails_when_retrieval_is_weakened(
    engine, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    dataset = _write(tmp_path / "small.jsonl", _subset({"lookup": 2, "detail": 2, "multi": 3, "unanswerable": 1}))
    baseline = tmp_path / "baseline.json"
    runs = tmp_path / "runs"

    # A baseline made from this engine, then a normal run against it.
    status = run_command(
        lambda: engine, dataset, mode="extractive", baseline=baseline, out=runs / "1", update_baseline=True
    )
    assert status == 0
    saved = json.loads(baseline.read_text())
    assert saved["tolerance"]["latency_p50_ms"] is None
    assert saved["metrics"]["all"]["questions"] == 8
    lines: list[str] = []
    status = run_command(
        lambda: engine, dataset, mode="extractive", baseline=baseline, out=runs / "2", echo=lines.append
    )
    assert status == 0, "\n".join(lines)
    assert json.loads((runs / "2" / "results.json").read_text())["comparison"]["regressions"] == []

    # The real command with one paper per question: recall drops and the gate fails.
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "eval", "--dataset", str(dataset), "--mode", "extractive"]
        + ["--baseline", str(baseline), "--out", str(runs / "weak"), "-k", "1"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = json.loads((runs / "weak" / "results.json").read_text())
    regressed = {(e["group"], e["metric"]) for e in results["comparison"]["regressions"]}
    assert ("all", "recall@5") in regressed
    assert "all / recall@5:" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith("paperbot: error: eval failed: metrics dropped")
    assert "regression(s)" in (runs / "weak" / "report.md").read_text()


@pytest.mark.slow
def test_run_writes_results_report_and_chart(engine, tmp_path: Path) -> None:
    rows = _subset({"lookup": 1, "multi": 1, "unanswerable": 1})
    rows[0] = rows[0] | {"type": "custom"}  # any type name works
    dataset = _write(tmp_path / "mini.jsonl", rows)
    lines: list[str] = []
    for name in ("a", "b"):
        assert run_command(lambda: engine, dataset, mode="extractive", out=tmp_path / name, echo=lines.append) == 0
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert set(results["metrics"]) == {"all", "custom", "multi", "unanswerable"}
    record = results["questions"][0]
    assert record["retrieved"][0]["rank"] == 1 and record["cited"]
    assert {"paper_id", "title", "gold"} <= set(record["cited"][0])
    # Extractive sentences are quotes of the cited abstracts.
    assert results["metrics"]["all"]["groundedness"] == 1.0
    assert results["metrics"]["unanswerable"]["hit@5"] is None
    assert results["judge"] is None  # no LLM configured
    report = (tmp_path / "b" / "report.md").read_text()
    assert "| metric | custom | multi | unanswerable | all |" in report
    assert "](metrics_over_runs.png)" in report
    assert (tmp_path / "b" / "metrics_over_runs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_uses_direction_and_tolerances_and_ignores_latency() -> None:
    baseline = {
        "tolerance": {"default": 0.02, "by_type": 0.1, "latency_p50_ms": None, "all/groundedness": 0.5},
        "metrics": {
            "all": {"hit@5": 0.8, "false_refusal": 0.1, "latency_p50_ms": 100.0, "groundedness": 0.9, "mrr@10": 0.7},
            "multi": {"hit@5": 0.8, "answer_f1": 0.4},
        },
    }
    current = {
        "all": {"hit@5": 0.79, "false_refusal": 0.2, "latency_p50_ms": 900.0, "groundedness": 0.5, "mrr@10": 0.8},
        "multi": {"hit@5": 0.6, "answer_f1": 0.0},
    }
    result = compare(current, Baseline.model_validate(baseline))
    regressed = {(e.group, e.metric) for e in result.regressions}
    # hit@5 within 0.02; a higher false-refusal rate is worse; groundedness has its own tolerance;
    # per-type answer F1 is not gated; latency never is.
    assert regressed == {("all", "false_refusal"), ("multi", "hit@5")}
    assert [(e.group, e.metric) for e in result.improvements] == [("all", "mrr@10")]
    # A gated metric the run no longer produces is a regression too.
    del current["multi"]
    again = compare(current, Baseline.model_validate(baseline))
    assert ("multi", "hit@5") in {(e.group, e.metric) for e in again.regressions}


def test_parse_judgement() -> None:
    assert parse_judgement("correctness: 5\nfaithfulness: yes") == {"correctness": 1.0, "faithfulness": 1.0}
    assert parse_judgement('{"correctness": 2, "faithfulness": "no"}') == {"correctness": 0.25, "faithfulness": 0.0}
    assert parse_judgement("correctness: 9\nfaithfulness: yes") is None
    assert parse_judgement("I think it is fine.") is None


@pytest.mark.slow
def test_llm_judge_scores_are_reported_apart(engine, tmp_path: Path) -> None:
    from bot.answer import Engine
    from tests.fakeopenai import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    try:
        settings = engine.settings.model_copy(update={"openai_base_url": fake.url, "llm_max_retries": 0})
        judged_engine = Engine(settings, store=engine.store)
        rows = _subset({"lookup": 2, "unanswerable": 1})
        questions = [_question(r["id"], r["question"], r["type"], r["gold"], r["reference_answer"], 1) for r in rows]
        gold = resolve_gold(questions, engine.manifest.papers, "subset")
        fake.play(Reply(text="correctness: 4\nfaithfulness: yes"), Reply(text="Looks good to me."))
        results = run_eval(judged_engine, questions, gold, mode="extractive", progress=False)
    finally:
        fake.stop()
    # Refusals are not sent to the judge: two answers, two requests.
    assert len(fake.requests) == 2
    prompt = fake.requests[0]["messages"][-1]["content"]
    assert questions[0].question in prompt and rows[0]["reference_answer"] in prompt
    cited = results.questions[0].cited[0].paper_id
    assert engine.retriever.papers[cited].abstract[:200] in prompt
    judge = results.judge
    assert judge.metrics["all"] == {"judged": 1.0, "judge_correctness": 0.75, "judge_faithfulness": 1.0}
    assert judge.errors == [f"{rows[1]['id']}: reply not in the expected form"]
    assert not any(key.startswith("judge") for key in results.metrics["all"])


@pytest.mark.slow
def test_llm_mode_reports_verified_sentences_fallbacks_and_first_text_time(engine, tmp_path: Path) -> None:
    from pydantic import SecretStr

    from bot.answer import Engine
    from bot.text import split_sentences
    from tests.fakeopenai import FakeOpenAI, Reply

    rows = _subset({"lookup": 2, "unanswerable": 1})
    questions = [_question(r["id"], r["question"], r["type"], r["gold"], r["reference_answer"], 1) for r in rows]
    gold = resolve_gold(questions, engine.manifest.papers, "subset")
    hits = engine.sources_for(rows[0]["question"]).hits
    claim = max(split_sentences(hits[0].paper.abstract), key=len)
    fake = FakeOpenAI().start()
    try:
        settings = engine.settings.model_copy(
            update={"openai_base_url": fake.url, "openai_api_key": SecretStr("sk-x"), "llm_max_retries": 0}
        )
        fake.play(
            # One supported sentence, one the source does not support, and a marker pointing nowhere.
            Reply(text=f"{claim} [1] Bananas grow best in humid tropical climates [1][9]."),
            Reply(status=500),
        )
        results = run_eval(Engine(settings, store=engine.store), questions, gold, mode="llm", judge=False)
    finally:
        fake.stop()
    first, second, third = results.questions
    assert first.mode == "llm" and first.metrics["sentences_verified"] == 0.5
    assert first.metrics["dangling_removed"] == 1.0 and first.metrics["fallback"] == 0.0
    assert second.mode == "extractive" and second.metrics["fallback"] == 1.0
    assert second.metrics["sentences_verified"] == 1.0  # extractive sentences are quotes
    assert third.refused and third.metrics["sentences_verified"] is None
    assert all(0 < r.ttft_ms <= r.latency_ms for r in results.questions)
    overall = results.metrics["all"]
    assert overall["sentences_verified"] == 0.75 and overall["fallback"] == pytest.approx(1 / 3)
    assert overall["ttft_p50_ms"] <= overall["latency_p50_ms"]
    assert len(fake.requests) == 2  # the unanswerable question never reached the model


SHIPPED = [
    "questions",
    *sorted(p.stem for pattern in ("heldout*", "styles*") for p in (ROOT / "evals").glob(f"{pattern}.jsonl")),
]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_question_sets_load_and_every_gold_names_a_paper(name: str):
    path = ROOT / "evals" / f"{name}.jsonl"
    questions = load_dataset(path)
    papers, _ = load_corpus([SOURCES])
    gold = resolve_gold(questions, papers, path)
    assert all(gold[q.id] for q in questions if q.type != "unanswerable")
    assert not any(gold[q.id] for q in questions if q.type == "unanswerable")


def test_check_gold_script_passes():
    done = subprocess.run([sys.executable, str(ROOT / "evals" / "check_gold.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_gold_script_reports_each_bad_line(tmp_path: Path) -> None:
    for path in (ROOT / "evals").glob("*.jsonl"):
        shutil.copy(path, tmp_path / path.name)
    styles = (tmp_path / "styles1.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(styles[0])
    styles[0] = json.dumps(first | {"style": "shouty"})
    second = json.loads(styles[1])["id"]
    styles[3] = json.dumps(json.loads(styles[3]) | {"id": second})
    styles[2] = json.dumps(json.loads(styles[2]) | {"gold": ["A Paper Nobody Wrote"]})
    styles[5] = json.dumps(json.loads(styles[5]) | {"question": json.loads(styles[6])["question"]})
    (tmp_path / "styles1.jsonl").write_text("\n".join(styles) + "\n", encoding="utf-8")
    # The same words in another file: a warning (blind writers may word a search-box query alike).
    other = (tmp_path / "styles2.jsonl").read_text(encoding="utf-8").splitlines()
    other[0] = json.dumps(json.loads(other[0]) | {"question": json.loads(styles[9])["question"]})
    (tmp_path / "styles2.jsonl").write_text("\n".join(other) + "\n", encoding="utf-8")
    topics = [json.loads(line) for line in (tmp_path / "topics2.jsonl").read_text(encoding="utf-8").splitlines()]
    topics[0]["form"] = "uncovered"
    (tmp_path / "topics2.jsonl").write_text("".join(json.dumps(t) + "\n" for t in topics), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(ROOT / "evals" / "check_gold.py"), "--sets", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    assert any("styles1.jsonl line 1: 'style' must be one of" in e for e in errors), errors
    assert any(f"styles1.jsonl line 4: id {second!r} already used on line 2" in e for e in errors), errors
    assert any("styles1.jsonl:3: title not found verbatim in sources: 'A Paper Nobody Wrote'" in e for e in errors)
    assert any("topics2.jsonl line 1: 'gold' must be empty exactly when 'form' is 'uncovered'" in e for e in errors)
    assert any("styles1.jsonl:7: question text repeated (also styles1.jsonl:6)" in e for e in errors), errors
    warned = [line for line in done.stdout.splitlines() if line.startswith("WARN")]
    assert any("styles2.jsonl:1: question text repeated (also styles1.jsonl:10)" in w for w in warned), warned
    assert done.stdout.strip().splitlines()[-1] == f"FAILED: {len(errors)} error(s)"
