"""LLM mode: an OpenAI-compatible model writes the answer, then its citations are checked.

The retrieved abstracts go into the prompt as numbered sources and the model
cites them as [n]. Text streams out as it arrives; when the stream ends the
markers are verified: numbers that point at no source are removed, each
sentence is compared with the sources it cites, and the cited papers are
renumbered in order of first use. Any failure to get a usable completion
(after the openai client's own retries) falls back to the extractive answer
with a note saying why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.answer import REFUSAL, Turn, condense_heuristic, refused_answer
from bot.config import Settings
from bot.schema import Answer, Citation, Hit, Sentence
from bot.text import markers_in, split_sentences, strip_markers, tokens, with_marker

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from bot.answer import Engine
    from bot.retrieval import Filters, HybridRetriever

log = logging.getLogger(__name__)

DEFAULT_OPENAI_BASE = "https://api.openai.com/v1"
# Local servers ignore the key, but the openai client insists on one.
PLACEHOLDER_KEY = "sk-no-key-needed"
# cl100k is not every model's tokenizer: on the 529 abstracts SmolLM2's needs
# 1.03x as many tokens (median), 1.17x at most, hence the margin.
TOKEN_SAFETY = 1.2
CHAT_OVERHEAD_TOKENS = 48  # chat template and role tokens around the one message
MIN_SOURCE_TOKENS = 48  # a source cut shorter than this is dropped instead
HISTORY_TURNS = 6
HISTORY_CHARS = 600  # per turn, in the condense prompt

# "[2]", "[1, 3]", "[1-3]"; bot.text.markers_in reads the comma form this module writes back.
_GROUP = re.compile(r"[ \t]*\[(\d{1,3}(?:\s*[,;\u2013-]\s*\d{1,3})*)\](?![\^_])")  # not "[0,1]^d", as in bot.text
_LEADING_MARKERS = re.compile(r"^(?:\[\d+(?:,\s*\d+)*\]\s*)+[.!?]?\s*")
_LONE_MARKERS = re.compile(r"[ \t]*\n\s*((?:\[\d{1,3}(?:\s*[,;\u2013-]\s*\d{1,3})*\]\s*)+[.!?]?)[ \t]*(?=\n|$)")
_REFERENCE_LIST = re.compile(r"^\W*(sources|references|citations|bibliography)\W*$", re.I)


class LLMUnavailable(Exception):
    """No usable completion; ``reason`` is short and safe to show (never holds the key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- prompts ----------------------------------------------------------------
def load_prompt(name: str, settings: Settings) -> str:
    """The text of ``prompts/<name>.txt`` (read at run time, so edits need no restart)."""
    path = Path(settings.prompts_dir) / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LLMUnavailable(f"prompt file {path} cannot be read ({exc.strerror or exc})") from exc


def fill(template: str, **values: str) -> str:
    """Put ``values`` into ``{name}`` slots; other braces (abstracts with LaTeX) stay as they are."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


@lru_cache(maxsize=1)
def _encoding():
    import tiktoken  # bot.config pointed TIKTOKEN_CACHE_DIR at llama-index's bundled files

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    """A conservative token count for context budgeting."""
    return int(len(_encoding().encode(text, disallowed_special=())) * TOKEN_SAFETY) + 1


def _truncate(text: str, budget: int) -> str:
    ids = _encoding().encode(text, disallowed_special=())
    keep = int(budget / TOKEN_SAFETY) - 1
    return text if len(ids) <= keep else _encoding().decode(ids[: max(keep, 0)]).rstrip() + " …"


@dataclass
class Prompt:
    text: str
    sources: list[Hit]  # source n is sources[n - 1]
    tokens: int


def _source_line(n: int, hit: Hit, body: str) -> str:
    return f"[{n}] {hit.paper.title}: {' '.join(body.split())}"


def build_prompt(settings: Settings, question: str, hits: list[Hit]) -> Prompt:
    """The answer prompt with as many sources as fit the context window (trimmed evenly)."""
    template = load_prompt("answer", settings)
    base = fill(template, refusal=REFUSAL, question=question, sources="")
    available = settings.llm_context_window - settings.llm_max_tokens - CHAT_OVERHEAD_TOKENS - count_tokens(base)
    hits = list(hits)
    while hits:
        full = [_source_line(n, h, h.paper.abstract) for n, h in enumerate(hits, start=1)]
        sizes = [count_tokens(line + "\n\n") for line in full]
        if sum(sizes) <= available:
            lines = full
            break
        # Every source gets the same cap; the short ones give their slack to the rest.
        cap = _water_level(sizes, available)
        if cap < MIN_SOURCE_TOKENS:
            hits.pop()  # the lowest-ranked source goes rather than all becoming stubs
            continue
        lines = []
        for n, (hit, line, size) in enumerate(zip(hits, full, sizes, strict=True), start=1):
            if size > cap:
                # The best-matching chunk is the part of the abstract worth keeping.
                line = _truncate(_source_line(n, hit, hit.chunk_text), cap - 2)
            lines.append(line)
        break
    else:
        lines = []
    text = fill(template, refusal=REFUSAL, question=question, sources="\n\n".join(lines))
    return Prompt(text=text, sources=hits, tokens=count_tokens(text) + CHAT_OVERHEAD_TOKENS)


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
    lines = []
    for turn in history[-HISTORY_TURNS:]:
        who = "User" if turn.role == "user" else "Assistant"
        text = " ".join(strip_markers(turn.content).split())
        if len(text) > HISTORY_CHARS:
            text = text[:HISTORY_CHARS].rsplit(" ", 1)[0] + " …"
        lines.append(f"{who}: {text}")
    return fill(load_prompt("condense", settings), history="\n".join(lines), question=question)


# -- the model --------------------------------------------------------------
def get_llm(engine: Engine) -> LLM:
    """The engine's LlamaIndex LLM, built on first use."""
    with engine._llm_lock:
        if engine._llm is None:
            engine._llm = build_llm(engine.settings)
        return engine._llm


def build_llm(settings: Settings) -> LLM:
    import openai
    from llama_index.llms.openai_like import OpenAILike

    if not settings.llm_configured:
        raise LLMUnavailable("no LLM endpoint configured; set OPENAI_API_KEY or OPENAI_BASE_URL")
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else PLACEHOLDER_KEY
    base = settings.openai_base_url or DEFAULT_OPENAI_BASE
    # Retries and backoff are the openai client's (it honours Retry-After); LlamaIndex's
    # own tenacity layer would multiply the attempts and sleep whole seconds, so it is off.
    client = openai.OpenAI(
        api_key=key, base_url=base, timeout=settings.llm_timeout, max_retries=settings.llm_max_retries
    )
    return OpenAILike(
        model=settings.llm_model,
        api_base=base,
        api_key=key,
        is_chat_model=True,
        context_window=settings.llm_context_window,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        timeout=settings.llm_timeout,
        max_retries=0,
        openai_client=client,
    )


def describe_failure(exc: BaseException, settings: Settings) -> str:
    """A one-line reason for the user; the API key is scrubbed from anything echoed back."""
    import httpx
    import openai

    base = settings.openai_base_url or DEFAULT_OPENAI_BASE
    if isinstance(exc, LLMUnavailable):
        reason = exc.reason
    elif isinstance(exc, openai.AuthenticationError):
        reason = "authentication failed (HTTP 401); check OPENAI_API_KEY"
    elif isinstance(exc, openai.PermissionDeniedError):
        reason = "permission denied (HTTP 403); check OPENAI_API_KEY and the model's access"
    elif isinstance(exc, openai.NotFoundError):
        reason = f"HTTP 404 from {base}; check OPENAI_BASE_URL and PAPERBOT_LLM_MODEL ({settings.llm_model})"
    elif isinstance(exc, openai.RateLimitError):
        reason = f"rate limited (HTTP 429) after {settings.llm_max_retries} retries"
    elif isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        reason = f"no response within {settings.llm_timeout:g}s (PAPERBOT_LLM_TIMEOUT)"
    elif isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        reason = f"cannot connect to {base}"
    elif isinstance(exc, openai.APIStatusError):
        detail = _error_message(exc)
        retried = f" after {settings.llm_max_retries} retries" if exc.status_code >= 500 else ""
        reason = f"HTTP {exc.status_code} from the server{retried}" + (f": {detail}" if detail else "")
    elif isinstance(exc, openai.APIError):
        reason = f"the server sent an error: {_error_message(exc)}"
    else:
        reason = f"malformed response ({type(exc).__name__})"
    if settings.openai_api_key:
        reason = reason.replace(settings.openai_api_key.get_secret_value(), "***")
    return reason


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    message = message or getattr(exc, "message", "") or ""
    message = " ".join(str(message).split())
    return message[:160] + ("…" if len(message) > 160 else "")


def condense(llm: LLM, settings: Settings, question: str, history: list[Turn]) -> str:
    """The follow-up as a standalone question, written by the model (not streamed)."""
    return checked_rewrite(model_rewrite(llm, settings, question, history), question, history)


def checked_rewrite(text: str, question: str, history: list[Turn]) -> str:
    """The model's rewrite, unless it lost the follow-up's own words; then the heuristic one."""
    if keeps_question(text, question):
        return text
    # Small models sometimes restate the previous turn instead (evals/followups.py).
    log.info("condensed question dropped the follow-up's words; using the heuristic rewrite")
    return condense_heuristic(question, history)


def model_rewrite(llm: LLM, settings: Settings, question: str, history: list[Turn]) -> str:
    """The model's reply to the condense prompt, cleaned up, before any check of its sense."""
    from llama_index.core.llms import ChatMessage

    reply = llm.chat([ChatMessage(role="user", content=condense_prompt(settings, question, history))])
    text = (reply.message.content or "").strip()
    # Models like to prefix, quote or explain; the first line is the question.
    text = text.splitlines()[0].strip() if text else ""
    text = re.sub(r"^(standalone question|question)\s*:\s*", "", text, flags=re.I).strip().strip("\"'` ")
    if len(text) < 3 or len(text) > 1000:
        raise LLMUnavailable("the model returned no usable standalone question")
    return text


# Words that carry no topic: a rewrite may replace them.
_FUNCTION_WORDS = frozenset(
    "about also and any are been but can could did does for from had has have how into its more not our "
    "such than that the their them then there these they this those was way were what when where which "
    "who why will with would you your".split()
)


def keeps_question(rewrite: str, question: str, share: float = 0.5) -> bool:
    """The rewrite still asks what was asked: most of the follow-up's content words survive.

    Words are compared by their first five letters, so "evaluate" matches "evaluation".
    """
    words = {w for w in tokens(question) if len(w) > 2 and w not in _FUNCTION_WORDS}
    if not words:
        return True
    stems = {w[:5] for w in tokens(rewrite)}
    return sum(w[:5] in stems for w in words) >= share * len(words)


# -- verification -----------------------------------------------------------
@dataclass
class Checked:
    text: str
    sentences: list[Sentence]
    citations: list[Citation]
    dangling: int


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        bounds = re.split(r"\s*[\u2013-]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            lo, hi = int(bounds[0]), int(bounds[1])
            out.extend(range(lo, hi + 1) if 0 < hi - lo < 20 else [lo, hi])
        elif part.isdigit():
            out.append(int(part))
    return out


def _renumber(text: str, n_sources: int) -> tuple[str, list[int], int]:
    """Drop markers outside 1..n_sources and renumber the rest in order of first use.

    Returns the new text, the original source number of each new number, and the
    count of removed markers.
    """
    order: list[int] = []
    dangling = 0
    for match in _GROUP.finditer(text):
        for n in _numbers(match.group(1)):
            if 1 <= n <= n_sources:
                if n not in order:
                    order.append(n)
            else:
                dangling += 1
    new_of = {old: new for new, old in enumerate(order, start=1)}

    def rewrite(match: re.Match[str]) -> str:
        kept = list(dict.fromkeys(new_of[n] for n in _numbers(match.group(1)) if n in new_of))
        return f" [{', '.join(map(str, kept))}]" if kept else ""

    text = re.sub(r"(?m)^[ \t]+", "", _GROUP.sub(rewrite, text))  # a marker that opened a line
    return text.strip(), order, dangling


def _prefix_style(text: str) -> bool:
    """The model put markers before its claims ("[1] Title: claim"), as small models copying the source list do."""
    return bool(re.match(r"\[\d", text.lstrip(" *-#>")))


def _markers_after(text: str) -> str:
    """Rewrite prefix style ("[1] claim. [2] claim.") to the usual "claim [1]. claim [2].", line by line."""
    lines = []
    for line in text.splitlines():
        parts = _GROUP.split(line)  # text, group, text, group, ...
        pieces = [parts[0].strip()] if parts[0].strip() else []
        for group, body in zip(parts[1::2], parts[2::2], strict=True):
            if body.strip():
                pieces.append(with_marker(body.strip(), group))
        lines.append(" ".join(pieces))
    return "\n".join(lines)


def _tidy(text: str) -> str:
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


def _split(text: str) -> list[str]:
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


def evidence_for(retriever: HybridRetriever, hits: list[Hit]) -> list[tuple[list[str], np.ndarray]]:
    """What can back a claim citing each hit: its abstract sentences, then the retrieved chunk, with vectors.

    Abstract sentence vectors come from the retriever's per-paper cache; only the chunks are encoded.
    """
    chunks = retriever.encoder.encode([h.chunk_text for h in hits]) if hits else np.zeros((0, 384))
    out = []
    for hit, chunk_vector in zip(hits, chunks, strict=True):
        sentences, vectors = retriever.sentence_vectors(hit.paper)
        keep = [i for i, s in enumerate(sentences) if len(s) >= 20]
        out.append(([sentences[i] for i in keep] + [hit.chunk_text], np.vstack([vectors[keep], chunk_vector])))
    return out


def verify(text: str, sources: list[Hit], threshold: float, retriever: HybridRetriever) -> Checked:
    """Check the model's markers against ``sources`` (prompt order, source n = sources[n-1])."""
    text, order, dangling = _renumber(_tidy(text), len(sources))
    sentences = _split(text)
    cited = [sources[old - 1] for old in order]
    # evidence[n-1]: citation n's abstract sentences, then its chunk, and their vectors.
    evidence = evidence_for(retriever, cited)
    plain = [strip_markers(s) or s for s in sentences]
    svec = retriever.encoder.encode(plain) if plain else np.zeros((0, 384))

    out_sentences: list[Sentence] = []
    supported_by: dict[int, list[bool]] = {n: [] for n in range(1, len(order) + 1)}
    best_quote: dict[int, tuple[float, str]] = {}
    for i, sentence in enumerate(sentences):
        numbers = list(dict.fromkeys(markers_in(sentence)))
        support = {}
        for n in numbers:
            texts, vectors = evidence[n - 1]
            row = vectors @ svec[i]
            support[n] = float(row.max())
            # The quote is an abstract sentence (not the chunk, the last evidence item).
            j = int(np.argmax(row[:-1])) if len(row) > 1 else 0
            score = float(row[j])
            if score > best_quote.get(n, (-2.0, ""))[0]:
                best_quote[n] = (score, texts[j])
            supported_by[n].append(support[n] >= threshold)
        verified = any(s >= threshold for s in support.values())
        out_sentences.append(Sentence(text=sentence, citations=numbers, verified=verified))

    citations = []
    for n, hit in enumerate(cited, start=1):
        paper = hit.paper
        quote = best_quote.get(n, (0.0, evidence[n - 1][0][0]))[1]
        citations.append(
            Citation(
                n=n,
                paper_id=paper.paper_id,
                title=paper.title,
                arxiv_id=paper.arxiv_id,
                url=paper.url,
                quote=quote,
                score=round(float(hit.similarity), 4),
                # Every sentence citing this paper must be backed by this paper itself.
                verified=bool(supported_by[n]) and all(supported_by[n]),
            )
        )
    return Checked(text=text, sentences=out_sentences, citations=citations, dangling=dangling)


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", strip_markers(text).lower()).split())


def is_refusal(text: str) -> bool:
    """The model gave the fixed refusal (perhaps with quotes or a marker around it)."""
    said, refusal = _normal(text), _normal(REFUSAL)
    if said.startswith(refusal):
        return True
    return refusal in said and not _GROUP.search(text)


# -- the flow ---------------------------------------------------------------
def stream_llm_answer(
    engine: Engine,
    question: str,
    history: list[Turn],
    k: int | None = None,
    filters: Filters | None = None,
) -> Iterator[str | Answer]:
    """Yield text deltas as the model writes, then the verified :class:`Answer`.

    When the model cannot be used the final Answer is the extractive one with a
    note, also after some deltas went out (front ends replace the streamed text).
    """
    settings = engine.settings
    standalone = question
    try:
        llm = get_llm(engine)
        if history:
            standalone = condense(llm, settings, question, history)
    except Exception as exc:  # noqa: BLE001 - any failure means: answer without the model
        yield _fallback(engine, question, condense_heuristic(question, history), k, filters, exc)
        return

    retrieval = engine.retrieve_for(standalone, k=k, filters=filters)
    hits = retrieval.hits
    answer = refused_answer(question, standalone, retrieval, "llm")
    if not retrieval.answered:
        yield REFUSAL
        yield answer
        return

    from llama_index.core.llms import ChatMessage

    parts: list[str] = []
    finish = None
    try:
        prompt = build_prompt(settings, standalone, hits)
        if not prompt.sources:
            raise LLMUnavailable(
                f"the context window ({settings.llm_context_window} tokens, PAPERBOT_LLM_CONTEXT_WINDOW) "
                "leaves no room for sources"
            )
        for chunk in llm.stream_chat([ChatMessage(role="user", content=prompt.text)]):
            if chunk.delta:
                parts.append(chunk.delta)
                yield chunk.delta
            choices = getattr(chunk.raw, "choices", None) or []
            if choices and getattr(choices[0], "finish_reason", None):
                finish = choices[0].finish_reason
        text = "".join(parts).strip()
        if not any(ch.isalpha() for ch in strip_markers(text)):
            raise LLMUnavailable("empty completion" if not text else "completion without any words")
        if is_refusal(text):
            yield answer
            return
        checked = verify(text, prompt.sources, settings.verify_threshold, engine.retriever)
        if not checked.sentences:
            raise LLMUnavailable("completion without any sentences")
    except Exception as exc:  # noqa: BLE001 - includes errors raised mid-stream
        yield _fallback(engine, question, standalone, k, filters, exc)
        return

    answer.answer, answer.refused = checked.text, False
    answer.sentences, answer.citations = checked.sentences, checked.citations
    answer.dangling_removed = checked.dangling
    if finish == "length":
        answer.notes.append(f"the answer was cut off at {settings.llm_max_tokens} tokens (PAPERBOT_LLM_MAX_TOKENS)")
    yield answer


def _fallback(
    engine: Engine,
    question: str,
    standalone: str,
    k: int | None,
    filters: Filters | None,
    exc: BaseException,
) -> Answer:
    reason = describe_failure(exc, engine.settings)
    log.warning("LLM unavailable, answering extractively: %s", reason)
    answer = engine.extractive_answer(question, standalone, k=k, filters=filters)
    answer.notes.append(f"LLM unavailable: {reason}")
    return answer
