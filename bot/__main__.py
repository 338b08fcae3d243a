"""The `paperbot` entry point (also ``python -m bot``).

Invariant: Ctrl-C at any moment, even while the command line's own modules are still importing,
ends with "paperbot: interrupted" on stderr and exit status 130. So this module imports only
``bot.interrupt`` (standard library) before the SIGINT handler is in place.
"""

from __future__ import annotations

import sys

from bot.interrupt import EXIT_INTERRUPTED, MESSAGE, catching_ctrl_c, caused_by_ctrl_c


def run() -> int:
    """Install the Ctrl-C handler, import the command line, run it."""
    with catching_ctrl_c():
        try:
            from bot.cli import main
        except (KeyboardInterrupt, Exception) as exc:  # any error Ctrl-C caused (bot/interrupt.py)
            if not caused_by_ctrl_c(exc):
                raise
            print(MESSAGE, file=sys.stderr)
            return EXIT_INTERRUPTED
        return main()


if __name__ == "__main__":
    sys.exit(run())
