"""Ctrl-C always ends in "paperbot: interrupted" and exit status 130 (bot/interrupt.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import bot
import bot.indexing
from bot.cli import main
from bot.interrupt import EXIT_INTERRUPTED, MESSAGE, Interrupted, catching_ctrl_c, caused_by_ctrl_c

# Ctrl-C while code built by exec() runs (dataclasses and namedtuple build methods that way while
# chromadb and httpx import), caught by the program, which then exits with status 130. Run with
# ``python -m`` as the tests run paperbot: CPython 3.11 then checks its flag at exit.
EXEC_CTRL_C = """
import os, signal, sys
{setup}
try:
    exec("os.kill(os.getpid(), signal.SIGINT)\\nfor _ in range(10**7): pass")
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        ("", -signal.SIGINT),  # CPython 3.11's own handler: the process dies by SIGINT after all
        ("from bot.interrupt import catching_ctrl_c; ctx = catching_ctrl_c(); ctx.__enter__()", 130),
    ],
)
def test_ctrl_c_inside_exec_keeps_the_exit_status(setup, status, tmp_path):
    (tmp_path / "ctrl_c_in_exec.py").write_text(EXEC_CTRL_C.format(setup=setup), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(Path(bot.__file__).parents[1])]))
    run = subprocess.run([sys.executable, "-m", "ctrl_c_in_exec"], cwd=tmp_path, env=env, timeout=60)
    assert run.returncode == status


def test_caused_by_ctrl_c_follows_the_chain():
    try:
        try:
            raise Interrupted
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc
    except ImportError as exc:
        interrupted_import = exc
    assert caused_by_ctrl_c(interrupted_import)
    assert not caused_by_ctrl_c(ImportError("No module named 'onnxruntime'"))


def test_the_handler_is_restored_and_an_ignored_sigint_left_alone():
    before = signal.getsignal(signal.SIGINT)
    with catching_ctrl_c():
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job
    try:
        with catching_ctrl_c():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted_import(*args, **kwargs):
    try:
        raise Interrupted
    except KeyboardInterrupt as exc:
        raise ImportError("initialization failed") from exc


def test_an_import_cut_short_by_ctrl_c_is_an_interrupt(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PAPERBOT_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setattr(bot.indexing, "sync", _interrupted_import)

    assert main(["index"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip().splitlines()[-1] == MESSAGE


def test_any_other_import_error_is_a_bug_with_its_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("PAPERBOT_STORE_DIR", str(tmp_path / "store"))

    def broken(*args, **kwargs):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(bot.indexing, "sync", broken)
    with pytest.raises(ImportError, match="onnxruntime"):
        main(["index"])


def _interrupt_swallowed_by_a_library(*args, **kwargs):
    """pydantic-core's way: the Ctrl-C raised inside becomes the library's own error, with no chain."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10**6):
            pass
    except KeyboardInterrupt as exc:
        raise RuntimeError(f'Error building "enum" validator: {exc!r}') from None
    raise AssertionError("the SIGINT never arrived")


def test_an_error_a_library_made_of_ctrl_c_is_an_interrupt(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PAPERBOT_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setattr(bot.indexing, "sync", _interrupt_swallowed_by_a_library)

    assert main(["index"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip().splitlines()[-1] == MESSAGE


def test_without_ctrl_c_a_library_error_is_a_bug_again(monkeypatch, tmp_path):
    monkeypatch.setenv("PAPERBOT_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setattr(bot.indexing, "sync", _interrupt_swallowed_by_a_library)
    assert main(["index"]) == EXIT_INTERRUPTED

    def broken(*args, **kwargs):
        raise RuntimeError('Error building "enum" validator')

    monkeypatch.setattr(bot.indexing, "sync", broken)  # a later run starts with no Ctrl-C on record
    with pytest.raises(RuntimeError, match="validator"):
        main(["index"])
