"""Small text helpers shared by every layer: the question check, sentences, tokens, stop words.

The stop-word lists live here and nowhere else: ``QUESTION_STOPWORDS`` (how
people phrase a question about papers), ``stopwords()`` (those plus NLTK's
English function words, which ship in bm25s) and ``RESEARCH_FILLER`` (words
every abstract uses, which name no topic).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from bot.errors import UserError

MAX_QUESTION_CHARS = 2000

QUESTION_STOPWORDS = frozenset(
    "what which who whom how why when where does do did is are was were the a an of in on for to and or with "
    "by from that this these those can could would should about any there their its it as be been being into "
    "than then them they we our you your paper papers work works method methods approach model models use used "
    "using show shows study studies".split()
)
RESEARCH_FILLER = frozenset(
    """also such both each other more most less many much some all only very via uses based new novel propose
    proposed proposes present presents introduce introduces shown demonstrate demonstrates approaches result
    results problem problems performance state art existing recent recently however while well further first
    second two one three large significantly achieve achieves achieving improved improve improves improving
    experiments experimental empirical empirically extensive task tasks data set sets different various several
    framework frameworks technique techniques analysis provide provides given learn learning important key
    effective efficient efficiently simple applications application available code github https com www org
    et al e g i ie eg often typically commonly usually able way ways develop develops address addresses pose
    poses consider considers studied may might will shall not no nor us here""".split()
)

# Abbreviations whose period does not end a sentence in abstracts (each look-behind ends at the period: until the
# seventeenth session they ended before it and never matched, so "e.g. ImageNet" and "Fig. 3" were split; an index
# built before keeps the sentences it stored for an unchanged paper).
_ABBREV = (
    r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bet al\.)(?<!\bvs\.)(?<!\bcf\.)(?<!\bFig\.)(?<!\bEq\.)(?<!\bw\.r\.t\.)"
    r"(?<!\bresp\.)(?<!\bapprox\.)"
)
# A sentence also ends before a link that starts in lower case ("... DreamBooth. project page: https://...") and at
# a period with no space after it ("... downstream tasks.Our code was released at ..."): otherwise the sentence
# before it is dropped with the link as housekeeping (bot.answerers.BOILERPLATE). 3 abstracts of the corpus; over
# all 2,987 questions of evals/, 2 detail answers gained the name asked for, 1 lookup cites a second paper (evals/README.md).
_SENTENCE_END = re.compile(
    _ABBREV
    + r"(?:(?<=[.!?])\s+(?=[A-Z0-9\"'(\[]|https?://|www\.|project page\b|code\b)|(?<=[a-z]{3}[.!?])(?=[A-Z][a-z]+\s))"
)
# Lone surrogates: what Python makes of undecodable bytes (argv, env) and of bad JSON "\\udXXX" escapes.
SURROGATES = "\ud800-\udfff"
# Unicode "format" characters (category Cf): zero-width space/joiners, word joiner, BOM, bidi marks.
_FORMAT_CHARS = re.compile(r"[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """QUESTION_STOPWORDS plus NLTK's English list (bm25s ships it; imported on first use, it costs 0.2 s)."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return QUESTION_STOPWORDS | frozenset(STOPWORDS_EN_PLUS)


class BadQuestion(UserError, ValueError):
    """A question paperbot will not run; the message is for the user."""


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` holds a lone surrogate: an undecodable byte (argv, env) or a bad JSON escape.

    Such text cannot be encoded as UTF-8, which is the test (bot.config applies the same one).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_question(question: object) -> str:
    """Return the cleaned question or raise :class:`BadQuestion` with a one-line reason.

    The one validator for every question that enters (argv, HTTP, eval datasets):
    invisible format characters (zero-width spaces, joiners, BOMs, bidi marks) are
    removed before anything is counted; undecodable bytes are refused.
    """
    if not isinstance(question, str):
        raise BadQuestion("the question must be text")
    if has_lone_surrogate(question):
        raise BadQuestion("the question is not valid UTF-8 text (it holds undecodable bytes)")
    text = _FORMAT_CHARS.sub("", unicodedata.normalize("NFKC", question)).strip()
    if not text:
        raise BadQuestion("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadQuestion(f"the question is {len(text):,} characters long; the limit is {MAX_QUESTION_CHARS:,}")
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    if printable < 0.95 * len(text) or "\ufffd" in text or letters < 2:
        raise BadQuestion("the question is not readable text (binary or control characters)")
    return " ".join(text.split())


def split_sentences(text: str) -> list[str]:
    """Split an abstract into sentences, keeping decimals and common abbreviations whole."""
    parts = _SENTENCE_END.split(text.strip())
    return [p.strip() for p in parts if p.strip()]


def file_lines(text: str) -> list[str]:
    """A file's lines as editors number them: split at "\n" only ("\r\n" too).

    Not ``str.splitlines``, which also splits at "\r", form feeds, U+2028 and the like:
    those can sit inside a JSON string, and would shift every later line number.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


_MIXED_CASE_WORD = re.compile(r"\b[A-Za-z]*[a-z][A-Z][A-Za-z]*\b")
_WORD_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def word_parts(text: str) -> list[str]:
    """The lower-cased parts of ``text``'s mixed-case compounds: "RobustBench under AutoAttack" -> robust, bench,
    auto, attack."""
    return [part.lower() for word in _MIXED_CASE_WORD.findall(text) for part in _WORD_PART.findall(word)]


STEM_CHARS = 5  # words are compared by their first five letters, so "evaluate" matches "evaluation"


def stem(word: str) -> str:
    """A crude stem: the word's first ``STEM_CHARS`` letters."""
    return word[:STEM_CHARS]


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return 0.0
    common: dict[str, int] = {}
    for t in pred:
        common[t] = common.get(t, 0) + 1
    overlap = 0
    for t in ref:
        if common.get(t, 0) > 0:
            overlap += 1
            common[t] -= 1
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)
