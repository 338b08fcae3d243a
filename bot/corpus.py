"""Read the source files into entries, then merge entries into distinct papers.

Formats: Hugging Face listing pages (title line, abstract line), an arXiv
publication list (abstracts ending in ``arXiv:NNNN.NNNNN``), and users' own
JSONL, CSV or BibTeX files (read with bibtexparser; LaTeX in titles, abstracts
and author names made readable by bot.latex). Bad entries are reported with
file and line, never dropped silently.
Papers carry their titles and abstracts in display form (LaTeX markup made
readable by bot.latex, the one normaliser).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import orjson

from bot.config import Settings
from bot.errors import UserError
from bot.latex import conversion_version, latex_to_text
from bot.normalize import ARXIV_ID_IN_TEXT as _ARXIV_ID
from bot.normalize import (
    BARE_ARXIV_ID,
    bare_arxiv_id,
    clean_whitespace,
    drop_reference_marks,
    normalize_abstract,
    normalize_title,
)
from bot.normalize import LATEX_CMD as _LATEX_CMD
from bot.safety import strip_controls
from bot.schema import Paper
from bot.text import file_lines, has_lone_surrogate, token_f1

SUPPORTED_SUFFIXES = {".txt", ".jsonl", ".csv", ".bib"}
# Example questions for papers (doc2query), not papers: see read_questions.
QUESTIONS_SUFFIX = ".questions.jsonl"

_HEADER_LINES = {
    "get trending papers in your email inbox once a day!",
    "get trending papers in your email inbox!",
    "subscribe",
    "new",
    "byak and the research community",
}
_DATE_LINE = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}(, \d{4})?$", re.I)
_HTTP_URL = re.compile(r"https?://")
_YEAR_IN = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
# A journal reference glued to the next abstract: "...pp.THAPP02Deep generative..."
_GLUE = re.compile(r"(?<=[0-9a-z.)\]])(?=[A-Z][a-z]+[ ,])")
MIN_ABSTRACT_CHARS = 100  # shorter text is a title, a comment or a stub, in any format
# Entries with one arXiv id are one paper when their abstracts share this much (token F1):
# a revised abstract keeps most of its words, a different paper shares few.
SAME_ABSTRACT_F1 = 0.5
_MAX_TITLE_CHARS = 300


@dataclass
class Entry:
    """One occurrence of a paper in one source file."""

    title: str | None
    abstract: str
    source: str
    line: int
    arxiv_id: str | None = None
    url: str | None = None
    year: int | None = None
    authors: list[str] = field(default_factory=list)
    doi: str | None = None


@dataclass
class Problem:
    source: str
    line: int | None  # None: about the whole file
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}" if self.line else f"{self.source}: {self.reason}"


@dataclass
class CorpusReport:
    files: dict[str, int] = field(default_factory=dict)  # file -> entries read
    read: dict[Path, int] = field(default_factory=dict)  # each file's full path -> entries read
    problems: list[Problem] = field(default_factory=list)
    entries: int = 0
    papers: int = 0
    merged: int = 0  # entries folded into an earlier paper
    questions: dict[str, int] = field(default_factory=dict)  # question file -> records read
    asked: int = 0  # papers that carry example questions


class SourceError(UserError, ValueError):
    """A source file that cannot be read at all."""


def _clean(text: str) -> str:
    """One line of plain text: NFKC, no terminal escapes or control characters, single spaces."""
    return clean_whitespace(strip_controls(text))


def _looks_like_abstract(line: str) -> bool:
    return len(line) >= MIN_ABSTRACT_CHARS


def _is_header(line: str) -> bool:
    low = line.lower()
    return low in _HEADER_LINES or bool(_DATE_LINE.match(line))


def parse_listing(text: str, source: str) -> tuple[list[Entry], list[Problem]]:
    """Hugging Face listing page: header lines, then title and abstract lines."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    pending: tuple[str, int] | None = None  # a title waiting for its abstract
    for lineno, raw in enumerate(file_lines(text), start=1):
        line = _clean(raw)
        if not line or _is_header(line):
            continue
        if line.startswith("Subscribe") and len(line) > len("Subscribe"):
            line = line[len("Subscribe") :].strip()
        if pending is None:
            if len(line) > _MAX_TITLE_CHARS:
                problems.append(Problem(source, lineno, "abstract without a title; skipped"))
                continue
            pending = (line, lineno)
            continue
        if not _looks_like_abstract(line):
            title, tline = pending
            problems.append(Problem(source, tline, f"title without an abstract: {title[:60]!r}; skipped"))
            pending = (line, lineno)
            continue
        entries.append(Entry(title=pending[0], abstract=line, source=source, line=pending[1]))
        pending = None
    if pending is not None:
        problems.append(Problem(source, pending[1], f"title without an abstract: {pending[0][:60]!r}; skipped"))
    return entries, problems


