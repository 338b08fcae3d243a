"""LLM mode against a scripted OpenAI-protocol server: citations, refusals, faults, streaming."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time

import pytest
from pydantic import SecretStr

from bot.answer import Engine
from bot.answerers import build_prompt
from bot.citations import markers_in, renumber
from bot.llm import count_tokens
from bot.schema import REFUSAL, Answer, Turn
from bot.text import split_sentences
from tests.fakeopenai import FakeOpenAI, Reply

KEY = "sk-test-Zq8rT3cretValue"
QUESTION = "Is the boundary between trainable and divergent neural network hyperparameters fractal?"
FRACTAL = "The boundary of neural network trainability is fractal"
FAST_RETRY = {"retry-after-ms": "10"}  # the openai client honours it instead of its own backoff
OFF_TOPIC = "Bananas are rich in potassium and grow best in humid tropical climates"


@pytest.fixture(scope="module")
def llm_settings(settings, fake):
    return settings.model_copy(
        update={
            "openai_base_url": fake.url,
            "openai_api_key": SecretStr(KEY),
            "llm_model": "fake-model",
            "llm_max_retries": 1,
            "llm_timeout": 2.0,
            "mode": "llm",
        }
    )


@pytest.fixture(scope="module")
def llm_engine(engine, llm_settings):
    return Engine(llm_settings, store=engine.store)


def run(eng: Engine, question: str = QUESTION, **kwargs) -> tuple[list[str], Answer]:
    deltas: list[str] = []
    answer = None
    for event in eng.stream(question, mode="llm", **kwargs):
        if isinstance(event, Answer):
            assert answer is None, "the final Answer comes once, last"
            answer = event
        else:
            assert answer is None, "no text after the final Answer"
            deltas.append(event)
    assert answer is not None
    return deltas, answer


def abstract_sentence(hit, index: int = 0) -> str:
    """A sentence of the hit's abstract, usable as a claim that source supports."""
    sentences = [s for s in split_sentences(hit.paper.abstract) if len(s) > 60]
    return sentences[index % len(sentences)].rstrip(".")


def assert_well_formed(answer: Answer) -> None:
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert set(markers_in(answer.answer)) == set(numbers)
    for sentence in answer.sentences:
        assert set(sentence.citations) <= set(numbers)
        assert sentence.text in answer.answer


def test_answer_streams_with_verified_renumbered_citations(llm_engine, fake):
    retrieval = llm_engine.sources_for(QUESTION)
    hits = retrieval.hits
    assert retrieval.answered and hits[0].paper.title == FRACTAL
    # The model cites source 2 first, so it becomes [1] in the answer.
    text = f"{abstract_sentence(hits[1])} [2]. {abstract_sentence(hits[0], -1)} [1]."
    fake.play(Reply(text=text))

    deltas, answer = run(llm_engine)

    assert len(deltas) > 1 and "".join(deltas) == text
    assert answer.mode == "llm" and not answer.refused and answer.notes == []
    assert [c.title for c in answer.citations] == [hits[1].paper.title, hits[0].paper.title]
    assert markers_in(answer.answer) == [1, 2]
    assert [s.citations for s in answer.sentences] == [[1], [2]]
    assert all(s.verified for s in answer.sentences)
    assert all(c.verified and c.quote in (hits[1].paper.abstract + hits[0].paper.abstract) for c in answer.citations)
    assert answer.citations[1].quote.rstrip(".") == abstract_sentence(hits[0], -1)
    assert answer.dangling_removed == 0
    assert_well_formed(answer)

    (request,) = fake.requests
    assert request["stream"] is True and request["model"] == "fake-model"
    assert request["_authorization"] == f"Bearer {KEY}"
    prompt = request["messages"][-1]["content"]
    assert f"[1] {hits[0].paper.title}: " in prompt and f"[{len(hits)}] {hits[-1].paper.title}: " in prompt
    assert QUESTION in prompt and REFUSAL in prompt


