"""The model: an OpenAI-compatible chat model as a LlamaIndex ``LLM``, its prompts and its failures.

Nothing here knows about retrieval or answers. :func:`build_llm` makes the
model from settings (the engine takes an injected one instead, as tests do);
:func:`model_errors` names the exceptions a model call can raise from outside
(the openai client's, httpx's, a malformed stream, :class:`LLMUnavailable`),
which are the only ones the answer paths turn into an extractive fallback;
:func:`describe_failure` makes a one-line reason of them that never holds the
API key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.locations import MissingPrompt, prompt_path
from bot.safety import clean, secrets_of

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)

DEFAULT_OPENAI_BASE = "https://api.openai.com/v1"
# Local servers ignore the key, but the openai client insists on one.
PLACEHOLDER_KEY = "sk-no-key-needed"
_SHOWN_ERROR_CHARS = 160  # of a server's error message, in the one-line reason


class LLMUnavailable(Exception):
    """No usable completion; ``reason`` is short and safe to show (never holds the key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- prompts ----------------------------------------------------------------
def load_prompt(name: str, settings: Settings) -> str:
    """The text of prompt ``name`` (read at run time, so edits need no restart).

    ``PAPERBOT_PROMPTS_DIR/<name>.txt`` when it exists, else the shipped file (bot.locations).
    """
    try:
        path = prompt_path(name, settings.prompts_dir)
        return path.read_text(encoding="utf-8")
    except MissingPrompt as exc:
        raise LLMUnavailable(str(exc)) from exc
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


def count_tokens(text: str, settings: Settings) -> int:
    """A conservative token count for context budgeting."""
    return int(len(_encoding().encode(text, disallowed_special=())) * settings.prompt.token_safety) + 1


def truncate(text: str, budget: int, settings: Settings) -> str:
    """``text`` cut to about ``budget`` tokens (counted as :func:`count_tokens` does), marked with an ellipsis."""
    ids = _encoding().encode(text, disallowed_special=())
    keep = int(budget / settings.prompt.token_safety) - 1
    return text if len(ids) <= keep else _encoding().decode(ids[: max(keep, 0)]).rstrip() + " …"


# -- the model --------------------------------------------------------------
def build_llm(settings: Settings) -> LLM:
    """The configured OpenAI-compatible model as a LlamaIndex LLM."""
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


def model_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a model call raises from outside paperbot (network, server, malformed reply)."""
    import httpx
    import openai

    return (LLMUnavailable, openai.OpenAIError, httpx.HTTPError)


@contextmanager
def reading_model_output() -> Iterator[None]:
    """Around iterating a model's reply: the client library's parse errors mean a malformed response.

    A server that streams invalid JSON, or chunks without the fields the client
    reads, makes the library raise ``ValueError``/``KeyError``/``IndexError``/
    ``TypeError``/``AttributeError`` from inside its parser. Only the library's
    iteration goes in this block, never paperbot's own logic, so a bug of ours
    still surfaces with its traceback.
    """
    try:
        yield
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        log.warning("malformed model response", exc_info=True)
        raise LLMUnavailable(f"malformed response ({type(exc).__name__})") from exc


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
    elif isinstance(exc, openai.OpenAIError):
        reason = f"the server sent an error: {_error_message(exc)}"
    else:
        reason = f"HTTP error: {type(exc).__name__}"
    return clean(reason, secrets_of(settings))


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    message = message or getattr(exc, "message", "") or str(exc)
    message = " ".join(str(message).split())
    return message[:_SHOWN_ERROR_CHARS] + ("…" if len(message) > _SHOWN_ERROR_CHARS else "")
