"""Each paper's key-claim sentence (the strongest contribution cue in its abstract) and its one-line form.

Invariant: :func:`contribution_line` only drops an opening ("In this paper, we propose") or turns
"we VERB" into "VERBs"; the rest of the line is the abstract's own words.
"""

from __future__ import annotations

import re

import numpy as np

from bot.answer import Engine
from bot.answerers import BOILERPLATE
from bot.config import SummarySettings
from bot.schema import Paper
from bot.text import split_sentences

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
LEAD_IN = re.compile(
    r"^(in (this|the) (paper|work|study),?\s*)?(the|this) (paper|work|study)'?s? (main |key |primary )?"
    r"(contribution|finding)s?( or (main )?finding)?( of (the|this) (paper|work|study))? (is|are)( that)?[:,]?\s+",
    re.I,
)


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


# -- one line per paper -------------------------------------------------------
# "In this paper, we propose X" -> "X"; "We show that X" -> "Shows that X". The lead-in is any
# opening clause that ends in a comma before the subject ("To solve this problem, we ...").
_LEAD = re.compile(
    r"^(?:(?:in this (?:paper|work|study|article|letter|note)|here|to this end|specifically|in particular|"
    r"[^.;]{0,160}?),\s+)?(?:(?:here|then|next|finally|first|further(?:more)?|moreover|additionally|also|instead|"
    r"therefore|hence|thus),?\s+)?"
    r"(?P<subject>we|this (?:paper|work|study|article|letter|note)|our (?:paper|work)|the authors)\s+"
    r"(?P<adverb>(?:also|further|first|then|thus|therefore|hence|here|now|newly|formally|"
    r"theoretically|empirically|carefully|systematically|instead|additionally|(?!(?:ap|re|sup|multi|im|com)?ply\b|rely\b)[a-z]+ly)\s+)?"
    r"(?P<verb>[a-z]+)(?:\s+and\s+(?P<verb2>[a-z]+))?\b\s*(?P<rest>.*)$",
    re.I | re.S,
)
# Verbs whose object names the contribution: the line is the object itself.
_NAMING_VERBS = frozenset(
    "propose proposes present presents introduce introduces develop develops design designs devise devises "
    "contribute contributes formulate formulates offer offers describe describes build builds construct "
    "constructs put puts".split()
)
_VERB_FORMS = re.compile(r"^[a-z]+$")
_NOT_VERBS = frozenset("are is were was have has had can could will would may might do does did also".split())
_CLAUSE_OBJECT = re.compile(r"^(that|to|how|whether|what|why|when|which)\b", re.I)


def _third_person(verb: str) -> str:
    """ "propose" -> "proposes", "study" -> "studies"; a form already ending in s is kept."""
    low = verb.lower()
    if low.endswith("s") and not low.endswith("ss"):
        return low
    if re.search(r"[^aeiou]y$", low):
        return low[:-1] + "ies"
    if re.search(r"(s|sh|ch|x|z|o)$", low):
        return low + "es"
    return low + "s"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def contribution_line(sentence: str) -> str:
    """``sentence`` without its "we propose" boilerplate: what the paper contributes, as one line.

    "In this paper, we propose X" -> "X"; "To solve this, we introduce and analyze X" -> "Introduces and
    analyzes X"; "We show that X" -> "Shows that X". A sentence without such an opening is kept as it
    is. Invariant: the line's text after its first word is a verbatim tail of ``sentence``.
    """
    match = _LEAD.match(sentence.strip())
    if match is None:
        return sentence.strip()
    verb, verb2, rest = match["verb"].lower(), (match["verb2"] or "").lower(), match["rest"].strip()
    if verb in _NOT_VERBS or not rest or not _VERB_FORMS.match(verb):
        return sentence.strip()
    if verb in _NAMING_VERBS and not verb2 and not _CLAUSE_OBJECT.match(rest):
        if verb in ("put", "puts"):
            rest = re.sub(r"^forward\s+", "", rest, flags=re.I)
        return _capitalize(rest)
    verbs = _third_person(verb) + (f" and {_third_person(verb2)}" if verb2 else "")
    # A manner adverb ("jointly") belongs to the verb; a connective ("also", "then") does not.
    adverb = (match["adverb"] or "").strip().lower()
    if adverb.endswith("ly") and adverb not in ("empirically", "theoretically", "formally", "newly", "additionally"):
        verbs = f"{adverb} {verbs}"
    return _capitalize(f"{verbs} {rest}")
