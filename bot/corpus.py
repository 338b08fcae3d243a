"""Read the source files into entries, then merge entries into distinct papers.

Formats: Hugging Face listing pages (title line, abstract line), an arXiv
publication list (abstracts ending in ``arXiv:NNNN.NNNNN``), and users' own
JSONL, CSV or BibTeX files (read with bibtexparser; LaTeX in titles, abstracts
and author names made readable by bot.latex). Bad entries are reported with
file and line, never dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import UserError
from bot.latex import latex_to_text
from bot.normalize import ARXIV_ID_IN_TEXT as _ARXIV_ID
from bot.normalize import BARE_ARXIV_ID, drop_reference_marks, normalize_abstract, normalize_title
from bot.normalize import LATEX_CMD as _LATEX_CMD
from bot.normalize import clean_whitespace as _clean
from bot.schema import Paper

SUPPORTED_SUFFIXES = {".txt", ".jsonl", ".csv", ".bib"}

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
_MIN_ABSTRACT_CHARS = 100
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


class SourceError(UserError, ValueError):
    """A source file that cannot be read at all."""


def _looks_like_abstract(line: str) -> bool:
    return len(line) >= _MIN_ABSTRACT_CHARS


def _is_header(line: str) -> bool:
    low = line.lower()
    return low in _HEADER_LINES or bool(_DATE_LINE.match(line))


def parse_listing(text: str, source: str) -> tuple[list[Entry], list[Problem]]:
    """Hugging Face listing page: header lines, then title and abstract lines."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    pending: tuple[str, int] | None = None  # a title waiting for its abstract
    for lineno, raw in enumerate(text.splitlines(), start=1):
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
        lines = [_clean(x) for x in segment.splitlines() if _clean(x)]
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


def _record_to_entry(record: dict, source: str, line: int) -> Entry:
    if not isinstance(record, dict):
        raise ValueError("not an object")
    title = _clean(str(record.get("title") or ""))
    abstract = _clean(str(record.get("abstract") or ""))
    if not title:
        raise ValueError("missing 'title'")
    if not abstract:
        raise ValueError("missing 'abstract'")
    arxiv_id = str(record.get("arxiv_id") or "").strip().removeprefix("arXiv:") or None
    if arxiv_id and not re.fullmatch(r"\d{4}\.\d{4,5}(v\d+)?|[a-z\-]+(\.[A-Z]{2})?/\d{7}", arxiv_id):
        raise ValueError(f"bad 'arxiv_id' {arxiv_id!r}")
    year = record.get("year")
    if year not in (None, ""):
        try:
            year = int(year)
        except (TypeError, ValueError):
            raise ValueError(f"bad 'year' {year!r}") from None
    else:
        year = _year_from_arxiv(arxiv_id) if arxiv_id and "." in arxiv_id else None
    authors = record.get("authors") or []
    if isinstance(authors, str):
        authors = [a.strip() for a in re.split(r";|,| and ", authors) if a.strip()]
    url = str(record.get("url") or "").strip() or None
    if url and not _HTTP_URL.match(url):
        raise ValueError(f"bad 'url' {url!r} (must start with http:// or https://)")
    doi = str(record.get("doi") or "").strip().removeprefix("https://doi.org/") or None
    return Entry(title, abstract, source, line, arxiv_id, url, year, [str(a) for a in authors], doi)


def parse_jsonl(text: str, source: str) -> tuple[list[Entry], list[Problem]]:
    entries, problems = [], []
    for lineno, raw in enumerate(text.splitlines(), start=1):
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
    entries, problems = [], []
    reader = csv.DictReader(text.splitlines())
    missing = {"title", "abstract"} - set(reader.fieldnames or [])
    if missing:
        return [], [Problem(source, 1, f"CSV header lacks {sorted(missing)}; file skipped")]
    for record in reader:
        try:
            entries.append(_record_to_entry(record, source, reader.line_num))
        except ValueError as exc:
            problems.append(Problem(source, reader.line_num, f"{exc}; skipped"))
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


def read_source(path: Path) -> tuple[list[Entry], list[Problem]]:
    """Parse one source file, choosing the format from its suffix and content."""
    name = path.name
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
        and len(_ARXIV_ID.findall(text)) * 3 >= len([ln for ln in text.splitlines() if ln.strip()]) // 2
    ):
        return parse_arxiv_list(text, name)
    return parse_listing(text, name)


def source_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their supported files, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise SourceError(f"{path}: no such file or folder")
    return files


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


def merge_entries(entries: list[Entry]) -> list[Paper]:
    """Deduplicate entries: same normalized title or same abstract up to markup."""
    parent = list(range(len(entries)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        keys = ["a:" + normalize_abstract(entry.abstract)]
        if entry.title:
            keys.append("t:" + normalize_title(entry.title))
        if entry.arxiv_id:
            keys.append("x:" + re.sub(r"v\d+$", "", entry.arxiv_id))
        if entry.doi:
            keys.append("d:" + entry.doi.lower())
        for key in keys:
            if key in seen:
                parent[find(i)] = find(seen[key])
            else:
                seen[key] = i

    groups: dict[int, list[Entry]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(find(i), []).append(entry)

    papers: list[Paper] = []
    for group in groups.values():
        titles = [e.title for e in group if e.title]
        title = max(titles, key=_title_quality) if titles else _inferred_title(group[0].abstract)
        # The abstract without LaTeX markup reads better; otherwise the longest.
        abstract = max((e.abstract for e in group), key=lambda a: (-len(_LATEX_CMD.findall(a)), len(a)))
        arxiv_id = next((e.arxiv_id for e in group if e.arxiv_id), None)
        doi = next((e.doi for e in group if e.doi), None)
        url = next((e.url for e in group if e.url), None) or (
            arxiv_url(arxiv_id) if arxiv_id else f"https://doi.org/{doi}" if doi else None
        )
        papers.append(
            Paper(
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
        )
    return papers


def load_corpus(paths: list[Path]) -> tuple[list[Paper], CorpusReport]:
    """Read every source under ``paths`` and return distinct papers plus a report."""
    report = CorpusReport()
    entries: list[Entry] = []
    for path in source_files(paths):
        found, problems = read_source(path)
        report.files[path.name] = len(found)
        report.read[path.resolve()] = len(found)
        report.problems.extend(problems)
        entries.extend(found)
    papers = merge_entries(entries)
    report.entries = len(entries)
    report.papers = len(papers)
    report.merged = len(entries) - len(papers)
    return papers, report


def source_counts(papers: list[Paper]) -> dict[str, int]:
    return dict(sorted(Counter(s for p in papers for s in p.sources).items()))