def test_dangling_marker_is_removed_and_counted(llm_engine, fake):
    hits = llm_engine.sources_for(QUESTION, k=3).hits
    text = (
        f"{abstract_sentence(hits[0])} [1]. This finding is also reported elsewhere [9]. "
        f"{abstract_sentence(hits[2])} [3, 9]. {OFF_TOPIC} [1]."
    )
    fake.play(Reply(text=text))

    _, answer = run(llm_engine, k=3)

    assert answer.mode == "llm" and answer.dangling_removed == 2
    assert "[9]" not in answer.answer and "9]" not in answer.answer
    assert [c.title for c in answer.citations] == [hits[0].paper.title, hits[2].paper.title]
    assert [s.citations for s in answer.sentences] == [[1], [], [2], [1]]
    assert [s.verified for s in answer.sentences] == [True, False, True, False]
    # Paper 1 is cited for the off-topic sentence too, which it does not support.
    assert [c.verified for c in answer.citations] == [False, True]
    assert_well_formed(answer)


def test_markers_written_before_claims_belong_to_the_claim_after_them(llm_engine, fake):
    # Small models copy the numbered source list: "[1] Title: claim" rather than "claim [1]".
    hits = llm_engine.sources_for(QUESTION, k=3).hits
    text = f"[2] {abstract_sentence(hits[1])}.\n[1] {abstract_sentence(hits[0], -1)}."
    fake.play(Reply(text=text))

    _, answer = run(llm_engine, k=3)

    assert answer.mode == "llm" and answer.dangling_removed == 0
    assert [c.title for c in answer.citations] == [hits[1].paper.title, hits[0].paper.title]
    assert [s.citations for s in answer.sentences] == [[1], [2]]
    assert all(s.verified for s in answer.sentences)


def test_answer_without_citations_is_unverified(llm_engine, fake):
    fake.play(Reply(text="The boundary is fractal over many scales. Training is sensitive to small changes."))

    _, answer = run(llm_engine)

    assert answer.mode == "llm" and not answer.refused
    assert answer.citations == [] and len(answer.sentences) == 2
    assert not any(s.verified for s in answer.sentences)


def test_model_refusal_gives_refused_answer_with_closest_papers(llm_engine, fake):
    fake.play(Reply(text=REFUSAL))

    deltas, answer = run(llm_engine)

    assert "".join(deltas) == REFUSAL
    assert answer.refused and answer.answer == REFUSAL and answer.mode == "llm"
    assert answer.citations == [] and answer.hits[0].paper.title == FRACTAL


def test_irrelevant_question_is_refused_without_calling_the_model(llm_engine, fake):
    question = "What is the best recipe for banana bread with walnuts and brown butter?"
    assert not llm_engine.sources_for(question).answered
    fake.play(Reply(text="Use ripe bananas [1]."))

    _, answer = run(llm_engine, question)

    assert answer.refused and answer.answer == REFUSAL and answer.hits
    assert fake.requests == []


def test_rate_limit_is_retried_by_the_client(llm_engine, fake):
    hits = llm_engine.sources_for(QUESTION).hits
    fake.play(
        Reply(status=429, headers=FAST_RETRY, error="slow down"), Reply(text=f"{abstract_sentence(hits[0])} [1].")
    )

    _, answer = run(llm_engine)

    assert len(fake.requests) == 2
    assert answer.mode == "llm" and answer.notes == [] and answer.citations[0].title == FRACTAL


def test_server_error_forever_falls_back_to_extractive(llm_engine, fake):
    fake.play(default=Reply(status=500, headers=FAST_RETRY, error="model crashed"))

    _, answer = run(llm_engine)

    assert len(fake.requests) == 1 + llm_engine.settings.llm_max_retries
    assert answer.mode == "extractive" and not answer.refused
    assert answer.notes == ["LLM unavailable: HTTP 500 from the server after 1 retries: model crashed"]
    assert answer.answer == llm_engine.ask(QUESTION, mode="extractive").answer


def test_stream_stalling_midway_falls_back_after_the_timeout(llm_engine, fake):
    fake.play(Reply(text="The boundary is fractal [1]. It holds across ten decades of scale [1].", stall_after=3))

    deltas, answer = run(llm_engine)

    # What arrived before the stall went out, less the last len(KEY) characters: they are held back
    # so that a key split over tokens is masked before any of it shows (bot.safety.StreamCleaner).
    arrived = "The boundary is "
    assert "".join(deltas) == arrived[: max(len(arrived) - len(KEY), 0)]
    assert answer.mode == "extractive" and answer.citations
    assert answer.notes == ["LLM unavailable: no response within 2s (PAPERBOT_LLM_TIMEOUT)"]


