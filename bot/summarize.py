"""Literature summaries: the papers really about a topic, grouped into themes, every claim cited.

``summarize(engine, topic)`` gathers candidates (hybrid search plus a scan of
every paper's dense and BM25 match), keeps those a fitted relevance rule calls
on-topic, clusters them into a few themes, and writes one paragraph per theme:
each paper's own key-claim sentence with an [n] marker (extractive mode), or a
synthesis the LLM writes from those claims with its markers verified (LLM
mode). Papers are numbered by first appearance; the reference list follows.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from llama_index.core.llms import LLM, ChatMessage

from bot.answer import Engine
from bot.answerers import BOILERPLATE
from bot.citations import keep_resolvable, map_markers, markers_in, strip_markers, verify, with_marker
from bot.config import SummarySettings
from bot.llm import describe_failure, fill, load_prompt, model_errors, reading_model_output
from bot.normalize import GoldIndex
from bot.schema import Hit, Paper
from bot.text import RESEARCH_FILLER, check_question, split_sentences, stopwords, token_f1

log = logging.getLogger(__name__)

# Contribution cues, strongest first: the sentence that says what the paper does.
_WHO = r"\b(we|this (paper|work|study|article)|here,? we|in this (paper|work),? we|our (work|paper))\b[^.]{0,80}?"
_CUES: list[tuple[re.Pattern[str], float]] = [
    (
        re.compile(
            r"\b(our (key|main) (result|contribution|finding)|our primary contribution|the highlight of this)", re.I
        ),
        1.0,
    ),
    (
        re.compile(
            _WHO
            + r"\b(propose|present|introduce|develop|design|devise|generali[sz]e|extend|contribute|formulate)[sd]?\b",
            re.I,
        ),
        1.0,
    ),
    (
        re.compile(
            r"\b(we|this (paper|work|study)|our (results|analysis|theory))\b[^.]{0,80}?"
            r"\b(show|prove|disprove|demonstrate|establish|derive|find|reveal|identify|provide|obtain|uncover|resolve|give)[sd]?\b",
            re.I,
        ),
        0.7,
    ),
    (
        re.compile(
            r"\b(we|this (paper|work|study))\b[^.]{0,60}?\b(study|analy[sz]e|investigate|explore|consider)", re.I
        ),
        0.5,
    ),
    (re.compile(r"\b(our|the proposed) (method|approach|framework|model|algorithm)\b", re.I), 0.3),
]
# A follow-on contribution ("We also ...", "Finally, we ...") or the experiments are not the key claim.
_SECONDARY = re.compile(
    r"^(also|additionally|further(more)?|moreover|finally|subsequently|besides|however|in addition)\b|\bwe (also|further|then)\b",
    re.I,
)
_EXPERIMENTS = re.compile(r"\b(experiments?|ablation|benchmarks?|empirical(ly)? (results|evaluation))\b", re.I)
# Small models open every one-line claim with this; the claim starts after it.
_LEAD_IN = re.compile(
    r"^(in (this|the) (paper|work|study),?\s*)?(the|this) (paper|work|study)'?s? (main |key |primary )?"
    r"(contribution|finding)s?( or (main )?finding)?( of (the|this) (paper|work|study))? (is|are)( that)?[:,]?\s+",
    re.I,
)
_MIN_NAME_LETTERS = 4  # a model's theme name with fewer letters is no name

Progress = Callable[[float, str], None]


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


# -- selecting the papers ----------------------------------------------------
@dataclass
class Candidate:
    hit: Hit
    relevance: float  # P(on topic) from the fitted rule


def _zscore(values: np.ndarray) -> np.ndarray:
    spread = float(values.std())
    return (values - values.mean()) / (spread if spread > 1e-9 else 1.0)


def relevance(dense: np.ndarray, sparse: np.ndarray, vectors: np.ndarray, cfg: SummarySettings) -> np.ndarray:
    """P(on topic) for every paper from its dense and BM25 scores and its paper vector.

    P = sigmoid(w_dense * z_dense + w_bm25 * z_bm25 + w_seed * z_seed + bias): z_dense / z_bm25 are
    the paper's best-chunk cosine / BM25 score for the topic, standardized over the whole corpus
    (how far the paper stands out for this topic); z_seed is the paper's mean cosine to the best
    papers by the first two (papers of the same research line resemble each other). Fitted by
    logistic regression on evals/topics.jsonl; at the cut, leave-one-topic-out F1 is within 0.005
    of its best, with precision ahead of recall (evals/summary_report.md). Dense similarity alone
    ranked gold papers clearly worse.
    """
    # Seeds: the best papers by dense and BM25 evidence weighted equally (as fitted on their own).
    first = _zscore(dense) + _zscore(sparse)
    seeds = np.argsort(-first)[: cfg.seeds]
    seed_sim = (vectors @ vectors[seeds].T).mean(axis=1)
    logit = cfg.w_dense * _zscore(dense) + cfg.w_bm25 * _zscore(sparse) + cfg.w_seed * _zscore(seed_sim) + cfg.bias
    return 1.0 / (1.0 + np.exp(-logit))


def select_papers(engine: Engine, topic: str, limit: int) -> tuple[list[Candidate], bool, list[str]]:
    """The on-topic papers (best first), whether the corpus covers the topic, and notes."""
    cfg = engine.settings.summary
    retrieval = engine.retrieve_for(topic, k=cfg.candidate_k)
    hits, qvec = retrieval.hits, retrieval.query_vector
    scores = engine.retriever.score_papers(topic, qvec)
    paper_ids = scores.paper_ids
    prob = relevance(scores.dense, scores.sparse, engine.retriever.paper_vectors(paper_ids), cfg)
    by_id = {h.paper.paper_id: h for h in hits}
    order = np.argsort(-prob)
    kept: list[Candidate] = []
    for i in order:
        if prob[i] < cfg.relevance_cut or len(kept) >= limit:
            break
        pid = paper_ids[i]
        hit = by_id.get(pid)
        if hit is None:  # on topic by the full scan though outside the hybrid top k
            hit = engine.retriever.hit_for(pid, qvec)
        kept.append(Candidate(hit, float(prob[i])))
    notes: list[str] = []
    best = max((h.similarity for h in hits), default=0.0)
    if not retrieval.answered or best < cfg.min_topic_similarity:
        notes.append(f"{NO_COVERAGE} The closest paper (similarity {best:.2f}) is not about the topic.")
        return [], False, notes
    if len(kept) < cfg.min_papers:
        notes.append(f"{NO_COVERAGE} Only {len(kept)} paper(s) pass the relevance cut.")
        return [], False, notes
    above = int((prob >= cfg.relevance_cut).sum())
    if above > limit:
        notes.append(f"{above} papers pass the relevance cut; the {limit} most relevant are summarized (--papers)")
    return kept, True, notes


# -- themes -------------------------------------------------------------------
def cluster(vectors: np.ndarray, cfg: SummarySettings) -> np.ndarray:
    """Theme labels: k-means with k (2..5) chosen by silhouette; one theme when nothing splits."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(vectors)
    best_labels, best_score = np.zeros(n, dtype=int), cfg.min_silhouette
    # A theme needs about three papers to say something; small topics stay one theme.
    for k in range(2, min(cfg.max_themes, n // 3) + 1):
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)
        if min(np.bincount(labels)) < 2:
            continue
        score = float(silhouette_score(vectors, labels, metric="cosine"))
        if score > best_score:
            best_labels, best_score = labels, score
    return best_labels


def _doc(paper: Paper) -> str:
    return f"{paper.title}. {paper.abstract}"


def _surface_forms(texts: list[str]) -> dict[str, str]:
    """The most common spelling of each lower-cased word ("ode" -> "ODE")."""
    counts: dict[str, dict[str, int]] = {}
    for text in texts:
        for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9-]*", text):
            forms = counts.setdefault(word.lower(), {})
            forms[word] = forms.get(word, 0) + 1
    out = {}
    for low, forms in counts.items():
        best = max(forms, key=lambda f: (forms[f], f.islower()))
        # Title case is a title's habit, not the word's; acronyms and "NeRF" keep their capitals.
        out[low] = low if best[1:].islower() or best.islower() else best
    return out


