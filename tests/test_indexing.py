"""Incremental, idempotent indexing; crash safety; the Chroma server mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.corpus import load_corpus
from bot.indexing import Store, sync

from . import servers
from .conftest import SOURCES, library_settings, write_jsonl
from .servers import free_port

REAL_PAPERS, _ = load_corpus([SOURCES])


def test_incremental_edit_remove_and_no_duplicates(tmp_path: Path):
    settings = library_settings(tmp_path, "small")
    source = settings.sources_dir / "mine.jsonl"
    write_jsonl(source, REAL_PAPERS[:6])
    first = sync(settings, progress=False)
    assert first.added > 0 and first.removed == 0 and first.manifest_written
    store = Store(settings)
    ids_before = store.chunk_ids()
    assert len(ids_before) == len(first.manifest.chunks)

    again = sync(settings, progress=False)
    assert (again.added, again.removed, again.manifest_written) == (0, 0, False)
    assert store.chunk_ids() == ids_before

    edited = REAL_PAPERS[:5]
    edited[1] = type(edited[1])(**{**edited[1].to_dict(), "abstract": edited[1].abstract + " We also add a new claim."})
    write_jsonl(source, edited)
    changed = sync(settings, progress=False)
    assert changed.added >= 1 and changed.removed >= 2  # the edited chunk(s) and the dropped paper's
    manifest = store.load_manifest()
    assert [p.title for p in manifest.papers] == [p.title for p in edited]
    assert store.chunk_ids() == {c.chunk_id for c in manifest.chunks}
    assert "We also add a new claim." in next(p for p in manifest.papers if p.title == edited[1].title).abstract


def test_extra_path_is_remembered(tmp_path: Path):
    settings = library_settings(tmp_path, "small")
    write_jsonl(settings.sources_dir / "a.jsonl", REAL_PAPERS[:2])
    extra = tmp_path / "extra.jsonl"
    write_jsonl(extra, REAL_PAPERS[2:4])
    assert len(sync(settings, paths=[extra], progress=False).manifest.papers) == 4
    # A later run without the path still includes it.
    result = sync(settings, progress=False)
    assert len(result.manifest.papers) == 4 and result.added == 0


@pytest.mark.slow  # kills a real `paperbot index` process
def test_killed_build_leaves_previous_index_queryable(tmp_path: Path):
    settings = library_settings(tmp_path, "small", embed_batch_size=4)
    write_jsonl(settings.sources_dir / "mine.jsonl", REAL_PAPERS[:3])
    sync(settings, progress=False)
    before = Store(settings).load_manifest()

    write_jsonl(settings.sources_dir / "more.jsonl", REAL_PAPERS[3:80])
    env = dict(
        os.environ,
        PAPERBOT_SOURCES_DIR=str(settings.sources_dir),
        PAPERBOT_STORE_DIR=str(settings.store_dir),
        PAPERBOT_COLLECTION=settings.collection,
        PAPERBOT_EMBED_BATCH_SIZE="4",
        PAPERBOT_CHROMA_UPSERT_BATCH="4",  # stored as they are embedded, so the kill leaves some behind
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "index"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    seen = b""
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until a few batches are stored, then kill -9
        seen += proc.stderr.read1(4096)
        if b" 8/" in seen or b"12/" in seen:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert b"Embedding chunks" in seen

    from bot.answer import Engine

    engine = Engine(settings)
    assert engine.manifest.to_json() == before.to_json()
    hits = engine.search(before.papers[0].title, k=3)
    assert hits[0].paper.title == before.papers[0].title
    assert {h.paper.paper_id for h in hits} <= {p.paper_id for p in before.papers}

    # The next run finishes the job, re-using what the killed run stored.
    result = sync(settings, progress=False)
    assert len(result.manifest.papers) == 80
    assert result.unchanged > len(before.chunks)
    assert Store(settings).chunk_ids() == {c.chunk_id for c in result.manifest.chunks}


@pytest.fixture()
def chroma_server(tmp_path: Path):
    with servers.chroma_server(tmp_path / "server") as port:
        yield port


@pytest.mark.slow  # a real `chroma run` server and two processes
def test_chroma_server_mode_shared_by_two_processes(tmp_path: Path, chroma_server: int):
    settings = library_settings(tmp_path, "small", chroma_host="127.0.0.1", chroma_port=chroma_server)
    write_jsonl(settings.sources_dir / "mine.jsonl", REAL_PAPERS[:8])
    result = sync(settings, progress=False)
    assert result.added > 0
    assert not (tmp_path / "store").exists()  # nothing embedded locally

    env = dict(
        os.environ,
        PAPERBOT_SOURCES_DIR=str(settings.sources_dir),
        PAPERBOT_STORE_DIR=str(tmp_path / "unused"),
        PAPERBOT_COLLECTION=settings.collection,
        PAPERBOT_CHROMA_HOST="127.0.0.1",
        PAPERBOT_CHROMA_PORT=str(chroma_server),
    )
    out = subprocess.run(
        [sys.executable, "-m", "bot", "search", REAL_PAPERS[5].title, "--json", "-k", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["title"] == REAL_PAPERS[5].title
    stats = subprocess.run(
        [sys.executable, "-m", "bot", "stats", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert json.loads(stats.stdout)["papers"] == 8


def test_chroma_server_down_is_a_clear_error(tmp_path: Path):
    env = dict(
        os.environ,
        PAPERBOT_SOURCES_DIR=str(tmp_path),
        PAPERBOT_CHROMA_HOST="127.0.0.1",
        PAPERBOT_CHROMA_PORT=str(free_port()),
    )
    out = subprocess.run([sys.executable, "-m", "bot", "stats"], env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.startswith("paperbot: error: cannot open the Chroma server at 127.0.0.1:")
    assert "Traceback" not in out.stderr
