"""The two answerers behind the engine: extractive (the abstracts' own sentences) and LLM.

An :class:`Answerer` gets a question the engine has already condensed,
retrieved for and judged answerable, and streams text pieces followed by one
:class:`Draft`: the checked sentences and citations, or ``checked=None`` when
it declines (the model gave the refusal, or no sentence is good enough). It
never retrieves and never decides refusal on its own coverage; the engine does
that once, for both (bot.answer.Engine.stream).

Invariants of a draft: every [n] in its text names one of its citations,
citations are numbered 1..n in order of first use, and each citation's quote is
a sentence of that paper's abstract.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bot.answer_types import (
    DATASET,
    LEANS_ON_CONTEXT,
    NAME,
    SPECIFIC_WHAT,
    AnswerType,
    Unit,
    answer_type,
    asked_unit,
    asking_clause,
    asks_exactly,
    asks_for_a_kind,
    asks_for_papers,
    asks_for_several,
    asks_specifically,
    clause_terms,
    detail_type,
    mentions_unit,
    names_beyond,
    names_data_set,
    own_name,
    states,
    states_beside,
    states_unit,
    unnamed_terms,
    unused_coined_names,
)
from bot.citations import Checked, citation_for, markers_in, strip_markers, verify, with_marker
from bot.config import Settings
from bot.llm import LLMUnavailable, count_tokens, fill, load_prompt, reading_model_output, truncate
from bot.retrieval import HybridRetriever, names_paper
from bot.safety import StreamCleaner, clean, secrets_of
from bot.schema import NOT_STATED, REFUSAL, Citation, Hit, Paper, Retrieval, Sentence, Turn
from bot.text import stem, stopwords, tokens, word_parts

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)

# Follow-ups that lean on the previous turn ("what about their limitations?").
# The answer prompt quotes the abstracts inside <sources> ... </sources>; a tag of that name in an
# abstract could end the quoted block early, so it is removed (see prompts/answer.txt).
_SOURCES_TAG = re.compile(r"</?\s*sources?\b[^>]*>", re.I)
_FOLLOW_UP = re.compile(
    r"\b(they|them|their|theirs|it|its|this|that|these|those|such|the same|above|former|latter|"
    r"the paper|the papers|the method|the approach|the authors)\b|^(and|what about|how about|why|also)\b",
    re.I,
)
# Housekeeping sentences answer nothing ("Code is available at https://...").
BOILERPLATE = re.compile(
    r"https?://|github\.com|\bcode (is|are|will be) (publicly )?(made )?available|\bwe release\b", re.I
)
_MIN_REWRITE_CHARS = 3  # a shorter "standalone question" from the model is no question


# Words of the asking clause that say what kind of answer is wanted, not what it is about.
_ASKING_WORDS = frozenset({"many", "much", "kind", "kinds"})


def content_words(text: str) -> list[str]:
    """``text``'s words of three letters or more that are not stopwords."""
    return [w for w in tokens(text) if len(w) > 2 and w not in stopwords()]


def names_title(question: str, title: str, words: int) -> bool:
    """Whether ``question`` names the paper titled ``title`` by ``words`` content words of the title in a row
    ("functional diffusion processes" for "Continuous-Time Functional Diffusion Processes")."""
    asked, own = ([stem(w) for w in content_words(text)] for text in (question, title))
    grams = {tuple(asked[i : i + words]) for i in range(len(asked) - words + 1)}
    return any(tuple(own[i : i + words]) in grams for i in range(len(own) - words + 1))


def focus_words(question: str, kind: AnswerType, limit: int) -> frozenset[str]:
    """The stems (:func:`bot.text.stem`) of the first ``limit`` content words of the clause asking for ``kind``.

    The clause is read from its asking words on: "A paper on letting the computer design layouts:
    which image dataset did they run their experiments on?" -> {image, datas, run, exper}. The words
    nearest the asking words say what is asked; a long description of the paper after them does not.
    """
    kept = [w for w in content_words(asking_clause(question, kind)) if w not in _ASKING_WORDS]
    return frozenset(stem(w) for w in dict.fromkeys(kept[:limit]))


def focus_overlap(focus: frozenset[str], sentence: str, parts: bool = False) -> int:
    """How many of the ``focus`` stems ``sentence`` uses; with ``parts``, also as a part of a mixed-case compound
    ("attack" in "AutoAttack", :func:`bot.text.word_parts`)."""
    words = tokens(sentence) + (word_parts(sentence) if parts else [])
    return len(focus & {stem(w) for w in words})


