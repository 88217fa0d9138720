"""Tables and number formats shared by every report (compare, run report, history, ab).

A ``Table`` renders the same rows as aligned text, Markdown or HTML, so each report states its
content once and every output format agrees.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from inferperf.record.values import finite_number

#: the order verdicts are counted in, changes first (compare's and ab's verdicts together)
VERDICT_ORDER = ("slower", "faster", "same", "inconclusive", "not comparable")


def verdict_counts(verdicts: Iterable[str]) -> list[tuple[str, int]]:
    """How many of each verdict, in ``VERDICT_ORDER``, leaving out verdicts that did not occur."""
    counts = Counter(verdicts)
    return [(verdict, counts[verdict]) for verdict in VERDICT_ORDER if counts[verdict]]


def fmt_seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} s"


def fmt_rate(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.4g}" if value < 1e5 else f"{value:,.0f}"


def fmt_ratio(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    text = f"{value:.3f}x"
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def fmt_change(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:+.1%}"


def fmt_p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def fmt_fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def fmt_bytes(value: Any) -> str:
    number = finite_number(value)
    if number is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if number >= scale:
            return f"{number / scale:.3g} {unit}"
    return f"{number:.0f} B"


#: cell values that get a CSS class in HTML (verdicts are coloured)
_CSS_CLASSES = {"slower": "slower", "faster": "faster", "not comparable": "nc", "inconclusive": "nc"}


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]

    def text(self) -> str:
        # column by column and one format string for every row: a fleet's table is 25,000 rows
        columns = list(zip(*self.rows)) if self.rows else [()] * len(self.headers)
        widths = [max(len(h), *map(len, column)) if column else len(h) for h, column in zip(self.headers, columns)]
        row_format = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [self.title, row_format.format(*self.headers), "  ".join("-" * w for w in widths)]
        lines += [row_format.format(*row) for row in self.rows]
        return "\n".join(lines)

    def markdown(self) -> str:
        def cell(value: str) -> str:
            return value.replace("|", "\\|")

        lines = [f"#### {self.title}", "", "| " + " | ".join(cell(h) for h in self.headers) + " |"]
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join(
            "<tr>" + "".join(f"<td class='{_CSS_CLASSES.get(c, '')}'>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self.rows
        )
        return f"<h3>{html.escape(self.title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
