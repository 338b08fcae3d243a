"""Grouping the selected papers into themes, and writing each theme's name and statement.

A theme's name is a noun phrase taken from its papers' titles (a run of content words between
punctuation and function words) that its papers use and the rest of the corpus does not; its
statement says what the papers share and, per paper, the title phrase that sets it apart, cited.
The distinctive-terms name (class-based TF-IDF) is the fallback when no title phrase is shared.

Invariants: every phrase shown is spelled as the theme's abstracts spell it (title case dropped,
acronyms kept); the statement cites only papers of its theme, in the theme's (relevance) order.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bot.answer import Engine
from bot.config import SummarySettings
from bot.schema import Paper
from bot.text import RESEARCH_FILLER, stopwords


# -- themes -------------------------------------------------------------------
def cluster(vectors: np.ndarray, cfg: SummarySettings) -> np.ndarray:
    """Theme labels: k-means with k (2..5) chosen by silhouette; one theme when nothing splits."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    n = len(vectors)
    best_labels, best_score = np.zeros(n, dtype=int), cfg.min_silhouette
    # A few dozen points: OpenMP threads only wait for each other (0.8 s against 0.02 s on a
    # loaded 2-core machine), so k-means runs on one thread.
    with threadpool_limits(limits=1):
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


# -- names and statements that read as an overview --------------------------------
_SPLIT = re.compile(r"\s*(?:[:;,?!()\[\]\"“”]|\s[-–—]\s)\s*")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
# Words a name may hold inside but should not open with ("novel diffusion sampler").
# Split a title into phrases at these too: they join phrases rather than belong to one.
_JOINERS = frozenset("via using towards toward based beyond without within through versus vs de".split())
_WEAK_OPENERS = frozenset(
    "novel new simple improved improving improve towards toward via using based better unified generalized general "
    "efficient effective fast faster provably rethinking revisiting understanding learning".split()
)


@dataclass
class PhraseStats:
    """How one candidate phrase sits in a theme: its spelling, the theme papers using it, the rest of the corpus."""

    surface: str
    words: int
    papers: set[int]  # indexes of the theme's papers whose title or abstract uses it
    titles: set[int]  # indexes of the theme's papers whose title uses it
    background: float  # share of the other papers that use it


class PhraseIndex:
    """Stemmed word n-grams of papers (title and abstract), to count who uses a phrase.

    A paper's n-grams are made the first time they are asked for and kept: a
    summary asks for its themes' papers and the background sample's, not the
    library's (every paper of a 45,000-paper library took 29 s and 3.4 GB).
    """

    def __init__(self, papers: Mapping[str, Paper], max_words: int) -> None:
        import Stemmer

        self._stem = Stemmer.Stemmer("english").stemWords
        self.max_words = max_words
        self._papers = papers
        self._grams: dict[str, tuple[set[tuple[str, ...]], set[tuple[str, ...]]]] = {}

    def _both(self, paper_id: str) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
        if paper_id not in self._grams:
            paper = self._papers[paper_id]
            title = self._grams_of(paper.title)
            self._grams[paper_id] = (title | self._grams_of(paper.abstract), title)
        return self._grams[paper_id]

    def grams(self, paper_id: str) -> set[tuple[str, ...]]:
        """The n-grams of the paper's title and abstract."""
        return self._both(paper_id)[0]

    def title_grams(self, paper_id: str) -> set[tuple[str, ...]]:
        return self._both(paper_id)[1]

    def stems(self, words: list[str]) -> tuple[str, ...]:
        return tuple(self._stem([w.lower() for w in words]))

    def text_stems(self, text: str) -> set[str]:
        """The stems of every word of ``text`` (a topic's words are no paper's focus)."""
        return set(self.stems(_WORD.findall(text)))

    def _grams_of(self, text: str) -> set[tuple[str, ...]]:
        out: set[tuple[str, ...]] = set()
        for segment in _SPLIT.split(text):
            stems = self.stems(_WORD.findall(segment))
            for n in range(1, self.max_words + 1):
                out.update(stems[i : i + n] for i in range(len(stems) - n + 1))
        return out


_PHRASE_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def phrase_index(engine: Engine) -> PhraseIndex:
    """The corpus's phrase index, built once per loaded engine (about a second for the shipped corpus)."""
    index = _PHRASE_INDEXES.get(engine.retriever)
    if index is None:
        index = PhraseIndex(engine.retriever.papers, engine.settings.summary.max_phrase_words)
        _PHRASE_INDEXES[engine.retriever] = index
    return index


def title_phrases(title: str, max_words: int) -> list[list[str]]:
    """Candidate noun phrases of a title: runs of content words between punctuation and function words."""
    stop = stopwords() | _JOINERS
    phrases: list[list[str]] = []
    for segment in _SPLIT.split(title):
        run: list[str] = []
        for word in [*_WORD.findall(segment), ""]:
            if word and word.lower() not in stop:
                run.append(word)
                continue
            for i in range(len(run)):
                for j in range(i + 1, min(len(run), i + max_words) + 1):
                    phrase = run[i:j]
                    if phrase[0].lower() not in _WEAK_OPENERS and not phrase[-1][0].isdigit():
                        phrases.append(phrase)
            run = []
    return phrases


def _abstract_spellings(group: list[Paper]) -> dict[str, str]:
    """How the group's abstracts spell each word most often, by its lower-case form."""
    counts: dict[str, dict[str, int]] = {}
    for paper in group:
        for word in _WORD.findall(paper.abstract):
            forms = counts.setdefault(word.lower(), {})
            forms[word] = forms.get(word, 0) + 1
    return {low: max(forms, key=lambda f: (forms[f], f.islower())) for low, forms in counts.items()}


