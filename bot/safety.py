"""Text from outside is data: one cleaning for everything shown to a person or written to a log.

Invariants of :func:`clean` (the one function front ends and logs call):

* no secret the process holds (the LLM API key, the chat password) survives:
  each is replaced by :data:`MASK`, also when it arrives split over stream pieces
  (:class:`StreamCleaner` holds back enough text to see it whole);
* no terminal control: ANSI/VT escape sequences (CSI, OSC, DCS, ...) are removed
  whole, then every remaining C0/C1 control character except newline and tab,
  and lone surrogates (undecodable bytes) are dropped;
* everything else, including non-ASCII letters and markup, is left as it is
  (rendering it inert is the job of the front end: bot.app.inert for Markdown).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot.text import SURROGATES

if TYPE_CHECKING:
    from bot.config import Settings

MASK = "***"

# ESC-introduced sequences: CSI "ESC [ ... final", OSC/DCS/SOS/PM/APC "ESC ] ... (BEL | ESC \\)"
# (also unterminated, up to the end of the text), and two-character escapes "ESC x".
# The 8-bit forms (U+009B CSI, U+009D OSC, ...) are covered too.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]?"  # other escapes (and a lone ESC)
)
# C0 and C1 controls and DEL, except newline and tab; lone surrogates (from invalid UTF-8).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f" + SURROGATES + "]")
# Carriage returns and the like can overwrite a terminal line; they become plain newlines.
_LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x85\u2028\u2029]")


# Every escape sequence starts with one of these: text without them (nearly all) skips _ESCAPES, whose
# alternation took a third of the cleaning of a 45,000-paper library's sources.
_ESCAPE_START = re.compile(r"[\x1b\x90\x98\x9b\x9d\x9e\x9f]")


def strip_controls(text: str) -> str:
    """``text`` without escape sequences, control characters (newline and tab stay) or lone surrogates."""
    text = _LINE_BREAKS.sub("\n", text)
    if _ESCAPE_START.search(text):
        text = _ESCAPES.sub("", text)
    return _CONTROLS.sub("", text)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by :data:`MASK`."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def secrets_of(settings: Settings) -> list[str]:
    """The secrets ``settings`` hold: the LLM API key and the chat password."""
    found = []
    if settings.openai_api_key is not None:
        found.append(settings.openai_api_key.get_secret_value())
    if settings.auth and ":" in settings.auth:
        found.append(settings.auth.partition(":")[2])
    return [s for s in found if s]


def process_secrets() -> list[str]:
    """The secrets of this process's settings (none when the settings themselves are invalid)."""
    from bot.config import SettingsError, get_settings

    try:
        return secrets_of(get_settings())
    except SettingsError:
        return []


def clean(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` fit for a terminal, a page or a log: secrets masked, controls stripped.

    ``secrets`` defaults to :func:`process_secrets`. Secrets are masked after the
    controls are stripped, so an escape code inside a key does not hide it.
    """
    return mask_secrets(strip_controls(text), process_secrets() if secrets is None else secrets)


# JSON (ensure_ascii=False) escapes C0 controls but leaves these raw; \uXXXX keeps it valid JSON.
_JSON_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def clean_json(text: str, secrets: Iterable[str] | None = None) -> str:
    """JSON text fit for a terminal: the controls JSON leaves raw escaped (still the same JSON), secrets masked."""
    escaped = _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return mask_secrets(escaped, process_secrets() if secrets is None else secrets)


class StreamCleaner:
    """Cleans a stream of text pieces: each :meth:`feed` returns what is safe to show so far.

    Text is emitted only up to the length of the longest secret before the end of
    what has arrived, so a secret split over pieces is masked before any of it shows.
    """

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        self.secrets = [s for s in (process_secrets() if secrets is None else secrets) if s]
        self._hold = max((len(s) for s in self.secrets), default=0)
        self._raw = ""
        self._shown = 0

    def feed(self, piece: str) -> str:
        self._raw += piece
        cleaned = clean(self._raw, self.secrets)
        upto = max(len(cleaned) - self._hold, self._shown)
        out, self._shown = cleaned[self._shown : upto], upto
        return out

    def finish(self) -> str:
        """The rest of the stream, once no more pieces come."""
        cleaned = clean(self._raw, self.secrets)
        out, self._shown = cleaned[self._shown :], len(cleaned)
        return out


class CleanLogFilter(logging.Filter):
    """A logging filter that passes every record's message through :func:`clean`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = clean(record.getMessage())
        record.args = None
        if record.exc_text:
            record.exc_text = clean(record.exc_text)
        return True