@dataclass
class Draft:
    """What an answerer concluded: checked text, or ``checked=None`` when it declines to answer.

    ``not_stated``: the text says the asked-for detail is not in the abstracts and quotes the
    closest evidence instead; the engine reports it as a refusal that cites that evidence.
    """

    checked: Checked | None
    notes: list[str] = field(default_factory=list)
    not_stated: bool = False


class Answerer(Protocol):
    """One way of writing the answer; the engine runs the rest of the pipeline around it."""

    mode: str

    def condense(self, question: str, history: list[Turn]) -> str:
        """The follow-up ``question`` as a standalone question."""
        ...

    def stream(self, question: str, retrieval: Retrieval) -> Iterator[str | Draft]:
        """Text pieces as they are ready, then one :class:`Draft`."""
        ...


def condense_heuristic(question: str, history: list[Turn], settings: Settings) -> str:
    """Extractive mode's follow-up rewrite: lean on the last user question when needed."""
    previous = [t.content for t in history if t.role == "user"]
    if (
        not previous
        or not _FOLLOW_UP.search(question)
        or len(question.split()) > settings.extractive.follow_up_max_words
    ):
        return question
    return f"{previous[-1]} {question}"


class ExtractiveAnswerer:
    """Picks the retrieved abstracts' sentences that answer the question best."""

    mode = "extractive"

    def __init__(self, settings: Settings, retriever: HybridRetriever) -> None:
        self.settings = settings
        self.retriever = retriever

    def condense(self, question: str, history: list[Turn]) -> str:
        return condense_heuristic(question, history, self.settings)

    def stream(self, question: str, retrieval: Retrieval) -> Iterator[str | Draft]:
        choice = self.answer(
            question, retrieval.hits, retrieval.query_vector, retrieval.reader, retrieval.read_sentences
        )
        if choice.not_stated is not None:
            # The closest evidence, said to lack the asked-for detail: a refusal of the detail.
            text = f"{NOT_STATED.format(what=choice.not_stated)} The closest paper says: {choice.sentences[0].text}"
            yield text
            yield Draft(Checked(text, choice.sentences, choice.citations, dangling=0), not_stated=True)
            return
        for i, sentence in enumerate(choice.sentences):
            yield ("" if i == 0 else " ") + sentence.text
        if not choice.sentences:
            yield Draft(None)
            return
        text = " ".join(s.text for s in choice.sentences)
        yield Draft(Checked(text=text, sentences=choice.sentences, citations=choice.citations, dangling=0))

    def answer(
        self,
        question: str,
        hits: list[Hit],
        qvec: np.ndarray,
        reader: list[float] | None = None,
        read_sentences: list[str] | None = None,
    ) -> Choice:
        """The chosen sentences, each cited, and the citations in order of first use.

        A sentence is a candidate when its length is in range, it is no housekeeping
        (code links) and it does not lean on the sentence before it ("It also ...").
        Sentences from other papers than the best sentence's must score
        ``other_paper_ratio`` of it: a second paper is cited only when it answers
        about as well. When the question asks for a kind of answer (a figure, a
        date, ...; bot.answer_types) and the reader, when on, doubts the top paper, the best
        candidate that states one leads the answer; when no candidate above the floor states one
        and :meth:`_not_stated` finds the detail missing from the top paper, the choice is the
        closest sentence with ``not_stated`` set; so is it, whatever the reader says, when the first papers the
        answer could quote lack the names the asking clause names (:meth:`_missing`) or a figure in the unit it
        asks for (:meth:`_lacks_unit`) or, for data sets asked of one paper, any named data set
        (:meth:`_names_no_data_set`). With ``detail_sentence`` the answer to such a
        question also quotes the top paper's sentence that states the kind and shares most words
        with the asking clause (:meth:`_with_detail`), whatever its score. ``reader``: the
        reader's P(yes) for the first hits (bot.answer.Engine.judge); a read paper below the top
        one whose P(yes) is under ``reader.cite_threshold`` is not quoted, nor, for a question about
        one paper, one the reader did not read or rates under ``reader.cite_share`` of its best
        (:meth:`_backed`); for a question about several papers one at ``reader.vouch_threshold`` or
        above passes the fused-score gate and needs only the absolute floor. ``read_sentences``: the top
        paper's sentences the reader rates highest, best first; each is quoted as :meth:`_with_detail`'s
        sentence is, the paper taking one more sentence for each after the first.
        """
        cfg = self.settings.extractive
        asked = answer_type(question, wide=True)
        # The reader rating the top paper an answer outweighs the missing figure (a "how many ..." question
        # answered in words); without the reader there is nothing to outweigh it.
        doubted = not reader or reader[0] < cfg.not_stated_max_yes
        # Nor does it outweigh a figure asked for exactly ("what exact thickness"), which words do not give.
        doubted = doubted or cfg.check_exact_figures and asked is not None and asks_exactly(question, asked)
        kind = asked if cfg.check_answer_type and doubted else None
        # One paper answers a lookup; a question about several papers cites each that answers, one
        # sentence each, so that the answer has room for more of them.
        several = asks_for_several(question)
        # A search-box query that names the top paper ("Align Your Steps FID on ImageNet") asks about that paper.
        if several and cfg.named_query_one_paper and hits and not asks_for_papers(question):
            several = not names_paper(question, hits[0].paper.title)
        ratio = 0.0 if several else cfg.other_paper_ratio
        per_paper_cap = cfg.several_max_per_paper if several else cfg.max_per_paper
        candidates: list[tuple[int, str]] = []  # (hit index, sentence)
        rows: list[np.ndarray] = []
        best_fused = max(hit.score for hit in hits) if hits else 0.0
        # Papers the reader vouches for answer a question about several papers, however they rank.
        vouched = {h for h, yes in enumerate(reader or ()) if several and yes >= self.settings.reader.vouch_threshold}
        # A paper the retrievers rank far below the best one answers another question, and one the reader rates
        # low is not quoted beside the top one.
        quotable = [
            h == 0
            or (hit.score >= cfg.other_paper_min_fused * best_fused or h in vouched)
            and not (h < len(reader or ()) and reader[h] < self.settings.reader.cite_threshold)
            for h, hit in enumerate(hits)
        ]
        # A question for one paper quotes another paper beside the top one only when the reader backs it too.
        beside = [h == 0 or several or self._backed(h, reader) for h in range(len(hits))]
        for h, hit in enumerate(hits):
            if not (quotable[h] and beside[h]):
                continue
            sentences, vectors = self.retriever.sentence_vectors(hit.paper)
            for sentence, vector in zip(sentences, vectors, strict=True):
                if not cfg.min_sentence_chars <= len(sentence) <= cfg.max_sentence_chars:
                    continue
                if BOILERPLATE.search(sentence):
                    continue
                # Out of its paper's context, "It also ..." from another paper means nothing here.
                if h > 0 and cfg.skip_leaning_sentences and LEANS_ON_CONTEXT.match(sentence):
                    continue
                candidates.append((h, sentence))
                rows.append(vector)
        if not candidates:
            return Choice([], [])
        vectors = np.vstack(rows)
        relevance = vectors @ qvec
        # A sentence from a paper that matches as a whole is a safer answer.
        paper_sim = np.array([hits[h].similarity for h, _ in candidates])
        score = cfg.sentence_weight * relevance + (1 - cfg.sentence_weight) * paper_sim
        min_ratio = cfg.several_min_ratio if several else self.settings.answer_min_ratio
        least = cfg.several_sentence_floor if several else self.settings.sentence_floor
        floor = max(min_ratio * float(score.max()), least)
        floors = np.array([least if h in vouched else floor for h, _ in candidates])
        order = [int(i) for i in np.argsort(-score)]
        chosen: list[int] = []
        # The checks read the first papers, those the answer could quote (all of them, without check_quotable_only),
        # and not one the top paper leads clearly (check_lead): then the question is about the top paper.
        first = [
            h
            for i, h in enumerate(hits[: cfg.named_terms_papers])
            if (quotable[i] or not cfg.check_quotable_only) and (i == 0 or h.score * cfg.check_lead > hits[0].score)
        ]
        # A question asking for no kind of answer that names a method or data set the first papers never name.
        if asked is None and cfg.check_coined_names:
            read = [f"{h.paper.title} {h.paper.abstract}" for h in hits[: cfg.named_terms_papers]]
            if unused := unused_coined_names(question, read, cfg.name_match):
                return self._cite([order[0]], candidates, hits, not_stated=f"anything about {' or '.join(unused)}")
        # The unit a figure is asked in ("how many seconds": a time), read once for the check and the detail sentence.
        unit = asked_unit(question, cfg.unit_phrase_words) if asked is not None and cfg.check_units else None
        if asked is not None and (
            cfg.check_named_terms
            and self._missing(question, asked, first)
            or unit is not None
            and self._lacks_unit(unit, first)
        ):
            return self._cite([order[0]], candidates, hits, not_stated=asked.what)
        # Data sets asked for ("which benchmarks did they use?") that the first papers only mention ("experiments on
        # multiple benchmarks"), naming none.
        if (
            asked is DATASET
            and cfg.check_data_names
            and not asks_for_papers(question)
            and not asks_for_a_kind(question)
            and self._names_no_data_set(first)
        ):
            return self._cite([order[0]], candidates, hits, not_stated=asked.what)
        # A particular thing asked for ("which specific chatbot") when the reader doubts the top paper states it.
        if cfg.check_specific and reader and reader[0] < cfg.not_stated_max_yes and asks_specifically(question):
            return self._cite([order[0]], candidates, hits, not_stated=asked.what if asked else SPECIFIC_WHAT)
        if kind is not None:
            typed = [i for i in order if score[i] >= floor and states(kind, candidates[i][1])]
            if typed:
                chosen.append(typed[0])
            elif self._not_stated(question, kind, hits[0].paper):
                return self._cite([order[0]], candidates, hits, not_stated=kind.what)
        if cfg.quote_below_floor and not chosen and all(score[i] < floors[i] for i in order):
            # The judge (coverage and reader) answered; the floor on sentence scores would refuse what it answered.
            chosen.extend([i for i in order if candidates[i][0] == 0][:1])
        per_paper: dict[int, int] = {candidates[i][0]: 1 for i in chosen}
        # The paper other papers are measured against: the top-ranked one (the fused ranking puts the
        # answering paper first more often than the best single sentence does: dev lookup citation
        # recall 0.79 measured against the best sentence's paper, 0.93 against the top-ranked one).
        lead = chosen[0] if chosen else order[0]
        top = [i for i in order if candidates[i][0] == 0 and score[i] >= floor]
        anchor_at = top[0] if top else lead
        anchor, reference = candidates[anchor_at][0], float(score[anchor_at])
        while len(chosen) < self.settings.answer_sentences:
            best, best_value = -1, -1e9
            for i in order:
                h = candidates[i][0]
                if i in chosen or per_paper.get(h, 0) >= per_paper_cap or score[i] < floors[i]:
                    continue
                if h != anchor and score[i] < ratio * reference and h not in vouched:
                    continue
                redundancy = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
                if redundancy > cfg.max_redundancy:
                    continue
                # Maximal marginal relevance, nudged towards papers not yet cited.
                value = (
                    float(score[i])
                    - cfg.redundancy_penalty * redundancy
                    - cfg.repeat_paper_penalty * per_paper.get(h, 0)
                )
                if value > best_value:
                    best, best_value = i, value
            if best < 0:
                break
            chosen.append(best)
            per_paper[candidates[best][0]] = per_paper.get(candidates[best][0], 0) + 1
        # Each is quoted right after the paper's first sentence, so a later one comes ahead of the best one.
        for extra, text in enumerate(read_sentences or []):
            read = [i for i, (h, sentence) in enumerate(candidates) if h == 0 and sentence == text]
            if read:
                chosen = self._quote(chosen, 0, read[0], candidates, per_paper_cap + extra)
        detail = asked or (detail_type(question) if cfg.detail_names else None)
        if detail is not None and cfg.detail_sentence:
            chosen = self._with_detail(
                chosen, anchor, detail, unit, question, candidates, score, per_paper_cap, hits[anchor].paper.title
            )
        if cfg.lead_with_top and not several:
            chosen.sort(key=lambda i: candidates[i][0] != anchor)  # stable: each paper's sentences keep their order
        return self._cite(chosen, candidates, hits)

    def _backed(self, h: int, reader: list[float] | None) -> bool:
        """Whether the reader backs quoting hit ``h`` beside the top paper in an answer for one paper: it read the
        paper (``reader.cite_read_only``) and rated it ``reader.cite_share`` of its best P(yes) or more."""
        cfg = self.settings.reader
        if not reader:
            return True
        if h >= len(reader):
            return not cfg.cite_read_only
        return reader[h] >= cfg.cite_share * max(reader)

    def _missing(self, question: str, kind: AnswerType, hits: list[Hit]) -> bool:
        """Whether the detail the question asks for is missing from all of ``hits``, whatever the reader says.

        It is when the clause asking for ``kind`` names things (a paper's method, a benchmark, a metric: DSNO,
        ImageNet, FID) that no one of ``hits`` names all of in its title and abstract, or, with
        ``check_terms_together``, when each of those that do lacks it (:meth:`_lacks`).
        """
        cfg = self.settings.extractive
        match = cfg.name_match
        if cfg.title_phrase_words:
            # A question that names a paper by its title asks that paper: another's figure is no answer.
            asked_about = [h for h in hits if names_title(question, h.paper.title, cfg.title_phrase_words)]
            hits = asked_about or hits
        named = [h for h in hits if not unnamed_terms(question, kind, f"{h.paper.title} {h.paper.abstract}", match)]
        if not named:
            return True
        return cfg.check_terms_together and all(self._lacks(question, kind, h.paper) for h in named)

    def _names_no_data_set(self, hits: list[Hit]) -> bool:
        """Whether no sentence of ``hits``' abstracts names a data set (:func:`bot.answer_types.names_data_set`).

        Titles are not read: in title case every word is capitalised ("... Approximation with Deep Ensembles",
        "Density estimation using Real NVP"), and a data set a title names, its abstract names as well.
        """
        window = self.settings.extractive.data_name_window
        return not any(
            names_data_set(text, window) for h in hits for text in self.retriever.sentence_vectors(h.paper)[0]
        )

    def _lacks_unit(self, unit: Unit, hits: list[Hit]) -> bool:
        """Whether the count or measure the question asks for in ``unit`` ("how many seconds", "how many views") is
        stated by none of ``hits``: among those that use the counted noun (all, for a class of units such as time),
        no sentence of the title or abstract has a figure in that unit (:func:`bot.answer_types.states_unit`). Papers
        that never use the noun may say it in other words, so when none does the check says nothing."""
        texts = [[h.paper.title, *self.retriever.sentence_vectors(h.paper)[0]] for h in hits]
        using = [t for t in texts if mentions_unit(unit, " ".join(t))]
        return bool(using) and not any(self._states_unit(unit, s) for t in using for s in t)

    def _states_unit(self, unit: Unit, sentence: str) -> bool:
        """:func:`bot.answer_types.states_unit` with this answerer's windows."""
        cfg = self.settings.extractive
        return states_unit(unit, sentence, cfg.unit_window, cfg.class_unit_window, cfg.unit_before_window)

    def _lacks(self, question: str, kind: AnswerType, paper: Paper) -> bool:
        """Whether ``paper``, which names everything the asking clause names, still lacks the detail.

        It does when no sentence states ``kind`` beside the clause's names that are not the paper's own
        (:func:`bot.answer_types.states_beside`: an FID on CIFAR-10 is no answer to "FID on ImageNet?"). A
        clause that names nothing but the paper's own (its method) is left to the type check, which the
        reader's yes outweighs (measured: evals/README.md, "Figures beside their names").
        """
        cfg = self.settings.extractive
        sentences, _ = self.retriever.sentence_vectors(paper)
        names = [t for t in clause_terms(question, kind) if not own_name(t, paper.title, sentences, cfg.name_match)]
        return bool(names) and not states_beside(kind, sentences, names, cfg.terms_window, cfg.name_match)

    def _not_stated(self, question: str, kind: AnswerType, top: Paper) -> bool:
        """No candidate above the floor states the ``kind`` asked for: is the detail missing from ``top``'s abstract?

        It is missing when no sentence of the abstract states the kind (a figure below the floor counts) and
        the abstract uses none of the asking clause's first ``not_stated_head_words`` content words: an
        abstract that names the asked thing ("the dimension of noise required in GAN") discusses it in words.
        """
        cfg = self.settings.extractive
        sentences, _ = self.retriever.sentence_vectors(top)
        if any(states(kind, sentence) for sentence in sentences):
            return False
        head = focus_words(question, kind, cfg.not_stated_head_words)
        return focus_overlap(head, " ".join([top.title, *sentences])) == 0

    def _with_detail(
        self,
        chosen: list[int],
        paper: int,
        kind: AnswerType,
        unit: Unit | None,
        question: str,
        candidates: list[tuple[int, str]],
        score: np.ndarray,
        cap: int,
        title: str,
    ) -> list[int]:
        """``chosen`` with the sentence of hit ``paper`` (titled ``title``) that best answers a question asking for
        ``kind``.

        That sentence states the kind and, when the question asks for it in a ``unit``, a figure in that unit ("how long":
        "in 20 seconds"; :func:`bot.answer_types.states_unit`), or else shares the most words with the asking
        clause (at least ``detail_min_overlap``; ties go to a sentence that names it, ``AnswerType.names``, with
        ``detail_prefer_names``, then to the higher score). It follows the paper's first chosen
        sentence, taking the place of the paper's last one when the paper is at ``cap`` sentences,
        or, when the answer is full, of the last sentence of a paper quoted twice. The cited papers
        never change: nothing changes when the paper is not quoted, when a quoted sentence of it
        already does as well, or when the answer is full of papers quoted once.
        """
        cfg = self.settings.extractive
        mine = [i for i in chosen if candidates[i][0] == paper]
        focus = focus_words(question, kind, cfg.detail_focus_words)
        if cfg.detail_skip_title_words:
            # Words the question shares with the paper's title name the paper ("contrastive energy prediction"),
            # not what is asked of it ("benchmark suite").
            focus = focus - {stem(w) for w in tokens(title)} or focus
        if not mine or not focus:
            return chosen

        own = [{stem(w) for w in tokens(text)} for h, text in candidates if h == paper]
        topic = frozenset(w for w in focus if sum(w in words for words in own) > cfg.detail_topic_share * len(own))

        def fit(i: int) -> tuple[bool, int, int, bool, float]:
            text = candidates[i][1]
            in_unit = unit is not None and self._states_unit(unit, text)
            named = cfg.detail_prefer_names and kind.names is not None and bool(kind.names.search(text))
            shared = focus_overlap(focus, text, cfg.detail_word_parts)
            rare = focus_overlap(focus - topic, text, cfg.detail_word_parts)
            # A name asked for ("which sampler ...") counts as one more rare word in a sentence naming something new.
            rare += cfg.detail_new_names and kind is NAME and names_beyond(text, question)
            return in_unit, rare, shared, named, float(score[i])

        pool = [i for i, (h, text) in enumerate(candidates) if h == paper and states(kind, text)]
        fits = {i: fit(i) for i in dict.fromkeys(pool + mine)}
        best = max(pool, key=fits.__getitem__, default=None)
        if best is None or not fits[best][0] and fits[best][2] < cfg.detail_min_overlap:
            return chosen
        if any(states(kind, candidates[i][1]) and fits[i][:4] >= fits[best][:4] for i in mine):
            quoted = chosen
        else:
            quoted = self._quote(chosen, paper, best, candidates, cap)
        # An answer spread over sentences ("GPT-4o ..."; "both GPT-4o and Phi-3-mini ..."): the next sentences as
        # good, each allowed beyond the paper's cap.
        ties = sorted(
            (i for i in pool if i != best and fits[i][:4] == fits[best][:4]), key=fits.__getitem__, reverse=True
        )
        for i in ties[: cfg.detail_extra_sentences]:
            more = self._quote(quoted, paper, i, candidates, cap + cfg.detail_extra_sentences)
            if best in more or best not in quoted:
                quoted = more
        return quoted

    def _quote(
        self, chosen: list[int], paper: int, best: int, candidates: list[tuple[int, str]], cap: int
    ) -> list[int]:
        """``chosen`` with candidate ``best`` of hit ``paper`` quoted after the paper's first chosen sentence.

        It takes the place of the paper's last sentence when the paper is at ``cap`` sentences, or, when
        the answer is full, of the last sentence of a paper quoted twice. Nothing changes when it is
        already quoted, when the paper is not quoted, or when the answer is full of papers quoted once.
        """
        mine = [i for i in chosen if candidates[i][0] == paper]
        if best in chosen or not mine:
            return chosen
        drop = None
        if len(mine) >= cap:
            drop = mine[-1]
        elif len(chosen) >= self.settings.answer_sentences:
            papers = [candidates[i][0] for i in chosen]
            twice = [i for i in chosen if papers.count(candidates[i][0]) > 1]
            if not twice:
                return chosen
            drop = twice[-1]
        out = list(chosen)
        out.insert(out.index(mine[0]) + (0 if drop == mine[0] else 1), best)
        if drop is not None:
            out.remove(drop)
        return out

    @staticmethod
    def _cite(
        chosen: list[int], candidates: list[tuple[int, str]], hits: list[Hit], not_stated: str | None = None
    ) -> Choice:
        numbers: dict[int, int] = {}
        sentences: list[Sentence] = []
        citations: list[Citation] = []
        for i in chosen:
            h, text = candidates[i]
            if h not in numbers:
                numbers[h] = len(numbers) + 1
                citations.append(citation_for(numbers[h], hits[h], text))
            sentences.append(Sentence(text=with_marker(text, numbers[h]), citations=[numbers[h]]))
        return Choice(sentences, citations, not_stated)