def test_no_response_at_all_is_retried_then_falls_back(llm_engine, fake):
    fake.play(default=Reply(stall_before=True))

    deltas, answer = run(llm_engine)

    assert deltas == [] and len(fake.requests) == 2
    assert answer.mode == "extractive"
    assert answer.notes == ["LLM unavailable: no response within 2s (PAPERBOT_LLM_TIMEOUT)"]


def test_connection_refused_falls_back(engine, llm_settings, fake):
    closed = FakeOpenAI()  # bound, then closed: nothing listens on its port
    url = closed.url
    closed.stop()
    eng = Engine(llm_settings.model_copy(update={"openai_base_url": url}), store=engine.store)

    _, answer = run(eng)

    assert answer.mode == "extractive" and answer.notes == [f"LLM unavailable: cannot connect to {url}"]


def test_authentication_error_names_the_variable_and_hides_the_key(llm_engine, fake, caplog):
    fake.play(default=Reply(status=401, error=f"Incorrect API key provided: {KEY}"))

    with caplog.at_level(logging.DEBUG):
        _, answer = run(llm_engine)

    assert len(fake.requests) == 1  # a wrong key is not retried
    assert answer.mode == "extractive"
    assert answer.notes == ["LLM unavailable: authentication failed (HTTP 401); check OPENAI_API_KEY"]
    assert KEY not in caplog.text and KEY not in json.dumps(answer.to_dict())


def test_no_endpoint_configured_says_what_to_set(engine, settings):
    eng = Engine(settings.model_copy(update={"openai_api_key": None, "openai_base_url": None}), store=engine.store)

    _, answer = run(eng)

    assert answer.mode == "extractive" and "OPENAI_API_KEY or OPENAI_BASE_URL" in answer.notes[0]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text=""),
        Reply(text="[1] [2]."),
        Reply(raw_events=["{not json"]),
        Reply(raw_events=[json.dumps({"id": "x", "object": "chat.completion.chunk", "choices": []}), "[DONE]"]),
    ],
    ids=["empty", "only-markers", "not-json", "no-choices"],
)
def test_empty_or_malformed_completion_falls_back(llm_engine, fake, reply):
    fake.play(reply)

    _, answer = run(llm_engine)

    assert answer.mode == "extractive" and answer.notes[0].startswith("LLM unavailable: ")


def test_follow_up_is_condensed_by_the_model_before_retrieval(llm_engine, fake):
    follow_up = "And what about their sensitivity to small changes?"
    history = [
        Turn("user", "Which papers study hyperparameters in training?"),
        Turn("assistant", "Several do [1]."),
    ]
    # Without the rewrite the follow-up alone does not rank the fractal paper first.
    assert llm_engine.retrieve_for(follow_up).hits[0].paper.title != FRACTAL
    standalone = f"{QUESTION[:-1]}, and how sensitive is it to small changes?"
    fake.play(Reply(text=f"Standalone question: {standalone}"), Reply(text="It is fractal [1]."))

    _, answer = run(llm_engine, follow_up, history=history)

    condense, generate = fake.requests
    assert not condense.get("stream")
    assert follow_up in condense["messages"][-1]["content"]
    assert "Which papers study hyperparameters in training?" in condense["messages"][-1]["content"]
    assert generate["stream"] is True and f"Question: {standalone}" in generate["messages"][-1]["content"]
    assert answer.standalone_question == standalone and answer.question == follow_up
    assert answer.hits[0].paper.title == FRACTAL and answer.citations[0].title == FRACTAL


def test_a_rewrite_that_drops_the_new_question_is_not_used(llm_engine, fake):
    # A small model may restate the previous turn instead of the new, unrelated question.
    new_question = "Which papers merge independently trained networks by permuting hidden units?"
    history = [Turn("user", QUESTION), Turn("assistant", "Yes, it is fractal [1].")]
    fake.play(Reply(text=QUESTION), Reply(text="Git Re-Basin does [1]."))

    _, answer = run(llm_engine, new_question, history=history)

    assert len(fake.requests) == 2 and answer.mode == "llm"
    assert answer.standalone_question is None  # the question was used as asked
    assert f"Question: {new_question}" in fake.requests[1]["messages"][-1]["content"]