def theme_names(
    clusters: list[list[Paper]], background: list[Paper], bigram_boost: float, n_terms: int = 3
) -> list[str]:
    """Each cluster's distinctive terms by class-based TF-IDF against the other clusters and the rest of the corpus."""
    import Stemmer
    from sklearn.feature_extraction.text import CountVectorizer

    classes = [" ".join(_doc(p) for p in group) for group in clusters]
    classes.append(" ".join(_doc(p) for p in background))
    vectorizer = CountVectorizer(
        ngram_range=(1, 2),
        stop_words=sorted(stopwords() | RESEARCH_FILLER),
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9-]+\b",
    )
    counts = vectorizer.fit_transform(classes).toarray().astype(float)
    terms = vectorizer.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    idf = np.log(1.0 + counts.sum(axis=1).mean() / np.maximum(counts.sum(axis=0), 1.0))
    ctfidf = tf * idf
    if len(clusters) > 1:
        # Words every theme shares (usually the topic's own) do not tell the themes apart.
        n = len(clusters)
        others = (tf[:n].sum(axis=0, keepdims=True) - tf[:n]) / (n - 1)
        ctfidf[:n] *= (tf[:n] / np.maximum(tf[:n] + others, 1e-12)) ** 2
    # Two-word terms ("risk control") name a theme better than either word.
    ctfidf *= np.array([bigram_boost if " " in t else 1.0 for t in terms])
    surface = _surface_forms([_doc(p) for group in clusters for p in group])
    stem = Stemmer.Stemmer("english")
    names: list[str] = []
    for c, group in enumerate(clusters):
        # A theme's term should come from more than one of its papers.
        per_paper = vectorizer.transform([_doc(p) for p in group]).toarray() > 0
        spread = per_paper.sum(axis=0)
        need = 2 if len(group) >= 3 else 1
        chosen: list[str] = []
        for j in np.argsort(-ctfidf[c]):
            if ctfidf[c, j] <= 0 or len(chosen) >= n_terms:
                break
            term = terms[j]
            if spread[j] < need:
                continue
            # "map" and "maps" are one term.
            words = set(stem.stemWords(term.split()))
            overlap = [t for t in chosen if words & set(stem.stemWords(t.split()))]
            if not overlap:
                chosen.append(term)
            elif " " in term and all(" " not in t for t in overlap):
                # "inductive" then "inductive bias": keep the phrase in the word's place.
                chosen[chosen.index(overlap[0])] = term
                for t in overlap[1:]:
                    chosen.remove(t)
        words = [" ".join(surface.get(w, w) for w in t.split()) for t in chosen] or ["Other papers"]
        name = ", ".join(words)
        names.append(name[0].upper() + name[1:])
    return names