@dataclass
class Choice:
    """The extractive answerer's pick: cited sentences, or the closest one when the asked-for detail is missing."""

    sentences: list[Sentence]
    citations: list[Citation]
    not_stated: str | None = None  # what the question asks for that no candidate states


# -- LLM mode -------------------------------------------------------------------
@dataclass
class Prompt:
    text: str
    sources: list[Hit]  # source n is sources[n - 1]
    tokens: int


def untrusted(text: str) -> str:
    """Corpus text for a prompt: on one line, unable to open or close the prompt's <sources> block."""
    return " ".join(_SOURCES_TAG.sub(" ", text).split())


def _source_line(n: int, hit: Hit, body: str) -> str:
    return f"[{n}] {untrusted(hit.paper.title)}: {untrusted(body)}"


def build_prompt(settings: Settings, question: str, hits: list[Hit]) -> Prompt:
    """The answer prompt with as many sources as fit the context window (trimmed evenly)."""
    template = load_prompt("answer", settings)
    overhead = settings.prompt.chat_overhead_tokens
    base = fill(template, refusal=REFUSAL, question=question, sources="")
    available = settings.llm_context_window - settings.llm_max_tokens - overhead - count_tokens(base, settings)
    hits = list(hits)
    lines: list[str] = []
    while hits:
        full = [_source_line(n, h, h.paper.abstract) for n, h in enumerate(hits, start=1)]
        sizes = [count_tokens(line + "\n\n", settings) for line in full]
        if sum(sizes) <= available:
            lines = full
            break
        # Every source gets the same cap; the short ones give their slack to the rest.
        cap = _water_level(sizes, available)
        if cap < settings.prompt.min_source_tokens:
            hits.pop()  # the lowest-ranked source goes rather than all becoming stubs
            continue
        for n, (hit, line, size) in enumerate(zip(hits, full, sizes, strict=True), start=1):
            if size > cap:
                # The best-matching chunk is the part of the abstract worth keeping.
                line = truncate(_source_line(n, hit, hit.chunk_text), cap - 2, settings)
            lines.append(line)
        break
    text = fill(template, refusal=REFUSAL, question=question, sources="\n\n".join(lines))
    return Prompt(text=text, sources=hits, tokens=count_tokens(text, settings) + overhead)


