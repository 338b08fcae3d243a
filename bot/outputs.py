"""Checks that an output path can be written, made before the work that fills it.

Invariant: a command that writes a file or a run folder calls one of these first,
so a bad ``--out`` fails in a second with a one-line reason, not after the run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def file_problem(path: Path) -> str | None:
    """Why a file cannot be written at ``path`` (None when it can); its folder must exist."""
    if path.is_dir():
        return f"cannot write {path}: it is a directory"
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"cannot write {path}: the folder {parent} does not exist"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"cannot write {path}: permission denied"
    return None


def folder_problem(path: Path) -> str | None:
    """Why files cannot be written into the folder ``path`` (None when they can).

    The folder is created (as the run would) and a probe file written and removed:
    permissions, read-only file systems and special folders all show up now.
    """
    if path.exists() and not path.is_dir():
        return f"cannot write into {path}: it is a file, not a folder"
    base = _nearest_existing(path)
    if not base.is_dir():
        return f"cannot create {path}: {base} is a file, not a folder"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"cannot write into {path}: {exc.strerror or exc}"
    return None
