"""Errors in what the user gave (files, config values), as opposed to bugs.

An :class:`InputError`'s message names the file or config key and what was expected; the entry scripts'
handler (:func:`dstorm.logs.setup_logging`) writes it as one line to the rule's log and to stderr, with no
traceback, and the job exits non-zero. Any other exception is a bug and keeps its traceback.
Standard library only.
"""

from __future__ import annotations

__all__ = ["InputError", "MissingInput"]


class InputError(ValueError):
    """Bad input: the message says which file or key and what was expected."""


class MissingInput(InputError, FileNotFoundError):
    """A named input file does not exist."""