def _water_level(sizes: list[int], available: int) -> int:
    """The largest per-source cap c with sum(min(size, c)) <= available."""
    remaining, left = available, len(sizes)
    for size in sorted(sizes):
        if size * left > remaining:
            return remaining // left
        remaining -= size
        left -= 1
    return max(sizes)


def condense_prompt(settings: Settings, question: str, history: list[Turn]) -> str:
    cfg = settings.prompt
    lines = []
    for turn in history[-cfg.history_turns :]:
        who = "User" if turn.role == "user" else "Assistant"
        text = " ".join(strip_markers(turn.content).split())
        if len(text) > cfg.history_chars:
            text = text[: cfg.history_chars].rsplit(" ", 1)[0] + " …"
        lines.append(f"{who}: {text}")
    return fill(load_prompt("condense", settings), history="\n".join(lines), question=question)


def keeps_question(rewrite: str, question: str, share: float) -> bool:
    """The rewrite still asks what was asked: ``share`` of the follow-up's content words survive.

    Words are compared by their first five letters, so "evaluate" matches "evaluation".
    """
    words = {w for w in tokens(question) if len(w) > 2 and w not in stopwords()}
    if not words:
        return True
    stems = {stem(w) for w in tokens(rewrite)}
    return sum(stem(w) in stems for w in words) >= share * len(words)


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", strip_markers(text).lower()).split())


