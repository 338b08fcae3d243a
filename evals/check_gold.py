#!/usr/bin/env python3
"""Sanity checks for the paperbot eval sets.

Checks evals/questions.jsonl, evals/heldout{,2,3,4,5,6}.jsonl, evals/styles{1..25,_dev}.jsonl,
evals/details{1,2}.jsonl, evals/figures{1,2}.jsonl, evals/typos1.jsonl, evals/longq1.jsonl,
evals/topics.jsonl, evals/topics2.jsonl and evals/topics3.jsonl:
  * every line is valid for the eval's loader (bot/eval/dataset.py: fields, types, styles, kinds,
    expected strings, topic forms; unanswerable questions and uncovered topics have empty gold);
  * ids are unique (within each file and across all files) and carry the file's prefix;
  * every gold title occurs verbatim as a line of some source file
    (after stripping whitespace and a leading "Subscribe") or is a title the corpus parser gives;
  * every gold arXiv id (NNNN.NNNNN) occurs as "arXiv:<id>" in the file-000 source;
  * types are lookup, multi, detail or unanswerable, and every question has a reference answer;
  * no question text is repeated within a file (across files a warning only: blind writers may word a
    search-box query alike), no file has blank lines, and (warning only) held-out lookups do not reuse a
    dev lookup paper.

Usage: python evals/check_gold.py [--sources DIR] [--sets DIR]
Exit status 0 when everything passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bot.corpus import load_corpus  # noqa: E402
from bot.eval.dataset import DatasetError, QuestionRow, TopicRow, read_rows  # noqa: E402

DEFAULT_SOURCES = [ROOT / "index" / "sources", Path("/work/shared/corpus")]
DEV = "questions.jsonl"
# Each question file and the letter its ids start with.
QUESTION_FILES = {
    DEV: "q",
    "heldout.jsonl": "h",
    "heldout2.jsonl": "g",
    "heldout3.jsonl": "k",
    "heldout4.jsonl": "m",
    "heldout5.jsonl": "n",
    "heldout6.jsonl": "p",
    "styles1.jsonl": "s",
    "styles2.jsonl": "u",
    "styles_dev.jsonl": "v",
    "styles3.jsonl": "s3_",
    **{f"styles{n}.jsonl": f"s{n}_" for n in range(4, 26)},
    "details1.jsonl": "dn1_",
    "details2.jsonl": "dt2_",
    "figures1.jsonl": "f1_",
    "figures2.jsonl": "f2_",
    "typos1.jsonl": "ty1_",
    "longq1.jsonl": "lq1_",
}
# Digits after the prefix where they are not three.
ID_DIGITS = {"longq1.jsonl": 2}
TOPIC_FILES = {"topics.jsonl": "t", "topics2.jsonl": "w", "topics3.jsonl": "t3_"}
TYPES = {"lookup", "multi", "detail", "unanswerable"}
SINGLE_GOLD = ("lookup", "detail")
ARXIV_RE = re.compile(r"^\d{4}\.\d{4,5}$")


def load_sources(src_dir: Path) -> tuple[set[str], set[str]]:
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
    # The titles the corpus parser gives (the later sets' gold): normalised characters ("–", "∼"), and the
    # opening words of the abstract for an entry without a title ("This study investigates ...").
    papers, _ = load_corpus([src_dir])
    titles.update(paper.title for paper in papers)
    return titles, arxiv_ids


def read(path: Path, model: type, errors: list[str]) -> list:
    """The file's valid rows with their line numbers; every malformed or blank line is an error."""
    try:
        rows, problems = read_rows(path, model)
        lines = path.read_text(encoding="utf-8").splitlines()
    except (DatasetError, OSError) as exc:
        errors.append(str(exc))
        return []
    errors += problems
    errors += [f"{path} line {n}: blank line" for n, line in enumerate(lines, 1) if not line.strip()]
    return rows


