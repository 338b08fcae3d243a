"""The one error type the front ends show as a message: a problem the user can fix."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, a missing file, an unusable index...; ``str(exc)`` is the one-line message shown."""