def test_failed_condense_falls_back_with_the_heuristic_rewrite(llm_engine, fake):
    history = [Turn("user", QUESTION), Turn("assistant", "Yes [1].")]
    fake.play(default=Reply(status=503, headers=FAST_RETRY))

    _, answer = run(llm_engine, "what about their limitations?", history=history)

    assert answer.mode == "extractive" and "HTTP 503" in answer.notes[0]
    assert answer.standalone_question == f"{QUESTION} what about their limitations?"


def test_sources_are_trimmed_to_the_context_window(llm_engine, llm_settings):
    hits = llm_engine.sources_for(QUESTION, k=5).hits
    roomy = build_prompt(llm_settings, QUESTION, hits)
    assert len(roomy.sources) == 5 and all(h.paper.abstract[-40:] in roomy.text for h in hits)

    for window in (1200, 900, 700):
        tight = llm_settings.model_copy(update={"llm_context_window": window, "llm_max_tokens": 128})
        prompt = build_prompt(tight, QUESTION, hits)
        assert 1 <= len(prompt.sources) <= 5 and f"[1] {FRACTAL}: " in prompt.text
        assert count_tokens(prompt.text, llm_settings) + llm_settings.prompt.chat_overhead_tokens <= window - 128
        assert len(prompt.text) < len(roomy.text)


def _cli(cli_env, fake, *args: str, timeout: float = 3.0) -> subprocess.Popen:
    env = dict(
        cli_env,
        OPENAI_BASE_URL=fake.url,
        OPENAI_API_KEY=KEY,
        PAPERBOT_LLM_MAX_RETRIES="1",
        PAPERBOT_LLM_TIMEOUT=str(timeout),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "ask", QUESTION, "--mode", "llm", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_cli_prints_tokens_as_they_arrive_then_the_fallback_note(cli_env, fake):
    # Enough arrives before the stall for the first words to clear the tail held back while a key
    # could still be completing (len(KEY) characters, bot.safety.StreamCleaner).
    fake.play(Reply(text="The boundary is fractal over many scales of the learning rate [1].", stall_after=10))
    proc = _cli(cli_env, fake)
    out = bytearray()
    reader = threading.Thread(target=lambda: [out.extend(b) for b in iter(lambda: proc.stdout.read1(4096), b"")])
    reader.start()
    deadline = time.monotonic() + 300
    while b"The boundary is fractal" not in out and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # The first tokens are on screen while the stream is still open (stalled).
    assert b"The boundary is fractal" in out and proc.poll() is None
    proc.wait(timeout=300)
    reader.join()
    stdout, stderr = out.decode(), proc.stderr.read().decode()
    assert proc.returncode == 0, stderr
    assert "note: LLM unavailable: no response within 3s (PAPERBOT_LLM_TIMEOUT)" in stdout
    assert "Checked answer:" in stdout and "Sources:" in stdout and "Traceback" not in stderr
    assert KEY not in stdout + stderr


def test_cli_llm_answer_lists_only_cited_sources(cli_env, fake, llm_engine):
    hits = llm_engine.sources_for(QUESTION).hits
    fake.play(Reply(text=f"{abstract_sentence(hits[0], -1)} [1]. Nothing else is known [7]."))
    proc = _cli(cli_env, fake)
    stdout, stderr = (b.decode() for b in proc.communicate(timeout=300))

    assert proc.returncode == 0, stderr
    assert stdout.startswith(abstract_sentence(hits[0], -1))
    assert f"[1] {FRACTAL}" in stdout and "[2]" not in stdout.split("Sources:")[1]
    # Verification dropped the dangling [7], so the checked text follows.
    assert "Checked answer:" in stdout and "Nothing else is known." in stdout
    assert "1 of 2 sentences are not supported by a cited source." in stdout


def test_maths_brackets_are_not_markers_but_out_of_range_markers_are():
    text, order, dangling = renumber("Any operator on L^2([0,1]^d) is approximated [2]. So are others [7].", 2)
    assert "L^2([0,1]^d)" in text
    assert order == [2] and dangling == 1
    assert markers_in(text) == [1]