def _year_from_arxiv(arxiv_id: str) -> int | None:
    yy = int(arxiv_id[:2])
    return 2000 + yy if 7 <= yy <= 99 else None


def parse_arxiv_list(text: str, source: str) -> tuple[list[Entry], list[Problem]]:
    """arXiv publication list: each abstract (and optional comment line) ends in its id."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    pos = 0
    for match in _ARXIV_ID.finditer(text):
        segment = text[pos : match.start()]
        seg_line = text.count("\n", 0, pos) + 1
        pos = match.end()
        if segment.startswith(" - doi:") or segment.startswith(" - "):
            # The previous id's DOI and journal reference run into this abstract.
            first, _, rest = segment.partition("\n")
            glue = _GLUE.search(first, 7)
            segment = (first[glue.start() :] if glue else "") + ("\n" + rest if rest else "")
        lines = [_clean(x) for x in file_lines(segment) if _clean(x)]
        if not lines:
            problems.append(Problem(source, seg_line, f"arXiv:{match.group(1)} has no abstract; skipped"))
            continue
        # The abstract is the long line; short ones are comments ("36 pages").
        abstract = max(lines, key=len)
        if not _looks_like_abstract(abstract):
            problems.append(Problem(source, seg_line, f"arXiv:{match.group(1)}: abstract too short; skipped"))
            continue
        arxiv_id = match.group(1)
        entries.append(
            Entry(
                title=None,
                abstract=abstract,
                source=source,
                line=seg_line,
                arxiv_id=arxiv_id,
                year=_year_from_arxiv(arxiv_id),
            )
        )
    tail = _clean(text[pos:])
    if tail and not tail.startswith("- doi:"):
        problems.append(Problem(source, text.count("\n", 0, pos) + 1, "text after the last arXiv id; skipped"))
    return entries, problems


def _text_field(record: dict, key: str) -> str:
    """A record's text value, cleaned; "" when absent. Numbers, lists and objects are not text."""
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be text, not {type(value).__name__}")
    if has_lone_surrogate(value):
        raise ValueError(f"'{key}' is not valid Unicode (a lone surrogate escape)")
    return _clean(value)


def _record_to_entry(record: dict, source: str, line: int) -> Entry:
    if not isinstance(record, dict):
        raise ValueError("not an object")
    title = _text_field(record, "title")
    abstract = _text_field(record, "abstract")
    if not title:
        raise ValueError("missing 'title'")
    if not abstract:
        raise ValueError("missing 'abstract'")
    arxiv_id = _text_field(record, "arxiv_id").removeprefix("arXiv:") or None
    if arxiv_id and not re.fullmatch(r"\d{4}\.\d{4,5}(v\d+)?|[a-z\-]+(\.[A-Z]{2})?/\d{7}", arxiv_id):
        raise ValueError(f"bad 'arxiv_id' {arxiv_id!r}")
    year = record.get("year")
    if year not in (None, ""):
        if isinstance(year, bool) or not isinstance(year, int | str):
            raise ValueError(f"bad 'year' {year!r}")
        try:
            year = int(year)
        except ValueError:
            raise ValueError(f"bad 'year' {year!r}") from None
    else:
        year = _year_from_arxiv(arxiv_id) if arxiv_id and "." in arxiv_id else None
    authors = record.get("authors") or []
    if isinstance(authors, str):
        authors = [a.strip() for a in re.split(r";|,| and ", _text_field(record, "authors")) if a.strip()]
    elif not isinstance(authors, list) or not all(isinstance(a, str) and not has_lone_surrogate(a) for a in authors):
        raise ValueError("'authors' must be text or a list of names")
    url = _text_field(record, "url") or None
    if url and not _HTTP_URL.match(url):
        raise ValueError(f"bad 'url' {url!r} (must start with http:// or https://)")
    doi = _text_field(record, "doi").removeprefix("https://doi.org/") or None
    return Entry(title, abstract, source, line, arxiv_id, url, year, [_clean(a) for a in authors], doi)


