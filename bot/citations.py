"""Citation markers: parsing, rewriting, renumbering and checking "[n]" against the cited papers.

The one home of the marker rule, used by extractive answers, the LLM path,
summaries and the chat UI. A marker group is "[2]", "[1, 3]", "[1; 3]" or
"[1-3]" with numbers of at most three digits; a bracket followed by "^", "_",
"(", "[" or ":" is maths or a link ("[0,1]^d", "[1](http://...)") and is not a
citation. What paperbot writes back is always the comma form "[1, 3]".

Verification (:func:`verify`) holds: every marker left in the text names a
source (1..len(sources)), citations are numbered in order of first use, and a
citation is verified only when every sentence citing it is backed by that
paper's own abstract sentences (or the chunk that was retrieved) at the
threshold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bot.schema import Citation, Hit, Paper, Sentence
from bot.text import split_sentences

_BODY = r"\d{1,3}(?:\s*[,;\u2013-]\s*\d{1,3})*"
MARKER = re.compile(r"\[(" + _BODY + r")\](?![\^_(\[:])")
_SPACED = re.compile(r"[ \t]*" + MARKER.pattern)  # a marker with the blanks before it
_LEADING_MARKERS = re.compile(r"^(?:\[\d{1,3}(?:,\s*\d{1,3})*\]\s*)+[.!?]?\s*")
_LONE_MARKERS = re.compile(r"[ \t]*\n\s*((?:\[" + _BODY + r"\]\s*)+[.!?]?)[ \t]*(?=\n|$)")
_REFERENCE_LIST = re.compile(r"^\W*(sources|references|citations|bibliography)\W*$", re.I)
_RANGE_LIMIT = 20  # "[1-3]" expands; a wider "range" is read as its two ends
MIN_EVIDENCE_CHARS = 20  # shorter abstract "sentences" (list debris) back no claim


def numbers_of(group: str) -> list[int]:
    """The citation numbers in a marker's body: "1, 3" -> [1, 3]; "1-3" -> [1, 2, 3]."""
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        bounds = re.split(r"\s*[\u2013-]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            lo, hi = int(bounds[0]), int(bounds[1])
            out.extend(range(lo, hi + 1) if 0 < hi - lo < _RANGE_LIMIT else [lo, hi])
        elif part.isdigit():
            out.append(int(part))
    return out


def markers_in(text: str) -> list[int]:
    """Citation numbers in ``text``, in order: "[2]" and "[1, 3]" both count."""
    return [n for match in MARKER.finditer(text) for n in numbers_of(match.group(1))]


def map_markers(text: str, mapping: Callable[[list[int]], list[int]]) -> str:
    """Rewrite each marker group through ``mapping``; a group mapped to nothing is removed."""

    def rewrite(match: re.Match[str]) -> str:
        kept = list(dict.fromkeys(mapping(numbers_of(match.group(1)))))
        return f" [{', '.join(map(str, kept))}]" if kept else ""

    return _SPACED.sub(rewrite, text).strip()


def strip_markers(text: str) -> str:
    return _SPACED.sub("", text).strip()


def with_marker(sentence: str, n: int | str) -> str:
    """Put "[n]" before the sentence's final punctuation."""
    sentence = sentence.rstrip()
    if sentence and sentence[-1] in ".!?":
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]"


def keep_resolvable(text: str, allowed: set[int]) -> tuple[str, int]:
    """Drop every [n] that names no allowed number; returns the text and how many went."""
    dropped = 0

    def keep(numbers: list[int]) -> list[int]:
        nonlocal dropped
        kept = [n for n in dict.fromkeys(numbers) if n in allowed]
        dropped += len(numbers) - len(kept)
        return kept

    return map_markers(text, keep), dropped


def renumber(text: str, n_sources: int) -> tuple[str, list[int], int]:
    """Drop markers outside 1..n_sources and renumber the rest in order of first use.

    Returns the new text, the original source number of each new number, and the
    count of removed markers.
    """
    order: list[int] = []
    dangling = 0
    for match in MARKER.finditer(text):
        for n in numbers_of(match.group(1)):
            if 1 <= n <= n_sources:
                if n not in order:
                    order.append(n)
            else:
                dangling += 1
    new_of = {old: new for new, old in enumerate(order, start=1)}
    text = map_markers(text, lambda numbers: [new_of[n] for n in numbers if n in new_of])
    text = re.sub(r"(?m)^[ \t]+", "", text)  # a marker that opened a line
    return text.strip(), order, dangling


def _prefix_style(text: str) -> bool:
    """Markers before the claims ("[1] Title: claim"), as small models copying the source list write."""
    return bool(re.match(r"\[\d", text.lstrip(" *-#>")))


def _markers_after(text: str) -> str:
    """Rewrite prefix style ("[1] claim. [2] claim.") to the usual "claim [1]. claim [2].", line by line."""
    lines = []
    for line in text.splitlines():
        parts = _SPACED.split(line)  # text, group, text, group, ...
        pieces = [parts[0].strip()] if parts[0].strip() else []
        for group, body in zip(parts[1::2], parts[2::2], strict=True):
            if body.strip():
                pieces.append(with_marker(body.strip(), group))
        lines.append(" ".join(pieces))
    return "\n".join(lines)