# -- claims ------------------------------------------------------------------
def cue_score(sentence: str, cfg: SummarySettings) -> float:
    """How clearly ``sentence`` states the paper's own contribution (0 = not at all)."""
    score = max((weight for pattern, weight in _CUES if pattern.search(sentence)), default=0.0)
    if score and _SECONDARY.search(sentence):
        score -= cfg.secondary_penalty
    if score and _EXPERIMENTS.search(sentence):
        score -= cfg.experiment_penalty
    return score


def claim_candidates(paper: Paper, cfg: SummarySettings) -> list[str]:
    sentences = [
        s
        for s in split_sentences(paper.abstract)
        if cfg.min_claim_chars <= len(s) <= cfg.max_claim_chars and not BOILERPLATE.search(s)
    ]
    return sentences or [paper.abstract.strip() or paper.title]


def claim_sentence(sentences: list[str], cfg: SummarySettings, fallback_scores: np.ndarray | None = None) -> str:
    """The paper's key claim: the strongest contribution cue, the earliest of equals.

    Measured on 74 hand-labelled abstracts (evals/claim_labels.jsonl, see
    claim_rule_accuracy): this rule picks a labelled claim 95% of the time, the
    first sentence 23%; adding similarity to the topic or title to the score
    lowered it (88%), so similarity only decides when no sentence has a cue.
    """
    cues = np.array([cue_score(s, cfg) for s in sentences])
    if cues.max() > 0 or fallback_scores is None:
        return sentences[int(np.argmax(cues))]  # argmax keeps the earliest of ties
    return sentences[int(np.argmax(fallback_scores))]


