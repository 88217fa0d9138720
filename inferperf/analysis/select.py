"""``-k`` expressions over case ids, as pytest spells them: ``"cuda and not int8"``.

A bare word matches when it is a case-insensitive substring of the case id; ``and``, ``or``,
``not`` and parentheses combine words.
"""

from __future__ import annotations

import re
from typing import Callable

Matcher = Callable[[str], bool]

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


class ExpressionError(ValueError):
    pass


def _tokens(expression: str) -> list[str]:
    tokens, position = [], 0
    expression = expression.strip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:  # only trailing spaces are left
            break
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def compile_expression(expression: str | None) -> Matcher:
    """A predicate over case ids; ``None`` or empty selects everything."""
    if not expression or not expression.strip():
        return lambda _: True
    tokens = _tokens(expression)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise ExpressionError(f"-k {expression!r}: unexpected end of expression")
        position += 1
        return tokens[position - 1]

    def parse_or() -> Matcher:
        left = parse_and()
        while peek() == "or":
            take()
            right = parse_and()
            left = (lambda a, b: lambda s: a(s) or b(s))(left, right)
        return left

    def parse_and() -> Matcher:
        left = parse_not()
        while peek() == "and":
            take()
            right = parse_not()
            left = (lambda a, b: lambda s: a(s) and b(s))(left, right)
        return left

    def parse_not() -> Matcher:
        if peek() == "not":
            take()
            inner = parse_not()
            return lambda s: not inner(s)
        return parse_atom()

    def parse_atom() -> Matcher:
        token = take()
        if token == "(":
            inner = parse_or()
            if take() != ")":
                raise ExpressionError(f"-k {expression!r}: missing ')'")
            return inner
        if token in (")", "and", "or"):
            raise ExpressionError(f"-k {expression!r}: unexpected {token!r}")
        word = token.lower()
        return lambda s: word in s.lower()

    matcher = parse_or()
    if position != len(tokens):
        raise ExpressionError(f"-k {expression!r}: unexpected {tokens[position]!r}")
    return matcher