def parse_jsonl(text: str, source: str) -> tuple[list[Entry], list[Problem]]:
    entries, problems = [], []
    for lineno, raw in enumerate(file_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            entries.append(_record_to_entry(json.loads(raw), source, lineno))
        except json.JSONDecodeError as exc:
            problems.append(Problem(source, lineno, f"invalid JSON ({exc.msg}); skipped"))
        except ValueError as exc:
            problems.append(Problem(source, lineno, f"{exc}; skipped"))
    return entries, problems


def parse_csv(text: str, source: str) -> tuple[list[Entry], list[Problem]]:
    """A CSV file with a header naming at least title and abstract; each bad row is reported at the line it starts."""
    entries, problems = [], []
    # Lines as editors count them (csv's line_num then matches); quoted fields may span lines.
    reader = csv.DictReader([line + "\n" for line in file_lines(text)])
    try:
        fieldnames = reader.fieldnames or []
    except csv.Error as exc:
        return [], [Problem(source, 1, f"CSV header is not valid CSV ({exc}); file skipped")]
    missing = {"title", "abstract"} - set(fieldnames)
    if missing:
        return [], [Problem(source, 1, f"CSV header lacks {sorted(missing)}; file skipped")]
    width = len(fieldnames)
    while True:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(source, line, f"not valid CSV ({exc}); skipped"))
            continue
        if None in record or None in record.values():
            # csv.DictReader files extra values under None and fills missing ones with None.
            got = width + len(record.get(None) or []) - sum(v is None for k, v in record.items() if k is not None)
            problems.append(Problem(source, line, f"row has {got} fields, the header has {width}; skipped"))
            continue
        try:
            entries.append(_record_to_entry(record, source, line))
        except ValueError as exc:
            problems.append(Problem(source, line, f"{exc}; skipped"))
    return entries, problems


def _bib_arxiv_id(fields: dict[str, str]) -> str | None:
    """The arXiv id from eprint (Zotero, JabRef, biblatex), an arxiv field, an arXiv DOI or URL."""
    archive = (fields.get("archiveprefix") or fields.get("eprinttype") or "").lower()
    candidates = [fields.get("eprint", "")] if archive in ("", "arxiv") else []
    candidates += [fields.get("arxiv", ""), fields.get("arxivid", "")]
    if "arxiv" in fields.get("doi", "").lower():
        candidates.append(fields["doi"])
    if "arxiv.org/" in fields.get("url", ""):
        candidates.append(fields["url"])
    for text in candidates:
        if match := BARE_ARXIV_ID.search(text):
            return match.group(1)
    return None


def _bib_block_name(raw: str) -> str:
    return raw.strip().split(",", 1)[0].split("\n", 1)[0][:60]


def parse_bibtex(text: str, source: str) -> tuple[list[Entry], list[Problem]]:
    """BibTeX from Zotero, Mendeley or JabRef: one entry per @-block with a title and an abstract."""
    import bibtexparser
    from bibtexparser.middlewares import MergeNameParts, SeparateCoAuthors, SplitNameParts

    if not text.strip():
        return [], [Problem(source, None, "empty file; nothing to read")]
    # Its parse warnings are reported below, with file and line, as ours.
    logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)
    library = bibtexparser.parse_string(
        text, append_middleware=[SeparateCoAuthors(), SplitNameParts(), MergeNameParts(style="first")]
    )
    problems = []
    for block in library.failed_blocks:  # start_line counts from 0
        reason = getattr(block.error, "abort_reason", "") or str(block.error) or type(block.error).__name__
        problems.append(
            Problem(source, block.start_line + 1, f"{_bib_block_name(block.raw)}: {' '.join(reason.split())}; skipped")
        )
    if not library.entries and not library.failed_blocks:
        return [], [Problem(source, None, "no BibTeX entries (@article{...}) found; is it a BibTeX file?")]
    entries = []
    for item in library.entries:
        line, name = item.start_line + 1, f"@{item.entry_type}{{{item.key}}}"
        fields = {key.lower(): value.value for key, value in item.fields_dict.items()}
        text_fields = {key: latex_to_text(value) for key, value in fields.items() if isinstance(value, str)}
        if not text_fields.get("abstract"):
            problems.append(Problem(source, line, f"{name} has no abstract; skipped"))
            continue
        year = _YEAR_IN.search(text_fields.get("year") or text_fields.get("date") or "")
        url = fields.get("url", "").strip()
        doi = fields.get("doi", "").strip() or None
        record = {
            "title": text_fields.get("title"),
            "abstract": text_fields["abstract"],
            "arxiv_id": _bib_arxiv_id(fields),
            # A URL without a scheme ("www.example.org") is dropped rather than the paper.
            "url": url if _HTTP_URL.match(url) else None,
            "doi": doi,
            "year": year.group(1) if year else None,
            "authors": [latex_to_text(author) for author in fields.get("author", [])],
        }
        try:
            entries.append(_record_to_entry(record, source, line))
        except ValueError as exc:
            problems.append(Problem(source, line, f"{name}: {exc}; skipped"))
    return entries, sorted(problems, key=lambda problem: problem.line or 0)


