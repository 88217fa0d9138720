"""Short texts made from errors and outputs, for skip reasons, failure notes and one-line messages."""

from __future__ import annotations


def first_line(text: object, limit: int = 200) -> str:
    """The first non-empty line of ``text`` (an exception or a message), cut to ``limit`` characters."""
    for line in str(text).strip().splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def error_line(exc: BaseException, limit: int = 200) -> str:
    """``first_line`` of an exception, or its type's name when it has no message."""
    return first_line(exc, limit) or type(exc).__name__
