"""What a summary is: themes, references, and how it prints as Markdown and exports as BibTeX.

Invariants: a theme's ``text`` is its statement followed by one ``- line [n]`` per paper, and
``citations`` lists the markers of ``text`` in order of first use; every reference has a ``link``
(its own arXiv page or, without one, an arXiv title search); the BibTeX export holds exactly the
references, in order, each with the arXiv id and url only where the corpus knows them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from bot.normalize import paper_link


@dataclass
class PaperLine:
    """One paper's line in a theme: what it contributes, cited [n]."""

    n: int
    text: str


@dataclass
class Theme:
    name: str
    text: str
    citations: list[int]
    statement: str = ""  # what the theme's papers share and how they differ
    lines: list[PaperLine] = field(default_factory=list)


@dataclass
class Reference:
    n: int
    paper_id: str
    title: str
    arxiv_id: str | None
    url: str | None
    sources: list[str]
    year: int | None = None
    authors: list[str] = field(default_factory=list)
    abstract: str = field(default="", repr=False)  # for the BibTeX export, not the JSON

    @property
    def link(self) -> str:
        return paper_link(self.title, self.url)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("abstract")
        return data | {"link": self.link}


@dataclass
class Summary:
    topic: str
    themes: list[Theme]
    references: list[Reference]
    covered: bool
    mode: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "topic": self.topic,
            "themes": [asdict(t) for t in self.themes],
            "references": [r.to_dict() for r in self.references],
            "covered": self.covered,
            "mode": self.mode,
            "notes": list(self.notes),
        }

    def to_markdown(self, bibtex: bool = False) -> str:
        """The summary as Markdown; with ``bibtex`` the references' BibTeX follows in a folded block."""
        lines = [f"# Literature summary: {self.topic}", ""]
        if not self.covered:
            # The notes say why (they start with the no-coverage sentence).
            lines += [note for note in self.notes] or [NO_COVERAGE]
            return "\n".join(lines).rstrip() + "\n"
        themes = "theme" if len(self.themes) == 1 else "themes"
        lines += [f"*{len(self.references)} papers in {len(self.themes)} {themes} ({self.mode} mode).*", ""]
        for i, theme in enumerate(self.themes, start=1):
            lines += [f"## {i}. {theme.name}", "", theme.text, ""]
        lines += ["## References", ""]
        for ref in self.references:
            entry = f"{ref.n}. {ref.title}"
            if ref.year:
                entry += f" ({ref.year})"
            label = f"arXiv:{ref.arxiv_id}" if ref.arxiv_id else ("link" if ref.url else "search arXiv")
            entry += f" — [{label}]({ref.link})"
            lines.append(entry)
        if self.notes:
            lines.append("")
            lines += [f"> Note: {note}" for note in self.notes]
        if bibtex:
            lines += ["", "<details><summary>BibTeX</summary>", "", "```bibtex", self.to_bibtex().rstrip(), "```", ""]
            lines.append("</details>")
        return "\n".join(lines).rstrip() + "\n"

    def to_bibtex(self) -> str:
        """The cited papers as BibTeX ``@misc`` entries, in reference order."""
        return to_bibtex(self.references)


NO_COVERAGE = "The indexed papers do not cover this topic, so there is nothing to summarize."

# Characters BibTeX (and the LaTeX it feeds) reads as markup, written so they read back as themselves.
_BIB_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BIB_SPECIAL = re.compile("|".join(re.escape(c) for c in _BIB_ESCAPES))


def bib_escape(text: str) -> str:
    """Plain text as a BibTeX field value (inside braces)."""
    return _BIB_SPECIAL.sub(lambda m: _BIB_ESCAPES[m.group(0)], " ".join(text.split()))


def _bib_key(ref: Reference, used: set[str]) -> str:
    words = [w for w in re.findall(r"[A-Za-z]+", ref.title) if len(w) > 3] or ["paper"]
    base = f"{words[0].lower()}{ref.year or ''}"
    key, suffix = base, 0
    while key in used:
        suffix += 1
        key = f"{base}{chr(ord('a') + suffix - 1)}" if suffix <= 26 else f"{base}_{suffix}"
    used.add(key)
    return key


def to_bibtex(references: list[Reference]) -> str:
    """``references`` as BibTeX: title, authors, year, arXiv id (eprint) and url where known, abstract."""
    used: set[str] = set()
    blocks = []
    for ref in references:
        fields = [("title", bib_escape(ref.title))]
        if ref.authors:
            fields.append(("author", " and ".join(bib_escape(a) for a in ref.authors)))
        if ref.year:
            fields.append(("year", str(ref.year)))
        if ref.arxiv_id:
            fields += [("eprint", ref.arxiv_id), ("archiveprefix", "arXiv")]
        if ref.url:
            fields.append(("url", ref.url))
        if ref.abstract:
            fields.append(("abstract", bib_escape(ref.abstract)))
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
        blocks.append(f"@misc{{{_bib_key(ref, used)},\n{body}\n}}\n")
    return "\n".join(blocks)
