"""The chat web app (`paperbot chat`): streamed, cited answers with a sources panel.

One :class:`~bot.answer.Engine` per process serves every browser session. All
text that comes from the corpus, the question or an LLM goes through
:func:`inert` before Gradio renders it as Markdown, so markup in an abstract
shows as text and runs nothing (Gradio's own sanitizer stays on as well).
"""

from __future__ import annotations

import hmac
import html
import logging
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

# First: it switches gradio and huggingface_hub to offline, telemetry-free mode.
from bot.config import Settings, get_settings
from bot.normalize import arxiv_search_url
from bot.safety import clean
from bot.schema import LOW_CONFIDENCE

if TYPE_CHECKING:
    import gradio as gr

    from bot.answer import Engine
    from bot.schema import Answer

log = logging.getLogger("paperbot.app")

EXAMPLES = [
    "Is the boundary between trainable and untrainable hyperparameters fractal?",
    "How can diffusion models be sampled in around 10 steps?",
    "Do neural networks prefer simple, low-complexity data?",
    "How can atomic layer deposition reduce multipacting in RF cavities?",
]
SHOWN_QUESTION_CHARS = 600  # a pasted 100 kB question is not echoed in full
SOURCES_PLACEHOLDER = "### Sources\nThe papers cited by the answer appear here."
ALL_SOURCES = ""

