"""The chat web app through its public API, with the official gradio_client.

`paperbot chat` runs in its own process (the ``chat_server`` fixture, an index
with an XSS probe entry). LLM mode and an engine failure are driven in-process
against a scripted OpenAI-protocol server and a store copy this module owns.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from bot.app import inert, paper_href
from tests.conftest import XSS_PROBE, XSS_QUESTION, free_port, write_report_section
from tests.fakeopenai import Reply

pytestmark = pytest.mark.slow

ALD = "How can atomic layer deposition mitigate multipacting in superconducting RF cavities?"
ALD_URL = "https://arxiv.org/abs/2405.18949"
FRACTAL = "Is the boundary between trainable and untrainable hyperparameters fractal?"
FRACTAL_TITLE = "The boundary of neural network trainability is fractal"
# (question, the paper an answer must cite); lookup questions of evals/questions.jsonl.
LOAD_QUESTIONS = [
    (
        "How can one formally guarantee that a trained text or image generator is unlikely to output near-copies "
        "of protected works that were included in its training data?",
        "Provable Copyright Protection for Generative Models",
    ),
    (
        "Is there an argument that the classic result saying no learner can beat another on average over all "
        "problems does not doom general-purpose models, because real-world data and neural networks both favour "
        "simple, compressible structure?",
        "The No Free Lunch Theorem, Kolmogorov Complexity, and the Role of Inductive Biases in Machine Learning",
    ),
    (
        ALD,
        "This study investigates the use of Atomic Layer deposition (ALD) to mitigate multipacting phenomena inside...",
    ),
    (FRACTAL, FRACTAL_TITLE),
    (
        "Real-world competitive games like chess, go or StarCraft II are not fully transitive; how should player "
        "strength be modelled instead of Elo?",
        "Real-world competitive games, such as chess, go, or StarCraft II, rely on Elo models to measure the strength "
        "of...",
    ),
]


def _client(url: str, **kwargs) -> Client:
    # gradio_client's telemetry is on unless turned off here (HF_HUB_OFFLINE also stops it).
    return Client(url, verbose=False, analytics_enabled=False, **kwargs)


def _chat(client: Client, question: str, history: list | None = None, mode: str = "auto") -> tuple[list, str]:
    """One turn through the UI's own streaming endpoint; returns (chat messages, sources panel)."""
    _, messages, sources = client.predict(question, history or [], 5, mode, "", None, None, api_name="/chat")
    return messages, sources


def _text(message: dict) -> str:
    return "".join(part.get("text", "") for part in message["content"] if isinstance(part, dict))


def _cited(answer: dict) -> list[str]:
    return [c["title"] for c in answer["citations"]]


# -- the `paperbot chat` process ---------------------------------------------------
def test_answer_with_citations_through_public_api(chat_server):
    client = _client(chat_server.url)
    answer = client.predict(ALD, api_name="/ask")

    assert not answer["refused"] and answer["mode"] == "extractive"
    numbers = {c["n"] for c in answer["citations"]}
    assert numbers == {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])}
    first = answer["citations"][0]
    assert first["url"] == ALD_URL and first["quote"].rstrip(".") in answer["answer"]
    # The panel links every cited paper to where it lives.
    for c in answer["citations"]:
        assert f"({paper_href(c['title'], c['url'])})" in answer["sources_markdown"]
    assert f"**[1]** [{inert(first['title'])}]({ALD_URL})" in answer["sources_markdown"]


def test_chat_endpoint_streams_and_follows_up(chat_server):
    client = _client(chat_server.url)
    job = client.submit(ALD, [], 5, "auto", "", None, None, api_name="/chat")
    updates = list(job)
    _, messages, sources = job.result()
    assert len(updates) >= 2  # the placeholder first, then the answer
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "[1]" in _text(messages[-1]) and ALD_URL in sources

    # "they" only makes sense with the conversation; a fresh session cannot answer it.
    follow_up = "Which materials did they deposit?"
    messages, sources = _chat(client, follow_up, messages)
    assert len(messages) == 4 and "[1]" in _text(messages[-1]) and ALD_URL in sources
    _, fresh_sources = _chat(_client(chat_server.url), follow_up)
    assert not (fresh_sources.startswith("### Sources") and ALD_URL in fresh_sources)


def test_refusal_offers_closest_papers(chat_server):
    answer = _client(chat_server.url).predict(
        "What is the best recipe for sourdough bread with rye flour?", api_name="/ask"
    )
    assert answer["refused"] and not answer["citations"] and answer["closest"]
    assert answer["answer_markdown"].startswith("**No answer found.**")
    assert "### Closest papers" in answer["sources_markdown"]
    assert inert(answer["closest"][0]["title"]) in answer["sources_markdown"]


