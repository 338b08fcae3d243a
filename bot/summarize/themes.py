"""Grouping the selected papers into themes and naming each theme from its distinctive terms."""

from __future__ import annotations

import re

import numpy as np

from bot.config import SummarySettings
from bot.schema import Paper
from bot.text import RESEARCH_FILLER, stopwords


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
        # Sparse: a dense papers-by-vocabulary matrix of a large library takes gigabytes.
        spread = np.asarray((vectorizer.transform([_doc(p) for p in group]) > 0).sum(axis=0)).ravel()
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
