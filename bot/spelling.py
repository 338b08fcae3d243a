"""Spelling correction of a question against the library's own words and an English word list.

A hurried "what is the minimum widht of a nueral netwrok?" loses its key words twice: BM25 finds no
"widht", and the refusal rule counts "netwrok" as a word no paper covers. The corrector puts such
words right before the search; the answer's note says what was corrected and the question as typed
is kept.

Invariants (``SpellingSettings``):
- A word is corrected only when it is in no word list: symspellpy's English frequency list (82,765
  words), pyspellchecker's (160,572, only to recognise words) and the library's words (titles,
  abstracts, example questions, lowercased). Corrections come from the first and the last.
- Never corrected: words shorter than ``min_chars``; capitalised words, which are mostly names (Kalman,
  Paxos, Kaggle are in no list), acronyms and mixed-case names (LoRA, GFlowNets); words with an
  apostrophe, a digit or a non-ASCII letter; a known word with a common prefix or ending (rerank,
  retrains; not embeding, whose "embedding" is known); two of the library's words run together
  (promptable, eigenvector): jargon is often in no list.
- The correction is the known word at most ``max_edits`` letter edits away (Damerau-Levenshtein:
  a swap of neighbouring letters is one edit) that begins with the same letter (people seldom mistype
  the first letter; nanometers -> manometers, bfloat -> float were wrong); among equals the library's
  words come first (``library_weight``), then the more frequent word. No candidate: the word stays.
- No word is corrected when ``foreign_words`` or more of the question's words are in no list and they
  are over ``foreign_share`` of its words: a question in Spanish ("modelos ... generan") is not turned
  into English look-alikes, while "minimum widht of a nueral netwrok" (3 of 6) is corrected.
- Measured on the 2,959 questions of evals/ (README "Measured quality"): 226 of the typo-style
  questions corrected; 5 words of the others changed (cuprate, homomorphic, backend, statins,
  parameterised), none of them a name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from bot.config import SpellingSettings

if TYPE_CHECKING:
    from symspellpy import SymSpell

# Letters (any script) and digits, with an apostrophe inside (wasn't, Mallat's); hyphenated words are read
# part by part.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_PREFIXES = ("re", "un", "co", "de", "non", "pre", "sub", "anti", "multi", "over", "under", "self")
_ENDINGS = ("s", "es", "ed", "d", "r", "er", "ers", "ing", "ly")
ENGLISH_WORDS = "frequency_dictionary_en_82_765.txt"  # ships inside symspellpy


@dataclass(frozen=True)
class Correction:
    """A question after spelling correction, and each change as (typed, corrected)."""

    text: str
    changes: list[tuple[str, str]] = field(default_factory=list)


def library_words(texts: Iterable[str]) -> Counter[str]:
    """How often each lowercased word occurs in ``texts``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word.lower() for word in _WORD.findall(text) if word.isascii() and word.isalpha())
    return counts


@cache
def _english(max_edits: int) -> tuple[SymSpell, frozenset[str]]:
    """symspellpy's English list as a look-up index, and every English word both lists know (loaded once
    a process: about 1.5 s)."""
    from spellchecker import SpellChecker
    from symspellpy import SymSpell

    index = SymSpell(max_dictionary_edit_distance=max_edits)
    index.load_dictionary(str(files("symspellpy") / ENGLISH_WORDS), term_index=0, count_index=1)
    # A second, larger English list (pyspellchecker's 160,572 words, American spellings) only to
    # recognise words: symspellpy's list lacks skeptical, aluminum, nanometers, repellence.
    more = SpellChecker(language="en", distance=1).word_frequency.dictionary
    return index, frozenset(index.words) | frozenset(more)


class SpellingCorrector:
    """Corrects the misspelled words of a question (see the module docstring)."""

    def __init__(self, words: Counter[str], cfg: SpellingSettings) -> None:
        from symspellpy import SymSpell  # only when the first question is corrected

        self.cfg = cfg
        self._english_index, english = _english(cfg.max_edits)
        self._library_index = SymSpell(max_dictionary_edit_distance=cfg.max_edits)
        for word, count in words.items():
            self._library_index.create_dictionary_entry(word, count * cfg.library_weight)
        self._library = frozenset(words)
        self._known = english | self._library

    def known(self, word: str) -> bool:
        """Whether ``word`` (lowercase) is in a word list, a known word with a prefix or an ending, or two
        of the library's words run together (two English ones would protect typos: train + abel)."""
        if word in self._known:
            return True
        if any(word.startswith(p) and word[len(p) :] in self._known for p in _PREFIXES):
            return True
        # An ending after a known word, unless that word with its last letter doubled is known too:
        # embeding, begining, occured are typos of embedding, beginning, occurred.
        if any(
            word.endswith(e) and (stem := word[: -len(e)]) in self._known and stem + stem[-1] + e not in self._known
            for e in _ENDINGS
        ):
            return True
        least = self.cfg.min_part_chars
        return any(word[:i] in self._library and word[i:] in self._library for i in range(least, len(word) - least + 1))

    def _left_alone(self, word: str) -> bool:
        if len(word) < self.cfg.min_chars or not (word.isascii() and word.isalpha()):  # bfloat16, wasn't, difusión
            return True
        if any(c.isupper() for c in word):  # Kalman, LoRA, GFlowNets, ReLU, SDS
            return True
        return self.known(word.lower())

    def correct_word(self, word: str) -> str:
        """The correction of one word, or the word itself."""
        if self._left_alone(word):
            return word
        from symspellpy import Verbosity

        found: dict[str, tuple[int, int]] = {}  # term -> (edits, count), a library word's count weighted up
        for index in (self._english_index, self._library_index):
            for s in index.lookup(word, Verbosity.CLOSEST, max_edit_distance=self.cfg.max_edits):
                found[s.term] = (s.distance, found.get(s.term, (0, 0))[1] + s.count)
        same_start = [t for t in found if t[0] == word[0]]
        return min(same_start, key=lambda t: (found[t][0], -found[t][1])) if same_start else word

    def correct(self, text: str) -> Correction:
        """``text`` with its misspelled words corrected, and the changes; none when many words are
        unknown (another language, or not words at all)."""
        words = [word for word in _WORD.findall(text) if not word.isdigit()]  # a number is no word of any language
        unknown = sum(word.lower() not in self._known for word in words)
        if unknown >= self.cfg.foreign_words and unknown > self.cfg.foreign_share * len(words):
            return Correction(text)
        changes: list[tuple[str, str]] = []

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            fixed = self.correct_word(word)
            if fixed != word:
                changes.append((word, fixed))
            return fixed

        corrected = _WORD.sub(fix, text)
        return Correction(corrected, changes)


def spelling_note(correction: Correction) -> str:
    """The one-line note an answer carries when its question was corrected before the search."""
    fixed = ", ".join(f"{typed} -> {corrected}" for typed, corrected in correction.changes)
    return f"Spelling corrected for the search: {fixed}."
