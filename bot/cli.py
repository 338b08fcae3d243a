"""The `paperbot` command line: index, search, ask, stats (and eval, summarize, chat)."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated

import typer

# typer vendors click; its exception types are what standalone_mode=False raises.
from typer._click import exceptions as click_exc

from bot.config import Settings, SettingsError, check_collection_name, check_mode, get_settings
from bot.errors import UserError
from bot.interrupt import EXIT_INTERRUPTED, MESSAGE, catching_ctrl_c, caused_by_ctrl_c
from bot.outputs import file_problem
from bot.safety import clean, clean_json
from bot.schema import LOW_CONFIDENCE
from bot.spelling import spelling_note
from bot.text import check_question

app = typer.Typer(
    name="paperbot",
    help="Ask research questions over paper abstracts and get answers with citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class CliError(UserError):
    """An error with a message for the user; exits non-zero without a traceback."""


CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection",
        help="The library to use [default: paperbot, or PAPERBOT_COLLECTION]; see `paperbot collections`.",
        show_default=False,
    ),
]


def _settings(collection: str | None) -> Settings:
    """The settings, with ``--collection`` (checked against Chroma's naming rule) when given."""
    settings = get_settings()
    if collection is None:
        return settings
    return settings.model_copy(update={"collection": check_collection_name(collection)})


EXIT_USAGE = 2  # bad arguments, options or settings


def echo(text: str = "", err: bool = False, nl: bool = True) -> None:
    """typer.echo for text that may come from the corpus or a model: secrets masked, no terminal escapes."""
    typer.echo(clean(text), err=err, nl=nl)


def _host_option(value: str | None) -> str | None:
    """A host the chat server can bind: resolved now, before the engine loads."""
    import socket

    if value is None:
        return None
    try:
        socket.getaddrinfo(value, None)
    except (OSError, UnicodeError) as exc:
        raise typer.BadParameter(f"cannot resolve {value!r} to an address ({exc})") from None
    return value


def _engine(settings: Settings, progress: bool = True):
    from bot.answer import Engine

    return Engine(settings, progress=progress)


def _show_version(value: bool) -> None:
    if value:
        from bot.doctor import version

        typer.echo(f"paperbot {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Ask research questions over paper abstracts and get answers with citations."""
    get_settings()  # validated before any command loads anything heavy


def _print_json(data: object) -> None:
    typer.echo(clean_json(json.dumps(data, indent=2, ensure_ascii=False)))


def _wrap(text: str) -> str:
    return "\n".join(textwrap.fill(p, width=100) for p in text.split("\n"))


@app.command()
def index(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="BibTeX/JSONL/CSV/TXT files or folders to add (remembered).")
    ] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Re-embed every chunk.")] = False,
    forget: Annotated[
        list[Path] | None, typer.Option("--forget", help="Stop indexing this remembered path (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Build or update the index from the shipped corpus (default collection) and remembered PATHS."""
    from bot.indexing import sync

    settings = _settings(collection)
    result = sync(
        settings,
        paths=list(paths or []),
        rebuild=rebuild,
        progress=not as_json,
        forget=list(forget or []),
    )
    report = result.report
    summary = {
        "files": report.files,
        "entries": report.entries,
        "papers": report.papers,
        "papers_with_questions": report.asked,
        "merged": report.merged,
        "skipped": [str(p) for p in report.problems],
        "chunks_added": result.added,
        "chunks_removed": result.removed,
        "chunks_unchanged": result.unchanged,
        "index_changed": result.manifest_written or result.removed > 0,
        "seconds": round(result.total_seconds, 2),
        "embed_seconds": round(result.embed_seconds, 2),
        "sentence_seconds": round(result.sentence_seconds, 2),
    }
    if not report.papers:
        where = settings.sources_dir or "the given paths"
        only_questions = bool(report.questions) and not report.files
        hint = (
            "; question files only add example questions to papers indexed from other sources" if only_questions else ""
        )
        echo(f"paperbot: warning: no papers found in {where} or the remembered paths{hint}", err=True)
    if as_json:
        _print_json(summary)
        return
    for name, count in report.files.items():
        echo(f"read {count:4d} entries from {name}")
    for name, count in report.questions.items():
        echo(f"read {count:4d} question records from {name}")
    if report.questions:
        echo(f"{report.asked} papers carry example questions")
    echo(
        f"{report.entries} entries -> {report.papers} papers ({report.merged} duplicates merged); "
        f"{len(report.problems)} skipped"
    )
    for problem in report.problems:
        echo(f"  skipped {problem}")
    echo(
        f"chunks: {result.added} embedded, {result.removed} removed, {result.unchanged} unchanged "
        f"({result.total_seconds:.1f}s)"
    )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="Number of papers.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Rank papers for QUERY."""
    query = check_question(query)  # before the engine loads: bad input fails at once
    engine = _engine(_settings(collection))
    correction = engine.correct_spelling(query)
    if correction.changes:  # with --json on stderr, so that stdout stays one JSON document
        echo(f"note: {spelling_note(correction)}", err=as_json)
    hits = engine.search(correction.text, k=k)
    if as_json:
        _print_json([h.to_dict() for h in hits])
        return
    for i, hit in enumerate(hits, start=1):
        echo(f"{i:2d}. {hit.paper.title}  (score {hit.score:.4f}, similarity {hit.similarity:.2f})")
        if hit.paper.url:
            echo(f"    {hit.paper.url}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    mode: Annotated[str, typer.Option(help="auto, extractive or llm.")] = "auto",
    k: Annotated[int | None, typer.Option("-k", "--k", min=1, max=50, help="Papers to retrieve.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Answer QUESTION from the abstracts, with numbered citations."""
    question = check_question(question)  # before the slow imports: bad input fails at once
    check_mode(mode)
    engine = _engine(_settings(collection))
    live = not as_json and engine.resolve_mode(mode) == "llm"
    shown: list[str] = []
    started = time.perf_counter()
    response = engine.as_query_engine(mode=mode, k=k, streaming=True).query(question)
    for piece in response.response_gen:
        if live:
            # Tokens go out as they arrive; the verified text follows the stream.
            sys.stdout.write(clean(piece))
            sys.stdout.flush()
            shown.append(piece)
    answer = response.metadata["answer"]
    streamed = bool(shown)
    if as_json:
        _print_json(answer.to_dict() | {"seconds": round(time.perf_counter() - started, 3)})
        return
    if streamed:
        echo("\n")
    for note in answer.notes:
        echo(f"note: {note}")
    # Verification renumbers and drops markers, and a fallback replaces the text:
    # then the checked answer is printed so it matches the sources listed below.
    if not streamed or " ".join(answer.answer.split()) != " ".join("".join(shown).split()):
        echo(("Checked answer:\n" if streamed else "") + _wrap(answer.answer))
    if answer.confidence == "low":
        echo(f"\nConfidence: low. {LOW_CONFIDENCE}")
    unverified = sum(not s.verified for s in answer.sentences)
    if answer.mode == "llm" and unverified:
        echo(f"\n{unverified} of {len(answer.sentences)} sentences are not supported by a cited source.")
    if answer.refused and not answer.citations:
        echo("\nClosest papers:")
        for hit in answer.hits:
            echo(f"  - {hit.paper.title}" + (f"  {hit.paper.url}" if hit.paper.url else ""))
        return
    echo("\nSources:")
    for c in answer.citations:
        flag = "" if c.verified else "  (unverified)"
        echo(f"[{c.n}] {c.title}{flag}" + (f"\n    {c.url}" if c.url else ""))


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Size of the index: entries, papers, chunks, and papers per source."""
    from bot.indexing import open_index

    _, manifest = open_index(_settings(collection))
    data = manifest.stats()
    if as_json:
        _print_json(data)
        return
    echo(f"{data['entries']} entries, {data['papers']} papers, {data['chunks']} chunks")
    for name, count in data["sources"].items():
        echo(f"  {count:4d} papers from {name}")


@app.command()
def collections(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The libraries in the store, with their paper counts (use one with --collection NAME)."""
    from dataclasses import asdict

    from bot.indexing import list_collections

    settings = get_settings()
    found = list_collections(settings)
    if as_json:
        _print_json([asdict(info) | {"current": info.name == settings.collection} for info in found])
        return
    if not found:
        typer.echo(f"no collections yet in {settings.store_dir} (the first `paperbot` command builds one)")
    for info in found:
        mark = "*" if info.name == settings.collection else " "
        typer.echo(f"{mark} {info.name:<24} {info.papers:5d} papers {info.chunks:6d} chunks")


@app.command("eval")
def eval_(
    dataset: Annotated[Path | None, typer.Option(help="JSONL question set [default: evals/questions.jsonl].")] = None,
    mode: Annotated[str, typer.Option(help="auto, extractive or llm.")] = "auto",
    baseline: Annotated[Path | None, typer.Option(help="Compare with this baseline; exit 1 on a regression.")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder [default: evals/runs/<timestamp>].")] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Write this run as the baseline (keeps its tolerances).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics and comparison as JSON.")] = False,
    retriever: Annotated[str, typer.Option(help="Ranking to score: hybrid, dense or bm25.")] = "hybrid",
    k: Annotated[int | None, typer.Option("-k", "--k", min=1, max=50, help="Papers retrieved per question.")] = None,
    judge: Annotated[bool, typer.Option("--judge/--no-judge", help="LLM-judge answers when an LLM is set.")] = True,
    collection: CollectionOption = None,
) -> None:
    """Score answers on a question set: retrieval, citations, refusals, groundedness."""
    check_mode(mode)
    from bot.eval import DEFAULT_DATASET, EvalError, run_command

    settings = _settings(collection)
    try:
        status = run_command(
            lambda: _engine(settings, progress=not as_json),
            dataset or DEFAULT_DATASET,
            mode=mode,
            baseline=baseline,
            out=out,
            update_baseline=update_baseline,
            as_json=as_json,
            retriever=retriever,
            k=k,
            judge=judge,
            echo=echo,
        )
    except EvalError as exc:
        raise CliError(str(exc)) from exc
    if status:
        raise CliError("eval failed: metrics dropped beyond the baseline's tolerance (listed above)")


@app.command()
def chat(
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind [default: 127.0.0.1, PAPERBOT_HOST].", callback=_host_option),
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to listen on [default: 7860, PAPERBOT_PORT].")
    ] = None,
    collection: CollectionOption = None,
) -> None:
    """Start the chat web app and print its address (login with PAPERBOT_AUTH=user:password)."""
    import logging

    from bot.app import launch, parse_auth

    settings = _settings(collection)
    _host_option(host or settings.host)  # PAPERBOT_HOST too, before the engine loads
    try:
        parse_auth(settings.auth)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    from bot.safety import CleanLogFilter

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(CleanLogFilter())  # what a model or a client sent is logged cleaned
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up probes
    try:
        demo, url = launch(settings, host=host, port=port)
    except OSError as exc:  # the port is taken or the address cannot be bound
        raise CliError(f"cannot start the web server: {exc}") from exc
    echo(f"paperbot chat: serving on {url} (Ctrl+C to stop)")
    try:
        while True:  # not demo.block_thread(): it swallows Ctrl-C, and the exit status would say success
            time.sleep(1)
    finally:
        demo.close()


@app.command("summarize")
def summarize_cmd(
    topic: Annotated[str, typer.Argument(help="The topic to summarize.")],
    papers: Annotated[
        int | None, typer.Option("--papers", min=2, max=60, help="Most papers to include [default: 20].")
    ] = None,
    mode: Annotated[str, typer.Option(help="auto, extractive or llm.")] = "auto",
    out: Annotated[Path | None, typer.Option("--out", help="Also write the Markdown to this file.")] = None,
    bib: Annotated[
        Path | None, typer.Option("--bib", help="Also write the cited papers as BibTeX to this file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of Markdown.")] = False,
    collection: CollectionOption = None,
) -> None:
    """A themed overview of TOPIC from the indexed papers, with numbered references."""
    topic = check_question(topic)
    settings = _settings(collection)
    check_mode(mode)
    from tqdm import tqdm

    from bot.summarize import summarize

    for target in (out, bib):
        if target is not None and (problem := file_problem(target)):
            raise CliError(problem)  # before the run, not after minutes of work
    engine = _engine(settings)
    bar = tqdm(total=100, file=sys.stderr, disable=None, leave=False, bar_format="{desc} {percentage:3.0f}%|{bar}|")

    def progress(fraction: float, message: str) -> None:
        bar.set_description_str(message)
        bar.update(max(0, round(fraction * 100) - bar.n))

    try:
        summary = summarize(engine, topic, papers=papers, mode=mode, progress=progress)
    finally:
        bar.close()
    markdown = summary.to_markdown()
    # The file versions carry the references' BibTeX too (folded in the Markdown).
    files = [(out, summary.to_markdown(bibtex=True)), (bib, summary.to_bibtex())]
    for target, text in files:
        if target is None:
            continue
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {target}: {exc.strerror or exc}") from exc
        echo(f"wrote {target}", err=True)
    if as_json:
        _print_json(summary.to_dict() | {"seconds": round(summary.seconds, 3)})
    else:
        echo(markdown, nl=False)


def _override_line(folder: str | None) -> str:
    if folder is None:
        return "none (set PAPERBOT_PROMPTS_DIR)"
    return folder if Path(folder).is_dir() else f"{folder} (MISSING: LLM mode falls back to extractive)"


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Where the index, sources and prompts are; the model's checksums; whether the LLM answers."""
    from bot.doctor import diagnose

    report = diagnose(_settings(collection))
    if as_json:
        _print_json(report.to_dict())
        return
    where = f"Chroma server {report.chroma_server}" if report.chroma_server else report.store
    index = (
        f"{report.index['papers']} papers, {report.index['chunks']} chunks"
        if report.index
        else "not built yet (the first command builds it)"
    )
    rows = [
        ("version", f"{report.version} (running from the {report.layout})"),
        ("collection", report.collection),
        ("index", f"{where}: {index}"),
        ("sources", report.base_sources or "none besides the paths indexed into this collection"),
        *[("  remembered", path) for path in report.remembered_sources],
        ("prompts", report.prompts),
        ("  override", _override_line(report.prompts_override)),
        ("model", report.model),
        *[("  " + ("ok" if f.ok else "MISMATCH"), f"{f.path} sha256 {f.sha256}") for f in report.model_files],
    ]
    llm = report.llm
    if not llm.configured:
        rows.append(("llm", f"not configured: {llm.detail}"))
    else:
        state = "reachable" if llm.reachable else "NOT reachable"
        rows.append(("llm", f"{llm.model} at {llm.base_url}: {state} ({llm.detail})"))
    for label, value in rows:
        typer.echo(f"{label:<13} {value}")
    if not all(f.ok for f in report.model_files):
        raise CliError("the embedding model's files do not match their pinned checksums")


def main(argv: list[str] | None = None) -> int:
    """Entry point: every failure becomes a one-line message and a non-zero exit.

    Exit status: 0 only on success, 1 on an error the message explains, 2 on bad
    arguments, options or settings, 130 on Ctrl-C.
    """
    with catching_ctrl_c():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        status = app(args=argv, standalone_mode=False)
    except click_exc.NoArgsIsHelpError as exc:
        echo(exc.format_message(), err=True)
        return EXIT_USAGE
    except click_exc.UsageError as exc:
        echo(f"paperbot: error: {exc.format_message()} (see `paperbot --help`)", err=True)
        return EXIT_USAGE
    except SettingsError as exc:
        echo(f"paperbot: error: {exc}", err=True)
        return EXIT_USAGE
    except click_exc.ClickException as exc:
        echo(f"paperbot: error: {exc.format_message()}", err=True)
        return 1
    except UserError as exc:
        echo(f"paperbot: error: {exc}", err=True)
        return 1
    except (typer.Abort, KeyboardInterrupt):
        status = EXIT_INTERRUPTED
    except typer.Exit as exc:
        status = exc.exit_code
    except Exception as exc:  # what Ctrl-C cut short: an extension module's import, a validator being built
        if not caused_by_ctrl_c(exc):
            raise
        status = EXIT_INTERRUPTED
    # Without standalone mode typer returns (or raises Exit with) the status of what it handled
    # itself: 130 for Ctrl-C.
    if not isinstance(status, int) or isinstance(status, bool):
        return 0
    if status == EXIT_INTERRUPTED:
        echo(MESSAGE, err=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