def read_source(path: Path, name: str | None = None) -> tuple[list[Entry], list[Problem]]:
    """Parse one source file, choosing the format from its suffix and content; ``name`` labels its entries."""
    name = name or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from exc
    if b"\x00" in data[:4096]:
        return [], [Problem(name, 1, "binary file, not text; skipped")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return [], [Problem(name, line, "not valid UTF-8; file skipped")]
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return parse_jsonl(text, name)
    if suffix == ".csv":
        return parse_csv(text, name)
    if suffix == ".bib":
        return parse_bibtex(text, name)
    if (
        _ARXIV_ID.search(text)
        and len(_ARXIV_ID.findall(text)) * 3 >= len([ln for ln in file_lines(text) if ln.strip()]) // 2
    ):
        return parse_arxiv_list(text, name)
    return parse_listing(text, name)


def is_questions_file(path: Path) -> bool:
    return path.name.lower().endswith(QUESTIONS_SUFFIX)


def supported_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their supported files (sources and question files), in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise SourceError(f"{path}: no such file or folder")
    return files


def source_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their supported files, in a stable order (question files are not sources)."""
    return [p for p in supported_files(paths) if not is_questions_file(p)]


def _question_key(record: dict) -> str:
    """The key a question record names its paper by: paper id, else arXiv id, else title."""
    if isinstance(record.get("paper_id"), str) and record["paper_id"].strip():
        return "id:" + record["paper_id"].strip()
    arxiv = bare_arxiv_id(str(record.get("arxiv_id") or ""))
    if arxiv:
        return "x:" + arxiv
    if isinstance(record.get("title"), str) and normalize_title(record["title"]):
        return "t:" + normalize_title(record["title"])
    raise ValueError("names no paper (paper_id, arxiv_id or title)")


def _paper_question_keys(paper: Paper) -> list[str]:
    keys = ["id:" + paper.paper_id, "t:" + normalize_title(paper.title)]
    if paper.arxiv_id:
        keys.append("x:" + (bare_arxiv_id(paper.arxiv_id) or paper.arxiv_id))
    return keys


def read_questions(path: Path, name: str) -> tuple[dict[str, list[str]], list[Problem]]:
    """Example questions by paper key from one ``*.questions.jsonl`` file.

    Each line: ``{"paper_id" | "arxiv_id" | "title": ..., "questions": ["...", ...]}``. A bad line is
    a problem and is skipped; the file's other lines still count.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [Problem(name, None, f"cannot read question file ({exc}); skipped")]
    found: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for lineno, raw in enumerate(file_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            questions = record.get("questions")
            if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
                raise ValueError('"questions" is not a list of strings')
            kept = [clean_whitespace(strip_controls(q)) for q in questions]
            found.setdefault(_question_key(record), []).extend(q for q in kept if q)
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, lineno, f"invalid JSON ({exc.msg}); skipped"))
        except ValueError as exc:
            problems.append(Problem(name, lineno, f"{exc}; skipped"))
    return found, problems


def attach_questions(papers: list[Paper], by_key: dict[str, list[str]]) -> tuple[list[Paper], int]:
    """``papers`` with the example questions ``by_key`` gives them, and how many keys named no paper."""
    used: set[str] = set()
    out = []
    for paper in papers:
        keys = [k for k in _paper_question_keys(paper) if k in by_key]
        used.update(keys)
        questions = list(dict.fromkeys(q for k in keys for q in by_key[k]))
        out.append(replace(paper, questions=questions) if questions else paper)
    return out, len(set(by_key) - used)


