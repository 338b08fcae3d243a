"""Shared fixtures: one isolated index of the real corpus per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "index" / "sources"


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
