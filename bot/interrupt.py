"""Ctrl-C as one exception type the command line can always turn into exit status 130.

Invariant: while :func:`catching_ctrl_c` is active in the main thread, SIGINT raises
:class:`Interrupted`, a subclass of ``KeyboardInterrupt``, so every ``except KeyboardInterrupt``
(ours, click's, gradio's) still catches it.

Why a subclass: CPython 3.11 marks the process for death by SIGINT when a plain
``KeyboardInterrupt`` leaves code run by ``exec``/``eval`` of a string (``run_eval_code_obj``
tests ``type is KeyboardInterrupt``), even when our code catches it later. ``dataclasses`` and
``namedtuple`` build their methods that way while chromadb and httpx import, so a Ctrl-C there
printed "paperbot: interrupted" and then the process died with -2 instead of exit status 130
(5 of 48 interrupts at 0.39-0.42 s into ``paperbot index``, seventh session). A subclass is not
matched by that identity test.

Invariant: once our handler has raised :class:`Interrupted`, any exception that reaches the command
line is the interrupt's doing (:func:`caused_by_ctrl_c`). Libraries that turn an exception raised inside
them into their own error do not always keep the chain: pydantic-core reported a Ctrl-C at 2.5 s into
``paperbot index`` as ``SchemaError: Error building "enum" validator: Interrupted`` with no cause, and
the process exited 1 with a traceback (CI, twenty-third session; 1 run in many).

Nothing here imports more than the standard library: the entry point installs the handler
before the command line's own imports.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
MESSAGE = "paperbot: interrupted"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, raised by our SIGINT handler."""


_fired = threading.Event()  # set by our handler; cleared when a block that installs it begins


def _raise_interrupted(signum: int, frame: object) -> None:
    _fired.set()
    raise Interrupted


def caused_by_ctrl_c(exc: BaseException) -> bool:
    """True when our handler has raised :class:`Interrupted` in this block, or Ctrl-C is in ``exc``'s
    chain: an extension module whose import was interrupted reports ``ImportError: initialization
    failed`` raised from the ``KeyboardInterrupt`` (pybind11, onnxruntime)."""
    if _fired.is_set():
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def catching_ctrl_c() -> Iterator[None]:
    """Make SIGINT raise :class:`Interrupted` inside the block, then restore the old handler.

    Left alone outside the main thread, and when SIGINT is not Python's default handler (ignored in
    a background job, or a handler someone else installed).
    """
    ours = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) in (
        signal.default_int_handler,
        _raise_interrupted,
    )
    if ours:
        _fired.clear()
    previous = signal.signal(signal.SIGINT, _raise_interrupted) if ours else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
