"""Selecting the papers a summary covers: the fitted on-topic rule over every paper's scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.answer import Engine
from bot.config import RelevanceRule, SummarySettings
from bot.retrieval import PaperScores
from bot.schema import Hit
from bot.summarize.types import NO_COVERAGE


# -- selecting the papers ----------------------------------------------------
@dataclass
class Candidate:
    hit: Hit
    relevance: float  # P(on topic) from the fitted rule


def _zscore(values: np.ndarray) -> np.ndarray:
    spread = float(values.std())
    return (values - values.mean()) / (spread if spread > 1e-9 else 1.0)


def relevance(
    scores: PaperScores, vectors: np.ndarray, cfg: SummarySettings, rule: RelevanceRule | None = None
) -> np.ndarray:
    """P(on topic) for every paper from its dense, BM25 and example-question scores and its paper vector.

    P = sigmoid(w_dense * z_dense + w_bm25 * z_bm25 + w_seed * z_seed + w_questions * z_questions + bias):
    z_dense / z_bm25 are the paper's best-chunk cosine / BM25 score for the topic, standardized over the
    whole corpus (how far the paper stands out for this topic); z_seed is the paper's mean cosine to the
    best papers by the first two (papers of the same research line resemble each other); z_questions
    its best example question's cosine (a paper without questions counts as average). ``rule`` defaults
    to ``cfg.question_rule`` when any paper has example questions, else ``cfg.rule``; both are logistic
    fits at the cut (evals/summary_report.md). Dense similarity alone ranked gold papers clearly worse.
    """
    asked = ~np.isnan(scores.questions)
    rule = rule or (cfg.question_rule if asked.any() else cfg.rule)
    dense, sparse = scores.dense, scores.sparse
    questions = np.where(asked, scores.questions, scores.questions[asked].mean() if asked.any() else 0.0)
    # Seeds: the best papers by dense and BM25 evidence weighted equally (as fitted on their own).
    first = _zscore(dense) + _zscore(sparse)
    seeds = np.argsort(-first)[: cfg.seeds]
    seed_sim = (vectors @ vectors[seeds].T).mean(axis=1)
    logit = (
        rule.w_dense * _zscore(dense)
        + rule.w_bm25 * _zscore(sparse)
        + rule.w_seed * _zscore(seed_sim)
        + rule.w_questions * _zscore(questions)
        + rule.bias
    )
    return 1.0 / (1.0 + np.exp(-logit))


def select_papers(engine: Engine, topic: str, limit: int) -> tuple[list[Candidate], bool, list[str]]:
    """The on-topic papers (best first), whether the corpus covers the topic, and notes."""
    cfg = engine.settings.summary
    # Asked through the query engine like any question: its answer says whether the abstracts cover
    # the topic (the refusal rule) and lists the closest papers. Not through the reader: it judges
    # whether a paper answers a question, and a topic is none (topics3 with the reader on: plain
    # topics' recall 0.15 -> 0.08, broad 0.77 -> 0.71, 14 s a summary; evals/summary_report.md).
    query_engine = engine.as_query_engine(mode="extractive", k=cfg.candidate_k, judge=False)
    answer = query_engine.query(topic).metadata["answer"]
    hits, qvec = answer.hits, engine.retriever.embed_query(topic)
    scores = engine.retriever.score_papers(topic, qvec)
    paper_ids = scores.paper_ids
    prob = relevance(scores, engine.retriever.paper_vectors(paper_ids), cfg)
    by_id = {h.paper.paper_id: h for h in hits}
    order = np.argsort(-prob)
    asked = scores.questions[~np.isnan(scores.questions)]
    near_question = bool(len(asked)) and float(asked.max()) >= cfg.question_topic_similarity

    def passing(cut: float) -> list[Candidate]:
        kept: list[Candidate] = []
        for i in order:
            if prob[i] < cut or len(kept) >= limit:
                break
            pid = paper_ids[i]
            hit = by_id.get(pid)
            if hit is None:  # on topic by the full scan though outside the hybrid top k
                hit = engine.retriever.hit_for(pid, qvec)
            kept.append(Candidate(hit, float(prob[i])))
        return kept

    kept = passing(cfg.relevance_cut)
    if len(kept) < cfg.min_papers and near_question:
        # A topic in everyday words stands out little by the rule's z-scores; its example questions vouch for it.
        kept = passing(cfg.question_relevance_cut)
    notes: list[str] = []
    best = max((h.similarity for h in hits), default=0.0)
    declined = best < cfg.min_topic_similarity or (answer.refused and best < cfg.refused_topic_similarity)
    if declined and not near_question:
        notes.append(f"{NO_COVERAGE} The closest paper (similarity {best:.2f}) is not about the topic.")
        return [], False, notes
    if len(kept) < cfg.min_papers:
        notes.append(f"{NO_COVERAGE} Only {len(kept)} paper(s) pass the relevance cut.")
        return [], False, notes
    above = int((prob >= cfg.relevance_cut).sum())
    if above > limit:
        notes.append(f"{above} papers pass the relevance cut; the {limit} most relevant are summarized (--papers)")
    return kept, True, notes
