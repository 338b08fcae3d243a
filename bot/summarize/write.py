"""Writing a theme: the papers' key claims (extractive), or an LLM map-reduce paragraph verified as chat answers are."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core.llms import LLM, ChatMessage

from bot.answer import Engine
from bot.citations import map_markers, strip_markers, verify, with_marker
from bot.llm import fill, load_prompt, reading_model_output
from bot.safety import clean
from bot.schema import Hit, Paper
from bot.summarize.claims import LEAD_IN, claim_candidates, contribution_line
from bot.summarize.select import Candidate
from bot.summarize.types import PaperLine
from bot.text import split_sentences, token_f1

_MIN_NAME_LETTERS = 4  # a model's theme name with fewer letters is no name


# -- writing -------------------------------------------------------------------
class Numbering:
    """Papers numbered in the order they are first numbered across the whole summary (the lines' order)."""

    def __init__(self) -> None:
        self.of: dict[str, int] = {}
        self.papers: list[Paper] = []

    def __call__(self, paper: Paper) -> int:
        if paper.paper_id not in self.of:
            self.of[paper.paper_id] = len(self.papers) + 1
            self.papers.append(paper)
        return self.of[paper.paper_id]


def paper_lines(group: list[Paper], lines: list[str], number: Numbering) -> list[PaperLine]:
    """One cited line per paper, in the group's order: what the paper contributes, no "we propose"."""
    return [
        PaperLine(number(p), with_marker(contribution_line(line), number(p)))
        for p, line in zip(group, lines, strict=True)
    ]


def theme_text(statement: str, lines: list[PaperLine]) -> str:
    """The theme as Markdown: its statement, then one bullet per paper."""
    return statement + "\n\n" + "\n".join(f"- {line.text}" for line in lines)


def _grounded(engine: Engine, text: str, paper: Paper) -> bool:
    """The model's one-line claim says something the abstract says (and is not just the title)."""
    cfg = engine.settings.summary
    sentences = claim_candidates(paper, cfg)
    vectors = engine.retriever.encode([text, *sentences])
    support = float((vectors[1:] @ vectors[0]).max())
    return support >= engine.settings.verify_threshold and token_f1(text, paper.title) < cfg.max_title_f1


@dataclass
class ThemeDraft:
    """An LLM-written theme: name (None keeps the phrase name), statement with local [k] and the hits it cites
    (None when the synthesis failed its check), and one claim per paper of the group, in order."""

    name: str | None
    statement: str | None
    cited: list[Hit]
    lines: list[str]
    note: str | None = None  # why the statement is not the model's synthesis


def _map_claims(
    engine: Engine, llm: LLM, topic: str, group: list[Candidate], claims: dict[str, str], tick: Callable[[int], None]
) -> list[str]:
    """The model's one-line claim per paper; an unusable one gives way to the paper's own claim sentence."""
    cfg = engine.settings.summary
    template = load_prompt("summary_map", engine.settings)
    mapped: list[str] = []
    for i, cand in enumerate(group):
        tick(i)  # each completion can take a while on a small local server
        paper = cand.hit.paper
        prompt = fill(template, topic=topic, title=paper.title, abstract=" ".join(paper.abstract.split()))
        with reading_model_output():
            reply = llm.chat([ChatMessage(role="user", content=prompt)])
        text = LEAD_IN.sub("", " ".join(strip_markers(clean(reply.message.content or "")).split()))
        first = split_sentences(text)[0] if text else ""
        first = first[:1].upper() + first[1:]
        # An empty, rambling, off-paper or title-only reply gives way to the paper's own claim sentence.
        ok = cfg.min_mapped_chars <= len(first) <= cfg.max_mapped_chars and _grounded(engine, first, paper)
        mapped.append(first if ok else claims[paper.paper_id])
    return mapped


def _reduce(engine: Engine, llm: LLM, topic: str, mapped: list[str]) -> tuple[str | None, str]:
    """The model's theme name (or None) and paragraph from the mapped claims, each already cited [k]."""
    # Each claim already carries its marker, so a small model that copies the list still cites
    # correctly; titles are left out (models mixed them up with other papers' claims).
    lines = "\n".join(f"- {m.rstrip('.')} [{n}]." for n, m in enumerate(mapped, start=1))
    prompt = fill(load_prompt("summary_reduce", engine.settings), topic=topic, claims=lines)
    with reading_model_output():
        reply = clean(llm.chat([ChatMessage(role="user", content=prompt)]).message.content or "").strip()
    name = None
    match = re.match(r"^\W*themes?\b\W*:?\s*(.+)$", reply.splitlines()[0] if reply else "", re.I)
    if match:
        name = strip_markers(match.group(1)).strip(" *#.:\"'")[: engine.settings.summary.max_name_chars]
        # A name needs words; otherwise the theme keeps its distinctive-terms name.
        name = name if len(re.findall(r"[A-Za-z]", name)) >= _MIN_NAME_LETTERS else None
        reply = "\n".join(reply.splitlines()[1:]).strip()
    reply = " ".join(re.sub(r"^\s*[-*\u2022]\s*", "", line) for line in reply.splitlines())
    # Small models echo the prompt's header line before the paragraph.
    reply = re.sub(
        r"^.*?each followed by its paper number in square brackets:?\s*", "", " ".join(reply.split()), flags=re.I
    )
    return name, reply


def llm_theme(
    engine: Engine,
    topic: str,
    group: list[Candidate],
    claims: dict[str, str],
    llm: LLM,
    tick: Callable[[int], None] = lambda done: None,
) -> ThemeDraft:
    """LLM map (one claim per paper) then reduce (named synthesis), verified as chat answers are.

    The per-paper claims become the theme's lines (each grounded in its abstract, or the paper's
    own claim sentence); the synthesis becomes its statement when it passes the citation check,
    otherwise the statement is left to the extractive rule and the draft carries a note.
    """
    hits = [c.hit for c in group]
    mapped = _map_claims(engine, llm, topic, group, claims, tick)
    tick(len(group))
    name, reply = _reduce(engine, llm, topic, mapped)
    verdict = _verified_paragraph(engine, reply, hits) if any(ch.isalpha() for ch in strip_markers(reply)) else None
    if isinstance(verdict, tuple):
        return ThemeDraft(name, verdict[0], verdict[1], mapped)
    why = verdict or "the model wrote no paragraph"
    return ThemeDraft(
        name, None, [], mapped, note=f"LLM synthesis failed ({why}); theme lines from the model's per-paper claims"
    )


def _verified_paragraph(engine: Engine, reply: str, hits: list[Hit]) -> tuple[str, list[Hit]] | str:
    """As in chat: dangling numbers go, and each sentence must be backed by the papers it cites.

    Returns the kept text and the cited hits in order, or why the paragraph fails.
    """
    checked = verify(reply, hits, engine.settings.verify_threshold, engine.retriever)
    kept = [s for s in checked.sentences if s.verified and s.citations]
    if not kept or len(kept) < len(checked.sentences) / 2:
        return f"only {len(kept)} of {len(checked.sentences)} sentences are backed by the papers they cite"
    by_id = {h.paper.paper_id: h for h in hits}
    return " ".join(s.text for s in kept), [by_id[c.paper_id] for c in checked.citations]


def renumber_local(text: str, local: list[Hit], number: Numbering) -> str:
    """Rewrite local [k] (k-th of ``local``) to the summary-wide numbers."""
    return map_markers(text, lambda ks: [number(local[k - 1].paper) for k in ks if 1 <= k <= len(local)])
