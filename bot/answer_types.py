"""What kind of answer a question asks for, and whether a sentence carries that kind.

Classic question answering checks the answer type: "how many ..." needs a
number, "which datasets ..." a dataset, "when ..." a date. An abstract on the
right topic that states no such thing does not answer the question (a "near
miss"); the extractive answerer then says what the closest paper does state
and that the asked-for detail is not in its abstract.

The same types pick the sentence that answers a detail question: the asked-for
figure or data set often sits in a sentence that matches the question's topic less
well than the paper's opening claims ("Experiments on the CO3D dataset show
..."), so the extractive answerer also quotes the top paper's sentence that
states the type and shares most words with the clause that asks
(:func:`bot.answerers.focus_words`, :func:`bot.answerers.focus_overlap`).

Invariant: :func:`answer_type` returns None for questions without a clear
type (most lookups), so the check only ever applies to questions that name
what they want. A type's sentence test is generous (any figure that is no part
of a name counts for a quantity), and the answerer says "not stated" only when
the top paper's whole abstract states none, does not name the asked thing and
the reader doubts the paper (:meth:`bot.answerers.ExtractiveAnswerer._not_stated`),
because a false "not stated" costs more than a missed near miss. One check needs no doubt: the
clause that asks names things (a benchmark, a metric: "What FID ... on ImageNet?") that none of
the first few papers names all of (:func:`unnamed_terms`); nor does a count or measure asked in a unit
("how many seconds", "how many views", "how much faster") that none of the first few papers states in that
unit (:func:`asked_unit`, :func:`states_unit`); nor do data sets asked for ("which benchmarks did they use?") that
none of the first few papers names: "experiments on multiple benchmarks" names none (:func:`names_data_set`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from bot.text import split_sentences

# A figure: digits that are not part of a name (DreamerV3, FathomNet2023, CIFAR-10, GPT-4o, E1, l1), a
# percentage, a number word ("one" is mostly a pronoun, "one of the key elements", unless it follows "only" and
# the like or makes a compound: "one-epoch training") or orders of magnitude.
_NUMBER = (
    r"(?<![A-Za-z0-9./])(?<![A-Za-z]-)\d|%|\b(two|three|four|five|six|seven|eight|nine|ten|twice|thrice|half|double|"
    r"hundreds?|thousands?|millions?|billions?|dozens?)\b|\borders? of magnitude\b|"
    r"\b(only|just|exactly|at most|at least) (one|a single)\b|\bone-\w+"
)
# What a figure measures. A metric asks for a figure in a search-box query as well ("EQ-Net 4-bit ImageNet top-1
# accuracy"); a measure does after "what" ("What zero-shot LAMBADA perplexity ...", "what exact maximum learning rate
# ..."). Words that name topics as often as figures (error, time, reward: "time series") are measures only.
_METRIC = (
    r"accuracy|accuracies|fid|fvd|psnr|ssim|lpips|auc|auroc|recall@\d+|pass@\d+|map|f1|micro-f1|macro-f1|bleu|rouge|"
    r"perplexity|error rate|test error|top-[15]|speed-?ups?|(speed-?up|acceleration|compression|reduction) (factor|ratio)s?|number of \w+|inference time|run-?time|wall-?clock|"
    r"(?-i:scores?)|win rate|success rate|percentage|percent|fraction|proportion|latency|throughput"
)
_MEASURE = (
    r"error|errors|rate|exponents?|bound|time|cost|size|thickness|gradient|learning rate|epsilon|gain|improvement|"
    r"count|resolution|memory|number|(sample|oracle|iteration|query|computational|time) complexity"
)
# The metric is the phrase's head noun, what is asked for ("What FID does ...", "... top-1 accuracy"), not a
# modifier of another noun ("What is score distillation?", "time series").
_HEAD_NOUN = (
    r"\b(?=\s*($|[?,.;:)]|\s+(does|do|did|is|are|was|were|has|have|had|can|could|would|will|should|of|on|for|in|"
    r"at|with|when|than|from|over|under|per|between|relative|relating|compared|reported|achieved|obtained|"
    r"reached|and|or|vs|versus)\b))"
)
# Not a figure: links (github.com/..., dates in URLs), list markers ("(1) player action sampling", "achieves: 1)
# improved ...": styles18 s18_036) and dimensions named as such ("3D object synthesis", "2D views").
_NOT_A_FIGURE = r"\S*(://|www\.|\.com|\.org|\.io)\S*|\(\d\)|(?:(?<=\s)|^)\d\)(?=\s)|\b\d[dD]\b"


@dataclass(frozen=True)
class AnswerType:
    """A kind of answer: how a question asks for it, and how a sentence states it."""

    name: str  # shown in the "not stated" answer: "The abstract does not state <what>."
    what: str
    asks: re.Pattern[str]
    states: re.Pattern[str]
    ignore: re.Pattern[str] | None = None  # removed from a sentence before ``states`` is searched
    wide: re.Pattern[str] | None = None  # asks for it too in the wide reading (answer_type(wide=True))
    query: re.Pattern[str] | None = None  # a search-box query that asks for it, in the wide reading
    # States it by name (CIFAR-10), not only by the word ("datasets"): preferred for the detail sentence.
    names: re.Pattern[str] | None = None


# The wide reading of a figure asked for (answer_type(wide=True)): a metric or measure as the head noun a few
# words after "what" ("What zero-shot LAMBADA perplexity ..."), or a metric in a search-box query.
_WHAT_METRIC = re.compile(rf"\bwhat\b(\W+[\w'@-]+){{0,4}}?\W+({_METRIC}|{_MEASURE}){_HEAD_NOUN}", re.I)
# In a query a metric may also be followed by the setting it is asked at ("CIFAR-10 FID 20 NFEs": styles18 s18_036).
_QUERY_METRIC = re.compile(rf"\b({_METRIC})({_HEAD_NOUN}|(?=\s+(?!(19|20)\d\d\b)\d[\d.]*\s*[A-Za-z]))", re.I)

QUANTITY = AnswerType(
    "quantity",
    "the figure asked for",
    re.compile(
        r"\bhow (many|much|fast|long|large|big|often|accurate|far|small)\b|\bby how much\b|"
        r"\bwhat (percentage|percent|fraction|proportion|speed-?up|number|size|rate|latency|"
        r"throughput|accuracy|error rate|score|fid|bleu|perplexity)\b|"
        r"\b(how many|what) (gpus?|parameters|samples|steps|epochs|hours|days)\b",
        re.I,
    ),
    re.compile(_NUMBER, re.I),
    re.compile(_NOT_A_FIGURE, re.I),
    wide=_WHAT_METRIC,
    query=_QUERY_METRIC,
)

_DATA_NAME = r"\b[A-Z]\w*[A-Z0-9]\w*"  # a name with a second capital or a digit
# The words for data sets that a search-box query asks for or names.
_DATA_WORDS = r"datasets?|data ?sets?|benchmarks?|corpus|corpora"
# A suite named by a capitalised word ("the Atari suite"; not "a suite of new methods"): styles18 s18_071.
_NAMED_SUITE = r"\b[A-Z][\w-]*\s+(?i:suites?)\b"

ANSWER_TYPES: tuple[AnswerType, ...] = (
    QUANTITY,
    AnswerType(
        "year",
        "the date asked for",
        re.compile(r"\b(what|which) year\b|\bwhen (was|were|did)\b|\bin what year\b", re.I),
        re.compile(r"\b(19|20)\d\d\b"),
    ),
    AnswerType(
        "hardware",
        "the hardware asked for",
        re.compile(r"\b(which|what) (gpus?|tpus?|hardware|chips?|accelerators?|devices?)\b|\bon what hardware\b", re.I),
        re.compile(r"\b(gpus?|tpus?|a100|v100|h100|cpus?|hardware|fpga|edge devices?|mobile|smartphones?)\b", re.I),
    ),
    AnswerType(
        "authors",
        "who the authors are",
        re.compile(
            r"^\s*who (wrote|authored|proposed|introduced|developed)\b|\bwhich (authors|lab|labs|company|institution)\b",
            re.I,
        ),
        re.compile(r"(?!x)x"),  # abstracts do not name their authors
    ),
    AnswerType(
        "dataset",
        "the data set asked for",
        # A collection or corpus asked for is the phrase's head noun and not the one the user searches ("which papers
        # in this collection", styles20 s20_045; "which simple collection heuristics", heldout5 n046).
        re.compile(
            r"\b(which|what)\b(\W+[\w'-]+){0,3}?\W+(datasets?|data ?sets?|benchmarks?|corpora|cohorts?|competitions?|"
            rf"suites?|environments?|(?<!this )(?<!the )(?<!your )(?<!our )(?<!my )(collections?|corpus){_HEAD_NOUN})\b",
            re.I,
        ),
        # The word itself, or a name with a second capital or a digit (CIFAR-10, DailyDialog, FFHQ).
        re.compile(
            rf"(?i:\b(datasets?|data ?sets?|benchmarks?|corpus|corpora|cohorts?)\b)|{_DATA_NAME}|{_NAMED_SUITE}"
        ),
        names=re.compile(f"{_DATA_NAME}|{_NAMED_SUITE}"),
        # A search-box query that ends with what it asks for ("quantized random Fourier features evaluation datasets").
        query=re.compile(rf"\b({_DATA_WORDS})(\s+(used|results?|evaluated|tested))?\W*$", re.I),
    ),
)


# What a count or a measure is counted in. "How many seconds ...?" needs a figure in seconds (or minutes: any time),
# "how many views ...?" a figure beside "views": an abstract that gives an FID and a speed-up does not say how
# many seconds its matching takes. A figure is digits (4K, 2.6B, "sim2%" from LaTeX's \sim; not the tail of a code
# such as "x2014"), a number word ("an order of magnitude", "one third"), or a bound (O(m log m)); "a few" and
# "several" give no count (figures2 f2_048, styles17 s17_059 refused, none of the 279 questions of all sets that
# ask for a figure in a unit answered otherwise: evals/README.md, sixteenth session).
_COUNT = (
    r"((?<![a-z0-9])|(?<=sim))(\d[\d,.]*[kmb]?|o\(|(one|single|twice|half|double|two|three|four|five|six|seven|eight|"
    r"nine|ten|eleven|twelve|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|millions?|"
    r"billions?|dozens?|an)(?![a-z]))"
)


@dataclass(frozen=True)
class Unit:
    """What a figure asked for is counted in: a class of units (time: seconds, minutes, ...) or the noun counted."""

    name: str
    words: str  # a regex alternation of the unit's words
    counted: bool = False  # the noun of "how many <noun>": stated only in an abstract that uses the noun
    also: str | None = None  # a regex that states it without a figure ("in less than a day")


_TIME = Unit(
    "time",
    r"seconds?|secs?|s|ms|milliseconds?|minutes?|mins?|hours?|hrs?|h|days?|weeks?|months?|"
    r"gpu-hours?|gpu-days?",
    also=r"\ban? (second|minute|hour|day|week|month)\b",
)
_RATIO = Unit(
    "ratio",
    r"times|x|×|fold|speed-?ups?|faster|slower|%|percent|percentage points?|pp|"
    r"orders? of magnitude|half|halves|thirds?|quarters?|fifths?|tenths?",
)
_MONEY = Unit("money", r"\$|dollars?|usd|cost")
_PARAMETERS = Unit("parameters", r"parameters?|params?|[mbk]|million|billion|weights")
_MEMORY = Unit("memory", r"[kmgt]i?b|bytes?|[kmgt]ilobytes?|megabytes?|gigabytes?|terabytes?|bits?")
# Where a clause that asks for a count starts: after punctuation, a conjunction, a preposition, or a verb that
# passes the question on ("do you know how many ...", "it reports how many ..."), never after one that makes it a
# mechanism ("an algorithm that decides how many nodes ...").
_CLAUSE_START = (
    r"(^|[?.,;:(]\s*|\b(and|but|so|exactly|roughly|approximately|about|just|for|by|at|on|in|against|with|across|"
    r"over|from|to|of|among|under|after|before|within|into|through|know|tell|wondering|wonder|curious|say|says|"
    r"report|reports|reported|state|states|mention|mentions)\s+)"
)
# Asking clauses whose unit is a class ("how many times faster", "by how much", "how long").
_ASKED_CLASSES = (
    (
        re.compile(
            r"\bhow (much|many times) (faster|slower|quicker)\b|\btimes faster\b|\bspeed-?up\b|"
            r"\bwhat (percentage|percent|fraction|proportion)\b|\bby how (much|many percent)\b",
            re.I,
        ),
        _RATIO,
    ),
    (re.compile(r"\bhow (much money|many dollars)\b", re.I), _MONEY),
    (
        re.compile(
            rf"{_CLAUSE_START}how long\b|\bhow much (extra |additional |more |less )?(wall-?clock )?time\b", re.I
        ),
        _TIME,
    ),
    (re.compile(r"\bhow much (extra |additional |more |less )?(gpu )?memory\b", re.I), _MEMORY),
)
# A count asked for: "how many ...", "how many of the ...", "what number of ...", "what was the largest number of ...".
_HOW_MANY = re.compile(
    rf"{_CLAUSE_START}(how many( of (the|their|its|these|those))?|what number of|what (is|was|were|are) the "
    rf"(largest |smallest |total |maximum |minimum |overall |highest |lowest )?number of)\s+(?P<rest>[^?.,;:]*)",
    re.I,
)
# In a search-box query "how many" or "number of" asks wherever it stands ("RayFlow how many sampling steps",
# "TopoMortar number of images"), and the counted noun is the phrase's last word ("number of image datasets").
_QUERY_HOW_MANY = re.compile(r"\b(how many|number of)\s+(?P<rest>[^?.,;:]*)", re.I)
# Where the noun phrase after "how many" ends: a verb, a preposition, a pronoun or a determiner ("how many views does ...").
_PHRASE_END = frozenset(
    "do does did is are was were has have had can could would will should of in on for to with per at that from "
    "during by when they we it you he she their its the a an this these those give gives get gets make makes take "
    "takes yield yields reach reaches achieve achieves contain contains cover covers include includes".split()
)
# Not the counted noun: adjectives after it ("how many layers deep") and before it ("how many different ...").
_NOT_COUNTED = frozenset(
    "deep long wide large big high old tall exactly roughly approximately total or and different distinct separate "
    "real more fewer extra additional".split()
)
# "How many noise dimensions does a GAN need?" asks what suffices, which papers answer with a bound or in words
# ("the dimension of noise required ... relates to the entropy"), not with a figure in a unit.
_REQUIREMENT = re.compile(r"\b(needs?|needed|requires?|required|enough|suffices?|sufficient)\b", re.I)
_NAMED_UNITS = {
    w: u for u in (_TIME, _RATIO, _MONEY, _PARAMETERS, _MEMORY) for w in re.sub(r"[\\?]", "", u.words).split("|")
}


def asked_unit(question: str, phrase_words: int) -> Unit | None:
    """What the figure ``question`` asks for is counted in ("how many seconds": time; "how many views": views),
    or None. Only "how many" opening a clause asks for a count ("an algorithm that decides how many nodes ..."
    does not), and not for what suffices ("how many samples are needed"); the counted noun is the last of the
    first ``phrase_words`` words before a verb or preposition. In a search-box query "number of" asks too and the
    counted noun is the last word before one ("TopoMortar number of images")."""
    if _ASKS_FOR_A_PAPER.search(question):  # a lookup, however it describes the paper ("how much faster ...")
        return None
    for pattern, unit in _ASKED_CLASSES:
        if pattern.search(question):
            return unit
    query = _is_query(question)
    match = _HOW_MANY.search(question) or (_QUERY_HOW_MANY.search(question) if query else None)
    if not match or _REQUIREMENT.search(match["rest"]):
        return None
    words = re.findall(r"[\w'-]+", match["rest"].lower())[: None if query else phrase_words]
    phrase: list[str] = []
    for at, word in enumerate(words):
        # A past tense after the first word is the verb ("how many people played ..."); first, an adjective
        # ("how many morphed images ...").
        if word in _PHRASE_END or at and word.endswith("ed"):
            break
        phrase.append(word)
    if not query and len(phrase) == len(words) == phrase_words:  # no verb in sight: "how many people played ..."
        phrase = phrase[:1]
    nouns = [w for w in phrase if w not in _NOT_COUNTED and len(w) > 1]  # not a variable: "calls n"
    if not nouns:
        return None
    noun = nouns[-1]
    if noun in _NAMED_UNITS:
        return _NAMED_UNITS[noun]
    # "how many nodes or agents": either noun counts.
    either = nouns if "or" in phrase or "and" in phrase else [noun]
    # The noun may end a compound: "eight cryomodules" counts "modules".
    stems = "|".join(r"[a-z]*" + re.escape(re.sub(r"(ies|es|s)$", "", w)) + r"\w*" for w in either)
    return Unit(noun, stems, counted=True)


def states_unit(unit: Unit, sentence: str, window: int, class_window: int, before: int) -> bool:
    """Whether ``sentence`` states a figure in ``unit``: a number with a counted noun at most ``window`` words after
    it ("thirty state-of-the-art ... methods", "120-layer") or a class's unit at most ``class_window`` words after it
    ("7x", "80 learnable parameters"), or the unit at most ``before`` words before it ("samples n = O(m log m)",
    "speed-up of 7")."""
    text = sentence.lower()
    # A counted noun may stand a few words after its figure; a class's unit follows it closely ("7x").
    between = window if unit.counted else class_window
    return bool(
        re.search(rf"{_COUNT}[\s-]*(\S+[\s-]+){{0,{between}}}({unit.words})(?![a-z])", text)
        or re.search(rf"(?<![a-z])({unit.words})[\s:=]+(\S+[\s:=]+){{0,{before}}}{_COUNT}", text)
        or unit.also is not None
        and re.search(unit.also, text)
    )


def mentions_unit(unit: Unit, text: str) -> bool:
    """Whether ``text`` uses the counted noun at all (a class of units is always in reach)."""
    return not unit.counted or bool(re.search(rf"(?<![a-z])({unit.words})", text.lower()))


# A name in a question: a word with a second capital or a digit after its first capital (ImageNet, FID, AIME24,
# GPT-4o, Re-Basin); a capitalised word alone ("What", "Stable") is not one.
_NAMED_TERM = re.compile(r"\b[A-Z][A-Za-z]*[A-Z0-9][\w-]*")
_FOLDED = re.compile(r"[^a-z0-9]")
_RUN = re.compile(r"[a-z0-9]+")
# Clauses end at punctuation followed by a space: "In the paper on X, which criterion ...?"
_CLAUSE_END = re.compile(r"[?.;!:,]\s+|[?.;!:,]$")


# An exact value asked for ("what exact coating thickness", "exactly how many"): an abstract that discusses the
# measure in words does not give it.
_EXACTLY = re.compile(r"\b(exact|exactly|precise|precisely)\b", re.I)


# A particular thing asked for by name or value ("which specific chatbots", "what actual physical system", "what
# exact coating"), not papers ("which specific papers"): of the 23 questions of evals/ that ask so, 21 are near
# misses (evals/README.md, eighteenth session).
_SPECIFIC = re.compile(
    r"\b(which|what)\s+(specific|particular|actual|exact|precise|concrete)\s+(?!(papers?|stud(y|ies)|works?|articles?)\b)",
    re.I,
)
SPECIFIC_WHAT = "the particular detail asked for"


def asks_specifically(question: str) -> bool:
    """Whether ``question`` asks for a particular thing ("which specific chatbot", "what actual system")."""
    return bool(_SPECIFIC.search(question))


def asks_exactly(question: str, kind: AnswerType) -> bool:
    """Whether the clause asking for ``kind`` asks for its exact value ("what exact thickness", "exactly how many")."""
    clause, _ = _asking(question, kind)
    return bool(_EXACTLY.search(clause))


def asking_clause(question: str, kind: AnswerType) -> str:
    """The clause of ``question`` that asks for ``kind``, from its asking words on ("" when none does).

    A search-box query ("EQ-Net 4-bit ImageNet top-1 accuracy") is one clause, all of it asking."""
    clause, start = _asking(question, kind)
    return clause[start:]


def _asking(question: str, kind: AnswerType) -> tuple[str, int]:
    """The clause of ``question`` that asks for ``kind`` and where its asking words start (("", 0) when none does)."""
    for clause in _CLAUSE_END.split(question):
        if match := kind.asks.search(clause) or (kind.wide and kind.wide.search(clause)):
            return clause, match.start()
    return (question, 0) if _is_query(question) else ("", 0)


def _folded(text: str) -> str:
    return _FOLDED.sub("", text.lower())


# Words an acronym's letters may skip: "number of function evaluations" is NFE.
_ACRONYM_SKIPS = frozenset({"a", "an", "and", "by", "for", "in", "of", "on", "the", "to", "with"})
_ACRONYM = re.compile(r"[A-Z]{2,6}")  # all capitals (a plural s dropped): NFE, ICL, RLHF
# Short names with small letters between capitals spell their words by the capitals: NeRF is neural radiance
# field, ViT vision transformer, LoRA low-rank adaptation.
_MIXED_ACRONYM = re.compile(r"(?=[A-Za-z]{3,5}$)[A-Z][a-z]?[A-Z][a-z]?(?:[A-Z][a-z]?)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


@dataclass(frozen=True)
class _Text:
    """A text as :func:`_uses` reads it: folded whole, its folded words, and its words in order."""

    folded: str
    words: frozenset[str]
    sequence: tuple[str, ...]
    starts: frozenset[int]  # where in ``folded`` a run of letters and digits begins

    @classmethod
    def of(cls, text: str) -> _Text:
        runs = _RUN.findall(text.lower())
        starts = frozenset(itertools.accumulate((len(r) for r in runs[:-1]), initial=0))
        return cls(
            "".join(runs), frozenset(_folded(w) for w in text.split()), tuple(_WORD.findall(text.lower())), starts
        )

    def has(self, key: str) -> bool:
        """Whether the folded text holds ``key`` from the beginning of a word on ("SA-Solver" is not in "methods as
        a solver": styles18 s18_036), ending anywhere ("ImageNet" in "ImageNet1K")."""
        at = self.folded.find(key)
        while at >= 0:
            if at in self.starts:
                return True
            at = self.folded.find(key, at + 1)
        return False


def _spells(letters: str, words: tuple[str, ...]) -> bool:
    """Whether consecutive ``words`` spell the acronym ``letters`` by their initials (each part of a hyphenated
    word counts: in-context learning is ICL), skipping small words after the first (_ACRONYM_SKIPS)."""

    def rest(at: int, left: str) -> bool:
        if not left:
            return True
        if at >= len(words):
            return False
        word = words[at]
        for initials in {"".join(part[0] for part in word.split("-") if part), word[0]}:
            if left.startswith(initials) and rest(at + 1, left[len(initials) :]):
                return True
        return word in _ACRONYM_SKIPS and rest(at + 1, left)

    first = letters[0]
    return any(word[0] == first and rest(i, letters) for i, word in enumerate(words))


def _uses(term: str, text: _Text, match: float) -> bool:
    """Whether ``text`` uses ``term``: as written from the start of a word, plural or singular, without case,
    spaces and hyphens; for a hyphenated term, each part of three letters or more that is a name itself
    (PCA-compressed: PCA); one word at least ``match``
    alike by SequenceMatcher ratio (a typo: MotionDifuser for MotionDiffuser); or, for an acronym, the
    words it stands for (NFE: number of function evaluations)."""
    key = _folded(term).removesuffix("s")
    if text.has(key):
        return True
    # A two-letter part names too little alone: "SA" of SA-Solver is spelled by any "s..., a..." (styles18 s18_036).
    parts = [p for p in term.split("-") if _NAMED_TERM.fullmatch(p) and len(p) > 2]
    if "-" in term and parts and all(_uses(p, text, match) for p in parts):
        return True
    # A ratio of 0.9 or more leaves lengths within two letters of each other for names of this size.
    if any(SequenceMatcher(None, key, w).ratio() >= match for w in text.words if abs(len(w) - len(key)) <= 2):
        return True
    acronym = term.removesuffix("s")
    if _ACRONYM.fullmatch(acronym):
        return _spells(acronym.lower(), text.sequence)
    if _MIXED_ACRONYM.fullmatch(acronym):
        return _spells("".join(c for c in acronym if c.isupper()).lower(), text.sequence)
    return _opens_words(acronym, text.sequence)


# A name made of word beginnings: ResNet (residual network), ConvNet (convolutional network).
_CAMEL_PART = re.compile(r"[A-Z][a-z]{2,}")


def _opens_words(name: str, words: tuple[str, ...]) -> bool:
    """Whether ``name`` is made of capitalised word beginnings (ResNet) that consecutive ``words`` start with
    ("residual networks")."""
    parts = [p.lower() for p in _CAMEL_PART.findall(name)]
    if len(parts) < 2 or "".join(parts) != name.lower():
        return False
    return any(
        all(w.startswith(p) for w, p in zip(words[i : i + len(parts)], parts, strict=True))
        for i in range(len(words) - len(parts) + 1)
    )


# A coined name: capitals inside a word with small letters (FedProx, ImageNet, DreamBooth; a plural s aside), the own
# name of a method, model or data set, which no paraphrase stands in for. All-capital acronyms (CNNs, GPU, BNN) are
# left out: answerable questions use them for what the abstracts spell out or say in other words (evals/README.md).
_COINED = re.compile(r"[A-Z]?[a-z]+[A-Z][A-Za-z0-9]*|[A-Z][A-Z]+[a-z][A-Za-z0-9]*")


def unused_coined_names(question: str, texts: list[str], match: float) -> list[str]:
    """The coined names of ``question`` (FedProx) that none of ``texts`` uses, compared as :func:`_uses` does."""
    names = [t.strip("-") for t in _NAMED_TERM.findall(question)]
    coined = [n for n in names if _COINED.fullmatch(n.removesuffix("s"))]
    read = [_Text.of(text) for text in texts] if coined else []
    return [n for n in coined if not any(_uses(n, r, match) for r in read)]


# A question asking which paper did something is a lookup, whatever else it names.
_ASKS_FOR_A_PAPER = re.compile(
    r"\b(which|what) (work|paper|study|article)s?\b|\bis there (a|an|any) (\w+ )?(work|paper|study|article)\b|"
    r"\bare there (any )?(\w+ )?(works|papers|studies|articles)\b",
    re.I,
)


def clause_terms(question: str, kind: AnswerType) -> list[str]:
    """The names in the clause asking for ``kind`` (ImageNet, FID, LSUN); none when the question asks
    which paper did something (it names the paper's own terms)."""
    if _ASKS_FOR_A_PAPER.search(question):
        return []
    return [t.strip("-") for t in _NAMED_TERM.findall(asking_clause(question, kind))]


def unnamed_terms(question: str, kind: AnswerType, text: str, match: float) -> list[str]:
    """The names in the clause asking for ``kind`` (ImageNet, FID, LSUN) that ``text`` never uses.

    Compared as :func:`_uses` does: an abstract that never names the benchmark or metric a question
    asks about does not state its figure there.
    """
    read = _Text.of(text)
    return [t for t in clause_terms(question, kind) if not _uses(t, read, match)]


# The authors speaking of their own work: a name they introduce there is the paper's own (DSNO, InstaFlow).
_AUTHORS_OWN = re.compile(r"\b(we|our|us)\b", re.I)


def own_name(term: str, title: str, sentences: list[str], match: float) -> bool:
    """Whether ``term`` is the paper's own (its method: DSNO, InstaFlow): used in its ``title``, or first used
    in a sentence of its abstract where the authors speak of their work ("We propose ... (DSNO)") or that
    defines it in brackets. A figure need not repeat the paper's own name beside it."""
    if _uses(term, _Text.of(title), match):
        return True
    first = next((s for s in sentences if _uses(term, _Text.of(s), match)), None)
    return first is not None and bool(_AUTHORS_OWN.search(first) or f"({term})" in first)


def states_beside(kind: AnswerType, sentences: list[str], names: list[str], window: int, match: float) -> bool:
    """Whether some sentence of ``sentences`` states ``kind`` with every one of ``names`` in it or in the
    ``window`` - 1 sentences before it: "What FID ... on ImageNet?" needs a figure beside FID and ImageNet
    ("Experiments on ImageNet ... . We reach an FID of 3.1."), not one on CIFAR-10 only."""
    for i, sentence in enumerate(sentences):
        if states(kind, sentence):
            near = _Text.of(" ".join(sentences[max(0, i - window + 1) : i + 1]))
            if all(_uses(name, near, match) for name in names):
                return True
    return False


def answer_type(question: str, wide: bool = False) -> AnswerType | None:
    """The kind of answer ``question`` asks for, or None when it asks for no particular kind.

    ``wide`` also reads a kind's ``wide`` and ``query`` patterns: a metric or measure a few words after
    "what" ("What zero-shot LAMBADA perplexity ...") or a metric in a search-box query ("EQ-Net 4-bit
    ImageNet top-1 accuracy") asks for a figure. The extractive answerer reads questions widely; the reader's no is
    outweighed by a stated figure only for the narrow reading (bot.answer), since on the 20 earlier
    sets the wide one kept 13 near misses answered there (evals/README.md, "Figures beside their names").
    """
    kind = next((t for t in ANSWER_TYPES if t.asks.search(question)), None)
    if kind is None and wide:
        query = _is_query(question)
        return next((t for t in ANSWER_TYPES if _asks_widely(t, question, query)), None)
    return kind


# A kind asked for ("what kind of benchmarks"), which words answer ("tabular regression benchmarks").
_KIND_OF = r"\b(which|what) (kinds?|types?|sorts?) of\b"


def asks_for_a_kind(question: str) -> bool:
    """The question asks what kind of thing ("what kind of benchmarks"), not which one by name."""
    return bool(re.search(_KIND_OF, question, re.I))


# Asked for by name, for the detail sentence only (bot.answerers, ``detail_names``): "which language models",
# "what limiting distribution", or a search-box query that names data sets ("graph homomorphism MCMC real network
# dataset"). Never read by the not-stated checks: a name asked with "which <noun>" that had to stand beside the
# noun refused 27 answerable questions of the dev sets for 4 near misses (evals/README.md). Twenty-second session,
# the nouns from "schemes" on, "whose" and "which ones": of all 668 detail questions of evals/, 7 answers more hold
# the asked-for name ("Which sampling scheme ...?": Poisson sampling; "whose earlier proof"), none fewer.
NAME = AnswerType(
    "name",
    "the name asked for",
    re.compile(
        r"\b(which|what)\b(\W+[\w'-]+){0,3}?\W+(models?|famil(y|ies)|algorithms?|distributions?|tasks?|"
        r"nonlinearit(y|ies)|losses|metrics?|baselines?|architectures?|attacks?|solvers?|criteri(on|a)|"
        r"strateg(y|ies)|applications?|laws?|networks?|optimizers?|experiments?|environments?|leaderboards?|"
        r"schemes?|procedures?|samplers?|techniques?|methods?|paths?|measures?|norms?|librar(y|ies)|packages?|"
        r"frameworks?|tools?|variants?|components?|(prior|earlier|previous) (works?|results?|proofs?))\b|"
        r"\bwhose\b|\bwhich ones\b|"
        rf"{_KIND_OF}|"
        r"\bwhat\b[^?.]*\b(called|named)\W*$|\bwhat\b[^?.]*\bcall\b|\bwhat('s| is| are| was| were) (the|their|its) names?\b|"
        r"\bnames? (of|for) (the|their|its|this|that|each)\b",
        re.I,
    ),
    re.compile(r"\w"),  # any sentence: the one sharing most words with the asking clause is the answer
    names=re.compile(_DATA_NAME),
)
DATASET = next(t for t in ANSWER_TYPES if t.name == "dataset")
_QUERY_DATASET = re.compile(rf"\b({_DATA_WORDS})\b", re.I)


def detail_type(question: str) -> AnswerType | None:
    """The kind the detail sentence is chosen for: :func:`answer_type`'s wide reading or, for that sentence
    only, a data set named in a search-box query or a name asked for with "which <noun>"; none when the
    question asks which paper did something."""
    kind = answer_type(question, wide=True)
    if kind is not None or _ASKS_FOR_A_PAPER.search(question):
        return kind
    if _is_query(question):
        return DATASET if _QUERY_DATASET.search(question) else NAME
    return NAME if NAME.asks.search(question) else None


# A data set named in a sentence: a capitalised word that does not open the sentence, or a name with a second capital
# or a digit, a few words from a data noun ("the fastMRI dataset", "Atari games", "natural images with CIFAR10") or
# right after "on", "across", "with" or "using" ("FID on CIFAR-10 and FFHQ"; not "based on NTK"). "Experiments on
# multiple benchmarks" and "real-world datasets" name none.
_DATA_NOUN = re.compile(
    r"datasets?|data|benchmarks?|suites?|games?|environments?|corpus|corpora|challenges?|databases?|collections?|"
    r"domains?|tasks?|cohorts?|images|videos|scenes|texts|molecules|graphs",
    re.I,
)
_DATA_PLACE = frozenset("on across with using".split())
_INNER_CAPITAL = rf"^{_DATA_NAME}|^\w+[A-Z]"  # CIFAR-10, D4RL, fastMRI, mini-ImageNet: a name wherever it stands
_NOT_A_DATA_PLACE = frozenset("based rely relies relying depend depends depending focus focuses built build".split())


def _words(text: str) -> list[str]:
    return [m.group(0) for m in re.finditer(r"[\w-]+", text)]


def _name_positions(words: list[str]) -> list[int]:
    """Where ``words`` (a sentence's) hold a name: a capitalised word that does not open the sentence, or a word
    with a second capital or a digit wherever it stands."""
    return [i for i, w in enumerate(words) if i > 0 and w[0].isupper() or re.search(_INNER_CAPITAL, w)]


def names_beyond(sentence: str, question: str) -> bool:
    """Whether ``sentence`` names something ``question`` does not (NUTS, Poisson, Phi-3-mini): an answer to "which
    sampler ..." names one, while a sentence restating the question names only what it names."""
    asked = {w.lower() for w in _words(question)}
    words = _words(sentence)
    return any(words[i].lower() not in asked for i in _name_positions(words))


def names_data_set(sentence: str, window: int) -> bool:
    """Whether ``sentence`` names a data set: a name at most ``window`` words from a data noun, or after "on",
    "across", "with" or "using" (not after "based on")."""
    words = _words(sentence)
    names = _name_positions(words)
    nouns = [i for i, w in enumerate(words) if _DATA_NOUN.fullmatch(w)]
    if any(abs(i - j) <= window for i in names for j in nouns):
        return True
    return any(
        i > 0 and words[i - 1].lower() in _DATA_PLACE and (i < 2 or words[i - 2].lower() not in _NOT_A_DATA_PLACE)
        for i in names
    )


def _asks_widely(kind: AnswerType, question: str, query: bool) -> bool:
    return bool(kind.wide and kind.wide.search(question) or query and kind.query and kind.query.search(question))


def states(kind: AnswerType | None, sentence: str) -> bool:
    """``sentence`` carries an answer of ``kind`` (always true when there is no kind)."""
    if kind is None:
        return True
    return bool(kind.states.search(kind.ignore.sub(" ", sentence) if kind.ignore else sentence))


# A sentence that leans on the one before it ("It also ...", "This approach ...") means nothing alone.
LEANS_ON_CONTEXT = re.compile(
    r"^(it|its|this(?!\s+(paper|work|study|article|letter|note|survey|report|thesis))|these|those|they|their|such|thus|hence|therefore|also|moreover|furthermore|additionally|"
    r"in addition|however|finally|then|similarly|likewise|consequently|as a result|in contrast|"
    r"the (former|latter|above|resulting))\b",
    re.I,
)


# A question that asks for several papers ("Which papers ...", "What approaches ...") wants each of them cited.
# So does "Are there ...?" and "How do people / researchers ...?" (a plural subject, asked in everyday words).
# Asking what is known or has been done ("What research is there on ...", "What explanations have been
# proposed ...", "What has been written about ...", "how to ...") asks for the field's papers as well.
# "Methods", "approaches", "techniques" and "ways" ask for several only as what is asked for ("Which methods ...",
# "What are some ways ...", "methods that ...", not "beat the best competing methods" or "the complexity of the
# accelerated methods": 36 lookups, detail and near-miss questions of evals/ cited several papers for those).
_SEVERAL = re.compile(
    r"\b(papers|works|studies|articles|lines of work|literature|anyone|research on)\b|"
    r"\b(which|what|any|some|other|alternative|different|existing)\b(\W+[\w-]+){0,3}?\W+(methods|approaches|techniques|ways)\b|"
    r"\b(methods|approaches|techniques|ways)\s+(that|which|to)\b|"
    r"\bare there\b|\bhow (do|did|have|has|can) (people|researchers|others|scientists)\b|"
    r"\bwhat (research|work|explanations|ideas|proposals|options)\b|\bresearch (is there|exists?)\b|\bwhat is known\b|"
    r"\bwhat has been (written|done|proposed|shown|learned)\b|\b(is|are) there any (writing|research|work)\b|"
    r"\bwhat\b[^?]*\bexists?\b|^\W*how to\b|\bwhat happens\b",
    re.I,
)
# A question, as opposed to a search-box query ("one-step diffusion distillation").
_QUESTION_FORM = re.compile(
    r"\?|^\s*(what|which|who|whom|whose|how|why|when|where|is|are|was|were|do|does|did|can|could|should|would|"
    r"will|has|have|had|any|i|i'm|im|we|my|our|hi|hey|hello)\b",
    re.I,
)


def _is_query(question: str) -> bool:
    """A search-box query ("one-step diffusion distillation"), not a question."""
    return not _QUESTION_FORM.search(question)


# A question for one paper ("Which paper shows ... using techniques from privacy?") names the plural words of
# _SEVERAL as part of what the paper did: styles18 s18_002, s18_063 cited four and five papers for a lookup.
_ONE_PAPER = re.compile(r"\b(which|what|the|a|one) (paper|study|article)\b(?! (and|or)\b)", re.I)


def _from_the_ask(question: str) -> str:
    """The question from its first sentence that asks (ends in "?") on: the sentences before it say why the user
    asks ("I'm comparing few-shot methods for a class project. What accuracy ...?"), not what they ask for."""
    sentences = split_sentences(question)
    first = next((i for i, s in enumerate(sentences) if s.rstrip().endswith("?")), 0)
    return " ".join(sentences[first:])


def asks_for_papers(question: str) -> bool:
    """The question asks in words for papers in the plural or for what a field knows ("Which papers ...",
    "What approaches ...", "Are there ..."), and not for one paper ("Which paper ...", "one paper found ...").
    The plural is read from the first sentence that asks on: the sentences before it are context."""
    return bool(_SEVERAL.search(_from_the_ask(question))) and not _ONE_PAPER.search(question)


def asks_for_several(question: str) -> bool:
    """The question wants every paper that answers it: it asks for papers in the plural, or it is a bare
    search-box query, which does not say whether one paper or several are meant."""
    return asks_for_papers(question) or _is_query(question)