# Markdown that could make markup: escaped with a backslash (any line-start
# block marker too); <, > and & become entities, so no tag or autolink survives.
# Citation markers like [2] or [1, 3] stay as typed: with every other bracket
# escaped there can be no link definition for them to point to.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")
_LINE_START = re.compile(r"^([ \t]*)(?:([#>+=-])|(\d+)([.)]))", re.M)
_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`]+$", re.I)


# -- rendering (pure functions, shared by the UI and the API) -----------------
def _escape(text: str) -> str:
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = _LINE_START.sub(
        lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\{m.group(4)}"), text
    )
    return html.escape(text, quote=False)


def inert(text: str) -> str:
    """``text`` as Markdown that renders literally: no markup, links or HTML, no secrets or control characters."""
    text = clean(text)
    out, last = [], 0
    from bot.citations import MARKER

    for match in MARKER.finditer(text):
        out += [_escape(text[last : match.start()]), match.group(0)]
        last = match.end()
    out.append(_escape(text[last:]))
    return "".join(out)


def safe_url(url: str | None) -> str | None:
    """``url`` if it is a plain http(s) address, else None."""
    if url and _SAFE_URL.match(url.strip()):
        # Parentheses and spaces would end a Markdown link early.
        return quote(url.strip(), safe=":/?&=#%~@!$,;+*'")
    return None


def paper_href(title: str, url: str | None) -> str:
    """Where a paper's link points: its own (arXiv) page, else an arXiv title search."""
    return safe_url(url) or arxiv_search_url(title)


def _link(title: str, url: str | None) -> str:
    return f"[{inert(title)}]({paper_href(title, url)})"


def render_answer(answer: Answer) -> str:
    """The assistant's chat message for a finished answer."""
    if answer.refused and answer.citations:  # the asked-for detail is not stated; the closest evidence is
        lines = [f"**Not stated.** {_marked(answer)}"]
    elif answer.refused:
        lines = [f"**No answer found.** {inert(answer.answer)}"]
        if answer.hits:
            lines.append("\nClosest papers (see the panel):")
            lines += [f"- {inert(h.paper.title)}" for h in answer.hits[:5]]
    else:
        lines = [_marked(answer)]
        if answer.confidence == "low":
            lines.append(f"\n*Low confidence: {inert(LOW_CONFIDENCE)}*")
    lines += [f"\n*Note: {inert(note)}*" for note in answer.notes]
    return "\n".join(lines)


def _marked(answer: Answer) -> str:
    """The answer's text with a visible mark after each sentence its sources do not support."""
    text, out, last, pos = answer.answer, [], 0, 0
    for sentence in answer.sentences:
        start = text.find(sentence.text, pos)
        if start < 0:
            continue
        pos = start + len(sentence.text)
        if not sentence.verified:
            out.append(inert(text[last:pos]) + " ⚠️ *unverified*")
            last = pos
    out.append(inert(text[last:]))
    return "".join(out)


def render_sources(answer: Answer, seconds: float | None = None) -> str:
    """The sources panel: every cited paper with link, supporting quote and score."""
    question = answer.question if len(answer.question) <= 200 else answer.question[:200] + "…"
    about = f"For “{inert(question)}” · {inert(answer.mode)} mode" + (
        f" · {seconds:.2f} s" if seconds is not None else ""
    )
    if answer.refused and not answer.citations:
        lines = [f"### Closest papers\n{about}\n\nNothing in them answers the question; they are the nearest matches."]
        for i, hit in enumerate(answer.hits, start=1):
            lines.append(f"\n**{i}.** {_link(hit.paper.title, hit.paper.url)}  \nsimilarity {hit.similarity:.2f}")
        return "\n".join(lines)
    lines = [f"### Sources\n{about}"]
    for c in answer.citations:
        flag = " · ⚠️ **unverified**" if not c.verified else ""
        lines.append(f"\n**[{c.n}]** {_link(c.title, c.url)}  \nrelevance {c.score:.2f}{flag}")
        if c.quote:
            lines.append(f"\n> {inert(c.quote)}")
    if not answer.citations and answer.hits:
        # A model answer without usable markers: show what it was given to read.
        lines.append("\nThe answer cites none of the retrieved papers. They were:")
        for i, hit in enumerate(answer.hits, start=1):
            lines.append(f"\n**{i}.** {_link(hit.paper.title, hit.paper.url)}  \nsimilarity {hit.similarity:.2f}")
    unverified = sum(not s.verified for s in answer.sentences)
    if unverified:
        lines.append(f"\n⚠️ {unverified} sentence(s) of the answer could not be matched to their cited source.")
    return "\n".join(lines)


def header(engine: Engine) -> str:
    stats = engine.stats()
    return (
        "## paperbot · cited answers from research-paper abstracts\n"
        f"Answer mode: **{inert(engine.mode_label())}** · Index: **{stats['papers']}** papers, "
        f"**{stats['chunks']}** chunks from {len(stats['sources'])} source files"
    )


# -- request handling ---------------------------------------------------------
def _int_or_none(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(value)


def _filters(source: str | None, year_from: Any, year_to: Any):
    from bot.errors import UserError
    from bot.retrieval import Filters

    try:
        low, high = _int_or_none(year_from), _int_or_none(year_to)
    except (TypeError, ValueError):
        raise UserError("the years must be whole numbers") from None
    if low and high and low > high:
        raise UserError(f"the year range {low}–{high} is empty")
    return Filters(source=source or None, year_from=low, year_to=high)


def _lenient_int(value: Any) -> int | None:
    """A number field's value, or None (the default applies) when it is empty or not a number."""
    try:
        return _int_or_none(value)
    except (TypeError, ValueError):
        return None


def _k(value: Any) -> int | None:
    n = _lenient_int(value)
    return None if n is None else min(max(n, 1), 50)


def _turns(raw: list[dict] | None, max_turns: int) -> list:
    from bot.schema import Turn

    turns = [Turn(role=str(t.get("role")), content=str(t.get("content"))) for t in raw or [] if isinstance(t, dict)]
    return [t for t in turns if t.role in ("user", "assistant")][-max_turns:]


def _shown_question(question: str) -> str:
    if len(question) <= SHOWN_QUESTION_CHARS:
        return inert(question)
    return inert(question[:SHOWN_QUESTION_CHARS]) + f"… *({len(question):,} characters)*"


class ChatHandlers:
    """The event handlers, bound to the one shared engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._downloads: Path | None = None  # the summaries offered for download

    def chat(
        self,
        message: str,
        history: list[dict] | None,
        turns: list[dict] | None,
        k: float | None,
        mode: str | None,
        source: str | None,
        year_from: float | None,
        year_to: float | None,
    ) -> Iterator[tuple]:
        """Stream one answer into the chat; outputs: textbox, chatbot, turns, sources panel."""
        import gradio as gr

        from bot.errors import UserError

        message = message if isinstance(message, str) else ""
        history = list(history or [])
        turns = list(turns or [])
        if message.strip():
            history.append({"role": "user", "content": _shown_question(message)})
        history.append({"role": "assistant", "content": "*Searching the abstracts…*"})
        yield "", history, turns, gr.skip()
        started = time.perf_counter()
        try:
            query_engine = self.engine.as_query_engine(
                mode=mode,
                k=_k(k),
                filters=_filters(source, year_from, year_to),
                history=_turns(turns, self.engine.settings.max_turns),
                streaming=True,
            )
            response = query_engine.query(message)
            text = ""
            for piece in response.response_gen:
                if piece:
                    text += piece
                    history[-1] = {"role": "assistant", "content": inert(text)}
                    yield "", history, turns, gr.skip()
            answer: Answer = response.metadata["answer"]
        except UserError as exc:
            history[-1] = {"role": "assistant", "content": f"⚠️ Cannot answer: {inert(str(exc))}."}
            yield "", history, turns, gr.skip()
            return
        except Exception:
            log.exception("answering failed")
            history[-1] = {
                "role": "assistant",
                "content": "⚠️ Something went wrong while answering (the error is logged on the server). "
                "Please try again.",
            }
            yield "", history, turns, gr.skip()
            return
        seconds = time.perf_counter() - started
        log.info("answered in %.2fs (%s, refused=%s)", seconds, answer.mode, answer.refused)
        history[-1] = {"role": "assistant", "content": render_answer(answer)}
        turns += [{"role": "user", "content": message}, {"role": "assistant", "content": answer.answer}]
        yield "", history, turns, render_sources(answer, seconds)

    def ask(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        source: str | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
        history: list[dict] | None = None,
    ) -> dict:
        """One blocking answer for API clients: the answer as data plus the rendered chat and panel."""
        import gradio as gr

        from bot.errors import UserError

        started = time.perf_counter()
        try:
            query_engine = self.engine.as_query_engine(
                mode=mode,
                k=_k(k),
                filters=_filters(source, year_from, year_to),
                history=_turns(history, self.engine.settings.max_turns),
            )
            answer = query_engine.query(question).metadata["answer"]
        except UserError as exc:
            raise gr.Error(f"Cannot answer: {exc}.", print_exception=False) from None
        except Exception:
            log.exception("answering failed")
            raise gr.Error(
                "Something went wrong while answering (logged on the server).", print_exception=False
            ) from None
        seconds = time.perf_counter() - started
        log.info("answered in %.2fs (%s, refused=%s)", seconds, answer.mode, answer.refused)
        rendered = {"answer_markdown": render_answer(answer), "sources_markdown": render_sources(answer, seconds)}
        return answer.to_dict() | rendered

    def new_chat(self) -> tuple:
        return [], [], SOURCES_PLACEHOLDER, ""

    def summarize(self, topic: str, papers: float | None, mode: str | None, progress: Any = None) -> tuple:
        """A literature summary for the page, plus the same as a downloadable .md file and its references as .bib."""
        import gradio as gr

        from bot.errors import UserError
        from bot.summarize import summarize

        hidden = gr.update(value=None, visible=False)
        try:
            summary = summarize(self.engine, topic, papers=_lenient_int(papers), mode=mode or None, progress=progress)
        except UserError as exc:
            return f"⚠️ Cannot summarize: {inert(str(exc))}.", hidden, hidden
        except Exception:
            log.exception("summarizing failed")
            return "⚠️ Something went wrong while summarizing (the error is logged on the server).", hidden, hidden
        slug = re.sub(r"[^a-z0-9]+", "-", summary.topic.lower()).strip("-")[:60] or "summary"
        if self._downloads is None:
            self._downloads = Path(tempfile.mkdtemp(prefix="paperbot-summaries-"))
        # One folder per summary keeps the file name plain and concurrent runs apart.
        folder = Path(tempfile.mkdtemp(dir=self._downloads))
        path = folder / f"summary-{slug}.md"
        path.write_text(summary.to_markdown(bibtex=True), encoding="utf-8")
        if not summary.references:
            return render_summary(summary), gr.update(value=str(path), visible=True), hidden
        bib = folder / f"references-{slug}.bib"
        bib.write_text(summary.to_bibtex(), encoding="utf-8")
        return (
            render_summary(summary),
            gr.update(value=str(path), visible=True),
            gr.update(value=str(bib), visible=True),
        )


def render_summary(summary: Any) -> str:
    """A :class:`bot.summarize.Summary` for the page; every text from the corpus made inert."""
    lines = [f"### Literature summary: {inert(summary.topic)}"]
    if not summary.covered:
        lines += [f"\n{inert(note)}" for note in summary.notes] or ["\nThe indexed papers do not cover this topic."]
        return "\n".join(lines)
    themes = "theme" if len(summary.themes) == 1 else "themes"
    lines.append(f"*{len(summary.references)} papers in {len(summary.themes)} {themes} ({inert(summary.mode)} mode).*")
    for i, theme in enumerate(summary.themes, start=1):
        lines += [f"\n#### {i}. {inert(theme.name)}", inert(theme.text)]
    lines.append("\n#### References")
    for ref in summary.references:
        year = f" ({ref.year})" if ref.year else ""
        lines.append(f"\n**[{ref.n}]** {_link(ref.title, ref.url)}{year}")
    lines += [f"\n*Note: {inert(note)}*" for note in summary.notes]
    return "\n".join(lines)


# -- the app ------------------------------------------------------------------
def build_app(engine: Engine, settings: Settings | None = None) -> gr.Blocks:
    """The Gradio Blocks app around ``engine`` (not launched)."""
    import gradio as gr

    settings = settings or engine.settings
    handlers = ChatHandlers(engine)
    stats = engine.stats()
    years = engine.retriever.years()
    source_choices = [("All sources", ALL_SOURCES)] + [(name, name) for name in sorted(stats["sources"])]

    with gr.Blocks(title="paperbot", analytics_enabled=False) as demo:
        gr.Markdown(header(engine), elem_id="header")
        with gr.Tab("Chat"):
            turns = gr.State([])
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Conversation",
                        elem_id="chat",
                        height=520,
                        sanitize_html=True,
                        allow_tags=False,
                        render_markdown=True,
                        latex_delimiters=[],
                        feedback_options=None,
                        buttons=["copy"],
                        placeholder="Ask a question about the indexed papers. Answers cite them as [n].",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Ask about the papers…",
                            show_label=False,
                            lines=1,
                            scale=6,
                            elem_id="question",
                            autofocus=True,
                        )
                        ask_button = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                        new_chat = gr.Button("New chat", scale=1, min_width=120, elem_id="new-chat")
                    gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question], label="Example questions")
                with gr.Column(scale=2):
                    sources = gr.Markdown(SOURCES_PLACEHOLDER, elem_id="sources", sanitize_html=True)
            with gr.Accordion("Settings", open=False, elem_id="settings"):
                with gr.Row():
                    k = gr.Slider(1, 20, value=settings.top_k, step=1, label="Papers to retrieve (k)")
                    mode = gr.Radio(
                        ["auto", "extractive", "llm"],
                        value=settings.mode,
                        label="Answer mode",
                        info="auto: the LLM when one is configured, else extractive (quotes from the abstracts)",
                    )
                with gr.Row():
                    source = gr.Dropdown(source_choices, value=ALL_SOURCES, label="Limit to a source file")
                    year_info = (
                        f"{len(years)} of {stats['papers']} papers have a year ({years[0]}–{years[-1]}); "
                        "a year limit leaves out the others"
                        if years
                        else "no paper in the index has a year"
                    )
                    year_from = gr.Number(None, label="From year", precision=0, info=year_info, visible=bool(years))
                    year_to = gr.Number(None, label="To year", precision=0, visible=bool(years))

            chat_inputs = [question, chatbot, turns, k, mode, source, year_from, year_to]
            chat_outputs = [question, chatbot, turns, sources]
            gr.on(
                [question.submit, ask_button.click],
                handlers.chat,
                chat_inputs,
                chat_outputs,
                api_name="chat",
                concurrency_id="engine",
                show_progress="minimal",
            )
            new_chat.click(
                handlers.new_chat,
                None,
                [chatbot, turns, sources, question],
                queue=False,
                api_visibility="private",
            )
            # The chatbot's own trash button empties the conversation; forget it too.
            chatbot.clear(
                lambda: ([], SOURCES_PLACEHOLDER), None, [turns, sources], queue=False, api_visibility="private"
            )

        with gr.Tab("Summarize", elem_id="summarize-tab"):
            if _summaries_available():
                _summarize_tab(gr, handlers, settings)
            else:
                gr.Markdown("Summaries are not available in this installation.")

        gr.api(handlers.ask, api_name="ask", concurrency_id="engine")
    return demo


def _summaries_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("bot.summarize") is not None


def _summarize_tab(gr: Any, handlers: ChatHandlers, settings: Settings) -> None:
    cfg = settings.summary
    with gr.Row():
        topic = gr.Textbox(
            label="Topic", placeholder="e.g. fast samplers for diffusion models", scale=4, elem_id="topic"
        )
        papers = gr.Slider(
            cfg.min_papers, cfg.max_papers, value=cfg.default_papers, step=1, label="Papers at most", scale=2
        )
        mode = gr.Radio(["auto", "extractive", "llm"], value=settings.mode, label="Mode", scale=2)
    run = gr.Button("Summarize", variant="primary", elem_id="summarize")
    output = gr.Markdown(elem_id="summary", sanitize_html=True)
    with gr.Row():
        download = gr.DownloadButton("Download .md", visible=False, elem_id="download-summary")
        download_bib = gr.DownloadButton("Download .bib", visible=False, elem_id="download-bib")

    def summarize(topic: str, papers: float, mode: str, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        return handlers.summarize(topic, papers, mode, progress=progress)

    gr.on(
        [run.click, topic.submit],
        summarize,
        [topic, papers, mode],
        [output, download, download_bib],
        api_name="summarize",
        concurrency_id="summary",
        concurrency_limit=2,
    )


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """``"user:password"`` as Gradio's auth tuple; raises ValueError on any other shape."""
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise ValueError("PAPERBOT_AUTH must look like user:password")
    return user, password


class LoginGate:
    """The PAPERBOT_AUTH check Gradio calls for each login, with a lockout against guessing.

    After ``max_failures`` wrong logins in a row every login (right ones too) is refused
    for ``lockout_seconds``; each further lockout without a success in between lasts
    twice as long. Gradio does not tell the check who is asking, so the lockout is for
    everyone: an app open to the internet belongs behind a proxy that limits per client.
    """

    def __init__(self, user: str, password: str, max_failures: int, lockout_seconds: float) -> None:
        self._user, self._password = user.encode(), password.encode()
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self._failures = 0
        self._lockouts = 0
        self._locked_until = 0.0
        self._lock = threading.Lock()

    def __call__(self, username: str, password: str) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._locked_until:
                log.warning("login refused: locked for %.0f s more after repeated failures", self._locked_until - now)
                return False
            # Both compared in constant time, whatever the first one gives.
            right_user = hmac.compare_digest(str(username).encode(), self._user)
            right_password = hmac.compare_digest(str(password).encode(), self._password)
            if right_user and right_password:
                self._failures = self._lockouts = 0
                return True
            self._failures += 1
            if self._failures >= self.max_failures:
                pause = self.lockout_seconds * 2**self._lockouts
                self._locked_until = now + pause
                self._lockouts += 1
                self._failures = 0
                log.warning("%d failed logins in a row: logins locked for %.0f s", self.max_failures, pause)
            return False


def login_gate(settings: Settings) -> LoginGate | None:
    """The login check for ``settings.auth`` (None when the app is open)."""
    auth = parse_auth(settings.auth)
    if auth is None:
        return None
    return LoginGate(*auth, max_failures=settings.auth_max_failures, lockout_seconds=settings.auth_lockout_seconds)


def launch(
    settings: Settings | None = None,
    host: str | None = None,
    port: int | None = None,
    engine: Engine | None = None,
) -> tuple[gr.Blocks, str]:
    """Build and start the app without blocking; returns it and its local address."""
    from bot.answer import Engine

    settings = settings or get_settings()
    auth = login_gate(settings)
    engine = engine or Engine(settings, progress=True)
    demo = build_app(engine, settings)
    demo.queue(default_concurrency_limit=settings.concurrency_limit)
    _, url, _ = demo.launch(
        server_name=host or settings.host,
        server_port=port or settings.port,
        auth=auth,
        share=False,
        show_error=False,
        quiet=True,
        prevent_thread_lock=True,
    )
    return demo, url