def check_id(where: str, row_id: str, prefix: str, digits: int, all_ids: dict[str, str], errors: list[str]) -> None:
    if not re.fullmatch(prefix + r"\d" * digits, row_id):
        errors.append(f"{where}: id {row_id!r} should look like {prefix}{1:0{digits}d}")
    if row_id in all_ids:
        errors.append(f"{where}: duplicate id {row_id!r} (also {all_ids[row_id]})")
    all_ids[row_id] = where


def check_gold_list(where: str, gold: list[str], titles: set[str], arxiv_ids: set[str], errors: list[str]) -> None:
    if len(set(gold)) != len(gold):
        errors.append(f"{where}: duplicate entries in gold")
    for item in gold:
        if ARXIV_RE.match(item):
            if item not in arxiv_ids:
                errors.append(f"{where}: arXiv id {item!r} not found in file 000")
        elif item not in titles:
            errors.append(f"{where}: title not found verbatim in sources: {item!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=Path, help="directory with the raw corpus .txt files")
    ap.add_argument("--sets", type=Path, default=HERE, help="directory with the eval sets [default: evals/]")
    args = ap.parse_args()
    src = args.sources or next((d for d in DEFAULT_SOURCES if d.is_dir() and any(d.glob("*.txt"))), None)
    if src is None:
        raise SystemExit("no source directory found")
    titles, arxiv_ids = load_sources(src)

    errors: list[str] = []
    warnings: list[str] = []
    all_ids: dict[str, str] = {}
    questions_seen: dict[str, str] = {}
    lookup_gold: dict[str, set[str]] = {}
    counts: dict[str, dict[str, int]] = {}

    for fname, prefix in QUESTION_FILES.items():
        counts[fname] = {}
        row: QuestionRow
        for n, row in read(args.sets / fname, QuestionRow, errors):
            where = f"{fname}:{n}"
            check_id(where, row.id, prefix, ID_DIGITS.get(fname, 3), all_ids, errors)
            if row.type not in TYPES:
                errors.append(f"{where}: bad type {row.type!r}")
            counts[fname][row.type] = counts[fname].get(row.type, 0) + 1
            check_gold_list(where, row.gold, titles, arxiv_ids, errors)
            if row.type in SINGLE_GOLD and len(row.gold) != 1:
                warnings.append(f"{where}: {row.type} question has {len(row.gold)} gold papers")
            text = row.question.lower()
            if text in questions_seen:
                # Within a file a repeat is a slip; across files, blind writers may word a query alike.
                same_file = questions_seen[text].startswith(f"{fname}:")
                (errors if same_file else warnings).append(
                    f"{where}: question text repeated (also {questions_seen[text]})"
                )
            questions_seen[text] = where
            if not row.reference_answer.strip():
                errors.append(f"{where}: empty reference_answer")
            if row.type == "lookup":
                lookup_gold.setdefault(fname, set()).update(row.gold)

    for other in [name for name in QUESTION_FILES if name != DEV]:
        for title in sorted(lookup_gold.get(DEV, set()) & lookup_gold.get(other, set())):
            warnings.append(f"{other} lookup reuses a dev lookup paper: {title!r}")

    topic_counts: dict[str, tuple[int, int]] = {}
    for fname, prefix in TOPIC_FILES.items():
        rows = read(args.sets / fname, TopicRow, errors)
        topic: TopicRow
        for n, topic in rows:
            where = f"{fname}:{n}"
            check_id(where, topic.id, prefix, 2, all_ids, errors)
            check_gold_list(where, topic.gold, titles, arxiv_ids, errors)
        topic_counts[fname] = (len(rows), sum(1 for _, topic in rows if not topic.gold))

    for w in warnings:
        print("WARN ", w)
    for e in errors:
        print("ERROR", e)
    for fname, c in counts.items():
        print(f"{fname}: {sum(c.values())} questions {dict(sorted(c.items()))}")
    for fname, (total, empty) in topic_counts.items():
        print(f"{fname}: {total} topics ({empty} with empty gold)")
    print(f"sources: {src} ({len(titles)} titles, {len(arxiv_ids)} arXiv ids in file 000)")
    if errors:
        print(f"FAILED: {len(errors)} error(s)")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
