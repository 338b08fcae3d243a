"""Slow reliability checks: a kill -9 sweep of `paperbot index`, concurrent writers, the login lockout over HTTP.

* Killed at any point, a build leaves the previous index answering, and the next
  run ends with stats byte-identical to a build that was never interrupted.
* Two `paperbot index` runs on one store, embedded or a `chroma run` server,
  end consistent: every chunk the manifest names is stored, nothing else is,
  and both runs' sources are in.
* The chat app refuses logins, right ones too, after repeated failures.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from bot.config import Settings
from bot.corpus import load_corpus
from bot.indexing import Store
from tests.conftest import SOURCES, free_port
from tests.test_indexing import chroma_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow

REAL_PAPERS, _ = load_corpus([SOURCES])


def write_jsonl(path: Path, papers) -> Path:
    path.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in papers))
    return path


def env_for(sources: Path, store: Path, collection: str = "sweep", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBOT_", "OPENAI_"))}
    return env | {
        "PAPERBOT_SOURCES_DIR": str(sources),
        "PAPERBOT_STORE_DIR": str(store),
        "PAPERBOT_COLLECTION": collection,
        "PAPERBOT_EMBED_BATCH_SIZE": "4",
        **extra,
    }


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=600)


def consistent(settings: Settings) -> None:
    """Every chunk the manifest names is stored, and no other."""
    store = Store(settings)
    manifest = store.load_manifest()
    assert manifest is not None
    assert store.chunk_ids() == {c.chunk_id for c in manifest.chunks}


# Chunks embedded when the kill comes (the build embeds 55): before embedding, early, midway, late.
KILL_POINTS = [0, 4, 24, 44]
PROGRESS = re.compile(rb"(\d+)/\d+ ")  # tqdm's "Embedding chunks:  40%|...| 24/55 [...]"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`stats --json` of an uninterrupted build of the sweep corpus."""
    base = tmp_path_factory.mktemp("reference")
    (base / "sources").mkdir()
    write_jsonl(base / "sources" / "first.jsonl", REAL_PAPERS[:3])
    write_jsonl(base / "sources" / "more.jsonl", REAL_PAPERS[3:30])
    env = env_for(base / "sources", base / "store")
    assert cli(env, "index", "--json").returncode == 0
    out = cli(env, "stats", "--json")
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("done", KILL_POINTS, ids=["before-embedding", "early", "midway", "late"])
def test_kill_9_sweep_ends_with_identical_stats(tmp_path, reference, done):
    sources = tmp_path / "sources"
    sources.mkdir()
    write_jsonl(sources / "first.jsonl", REAL_PAPERS[:3])
    env = env_for(sources, tmp_path / "store")
    assert cli(env, "index", "--json").returncode == 0
    before = cli(env, "stats", "--json").stdout

    write_jsonl(sources / "more.jsonl", REAL_PAPERS[3:30])
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "index"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    seen = b""
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if not done:
            time.sleep(1.0)  # still importing or reading the sources
            break
        seen += proc.stderr.read1(4096)
        if max((int(n) for n in PROGRESS.findall(seen)), default=0) >= done:
            break
    assert proc.poll() is None, f"index ended before {done} chunks were embedded: {seen[-300:]!r}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    # The previous index still answers, unchanged.
    assert cli(env, "stats", "--json").stdout == before
    search = cli(env, "search", REAL_PAPERS[1].title, "--json", "-k", "1")
    assert search.returncode == 0 and json.loads(search.stdout)[0]["title"] == REAL_PAPERS[1].title

    finish = cli(env, "index", "--json")
    assert finish.returncode == 0, finish.stderr
    assert cli(env, "stats", "--json").stdout == reference
    consistent(Settings(sources_dir=sources, store_dir=tmp_path / "store", collection="sweep"))
    again = json.loads(cli(env, "index", "--json").stdout)
    assert (again["chunks_added"], again["chunks_removed"], again["index_changed"]) == (0, 0, False)