def tidy(text: str) -> str:
    """Drop a reference list the model appended and put every marker after its claim."""
    lines = text.strip().splitlines()
    for i, line in enumerate(lines):
        if _REFERENCE_LIST.match(line.strip()):
            lines = lines[:i]  # it repeats the sources and claims nothing
            break
    text = "\n".join(lines).strip()
    if _prefix_style(text):
        return _markers_after(text).strip()
    return _LONE_MARKERS.sub(r" \1", text).strip()


def claim_sentences(text: str) -> list[str]:
    """Sentences, line by line; markers written after the full stop stay with their sentence."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        start = len(out)
        for piece in split_sentences(line):
            lead = _LEADING_MARKERS.match(piece)
            if lead and len(out) > start:
                out[-1] = f"{out[-1]} {lead.group(0).strip()}"
                piece = piece[lead.end() :].strip()
            if not any(ch.isalpha() for ch in strip_markers(piece)):
                # A bare "[1]" (even on a line of its own) belongs to the claim before it;
                # list numbering ("2.") is not a sentence.
                if markers_in(piece) and out:
                    out[-1] = f"{out[-1]} {piece}"
                continue
            out.append(piece)
    return out


class EvidenceSource(Protocol):
    """What verification needs from retrieval: an encoder and each paper's sentence vectors."""

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def sentence_vectors(self, paper: Paper) -> tuple[list[str], np.ndarray]: ...


def evidence_for(source: EvidenceSource, hits: list[Hit]) -> list[tuple[list[str], np.ndarray]]:
    """What can back a claim citing each hit: its abstract sentences, then the retrieved chunk, with vectors."""
    if not hits:
        return []
    chunks = source.encode([h.chunk_text for h in hits])
    out = []
    for hit, chunk_vector in zip(hits, chunks, strict=True):
        sentences, vectors = source.sentence_vectors(hit.paper)
        keep = [i for i, s in enumerate(sentences) if len(s) >= MIN_EVIDENCE_CHARS]
        out.append(([sentences[i] for i in keep] + [hit.chunk_text], np.vstack([vectors[keep], chunk_vector])))
    return out


@dataclass
class Checked:
    """A text whose markers were checked: renumbered text, its sentences, the cited papers."""

    text: str
    sentences: list[Sentence]
    citations: list[Citation]
    dangling: int  # markers removed because they named no source


def citation_for(n: int, hit: Hit, quote: str, verified: bool = True) -> Citation:
    """Citation ``n`` of ``hit``'s paper, quoting ``quote``."""
    paper = hit.paper
    return Citation(
        n=n,
        paper_id=paper.paper_id,
        title=paper.title,
        arxiv_id=paper.arxiv_id,
        url=paper.url,
        quote=quote,
        score=round(float(hit.similarity), 4),
        verified=verified,
    )


def verify(text: str, sources: list[Hit], threshold: float, evidence: EvidenceSource) -> Checked:
    """Check ``text``'s markers against ``sources`` (source n is sources[n-1])."""
    text, order, dangling = renumber(tidy(text), len(sources))
    sentences = claim_sentences(text)
    cited = [sources[old - 1] for old in order]
    # backing[n-1]: citation n's abstract sentences, then its chunk, and their vectors.
    backing = evidence_for(evidence, cited)
    plain = [strip_markers(s) or s for s in sentences]
    svec = evidence.encode(plain) if plain else np.zeros((0, 0))

    out_sentences: list[Sentence] = []
    supported_by: dict[int, list[bool]] = {n: [] for n in range(1, len(order) + 1)}
    best_quote: dict[int, tuple[float, str]] = {}
    for i, sentence in enumerate(sentences):
        numbers = list(dict.fromkeys(markers_in(sentence)))
        support = {}
        for n in numbers:
            texts, vectors = backing[n - 1]
            row = vectors @ svec[i]
            support[n] = float(row.max())
            # The quote is an abstract sentence (not the chunk, the last evidence item).
            j = int(np.argmax(row[:-1])) if len(row) > 1 else 0
            if float(row[j]) > best_quote.get(n, (-2.0, ""))[0]:
                best_quote[n] = (float(row[j]), texts[j])
            supported_by[n].append(support[n] >= threshold)
        verified = any(s >= threshold for s in support.values())
        out_sentences.append(Sentence(text=sentence, citations=numbers, verified=verified))

    citations = [
        citation_for(
            n,
            hit,
            best_quote.get(n, (0.0, backing[n - 1][0][0]))[1],
            # Every sentence citing this paper must be backed by this paper itself.
            verified=bool(supported_by[n]) and all(supported_by[n]),
        )
        for n, hit in enumerate(cited, start=1)
    ]
    return Checked(text=text, sentences=out_sentences, citations=citations, dangling=dangling)
