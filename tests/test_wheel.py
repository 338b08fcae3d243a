"""Installed from a wheel into a fresh venv and run from a folder that is not the clone.

The wheel is built from this checkout, installed with its dependencies (pip's cache makes that
about a minute), and every command runs with a fresh HOME, so the index goes to the user data
folder there. To spare a second full embedding run, the session's index of the shipped corpus is
copied in as the default collection; the first `paperbot index` in the installed tool then re-reads
the shipped corpus from the wheel's package data, and its chunk ids (content hashes) must all
match: nothing but the .bib's papers is embedded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.config import DEFAULT_COLLECTION, MANIFEST_SUFFIX
from tests.conftest import ROOT
from tests.fakeopenai import Reply
from tests.test_bibtex import LIBRARY

pytestmark = pytest.mark.slow

# Folders of the clone that are not source (local venvs, the index, build and run outputs).
UNSHIPPED = (".git", ".venv", "store", "build", "artifacts", "runs", "*.egg-info", "__pycache__", ".*_cache")
SOURDOUGH = "Microbial Succession in Sourdough Starters under Östlund's Feeding Schedules"
SOURDOUGH_QUESTION = "How does the feeding schedule change the yeast-to-lactobacilli ratio of sourdough starters?"


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, engine) -> dict:
    base = tmp_path_factory.mktemp("wheel")
    started = time.perf_counter()
    # From a copy of the working tree: setuptools reuses build/ in place, where stale files would ship.
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*UNSHIPPED))
    build = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(src)], os.environ, base
    )
    assert build.returncode == 0, build.stderr
    [wheel] = (base / "dist").glob("paperbot-*.whl")
    built = time.perf_counter()
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # Nothing of the developer's environment: no PYTHONPATH (it would show pip the clone's
    # paperbot.egg-info as "already installed"), no settings, no key, a fresh HOME.
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("PAPERBOT_", "OPENAI_", "XDG_", "PYTHON", "VIRTUAL"))
    }
    install = _run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-compile", "--disable-pip-version-check", str(wheel)],
        clean,
        base,
        timeout=1200,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    assert (venv / "bin" / "paperbot").is_file(), install.stdout[-3000:]
    print(
        f"\nwheel built in {built - started:.1f}s, installed with its dependencies in {time.perf_counter() - built:.1f}s"
    )

    home = base / "home"
    work = base / "somewhere"  # not the clone
    work.mkdir(parents=True)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PAPERBOT_", "OPENAI_", "XDG_", "PYTHON", "VIRTUAL"))
    }
    env |= {"HOME": str(home), "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}
    store = home / ".local" / "share" / "paperbot" / "store"
    # The session's index, renamed to the default collection (in another process: this one has the
    # session store open).
    shutil.copytree(engine.settings.store_dir, store)
    rename = (
        "import chromadb, sys; client = chromadb.PersistentClient(path=sys.argv[1])\n"
        "for suffix in ('', sys.argv[4]): client.get_collection(sys.argv[2] + suffix).modify(name=sys.argv[3] + suffix)"
    )
    subprocess.run(
        [sys.executable, "-c", rename, str(store), engine.settings.collection, DEFAULT_COLLECTION, MANIFEST_SUFFIX],
        check=True,
        timeout=300,
    )
    return {"venv": venv, "env": env, "cwd": work, "store": store}


def paperbot(installed: dict, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    out = _run(["paperbot", *args], env or installed["env"], installed["cwd"])
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_the_installed_tool_runs_outside_the_clone(installed: dict, fake):
    env, venv = installed["env"], installed["venv"]
    probe = _run(
        [str(venv / "bin" / "python"), "-c", "import bot, json, sys; print(json.dumps([bot.__file__, sys.path]))"],
        env,
        installed["cwd"],
    )
    bot_file, path = json.loads(probe.stdout)
    assert Path(bot_file).is_relative_to(venv)
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(ROOT)]

    assert paperbot(installed, "--version").stdout.strip() == "paperbot 0.1.0"
    doctor = json.loads(paperbot(installed, "doctor", "--json").stdout)
    assert doctor["layout"] == "wheel" and doctor["store"] == str(installed["store"])
    assert Path(doctor["prompts"]).is_relative_to(venv) and Path(doctor["base_sources"]).is_relative_to(venv)
    assert all(f["ok"] for f in doctor["model_files"])

    stats = json.loads(paperbot(installed, "stats", "--json").stdout)
    assert (stats["entries"], stats["papers"]) == (573, 529)

    answer = json.loads(paperbot(installed, "ask", "Why do diffusion models hallucinate?", "--json").stdout)
    assert not answer["refused"] and answer["citations"]
    assert "Understanding Hallucinations in Diffusion Models through Mode Interpolation" in [
        c["title"] for c in answer["citations"]
    ]

    # The user's own library: only its new papers are embedded (the shipped corpus, re-read from
    # the wheel, hashes to the same chunks as the session's index).
    shutil.copy(LIBRARY, installed["cwd"])
    summary = json.loads(paperbot(installed, "index", LIBRARY.name, "--json").stdout)
    assert summary["files"]["library.bib"] == 4 and len(summary["files"]) == 6
    assert summary["papers"] == 529 + 3  # one of the four repeats a shipped paper
    assert summary["chunks_removed"] == 0 and 3 <= summary["chunks_added"] <= 6

    answer = json.loads(paperbot(installed, "ask", SOURDOUGH_QUESTION, "--mode", "extractive", "--json").stdout)
    assert not answer["refused"] and answer["citations"][0]["title"] == SOURDOUGH

    # LLM mode reads the prompt shipped inside the wheel.
    template = (ROOT / "prompts" / "answer.txt").read_text(encoding="utf-8")
    instructions = template.split("{question}", 1)[1].split("{refusal}", 1)[0].strip()
    fake.play(Reply(text="Twice-daily feeding stabilises the ratio near 3:1 within 9 days [1]."))
    llm_env = env | {"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": "sk-wheel", "PAPERBOT_LLM_MODEL": "fake-model"}
    answer = json.loads(paperbot(installed, "ask", SOURDOUGH_QUESTION, "--mode", "llm", "--json", env=llm_env).stdout)
    assert answer["mode"] == "llm" and answer["notes"] == [], answer["notes"]
    assert answer["citations"][0]["title"] == SOURDOUGH and answer["citations"][0]["verified"]
    [request] = fake.requests
    assert instructions and instructions in request["messages"][-1]["content"]