def pick_claims(engine: Engine, papers: list[Paper], topic_vec: np.ndarray) -> dict[str, str]:
    """Key-claim sentence of each paper; only papers without any cue need the encoder."""
    cfg = engine.settings.summary
    pools = {p.paper_id: claim_candidates(p, cfg) for p in papers}
    claims = {pid: claim_sentence(pool, cfg) for pid, pool in pools.items() if any(cue_score(s, cfg) > 0 for s in pool)}
    rest = [p for p in papers if p.paper_id not in claims]
    if rest:
        flat = [s for p in rest for s in pools[p.paper_id]]
        vectors = engine.retriever.encode(flat + [p.title for p in rest])
        titles = vectors[len(flat) :]
        start = 0
        for paper, title_vec in zip(rest, titles, strict=True):
            pool = pools[paper.paper_id]
            block = vectors[start : start + len(pool)]
            claims[paper.paper_id] = claim_sentence(pool, cfg, block @ topic_vec + block @ title_vec)
            start += len(pool)
    return claims


def claim_rule_accuracy(engine: Engine, labels: list[dict]) -> float:
    """Share of labelled papers (``{"paper_id", "topic", "claims": [sentences]}``) whose chosen claim is labelled."""
    right = total = 0
    for label in labels:
        paper = engine.retriever.papers.get(label["paper_id"])
        if paper is None:
            continue
        topic_vec = engine.retriever.embed_query(label.get("topic") or paper.title)
        right += pick_claims(engine, [paper], topic_vec)[paper.paper_id] in label["claims"]
        total += 1
    return right / total if total else 0.0


# -- writing -------------------------------------------------------------------
class _Numbering:
    """Papers numbered by first appearance across the whole summary."""

    def __init__(self) -> None:
        self.of: dict[str, int] = {}
        self.papers: list[Paper] = []

    def __call__(self, paper: Paper) -> int:
        if paper.paper_id not in self.of:
            self.of[paper.paper_id] = len(self.papers) + 1
            self.papers.append(paper)
        return self.of[paper.paper_id]


def extractive_paragraph(group: list[Paper], claims: dict[str, str], number: _Numbering) -> str:
    return " ".join(with_marker(claims[p.paper_id], number(p)) for p in group)


def _grounded(engine: Engine, text: str, paper: Paper) -> bool:
    """The model's one-line claim says something the abstract says (and is not just the title)."""
    cfg = engine.settings.summary
    sentences = claim_candidates(paper, cfg)
    vectors = engine.retriever.encode([text, *sentences])
    support = float((vectors[1:] @ vectors[0]).max())
    return support >= engine.settings.verify_threshold and token_f1(text, paper.title) < cfg.max_title_f1


@dataclass
class ThemeDraft:
    """An LLM-written theme: its name (None keeps the term name), paragraph with local [k], cited hits."""

    name: str | None
    text: str
    cited: list[Hit]
    note: str | None = None  # why the paragraph is not the model's synthesis


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
        text = _LEAD_IN.sub("", " ".join(strip_markers(reply.message.content or "").split()))
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
        reply = (llm.chat([ChatMessage(role="user", content=prompt)]).message.content or "").strip()
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


def _llm_theme(
    engine: Engine,
    topic: str,
    group: list[Candidate],
    claims: dict[str, str],
    llm: LLM,
    tick: Callable[[int], None] = lambda done: None,
) -> ThemeDraft | None:
    """LLM map (one claim per paper) then reduce (named paragraph), verified as chat answers are.

    When the synthesis fails the check, the model's own per-paper claims (each
    grounded in its abstract) make the paragraph and pass the same check; None
    when neither does.
    """
    hits = [c.hit for c in group]
    mapped = _map_claims(engine, llm, topic, group, claims, tick)
    tick(len(group))
    name, reply = _reduce(engine, llm, topic, mapped)
    verdict = _verified_paragraph(engine, reply, hits) if any(ch.isalpha() for ch in strip_markers(reply)) else None
    if isinstance(verdict, tuple):
        return ThemeDraft(name, *verdict)
    why = verdict or "the model wrote no paragraph"
    mapped_text = " ".join(f"{m.rstrip('.')} [{n}]." for n, m in enumerate(mapped, start=1))
    fallback = _verified_paragraph(engine, mapped_text, hits)
    if isinstance(fallback, tuple):
        return ThemeDraft(
            name, *fallback, note=f"LLM synthesis failed ({why}); paragraph from the model's per-paper claims"
        )
    return None


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


