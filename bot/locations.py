"""Where paperbot's files live, installed from a wheel or run from its clone.

Invariants:
- The shipped corpus (five source pages) and the prompt files have one canonical copy in the
  repository, the top-level ``index/sources/`` and ``prompts/`` folders. A wheel carries them as
  package data under ``bot/data/sources`` and ``bot/data/prompts`` (pyproject.toml maps the
  folders there); they are found with :mod:`importlib.resources` and never written to.
- Run from a clone (an editable install, or the source tree on ``PYTHONPATH``) there is no
  ``bot/data/sources``, and the top-level folders are used directly, so editing ``prompts/*.txt``
  in a clone takes effect at once.
- The index store is the only place paperbot writes: ``PAPERBOT_STORE_DIR`` when set, else
  ``<clone>/index/store`` in a clone (the developer setup, as before), else the platform's user
  data folder (``~/.local/share/paperbot/store`` on Linux).
- A user prompt folder (``PAPERBOT_PROMPTS_DIR``) overrides the shipped prompts file by file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import platformdirs

APP_NAME = "paperbot"
# The clone's root when bot/ is imported from a source tree (not meaningful for a wheel).
CHECKOUT_ROOT = Path(__file__).resolve().parent.parent
# Package-data folder name (inside bot/) -> the canonical folder in the clone.
_SHIPPED = {"sources": Path("index") / "sources", "prompts": Path("prompts")}


class MissingPrompt(FileNotFoundError):
    """A prompt file is neither in the user prompt folder nor shipped."""


def _packaged(kind: str) -> Path:
    # Installed wheels are plain folders on disk, so the Traversable is a Path.
    return Path(str(resources.files("bot") / "data" / kind))


def running_from_checkout() -> bool:
    """True when bot/ is the clone's source tree rather than an installed wheel."""
    return not _packaged("sources").is_dir() and (CHECKOUT_ROOT / _SHIPPED["sources"]).is_dir()


def shipped_dir(kind: str) -> Path:
    """The folder of shipped ``kind`` files ("sources" or "prompts")."""
    packaged = _packaged(kind)
    return packaged if packaged.is_dir() else CHECKOUT_ROOT / _SHIPPED[kind]


def shipped_sources() -> Path:
    return shipped_dir("sources")


def default_store_dir() -> Path:
    if running_from_checkout():
        return CHECKOUT_ROOT / "index" / "store"
    return platformdirs.user_data_path(APP_NAME) / "store"


def prompt_path(name: str, override_dir: Path | None) -> Path:
    """``<name>.txt`` from the user prompt folder when it holds one, else the shipped file."""
    filename = f"{name}.txt"
    if override_dir is not None and not override_dir.is_dir():
        raise MissingPrompt(f"prompt folder {override_dir} (PAPERBOT_PROMPTS_DIR) does not exist")
    if override_dir is not None and (override_dir / filename).is_file():
        return override_dir / filename
    shipped = shipped_dir("prompts") / filename
    if not shipped.is_file():
        raise MissingPrompt(f"prompt file {filename} is missing (looked in {override_dir or '-'} and {shipped.parent})")
    return shipped