def test_bad_input_is_a_message_and_the_app_keeps_serving(chat_server):
    client = _client(chat_server.url)
    messages, _ = _chat(client, "")
    assert _text(messages[-1]) == "⚠️ Cannot answer: the question is empty."
    huge = "why " * 24_999 + "why?"  # 100 kB
    messages, _ = _chat(client, huge)
    assert "100,000 characters long; the limit is" in _text(messages[-1])
    assert len(_text(messages[0])) < 1000  # the question is not echoed in full
    with pytest.raises(AppError, match="the question is empty"):
        client.predict("   ", api_name="/ask")
    with pytest.raises(AppError, match="unknown mode"):
        client.predict(FRACTAL, 5, "poetry", api_name="/ask")
    assert FRACTAL_TITLE in _cited(client.predict(FRACTAL, api_name="/ask"))
    assert "Traceback" not in chat_server.log.read_text()


def test_xss_entry_comes_back_inert(chat_server):
    answer = _client(chat_server.url).predict(XSS_QUESTION, api_name="/ask")
    assert _cited(answer) == [XSS_PROBE["title"]]  # the raw data is returned as data
    rendered = answer["answer_markdown"] + answer["sources_markdown"]
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered
    assert not re.search(r"(?<!\\)\]\(javascript:", rendered)  # no unescaped "](" makes a link
    assert "\\[the probe page\\](javascript:alert(3))" in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered


def test_summarize_tab(chat_server):
    client = _client(chat_server.url)
    markdown, download, bib = client.predict("fast samplers for diffusion models", 6, "auto", api_name="/summarize")
    assert markdown.startswith("### Literature summary: fast samplers for diffusion models")
    assert re.search(r"\[1\]", markdown) and "#### References" in markdown
    path = Path(download["value"] if isinstance(download, dict) else download)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Literature summary: fast samplers for diffusion models") and "## References" in text
    # The same references as BibTeX: in the Markdown file (folded) and as their own download.
    bib_text = Path(bib["value"] if isinstance(bib, dict) else bib).read_text(encoding="utf-8")
    assert bib_text.count("@misc{") == len(re.findall(r"^\d+\. ", text.split("## References")[1], re.M))
    assert bib_text.strip() in text

    markdown, download, bib = client.predict("", 6, "auto", api_name="/summarize")
    assert markdown.startswith("⚠️ Cannot summarize:") and "is empty" in markdown
    for offered in (download, bib):
        assert offered is None or offered.get("value") is None  # no file offered


def _quantile(values: list[float], q: float) -> float:
    return sorted(values)[round(q * (len(values) - 1))]


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s" if values else "n/a"


def _p95(values: list[float]) -> str:
    return f"{_quantile(values, 0.95):.2f} s" if values else "n/a"


def test_sixteen_clients_at_once(chat_server):
    """16 sessions ask 5 questions each at the same time: all answered right, none fails."""

    def session(i: int) -> list[tuple[str, str, bool, float]]:
        client = _client(chat_server.url)
        out = []
        for j in range(5):
            question, gold = LOAD_QUESTIONS[(i + j) % len(LOAD_QUESTIONS)]
            started = time.perf_counter()
            if i % 2:  # half the sessions use the chat's streaming endpoint, half /ask
                _, sources = _chat(client, question)
                ok = f"[{inert(gold)}](" in sources
            else:
                ok = gold in _cited(client.predict(question, api_name="/ask"))
            out.append((question, gold, ok, time.perf_counter() - started))
        return out

    log_before = len(chat_server.log.read_text().splitlines())
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        results = [r for rs in pool.map(session, range(16)) for r in rs]
    wall = time.perf_counter() - started
    # The server logs the engine's own time per answer: the rest of a client's wait is queueing.
    new_lines = chat_server.log.read_text().splitlines()[log_before:]
    engine_times = sorted(float(m.group(1)) for ln in new_lines if (m := re.search(r"answered in ([\d.]+)s", ln)))

    latencies = sorted(r[3] for r in results)
    p50, p95 = statistics.median(latencies), _quantile(latencies, 0.95)
    write_report_section(
        "load",
        f"""## 16 clients × 5 questions (tests/test_app.py::test_sixteen_clients_at_once)
Sixteen `gradio_client.Client` sessions in threads, each asking 5 questions one after the other
(half through the streaming `/chat` endpoint, half through `/ask`), against `paperbot chat` in
extractive mode with the default queue (`PAPERBOT_CONCURRENCY_LIMIT=4`), on {os.cpu_count()} CPU(s).
Latency is per question as a client sees it, queueing included; the engine row is the server's own
time per answer (from its log), so the difference is time spent waiting in the queue.

| questions | wrong or failed | p50 | p95 | max | wall time | throughput |
|---|---|---|---|---|---|---|
| {len(results)} | {sum(not r[2] for r in results)} | {p50:.2f} s | {p95:.2f} s | {latencies[-1]:.2f} s | {wall:.1f} s | {len(results) / wall:.2f} q/s |
| engine only ({len(engine_times)} answers) | | {_median(engine_times)} | {_p95(engine_times)} | | | |
""",
    )
    wrong = [(q[:60], gold[:60]) for q, gold, ok, _ in results if not ok]
    assert len(results) == 80 and not wrong
    assert "Traceback" not in chat_server.log.read_text()