def _renumber_local(text: str, local: list[Hit], number: _Numbering) -> str:
    """Rewrite local [k] (k-th of ``local``) to the summary-wide numbers."""
    return map_markers(text, lambda ks: [number(local[k - 1].paper) for k in ks if 1 <= k <= len(local)])


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
    kept, covered, notes = select_papers(engine, topic, limit)
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
    background = [p for pid, p in engine.retriever.papers.items() if pid not in kept_ids]
    names = theme_names([[c.hit.paper for c in g] for g in groups], background, cfg.bigram_boost)

    report(0.25, "choosing each paper's key claim")
    topic_vec = engine.retriever.embed_query(topic)
    claims = pick_claims(engine, [c.hit.paper for c in kept], topic_vec)

    llm = None
    failures = model_errors() if resolved == "llm" else ()
    if resolved == "llm":
        try:
            llm = engine.llm()
        except failures as exc:
            notes.append(f"LLM unavailable ({describe_failure(exc, engine.settings)}); extractive paragraphs")
    number = _Numbering()
    for t, (group, name) in enumerate(zip(groups, names, strict=True)):
        start, span = 0.3 + 0.65 * t / len(groups), 0.65 / len(groups)
        report(start, f"writing theme {t + 1} of {len(groups)}")
        text = None
        if llm is not None:

            def tick(done: int, t: int = t, start: float = start, span: float = span, size: int = len(group)) -> None:
                step = "summarizing" if done == size else f"paper {done + 1} of {size}"
                report(start + span * done / (size + 1), f"theme {t + 1} of {len(groups)}: {step}")

            try:
                draft = _llm_theme(engine, topic, group, claims, llm, tick)
            except failures as exc:  # one bad completion must not sink the summary
                reason = describe_failure(exc, engine.settings)
                notes.append(f"theme {t + 1}: LLM paragraph failed ({reason}); extractive paragraph instead")
                log.warning("summary theme %d: LLM paragraph failed: %s", t + 1, reason)
                draft = None
            else:
                if draft is None:
                    notes.append(
                        f"theme {t + 1}: LLM paragraph failed its citation check; extractive paragraph instead"
                    )
            if draft is not None:
                if draft.note:
                    notes.append(f"theme {t + 1}: {draft.note}")
                name = draft.name or name
                text = _renumber_local(draft.text, draft.cited, number)
                # Papers the model left out are still on topic; they are listed, not dropped.
                missing = [c.hit.paper for c in group if c.hit.paper.paper_id not in number.of]
                if missing:
                    text += " Also on this theme: " + "; ".join(f"{p.title} [{number(p)}]" for p in missing) + "."
        if text is None:
            text = extractive_paragraph([c.hit.paper for c in group], claims, number)
        summary.themes.append(Theme(name=name, text=text, citations=[]))

    # Citation check as in chat: every [n] must name a listed paper.
    allowed = set(range(1, len(number.papers) + 1))
    dropped = 0
    for theme in summary.themes:
        theme.text, gone = keep_resolvable(theme.text, allowed)
        dropped += gone
        theme.citations = list(dict.fromkeys(markers_in(theme.text)))
    if dropped:
        notes.append(f"{dropped} citation marker(s) that named no paper were removed")
    summary.references = [
        Reference(n=n, paper_id=p.paper_id, title=p.title, arxiv_id=p.arxiv_id, url=p.url, sources=list(p.sources))
        for n, p in enumerate(number.papers, start=1)
    ]
    summary.seconds = time.perf_counter() - started
    report(1.0, "done")
    return summary


# -- measuring -------------------------------------------------------------------
def summary_recall(summary: Summary, gold: list[str], engine: Engine) -> dict:
    """Share of gold papers the summary cites (recall) and of cited papers in gold (precision)."""
    found, missing = GoldIndex(engine.manifest.papers).resolve_all(gold)
    gold_ids = set(found)
    cited = {r.paper_id for r in summary.references}
    hits = len(cited & gold_ids)
    return {
        "recall": hits / len(gold_ids) if gold_ids else (1.0 if not cited else 0.0),
        "precision": hits / len(cited) if cited else (1.0 if not gold_ids else 0.0),
        "cited": len(cited),
        "gold": len(gold_ids),
        "unresolved_gold": missing,
    }


def output_problem(path: Path) -> str | None:
    """Why the summary cannot be written to ``path`` (None when it can)."""
    if path.is_dir():
        return f"cannot write {path}: it is a directory"
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"cannot write {path}: the folder {parent} does not exist"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"cannot write {path}: permission denied"
    return None
