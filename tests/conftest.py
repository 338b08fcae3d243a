"""Shared fixtures: one isolated index of the real corpus per test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.servers import free_port  # the tests import it from here too

# Property tests: CI runs a bounded number of examples with a fixed seed (derandomize), so a
# failure reproduces; locally "dev" draws new examples each run, and HYPOTHESIS_PROFILE=long
# runs twenty times as many (tests/test_properties.py).
PROPERTY_EXAMPLES = 100
hypothesis_settings.register_profile("ci", max_examples=PROPERTY_EXAMPLES, derandomize=True, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=PROPERTY_EXAMPLES, deadline=None)
hypothesis_settings.register_profile("long", max_examples=20 * PROPERTY_EXAMPLES, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "index" / "sources"


def write_jsonl(path: Path, papers) -> None:
    """A JSON Lines source file of ``papers`` (title and abstract), as a user would index one."""
    path.write_text("\n".join(json.dumps({"title": p.title, "abstract": p.abstract}) for p in papers) + "\n")


def library_settings(tmp_path: Path, collection: str, **extra):
    """Settings for a private library under ``tmp_path``: an empty sources folder, its own store."""
    from bot.config import Settings

    sources = tmp_path / "sources"
    sources.mkdir(exist_ok=True)
    return Settings(sources_dir=sources, store_dir=tmp_path / "store", collection=collection, **extra)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("paperbot")


@pytest.fixture(scope="session")
def settings(session_dir: Path):
    """Settings pointing at a private copy of the sources and a private store."""
    from bot.config import Settings

    sources = session_dir / "sources"
    shutil.copytree(SOURCES, sources)
    return Settings(sources_dir=sources, store_dir=session_dir / "store", collection="paperbot_test")


@pytest.fixture(scope="session")
def cli_env(settings) -> dict[str, str]:
    """Environment for running the `paperbot` command against the session index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBOT_", "OPENAI_"))}
    env.update(
        PAPERBOT_SOURCES_DIR=str(settings.sources_dir),
        PAPERBOT_STORE_DIR=str(settings.store_dir),
        PAPERBOT_COLLECTION=settings.collection,
    )
    return env


@pytest.fixture(scope="session")
def engine(settings):
    """The answer engine over the real corpus (built once per session)."""
    from bot.answer import Engine

    return Engine(settings, progress=False)


# -- the chat web app (tests/test_app.py, tests/test_browser.py) ----------------
# A hostile entry: markup in the title and abstract must reach the page as text.
XSS_PROBE = {
    "title": "<script>alert(1)</script> XSS probe <img src=x onerror=alert(2)>",
    "abstract": (
        "We study marmalade lattice telepathy, a made-up phenomenon in which citrus preserves on a hexagonal "
        "lattice synchronise their crystallisation <script>alert(4)</script> as described on "
        "[the probe page](javascript:alert(3)). Our marmalade lattice telepathy benchmark shows that jars on a "
        "hexagonal grid crystallise within minutes of each other <img src=x onerror=alert(6)> "
        '<a href="javascript:alert(5)">see here</a>.'
    ),
}
XSS_QUESTION = "What is marmalade lattice telepathy? <img src=x onerror=alert(7)>"


@pytest.fixture(scope="session")
def xss_env(engine, cli_env, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """cli_env for a copy of the session index plus :data:`XSS_PROBE` (only its one chunk is embedded)."""
    base = tmp_path_factory.mktemp("xss")
    shutil.copytree(cli_env["PAPERBOT_STORE_DIR"], base / "store")
    probe = base / "xss_probe.jsonl"
    probe.write_text(json.dumps(XSS_PROBE) + "\n", encoding="utf-8")
    env = dict(cli_env, PAPERBOT_STORE_DIR=str(base / "store"))
    subprocess.run(
        [sys.executable, "-m", "bot", "index", str(probe), "--json"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return env


@dataclass
class ChatServer:
    url: str
    log: Path
    proc: subprocess.Popen


@pytest.fixture(scope="session")
def chat_server(xss_env, tmp_path_factory: pytest.TempPathFactory):
    """`paperbot chat` in its own process on a free port, serving the XSS-probed index."""
    log = tmp_path_factory.mktemp("chat") / "server.log"
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "chat", "--port", str(port)],
            env=xss_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 300
    while "serving on" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"paperbot chat did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    line = next(ln for ln in log.read_text().splitlines() if "serving on" in ln)
    yield ChatServer(url=line.split("serving on ", 1)[1].split()[0], log=log, proc=proc)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def write_report_section(name: str, text: str) -> Path:
    """Replace section ``name`` of artifacts/ui_load_report.md (the UI's measured latencies).

    Test runs never rewrite tracked files; evals/ui_load_report.md is a copy of
    a run's report, committed by hand.
    """
    path = ROOT / "artifacts" / "ui_load_report.md"
    path.parent.mkdir(exist_ok=True)
    seed = ROOT / "evals" / "ui_load_report.md"
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    if path.exists():
        current = path.read_text(encoding="utf-8")
    else:
        current = seed.read_text(encoding="utf-8") if seed.exists() else "# Chat UI: latency under load\n"
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in current and end in current:
        current = current[: current.index(begin)] + block + current[current.index(end) + len(end) :]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current, encoding="utf-8")
    return path


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run the `paperbot` command in a new process, as a user would."""
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def built(engine, cli_env) -> dict[str, str]:
    """`cli_env`, once the session index exists (the engine fixture builds it)."""
    return cli_env


@pytest.fixture(scope="module")
def fake():
    """A scriptable OpenAI-protocol server on loopback, one per test module."""
    from tests.fakeopenai import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


# Fixtures that need the real corpus's index, a server or a browser: tests using them are end-to-end.
_SLOW_FIXTURES = {"settings", "engine", "cli_env", "built", "xss_env", "chat_server", "llm_engine", "llm_settings"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark end-to-end tests ``slow`` by what they use, so `pytest -m "not slow"` is the fast layer."""
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("llm"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """The engine over the nine-paper fixture corpus (tests/fast_corpus.py), built once per session."""
    from bot.answer import Engine
    from tests.fast_corpus import tiny_settings

    return Engine(tiny_settings(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
def paperbot_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run `paperbot ARGS` in this process with exactly ``env``'s PAPERBOT_/OPENAI_ variables.

    Returns (exit code, stdout, stderr); the cached settings are re-read for each call.
    """
    from bot.cli import main
    from bot.config import get_settings

    def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
        for key in [k for k in os.environ if k.startswith(("PAPERBOT_", "OPENAI_"))]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    yield run
    get_settings.cache_clear()
