"""Keys that decide when two strings name the same paper: titles, abstracts, arXiv ids, gold entries.

The one home of these rules. The corpus merges duplicate entries with them, the
eval harness and the summary measurements resolve a gold entry (a title or an
arXiv id) to an indexed paper with them, and the eval scripts do the same. Two
titles are the same paper exactly when their :func:`normalize_title` keys are
equal; an arXiv id matches with or without its ``arXiv:`` prefix and version.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote_plus

from bot.schema import Paper

# "2301.01234", "arXiv:2301.01234v2": the bare new-style id is group 1.
ARXIV_ID = re.compile(r"^(?:arxiv:)?(\d{4}\.\d{4,5})(?:v\d+)?$", re.I)
# The same id inside running text ("... arXiv:2301.01234v2"), as the arXiv list pages write it.
ARXIV_ID_IN_TEXT = re.compile(r"arXiv:(\d{4}\.\d{4,5})(v\d+)?")
# A new-style id anywhere, unprefixed (a BibTeX eprint field, an arXiv DOI, an abs/ URL).
BARE_ARXIV_ID = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5}(?:v\d+)?)(?![\d.])")
LATEX_CMD = re.compile(r"\\[a-zA-Z]+\*?")
# An abstract's own bibliography marks ("Hypothesis [27]", "et al. [2022]").
_REFERENCE_MARK = re.compile(r"\s+\[\d+(?:\s*[,;\u2013-]\s*\d+)*\](?=[\s.,;:)]|$)")


def clean_whitespace(text: str) -> str:
    """NFKC-normalised text with every run of whitespace made one space."""
    # str.split() splits on the characters re's \s matches (str.isspace), and is several times faster.
    return " ".join(unicodedata.normalize("NFKC", text).split())


def normalize_title(title: str) -> str:
    """The title's key: lower-case letters and digits only, LaTeX command names dropped.

    A title written with markup ("in $\\sim$20 Seconds") and its display form ("in ∼20 Seconds",
    bot.latex) have the same key.
    """
    return re.sub(r"[^a-z0-9]+", "", LATEX_CMD.sub("", clean_whitespace(title)).lower())


def normalize_abstract(abstract: str) -> str:
    """Abstract key that ignores LaTeX markup such as ``\\emph{}`` and punctuation."""
    text = LATEX_CMD.sub("", abstract)
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def bare_arxiv_id(text: str) -> str | None:
    """``2301.01234`` for "arXiv:2301.01234v2" or "2301.01234"; None when ``text`` is not an arXiv id."""
    match = ARXIV_ID.match(text.strip())
    return match.group(1) if match else None


def arxiv_search_url(title: str) -> str:
    """An arXiv title search for a paper the corpus knows no id or link of."""
    return f"https://arxiv.org/search/?query={quote_plus(title)}&searchtype=title"


def paper_link(title: str, url: str | None) -> str:
    """Where a reference points: the paper's own (arXiv) page when known, else an arXiv title search."""
    return url or arxiv_search_url(title)


def drop_reference_marks(abstract: str) -> str:
    """Remove an abstract's own bibliography marks ("Hypothesis [27]", "et al. [2022]").

    They point into a reference list nobody here can see, and in an answer they
    would read as paperbot's [n] citations. Brackets not preceded by a space,
    such as the interval in "L^2([0,1]^d)", stay.
    """
    return _REFERENCE_MARK.sub("", abstract)


class GoldIndex:
    """Resolves gold entries (paper titles or arXiv ids) to indexed paper ids."""

    def __init__(self, papers: Iterable[Paper]) -> None:
        self._by_title: dict[str, str] = {}
        self._by_arxiv: dict[str, str] = {}
        for paper in papers:
            self._by_title.setdefault(normalize_title(paper.title), paper.paper_id)
            if paper.arxiv_id:
                self._by_arxiv.setdefault(bare_arxiv_id(paper.arxiv_id) or paper.arxiv_id, paper.paper_id)

    def resolve(self, entry: str) -> str | None:
        """The paper id ``entry`` names, or None when it names no indexed paper."""
        arxiv = bare_arxiv_id(entry)
        if arxiv is not None:
            return self._by_arxiv.get(arxiv)
        return self._by_title.get(normalize_title(entry))

    def resolve_all(self, entries: Iterable[str]) -> tuple[list[str], list[str]]:
        """The distinct paper ids of ``entries`` in order, and the entries that name no paper."""
        found: list[str] = []
        missing: list[str] = []
        for entry in entries:
            paper_id = self.resolve(entry)
            if paper_id is None:
                missing.append(entry)
            elif paper_id not in found:
                found.append(paper_id)
        return found, missing