def _inferred_title(abstract: str) -> str:
    first = re.split(r"(?<=[.!?])\s", abstract, maxsplit=1)[0]
    return first if len(first) <= 120 else first[:117].rsplit(" ", 1)[0] + "..."


def _title_quality(title: str) -> tuple[int, int]:
    # Scraping leaves LaTeX debris ("scriptsize", "mathcal") or glued words;
    # fewer odd tokens wins, then the longer (less truncated) title.
    odd = len(re.findall(r"scriptsize|mathcal|mathbb|\\|[a-z][A-Z]{2,}", title))
    return (-odd, len(title))


def paper_id_for(title_key: str, arxiv_id: str | None) -> str:
    if arxiv_id:
        return "arxiv:" + re.sub(r"v\d+$", "", arxiv_id)
    return "p:" + hashlib.sha1(title_key.encode()).hexdigest()[:12]


def arxiv_url(arxiv_id: str) -> str:
    return "https://arxiv.org/abs/" + re.sub(r"v\d+$", "", arxiv_id)


def merge_keys(entry: Entry) -> list[str]:
    """The keys under which entries are one paper: normalized abstract and title, arXiv id, DOI.

    Digests (128 bits) rather than the normalized texts: the source cache keeps them for every entry.
    """
    keys = ["a:" + normalize_abstract(entry.abstract)]
    if entry.title:
        keys.append("t:" + normalize_title(entry.title))
    if entry.arxiv_id:
        keys.append("x:" + re.sub(r"v\d+$", "", entry.arxiv_id))
    if entry.doi:
        keys.append("d:" + entry.doi.lower())
    return [hashlib.blake2b(key.encode(), digest_size=16).hexdigest() for key in keys]


def paper_of(group: list[Entry]) -> Paper:
    """The paper a group of entries (one paper's occurrences, in source order) makes."""
    titles = [e.title for e in group if e.title]
    title = max(titles, key=_title_quality) if titles else _inferred_title(group[0].abstract)
    # The abstract without LaTeX markup reads better; otherwise the longest. Both are stored
    # in display form (bot.latex): "KD^{3}" reads "KD^3" in answers, summaries and exports.
    abstract = max((e.abstract for e in group), key=lambda a: (-len(_LATEX_CMD.findall(a)), len(a)))
    title, abstract = latex_to_text(title), latex_to_text(abstract)
    arxiv_id = next((e.arxiv_id for e in group if e.arxiv_id), None)
    doi = next((e.doi for e in group if e.doi), None)
    url = next((e.url for e in group if e.url), None) or (
        arxiv_url(arxiv_id) if arxiv_id else f"https://doi.org/{doi}" if doi else None
    )
    return Paper(
        paper_id=paper_id_for(normalize_title(title) if titles else normalize_abstract(abstract), arxiv_id),
        title=title,
        abstract=drop_reference_marks(abstract),
        arxiv_id=arxiv_id,
        url=url,
        year=next((e.year for e in group if e.year), None),
        authors=next((e.authors for e in group if e.authors), []),
        doi=doi,
        sources=sorted({e.source for e in group}),
        title_inferred=not titles,
    )


@dataclass
class Prepared:
    """What merging needs of one entry, computed once per source file (:class:`SourceCache` keeps it)."""

    keys: list[str]  # merge_keys(entry)
    alone: Paper  # paper_of([entry]): the paper when no other entry joins it (most entries)


def prepare(entry: Entry) -> Prepared:
    return Prepared(merge_keys(entry), paper_of([entry]))


