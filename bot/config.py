"""All of paperbot's settings in one place (environment prefix ``PAPERBOT_``).

Also the one spot that switches the libraries to offline, telemetry-free
operation, because every entry point imports this module first.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The libraries read these at import time, so they are set before anything
# else imports chromadb, gradio, tiktoken or huggingface_hub.
_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ORT_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
for _key, _value in _OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)


def _tiktoken_cache() -> str | None:
    # Found without importing llama_index.core, which takes seconds.
    try:
        spec = importlib.util.find_spec("llama_index.core")
    except ImportError:  # pragma: no cover - llama-index is a hard dependency
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "_static" / "tiktoken_cache"
    return str(path) if path.is_dir() else None


# tiktoken downloads encodings unless pointed at the ones llama-index bundles.
if (_cache := _tiktoken_cache()) is not None:
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", _cache)

AnswerMode = Literal["auto", "extractive", "llm"]


class Settings(BaseSettings):
    """paperbot configuration; every field can be set as ``PAPERBOT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PAPERBOT_", extra="ignore")

    # Where things live.
    sources_dir: Path = PROJECT_ROOT / "index" / "sources"
    store_dir: Path = PROJECT_ROOT / "index" / "store"
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    collection: str = "paperbot"

    # Chroma server mode: set a host to use `chroma run` instead of the embedded store.
    chroma_host: str | None = None
    chroma_port: int = 8000

    # Chunking and embedding.
    chunk_size: int = 160  # word pieces; MiniLM truncates at 256
    chunk_overlap: int = 32
    embed_batch_size: int = 32

    # Retrieval.
    top_k: int = 5  # papers handed to the answer step
    candidate_k: int = 30  # chunks each retriever contributes before fusion
    dense_weight: float = 0.5
    sparse_weight: float = 0.5

    # Answering.
    mode: AnswerMode = "auto"
    # Refuse when the top papers' word-piece coverage of the question is below this
    # (HybridRetriever.coverage): the most unanswerable questions refused with at most 4% of the
    # answerable ones, over five eval sets; checked on two more, written blind (evals/README.md).
    refusal_threshold: float = 0.53
    # An answer sentence must score at least this much (0.7 * its cosine + 0.3 * its paper's).
    sentence_floor: float = 0.336
    answer_sentences: int = 4
    answer_min_ratio: float = 0.75  # a sentence must score this share of the best one (tuned on dev)
    # Sentence vs. cited abstract sentence/chunk cosine (LLM mode): balanced accuracy 0.92 on
    # dev, 0.90 held-out (`python evals/tune_verify.py`, evals/llm_local_report.md).
    verify_threshold: float = 0.525

    # LLM mode (any OpenAI-compatible server).
    llm_model: str = Field(
        default="gpt-4o-mini",
        validation_alias=AliasChoices("PAPERBOT_LLM_MODEL", "OPENAI_MODEL"),
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PAPERBOT_OPENAI_API_KEY", "OPENAI_API_KEY"),
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PAPERBOT_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
    )
    llm_timeout: float = 60.0
    llm_max_retries: int = 2
    llm_context_window: int = 8192
    llm_max_tokens: int = 512
    llm_temperature: float = 0.1

    # Chat UI.
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str | None = None  # "user:password"
    concurrency_limit: int = 4

    @property
    def llm_configured(self) -> bool:
        return self.openai_api_key is not None or self.openai_base_url is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