def _spelling(word: str, forms: dict[str, str]) -> str:
    """A title word as running text spells it: "Distillation" -> "distillation", "NeRF" and "BD-KD" stay."""
    if word.lower() in forms:
        return forms[word.lower()]
    # Title case ("Data-Free", "Second-Order") is the title's habit; acronyms keep their capitals.
    parts = word.split("-")
    if all(len(p) <= 1 or p[1:] == p[1:].lower() for p in parts):
        return word.lower()
    return word


def phrase_stats(group: list[Paper], index: PhraseIndex, others: list[str]) -> dict[tuple[str, ...], PhraseStats]:
    """Every title phrase of ``group`` with who uses it; ``others`` are the paper ids outside the theme."""
    stats: dict[tuple[str, ...], PhraseStats] = {}
    spellings: dict[tuple[str, ...], dict[str, int]] = {}
    forms = _abstract_spellings(group)
    for paper in group:
        for words in title_phrases(paper.title, index.max_words):
            key = index.stems(words)
            spelled = spellings.setdefault(key, {})
            shown = " ".join(_spelling(w, forms) for w in words)
            spelled[shown] = spelled.get(shown, 0) + 1
            if key in stats:
                continue
            used = sum(1 for pid in others if key in index.grams(pid))
            stats[key] = PhraseStats(
                surface="",
                words=len(key),
                papers={i for i, p in enumerate(group) if key in index.grams(p.paper_id)},
                titles={i for i, p in enumerate(group) if key in index.title_grams(p.paper_id)},
                background=used / max(len(others), 1),
            )
    for key, stat in stats.items():
        stat.surface = max(spellings[key], key=lambda s: spellings[key][s])
    return stats


def _distinct(stat: PhraseStats, size: int, cfg: SummarySettings) -> float:
    """How well a phrase names the theme: used by its papers, rare elsewhere, longer is more specific."""
    share = len(stat.papers) / size
    lift = np.log((share + cfg.phrase_smoothing) / (stat.background + cfg.phrase_smoothing))
    return (
        share * max(float(lift), 0.0) * (1 + cfg.phrase_length_bonus * (stat.words - 1)) * (1 + len(stat.titles) / size)
    )


def theme_name(stats: dict[tuple[str, ...], PhraseStats], size: int, cfg: SummarySettings) -> tuple[str, set[str]]:
    """A noun phrase from the theme's titles that its papers share and the rest of the corpus does not.

    Returns the name and its stemmed words (the statement does not repeat them).
    """
    need = min(cfg.name_min_papers, size)
    usable = {k: s for k, s in stats.items() if len(s.papers) >= need}
    if not usable:
        return "", set()
    key = max(usable, key=lambda k: (_distinct(usable[k], size, cfg), -len(k)))
    if len(key) == 1:
        # One word is often a modifier ("Federated"): the two-word phrase around it most of the
        # theme's papers use names the theme ("Federated learning").
        around = [k for k in usable if len(k) == 2 and key[0] in k]
        wider = max(around, key=lambda k: (len(usable[k].papers), len(usable[k].titles)), default=None)
        if wider is not None and len(usable[wider].papers) >= cfg.name_extension_share * size:
            key = wider
    name = usable[key].surface
    return name[:1].upper() + name[1:], set(key)


def paper_focus(
    stats: dict[tuple[str, ...], PhraseStats], size: int, skip: set[str], cfg: SummarySettings
) -> dict[int, str]:
    """Per paper of the theme, the phrase of its title that sets it apart from the other papers of the theme."""
    best: dict[int, tuple[float, str]] = {}
    for key, stat in stats.items():
        if set(key) <= skip or len(stat.papers) > max(1, cfg.focus_max_share * size):
            continue
        # One word ("problem") or a verb's phrase ("addressing discrepancies") says little about a paper.
        if stat.words < cfg.focus_min_words or stat.surface.split()[0].lower().endswith("ing"):
            continue
        rarity = -np.log(stat.background + (len(stat.papers) - 1) / size + cfg.phrase_smoothing)
        value = float(rarity) * (1 + cfg.phrase_length_bonus * (stat.words - 1))
        for i in stat.titles:
            if value > best.get(i, (-1e9, ""))[0]:
                best[i] = (value, stat.surface)
    return {i: phrase for i, (_, phrase) in best.items()}


def _series(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def theme_statement(name: str, focus: list[tuple[str, int]], size: int, shared: str | None) -> str:
    """One or two sentences: what the theme's papers share, then how they differ (each difference cited)."""
    about = name[:1].lower() + name[1:] if not name[:2].isupper() else name
    if size == 1:
        first = f"One paper on {about}"
    else:
        first = f"{size} papers on {about}" + (f", most of them also about {shared}" if shared else "")
    if not focus:
        return first + "."
    differ = _series([f"{phrase} [{n}]" for phrase, n in focus])
    return f"{first}. " + ("Its focus: " if size == 1 else "They differ in focus: ") + differ + "."


def shared_phrase(
    stats: dict[tuple[str, ...], PhraseStats], size: int, skip: set[str], cfg: SummarySettings
) -> str | None:
    """A second phrase most of the theme's papers use besides its name, if any."""
    common = {
        k: s
        for k, s in stats.items()
        if len(s.papers) >= cfg.shared_share * size and not set(k) & skip and s.words > 1 and size > 1
    }
    if not common:
        return None
    key = max(common, key=lambda k: _distinct(common[k], size, cfg))
    return common[key].surface if _distinct(common[key], size, cfg) > 0 else None