def echoes_prompt(text: str, settings: Settings) -> bool:
    """The completion repeats ``prompt.echo_words`` or more words of the answer prompt's own wording in a row.

    Only the template's fixed text counts (not the sources or the question, which an
    answer may rightly quote), and the refusal sentence is allowed.
    """
    run = settings.prompt.echo_words
    template = fill(load_prompt("answer", settings), refusal="", question="", sources="")
    words = tokens(template)
    grams = {tuple(words[i : i + run]) for i in range(len(words) - run + 1)}
    said = tokens(text.replace(REFUSAL, " "))
    return any(tuple(said[i : i + run]) in grams for i in range(len(said) - run + 1))


def is_refusal(text: str) -> bool:
    """The model gave the fixed refusal (perhaps with quotes or a marker around it)."""
    said, refusal = _normal(text), _normal(REFUSAL)
    if said.startswith(refusal):
        return True
    return refusal in said and not markers_in(text)


class LLMAnswerer:
    """A LlamaIndex ``LLM`` writes the answer from numbered sources; its markers are verified afterwards."""

    mode = "llm"

    def __init__(self, settings: Settings, retriever: HybridRetriever, llm: LLM) -> None:
        self.settings = settings
        self.retriever = retriever
        self.llm = llm

    def condense(self, question: str, history: list[Turn]) -> str:
        """The follow-up as a standalone question, written by the model (not streamed)."""
        if not history:
            return question
        rewrite = self.model_rewrite(question, history)
        if keeps_question(rewrite, question, self.settings.prompt.keep_share):
            return rewrite
        # Small models sometimes restate the previous turn instead (evals/followups.py).
        log.info("condensed question dropped the follow-up's words; using the heuristic rewrite")
        return condense_heuristic(question, history, self.settings)

    def model_rewrite(self, question: str, history: list[Turn]) -> str:
        """The model's reply to the condense prompt, cleaned up, before any check of its sense."""
        from llama_index.core.llms import ChatMessage

        prompt = condense_prompt(self.settings, question, history)
        with reading_model_output():
            reply = self.llm.chat([ChatMessage(role="user", content=prompt)])
        text = clean(reply.message.content or "", secrets_of(self.settings)).strip()
        # Models like to prefix, quote or explain; the first line is the question.
        text = text.splitlines()[0].strip() if text else ""
        text = re.sub(r"^(standalone question|question)\s*:\s*", "", text, flags=re.I).strip().strip("\"'` ")
        if not _MIN_REWRITE_CHARS <= len(text) <= self.settings.prompt.max_rewrite_chars:
            raise LLMUnavailable("the model returned no usable standalone question")
        return text

    def stream(self, question: str, retrieval: Retrieval) -> Iterator[str | Draft]:
        from llama_index.core.llms import ChatMessage

        settings = self.settings
        prompt = build_prompt(settings, question, retrieval.hits)
        if not prompt.sources:
            raise LLMUnavailable(
                f"the context window ({settings.llm_context_window} tokens, PAPERBOT_LLM_CONTEXT_WINDOW) "
                "leaves no room for sources"
            )
        parts: list[str] = []
        finish = None
        shown = StreamCleaner(secrets_of(settings))  # model output is data: what streams out is cleaned
        with reading_model_output():
            for chunk in self.llm.stream_chat([ChatMessage(role="user", content=prompt.text)]):
                if chunk.delta:
                    parts.append(chunk.delta)
                    if safe := shown.feed(chunk.delta):
                        yield safe
                choices = getattr(chunk.raw, "choices", None) or []
                if choices and getattr(choices[0], "finish_reason", None):
                    finish = choices[0].finish_reason
        if rest := shown.finish():
            yield rest
        text = clean("".join(parts), shown.secrets).strip()
        if echoes_prompt(text, settings):
            raise LLMUnavailable("the completion repeats the prompt's instructions")
        if not any(ch.isalpha() for ch in strip_markers(text)):
            raise LLMUnavailable("empty completion" if not text else "completion without any words")
        if is_refusal(text):
            yield Draft(None)
            return
        checked = verify(text, prompt.sources, settings.verify_threshold, self.retriever)
        if not checked.sentences:
            raise LLMUnavailable("completion without any sentences")
        notes = []
        if finish == "length":
            notes.append(f"the answer was cut off at {settings.llm_max_tokens} tokens (PAPERBOT_LLM_MAX_TOKENS)")
        yield Draft(checked, notes)
