#!/usr/bin/env python3
"""Sanity checks for the paperbot eval sets (stdlib only).

Checks evals/questions.jsonl and evals/heldout{,2,3,4,5,6}.jsonl
and evals/topics.jsonl:
  * every line is a JSON object with the expected fields and types;
  * ids are unique (within each file and across all files);
  * every gold title occurs verbatim as a line of some source file
    (after stripping whitespace and a leading "Subscribe");
  * every gold arXiv id (NNNN.NNNNN) occurs as "arXiv:<id>" in the file-000 source;
  * unanswerable questions have empty gold, all other questions non-empty gold;
  * no question text is repeated, and (warning only) heldout lookups do not
    reuse a dev lookup paper.

Usage: python3 evals/check_gold.py [--sources DIR]
Exit status 0 when everything passes, 1 otherwise.
"""

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_SOURCES = [ROOT / "index" / "sources", Path("/work/shared/corpus")]
QUESTION_FILES = {
    "questions.jsonl": "q",
    "heldout.jsonl": "h",
    "heldout2.jsonl": "g",
    "heldout3.jsonl": "k",
    "heldout4.jsonl": "m",
    "heldout5.jsonl": "n",
    "heldout6.jsonl": "p",
}
TYPES = {"lookup", "multi", "detail", "unanswerable"}
ARXIV_RE = re.compile(r"^\d{4}\.\d{4,5}$")


def load_sources(src_dir: Path):
    titles, arxiv_ids = set(), set()
    files = sorted(src_dir.glob("*.txt"))
    if not files:
        raise SystemExit(f"no source .txt files in {src_dir}")
    for f in files:
        text = f.read_text(encoding="utf-8")
        if f.name.startswith("000"):
            arxiv_ids.update(re.findall(r"arXiv:(\d{4}\.\d{4,5})", text))
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("Subscribe"):
                s = s[len("Subscribe") :].strip()
            if s:
                titles.add(s)
    return titles, arxiv_ids


def read_jsonl(path: Path, errors):
    rows = []
    if not path.exists():
        errors.append(f"{path.name}: missing")
        return rows
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"{path.name}:{n}: blank line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"{path.name}:{n}: bad JSON ({e})")
            continue
        if not isinstance(obj, dict):
            errors.append(f"{path.name}:{n}: not an object")
            continue
        rows.append((n, obj))
    return rows


def check_gold_list(where, gold, titles, arxiv_ids, errors):
    if not isinstance(gold, list) or not all(isinstance(x, str) for x in gold):
        errors.append(f"{where}: gold must be a list of strings")
        return
    if len(set(gold)) != len(gold):
        errors.append(f"{where}: duplicate entries in gold")
    for item in gold:
        if ARXIV_RE.match(item):
            if item not in arxiv_ids:
                errors.append(f"{where}: arXiv id {item!r} not found in file 000")
        elif item not in titles:
            errors.append(f"{where}: title not found verbatim in sources: {item!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=Path, help="directory with the raw corpus .txt files")
    args = ap.parse_args()
    src = args.sources or next((d for d in DEFAULT_SOURCES if d.is_dir() and any(d.glob("*.txt"))), None)
    if src is None:
        raise SystemExit("no source directory found")
    titles, arxiv_ids = load_sources(src)

    errors, warnings = [], []
    all_ids, questions_seen = {}, {}
    lookup_gold = {}
    counts = {}

    for fname, prefix in QUESTION_FILES.items():
        rows = read_jsonl(HERE / fname, errors)
        counts[fname] = {}
        for n, obj in rows:
            where = f"{fname}:{n}"
            for key, typ in (("id", str), ("question", str), ("type", str), ("gold", list), ("reference_answer", str)):
                if not isinstance(obj.get(key), typ):
                    errors.append(f"{where}: field {key!r} missing or not {typ.__name__}")
            qid = obj.get("id")
            if isinstance(qid, str):
                if not re.fullmatch(prefix + r"\d{3}", qid):
                    errors.append(f"{where}: id {qid!r} should look like {prefix}001")
                if qid in all_ids:
                    errors.append(f"{where}: duplicate id {qid!r} (also {all_ids[qid]})")
                all_ids[qid] = where
            qtype = obj.get("type")
            if qtype not in TYPES:
                errors.append(f"{where}: bad type {qtype!r}")
            counts[fname][qtype] = counts[fname].get(qtype, 0) + 1
            gold = obj.get("gold", [])
            check_gold_list(where, gold, titles, arxiv_ids, errors)
            if qtype == "unanswerable" and gold:
                errors.append(f"{where}: unanswerable question must have empty gold")
            if qtype in TYPES - {"unanswerable"} and not gold:
                errors.append(f"{where}: {qtype} question needs at least one gold paper")
            if qtype in ("lookup", "detail") and len(gold) != 1:
                warnings.append(f"{where}: {qtype} question has {len(gold)} gold papers")
            q = (obj.get("question") or "").strip().lower()
            if q in questions_seen:
                errors.append(f"{where}: question text repeated (also {questions_seen[q]})")
            questions_seen[q] = where
            if not (obj.get("reference_answer") or "").strip():
                errors.append(f"{where}: empty reference_answer")
            if qtype == "lookup":
                lookup_gold.setdefault(fname, set()).update(gold)

    for held in [name for name in QUESTION_FILES if name != "questions.jsonl"]:
        overlap = lookup_gold.get("questions.jsonl", set()) & lookup_gold.get(held, set())
        for t in sorted(overlap):
            warnings.append(f"{held} lookup reuses a dev lookup paper: {t!r}")

    topic_rows = read_jsonl(HERE / "topics.jsonl", errors)
    n_empty = 0
    for n, obj in topic_rows:
        where = f"topics.jsonl:{n}"
        for key, typ in (("id", str), ("topic", str), ("gold", list)):
            if not isinstance(obj.get(key), typ):
                errors.append(f"{where}: field {key!r} missing or not {typ.__name__}")
        tid = obj.get("id")
        if isinstance(tid, str):
            if not re.fullmatch(r"t\d{2}", tid):
                errors.append(f"{where}: id {tid!r} should look like t01")
            if tid in all_ids:
                errors.append(f"{where}: duplicate id {tid!r} (also {all_ids[tid]})")
            all_ids[tid] = where
        gold = obj.get("gold", [])
        check_gold_list(where, gold, titles, arxiv_ids, errors)
        if not gold:
            n_empty += 1

    for w in warnings:
        print("WARN ", w)
    for e in errors:
        print("ERROR", e)
    for fname, c in counts.items():
        print(f"{fname}: {sum(c.values())} questions {dict(sorted(c.items(), key=lambda kv: str(kv[0])))}")
    print(f"topics.jsonl: {len(topic_rows)} topics ({n_empty} with empty gold)")
    print(f"sources: {src} ({len(titles)} lines, {len(arxiv_ids)} arXiv ids in file 000)")
    if errors:
        print(f"FAILED: {len(errors)} error(s)")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
