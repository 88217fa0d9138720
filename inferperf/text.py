"""Short texts made from errors, outputs and paths, for skip reasons, failure notes and one-line messages."""

from __future__ import annotations

import os


def first_line(text: object, limit: int = 200) -> str:
    """The first non-empty line of ``text`` (an exception or a message), cut to ``limit`` characters."""
    for line in str(text).strip().splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def error_line(exc: BaseException, limit: int = 200) -> str:
    """``first_line`` of an exception, or its type's name when it has no message."""
    return first_line(exc, limit) or type(exc).__name__


def shown(path: os.PathLike[str] | str) -> str:
    """``path`` as printable text: undecodable bytes and control characters escaped.

    A file name may hold bytes that are not UTF-8 (kept by Python as surrogate escapes) or a
    newline; printed raw they raise ``UnicodeEncodeError`` or forge a second output line.
    """
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
