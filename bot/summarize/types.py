"""What a summary is: themes, references, and how it prints as Markdown."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Theme:
    name: str
    text: str
    citations: list[int]


@dataclass
class Reference:
    n: int
    paper_id: str
    title: str
    arxiv_id: str | None
    url: str | None
    sources: list[str]


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
            "references": [asdict(r) for r in self.references],
            "covered": self.covered,
            "mode": self.mode,
            "notes": list(self.notes),
        }

    def to_markdown(self) -> str:
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
            if ref.url:
                label = f"arXiv:{ref.arxiv_id}" if ref.arxiv_id else "link"
                entry += f" — [{label}]({ref.url})"
            if ref.sources:
                entry += f" — source: {', '.join(ref.sources)}"
            lines.append(entry)
        if self.notes:
            lines.append("")
            lines += [f"> Note: {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


NO_COVERAGE = "The indexed papers do not cover this topic, so there is nothing to summarize."
