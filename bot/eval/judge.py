"""The LLM judge: correctness and faithfulness of each answer, reported apart from the other metrics."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

from bot.eval.metrics import group_records, mean
from bot.eval.results import GroupMetrics, JudgeResult, QuestionResult
from bot.safety import clean

if TYPE_CHECKING:
    from bot.answer import Engine

_JUDGE_FIELD = re.compile(r'"?(correctness|faithfulness)"?\s*[:=]\s*"?([0-9]+(?:\.[0-9]+)?|yes|no|true|false)', re.I)
# prompts/judge.txt asks for correctness on this scale and faithfulness as yes/no.
CORRECTNESS_SCALE = (1.0, 5.0)
JUDGE_KEYS = ["judged", "judge_correctness", "judge_faithfulness"]


def parse_judgement(text: str) -> dict[str, float] | None:
    """Read the judge's reply: correctness 1-5 (scaled to 0-1) and faithfulness yes/no (1/0)."""
    low, high = CORRECTNESS_SCALE
    found: dict[str, float] = {}
    for name, raw in _JUDGE_FIELD.findall(text):
        name, raw = name.lower(), raw.lower()
        if name in found:
            continue
        if raw in ("yes", "true"):
            value = 1.0
        elif raw in ("no", "false"):
            value = 0.0
        else:
            value = float(raw)
        if name == "correctness":
            if not low <= value <= high:
                continue
            value = (value - low) / (high - low)
        elif value not in (0.0, 1.0):
            continue
        found[name] = value
    return found if len(found) == 2 else None


def _judge_sources(engine: Engine, record: QuestionResult) -> str:
    lines = []
    for cited in record.cited:
        paper = engine.retriever.papers[cited.paper_id]
        lines.append(f"[{cited.n}] {paper.title}\n{paper.abstract}")
    return "\n\n".join(lines) or "(none)"


def judge_metrics(records: list[QuestionResult]) -> GroupMetrics:
    """Per group: how many answers were judged, and their mean correctness and faithfulness."""
    metrics: GroupMetrics = {}
    for name, members in group_records(records).items():
        verdicts = [r.judge for r in members if r.judge is not None and "correctness" in r.judge]
        metrics[name] = {
            "judged": float(len(verdicts)),
            "judge_correctness": mean(float(v["correctness"]) for v in verdicts),
            "judge_faithfulness": mean(float(v["faithfulness"]) for v in verdicts),
        }
    return metrics


def run_judge(engine: Engine, records: list[QuestionResult], progress: bool = True) -> JudgeResult:
    """Ask the configured LLM to grade each non-refused answer; sets each record's ``judge``."""
    from tqdm import tqdm

    from bot.llm import describe_failure, fill, load_prompt, model_errors

    try:
        template = load_prompt("judge", engine.settings)
        llm = engine.llm()
    except model_errors() as exc:
        return JudgeResult(error=describe_failure(exc, engine.settings))
    errors: list[str] = []
    todo = [r for r in records if not r.refused]
    for record in tqdm(todo, desc="Judging", unit="q", disable=not progress, file=sys.stderr):
        prompt = fill(
            template,
            question=record.question,
            reference=record.reference_answer or "(none given)",
            sources=_judge_sources(engine, record),
            answer=record.answer,
        )
        try:
            reply = clean(llm.complete(prompt).text)
        except model_errors() as exc:  # reported; the run goes on
            errors.append(f"{record.id}: {describe_failure(exc, engine.settings)}")
            continue
        verdict = parse_judgement(reply)
        if verdict is None:
            record.judge = {"unparsed": reply[: engine.settings.eval.judge_reply_chars]}
            errors.append(f"{record.id}: reply not in the expected form")
        else:
            record.judge = dict(verdict)
    return JudgeResult(model=engine.settings.llm_model, metrics=judge_metrics(records), errors=errors)