def test_serves_only_loopback_by_default(chat_server):
    assert chat_server.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(chat_server.url, timeout=10) as page:
        assert page.status == 200


def test_login_when_auth_is_set(engine, settings):
    from bot.app import launch

    demo, url = launch(settings.model_copy(update={"auth": "alice:s3cret"}), port=free_port(), engine=engine)
    try:
        with pytest.raises(ValueError, match="(?i)login|auth|credentials"):
            _client(url)
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(url + "gradio_api/info", timeout=10)
        answer = _client(url, auth=("alice", "s3cret")).predict(FRACTAL, api_name="/ask")
        assert FRACTAL_TITLE in _cited(answer)
    finally:
        demo.close()


def test_malformed_auth_is_a_one_line_error(cli_env):
    out = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--port", str(free_port())],
        env=dict(cli_env, PAPERBOT_AUTH="no-colon"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == "paperbot: error: PAPERBOT_AUTH must look like user:password"


# -- in-process: LLM mode and an engine failure ------------------------------------------
@pytest.fixture(scope="module")
def llm_app(engine, settings, fake, tmp_path_factory):
    """The app in this process, LLM mode against the scripted server, on its own store copy."""
    from pydantic import SecretStr

    from bot.answer import Engine
    from bot.app import launch

    store = tmp_path_factory.mktemp("llm_app") / "store"
    shutil.copytree(settings.store_dir, store)
    own = settings.model_copy(
        update={
            "store_dir": store,
            "openai_base_url": fake.url,
            "openai_api_key": SecretStr("test-key"),
            "llm_model": "fake-model",
            "llm_max_retries": 0,
        }
    )
    app_engine = Engine(own)
    demo, url = launch(own, host="127.0.0.1", port=free_port(), engine=app_engine)
    yield url, app_engine
    demo.close()


def test_llm_mode_streams_and_marks_unverified_sentences(llm_app, fake):
    url, _ = llm_app
    fake.play(
        Reply(
            text="We find that this boundary is fractal over more than ten decades of scale [1]. "
            "The moon is made of green cheese <img src=x onerror=alert(8)> [1]."
        )
    )
    client = _client(url)
    job = client.submit(FRACTAL, [], 5, "auto", "", None, None, api_name="/chat")
    texts = [_text(out[1][-1]) for out in job]
    _, messages, sources = job.result()
    final = _text(messages[-1])

    assert len(set(texts)) >= 3  # the placeholder, pieces of the stream, the verified answer
    assert "fractal over more than ten decades of scale [1]." in final
    assert final.count("⚠️ *unverified*") == 1 and final.index("green cheese") < final.index("unverified")
    assert "&lt;img src=x onerror=alert(8)&gt;" in final and "<img" not in final
    assert f"[{FRACTAL_TITLE}](" in sources and "⚠️ **unverified**" in sources
    assert "llm" in sources


def test_engine_error_is_a_message_and_the_app_keeps_serving(llm_app, caplog):
    url, app_engine = llm_app
    client = _client(url)
    # The index disappears under the running app (say, a rebuild into a new collection).
    app_engine.store.client.delete_collection(app_engine.settings.collection)
    with caplog.at_level(logging.ERROR, logger="paperbot.app"):
        messages, _ = _chat(client, FRACTAL, mode="extractive")
    assert _text(messages[-1]).startswith("⚠️ Something went wrong while answering")
    assert "Traceback" not in _text(messages[-1])
    assert any(r.exc_info for r in caplog.records)  # the traceback went to the server log
    with pytest.raises(AppError, match="Something went wrong"):
        client.predict(FRACTAL, 5, "extractive", api_name="/ask")
    messages, _ = _chat(client, "")
    assert _text(messages[-1]) == "⚠️ Cannot answer: the question is empty."
    with urllib.request.urlopen(url, timeout=10) as page:
        assert page.status == 200
