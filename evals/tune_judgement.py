"""Answer-judgement rules, measured per set and per style: `python evals/tune_judgement.py [SETS...]`.

Retrieves once per question with the shipped engine, then runs the extractive
answerer under each variant of the judgement settings (``Settings.extractive``:
``other_paper_ratio``, ``skip_leaning_sentences``, ``check_answer_type``) on the
same retrieval, and prints, per set and per question style:

  lookup P / R   citation precision and recall on lookup questions (answered only for P)
  multi R        citation recall on multi-paper questions
  detail found   detail questions whose expected strings all appear in the answer
  refused (u)    unanswerable questions refused (a "not stated" answer counts)
  near miss      the same for near-miss unanswerable questions
  refused (a)    answerable questions refused (false refusals)

Tuning uses the dev sets only (questions, heldout*, styles_dev); styles1/styles2
are written blind and scored once with the chosen settings (evals/README.md).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from bot.answer import Engine
from bot.answerers import ExtractiveAnswerer
from bot.config import get_settings
from bot.normalize import GoldIndex

HERE = Path(__file__).resolve().parent
DEV_SETS = ("questions", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "styles_dev")
VARIANTS = {
    "no judgement": {"other_paper_ratio": 0.0, "skip_leaning_sentences": False, "check_answer_type": False},
    "ratio 0.90": {"other_paper_ratio": 0.90, "skip_leaning_sentences": False, "check_answer_type": False},
    "ratio 0.95": {"other_paper_ratio": 0.95, "skip_leaning_sentences": False, "check_answer_type": False},
    "ratio 0.95 + leaning (shipped)": {"other_paper_ratio": 0.95, "skip_leaning_sentences": True},
    "ratio 0.95 + leaning + type": {
        "other_paper_ratio": 0.95,
        "skip_leaning_sentences": True,
        "check_answer_type": True,
    },
}


def rows_of(name: str) -> list[dict]:
    return [
        json.loads(line) for line in (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def measure(engine: Engine, sets: list[str], variants: dict[str, dict]) -> dict:
    gold_index = GoldIndex(engine.manifest.papers)
    answerers = {
        label: ExtractiveAnswerer(
            engine.settings.model_copy(update={"extractive": engine.settings.extractive.model_copy(update=update)}),
            engine.retriever,
        )
        for label, update in variants.items()
    }
    tally: dict = defaultdict(lambda: defaultdict(list))
    for name in sets:
        for row in rows_of(name):
            retrieval = engine.retrieve_for(row["question"])
            gold = set(gold_index.resolve_all(row["gold"])[0])
            groups = [name, f"{name}/{row.get('style', '-')}", f"all/{row.get('style', '-')}"]
            if retrieval.answered:  # the confidence shown: how far above the refusal threshold
                key = "cov_u" if row["type"] == "unanswerable" else "cov_a"
                tally[("coverage", "all")][key].append(retrieval.coverage)
            for label, answerer in answerers.items():
                refused, cited, text = True, [], ""
                if retrieval.answered:
                    draft = list(answerer.stream(row["question"], retrieval))[-1]
                    if draft.checked is not None:
                        refused = draft.not_stated
                        cited = [c.paper_id for c in draft.checked.citations]
                        text = draft.checked.text
                for group in groups:
                    t = tally[(label, group)]
                    if row["type"] == "unanswerable":
                        t["refused_u"].append(refused)
                        if row.get("kind") == "near_miss":
                            t["near_miss"].append(refused)
                        continue
                    t["refused_a"].append(refused)
                    recall = len(set(cited) & gold) / len(gold) if not refused else 0.0
                    if row["type"] == "lookup":
                        t["lookup_r"].append(recall)
                        if cited and not refused:
                            t["lookup_p"].append(len(set(cited) & gold) / len(set(cited)))
                    if row["type"] == "multi":
                        t["multi_r"].append(recall)
                    if row["type"] == "detail" and row.get("expected"):
                        low = text.lower()
                        t["detail"].append(not refused and all(e.lower() in low for e in row["expected"]))
    return tally


def fmt(values: list) -> str:
    return f"{np.mean(values):.2f}" if values else "  - "


def main(sets: list[str]) -> None:
    engine = Engine(get_settings())
    tally = measure(engine, sets, VARIANTS)
    keys = ["lookup_p", "lookup_r", "multi_r", "detail", "refused_u", "near_miss", "refused_a"]
    cov = tally.pop(("coverage", "all"))
    print("| confident_coverage | answered answerable shown high | answered unanswerable shown low |")
    print("|---:|---:|---:|")
    for cut in np.arange(0.54, 0.66, 0.01):
        high = np.mean(np.array(cov["cov_a"]) >= cut)
        low = np.mean(np.array(cov["cov_u"]) < cut) if cov["cov_u"] else float("nan")
        print(f"| {cut:.2f} | {high:.2f} | {low:.2f} |")
    print()
    groups = sorted({g for _, g in tally}, key=lambda g: (g.startswith("all/"), g))
    print("| group | variant | " + " | ".join(keys) + " |")
    print("|---|---|" + "---:|" * len(keys))
    for group in groups:
        for label in VARIANTS:
            t = tally[(label, group)]
            print(f"| {group} | {label} | " + " | ".join(fmt(t[k]) for k in keys) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or [s for s in DEV_SETS if (HERE / f"{s}.jsonl").exists()])
