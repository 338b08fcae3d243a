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

from bot.answer import Engine, check_question
from bot.schema import Hit, Paper
from bot.text import map_markers, markers_in, split_sentences, strip_markers, token_f1, tokens, with_marker

log = logging.getLogger(__name__)

DEFAULT_PAPERS = 20
MAX_PAPERS = 60
CANDIDATE_K = 60  # papers asked of the hybrid retriever
MIN_PAPERS = 2  # fewer on-topic papers than this is no coverage
# A topic needs a paper about it as a whole, not one that covers its words in passing
# ("automatic speech recognition": one abstract lists speech recognition among applications).
# On evals/topics.jsonl the covered topics' best paper is at 0.56-0.82, the uncovered at 0.34-0.36.
MIN_TOPIC_SIMILARITY = 0.45
MAX_THEMES = 5
MIN_SILHOUETTE = 0.06  # below this the papers do not split into themes
BIGRAM_BOOST = 1.5

# Relevance rule: P(on topic) = sigmoid(W_DENSE * z_dense + W_BM25 * z_bm25 + W_SEED * z_seed + BIAS).
# z_dense / z_bm25: the paper's best-chunk cosine / BM25 score for the topic, standardized over
# the whole corpus (how far the paper stands out for this topic). z_seed: the paper's mean cosine
# to the three best papers by the first two (papers of the same research line resemble each
# other). Fitted by logistic regression on evals/topics.jsonl; at the cut, leave-one-topic-out F1 is
# within 0.005 of its best, with precision ahead of recall (evals/summary_report.md). Dense similarity alone ranked gold papers clearly worse.
W_DENSE = 0.55
W_BM25 = 1.04
W_SEED = 1.14
BIAS = -7.46
RELEVANCE_CUT = 0.40
SEEDS = 3

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
SECONDARY_PENALTY = 0.4
EXPERIMENT_PENALTY = 0.4
# Small models open every one-line claim with this; the claim starts after it.
_LEAD_IN = re.compile(
    r"^(in (this|the) (paper|work|study),?\s*)?(the|this) (paper|work|study)'?s? (main |key |primary )?"
    r"(contribution|finding)s?( or (main )?finding)?( of (the|this) (paper|work|study))? (is|are)( that)?[:,]?\s+",
    re.I,
)
_BOILERPLATE = re.compile(r"https?://|github\.com|\bcode (is|are|will be) (publicly )?(made )?available", re.I)

_STOP_TERMS = set(
    """a an the of in on for to and or with by from that this these those is are was were be been being as at it its
    into than then them they we our us you your their there here which who whom what when where how why can could
    would should may might will shall not no nor also such both each other more most less many much some any all
    only very via using use used uses based new novel propose proposed proposes present presents introduce
    introduces show shows shown demonstrate demonstrates approach approaches method methods paper papers work
    works result results problem problems performance state art existing recent recently however while
    well further first second two one three large significantly achieve achieves achieving improved improve
    improves improving experiments experimental empirical empirically extensive task tasks data set sets
    different various several framework frameworks technique techniques study studies analysis provide provides
    given learn learning model models important key effective efficient efficiently simple applications
    application available code github https com www org et al e g i ie eg often typically commonly usually
    able way ways develop develops address addresses pose poses consider considers study studied""".split()
)

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