def two_writers(env: dict[str, str], extra_a: Path, extra_b: Path) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "index", str(extra), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for extra in (extra_a, extra_b)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=600), *p.communicate()) for p in procs]


def check_two_writers(tmp_path: Path, settings: Settings, env: dict[str, str]) -> None:
    extra_a = write_jsonl(tmp_path / "extra_a.jsonl", REAL_PAPERS[10:30])
    extra_b = write_jsonl(tmp_path / "extra_b.jsonl", REAL_PAPERS[30:50])
    results = two_writers(env, extra_a, extra_b)
    for result in results:
        assert result.returncode == 0, result.stderr
    # One of them waited for the other's lock (the first may also finish before the second starts).
    waited = [r for r in results if "is writing the" in r.stderr]
    assert len(waited) <= 1
    consistent(settings)
    stats = json.loads(cli(env, "stats", "--json").stdout)
    assert stats["papers"] == 43  # the three in sources and both writers' twenty
    again = json.loads(cli(env, "index", "--json").stdout)
    assert (again["chunks_added"], again["chunks_removed"], again["index_changed"]) == (0, 0, False)


def test_two_writers_on_one_embedded_store_end_consistent(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    write_jsonl(sources / "first.jsonl", REAL_PAPERS[:3])
    env = env_for(sources, tmp_path / "store", collection="writers")
    assert cli(env, "index").returncode == 0
    settings = Settings(sources_dir=sources, store_dir=tmp_path / "store", collection="writers")
    check_two_writers(tmp_path, settings, env)


def test_two_writers_on_one_chroma_server_end_consistent(tmp_path, chroma_server):  # noqa: F811
    sources = tmp_path / "sources"
    sources.mkdir()
    write_jsonl(sources / "first.jsonl", REAL_PAPERS[:3])
    server = {"PAPERBOT_CHROMA_HOST": "127.0.0.1", "PAPERBOT_CHROMA_PORT": str(chroma_server)}
    env = env_for(sources, tmp_path / "unused", collection="writers", **server)
    assert cli(env, "index").returncode == 0, "first build"
    settings = Settings(sources_dir=sources, collection="writers", chroma_host="127.0.0.1", chroma_port=chroma_server)
    check_two_writers(tmp_path, settings, env)


def test_the_chat_login_locks_after_repeated_failures_over_http(tmp_path):
    from bot.answer import Engine
    from bot.app import launch
    from bot.indexing import sync

    (tmp_path / "sources").mkdir()
    write_jsonl(tmp_path / "sources" / "papers.jsonl", REAL_PAPERS[:3])
    settings = Settings(
        sources_dir=tmp_path / "sources",
        store_dir=tmp_path / "store",
        collection="login",
        auth="reader:right-password",
        auth_max_failures=5,
        auth_lockout_seconds=60,
    )
    sync(settings, progress=False)
    demo, url = launch(settings, port=free_port(), engine=Engine(settings))
    try:

        def login(password: str) -> int:
            data = urllib.parse.urlencode({"username": "reader", "password": password}).encode()
            try:
                with urllib.request.urlopen(url.rstrip("/") + "/login", data=data, timeout=30) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert login("right-password") == 200
        started = time.perf_counter()
        assert [login(f"guess-{i}") for i in range(20)] == [400] * 20
        assert login("right-password") == 400  # locked out: guessing gains nothing
        assert time.perf_counter() - started < 30
    finally:
        demo.close()


def test_ctrl_c_stops_the_chat_server_with_status_130(tmp_path):
    (tmp_path / "sources").mkdir()
    write_jsonl(tmp_path / "sources" / "papers.jsonl", REAL_PAPERS[:3])
    env = env_for(tmp_path / "sources", tmp_path / "store", collection="chatstop")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat", "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "serving on" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "paperbot: interrupted"