def merge_entries(entries: list[Entry], prepared: dict[int, Prepared] | None = None) -> list[Paper]:
    """Deduplicate entries: same normalized title or same abstract up to markup.

    ``prepared`` (by ``id(entry)``) holds entries' keys and lone papers from an
    earlier run (:class:`SourceCache`); entries without one are computed here.
    Papers come in the order of their first entry.
    """
    prepared = prepared or {}
    parent = list(range(len(entries)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        known = prepared.get(id(entry))
        for key in known.keys if known else merge_keys(entry):
            if key in seen:
                parent[find(i)] = find(seen[key])
            else:
                seen[key] = i

    groups: dict[int, list[Entry]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(find(i), []).append(entry)
    papers: list[Paper] = []
    for group in groups.values():
        known = prepared.get(id(group[0])) if len(group) == 1 else None
        papers.append(known.alone if known else paper_of(group))
    return papers


def check_sizes(entries: list[Entry], max_chars: int) -> tuple[list[Entry], list[Problem]]:
    """Entries whose abstract is between :data:`MIN_ABSTRACT_CHARS` and ``max_chars`` long; the rest reported."""
    kept: list[Entry] = []
    problems: list[Problem] = []
    for entry in entries:
        size = len(entry.abstract)
        if size < MIN_ABSTRACT_CHARS:
            problems.append(
                Problem(
                    entry.source,
                    entry.line,
                    f"abstract too short ({size} characters, at least {MIN_ABSTRACT_CHARS}); skipped",
                )
            )
        elif size > max_chars:
            problems.append(
                Problem(
                    entry.source,
                    entry.line,
                    f"abstract too long ({size:,} characters, at most {max_chars:,}: PAPERBOT_MAX_ABSTRACT_CHARS); skipped",
                )
            )
        else:
            kept.append(entry)
    return kept, problems


def _same_paper(a: Entry, b: Entry) -> bool:
    if a.title and b.title and normalize_title(a.title) == normalize_title(b.title):
        return True
    return token_f1(a.abstract, b.abstract) >= SAME_ABSTRACT_F1


def arxiv_conflicts(entries: list[Entry]) -> tuple[list[Entry], list[Problem]]:
    """Drop entries that reuse an earlier entry's arXiv id for a different paper, reporting each.

    Two entries are the same paper when their titles match or their abstracts share most
    words (a revised abstract still does); otherwise the later one is reported and skipped.
    """
    first: dict[str, list[Entry]] = {}
    kept: list[Entry] = []
    problems: list[Problem] = []
    for entry in entries:
        key = re.sub(r"v\d+$", "", entry.arxiv_id) if entry.arxiv_id else None
        group = first.setdefault(key, []) if key else None
        if group and not any(_same_paper(entry, other) for other in group):
            other = group[0]
            problems.append(
                Problem(
                    entry.source,
                    entry.line,
                    f"arXiv:{key} is already {other.title or 'the paper'!r} ({other.source}:{other.line}), "
                    "a different paper; skipped",
                )
            )
            continue
        if group is not None:
            group.append(entry)
        kept.append(entry)
    return kept, problems


def source_names(files: list[Path]) -> dict[Path, str]:
    """Each file's name in reports and filters: its base name, or enough of its path to tell it apart."""
    names: dict[Path, str] = {}
    for path in files:
        parts = path.resolve().parts
        depth = 1
        while depth < len(parts):
            name = "/".join(parts[-depth:])
            clash = [
                other
                for other in files
                if other.resolve() != path.resolve() and "/".join(other.resolve().parts[-depth:]) == name
            ]
            if not clash:
                break
            depth += 1
        names[path] = "/".join(parts[-depth:])
    return names


CACHE_FORMAT = 1  # bump when parsing, merge keys or paper_of change: cached files are read again


class SourceCache:
    """Each source file's parsed entries, problems and :class:`Prepared` data, by content, in ``folder``.

    A re-index reads every source: parsing and preparing 46,528 entries took
    7.1 s of adding 1,000 papers to a 100,000-chunk library
    (evals/bench_scale_report.md). A file whose bytes, label, size limit, cache
    format and LaTeX rules match an earlier run's is not parsed again. Files are
    written whole under a temporary name and renamed; :meth:`prune` removes the
    ones the last run did not use.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used: set[str] = set()

    def name(self, data: bytes, label: str, max_chars: int) -> str:
        head = json.dumps([CACHE_FORMAT, conversion_version(), label, max_chars]).encode()
        return hashlib.sha1(head + b"\0" + data).hexdigest() + ".json"

    def get(self, name: str) -> tuple[list[Entry], list[Problem], dict[int, Prepared]] | None:
        path = self.folder / name
        try:
            data = orjson.loads(path.read_bytes())
            entries, prepared = [], {}
            for record, keys, alone in zip(data["entries"], data["keys"], data["alone"], strict=True):
                paper = Paper.from_dict(alone)
                entry = Entry(**record | {"abstract": record["abstract"] or paper.abstract})
                entries.append(entry)
                prepared[id(entry)] = Prepared(keys, paper)
            problems = [Problem(**p) for p in data["problems"]]
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):  # absent or damaged: parse again
            return None
        self.used.add(name)
        return entries, problems, prepared

    def put(self, name: str, entries: list[Entry], problems: list[Problem], prepared: dict[int, Prepared]) -> None:
        data = {
            # An entry's abstract is mostly its lone paper's: stored once (None: the paper's).
            "entries": [
                asdict(e) | {"abstract": None if e.abstract == prepared[id(e)].alone.abstract else e.abstract}
                for e in entries
            ],
            "problems": [asdict(p) for p in problems],
            "keys": [prepared[id(e)].keys for e in entries],
            "alone": [prepared[id(e)].alone.to_dict() for e in entries],
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".tmp-{uuid.uuid4().hex[:8]}-{name}"
        tmp.write_bytes(orjson.dumps(data))
        os.replace(tmp, self.folder / name)
        self.used.add(name)

    def prune(self) -> None:
        """Remove cached files this run did not use (sources changed or gone)."""
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.name not in self.used:
                    path.unlink(missing_ok=True)


def read_prepared(
    path: Path, label: str, max_chars: int, cache: SourceCache | None
) -> tuple[list[Entry], list[Problem], dict[int, Prepared]]:
    """One file's entries within the size limits, its problems and its entries' :class:`Prepared` data."""
    if cache is not None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{path}: cannot read ({exc.strerror})") from exc
        name = cache.name(data, label, max_chars)
        hit = cache.get(name)
        if hit is not None:
            return hit
    found, problems = read_source(path, label)
    found, too_big = check_sizes(found, max_chars)
    prepared = {id(e): prepare(e) for e in found} if cache is not None else {}
    if cache is not None:
        cache.put(name, found, problems + too_big, prepared)
    return found, problems + too_big, prepared


def load_corpus(
    paths: list[Path], max_abstract_chars: int | None = None, cache: SourceCache | None = None
) -> tuple[list[Paper], CorpusReport]:
    """Read every source under ``paths`` and return distinct papers plus a report.

    ``max_abstract_chars`` defaults to the setting's default (PAPERBOT_MAX_ABSTRACT_CHARS).
    Every entry that is not indexed is in ``report.problems`` with its file and line;
    two source files never share a name in the report (see :func:`source_names`).
    ``cache``: unchanged files are not parsed again (the result is the same with or without it).
    """
    if max_abstract_chars is None:
        max_abstract_chars = Settings.model_fields["max_abstract_chars"].default
    report = CorpusReport()
    entries: list[Entry] = []
    prepared: dict[int, Prepared] = {}
    found_files = supported_files(paths)  # listed once: the sources, then the question files
    files = [p for p in found_files if not is_questions_file(p)]
    names = source_names(files)
    for path in files:
        found, problems, known = read_prepared(path, names[path], max_abstract_chars, cache)
        report.files[names[path]] = len(found)
        report.read[path.resolve()] = len(found)
        report.problems.extend(problems)
        entries.extend(found)
        prepared.update(known)
    entries, conflicts = arxiv_conflicts(entries)
    report.problems.extend(conflicts)
    papers = merge_entries(entries, prepared)
    by_key: dict[str, list[str]] = {}
    question_names = source_names([p for p in found_files if is_questions_file(p)])
    for path, name in question_names.items():
        found, problems = read_questions(path, name)
        report.read[path.resolve()] = report.questions[name] = len(found)
        report.problems.extend(problems)
        for key, questions in found.items():
            by_key.setdefault(key, []).extend(questions)
    if by_key:
        papers, unmatched = attach_questions(papers, by_key)
        report.asked = sum(1 for p in papers if p.questions)
        if unmatched:
            names = ", ".join(question_names.values())
            report.problems.append(Problem(names, None, f"{unmatched} question record(s) name no paper"))
    report.entries = len(entries)
    report.papers = len(papers)
    report.merged = len(entries) - len(papers)
    return papers, report


def source_counts(papers: list[Paper]) -> dict[str, int]:
    return dict(sorted(Counter(s for p in papers for s in p.sources).items()))
