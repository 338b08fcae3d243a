#!/usr/bin/env bash
# The test command: set up everything on a fresh machine, then run the checks.
# `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's chromium for the browser tests (Playwright's own download does not work offline).
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi

# llama-cpp-python compiles llama.cpp here; for the build machine's own CPU (GGML_NATIVE) it crashed with
# "Illegal instruction" on this workplace's host (2026-12-02, built and run on the same machine), so build for generic x86-64
# with AVX2 (llama.cpp's default when GGML_NATIVE is off). pip's wheel cache is keyed by the sdist, not by
# CMAKE_ARGS, so a wheel built natively earlier on this machine would be reused (CI on 2026-12-02 crashed with
# exit 132 after 562 s, no compile, on such a cached wheel): the local-llm extra is installed apart, with
# --no-cache-dir, so its build follows CMAKE_ARGS; everything else may come from the cache.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
.venv/bin/pip install -q --no-cache-dir -e '.[test,local-llm]'
. .venv/bin/activate

ruff check bot tests evals
ruff format --check bot tests evals
# Data flows one way: the layers contract in pyproject.toml.
lint-imports
# The fast layer first (pure functions, a nine-paper fixture corpus, an injected model, the CLI
# in-process), then the end-to-end tests on the real corpus, servers and a browser.
python -m pytest -q -ra -m "not slow"
python -m pytest -q -ra -m slow
# The scale benchmark's smallest size, so the script cannot rot (builds index/store first when missing).
python evals/bench_scale.py --n 1000 --quick
# The answer-quality gate: exits 1 and lists the metrics that dropped below evals/baseline.json.
paperbot eval --mode extractive --baseline evals/baseline.json --out artifacts/eval
# Where the browser test's screenshots and the eval report landed (kept as CI artifacts).
echo "artifacts: $(ls -d "$PWD"/artifacts/*.png "$PWD"/artifacts/eval/report.md 2>/dev/null | tr '\n' ' ')"