def paper_scores(engine: Engine, topic: str, qvec: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every paper's best-chunk dense cosine and best-chunk BM25 score for ``topic``."""
    import bm25s

    retriever = engine.retriever
    paper_ids = list(retriever.rows_of)
    dense_rows = retriever.matrix @ qvec
    words = bm25s.tokenize(
        [topic], stopwords="english", stemmer=retriever.stemmer, return_ids=False, show_progress=False
    )[0]
    # The BM25 index holds the manifest's chunks in order, the same rows as the matrix.
    sparse_rows = retriever.bm25.bm25.get_scores(words) if words else np.zeros(len(retriever.chunk_ids))
    dense = np.array([float(dense_rows[retriever.rows_of[p]].max()) for p in paper_ids])
    sparse = np.array([float(sparse_rows[retriever.rows_of[p]].max()) for p in paper_ids])
    return paper_ids, dense, sparse


def relevance(dense: np.ndarray, sparse: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """P(on topic) for every paper from its dense and BM25 scores and its paper vector."""
    # Seeds: the best papers by dense and BM25 evidence weighted equally (as fitted on their own).
    first = _zscore(dense) + _zscore(sparse)
    seeds = np.argsort(-first)[:SEEDS]
    seed_sim = (vectors @ vectors[seeds].T).mean(axis=1)
    logit = W_DENSE * _zscore(dense) + W_BM25 * _zscore(sparse) + W_SEED * _zscore(seed_sim) + BIAS
    return 1.0 / (1.0 + np.exp(-logit))


def select_papers(engine: Engine, topic: str, limit: int) -> tuple[list[Candidate], bool, list[str]]:
    """The on-topic papers (best first), whether the corpus covers the topic, and notes."""
    hits, qvec, _, relevant = engine.retrieve_for(topic, k=CANDIDATE_K)
    paper_ids, dense, sparse = paper_scores(engine, topic, qvec)
    prob = relevance(dense, sparse, paper_vectors(engine, paper_ids))
    by_id = {h.paper.paper_id: h for h in hits}
    order = np.argsort(-prob)
    kept: list[Candidate] = []
    for i in order:
        if prob[i] < RELEVANCE_CUT or len(kept) >= limit:
            break
        pid = paper_ids[i]
        hit = by_id.get(pid)
        if hit is None:  # on topic by the full scan though outside the hybrid top k
            chunk_id, similarity = engine.retriever.best_chunk(pid, qvec)
            hit = Hit(engine.retriever.papers[pid], 0.0, similarity, engine.retriever.chunk_text[chunk_id])
        kept.append(Candidate(hit, float(prob[i])))
    notes: list[str] = []
    best = max((h.similarity for h in hits), default=0.0)
    if not relevant or best < MIN_TOPIC_SIMILARITY:
        notes.append(f"{NO_COVERAGE} The closest paper (similarity {best:.2f}) is not about the topic.")
        return [], False, notes
    if len(kept) < MIN_PAPERS:
        notes.append(f"{NO_COVERAGE} Only {len(kept)} paper(s) pass the relevance cut.")
        return [], False, notes
    above = int((prob >= RELEVANCE_CUT).sum())
    if above > limit:
        notes.append(f"{above} papers pass the relevance cut; the {limit} most relevant are summarized (--papers)")
    return kept, True, notes


# -- themes -------------------------------------------------------------------
def paper_vectors(engine: Engine, paper_ids: list[str]) -> np.ndarray:
    """Each paper as the normalized mean of its chunk embeddings."""
    vectors = np.stack([engine.retriever.matrix[engine.retriever.rows_of[p]].mean(axis=0) for p in paper_ids])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def cluster(vectors: np.ndarray) -> np.ndarray:
    """Theme labels: k-means with k (2..5) chosen by silhouette; one theme when nothing splits."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(vectors)
    best_labels, best_score = np.zeros(n, dtype=int), MIN_SILHOUETTE
    # A theme needs about three papers to say something; small topics stay one theme.
    for k in range(2, min(MAX_THEMES, n // 3) + 1):
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


def theme_names(clusters: list[list[Paper]], background: list[Paper], n_terms: int = 3) -> list[str]:
    """Each cluster's distinctive terms by class-based TF-IDF against the other clusters and the rest of the corpus."""
    import Stemmer
    from sklearn.feature_extraction.text import CountVectorizer

    classes = [" ".join(_doc(p) for p in group) for group in clusters]
    classes.append(" ".join(_doc(p) for p in background))
    vectorizer = CountVectorizer(
        ngram_range=(1, 2), stop_words=sorted(_STOP_TERMS), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9-]+\b"
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
    ctfidf *= np.array([BIGRAM_BOOST if " " in t else 1.0 for t in terms])
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
def cue_score(sentence: str) -> float:
    """How clearly ``sentence`` states the paper's own contribution (0 = not at all)."""
    score = max((weight for pattern, weight in _CUES if pattern.search(sentence)), default=0.0)
    if score and _SECONDARY.search(sentence):
        score -= SECONDARY_PENALTY
    if score and _EXPERIMENTS.search(sentence):
        score -= EXPERIMENT_PENALTY
    return score


def claim_candidates(paper: Paper) -> list[str]:
    sentences = [s for s in split_sentences(paper.abstract) if 30 <= len(s) <= 600 and not _BOILERPLATE.search(s)]
    return sentences or [paper.abstract.strip() or paper.title]


def claim_sentence(sentences: list[str], fallback_scores: np.ndarray | None = None) -> str:
    """The paper's key claim: the strongest contribution cue, the earliest of equals.

    Measured on 74 hand-labelled abstracts (evals/claim_labels.jsonl, see
    claim_rule_accuracy): this rule picks a labelled claim 95% of the time, the
    first sentence 23%; adding similarity to the topic or title to the score
    lowered it (88%), so similarity only decides when no sentence has a cue.
    """
    cues = np.array([cue_score(s) for s in sentences])
    if cues.max() > 0 or fallback_scores is None:
        return sentences[int(np.argmax(cues))]  # argmax keeps the earliest of ties
    return sentences[int(np.argmax(fallback_scores))]


def pick_claims(engine: Engine, papers: list[Paper], topic_vec: np.ndarray) -> dict[str, str]:
    """Key-claim sentence of each paper; only papers without any cue need the encoder."""
    pools = {p.paper_id: claim_candidates(p) for p in papers}
    claims = {pid: claim_sentence(pool) for pid, pool in pools.items() if any(cue_score(s) > 0 for s in pool)}
    rest = [p for p in papers if p.paper_id not in claims]
    if rest:
        flat = [s for p in rest for s in pools[p.paper_id]]
        vectors = engine.retriever.encoder.encode(flat + [p.title for p in rest])
        titles = vectors[len(flat) :]
        start = 0
        for paper, title_vec in zip(rest, titles, strict=True):
            pool = pools[paper.paper_id]
            block = vectors[start : start + len(pool)]
            claims[paper.paper_id] = claim_sentence(pool, block @ topic_vec + block @ title_vec)
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


def keep_resolvable(text: str, allowed: set[int]) -> tuple[str, int]:
    """Drop every [n] that names no paper of this summary; returns the text and how many went."""
    dropped = 0

    def keep(numbers: list[int]) -> list[int]:
        nonlocal dropped
        kept = [n for n in dict.fromkeys(numbers) if n in allowed]
        dropped += len(numbers) - len(kept)
        return kept

    return map_markers(text, keep), dropped


def _grounded(engine: Engine, text: str, paper: Paper) -> bool:
    """The model's one-line claim says something the abstract says (and is not just the title)."""
    sentences = claim_candidates(paper)
    vectors = engine.retriever.encoder.encode([text, *sentences])
    support = float((vectors[1:] @ vectors[0]).max())
    return support >= engine.settings.verify_threshold and token_f1(text, paper.title) < 0.8


def _llm_theme(
    engine: Engine,
    topic: str,
    group: list[Candidate],
    claims: dict[str, str],
    llm,
    tick: Callable[[int], None] = lambda done: None,
) -> tuple[str | None, str, list[Hit]]:
    """LLM map (one claim per paper) then reduce (named paragraph); returns name, text, cited hits in order."""
    from llama_index.core.llms import ChatMessage

    from bot.llm import fill, load_prompt

    settings = engine.settings
    map_template = load_prompt("summary_map", settings)
    mapped: list[str] = []
    for i, cand in enumerate(group):
        tick(i)  # each completion can take a while on a small local server
        paper = cand.hit.paper
        prompt = fill(map_template, topic=topic, title=paper.title, abstract=" ".join(paper.abstract.split()))
        reply = llm.chat([ChatMessage(role="user", content=prompt)])
        text = _LEAD_IN.sub("", " ".join(strip_markers(reply.message.content or "").split()))
        first = split_sentences(text)[0] if text else ""
        first = first[:1].upper() + first[1:]
        # An empty, rambling, off-paper or title-only reply gives way to the paper's own claim sentence.
        ok = 20 <= len(first) <= 400 and _grounded(engine, first, paper)
        mapped.append(first if ok else claims[paper.paper_id])
    # Each claim already carries its marker, so a small model that copies the list still cites
    # correctly; titles are left out (models mixed them up with other papers' claims).
    lines = "\n".join(f"- {m.rstrip('.')} [{n}]." for n, m in enumerate(mapped, start=1))
    tick(len(group))
    prompt = fill(load_prompt("summary_reduce", settings), topic=topic, claims=lines)
    reply = (llm.chat([ChatMessage(role="user", content=prompt)]).message.content or "").strip()
    name = None
    match = re.match(r"^\W*themes?\b\W*:?\s*(.+)$", reply.splitlines()[0] if reply else "", re.I)
    if match:
        name = strip_markers(match.group(1)).strip(" *#.:\"'")[:80]
        # A name needs words; otherwise the theme keeps its distinctive-terms name.
        name = name if len(re.findall(r"[A-Za-z]", name)) >= 4 else None
        reply = "\n".join(reply.splitlines()[1:]).strip()
    reply = " ".join(re.sub(r"^\s*[-*\u2022]\s*", "", line) for line in reply.splitlines())
    # Small models echo the prompt's header line before the paragraph.
    reply = re.sub(
        r"^.*?each followed by its paper number in square brackets:?\s*", "", " ".join(reply.split()), flags=re.I
    )
    hits = [c.hit for c in group]
    try:
        if not any(ch.isalpha() for ch in strip_markers(reply)):
            raise ValueError("the model wrote no paragraph")
        return (name, *_verified_paragraph(engine, reply, hits, group))
    except ValueError as exc:
        # The synthesis failed the check; the model's own per-paper claims (each grounded in its
        # abstract above) make the paragraph instead, and pass the same citation check.
        mapped_text = " ".join(f"{m.rstrip('.')} [{n}]." for n, m in enumerate(mapped, start=1))
        try:
            text, cited = _verified_paragraph(engine, mapped_text, hits, group)
        except ValueError:
            raise exc from None
        raise _MappedParagraph(str(exc), name, text, cited) from None


class _MappedParagraph(ValueError):
    """The reduce paragraph failed verification; the verified map claims stand in for it."""

    def __init__(self, reason: str, name: str | None, text: str, cited: list[Hit]) -> None:
        super().__init__(reason)
        self.name, self.text, self.cited = name, text, cited


def _verified_paragraph(engine: Engine, reply: str, hits: list[Hit], group: list[Candidate]) -> tuple[str, list[Hit]]:
    """As in chat: dangling numbers go, and each sentence must be backed by the papers it cites."""
    from bot.llm import verify

    checked = verify(reply, hits, engine.settings.verify_threshold, engine.retriever)
    kept = [s for s in checked.sentences if s.verified and s.citations]
    if not kept or len(kept) < len(checked.sentences) / 2:
        raise ValueError(f"only {len(kept)} of {len(checked.sentences)} sentences are backed by the papers they cite")
    by_id = {c.hit.paper.paper_id: c.hit for c in group}
    cited = [by_id[c.paper_id] for c in checked.citations]
    return " ".join(s.text for s in kept), cited


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
    topic = check_question(topic)
    resolved = engine.resolve_mode(mode)
    limit = DEFAULT_PAPERS if papers is None else max(MIN_PAPERS, min(int(papers), MAX_PAPERS))
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
    labels = cluster(paper_vectors(engine, ids))
    groups = [[c for c, label in zip(kept, labels, strict=True) if label == k] for k in sorted(set(labels))]
    # Themes in order of their most relevant paper; papers in order of relevance.
    groups.sort(key=lambda g: -max(c.relevance for c in g))
    groups = [sorted(g, key=lambda c: -c.relevance) for g in groups]
    kept_ids = set(ids)
    background = [p for pid, p in engine.retriever.papers.items() if pid not in kept_ids]
    names = theme_names([[c.hit.paper for c in g] for g in groups], background)

    report(0.25, "choosing each paper's key claim")
    topic_vec = engine.retriever.embed_query(topic)
    claims = pick_claims(engine, [c.hit.paper for c in kept], topic_vec)

    llm = None
    if resolved == "llm":
        try:
            from bot.llm import get_llm

            llm = get_llm(engine)
        except Exception as exc:  # noqa: BLE001 - no model means: summarize extractively
            from bot.llm import describe_failure

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
                try:
                    llm_name, local_text, cited = _llm_theme(engine, topic, group, claims, llm, tick)
                except _MappedParagraph as mapped:
                    notes.append(
                        f"theme {t + 1}: LLM synthesis failed ({mapped}); paragraph from the model's per-paper claims"
                    )
                    llm_name, local_text, cited = mapped.name, mapped.text, mapped.cited
                name = llm_name or name
                text = _renumber_local(local_text, cited, number)
                # Papers the model left out are still on topic; they are listed, not dropped.
                missing = [c.hit.paper for c in group if c.hit.paper.paper_id not in number.of]
                if missing:
                    text += " Also on this theme: " + "; ".join(f"{p.title} [{number(p)}]" for p in missing) + "."
            except Exception as exc:  # noqa: BLE001 - one bad completion must not sink the summary
                from bot.llm import describe_failure

                reason = describe_failure(exc, engine.settings) if not isinstance(exc, ValueError) else str(exc)
                notes.append(f"theme {t + 1}: LLM paragraph failed ({reason}); extractive paragraph instead")
                log.warning("summary theme %d: LLM paragraph failed: %s", t + 1, reason)
                text = None
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
def _normal_title(text: str) -> str:
    return " ".join(tokens(text))


def resolve_gold(gold: list[str], engine: Engine) -> tuple[set[str], list[str]]:
    """Gold entries (titles or arXiv ids) as paper ids, plus the entries matching no paper."""
    by_title = {_normal_title(p.title): pid for pid, p in engine.retriever.papers.items()}
    by_arxiv = {p.arxiv_id: pid for pid, p in engine.retriever.papers.items() if p.arxiv_id}
    found: set[str] = set()
    missing: list[str] = []
    for entry in gold:
        pid = by_arxiv.get(entry.strip()) or by_title.get(_normal_title(entry))
        if pid is None:
            missing.append(entry)
        else:
            found.add(pid)
    return found, missing


def summary_recall(summary: Summary, gold: list[str], engine: Engine) -> dict:
    """Share of gold papers the summary cites (recall) and of cited papers in gold (precision)."""
    gold_ids, missing = resolve_gold(gold, engine)
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
