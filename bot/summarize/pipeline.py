"""The summary flow: select papers, group them into themes, write each theme, check the citations."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.answer import Engine
from bot.citations import keep_resolvable, markers_in
from bot.llm import describe_failure, model_errors
from bot.spelling import spelling_note
from bot.summarize.claims import pick_claims
from bot.summarize.select import select_papers
from bot.summarize.themes import (
    cluster,
    paper_focus,
    phrase_index,
    phrase_stats,
    shared_phrase,
    theme_name,
    theme_names,
    theme_statement,
)
from bot.summarize.types import Reference, Summary, Theme
from bot.summarize.write import Numbering, llm_theme, paper_lines, renumber_local, theme_text
from bot.text import check_question

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


# -- the whole flow ----------------------------------------------------------------
def summarize(
    engine: Engine,
    topic: str,
    papers: int | None = None,
    mode: str | None = None,
    progress: Progress | None = None,
) -> Summary:
    """A themed, cited overview of what the indexed papers say about ``topic``."""
    started = time.perf_counter()
    cfg = engine.settings.summary
    topic = check_question(topic)
    resolved = engine.resolve_mode(mode)
    limit = cfg.default_papers if papers is None else max(cfg.min_papers, min(int(papers), cfg.max_papers))
    report = progress or (lambda fraction, message: None)

    report(0.02, "finding papers")
    correction = engine.correct_spelling(topic)  # the summary keeps the topic as typed
    kept, covered, notes = select_papers(engine, correction.text, limit)
    if correction.changes:
        notes.insert(0, spelling_note(correction))
    summary = Summary(topic=topic, themes=[], references=[], covered=covered, mode=resolved, notes=notes)
    if not covered:
        summary.seconds = time.perf_counter() - started
        report(1.0, "done")
        return summary

    report(0.15, f"grouping {len(kept)} papers into themes")
    ids = [c.hit.paper.paper_id for c in kept]
    labels = cluster(engine.retriever.paper_vectors(ids), cfg)
    groups = [[c for c, label in zip(kept, labels, strict=True) if label == k] for k in sorted(set(labels))]
    # Themes in order of their most relevant paper; papers in order of relevance.
    groups.sort(key=lambda g: -max(c.relevance for c in g))
    groups = [sorted(g, key=lambda c: -c.relevance) for g in groups]
    kept_ids = set(ids)
    # Every stride-th paper stands in for a large library's background (its vocabulary and counts grow with it);
    # the shipped corpus is below max_background_papers, so its background is every other paper.
    library = list(engine.retriever.papers)
    sample = library[:: max(1, -(-len(library) // cfg.max_background_papers))]
    background = [engine.retriever.papers[pid] for pid in sample if pid not in kept_ids]
    fallback: list[str] = []  # distinctive-terms names, computed only when a theme's titles share no phrase
    phrases = phrase_index(engine)
    topic_stems = phrases.text_stems(correction.text)

    report(0.25, "choosing each paper's key claim")
    topic_vec = engine.retriever.embed_query(correction.text)
    claims = pick_claims(engine, [c.hit.paper for c in kept], topic_vec)

    llm = None
    failures = model_errors() if resolved == "llm" else ()
    if resolved == "llm":
        try:
            llm = engine.llm()
        except failures as exc:
            notes.append(f"LLM unavailable ({describe_failure(exc, engine.settings)}); extractive themes")
    number = Numbering()
    for t, group in enumerate(groups):
        start, span = 0.3 + 0.65 * t / len(groups), 0.65 / len(groups)
        report(start, f"writing theme {t + 1} of {len(groups)}")
        papers_in = [c.hit.paper for c in group]
        inside = {p.paper_id for p in papers_in}
        stats = phrase_stats(papers_in, phrases, [pid for pid in sample if pid not in inside])
        name, name_stems = theme_name(stats, len(group), cfg)
        if not name:
            # Its one most distinctive term: a name, not a list of keywords.
            fallback = fallback or theme_names(
                [[c.hit.paper for c in g] for g in groups], background, cfg.bigram_boost, n_terms=1
            )
            name = fallback[t]
        draft = None
        if llm is not None:

            def tick(done: int, t: int = t, start: float = start, span: float = span, size: int = len(group)) -> None:
                step = "summarizing" if done == size else f"paper {done + 1} of {size}"
                report(start + span * done / (size + 1), f"theme {t + 1} of {len(groups)}: {step}")

            try:
                draft = llm_theme(engine, topic, group, claims, llm, tick)
            except failures as exc:  # one bad completion must not sink the summary
                reason = describe_failure(exc, engine.settings)
                notes.append(f"theme {t + 1}: LLM theme failed ({reason}); extractive theme instead")
                log.warning("summary theme %d: LLM theme failed: %s", t + 1, reason)
            else:
                if draft.note:
                    notes.append(f"theme {t + 1}: {draft.note}")
                name = draft.name or name
        # Papers are numbered in the order of their lines (relevance); the statement cites those numbers.
        for paper in papers_in:
            number(paper)
        if draft is not None and draft.statement is not None:
            statement = renumber_local(draft.statement, draft.cited, number)
        else:
            skip = name_stems | topic_stems
            focus = paper_focus(stats, len(group), skip, cfg)
            named = [(focus[i], number(p)) for i, p in enumerate(papers_in) if i in focus][: cfg.statement_papers]
            statement = theme_statement(name, named, len(group), shared_phrase(stats, len(group), skip, cfg))
        own = draft.lines if draft is not None else [claims[p.paper_id] for p in papers_in]
        lines = paper_lines(papers_in, own, number)
        summary.themes.append(
            Theme(name=name, text=theme_text(statement, lines), citations=[], statement=statement, lines=lines)
        )

    # Citation check as in chat: every [n] must name a listed paper.
    allowed = set(range(1, len(number.papers) + 1))
    dropped = 0
    for theme in summary.themes:
        theme.text, gone = keep_resolvable(theme.text, allowed)
        dropped += gone
        theme.statement, _ = keep_resolvable(theme.statement, allowed)
        theme.citations = list(dict.fromkeys(markers_in(theme.text)))
    if dropped:
        notes.append(f"{dropped} citation marker(s) that named no paper were removed")
    summary.references = [
        Reference(
            n=n,
            paper_id=p.paper_id,
            title=p.title,
            arxiv_id=p.arxiv_id,
            url=p.url,
            sources=list(p.sources),
            year=p.year,
            authors=list(p.authors),
            abstract=p.abstract,
        )
        for n, p in enumerate(number.papers, start=1)
    ]
    summary.seconds = time.perf_counter() - started
    report(1.0, "done")
    return summary
